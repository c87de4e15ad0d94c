//! The syscall layer: one table (number, name, handler), one file per
//! family. Handlers decode arguments and delegate to the kernel, VFS and
//! mm; errors are `Errno`s turned into `-errno` in one place (`dispatch`).
//!
//! | file          | family |
//! |---------------|--------|
//! | `table.rs`    | the table itself |
//! | `support.rs`  | each call's support level (full, partial with a note, unsupported); `umlrun --syscalls` |
//! | `fs.rs`       | open, read, write, stat, directories, links, fcntl |
//! | `fsmeta.rs`   | struct layouts: stat, statx, statfs, dirents |
//! | `fsio.rs`     | preadv/pwritev (+v2), copy_file_range, close_range, fadvise64, fallocate, sync_file_range |
//! | `xattr.rs`    | get/set/list/removexattr and their l*/f* forms |
//! | `ioctl.rs`    | terminal and generic ioctls |
//! | `poll.rs`     | poll, ppoll, select, pselect6 |
//! | `sockcall.rs` | the socket calls' entry points and the socket table: which family's code serves a socket |
//! | `net.rs`      | AF_UNIX sockets: socket, socketpair, bind, connect, send/recv*, sockopts; msghdr and mmsg helpers |
//! | `inet.rs`     | AF_INET/AF_INET6 sockets on the smoltcp stack |
//! | `rawnet.rs`   | AF_PACKET sockets and AF_INET SOCK_RAW IPPROTO_RAW ones |
//! | `netlink.rs`  | AF_NETLINK (NETLINK_ROUTE) sockets |
//! | `epoll.rs`    | epoll_create*, epoll_ctl, epoll_wait/pwait/pwait2 |
//! | `mm.rs`       | mmap, munmap, mprotect, mremap, brk, madvise, msync, mincore |
//! | `mlock.rs`    | mlock, mlock2, munlock, mlockall, munlockall; RLIMIT_MEMLOCK |
//! | `process.rs`  | fork, clone, execve, exit, wait, ids, limits |
//! | `clone3.rs`   | clone3's struct and checks; CLONE_PIDFD, set_tid, CLONE_CLEAR_SIGHAND |
//! | `ipc.rs`      | SysV shm*, sem*, msg* decoded onto `kernel/ipc/` |
//! | `locks.rs`    | fcntl record locks, leases, F_SETOWN/F_SETSIG; flock (onto `kernel/locks.rs`) |
//! | `futex.rs`    | futex(2) operations decoded onto `kernel/futex.rs` |
//! | `futex_waitv.rs` | futex_waitv(2): one sleep on up to 128 futex words |
//! | `sched.rs`    | getpriority, setpriority, sched_* policies and priorities |
//! | `signal.rs`   | sigaction, sigprocmask, kill, sigreturn, sigaltstack |
//! | `time.rs`     | clocks, sleeps, timers |
//! | `splice.rs`   | splice, tee, vmsplice (by copying, pipe data taken once accepted) |
//! | `ptimer.rs`   | POSIX timers: timer_create/settime/gettime/getoverrun/delete |
//! | `misc.rs`     | uname, sysinfo, getrandom, reboot, mount |
//! | `tmpfile.rs`  | O_TMPFILE files, SEEK_DATA/SEEK_HOLE |

#![deny(unsafe_code)]

mod clone3;
mod epoll;
mod fs;
mod fsio;
pub mod fsmeta;
mod futex;
mod futex_waitv;
mod inet;
pub mod ioctl;
mod ipc;
mod locks;
mod misc;
mod mlock;
mod mm;
mod net;
mod netlink;
mod poll;
mod process;
mod ptimer;
mod rawnet;
mod sched;
mod signal;
mod sockcall;
mod splice;
pub mod support;
mod table;
pub(crate) mod time;
mod tmpfile;
mod xattr;

pub use fs::now_ts;
pub use process::default_rlimits;

use crate::errno::{Errno, KResult};
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;
use crate::vfs::file::ops_of;
use crate::vfs::OpenFileRef;

/// What a handler did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Return this value in rax.
    Return(i64),
    /// Sleep; the syscall is retried from the start when woken.
    Block(Wait),
    /// The handler set the registers itself (execve, rt_sigreturn) or the
    /// task is gone (exit).
    NoReturn,
}

pub type SysResult = KResult<Outcome>;
pub type Handler = fn(&mut Kernel, Pid, [u64; 6]) -> SysResult;

pub(crate) fn ok(v: i64) -> SysResult {
    Ok(Outcome::Return(v))
}

/// Turns "would block" on `f` into a sleep unless the file is
/// non-blocking: on the file's wait queue for `events` (POLLIN for a
/// read, POLLOUT for a write); a kind without one (it never blocks)
/// sleeps until a signal.
pub(crate) fn block_on(
    k: &mut Kernel,
    tid: Pid,
    f: &OpenFileRef,
    events: u32,
    r: KResult<usize>,
) -> SysResult {
    match r {
        Ok(n) => ok(n as i64),
        Err(Errno::EAGAIN) if !f.borrow().nonblocking() => match ops_of(f).wait_queue(k) {
            Some(q) => {
                k.wait_on(tid, &q, events);
                let o = Outcome::Block(Wait::Queue(None));
                // An AF_UNIX socket's SO_RCVTIMEO / SO_SNDTIMEO.
                match ops_of(f).as_socket() {
                    Some(sf) => {
                        let send = events & crate::kernel::files::POLLOUT != 0;
                        net::timed_file(k, tid, sf, send, o)
                    }
                    None => Ok(o),
                }
            }
            None => Ok(Outcome::Block(Wait::Queue(None))),
        },
        Err(e) => Err(e),
    }
}

