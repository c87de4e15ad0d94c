//! The socket calls' entry points and the one table that says which code
//! serves a socket. socket(2) picks an implementation by its address
//! family; every call on a socket fd by the kind its open file reports
//! (`FileDescription::sock_kind`): EBADF, then ENOTSOCK, are checked here
//! once, and the implementation gets the socket.
//!
//! | kind      | families            | calls in |
//! |-----------|---------------------|----------|
//! | `Unix`    | AF_UNIX             | `net.rs` |
//! | `Inet`    | AF_INET, AF_INET6   | `inet.rs` |
//! | `RawIp`   | (AF_INET SOCK_RAW IPPROTO_RAW, made by `inet.rs`) | `rawnet.rs` |
//! | `Packet`  | AF_PACKET           | `rawnet.rs` |
//! | `Netlink` | AF_NETLINK          | `netlink.rs` |
//!
//! socket(2) and socketpair(2) check the flags, the family's and the
//! type's ranges here, in Linux's order, then the family's own checks;
//! a call a family does not have answers EOPNOTSUPP, as Linux's
//! sock_no_* operations (socketpair on any family but AF_UNIX). Adding
//! a family is one row of `FAMILIES` (and its file reporting its kind).

use std::rc::Rc;

use super::{fd_arg, inet, net, netlink, ok, rawnet, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::net::{SockKind, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_TYPE_MASK};
use crate::vfs::file::{ops_of, FileDescription};
use crate::vfs::OpenFileRef;

/// A socket a call names: its open file and the file's operations.
pub(super) type Sock = (OpenFileRef, Rc<dyn FileDescription>);

/// One implementation's socket calls. Each gets the socket the fd
/// (`a[0]`) names and the call's raw arguments.
pub(super) trait SockCalls: Sync {
    /// socket(2)'s checks of the family, after the shared ones
    /// (`family`), in Linux's order: what creating such a socket fails
    /// with. A kind no row makes by family is made by another's
    /// (EAFNOSUPPORT here).
    fn check(&self, _k: &mut Kernel, _tid: Pid, _args: &SockArgs) -> KResult<()> {
        Err(Errno::EAFNOSUPPORT)
    }

    /// A new socket (`check`'s errors first).
    fn create(&self, _k: &mut Kernel, _tid: Pid, _args: &SockArgs) -> KResult<OpenFileRef> {
        Err(Errno::EAFNOSUPPORT)
    }

    /// socketpair(2) once `check` passed: two connected sockets, or
    /// EOPNOTSUPP (Linux's sock_no_socketpair) for a family without.
    fn pair(
        &self,
        _k: &mut Kernel,
        _tid: Pid,
        _args: &SockArgs,
    ) -> KResult<(OpenFileRef, OpenFileRef)> {
        Err(Errno::EOPNOTSUPP)
    }

    fn bind(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn connect(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn listen(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    /// accept (`flags` 0) and accept4.
    fn accept(
        &self,
        _k: &mut Kernel,
        _tid: Pid,
        _s: &Sock,
        _a: [u64; 6],
        _flags: u32,
    ) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn shutdown(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn getsockname(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn getpeername(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn sendto(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn recvfrom(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn sendmsg(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn recvmsg(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    /// sendmmsg (`send`) and recvmmsg.
    fn mmsg(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6], _send: bool) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn setsockopt(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    fn getsockopt(&self, _k: &mut Kernel, _tid: Pid, _s: &Sock, _a: [u64; 6]) -> SysResult {
        Err(Errno::EOPNOTSUPP)
    }
    /// write(2)/writev(2) of `iov`, if the family makes them sends
    /// (None: the file's own write serves, as for any file).
    fn write(
        &self,
        _k: &mut Kernel,
        _tid: Pid,
        _s: &Sock,
        _iov: Vec<(u64, usize)>,
    ) -> Option<SysResult> {
        None
    }
    /// read(2) into `len` bytes at `buf`, if the family makes it a
    /// receive (None: the file's own read serves).
    fn read(
        &self,
        _k: &mut Kernel,
        _tid: Pid,
        _s: &Sock,
        _buf: u64,
        _len: usize,
    ) -> Option<SysResult> {
        None
    }
}

const AF_UNIX: u32 = crate::net::AF_UNIX as u32;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_PACKET: u32 = crate::net::packet::AF_PACKET as u32;
const AF_NETLINK: u32 = crate::net::netlink::AF_NETLINK as u32;

/// One row of the socket table.
struct Family {
    /// What the implementation's open files report.
    kind: SockKind,
    /// The address families socket(2) makes it for (none: another
    /// row's socket(2) makes it).
    domains: &'static [u32],
    calls: &'static dyn SockCalls,
}

/// Every socket implementation. Adding a family is a row here.
static FAMILIES: [Family; 5] = [
    Family {
        kind: SockKind::Unix,
        domains: &[AF_UNIX],
        calls: &net::Unix,
    },
    Family {
        kind: SockKind::Inet,
        domains: &[AF_INET, AF_INET6],
        calls: &inet::Inet,
    },
    Family {
        kind: SockKind::RawIp,
        domains: &[],
        calls: &rawnet::RawIp,
    },
    Family {
        kind: SockKind::Packet,
        domains: &[AF_PACKET],
        calls: &rawnet::Packet,
    },
    Family {
        kind: SockKind::Netlink,
        domains: &[AF_NETLINK],
        calls: &netlink::Netlink,
    },
];

/// The calls of a socket of `kind`.
fn calls_of(kind: SockKind) -> &'static dyn SockCalls {
    match FAMILIES.iter().find(|f| f.kind == kind) {
        Some(f) => f.calls,
        // Every kind has its row (tested); AF_UNIX's code is the fallback
        // only to keep this total.
        None => &net::Unix,
    }
}

/// The socket `fd` names and its calls: EBADF, ENOTSOCK.
fn socket_of(k: &Kernel, tid: Pid, fd: u64) -> KResult<(&'static dyn SockCalls, Sock)> {
    let f = k.fd_file(tid, fd_arg(fd))?;
    let ops = ops_of(&f);
    let kind = ops.sock_kind().ok_or(Errno::ENOTSOCK)?;
    Ok((calls_of(kind), (f, ops)))
}

/// NPROTO: families at or past this are EAFNOSUPPORT before anything.
const NPROTO: u32 = 46;
/// SOCK_MAX: types at or past this are EINVAL.
const SOCK_MAX: u32 = 11;

/// What socket(2) and socketpair(2) ask of a family.
pub(super) struct SockArgs {
    pub domain: u32,
    /// The type without its flags (below SOCK_MAX).
    pub ty: u32,
    /// The protocol as the guest passed it.
    pub proto: u64,
    pub nonblock: bool,
}

/// The type's flags, __sys_socket's and __sys_socketpair's first check:
/// (SOCK_NONBLOCK, SOCK_CLOEXEC); EINVAL for any other.
fn type_flags(ty: u64) -> KResult<(bool, bool)> {
    let flags = ty as u32 & !SOCK_TYPE_MASK;
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((flags & SOCK_NONBLOCK != 0, flags & SOCK_CLOEXEC != 0))
}

/// sock_create's checks before the family's own: the family's range
/// (EAFNOSUPPORT), the type's (EINVAL), a family built here
/// (EAFNOSUPPORT).
fn family(a: [u64; 6], nonblock: bool) -> KResult<(&'static dyn SockCalls, SockArgs)> {
    let domain = a[0] as u32;
    let ty = a[1] as u32 & SOCK_TYPE_MASK;
    if domain >= NPROTO {
        return Err(Errno::EAFNOSUPPORT);
    }
    if ty >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    let row = FAMILIES
        .iter()
        .find(|f| f.domains.contains(&domain))
        .ok_or(Errno::EAFNOSUPPORT)?;
    let args = SockArgs {
        domain,
        ty,
        proto: a[2],
        nonblock,
    };
    Ok((row.calls, args))
}

pub fn sys_socket(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (nonblock, cloexec) = type_flags(a[1])?;
    let (calls, args) = family(a, nonblock)?;
    let f = calls.create(k, tid, &args)?;
    let fd = k.task(tid)?.files.borrow_mut().install(f, cloexec, 0)?;
    ok(fd as i64)
}

/// socketpair(2) in Linux's order: the flags, two free descriptors
/// (EMFILE), both written to the guest's array (EFAULT), then the checks
/// socket(2) makes and the family's pair (EOPNOTSUPP for all but
/// AF_UNIX). Nothing is installed unless all of it worked.
pub fn sys_socketpair(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (nonblock, cloexec) = type_flags(a[1])?;
    let files = k.task(tid)?.files.clone();
    let slots = files.borrow_mut().reserve(2, 0)?;
    let nums = slots.fds();
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&nums[0].to_le_bytes());
    b[4..].copy_from_slice(&nums[1].to_le_bytes());
    let made = k.write_user(tid, a[3], &b).and_then(|()| {
        let (calls, args) = family(a, nonblock)?;
        calls.check(k, tid, &args)?;
        calls.pair(k, tid, &args)
    });
    match made {
        Ok((x, y)) => {
            files
                .borrow_mut()
                .install_reserved(slots, vec![(x, cloexec), (y, cloexec)]);
            ok(0)
        }
        Err(e) => {
            files.borrow_mut().unreserve(slots);
            Err(e)
        }
    }
}

/// The calls on a socket fd (`a[0]`) that take its raw arguments.
macro_rules! on_socket {
    ($($sys:ident => $call:ident),* $(,)?) => {
        $(
            pub fn $sys(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
                let (calls, s) = socket_of(k, tid, a[0])?;
                calls.$call(k, tid, &s, a)
            }
        )*
    };
}

on_socket!(
    sys_bind => bind,
    sys_connect => connect,
    sys_listen => listen,
    sys_shutdown => shutdown,
    sys_getsockname => getsockname,
    sys_getpeername => getpeername,
    sys_sendto => sendto,
    sys_recvfrom => recvfrom,
    sys_sendmsg => sendmsg,
    sys_recvmsg => recvmsg,
    sys_setsockopt => setsockopt,
    sys_getsockopt => getsockopt,
);

pub fn sys_accept(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (calls, s) = socket_of(k, tid, a[0])?;
    calls.accept(k, tid, &s, a, 0)
}

pub fn sys_accept4(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (calls, s) = socket_of(k, tid, a[0])?;
    calls.accept(k, tid, &s, a, a[3] as u32)
}

pub fn sys_sendmmsg(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (calls, s) = socket_of(k, tid, a[0])?;
    calls.mmsg(k, tid, &s, a, true)
}

pub fn sys_recvmmsg(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (calls, s) = socket_of(k, tid, a[0])?;
    calls.mmsg(k, tid, &s, a, false)
}

/// write(2)/writev(2) on `f`: a send if it is a socket whose family makes
/// writes sends (AF_UNIX, inet), of the iovecs `iov` gives; None for any
/// other file (its own write serves).
/// read(2) on a socket whose family makes it a receive (AF_UNIX: the
/// queued bytes go straight to the reader); None for other files.
pub(super) fn sock_read(
    k: &mut Kernel,
    tid: Pid,
    f: &OpenFileRef,
    buf: u64,
    len: usize,
) -> Option<SysResult> {
    let ops = ops_of(f);
    let kind = ops.sock_kind()?;
    calls_of(kind).read(k, tid, &(f.clone(), ops), buf, len)
}

pub(super) fn sock_write(
    k: &mut Kernel,
    tid: Pid,
    f: &OpenFileRef,
    iov: impl FnOnce() -> Vec<(u64, usize)>,
) -> Option<SysResult> {
    let ops = ops_of(f);
    let kind = ops.sock_kind()?;
    calls_of(kind).write(k, tid, &(f.clone(), ops), iov())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row_and_every_domain_one_maker() {
        for kind in SockKind::ALL {
            assert_eq!(
                FAMILIES.iter().filter(|f| f.kind == kind).count(),
                1,
                "{kind:?}"
            );
        }
        let mut domains: Vec<u32> = FAMILIES
            .iter()
            .flat_map(|f| f.domains.iter().copied())
            .collect();
        let n = domains.len();
        domains.sort_unstable();
        domains.dedup();
        assert_eq!(domains.len(), n, "a domain in two rows");
    }
}
