//! The socket calls on AF_PACKET sockets and on AF_INET SOCK_RAW
//! IPPROTO_RAW ones (send-only raw IPv4, `files/rawip.rs`): their rows of
//! the socket table (`sockcall.rs`).
//!
//! Linux's order of checks: CAP_NET_RAW (EPERM) before the type
//! (ESOCKTNOSUPPORT); a sockaddr_ll shorter than its fixed part or of
//! another family is EINVAL; connect, listen, accept, shutdown and
//! getpeername are EOPNOTSUPP.

use std::rc::Rc;

use super::net::{self, read_msghdr};
use super::sockcall::{Sock, SockArgs, SockCalls};
use super::{ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::files::packet::PacketFile;
use crate::kernel::files::rawip::{self, RawIpFile};
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;
use crate::net::bpf;
use crate::net::packet::*;
use crate::net::*;
use crate::vfs::file::FileDescription;
use crate::vfs::OpenFileRef;

/// Most bytes one read takes (a frame is at most `FRAME_MAX`).
const IO_CHUNK: usize = 1 << 16;
const SO_PRIORITY: i32 = 12;
const SO_TIMESTAMP: i32 = 29;
const SO_BINDTODEVICE: i32 = 25;
/// struct tpacket_auxdata and its tp_status bit.
const AUXDATA_LEN: usize = 20;
const TP_STATUS_USER: u32 = 1;

/// The AF_PACKET socket calls.
pub(super) struct Packet;

/// The AF_INET SOCK_RAW IPPROTO_RAW socket calls.
pub(super) struct RawIp;

fn file(ops: &Rc<dyn FileDescription>) -> &PacketFile {
    ops.as_any()
        .and_then(|a| a.downcast_ref::<PacketFile>())
        .expect("the socket table sends only packet sockets here")
}

/// Does interface `ifindex` exist (lo, or an ethN)?
fn iface_exists(k: &Kernel, ifindex: i32) -> bool {
    ifindex == crate::net::inet::ifcfg::IFINDEX_LO || is_eth(k, ifindex)
}

/// Is `ifindex` an ethN's?
fn is_eth(k: &Kernel, ifindex: i32) -> bool {
    k.inet
        .as_ref()
        .is_some_and(|s| s.eths().iter().any(|e| e.ifindex() == ifindex))
}

const IPPROTO_RAW: u64 = 255;

fn read_sll(k: &mut Kernel, tid: Pid, ptr: u64, len: u64) -> KResult<SockaddrLl> {
    let len = crate::net::sockaddr::check_in_len(len)?;
    if len < 12 {
        return Err(Errno::EINVAL);
    }
    let raw = k.read_user_vec(tid, ptr, len.min(SOCKADDR_LL_LEN))?;
    SockaddrLl::parse(&raw)
}

fn write_name(k: &mut Kernel, tid: Pid, ptr: u64, lenp: u64, bytes: &[u8]) -> KResult<()> {
    let ulen = k.read_u32(tid, lenp)?;
    let n = crate::net::sockaddr::copy_out_len(bytes.len(), u64::from(ulen))?;
    if n > 0 {
        k.write_user(tid, ptr, &bytes[..n])?;
    }
    k.write_u32(tid, lenp, bytes.len() as u32)
}

/// A read on an IPPROTO_RAW socket: nothing ever comes.
fn rawip_recv(k: &mut Kernel, tid: Pid, (f, ops): &Sock, flags: u32) -> SysResult {
    if f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0 {
        return Err(Errno::EAGAIN);
    }
    let q = ops
        .as_any()
        .and_then(|a| a.downcast_ref::<RawIpFile>())
        .expect("the socket table sends only raw IP sockets here")
        .wait_q()
        .clone();
    k.wait_on(tid, &q, crate::kernel::waitq::ALL_EVENTS);
    Ok(Outcome::Block(Wait::Queue(None)))
}

/// Sends one frame made of `iov`'s bytes; the whole length.
fn do_send(
    k: &mut Kernel,
    tid: Pid,
    ops: &Rc<dyn FileDescription>,
    iov: &[(u64, usize)],
    to: Option<SockaddrLl>,
    flags: u32,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    if total > FRAME_MAX {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = Vec::with_capacity(total);
    for &(base, len) in iov {
        if len > 0 {
            data.extend(k.read_user_vec(tid, base, len)?);
        }
    }
    if let Some(t) = &to {
        if t.ifindex != 0 && !iface_exists(k, t.ifindex) {
            return Err(Errno::ENXIO);
        }
    }
    let frame = file(ops).sock.borrow().frame_for(&data, to.as_ref())?;
    k.net().packet_send(frame)?;
    k.net_settle();
    Ok(total)
}

struct RecvOut {
    ret: usize,
    name: [u8; SOCKADDR_LL_LEN],
    msg_flags: u32,
    aux: [u8; AUXDATA_LEN],
}

/// Receives one frame into `iov`; Ok(None): would block (and the caller
/// sleeps on the socket's queue).
fn do_recv(
    k: &mut Kernel,
    tid: Pid,
    (f, ops): &Sock,
    iov: &[(u64, usize)],
    flags: u32,
) -> KResult<Option<RecvOut>> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EINVAL);
    }
    let nonblock = f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0;
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    let mut buf = vec![0u8; total.min(IO_CHUNK)];
    let pf = file(ops);
    let got = match pf.sock.borrow_mut().recv(&mut buf, flags & MSG_PEEK != 0) {
        Ok(g) => g,
        Err(Errno::EAGAIN) if !nonblock => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut done = 0;
    for &(base, len) in iov {
        if done >= got.n {
            break;
        }
        let m = len.min(got.n - done);
        k.write_user(tid, base, &buf[done..done + m])?;
        done += m;
    }
    let mut aux = [0u8; AUXDATA_LEN];
    aux[0..4].copy_from_slice(&TP_STATUS_USER.to_le_bytes());
    aux[4..8].copy_from_slice(&(got.full as u32).to_le_bytes());
    aux[8..12].copy_from_slice(&(got.n as u32).to_le_bytes());
    let net_off: u16 = if pf.sock.borrow().kind == Kind::Raw {
        ETH_HLEN as u16
    } else {
        0
    };
    aux[14..16].copy_from_slice(&net_off.to_le_bytes());
    Ok(Some(RecvOut {
        ret: if flags & MSG_TRUNC != 0 {
            got.full
        } else {
            got.n
        },
        name: got.from.encode(),
        msg_flags: if got.full > got.n { MSG_TRUNC } else { 0 },
        aux,
    }))
}

