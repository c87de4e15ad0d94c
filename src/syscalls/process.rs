//! Process syscalls: fork/vfork/clone, execve, exit, wait4/waitid, ids,
//! sessions and groups, credentials, limits, arch_prctl, prctl.

use super::{fd_arg, ok, Outcome, SysResult, AT_EMPTY_PATH, AT_FDCWD};
use crate::abi::layout::Rlimit;
use crate::errno::{Errno, KResult};
use crate::kernel::process::*;
use crate::kernel::signal::{SigInfo, CLD_EXITED, SIGCHLD};
use crate::kernel::task::{status_exited, Pid, TaskState, Wait};
use crate::kernel::Kernel;

fn do_clone(k: &mut Kernel, tid: Pid, a: CloneArgs) -> SysResult {
    let vfork = a.flags & CLONE_VFORK != 0;
    let child = k.clone_task(tid, a)?;
    parent_return(k, tid, child, vfork)
}

/// The parent's side of a finished clone/clone3: the child's pid, or for
/// vfork a sleep until the child execs or exits.
pub(super) fn parent_return(k: &mut Kernel, tid: Pid, child: Pid, vfork: bool) -> SysResult {
    if vfork {
        // The parent sleeps until the child execs or exits.
        let mut r = k.regs(tid);
        r.rax = child as u64;
        k.set_regs(tid, r);
        let waiting = k
            .tasks
            .get(&child)
            .is_some_and(|c| c.vfork_parent.is_some());
        if waiting {
            k.task_mut(tid)?.state = TaskState::Blocked(Wait::Vfork);
        }
        return Ok(Outcome::NoReturn);
    }
    ok(child as i64)
}

pub fn sys_fork(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    do_clone(
        k,
        tid,
        CloneArgs {
            flags: SIGCHLD as u64,
            stack: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
        },
    )
}

pub fn sys_vfork(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    do_clone(
        k,
        tid,
        CloneArgs {
            flags: CLONE_VM | CLONE_VFORK | SIGCHLD as u64,
            stack: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
        },
    )
}

pub fn sys_clone(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[0] & crate::kernel::clonecheck::CLONE_PIDFD != 0 {
        return super::clone3::legacy_pidfd(k, tid, a);
    }
    do_clone(
        k,
        tid,
        CloneArgs {
            flags: a[0],
            stack: a[1],
            parent_tid: a[2],
            child_tid: a[3],
            tls: a[4],
        },
    )
}

pub fn sys_execve(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let path = k.read_path(tid, a[0])?;
    let argv = k.read_str_array(tid, a[1])?;
    let envp = k.read_str_array(tid, a[2])?;
    k.execve(tid, &path, argv, envp)?;
    Ok(Outcome::NoReturn)
}

pub fn sys_execveat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
    let flags = a[4];
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, a[1])?;
    let dirfd = fd_arg(a[0]);
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        // The file the fd refers to, whatever its name is now.
        let file = k.fd_resolved(tid, dirfd)?;
        let name = format!("/dev/fd/{dirfd}").into_bytes();
        let argv = k.read_str_array(tid, a[2])?;
        let envp = k.read_str_array(tid, a[3])?;
        k.execve_file(tid, file, &name, argv, envp)?;
        return Ok(Outcome::NoReturn);
    }
    let full = if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        path
    } else {
        // The dirfd's directory as the caller names it from its root.
        let base = k.base_dir(tid, dirfd, &path)?;
        let root = k.root_dir(tid)?;
        match crate::vfs::dentry::seen_from(&root, &base) {
            Some(mut b) => {
                if b != b"/" {
                    b.push(b'/');
                }
                b.extend_from_slice(&path);
                b
            }
            None => {
                // A directory outside the caller's root (opened before a
                // chroot): the file found from it, named as Linux names
                // it ("/dev/fd/N/path").
                let file = k.lookup_at(tid, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
                if file.stat.mode & crate::fs::S_IFMT == crate::fs::S_IFLNK {
                    return Err(Errno::ELOOP);
                }
                let name = [format!("/dev/fd/{dirfd}/").as_bytes(), &path].concat();
                let argv = k.read_str_array(tid, a[2])?;
                let envp = k.read_str_array(tid, a[3])?;
                k.execve_file(tid, file, &name, argv, envp)?;
                return Ok(Outcome::NoReturn);
            }
        }
    };
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        let r = k.lookup_at(tid, AT_FDCWD, &full, false)?;
        if r.stat.mode & crate::fs::S_IFMT == crate::fs::S_IFLNK {
            return Err(Errno::ELOOP);
        }
    }
    let argv = k.read_str_array(tid, a[2])?;
    let envp = k.read_str_array(tid, a[3])?;
    k.execve(tid, &full, argv, envp)?;
    Ok(Outcome::NoReturn)
}

