//! Host clocks, as the guest's clock syscalls report them (the same
//! clocks the host vDSO gives guests that call it directly).

use nix::time::{clock_gettime, ClockId};

/// The host clock behind a Linux clock id: 0 realtime, 1 monotonic,
/// 4 monotonic raw, 5/6 the coarse ones (the very clocks the vDSO reads, so
/// a guest mixing the vDSO and the syscall never sees them run backwards),
/// 7 boottime, 11 TAI; anything else reads monotonic.
fn host_clock(clock: u32) -> ClockId {
    match clock {
        0 => ClockId::CLOCK_REALTIME,
        2 => ClockId::CLOCK_PROCESS_CPUTIME_ID,
        3 => ClockId::CLOCK_THREAD_CPUTIME_ID,
        4 => ClockId::CLOCK_MONOTONIC_RAW,
        5 => ClockId::CLOCK_REALTIME_COARSE,
        6 => ClockId::CLOCK_MONOTONIC_COARSE,
        7 => ClockId::CLOCK_BOOTTIME,
        11 => ClockId::CLOCK_TAI,
        _ => ClockId::CLOCK_MONOTONIC,
    }
}

/// (seconds, nanoseconds) of a host clock (see `host_clock`).
pub fn now(clock: u32) -> (i64, i64) {
    match clock_gettime(host_clock(clock)) {
        Ok(t) => (t.tv_sec(), t.tv_nsec()),
        Err(_) => (0, 0),
    }
}

/// The resolution of a host clock (the coarse ones tick at the host's HZ).
pub fn resolution(clock: u32) -> (i64, i64) {
    match nix::time::clock_getres(host_clock(clock)) {
        Ok(t) => (t.tv_sec(), t.tv_nsec()),
        Err(_) => (0, 1),
    }
}

/// CPU time (ns) the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
pub fn thread_cpu_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The CPU time (ns) a host process has used, from its process CPU-time
/// clock (glibc's clock_getcpuclockid: `(!pid << 3) | CPUCLOCK_SCHED`);
/// None if it is gone.
pub fn process_cpu_time_ns(pid: i32) -> Option<u64> {
    const CPUCLOCK_SCHED: i32 = 2;
    let id = ClockId::from_raw((!pid << 3) | CPUCLOCK_SCHED);
    clock_gettime(id)
        .ok()
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// (utime, stime) of a host process in clock ticks (1/100 s), from
/// /proc/<pid>/stat; zeros if it is gone.
pub fn process_cpu_ticks(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0, 0);
    };
    // Fields after the ")" that ends comm: state is field 3; utime 14, stime 15.
    let Some(rest) = text.rfind(')').map(|i| &text[i + 1..]) else {
        return (0, 0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    (get(11), get(12))
}
