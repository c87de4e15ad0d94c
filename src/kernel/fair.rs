//! Fair shares between runnable tasks, as Linux's CFS weighs them: each
//! task has a virtual runtime that grows by the CPU time it used, scaled
//! by 1024 / its weight (the nice value's weight from Linux's
//! `sched_prio_to_weight`, 3 for SCHED_IDLE), and the scheduler runs the
//! runnable task with the smallest one. Two busy tasks at nice 0 and
//! nice 19 thus get CPU in the ratio 1024 : 15, about 68 : 1.
//!
//! A task that slept keeps its virtual runtime, but when it is next
//! picked it is raised to the queue's minimum less a sleeper credit (half
//! a slice, Linux's GENTLE_FAIR_SLEEPERS), so a long sleep earns a quick
//! turn but never a monopoly. A forked task starts at its parent's value.
//! `sched_yield` skips the yielding task at the next pick when another is
//! runnable. Real-time tasks (FIFO, RR) are not weighed here: they run
//! before every fair task (`rt.rs`).

use super::schedattr::{SchedAttr, SCHED_IDLE};
use super::task::Pid;

/// The weight of nice 0.
pub const NICE_0_WEIGHT: u64 = 1024;
/// SCHED_IDLE's weight (Linux's WEIGHT_IDLEPRIO).
const WEIGHT_IDLEPRIO: u64 = 3;
/// Linux's `sched_prio_to_weight`, nice -20 to 19: each step is ~1.25×.
const PRIO_TO_WEIGHT: [u64; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904,
    3906, 3121, 2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87,
    70, 56, 45, 36, 29, 23, 18, 15,
];
/// How far below the queue's minimum a woken sleeper may start (half of
/// the 10 ms preemption slice).
pub const SLEEPER_CREDIT_NS: u64 = 5_000_000;

/// A task's weight from its scheduling values.
pub fn weight(attr: &SchedAttr) -> u64 {
    if attr.policy == SCHED_IDLE {
        return WEIGHT_IDLEPRIO;
    }
    let i = (attr.nice.clamp(-20, 19) + 20) as usize;
    PRIO_TO_WEIGHT[i]
}

/// `vruntime` after running `ns` of CPU time at `weight` (saturating).
pub fn charge(vruntime: u64, ns: u64, weight: u64) -> u64 {
    let scaled = (ns as u128 * NICE_0_WEIGHT as u128) / weight.max(1) as u128;
    vruntime.saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX))
}

/// The fair-share state the scheduler keeps besides each task's
/// virtual runtime.
#[derive(Debug, Default)]
pub struct FairQueue {
    /// Never decreases: the smallest virtual runtime of the runnable
    /// tasks as last seen (sleepers are raised to it less the credit).
    pub min_vruntime: u64,
    /// The task that called sched_yield: passed over at the next pick if
    /// another is runnable.
    pub skip: Option<Pid>,
}

impl FairQueue {
    /// The floor a waking task's virtual runtime is raised to.
    pub fn floor(&self) -> u64 {
        self.min_vruntime.saturating_sub(SLEEPER_CREDIT_NS)
    }

    /// Moves `min_vruntime` up to the smallest of `runnable` (if any).
    pub fn advance(&mut self, runnable: impl Iterator<Item = u64>) {
        if let Some(m) = runnable.min() {
            self.min_vruntime = self.min_vruntime.max(m);
        }
    }
}

/// The position in `queue` (task, virtual runtime) of the task to run:
/// the smallest virtual runtime, the earliest queued on a tie, and not
/// `skip` unless it is alone.
pub fn pick(queue: impl Iterator<Item = (Pid, u64)>, skip: Option<Pid>) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    let mut skipped = None;
    for (i, (pid, v)) in queue.enumerate() {
        if Some(pid) == skip {
            skipped = Some(i);
            continue;
        }
        if best.is_none_or(|(_, bv)| v < bv) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i).or(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::schedattr::SCHED_BATCH;

    fn attr(nice: i32, policy: u32) -> SchedAttr {
        SchedAttr {
            nice,
            policy,
            ..Default::default()
        }
    }

    #[test]
    fn weights_follow_linux() {
        assert_eq!(weight(&attr(0, 0)), 1024);
        assert_eq!(weight(&attr(19, 0)), 15);
        assert_eq!(weight(&attr(-20, 0)), 88761);
        assert_eq!(weight(&attr(5, SCHED_BATCH)), 335);
        assert_eq!(weight(&attr(-20, SCHED_IDLE)), 3);
    }

    #[test]
    fn charge_scales_and_saturates() {
        assert_eq!(charge(0, 10_000_000, 1024), 10_000_000);
        assert_eq!(charge(0, 15, 15), 1024);
        assert_eq!(charge(u64::MAX - 1, 10, 1024), u64::MAX);
        assert_eq!(charge(0, u64::MAX, 3), u64::MAX);
    }

    #[test]
    fn pick_smallest_then_earliest_and_skip() {
        let q = [(7, 30), (8, 10), (9, 10)];
        assert_eq!(pick(q.into_iter(), None), Some(1));
        assert_eq!(pick(q.into_iter(), Some(8)), Some(2));
        assert_eq!(pick([(7, 30)].into_iter(), Some(7)), Some(0));
        assert_eq!(pick(std::iter::empty(), None), None);
    }

    /// Two busy tasks at nice 0 and 19, each running 10 ms slices picked
    /// by virtual runtime, share the CPU about 1024 : 15.
    #[test]
    fn nice_19_gets_its_share() {
        let (w0, w19) = (weight(&attr(0, 0)), weight(&attr(19, 0)));
        let mut v = [0u64, 0u64];
        let mut ran = [0u64, 0u64];
        for _ in 0..1000 {
            let i = pick([(1, v[0]), (2, v[1])].into_iter(), None).unwrap();
            ran[i] += 1;
            v[i] = charge(v[i], 10_000_000, if i == 0 { w0 } else { w19 });
        }
        let ratio = ran[0] as f64 / ran[1] as f64;
        assert!((60.0..75.0).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn min_vruntime_only_grows() {
        let mut f = FairQueue::default();
        f.advance([50, 20].into_iter());
        assert_eq!(f.min_vruntime, 20);
        f.advance([10].into_iter());
        assert_eq!(f.min_vruntime, 20);
        f.advance(std::iter::empty());
        assert_eq!(f.min_vruntime, 20);
        assert_eq!(f.floor(), 0);
    }
}
