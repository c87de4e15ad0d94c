//! AF_UNIX socket files: read/write/poll/ioctl/fstat of a socket fd, and
//! the socket options kept per socket. The state machine is
//! `crate::net::unix`; the socket syscalls are `crate::syscalls::net`.
//! Descriptors in flight (SCM_RIGHTS) are open files held by the
//! receiving socket's queue; whatever is dropped unread goes through
//! `Kernel::release_file` like a close.
//!
//! Waiting: each AF_UNIX socket has its own wait queue (readers, writers,
//! acceptors, poll/select/epoll); the socket machinery notes which queues
//! an operation owes a wake-up and with which events (`net::wakes`), and
//! `unix_wake` wakes exactly those, so data on one connection never wakes
//! the waiters of another.

use std::cell::RefCell;
use std::rc::Rc;

use crate::errno::{Errno, KResult};
use crate::fs::{Stat, S_IFSOCK};
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::task::{Pid, Wait};
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::net::unix::{SockRef, SockType, UnixSocket};
use crate::net::Ucred;
use crate::syscalls::{ok, Outcome, SysResult};
use crate::vfs::file::{FileDescription, Io, O_RDWR};
use crate::vfs::{OpenFile, OpenFileRef};

const FIONREAD: u32 = 0x541b;
const SIOCOUTQ: u32 = 0x5411;
/// Device number fstat reports for sockets (Linux's sockfs is an
/// anonymous device; any fixed value will do).
const SOCKFS_DEV: u64 = 0x8;

pub type GuestSock = SockRef<OpenFileRef>;

/// Options that only read back what was set (no effect on AF_UNIX).
#[derive(Default, Clone, Copy)]
pub struct PlainOpts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    pub debug: bool,
    pub dontroute: bool,
    pub rcvlowat: i32,
    /// (on, seconds)
    pub linger: (i32, i32),
    /// SO_RCVTIMEO, SO_SNDTIMEO as (sec, usec): enforced wherever a
    /// socket call sleeps (syscalls/net.rs `timed`: send*/recv*,
    /// read/write/readv/writev, accept, connect).
    pub rcvtimeo: (i64, i64),
    pub sndtimeo: (i64, i64),
}

pub struct SocketFile {
    pub sock: GuestSock,
    pub ino: u64,
    pub opts: RefCell<PlainOpts>,
}

impl SocketFile {
    /// An open file for `sock` (O_RDWR, plus O_NONBLOCK if asked).
    pub fn open(k: &Kernel, sock: GuestSock, nonblock: bool) -> OpenFileRef {
        let ino = k.unix.new_ino();
        let file = Rc::new(SocketFile {
            sock,
            ino,
            opts: RefCell::new(PlainOpts {
                rcvlowat: 1,
                ..Default::default()
            }),
        });
        let flags = O_RDWR
            | if nonblock {
                crate::vfs::file::O_NONBLOCK
            } else {
                0
            };
        OpenFile::new(file, flags, format!("socket:[{ino}]").into_bytes())
    }

    pub fn kind(&self) -> SockType {
        self.sock.borrow().kind
    }
}

/// AF_UNIX operations ran: wake the waiters they owe (each socket has its
/// own queue; see `crate::net::wakes`). Every AF_UNIX entry point calls
/// this before it returns or sleeps.
pub fn unix_wake(k: &mut Kernel) {
    // One at a time, oldest first: a wake-up that owes more (none does
    // today) is served in the same loop.
    while let Some((q, events)) = k.unix.wakes.pop() {
        k.wake_queue(&q, events);
    }
    k.sockmem_sync();
}

/// Sleeps `tid` on `sock`'s queue until one of `events` happens there.
pub fn unix_block(k: &mut Kernel, tid: Pid, sock: &GuestSock, events: u32) -> Outcome {
    unix_wake(k);
    let q = sock.borrow().wait_queue();
    k.wait_on(tid, &q, events);
    Outcome::Block(Wait::Queue(None))
}

/// The caller's identity as a message carries it.
pub fn ucred_of(k: &Kernel, tid: Pid) -> KResult<Ucred> {
    let t = k.task(tid)?;
    Ok(Ucred {
        pid: t.tgid,
        uid: t.cred.uid,
        gid: t.cred.gid,
    })
}

/// Drops descriptors that will not be delivered, as a close would.
pub fn release_rights(k: &mut Kernel, rights: Vec<OpenFileRef>) {
    for f in rights {
        k.release_file(f);
    }
}

/// EPIPE on a stream raises SIGPIPE unless MSG_NOSIGNAL.
pub fn sigpipe_if(k: &mut Kernel, tid: Pid, kind: SockType, r: &KResult<usize>, nosignal: bool) {
    if matches!(r, Err(Errno::EPIPE)) && kind == SockType::Stream && !nosignal {
        k.send_to_thread(
            tid,
            SigInfo {
                signo: SIGPIPE,
                ..Default::default()
            },
        );
    }
}

impl FileDescription for SocketFile {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let nonblock = io.file.borrow().nonblocking();
        let r = UnixSocket::recv(&self.sock, buf, false, false, nonblock);
        unix_wake(k);
        let got = r?;
        let n = got.n;
        release_rights(k, got.rights);
        Ok(n)
    }

    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        let me = ucred_of(k, io.tid)?;
        let creds = UnixSocket::creds_for(&self.sock, None, None, me);
        let r = UnixSocket::send(&self.sock, data, Vec::new(), creds, None);
        sigpipe_if(k, io.tid, self.kind(), &r, false);
        unix_wake(k);
        r
    }

    fn writes_whole(&self) -> bool {
        self.kind() == SockType::Stream
    }

    fn read_size(&self, _k: &Kernel) -> Option<usize> {
        Some(self.sock.borrow().read_size())
    }

    fn poll(&self, _k: &mut Kernel) -> u32 {
        UnixSocket::poll(&self.sock)
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.sock.borrow().wait_queue())
    }

    fn generation(&self, _k: &Kernel) -> u64 {
        self.sock.borrow().generation()
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        let n = match req {
            FIONREAD => self.sock.borrow().inq()?,
            SIOCOUTQ => self.sock.borrow().outq(),
            // The interface ioctls work on a socket of any family, as on
            // Linux (glibc's if_nametoindex asks through an AF_UNIX one).
            r if crate::net::inet::ifreq::is_if_ioctl(r) => return k.if_ioctl(io.tid, r, arg),
            _ => return Err(Errno::ENOTTY),
        };
        k.write_u32(io.tid, arg, n.min(i32::MAX as usize) as u32)?;
        ok(0)
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(socket_stat(self.ino))
    }

    fn as_socket(&self) -> Option<&SocketFile> {
        Some(self)
    }

    fn sock_kind(&self) -> Option<crate::net::SockKind> {
        Some(crate::net::SockKind::Unix)
    }

    fn release(&self, k: &mut Kernel) {
        let rights = UnixSocket::release(&self.sock);
        release_rights(k, rights);
        unix_wake(k);
    }
}

/// What fstat says of any socket (sockfs inode `ino`), whatever its family.
pub fn socket_stat(ino: u64) -> (Stat, u64) {
    let st = Stat {
        ino,
        mode: S_IFSOCK | 0o777,
        nlink: 1,
        blksize: 4096,
        ..Default::default()
    };
    (st, SOCKFS_DEV)
}
