//! The kernel's side of the guest TCP/IP stack (`crate::net::inet`):
//! the stack is made on first use (a guest without inet sockets pays
//! nothing), run after each socket operation, and run by the scheduler
//! when smoltcp's own timers are due while the guest is idle.

use std::time::Instant;

use super::core::Kernel;
use super::files::socket::sock_wake;
use crate::net::inet::NetStack;

/// Most stack-and-pump rounds one settle runs (a bound: each round
/// moves at most a chunk per forwarded connection).
const SETTLE_ROUNDS: usize = 64;

impl Kernel {
    /// The stack, made on first use.
    pub fn net(&mut self) -> &mut NetStack {
        if self.inet.is_none() {
            let seed = self.rng.next_u64();
            self.inet = Some(Box::new(NetStack::new(seed)));
        }
        self.inet.as_mut().expect("made above")
    }

    /// Runs the stack until nothing moves; wakes socket waiters if
    /// anything did.
    /// Forwarded host connections are pumped too (`netfwd.rs`), and the
    /// stack run again while that moves anything.
    pub fn net_settle(&mut self) {
        let mut moved = false;
        for _ in 0..SETTLE_ROUNDS {
            let polled = self.inet.as_mut().is_some_and(|s| s.poll());
            let opened = self.net_outbound();
            let pumped = self.net_pump() || opened;
            moved |= polled || pumped;
            if !pumped {
                break;
            }
        }
        if moved {
            sock_wake(self);
        }
    }

    /// When the stack's timers next need it (None: no stack or no timer).
    pub fn net_deadline(&mut self) -> Option<Instant> {
        self.inet.as_mut().and_then(|s| s.poll_at())
    }

    /// Runs the stack if its timers are due.
    pub(super) fn net_timers(&mut self) {
        if self.net_deadline().is_some_and(|d| d <= Instant::now()) {
            self.net_settle();
        }
    }
}
