//! The deadline queue: every moment the kernel must act at without being
//! asked — a sleep or a poll/select/futex timeout ending, an ITIMER_REAL
//! firing, a timerfd expiring — in one ordered set, so the scheduler finds
//! the earliest in O(log n) instead of scanning every task, and checks
//! what is due on every turn (a runnable task never delays a sleeper's
//! wake-up by more than one slice).
//!
//! Each [`TimerKey`] has at most one deadline: setting it again replaces
//! the old one, so the queue holds at most one entry per task and timer.
//! Entries are hints, checked when they fire: the owner looks whether the
//! task still waits (a task woken early leaves its entry to expire
//! harmlessly, or have it replaced by its next wait).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::task::Pid;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// A blocked task's timeout (sleep, poll, select, futex, wait).
    Task(Pid),
    /// A process's ITIMER_REAL (setitimer, alarm), by thread group id.
    RealTimer(Pid),
    /// A timerfd's next expiry, by its id (kernel/files/timerfd.rs).
    TimerFd(u64),
    /// A POSIX timer on a wall clock, by thread group id and timer id.
    PosixTimer(Pid, i32),
    /// /dev/watchdog's timeout (kernel/files/watchdog.rs).
    Watchdog,
}

#[derive(Default)]
pub struct DeadlineQueue {
    by_time: BTreeSet<(Instant, TimerKey)>,
    by_key: HashMap<TimerKey, Instant>,
}

impl DeadlineQueue {
    /// Sets `key`'s deadline to `at` (replacing any earlier setting).
    pub fn set(&mut self, key: TimerKey, at: Instant) {
        if let Some(old) = self.by_key.insert(key, at) {
            if old == at {
                return;
            }
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Forgets `key`'s deadline, if any.
    pub fn cancel(&mut self, key: TimerKey) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest key due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let &(at, key) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_come_out_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut q = DeadlineQueue::default();
        q.set(TimerKey::Task(3), ms(30));
        q.set(TimerKey::Task(1), ms(10));
        q.set(TimerKey::RealTimer(1), ms(20));
        assert_eq!(q.next(), Some(ms(10)));
        assert_eq!(q.pop_due(ms(5)), None);
        assert_eq!(q.pop_due(ms(25)), Some(TimerKey::Task(1)));
        assert_eq!(q.pop_due(ms(25)), Some(TimerKey::RealTimer(1)));
        assert_eq!(q.pop_due(ms(25)), None);
        assert_eq!(q.next(), Some(ms(30)));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn setting_a_key_again_replaces_its_deadline() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut q = DeadlineQueue::default();
        for i in 0..1000 {
            q.set(TimerKey::Task(7), ms(1000 - i));
        }
        assert_eq!(q.len(), 1);
        assert_eq!(q.next(), Some(ms(1)));
        q.set(TimerKey::Task(7), ms(50));
        assert_eq!(q.pop_due(ms(10)), None);
        q.cancel(TimerKey::Task(7));
        assert!(q.is_empty());
        assert_eq!(q.pop_due(ms(100)), None);
    }
}
