//! FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI (Linux's
//! kernel/futex/requeue.c), on the waiter lists of `futex.rs` and the PI
//! handoff of `futex_pi.rs`.
//!
//! A waiter sleeps on a plain word (`WaitKind::RequeuePi`) naming the PI
//! futex it wants. CMP_REQUEUE_PI (nr_wake must be 1) takes that PI futex
//! for the oldest waiter when its TID is 0 and wakes it as the owner (with
//! FUTEX_WAITERS when nr_requeue is not 0, as Linux forces it), then moves
//! waiters to the PI futex's list (`WaitKind::Pi`) — one more than
//! nr_requeue when the lock was held — where FUTEX_UNLOCK_PI hands it over
//! as to any FUTEX_LOCK_PI waiter. Its answer is the number woken plus
//! requeued. Before the requeue a signal restarts the wait (Linux's
//! ERESTARTNOINTR); after it the wait fails with EAGAIN (`interrupt_syscall`).

use std::time::Instant;

use super::core::Kernel;
use super::futex::WaitKind;
use super::futex_pi::{FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS};
use super::task::{Pid, Wait};
use crate::errno::{Errno, KResult};

/// The arguments of FUTEX_CMP_REQUEUE_PI.
pub struct CmpRequeuePi {
    pub uaddr: u64,
    pub uaddr2: u64,
    /// Signed, as the guest's ints.
    pub nr_wake: i32,
    pub nr_requeue: i32,
    pub cmpval: u32,
    pub private: bool,
}

impl Kernel {
    /// FUTEX_WAIT_REQUEUE_PI(uaddr, val, deadline, uaddr2) after the
    /// timeout was read: Ok(wait) to sleep on `uaddr`.
    pub fn futex_wait_requeue_pi(
        &mut self,
        tid: Pid,
        uaddr: u64,
        val: u32,
        uaddr2: u64,
        private: bool,
        deadline: Option<Instant>,
    ) -> KResult<Wait> {
        if uaddr == uaddr2 {
            return Err(Errno::EINVAL);
        }
        let target = self.futex_key(tid, uaddr2, private)?;
        let key = self.futex_key(tid, uaddr, private)?;
        if self.read_u32(tid, uaddr)? != val {
            return Err(Errno::EAGAIN);
        }
        // Two addresses can be one word (a file mapped twice).
        if key == target {
            return Err(Errno::EINVAL);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Errno::ETIMEDOUT);
        }
        self.futexes
            .enqueue_kind(key, tid, WaitKind::RequeuePi { target, uaddr2 });
        Ok(match deadline {
            Some(d) => {
                self.task_mut(tid)?.block_deadline = Some(d);
                Wait::FutexUntil(d)
            }
            None => Wait::Futex,
        })
    }

    /// Was `tid`'s WAIT_REQUEUE_PI already requeued to its PI futex?
    pub fn futex_requeued_pi(&self, tid: Pid) -> bool {
        matches!(self.futexes.kind_of(tid), Some(WaitKind::Pi { .. }))
    }

    /// FUTEX_CMP_REQUEUE_PI, its checks in Linux's order: how many waiters
    /// were woken (0 or 1) plus requeued.
    pub fn futex_cmp_requeue_pi(&mut self, tid: Pid, a: CmpRequeuePi) -> KResult<usize> {
        if a.nr_wake < 0 || a.nr_requeue < 0 || a.uaddr == a.uaddr2 || a.nr_wake != 1 {
            return Err(Errno::EINVAL);
        }
        let nr_requeue = a.nr_requeue as usize;
        let key = self.futex_key(tid, a.uaddr, a.private)?;
        let key2 = self.futex_key(tid, a.uaddr2, a.private)?;
        if key == key2 {
            return Err(Errno::EINVAL);
        }
        if self.read_u32(tid, a.uaddr)? != a.cmpval {
            return Err(Errno::EAGAIN);
        }
        // futex_proxy_trylock_atomic: the PI word is read even when nobody
        // waits.
        let uval2 = self.read_u32(tid, a.uaddr2)?;
        let mut count = 0usize;
        if let Some(top) = self.futex_top_waiter(key) {
            let WaitKind::RequeuePi { target, .. } = top.kind else {
                return Err(Errno::EINVAL);
            };
            if target != key2 {
                return Err(Errno::EINVAL);
            }
            // futex_lock_pi_atomic on the PI word for the top waiter.
            if uval2 & FUTEX_TID_MASK == top.tid as u32 & FUTEX_TID_MASK {
                return Err(Errno::EDEADLK);
            }
            if let Some(w2) = self.futex_top_waiter(key2) {
                // Waiters there already: they must be PI waiters.
                if !matches!(w2.kind, WaitKind::Pi { .. }) {
                    return Err(Errno::EINVAL);
                }
            } else if uval2 & FUTEX_TID_MASK == 0 {
                // Free: the top waiter takes it and returns 0.
                let waiters = if nr_requeue != 0 { FUTEX_WAITERS } else { 0 };
                let new = (top.tid as u32 & FUTEX_TID_MASK) | (uval2 & FUTEX_OWNER_DIED) | waiters;
                self.write_u32(tid, a.uaddr2, new)?;
                self.futexes.remove(top.tid);
                self.futex_wake_task(top.tid);
                count = 1;
            } else {
                // Held: the first waiter sets FUTEX_WAITERS, then finds
                // the owner.
                self.write_u32(tid, a.uaddr2, uval2 | FUTEX_WAITERS)?;
                let owner = (uval2 & FUTEX_TID_MASK) as Pid;
                if !self.tasks.get(&owner).is_some_and(|t| t.is_alive()) {
                    return Err(Errno::ESRCH);
                }
            }
        }
        for w in self.futexes.entries(key) {
            // nr_wake is 1: stop once nr_requeue went beyond the woken one.
            if count.saturating_sub(1) >= nr_requeue && count >= 1 {
                break;
            }
            if !self.futex_waiting(w.tid) {
                continue;
            }
            let WaitKind::RequeuePi { target, uaddr2 } = w.kind else {
                return Err(Errno::EINVAL);
            };
            if target != key2 {
                return Err(Errno::EINVAL);
            }
            // rt_mutex_start_proxy_lock: a waiter that owns the lock would
            // wait for itself.
            let owner = self.read_u32(tid, a.uaddr2)? & FUTEX_TID_MASK;
            if owner == w.tid as u32 & FUTEX_TID_MASK {
                return Err(Errno::EDEADLK);
            }
            if self
                .futexes
                .move_waiter(w.tid, key, key2, WaitKind::Pi { uaddr: uaddr2 })
            {
                count += 1;
            }
        }
        Ok(count)
    }
}
