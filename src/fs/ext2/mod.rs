//! ext2, revisions 0 and 1, block sizes 1, 2 and 4 KiB: read and write.
//!
//! | file            | owns |
//! |-----------------|------|
//! | `disklayout.rs` | on-disk structures (superblock, group descriptor, inode, dir entry) |
//! | `mount.rs`      | mount-time checks, geometry, superblock/descriptor write-back, sync, statfs |
//! | `inode.rs`      | loading (checked), storing, initialising and freeing inodes; `Stat` |
//! | `bmap.rs`       | file block -> disk block maps (direct, 1/2/3 indirect, holes), allocation, freeing |
//! | `alloc.rs`      | block and inode bitmaps, group and superblock free counts |
//! | `dir.rs`        | linear directories (htree directories read as linear) |
//! | `file.rs`       | regular file read, write, truncate |
//! | `namei.rs`      | create, mkdir, symlink, readlink, link, unlink, rmdir, rename, setattr |
//! | `xattr.rs`      | extended attributes in Linux's one-block-per-inode format |
//!
//! Locking: one `parking_lot::RwLock` around the whole file system state;
//! lookups, reads and stats share it, changes hold it exclusively. Every
//! public method takes it once, so internal code never re-locks.
//! Metadata is written through to the `BlockIo` at once, except the
//! superblock summary, written on `sync`/`unmount` (and on drop).
//!
//! Every value read from the device is checked before use; a bad one gives
//! EIO and a rate-limited log line.
//!
//! Not done: open-but-unlinked files (an inode is freed when its last link
//! goes; the VFS must hold off the final unlink until the last close, or we
//! add an orphan hook), reserved-block accounting for non-root users,
//! sharing xattr blocks between inodes (shared ones are read and copied on
//! change, never made).
#![deny(unsafe_code)]

mod alloc;
mod bmap;
mod dir;
pub mod disklayout;
mod file;
mod inode;
mod mount;
mod namei;
mod xattr;

use crate::errno::{Errno, KResult};
use crate::fs::blockio::BlockIo;
use disklayout::{GroupDesc, Superblock};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub type Ino = u32;

/// What `stat` reports. `mode` includes the `S_IF*` type bits; times are seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub ino: Ino,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte units, indirect blocks included.
    pub blocks: u64,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
    /// Linux `new_encode_dev` form (glibc `makedev` for major < 4096).
    pub rdev: u64,
    pub blksize: u32,
}

/// One directory entry, `.` and `..` included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub name: Vec<u8>,
    /// A Linux `DT_*` value.
    pub file_type: u8,
}

/// Attribute changes; `None` leaves a field alone. `mode` keeps the file type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<i64>,
    pub mtime: Option<i64>,
    pub size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub block_size: u32,
    pub blocks: u64,
    pub free_blocks: u64,
    /// Free blocks minus the root-reserved ones.
    pub avail_blocks: u64,
    pub files: u64,
    pub free_files: u64,
    pub name_max: u32,
}

/// Sizes derived from the superblock once at mount (all checked there).
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    pub block_size: u32,
    pub blocks_count: u32,
    pub first_data_block: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub inodes_count: u32,
    pub inode_size: u32,
    pub first_ino: u32,
    pub groups: u32,
    pub itb_per_group: u32,
    pub filetype: bool,
    pub ptrs_per_block: u64,
    /// The largest file size the block map can address.
    pub max_file_size: u64,
}

/// The mutable file system state behind the lock.
pub(crate) struct Fs {
    pub dev: Arc<dyn BlockIo>,
    pub read_only: bool,
    pub geo: Geometry,
    pub sb: Superblock,
    pub gds: Vec<GroupDesc>,
    /// First block of the group descriptor table.
    pub gdt_start: u32,
    /// Free counts or features changed since the superblock was last written.
    pub sb_dirty: bool,
    pub unmounted: bool,
    pub generation: u32,
}

static CORRUPT_LOGS: AtomicU64 = AtomicU64::new(0);

