//! The socket calls: socket, socketpair, bind, listen, accept, accept4,
//! connect, sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg,
//! shutdown, getsockname, getpeername, setsockopt, getsockopt.
//!
//! The AF_UNIX row of the socket table (`sockcall.rs`), and the helpers
//! every family's calls share (msghdr, iovecs, sendmmsg/recvmmsg).
//! Handlers decode guest values (checked lengths, Linux's errno for each
//! bad one, in Linux's order) and call the AF_UNIX machinery in
//! `crate::net::unix` through the socket file (`kernel::files::socket`).
//! socket(2) of a family no other row makes comes here too, for its
//! errno (EAFNOSUPPORT).

use std::rc::Rc;

use super::sockcall::{Sock, SockArgs, SockCalls};
use super::{ok, Outcome, SysResult, AT_FDCWD};
use crate::errno::{Errno, KResult};
use crate::fs::{S_IFMT, S_IFSOCK};
use crate::kernel::files::socket::{
    release_rights, sigpipe_if, ucred_of, unix_block, unix_wake, GuestSock, SocketFile,
};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::net::cmsg::{self, CmsgWriter, OPTMEM_MAX};
use crate::net::sockaddr::{check_in_len, copy_out_len, AddrRequest, UnixAddr};
use crate::net::sockbuf::{rcvbuf_from_opt, sndbuf_from_opt};
use crate::net::unix::{SockType, UnixSocket};
use crate::net::wakes::{EV_IN, EV_OUT};
use crate::net::*;
use crate::vfs::file::FileDescription;
use crate::vfs::perm::MAY_WRITE;
use crate::vfs::OpenFileRef;

/// Most bytes one stream send or any receive moves (the rest is a short
/// count, as a full socket buffer gives).
const IO_CHUNK: usize = 1 << 20;
/// UIO_MAXIOV: sendmmsg/recvmmsg do at most this many messages.
pub(super) const UIO_MAXIOV: u64 = 1024;
/// sizeof(struct msghdr) and sizeof(struct mmsghdr).
pub(super) const MSGHDR: usize = 56;
pub(super) const MMSGHDR: u64 = 64;

/// The AF_UNIX socket calls.
pub(super) struct Unix;

fn sock(ops: &Rc<dyn FileDescription>) -> &SocketFile {
    ops.as_socket()
        .expect("the socket table sends only AF_UNIX sockets here")
}

/// unix_create's checks: the protocol (0 or PF_UNIX), then the type
/// (SOCK_RAW is a datagram socket).
fn unix_type(args: &SockArgs) -> KResult<SockType> {
    let p = args.proto as u32 as i32;
    if p != 0 && p != AF_UNIX as i32 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    SockType::from_raw(args.ty)
}

/// SO_PEERCRED's view of the caller (effective ids, as Linux).
fn peer_cred(k: &Kernel, tid: Pid) -> KResult<Ucred> {
    let t = k.task(tid)?;
    Ok(Ucred {
        pid: t.tgid,
        uid: t.cred.euid,
        gid: t.cred.egid,
    })
}

/// Reads a sockaddr of `len` (the guest's int) bytes.
fn read_addr(k: &mut Kernel, tid: Pid, ptr: u64, len: u64) -> KResult<Vec<u8>> {
    let len = check_in_len(len)?;
    if len == 0 {
        return Ok(Vec::new());
    }
    k.read_user_vec(tid, ptr, len)
}

/// Writes an address for getsockname-like calls: as much as fits the
/// guest's length, then the full length.
fn write_addr(k: &mut Kernel, tid: Pid, ptr: u64, lenp: u64, bytes: &[u8]) -> KResult<()> {
    let ulen = k.read_u32(tid, lenp)?;
    let n = copy_out_len(bytes.len(), ulen as u64)?;
    if n > 0 {
        k.write_user(tid, ptr, &bytes[..n])?;
    }
    k.write_u32(tid, lenp, bytes.len() as u32)
}

/// The socket a name refers to, for connect and sendto.
fn resolve(k: &mut Kernel, tid: Pid, addr: &UnixAddr, kind: SockType) -> KResult<GuestSock> {
    match addr {
        UnixAddr::Abstract(n) => {
            let s = k
                .unix
                .names
                .borrow()
                .lookup_abstract(n)
                .ok_or(Errno::ECONNREFUSED)?;
            if s.borrow().kind != kind {
                return Err(Errno::ECONNREFUSED);
            }
            Ok(s)
        }
        UnixAddr::Path(p) => {
            let r = k.lookup_at(tid, AT_FDCWD, p, true)?;
            if r.stat.mode & S_IFMT != S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            k.cred(tid)?.check(&r.stat, MAY_WRITE)?;
            let s = k
                .unix
                .names
                .borrow()
                .lookup_path((r.node.mnt, r.node.ino))
                .ok_or(Errno::ECONNREFUSED)?;
            if s.borrow().kind != kind {
                return Err(Errno::EPROTOTYPE);
            }
            Ok(s)
        }
        UnixAddr::Unnamed => Err(Errno::EINVAL),
    }
}

