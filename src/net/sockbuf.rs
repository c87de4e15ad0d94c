//! Socket buffer accounting.
//!
//! Linux charges queued data to the *sender* (`sk_wmem_alloc`): a sender
//! blocks once what it has queued and not yet read reaches its SO_SNDBUF.
//! Here every queued message holds a `Charge` against its sender's
//! `Meter` and against the kernel-wide one; dropping the message (read,
//! or its queue freed) gives both back, so nothing can leak a count.
//! The kernel-wide meter caps all socket buffers together (a quarter of
//! the guest's memory, 1..64 MiB), which keeps umlrun's memory bounded,
//! and in proportion to mem=, however many sockets a guest opens.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::errno::{Errno, KResult};
use crate::kernel::waitq::WaitQueueRef;
use crate::net::wakes::{Wakes, EV_OUT};

/// net.core.wmem_default / rmem_default: a new socket's buffers.
pub const DEFAULT_BUF: usize = 212992;
/// net.core.wmem_max / rmem_max: the most SO_SNDBUF/SO_RCVBUF may ask
/// (before doubling).
pub const MAX_BUF: usize = 212992;
/// SOCK_MIN_SNDBUF and SOCK_MIN_RCVBUF.
pub const MIN_SNDBUF: usize = 4608;
pub const MIN_RCVBUF: usize = 2304;
/// What each queued message costs beyond its bytes (Linux counts the
/// sk_buff's truesize; we count a fixed header so tiny messages are not
/// free).
pub const MSG_OVERHEAD: usize = 256;
/// All socket buffers of one kernel together, at most (a smaller guest
/// gets less: `kernel_buf_limit`).
pub const KERNEL_BUF_LIMIT: usize = 64 << 20;
/// ... and at least, however small the guest.
pub const KERNEL_BUF_MIN: usize = 1 << 20;

/// The cap on all socket buffers of a kernel with `guest_bytes` of
/// memory: a quarter of it (the buffers live in umlrun's heap, outside
/// the guest's memory, so this keeps their host cost in line with mem=),
/// within [KERNEL_BUF_MIN, KERNEL_BUF_LIMIT].
pub fn kernel_buf_limit(guest_bytes: u64) -> usize {
    let quarter = usize::try_from(guest_bytes / 4).unwrap_or(usize::MAX);
    quarter.clamp(KERNEL_BUF_MIN, KERNEL_BUF_LIMIT)
}

#[derive(Debug, Default)]
struct MeterInner {
    used: Cell<usize>,
    /// Charges given back so far: a sender's "write space changed" count
    /// (epoll's edge-triggered mode needs to see each change).
    returns: Cell<u64>,
    /// Whom a returned charge wakes: the sending socket's queue (its
    /// writers wait for room), noted in the kernel's pending wakes.
    waker: RefCell<Option<(WaitQueueRef, Rc<Wakes>)>>,
    /// The kernel-wide meter's cap (0: KERNEL_BUF_LIMIT).
    limit: Cell<usize>,
}

/// A count of bytes charged, shared by the charges that make it up.
#[derive(Clone, Debug, Default)]
pub struct Meter(Rc<MeterInner>);

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn used(&self) -> usize {
        self.0.used.get()
    }
    /// Caps what a kernel-wide meter may hold (see `kernel_buf_limit`).
    pub fn set_limit(&self, bytes: usize) {
        self.0.limit.set(bytes);
    }
    pub fn limit(&self) -> usize {
        match self.0.limit.get() {
            0 => KERNEL_BUF_LIMIT,
            n => n,
        }
    }
    /// How many charges were given back (changes each time space frees).
    pub fn returns(&self) -> u64 {
        self.0.returns.get()
    }
    fn set(&self, v: usize) {
        self.0.used.set(v);
    }
    /// Room given back on this meter wakes `q`'s writers (through `wakes`).
    pub fn set_waker(&self, q: WaitQueueRef, wakes: Rc<Wakes>) {
        *self.0.waker.borrow_mut() = Some((q, wakes));
    }
}

/// Bytes held against a socket's meter and the kernel's; given back on
/// drop.
#[derive(Debug)]
pub struct Charge {
    meters: [Meter; 2],
    n: usize,
}

