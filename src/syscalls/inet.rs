//! The socket calls on inet sockets (AF_INET, AF_INET6): their row of
//! the socket table (`sockcall.rs`).
//!
//! Handlers decode guest values with Linux's checks, call the socket
//! (`crate::net::inet::InetSocket`) on the stack, run the stack
//! (`Kernel::net_settle`), then copy results out. "Would block" sleeps
//! on the socket queue with smoltcp's next timer as the deadline; an
//! operation that may block goes through `Kernel::net_io`, which tries
//! it again when the stack run after it woke socket waiters (else the
//! caller would sleep through that wake-up).

use std::rc::Rc;

use super::net::{self, read_msghdr, MsgHdr};
use super::sockcall::{Sock, SockArgs, SockCalls};
use super::{ok, rawnet, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::files::inet::{sigpipe_if, InetFile};
use crate::kernel::task::{Pid, Wait};
use crate::kernel::waitq::ALL_EVENTS;
use crate::kernel::Kernel;
use crate::net::inet::addr::{self, AddrReq, Family, Use};
use crate::net::inet::opts::{IPPROTO_TCP, TCP_INFO};
use crate::net::inet::{InetSocket, Proto};
use crate::net::sockaddr::{check_in_len, copy_out_len};
use crate::net::*;
use crate::vfs::file::FileDescription;
use crate::vfs::OpenFileRef;

/// IPPROTO_MAX: inet_create's and inet6_create's protocol range (EINVAL
/// outside it, before the type's protocols are looked at).
const IPPROTO_MAX: i32 = 263;

/// Most bytes one send or receive moves (the rest is a short count).
const IO_CHUNK: usize = 1 << 20;
/// The least a TCP send gathers when its buffer is full now, or a TCP
/// receive makes room for when nothing is queued (the stack run after it
/// may free room or bring bytes: `Kernel::net_io`): a smallest buffer's worth.
const ROOM_MIN: usize = 64 << 10;
/// sizeof(struct tcp_info) as Linux 6.x reports it.
const TCP_INFO_LEN: usize = 232;

/// The AF_INET and AF_INET6 socket calls.
pub(super) struct Inet;

/// What socket(2) makes for `args` (inet_create's checks): an inet
/// socket of this family and protocol, or None for root's IPPROTO_RAW
/// socket (`rawnet.rs`).
fn spec(k: &Kernel, tid: Pid, args: &SockArgs) -> KResult<Option<(Family, Proto)>> {
    let root = k.task(tid)?.cred.euid == 0;
    if root && rawnet::is_rawip(args) {
        return Ok(None);
    }
    let family = if args.domain == 2 {
        Family::V4
    } else {
        Family::V6
    };
    let p = args.proto as u32 as i32;
    if !(0..IPPROTO_MAX).contains(&p) {
        return Err(Errno::EINVAL);
    }
    let proto = match (args.ty, p) {
        (SOCK_STREAM, 0 | 6) => Proto::Tcp,
        (SOCK_DGRAM, 0 | 17) => Proto::Udp,
        // Ping sockets, for every group: ping_group_range "0 2147483647",
        // as systemd sets it (Linux's own default "1 0" allows none).
        (SOCK_DGRAM, 1) if family == Family::V4 => Proto::Icmp,
        // ICMPv6 ping sockets are not built: the answer of a group
        // outside the range.
        (SOCK_DGRAM, 58) if family == Family::V6 => return Err(Errno::EACCES),
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        // The raw type's protocol is a wildcard that IPPROTO_IP does
        // not match; the privilege is asked after the lookup.
        (3, 0) => return Err(Errno::EPROTONOSUPPORT),
        (3, _) if !root => return Err(Errno::EPERM),
        // Raw sockets: ICMP over IPv4 only (busybox ping as root).
        (3, 1) if family == Family::V4 => Proto::Icmp,
        (3, _) => return Err(Errno::EPROTONOSUPPORT),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    Ok(Some((family, proto)))
}

fn file(ops: &Rc<dyn FileDescription>) -> &InetFile {
    ops.as_inet()
        .expect("the socket table sends only inet sockets here")
}

/// Sleeps until the socket `ops` changes or the stack's next timer; at
/// once if its last `net_io` was woken after its last try (the wake-up
/// came before this sleep: `Kernel::net_io`).
fn block(k: &mut Kernel, tid: Pid, ops: &Rc<dyn FileDescription>) -> Outcome {
    let sf = file(ops);
    let d = if sf.retry_now.replace(false) {
        Some(std::time::Instant::now())
    } else {
        k.net_deadline()
    };
    let q = sf.q.clone();
    k.wait_on(tid, &q, ALL_EVENTS);
    Outcome::Block(Wait::Queue(d))
}

fn read_addr(k: &mut Kernel, tid: Pid, ptr: u64, len: u64) -> KResult<Vec<u8>> {
    let len = check_in_len(len)?;
    if len == 0 {
        return Ok(Vec::new());
    }
    k.read_user_vec(tid, ptr, len)
}

fn write_addr(k: &mut Kernel, tid: Pid, ptr: u64, lenp: u64, bytes: &[u8]) -> KResult<()> {
    let ulen = k.read_u32(tid, lenp)?;
    let n = copy_out_len(bytes.len(), ulen as u64)?;
    if n > 0 {
        k.write_user(tid, ptr, &bytes[..n])?;
    }
    k.write_u32(tid, lenp, bytes.len() as u32)
}

fn do_accept(k: &mut Kernel, tid: Pid, (f, ops): &Sock, a: [u64; 6], flags: u32) -> SysResult {
    // fs.file-max before a connection is taken off the queue.
    k.check_file_max(tid)?;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let sf = file(ops);
    let files = k.task(tid)?.files.clone();
    let slot = files.borrow_mut().reserve(1, 0)?;
    let r = k.net_io(sf, |k| sf.sock.borrow_mut().accept(k.net()));
    let mut c = match r {
        Ok(c) => c,
        Err(e) => {
            files.borrow_mut().unreserve(slot);
            return match e {
                Errno::EAGAIN if !f.borrow().nonblocking() => Ok(block(k, tid, ops)),
                e => Err(e),
            };
        }
    };
    if a[1] != 0 {
        let peer = c.peer_name(k.net()).map(|p| addr::encode(c.family, p));
        let w = peer.and_then(|b| write_addr(k, tid, a[1], a[2], &b));
        if let Err(e) = w {
            files.borrow_mut().unreserve(slot);
            c.release(k.net());
            k.net_settle();
            return Err(e);
        }
    }
    let nf = InetFile::open(k, c, flags & SOCK_NONBLOCK != 0);
    let fds = files
        .borrow_mut()
        .install_reserved(slot, vec![(nf, flags & SOCK_CLOEXEC != 0)]);
    ok(fds[0] as i64)
}

/// Sends from `iov`; Ok(None) means "would block". A blocking TCP send
/// goes on until all of it went, as Linux's tcp_sendmsg: when the buffer
/// fills part-way, the bytes sent so far are kept in the task
/// (`SockSleep::done`) and the retry after the sleep sends the rest; a
/// signal, the timeout or an error then returns the count sent (no
/// SIGPIPE once something went).
fn do_send(
    k: &mut Kernel,
    tid: Pid,
    (f, ops): &Sock,
    iov: &[(u64, usize)],
    name: Option<Vec<u8>>,
    flags: u32,
) -> KResult<Option<usize>> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let sf = file(ops);
    let (family, proto) = {
        let s = sf.sock.borrow();
        (s.family, s.proto)
    };
    let nonblock = f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0;
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    if proto != Proto::Tcp && total > crate::net::inet::socket::UDP_MAX {
        return Err(Errno::EMSGSIZE);
    }
    let to = match (&name, proto) {
        (Some(raw), Proto::Udp | Proto::Icmp) => match addr::parse(family, raw, Use::SendTo)? {
            AddrReq::Addr(x) => Some(x),
            AddrReq::Unspec => None,
        },
        _ => None,
    };
    let whole = proto == Proto::Tcp && !nonblock;
    let mut sent = if whole {
        k.task(tid)?.sock_sleep.done.min(total)
    } else {
        0
    };
    loop {
        // TCP takes at most its send buffer's free room: gather no more
        // of the guest's buffer than that (a big write is not copied
        // again in full for each buffer's worth that goes).
        let room = sf
            .sock
            .borrow()
            .send_room(k.net())
            .map_or(IO_CHUNK, |r| r.max(ROOM_MIN));
        let want = (total - sent).min(IO_CHUNK).min(room);
        let data = match net::gather_from(k, tid, iov, sent, want) {
            Ok(d) => d,
            Err(_) if sent > 0 => return Ok(Some(sent)),
            Err(e) => return Err(e),
        };
        let r = k.net_io(sf, |k| sf.sock.borrow_mut().send(k.net(), &data, to));
        match r {
            Ok(n) => {
                sent += n;
                if !whole || sent >= total {
                    return Ok(Some(sent));
                }
                // A part went: send again rather than sleep. Only an
                // EAGAIN from `net_io` may sleep: it saw no wake-up
                // after the send found the buffer full (a sleep here
                // would miss the room the run after this send freed).
            }
            Err(Errno::EAGAIN) if !nonblock => {
                k.task_mut(tid)?.sock_sleep.done = sent;
                return Ok(None);
            }
            Err(_) if sent > 0 => return Ok(Some(sent)),
            Err(e) => {
                if proto == Proto::Tcp {
                    sigpipe_if(k, tid, &Err(e), flags & MSG_NOSIGNAL != 0);
                }
                return Err(e);
            }
        }
    }
}

/// write(2) and writev(2) on an inet socket: a send with no
/// flags and no address (so a blocking stream write, like send, returns
/// only once all of it went, or on a signal, timeout or error).
fn sock_write(k: &mut Kernel, tid: Pid, sock: &Sock, iov: Vec<(u64, usize)>) -> SysResult {
    let r = do_send(k, tid, sock, &iov, None, 0);
    match done_or_block(k, tid, sock, r)? {
        Ok(n) => ok(n as i64),
        Err(o) => Ok(o),
    }
}

struct RecvOut {
    ret: usize,
    name: Vec<u8>,
    msg_flags: u32,
}

/// Receives into `iov`; Ok(None) means "would block". A blocking
/// MSG_WAITALL receive on TCP takes what is there and sleeps for the
/// rest, the bytes copied so far kept in the task (`SockSleep::done`), as
/// Linux's tcp_recvmsg: so a request larger than both buffers together
/// completes; end of stream, an error, a signal or the timeout return
/// what was copied.
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
    let sf = file(ops);
    let nonblock = f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0;
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    let peek = flags & MSG_PEEK != 0;
    let tcp = sf.sock.borrow().proto == Proto::Tcp;
    let waitall = flags & MSG_WAITALL != 0 && !nonblock && tcp;
    // A peek cannot take part of the data and wait for the rest: it
    // waits until all of it is there (at most a buffer's worth).
    let gradual = waitall && !peek;
    let mut done = if gradual {
        k.task(tid)?.sock_sleep.done.min(total)
    } else {
        0
    };
    let mut last = None;
    loop {
        // A TCP read takes at most what is queued (or, if nothing is
        // yet, what the stack run after it may bring): the buffer is no
        // bigger than that.
        let cap = if tcp && !peek {
            let waiting = sf.sock.borrow().recv_waiting(k.net());
            waiting.map_or(IO_CHUNK, |w| w.max(ROOM_MIN))
        } else {
            IO_CHUNK
        };
        let mut buf = vec![0u8; (total - done).min(IO_CHUNK).min(cap)];
        let r = k.net_io(sf, |k| {
            let mut s = sf.sock.borrow_mut();
            if waitall && peek && !s.has_all(k.net(), buf.len()) {
                Err(Errno::EAGAIN)
            } else {
                s.recv(k.net(), &mut buf, peek)
            }
        });
        let got = match r {
            Ok(g) => g,
            Err(Errno::EAGAIN) if !nonblock => {
                if done > 0 {
                    k.task_mut(tid)?.sock_sleep.done = done;
                }
                return Ok(None);
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        net::scatter_to(k, tid, iov, done, &buf[..got.n])?;
        done += got.n;
        let end = got.n == 0;
        last = Some(got);
        if !gradual || end || done >= total {
            break;
        }
    }
    let s = sf.sock.borrow();
    let (full, n, from) = last.map_or((done, done, None), |g| (g.full, g.n, g.from));
    let ret = if flags & MSG_TRUNC != 0 && !tcp {
        full
    } else {
        done
    };
    Ok(Some(RecvOut {
        ret,
        name: from.map_or(Vec::new(), |a| addr::encode(s.family, a)),
        msg_flags: if full > n { MSG_TRUNC } else { 0 },
    }))
}

fn done_or_block<T>(
    k: &mut Kernel,
    tid: Pid,
    sock: &Sock,
    r: KResult<Option<T>>,
) -> KResult<Result<T, Outcome>> {
    match r? {
        Some(v) => Ok(Ok(v)),
        None => Ok(Err(block(k, tid, &sock.1))),
    }
}

/// A msghdr's iovec, checked (inet sockets take and give no control
/// messages: its control fields are not read).
fn gather(k: &mut Kernel, tid: Pid, m: &MsgHdr) -> KResult<Vec<(u64, usize)>> {
    net::gather(k, tid, m.iov, m.iovlen)
}

/// Sends one `struct msghdr`: the bytes that went and whether that was
/// all of it (None: would block).
fn send_one(
    k: &mut Kernel,
    tid: Pid,
    sock: &Sock,
    p: u64,
    flags: u32,
) -> KResult<Option<(usize, bool)>> {
    let m = read_msghdr(k, tid, p)?;
    let name = if m.name != 0 && m.namelen != 0 {
        Some(read_addr(k, tid, m.name, m.namelen as u64)?)
    } else {
        None
    };
    let iov = gather(k, tid, &m)?;
    let total = net::iov_total(&iov);
    Ok(do_send(k, tid, sock, &iov, name, flags)?.map(|n| (n, n >= total)))
}

fn recv_one(k: &mut Kernel, tid: Pid, sock: &Sock, p: u64, flags: u32) -> KResult<Option<usize>> {
    let m = read_msghdr(k, tid, p)?;
    let iov = gather(k, tid, &m)?;
    let Some(out) = do_recv(k, tid, sock, &iov, flags)? else {
        return Ok(None);
    };
    if m.name != 0 {
        let n = out.name.len().min(m.namelen as usize);
        k.write_user(tid, m.name, &out.name[..n])?;
        k.write_u32(tid, p + 8, out.name.len() as u32)?;
    } else {
        k.write_u32(tid, p + 8, 0)?;
    }
    k.write_u64(tid, p + 40, 0)?;
    k.write_u32(tid, p + 48, out.msg_flags)?;
    Ok(Some(out.ret))
}

/// sendmmsg/recvmmsg: each message in turn; after the first, one that
/// would block or fails ends the call with the count so far.
fn do_mmsg(k: &mut Kernel, tid: Pid, sock: &Sock, a: [u64; 6], send: bool) -> SysResult {
    net::mmsg_loop(
        k,
        tid,
        a,
        send,
        |k, p, flags| {
            if send {
                send_one(k, tid, sock, p, flags)
            } else {
                Ok(recv_one(k, tid, sock, p, flags)?.map(|n| (n, true)))
            }
        },
        |k, tid| block(k, tid, &sock.1),
    )
}

impl SockCalls for Inet {
    fn check(&self, k: &mut Kernel, tid: Pid, args: &SockArgs) -> KResult<()> {
        spec(k, tid, args).map(drop)
    }

    fn create(&self, k: &mut Kernel, tid: Pid, args: &SockArgs) -> KResult<OpenFileRef> {
        let Some((family, proto)) = spec(k, tid, args)? else {
            return rawnet::rawip_open(k, tid, args.nonblock);
        };
        let mut s = InetSocket::new(k.net(), family, proto);
        s.raw = args.ty == 3;
        k.check_file_max(tid)?;
        Ok(InetFile::open(k, s, args.nonblock))
    }

    fn bind(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let raw = read_addr(k, tid, a[1], a[2])?;
        let mut s = file(ops).sock.borrow_mut();
        let addr = match addr::parse(s.family, &raw, Use::Bind)? {
            AddrReq::Addr(x) => x,
            AddrReq::Unspec => return Err(Errno::EINVAL),
        };
        let privileged = k.task(tid)?.cred.euid == 0;
        s.bind(k.net(), addr, privileged)?;
        ok(0)
    }

    fn listen(&self, k: &mut Kernel, _tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let r = file(ops)
            .sock
            .borrow_mut()
            .listen(k.net(), a[1] as u32 as i32);
        k.net_settle();
        r?;
        ok(0)
    }

    fn connect(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (f, ops) = s;
        let raw = read_addr(k, tid, a[1], a[2])?;
        let sf = file(ops);
        let req = addr::parse(sf.sock.borrow().family, &raw, Use::Connect)?;
        let wait = !f.borrow().nonblocking();
        let r = sf.sock.borrow_mut().connect(k.net(), req, wait);
        k.net_settle();
        let r = match r {
            // Started: the handshake on lo is over by now, or refused.
            Err(Errno::EINPROGRESS) if wait => sf.sock.borrow_mut().connect_check(k.net(), true),
            r => r,
        };
        match r {
            Ok(()) => ok(0),
            Err(Errno::EAGAIN) => Ok(block(k, tid, ops)),
            Err(e) => Err(e),
        }
    }

    fn getsockname(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let s = file(ops).sock.borrow();
        let b = addr::encode(s.family, s.local_name(k.net()));
        write_addr(k, tid, a[1], a[2], &b)?;
        ok(0)
    }

    fn getpeername(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let s = file(ops).sock.borrow();
        let b = addr::encode(s.family, s.peer_name(k.net())?);
        write_addr(k, tid, a[1], a[2], &b)?;
        ok(0)
    }

    fn shutdown(&self, k: &mut Kernel, _tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let r = file(ops).sock.borrow_mut().shutdown(k.net(), a[1] as u32);
        k.net_settle();
        r?;
        ok(0)
    }

    fn sendto(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sock = s;
        let name = if a[4] != 0 && a[5] as u32 != 0 {
            Some(read_addr(k, tid, a[4], a[5])?)
        } else {
            None
        };
        let r = do_send(k, tid, sock, &[(a[1], a[2] as usize)], name, a[3] as u32);
        match done_or_block(k, tid, sock, r)? {
            Ok(n) => ok(n as i64),
            Err(o) => Ok(o),
        }
    }

    fn recvfrom(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sock = s;
        let r = do_recv(k, tid, sock, &[(a[1], a[2] as usize)], a[3] as u32);
        match done_or_block(k, tid, sock, r)? {
            Ok(out) => {
                if a[4] != 0 {
                    write_addr(k, tid, a[4], a[5], &out.name)?;
                }
                ok(out.ret as i64)
            }
            Err(o) => Ok(o),
        }
    }

    fn sendmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sock = s;
        let r = send_one(k, tid, sock, a[1], a[2] as u32).map(|o| o.map(|v| v.0));
        match done_or_block(k, tid, sock, r)? {
            Ok(n) => ok(n as i64),
            Err(o) => Ok(o),
        }
    }

    fn recvmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sock = s;
        let r = recv_one(k, tid, sock, a[1], a[2] as u32);
        match done_or_block(k, tid, sock, r)? {
            Ok(n) => ok(n as i64),
            Err(o) => Ok(o),
        }
    }

    fn setsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (level, name, ptr, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32 as i32);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let val = k.read_user_vec(tid, ptr, (len as usize).min(16))?;
        let mut s = file(ops).sock.borrow_mut();
        let proto = s.proto;
        let e = s.opts.set(proto, level, name, &val)?;
        s.apply(k.net(), e);
        ok(0)
    }

    fn getsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let (level, name, ptr, lenp) = (a[1] as i32, a[2] as i32, a[3], a[4]);
        let len = k.read_u32(tid, lenp)? as i32;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let int = |v: i32| v.to_le_bytes().to_vec();
        let bytes = {
            let mut s = file(ops).sock.borrow_mut();
            let tcp = s.proto == Proto::Tcp;
            match (level, name) {
                (SOL_SOCKET, SO_TYPE) => int(if tcp {
                    1
                } else if s.raw {
                    3
                } else {
                    2
                }),
                (SOL_SOCKET, SO_PROTOCOL) => int(match s.proto {
                    Proto::Tcp => 6,
                    Proto::Udp => 17,
                    Proto::Icmp => 1,
                }),
                (SOL_SOCKET, SO_DOMAIN) => int(s.family.raw() as i32),
                (SOL_SOCKET, SO_ERROR) => int(s.take_error(k.net()).map_or(0, |e| e.0)),
                (SOL_SOCKET, SO_ACCEPTCONN) => int(s.listening() as i32),
                (SOL_SOCKET, SO_PEERCRED) => Ucred {
                    pid: 0,
                    uid: u32::MAX,
                    gid: u32::MAX,
                }
                .to_bytes()
                .to_vec(),
                (IPPROTO_TCP, TCP_INFO) if tcp => {
                    let mut b = vec![0u8; TCP_INFO_LEN];
                    b[0] = s.tcp_row(k.net()).map_or(7, |r| r.0);
                    b
                }
                _ => {
                    let proto = s.proto;
                    s.opts.get(proto, level, name)?
                }
            }
        };
        let n = (len as usize).min(bytes.len());
        k.write_user(tid, ptr, &bytes[..n])?;
        k.write_u32(tid, lenp, n as u32)?;
        ok(0)
    }

    fn accept(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6], flags: u32) -> SysResult {
        do_accept(k, tid, s, a, flags)
    }

    fn mmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6], send: bool) -> SysResult {
        do_mmsg(k, tid, s, a, send)
    }

    fn write(
        &self,
        k: &mut Kernel,
        tid: Pid,
        s: &Sock,
        iov: Vec<(u64, usize)>,
    ) -> Option<SysResult> {
        Some(sock_write(k, tid, s, iov))
    }
}
