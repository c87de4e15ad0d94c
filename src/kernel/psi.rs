//! Memory pressure stall information: Linux's /proc/pressure/memory.
//!
//! A task is stalled on memory while the kernel works for it in the OOM
//! path (reclaim, swap-out, the OOM killer) or reads its page back from
//! swap. "some" counts that time; "full" counts the part of it during
//! which no other task could run either (the run queue was empty: with
//! one kernel thread, everyone waited). The averages are Linux's: every
//! 2 s the share of the period stalled (percent) is folded into
//! exponential averages over 10, 60 and 300 s.

use std::time::{Duration, Instant};

use crate::fs::procfs::{Pressure, PressureLine};

/// Linux's PSI_FREQ.
const PERIOD: Duration = Duration::from_secs(2);
/// The averaging windows, in seconds.
const WINDOWS: [f64; 3] = [10.0, 60.0, 300.0];

#[derive(Debug, Default, Clone, Copy)]
struct Line {
    total_us: u64,
    /// `total_us` at the start of the current period.
    period_start_us: u64,
    avg: [f64; 3],
}

impl Line {
    fn fold(&mut self, periods: u32) {
        let stalled = (self.total_us - self.period_start_us) as f64;
        let period_us = PERIOD.as_micros() as f64;
        let mut pct = (stalled / period_us * 100.0).min(100.0);
        for _ in 0..periods {
            for (i, w) in WINDOWS.iter().enumerate() {
                let e = (-PERIOD.as_secs_f64() / w).exp();
                self.avg[i] = self.avg[i] * e + pct * (1.0 - e);
            }
            // Periods after the first saw no stall.
            pct = 0.0;
        }
        self.period_start_us = self.total_us;
    }

    fn shown(&self) -> PressureLine {
        PressureLine {
            avg10: self.avg[0],
            avg60: self.avg[1],
            avg300: self.avg[2],
            total_us: self.total_us,
        }
    }
}

/// The memory resource's stall state.
#[derive(Debug, Clone, Copy)]
pub struct Psi {
    some: Line,
    full: Line,
    period_start: Instant,
}

impl Default for Psi {
    fn default() -> Self {
        Psi {
            some: Line::default(),
            full: Line::default(),
            period_start: Instant::now(),
        }
    }
}

impl Psi {
    /// A stall of `d`; `full` when no other task could run meanwhile.
    pub fn stall(&mut self, d: Duration, full: bool, now: Instant) {
        self.update(now);
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.some.total_us = self.some.total_us.saturating_add(us);
        if full {
            self.full.total_us = self.full.total_us.saturating_add(us);
        }
    }

    /// Folds every whole period that ended before `now`.
    pub fn update(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.period_start);
        let periods = (elapsed.as_micros() / PERIOD.as_micros()).min(10_000) as u32;
        if periods == 0 {
            return;
        }
        self.some.fold(periods);
        self.full.fold(periods);
        self.period_start += PERIOD * periods;
    }

    pub fn shown(&mut self, now: Instant) -> Pressure {
        self.update(now);
        Pressure {
            some: self.some.shown(),
            full: self.full.shown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::procfs::format;

    #[test]
    fn averages_like_linux() {
        let t0 = Instant::now();
        let mut p = Psi {
            period_start: t0,
            ..Default::default()
        };
        // Stalled half of every period for 60 s.
        for i in 0..30u32 {
            p.stall(Duration::from_secs(1), i % 2 == 0, t0 + PERIOD * i);
        }
        let s = p.shown(t0 + PERIOD * 30);
        assert!((s.some.avg10 - 50.0).abs() < 1.0, "{s:?}");
        assert!(s.some.avg60 > 30.0 && s.some.avg60 < 50.0, "{s:?}");
        assert!(s.some.avg300 < s.some.avg60, "{s:?}");
        assert_eq!(s.some.total_us, 30_000_000);
        assert_eq!(s.full.total_us, 15_000_000);
        // Quiet afterwards: avg10 decays first.
        let q = p.shown(t0 + PERIOD * 60);
        assert!(q.some.avg10 < 1.0 && q.some.avg300 > 5.0, "{q:?}");
        let text = format::pressure(&q);
        assert!(text.starts_with("some avg10=0.") && text.contains("\nfull avg10="));
        assert!(text.ends_with(" total=15000000\n"), "{text}");
    }
}
