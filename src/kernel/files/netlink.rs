//! AF_NETLINK socket files: read/write/poll of a NETLINK_ROUTE socket
//! fd, each with its own wait queue, the port ids in use, and the
//! kernel's answer to a sent buffer of requests (`Kernel::netlink_send`:
//! a snapshot of the interfaces for `net::netlink::rtnl`, then any
//! change written back to the ethN and the stack run). The protocol is
//! `crate::net::netlink`; the socket calls are `crate::syscalls::netlink`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use super::socket::socket_stat;
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::task::Pid;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::kernel::Kernel;
use crate::net::netlink::rtnl::{self, Answer, Request, View};
use crate::net::netlink::{self as nl, NetlinkSocket, NlHdr, SockaddrNl};
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, O_NONBLOCK, O_RDWR};
use crate::vfs::{OpenFile, OpenFileRef};

const FIONREAD: u32 = 0x541b;
const POLLIN: u32 = 0x1;
const POLLOUT: u32 = 0x4;
const POLLRDNORM: u32 = 0x40;
const POLLWRNORM: u32 = 0x100;

/// The netlink port ids bound in this guest (one name space: the guest
/// has one network name space).
#[derive(Debug, Default)]
pub struct Ports {
    bound: BTreeSet<u32>,
    /// The next autobind id tried after the process's own: Linux counts
    /// down from -4096.
    next_neg: u32,
}

impl Ports {
    /// Binds `pid`: EADDRINUSE if taken.
    pub fn bind(&mut self, pid: u32) -> KResult<()> {
        if !self.bound.insert(pid) {
            return Err(Errno::EADDRINUSE);
        }
        Ok(())
    }