fn block(k: &mut Kernel, tid: Pid, ops: &Rc<dyn FileDescription>) -> Outcome {
    let q = file(ops).wait_q().clone();
    k.wait_on(tid, &q, crate::kernel::waitq::ALL_EVENTS);
    Outcome::Block(Wait::Queue(None))
}

fn int_of(v: &[u8]) -> KResult<i32> {
    let b: [u8; 4] = v
        .get(..4)
        .ok_or(Errno::EINVAL)?
        .try_into()
        .map_err(|_| Errno::EINVAL)?;
    Ok(i32::from_le_bytes(b))
}

impl SockCalls for Packet {
    fn check(&self, k: &mut Kernel, tid: Pid, args: &SockArgs) -> KResult<()> {
        packet_kind(k, tid, args).map(drop)
    }

    fn create(&self, k: &mut Kernel, tid: Pid, args: &SockArgs) -> KResult<OpenFileRef> {
        let kind = packet_kind(k, tid, args)?;
        // The protocol is a 16-bit value in network order.
        let proto = u16::from_be(args.proto as u16);
        k.check_file_max(tid)?;
        Ok(PacketFile::open(
            k,
            PacketSocket::new(kind, proto),
            args.nonblock,
        ))
    }

    fn bind(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        if (a[2] as u32 as usize) < SOCKADDR_LL_LEN {
            return Err(Errno::EINVAL);
        }
        let sll = read_sll(k, tid, a[1], a[2])?;
        if sll.ifindex != 0 && !iface_exists(k, sll.ifindex) {
            return Err(Errno::ENODEV);
        }
        let mut s = file(ops).sock.borrow_mut();
        s.ifindex = sll.ifindex;
        if sll.protocol != 0 {
            s.protocol = sll.protocol;
        }
        ok(0)
    }

    fn getsockname(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (ifindex, protocol) = {
            let s = file(ops).sock.borrow();
            (s.ifindex, s.protocol)
        };
        let mut sll = SockaddrLl {
            protocol,
            ifindex,
            ..Default::default()
        };
        let mut len = 12;
        if is_eth(k, ifindex) {
            sll.hatype = ARPHRD_ETHER;
            sll.halen = 6;
            let mac = k
                .inet
                .as_ref()
                .and_then(|s| s.eths().into_iter().find(|e| e.ifindex() == ifindex))
                .map_or_else(|| mac_of_ifindex(ifindex), |e| e.mac);
            sll.addr[..6].copy_from_slice(&mac);
            len = 18;
        } else if ifindex != 0 {
            sll.hatype = 772; // ARPHRD_LOOPBACK
            sll.halen = 6;
            len = 18;
        }
        write_name(k, tid, a[1], a[2], &sll.encode()[..len])?;
        ok(0)
    }

