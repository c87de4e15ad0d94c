//! Open file descriptions: what an fd points at, shared by dup and fork,
//! and the `FileDescription` trait every kind of open file implements.

use std::cell::RefCell;
use std::rc::Rc;

use super::dentry::DentryRef;
use super::mount::Node;
use crate::errno::{Errno, KResult};
use crate::fs::tty::TtyAccess;
use crate::fs::Stat;
use crate::kernel::task::Pid;
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::mm::vma::Backing;
use crate::syscalls::SysResult;

pub const O_ACCMODE: u32 = 0o3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOATIME: u32 = 0o1000000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;

/// What one kind of open file does: Linux's `struct file_operations`,
/// gVisor's `vfs.FileDescriptionImpl`. Each kind (regular file, directory,
/// pipe end, terminal, character device, procfs file, eventfd) lives in
/// its own file under `src/kernel/files/` and implements this; the
/// syscall layer only calls these methods and never asks which kind it
/// holds. The defaults are what a kind without the operation answers.
///
/// Methods take `&self`: a kind keeps what changes (a directory listing,
/// a counter) in a `Cell`/`RefCell`, so no borrow of the open file is held
/// while the kernel works (a read of /proc looks at every open file).
/// `Io::file` is the open file description (offset, flags) the call acts
/// on.
pub trait FileDescription {
    /// read(2)/pread(2): `io.pos` is pread's offset; without one a
    /// seekable kind reads at and advances the file's offset.
    /// EAGAIN means "would block" (the syscall layer decides to sleep).
    fn read(&self, _k: &mut Kernel, _io: &Io, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }

    /// write(2)/pwrite(2), like `read`.
    fn write(&self, _k: &mut Kernel, _io: &Io, _data: &[u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }

    /// poll(2) readiness (`POLL*` bits) right now.
    fn poll(&self, _k: &mut Kernel) -> u32 {
        POLL_ALWAYS
    }

    /// A regular file that epoll takes anyway: it has a poll operation
    /// on Linux (/proc/<pid>/mountinfo); other regular files and
    /// directories are EPERM at EPOLL_CTL_ADD.
    fn epoll_able(&self) -> bool {
        false
    }

    /// The wait queue whose wake-ups may change `poll`'s answer (None:
    /// readiness never changes, a poll on it never needs to sleep).
    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        None
    }

    /// ioctl(2) requests of this kind (FIOCLEX/FIONBIO are handled for
    /// every file before this).
    fn ioctl(&self, _k: &mut Kernel, _io: &Io, _req: u32, _arg: u64) -> SysResult {
        Err(Errno::ENOTTY)
    }

    /// What mmap(2) maps (`prot`/`shared` of the request, already checked
    /// against the open mode by the caller where the kind needs it).
    fn mmap(&self, _k: &mut Kernel, _io: &Io, _shared: bool, _prot: u32) -> KResult<Backing> {
        Err(Errno::ENODEV)
    }

    /// fstat(2): the stat and the device it lives on.
    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)>;

    /// lseek(2) to a new offset from `cur` (whence 0-4). Only seekable
    /// kinds answer; others are ESPIPE.
    fn seek(&self, _k: &mut Kernel, _cur: u64, _off: i64, _whence: u64) -> KResult<u64> {
        Err(Errno::ESPIPE)
    }

    /// pread/pwrite/sendfile at an offset are allowed (else ESPIPE).
    fn positional(&self) -> bool {
        false
    }

    /// A read fills the whole request when it can (files, memory devices,
    /// read in chunks); pipes and terminals return what is there.
    fn fills_request(&self) -> bool {
        false
    }

    /// The most a read could return now, when the file knows (a socket:
    /// the bytes queued, at least 1): read(2) cuts its buffer to it, so a
    /// 1 MiB read of a socket holding 200 kB allocates 200 kB, and one
    /// that will wait allocates nothing much. None: no such bound.
    fn read_size(&self, _k: &Kernel) -> Option<usize> {
        None
    }

    /// A blocking write(2) sleeps until it wrote every byte (pipes, fifos,
    /// stream sockets), returning a short count only when a signal or an
    /// error cuts it short; others return what one call took.
    fn writes_whole(&self) -> bool {
        false
    }

    /// getdents64: up to `cap` bytes of `linux_dirent64` records from the
    /// file's offset; returns the bytes and the next offset.
    fn readdir(&self, _k: &mut Kernel, _io: &Io, _cap: usize) -> KResult<(Vec<u8>, u64)> {
        Err(Errno::ENOTDIR)
    }

    /// The file's inode, for the f*() calls that change it (fchmod,
    /// fchown, ftruncate, fsync, futimens); None for objects with no
    /// inode of their own (an anonymous pipe, an eventfd).
    fn node(&self) -> Option<Node> {
        None
    }

    /// The directory this file is, for *at() calls, fchdir and
    /// /proc/<pid>/fd: a reference that follows renames.
    fn directory(&self) -> Option<DentryRef> {
        None
    }

    /// A terminal's job-control check before a read, write or change
    /// (SIGTTIN/SIGTTOU); other kinds are never policed.
    fn job_control(&self, _k: &mut Kernel, _tid: Pid, _access: TtyAccess) -> KResult<()> {
        Ok(())
    }

    /// How many bytes a write could take now without blocking (None: no
    /// limit), so a splice-like copy never consumes input it cannot write.
    fn write_room(&self, _k: &mut Kernel) -> Option<usize> {
        None
    }

    /// F_GETPIPE_SZ / F_SETPIPE_SZ with (size, caller privileged) (pipes
    /// only; else EBADF).
    fn pipe_size(&self, _k: &mut Kernel, _set: Option<(usize, bool)>) -> KResult<usize> {
        Err(Errno::EBADF)
    }

    /// Just opened by `tid` (a terminal may become its controlling tty).
    fn opened(&self, _k: &mut Kernel, _tid: Pid, _flags: u32) {}

    /// fsync/fdatasync beyond writing the inode's pages back: a block
    /// device flushes its disk.
    fn fsync(&self, _k: &mut Kernel) -> KResult<()> {
        Ok(())
    }

    /// The last reference to the open file description went away.
    fn release(&self, _k: &mut Kernel) {}

    /// A number that changes whenever `poll`'s answer may have changed
    /// (epoll's edge trigger). By default the wake-ups of the kind's wait
    /// queue (it may report an edge too often, never too rarely); a kind
    /// without one never changes its answer.
    fn generation(&self, k: &Kernel) -> u64 {
        self.wait_queue(k).map_or(0, |q| q.wakes())
    }

    /// The socket behind a socket fd (the socket calls; ENOTSOCK else).
    fn as_socket(&self) -> Option<&crate::kernel::files::socket::SocketFile> {
        None
    }

    /// The inet (AF_INET/AF_INET6) socket behind a socket fd.
    fn as_inet(&self) -> Option<&crate::kernel::files::inet::InetFile> {
        None
    }

    /// Which socket implementation serves this file's socket calls
    /// (None: not a socket, ENOTSOCK).
    fn sock_kind(&self) -> Option<crate::net::SockKind> {
        None
    }

    /// The epoll instance behind an epoll fd.
    fn as_epoll(&self) -> Option<&crate::kernel::files::epoll::EpollFile> {
        None
    }

    /// The kind's own lines of /proc/<pid>/fdinfo/<fd>, after pos, flags,
    /// mnt_id and ino (eventfd-count, tfd, sigmask, ...), as Linux's
    /// `show_fdinfo`.
    fn fdinfo(&self, _k: &mut Kernel) -> String {
        String::new()
    }

    /// The kind itself, for the syscalls of one kind that take any fd
    /// (timerfd_settime, signalfd4, pidfd_send_signal, F_ADD_SEALS):
    /// they downcast to the kind they serve and refuse any other.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Readiness of a file that is always ready.
