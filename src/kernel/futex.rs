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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    tid: Pid,
    bitset: u32,
    /// The entry's index in a futex_waitv vector (0 for futex(2)): what
    /// the woken call returns.
    index: u32,
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

    /// `tid` waits on every key of `keys` at once (futex_waitv), leaving
    /// any list it was in; a wake on `keys[i]` reports `i`.
    pub fn enqueue_vec(&mut self, keys: &[FutexKey], tid: Pid, bitset: u32) {
        self.remove(tid);
        for (index, &key) in (0u32..).zip(keys) {
            self.queues
                .entry(key)
                .or_default()
                .push_back(Waiter { tid, bitset, index });
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

    /// Removes and returns up to `n` waiters on `key` whose bitset meets
    /// `bitset`, oldest first.
    pub fn take(&mut self, key: FutexKey, n: usize, bitset: u32) -> Vec<Pid> {
        self.take_indexed(key, n, bitset)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// As `take`, with the index each waiter waits on `key` under (its
    /// first such entry); a futex_waitv waiter leaves all its lists.
    pub fn take_indexed(&mut self, key: FutexKey, n: usize, bitset: u32) -> Vec<(Pid, u32)> {
        let mut out: Vec<(Pid, u32)> = Vec::new();
        let Some(q) = self.queues.get_mut(&key) else {
            return out;
        };
        q.retain(|w| {
            if out.iter().any(|&(t, _)| t == w.tid) {
                // A second entry of a waiter already taken (one word
                // listed twice in a futex_waitv vector).
                false
            } else if out.len() < n && w.bitset & bitset != 0 {
                out.push((w.tid, w.index));
                false
            } else {
                true
            }
        });
        if q.is_empty() {
            self.queues.remove(&key);
        }
        for &(t, _) in &out {
            self.remove(t);
        }
        out
    }

    /// Moves up to `max` waiters from `from` to the end of `to`'s list.
    pub fn requeue(&mut self, from: FutexKey, to: FutexKey, max: usize) -> usize {
        if from == to || max == 0 {
            return 0;
        }
        let Some(q) = self.queues.get_mut(&from) else {
            return 0;
        };
        let k = max.min(q.len());
        let moved: Vec<Waiter> = q.drain(..k).collect();
        if q.is_empty() {
            self.queues.remove(&from);
        }
        for w in &moved {
            if let Some(keys) = self.waiting.get_mut(&w.tid) {
                if let Some(k) = keys.iter_mut().find(|k| **k == from) {
                    *k = to;
                }
            }
        }
        self.queues
            .entry(to)
            .or_default()
            .extend(moved.iter().copied());
        moved.len()
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
    /// their FUTEX_WAIT returns 0. Returns how many woke.
    pub fn futex_wake_key(&mut self, key: FutexKey, n: usize, bitset: u32) -> usize {
        let mut woken = 0;
        while woken < n {
            let batch = self.futexes.take_indexed(key, n - woken, bitset);
            if batch.is_empty() {
                break;
            }
            for (w, index) in batch {
                // An entry left by a wait that ended otherwise (a task
                // stopped and continued) is dropped, not counted.
                if !self.futex_waiting(w) {
                    continue;
                }
                self.futex_wake_task_with(w, index.into());
                woken += 1;
            }
        }
        woken
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

    #[test]
    fn waiters_wake_in_order_and_by_bitset() {
        let mut t = FutexTable::default();
        t.enqueue(key(1), 10, u32::MAX);
        t.enqueue(key(1), 11, 0b01);
        t.enqueue(key(1), 12, 0b10);
        t.enqueue(key(2), 13, u32::MAX);
        assert_eq!(t.take(key(1), 5, 0b10), vec![10, 12]);
        assert_eq!(t.take(key(1), 5, u32::MAX), vec![11]);
        assert_eq!(t.take(key(1), 5, u32::MAX), Vec::<Pid>::new());
        assert_eq!(t.len(), 1);
        assert_eq!(t.take(key(2), 0, u32::MAX), Vec::<Pid>::new());
        assert_eq!(t.take(key(2), 1, u32::MAX), vec![13]);
        assert!(t.is_empty());
    }

    #[test]
    fn waiting_again_or_leaving_keeps_one_entry() {
        let mut t = FutexTable::default();
        t.enqueue(key(1), 10, u32::MAX);
        t.enqueue(key(1), 10, u32::MAX);
        t.enqueue(key(2), 10, u32::MAX);
        assert_eq!(t.len(), 1);
        assert_eq!(t.take(key(1), 9, u32::MAX), Vec::<Pid>::new());
        t.remove(10);
        assert!(t.is_empty());
        assert_eq!(t.take(key(2), 9, u32::MAX), Vec::<Pid>::new());
    }

    #[test]
    fn requeue_moves_the_oldest_after_the_target_list() {
        let mut t = FutexTable::default();
        for tid in 1..=4 {
            t.enqueue(key(1), tid, u32::MAX);
        }
        t.enqueue(key(2), 9, u32::MAX);
        assert_eq!(t.requeue(key(1), key(2), 2), 2);
        assert_eq!(t.take(key(2), 9, u32::MAX), vec![9, 1, 2]);
        assert_eq!(t.requeue(key(1), key(1), 5), 0);
        t.remove(3);
        assert_eq!(t.take(key(1), 9, u32::MAX), vec![4]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_vector_waiter_wakes_once_with_its_index_and_leaves_every_list() {
        let mut t = FutexTable::default();
        t.enqueue(key(2), 7, u32::MAX);
        t.enqueue_vec(&[key(1), key(2), key(3), key(2)], 10, u32::MAX);
        t.enqueue(key(3), 11, u32::MAX);
        assert_eq!(t.len(), 3);
        // Listed twice on key 2: woken once, under its first index.
        assert_eq!(t.take_indexed(key(2), 9, u32::MAX), vec![(7, 0), (10, 1)]);
        assert_eq!(t.waiters(key(1)), Vec::<Pid>::new());
        assert_eq!(t.waiters(key(3)), vec![11]);
        t.remove(11);
        t.enqueue_vec(&[key(1), key(3)], 10, u32::MAX);
        assert_eq!(t.requeue(key(3), key(4), 1), 1);
        assert_eq!(t.take_indexed(key(4), 1, u32::MAX), vec![(10, 1)]);
        assert_eq!(t.waiters(key(1)), Vec::<Pid>::new());
        t.enqueue_vec(&[key(5), key(6)], 12, u32::MAX);
        t.remove(12);
        assert!(t.is_empty());
        assert_eq!(t.take(key(6), 9, u32::MAX), Vec::<Pid>::new());
    }
}
