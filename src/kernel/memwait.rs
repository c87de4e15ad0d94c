//! Waiting for a plug before the OOM killer (`oom_wait=<ms>`).
//!
//! A guest run under a balancer (`umlbalance`) is short of frames only
//! until the balancer sees it and plugs memory (`config mem=+N`), an
//! interval or two. Without a wait its OOM killer acts first: every burst
//! that does not fit at once is killed, though it would have fitted a few
//! seconds later. With `oom_wait=`, a user page fault that finds no frame
//! — after reclaim and swap found nothing — while the guest is below
//! `maxmem=` sleeps [`RETRY`] and faults again, for at most `oom_wait`
//! from its first failed try; then the OOM killer acts as before. It is
//! Linux's memory.high throttling put before memory.max: the allocating
//! task is slowed, not killed, while someone outside (a balancer, oomd)
//! acts. The sleep is a memory stall (full when no task could run), so
//! the guest's PSI, which the balancer reads in `stats`, rises.
//!
//! While a plug may come, a user fault leaves [`KEEP_FREE_FRAMES`] free
//! (it goes to the OOM path short of them) so syscalls find frames while
//! it waits. Only page faults wait: a syscall that needs a frame goes to the OOM
//! path at once (it cannot be retried from its start halfway through).
//! A guest at `maxmem=` has nothing to wait for. A wait is bounded: the
//! guest cannot hold the kernel, and the other tasks run meanwhile.

use std::time::{Duration, Instant};

use super::core::Kernel;
use super::task::{Pid, TaskState, Wait};
use super::timers::TimerKey;

/// How long a faulting task sleeps before it faults again.
pub const RETRY: Duration = Duration::from_millis(10);

/// Frames a user fault leaves free while a plug may come (2 MiB): a
/// task that waits holds no lock, but a syscall that needs a frame
/// meanwhile (the shell forking `cat`, a pipe write) cannot wait; without
/// this it would go to the OOM killer, which picks the waiting burst.
/// Linux keeps such a reserve too (min_free_kbytes).
pub const KEEP_FREE_FRAMES: u64 = 512;

/// A task's wait: since when, and when it last went to sleep.
#[derive(Debug, Clone, Copy)]
pub struct MemWait {
    first: Instant,
    last: Instant,
}

impl Kernel {
    /// Whether a plug may still come: `oom_wait=` set and hot-plug
    /// headroom left below maxmem=.
    fn plug_may_come(&self) -> bool {
        !self.config.oom_wait.is_zero()
            && self.physmem.frames_plugged() < self.physmem.frames_total()
    }

    /// The frames a user fault must leave free now ([`KEEP_FREE_FRAMES`]
    /// while a plug may come, else none).
    pub fn oom_wait_keep_free(&self) -> u64 {
        if self.plug_may_come() {
            KEEP_FREE_FRAMES
        } else {
            0
        }
    }

    /// Out of frames in a page fault of `tid` (reclaim and swap found
    /// nothing): true when it sleeps [`RETRY`] and faults again instead
    /// of going to the OOM killer.
    pub fn oom_wait_for_plug(&mut self, tid: Pid) -> bool {
        let wait = self.config.oom_wait;
        if !self.plug_may_come() {
            return false;
        }
        let now = Instant::now();
        let first = match self.mem_waits.get(&tid) {
            // The same shortage: it slept and faulted again.
            Some(w) => {
                let (slept, first) = (now.duration_since(w.last), w.first);
                let full = self.runq.is_empty();
                self.psi.stall(slept, full, now);
                first
            }
            None => now,
        };
        if now.duration_since(first) >= wait {
            self.mem_waits.remove(&tid);
            log::info!("task {tid}: no plug within oom_wait={wait:?}: the OOM killer acts");
            return false;
        }
        let Ok(t) = self.task_mut(tid) else {
            return false;
        };
        let until = now + RETRY;
        t.state = TaskState::Blocked(Wait::Until(until));
        self.timers.set(TimerKey::Task(tid), until);
        self.runq.retain(|&p| p != tid);
        if self.mem_waits.len() >= 64 {
            // Waits of tasks gone meanwhile.
            let Kernel {
                mem_waits, tasks, ..
            } = self;
            mem_waits.retain(|p, _| tasks.contains_key(p));
        }
        if first == now {
            self.oom.waits += 1;
        }
        self.mem_waits.insert(tid, MemWait { first, last: now });
        true
    }

    /// `tid`'s fault was served: a wait it was in is over (its last sleep
    /// counts as a stall).
    pub fn oom_wait_done(&mut self, tid: Pid) {
        if self.mem_waits.is_empty() {
            return;
        }
        if let Some(w) = self.mem_waits.remove(&tid) {
            let now = Instant::now();
            let full = self.runq.is_empty();
            self.psi.stall(now.duration_since(w.last), full, now);
        }
    }
}
