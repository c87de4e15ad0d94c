//! UML COW files: the header format (`header.rs`) and the file-level steps
//! shared by ubd and `umlcow`: create, read the header, load the bitmap,
//! check the backing file the way UML does at open; `confine.rs`: which
//! backing file a header may name (`cow_backing=`).

pub mod confine;
mod header;

pub use header::*;

use std::fs::File;
use std::path::Path;

use super::bitmap::Bitmap;
use super::error::{io_err, BlockError};
use crate::host::file as hf;

/// Creates a sparse v3 COW file over `backing`, byte-identical to what
/// `uml_mkcow` writes: header, then one zero byte at `data_offset + size - 1`.
pub fn create(cow_path: &Path, backing: &Path) -> Result<CowHeader, BlockError> {
    let abs = hf::absolute_path(backing).map_err(|source| BlockError::BackingMissing {
        cow: cow_path.to_path_buf(),
        backing: backing.to_path_buf(),
        source,
    })?;
    let st = hf::stat_path(&abs).map_err(|source| BlockError::BackingMissing {
        cow: cow_path.to_path_buf(),
        backing: abs.clone(),
        source,
    })?;
    let header =
        CowHeader::new_v3(&abs, st.mtime as u32, st.size).map_err(|source| BlockError::Format {
            path: cow_path.to_path_buf(),
            source,
        })?;
    let bytes = header.serialize_v3().map_err(|source| BlockError::Format {
        path: cow_path.to_path_buf(),
        source,
    })?;
    let file = hf::create_new(cow_path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            BlockError::Exists {
                path: cow_path.to_path_buf(),
            }
        } else if hf::is_erofs(&source) {
            BlockError::ReadOnlyFs {
                path: cow_path.to_path_buf(),
            }
        } else {
            BlockError::Open {
                path: cow_path.to_path_buf(),
                source,
            }
        }
    })?;
    let result = (|| {
        hf::write_all_at(&file, &bytes, 0).map_err(io_err("write header of", cow_path))?;
        let last = (header.data_offset + header.size).saturating_sub(1);
        hf::write_all_at(&file, &[0], last).map_err(io_err("extend", cow_path))?;
        hf::sync_data(&file).map_err(io_err("sync", cow_path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(cow_path);
    }
    result.map(|()| header)
}

/// Reads the header at the start of `file`. `Ok(None)`: no COW magic, a raw image.
pub fn read_header(file: &File, path: &Path) -> Result<Option<CowHeader>, BlockError> {
    let mut buf = vec![0u8; MAX_HEADER_LEN];
    let n = hf::read_up_to(file, &mut buf, 0).map_err(io_err("read header of", path))?;
    match CowHeader::parse(&buf[..n]) {
        Ok(h) => Ok(Some(h)),
        Err(CowFormatError::NotCow { .. }) | Err(CowFormatError::TooShortForMagic { .. }) => {
            Ok(None)
        }
        Err(source) => Err(BlockError::Format {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Like [`read_header`] but a missing header is an error (for `umlcow`).
pub fn read_header_required(file: &File, path: &Path) -> Result<CowHeader, BlockError> {
    let mut buf = vec![0u8; MAX_HEADER_LEN];
    let n = hf::read_up_to(file, &mut buf, 0).map_err(io_err("read header of", path))?;
    CowHeader::parse(&buf[..n]).map_err(|source| BlockError::Format {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads the bitmap; a file too short to hold it is an error.
pub fn load_bitmap(file: &File, path: &Path, h: &CowHeader) -> Result<Bitmap, BlockError> {
    let have = hf::stat_file(file).map_err(io_err("stat", path))?.size;
    let need = h.bitmap_offset + h.bitmap_len;
    if have < need {
        return Err(BlockError::BitmapTruncated {
            path: path.to_path_buf(),
            have,
            need,
        });
    }
    let mut bytes = vec![0u8; h.bitmap_len as usize];
    hf::read_exact_at(file, &mut bytes, h.bitmap_offset).map_err(io_err("read bitmap of", path))?;
    Ok(Bitmap::from_bytes(bytes, h.sectors()))
}

/// UML's `backing_file_mismatch`: the backing file must exist and have the
/// size and mtime the header recorded.
pub fn check_backing(cow: &Path, h: &CowHeader, backing: &Path) -> Result<(), BlockError> {
    let st = hf::stat_path(backing).map_err(|source| BlockError::BackingMissing {
        cow: cow.to_path_buf(),
        backing: backing.to_path_buf(),
        source,
    })?;
    if st.size != h.size {
        return Err(BlockError::SizeMismatch {
            cow: cow.to_path_buf(),
            backing: backing.to_path_buf(),
            header: h.size,
            actual: st.size,
        });
    }
    if st.mtime != h.mtime as i64 {
        return Err(BlockError::MtimeMismatch {
            cow: cow.to_path_buf(),
            backing: backing.to_path_buf(),
            header: h.mtime as i64,
            actual: st.mtime,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_sparse_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("b.img");
        std::fs::write(&back, vec![7u8; 10_000]).unwrap();
        let cow = dir.path().join("c.cow");
        let h = create(&cow, &back).unwrap();
        let len = std::fs::metadata(&cow).unwrap().len();
        assert_eq!(len, h.data_offset + h.size);
        let f = File::open(&cow).unwrap();
        let h2 = read_header(&f, &cow).unwrap().unwrap();
        assert_eq!(h, h2);
        assert_eq!(load_bitmap(&f, &cow, &h).unwrap().count(), 0);
        check_backing(&cow, &h, &back).unwrap();
        assert!(matches!(
            create(&cow, &back),
            Err(BlockError::Exists { .. })
        ));
    }

    #[test]
    fn raw_file_has_no_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("raw");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        let f = File::open(&p).unwrap();
        assert!(read_header(&f, &p).unwrap().is_none());
        assert!(read_header_required(&f, &p).is_err());
    }
}
