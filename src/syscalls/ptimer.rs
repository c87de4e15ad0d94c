//! POSIX timers: timer_create, timer_settime, timer_gettime,
//! timer_getoverrun, timer_delete, decoded onto `kernel/posix_timers.rs`.

use std::time::{Duration, Instant};

use super::time::{clock_deadline, clock_kind, ClockKind};
use super::{ok, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::files::timerfd::{read_itimerspec, write_itimerspec};
use crate::kernel::posix_timers::{host_ns, Notify, PosixTimer, TimerClock};
use crate::kernel::task::Pid;
use crate::kernel::timers::TimerKey;
use crate::kernel::Kernel;

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
const SIGEV_SIZE: usize = 64;
const TIMER_ABSTIME: u64 = 1;
const SIGRTMAX: i32 = 64;

fn tgid_of(k: &Kernel, tid: Pid) -> KResult<Pid> {
    Ok(k.task(tid)?.tgid)
}

/// The clock a timer may run on: EINVAL for no such clock, EOPNOTSUPP
/// for the raw and coarse clocks (no timers on them), EINVAL too for the
/// CPU clock of another process (not supported here).
fn timer_clock(k: &Kernel, tid: Pid, id: i32) -> KResult<TimerClock> {
    match clock_kind(k, tid, id)? {
        ClockKind::Host(4..=6) => Err(Errno::EOPNOTSUPP),
        ClockKind::Host(c) => Ok(TimerClock::Host(c)),
        ClockKind::Cpu(of) => {
            if k.task(of)?.tgid != tgid_of(k, tid)? {
                return Err(Errno::EINVAL);
            }
            Ok(TimerClock::Cpu)
        }
    }
}

/// Linux's good_sigevent: the notification a `struct sigevent` asks for
/// (SIGEV_THREAD is glibc's, the kernel takes it as SIGEV_SIGNAL).
fn notify_of(k: &Kernel, tid: Pid, ev: &[u8]) -> KResult<Notify> {
    let value = u64::from_le_bytes(ev[0..8].try_into().expect("8 bytes"));
    let signo = i32::from_le_bytes(ev[8..12].try_into().expect("4 bytes"));
    let how = i32::from_le_bytes(ev[12..16].try_into().expect("4 bytes"));
    let thread_id = i32::from_le_bytes(ev[16..20].try_into().expect("4 bytes"));
    let thread = match how & !SIGEV_THREAD_ID {
        SIGEV_NONE if how & SIGEV_THREAD_ID == 0 => return Ok(Notify::None),
        SIGEV_SIGNAL | SIGEV_THREAD if how & SIGEV_THREAD_ID == 0 => None,
        SIGEV_SIGNAL if how & SIGEV_THREAD_ID != 0 => {
            let same = k
                .tasks
                .get(&thread_id)
                .is_some_and(|t| t.is_alive() && t.tgid == tgid_of(k, tid).unwrap_or(0));
            if !same {
                return Err(Errno::EINVAL);
            }
            Some(thread_id)
        }
        _ => return Err(Errno::EINVAL),
    };
    if !(1..=SIGRTMAX).contains(&signo) {
        return Err(Errno::EINVAL);
    }
    Ok(Notify::Signal {
        signo,
        value,
        thread,
    })
}

/// timer_create(clockid, sevp, timerid).
pub fn sys_timer_create(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let clock = timer_clock(k, tid, a[0] as i32)?;
    let ev = if a[1] != 0 {
        Some(k.read_user_vec(tid, a[1], SIGEV_SIZE)?)
    } else {
        None
    };
    let tgid = tgid_of(k, tid)?;
    // The id is used up from here on, even if the rest fails (Linux).
    let id = k.task_mut(tgid)?.posix_timers.alloc_id()?;
    let notify = match ev {
        Some(ev) => notify_of(k, tid, &ev)?,
        None => Notify::Signal {
            signo: crate::kernel::signal::SIGALRM,
            value: id as u32 as u64,
            thread: None,
        },
    };
    k.write_user(tid, a[2], &id.to_le_bytes())?;
    k.task_mut(tgid)?
        .posix_timers
        .insert(id, PosixTimer::new(clock, notify));
    ok(0)
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// timer_settime(timerid, flags, new_value, old_value).
pub fn sys_timer_settime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    if a[2] == 0 {
        return Err(Errno::EINVAL);
    }
    let (interval, (sec, nsec)) = read_itimerspec(k, tid, a[2])?;
    let tgid = tgid_of(k, tid)?;
    let clock = k.task_mut(tgid)?.posix_timers.get_mut(id)?.clock;
    let now = k.ptimer_now(tgid, clock);
    let value = Duration::new(sec as u64, nsec as u32);
    let at = if value.is_zero() {
        None
    } else if a[1] & TIMER_ABSTIME == 0 {
        Some(now.saturating_add(ns(value)))
    } else {
        match clock {
            TimerClock::Cpu => Some(ns(value)),
            TimerClock::Host(c) => {
                let when: Instant = clock_deadline(c, sec as u64, nsec as u64);
                Some(host_ns(when))
            }
        }
    };
    let (old_v, old_i) = k
        .task_mut(tgid)?
        .posix_timers
        .get_mut(id)?
        .set(now, at, ns(interval));
    k.ptimer_schedule(tgid, id);
    if clock == TimerClock::Cpu {
        // An expiry already passed fires at the process's next turn.
        k.run_cpu_posix_timers(tid);
    }
    if a[3] != 0 {
        write_itimerspec(
            k,
            tid,
            a[3],
            Duration::from_nanos(old_v),
            Duration::from_nanos(old_i),
        )?;
    }
    ok(0)
}

/// timer_gettime(timerid, curr_value).
pub fn sys_timer_gettime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    let tgid = tgid_of(k, tid)?;
    let clock = k.task_mut(tgid)?.posix_timers.get_mut(id)?.clock;
    let now = k.ptimer_now(tgid, clock);
    let (v, i) = k.task_mut(tgid)?.posix_timers.get_mut(id)?.get(now);
    write_itimerspec(
        k,
        tid,
        a[1],
        Duration::from_nanos(v),
        Duration::from_nanos(i),
    )?;
    ok(0)
}

/// timer_getoverrun(timerid).
pub fn sys_timer_getoverrun(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let tgid = tgid_of(k, tid)?;
    let o = k
        .task_mut(tgid)?
        .posix_timers
        .get_mut(a[0] as i32)?
        .overrun();
    ok(o as i64)
}

/// timer_delete(timerid). A signal it already queued stays pending.
pub fn sys_timer_delete(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    let tgid = tgid_of(k, tid)?;
    k.task_mut(tgid)?.posix_timers.remove(id)?;
    k.timers.cancel(TimerKey::PosixTimer(tgid, id));
    ok(0)
}
