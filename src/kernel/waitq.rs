//! Wait queues: Linux's `wait_queue_head_t`, gVisor's `waiter.Queue`.
//!
//! A waitable object (a pipe, the console, an eventfd, a process's
//! children) owns a `WaitQueue`. A task that must sleep registers on the
//! queues it needs, each with the event mask it cares about (one for
//! read(), several for poll/select), and blocks with `Wait::Queue`; the
//! object calls `Kernel::wake_queue(q, events)` when something happens,
//! which makes runnable exactly the tasks registered there for one of
//! those events. A woken task retries its syscall from the start (it
//! registers again if it still has to wait), and leaves every queue it was
//! on when it runs again, times out, or a signal ends the wait.
//!
//! The kernel is single-threaded, so checking readiness and registering
//! cannot race with a wake-up.

use std::cell::RefCell;
use std::rc::Rc;

use super::core::Kernel;
use super::task::{Pid, TaskState, Wait};

/// One object's waiters: (task, event mask).
#[derive(Default, Debug)]
pub struct WaitQueue {
    waiters: RefCell<Vec<(Pid, u32)>>,
    /// Wake-ups so far, waiters or not: epoll's edge trigger sees each
    /// one as a possible change.
    wakes: std::cell::Cell<u64>,
}

pub type WaitQueueRef = Rc<WaitQueue>;

/// Every event: for waiters that take any change.
pub const ALL_EVENTS: u32 = u32::MAX;

impl WaitQueue {
    pub fn new() -> WaitQueueRef {
        Rc::new(WaitQueue::default())
    }

    fn add(&self, tid: Pid, mask: u32) {
        let mut w = self.waiters.borrow_mut();
        match w.iter_mut().find(|(t, _)| *t == tid) {
            Some(e) => e.1 |= mask,
            None => w.push((tid, mask)),
        }
    }

    fn remove(&self, tid: Pid) {
        self.waiters.borrow_mut().retain(|(t, _)| *t != tid);
    }

    /// Takes the first waiter interested in any of `events` (one at a
    /// time, so a wake-up allocates nothing: most queues have one waiter).
    fn take_one(&self, events: u32) -> Option<Pid> {
        let mut w = self.waiters.borrow_mut();
        let i = w.iter().position(|&(_, m)| m & events != 0)?;
        Some(w.remove(i).0)
    }

    /// Takes the waiters interested in any of `events`, in the order they
    /// registered.
    #[cfg(test)]
    fn take(&self, events: u32) -> Vec<Pid> {
        std::iter::from_fn(|| self.take_one(events)).collect()
    }

    /// How many times the queue was woken.
    pub fn wakes(&self) -> u64 {
        self.wakes.get()
    }

    /// How many tasks wait here (tests, /proc).
    pub fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Kernel {
    /// Registers `tid` on `q` for `mask` events, until it is woken or its
    /// wait ends (see the module doc).
    pub fn wait_on(&mut self, tid: Pid, q: &WaitQueueRef, mask: u32) {
        q.add(tid, mask);
        if let Some(t) = self.tasks.get_mut(&tid) {
            if !t.waiting_on.iter().any(|w| Rc::ptr_eq(w, q)) {
                t.waiting_on.push(q.clone());
            }
        }
    }

    /// Leaves every queue `tid` is registered on.
    pub fn leave_queues(&mut self, tid: Pid) {
        let Some(t) = self.tasks.get_mut(&tid) else {
            return;
        };
        // Drained in place: the list keeps its room for the next sleep.
        for q in t.waiting_on.drain(..) {
            q.remove(tid);
        }
    }

    /// Something happened on `q`: the tasks waiting there for one of
    /// `events` become runnable (and leave their other queues).
    pub fn wake_queue(&mut self, q: &WaitQueue, events: u32) {
        q.wakes.set(q.wakes.get().wrapping_add(1));
        // One at a time: a task made runnable here leaves its other
        // queues, never this one's remaining waiters.
        while let Some(tid) = q.take_one(events) {
            let blocked = matches!(
                self.tasks.get(&tid).map(|t| t.state),
                Some(TaskState::Blocked(Wait::Queue(_)))
            );
            self.leave_queues(tid);
            if blocked {
                self.make_runnable(tid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_picks_only_matching_masks() {
        let q = WaitQueue::new();
        q.add(1, 0b01);
        q.add(2, 0b10);
        q.add(3, 0b11);
        q.add(1, 0b100); // a second registration widens the mask
        assert_eq!(q.take(0b10), vec![2, 3]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.take(0b100), vec![1]);
        assert!(q.is_empty());
        q.add(4, 1);
        q.remove(4);
        assert!(q.take(ALL_EVENTS).is_empty());
    }
}