    /// Linux's netlink_autobind: the process's tgid if free, else the
    /// next free id counting down from -4096.
    pub fn autobind(&mut self, tgid: u32) -> KResult<u32> {
        if self.bind(tgid).is_ok() {
            return Ok(tgid);
        }
        if self.next_neg == 0 {
            self.next_neg = (-4096i32) as u32;
        }
        for _ in 0..(1u32 << 20) {
            let p = self.next_neg;
            self.next_neg = p.wrapping_sub(1);
            if (p as i32) < 0 && self.bind(p).is_ok() {
                return Ok(p);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    pub fn release(&mut self, pid: u32) {
        self.bound.remove(&pid);
    }
}

pub struct NetlinkFile {
    pub sock: RefCell<NetlinkSocket>,
    pub ino: u64,
    q: WaitQueueRef,
}

impl NetlinkFile {
    pub fn open(k: &Kernel, sock: NetlinkSocket, nonblock: bool) -> OpenFileRef {
        let ino = k.unix.new_ino();
        let file = Rc::new(NetlinkFile {
            sock: RefCell::new(sock),
            ino,
            q: WaitQueue::new(),
        });
        let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
        OpenFile::new(file, flags, format!("socket:[{ino}]").into_bytes())
    }

    pub fn wait_q(&self) -> &WaitQueueRef {
        &self.q
    }

    /// The port id, autobinding one (the caller's tgid first) if unbound.
    pub fn portid(&self, k: &mut Kernel, tid: Pid) -> KResult<u32> {
        let cur = self.sock.borrow().portid;
        if cur != 0 {
            return Ok(cur);
        }
        let tgid = k.task(tid)?.tgid as u32;
        let p = k.netlink_ports.autobind(tgid)?;
        self.sock.borrow_mut().portid = p;
        Ok(p)
    }
}

impl Kernel {
    /// What rtnetlink sees: the ethN's configuration and the counters.
    /// The stack is not made for a look.
    fn rtnl_view(&self) -> View {
        match self.inet.as_ref() {
            Some(st) => View {
                eths: st.eths(),
                lo_stats: st.lo,
            },
            None => View::default(),
        }
    }

    /// A buffer of requests sent to the kernel on netlink socket `f`:
    /// each answered (replies, acks and errors queued on the socket, a
    /// dump started), as Linux's netlink_rcv_skb walks them; the ethN
    /// are changed once at the end if any request changed them.
    pub fn netlink_send(&mut self, tid: Pid, f: &NetlinkFile, data: &[u8]) -> KResult<()> {
        let portid = f.portid(self, tid)?;
        let privileged = self.task(tid)?.cred.euid == 0;
        let mut view = self.rtnl_view();
        let before: Vec<_> = view.eths.iter().map(|e| e.cfg.clone()).collect();
        {
            let mut s = f.sock.borrow_mut();
            for (hdr, msg) in nl::messages(data) {
                let err = if hdr.flags & nl::NLM_F_REQUEST == 0 || hdr.ty < nl::NLMSG_MIN_TYPE {
                    // Only requests reach a handler; control messages
                    // are acked if asked.
                    0
                } else {
                    match answer(&mut s, &mut view, hdr, msg, portid, privileged) {
                        Some(e) => e,
                        None => continue,
                    }
                };
                if err != 0 || hdr.flags & nl::NLM_F_ACK != 0 {
                    let cap = s.cap_ack;
                    s.push(nl::ack(msg, err, portid, cap));
                }
            }
        }
        let after: Vec<_> = view.eths.into_iter().map(|e| e.cfg).collect();
        if after != before {
            self.net().configure(|ifs| {
                for (e, new) in ifs.iter_mut().zip(after) {
                    e.cfg = new;
                }
                Ok(())
            })?;
            self.net_settle();
        }
        self.wake_queue(&f.q, ALL_EVENTS);
        Ok(())
    }
}

/// One request: its replies queued or its dump started; the negative
/// errno for its ack (0: success), or None for a started dump, which
/// Linux never acks.
fn answer(
    s: &mut NetlinkSocket,
    view: &mut View,
    hdr: NlHdr,
    msg: &[u8],
    portid: u32,
    privileged: bool,
) -> Option<i32> {
    let r = Request {
        hdr,
        msg,
        portid,
        privileged,
    };
    Some(match rtnl::handle(view, &r) {
        Err(e) => -e.0,
        Ok(Answer::Done) => 0,
        Ok(Answer::Reply(m)) => {
            s.push(m);
            0
        }
        Ok(Answer::Dump(_)) if s.dumping() => -Errno::EBUSY.0,
        Ok(Answer::Dump(msgs)) => {
            s.start_dump(nl::pack_dump(msgs, hdr.seq, portid));
            return None;
        }
    })
}

impl FileDescription for NetlinkFile {
    fn read(&self, _k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        self.sock.borrow_mut().recv(buf, false).map(|g| g.n)
    }

    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        if data.len() > nl::SEND_MAX {
            return Err(Errno::EMSGSIZE);
        }
        k.netlink_send(io.tid, self, data)?;
        Ok(data.len())
    }

    fn poll(&self, _k: &mut Kernel) -> u32 {
        let r = if self.sock.borrow().readable() {
            POLLIN | POLLRDNORM
        } else {
            0
        };
        r | POLLOUT | POLLWRNORM
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.q.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        match req {
            FIONREAD => {
                let n = self.sock.borrow().next_len();
                k.write_u32(io.tid, arg, n.min(i32::MAX as usize) as u32)?;
                ok(0)
            }
            r if crate::net::inet::ifreq::is_if_ioctl(r) => k.if_ioctl(io.tid, r, arg),
            _ => Err(Errno::ENOTTY),
        }
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(socket_stat(self.ino))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn sock_kind(&self) -> Option<crate::net::SockKind> {
        Some(crate::net::SockKind::Netlink)
    }

    fn release(&self, k: &mut Kernel) {
        let p = self.sock.borrow().portid;
        if p != 0 {
            k.netlink_ports.release(p);
        }
    }
}

/// The address replies come from: the kernel (port 0, no groups).
pub fn kernel_addr() -> [u8; nl::SOCKADDR_NL_LEN] {
    SockaddrNl::default().encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autobind_takes_the_tgid_then_counts_down() {
        let mut p = Ports::default();
        assert_eq!(p.autobind(42), Ok(42));
        assert_eq!(p.autobind(42), Ok((-4096i32) as u32));
        assert_eq!(p.autobind(42), Ok((-4097i32) as u32));
        assert_eq!(p.bind(42), Err(Errno::EADDRINUSE));
        p.release(42);
        assert_eq!(p.bind(42), Ok(()));
    }
}