/// Runs syscall `nr` for `tid`.
pub fn dispatch(k: &mut Kernel, tid: Pid, nr: u64, args: [u64; 6]) -> Outcome {
    let Some((name, handler)) = table::lookup(nr) else {
        // Each number below 1024 once; beyond, the set would grow with
        // every number a guest tries: those share one rate limit.
        if nr >= 1024 {
            crate::log_limited!(
                log::Level::Info,
                "unimplemented syscall {nr:#x} returns ENOSYS"
            );
        } else if k.enosys_logged.insert(nr) {
            log::info!(
                "unimplemented syscall {nr} ({}) returns ENOSYS",
                table::name_of(nr)
            );
        }
        return Outcome::Return(Errno::ENOSYS.to_syscall_return());
    };
    log::trace!(
        "[{tid}] {name}({:#x}, {:#x}, {:#x}, {:#x})",
        args[0],
        args[1],
        args[2],
        args[3]
    );
    k.evhub.current = tid;
    let out = run_contained(k, tid, nr, name, args, handler);
    if !matches!(out, Outcome::Block(_)) {
        if let Ok(t) = k.task_mut(tid) {
            t.block_deadline = None;
            t.sock_sleep = Default::default();
        }
    }
    log::trace!("[{tid}] {name} -> {out:?}");
    out
}

/// Runs `handler` for `tid`. A panic in it (a kernel bug a guest found)
/// kills the calling process with SIGKILL instead of the instance, with a
/// rate-limited log line naming the syscall; the other processes go on.
/// What is contained: unwinding drops every borrow and guard the handler
/// held, and the dead process's memory, files and children are released
/// as on any SIGKILL. What is not: a shared structure the handler had
/// half-changed (a page-cache or file-system update) stays as it was left;
/// the log line says a panic happened, so the operator can restart.
pub(crate) fn run_contained(
    k: &mut Kernel,
    tid: Pid,
    nr: u64,
    name: &str,
    args: [u64; 6],
    handler: Handler,
) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(k, tid, args))) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Return(e.to_syscall_return()),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            k.counters.contained_panics += 1;
            crate::log_limited!(
                log::Level::Error,
                "task {tid}: syscall {name} ({nr}) {args:#x?} panicked ({what}): the process is killed, the instance goes on"
            );
            k.kill_process(tid, crate::kernel::signal::SIGKILL);
            Outcome::NoReturn
        }
    }
}

/// `int $0x80` from a 64-bit task stops like a syscall under SYSEMU.
/// umlrun answers as a Linux kernel built without IA32 emulation: the
/// instruction faults (#GP: SIGSEGV with SI_KERNEL, rip at the `int`),
/// never served with the 64-bit table. True when the stop was one.
pub fn refuse_int80(k: &mut Kernel, tid: Pid) -> bool {
    const INT80: [u8; 2] = [0xcd, 0x80];
    const SI_KERNEL: i32 = 0x80;
    let mut r = k.regs(tid);
    // The `syscall` instruction leaves its return address in rcx and the
    // flags in r11, so the stop's rip and flags equal them; `int $0x80`
    // leaves both alone. Equal: no memory read (this runs on every stop).
    // Code that forges the pair around an `int $0x80` gets the 64-bit
    // table it could have asked for with `syscall`.
    if r.rcx == r.rip && r.r11 == r.eflags {
        return false;
    }
    let Some(at) = r.rip.checked_sub(2) else {
        return false;
    };
    let mut insn = [0u8; 2];
    if k.read_user(tid, at, &mut insn).is_err() || insn != INT80 {
        return false;
    }
    log::debug!("task {tid}: int $0x80 at {at:#x}: SIGSEGV (no IA32 emulation)");
    r.rip = at;
    r.rax = r.orig_rax;
    r.orig_rax = u64::MAX;
    k.set_regs(tid, r);
    k.force_signal(
        tid,
        crate::kernel::signal::SigInfo {
            signo: crate::kernel::signal::SIGSEGV,
            code: SI_KERNEL,
            ..Default::default()
        },
    );
    true
}

/// An fd argument (the low 32 bits, signed).
pub(crate) fn fd_arg(a: u64) -> i32 {
    a as u32 as i32
}

/// The dirfd meaning "current directory".
pub(crate) const AT_FDCWD: i32 = -100;
pub(crate) const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub(crate) const AT_REMOVEDIR: u64 = 0x200;
pub(crate) const AT_SYMLINK_FOLLOW: u64 = 0x400;
pub(crate) const AT_EMPTY_PATH: u64 = 0x1000;
