//! Rate-limited logging for paths a guest can trigger: a hostile guest must
//! not be able to flood the host's log (Firecracker's habit, Linux's
//! `printk_ratelimit`). Each call site of [`log_limited!`] owns one
//! [`RateLimit`]: at most `burst` lines per `interval`, then silence until
//! the interval is over; the next line says how many were dropped.

#![deny(unsafe_code)]

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Lines per interval at one call site of [`log_limited!`].
pub const BURST: u32 = 10;
/// The interval [`log_limited!`] counts lines over.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// One call site's budget.
pub struct RateLimit {
    burst: u32,
    interval: Duration,
    state: Mutex<State>,
}

struct State {
    window: Option<Instant>,
    printed: u32,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(burst: u32, interval: Duration) -> Self {
        RateLimit {
            burst,
            interval,
            state: Mutex::new(State {
                window: None,
                printed: 0,
                suppressed: 0,
            }),
        }
    }

    /// May a line be printed at `now`? `Some(n)`: yes, and `n` lines were
    /// dropped since the last one printed; `None`: drop this one.
    pub fn check_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock();
        let expired = s
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= self.interval);
        if expired {
            s.window = Some(now);
            s.printed = 0;
        }
        if s.printed < self.burst {
            s.printed += 1;
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed = s.suppressed.saturating_add(1);
            None
        }
    }

    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }
}

/// `log_limited!(log::Level::Warn, "format", args...)`: a log line at most
/// [`BURST`] times per [`INTERVAL`] from this call site.
#[macro_export]
macro_rules! log_limited {
    ($lvl:expr, $($arg:tt)+) => {{
        static RL: $crate::ratelimit::RateLimit =
            $crate::ratelimit::RateLimit::new($crate::ratelimit::BURST, $crate::ratelimit::INTERVAL);
        if log::log_enabled!($lvl) {
            if let Some(dropped) = RL.check() {
                if dropped > 0 {
                    log::log!($lvl, "{} [{} similar lines dropped]", format_args!($($arg)+), dropped);
                } else {
                    log::log!($lvl, $($arg)+);
                }
            }
        }
    }};
}

/// Makes panic messages rate-limited too: a panic a guest can trigger
/// again and again (contained by `syscalls::run_contained`) prints the
/// standard message at most [`BURST`] times per [`INTERVAL`].
pub fn limit_panic_messages() {
    static RL: RateLimit = RateLimit::new(BURST, INTERVAL);
    let standard = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if RL.check().is_some() {
            standard(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_silence_then_count() {
        let rl = RateLimit::new(3, Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(rl.check_at(t0), Some(0));
        assert_eq!(rl.check_at(t0), Some(0));
        assert_eq!(rl.check_at(t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(rl.check_at(t0 + Duration::from_secs(1)), None);
        }
        // A new window: the first line reports what was dropped.
        assert_eq!(rl.check_at(t0 + Duration::from_secs(5)), Some(1000));
        assert_eq!(rl.check_at(t0 + Duration::from_secs(5)), Some(0));
    }
}
