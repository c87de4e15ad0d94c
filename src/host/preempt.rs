//! Preemption: a guest task that computes without making syscalls would
//! keep the single kernel thread waiting on its stub forever. A [`Ticker`]
//! thread sends the running stub a signal when it has run a whole slice;
//! the kernel sees a signal stop, suppresses the signal and schedules.
//!
//! Each ptrace platform instance owns one ticker (no process-global
//! state): the stubs it hands out report through a [`Preempt`] handle
//! when guest code starts and stops running.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The signal used as the tick (never delivered to the guest).
pub const TICK_SIGNAL: i32 = libc::SIGVTALRM;

struct Shared {
    /// Host pid of the stub running guest code now (0: none).
    running: AtomicI32,
    /// When it started, in ms since `epoch`.
    since_ms: AtomicU64,
    /// The ticker sleeps without a timeout: no stub ran when it last looked.
    parked: AtomicBool,
    /// The ticker should end (its owner was dropped).
    stop: AtomicBool,
    epoch: Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// The ticker thread; stops when dropped.
pub struct Ticker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What a stub tells the ticker: cheap to clone, one per stub.
#[derive(Clone)]
pub struct Preempt {
    shared: Arc<Shared>,
    thread: Option<std::thread::Thread>,
}

/// The ticker thread: sleep a slice, signal the stub that has run for a
/// whole one.
fn ticker_loop(s: &Shared, ms: u64) {
    loop {
        // An idle kernel (no stub running) needs no tick: park until
        // `running` wakes us, so idle instances cost no wake-ups. `parked`
        // is set before the check, so a `running` in between sees it and
        // leaves an unpark token.
        if s.running.load(Ordering::SeqCst) == 0 {
            s.parked.store(true, Ordering::SeqCst);
            if s.running.load(Ordering::SeqCst) == 0 && !s.stop.load(Ordering::SeqCst) {
                std::thread::park();
            }
            s.parked.store(false, Ordering::SeqCst);
        }
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        // Parked with a deadline rather than asleep: a drop's unpark ends
        // the wait at once (a plain sleep made every instance's exit wait
        // up to one slice for this thread to join).
        let deadline = Instant::now() + Duration::from_millis(ms);
        while !s.stop.load(Ordering::SeqCst) {
            match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => std::thread::park_timeout(left),
                _ => break,
            }
        }
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let pid = s.running.load(Ordering::SeqCst);
        if pid > 0 && s.now_ms().saturating_sub(s.since_ms.load(Ordering::SeqCst)) >= ms {
            // SAFETY: kill(2) with a pid we traced and a constant signal.
            unsafe { libc::kill(pid, TICK_SIGNAL) };
        }
    }
}

impl Ticker {
    /// Starts a ticker with the given slice. Without a thread (the host
    /// refused one), guests are simply not preempted; a warning says so.
    pub fn start(slice: Duration) -> Ticker {
        let shared = Arc::new(Shared {
            running: AtomicI32::new(0),
            since_ms: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            epoch: Instant::now(),
        });
        let ms = slice.as_millis().max(1) as u64;
        let s = shared.clone();
        let filtered = super::privs::filter_active();
        let spawned = std::thread::Builder::new()
            .name("umlrun-tick".into())
            .spawn(move || {
                if filtered {
                    // Its own allow-list, on top of the kernel thread's.
                    let prog = crate::platform::host_filter::tick_filter();
                    if let Err(e) = super::privs::install_thread_filter(&prog) {
                        log::warn!("preemption ticker without its own filter: {e}");
                    }
                }
                ticker_loop(&s, ms)
            });
        let thread = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                log::warn!("no preemption ticker: {e}");
                None
            }
        };
        Ticker { shared, thread }
    }

    /// A handle for one stub.
    pub fn handle(&self) -> Preempt {
        Preempt {
            shared: self.shared.clone(),
            thread: self.thread.as_ref().map(|h| h.thread().clone()),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.running.store(0, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Preempt {
    /// The stub `pid` is about to run guest code.
    pub fn running(&self, pid: i32) {
        let s = &*self.shared;
        s.since_ms.store(s.now_ms(), Ordering::SeqCst);
        s.running.store(pid, Ordering::SeqCst);
        if s.parked.load(Ordering::SeqCst) {
            if let Some(t) = &self.thread {
                t.unpark();
            }
        }
    }

    /// The stub stopped; no guest code runs now.
    pub fn stopped(&self) {
        self.shared.running.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_ticker_ends_its_thread() {
        let t = Ticker::start(Duration::from_millis(1));
        let p = t.handle();
        p.running(0);
        p.stopped();
        drop(t); // joins: the test would hang if the thread did not end
        p.running(0); // a stale handle is harmless
    }

    #[test]
    fn a_drop_does_not_wait_out_the_slice() {
        let t = Ticker::start(Duration::from_secs(30));
        // A pid that cannot exist: the ticker waits out its slice (kill
        // would only fail with ESRCH, after 30 s).
        t.handle().running(i32::MAX);
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        drop(t);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "join waited for the slice"
        );
    }
}
