//! Scheduling values: getpriority/setpriority (nice, per thread, for one
//! task, a process group or a user), the sched_* policy calls and CPU
//! affinity (the guest has one CPU: every task's mask is {0}). The
//! values and their rules live in `kernel::schedattr`; here are the
//! targets, the ownership checks and the guest structures.

use super::{ok, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::schedattr::{priority_range, Asker, SchedAttr};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;
const RLIMIT_NICE: usize = 13;
const RLIMIT_RTPRIO: usize = 14;

/// The tasks a (which, who) pair of get/setpriority names (ESRCH if none;
/// EINVAL for an unknown `which`).
fn prio_targets(k: &Kernel, tid: Pid, which: u64, who: u64) -> KResult<Vec<Pid>> {
    let who = who as i32;
    let me = k.task(tid)?;
    let found: Vec<Pid> = match which {
        PRIO_PROCESS => {
            let pid = if who == 0 { tid } else { who };
            k.tasks.get(&pid).map(|_| pid).into_iter().collect()
        }
        PRIO_PGRP => {
            let pg = if who == 0 { me.pgid } else { who };
            k.tasks
                .iter()
                .filter(|(_, t)| t.pgid == pg)
                .map(|(&p, _)| p)
                .collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { me.cred.uid } else { who as u32 };
            k.tasks
                .iter()
                .filter(|(_, t)| t.cred.uid == uid)
                .map(|(&p, _)| p)
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    if found.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(found)
}

/// Whether `tid` may change `target`'s values at all (Linux: the caller's
/// euid is the target's uid or euid, or it is privileged).
fn may_change(k: &Kernel, tid: Pid, target: Pid) -> KResult<bool> {
    let c = &k.task(tid)?.cred;
    let t = &k.task(target)?.cred;
    Ok(c.euid == 0 || c.euid == t.uid || c.euid == t.euid)
}

fn asker(k: &Kernel, tid: Pid, target: Pid) -> KResult<Asker> {
    let t = k.task(target)?;
    Ok(Asker {
        privileged: k.task(tid)?.cred.euid == 0,
        rlimit_nice: t.rlimits[RLIMIT_NICE].0,
        rlimit_rtprio: t.rlimits[RLIMIT_RTPRIO].0,
    })
}

/// getpriority returns 20 - nice (1..40), the best of the targets.
pub fn sys_getpriority(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let best = prio_targets(k, tid, a[0], a[1])?
        .into_iter()
        .filter_map(|p| k.tasks.get(&p).map(|t| 20 - t.sched.nice as i64))
        .max()
        .ok_or(Errno::ESRCH)?;
    ok(best)
}

pub fn sys_setpriority(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let nice = a[2] as i32 as i64;
    let mut result = Ok(());
    for p in prio_targets(k, tid, a[0], a[1])? {
        let r = if may_change(k, tid, p)? {
            let who = asker(k, tid, p)?;
            k.task_mut(p)?.sched.set_nice(nice, &who)
        } else {
            Err(Errno::EPERM)
        };
        if r.is_err() {
            result = r;
        }
    }
    result?;
    ok(0)
}

/// The task a sched_* pid names (0: the caller); EINVAL for a negative
/// pid, ESRCH for none.
fn sched_target(k: &Kernel, tid: Pid, pid: u64) -> KResult<Pid> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let p = if pid == 0 { tid } else { pid };
    k.task(p).map_err(|_| Errno::ESRCH)?;
    Ok(p)
}

fn set_sched(k: &mut Kernel, tid: Pid, pid: u64, policy: Option<u32>, param: u64) -> SysResult {
    if param == 0 || (pid as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let prio = k.read_u32(tid, param)?;
    if (prio as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let p = sched_target(k, tid, pid)?;
    if !may_change(k, tid, p)? {
        return Err(Errno::EPERM);
    }
    let who = asker(k, tid, p)?;
    let old: SchedAttr = k.task(p)?.sched;
    let mut attr = old;
    attr.set_policy(policy, prio, &who)?;
    k.task_mut(p)?.sched = attr;
    // Requeued by its new priority; whoever should run now does.
    k.sched_changed(p, old);
    ok(0)
}

pub fn sys_sched_setscheduler(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let policy = a[1] as i32;
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    set_sched(k, tid, a[0], Some(policy as u32), a[2])
}

pub fn sys_sched_setparam(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    set_sched(k, tid, a[0], None, a[1])
}

pub fn sys_sched_getscheduler(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = sched_target(k, tid, a[0])?;
    ok(k.task(p)?.sched.policy_word() as i64)
}

pub fn sys_sched_getparam(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let p = sched_target(k, tid, a[0])?;
    let prio = k.task(p)?.sched.rt_priority;
    k.write_u32(tid, a[1], prio)?;
    ok(0)
}

pub fn sys_sched_get_priority_max(_k: &mut Kernel, _tid: Pid, a: [u64; 6]) -> SysResult {
    ok(priority_range(a[0] as u32)?.1 as i64)
}

pub fn sys_sched_get_priority_min(_k: &mut Kernel, _tid: Pid, a: [u64; 6]) -> SysResult {
    ok(priority_range(a[0] as u32)?.0 as i64)
}

pub fn sys_sched_rr_get_interval(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = sched_target(k, tid, a[0])?;
    let ns = k.task(p)?.sched.rr_interval_ns();
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
    b[8..].copy_from_slice(&((ns % 1_000_000_000) as i64).to_le_bytes());
    k.write_user(tid, a[1], &b)?;
    ok(0)
}

/// The task sched_{get,set}affinity names: 0 the caller, else an
/// existing task (a negative or unknown pid is ESRCH, as Linux's
/// find_process_by_pid).
fn affinity_target(k: &Kernel, tid: Pid, pid: u64) -> KResult<Pid> {
    let pid = pid as i32;
    let p = if pid == 0 { tid } else { pid };
    if p <= 0 {
        return Err(Errno::ESRCH);
    }
    k.task(p).map_err(|_| Errno::ESRCH)?;
    Ok(p)
}

/// The guest's cpumask_size(): one unsigned long.
const CPUMASK_BYTES: u64 = 8;

/// sched_getaffinity: the mask is {CPU 0}; the length must be a whole
/// number of longs holding at least one CPU (EINVAL); returns the bytes
/// written.
pub fn sys_sched_getaffinity(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let len = a[1] as u32 as u64;
    if len == 0 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    affinity_target(k, tid, a[0])?;
    k.write_u64(tid, a[2], 1)?;
    ok(CPUMASK_BYTES as i64)
}

/// How much of a guest's mask sched_setaffinity reads: glibc's
/// cpu_set_t (1024 CPUs).
const SETAFFINITY_READ: usize = 128;

/// sched_setaffinity: the mask is read (EFAULT; bytes past 1024 CPUs are
/// ignored), the target must exist (ESRCH) and be the caller's or the
/// caller privileged (EPERM), and the mask must name a CPU (EINVAL).
/// Partial: the guest has one CPU, but the vDSO's getcpu (sched_getcpu)
/// shows the host CPU it runs on, so a mask naming that CPU — any CPU —
/// is taken as the one CPU; the result is always {0}.
pub fn sys_sched_setaffinity(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let len = (a[1] as u32 as usize).min(SETAFFINITY_READ);
    let mut mask = [0u8; SETAFFINITY_READ];
    k.read_user(tid, a[2], &mut mask[..len])?;
    let p = affinity_target(k, tid, a[0])?;
    if !may_change(k, tid, p)? {
        return Err(Errno::EPERM);
    }
    if mask.iter().all(|&b| b == 0) {
        return Err(Errno::EINVAL);
    }
    ok(0)
}
