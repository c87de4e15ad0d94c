//! Merging a COW file with its backing file, like `uml_moo`: into a new
//! image, or in place into the backing file (`uml_moo -d`).
//!
//! Unlike `uml_moo`, a backing file named only by the COW header is opened
//! under the same `cow_backing=` rule as umlrun's (see `cow::confine`): by
//! default only one in the COW file's own directory. A hostile COW header
//! could otherwise make a merge read any file the user can read into the
//! new image, or, in place, overwrite it. One named by the caller (`-b`)
//! is always used.

use std::path::{Path, PathBuf};

use super::cow;
use super::cow::confine::{self, BackingPolicy};
use super::error::{io_err, BlockError};
use super::ubd::Ubd;
use crate::config::{UbdFlags, UbdMode, UbdSpec};
use crate::host::file as hf;

const CHUNK: u64 = 1 << 20;
const SECTOR: u64 = cow::SECTOR_SIZE as u64;

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeStats {
    /// Bytes of the resulting image.
    pub size: u64,
    /// Sectors taken from the COW file.
    pub cow_sectors: u64,
}

/// Writes the merged disk to a new file `out` (refused if it exists).
/// Zero chunks are left as holes, so the result is as sparse as it can be.
/// A backing file only the header names must pass `policy`.
pub fn merge_to(
    cow_path: &Path,
    backing: Option<&Path>,
    out: &Path,
    policy: BackingPolicy,
) -> Result<MergeStats, BlockError> {
    let spec = UbdSpec {
        index: 0,
        flags: UbdFlags {
            read_only: true,
            ..UbdFlags::default()
        },
        file: cow_path.to_path_buf(),
        backing: backing.map(Path::to_path_buf),
        mode: UbdMode::Copy,
    };
    let ubd = Ubd::open_confined(&spec, policy)?;
    if ubd.cow_header().is_none() {
        // Opened as a raw image: say exactly why it is not a COW file.
        let f = hf::open_disk(cow_path, false, false).map_err(|source| BlockError::Open {
            path: cow_path.to_path_buf(),
            source,
        })?;
        cow::read_header_required(&f, cow_path)?;
    }
    let file = hf::create_new(out).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            BlockError::Exists {
                path: out.to_path_buf(),
            }
        } else {
            BlockError::Open {
                path: out.to_path_buf(),
                source,
            }
        }
    })?;
    let result = (|| {
        let size = ubd.size();
        let mut buf = vec![0u8; CHUNK as usize];
        let mut at = 0;
        while at < size {
            let n = CHUNK.min(size - at) as usize;
            ubd.read_at(at, &mut buf[..n])?;
            if buf[..n].iter().any(|&b| b != 0) {
                hf::write_all_at(&file, &buf[..n], at).map_err(io_err("write", out))?;
            }
            at += n as u64;
        }
        file.set_len(size).map_err(io_err("resize", out))?;
        hf::sync_data(&file).map_err(io_err("sync", out))?;
        Ok(MergeStats {
            size,
            cow_sectors: ubd.cow_sectors(),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

/// Copies every COW sector into the backing file itself. Afterwards the
/// backing file's mtime no longer matches the COW header: the COW file is
/// spent, as with `uml_moo -d`. A backing file only the header names must
/// pass `policy`, decided before that file is looked at.
pub fn merge_in_place(
    cow_path: &Path,
    backing: Option<&Path>,
    policy: BackingPolicy,
) -> Result<(MergeStats, PathBuf), BlockError> {
    let cf = hf::open_disk(cow_path, false, false).map_err(|source| BlockError::Open {
        path: cow_path.to_path_buf(),
        source,
    })?;
    hf::try_lock(&cf, hf::LockKind::Shared).map_err(|e| lock_err(cow_path, e))?;
    let h = cow::read_header_required(&cf, cow_path)?;
    let bpath = match backing {
        Some(b) => b.to_path_buf(),
        None => {
            confine::check(policy, cow_path, &h.backing_path)?;
            h.backing_path.clone()
        }
    };
    cow::check_backing(cow_path, &h, &bpath)?;
    let bitmap = cow::load_bitmap(&cf, cow_path, &h)?;
    let bf = hf::open_disk(&bpath, true, false).map_err(|source| {
        if hf::is_erofs(&source) {
            BlockError::ReadOnlyFs {
                path: bpath.clone(),
            }
        } else {
            BlockError::Open {
                path: bpath.clone(),
                source,
            }
        }
    })?;
    hf::try_lock(&bf, hf::LockKind::Exclusive).map_err(|e| lock_err(&bpath, e))?;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut copied = 0;
    for (s0, s1, in_cow) in bitmap.runs(0, h.sectors()) {
        if !in_cow {
            continue;
        }
        copied += s1 - s0;
        let (mut at, end) = (s0 * SECTOR, (s1 * SECTOR).min(h.size));
        while at < end {
            let n = CHUNK.min(end - at) as usize;
            hf::read_exact_at(&cf, &mut buf[..n], h.data_offset + at)
                .map_err(io_err("read", cow_path))?;
            hf::write_all_at(&bf, &buf[..n], at).map_err(io_err("write", &bpath))?;
            at += n as u64;
        }
    }
    hf::sync_data(&bf).map_err(io_err("sync", &bpath))?;
    Ok((
        MergeStats {
            size: h.size,
            cow_sectors: copied,
        },
        bpath,
    ))
}

fn lock_err(path: &Path, e: hf::LockError) -> BlockError {
    match e {
        hf::LockError::Held { pid } => BlockError::Locked {
            path: path.to_path_buf(),
            pid,
        },
        hf::LockError::Io(source) => BlockError::Lock {
            path: path.to_path_buf(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_to_and_in_place_agree() {
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("b.img");
        std::fs::write(&back, vec![3u8; 20_480]).unwrap();
        let c = dir.path().join("c.cow");
        cow::create(&c, &back).unwrap();
        {
            let u = Ubd::open(&UbdSpec {
                index: 0,
                flags: UbdFlags::default(),
                file: c.clone(),
                backing: None,
                mode: UbdMode::Copy,
            })
            .unwrap();
            u.write_at(1000, &[9; 3000]).unwrap();
        }
        let out = dir.path().join("out.img");
        let st = merge_to(&c, None, &out, BackingPolicy::Beside).unwrap();
        assert_eq!(st.cow_sectors, 7);
        let mut want = vec![3u8; 20_480];
        want[1000..4000].fill(9);
        assert_eq!(std::fs::read(&out).unwrap(), want);
        assert!(matches!(
            merge_to(&c, None, &out, BackingPolicy::Beside),
            Err(BlockError::Exists { .. })
        ));
        let e = merge_to(&back, None, &dir.path().join("x"), BackingPolicy::Beside).unwrap_err();
        assert!(e.to_string().contains("not a COW file"), "{e}");
        merge_in_place(&c, None, BackingPolicy::Beside).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), want);
    }
}
