//! Time syscalls: clocks, sleeps, alarm and interval timers (ITIMER_REAL
//! on the wall clock, ITIMER_VIRTUAL/ITIMER_PROF on the process's CPU
//! time, charged from its stub), times.

use std::time::{Duration, Instant};

use super::{ok, Outcome, SysResult};
use crate::abi::layout::{Itimerval, Timespec, Timeval, Tms};
use crate::errno::{Errno, KResult};
use crate::host::clock;
use crate::kernel::deadline;
use crate::kernel::posix_timers::TimerClock;
use crate::kernel::signal::{SigInfo, SIGALRM, SIGKILL, SIGPROF, SIGVTALRM, SIGXCPU};
use crate::kernel::task::{CpuClock, Pid, Wait};
use crate::kernel::timers::TimerKey;
use crate::kernel::Kernel;

/// The Instant at which the host clock `clk` reads (sec, nsec).
pub(crate) fn clock_deadline(clk: u32, sec: u64, nsec: u64) -> Instant {
    let (s, n) = clock::now(clk);
    let now_ns = s as i128 * 1_000_000_000 + n as i128;
    let want = sec as i128 * 1_000_000_000 + nsec as i128;
    deadline::after(deadline::from_nanos(want - now_ns))
}

fn read_timespec(k: &mut Kernel, tid: Pid, p: u64) -> KResult<(u64, u64)> {
    let d = read_timespec_duration(k, tid, p)?;
    Ok((d.as_secs(), d.subsec_nanos() as u64))
}

/// A guest `struct timespec` at `p` (validated, clamped to forever).
pub fn read_timespec_duration(k: &mut Kernel, tid: Pid, p: u64) -> KResult<Duration> {
    let t: Timespec = k.read_struct(tid, p)?;
    deadline::timespec(t.tv_sec, t.tv_nsec)
}

fn write_timespec(k: &mut Kernel, tid: Pid, p: u64, s: i64, n: i64) -> KResult<()> {
    let t = Timespec {
        tv_sec: s,
        tv_nsec: n,
    };
    k.write_struct(tid, p, &t)
}

/// What a clock id names: a host clock (by its Linux id), or the CPU time
/// of a process (its stub's, threads share one, plus the kernel's serving
/// it), given by a task.
pub(crate) enum ClockKind {
    Host(u32),
    Cpu(Pid),
}

/// Decodes a clock id as Linux does: 0-7 and 11 are the static clocks (8
/// and 9, the alarm clocks, need an RTC the guest has none of; 10 is
/// unused), a negative id is a CPU-time clock, `(!pid << 3) | which` with
/// bit 2 for a thread's (clock_getcpuclockid, pthread_getcpuclockid).
pub(crate) fn clock_kind(k: &Kernel, tid: Pid, id: i32) -> KResult<ClockKind> {
    match id {
        2 | 3 => return Ok(ClockKind::Cpu(tid)),
        0 | 1 | 4..=7 | 11 => return Ok(ClockKind::Host(id as u32)),
        _ if id >= 0 => return Err(Errno::EINVAL),
        _ => {}
    }
    const CPUCLOCK_MAX: i32 = 3;
    const CPUCLOCK_PERTHREAD: i32 = 4;
    if id & 3 >= CPUCLOCK_MAX {
        return Err(Errno::EINVAL);
    }
    let pid = !(id >> 3);
    if pid == 0 {
        return Ok(ClockKind::Cpu(tid));
    }
    let t = k.tasks.get(&pid).ok_or(Errno::EINVAL)?;
    let me = k.task(tid)?;
    let ok_target = if id & CPUCLOCK_PERTHREAD != 0 {
        t.tgid == me.tgid
    } else {
        t.tgid == pid
    };
    if !ok_target {
        return Err(Errno::EINVAL);
    }
    Ok(ClockKind::Cpu(pid))
}

pub fn sys_clock_gettime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (s, n) = match clock_kind(k, tid, a[0] as i32)? {
        ClockKind::Cpu(of) => {
            let ns = k.mm_of(of)?.guest.cpu_time_ns() + k.kernel_ns(of);
            ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
        }
        ClockKind::Host(clk) => clock::now(clk),
    };
    write_timespec(k, tid, a[1], s, n)?;
    ok(0)
}