/// A path bind makes a socket inode (mode 0777 less the umask), as
/// mknod would: EADDRINUSE if the name exists.
fn bind_path(k: &mut Kernel, tid: Pid, s: &GuestSock, p: &[u8]) -> KResult<()> {
    let (parent, name, existing) = k.parent_at(tid, AT_FDCWD, p)?;
    if existing.is_some() {
        return Err(Errno::EADDRINUSE);
    }
    k.may_modify_dir(tid, &parent)?;
    if s.borrow().is_bound() {
        return Err(Errno::EINVAL);
    }
    let cred = k.cred(tid)?;
    let umask = k.task(tid)?.fs.borrow().umask;
    let ino = k.mounts.fs(parent.node.mnt)?.create(
        parent.node.ino,
        &name,
        S_IFSOCK | (0o777 & !umask),
        cred.euid,
        cred.egid,
        0,
    )?;
    UnixSocket::bind_path(s, p, (parent.node.mnt, ino))
}

fn do_accept(k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6], flags: u32) -> SysResult {
    // fs.file-max before a connection is taken off the queue.
    k.check_file_max(tid)?;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let sk = s;
    let (f, ops) = s;
    let s = sock(ops).sock.clone();
    let files = k.task(tid)?.files.clone();
    let slot = files.borrow_mut().reserve(1, 0)?;
    let c = match UnixSocket::accept(&s) {
        Ok(c) => c,
        Err(e) => {
            files.borrow_mut().unreserve(slot);
            return match e {
                Errno::EAGAIN if !f.borrow().nonblocking() => {
                    let o = unix_block(k, tid, &s, EV_IN);
                    timed(k, tid, sk, false, o)
                }
                e => Err(e),
            };
        }
    };
    unix_wake(k);
    if a[1] != 0 {
        let peer = c.borrow().peer_addr().unwrap_or_default().encode();
        if let Err(e) = write_addr(k, tid, a[1], a[2], &peer) {
            files.borrow_mut().unreserve(slot);
            let rights = UnixSocket::release(&c);
            release_rights(k, rights);
            return Err(e);
        }
    }
    let nf = SocketFile::open(k, c, flags & SOCK_NONBLOCK != 0);
    let fds = files
        .borrow_mut()
        .install_reserved(slot, vec![(nf, flags & SOCK_CLOEXEC != 0)]);
    ok(fds[0] as i64)
}

/// One message to send, decoded.
struct SendReq {
    iov: Vec<(u64, usize)>,
    name: Option<Vec<u8>>,
    control: Vec<u8>,
}

/// Reads `want` bytes of the iovecs `iov`, starting `skip` bytes in.
pub(crate) fn gather_from(
    k: &mut Kernel,
    tid: Pid,
    iov: &[(u64, usize)],
    mut skip: usize,
    want: usize,
) -> KResult<Vec<u8>> {
    let mut data = Vec::with_capacity(want);
    for &(base, len) in iov {
        if data.len() >= want {
            break;
        }
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = (len - skip).min(want - data.len());
        let at = base.checked_add(skip as u64).ok_or(Errno::EFAULT)?;
        k.read_user_append(tid, at, n, &mut data)?;
        skip = 0;
    }
    Ok(data)
}

/// Writes `data` into the iovecs `iov`, starting `skip` bytes in.
pub(super) fn scatter_to(
    k: &mut Kernel,
    tid: Pid,
    iov: &[(u64, usize)],
    mut skip: usize,
    data: &[u8],
) -> KResult<()> {
    let mut done = 0;
    for &(base, len) in iov {
        if done >= data.len() {
            break;
        }
        if skip >= len {
            skip -= len;
            continue;
        }
        let m = (len - skip).min(data.len() - done);
        let at = base.checked_add(skip as u64).ok_or(Errno::EFAULT)?;
        k.write_user(tid, at, &data[done..done + m])?;
        done += m;
        skip = 0;
    }
    Ok(())
}

/// write(2)/writev(2) on an AF_UNIX socket: a send with no flags, no
/// address and no control data (a blocking stream write goes on until
/// all of it went).
fn sock_write(k: &mut Kernel, tid: Pid, s: &Sock, iov: Vec<(u64, usize)>) -> SysResult {
    let req = SendReq {
        iov,
        name: None,
        control: Vec::new(),
    };
    let r = do_send(k, tid, s, req, 0);
    match would_block(k, tid, s, true, r)? {
        Ok(n) => ok(n as i64),
        Err(o) => timed(k, tid, s, true, o),
    }
}