    fn sendto(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let to = if a[4] != 0 && a[5] as u32 != 0 {
            Some(read_sll(k, tid, a[4], a[5])?)
        } else {
            None
        };
        let n = do_send(k, tid, ops, &[(a[1], a[2] as usize)], to, a[3] as u32)?;
        ok(n as i64)
    }

    fn recvfrom(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sock = s;
        match do_recv(k, tid, sock, &[(a[1], a[2] as usize)], a[3] as u32)? {
            Some(out) => {
                if a[4] != 0 {
                    write_name(k, tid, a[4], a[5], &out.name)?;
                }
                ok(out.ret as i64)
            }
            None => Ok(block(k, tid, &sock.1)),
        }
    }

    fn sendmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let m = read_msghdr(k, tid, a[1])?;
        let to = if m.name != 0 && m.namelen != 0 {
            Some(read_sll(k, tid, m.name, u64::from(m.namelen))?)
        } else {
            None
        };
        let iov = net::gather(k, tid, m.iov, m.iovlen)?;
        let n = do_send(k, tid, ops, &iov, to, a[2] as u32)?;
        ok(n as i64)
    }

    fn recvmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sock = s;
        let p = a[1];
        let m = read_msghdr(k, tid, p)?;
        let iov = net::gather(k, tid, m.iov, m.iovlen)?;
        let Some(out) = do_recv(k, tid, sock, &iov, a[2] as u32)? else {
            return Ok(block(k, tid, &sock.1));
        };
        if m.name != 0 {
            let n = out.name.len().min(m.namelen as usize);
            k.write_user(tid, m.name, &out.name[..n])?;
            k.write_u32(tid, p + 8, out.name.len() as u32)?;
        } else {
            k.write_u32(tid, p + 8, 0)?;
        }
        // PACKET_AUXDATA: one control message (cmsghdr, then the 20 bytes).
        let mut msg_flags = out.msg_flags;
        let mut clen = 0u64;
        if file(&sock.1).sock.borrow().auxdata && m.control != 0 {
            const SPACE: usize = 16 + 24; // CMSG_SPACE(20)
            if (m.controllen as usize) < 16 + AUXDATA_LEN {
                msg_flags |= MSG_CTRUNC;
            } else {
                let mut c = [0u8; SPACE];
                c[0..8].copy_from_slice(&((16 + AUXDATA_LEN) as u64).to_le_bytes());
                c[8..12].copy_from_slice(&SOL_PACKET.to_le_bytes());
                c[12..16].copy_from_slice(&PACKET_AUXDATA.to_le_bytes());
                c[16..16 + AUXDATA_LEN].copy_from_slice(&out.aux);
                let n = SPACE.min(m.controllen as usize);
                k.write_user(tid, m.control, &c[..n])?;
                clen = n as u64;
            }
        }
        k.write_u64(tid, p + 40, clen)?;
        k.write_u32(tid, p + 48, msg_flags)?;
        ok(out.ret as i64)
    }

    fn setsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (level, name, ptr, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32 as i32);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let len = len as usize;
        let pf = file(ops);
        match (level, name) {
            (SOL_SOCKET, SO_ATTACH_FILTER) => {
                // struct sock_fprog { u16 len; (pad) struct sock_filter *filter; }
                if len < 16 {
                    return Err(Errno::EINVAL);
                }
                let fp = k.read_user_vec(tid, ptr, 16)?;
                let n = usize::from(u16::from_le_bytes([fp[0], fp[1]]));
                if n == 0 || n > bpf::BPF_MAXINSNS {
                    return Err(Errno::EINVAL);
                }
                let at = u64::from_le_bytes(fp[8..16].try_into().map_err(|_| Errno::EFAULT)?);
                let raw = k.read_user_vec(tid, at, n * 8)?;
                pf.sock.borrow_mut().filter = Some(bpf::Program::parse(&raw)?);
            }
            (SOL_SOCKET, SO_DETACH_FILTER) => {
                if pf.sock.borrow_mut().filter.take().is_none() {
                    return Err(Errno::ENOENT);
                }
            }
            (SOL_SOCKET, SO_BINDTODEVICE) => {
                let raw = k.read_user_vec(tid, ptr, len.min(16))?;
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                let eths = k.inet.as_ref().map(|s| s.eths()).unwrap_or_default();
                let idx = match &raw[..end] {
                    b"" => 0,
                    b"lo" => crate::net::inet::ifcfg::IFINDEX_LO,
                    name => {
                        let i =
                            crate::net::inet::ifcfg::by_name(&eths, name).ok_or(Errno::ENODEV)?;
                        eths[i].ifindex()
                    }
                };
                pf.sock.borrow_mut().ifindex = idx;
            }
            (
                SOL_SOCKET,
                SO_RCVBUF | SO_SNDBUF | SO_RCVBUFFORCE | SO_SNDBUFFORCE | SO_REUSEADDR
                | SO_BROADCAST | SO_PRIORITY | SO_TIMESTAMP | SO_DEBUG | SO_DONTROUTE
                | SO_KEEPALIVE,
            ) => {
                // Accepted: none of them changes what a packet socket does here.
                int_of(&k.read_user_vec(tid, ptr, len.min(4))?)?;
            }
            (SOL_PACKET, PACKET_AUXDATA) => {
                let v = int_of(&k.read_user_vec(tid, ptr, len.min(4))?)?;
                pf.sock.borrow_mut().auxdata = v != 0;
            }
            (SOL_PACKET, PACKET_ADD_MEMBERSHIP | PACKET_DROP_MEMBERSHIP) => {
                // struct packet_mreq: the interface must exist; every frame
                // eth0 sees already reaches the socket (promiscuous at once).
                if len < 8 {
                    return Err(Errno::EINVAL);
                }
                let mr = k.read_user_vec(tid, ptr, 8)?;
                if !iface_exists(k, int_of(&mr)?) {
                    return Err(Errno::ENODEV);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        ok(0)
    }

    fn getsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (level, name, ptr, lenp) = (a[1] as i32, a[2] as i32, a[3], a[4]);
        let len = k.read_u32(tid, lenp)? as i32;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let s = file(ops).sock.borrow();
        let v: i32 = match (level, name) {
            (SOL_SOCKET, SO_TYPE) => match s.kind {
                Kind::Raw => 3,
                Kind::Dgram => 2,
            },
            (SOL_SOCKET, SO_DOMAIN) => i32::from(AF_PACKET),
            (SOL_SOCKET, SO_PROTOCOL) => i32::from(s.protocol.to_be()),
            (SOL_SOCKET, SO_ERROR) => 0,
            (SOL_SOCKET, SO_RCVBUF) => RCVBUF as i32,
            (SOL_PACKET, PACKET_AUXDATA) => i32::from(s.auxdata),
            _ => return Err(Errno::ENOPROTOOPT),
        };
        drop(s);
        let b = v.to_le_bytes();
        let n = (len as usize).min(4);
        k.write_user(tid, ptr, &b[..n])?;
        k.write_u32(tid, lenp, n as u32)?;
        ok(0)
    }
}