/// Log a corruption (the first 64, then every 1024th: a hostile image must
/// not flood the host log) and return EIO.
pub(crate) fn corrupt(what: std::fmt::Arguments) -> Errno {
    let n = CORRUPT_LOGS.fetch_add(1, Ordering::Relaxed);
    if n < 64 || n.is_multiple_of(1024) {
        log::warn!("ext2: corrupt file system: {what}");
    }
    Errno::EIO
}

pub(crate) fn io_error(what: &str, e: std::io::Error) -> Errno {
    let n = CORRUPT_LOGS.fetch_add(1, Ordering::Relaxed);
    if n < 64 || n.is_multiple_of(1024) {
        log::warn!("ext2: device error during {what}: {e}");
    }
    Errno::EIO
}

/// Seconds since the epoch, as ext2 stores them.
pub(crate) fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Fs {
    /// Fail writes on a read-only mount.
    pub fn check_rw(&self) -> KResult<()> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// A block number is usable as data or metadata.
    pub fn check_block(&self, b: u32, what: &str) -> KResult<u32> {
        if b < self.geo.first_data_block || b >= self.geo.blocks_count {
            return Err(corrupt(format_args!("{what}: block {b} out of range")));
        }
        Ok(b)
    }

    pub fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> KResult<()> {
        self.dev
            .read_at(offset, buf)
            .map_err(|e| io_error("read", e))
    }

    pub fn write_bytes(&self, offset: u64, data: &[u8]) -> KResult<()> {
        self.check_rw()?;
        self.dev
            .write_at(offset, data)
            .map_err(|e| io_error("write", e))
    }

    pub fn block_offset(&self, b: u32) -> u64 {
        b as u64 * self.geo.block_size as u64
    }

    pub fn read_block(&self, b: u32) -> KResult<Vec<u8>> {
        let mut buf = vec![0u8; self.geo.block_size as usize];
        self.read_bytes(self.block_offset(b), &mut buf)?;
        Ok(buf)
    }

    pub fn write_block(&self, b: u32, data: &[u8]) -> KResult<()> {
        debug_assert_eq!(data.len(), self.geo.block_size as usize);
        self.write_bytes(self.block_offset(b), data)
    }

    pub fn zero_block(&self, b: u32) -> KResult<()> {
        self.write_block(b, &vec![0u8; self.geo.block_size as usize])
    }
}

/// A mounted ext2 file system. Send + Sync; all methods lock internally.
pub struct Ext2 {
    fs: RwLock<Fs>,
    block_size: u32,
}

impl Ext2 {
    /// Check the superblock and descriptors and mount. Unsupported incompat
    /// features give EINVAL (logged); unknown ro-compat ones force `read_only`.
    pub fn mount(dev: Arc<dyn BlockIo>, read_only: bool) -> Result<Ext2, Errno> {
        let fs = Fs::mount(dev, read_only)?;
        let block_size = fs.geo.block_size;
        Ok(Ext2 {
            fs: RwLock::new(fs),
            block_size,
        })
    }

    pub fn root(&self) -> Ino {
        disklayout::ROOT_INO
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    pub fn stat(&self, ino: Ino) -> KResult<Stat> {
        let fs = self.fs.read();
        let i = fs.load_inode(ino)?;
        Ok(fs.stat_of(&i))
    }

    pub fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        self.fs.read().lookup(dir, name)
    }