/// clock_settime(2). The guest shares the host's clock (its vDSO reads
/// it directly), so no clock can be set: after Linux's own checks (EINVAL
/// for a clock that is not settable, EFAULT, EINVAL for a time
/// settimeofday refuses) the answer is EPERM, as Linux gives a process
/// without CAP_SYS_TIME (a container's root).
pub fn sys_clock_settime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    match clock_kind(k, tid, id)? {
        // Only CLOCK_REALTIME has a clock_set; CPU clocks refuse with EPERM.
        ClockKind::Host(0) => {}
        ClockKind::Host(_) => return Err(Errno::EINVAL),
        ClockKind::Cpu(_) => return Err(Errno::EPERM),
    }
    let t: Timespec = k.read_struct(tid, a[1])?;
    settod_valid(t.tv_sec, t.tv_nsec)?;
    Err(Errno::EPERM)
}

/// settimeofday(2): EFAULT and EINVAL as Linux, then EPERM (see
/// `sys_clock_settime`). A time zone alone is accepted by Linux only to
/// warp the clock once at boot: EPERM too.
pub fn sys_settimeofday(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        let t: Timeval = k.read_struct(tid, a[0])?;
        if !(0..1_000_000).contains(&t.tv_usec) {
            return Err(Errno::EINVAL);
        }
        settod_valid(t.tv_sec, t.tv_usec.saturating_mul(1000))?;
    }
    if a[1] != 0 {
        // struct timezone: tz_minuteswest, tz_dsttime.
        let mut tz = [0u8; 8];
        k.read_user(tid, a[1], &mut tz)?;
        let west = i32::from_le_bytes([tz[0], tz[1], tz[2], tz[3]]);
        if !(-15 * 60..=15 * 60).contains(&west) {
            return Err(Errno::EINVAL);
        }
    }
    Err(Errno::EPERM)
}

/// Linux's timespec64_valid_settod: a time settimeofday would take.
fn settod_valid(sec: i64, nsec: i64) -> KResult<()> {
    // KTIME_SEC_MAX less the 30 years of headroom Linux keeps.
    const SETTOD_MAX: i64 = i64::MAX / 1_000_000_000 - 30 * 365 * 86400;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) || sec >= SETTOD_MAX {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub fn sys_clock_getres(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (s, n) = match clock_kind(k, tid, a[0] as i32)? {
        ClockKind::Cpu(_) => (0, 1),
        ClockKind::Host(clk) => clock::resolution(clk),
    };
    if a[1] != 0 {
        write_timespec(k, tid, a[1], s, n)?;
    }
    ok(0)
}

pub fn sys_gettimeofday(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        let (s, n) = clock::now(0);
        write_timespec(k, tid, a[0], s, n / 1000)?;
    }
    if a[1] != 0 {
        k.write_u64(tid, a[1], 0)?;
    }
    ok(0)
}

pub fn sys_time(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (s, _) = clock::now(0);
    if a[0] != 0 {
        k.write_u64(tid, a[0], s as u64)?;
    }
    ok(s)
}

fn sleep_until(k: &mut Kernel, tid: Pid, make: impl FnOnce() -> Instant) -> SysResult {
    let t = k.task_mut(tid)?;
    let deadline = *t.block_deadline.get_or_insert_with(make);
    if Instant::now() >= deadline {
        return ok(0);
    }
    Ok(Outcome::Block(Wait::Until(deadline)))
}

pub fn sys_nanosleep(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let d = read_timespec_duration(k, tid, a[0])?;
    sleep_until(k, tid, || deadline::after(d))
}

pub fn sys_clock_nanosleep(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (clk, flags) = (a[0] as u32, a[1]);
    let (s, n) = read_timespec(k, tid, a[2])?;
    if flags & 1 != 0 {
        sleep_until(k, tid, || clock_deadline(clk, s, n))
    } else {
        sleep_until(k, tid, || deadline::after(Duration::new(s, n as u32)))
    }
}

/// restart_syscall: resumes a sleep that a stop or a handler-less signal
/// cut short, with its first deadline. With nothing to resume (a handler
/// ran in between) it fails with EINTR, as Linux's does.
pub fn sys_restart_syscall(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    let t = k.task_mut(tid)?;
    let Some(b) = t.restart else {
        return Err(Errno::EINTR);
    };
    t.block_deadline = Some(b.deadline);
    if Instant::now() >= b.deadline {
        t.restart = None;
        return ok(0);
    }
    Ok(Outcome::Block(Wait::Until(b.deadline)))
}

/// si_code of signals the kernel sends on its own (timer expiries).
const SI_KERNEL: i32 = 0x80;

/// Time left on the process's real-time timer, and its interval.
fn itimer_left(k: &Kernel, tid: Pid) -> (Duration, Duration) {
    let Ok(t) = k.leader(tid) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    match t.itimer {
        Some((at, iv)) => (at.saturating_duration_since(Instant::now()), iv),
        None => (Duration::ZERO, Duration::ZERO),
    }
}

