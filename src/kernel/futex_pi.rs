//! Priority-inheritance futexes and robust futex lists, on the waiter
//! lists of `futex.rs`.
//!
//! - PI futexes (FUTEX_LOCK_PI/LOCK_PI2/TRYLOCK_PI/UNLOCK_PI): the word
//!   holds the owner's tid, FUTEX_WAITERS while someone sleeps for it, and
//!   FUTEX_OWNER_DIED after an owner died holding it. A locker that finds
//!   it owned sets FUTEX_WAITERS and sleeps; UNLOCK_PI hands the lock
//!   straight to the oldest sleeper (the word becomes its tid with
//!   FUTEX_WAITERS, which Linux keeps while PI state exists, even for the
//!   last waiter), whose LOCK_PI then returns 0. There is
//!   one CPU and no real-time scheduling, so no priority is lent. A plain
//!   waiter on a PI word, or a PI waiter met by a plain op, is EINVAL
//!   (`WaitKind`). A thread that exits owning a PI futex hands it to the
//!   oldest waiter (`exit_pi_owner`).
//! - Robust lists (set_robust_list): when a thread exits, every futex on
//!   its list (and the one in `list_op_pending`) that it owns gets
//!   FUTEX_OWNER_DIED; a plain one wakes a waiter, a PI one is handed to
//!   its oldest sleeper with the bit set (glibc's mutex then answers
//!   EOWNERDEAD).

use std::time::Instant;

use super::core::Kernel;
use super::futex::{FutexKey, WaitKind, Waiter};
use super::task::{Pid, Wait};
use crate::errno::{Errno, KResult};

pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// The size of `struct robust_list_head`.
pub const ROBUST_HEAD_LEN: u64 = 24;
/// Linux's ROBUST_LIST_LIMIT: a list longer (or circular) stops here.
const ROBUST_LIST_LIMIT: usize = 2048;

impl Kernel {
    /// The oldest task still asleep on `key`, dropping entries of tasks
    /// that left their wait otherwise.
    pub(crate) fn futex_top_waiter(&mut self, key: FutexKey) -> Option<Waiter> {
        for w in self.futexes.entries(key) {
            if self.futex_waiting(w.tid) {
                return Some(w);
            }
            if !self
                .tasks
                .get(&w.tid)
                .is_some_and(|t| matches!(t.state, super::task::TaskState::Blocked(_)))
            {
                self.futexes.remove(w.tid);
            }
        }
        None
    }

    /// Hands the PI futex at `uaddr` (seen from `ctx`'s address space) to
    /// the oldest task asleep on `key`, as Linux's wake_futex_pi: the word
    /// becomes its tid with `bits` and FUTEX_WAITERS (Linux keeps the bit
    /// while PI state exists, so the new owner's unlock enters the kernel),
    /// and its LOCK_PI (or WAIT_REQUEUE_PI) returns 0. False when nobody
    /// waits; EINVAL when the oldest waiter is not a PI waiter.
    fn futex_pi_handoff(
        &mut self,
        ctx: Pid,
        uaddr: u64,
        key: FutexKey,
        bits: u32,
    ) -> KResult<bool> {
        let Some(w) = self.futex_top_waiter(key) else {
            return Ok(false);
        };
        if !matches!(w.kind, WaitKind::Pi { .. }) {
            return Err(Errno::EINVAL);
        }
        let val = (w.tid as u32 & FUTEX_TID_MASK) | bits | FUTEX_WAITERS;
        self.write_u32(ctx, uaddr, val)?;
        self.futexes.remove(w.tid);
        self.futex_wake_task(w.tid);
        Ok(true)
    }