/// read(2) on an AF_UNIX socket: a receive with no flags and no
/// control buffer (descriptors that came are closed, as Linux).
fn sock_read(k: &mut Kernel, tid: Pid, s: &Sock, buf: u64, len: usize) -> SysResult {
    let r = do_recv(k, tid, s, &[(buf, len)], 0, 0);
    match would_block(k, tid, s, false, r)? {
        Ok(out) => ok(out.ret as i64),
        Err(o) => timed(k, tid, s, false, o),
    }
}

/// Sends; Ok(None) means "would block". A blocking stream send goes on until all of it went, as Linux's unix_stream_sendmsg: when the
/// buffer fills part-way, the bytes sent so far are kept in the task
/// (`SockSleep::done`) and the retry after the sleep sends the rest; a
/// signal, the timeout or an error then returns the count sent (no
/// SIGPIPE once something went).
fn do_send(
    k: &mut Kernel,
    tid: Pid,
    (f, ops): &Sock,
    req: SendReq,
    flags: u32,
) -> KResult<Option<usize>> {
    let sf = sock(ops);
    let s = sf.sock.clone();
    let kind = sf.kind();
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0;
    let total = req
        .iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    if kind != SockType::Stream && total > s.borrow().sndbuf.saturating_sub(32) {
        return Err(Errno::EMSGSIZE);
    }
    let whole = kind == SockType::Stream && !nonblock;
    let done = if whole {
        k.task(tid)?.sock_sleep.done.min(total)
    } else {
        0
    };
    let ctl = cmsg::parse(&req.control)?;
    // Descriptors go with the first bytes only (a retry has sent them).
    let mut rights = Vec::with_capacity(ctl.fds.len());
    if done == 0 {
        for &fd in &ctl.fds {
            rights.push(k.fd_file(tid, fd)?);
        }
    }
    if let Some(c) = ctl.creds {
        let t = k.task(tid)?;
        let cr = &t.cred;
        let ok_ids = cr.euid == 0
            || (c.pid == t.tgid
                && [cr.uid, cr.euid, cr.suid].contains(&c.uid)
                && [cr.gid, cr.egid, cr.sgid].contains(&c.gid));
        if !ok_ids {
            return Err(Errno::EPERM);
        }
    }
    let target = match (&req.name, kind) {
        (Some(_), SockType::Stream) => Some(s.clone()),
        (Some(raw), SockType::Dgram) => {
            let addr = UnixAddr::parse_name(raw)?;
            Some(resolve(k, tid, &addr, kind)?)
        }
        _ => None,
    };
    let me = ucred_of(k, tid)?;
    let creds = UnixSocket::creds_for(&s, target.as_ref(), ctl.creds, me);
    let mut sent = done;
    loop {
        // A stream takes at most what is left of its SO_SNDBUF: only that
        // much is copied out of the guest (at least a byte, so a full
        // buffer still answers "would block").
        let room = UnixSocket::stream_room(&s).unwrap_or(usize::MAX).max(1);
        let want = (total - sent).min(IO_CHUNK).min(room);
        let data = match gather_from(k, tid, &req.iov, sent, want) {
            Ok(d) => d,
            Err(_) if sent > 0 => return Ok(Some(sent)),
            Err(e) => return Err(e),
        };
        let len = data.len();
        let r = UnixSocket::send_owned(
            &s,
            data,
            std::mem::take(&mut rights),
            creds,
            target.as_ref(),
        );
        unix_wake(k);
        match r {
            Ok(n) => {
                sent += n;
                if !whole || sent >= total {
                    return Ok(Some(sent));
                }
                if n < len {
                    k.task_mut(tid)?.sock_sleep.done = sent;
                    return Ok(None);
                }
            }
            Err(Errno::EAGAIN) if !nonblock => {
                k.task_mut(tid)?.sock_sleep.done = sent;
                return Ok(None);
            }
            Err(_) if sent > 0 => return Ok(Some(sent)),
            Err(e) => {
                sigpipe_if(k, tid, kind, &Err(e), flags & MSG_NOSIGNAL != 0);
                return Err(e);
            }
        }
    }
}

/// What a receive gave, for the caller to copy out.
struct RecvOut {
    ret: usize,
    name: Vec<u8>,
    control: Vec<u8>,
    msg_flags: u32,
}

