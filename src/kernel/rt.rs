//! The real-time classes (SCHED_FIFO, SCHED_RR) as Linux's rt class runs
//! them, above the fair class (`fair.rs`):
//!
//! - A runnable real-time task always runs before any fair one
//!   (SCHED_OTHER, BATCH, IDLE); among real-time tasks the highest
//!   priority runs, and within a priority the one queued first.
//! - A task that wakes (or is forked, continued, or has its priority
//!   raised) with a higher class or priority than the running one
//!   pre-empts it at once: the running task's turn ends after the stop it
//!   is in (`need_resched`). Equal priorities never pre-empt.
//! - A pre-empted real-time task goes back to the head of its priority
//!   (it is still "the running one" of its list, as on Linux); one that
//!   blocked goes to the tail when it wakes. FIFO runs until it blocks or
//!   yields; RR also moves to the tail when its 100 ms quantum
//!   (`RR_TIMESLICE_NS`, sched_rr_get_interval's answer) is used up.
//!   sched_yield moves the caller to the tail of its priority.
//! - sched_setscheduler/sched_setparam requeue a queued task: at the tail
//!   when its priority rose or stayed, at the head when it fell.
//! - The throttle (Linux's sched_rt_runtime_us / sched_rt_period_us,
//!   950 000 of 1 000 000): real-time tasks together may run 950 ms of
//!   each second while a fair task is runnable; past that the fair ones
//!   run until the period ends, so a spinning FIFO task cannot freeze the
//!   instance (a shell on the console still answers, slowly). With no
//!   fair task runnable they go on running (nothing is kept idle).
//!
//! The pure rules are at the top (unit-tested below); the `Kernel` glue
//! the scheduler loop (`sched.rs`) and the sched_* calls use follows.

use std::time::Instant;

use super::core::Kernel;
use super::schedattr::{is_rt, SchedAttr, RR_TIMESLICE_NS, SCHED_RR};
use super::task::{Pid, TaskState};

/// Linux's sched_rt_period_us (1 s) and sched_rt_runtime_us (0.95 s).
pub const RT_PERIOD_NS: u64 = 1_000_000_000;
pub const RT_RUNTIME_NS: u64 = 950_000_000;

/// The real-time priority of a task (None for the fair classes).
pub fn rt_prio(a: &SchedAttr) -> Option<u32> {
    is_rt(a.policy).then_some(a.rt_priority)
}

