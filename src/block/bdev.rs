//! What a guest sees through an open /dev/ubdX, apart from the kernel:
//! reads and writes of any size and alignment (Linux's `blkdev_read_iter`
//! and `blkdev_write_iter`: short at the end, ENOSPC at and past it, EPERM
//! on a read-only disk), `lseek` on a fixed-size file, and the block
//! ioctls mke2fs, e2fsck, mkswap, blockdev and fdisk use (block/ioctl.c,
//! UML's `ubd_getgeo`). Data goes straight to the `Ubd` (COW-aware); the
//! block layer has no buffer cache of its own, so there is nothing to
//! invalidate.

use super::{BlockError, Ubd};
use crate::errno::{Errno, KResult};

/// Bytes per sector (the logical and physical block size of a ubd).
pub const SECTOR: u64 = 512;

pub const BLKROGET: u32 = 0x125e;
pub const BLKRRPART: u32 = 0x125f;
pub const BLKGETSIZE: u32 = 0x1260;
pub const BLKFLSBUF: u32 = 0x1261;
pub const BLKSSZGET: u32 = 0x1268;
pub const BLKBSZGET: u32 = 0x8008_1270;
pub const BLKGETSIZE64: u32 = 0x8008_1272;
pub const BLKDISCARD: u32 = 0x1277;
pub const BLKIOMIN: u32 = 0x1278;
pub const BLKIOOPT: u32 = 0x1279;
pub const BLKALIGNOFF: u32 = 0x127a;
pub const BLKPBSZGET: u32 = 0x127b;
pub const BLKDISCARDZEROES: u32 = 0x127c;
pub const BLKZEROOUT: u32 = 0x127f;
pub const HDIO_GETGEO: u32 = 0x0301;

/// The bytes an ioctl answers into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `int` / `unsigned int`.
    U32(u32),
    /// `unsigned long` / `u64`.
    U64(u64),
    /// `struct hd_geometry`: heads, sectors, cylinders, 4 bytes of
    /// padding, start (16 bytes).
    Geometry([u8; 16]),
}

impl Reply {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::U32(v) => v.to_le_bytes().to_vec(),
            Reply::U64(v) => v.to_le_bytes().to_vec(),
            Reply::Geometry(b) => b.to_vec(),
        }
    }
}

fn io(e: BlockError) -> Errno {
    log::warn!("ubd: {e}");
    Errno::EIO
}

/// read(2) at `pos`: 0 at or past the end, short before it.
pub fn read(ubd: &Ubd, pos: u64, buf: &mut [u8]) -> KResult<usize> {
    let size = ubd.size();
    if pos >= size {
        return Ok(0);
    }
    let n = (size - pos).min(buf.len() as u64) as usize;
    ubd.read_at(pos, &mut buf[..n]).map_err(io)?;
    Ok(n)
}

/// write(2) at `pos`: EPERM on a read-only disk, ENOSPC at or past the
/// end, short before it.
pub fn write(ubd: &Ubd, pos: u64, data: &[u8]) -> KResult<usize> {
    if ubd.read_only() {
        return Err(Errno::EPERM);
    }
    if data.is_empty() {
        return Ok(0);
    }
    let size = ubd.size();
    if pos >= size {
        return Err(Errno::ENOSPC);
    }
    let n = (size - pos).min(data.len() as u64) as usize;
    ubd.write_at(pos, &data[..n]).map_err(io)?;
    Ok(n)
}

/// lseek(2) on a device of `size` bytes (Linux `fixed_size_llseek`):
/// no offset past the end; SEEK_DATA/SEEK_HOLE see all data.
pub fn seek(size: u64, cur: u64, off: i64, whence: u64) -> KResult<u64> {
    let size_i = i64::try_from(size).map_err(|_| Errno::EOVERFLOW)?;
    let cur = i64::try_from(cur).map_err(|_| Errno::EOVERFLOW)?;
    let new = match whence {
        0 => Some(off),
        1 => cur.checked_add(off),
        2 => size_i.checked_add(off),
        3 if off >= 0 && off < size_i => Some(off),
        4 if off >= 0 && off < size_i => Some(size_i),
        3 | 4 => return Err(Errno::ENXIO),
        _ => return Err(Errno::EINVAL),
    };
    match new {
        Some(n) if n >= 0 && n <= size_i => Ok(n as u64),
        _ => Err(Errno::EINVAL),
    }
}

/// The soft block size Linux gives a freshly opened disk
/// (`set_init_blocksize`): the largest power of two up to a page that
/// divides the size.
pub fn init_block_size(size: u64) -> u32 {
    let mut bs = SECTOR;
    while bs < 4096 && size & bs == 0 {
        bs <<= 1;
    }
    bs as u32
}

/// UML's `ubd_getgeo`: 128 heads, 32 sectors, as many cylinders as fit.
pub fn geometry(size: u64) -> [u8; 16] {
    let cylinders = (size / SECTOR / (128 * 32)).min(u16::MAX as u64) as u16;
    let mut g = [0u8; 16];
    g[0] = 128;
    g[1] = 32;
    g[2..4].copy_from_slice(&cylinders.to_le_bytes());
    g
}