pub fn sys_exit(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    k.exit_thread(tid, status_exited(a[0] as i32));
    Ok(Outcome::NoReturn)
}

pub fn sys_exit_group(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    k.exit_group(tid, status_exited(a[0] as i32));
    Ok(Outcome::NoReturn)
}

pub fn sys_wait4(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (pid, status_ptr, options, rusage) = (a[0] as i32, a[1], a[2], a[3]);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WALL | 0x8000_0000 | 0x2000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    if pid == i32::MIN {
        // -INT_MIN is no process group (Linux answers ESRCH).
        return Err(Errno::ESRCH);
    }
    match k.wait_child(tid, pid, options | WEXITED)? {
        Some(crate::kernel::process::Waited {
            pid: cpid,
            status,
            cpu,
            ..
        }) => {
            if status_ptr != 0 {
                k.write_u32(tid, status_ptr, status as u32)?;
            }
            if rusage != 0 {
                k.write_user(tid, rusage, &rusage_bytes(cpu))?;
            }
            ok(cpid as i64)
        }
        None if options & WNOHANG != 0 => ok(0),
        None => Ok(Outcome::Block(k.sleep_on_children(tid)?)),
    }
}

pub fn sys_waitid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (idtype, id, infop, mut options, rusage) = (a[0], a[1] as i32, a[2], a[3], a[4]);
    // A non-blocking pidfd makes waitid(P_PIDFD) return EAGAIN instead of
    // sleeping (WNOHANG given by the caller still returns 0).
    let mut eagain = false;
    let pid = match idtype {
        0 => -1,
        1 if id > 0 => id,
        2 if id > 0 => -id,
        2 => 0,
        // P_PIDFD: the process a pidfd names.
        3 => {
            let (pid, nonblocking) = crate::kernel::files::pidfd::pid_of_fd(k, tid, id)?;
            if nonblocking && options & WNOHANG == 0 {
                options |= WNOHANG;
                eagain = true;
            }
            pid
        }
        _ => return Err(Errno::EINVAL),
    };
    if options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    match k.wait_child(tid, pid, options)? {
        Some(crate::kernel::process::Waited {
            pid: cpid,
            status,
            code,
            cpu,
        }) => {
            if rusage != 0 {
                k.write_user(tid, rusage, &rusage_bytes(cpu))?;
            }
            if infop != 0 {
                use crate::kernel::signal::{CLD_CONTINUED, CLD_STOPPED, SIGCONT};
                let st = match code {
                    CLD_EXITED | CLD_STOPPED => (status >> 8) & 0xff,
                    CLD_CONTINUED => SIGCONT,
                    _ => status & 0x7f,
                };
                let uid = k.task(tid)?.cred.uid;
                let info = SigInfo {
                    signo: SIGCHLD,
                    code,
                    pid: cpid,
                    uid,
                    status: st,
                    ..Default::default()
                };
                k.write_user(tid, infop, &info.to_bytes())?;
            }
            ok(0)
        }
        None if eagain => Err(Errno::EAGAIN),
        None if options & WNOHANG != 0 => {
            if infop != 0 {
                k.write_user(tid, infop, &[0u8; 128])?;
            }
            ok(0)
        }
        None => Ok(Outcome::Block(k.sleep_on_children(tid)?)),
    }
}

