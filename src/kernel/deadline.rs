//! Checked arithmetic on guest-supplied times: every timeout, sleep and
//! timer value a guest passes goes through these, so no value makes the
//! kernel overflow an `Instant` or a `Duration` (which panics).
//!
//! Linux clamps a timeout beyond its clock's range (KTIME_MAX, ~292
//! years) to "forever". Here every guest duration is clamped to `FOREVER`
//! (2^32 s, ~136 years) before it is added to a time, which is forever
//! for any guest and leaves room for later additions (an interval timer's
//! next expiry) without overflow.

use std::time::{Duration, Instant};

use crate::errno::{Errno, KResult};

/// The longest wait: a guest asking for more waits this long.
pub const FOREVER: Duration = Duration::from_secs(1 << 32);

const NSEC_PER_SEC: i64 = 1_000_000_000;
const USEC_PER_SEC: i64 = 1_000_000;

/// A guest `struct timespec` as a duration: EINVAL for a negative second
/// count or nanoseconds outside 0..1e9, as Linux's `timespec64_valid`.
pub fn timespec(sec: i64, nsec: i64) -> KResult<Duration> {
    if sec < 0 || !(0..NSEC_PER_SEC).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec as u64, nsec as u32).min(FOREVER))
}

/// A guest `struct timeval` as a duration, EINVAL unless valid
/// (0 <= usec < 1e6).
pub fn timeval(sec: i64, usec: i64) -> KResult<Duration> {
    if sec < 0 || !(0..USEC_PER_SEC).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec as u64, (usec * 1000) as u32).min(FOREVER))
}

/// select's timeval: microseconds of a second or more carry into the
/// seconds (Linux normalises them); negative parts are EINVAL.
pub fn select_timeval(sec: i64, usec: i64) -> KResult<Duration> {
    if sec < 0 || usec < 0 {
        return Err(Errno::EINVAL);
    }
    let sec = sec.saturating_add(usec / USEC_PER_SEC);
    timeval(sec, usec % USEC_PER_SEC)
}

/// The moment `d` from now (at most `FOREVER` away).
pub fn after(d: Duration) -> Instant {
    later(Instant::now(), d)
}

/// `at + d`, with `d` clamped to `FOREVER`; `at` itself if even that
/// does not fit.
pub fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d.min(FOREVER)).unwrap_or(at)
}

/// Nanoseconds as a clamped duration (`delta` may come from a guest's
/// absolute time minus now, in i128 to hold any pair of i64 times).
pub fn from_nanos(delta: i128) -> Duration {
    let ns = delta.clamp(0, FOREVER.as_nanos() as i128);
    Duration::from_nanos(ns as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_times_saturate_to_forever() {
        assert_eq!(timespec(i64::MAX, 999_999_999), Ok(FOREVER));
        assert_eq!(timeval(i64::MAX, 999_999), Ok(FOREVER));
        assert_eq!(select_timeval(i64::MAX, i64::MAX), Ok(FOREVER));
        let now = Instant::now();
        let far = after(Duration::MAX);
        assert!(far >= now + FOREVER);
        // Later additions do not overflow either.
        let _ = later(far, Duration::MAX);
        assert_eq!(from_nanos(i128::MAX), FOREVER);
        assert_eq!(from_nanos(-5), Duration::ZERO);
    }

    #[test]
    fn invalid_values_are_einval() {
        assert_eq!(timespec(-1, 0), Err(Errno::EINVAL));
        assert_eq!(timespec(0, 1_000_000_000), Err(Errno::EINVAL));
        assert_eq!(timespec(0, -1), Err(Errno::EINVAL));
        assert_eq!(timeval(0, 1_000_000), Err(Errno::EINVAL));
        assert_eq!(select_timeval(0, -1), Err(Errno::EINVAL));
        assert_eq!(
            select_timeval(1, 2_500_000),
            Ok(Duration::from_millis(3500))
        );
        assert_eq!(timespec(2, 5), Ok(Duration::new(2, 5)));
    }
}
