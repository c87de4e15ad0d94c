//! Preemption: a guest task that computes without making syscalls would
//! keep the single kernel thread waiting on its stub forever. A ticker
//! thread sends the running stub a signal when it has run a whole slice;
//! the kernel sees a signal stop, suppresses the signal and schedules.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The signal used as the tick (never delivered to the guest).
pub const TICK_SIGNAL: i32 = libc::SIGVTALRM;

static RUNNING: AtomicI32 = AtomicI32::new(0);
static SINCE_MS: AtomicU64 = AtomicU64::new(0);
/// The ticker sleeps without a timeout: no stub ran when it last looked.
static PARKED: AtomicBool = AtomicBool::new(false);
static TICKER: OnceLock<std::thread::Thread> = OnceLock::new();

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Starts the ticker (once per process) with the given slice.
pub fn start(slice: Duration) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        epoch();
        let ms = slice.as_millis().max(1) as u64;
        let spawned = std::thread::Builder::new()
            .name("umlrun-tick".into())
            .spawn(move || loop {
                // An idle kernel (no stub running) needs no tick: park
                // until `running` wakes us, so idle instances cost no
                // wake-ups. PARKED is set before the check, so a `running`
                // in between sees it and leaves an unpark token.
                if RUNNING.load(Ordering::SeqCst) == 0 {
                    PARKED.store(true, Ordering::SeqCst);
                    if RUNNING.load(Ordering::SeqCst) == 0 {
                        std::thread::park();
                    }
                    PARKED.store(false, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(ms));
                let pid = RUNNING.load(Ordering::SeqCst);
                if pid > 0 && now_ms().saturating_sub(SINCE_MS.load(Ordering::SeqCst)) >= ms {
                    // SAFETY: kill(2) with a pid we traced and a constant signal.
                    unsafe { libc::kill(pid, TICK_SIGNAL) };
                }
            });
        match spawned {
            Ok(handle) => {
                let _ = TICKER.set(handle.thread().clone());
            }
            Err(e) => log::warn!("no preemption ticker: {e}"),
        }
    });
}

/// The kernel is about to run `pid`'s guest code.
pub fn running(pid: i32) {
    SINCE_MS.store(now_ms(), Ordering::SeqCst);
    RUNNING.store(pid, Ordering::SeqCst);
    if PARKED.load(Ordering::SeqCst) {
        if let Some(t) = TICKER.get() {
            t.unpark();
        }
    }
}

/// The stub stopped; nothing guest-side runs now.
pub fn stopped() {
    RUNNING.store(0, Ordering::SeqCst);
}
