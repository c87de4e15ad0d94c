//! Process-level host facts: pid liveness, the home directory, which CPUs
//! this process may run on, pinning, and random bytes.

use std::io::Read;
use std::path::PathBuf;

use nix::errno::Errno as NixErrno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::kill;
use nix::unistd::{getuid, Pid, User};

/// Whether a process with this pid exists, the way UML checks a pid file:
/// `kill(pid, 0)`. EPERM means it exists but belongs to someone else.
/// Pid 0 and values that do not fit a pid are never alive.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match kill(Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(NixErrno::EPERM) => true,
        Err(_) => false,
    }
}

/// This process's pid.
pub fn current_pid() -> u32 {
    std::process::id()
}

/// The user's home directory: `$HOME` if set, else the password database.
pub fn home_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME") {
        if !home.is_empty() {
            return Some(PathBuf::from(home));
        }
    }
    User::from_uid(getuid()).ok().flatten().map(|u| u.dir)
}

/// The CPUs this process may run on (its affinity mask), in order.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..cpu_count()).collect(),
    }
}

/// How many CPUs this process may use (at least 1).
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Pin the calling thread (and the threads and children it makes from now
/// on) to one CPU. Call it from the main thread first thing to pin umlrun.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(std::io::Error::from)?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
}

/// `n` random bytes from the kernel (for the default umid).
pub fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// Hands the allocator's free heap pages back to the host (glibc
/// malloc_trim: the top of the heap is shrunk and free pages inside it are
/// discarded).
pub fn release_free_heap() {
    // SAFETY: malloc_trim only rearranges the allocator's own free lists
    // and releases pages no allocation uses; it is safe to call any time.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(current_pid()));
    }

    #[test]
    fn reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn impossible_pids_are_dead() {
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
        // pid_max itself is never handed out.
        let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!pid_alive(max));
    }

    #[test]
    fn cpus_and_home() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpu_count() >= 1);
        assert!(home_dir().is_some());
    }

    #[test]
    fn pin_to_an_allowed_cpu() {
        // Pin a child thread only, so the test process keeps its mask.
        let cpu = *allowed_cpus().last().unwrap();
        std::thread::spawn(move || {
            pin_to_cpu(cpu).unwrap();
            assert_eq!(allowed_cpus(), vec![cpu]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes(16).unwrap();
        let b = random_bytes(16).unwrap();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
