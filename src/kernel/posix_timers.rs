//! POSIX per-process timers (timer_create and friends), as Linux's
//! `kernel/time/posix-timers.c` behaves: ids count up per process from 0
//! (an id is used up even when the create then fails), a timer's signal
//! is queued at most once (SI_TIMER, si_timerid, si_value), and a periodic
//! timer whose signal is pending is not re-armed until the signal is
//! taken: then it is moved past now and the periods it missed become the
//! signal's si_overrun (and what timer_getoverrun answers). SIGEV_NONE
//! timers send nothing; timer_gettime still counts them down.
//!
//! Times are nanoseconds on the timer's clock: for the wall clocks
//! (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI) since a
//! fixed [`Instant`], with a [`TimerKey::PosixTimer`] deadline while
//! armed; for the CPU-time clocks the process's CPU time, checked after
//! each turn it runs (its threads share one count: a thread's CPU clock
//! is its process's here). An absolute CLOCK_REALTIME expiry becomes a
//! monotonic one when set (a later clock_settime does not move it).
//!
//! The timers live in the thread group leader's task ([`PosixTimers`]):
//! a fork child starts with none, exec deletes them, they go with the
//! process.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::core::Kernel;
use super::signal::SigInfo;
use super::task::Pid;
use super::timers::TimerKey;
use crate::errno::{Errno, KResult};

/// si_code of a POSIX timer's signal.
pub const SI_TIMER: i32 = -2;

/// Timers one process may hold (Linux has no fixed limit; this bounds
/// what a guest can make the kernel keep).
pub const MAX_TIMERS: usize = 32768;

/// What a timer measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerClock {
    /// A host clock, by its Linux id.
    Host(u32),
    /// The process's CPU time.
    Cpu,
}

/// How a timer tells its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// SIGEV_NONE.
    None,
    /// SIGEV_SIGNAL to the process, or SIGEV_THREAD_ID to one thread.
    Signal {
        signo: i32,
        value: u64,
        thread: Option<Pid>,
    },
}

#[derive(Clone, Debug)]
pub struct PosixTimer {
    pub clock: TimerClock,
    pub notify: Notify,
    /// The next (or, while the signal is pending, the last) expiry.
    expires: Option<u64>,
    interval: u64,
    /// Missed periods counted so far (-1 after each re-arm: the expiry
    /// that sent the signal is not an overrun).
    overrun: i64,
    /// What the last taken signal reported.
    overrun_last: i64,
    /// Its signal is pending.
    queued: bool,
    /// Arming generation: a signal from an earlier arming re-arms nothing.
    gen: u32,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn clamp_overrun(v: i64) -> i32 {
    v.clamp(0, i32::MAX as i64) as i32
}

impl PosixTimer {
    pub fn new(clock: TimerClock, notify: Notify) -> Self {
        PosixTimer {
            clock,
            notify,
            expires: None,
            interval: 0,
            overrun: -1,
            overrun_last: 0,
            queued: false,
            gen: 1,
        }
    }

    /// Moves a periodic timer's expiry past `now`; the periods passed.
    fn forward(&mut self, now: u64) -> u64 {
        let Some(exp) = self.expires else {
            return 0;
        };
        if self.interval == 0 || now < exp {
            return 0;
        }
        let n = (now - exp) / self.interval + 1;
        self.expires = Some(exp.saturating_add(n.saturating_mul(self.interval)));
        n
    }

    /// (value left, interval) at `now`, as timer_gettime reports them.
    pub fn get(&mut self, now: u64) -> (u64, u64) {
        if self.interval != 0 && (self.queued || self.notify == Notify::None) {
            let n = self.forward(now);
            self.overrun = self.overrun.saturating_add(count(n));
        }
        let Some(exp) = self.expires else {
            return (0, self.interval);
        };
        let left = match exp.checked_sub(now) {
            Some(l) if l > 0 => l,
            // Due but not yet seen: Linux says 1 ns, except for
            // SIGEV_NONE, which is simply over.
            _ if self.notify == Notify::None => 0,
            _ => 1,
        };
        (left, self.interval)
    }

    /// Arms the timer to expire at `at` (None: disarms) and then every
    /// `interval`; returns the old (value, interval).
    pub fn set(&mut self, now: u64, at: Option<u64>, interval: u64) -> (u64, u64) {
        let old = self.get(now);
        self.gen = self.gen.wrapping_add(1).max(1);
        self.queued = false;
        self.overrun = -1;
        self.overrun_last = 0;
        self.expires = at;
        self.interval = if at.is_some() { interval } else { 0 };
        old
    }