    pub fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        self.fs.read().readdir(dir)
    }

    pub fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        self.fs.read().read(ino, offset, buf)
    }

    pub fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        self.fs.write().write(ino, offset, data)
    }

    pub fn truncate(&self, ino: Ino, size: u64) -> KResult<()> {
        self.fs.write().truncate(ino, size)
    }

    /// Allocates the holes under 4 KiB page `page` of regular file `ino`
    /// (up to its size), zeroed on disk.
    pub fn allocate_page(&self, ino: Ino, page: u64) -> KResult<()> {
        if self.fs.read().page_allocated(ino, page)? {
            return Ok(());
        }
        self.fs.write().allocate_page(ino, page)
    }

    /// The disk block holding file block `file_block`, or None for a hole.
    pub fn bmap(&self, ino: Ino, file_block: u64) -> KResult<Option<u64>> {
        let fs = self.fs.read();
        let i = fs.load_inode(ino)?;
        Ok(fs.bmap(&i, file_block)?.map(u64::from))
    }

    /// Like `bmap`, but a hole gets a fresh zeroed block. The file size is
    /// not changed: the caller sets it (setattr/truncate) after writing.
    pub fn bmap_alloc(&self, ino: Ino, file_block: u64) -> KResult<u64> {
        let mut fs = self.fs.write();
        fs.check_rw()?;
        let mut i = fs.load_inode(ino)?;
        if !i.raw.is_reg() && !i.raw.is_dir() {
            return Err(Errno::EINVAL);
        }
        let r = fs.bmap_alloc(&mut i, file_block, true);
        // indirect blocks may have been attached even if the last step failed
        fs.write_inode(&i)?;
        Ok(r?.0 as u64)
    }

    /// Make a regular file, fifo, character or block device, or socket.
    pub fn create(
        &self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u32,
    ) -> KResult<Ino> {
        self.fs.write().create(dir, name, mode, uid, gid, rdev)
    }

    pub fn mkdir(&self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> KResult<Ino> {
        self.fs.write().mkdir(dir, name, mode, uid, gid)
    }

    pub fn symlink(
        &self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> KResult<Ino> {
        self.fs.write().symlink(dir, name, target, uid, gid)
    }

    pub fn readlink(&self, ino: Ino) -> KResult<Vec<u8>> {
        self.fs.read().readlink(ino)
    }

    pub fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> KResult<()> {
        self.fs.write().link(ino, dir, name)
    }

    /// Remove a name; the inode and its blocks are freed with the last link.
    pub fn unlink(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        self.fs.write().unlink(dir, name)
    }

    pub fn rmdir(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        self.fs.write().rmdir(dir, name)
    }

    pub fn rename(&self, odir: Ino, oname: &[u8], ndir: Ino, nname: &[u8]) -> KResult<()> {
        self.fs.write().rename(odir, oname, ndir, nname)
    }

    pub fn setattr(&self, ino: Ino, attr: SetAttr) -> KResult<()> {
        self.fs.write().setattr(ino, &attr)
    }

    pub fn statfs(&self) -> StatFs {
        self.fs.read().statfs()
    }

    /// Write the superblock summary and flush the device.
    pub fn sync(&self) -> KResult<()> {
        self.fs.write().sync()
    }

    /// Sync and mark the file system clean; later writes fail with EROFS.
    pub fn unmount(&self) -> KResult<()> {
        self.fs.write().unmount()
    }

    /// Switch between read-only and read-write (see `Fs::remount`).
    pub fn remount(&self, read_only: bool) -> KResult<()> {
        self.fs.write().remount(read_only)
    }

    /// An extended attribute's value (`name` with its namespace prefix).
    pub fn xattr_get(&self, ino: Ino, name: &[u8]) -> KResult<Vec<u8>> {
        self.fs.read().xattr_get(ino, name)
    }

    /// Every attribute name, with its prefix.
    pub fn xattr_list(&self, ino: Ino) -> KResult<Vec<Vec<u8>>> {
        self.fs.read().xattr_list(ino)
    }

    /// Set (`Some`) or remove (`None`) an attribute; `flags`: XATTR_CREATE 1,
    /// XATTR_REPLACE 2.
    pub fn xattr_set(
        &self,
        ino: Ino,
        name: &[u8],
        value: Option<&[u8]>,
        flags: u32,
    ) -> KResult<()> {
        self.fs.write().xattr_set(ino, name, value, flags)
    }

    pub fn is_read_only(&self) -> bool {
        self.fs.read().read_only
    }
}

impl Drop for Ext2 {
    fn drop(&mut self) {
        let fs = self.fs.get_mut();
        if !fs.unmounted {
            if let Err(e) = fs.unmount() {
                log::warn!("ext2: unmount on drop failed: {e}");
            }
        }
    }
}
