//! The socket calls on AF_NETLINK sockets: their row of the socket
//! table (`sockcall.rs`).
//!
//! Linux's rules: SOCK_RAW or SOCK_DGRAM (else ESOCKTNOSUPPORT), only
//! NETLINK_ROUTE is built (other protocols EPROTONOSUPPORT); a
//! sockaddr_nl shorter than 12 bytes or of another family is EINVAL;
//! bind to a port id in use is EADDRINUSE, port 0 autobinds; messages go
//! to the kernel (port 0) only: to another port ECONNREFUSED (no guest
//! program serves netlink), to multicast groups EPERM unless root;
//! listen, accept and shutdown are EOPNOTSUPP.

use std::rc::Rc;

use super::net::{self, read_msghdr};
use super::sockcall::{Sock, SockArgs, SockCalls};
use super::{ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::files::netlink::{kernel_addr, NetlinkFile};
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;
use crate::net::netlink::{self as nl, Kind, NetlinkSocket, SockaddrNl};
use crate::net::sockbuf::{rcvbuf_from_opt, sndbuf_from_opt};
use crate::net::*;
use crate::vfs::file::FileDescription;
use crate::vfs::OpenFileRef;

/// Most bytes one receive copies (a dump datagram is at most
/// `nl::DUMP_CHUNK`; an error quotes at most `nl::SEND_MAX`).
const IO_CHUNK: usize = 1 << 17;
/// sizeof(struct nl_pktinfo) in a control message: CMSG_SPACE(4).
const PKTINFO_SPACE: usize = 16 + 8;

/// The AF_NETLINK socket calls.
pub(super) struct Netlink;

/// netlink_create's checks: the type, then the protocol (only
/// NETLINK_ROUTE is built: Linux would load another's module, or say it
/// has none).
fn netlink_kind(args: &SockArgs) -> KResult<Kind> {
    let kind = match args.ty {
        3 => Kind::Raw,
        2 => Kind::Dgram,
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let proto = args.proto as u32 as i32;
    if !(0..32).contains(&proto) || proto as u32 != nl::NETLINK_ROUTE {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(kind)
}

fn file(ops: &Rc<dyn FileDescription>) -> &NetlinkFile {
    ops.as_any()
        .and_then(|a| a.downcast_ref::<NetlinkFile>())
        .expect("the socket table sends only netlink sockets here")
}

fn read_nl(k: &mut Kernel, tid: Pid, ptr: u64, len: u64) -> KResult<SockaddrNl> {
    let len = crate::net::sockaddr::check_in_len(len)?;
    if len < nl::SOCKADDR_NL_LEN {
        return Err(Errno::EINVAL);
    }
    let raw = k.read_user_vec(tid, ptr, nl::SOCKADDR_NL_LEN)?;
    SockaddrNl::parse(&raw)
}

fn write_name(k: &mut Kernel, tid: Pid, ptr: u64, lenp: u64, bytes: &[u8]) -> KResult<()> {
    let ulen = k.read_u32(tid, lenp)?;
    let n = crate::net::sockaddr::copy_out_len(bytes.len(), u64::from(ulen))?;
    if n > 0 {
        k.write_user(tid, ptr, &bytes[..n])?;
    }
    k.write_u32(tid, lenp, bytes.len() as u32)
}

/// Sends `iov`'s bytes to `to` (None: the connected port, the kernel).
fn do_send(
    k: &mut Kernel,
    tid: Pid,
    ops: &Rc<dyn FileDescription>,
    iov: &[(u64, usize)],
    to: Option<SockaddrNl>,
    flags: u32,
) -> KResult<usize> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let f = file(ops);
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    let sndbuf = f.sock.borrow().sndbuf;
    if total > nl::SEND_MAX || total > sndbuf.saturating_sub(32) {
        return Err(Errno::EMSGSIZE);
    }
    let dst = to.map_or(f.sock.borrow().dst_pid, |t| t.pid);
    if to.is_some_and(|t| t.groups != 0) && k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    if dst != 0 {
        return Err(Errno::ECONNREFUSED);
    }
    let mut data = Vec::with_capacity(total);
    for &(base, len) in iov {
        if len > 0 {
            data.extend(k.read_user_vec(tid, base, len)?);
        }
    }
    k.netlink_send(tid, f, &data)?;
    Ok(total)
}

struct RecvOut {
    ret: usize,
    msg_flags: u32,
}

/// Receives one datagram into `iov`; Ok(None): would block.
fn do_recv(
    k: &mut Kernel,
    tid: Pid,
    (f, ops): &Sock,
    iov: &[(u64, usize)],
    flags: u32,
) -> KResult<Option<RecvOut>> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0;
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    let mut buf = vec![0u8; total.min(IO_CHUNK)];
    let got = match file(ops)
        .sock
        .borrow_mut()
        .recv(&mut buf, flags & MSG_PEEK != 0)
    {
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
    Ok(Some(RecvOut {
        ret: if flags & MSG_TRUNC != 0 {
            got.full
        } else {
            got.n
        },
        msg_flags: if got.full > got.n { MSG_TRUNC } else { 0 },
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

impl SockCalls for Netlink {
    fn check(&self, _k: &mut Kernel, _tid: Pid, args: &SockArgs) -> KResult<()> {
        netlink_kind(args).map(drop)
    }

    fn create(&self, k: &mut Kernel, tid: Pid, args: &SockArgs) -> KResult<OpenFileRef> {
        let kind = netlink_kind(args)?;
        k.check_file_max(tid)?;
        Ok(NetlinkFile::open(
            k,
            NetlinkSocket::new(kind),
            args.nonblock,
        ))
    }

    fn bind(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let addr = read_nl(k, tid, a[1], a[2])?;
        let f = file(ops);
        let cur = f.sock.borrow().portid;
        if cur != 0 {
            // Bound already: only the same port id (groups may change).
            if addr.pid != 0 && addr.pid != cur {
                return Err(Errno::EINVAL);
            }
        } else if addr.pid != 0 {
            k.netlink_ports.bind(addr.pid)?;
            f.sock.borrow_mut().portid = addr.pid;
        } else {
            f.portid(k, tid)?;
        }
        // rtnetlink lets anyone join its multicast groups.
        f.sock.borrow_mut().groups = addr.groups;
        ok(0)
    }

    fn connect(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let len = crate::net::sockaddr::check_in_len(a[2])?;
        if len >= 2 {
            let fam = k.read_user_vec(tid, a[1], 2)?;
            if u16::from_le_bytes([fam[0], fam[1]]) == AF_UNSPEC {
                // Disconnect: back to the kernel.
                file(ops).sock.borrow_mut().dst_pid = 0;
                return ok(0);
            }
        }
        let addr = read_nl(k, tid, a[1], a[2])?;
        if addr.groups != 0 && k.task(tid)?.cred.euid != 0 {
            return Err(Errno::EPERM);
        }
        let f = file(ops);
        f.portid(k, tid)?;
        f.sock.borrow_mut().dst_pid = addr.pid;
        ok(0)
    }

    fn getsockname(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (pid, groups) = {
            let s = file(ops).sock.borrow();
            (s.portid, s.groups)
        };
        write_name(k, tid, a[1], a[2], &SockaddrNl { pid, groups }.encode())?;
        ok(0)
    }

    fn getpeername(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let pid = file(ops).sock.borrow().dst_pid;
        write_name(k, tid, a[1], a[2], &SockaddrNl { pid, groups: 0 }.encode())?;
        ok(0)
    }

    fn sendto(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let to = if a[4] != 0 {
            Some(read_nl(k, tid, a[4], a[5])?)
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
                    write_name(k, tid, a[4], a[5], &kernel_addr())?;
                }
                ok(out.ret as i64)
            }
            None => Ok(block(k, tid, &sock.1)),
        }
    }

    fn sendmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let m = read_msghdr(k, tid, a[1])?;
        let to = if m.name != 0 {
            Some(read_nl(k, tid, m.name, u64::from(m.namelen))?)
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
            let name = kernel_addr();
            let n = name.len().min(m.namelen as usize);
            k.write_user(tid, m.name, &name[..n])?;
            k.write_u32(
                tid,
                p.checked_add(8).ok_or(Errno::EFAULT)?,
                name.len() as u32,
            )?;
        } else {
            k.write_u32(tid, p.checked_add(8).ok_or(Errno::EFAULT)?, 0)?;
        }
        // NETLINK_PKTINFO: struct nl_pktinfo { u32 group } (0: unicast).
        let mut msg_flags = out.msg_flags;
        let mut clen = 0u64;
        if file(&sock.1).sock.borrow().pktinfo && m.control != 0 {
            if (m.controllen as usize) < 16 + 4 {
                msg_flags |= MSG_CTRUNC;
            } else {
                let mut c = [0u8; PKTINFO_SPACE];
                c[0..8].copy_from_slice(&20u64.to_le_bytes());
                c[8..12].copy_from_slice(&nl::SOL_NETLINK.to_le_bytes());
                c[12..16].copy_from_slice(&nl::NETLINK_PKTINFO.to_le_bytes());
                let n = PKTINFO_SPACE.min(m.controllen as usize);
                k.write_user(tid, m.control, &c[..n])?;
                clen = n as u64;
            }
        }
        k.write_u64(tid, p.checked_add(40).ok_or(Errno::EFAULT)?, clen)?;
        k.write_u32(tid, p.checked_add(48).ok_or(Errno::EFAULT)?, msg_flags)?;
        ok(out.ret as i64)
    }

    fn setsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (level, name, ptr, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32 as i32);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let len = len as usize;
        let root = k.task(tid)?.cred.euid == 0;
        let f = file(ops);
        if level == nl::SOL_NETLINK {
            if len < 4 {
                return Err(Errno::EINVAL);
            }
            let v = int_of(&k.read_user_vec(tid, ptr, 4)?)?;
            let mut s = f.sock.borrow_mut();
            match name {
                nl::NETLINK_ADD_MEMBERSHIP | nl::NETLINK_DROP_MEMBERSHIP => {
                    let g = v as u32;
                    if g == 0 {
                        return Err(Errno::EINVAL);
                    }
                    // Groups past 32 exist on Linux; none is ever sent here.
                    if g <= 32 {
                        let bit = 1u32 << (g - 1);
                        if name == nl::NETLINK_ADD_MEMBERSHIP {
                            s.groups |= bit;
                        } else {
                            s.groups &= !bit;
                        }
                    }
                }
                nl::NETLINK_PKTINFO => s.pktinfo = v != 0,
                nl::NETLINK_BROADCAST_ERROR => s.broadcast_error = v != 0,
                nl::NETLINK_NO_ENOBUFS => s.no_enobufs = v != 0,
                nl::NETLINK_CAP_ACK => s.cap_ack = v != 0,
                nl::NETLINK_EXT_ACK => s.ext_ack = v != 0,
                nl::NETLINK_GET_STRICT_CHK => s.strict = v != 0,
                // One network name space: every id is this one.
                nl::NETLINK_LISTEN_ALL_NSID => {}
                _ => return Err(Errno::ENOPROTOOPT),
            }
            return ok(0);
        }
        if level != SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        let v = int_of(&k.read_user_vec(tid, ptr, 4)?)?;
        let mut s = f.sock.borrow_mut();
        match name {
            SO_RCVBUF => s.rcvbuf = rcvbuf_from_opt(v),
            SO_SNDBUF => s.sndbuf = sndbuf_from_opt(v),
            SO_RCVBUFFORCE | SO_SNDBUFFORCE if !root => return Err(Errno::EPERM),
            SO_RCVBUFFORCE => s.rcvbuf = (v.max(0) as usize).saturating_mul(2).max(2304),
            SO_SNDBUFFORCE => s.sndbuf = (v.max(0) as usize).saturating_mul(2).max(4608),
            // Accepted: credentials and timestamps are not sent with replies.
            SO_PASSCRED | SO_REUSEADDR | SO_DEBUG | SO_KEEPALIVE => {}
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
            (SOL_SOCKET, SO_DOMAIN) => i32::from(nl::AF_NETLINK),
            (SOL_SOCKET, SO_PROTOCOL) => nl::NETLINK_ROUTE as i32,
            (SOL_SOCKET, SO_ERROR) => 0,
            (SOL_SOCKET, SO_RCVBUF) => s.rcvbuf.min(i32::MAX as usize) as i32,
            (SOL_SOCKET, SO_SNDBUF) => s.sndbuf.min(i32::MAX as usize) as i32,
            (SOL_SOCKET, SO_PASSCRED) => 0,
            (nl::SOL_NETLINK, nl::NETLINK_LIST_MEMBERSHIPS) => s.groups as i32,
            (nl::SOL_NETLINK, nl::NETLINK_PKTINFO) => i32::from(s.pktinfo),
            (nl::SOL_NETLINK, nl::NETLINK_BROADCAST_ERROR) => i32::from(s.broadcast_error),
            (nl::SOL_NETLINK, nl::NETLINK_NO_ENOBUFS) => i32::from(s.no_enobufs),
            (nl::SOL_NETLINK, nl::NETLINK_CAP_ACK) => i32::from(s.cap_ack),
            (nl::SOL_NETLINK, nl::NETLINK_EXT_ACK) => i32::from(s.ext_ack),
            (nl::SOL_NETLINK, nl::NETLINK_GET_STRICT_CHK) => i32::from(s.strict),
            _ => return Err(Errno::ENOPROTOOPT),
        };
        drop(s);
        if level == nl::SOL_NETLINK && len < 4 {
            return Err(Errno::EINVAL);
        }
        let b = v.to_le_bytes();
        let n = (len as usize).min(4);
        k.write_user(tid, ptr, &b[..n])?;
        k.write_u32(tid, lenp, n as u32)?;
        ok(0)
    }
}