pub const POLL_ALWAYS: u32 = 0x1 | 0x4 | 0x40 | 0x100;

/// One read/write/ioctl call: who makes it, on which open file, at which
/// offset (pread/pwrite; None: the file's own).
pub struct Io<'a> {
    pub tid: Pid,
    pub file: &'a OpenFileRef,
    pub pos: Option<u64>,
}

impl Io<'_> {
    /// The offset the call works at.
    pub fn offset(&self) -> u64 {
        self.pos.unwrap_or_else(|| self.file.borrow().offset)
    }

    /// Moves the file's offset to `to` unless this is a positional call.
    pub fn advance(&self, to: u64) {
        if self.pos.is_none() {
            self.file.borrow_mut().offset = to;
        }
    }
}

pub struct OpenFile {
    pub ops: Rc<dyn FileDescription>,
    /// O_* status flags (access mode, O_APPEND, O_NONBLOCK).
    pub flags: u32,
    pub offset: u64,
    /// The canonical path it was opened by (for /proc/<pid>/fd, fchdir,
    /// openat relative to it).
    pub path: Vec<u8>,
    /// A number no other open file description has (the owner of its OFD
    /// locks, flock locks and leases).
    pub id: u64,
    /// F_SETOWN/F_SETOWN_EX: (F_OWNER_TID 0 / PID 1 / PGRP 2, id); id 0: none.
    pub owner: (i32, i32),
    /// F_SETSIG: the signal sent instead of SIGIO (0: SIGIO).
    pub sig: i32,
    /// A regular file opened for writing: its inode's write access
    /// (vfs/writecount.rs), held until the description and every mapping
    /// made from it are gone.
    pub write_access: Option<super::writecount::WriteRef>,
}

/// The next `OpenFile::id`.
static NEXT_FILE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// Open file descriptions alive on this thread: Linux's nr_files
    /// (fs.file-nr's first field). One kernel is one thread (its state is
    /// `Rc`), so this counts one instance's files (kernel/ucounts.rs
    /// checks fs.file-max against it).
    static NR_FILES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many open file descriptions this kernel holds now.
pub fn nr_files() -> u64 {
    NR_FILES.with(|n| n.get())
}

pub type OpenFileRef = Rc<RefCell<OpenFile>>;

impl OpenFile {
    pub fn new(ops: Rc<dyn FileDescription>, flags: u32, path: Vec<u8>) -> OpenFileRef {
        NR_FILES.with(|n| n.set(n.get().saturating_add(1)));
        Rc::new(RefCell::new(OpenFile {
            ops,
            flags: flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
            offset: 0,
            path,
            id: NEXT_FILE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            owner: (1, 0),
            sig: 0,
            write_access: None,
        }))
    }

    pub fn readable(&self) -> bool {
        self.flags & O_ACCMODE != O_WRONLY && self.flags & O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        self.flags & O_ACCMODE != O_RDONLY && self.flags & O_PATH == 0
    }

    pub fn nonblocking(&self) -> bool {
        self.flags & O_NONBLOCK != 0
    }

    pub fn node(&self) -> Option<Node> {
        self.ops.node()
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        NR_FILES.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// The operations of an open file, held apart from its borrow.
pub fn ops_of(f: &OpenFileRef) -> Rc<dyn FileDescription> {
    f.borrow().ops.clone()
}
