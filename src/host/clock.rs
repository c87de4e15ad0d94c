//! Host clocks, as the guest's clock syscalls report them (the same
//! clocks the host vDSO gives guests that call it directly).

use nix::time::{clock_gettime, ClockId};

/// (seconds, nanoseconds) of a host clock: 0 realtime, 1 monotonic,
/// 7 boottime; anything else reads monotonic.
pub fn now(clock: u32) -> (i64, i64) {
    let id = match clock {
        0 | 5 => ClockId::CLOCK_REALTIME,
        7 => ClockId::CLOCK_BOOTTIME,
        2 => ClockId::CLOCK_PROCESS_CPUTIME_ID,
        3 => ClockId::CLOCK_THREAD_CPUTIME_ID,
        _ => ClockId::CLOCK_MONOTONIC,
    };
    match clock_gettime(id) {
        Ok(t) => (t.tv_sec(), t.tv_nsec()),
        Err(_) => (0, 0),
    }
}