    /// When the kernel must look at the timer next (None: nothing to do
    /// until its signal is taken, or ever).
    pub fn wake_at(&self) -> Option<u64> {
        if self.queued || self.notify == Notify::None {
            return None;
        }
        self.expires
    }

    /// The timer is due at `now`: Some(generation) if a signal must be
    /// sent (the caller then reports with [`Self::not_queued`] if it was
    /// not). A one-shot timer is over.
    pub fn expire(&mut self, now: u64) -> Option<u32> {
        if self.wake_at().is_none_or(|at| at > now) {
            return None;
        }
        self.queued = true;
        if self.interval == 0 {
            self.expires = None;
        }
        Some(self.gen)
    }

    /// The signal was not queued (ignored, no such thread): a periodic
    /// timer goes on, counting the expiry as an overrun as Linux does.
    pub fn not_queued(&mut self, now: u64) {
        self.queued = false;
        let n = self.forward(now);
        self.overrun = self.overrun.saturating_add(count(n));
    }

    /// Its signal of generation `gen` was taken at `now`: a periodic timer
    /// runs again. Returns the signal's si_overrun (None: a signal from
    /// an earlier arming, which changes nothing).
    pub fn taken(&mut self, gen: u32, now: u64) -> Option<i32> {
        if gen != self.gen || !self.queued {
            return None;
        }
        self.queued = false;
        if self.interval == 0 {
            return Some(0);
        }
        let n = self.forward(now);
        self.overrun = self.overrun.saturating_add(count(n));
        self.overrun_last = self.overrun;
        self.overrun = -1;
        Some(clamp_overrun(self.overrun_last))
    }

    /// timer_getoverrun's answer.
    pub fn overrun(&self) -> i32 {
        clamp_overrun(self.overrun_last)
    }

    pub fn queued_gen(&self) -> Option<u32> {
        self.queued.then_some(self.gen)
    }
}

/// A process's timers.
#[derive(Clone, Debug, Default)]
pub struct PosixTimers {
    timers: BTreeMap<i32, PosixTimer>,
    next_id: i32,
}

impl PosixTimers {
    /// Takes the next free id (Linux's: counting up, wrapping at
    /// INT_MAX, skipping ids in use); EAGAIN with `MAX_TIMERS` in use.
    pub fn alloc_id(&mut self) -> KResult<i32> {
        if self.timers.len() >= MAX_TIMERS {
            return Err(Errno::EAGAIN);
        }
        loop {
            let id = self.next_id;
            self.next_id = if id == i32::MAX { 0 } else { id + 1 };
            if !self.timers.contains_key(&id) {
                return Ok(id);
            }
        }
    }

    pub fn insert(&mut self, id: i32, t: PosixTimer) {
        self.timers.insert(id, t);
    }

    pub fn get_mut(&mut self, id: i32) -> KResult<&mut PosixTimer> {
        self.timers.get_mut(&id).ok_or(Errno::EINVAL)
    }

    pub fn remove(&mut self, id: i32) -> KResult<PosixTimer> {
        self.timers.remove(&id).ok_or(Errno::EINVAL)
    }

    /// exec: every timer goes (the id counter stays, as Linux's).
    pub fn clear(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.timers).into_keys().collect()
    }

    /// Ids of CPU-clock timers that wait to expire.
    /// Whether any CPU-clock timer is armed (`cpu_armed` not empty),
    /// without building the list.
    pub fn any_cpu_armed(&self) -> bool {
        self.timers
            .values()
            .any(|t| t.clock == TimerClock::Cpu && t.wake_at().is_some())
    }

    pub fn cpu_armed(&self) -> Vec<i32> {
        self.timers
            .iter()
            .filter(|(_, t)| t.clock == TimerClock::Cpu && t.wake_at().is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.timers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&i32, &PosixTimer)> {
        self.timers.iter()
    }
}

/// The wall-clock timeline: nanoseconds since a fixed moment.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` on the wall-clock timeline (0 for a moment before it began).
pub fn host_ns(at: Instant) -> u64 {
    at.saturating_duration_since(epoch())
        .as_nanos()
        .min(u64::MAX as u128) as u64
}

fn host_instant(ns: u64) -> Instant {
    super::deadline::later(epoch(), Duration::from_nanos(ns))
}

impl Kernel {
    /// Now on `clock` for `tgid`'s timers.
    pub fn ptimer_now(&mut self, tgid: Pid, clock: TimerClock) -> u64 {
        match clock {
            TimerClock::Host(_) => host_ns(Instant::now()),
            TimerClock::Cpu => {
                let cpu = self.mm_of(tgid).map(|m| m.guest.cpu_time_ns()).unwrap_or(0);
                cpu.saturating_add(self.kernel_ns(tgid))
            }
        }
    }