/// Receives into `iov`; Ok(None) means "would block". `ctl_cap` is
/// msg_controllen (0 without a control buffer).
fn do_recv(
    k: &mut Kernel,
    tid: Pid,
    (f, ops): &Sock,
    iov: &[(u64, usize)],
    flags: u32,
    ctl_cap: usize,
) -> KResult<Option<RecvOut>> {
    let sf = sock(ops);
    let s = sf.sock.clone();
    let kind = sf.kind();
    if flags & MSG_OOB != 0 {
        return Err(Errno::EINVAL);
    }
    let nonblock = f.borrow().nonblocking() || flags & MSG_DONTWAIT != 0;
    let total = iov
        .iter()
        .try_fold(0usize, |acc, v| acc.checked_add(v.1))
        .ok_or(Errno::EINVAL)?;
    let peek = flags & MSG_PEEK != 0;
    let waitall = flags & MSG_WAITALL != 0;
    // A blocking MSG_WAITALL stream receive takes what is there and
    // sleeps for the rest, the bytes copied so far kept in the task
    // (`SockSleep::done`), as Linux's unix_stream_read_generic: a request
    // larger than both buffers together completes. It stops early at end
    // of stream, an error, a signal, the timeout, or a message carrying
    // descriptors. A peek waits until all of it is there instead.
    let gradual = waitall && !nonblock && !peek && kind == SockType::Stream;
    let mut done = if gradual {
        k.task(tid)?.sock_sleep.done.min(total)
    } else {
        0
    };
    let got = loop {
        let want = (total - done).min(IO_CHUNK);
        // A receive takes the queued bytes out of the queue and copies
        // them straight to the reader; a peek copies them into a buffer
        // cut to what is queued (but for MSG_WAITALL, whose request must
        // be there whole).
        let mut pieces = Vec::new();
        let r = if peek {
            let cap = if waitall {
                want
            } else {
                want.min(s.borrow().read_size())
            };
            let mut buf = vec![0u8; cap];
            let r = UnixSocket::recv(&s, &mut buf, true, waitall, nonblock);
            if let Ok(g) = &r {
                buf.truncate(g.n);
                pieces.push((buf, 0));
            }
            r
        } else {
            UnixSocket::recv_take(&s, want, &mut pieces, waitall && !gradual, nonblock)
        };
        unix_wake(k);
        let got = match r {
            Ok(g) => g,
            Err(Errno::EAGAIN) if !nonblock => {
                if done > 0 {
                    k.task_mut(tid)?.sock_sleep.done = done;
                }
                return Ok(None);
            }
            Err(_) if done > 0 => break None,
            Err(e) => return Err(e),
        };
        let mut at = done;
        for (bytes, from) in &pieces {
            if let Err(e) = scatter_to(k, tid, iov, at, &bytes[*from..]) {
                release_rights(k, got.rights);
                return Err(e);
            }
            at += bytes.len() - from;
        }
        debug_assert_eq!(at - done, got.n);
        done += got.n;
        if !gradual || got.n == 0 || done >= total || !got.rights.is_empty() {
            break Some(got);
        }
    };
    let got = got.unwrap_or(crate::net::unix::queue::Got {
        n: done,
        full: done,
        truncated: false,
        rights: Vec::new(),
        creds: None,
        stamp: None,
        from: Default::default(),
    });
    let mut w = CmsgWriter::new(ctl_cap);
    if s.borrow().passcred {
        w.put_creds(got.creds.unwrap_or(Ucred::NONE));
    }
    if s.borrow().timestamp && got.n > 0 {
        // SCM_TIMESTAMP: a struct timeval; a message queued before the
        // option was set gets the time it is read (Linux's
        // __sock_recv_timestamp stamps an unstamped skb then).
        let t = got.stamp.unwrap_or_else(crate::syscalls::now_ts);
        let mut tv = [0u8; 16];
        tv[..8].copy_from_slice(&t.sec.to_le_bytes());
        tv[8..].copy_from_slice(&i64::from(t.nsec / 1000).to_le_bytes());
        w.put(crate::net::SO_TIMESTAMP, &tv);
    }
    if !got.rights.is_empty() {
        let offered = got.rights.len();
        let fit = w.fds_that_fit(offered);
        let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
        let files = k.task(tid)?.files.clone();
        let mut installed = Vec::new();
        let mut rest = Vec::new();
        for (i, r) in got.rights.into_iter().enumerate() {
            if i < fit {
                match files.borrow_mut().install(r.clone(), cloexec, 0) {
                    Ok(fd) => installed.push(fd),
                    Err(_) => rest.push(r),
                }
            } else {
                rest.push(r);
            }
        }
        release_rights(k, rest);
        w.put_rights(&installed, offered);
    }
    let (control, cflags) = w.finish();
    let mut msg_flags = cflags;
    if got.truncated {
        msg_flags |= MSG_TRUNC;
    }
    let ret = if flags & MSG_TRUNC != 0 && kind != SockType::Stream {
        got.full
    } else if kind == SockType::Stream {
        done
    } else {
        got.n
    };
    let name = if got.from.is_unnamed() {
        Vec::new()
    } else {
        got.from.encode()
    };
    Ok(Some(RecvOut {
        ret,
        name,
        control,
        msg_flags,
    }))
}