/// The ioctls that only report: None if `req` is not one of them.
pub fn query(ubd: &Ubd, req: u32) -> Option<Reply> {
    let size = ubd.size();
    Some(match req {
        BLKGETSIZE64 => Reply::U64(size),
        BLKGETSIZE => Reply::U64(size / SECTOR),
        BLKSSZGET | BLKPBSZGET | BLKIOMIN => Reply::U32(SECTOR as u32),
        BLKBSZGET => Reply::U32(init_block_size(size)),
        BLKIOOPT | BLKALIGNOFF | BLKDISCARDZEROES => Reply::U32(0),
        BLKROGET => Reply::U32(ubd.read_only() as u32),
        HDIO_GETGEO => Reply::Geometry(geometry(size)),
        _ => return None,
    })
}

/// Checks a BLKDISCARD/BLKZEROOUT range {start, len} (bytes): whole
/// sectors, inside the disk.
pub fn check_range(ubd: &Ubd, start: u64, len: u64) -> KResult<()> {
    if !start.is_multiple_of(SECTOR) || !len.is_multiple_of(SECTOR) {
        return Err(Errno::EINVAL);
    }
    match start.checked_add(len) {
        Some(end) if end <= ubd.size() => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// BLKDISCARD of a checked range (the opener must have it open for
/// writing: EBADF is the caller's). EOPNOTSUPP on a COW disk, or where the
/// host cannot punch holes.
pub fn discard(ubd: &Ubd, start: u64, len: u64) -> KResult<()> {
    if ubd.read_only() {
        return Err(Errno::EPERM);
    }
    check_range(ubd, start, len)?;
    match ubd.discard(start, len) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Errno::EOPNOTSUPP),
        Err(e) => Err(io(e)),
    }
}

/// BLKZEROOUT: the range reads as zeros afterwards, on any disk (a raw
/// image punches where the host can, else zeros are written; a COW disk
/// gets zeros written into the COW file).
pub fn zero_out(ubd: &Ubd, start: u64, len: u64) -> KResult<()> {
    if ubd.read_only() {
        return Err(Errno::EPERM);
    }
    check_range(ubd, start, len)?;
    if ubd.cow_header().is_none() && matches!(ubd.discard(start, len), Ok(true)) {
        return Ok(());
    }
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    let mut at = start;
    let end = start + len;
    while at < end {
        let n = (end - at).min(CHUNK) as usize;
        ubd.write_at(at, &zeros[..n]).map_err(io)?;
        at += n as u64;
    }
    Ok(())
}