fn set_itimer(k: &mut Kernel, tid: Pid, value: Duration, interval: Duration) -> KResult<()> {
    let tgid = k.task(tid)?.tgid;
    let at = (!value.is_zero()).then(|| deadline::after(value));
    k.task_mut(tgid)?.itimer = at.map(|at| (at, interval));
    match at {
        Some(at) => k.timers.set(TimerKey::RealTimer(tgid), at),
        None => k.timers.cancel(TimerKey::RealTimer(tgid)),
    }
    Ok(())
}

pub fn sys_alarm(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (left, _) = itimer_left(k, tid);
    set_itimer(
        k,
        tid,
        Duration::from_secs(a[0] as u32 as u64),
        Duration::ZERO,
    )?;
    let secs = left.as_secs() + (left.subsec_nanos() > 0) as u64;
    ok(secs as i64)
}

const ITIMER_REAL: i32 = 0;
const ITIMER_VIRTUAL: i32 = 1;
const ITIMER_PROF: i32 = 2;

/// The CPU clock of a CPU-time timer (None: ITIMER_REAL); EINVAL for an
/// unknown `which`.
fn itimer_clock(which: u64) -> KResult<Option<CpuClock>> {
    match which as i32 {
        ITIMER_REAL => Ok(None),
        ITIMER_VIRTUAL => Ok(Some(CpuClock::Virt)),
        ITIMER_PROF => Ok(Some(CpuClock::Prof)),
        _ => Err(Errno::EINVAL),
    }
}

fn write_itimerval(
    k: &mut Kernel,
    tid: Pid,
    p: u64,
    value: Duration,
    interval: Duration,
) -> KResult<()> {
    let tv = |d: Duration| Timeval {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_usec: d.subsec_micros() as i64,
    };
    let it = Itimerval {
        it_interval: tv(interval),
        it_value: tv(value),
    };
    k.write_struct(tid, p, &it)
}

/// A guest `struct itimerval` as (value, interval); EINVAL unless both
/// timevals are valid (seconds >= 0, 0 <= microseconds < 1e6), as Linux.
fn read_itimerval(k: &mut Kernel, tid: Pid, p: u64) -> KResult<(Duration, Duration)> {
    let it: Itimerval = k.read_struct(tid, p)?;
    let tv = |t: Timeval| deadline::timeval(t.tv_sec, t.tv_usec);
    let interval = tv(it.it_interval)?;
    Ok((tv(it.it_value)?, interval))
}

/// (value, interval) of one of the process's interval timers now.
fn itimer_get(k: &mut Kernel, tid: Pid, clock: Option<CpuClock>) -> (Duration, Duration) {
    let Some(c) = clock else {
        return itimer_left(k, tid);
    };
    k.charge_cpu_itimers(tid);
    let (v, i) = k
        .leader(tid)
        .map(|l| l.cpu_itimers.get(c))
        .unwrap_or((0, 0));
    (Duration::from_nanos(v), Duration::from_nanos(i))
}

pub fn sys_getitimer(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let clock = itimer_clock(a[0])?;
    let (v, i) = itimer_get(k, tid, clock);
    write_itimerval(k, tid, a[1], v, i)?;
    ok(0)
}

/// setitimer: a NULL new value disarms (Linux's old misfeature, kept).
pub fn sys_setitimer(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let clock = itimer_clock(a[0])?;
    let (value, interval) = if a[1] != 0 {
        read_itimerval(k, tid, a[1])?
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    let (old_v, old_i) = itimer_get(k, tid, clock);
    match clock {
        None => set_itimer(k, tid, value, interval)?,
        Some(c) => {
            let tgid = k.task(tid)?.tgid;
            let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128 / 4) as u64;
            k.task_mut(tgid)?
                .cpu_itimers
                .set(c, ns(value), ns(interval));
        }
    }
    if a[2] != 0 {
        write_itimerval(k, tid, a[2], old_v, old_i)?;
    }
    ok(0)
}

pub fn sys_times(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        let (u, s) = k.cpu_ticks(tid);
        let (cu, cs) = k.leader(tid)?.child_cpu;
        let t = Tms {
            tms_utime: u as i64,
            tms_stime: s as i64,
            tms_cutime: cu as i64,
            tms_cstime: cs as i64,
        };
        k.write_struct(tid, a[0], &t)?;
    }
    ok((k.uptime().as_millis() / 10) as i64 + 1)
}

