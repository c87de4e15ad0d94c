//! Wake-ups a socket operation owes: the socket machinery has no kernel
//! to call, so each change notes (wait queue, events) here and the
//! kernel layer wakes them once the operation is done (no socket is
//! borrowed then). Each socket has its own queue, so an event on one
//! socket wakes only the tasks waiting on that socket.

use std::cell::RefCell;
use std::rc::Rc;

use crate::kernel::waitq::WaitQueueRef;

/// Data to read, a connection to accept (EPOLLIN | EPOLLRDNORM).
pub const EV_IN: u32 = 0x1 | 0x40;
/// Room to write (EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND).
pub const EV_OUT: u32 = 0x4 | 0x100 | 0x200;
/// A state change (connect, shutdown, close, error): every waiter looks.
pub const EV_ALL: u32 = u32::MAX;

/// The pending wake-ups of one kernel's sockets, queues kept once each
/// (events merged), so the list is bounded by the number of queues.
#[derive(Default, Debug)]
pub struct Wakes(RefCell<Vec<(WaitQueueRef, u32)>>);

impl Wakes {
    pub fn new() -> Rc<Self> {
        Rc::new(Wakes::default())
    }

    /// Notes that `q`'s waiters for `events` must be woken.
    pub fn push(&self, q: &WaitQueueRef, events: u32) {
        let mut v = self.0.borrow_mut();
        match v.iter_mut().find(|(w, _)| Rc::ptr_eq(w, q)) {
            Some(e) => e.1 |= events,
            None => v.push((q.clone(), events)),
        }
    }

    /// Takes everything owed.
    pub fn take(&self) -> Vec<(WaitQueueRef, u32)> {
        std::mem::take(&mut *self.0.borrow_mut())
    }

    /// Takes the oldest wake-up owed, if any. Taking them one by one
    /// keeps the list's room, so a send's wake-up allocates nothing.
    pub fn pop(&self) -> Option<(WaitQueueRef, u32)> {
        let mut v = self.0.borrow_mut();
        (!v.is_empty()).then(|| v.remove(0))
    }

    /// The events owed to `q` (tests).
    pub fn owed(&self, q: &WaitQueueRef) -> u32 {
        self.0
            .borrow()
            .iter()
            .find(|(w, _)| Rc::ptr_eq(w, q))
            .map_or(0, |e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::waitq::WaitQueue;

    #[test]
    fn pushes_merge_per_queue() {
        let w = Wakes::new();
        let (a, b) = (WaitQueue::new(), WaitQueue::new());
        w.push(&a, EV_IN);
        w.push(&b, EV_OUT);
        w.push(&a, EV_OUT);
        assert_eq!(w.owed(&a), EV_IN | EV_OUT);
        assert_eq!(w.owed(&b), EV_OUT);
        assert_eq!(w.take().len(), 2);
        assert_eq!(w.owed(&a), 0);
    }
}
