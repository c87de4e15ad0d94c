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
/// /proc/<pid>/stat; zeros if it is gone. Read straight into a buffer:
/// the file comes whole in one read, and `read_to_string`'s statx and
/// second read (to see the end) were two more host calls, twice per
/// guest fork (a process's exit and its stub's recycling read it).
pub fn process_cpu_ticks(pid: i32) -> (u64, u64) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(format!("/proc/{pid}/stat")) else {
        return (0, 0);
    };
    let mut buf = [0u8; 1024];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        // Whole once utime and stime are followed by more fields (a short
        // read is the whole file in practice; the fields say so).
        if stat_ticks(&buf[..len]).is_some() || len == buf.len() {
            break;
        }
    }
    stat_ticks(&buf[..len]).unwrap_or((0, 0))
}

/// utime and stime from the text of /proc/<pid>/stat, once it holds the
/// field after them too (None: cut short).
fn stat_ticks(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    // Fields after the ")" that ends comm: state is field 3; utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().take(14).collect();
    if f.len() < 14 {
        return None;
    }
    Some((f[11].parse().unwrap_or(0), f[12].parse().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_reads_utime_and_stime_only_from_a_whole_line() {
        let line = b"42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 17 23 0 0 20 0 1 0 5 0 0\n";
        assert_eq!(stat_ticks(line), Some((17, 23)));
        // Cut inside stime, or right after it: not yet.
        let at = line.windows(3).position(|w| w == b"23 ").unwrap();
        assert_eq!(stat_ticks(&line[..at + 1]), None);
        assert_eq!(stat_ticks(&line[..at + 2]), None);
        assert_eq!(stat_ticks(b"42 (a"), None);
    }

    #[test]
    fn process_cpu_ticks_sees_this_process_compute() {
        let start = std::time::Instant::now();
        let mut x = 0u64;
        loop {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            let (u, s) = process_cpu_ticks(std::process::id() as i32);
            if u + s > 0 {
                break;
            }
            assert!(start.elapsed().as_secs() < 20, "no CPU ticks seen");
        }
        assert_eq!(process_cpu_ticks(-1), (0, 0));
    }
}