/// SO_RCVTIMEO / SO_SNDTIMEO: a call that would sleep sleeps at most
/// the socket's timeout, then fails with EAGAIN (a signal: EINTR, not
/// restarted, see `SockSleep::timed`), as Linux: recv*,
/// read(2), readv(2) and accept take SO_RCVTIMEO; send*, write(2),
/// writev(2) and connect take SO_SNDTIMEO.
fn timed(k: &mut Kernel, tid: Pid, (_, ops): &Sock, send: bool, o: Outcome) -> SysResult {
    timed_file(k, tid, sock(ops), send, o)
}

/// `timed` for a socket file at hand (the read/write path).
pub(crate) fn timed_file(
    k: &mut Kernel,
    tid: Pid,
    sf: &SocketFile,
    send: bool,
    o: Outcome,
) -> SysResult {
    if o != Outcome::Block(crate::kernel::task::Wait::Queue(None)) {
        return Ok(o);
    }
    let (sec, usec) = {
        let opts = sf.opts.borrow();
        if send {
            opts.sndtimeo
        } else {
            opts.rcvtimeo
        }
    };
    if sec == 0 && usec == 0 {
        return Ok(o);
    }
    let d = crate::kernel::deadline::timeval(sec, usec).unwrap_or(crate::kernel::deadline::FOREVER);
    let t = k.task_mut(tid)?;
    let at = *t
        .block_deadline
        .get_or_insert_with(|| crate::kernel::deadline::after(d));
    if std::time::Instant::now() >= at {
        let done = t.sock_sleep.moved();
        k.leave_queues(tid);
        // A stream send that went in part returns what went (sendmmsg:
        // the messages sent).
        return if done > 0 {
            ok(done as i64)
        } else {
            Err(Errno::EAGAIN)
        };
    }
    t.sock_sleep.timed = true;
    Ok(Outcome::Block(crate::kernel::task::Wait::Queue(Some(at))))
}

/// None ("would block") becomes a sleep on the socket's queue: for room
/// to write (`send`) or for data to read.
fn would_block<T>(
    k: &mut Kernel,
    tid: Pid,
    s: &Sock,
    send: bool,
    r: KResult<Option<T>>,
) -> KResult<Result<T, Outcome>> {
    match r? {
        Some(v) => Ok(Ok(v)),
        None => Ok(Err(block_for(k, tid, s, send))),
    }
}

/// Sleeps on the socket behind `fd` for room (`send`) or data.
fn block_for(k: &mut Kernel, tid: Pid, (_f, ops): &Sock, send: bool) -> Outcome {
    let s = sock(ops).sock.clone();
    unix_block(k, tid, &s, if send { EV_OUT } else { EV_IN })
}

/// struct msghdr fields.
pub(super) struct MsgHdr {
    pub name: u64,
    pub namelen: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
}

pub(super) fn read_msghdr(k: &mut Kernel, tid: Pid, p: u64) -> KResult<MsgHdr> {
    let m: crate::abi::layout::MsgHdr = k.read_struct(tid, p)?;
    Ok(MsgHdr {
        name: m.msg_name,
        namelen: m.msg_namelen,
        iov: m.msg_iov,
        iovlen: m.msg_iovlen,
        control: m.msg_control,
        controllen: m.msg_controllen,
    })
}

pub(super) fn gather(k: &mut Kernel, tid: Pid, iov: u64, n: u64) -> KResult<Vec<(u64, usize)>> {
    if n > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    k.gather(tid, iov, n)
}

/// One sendmsg: the bytes that went and whether that was all of the
/// message (None: would block).
fn send_one(
    k: &mut Kernel,
    tid: Pid,
    s: &Sock,
    p: u64,
    flags: u32,
) -> KResult<Option<(usize, bool)>> {
    let m = read_msghdr(k, tid, p)?;
    let name = if m.name != 0 && m.namelen != 0 {
        Some(read_addr(k, tid, m.name, m.namelen as u64)?)
    } else {
        None
    };
    let iov = gather(k, tid, m.iov, m.iovlen)?;
    if m.controllen > i32::MAX as u64 || m.controllen as usize > OPTMEM_MAX {
        return Err(Errno::ENOBUFS);
    }
    let control = if m.controllen > 0 {
        k.read_user_vec(tid, m.control, m.controllen as usize)?
    } else {
        Vec::new()
    };
    let total = iov_total(&iov);
    let r = do_send(k, tid, s, SendReq { iov, name, control }, flags)?;
    Ok(r.map(|n| (n, n >= total)))
}

/// The bytes iovecs hold (saturating: the send checks the sum itself).
pub(super) fn iov_total(iov: &[(u64, usize)]) -> usize {
    iov.iter().fold(0usize, |acc, v| acc.saturating_add(v.1))
}