pub fn sys_getpid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.tgid as i64)
}

pub fn sys_gettid(_k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(tid as i64)
}

pub fn sys_getppid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.leader(tid)?.ppid as i64)
}

pub fn sys_getuid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.cred.uid as i64)
}

pub fn sys_geteuid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.cred.euid as i64)
}

pub fn sys_getgid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.cred.gid as i64)
}

pub fn sys_getegid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.cred.egid as i64)
}

/// Applies a credential change to every thread of the process.
fn set_cred(
    k: &mut Kernel,
    tid: Pid,
    f: impl Fn(&mut crate::vfs::Cred) -> KResult<()>,
) -> SysResult {
    let tgid = k.task(tid)?.tgid;
    let mut c = k.task(tid)?.cred.clone();
    f(&mut c)?;
    for th in k.threads(tgid) {
        if let Ok(t) = k.task_mut(th) {
            t.cred = c.clone();
        }
    }
    ok(0)
}

const KEEP: u32 = u32::MAX;

/// Which ids a set*id call changes: the user or the group ids.
#[derive(Clone, Copy)]
enum Ids {
    User,
    Group,
}

impl Ids {
    /// (real, effective, saved) of this kind in `c`.
    fn of(self, c: &mut crate::vfs::Cred) -> [&mut u32; 3] {
        match self {
            Ids::User => [&mut c.uid, &mut c.euid, &mut c.suid],
            Ids::Group => [&mut c.gid, &mut c.egid, &mut c.sgid],
        }
    }
}

/// setuid/setgid: root sets all three; others only the effective id, to
/// their real or saved one.
fn set_one(k: &mut Kernel, tid: Pid, v: u32, kind: Ids) -> SysResult {
    if v == KEEP {
        return Err(Errno::EINVAL); // -1 is not an id
    }
    set_cred(k, tid, |c| {
        let root = c.euid == 0;
        let [real, eff, saved] = kind.of(c);
        if root {
            *real = v;
            *saved = v;
        } else if v != *real && v != *saved {
            return Err(Errno::EPERM);
        }
        *eff = v;
        Ok(())
    })
}

/// setresuid/setresgid: each id given (not -1) changes; without root each
/// must be one of the current three.
fn set_three(k: &mut Kernel, tid: Pid, new: [u32; 3], kind: Ids) -> SysResult {
    set_cred(k, tid, |c| {
        let root = c.euid == 0;
        let ids = kind.of(c);
        let cur = [*ids[0], *ids[1], *ids[2]];
        if !root && new.iter().any(|v| *v != KEEP && !cur.contains(v)) {
            return Err(Errno::EPERM);
        }
        for (id, v) in ids.into_iter().zip(new) {
            if v != KEEP {
                *id = v;
            }
        }
        Ok(())
    })
}

/// setreuid/setregid: like setres*id, except that without root the real id
/// may only become the current real or effective one; the saved id follows
/// the new effective one when the real id is set or the effective id
/// leaves the real one (POSIX).
fn set_two(k: &mut Kernel, tid: Pid, r: u32, e: u32, kind: Ids) -> SysResult {
    let mut c = k.task(tid)?.cred.clone();
    let root = c.euid == 0;
    let [real, eff, _] = kind.of(&mut c);
    if !root && r != KEEP && r != *real && r != *eff {
        return Err(Errno::EPERM);
    }
    let saved = if r != KEEP || (e != KEEP && e != *real) {
        if e != KEEP {
            e
        } else {
            *eff
        }
    } else {
        KEEP
    };
    set_three(k, tid, [r, e, saved], kind)
}

pub fn sys_setuid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_one(k, tid, a[0] as u32, Ids::User)
}

pub fn sys_setgid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_one(k, tid, a[0] as u32, Ids::Group)
}