impl Kernel {
    /// Delivers SIGALRM if `tgid`'s real-time timer expired (its
    /// deadline came out of the queue) and re-arms a periodic one.
    pub fn fire_real_timer(&mut self, tgid: Pid) {
        let now = Instant::now();
        let Some((at, iv)) = self.tasks.get(&tgid).and_then(|t| t.itimer) else {
            return;
        };
        if at > now {
            // Re-armed meanwhile: its own entry is queued.
            return;
        }
        let next = (!iv.is_zero()).then(|| deadline::later(now, iv));
        if let Ok(t) = self.task_mut(tgid) {
            t.itimer = next.map(|at| (at, iv));
        }
        if let Some(at) = next {
            self.timers.set(TimerKey::RealTimer(tgid), at);
        }
        self.send_to_process(
            tgid,
            SigInfo {
                signo: SIGALRM,
                code: SI_KERNEL,
                ..Default::default()
            },
        );
    }

    /// Advances `tid`'s process's ITIMER_VIRTUAL/ITIMER_PROF clocks to
    /// the CPU time its stub has used (one /proc read: only when armed).
    pub fn charge_cpu_itimers(&mut self, tid: Pid) {
        let Ok(tgid) = self.leader(tid).map(|l| l.tgid) else {
            return;
        };
        if !self.tasks.get(&tgid).is_some_and(|l| l.cpu_itimers.armed()) {
            return;
        }
        let ticks = self.cpu_ticks(tid);
        if let Ok(l) = self.task_mut(tgid) {
            l.cpu_itimers.charge(ticks);
        }
    }

    /// RLIMIT_CPU of `tid`'s process (Linux's check_process_timers): at
    /// the hard limit SIGKILL; at the soft limit SIGXCPU, and the soft
    /// limit moves one second on, so another follows each CPU second.
    /// The CPU time is read (from the host) only when a limit is set.
    fn check_rlimit_cpu(&mut self, tid: Pid) {
        const RLIMIT_CPU: usize = 0;
        let Ok(tgid) = self.task(tid).map(|t| t.tgid) else {
            return;
        };
        let Ok((soft, hard)) = self.task(tgid).map(|l| l.rlimits[RLIMIT_CPU]) else {
            return;
        };
        if soft == u64::MAX && hard == u64::MAX {
            return;
        }
        let secs = self.ptimer_now(tgid, TimerClock::Cpu) / 1_000_000_000;
        let signo = if hard != u64::MAX && secs >= hard {
            SIGKILL
        } else if soft != u64::MAX && secs >= soft {
            let next = soft.saturating_add(1);
            for th in self.threads(tgid) {
                if let Ok(t) = self.task_mut(th) {
                    t.rlimits[RLIMIT_CPU].0 = next;
                }
            }
            SIGXCPU
        } else {
            return;
        };
        log::debug!("process {tgid}: RLIMIT_CPU ({soft}, {hard}) at {secs} s: signal {signo}");
        self.send_to_process(
            tgid,
            SigInfo {
                signo,
                code: SI_KERNEL,
                ..Default::default()
            },
        );
    }

    /// After `tid` ran: SIGVTALRM/SIGPROF for its process's expired CPU
    /// timers (Linux checks them at each tick of the running task; here
    /// each turn ends at the latest at the preemption tick).
    pub fn run_cpu_itimers(&mut self, tid: Pid) {
        let Some(tgid) = self
            .tasks
            .get(&tid)
            .filter(|t| t.is_alive())
            .map(|t| t.tgid)
        else {
            return;
        };
        // Run after every turn: one look at the process first, as most
        // have no CPU timer and no RLIMIT_CPU (then each step below would
        // look the process up again to do nothing).
        const RLIMIT_CPU: usize = 0;
        let nothing = self.tasks.get(&tgid).is_none_or(|l| {
            !l.posix_timers.any_cpu_armed()
                && l.rlimits[RLIMIT_CPU] == (u64::MAX, u64::MAX)
                && !l.cpu_itimers.armed()
        });
        if nothing {
            return;
        }
        self.run_cpu_posix_timers(tid);
        self.check_rlimit_cpu(tid);
        self.charge_cpu_itimers(tid);
        let Ok(tgid) = self.leader(tid).map(|l| l.tgid) else {
            return;
        };
        let fired = match self.task_mut(tgid) {
            Ok(l) => l.cpu_itimers.expire(),
            Err(_) => return,
        };
        for which in fired {
            let signo = match which {
                CpuClock::Virt => SIGVTALRM,
                CpuClock::Prof => SIGPROF,
            };
            log::trace!("process {tgid}: CPU timer {which:?} expired");
            self.send_to_process(
                tgid,
                SigInfo {
                    signo,
                    code: SI_KERNEL,
                    ..Default::default()
                },
            );
        }
    }
}