fn recv_one(k: &mut Kernel, tid: Pid, s: &Sock, p: u64, flags: u32) -> KResult<Option<usize>> {
    let m = read_msghdr(k, tid, p)?;
    let iov = gather(k, tid, m.iov, m.iovlen)?;
    let cap = if m.control == 0 {
        0
    } else {
        m.controllen.min(i32::MAX as u64) as usize
    };
    let Some(out) = do_recv(k, tid, s, &iov, flags, cap)? else {
        return Ok(None);
    };
    if m.name != 0 {
        let n = out.name.len().min(m.namelen as usize);
        k.write_user(tid, m.name, &out.name[..n])?;
        k.write_u32(tid, p + 8, out.name.len() as u32)?;
    } else {
        k.write_u32(tid, p + 8, 0)?;
    }
    if !out.control.is_empty() {
        k.write_user(tid, m.control, &out.control)?;
    }
    k.write_u64(tid, p + 40, out.control.len() as u64)?;
    k.write_u32(tid, p + 48, out.msg_flags)?;
    Ok(Some(out.ret))
}

/// sendmmsg/recvmmsg: each message in turn; after the first, one that
/// would block or fails ends the call with the count so far.
fn do_mmsg(k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6], send: bool) -> SysResult {
    let r = mmsg_loop(
        k,
        tid,
        a,
        send,
        |k, p, flags| {
            if send {
                send_one(k, tid, s, p, flags)
            } else {
                Ok(recv_one(k, tid, s, p, flags)?.map(|n| (n, true)))
            }
        },
        |_, _| Outcome::Block(crate::kernel::task::Wait::Queue(None)),
    );
    match r {
        Ok(Outcome::Block(_)) => {
            let o = block_for(k, tid, s, send);
            timed(k, tid, s, send, o)
        }
        r => r,
    }
}

/// sendmmsg/recvmmsg over any socket family: `one` moves one message
/// (its `struct msghdr` at the given address; None: it would block; else
/// the bytes moved and whether that was all of the message); the count
/// of each goes to its `msg_len`. MSG_WAITFORONE makes the calls after
/// the first non-blocking; a receive that would block or fails ends the
/// loop with the count so far (blocks, or fails, only if it is 0).
///
/// A send is Linux's __sys_sendmmsg: each message is a whole sendmsg, so
/// on a blocking socket it sleeps until each went (the messages sent and
/// the bytes of the next kept in the task, `SockSleep`: a signal or the
/// timeout then returns the messages sent, one cut short counted with
/// its short `msg_len`); a message that went in part (a non-blocking
/// stream) ends the loop; an error after the first message returns the
/// count before it, the error dropped.
pub(super) fn mmsg_loop(
    k: &mut Kernel,
    tid: Pid,
    a: [u64; 6],
    send: bool,
    mut one: impl FnMut(&mut Kernel, u64, u32) -> KResult<Option<(usize, bool)>>,
    block: impl FnOnce(&mut Kernel, Pid) -> Outcome,
) -> SysResult {
    let vlen = a[2].min(UIO_MAXIOV);
    let mut flags = a[3] as u32;
    if !send {
        flags &= !MSG_WAITFORONE;
    }
    let waitforone = !send && a[3] as u32 & MSG_WAITFORONE != 0;
    let mut done = if send {
        k.task(tid)?.sock_sleep.mmsg.unwrap_or(0).min(vlen)
    } else {
        0
    };
    while done < vlen {
        let p = done
            .checked_mul(MMSGHDR)
            .and_then(|o| a[1].checked_add(o))
            .ok_or(Errno::EFAULT)?;
        let len_at = p.checked_add(MSGHDR as u64).ok_or(Errno::EFAULT)?;
        match one(k, p, flags) {
            Ok(Some((n, all))) => {
                k.write_u32(tid, len_at, n as u32)?;
                done += 1;
                if send {
                    // The next message starts at its first byte.
                    let t = k.task_mut(tid)?;
                    t.sock_sleep.done = 0;
                    t.sock_sleep.mmsg = Some(done);
                }
                if !all {
                    break;
                }
                if waitforone {
                    flags |= MSG_DONTWAIT;
                }
            }
            Ok(None) if send => {
                // A signal or the timeout returns the count with this
                // message counted if part of it went: its msg_len now.
                let part = k.task(tid)?.sock_sleep.done;
                if part > 0 {
                    k.write_u32(tid, len_at, part as u32)?;
                }
                k.task_mut(tid)?.sock_sleep.mmsg = Some(done);
                return Ok(block(k, tid));
            }
            Ok(None) if done == 0 => return Ok(block(k, tid)),
            Err(e) if done == 0 => return Err(e),
            _ => break,
        }
    }
    ok(done as i64)
}

impl SockCalls for Unix {
    fn check(&self, _k: &mut Kernel, _tid: Pid, args: &SockArgs) -> KResult<()> {
        unix_type(args).map(drop)
    }

