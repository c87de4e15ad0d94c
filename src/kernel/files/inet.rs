//! Inet socket files (AF_INET/AF_INET6): read/write/poll/ioctl/fstat of
//! a TCP or UDP socket fd. The socket state is `crate::net::inet`; the
//! socket syscalls are `crate::syscalls::inet`.
//!
//! Waiting: each socket has its own wait queue (readers, writers,
//! acceptors, connectors, poll/select/epoll). The stack has no callback
//! per socket, so after each stack run the kernel compares every live
//! socket's `Signature` (readiness, queue lengths, state) with the one it
//! saw last and wakes the queues of those that changed
//! (`Kernel::inet_wake_changed`): traffic on one connection never wakes
//! the waiters of another.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::socket::socket_stat;
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::task::Pid;
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::net::inet::socket::Signature;
use crate::net::inet::InetSocket;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, O_NONBLOCK, O_RDWR};
use crate::vfs::{OpenFile, OpenFileRef};

const FIONREAD: u32 = 0x541b;
const SIOCOUTQ: u32 = 0x5411;

pub struct InetFile {
    pub sock: RefCell<InetSocket>,
    pub ino: u64,
    /// This socket's waiters.
    pub q: WaitQueueRef,
    /// The signature seen at the last stack run (None: not yet, or the
    /// socket was busy then).
    pub seen: Cell<Option<Signature>>,
    /// The last `net_io` ran out of tries with this queue woken after
    /// its last one: the next sleep ends at once (`Kernel::net_io`).
    pub retry_now: Cell<bool>,
}

impl InetFile {
    /// An open file for `sock`, known to the kernel's wake-up scan.
    pub fn open(k: &mut Kernel, sock: InetSocket, nonblock: bool) -> OpenFileRef {
        let ino = k.unix.new_ino();
        let file = Rc::new(InetFile {
            sock: RefCell::new(sock),
            ino,
            q: crate::kernel::waitq::WaitQueue::new(),
            seen: Cell::new(None),
            retry_now: Cell::new(false),
        });
        k.inet_files.push(Rc::downgrade(&file));
        let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
        OpenFile::new(file, flags, format!("socket:[{ino}]").into_bytes())
    }
}

/// EPIPE on a TCP socket raises SIGPIPE unless MSG_NOSIGNAL.
pub fn sigpipe_if(k: &mut Kernel, tid: Pid, r: &KResult<usize>, nosignal: bool) {
    if matches!(r, Err(Errno::EPIPE)) && !nosignal {
        k.send_to_thread(
            tid,
            SigInfo {
                signo: SIGPIPE,
                ..Default::default()
            },
        );
    }
}

impl FileDescription for InetFile {
    fn read(&self, k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let r = k.net_io(self, |k| self.sock.borrow_mut().recv(k.net(), buf, false));
        r.map(|g| g.n)
    }

    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        let all = !io.file.borrow().nonblocking();
        let r = k.net_io(self, |k| {
            self.sock.borrow_mut().send_all(k.net(), data, None, all)
        });
        if self.sock.borrow().proto == crate::net::inet::Proto::Tcp {
            sigpipe_if(k, io.tid, &r, false);
        }
        r
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        self.sock.borrow_mut().poll(k.net())
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.q.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        let n = match req {
            FIONREAD => self.sock.borrow().inq(k.net())?,
            SIOCOUTQ => self.sock.borrow().outq(k.net()),
            r if crate::net::inet::ifreq::is_if_ioctl(r) => return k.if_ioctl(io.tid, r, arg),
            _ => return Err(Errno::ENOTTY),
        };
        k.write_u32(io.tid, arg, n.min(i32::MAX as usize) as u32)?;
        ok(0)
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(socket_stat(self.ino))
    }

    fn as_inet(&self) -> Option<&InetFile> {
        Some(self)
    }

    fn sock_kind(&self) -> Option<crate::net::SockKind> {
        Some(crate::net::SockKind::Inet)
    }

    fn release(&self, k: &mut Kernel) {
        self.sock.borrow_mut().release(k.net());
        k.net_settle();
    }
}
