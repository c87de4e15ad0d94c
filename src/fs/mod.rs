//! File systems and the interface the VFS uses to drive them.
//!
//! | file / dir  | owns |
//! |-------------|------|
//! | `mod.rs`    | the `FileSystem` trait every mounted file system implements (with its capabilities: `caches_reads`, `generated`, `page_mapping`, `magic_link`), and its value types |
//! | `blockio.rs`| the `BlockIo` trait file systems read their device through, and file/memory implementations |
//! | `ext2/`     | ext2 on a block device (revisions 0 and 1) |
//! | `ext2vol.rs`| ext2 on a ubd as a `FileSystem`; reads fill the page cache, `ubd=mmap` pages map the image |
//! | `tmpfs/`    | tmpfs: files in memory pages |
//! | `procfs/`   | /proc, generated at read time from the kernel's snapshot |
//! | `cgroupfs.rs`| cgroup2: the one control-group hierarchy (no controllers), processes moved by cgroup.procs |
//! | `devices.rs`| device numbers, the nodes of a fresh /dev, memory-device semantics |
//! | `pipe.rs`   | the pipe buffer (64 KiB ring, PIPE_BUF atomicity) |
//! | `tty/`      | the terminal line discipline and controlling-terminal state |
//!
//! What an *open* file does (read, poll, ioctl, ...) is not here: each
//! kind of open file implements `vfs::FileDescription` in
//! `kernel/files/`. A file system is never told apart by its type name;
//! the kernel asks its capabilities instead.
//!
//! The kernel is single-threaded (like UML's), so file systems are shared
//! as `Rc<dyn FileSystem>`; implementations may still be `Send + Sync`.

pub mod blockio;

/// The kernel event a pollable generated file follows: poll reports
/// POLLERR|POLLPRI once after each change, as Linux's mounts_poll and
/// swaps_poll (kernel/files/procfile.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollEvent {
    /// The mount table changed (mount, umount, remount).
    Mounts,
    /// A swap area was added or removed.
    Swaps,
}
pub mod cgroupfs;
pub mod devices;
pub mod devpts;
pub mod ext2;
pub mod ext2vol;
pub mod pipe;
pub mod procfs;
pub mod tmpfs;
pub mod tty;

pub use blockio::{BlockIo, FileBlockIo, MemBlockIo};

use std::fs::File;
use std::sync::Arc;

use crate::errno::{Errno, KResult};

/// An inode number, unique within one file system.
pub type Ino = u64;

/// File type bits of `st_mode` (as in Linux `S_IF*`).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;

/// `d_type` values for getdents64.
pub const DT_UNKNOWN: u8 = 0;
pub const DT_FIFO: u8 = 1;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_BLK: u8 = 6;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;
pub const DT_SOCK: u8 = 12;

/// What `stat` reports, in Linux units (times in seconds + nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub ino: Ino,
    /// Full `st_mode`: type bits and permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte units, as `st_blocks`.
    pub blocks: u64,
    pub blksize: u32,
    /// Device number for device nodes (Linux `new_encode_dev` layout).
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

/// One directory entry as `readdir` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub name: Vec<u8>,
    /// One of the `DT_*` values.
    pub file_type: u8,
}

/// Which attributes `setattr` changes; `None` leaves one alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits only (the type bits are kept).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

/// What `statfs` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatFs {
    /// The Linux magic, e.g. 0xEF53 for ext2.
    pub fs_type: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u64,
}