    fn create(&self, k: &mut Kernel, tid: Pid, args: &SockArgs) -> KResult<OpenFileRef> {
        let s = UnixSocket::new(&k.unix, unix_type(args)?)?;
        k.check_file_max(tid)?;
        Ok(SocketFile::open(k, s, args.nonblock))
    }

    fn pair(
        &self,
        k: &mut Kernel,
        tid: Pid,
        args: &SockArgs,
    ) -> KResult<(OpenFileRef, OpenFileRef)> {
        let kind = unix_type(args)?;
        k.check_file_max(tid)?;
        let cred = peer_cred(k, tid)?;
        let (x, y) = UnixSocket::pair(&k.unix, kind, cred)?;
        Ok((
            SocketFile::open(k, x, args.nonblock),
            SocketFile::open(k, y, args.nonblock),
        ))
    }

    fn bind(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let s = sock(ops).sock.clone();
        let raw = read_addr(k, tid, a[1], a[2])?;
        match UnixAddr::parse(&raw)? {
            AddrRequest::Autobind => UnixSocket::autobind(&s)?,
            AddrRequest::Unspec => return Err(Errno::EINVAL),
            AddrRequest::Addr(UnixAddr::Abstract(n)) => UnixSocket::bind_abstract(&s, &n)?,
            AddrRequest::Addr(UnixAddr::Path(p)) => bind_path(k, tid, &s, &p)?,
            AddrRequest::Addr(UnixAddr::Unnamed) => return Err(Errno::EINVAL),
        }
        ok(0)
    }

    fn listen(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let cred = peer_cred(k, tid)?;
        UnixSocket::listen(&sock(ops).sock, a[1] as u32 as i32, cred)?;
        unix_wake(k);
        ok(0)
    }

    fn connect(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let sk = s;
        let (f, ops) = s;
        let s = sock(ops).sock.clone();
        let kind = s.borrow().kind;
        let raw = read_addr(k, tid, a[1], a[2])?;
        if kind == SockType::Dgram {
            match UnixAddr::parse(&raw)? {
                AddrRequest::Unspec => UnixSocket::connect_dgram(&s, None)?,
                AddrRequest::Addr(addr) => {
                    let t = resolve(k, tid, &addr, kind)?;
                    UnixSocket::connect_dgram(&s, Some(&t))?;
                }
                AddrRequest::Autobind => return Err(Errno::EINVAL),
            }
            unix_wake(k);
            return ok(0);
        }
        let addr = UnixAddr::parse_name(&raw)?;
        let t = resolve(k, tid, &addr, kind)?;
        let cred = peer_cred(k, tid)?;
        match UnixSocket::connect_stream(&s, &t, cred) {
            Ok(()) => {
                unix_wake(k);
                ok(0)
            }
            Err(Errno::EAGAIN) if !f.borrow().nonblocking() => {
                let o = unix_block(k, tid, &s, EV_OUT);
                timed(k, tid, sk, true, o)
            }
            Err(e) => Err(e),
        }
    }

    fn getsockname(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let bytes = sock(ops).sock.borrow().addr().encode();
        write_addr(k, tid, a[1], a[2], &bytes)?;
        ok(0)
    }

    fn getpeername(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let bytes = sock(ops).sock.borrow().peer_addr()?.encode();
        write_addr(k, tid, a[1], a[2], &bytes)?;
        ok(0)
    }

    fn shutdown(&self, k: &mut Kernel, _tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        UnixSocket::shutdown(&sock(ops).sock, a[1] as u32)?;
        unix_wake(k);
        ok(0)
    }

    fn sendto(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let name = if a[4] != 0 && a[5] as u32 != 0 {
            Some(read_addr(k, tid, a[4], a[5])?)
        } else {
            None
        };
        let req = SendReq {
            iov: vec![(a[1], a[2] as usize)],
            name,
            control: Vec::new(),
        };
        let r = do_send(k, tid, s, req, a[3] as u32);
        match would_block(k, tid, s, true, r)? {
            Ok(n) => ok(n as i64),
            Err(o) => timed(k, tid, s, true, o),
        }
    }

    fn recvfrom(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let iov = [(a[1], a[2] as usize)];
        let r = do_recv(k, tid, s, &iov, a[3] as u32, 0);
        match would_block(k, tid, s, false, r)? {
            Ok(out) => {
                if a[4] != 0 {
                    write_addr(k, tid, a[4], a[5], &out.name)?;
                }
                ok(out.ret as i64)
            }
            Err(o) => timed(k, tid, s, false, o),
        }
    }

