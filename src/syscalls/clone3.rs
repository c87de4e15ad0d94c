//! clone3(2), and CLONE_PIDFD for the legacy clone: Linux's checks on
//! `struct clone_args` (copy_clone_args_from_user, clone3_args_valid) in
//! its order, then the same task creation as clone (`Kernel::clone_task`).
//! glibc 2.34+ calls clone3 first for pthread_create and posix_spawn.
//!
//! There are no pid namespaces (set_tid names a pid in the one there is,
//! root only) and no cgroup2 directories (CLONE_INTO_CGROUP: EBADF, as
//! for an fd that is no cgroup). CLONE_NEWTIME is refused with the other
//! namespace flags (EINVAL, as a Linux built without them).

use super::SysResult;
use crate::errno::{Errno, KResult};
use crate::kernel::clonecheck::{CLONE_PIDFD, TASK_SIZE_MAX};
use crate::kernel::files::pidfd::install_pidfd;
use crate::kernel::process::{
    CloneArgs, CLONE_PARENT, CLONE_PARENT_SETTID, CLONE_SIGHAND, CLONE_THREAD, CLONE_VFORK,
};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;

const CLONE_ARGS_SIZE_VER0: u64 = 64;
const CLONE_ARGS_SIZE_VER2: u64 = 88;
const PAGE_SIZE: u64 = crate::abi::PAGE;
const CSIGNAL: u64 = 0xff;
const CLONE_NEWTIME: u64 = 0x80;
const CLONE_DETACHED: u64 = 0x0040_0000;
const CLONE_CLEAR_SIGHAND: u64 = 1 << 32;
const CLONE_INTO_CGROUP: u64 = 1 << 33;
const MAX_PID_NS_LEVEL: u64 = 32;
const PID_MAX: i64 = 4_194_304;
const NSIG: u64 = 64;

