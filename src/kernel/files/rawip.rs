//! AF_INET SOCK_RAW IPPROTO_RAW sockets: send-only raw IPv4 (the header
//! comes from the caller, as with IP_HDRINCL), and the interface ioctls
//! (busybox udhcpc asks eth0's index and MAC through one). Linux never
//! delivers a packet to an IPPROTO_RAW socket, so a read waits for ever
//! (EAGAIN when non-blocking). The syscalls are `syscalls/rawnet.rs`.

use std::rc::Rc;

use super::socket::socket_stat;
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef};
use crate::kernel::Kernel;
use crate::syscalls::SysResult;
use crate::vfs::file::{FileDescription, Io, O_NONBLOCK, O_RDWR};
use crate::vfs::{OpenFile, OpenFileRef};

const POLLOUT: u32 = 0x4;
const POLLWRNORM: u32 = 0x100;

pub struct RawIpFile {
    pub ino: u64,
    q: WaitQueueRef,
}

impl RawIpFile {
    pub fn open(k: &Kernel, nonblock: bool) -> OpenFileRef {
        let ino = k.unix.new_ino();
        let file = Rc::new(RawIpFile {
            ino,
            q: WaitQueue::new(),
        });
        let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
        OpenFile::new(file, flags, format!("socket:[{ino}]").into_bytes())
    }

    pub fn wait_q(&self) -> &WaitQueueRef {
        &self.q
    }
}

/// Sends a raw IPv4 packet the guest wrote, header included: Linux
/// fills in the total length and the header checksum. EINVAL if it is
/// not an IPv4 header; ENETUNREACH if nothing routes its destination.
pub fn send(k: &mut Kernel, data: &[u8]) -> KResult<usize> {
    if data.len() < 20 || data[0] >> 4 != 4 || usize::from(data[0] & 0xf) * 4 < 20 {
        return Err(Errno::EINVAL);
    }
    let ihl = usize::from(data[0] & 0xf) * 4;
    if ihl > data.len() || data.len() > usize::from(u16::MAX) {
        return Err(Errno::EINVAL);
    }
    let mut p = data.to_vec();
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[10..12].fill(0);
    let c = crate::net::inet::natpkt::checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    k.net().raw_send(p)?;
    k.net_settle();
    Ok(data.len())
}

impl FileDescription for RawIpFile {
    fn read(&self, _k: &mut Kernel, _io: &Io, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EAGAIN)
    }

    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        send(k, data)
    }

    fn poll(&self, _k: &mut Kernel) -> u32 {
        POLLOUT | POLLWRNORM
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.q.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        if crate::net::inet::ifreq::is_if_ioctl(req) {
            return k.if_ioctl(io.tid, req, arg);
        }
        Err(Errno::ENOTTY)
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(socket_stat(self.ino))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn sock_kind(&self) -> Option<crate::net::SockKind> {
        Some(crate::net::SockKind::RawIp)
    }
}