/// Whether a task with values `a` pre-empts a running one with `cur`: a
/// real-time task pre-empts any fair one and a lower real-time one.
pub fn preempts(a: &SchedAttr, cur: &SchedAttr) -> bool {
    match (rt_prio(a), rt_prio(cur)) {
        (Some(p), Some(c)) => p > c,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The position of the real-time task to run among the queue's entries
/// (each its real-time priority, None for a fair task): the highest
/// priority, the earliest queued of those.
pub fn pick(queue: impl Iterator<Item = Option<u32>>) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, p) in queue.enumerate() {
        if let Some(p) = p {
            if best.is_none_or(|(_, bp)| p > bp) {
                best = Some((i, p));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Where a task that is still runnable after its turn goes back into the
/// run queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    Head,
    Tail,
}

/// A real-time task after its turn: the tail when it yielded, when its
/// priority was changed to one at least as high while it ran (`moved`),
/// or when it is RR and its quantum ran out (`rr_left` 0); else the head
/// (it was pre-empted, or its turn ended for the scheduler's own reasons:
/// it goes on first). Fair tasks always go to the tail (order among them
/// is by virtual runtime).
pub fn requeue(attr: &SchedAttr, yielded: bool, moved: bool, rr_left: u64) -> Requeue {
    if !is_rt(attr.policy) || yielded || moved || (attr.policy == SCHED_RR && rr_left == 0) {
        Requeue::Tail
    } else {
        Requeue::Head
    }
}

/// RR's quantum left after running `ns`; 0 means used up (the caller
/// then moves the task to the tail and gives it a fresh one).
pub fn rr_charge(left: u64, ns: u64) -> u64 {
    left.saturating_sub(ns)
}

/// The real-time bandwidth of the instance (Linux's rt_rq runtime and
/// period, one CPU): how much real-time tasks ran in the current period.
#[derive(Debug, Clone)]
pub struct RtBandwidth {
    /// Real-time run time allowed per period; None: unlimited (-1).
    pub runtime_ns: Option<u64>,
    pub period_ns: u64,
    /// Where the current period began (None before any real-time run).
    start: Option<Instant>,
    /// Run time charged and not yet paid back by elapsed periods.
    used_ns: u64,
}

impl Default for RtBandwidth {
    fn default() -> Self {
        RtBandwidth {
            runtime_ns: Some(RT_RUNTIME_NS),
            period_ns: RT_PERIOD_NS,
            start: None,
            used_ns: 0,
        }
    }
}

impl RtBandwidth {
    /// Moves to the period `now` is in: each whole period that passed pays
    /// back one runtime (Linux's do_sched_rt_period_timer).
    fn roll(&mut self, now: Instant) {
        let period = self.period_ns.max(1);
        let Some(start) = self.start else {
            self.start = Some(now);
            return;
        };
        let elapsed =
            u64::try_from(now.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        let overrun = elapsed / period;
        if overrun == 0 {
            return;
        }
        let back = overrun.saturating_mul(self.runtime_ns.unwrap_or(u64::MAX));
        self.used_ns = self.used_ns.saturating_sub(back);
        let step = std::time::Duration::from_nanos(overrun.saturating_mul(period));
        self.start = start.checked_add(step).or(Some(now));
    }

    /// Charges `ns` of real-time running, ending at `now`.
    pub fn charge(&mut self, now: Instant, ns: u64) {
        self.roll(now);
        self.used_ns = self.used_ns.saturating_add(ns);
    }

    /// Whether real-time tasks have used their share of this period.
    pub fn throttled(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.runtime_ns.is_some_and(|r| self.used_ns > r)
    }
}

/// The scheduler state the real-time classes add (kept in `Kernel::rt`).
#[derive(Debug, Default)]
pub struct RtState {
    pub bandwidth: RtBandwidth,
    /// The task whose turn it is (None between turns), and whether it
    /// was real-time when the turn began.
    pub current: Option<Pid>,
    pub current_is_rt: bool,
    /// Some task was ever given a real-time policy: until then picking
    /// skips the real-time scan (no cost to a guest that never uses it).
    pub ever_rt: bool,
    /// A task that pre-empts the current one became runnable: end its
    /// turn after this stop.
    pub need_resched: bool,
    /// The current task goes to the tail of its priority after its turn
    /// (it yielded, or its priority was set while it ran).
    pub requeue_tail: bool,
}

impl Kernel {
    /// `tid` became runnable: it pre-empts the running task if its class
    /// or priority is higher.
    pub fn check_preempt(&mut self, tid: Pid) {
        let Some(cur) = self.rt.current.filter(|&c| c != tid) else {
            return;
        };
        if let (Some(t), Some(c)) = (self.tasks.get(&tid), self.tasks.get(&cur)) {
            if t.state == TaskState::Runnable && preempts(&t.sched, &c.sched) {
                self.rt.need_resched = true;
            }
        }
    }

    /// The run-queue position of the real-time task to run next, unless
    /// the throttle holds real-time tasks back for a runnable fair one.
    pub(super) fn pick_rt(&mut self) -> Option<usize> {
        if !self.rt.ever_rt {
            return None;
        }
        let tasks = &self.tasks;
        let prio = |p: &Pid| tasks.get(p).and_then(|t| rt_prio(&t.sched));
        let i = pick(self.runq.iter().map(prio))?;
        let fair_waiting = self.runq.iter().any(|p| prio(p).is_none());
        if fair_waiting && self.rt.bandwidth.throttled(Instant::now()) {
            return None;
        }
        Some(i)
    }

    /// After a real-time task's turn: `wall_ns` counts against the
    /// throttle, `cpu_ns` against RR's quantum.
    pub(super) fn rt_charge(&mut self, tid: Pid, wall_ns: u64, cpu_ns: u64) {
        self.rt.bandwidth.charge(Instant::now(), wall_ns);
        if let Some(t) = self.tasks.get_mut(&tid) {
            if t.sched.policy == SCHED_RR {
                t.rr_left_ns = rr_charge(t.rr_left_ns, cpu_ns);
            }
        }
    }

    /// Puts `tid`, still runnable after its turn, back into the run queue:
    /// at the head of its priority or the tail (`requeue`).
    pub(super) fn requeue_after_turn(&mut self, tid: Pid, yielded: bool) {
        let moved = std::mem::take(&mut self.rt.requeue_tail);
        self.rt.need_resched = false;
        let Some(t) = self.tasks.get_mut(&tid) else {
            return;
        };
        if t.state != TaskState::Runnable || self.runq.contains(&tid) {
            return;
        }
        match requeue(&t.sched, yielded, moved, t.rr_left_ns) {
            Requeue::Head => self.runq.push_front(tid),
            Requeue::Tail => {
                if t.rr_left_ns == 0 {
                    t.rr_left_ns = RR_TIMESLICE_NS;
                }
                self.runq.push_back(tid)
            }
        }
    }

    /// sched_setscheduler/sched_setparam changed `tid`'s values from
    /// `old`: a queued task is requeued (head when its priority fell, else
    /// tail), and whoever should run now pre-empts the caller.
    pub fn sched_changed(&mut self, tid: Pid, old: SchedAttr) {
        let Some(new) = self.tasks.get(&tid).map(|t| t.sched) else {
            return;
        };
        if new == old {
            return;
        }
        self.rt.ever_rt |= is_rt(new.policy);
        // Lower is a smaller number here (Linux's prio is the reverse).
        let rank = |a: &SchedAttr| rt_prio(a).map_or(0, |p| p as i64 + 1);
        let fell = rank(&new) < rank(&old);
        if self.rt.current == Some(tid) {
            if !fell {
                self.rt.requeue_tail = true;
            }
        } else if let Some(i) = self.runq.iter().position(|&p| p == tid) {
            self.runq.remove(i);
            if fell {
                self.runq.push_front(tid);
            } else {
                self.runq.push_back(tid);
            }
        }
        let Some(cur) = self.rt.current else { return };
        let Some(c) = self.tasks.get(&cur).map(|t| t.sched) else {
            return;
        };
        let tasks = &self.tasks;
        let beaten = self
            .runq
            .iter()
            .filter_map(|p| tasks.get(p))
            .any(|t| t.state == TaskState::Runnable && preempts(&t.sched, &c));
        // A task that left the real-time classes lets the fair ones be
        // weighed again at once (Linux's switched_to_fair).
        let left_rt = cur == tid && is_rt(old.policy) && !is_rt(new.policy);
        if beaten || left_rt {
            self.rt.need_resched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::schedattr::{SCHED_BATCH, SCHED_FIFO, SCHED_IDLE, SCHED_OTHER};
    use std::time::Duration;

    fn attr(policy: u32, rt_priority: u32) -> SchedAttr {
        SchedAttr {
            policy,
            rt_priority,
            ..Default::default()
        }
    }

    #[test]
    fn real_time_beats_fair_and_higher_beats_lower() {
        let (fifo10, rr20) = (attr(SCHED_FIFO, 10), attr(SCHED_RR, 20));
        for fair in [SCHED_OTHER, SCHED_BATCH, SCHED_IDLE] {
            assert!(preempts(&fifo10, &attr(fair, 0)));
            assert!(!preempts(&attr(fair, 0), &fifo10));
            assert!(!preempts(&attr(fair, 0), &attr(SCHED_OTHER, 0)));
        }
        assert!(preempts(&rr20, &fifo10));
        assert!(!preempts(&fifo10, &rr20));
        assert!(
            !preempts(&attr(SCHED_RR, 10), &fifo10),
            "equal never pre-empts"
        );
    }

    #[test]
    fn pick_highest_then_earliest_and_none_without_real_time() {
        assert_eq!(pick([None, Some(5), Some(9), Some(9)].into_iter()), Some(2));
        assert_eq!(pick([Some(1), None].into_iter()), Some(0));
        assert_eq!(pick([None, None].into_iter()), None);
        assert_eq!(pick(std::iter::empty()), None);
    }

    #[test]
    fn requeue_head_unless_yield_moved_or_quantum_used() {
        let fifo = attr(SCHED_FIFO, 10);
        let rr = attr(SCHED_RR, 10);
        assert_eq!(requeue(&fifo, false, false, 0), Requeue::Head);
        assert_eq!(requeue(&fifo, true, false, 0), Requeue::Tail);
        assert_eq!(requeue(&fifo, false, true, 0), Requeue::Tail);
        assert_eq!(requeue(&rr, false, false, 1), Requeue::Head);
        assert_eq!(requeue(&rr, false, false, 0), Requeue::Tail);
        assert_eq!(
            requeue(&attr(SCHED_OTHER, 0), false, false, 1),
            Requeue::Tail
        );
        assert_eq!(rr_charge(RR_TIMESLICE_NS, 30_000_000), 70_000_000);
        assert_eq!(rr_charge(10, u64::MAX), 0);
    }

    #[test]
    fn throttle_after_950_ms_of_each_second() {
        let t0 = Instant::now();
        let mut b = RtBandwidth::default();
        assert!(!b.throttled(t0));
        b.charge(t0 + Duration::from_millis(900), 900_000_000);
        assert!(!b.throttled(t0 + Duration::from_millis(900)));
        b.charge(t0 + Duration::from_millis(960), 60_000_000);
        assert!(b.throttled(t0 + Duration::from_millis(960)));
        assert!(b.throttled(t0 + Duration::from_millis(999)));
        // The next period pays one runtime back.
        assert!(!b.throttled(t0 + Duration::from_millis(1000)));
        // A long idle stretch pays everything back, never below zero.
        b.charge(t0 + Duration::from_secs(5), 100);
        assert!(!b.throttled(t0 + Duration::from_secs(5)));
        let mut off = RtBandwidth {
            runtime_ns: None,
            ..RtBandwidth::default()
        };
        off.charge(t0, u64::MAX);
        assert!(!off.throttled(t0 + Duration::from_millis(10)));
        let mut weird = RtBandwidth {
            period_ns: 0,
            ..RtBandwidth::default()
        };
        weird.charge(t0 + Duration::from_secs(u32::MAX as u64), u64::MAX);
        weird.throttled(t0);
    }
}