    /// Queues (or cancels) a wall-clock timer's deadline after a change.
    pub fn ptimer_schedule(&mut self, tgid: Pid, id: i32) {
        let key = TimerKey::PosixTimer(tgid, id);
        let wake = self
            .tasks
            .get(&tgid)
            .and_then(|l| l.posix_timers.timers.get(&id))
            .filter(|t| matches!(t.clock, TimerClock::Host(_)))
            .and_then(|t| t.wake_at());
        match wake {
            Some(ns) => self.timers.set(key, host_instant(ns)),
            None => self.timers.cancel(key),
        }
    }

    /// A wall-clock timer's deadline came out of the queue.
    pub fn fire_posix_timer(&mut self, tgid: Pid, id: i32) {
        let now = host_ns(Instant::now());
        self.ptimer_expire(tgid, id, now);
        self.ptimer_schedule(tgid, id);
    }

    /// After `tid` ran: its process's CPU-clock timers that expired.
    pub fn run_cpu_posix_timers(&mut self, tid: Pid) {
        let Ok(tgid) = self.task(tid).map(|t| t.tgid) else {
            return;
        };
        let ids = match self.tasks.get(&tgid) {
            Some(l) if l.is_alive() => l.posix_timers.cpu_armed(),
            _ => return,
        };
        if ids.is_empty() {
            return;
        }
        let now = self.ptimer_now(tgid, TimerClock::Cpu);
        for id in ids {
            self.ptimer_expire(tgid, id, now);
        }
    }

    /// Expires timer `id` of `tgid` if due at `now`: sends its signal.
    fn ptimer_expire(&mut self, tgid: Pid, id: i32, now: u64) {
        let Some(l) = self.tasks.get_mut(&tgid).filter(|l| l.is_alive()) else {
            return;
        };
        let Ok(t) = l.posix_timers.get_mut(id) else {
            return;
        };
        let Some(gen) = t.expire(now) else {
            return;
        };
        let Notify::Signal {
            signo,
            value,
            thread,
        } = t.notify
        else {
            return;
        };
        let info = SigInfo {
            signo,
            code: SI_TIMER,
            pid: id,
            value,
            timer: gen,
            ..Default::default()
        };
        let targets = match thread {
            Some(th) => {
                if self.tasks.get(&th).is_some_and(|t| t.tgid == tgid) {
                    self.send_to_thread(th, info);
                }
                vec![th]
            }
            None => {
                self.send_to_process(tgid, info);
                self.threads(tgid)
            }
        };
        let queued = targets.iter().any(|th| {
            self.tasks.get(th).is_some_and(|t| {
                t.pending
                    .iter()
                    .any(|i| i.code == SI_TIMER && i.pid == id && i.timer == gen)
            })
        });
        if !queued {
            if let Some(t) = self
                .tasks
                .get_mut(&tgid)
                .and_then(|l| l.posix_timers.get_mut(id).ok())
            {
                t.not_queued(now);
            }
        }
    }

    /// A signal left the pending set of `tid` to be handled (delivered,
    /// sigwaited, read from a signalfd): a timer's re-arms its timer and
    /// gets its si_overrun.
    pub fn ptimer_signal_taken(&mut self, tid: Pid, info: &mut SigInfo) {
        if info.timer == 0 || info.code != SI_TIMER {
            return;
        }
        let Ok(tgid) = self.task(tid).map(|t| t.tgid) else {
            return;
        };
        let id = info.pid;
        let Some(clock) = self
            .tasks
            .get(&tgid)
            .and_then(|l| l.posix_timers.timers.get(&id))
            .map(|t| t.clock)
        else {
            return;
        };
        let now = self.ptimer_now(tgid, clock);
        let Some(t) = self
            .tasks
            .get_mut(&tgid)
            .and_then(|l| l.posix_timers.get_mut(id).ok())
        else {
            return;
        };
        if let Some(o) = t.taken(info.timer, now) {
            info.uid = o as u32;
            self.ptimer_schedule(tgid, id);
        }
    }

