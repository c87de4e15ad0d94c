//! The checks clone(2) makes on its flags and TLS before anything is
//! created, as Linux's `copy_process` and `copy_thread` make them: a
//! combination Linux refuses is refused here with the same errno, and
//! nothing a guest passes reaches the host unchecked (a non-canonical TLS
//! base once made the host refuse the child's registers). And the task
//! limits: a cap sized to the guest's memory (Linux's threads-max), and
//! RLIMIT_NPROC per user, half of it by default, so an unprivileged fork
//! bomb leaves root room to act.

use super::process::{CLONE_FS, CLONE_PARENT, CLONE_SETTLS, CLONE_SIGHAND, CLONE_THREAD, CLONE_VM};
use crate::errno::{Errno, KResult};

pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_NEWNS: u64 = 0x0002_0000;
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
pub const CLONE_NEWUTS: u64 = 0x0400_0000;
pub const CLONE_NEWIPC: u64 = 0x0800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
/// Every namespace flag clone(2) takes (CLONE_NEWTIME is clone3's only).
pub const CLONE_NEW_ANY: u64 = CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// Linux's TASK_SIZE_MAX: an fs or gs base at or above it is EPERM.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - 4096;

/// Bytes of guest memory per task the cap allows: Linux's threads-max is
/// memory / (8 * THREAD_SIZE), 128 KiB per task. Here each task also costs
/// a host stub process (page tables, a kernel stack) outside `mem=`.
pub const MEM_PER_TASK: u64 = 128 << 10;

/// The most tasks (threads included) a guest of `mem_bytes` may have:
/// 512 at mem=64M, 2048 at 256M; never under 64 nor over 32768.
pub fn max_tasks(mem_bytes: u64) -> usize {
    (mem_bytes / MEM_PER_TASK).clamp(64, 32768) as usize
}

/// init's RLIMIT_NPROC (inherited by everyone): half of the cap, as Linux
/// sets it from threads-max.
pub fn default_nproc(mem_bytes: u64) -> u64 {
    (max_tasks(mem_bytes) / 2) as u64
}

/// Checks clone flags `f` and the TLS base for a clone by a process that
/// is (`from_init`) or is not init.
pub fn check_clone(f: u64, tls: u64, from_init: bool) -> KResult<()> {
    let both = |a: u64, b: u64| f & (a | b) == a | b;
    if both(CLONE_NEWNS, CLONE_FS) || both(CLONE_NEWUSER, CLONE_FS) {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    // init's siblings would have no parent to reap them.
    if f & CLONE_PARENT != 0 && from_init {
        return Err(Errno::EINVAL);
    }
    // No namespaces and no pidfds here: as a Linux built without them.
    if f & (CLONE_NEW_ANY | CLONE_PIDFD) != 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_SETTLS != 0 && tls >= TASK_SIZE_MAX {
        return Err(Errno::EPERM);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::process::{CLONE_FILES, CLONE_VFORK};

    const THREAD: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;

    #[test]
    fn ordinary_clones_pass() {
        assert_eq!(check_clone(17, 0, false), Ok(()));
        assert_eq!(check_clone(CLONE_VM | CLONE_VFORK | 17, 0, true), Ok(()));
        assert_eq!(
            check_clone(THREAD | CLONE_SETTLS, 0x7f00_0000_0000, false),
            Ok(())
        );
        assert_eq!(check_clone(CLONE_PARENT | 17, 0, false), Ok(()));
    }

    #[test]
    fn refused_like_linux() {
        assert_eq!(
            check_clone(CLONE_THREAD | CLONE_VM, 0, false),
            Err(Errno::EINVAL)
        );
        assert_eq!(check_clone(CLONE_SIGHAND, 0, false), Err(Errno::EINVAL));
        assert_eq!(
            check_clone(CLONE_NEWNS | CLONE_FS, 0, false),
            Err(Errno::EINVAL)
        );
        assert_eq!(check_clone(CLONE_PARENT | 17, 0, true), Err(Errno::EINVAL));
        assert_eq!(check_clone(CLONE_NEWPID | 17, 0, false), Err(Errno::EINVAL));
        assert_eq!(check_clone(CLONE_PIDFD | 17, 0, false), Err(Errno::EINVAL));
        // The fuzzer's case: every flag but the low ones.
        assert_eq!(check_clone(0x7fff_ffff_ff54, 0, false), Err(Errno::EINVAL));
    }

    #[test]
    fn task_cap_follows_memory() {
        assert_eq!(max_tasks(64 << 20), 512);
        assert_eq!(max_tasks(256 << 20), 2048);
        assert_eq!(max_tasks(1 << 20), 64);
        assert_eq!(max_tasks(u64::MAX), 32768);
        assert_eq!(default_nproc(64 << 20), 256);
    }

    #[test]
    fn tls_base_must_be_user_space() {
        for tls in [TASK_SIZE_MAX, 0x0334_2c78_ec5c_d322, u64::MAX, 1 << 63] {
            assert_eq!(
                check_clone(THREAD | CLONE_SETTLS, tls, false),
                Err(Errno::EPERM)
            );
        }
        // Without CLONE_SETTLS the value is ignored.
        assert_eq!(check_clone(THREAD, u64::MAX, false), Ok(()));
    }
}
