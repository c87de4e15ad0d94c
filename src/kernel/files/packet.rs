//! AF_PACKET socket files: read/write/poll/ioctl of a packet socket fd,
//! each with its own wait queue, and the kernel's delivery of eth0's
//! frames (`NetStack::frames`) to every packet socket that wants them.
//! The socket state is `crate::net::packet`; the socket syscalls are
//! `crate::syscalls::rawnet`.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::socket::socket_stat;
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::kernel::Kernel;
use crate::net::packet::PacketSocket;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, O_NONBLOCK, O_RDWR};
use crate::vfs::{OpenFile, OpenFileRef};

const FIONREAD: u32 = 0x541b;
const POLLIN: u32 = 0x1;
const POLLOUT: u32 = 0x4;
const POLLRDNORM: u32 = 0x40;
const POLLWRNORM: u32 = 0x100;

pub struct PacketFile {
    pub sock: RefCell<PacketSocket>,
    pub ino: u64,
    q: WaitQueueRef,
}

impl PacketFile {
    /// A packet socket file; from now on eth0's frames are kept for it.
    pub fn open(k: &mut Kernel, sock: PacketSocket, nonblock: bool) -> OpenFileRef {
        let ino = k.unix.new_ino();
        let file = Rc::new(PacketFile {
            sock: RefCell::new(sock),
            ino,
            q: WaitQueue::new(),
        });
        k.packet_socks.push(Rc::downgrade(&file));
        k.net().taps = true;
        let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
        OpenFile::new(file, flags, format!("socket:[{ino}]").into_bytes())
    }

    pub fn wait_q(&self) -> &WaitQueueRef {
        &self.q
    }
}

impl Kernel {
    /// Hands the frames eth0 saw to the packet sockets that want them,
    /// and wakes the sockets that got any.
    pub fn packet_deliver(&mut self) {
        let Some(st) = self.inet.as_mut() else {
            return;
        };
        if st.frames.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut st.frames);
        let live: Vec<Rc<PacketFile>> =
            self.packet_socks.iter().filter_map(Weak::upgrade).collect();
        for f in live {
            let mut got = false;
            {
                let mut s = f.sock.borrow_mut();
                for fr in &frames {
                    got |= s.offer(fr);
                }
            }
            if got {
                self.wake_queue(&f.q, ALL_EVENTS);
            }
        }
    }
}

impl FileDescription for PacketFile {
    fn read(&self, _k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        self.sock.borrow_mut().recv(buf, false).map(|r| r.n)
    }

    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        let f = self.sock.borrow().frame_for(data, None)?;
        k.net().packet_send(f)?;
        k.net_settle();
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
        Some(crate::net::SockKind::Packet)
    }

    fn release(&self, k: &mut Kernel) {
        let me: *const PacketFile = self;
        k.packet_socks
            .retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), me));
        let any = !k.packet_socks.is_empty();
        if let Some(st) = k.inet.as_mut() {
            st.taps = any;
            if !any {
                st.frames.clear();
            }
        }
    }
}