impl Charge {
    /// Charges `n` bytes to `sender` and `kernel`. ENOBUFS when the
    /// kernel-wide limit would be passed (a sender over its own SO_SNDBUF
    /// is the caller's check: it waits).
    pub fn take(sender: &Meter, kernel: &Meter, n: usize) -> KResult<Charge> {
        let total = kernel.used().checked_add(n).ok_or(Errno::ENOBUFS)?;
        if total > kernel.limit() {
            return Err(Errno::ENOBUFS);
        }
        kernel.set(total);
        sender.set(sender.used().saturating_add(n));
        Ok(Charge {
            meters: [sender.clone(), kernel.clone()],
            n,
        })
    }

    pub fn bytes(&self) -> usize {
        self.n
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        for m in &self.meters {
            m.set(m.used().saturating_sub(self.n));
            m.0.returns.set(m.returns().wrapping_add(1));
            if let Some((q, w)) = &*m.0.waker.borrow() {
                w.push(q, EV_OUT);
            }
        }
    }
}

/// The value SO_SNDBUF sets from the guest's int (halved by getsockopt
/// callers never: Linux stores and reports the doubled value).
pub fn sndbuf_from_opt(val: i32) -> usize {
    let v = (val as u32 as usize).min(MAX_BUF);
    (v * 2).max(MIN_SNDBUF)
}

/// The value SO_RCVBUF sets.
pub fn rcvbuf_from_opt(val: i32) -> usize {
    let v = (val as u32 as usize).min(MAX_BUF);
    (v * 2).max(MIN_RCVBUF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_come_back_on_drop() {
        let (s, k) = (Meter::new(), Meter::new());
        let a = Charge::take(&s, &k, 100).unwrap();
        let b = Charge::take(&s, &k, 50).unwrap();
        assert_eq!((s.used(), k.used(), a.bytes()), (150, 150, 100));
        drop(a);
        assert_eq!((s.used(), k.used()), (50, 50));
        drop(b);
        assert_eq!((s.used(), k.used(), s.returns()), (0, 0, 2));
    }

    #[test]
    fn a_returned_charge_wakes_the_senders_writers() {
        let (s, k) = (Meter::new(), Meter::new());
        let (q, wakes) = (crate::kernel::waitq::WaitQueue::new(), Wakes::new());
        s.set_waker(q.clone(), wakes.clone());
        let c = Charge::take(&s, &k, 10).unwrap();
        assert_eq!(wakes.owed(&q), 0);
        drop(c);
        assert_eq!(wakes.owed(&q), EV_OUT);
    }

    #[test]
    fn the_kernel_limit_holds() {
        let (s, k) = (Meter::new(), Meter::new());
        let big = Charge::take(&s, &k, KERNEL_BUF_LIMIT).unwrap();
        assert_eq!(Charge::take(&s, &k, 1).err(), Some(Errno::ENOBUFS));
        assert_eq!(Charge::take(&s, &k, usize::MAX).err(), Some(Errno::ENOBUFS));
        drop(big);
        assert!(Charge::take(&s, &k, 1).is_ok());
    }

    #[test]
    fn the_kernel_limit_follows_guest_memory() {
        assert_eq!(kernel_buf_limit(64 << 20), 16 << 20);
        assert_eq!(kernel_buf_limit(1 << 30), KERNEL_BUF_LIMIT);
        assert_eq!(kernel_buf_limit(1 << 20), KERNEL_BUF_MIN);
        assert_eq!(kernel_buf_limit(u64::MAX), KERNEL_BUF_LIMIT);
        let (s, k) = (Meter::new(), Meter::new());
        k.set_limit(4096);
        let a = Charge::take(&s, &k, 4096).unwrap();
        assert_eq!(Charge::take(&s, &k, 1).err(), Some(Errno::ENOBUFS));
        drop(a);
        assert!(Charge::take(&s, &k, 1).is_ok());
    }

    #[test]
    fn sockopt_values_double_and_clamp() {
        assert_eq!(sndbuf_from_opt(32768), 65536);
        assert_eq!(sndbuf_from_opt(1), MIN_SNDBUF);
        assert_eq!(sndbuf_from_opt(-1), 2 * MAX_BUF);
        assert_eq!(sndbuf_from_opt(i32::MAX), 2 * MAX_BUF);
        assert_eq!(rcvbuf_from_opt(0), MIN_RCVBUF);
    }
}