    /// FUTEX_LOCK_PI(2) and FUTEX_TRYLOCK_PI, in Linux's order
    /// (futex_lock_pi_atomic): EDEADLK for one's own, EINVAL when a plain
    /// waiter sits on the word, the word taken when its TID is 0;
    /// otherwise FUTEX_WAITERS is set (TRYLOCK too), ESRCH when the owner
    /// is gone, EAGAIN for TRYLOCK. Ok(None) when `tid` now owns the
    /// futex, Ok(Some(wait)) to sleep until it is handed over.
    pub fn futex_lock_pi(
        &mut self,
        tid: Pid,
        uaddr: u64,
        private: bool,
        trylock: bool,
        deadline: Option<Instant>,
    ) -> KResult<Option<Wait>> {
        self.futexes.remove(tid);
        let key = self.futex_key(tid, uaddr, private)?;
        let val = self.read_u32(tid, uaddr)?;
        let owner = (val & FUTEX_TID_MASK) as Pid;
        let me = tid & FUTEX_TID_MASK as Pid;
        if owner == me {
            return Err(Errno::EDEADLK);
        }
        let top = self.futex_top_waiter(key);
        if top.is_some_and(|w| !matches!(w.kind, WaitKind::Pi { .. })) {
            return Err(Errno::EINVAL);
        }
        if owner == 0 {
            // Free (perhaps after its owner died): take it.
            let new = me as u32
                | (val & FUTEX_OWNER_DIED)
                | if top.is_some() { FUTEX_WAITERS } else { 0 };
            self.write_u32(tid, uaddr, new)?;
            return Ok(None);
        }
        if val & FUTEX_WAITERS == 0 {
            self.write_u32(tid, uaddr, val | FUTEX_WAITERS)?;
        }
        if !self.tasks.get(&owner).is_some_and(|t| t.is_alive()) {
            // An owner that is gone without marking it (no robust list).
            return Err(Errno::ESRCH);
        }
        if trylock {
            return Err(Errno::EAGAIN);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Errno::ETIMEDOUT);
        }
        self.futexes.enqueue_kind(key, tid, WaitKind::Pi { uaddr });
        Ok(Some(match deadline {
            Some(d) => {
                self.task_mut(tid)?.block_deadline = Some(d);
                Wait::FutexUntil(d)
            }
            None => Wait::Futex,
        }))
    }

    /// FUTEX_UNLOCK_PI: EPERM unless `tid` owns it; the lock goes to the
    /// oldest sleeper, or the word becomes 0.
    pub fn futex_unlock_pi(&mut self, tid: Pid, uaddr: u64, private: bool) -> KResult<()> {
        let key = self.futex_key(tid, uaddr, private)?;
        let val = self.read_u32(tid, uaddr)?;
        if (val & FUTEX_TID_MASK) as Pid != tid & FUTEX_TID_MASK as Pid {
            return Err(Errno::EPERM);
        }
        if !self.futex_pi_handoff(tid, uaddr, key, 0)? {
            self.write_u32(tid, uaddr, 0)?;
        }
        Ok(())
    }

    /// A thread that exits owning PI futexes others wait for (Linux's
    /// exit_pi_state_list): each goes to its oldest waiter, as if
    /// unlocked; the word keeps FUTEX_OWNER_DIED if the robust list set
    /// it. The waiter's own address of the word is used.
    pub fn exit_pi_owner(&mut self, tid: Pid) {
        let me = tid as u32 & FUTEX_TID_MASK;
        for key in self.futexes.pi_keys() {
            let Some(w) = self.futex_top_waiter(key) else {
                continue;
            };
            let WaitKind::Pi { uaddr } = w.kind else {
                continue;
            };
            let Ok(val) = self.read_u32(w.tid, uaddr) else {
                continue;
            };
            if val & FUTEX_TID_MASK != me {
                continue;
            }
            let new = (w.tid as u32 & FUTEX_TID_MASK) | (val & FUTEX_OWNER_DIED) | FUTEX_WAITERS;
            if self.write_u32(w.tid, uaddr, new).is_ok() {
                self.futexes.remove(w.tid);
                self.futex_wake_task(w.tid);
            }
        }
    }

    /// The exiting thread `tid`'s robust list: each futex it still owns
    /// is marked FUTEX_OWNER_DIED and a waiter woken (Linux's
    /// exit_robust_list). A bad list is walked as far as it reads.
    pub fn exit_robust_list(&mut self, tid: Pid) {
        let Some(head) = self
            .tasks
            .get(&tid)
            .map(|t| t.robust_list)
            .filter(|&h| h != 0)
        else {
            return;
        };
        let Ok(mut entry) = self.read_u64(tid, head) else {
            return;
        };
        let Ok(offset) = self.read_u64(tid, head.wrapping_add(8)) else {
            return;
        };
        let Ok(pending) = self.read_u64(tid, head.wrapping_add(16)) else {
            return;
        };
        let mut steps = 0;
        while entry & !1 != head && entry != 0 && steps < ROBUST_LIST_LIMIT {
            let Ok(next) = self.read_u64(tid, entry & !1) else {
                break;
            };
            if entry != pending {
                self.futex_owner_died(
                    tid,
                    (entry & !1).wrapping_add(offset),
                    entry & 1 != 0,
                    false,
                );
            }
            entry = next;
            steps += 1;
        }
        if pending != 0 {
            self.futex_owner_died(
                tid,
                (pending & !1).wrapping_add(offset),
                pending & 1 != 0,
                true,
            );
        }
        if let Some(t) = self.tasks.get_mut(&tid) {
            t.robust_list = 0;
        }
    }

    /// Linux's handle_futex_death for the word at `uaddr`.
    fn futex_owner_died(&mut self, tid: Pid, uaddr: u64, pi: bool, pending: bool) {
        if !uaddr.is_multiple_of(4) {
            return;
        }
        let Ok(val) = self.read_u32(tid, uaddr) else {
            return;
        };
        if pending && !pi && val == 0 {
            // Died between taking it and listing it: wake someone.
            self.futex_wake(tid, uaddr, 1);
            return;
        }
        if (val & FUTEX_TID_MASK) as Pid != tid & FUTEX_TID_MASK as Pid {
            return;
        }
        if pi && val & FUTEX_WAITERS != 0 {
            if let Ok(key) = self.futex_key(tid, uaddr, false) {
                if let Ok(true) = self.futex_pi_handoff(tid, uaddr, key, FUTEX_OWNER_DIED) {
                    return;
                }
            }
        }
        let new = (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if self.write_u32(tid, uaddr, new).is_err() {
            return;
        }
        if !pi && val & FUTEX_WAITERS != 0 {
            self.futex_wake(tid, uaddr, 1);
        }
    }
}
