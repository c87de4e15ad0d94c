//! The kernel's side of the guest TCP/IP stack (`crate::net::inet`):
//! the stack is made on first use (a guest without inet sockets pays
//! nothing), run after each socket operation, and run by the scheduler
//! when smoltcp's own timers are due while the guest is idle.

use std::time::Instant;

use super::core::Kernel;
use super::files::inet::InetFile;
use super::waitq::{WaitQueueRef, ALL_EVENTS};
use crate::errno::{Errno, KResult};
use crate::net::inet::NetStack;

/// Most stack-and-pump rounds one settle runs (a bound: each round
/// moves at most a chunk per forwarded connection).
const SETTLE_ROUNDS: usize = 64;
/// Most tries of one socket operation that would block (`net_io`): each
/// try after the first follows a stack run that woke socket waiters.
const IO_TRIES: usize = 16;

/// Runs `op`, then `settle`; while `op` would block (EAGAIN) and the
/// settle woke socket waiters (`wakes` moved), tries again: that run may
/// have made `op` ready (host bytes pumped in, send room freed, a
/// handshake ended), and the caller, not yet waiting, would sleep
/// through its wake-up. Bounded by `IO_TRIES`: the flag returned is
/// true when the last run woke the waiters after `op` would block (the
/// caller must then not sleep on the queue: it tries again at once,
/// `InetFile::retry_now`).
pub fn retry_woken<K, T>(
    k: &mut K,
    wakes: impl Fn(&K) -> u64,
    mut op: impl FnMut(&mut K) -> KResult<T>,
    mut settle: impl FnMut(&mut K),
) -> (KResult<T>, bool) {
    let mut r = Err(Errno::EAGAIN);
    for _ in 0..IO_TRIES {
        let before = wakes(k);
        r = op(k);
        settle(k);
        if !matches!(r, Err(Errno::EAGAIN)) || wakes(k) == before {
            return (r, false);
        }
    }
    (r, true)
}

impl Kernel {
    /// The stack, made on first use.
    pub fn net(&mut self) -> &mut NetStack {
        if self.inet.is_none() {
            let seed = self.rng.next_u64();
            let mut st = NetStack::new(seed);
            // Big send rings share the socket buffer limit (a quarter
            // of guest memory, at most 64 MiB).
            st.send_budget = self.unix.meter.limit();
            self.inet = Some(Box::new(st));
        }
        self.inet.as_mut().expect("made above")
    }