pub fn sys_setresuid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_three(k, tid, [a[0] as u32, a[1] as u32, a[2] as u32], Ids::User)
}

pub fn sys_setresgid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_three(k, tid, [a[0] as u32, a[1] as u32, a[2] as u32], Ids::Group)
}

pub fn sys_setreuid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_two(k, tid, a[0] as u32, a[1] as u32, Ids::User)
}

pub fn sys_setregid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_two(k, tid, a[0] as u32, a[1] as u32, Ids::Group)
}

fn put_three(k: &mut Kernel, tid: Pid, a: [u64; 6], v: [u32; 3]) -> SysResult {
    for i in 0..3 {
        k.write_u32(tid, a[i], v[i])?;
    }
    ok(0)
}

pub fn sys_getresuid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let c = k.task(tid)?.cred.clone();
    put_three(k, tid, a, [c.uid, c.euid, c.suid])
}

pub fn sys_getresgid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let c = k.task(tid)?.cred.clone();
    put_three(k, tid, a, [c.gid, c.egid, c.sgid])
}

pub fn sys_setfsuid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.cred.euid as i64)
}

pub fn sys_setfsgid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.cred.egid as i64)
}

pub fn sys_getgroups(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let g = k.task(tid)?.cred.groups.clone();
    if a[0] == 0 {
        return ok(g.len() as i64);
    }
    if (a[0] as usize) < g.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = g.iter().flat_map(|x| x.to_le_bytes()).collect();
    k.write_user(tid, a[1], &bytes)?;
    ok(g.len() as i64)
}

pub fn sys_setgroups(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    if a[0] > 65536 {
        return Err(Errno::EINVAL);
    }
    let b = k.read_user_vec(tid, a[1], a[0] as usize * 4)?;
    let groups: Vec<u32> = b
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    set_cred(k, tid, |c| {
        c.groups = groups.clone();
        Ok(())
    })
}

pub fn sys_setsid(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    let tgid = k.task(tid)?.tgid;
    if k.tasks.values().any(|t| t.pgid == tgid && t.is_alive()) && k.task(tid)?.pgid == tgid {
        return Err(Errno::EPERM);
    }
    if k.tasks
        .values()
        .any(|t| t.pgid == tgid && t.tgid != tgid && t.is_alive())
    {
        return Err(Errno::EPERM);
    }
    for th in k.threads(tgid) {
        let t = k.task_mut(th)?;
        t.sid = tgid;
        t.pgid = tgid;
    }
    ok(tgid as i64)
}

pub fn sys_setpgid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let me = k.task(tid)?;
    let (my_tgid, my_sid) = (me.tgid, me.sid);
    let pid = if a[0] as i32 == 0 {
        my_tgid
    } else {
        a[0] as i32
    };
    let pgid = if a[1] as i32 == 0 { pid } else { a[1] as i32 };
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = k
        .tasks
        .get(&pid)
        .filter(|t| t.is_leader() && t.is_alive())
        .ok_or(Errno::ESRCH)?;
    if pid != my_tgid && target.ppid != my_tgid {
        return Err(Errno::ESRCH);
    }
    if target.sid != my_sid || target.sid == pid {
        return Err(Errno::EPERM);
    }
    if pgid != pid
        && !k
            .tasks
            .values()
            .any(|t| t.pgid == pgid && t.sid == my_sid && t.is_alive())
    {
        return Err(Errno::EPERM);
    }
    for th in k.threads(pid) {
        k.task_mut(th)?.pgid = pgid;
    }
    ok(0)
}

pub fn sys_getpgid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let pid = if a[0] as i32 == 0 {
        k.task(tid)?.tgid
    } else {
        a[0] as i32
    };
    ok(k.tasks.get(&pid).ok_or(Errno::ESRCH)?.pgid as i64)
}

pub fn sys_getpgrp(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(k.task(tid)?.pgid as i64)
}