/// socket(AF_INET, SOCK_RAW, IPPROTO_RAW): root's gets an IPPROTO_RAW
/// socket (inet's checks ask).
pub(super) fn is_rawip(args: &SockArgs) -> bool {
    args.domain == 2 && args.ty == 3 && args.proto as u32 as u64 == IPPROTO_RAW
}

pub(super) fn rawip_open(k: &mut Kernel, tid: Pid, nonblock: bool) -> KResult<OpenFileRef> {
    k.check_file_max(tid)?;
    Ok(RawIpFile::open(k, nonblock))
}

/// packet_create's checks: CAP_NET_RAW (EPERM), then the type.
fn packet_kind(k: &Kernel, tid: Pid, args: &SockArgs) -> KResult<Kind> {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    match args.ty {
        3 => Ok(Kind::Raw),
        2 => Ok(Kind::Dgram),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

impl SockCalls for RawIp {
    fn bind(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        // Nothing is ever received: the bound address changes nothing.
        ok(0)
    }

    fn sendto(&self, k: &mut Kernel, tid: Pid, _s: &Sock, a: [u64; 6]) -> SysResult {
        let len = a[2] as usize;
        if len > usize::from(u16::MAX) {
            return Err(Errno::EMSGSIZE);
        }
        let data = k.read_user_vec(tid, a[1], len)?;
        ok(rawip::send(k, &data)? as i64)
    }

    fn recvfrom(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        rawip_recv(k, tid, s, a[3] as u32)
    }

    fn recvmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        rawip_recv(k, tid, s, a[2] as u32)
    }

    fn setsockopt(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        // IP_HDRINCL and the rest: an IPPROTO_RAW socket always carries
        // its own header.
        ok(0)
    }
}