/// `struct clone_args`, as far as the caller's size reaches.
#[derive(Default, Debug)]
struct Args {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Reads and checks the struct (copy_clone_args_from_user).
fn read_args(k: &mut Kernel, tid: Pid, p: u64, size: u64) -> KResult<Args> {
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    let b = k.read_user_vec(tid, p, size as usize)?;
    // Fields past the ones known must be zero (copy_struct_from_user).
    if b.len() > CLONE_ARGS_SIZE_VER2 as usize
        && b[CLONE_ARGS_SIZE_VER2 as usize..].iter().any(|&x| x != 0)
    {
        return Err(Errno::E2BIG);
    }
    let g = |i: usize| {
        b.get(i * 8..i * 8 + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
            .unwrap_or(0)
    };
    let a = Args {
        flags: g(0),
        pidfd: g(1),
        child_tid: g(2),
        parent_tid: g(3),
        exit_signal: g(4),
        stack: g(5),
        stack_size: g(6),
        tls: g(7),
        set_tid: g(8),
        set_tid_size: g(9),
        cgroup: g(10),
    };
    if a.set_tid_size > MAX_PID_NS_LEVEL
        || (a.set_tid == 0 && a.set_tid_size > 0)
        || (a.set_tid != 0 && a.set_tid_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    if a.exit_signal & !CSIGNAL != 0 || a.exit_signal > NSIG {
        return Err(Errno::EINVAL);
    }
    if a.flags & CLONE_INTO_CGROUP != 0
        && (a.cgroup > i32::MAX as u64 || size < CLONE_ARGS_SIZE_VER2)
    {
        return Err(Errno::EINVAL);
    }
    Ok(a)
}

/// clone3_args_valid; the child's stack pointer (stack + stack_size).
fn check_args(a: &Args) -> KResult<u64> {
    let known = 0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP;
    if a.flags & !known != 0 || a.flags & (CLONE_DETACHED | (CSIGNAL & !CLONE_NEWTIME)) != 0 {
        return Err(Errno::EINVAL);
    }
    if a.flags & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND) == CLONE_SIGHAND | CLONE_CLEAR_SIGHAND {
        return Err(Errno::EINVAL);
    }
    if a.flags & (CLONE_THREAD | CLONE_PARENT) != 0 && a.exit_signal != 0 {
        return Err(Errno::EINVAL);
    }
    if a.stack == 0 {
        if a.stack_size != 0 {
            return Err(Errno::EINVAL);
        }
        return Ok(0);
    }
    match a.stack.checked_add(a.stack_size) {
        Some(top) if a.stack_size != 0 && top <= TASK_SIZE_MAX => Ok(top),
        _ => Err(Errno::EINVAL),
    }
}

/// The pid set_tid asks for (None: any): EINVAL out of range, EPERM for
/// all but root, EEXIST in use (alloc_pid's order).
fn wanted_pid(k: &mut Kernel, tid: Pid, a: &Args) -> KResult<Option<Pid>> {
    if a.set_tid_size == 0 {
        return Ok(None);
    }
    // One pid namespace: only one level to name.
    if a.set_tid_size > 1 {
        return Err(Errno::EINVAL);
    }
    let want = k.read_u32(tid, a.set_tid)? as i32 as i64;
    if !(1..PID_MAX).contains(&want) {
        return Err(Errno::EINVAL);
    }
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    let want = want as Pid;
    if k.tasks.contains_key(&want) || k.tasks.values().any(|t| t.pgid == want || t.sid == want) {
        return Err(Errno::EEXIST);
    }
    Ok(Some(want))
}

/// Makes the child with the extras clone(2) lacks: a given pid, a pidfd
/// written to `pidfd_ptr`, handlers cleared.
fn clone_extra(
    k: &mut Kernel,
    tid: Pid,
    ca: CloneArgs,
    pidfd_ptr: Option<u64>,
    want: Option<Pid>,
    clear_sighand: bool,
) -> SysResult {
    if let Some(p) = pidfd_ptr {
        // Room for the fd, and a writable pointer, before any child
        // exists (Linux fails the whole clone on either).
        let files = k.task(tid)?.files.clone();
        let r = files.borrow_mut().reserve(1, 0)?;
        files.borrow_mut().unreserve(r);
        k.write_u32(tid, p, 0)?;
    }
    let vfork = ca.flags & CLONE_VFORK != 0;
    let child = match want {
        Some(pid) => {
            // alloc_pid takes the cursor's pid when free: point it there
            // and put it back after (set_tid does not move the cursor).
            let cursor = k.swap_pid_cursor(pid);
            let r = k.clone_task(tid, ca);
            k.swap_pid_cursor(cursor);
            r?
        }
        None => k.clone_task(tid, ca)?,
    };
    if clear_sighand {
        if let Some(c) = k.tasks.get(&child) {
            c.sighand.borrow_mut().reset_for_exec();
        }
    }
    if let Some(p) = pidfd_ptr {
        match install_pidfd(k, tid, child) {
            Ok(fd) => {
                let _ = k.write_u32(tid, p, fd as u32);
            }
            Err(e) => log::debug!("clone: no pidfd for {child}: {e:?}"),
        }
    }
    super::process::parent_return(k, tid, child, vfork)
}

/// clone3(args, size).
pub fn sys_clone3(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let args = read_args(k, tid, a[0], a[1])?;
    let top = check_args(&args)?;
    let want = wanted_pid(k, tid, &args)?;
    if args.flags & CLONE_NEWTIME != 0 {
        return Err(Errno::EINVAL);
    }
    if args.flags & CLONE_PIDFD != 0
        && args.flags & CLONE_PARENT_SETTID != 0
        && args.pidfd == args.parent_tid
    {
        return Err(Errno::EINVAL);
    }
    if args.flags & CLONE_INTO_CGROUP != 0 {
        // An open fd or not, it is no cgroup2 directory.
        return Err(Errno::EBADF);
    }
    let legacy = args.flags & 0xffff_ff00 & !CLONE_PIDFD;
    let ca = CloneArgs {
        flags: legacy | args.exit_signal,
        stack: top,
        parent_tid: args.parent_tid,
        child_tid: args.child_tid,
        tls: args.tls,
    };
    let pidfd = (args.flags & CLONE_PIDFD != 0).then_some(args.pidfd);
    clone_extra(
        k,
        tid,
        ca,
        pidfd,
        want,
        args.flags & CLONE_CLEAR_SIGHAND != 0,
    )
}

/// clone(2) with CLONE_PIDFD: the pidfd goes where parent_tid points,
/// so CLONE_PARENT_SETTID with it is EINVAL (as CLONE_DETACHED).
pub fn legacy_pidfd(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let flags = a[0];
    if flags & (CLONE_PARENT_SETTID | CLONE_DETACHED) != 0 {
        return Err(Errno::EINVAL);
    }
    let ca = CloneArgs {
        flags: flags & !CLONE_PIDFD,
        stack: a[1],
        parent_tid: a[2],
        child_tid: a[3],
        tls: a[4],
    };
    clone_extra(k, tid, ca, Some(a[2]), None, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_refused_like_linux() {
        let ok = Args {
            exit_signal: 17,
            ..Default::default()
        };
        assert_eq!(check_args(&ok), Ok(0));
        let bad = |f: u64| {
            check_args(&Args {
                flags: f,
                ..Default::default()
            })
        };
        assert_eq!(bad(0x11), Err(Errno::EINVAL));
        assert_eq!(bad(CLONE_DETACHED), Err(Errno::EINVAL));
        assert_eq!(bad(1 << 40), Err(Errno::EINVAL));
        assert_eq!(bad(CLONE_SIGHAND | CLONE_CLEAR_SIGHAND), Err(Errno::EINVAL));
        assert_eq!(bad(CLONE_NEWTIME), Ok(0));
        let stack = |s: u64, n: u64| {
            check_args(&Args {
                stack: s,
                stack_size: n,
                ..Default::default()
            })
        };
        assert_eq!(stack(0, 4096), Err(Errno::EINVAL));
        assert_eq!(stack(0x1000, 0), Err(Errno::EINVAL));
        assert_eq!(stack(0x1000, 0x1000), Ok(0x2000));
        assert_eq!(stack(u64::MAX - 10, 0x1000), Err(Errno::EINVAL));
        assert_eq!(stack(TASK_SIZE_MAX, 0x1000), Err(Errno::EINVAL));
        let th = Args {
            flags: CLONE_THREAD,
            exit_signal: 17,
            ..Default::default()
        };
        assert_eq!(check_args(&th), Err(Errno::EINVAL));
    }
}
