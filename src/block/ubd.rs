//! A ubd block device: a raw image, or a COW file over a read-only backing
//! file, read and written at any byte offset (split by 512-byte sector).
//!
//! Locking: `writer` serialises all writes (partial-sector read-modify-write
//! and copy-up must not interleave); `bitmap` is an RwLock taken briefly to
//! choose a file per sector run and, by writers, to set bits and write the
//! changed bitmap bytes. Lock order: `writer`, then `bitmap`. Reads take only
//! `bitmap`, so they run in parallel.
//!
//! Write order: data, then bitmap bits (a crash in between loses that write
//! only). With the `s` flag both files are O_SYNC so the order reaches the disk.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::bitmap::Bitmap;
use super::cow::confine::{self, BackingPolicy};
use super::cow::{self, CowHeader, SECTOR_SIZE};
use super::error::{io_err, BlockError};
use crate::config::{UbdMode, UbdSpec};
use crate::host::file as hf;

const SECTOR: u64 = SECTOR_SIZE as u64;
/// Bytes of a page the mmap mode substitutes.
pub const PAGE_SIZE: u64 = crate::abi::PAGE;
const SECTORS_PER_PAGE: u64 = PAGE_SIZE / SECTOR;

/// Where one 4 KiB page of the disk lives, for mapping it into guest memory.
#[derive(Debug, Clone)]
pub struct PageMapping {
    pub file: Arc<File>,
    /// 4096-aligned offset of the page in `file`.
    pub offset: u64,
    /// False for the backing file and read-only devices.
    pub writable: bool,
}

struct CowDisk {
    cow: Arc<File>,
    backing: Arc<File>,
    backing_path: PathBuf,
    header: CowHeader,
    bitmap: RwLock<Bitmap>,
}

enum Kind {
    Raw(Arc<File>),
    Cow(CowDisk),
}

/// One open ubd device. Send + Sync; see the module notes for locking.
pub struct Ubd {
    path: PathBuf,
    size: u64,
    read_only: bool,
    mode: UbdMode,
    kind: Kind,
    writer: Mutex<()>,
}

