//! Futexes: the waiter lists behind FUTEX_WAIT/WAKE, keyed as Linux keys
//! them (kernel/futex/core.c `get_futex_key`) by what backs the word:
//!
//! - a private futex (FUTEX_PRIVATE_FLAG, or any word in a private
//!   mapping): the address space and the address;
//! - a word in shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, whose
//!   frames every process that inherits the mapping shares): the physical
//!   frame and the offset in it;
//! - a word in a shared file mapping: the file and the byte offset in it,
//!   so processes that map the same file anywhere meet on one key.
//!
//! A waiter sits in one list, or in several for futex_waitv
//! (`FutexTable::waiting` says which, each entry with its index in the
//! vector); it leaves all of them when woken on any, when it waits again,
//! when its syscall is cut short by a signal, and when it exits. Waking takes waiters in arrival
//! order, those whose bitset (FUTEX_WAIT_BITSET) meets the waker's.

use std::collections::{HashMap, VecDeque};

use super::core::Kernel;
use super::task::{MmId, Pid, TaskState, Wait};
use crate::errno::{Errno, KResult};
use crate::mm::{Backing, GuestVirt, PAGE};

/// What a futex word is, for matching waiters with wakers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    Private {
        mm: MmId,
        addr: u64,
    },
    /// Shared anonymous memory: physical frame number, byte offset.
    Frame {
        frame: u64,
        offset: u64,
    },
    /// A shared file mapping: the file as its page source names it, and
    /// the byte offset in the file.
    File {
        dev: u64,
        ino: u64,
        offset: u64,
    },
}

/// What a waiter sleeps in, for Linux's rule that plain and PI operations
/// never meet: a plain op finding a PI waiter (or the reverse) is EINVAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    /// FUTEX_WAIT(_BITSET), futex_waitv.
    Plain,
    /// Waiting for a PI futex: FUTEX_LOCK_PI(2), or a FUTEX_WAIT_REQUEUE_PI
    /// waiter already requeued to its PI futex. `uaddr` is the word in the
    /// waiter's own address space (what a handoff writes).
    Pi { uaddr: u64 },
    /// FUTEX_WAIT_REQUEUE_PI, still on the plain word: `target` is the PI
    /// futex it may be requeued to, at `uaddr2` in its address space.
    RequeuePi { target: FutexKey, uaddr2: u64 },
}

/// One entry of a waiter list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub tid: Pid,
    pub bitset: u32,
    /// The entry's index in a futex_waitv vector (0 for futex(2)): what
    /// the woken call returns.
    pub index: u32,
    pub kind: WaitKind,
}

#[derive(Default)]
pub struct FutexTable {
    queues: HashMap<FutexKey, VecDeque<Waiter>>,
    waiting: HashMap<Pid, Vec<FutexKey>>,
}

impl FutexTable {
    /// `tid` waits on `key` (leaving any list it was in).
    pub fn enqueue(&mut self, key: FutexKey, tid: Pid, bitset: u32) {
        self.enqueue_vec(&[key], tid, bitset);
    }

    /// `tid` waits on `key` as `kind` (leaving any list it was in).
    pub fn enqueue_kind(&mut self, key: FutexKey, tid: Pid, kind: WaitKind) {
        self.remove(tid);
        self.queues.entry(key).or_default().push_back(Waiter {
            tid,
            bitset: u32::MAX,
            index: 0,
            kind,
        });
        self.waiting.insert(tid, vec![key]);
    }

    /// `tid` waits on every key of `keys` at once (futex_waitv), leaving
    /// any list it was in; a wake on `keys[i]` reports `i`.
    pub fn enqueue_vec(&mut self, keys: &[FutexKey], tid: Pid, bitset: u32) {
        self.remove(tid);
        for (index, &key) in (0u32..).zip(keys) {
            self.queues.entry(key).or_default().push_back(Waiter {
                tid,
                bitset,
                index,
                kind: WaitKind::Plain,
            });
        }
        self.waiting.insert(tid, keys.to_vec());
    }