pub fn sys_getsid(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let pid = if a[0] as i32 == 0 {
        k.task(tid)?.tgid
    } else {
        a[0] as i32
    };
    ok(k.tasks.get(&pid).ok_or(Errno::ESRCH)?.sid as i64)
}

pub fn sys_set_tid_address(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    k.task_mut(tid)?.clear_child_tid = a[0];
    ok(tid as i64)
}

pub fn sys_arch_prctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    // Linux: a base at or above TASK_SIZE_MAX (non-canonical or kernel
    // space) is EPERM.
    use crate::kernel::clonecheck::TASK_SIZE_MAX;
    let mut r = k.regs(tid);
    match a[0] {
        ARCH_SET_FS | ARCH_SET_GS if a[1] >= TASK_SIZE_MAX => return Err(Errno::EPERM),
        ARCH_SET_FS => r.fs_base = a[1],
        ARCH_SET_GS => r.gs_base = a[1],
        ARCH_GET_FS => {
            return k
                .write_u64(tid, a[1], r.fs_base)
                .map(|_| Outcome::Return(0))
        }
        ARCH_GET_GS => {
            return k
                .write_u64(tid, a[1], r.gs_base)
                .map(|_| Outcome::Return(0))
        }
        _ => return Err(Errno::EINVAL),
    }
    k.set_regs(tid, r);
    ok(0)
}

