//! CPU pinning: umlrun and its stubs share one host CPU, so a SYSEMU round
//! trip is a context switch on that CPU rather than a cross-CPU wakeup.
//! And the host CPU's feature flags (its /proc/cpuinfo `flags` line): guest
//! code runs on that CPU, so the guest's /proc/cpuinfo shows the same.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Pin a thread or process (`pid` 0 = the calling thread) to one CPU.
/// Stubs spawned afterwards by that thread inherit the pinning.
pub fn pin_to_cpu(pid: i32, cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(pid), &set)
}

/// The CPUs a thread or process (`pid` 0 = the caller) may run on.
pub fn allowed_cpus(pid: i32) -> nix::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(pid))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Undo pinning: allow every CPU in `cpus`.
pub fn allow_cpus(pid: i32, cpus: &[usize]) -> nix::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    sched_setaffinity(Pid::from_raw(pid), &set)
}

/// The `flags` line's value in a /proc/cpuinfo text (the first CPU's).
pub fn flags_of(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "flags").then(|| value.trim().to_string())
    })
}

/// The host CPU's feature flags, read once (None where the host has no
/// /proc/cpuinfo or no flags line).
pub fn host_flags() -> Option<&'static str> {
    static FLAGS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FLAGS
        .get_or_init(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| flags_of(&t))
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_and_restore_in_a_thread() {
        // A fresh thread, so the test runner's other threads are not pinned.
        std::thread::spawn(|| {
            let before = allowed_cpus(0).unwrap();
            let cpu = before[before.len() - 1];
            pin_to_cpu(0, cpu).unwrap();
            assert_eq!(allowed_cpus(0).unwrap(), vec![cpu]);
            allow_cpus(0, &before).unwrap();
            assert_eq!(allowed_cpus(0).unwrap(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_first_flags_line_is_taken() {
        let t = "processor\t: 0\nflags\t\t: fpu sse2 avx2\nbugs\t\t: x\n\nprocessor\t: 1\nflags\t\t: fpu\n";
        assert_eq!(flags_of(t).as_deref(), Some("fpu sse2 avx2"));
        assert_eq!(flags_of("processor\t: 0\n"), None);
        assert!(host_flags().is_none_or(|f| f.split(' ').any(|w| w == "fpu")));
    }
}