    /// `tid` waits no more.
    pub fn remove(&mut self, tid: Pid) {
        let Some(keys) = self.waiting.remove(&tid) else {
            return;
        };
        for key in keys {
            if let Some(q) = self.queues.get_mut(&key) {
                q.retain(|w| w.tid != tid);
                if q.is_empty() {
                    self.queues.remove(&key);
                }
            }
        }
    }

    /// The entries on `key`, oldest first.
    pub fn entries(&self, key: FutexKey) -> Vec<Waiter> {
        self.queues
            .get(&key)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How `tid` waits, when it sits in exactly one list.
    pub fn kind_of(&self, tid: Pid) -> Option<WaitKind> {
        let keys = self.waiting.get(&tid)?;
        let [key] = keys.as_slice() else {
            return None;
        };
        self.queues
            .get(key)?
            .iter()
            .find(|w| w.tid == tid)
            .map(|w| w.kind)
    }

    /// Moves `tid`'s entry on `from` to the end of `to`'s list (Linux's
    /// requeue_futex), now waiting as `kind`. False when it is not there.
    pub fn move_waiter(&mut self, tid: Pid, from: FutexKey, to: FutexKey, kind: WaitKind) -> bool {
        let Some(q) = self.queues.get_mut(&from) else {
            return false;
        };
        let Some(pos) = q.iter().position(|w| w.tid == tid) else {
            return false;
        };
        let Some(mut w) = q.remove(pos) else {
            return false;
        };
        if q.is_empty() {
            self.queues.remove(&from);
        }
        w.kind = kind;
        if let Some(keys) = self.waiting.get_mut(&tid) {
            if let Some(k) = keys.iter_mut().find(|k| **k == from) {
                *k = to;
            }
        }
        self.queues.entry(to).or_default().push_back(w);
        true
    }

    /// The keys that have a waiter of kind `Pi` (for an exiting owner).
    pub fn pi_keys(&self) -> Vec<FutexKey> {
        self.queues
            .iter()
            .filter(|(_, q)| q.iter().any(|w| matches!(w.kind, WaitKind::Pi { .. })))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The tasks listed on `key`, oldest first.
    pub fn waiters(&self, key: FutexKey) -> Vec<Pid> {
        self.queues
            .get(&key)
            .map(|q| q.iter().map(|w| w.tid).collect())
            .unwrap_or_default()
    }

    /// How many tasks wait, in all lists.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

impl Kernel {
    /// The key of the futex word at `uaddr` for `tid` (EINVAL when not
    /// 4-byte aligned; EFAULT when not mapped, for a shared key).
    pub fn futex_key(&mut self, tid: Pid, uaddr: u64, private: bool) -> KResult<FutexKey> {
        if !uaddr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let mm = self.task(tid)?.mm;
        if private {
            return Ok(FutexKey::Private { mm, addr: uaddr });
        }
        // The page must be there (Linux faults it in too).
        self.read_u32(tid, uaddr)?;
        let m = self.mms.get(&mm).ok_or(Errno::EFAULT)?;
        let vma = m.aspace.find_vma(GuestVirt(uaddr)).ok_or(Errno::EFAULT)?;
        if !vma.shared {
            return Ok(FutexKey::Private { mm, addr: uaddr });
        }
        let page = uaddr & !(PAGE - 1);
        let in_page = uaddr - page;
        match &vma.backing {
            Backing::File { source, .. } => {
                let index = vma.file_index(GuestVirt(page)).ok_or(Errno::EFAULT)?;
                let (dev, ino) = source.ident();
                let offset = index
                    .checked_mul(PAGE)
                    .and_then(|o| o.checked_add(in_page))
                    .ok_or(Errno::EFAULT)?;
                Ok(FutexKey::File { dev, ino, offset })
            }
            Backing::Anon => {
                let pte = m.aspace.pte(page).ok_or(Errno::EFAULT)?;
                Ok(FutexKey::Frame {
                    frame: pte.frame.0,
                    offset: in_page,
                })
            }
        }
    }

    /// Is `tid` still blocked in a futex wait (a list entry is current)?
    pub(crate) fn futex_waiting(&self, tid: Pid) -> bool {
        self.tasks.get(&tid).is_some_and(|t| {
            matches!(
                t.state,
                TaskState::Blocked(Wait::Futex) | TaskState::Blocked(Wait::FutexUntil(_))
            )
        })
    }

    /// Wakes up to `n` waiters on `key` whose bitset meets `bitset`:
    /// their FUTEX_WAIT returns 0. Returns how many woke. A PI waiter
    /// ends the walk (see `futex_wake_checked`).
    pub fn futex_wake_key(&mut self, key: FutexKey, n: usize, bitset: u32) -> usize {
        let mut woken = 0;
        let _ = self.futex_wake_walk(key, n, bitset, &mut woken);
        woken
    }

    /// Linux's futex_wake: walks `key`'s waiters oldest first, waking
    /// those whose bitset meets `bitset`, and stops after the `n`th — or
    /// after the first when `n` is 0, since Linux counts after waking.
    /// Meeting a PI or requeue-PI waiter ends it with EINVAL (those woken
    /// before stay woken).
    pub fn futex_wake_checked(&mut self, key: FutexKey, n: usize, bitset: u32) -> KResult<usize> {
        let mut woken = 0;
        self.futex_wake_walk(key, n.max(1), bitset, &mut woken)?;
        Ok(woken)
    }

    fn futex_wake_walk(
        &mut self,
        key: FutexKey,
        n: usize,
        bitset: u32,
        woken: &mut usize,
    ) -> KResult<()> {
        for w in self.futexes.entries(key) {
            if *woken >= n {
                break;
            }
            if !self.futex_waiting(w.tid) {
                // An entry left by a wait that ended otherwise (a task
                // stopped and continued), or a second entry of a
                // futex_waitv waiter woken just now: dropped, not counted.
                if !self.task_blocked(w.tid) {
                    self.futexes.remove(w.tid);
                }
                continue;
            }
            if w.kind != WaitKind::Plain {
                return Err(Errno::EINVAL);
            }
            if w.bitset & bitset == 0 {
                continue;
            }
            self.futexes.remove(w.tid);
            self.futex_wake_task_with(w.tid, w.index.into());
            *woken += 1;
        }
        Ok(())
    }

    /// Is `tid` blocked at all (its futex entries may still be current)?
    fn task_blocked(&self, tid: Pid) -> bool {
        self.tasks
            .get(&tid)
            .is_some_and(|t| matches!(t.state, TaskState::Blocked(_)))
    }

    /// FUTEX_REQUEUE and FUTEX_CMP_REQUEUE after their checks (Linux's
    /// futex_requeue loop): the first `nr_wake` waiters on `from` are
    /// woken, the next `nr_requeue` move to `to` (to the end of its list,
    /// or where they are when it is the same word; they count either
    /// way). A PI or requeue-PI waiter ends it with EINVAL.
    pub fn futex_requeue_plain(
        &mut self,
        from: FutexKey,
        to: FutexKey,
        nr_wake: usize,
        nr_requeue: usize,
    ) -> KResult<usize> {
        let mut count = 0usize;
        for w in self.futexes.entries(from) {
            if count.saturating_sub(nr_wake) >= nr_requeue && count >= nr_wake {
                break;
            }
            if !self.futex_waiting(w.tid) {
                if !self.task_blocked(w.tid) {
                    self.futexes.remove(w.tid);
                }
                continue;
            }
            if w.kind != WaitKind::Plain {
                return Err(Errno::EINVAL);
            }
            count += 1;
            if count <= nr_wake {
                self.futexes.remove(w.tid);
                self.futex_wake_task_with(w.tid, w.index.into());
            } else if from != to {
                self.futexes.move_waiter(w.tid, from, to, WaitKind::Plain);
            }
        }
        Ok(count)
    }

    /// Ends `w`'s futex sleep: its futex call returns 0.
    pub(crate) fn futex_wake_task(&mut self, w: Pid) {
        self.futex_wake_task_with(w, 0);
    }

    /// Ends `w`'s futex sleep with `ret` (futex_waitv: the index woken).
    pub(crate) fn futex_wake_task_with(&mut self, w: Pid, ret: u64) {
        if let Ok(t) = self.task_mut(w) {
            t.syscall = None;
            t.block_deadline = None;
        }
        let mut r = self.regs(w);
        r.rax = ret;
        self.set_regs(w, r);
        self.make_runnable(w);
    }

    /// Wakes up to `n` waiters on the word at `uaddr` of `tid`, keyed as
    /// a non-private futex (CLONE_CHILD_CLEARTID at thread exit).
    pub fn futex_wake(&mut self, tid: Pid, uaddr: u64, n: usize) -> usize {
        match self.futex_key(tid, uaddr, false) {
            Ok(key) => self.futex_wake_key(key, n, u32::MAX),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: u64) -> FutexKey {
        FutexKey::Frame {
            frame: a,
            offset: 0,
        }
    }

    fn tids(t: &FutexTable, k: FutexKey) -> Vec<Pid> {
        t.entries(k).iter().map(|w| w.tid).collect()
    }

    #[test]
    fn waiting_again_or_leaving_keeps_one_entry() {
        let mut t = FutexTable::default();
        t.enqueue(key(1), 10, u32::MAX);
        t.enqueue(key(1), 10, u32::MAX);
        t.enqueue(key(2), 10, u32::MAX);
        assert_eq!(t.len(), 1);
        assert_eq!(tids(&t, key(1)), Vec::<Pid>::new());
        assert_eq!(tids(&t, key(2)), vec![10]);
        t.remove(10);
        assert!(t.is_empty());
        assert_eq!(tids(&t, key(2)), Vec::<Pid>::new());
    }

    #[test]
    fn a_moved_waiter_goes_to_the_end_of_the_target_list_with_its_new_kind() {
        let mut t = FutexTable::default();
        for tid in 1..=3 {
            t.enqueue_kind(
                key(1),
                tid,
                WaitKind::RequeuePi {
                    target: key(2),
                    uaddr2: 8,
                },
            );
        }
        t.enqueue_kind(key(2), 9, WaitKind::Pi { uaddr: 8 });
        assert!(t.move_waiter(2, key(1), key(2), WaitKind::Pi { uaddr: 8 }));
        assert!(!t.move_waiter(2, key(1), key(2), WaitKind::Plain));
        assert_eq!(tids(&t, key(2)), vec![9, 2]);
        assert_eq!(tids(&t, key(1)), vec![1, 3]);
        assert_eq!(t.kind_of(2), Some(WaitKind::Pi { uaddr: 8 }));
        assert!(matches!(t.kind_of(1), Some(WaitKind::RequeuePi { .. })));
        assert_eq!(t.pi_keys(), vec![key(2)]);
        // Leaving after the move leaves the new list.
        t.remove(2);
        assert_eq!(tids(&t, key(2)), vec![9]);
        assert_eq!(t.kind_of(2), None);
    }

    #[test]
    fn a_vector_waiter_leaves_every_list_and_has_no_single_kind() {
        let mut t = FutexTable::default();
        t.enqueue(key(2), 7, u32::MAX);
        t.enqueue_vec(&[key(1), key(2), key(3), key(2)], 10, u32::MAX);
        t.enqueue(key(3), 11, u32::MAX);
        assert_eq!(t.len(), 3);
        assert_eq!(t.kind_of(10), None);
        assert_eq!(t.kind_of(11), Some(WaitKind::Plain));
        let idx: Vec<(Pid, u32)> = t.entries(key(2)).iter().map(|w| (w.tid, w.index)).collect();
        assert_eq!(idx, vec![(7, 0), (10, 1), (10, 3)]);
        t.remove(10);
        assert_eq!(tids(&t, key(1)), Vec::<Pid>::new());
        assert_eq!(tids(&t, key(2)), vec![7]);
        assert_eq!(tids(&t, key(3)), vec![11]);
        t.remove(7);
        t.remove(11);
        assert!(t.is_empty());
    }
}