pub fn sys_prctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // The options whose unused arguments Linux requires to be zero.
    let unused: &[u64] = match a[0] {
        38 => &a[2..5], // PR_SET_NO_NEW_PRIVS
        39 => &a[1..5], // PR_GET_NO_NEW_PRIVS
        _ => &[],
    };
    if unused.iter().any(|&x| x != 0) {
        return Err(Errno::EINVAL);
    }
    match a[0] {
        15 => {
            // PR_SET_NAME
            let mut name = k.read_user_vec(tid, a[1], 16)?;
            if let Some(z) = name.iter().position(|&b| b == 0) {
                name.truncate(z);
            }
            name.truncate(15);
            k.task_mut(tid)?.comm = name;
            ok(0)
        }
        16 => {
            // PR_GET_NAME
            let mut name = k.task(tid)?.comm.clone();
            name.resize(16, 0);
            k.write_user(tid, a[1], &name)?;
            ok(0)
        }
        1 => {
            // PR_SET_PDEATHSIG
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            k.task_mut(tid)?.pdeathsig = a[1] as i32;
            ok(0)
        }
        2 => {
            // PR_GET_PDEATHSIG
            let s = k.task(tid)?.pdeathsig as u32;
            k.write_u32(tid, a[1], s)?;
            ok(0)
        }
        4 if a[1] > 1 => Err(Errno::EINVAL), // SET_DUMPABLE: 0 or 1
        4 => ok(0),                          // SET_DUMPABLE
        36 => {
            // PR_SET_CHILD_SUBREAPER (on the process)
            let tgid = k.task(tid)?.tgid;
            k.task_mut(tgid)?.child_subreaper = a[1] != 0;
            ok(0)
        }
        37 => {
            // PR_GET_CHILD_SUBREAPER
            let tgid = k.task(tid)?.tgid;
            let v = k.task(tgid)?.child_subreaper as u32;
            k.write_u32(tid, a[1], v)?;
            ok(0)
        }
        29 => {
            // PR_SET_TIMERSLACK: 0 (or less) goes back to the default.
            let v = a[1] as i64;
            k.task_mut(tid)?.timer_slack = if v <= 0 {
                crate::kernel::task::DEFAULT_TIMER_SLACK_NS
            } else {
                v as u64
            };
            ok(0)
        }
        30 => ok(k.task(tid)?.timer_slack as i64), // PR_GET_TIMERSLACK
        25 => {
            // PR_GET_TSC: rdtsc is always allowed (PR_TSC_ENABLE).
            k.write_u32(tid, a[1], 1)?;
            ok(0)
        }
        // PR_SET_TSC: PR_TSC_ENABLE; trapping rdtsc (PR_TSC_SIGSEGV) is not
        // supported, so it is refused rather than pretended.
        26 if a[1] == 1 => ok(0),
        26 => Err(Errno::EINVAL),
        38 => {
            // PR_SET_NO_NEW_PRIVS: only 1, for good.
            if a[1] != 1 {
                return Err(Errno::EINVAL);
            }
            k.task_mut(tid)?.no_new_privs = true;
            ok(0)
        }
        39 => ok(k.task(tid)?.no_new_privs as i64), // GET_NO_NEW_PRIVS
        3 => ok(1),                                 // GET_DUMPABLE
        21 => ok(0),                                // GET_SECCOMP
        23 if a[1] > CAP_LAST_CAP => Err(Errno::EINVAL), // CAPBSET_READ
        23 => ok((k.task(tid)?.cap_bset >> a[1] & 1) as i64),
        24 => {
            // PR_CAPBSET_DROP: CAP_SETPCAP (root, here); kept, not enforced.
            if a[1] > CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            if k.task(tid)?.cred.euid != 0 {
                return Err(Errno::EPERM);
            }
            k.task_mut(tid)?.cap_bset &= !(1u64 << a[1]);
            ok(0)
        }
        27 => ok(k.task(tid)?.securebits as i64), // PR_GET_SECUREBITS
        28 => {
            // PR_SET_SECUREBITS, Linux's cap_task_prctl: no locked bit
            // changes, no lock is undone, no unknown bit, and CAP_SETPCAP.
            let old = k.task(tid)?.securebits as u64;
            let new = a[1];
            if ((old & SECURE_ALL_LOCKS) >> 1) & (old ^ new) != 0
                || old & SECURE_ALL_LOCKS & !new != 0
                || new & !(SECURE_ALL_LOCKS | SECURE_ALL_BITS) != 0
                || k.task(tid)?.cred.euid != 0
            {
                return Err(Errno::EPERM);
            }
            k.task_mut(tid)?.securebits = new as u32;
            ok(0)
        }
        7 => ok((k.task(tid)?.securebits >> SECURE_KEEP_CAPS & 1) as i64), // PR_GET_KEEPCAPS
        8 => {
            // PR_SET_KEEPCAPS: 0 or 1, EPERM once locked.
            if a[1] > 1 {
                return Err(Errno::EINVAL);
            }
            let t = k.task_mut(tid)?;
            if t.securebits & (1 << (SECURE_KEEP_CAPS + 1)) != 0 {
                return Err(Errno::EPERM);
            }
            t.securebits =
                t.securebits & !(1 << SECURE_KEEP_CAPS) | (a[1] as u32) << SECURE_KEEP_CAPS;
            ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

use crate::kernel::task::CAP_LAST_CAP;
/// The secure bits Linux's prctl takes (SECURE_ALL_BITS: NOROOT,
/// NO_SETUID_FIXUP, KEEP_CAPS, NO_CAP_AMBIENT_RAISE) and their locks.
const SECURE_ALL_BITS: u64 = 0x55;
const SECURE_ALL_LOCKS: u64 = 0xaa;
const SECURE_KEEP_CAPS: u32 = 4;

/// Resource limits: (current, max).
pub const RLIM_INF: u64 = u64::MAX;

pub fn default_rlimits() -> [(u64, u64); 16] {
    let mut r = [(RLIM_INF, RLIM_INF); 16];
    r[3] = (8 << 20, RLIM_INF); // STACK
    r[4] = (0, RLIM_INF); // CORE
    r[6] = (4096, 4096); // NPROC
    r[7] = (1024, 4096); // NOFILE
    r[8] = (8 << 20, 8 << 20); // MEMLOCK
    r[11] = (4096, 4096); // SIGPENDING (Linux: max_threads / 2, as NPROC)
    r[13] = (0, 0); // NICE
    r[14] = (0, 0); // RTPRIO
    r
}

fn do_prlimit(k: &mut Kernel, tid: Pid, res: u64, new: u64, old: u64) -> SysResult {
    if res >= 16 {
        return Err(Errno::EINVAL);
    }
    let cur = k.task(tid)?.rlimits[res as usize];
    if new != 0 {
        let Rlimit {
            rlim_cur: c,
            rlim_max: m,
        } = k.read_struct(tid, new)?;
        if c > m {
            return Err(Errno::EINVAL);
        }
        if res == 7 && m > crate::kernel::fdtable::NR_OPEN as u64 {
            // RLIMIT_NOFILE may not pass fs.nr_open.
            return Err(Errno::EPERM);
        }
        if m > cur.1 && k.task(tid)?.cred.euid != 0 {
            return Err(Errno::EPERM);
        }
        let tgid = k.task(tid)?.tgid;
        for th in k.threads(tgid) {
            k.task_mut(th)?.rlimits[res as usize] = (c, m);
        }
        if res == 7 {
            // RLIMIT_NOFILE bounds the fd numbers.
            k.task(tid)?.files.borrow_mut().limit = c as u32;
        }
    }
    if old != 0 {
        let r = Rlimit {
            rlim_cur: cur.0,
            rlim_max: cur.1,
        };
        k.write_struct(tid, old, &r)?;
    }
    ok(0)
}

pub fn sys_getrlimit(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_prlimit(k, tid, a[0], 0, a[1])
}

pub fn sys_setrlimit(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_prlimit(k, tid, a[0], a[1], 0)
}

pub fn sys_prlimit64(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    let target = if pid == 0 { tid } else { pid };
    k.task(target)?;
    do_prlimit(k, target, a[1], a[2], a[3])
}

pub fn sys_getrusage(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // RUSAGE_SELF 0, RUSAGE_CHILDREN -1, RUSAGE_THREAD 1.
    let (u, s) = match a[0] as i32 {
        0 | 1 => k.cpu_ticks(tid),
        -1 => k.leader(tid)?.child_cpu,
        _ => return Err(Errno::EINVAL),
    };
    k.write_user(tid, a[1], &rusage_bytes((u, s)))?;
    ok(0)
}

/// A struct rusage holding CPU ticks (user, system) as its two timevals
/// (the other fields are not counted: zero).
fn rusage_bytes((u, s): (u64, u64)) -> [u8; 144] {
    let mut b = [0u8; 144];
    let tv = |t: u64| ((t / 100), (t % 100) * 10_000);
    let (us, uu) = tv(u);
    let (ss, su) = tv(s);
    for (i, v) in [us, uu, ss, su].iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

pub fn sys_sched_yield(k: &mut Kernel, _tid: Pid, _a: [u64; 6]) -> SysResult {
    // Others get the CPU once this call returns.
    k.yield_now = true;
    ok(0)
}

pub fn sys_getcpu(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        k.write_u32(tid, a[0], 0)?;
    }
    if a[1] != 0 {
        k.write_u32(tid, a[1], 0)?;
    }
    ok(0)
}

/// personality(2): 0xffffffff asks; anything else sets it. Returns the
/// old value. UNAME26 changes uname's release (`misc::sys_uname`).
pub fn sys_personality(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let tgid = k.task(tid)?.tgid;
    let old = k.task(tid)?.personality;
    let new = a[0] as u32;
    if new != 0xffff_ffff {
        for th in k.threads(tgid) {
            k.task_mut(th)?.personality = new;
        }
    }
    ok(old as i64)
}

pub fn sys_zero(_k: &mut Kernel, _tid: Pid, _a: [u64; 6]) -> SysResult {
    ok(0)
}

pub fn sys_capget(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[1] != 0 {
        // Root has every capability; others none.
        let all = if k.task(tid)?.cred.euid == 0 {
            u32::MAX
        } else {
            0
        };
        let mut b = [0u8; 24];
        for i in 0..6 {
            b[i * 4..i * 4 + 4].copy_from_slice(&all.to_le_bytes());
        }
        k.write_user(tid, a[1], &b)?;
    }
    ok(0)
}
