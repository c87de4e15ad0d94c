//! CPU pinning: umlrun and its stubs share one host CPU, so a SYSEMU round
//! trip is a context switch on that CPU rather than a cross-CPU wakeup.

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
}