    /// exec: the process's timers are deleted.
    pub fn ptimers_exec(&mut self, tgid: Pid) {
        let ids = match self.tasks.get_mut(&tgid) {
            Some(l) => l.posix_timers.clear(),
            None => return,
        };
        for id in ids {
            self.timers.cancel(TimerKey::PosixTimer(tgid, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Notify {
        Notify::Signal {
            signo: 14,
            value: 0,
            thread: None,
        }
    }

    #[test]
    fn ids_count_up_and_are_used_up_even_when_freed() {
        let mut ts = PosixTimers::default();
        let a = ts.alloc_id().unwrap();
        ts.insert(a, PosixTimer::new(TimerClock::Host(1), sig()));
        let b = ts.alloc_id().unwrap();
        assert_eq!((a, b), (0, 1));
        ts.remove(a).unwrap();
        assert_eq!(ts.alloc_id().unwrap(), 2);
        assert_eq!(ts.remove(7).unwrap_err(), Errno::EINVAL);
        ts.next_id = i32::MAX;
        assert_eq!(ts.alloc_id().unwrap(), i32::MAX);
        // Wraps, skipping 0 (in use... it was removed: free again).
        ts.insert(1, PosixTimer::new(TimerClock::Cpu, sig()));
        assert_eq!(ts.alloc_id().unwrap(), 0);
        assert_eq!(ts.alloc_id().unwrap(), 2);
    }

    #[test]
    fn a_one_shot_sends_once_and_is_over() {
        let mut t = PosixTimer::new(TimerClock::Host(1), sig());
        assert_eq!(t.set(0, Some(100), 0), (0, 0));
        assert_eq!(t.get(40), (60, 0));
        assert_eq!(t.expire(99), None);
        let g = t.expire(100).unwrap();
        assert_eq!(t.wake_at(), None);
        assert_eq!(t.expire(200), None);
        assert_eq!(t.taken(g, 150), Some(0));
        assert_eq!(t.get(150), (0, 0));
        assert_eq!(t.overrun(), 0);
    }

    #[test]
    fn a_periodic_timer_waits_for_its_signal_and_counts_missed_periods() {
        let mut t = PosixTimer::new(TimerClock::Host(1), sig());
        t.set(0, Some(10), 10);
        let g = t.expire(10).unwrap();
        // Pending: no wake-ups, but timer_gettime counts on.
        assert_eq!(t.wake_at(), None);
        assert_eq!(t.get(125), (5, 10));
        // Taken at 125: expiries at 20..=120 were missed (11).
        assert_eq!(t.taken(g, 125), Some(11));
        assert_eq!(t.overrun(), 11);
        assert_eq!(t.wake_at(), Some(130));
        // Taken in time: no overrun.
        let g = t.expire(130).unwrap();
        assert_eq!(t.taken(g, 131), Some(0));
        assert_eq!(t.wake_at(), Some(140));
        assert_eq!(t.overrun(), 0);
    }

    #[test]
    fn an_ignored_signal_counts_as_an_overrun_and_the_timer_goes_on() {
        let mut t = PosixTimer::new(TimerClock::Host(1), sig());
        t.set(0, Some(10), 10);
        t.expire(10).unwrap();
        t.not_queued(10);
        assert_eq!(t.wake_at(), Some(20));
        let g = t.expire(20).unwrap();
        assert_eq!(t.taken(g, 21), Some(1));
    }

    #[test]
    fn re_arming_makes_an_old_signal_stale() {
        let mut t = PosixTimer::new(TimerClock::Host(1), sig());
        t.set(0, Some(10), 10);
        let old = t.expire(10).unwrap();
        let (v, i) = t.set(15, Some(1000), 0);
        assert_eq!((v, i), (5, 10));
        assert_eq!(t.taken(old, 20), None);
        assert_eq!(t.wake_at(), Some(1000));
        // Disarming drops the interval.
        assert_eq!(t.set(20, None, 50), (980, 0));
        assert_eq!(t.get(20), (0, 0));
        assert_eq!(t.wake_at(), None);
    }

    #[test]
    fn sigev_none_counts_down_without_signals() {
        let mut t = PosixTimer::new(TimerClock::Host(1), Notify::None);
        t.set(0, Some(20), 10);
        assert_eq!(t.wake_at(), None);
        assert_eq!(t.expire(100), None);
        assert_eq!(t.get(55), (5, 10));
        t.set(55, Some(65), 0);
        assert_eq!(t.get(80), (0, 0));
    }

    #[test]
    fn huge_values_saturate() {
        let mut t = PosixTimer::new(TimerClock::Cpu, sig());
        t.set(0, Some(u64::MAX - 1), u64::MAX);
        let g = t.expire(u64::MAX).unwrap();
        assert_eq!(t.taken(g, u64::MAX), Some(0));
        let mut t = PosixTimer::new(TimerClock::Cpu, sig());
        t.set(0, Some(1), 1);
        let g = t.expire(1).unwrap();
        assert_eq!(t.taken(g, u64::MAX), Some(i32::MAX));
    }
}