    /// Runs the stack until nothing moves, then wakes the sockets that
    /// changed (`inet_wake_changed`).
    /// Forwarded host connections are pumped too (`netfwd.rs`), and the
    /// stack run again while that moves anything.
    pub fn net_settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            let _ = self.inet.as_mut().is_some_and(|s| s.poll());
            let opened = self.net_outbound() | self.net_udp() | self.net_tap_out();
            let pumped = self.net_pump() || opened;
            if !pumped {
                break;
            }
        }
        self.inet_wake_changed(false);
    }

    /// Wakes the queue of each live inet socket that had an event since
    /// the last scan (data or a connection arrived, readiness came up,
    /// its state changed, room freed for a sender that found none:
    /// `InetSocket::signature`), or of every socket (`all`). A socket
    /// borrowed right now is woken (its waiters look again). Dead
    /// entries are dropped here.
    pub(super) fn inet_wake_changed(&mut self, all: bool) {
        if self.inet.is_none() {
            return;
        }
        let files = std::mem::take(&mut self.inet_files);
        let mut live = Vec::with_capacity(files.len());
        let mut owed: Vec<WaitQueueRef> = Vec::new();
        let mut queued = 0usize;
        for w in files {
            let Some(f) = w.upgrade() else { continue };
            let (sig, event) = match f.sock.try_borrow_mut() {
                Ok(mut s) => {
                    let (sig, event) = s.signature(self.net(), f.seen.get());
                    queued = queued.saturating_add(s.queued(self.net()));
                    (Some(sig), event)
                }
                Err(_) => (None, true),
            };
            f.seen.set(sig);
            if all || event {
                owed.push(f.q.clone());
            }
            live.push(w);
        }
        // Files opened meanwhile (none: nothing above opens one) stay.
        live.append(&mut self.inet_files);
        self.inet_files = live;
        // Closed sockets finishing their TCP close hold none: their
        // buffers are the stack's, bounded by the orphan count.
        self.sockmem.inet_queued = queued;
        self.sockmem_sync();
        for q in owed {
            self.wake_queue(&q, ALL_EVENTS);
        }
        // eth0's frames to the packet sockets (`files/packet.rs`).
        self.packet_deliver();
    }

    /// A socket operation and the stack run after it, with no lost
    /// wake-up: an `op` that would block is tried again if the run woke
    /// the socket's queue (see `retry_woken`). `op` must change nothing
    /// when it answers EAGAIN. If the tries ran out with the queue woken
    /// after the last one, the socket's `retry_now` is set: its sleep
    /// ends at once (`syscalls::inet::block`), else that wake-up (room
    /// freed for a blocked writer, say) would be lost.
    pub fn net_io<T>(
        &mut self,
        f: &InetFile,
        op: impl FnMut(&mut Kernel) -> KResult<T>,
    ) -> KResult<T> {
        let (r, woken) = retry_woken(self, |_| f.q.wakes(), op, Kernel::net_settle);
        if woken {
            f.retry_now.set(true);
        }
        r
    }

    /// When the stack's timers next need it (None: no stack or no timer).
    pub fn net_deadline(&mut self) -> Option<Instant> {
        self.inet.as_mut().and_then(|s| s.poll_at())
    }

    /// Runs the stack if its timers are due.
    pub(super) fn net_timers(&mut self) {
        if self.net_deadline().is_some_and(|d| d <= Instant::now()) {
            self.net_settle();
            // A timer can end a socket without sending anything (a
            // connect out of time): every waiter looks again.
            self.inet_wake_changed(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of the lost wake-up: the stack run after a read that
    /// found nothing pumps in the bytes a host connection brought and
    /// wakes socket waiters; the reader, not yet waiting, must see them
    /// now rather than sleep through the wake-up.
    #[derive(Default)]
    struct Model {
        host: Vec<u8>,
        sock: Vec<u8>,
        wakes: u64,
        reads: usize,
    }

    fn read(m: &mut Model) -> KResult<Vec<u8>> {
        m.reads += 1;
        if m.sock.is_empty() {
            Err(Errno::EAGAIN)
        } else {
            Ok(std::mem::take(&mut m.sock))
        }
    }

    fn settle(m: &mut Model) {
        if !m.host.is_empty() {
            m.sock.append(&mut m.host);
            m.wakes += 1;
        }
    }

    #[test]
    fn bytes_pumped_in_by_the_run_after_a_read_are_read() {
        let mut m = Model {
            host: b"GET /".to_vec(),
            ..Model::default()
        };
        let r = retry_woken(&mut m, |m| m.wakes, read, settle);
        assert_eq!(r, (Ok(b"GET /".to_vec()), false));
        assert_eq!(m.reads, 2);
    }

    #[test]
    fn nothing_moved_means_would_block_at_once() {
        let mut m = Model::default();
        assert_eq!(
            retry_woken(&mut m, |m| m.wakes, read, settle),
            (Err(Errno::EAGAIN), false)
        );
        assert_eq!(m.reads, 1);
    }

    #[test]
    fn a_run_that_always_wakes_is_bounded() {
        let mut m = Model::default();
        let r = retry_woken(&mut m, |m| m.wakes, read, |m: &mut Model| m.wakes += 1);
        // Woken after the last try: the caller must not sleep.
        assert_eq!(r, (Err(Errno::EAGAIN), true));
        assert_eq!(m.reads, IO_TRIES);
    }
}