/// The operations the VFS needs from a mounted file system. Names are
/// byte strings (Linux file names are not UTF-8). Every method validates
/// its inputs: a corrupt image answers EIO, never panics.
pub trait FileSystem {
    /// The type name shown in /proc/mounts ("ext2", "proc", "tmpfs");
    /// only shown, never compared: behaviour hangs on the capabilities below.
    fn fs_type(&self) -> &'static str;
    fn root(&self) -> Ino;
    fn stat(&self, ino: Ino) -> KResult<Stat>;
    fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino>;
    fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>>;
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize>;
    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize>;
    fn truncate(&self, ino: Ino, size: u64) -> KResult<()>;
    /// Creates a regular file, fifo, socket or device node (`mode` holds
    /// the type bits).
    fn create(
        &self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
    ) -> KResult<Ino>;
    fn mkdir(&self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> KResult<Ino>;
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> KResult<Ino>;
    fn readlink(&self, ino: Ino) -> KResult<Vec<u8>>;
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> KResult<()>;
    fn unlink(&self, dir: Ino, name: &[u8]) -> KResult<()>;
    fn rmdir(&self, dir: Ino, name: &[u8]) -> KResult<()>;
    fn rename(&self, old_dir: Ino, old_name: &[u8], new_dir: Ino, new_name: &[u8]) -> KResult<()>;
    /// renameat2's RENAME_EXCHANGE: swap two existing entries (files or
    /// directories, across directories). Only file systems that support it
    /// override this; Linux's ext2 answers EINVAL, and so does the default.
    fn exchange(
        &self,
        _old_dir: Ino,
        _old_name: &[u8],
        _new_dir: Ino,
        _new_name: &[u8],
    ) -> KResult<()> {
        Err(Errno::EINVAL)
    }
    /// Whether renameat2's RENAME_WHITEOUT is supported (Linux: tmpfs and
    /// ext4 yes, ext2 EINVAL). The VFS makes the whiteout, a 0:0
    /// character device, after the rename.
    fn supports_whiteout(&self) -> bool {
        false
    }
    fn setattr(&self, ino: Ino, attr: &SetAttr) -> KResult<()>;
    fn statfs(&self) -> KResult<StatFs>;
    fn sync(&self) -> KResult<()>;

    /// `mount -o remount,ro|rw`: a disk file system writes back and marks
    /// itself clean going read-only, and in use going read-write. The
    /// mount's own read-only flag is the VFS's; memory file systems have
    /// nothing to do.
    fn remount(&self, _read_only: bool) -> KResult<()> {
        Ok(())
    }

    /// The last unmount (umount, shutdown): write everything back and, on
    /// a disk, mark the file system clean. Later writes fail.
    fn unmount(&self) -> KResult<()> {
        self.sync()
    }

    /// SEEK_DATA/SEEK_HOLE: the first page index at or after `from` that
    /// holds data (`data`) or is a hole (`!data`), None inside when there
    /// is none. A file system that keeps no holes answers None: the whole
    /// file is data (Linux's generic_file_llseek, as ext2 has).
    fn next_page(&self, _ino: Ino, _from: u64, _data: bool) -> Option<Option<u64>> {
        None
    }

    /// Reads should fill the page cache (a disk-backed file system: later
    /// reads and mappings are hits). A memory file system says no: its
    /// pages are memory already, and a read that misses the cache reads
    /// them directly.
    fn caches_reads(&self) -> bool {
        false
    }

    /// What changes generated file `ino` for poll(2) and epoll, where
    /// Linux gives the file a poll operation (/proc/<pid>/mounts and
    /// mountinfo, /proc/swaps); None: a plain regular file.
    fn poll_event(&self, _ino: Ino) -> Option<PollEvent> {
        None
    }

    /// The content is made from kernel state at each access (procfs): the
    /// kernel refreshes its snapshot before a read or a listing, and never
    /// caches the pages.
    fn generated(&self) -> bool {
        false
    }

    /// Where page `index` (4 KiB) of `ino` lies in a host file, when the
    /// device can map it instead of copying: `ubd=mmap`, 4 KiB blocks, all
    /// eight sectors in one file at an aligned offset. The page cache then
    /// substitutes that host page for a frame, so instances booted from one
    /// image share it. Returns (file, offset, writable).
    fn page_mapping(&self, _ino: Ino, _index: u64) -> Option<(Arc<File>, u64, bool)> {
        None
    }

    /// Readies page `index` of `ino` for a write through a shared mapping,
    /// before the page is dirtied: a file system that allocates blocks
    /// allocates the holes under it now (Linux's page_mkwrite), so a full
    /// disk is a SIGBUS at the write fault, not data lost at writeback.
    fn prepare_page_write(&self, _ino: Ino, _index: u64) -> KResult<()> {
        Ok(())
    }

    /// Where a swap file's pages lie on its device, for swapon(2) of a
    /// regular file: the device and, in file order, the byte offset of
    /// every page-sized, page-aligned run of contiguous blocks (Linux's
    /// generic_swapfile_activate skips the others). A hole is EINVAL
    /// ("swapfile has holes"); a file system without a block map (tmpfs,
    /// procfs) is EINVAL, as in Linux.
    fn swap_extents(&self, _ino: Ino) -> KResult<(Arc<crate::block::Ubd>, Vec<u64>)> {
        Err(Errno::EINVAL)
    }

    /// For a "magic" symlink (procfs's /proc/<pid>/exe and fd/<n>): the
    /// file it stands for, as (mount id, inode). A path walk goes straight
    /// there instead of following the link's text, so the very file is
    /// reached even after it was renamed or unlinked, as on Linux.
    fn magic_link(&self, _ino: Ino) -> Option<(usize, Ino)> {
        None
    }

    /// Extended attributes (`name` with its namespace prefix, checked by
    /// the caller): the value, ENODATA when unset. A file system without
    /// xattrs answers EOPNOTSUPP, as Linux's do.
    fn xattr_get(&self, _ino: Ino, _name: &[u8]) -> KResult<Vec<u8>> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Sets (`Some`) or removes (`None`) one attribute; `flags` are
    /// XATTR_CREATE (EEXIST if set) and XATTR_REPLACE (ENODATA if unset).
    fn xattr_set(
        &self,
        _ino: Ino,
        _name: &[u8],
        _value: Option<&[u8]>,
        _flags: u32,
    ) -> KResult<()> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Every attribute name of `ino` (none on a file system without
    /// xattrs: Linux's listxattr answers an empty list there).
    fn xattr_list(&self, _ino: Ino) -> KResult<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }
}