/// BLKFLSBUF / fsync: what was written reaches the host disk.
pub fn flush(ubd: &Ubd) -> KResult<()> {
    ubd.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::cow;
    use crate::config::{UbdFlags, UbdMode, UbdSpec};
    use std::path::Path;

    fn open(file: &Path, backing: Option<&Path>, read_only: bool) -> Ubd {
        Ubd::open(&UbdSpec {
            index: 1,
            flags: UbdFlags {
                read_only,
                ..UbdFlags::default()
            },
            file: file.to_path_buf(),
            backing: backing.map(Path::to_path_buf),
            mode: UbdMode::Copy,
        })
        .unwrap()
    }

    fn raw(dir: &Path, size: usize) -> std::path::PathBuf {
        let p = dir.join("raw.img");
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn reads_and_writes_of_any_alignment_and_the_end() {
        let d = tempfile::tempdir().unwrap();
        let u = open(&raw(d.path(), 8192 + 100), None, false);
        assert_eq!(
            u.size(),
            8192,
            "a partial last sector is not part of the disk"
        );
        let mut b = vec![0u8; 10];
        assert_eq!(read(&u, 3, &mut b), Ok(10));
        assert_eq!(b, (3..13).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!(write(&u, 8190, b"abcd"), Ok(2), "short at the end");
        assert_eq!(write(&u, 8192, b"x"), Err(Errno::ENOSPC));
        assert_eq!(write(&u, u64::MAX, b"x"), Err(Errno::ENOSPC));
        assert_eq!(write(&u, 8192, b""), Ok(0));
        assert_eq!(read(&u, 8190, &mut b), Ok(2));
        assert_eq!(&b[..2], b"ab");
        assert_eq!(read(&u, 8192, &mut b), Ok(0));
        assert_eq!(read(&u, u64::MAX, &mut b), Ok(0));
        assert_eq!(write(&u, 777, b"odd bytes"), Ok(9));
        let host = std::fs::read(d.path().join("raw.img")).unwrap();
        assert_eq!(&host[777..786], b"odd bytes");
    }

    #[test]
    fn writes_to_a_cow_disk_leave_the_backing_file_alone() {
        let d = tempfile::tempdir().unwrap();
        let back = raw(d.path(), 8192);
        let c = d.path().join("d.cow");
        cow::create(&c, &back).unwrap();
        let u = open(&c, None, false);
        assert_eq!(write(&u, 1000, b"xyz"), Ok(3));
        let mut b = [0u8; 5];
        assert_eq!(read(&u, 999, &mut b), Ok(5));
        assert_eq!(
            &b,
            &[(999 % 251) as u8, b'x', b'y', b'z', (1003 % 251) as u8]
        );
        assert_eq!(std::fs::read(&back).unwrap()[1000], (1000 % 251) as u8);
        assert_eq!(discard(&u, 0, 512), Err(Errno::EOPNOTSUPP));
        zero_out(&u, 512, 1024).unwrap();
        let mut z = vec![1u8; 1024];
        read(&u, 512, &mut z).unwrap();
        assert!(z.iter().all(|&x| x == 0));
        assert_eq!(std::fs::read(&back).unwrap()[600], (600 % 251) as u8);
    }

    #[test]
    fn read_only_disk_refuses_writes_with_eperm() {
        let d = tempfile::tempdir().unwrap();
        let u = open(&raw(d.path(), 4096), None, true);
        assert_eq!(write(&u, 0, b"x"), Err(Errno::EPERM));
        assert_eq!(discard(&u, 0, 512), Err(Errno::EPERM));
        assert_eq!(zero_out(&u, 0, 512), Err(Errno::EPERM));
        assert_eq!(query(&u, BLKROGET), Some(Reply::U32(1)));
        let mut b = [0u8; 4];
        assert_eq!(read(&u, 0, &mut b), Ok(4));
    }

    #[test]
    fn seeking_stays_inside_the_device() {
        assert_eq!(seek(4096, 0, 0, 2), Ok(4096));
        assert_eq!(seek(4096, 0, -96, 2), Ok(4000));
        assert_eq!(seek(4096, 0, 1, 2), Err(Errno::EINVAL), "past the end");
        assert_eq!(seek(4096, 100, 50, 1), Ok(150));
        assert_eq!(seek(4096, 100, -101, 1), Err(Errno::EINVAL));
        assert_eq!(seek(4096, 0, i64::MAX, 1), Err(Errno::EINVAL));
        assert_eq!(seek(4096, 0, 10, 3), Ok(10));
        assert_eq!(seek(4096, 0, 10, 4), Ok(4096));
        assert_eq!(seek(4096, 0, 4096, 3), Err(Errno::ENXIO));
        assert_eq!(seek(4096, 0, 0, 5), Err(Errno::EINVAL));
    }

    #[test]
    fn ioctl_answers() {
        let d = tempfile::tempdir().unwrap();
        let u = open(&raw(d.path(), 16 << 20), None, false);
        assert_eq!(query(&u, BLKGETSIZE64), Some(Reply::U64(16 << 20)));
        assert_eq!(query(&u, BLKGETSIZE), Some(Reply::U64(32768)));
        assert_eq!(query(&u, BLKSSZGET), Some(Reply::U32(512)));
        assert_eq!(query(&u, BLKPBSZGET), Some(Reply::U32(512)));
        assert_eq!(query(&u, BLKBSZGET), Some(Reply::U32(4096)));
        assert_eq!(query(&u, BLKROGET), Some(Reply::U32(0)));
        assert_eq!(query(&u, BLKFLSBUF), None, "a command, not a query");
        assert_eq!(query(&u, 0x5401), None, "TCGETS");
        let g = match query(&u, HDIO_GETGEO) {
            Some(Reply::Geometry(g)) => g,
            r => panic!("{r:?}"),
        };
        assert_eq!((g[0], g[1], u16::from_le_bytes([g[2], g[3]])), (128, 32, 8));
        assert_eq!(Reply::U32(7).bytes(), [7, 0, 0, 0]);
        assert_eq!(init_block_size(4096 * 3), 4096);
        assert_eq!(init_block_size(1024 * 3), 1024);
        assert_eq!(init_block_size(512 * 3), 512);
    }

    #[test]
    fn discard_and_zero_out_ranges() {
        let d = tempfile::tempdir().unwrap();
        let u = open(&raw(d.path(), 64 << 10), None, false);
        assert_eq!(check_range(&u, 1, 512), Err(Errno::EINVAL));
        assert_eq!(check_range(&u, 0, 511), Err(Errno::EINVAL));
        assert_eq!(check_range(&u, 0, (64 << 10) + 512), Err(Errno::EINVAL));
        assert_eq!(check_range(&u, u64::MAX - 511, 512), Err(Errno::EINVAL));
        assert_eq!(check_range(&u, 512, 1024), Ok(()));
        zero_out(&u, 4096, 8192).unwrap();
        let mut b = vec![1u8; 8192 + 2];
        read(&u, 4095, &mut b).unwrap();
        assert_eq!(b[0], (4095 % 251) as u8);
        assert!(b[1..8193].iter().all(|&x| x == 0));
        assert_eq!(b[8193], (12288 % 251) as u8);
        // Discard punches where the host can (tmpfs and ext4 can).
        match discard(&u, 32768, 4096) {
            Ok(()) => {
                let mut z = vec![1u8; 4096];
                read(&u, 32768, &mut z).unwrap();
                assert!(z.iter().all(|&x| x == 0));
            }
            Err(e) => assert_eq!(e, Errno::EOPNOTSUPP),
        }
        assert_eq!(discard(&u, 3, 512), Err(Errno::EINVAL));
    }
}