    fn sendmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let r = send_one(k, tid, s, a[1], a[2] as u32).map(|o| o.map(|v| v.0));
        match would_block(k, tid, s, true, r)? {
            Ok(n) => ok(n as i64),
            Err(o) => timed(k, tid, s, true, o),
        }
    }

    fn recvmsg(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let r = recv_one(k, tid, s, a[1], a[2] as u32);
        match would_block(k, tid, s, false, r)? {
            Ok(n) => ok(n as i64),
            Err(o) => timed(k, tid, s, false, o),
        }
    }

    fn setsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let sf = sock(ops);
        let (level, opt, ptr, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32 as i32);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        if (len as usize) < 4 {
            return Err(Errno::EINVAL);
        }
        let word = k.read_u32(tid, ptr)? as i32;
        let mut o = sf.opts.borrow_mut();
        match opt {
            SO_REUSEADDR => o.reuseaddr = word != 0,
            SO_REUSEPORT => o.reuseport = word != 0,
            SO_KEEPALIVE => o.keepalive = word != 0,
            SO_BROADCAST => o.broadcast = word != 0,
            SO_DEBUG => o.debug = word != 0,
            SO_DONTROUTE => o.dontroute = word != 0,
            SO_RCVLOWAT => o.rcvlowat = word.max(1),
            SO_PASSCRED => sf.sock.borrow_mut().passcred = word != 0,
            crate::net::SO_TIMESTAMP => sf.sock.borrow_mut().timestamp = word != 0,
            SO_SNDBUF | SO_SNDBUFFORCE => sf.sock.borrow_mut().sndbuf = sndbuf_from_opt(word),
            SO_RCVBUF | SO_RCVBUFFORCE => sf.sock.borrow_mut().rcvbuf = rcvbuf_from_opt(word),
            SO_LINGER => {
                if (len as usize) < 8 {
                    return Err(Errno::EINVAL);
                }
                let secs = k.read_u32(tid, ptr + 4)? as i32;
                o.linger = (word, secs);
            }
            SO_RCVTIMEO | SO_SNDTIMEO => {
                if (len as usize) < 16 {
                    return Err(Errno::EINVAL);
                }
                let sec = k.read_u64(tid, ptr)? as i64;
                let usec = k.read_u64(tid, ptr + 8)? as i64;
                if !(0..1_000_000).contains(&usec) {
                    return Err(Errno::EDOM);
                }
                let v = (sec.max(0), usec);
                if opt == SO_RCVTIMEO {
                    o.rcvtimeo = v;
                } else {
                    o.sndtimeo = v;
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        ok(0)
    }

    fn getsockopt(&self, k: &mut Kernel, tid: Pid, s: &Sock, a: [u64; 6]) -> SysResult {
        let (_f, ops) = s;
        let sf = sock(ops);
        let (level, opt, ptr, lenp) = (a[1] as i32, a[2] as i32, a[3], a[4]);
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let len = k.read_u32(tid, lenp)? as i32;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let o = *sf.opts.borrow();
        let int = |v: i32| v.to_le_bytes().to_vec();
        let b = |v: bool| int(v as i32);
        let timeval = |(s, u): (i64, i64)| {
            let mut v = s.to_le_bytes().to_vec();
            v.extend_from_slice(&u.to_le_bytes());
            v
        };
        let bytes = {
            let mut s = sf.sock.borrow_mut();
            match opt {
                SO_TYPE => int(s.kind.raw() as i32),
                SO_PROTOCOL => int(0),
                SO_DOMAIN => int(AF_UNIX as i32),
                SO_ERROR => int(s.take_error().map_or(0, |e| e.0)),
                SO_SNDBUF => int(s.sndbuf as i32),
                SO_RCVBUF => int(s.rcvbuf as i32),
                SO_PASSCRED => b(s.passcred),
                crate::net::SO_TIMESTAMP => b(s.timestamp),
                SO_ACCEPTCONN => b(s.listening()),
                SO_REUSEADDR => b(o.reuseaddr),
                SO_REUSEPORT => b(o.reuseport),
                SO_KEEPALIVE => b(o.keepalive),
                SO_BROADCAST => b(o.broadcast),
                SO_DEBUG => b(o.debug),
                SO_DONTROUTE => b(o.dontroute),
                SO_RCVLOWAT => int(o.rcvlowat),
                SO_SNDLOWAT => int(1),
                SO_LINGER => {
                    let mut v = int(o.linger.0);
                    v.extend(int(o.linger.1));
                    v
                }
                SO_RCVTIMEO => timeval(o.rcvtimeo),
                SO_SNDTIMEO => timeval(o.sndtimeo),
                SO_PEERCRED => s
                    .peercred()
                    .unwrap_or(Ucred {
                        pid: 0,
                        uid: u32::MAX,
                        gid: u32::MAX,
                    })
                    .to_bytes()
                    .to_vec(),
                _ => return Err(Errno::ENOPROTOOPT),
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

    fn read(&self, k: &mut Kernel, tid: Pid, s: &Sock, buf: u64, len: usize) -> Option<SysResult> {
        Some(sock_read(k, tid, s, buf, len))
    }
}
