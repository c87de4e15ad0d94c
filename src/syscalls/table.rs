//! The syscall table: number, name and handler, as data (gVisor's habit).
//! Anything not listed returns ENOSYS and is logged once with its name.

use std::sync::OnceLock;

use crate::kernel::files::{eventfd, inotify, memfd, pidfd, signalfd, timerfd};
use crate::kernel::{kmsg, swap};

use super::{
    clone3, epoll, fs, fsio, futex, ioctl, ipc, locks, misc, mm, poll, process, ptimer, sched,
    signal, sockcall, splice, time, xattr, Handler,
};

type Entry = (u64, &'static str, Handler);

/// Every implemented syscall.
const TABLE: &[Entry] = &[
    (0, "read", fs::sys_read),
    (1, "write", fs::sys_write),
    (2, "open", fs::sys_open),
    (3, "close", fs::sys_close),
    (4, "stat", fs::sys_stat),
    (5, "fstat", fs::sys_fstat),
    (6, "lstat", fs::sys_lstat),
    (7, "poll", poll::sys_poll),
    (8, "lseek", fs::sys_lseek),
    (9, "mmap", mm::sys_mmap),
    (10, "mprotect", mm::sys_mprotect),
    (11, "munmap", mm::sys_munmap),
    (12, "brk", mm::sys_brk),
    (13, "rt_sigaction", signal::sys_rt_sigaction),
    (14, "rt_sigprocmask", signal::sys_rt_sigprocmask),
    (15, "rt_sigreturn", signal::sys_rt_sigreturn),
    (16, "ioctl", ioctl::sys_ioctl),
    (17, "pread64", fs::sys_pread64),
    (18, "pwrite64", fs::sys_pwrite64),
    (19, "readv", fs::sys_readv),
    (20, "writev", fs::sys_writev),
    (21, "access", fs::sys_access),
    (22, "pipe", fs::sys_pipe),
    (23, "select", poll::sys_select),
    (24, "sched_yield", process::sys_sched_yield),
    (25, "mremap", mm::sys_mremap),
    (26, "msync", mm::sys_msync),
    (27, "mincore", mm::sys_mincore),
    (28, "madvise", mm::sys_madvise),
    (29, "shmget", ipc::sys_shmget),
    (30, "shmat", ipc::sys_shmat),
    (31, "shmctl", ipc::sys_shmctl),
    (32, "dup", fs::sys_dup),
    (33, "dup2", fs::sys_dup2),
    (34, "pause", signal::sys_pause),
    (35, "nanosleep", time::sys_nanosleep),
    (36, "getitimer", time::sys_getitimer),
    (37, "alarm", time::sys_alarm),
    (38, "setitimer", time::sys_setitimer),
    (39, "getpid", process::sys_getpid),
    (40, "sendfile", fs::sys_sendfile),
    (56, "clone", process::sys_clone),
    (57, "fork", process::sys_fork),
    (58, "vfork", process::sys_vfork),
    (59, "execve", process::sys_execve),
    (60, "exit", process::sys_exit),
    (61, "wait4", process::sys_wait4),
    (62, "kill", signal::sys_kill),
    (63, "uname", misc::sys_uname),
    (64, "semget", ipc::sys_semget),
    (65, "semop", ipc::sys_semop),
    (66, "semctl", ipc::sys_semctl),
    (67, "shmdt", ipc::sys_shmdt),
    (68, "msgget", ipc::sys_msgget),
    (69, "msgsnd", ipc::sys_msgsnd),
    (70, "msgrcv", ipc::sys_msgrcv),
    (71, "msgctl", ipc::sys_msgctl),
    (72, "fcntl", fs::sys_fcntl),
    (73, "flock", locks::sys_flock),
    (74, "fsync", fs::sys_fsync),
    (75, "fdatasync", fs::sys_fsync),
    (76, "truncate", fs::sys_truncate),
    (77, "ftruncate", fs::sys_ftruncate),
    (79, "getcwd", fs::sys_getcwd),
    (80, "chdir", fs::sys_chdir),
    (81, "fchdir", fs::sys_fchdir),
    (82, "rename", fs::sys_rename),
    (83, "mkdir", fs::sys_mkdir),
    (84, "rmdir", fs::sys_rmdir),
    (85, "creat", fs::sys_creat),
    (86, "link", fs::sys_link),
    (87, "unlink", fs::sys_unlink),
    (88, "symlink", fs::sys_symlink),
    (89, "readlink", fs::sys_readlink),
    (90, "chmod", fs::sys_chmod),
    (91, "fchmod", fs::sys_fchmod),
    (92, "chown", fs::sys_chown),
    (93, "fchown", fs::sys_fchown),
    (94, "lchown", fs::sys_lchown),
    (95, "umask", fs::sys_umask),
    (96, "gettimeofday", time::sys_gettimeofday),
    (97, "getrlimit", process::sys_getrlimit),
    (98, "getrusage", process::sys_getrusage),
    (99, "sysinfo", misc::sys_sysinfo),
    (100, "times", time::sys_times),
    (102, "getuid", process::sys_getuid),
    (104, "getgid", process::sys_getgid),
    (105, "setuid", process::sys_setuid),
    (106, "setgid", process::sys_setgid),
    (107, "geteuid", process::sys_geteuid),
    (108, "getegid", process::sys_getegid),
    (109, "setpgid", process::sys_setpgid),
    (110, "getppid", process::sys_getppid),
    (111, "getpgrp", process::sys_getpgrp),
    (112, "setsid", process::sys_setsid),
    (113, "setreuid", process::sys_setreuid),
    (114, "setregid", process::sys_setregid),
    (115, "getgroups", process::sys_getgroups),
    (116, "setgroups", process::sys_setgroups),
    (117, "setresuid", process::sys_setresuid),
    (118, "getresuid", process::sys_getresuid),
    (119, "setresgid", process::sys_setresgid),
    (120, "getresgid", process::sys_getresgid),
    (121, "getpgid", process::sys_getpgid),
    (122, "setfsuid", process::sys_setfsuid),
    (123, "setfsgid", process::sys_setfsgid),
    (124, "getsid", process::sys_getsid),
    (125, "capget", process::sys_capget),
    (126, "capset", process::sys_zero),
    (127, "rt_sigpending", signal::sys_rt_sigpending),
    (128, "rt_sigtimedwait", signal::sys_rt_sigtimedwait),
    (129, "rt_sigqueueinfo", signal::sys_rt_sigqueueinfo),
    (130, "rt_sigsuspend", signal::sys_rt_sigsuspend),
    (131, "sigaltstack", signal::sys_sigaltstack),
    (132, "utime", fs::sys_utime),
    (133, "mknod", fs::sys_mknod),
    (137, "statfs", fs::sys_statfs),
    (138, "fstatfs", fs::sys_fstatfs),
    (140, "getpriority", sched::sys_getpriority),
    (141, "setpriority", sched::sys_setpriority),
    (142, "sched_setparam", sched::sys_sched_setparam),
    (143, "sched_getparam", sched::sys_sched_getparam),
    (144, "sched_setscheduler", sched::sys_sched_setscheduler),
    (145, "sched_getscheduler", sched::sys_sched_getscheduler),
    (
        146,
        "sched_get_priority_max",
        sched::sys_sched_get_priority_max,
    ),
    (
        147,
        "sched_get_priority_min",
        sched::sys_sched_get_priority_min,
    ),
    (
        148,
        "sched_rr_get_interval",
        sched::sys_sched_rr_get_interval,
    ),
    (149, "mlock", super::mlock::sys_mlock),
    (150, "munlock", super::mlock::sys_munlock),
    (151, "mlockall", super::mlock::sys_mlockall),
    (152, "munlockall", super::mlock::sys_munlockall),
    (135, "personality", process::sys_personality),
    (157, "prctl", process::sys_prctl),
    (158, "arch_prctl", process::sys_arch_prctl),
    (160, "setrlimit", process::sys_setrlimit),
    (161, "chroot", fs::sys_chroot),
    (162, "sync", fs::sys_sync),
    (164, "settimeofday", time::sys_settimeofday),
    (165, "mount", misc::sys_mount),
    (166, "umount2", misc::sys_umount2),
    (169, "reboot", misc::sys_reboot),
    (170, "sethostname", misc::sys_sethostname),
    (171, "setdomainname", misc::sys_setdomainname),
    (186, "gettid", process::sys_gettid),
    (200, "tkill", signal::sys_tkill),
    (201, "time", time::sys_time),
    (202, "futex", futex::sys_futex),
    (203, "sched_setaffinity", sched::sys_sched_setaffinity),
    (204, "sched_getaffinity", sched::sys_sched_getaffinity),
    (217, "getdents64", fs::sys_getdents64),
    (218, "set_tid_address", process::sys_set_tid_address),
    (219, "restart_syscall", time::sys_restart_syscall),
    (220, "semtimedop", ipc::sys_semtimedop),
    (227, "clock_settime", time::sys_clock_settime),
    (228, "clock_gettime", time::sys_clock_gettime),
    (229, "clock_getres", time::sys_clock_getres),
    (230, "clock_nanosleep", time::sys_clock_nanosleep),
    (231, "exit_group", process::sys_exit_group),
    (234, "tgkill", signal::sys_tgkill),
    (235, "utimes", fs::sys_utimes),
    (261, "futimesat", fs::sys_futimesat),
    (247, "waitid", process::sys_waitid),
    (257, "openat", fs::sys_openat),
    (258, "mkdirat", fs::sys_mkdirat),
    (259, "mknodat", fs::sys_mknodat),
    (260, "fchownat", fs::sys_fchownat),
    (262, "newfstatat", fs::sys_newfstatat),
    (263, "unlinkat", fs::sys_unlinkat),
    (264, "renameat", fs::sys_renameat),
    (265, "linkat", fs::sys_linkat),
    (266, "symlinkat", fs::sys_symlinkat),
    (267, "readlinkat", fs::sys_readlinkat),
    (268, "fchmodat", fs::sys_fchmodat),
    (269, "faccessat", fs::sys_faccessat),
    (270, "pselect6", poll::sys_pselect6),
    (271, "ppoll", poll::sys_ppoll),
    (273, "set_robust_list", futex::sys_set_robust_list),
    (274, "get_robust_list", futex::sys_get_robust_list),
    (449, "futex_waitv", super::futex_waitv::sys_futex_waitv),
    (280, "utimensat", fs::sys_utimensat),
    (284, "eventfd", eventfd::sys_eventfd),
    (290, "eventfd2", eventfd::sys_eventfd2),
    (292, "dup3", fs::sys_dup3),
    (293, "pipe2", fs::sys_pipe2),
    (297, "rt_tgsigqueueinfo", signal::sys_rt_tgsigqueueinfo),
    (302, "prlimit64", process::sys_prlimit64),
    (306, "syncfs", fs::sys_sync),
    (309, "getcpu", process::sys_getcpu),
    (316, "renameat2", fs::sys_renameat2),
    (318, "getrandom", misc::sys_getrandom),
    (322, "execveat", process::sys_execveat),
    (332, "statx", fs::sys_statx),
    (439, "faccessat2", fs::sys_faccessat2),
    (41, "socket", sockcall::sys_socket),
    (42, "connect", sockcall::sys_connect),
    (43, "accept", sockcall::sys_accept),
    (44, "sendto", sockcall::sys_sendto),
    (45, "recvfrom", sockcall::sys_recvfrom),
    (46, "sendmsg", sockcall::sys_sendmsg),
    (47, "recvmsg", sockcall::sys_recvmsg),
    (48, "shutdown", sockcall::sys_shutdown),
    (49, "bind", sockcall::sys_bind),
    (50, "listen", sockcall::sys_listen),
    (51, "getsockname", sockcall::sys_getsockname),
    (52, "getpeername", sockcall::sys_getpeername),
    (53, "socketpair", sockcall::sys_socketpair),
    (54, "setsockopt", sockcall::sys_setsockopt),
    (55, "getsockopt", sockcall::sys_getsockopt),
    (288, "accept4", sockcall::sys_accept4),
    (299, "recvmmsg", sockcall::sys_recvmmsg),
    (307, "sendmmsg", sockcall::sys_sendmmsg),
    (213, "epoll_create", epoll::sys_epoll_create),
    (232, "epoll_wait", epoll::sys_epoll_wait),
    (233, "epoll_ctl", epoll::sys_epoll_ctl),
    (281, "epoll_pwait", epoll::sys_epoll_pwait),
    (291, "epoll_create1", epoll::sys_epoll_create1),
    (441, "epoll_pwait2", epoll::sys_epoll_pwait2),
    (188, "setxattr", xattr::sys_setxattr),
    (189, "lsetxattr", xattr::sys_lsetxattr),
    (190, "fsetxattr", xattr::sys_fsetxattr),
    (191, "getxattr", xattr::sys_getxattr),
    (192, "lgetxattr", xattr::sys_lgetxattr),
    (193, "fgetxattr", xattr::sys_fgetxattr),
    (194, "listxattr", xattr::sys_listxattr),
    (195, "llistxattr", xattr::sys_llistxattr),
    (196, "flistxattr", xattr::sys_flistxattr),
    (197, "removexattr", xattr::sys_removexattr),
    (198, "lremovexattr", xattr::sys_lremovexattr),
    (199, "fremovexattr", xattr::sys_fremovexattr),
    (221, "fadvise64", fsio::sys_fadvise64),
    (285, "fallocate", fsio::sys_fallocate),
    (277, "sync_file_range", fsio::sys_sync_file_range),
    (295, "preadv", fsio::sys_preadv),
    (296, "pwritev", fsio::sys_pwritev),
    (325, "mlock2", super::mlock::sys_mlock2),
    (326, "copy_file_range", fsio::sys_copy_file_range),
    (327, "preadv2", fsio::sys_preadv2),
    (328, "pwritev2", fsio::sys_pwritev2),
    (436, "close_range", fsio::sys_close_range),
    (283, "timerfd_create", timerfd::sys_timerfd_create),
    (286, "timerfd_settime", timerfd::sys_timerfd_settime),
    (287, "timerfd_gettime", timerfd::sys_timerfd_gettime),
    (282, "signalfd", signalfd::sys_signalfd),
    (289, "signalfd4", signalfd::sys_signalfd4),
    (434, "pidfd_open", pidfd::sys_pidfd_open),
    (424, "pidfd_send_signal", pidfd::sys_pidfd_send_signal),
    (319, "memfd_create", memfd::sys_memfd_create),
    (103, "syslog", kmsg::sys_syslog),
    (167, "swapon", swap::sys_swapon),
    (168, "swapoff", swap::sys_swapoff),
    (253, "inotify_init", inotify::sys_inotify_init),
    (294, "inotify_init1", inotify::sys_inotify_init1),
    (254, "inotify_add_watch", inotify::sys_inotify_add_watch),
    (255, "inotify_rm_watch", inotify::sys_inotify_rm_watch),
    (222, "timer_create", ptimer::sys_timer_create),
    (223, "timer_settime", ptimer::sys_timer_settime),
    (224, "timer_gettime", ptimer::sys_timer_gettime),
    (225, "timer_getoverrun", ptimer::sys_timer_getoverrun),
    (226, "timer_delete", ptimer::sys_timer_delete),
    (275, "splice", splice::sys_splice),
    (276, "tee", splice::sys_tee),
    (278, "vmsplice", splice::sys_vmsplice),
    (435, "clone3", clone3::sys_clone3),
];

/// Names of syscalls we do not implement, for the ENOSYS log line.
const UNIMPLEMENTED: &[(u64, &str)] = &[(324, "membarrier"), (334, "rseq")];

fn index() -> &'static [Option<(&'static str, Handler)>] {
    static INDEX: OnceLock<Vec<Option<(&'static str, Handler)>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let max = TABLE.iter().map(|e| e.0).max().unwrap_or(0) as usize;
        let mut v = vec![None; max + 1];
        for &(nr, name, h) in TABLE {
            v[nr as usize] = Some((name, h));
        }
        v
    })
}

pub fn lookup(nr: u64) -> Option<(&'static str, Handler)> {
    index().get(nr as usize).copied().flatten()
}

/// Every syscall with a name: the implemented ones and the named
/// unimplemented ones (for `support::report`).
pub fn named() -> impl Iterator<Item = (u64, &'static str)> {
    TABLE
        .iter()
        .map(|e| (e.0, e.1))
        .chain(UNIMPLEMENTED.iter().copied())
}

pub fn name_of(nr: u64) -> &'static str {
    UNIMPLEMENTED
        .iter()
        .find(|e| e.0 == nr)
        .map(|e| e.1)
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for e in TABLE {
            assert!(seen.insert(e.0), "syscall {} listed twice", e.0);
        }
        assert_eq!(lookup(0).unwrap().0, "read");
        assert_eq!(lookup(231).unwrap().0, "exit_group");
        assert!(lookup(334).is_none());
        assert_eq!(name_of(334), "rseq");
    }
}
