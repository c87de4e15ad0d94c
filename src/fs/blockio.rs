//! The byte-addressed device a file system reads and writes: a trait plus
//! two plain implementations (a host file, a Vec in memory) for tests and tools.
#![deny(unsafe_code)]

use parking_lot::RwLock;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A random-access block device. Offsets are bytes; callers keep them in range.
pub trait BlockIo: Send + Sync {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn size(&self) -> u64;
    fn flush(&self) -> io::Result<()>;
}

fn out_of_range(offset: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("access {offset}+{len} past device end {size}"),
    )
}

/// A host file as a block device (positional I/O, no shared cursor).
pub struct FileBlockIo {
    file: File,
    size: u64,
}

impl FileBlockIo {
    pub fn new(file: File) -> io::Result<FileBlockIo> {
        let size = file.metadata()?.len();
        Ok(FileBlockIo { file, size })
    }

    pub fn open(path: &std::path::Path, writable: bool) -> io::Result<FileBlockIo> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)?;
        FileBlockIo::new(file)
    }
}

impl BlockIo for FileBlockIo {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(out_of_range(offset, buf.len(), self.size));
        }
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(out_of_range(offset, data.len(), self.size));
        }
        self.file.write_all_at(data, offset)
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// A device held in memory (tests, scratch images).
pub struct MemBlockIo {
    data: RwLock<Vec<u8>>,
}

impl MemBlockIo {
    pub fn new(data: Vec<u8>) -> MemBlockIo {
        MemBlockIo {
            data: RwLock::new(data),
        }
    }

    /// A copy of the current contents.
    pub fn snapshot(&self) -> Vec<u8> {
        self.data.read().clone()
    }
}

impl BlockIo for MemBlockIo {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self.data.read();
        let size = data.len() as u64;
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= size => {
                buf.copy_from_slice(&data[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(out_of_range(offset, buf.len(), size)),
        }
    }

    fn write_at(&self, offset: u64, src: &[u8]) -> io::Result<()> {
        let mut data = self.data.write();
        let size = data.len() as u64;
        match offset.checked_add(src.len() as u64) {
            Some(end) if end <= size => {
                data[offset as usize..end as usize].copy_from_slice(src);
                Ok(())
            }
            _ => Err(out_of_range(offset, src.len(), size)),
        }
    }

    fn size(&self) -> u64 {
        self.data.read().len() as u64
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_bounds_checked() {
        let m = MemBlockIo::new(vec![0; 16]);
        m.write_at(8, &[1, 2, 3]).unwrap();
        let mut b = [0u8; 3];
        m.read_at(8, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        assert!(m.read_at(14, &mut b).is_err());
        assert!(m.write_at(u64::MAX, &b).is_err());
    }

    #[test]
    fn file_roundtrip() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(4096).unwrap();
        let d = FileBlockIo::new(f).unwrap();
        d.write_at(100, b"hello").unwrap();
        let mut b = [0u8; 5];
        d.read_at(100, &mut b).unwrap();
        assert_eq!(&b, b"hello");
        assert!(d.read_at(4094, &mut b).is_err());
    }
}