fn open_err(path: &Path, source: std::io::Error) -> BlockError {
    if hf::is_erofs(&source) {
        BlockError::ReadOnlyFs {
            path: path.to_path_buf(),
        }
    } else {
        BlockError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn lock(file: &File, path: &Path, kind: hf::LockKind) -> Result<(), BlockError> {
    hf::try_lock(file, kind).map_err(|e| match e {
        hf::LockError::Held { pid } => BlockError::Locked {
            path: path.to_path_buf(),
            pid,
        },
        hf::LockError::Io(source) => BlockError::Lock {
            path: path.to_path_buf(),
            source,
        },
    })
}

impl Ubd {
    /// Opens the device the way UML's `open_ubd_file` does: lock (unless
    /// `c`), detect a COW header (unless `d`), take the backing path from
    /// the switch if given, else from the header, and refuse a backing file
    /// whose size or mtime differ from the header. A missing COW file named
    /// with a backing file is created first, as UML does.
    ///
    /// The header's backing path is trusted as UML trusts it: for umlcow and
    /// tests. umlrun opens its disks with `open_confined`.
    pub fn open(spec: &UbdSpec) -> Result<Ubd, BlockError> {
        Ubd::open_confined(spec, BackingPolicy::Any)
    }

    /// `open`, but a backing file named only by the COW header is opened
    /// only when `policy` allows it (cow/confine.rs); one named by the
    /// switch always is.
    pub fn open_confined(spec: &UbdSpec, policy: BackingPolicy) -> Result<Ubd, BlockError> {
        let path = spec.file.clone();
        let f = spec.flags;
        let writable = !f.read_only;
        if writable && !f.no_cow && spec.backing.is_some() && !path.exists() {
            let backing = spec.backing.as_deref().expect("checked above");
            cow::create(&path, backing)?;
            log::info!("ubd{}: created COW file {}", spec.index, path.display());
        }
        let file = hf::open_disk(&path, writable, f.sync).map_err(|e| open_err(&path, e))?;
        if !f.shared {
            let kind = if writable {
                hf::LockKind::Exclusive
            } else {
                hf::LockKind::Shared
            };
            lock(&file, &path, kind)?;
        }
        let header = if f.no_cow {
            None
        } else {
            cow::read_header(&file, &path)?
        };
        let file = Arc::new(file);
        let Some(header) = header else {
            if let Some(b) = &spec.backing {
                return Err(BlockError::NotCowButBacking {
                    path,
                    backing: b.clone(),
                });
            }
            let size = hf::stat_file(&file).map_err(io_err("stat", &path))?.size / SECTOR * SECTOR;
            return Ok(Ubd {
                path,
                size,
                read_only: f.read_only,
                mode: spec.mode,
                kind: Kind::Raw(file),
                writer: Mutex::new(()),
            });
        };
        let backing_path = match &spec.backing {
            Some(b) => b.clone(),
            None => {
                confine::check(policy, &path, &header.backing_path)?;
                header.backing_path.clone()
            }
        };
        cow::check_backing(&path, &header, &backing_path)?;
        let backing = hf::open_disk(&backing_path, false, false).map_err(|source| {
            BlockError::BackingMissing {
                cow: path.clone(),
                backing: backing_path.clone(),
                source,
            }
        })?;
        if !f.shared {
            lock(&backing, &backing_path, hf::LockKind::Shared)?;
        }
        let bitmap = cow::load_bitmap(&file, &path, &header)?;
        log::debug!(
            "ubd{}: COW v{} {} over {}, {} of {} sectors present",
            spec.index,
            header.version,
            path.display(),
            backing_path.display(),
            bitmap.count(),
            header.sectors()
        );
        Ok(Ubd {
            path,
            size: header.size / SECTOR * SECTOR,
            read_only: f.read_only,
            mode: spec.mode,
            kind: Kind::Cow(CowDisk {
                cow: file,
                backing: Arc::new(backing),
                backing_path,
                header,
                bitmap: RwLock::new(bitmap),
            }),
            writer: Mutex::new(()),
        })
    }

    /// Bytes of the virtual disk: whole sectors only. Like UML (whose disk
    /// capacity is `size / 512` sectors) and `uml_moo` (whose merge drops it),
    /// a partial last sector of the file is not part of the disk.
    /// The host fds whose pages `page_mapping` may hand out: the stubs
    /// that map them must keep these open.
    pub fn host_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match &self.kind {
            Kind::Raw(f) => vec![f.as_raw_fd()],
            Kind::Cow(c) => vec![c.cow.as_raw_fd(), c.backing.as_raw_fd()],
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn mode(&self) -> UbdMode {
        self.mode
    }

    /// The file named on the switch.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The COW header, if the device is a COW file.
    pub fn cow_header(&self) -> Option<&CowHeader> {
        match &self.kind {
            Kind::Cow(c) => Some(&c.header),
            Kind::Raw(_) => None,
        }
    }

    /// The backing file in use, if the device is a COW file.
    pub fn backing_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Cow(c) => Some(&c.backing_path),
            Kind::Raw(_) => None,
        }
    }

    /// Sectors currently present in the COW file (0 for a raw image).
    pub fn cow_sectors(&self) -> u64 {
        match &self.kind {
            Kind::Cow(c) => c.bitmap.read().count(),
            Kind::Raw(_) => 0,
        }
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<(), BlockError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(BlockError::OutOfRange {
                path: self.path.clone(),
                offset,
                len: len as u64,
                size: self.size,
            }),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check_range(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        match &self.kind {
            Kind::Raw(f) => hf::read_exact_at(f, buf, offset).map_err(io_err("read", &self.path)),
            Kind::Cow(c) => self.cow_read(c, offset, buf),
        }
    }

    fn cow_read(&self, c: &CowDisk, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let end = offset + buf.len() as u64;
        let runs: Vec<_> = c
            .bitmap
            .read()
            .runs(offset / SECTOR, end.div_ceil(SECTOR))
            .collect();
        for (s0, s1, in_cow) in runs {
            let lo = (s0 * SECTOR).max(offset);
            let hi = (s1 * SECTOR).min(end);
            let dst = &mut buf[(lo - offset) as usize..(hi - offset) as usize];
            if in_cow {
                hf::read_exact_at(&c.cow, dst, c.header.data_offset + lo)
                    .map_err(io_err("read", &self.path))?;
            } else {
                hf::read_exact_at(&c.backing, dst, lo).map_err(io_err("read", &c.backing_path))?;
            }
        }
        Ok(())
    }

    /// Writes `data` at `offset`: into the COW file (whole sectors, a partial
    /// one completed from its current contents), then the bitmap bits.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly {
                path: self.path.clone(),
            });
        }
        self.check_range(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let c = match &self.kind {
            Kind::Raw(f) => {
                return hf::write_all_at(f, data, offset).map_err(io_err("write", &self.path))
            }
            Kind::Cow(c) => c,
        };
        let _w = self.writer.lock();
        let end = offset + data.len() as u64;
        let (s0, s1) = (offset / SECTOR, end.div_ceil(SECTOR));
        let lo = s0 * SECTOR;
        let hi = (s1 * SECTOR).min(self.size);
        let head_partial = lo < offset;
        let tail_partial = end < hi;
        let needs_fill = {
            let map = c.bitmap.read();
            (head_partial && !map.test(s0)) || (tail_partial && !map.test(s1 - 1))
        };
        if !needs_fill {
            hf::write_all_at(&c.cow, data, c.header.data_offset + offset)
                .map_err(io_err("write", &self.path))?;
        } else {
            // A sector first written in part: complete the partial end
            // sectors from their current contents (backing or COW).
            let mut buf = vec![0u8; (hi - lo) as usize];
            if head_partial {
                let n = (SECTOR.min(hi - lo)) as usize;
                self.cow_read(c, lo, &mut buf[..n])?;
            }
            if tail_partial {
                let t = (s1 - 1) * SECTOR;
                self.cow_read(c, t, &mut buf[(t - lo) as usize..])?;
            }
            buf[(offset - lo) as usize..(end - lo) as usize].copy_from_slice(data);
            hf::write_all_at(&c.cow, &buf, c.header.data_offset + lo)
                .map_err(io_err("write", &self.path))?;
        }
        self.set_bits(c, s0, s1)
    }

    fn set_bits(&self, c: &CowDisk, s0: u64, s1: u64) -> Result<(), BlockError> {
        let mut map = c.bitmap.write();
        let changed = map.set_range(s0, s1);
        if changed.is_empty() {
            return Ok(());
        }
        let bytes = &map.bytes()[changed.clone()];
        hf::write_all_at(&c.cow, bytes, c.header.bitmap_offset + changed.start as u64)
            .map_err(io_err("write bitmap of", &self.path))
    }

    /// Discards `len` bytes at `offset` (whole sectors): a raw image
    /// punches them out of the host file, so they read as zeros and the
    /// host disk space comes back. Returns false where discard is not
    /// supported: a COW disk (its sectors cannot go back to the backing
    /// file's) or a host file system that cannot punch.
    pub fn discard(&self, offset: u64, len: u64) -> Result<bool, BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly {
                path: self.path.clone(),
            });
        }
        self.check_range(offset, usize::try_from(len).unwrap_or(usize::MAX))?;
        match &self.kind {
            Kind::Cow(_) => Ok(false),
            Kind::Raw(f) => match hf::punch_hole(f, offset, len) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(false),
                Err(e) => Err(io_err("discard", &self.path)(e)),
            },
        }
    }

    /// `fdatasync` of the written file.
    pub fn flush(&self) -> Result<(), BlockError> {
        if self.read_only {
            return Ok(());
        }
        let f = match &self.kind {
            Kind::Raw(f) => f,
            Kind::Cow(c) => &c.cow,
        };
        hf::sync_data(f).map_err(io_err("sync", &self.path))
    }

    /// mmap mode: where page `page` can be mapped from, if its 8 sectors lie
    /// in one file at a 4096-aligned offset. `None` means: copy it.
    pub fn page_mapping(&self, page: u64) -> Option<PageMapping> {
        if self.mode != UbdMode::Mmap {
            return None;
        }
        let start = page.checked_mul(PAGE_SIZE)?;
        if start.checked_add(PAGE_SIZE)? > self.size {
            return None;
        }
        match &self.kind {
            Kind::Raw(f) => Some(PageMapping {
                file: f.clone(),
                offset: start,
                writable: !self.read_only,
            }),
            Kind::Cow(c) => {
                let s = page * SECTORS_PER_PAGE;
                let map = c.bitmap.read();
                let (_, end, in_cow) = map.runs(s, s + SECTORS_PER_PAGE).next()?;
                drop(map);
                if end != s + SECTORS_PER_PAGE {
                    return None;
                }
                if !in_cow {
                    return Some(PageMapping {
                        file: c.backing.clone(),
                        offset: start,
                        writable: false,
                    });
                }
                let offset = c.header.data_offset + start;
                (offset % PAGE_SIZE == 0).then(|| PageMapping {
                    file: c.cow.clone(),
                    offset,
                    writable: !self.read_only,
                })
            }
        }
    }

    /// mmap mode, before the guest writes page `page`: copy the page up
    /// into the COW file if any of it is still in the backing file (data,
    /// then bitmap) and return the writable mapping (`None`: use copy).
    pub fn prepare_write(&self, page: u64) -> Result<Option<PageMapping>, BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let start = page.saturating_mul(PAGE_SIZE);
        self.check_range(start, 1)?;
        if self.mode != UbdMode::Mmap || start + PAGE_SIZE > self.size {
            return Ok(None);
        }
        let c = match &self.kind {
            Kind::Raw(_) => return Ok(self.page_mapping(page)),
            Kind::Cow(c) => c,
        };
        let _w = self.writer.lock();
        let s = page * SECTORS_PER_PAGE;
        let all_in = {
            let map = c.bitmap.read();
            (s..s + SECTORS_PER_PAGE).all(|x| map.test(x))
        };
        if !all_in {
            let mut buf = vec![0u8; PAGE_SIZE as usize];
            self.cow_read(c, start, &mut buf)?;
            hf::write_all_at(&c.cow, &buf, c.header.data_offset + start)
                .map_err(io_err("copy up into", &self.path))?;
            self.set_bits(c, s, s + SECTORS_PER_PAGE)?;
        }
        Ok(self.page_mapping(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UbdFlags;

    fn spec(file: &Path, mode: UbdMode) -> UbdSpec {
        UbdSpec {
            index: 0,
            flags: UbdFlags::default(),
            file: file.to_path_buf(),
            backing: None,
            mode,
        }
    }

    fn setup(size: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("back.img");
        let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&back, &content).unwrap();
        let cow = dir.path().join("d.cow");
        cow::create(&cow, &back).unwrap();
        (dir, cow, content)
    }

    #[test]
    fn partial_sector_writes_keep_neighbours() {
        let (_d, cow, mut model) = setup(3100);
        model.truncate(3072);
        let u = Ubd::open(&spec(&cow, UbdMode::Copy)).unwrap();
        u.write_at(700, b"abc").unwrap();
        model[700..703].copy_from_slice(b"abc");
        u.write_at(2990, &[1; 10]).unwrap();
        model[2990..3000].fill(1);
        assert_eq!(u.size(), 3072);
        let mut got = vec![0u8; 3072];
        u.read_at(0, &mut got).unwrap();
        assert_eq!(got, model);
        assert_eq!(u.cow_sectors(), 2);
        assert!(matches!(
            u.read_at(3071, &mut [0u8; 2]),
            Err(BlockError::OutOfRange { .. })
        ));
    }

    #[test]
    fn raw_image_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.img");
        std::fs::write(&raw, vec![5u8; 8192]).unwrap();
        let u = Ubd::open(&spec(&raw, UbdMode::Mmap)).unwrap();
        assert!(u.cow_header().is_none());
        u.write_at(4096, b"zz").unwrap();
        let m = u.page_mapping(1).unwrap();
        assert_eq!((m.offset, m.writable), (4096, true));
        assert_eq!(&std::fs::read(&raw).unwrap()[4096..4098], b"zz");
    }
}
