//! The seccomp filters on umlrun's own threads (issue 10: least
//! privilege), built here as classic BPF; `host::privs` installs them.
//! Like Firecracker's per-thread filters, each thread gets an allow-list of
//! the host syscalls it needs, and anything else traps (SIGSYS: umlrun
//! says which syscall and stops; the call is never made).
//!
//! - The kernel thread ([`kernel_filter`]): file, memory, socket, time,
//!   signal and ptrace calls for disks, guest memory, the console, the
//!   mconsole, the user-mode NAT and the stubs. No execve; execveat only
//!   of the stub executable's sealed memfd (`AT_EMPTY_PATH` on its fd
//!   number); clone only with CLONE_VM and no new namespace (threads and
//!   the vfork-style stub spawn, never a fork); clone3 answers ENOSYS, so
//!   glibc falls back on the checked clone; sockets only AF_UNIX, AF_INET
//!   and AF_INET6; ptrace never attaches (stubs are traced by
//!   PTRACE_TRACEME); no TIOCSTI on a terminal. Nothing of mount,
//!   unshare, bpf, perf, io_uring, userfaultfd, keys, modules, set*id;
//!   setns only with the stubs' four namespace fds, each with its own
//!   type ([`kernel_filter_ns`]: the stub spawn joins them), else never.
//! - The preemption ticker ([`tick_filter`]): sleep, futex, kill and what
//!   a thread needs to run a signal handler and exit.
//!
//! Stubs inherit the filter of the thread that spawns them (seccomp
//! filters cross clone and exec). That costs nothing on the ptrace
//! platform (PTRACE_SYSEMU skips seccomp for guest syscalls), and the
//! stub's own calls are in the list. On the seccomp platform the stub's
//! own filter, installed later, decides: equal actions take the newest
//! filter's data, so a guest syscall still reaches the stub's SIGSYS
//! handler as before; this filter only adds a binary search per guest
//! syscall (about eight comparisons).

use super::seccomp_filter::{
    arg_hi, arg_lo, Asm, Ins, ARCH, AUDIT_ARCH_X86_64, NR, RET_ALLOW, RET_TRAP,
};

const RET_ERRNO: u32 = 0x0005_0000;
const ENOSYS: u32 = 38;

const CLONE_VM: u32 = 0x100;
/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const CLONE_NEW_ANY: u32 = 0x0002_0000 | 0x0200_0000 | 0x7c00_0000;
const CLONE_NEWNS: u32 = 0x0002_0000;
const CLONE_NEWUSER: u32 = 0x1000_0000;
const CLONE_NEWNET: u32 = 0x4000_0000;
const CLONE_NEWPID: u32 = 0x2000_0000;
const AT_EMPTY_PATH: u32 = 0x1000;
const PTRACE_ATTACH: u32 = 16;
const PTRACE_SEIZE: u32 = 0x4206;
const TIOCSTI: u32 = 0x5412;
const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;

/// A syscall the allow-list names, and how its arguments are checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Allow,
    /// clone: CLONE_VM set, no CLONE_NEW* flag.
    Clone,
    /// clone3: ENOSYS (its flags are in memory, out of a filter's reach).
    Enosys,
    /// execveat(stub_fd, "", .., .., AT_EMPTY_PATH) only.
    ExecStub,
    /// socket: AF_UNIX, AF_INET, AF_INET6.
    Socket,
    /// ptrace: never PTRACE_ATTACH or PTRACE_SEIZE.
    Ptrace,
    /// ioctl: never TIOCSTI.
    Ioctl,
    /// setns: only the stubs' namespace fds, each with its own type (a
    /// stub joins them between its clone and its exec).
    Setns,
}

/// The fd numbers the filter pins: the stub executable, and the stubs'
/// (user, mount, network, pid) namespaces (`host::namespaces::join_fds`).
#[derive(Clone, Copy, Default)]
struct Pins {
    exe: Option<i32>,
    ns: Option<[i32; 4]>,
}

/// The kernel thread's list: (number, name, rule). Sorted by number.
const KERNEL: &[(u32, &str, Rule)] = &[
    (0, "read", Rule::Allow),
    (1, "write", Rule::Allow),
    (2, "open", Rule::Allow),
    (3, "close", Rule::Allow),
    (4, "stat", Rule::Allow),
    (5, "fstat", Rule::Allow),
    (6, "lstat", Rule::Allow),
    (7, "poll", Rule::Allow),
    (8, "lseek", Rule::Allow),
    (9, "mmap", Rule::Allow),
    (10, "mprotect", Rule::Allow),
    (11, "munmap", Rule::Allow),
    (12, "brk", Rule::Allow),
    (13, "rt_sigaction", Rule::Allow),
    (14, "rt_sigprocmask", Rule::Allow),
    (15, "rt_sigreturn", Rule::Allow),
    (16, "ioctl", Rule::Ioctl),
    (17, "pread64", Rule::Allow),
    (18, "pwrite64", Rule::Allow),
    (19, "readv", Rule::Allow),
    (20, "writev", Rule::Allow),
    (21, "access", Rule::Allow),
    (22, "pipe", Rule::Allow),
    (23, "select", Rule::Allow),
    (24, "sched_yield", Rule::Allow),
    (25, "mremap", Rule::Allow),
    (26, "msync", Rule::Allow),
    (27, "mincore", Rule::Allow),
    (28, "madvise", Rule::Allow),
    (32, "dup", Rule::Allow),
    (33, "dup2", Rule::Allow),
    (35, "nanosleep", Rule::Allow),
    (39, "getpid", Rule::Allow),
    (40, "sendfile", Rule::Allow),
    (41, "socket", Rule::Socket),
    (42, "connect", Rule::Allow),
    (43, "accept", Rule::Allow),
    (44, "sendto", Rule::Allow),
    (45, "recvfrom", Rule::Allow),
    (46, "sendmsg", Rule::Allow),
    (47, "recvmsg", Rule::Allow),
    (48, "shutdown", Rule::Allow),
    (49, "bind", Rule::Allow),
    (50, "listen", Rule::Allow),
    (51, "getsockname", Rule::Allow),
    (52, "getpeername", Rule::Allow),
    (53, "socketpair", Rule::Allow),
    (54, "setsockopt", Rule::Allow),
    (55, "getsockopt", Rule::Allow),
    (56, "clone", Rule::Clone),
    (60, "exit", Rule::Allow),
    (61, "wait4", Rule::Allow),
    (62, "kill", Rule::Allow),
    (63, "uname", Rule::Allow),
    (72, "fcntl", Rule::Allow),
    (73, "flock", Rule::Allow),
    (74, "fsync", Rule::Allow),
    (75, "fdatasync", Rule::Allow),
    (76, "truncate", Rule::Allow),
    (77, "ftruncate", Rule::Allow),
    (78, "getdents", Rule::Allow),
    (79, "getcwd", Rule::Allow),
    (82, "rename", Rule::Allow),
    (83, "mkdir", Rule::Allow),
    (84, "rmdir", Rule::Allow),
    (86, "link", Rule::Allow),
    (87, "unlink", Rule::Allow),
    (88, "symlink", Rule::Allow),
    (89, "readlink", Rule::Allow),
    (90, "chmod", Rule::Allow),
    (91, "fchmod", Rule::Allow),
    (92, "chown", Rule::Allow),
    (93, "fchown", Rule::Allow),
    (94, "lchown", Rule::Allow),
    (95, "umask", Rule::Allow),
    (96, "gettimeofday", Rule::Allow),
    (97, "getrlimit", Rule::Allow),
    (98, "getrusage", Rule::Allow),
    (99, "sysinfo", Rule::Allow),
    (100, "times", Rule::Allow),
    (101, "ptrace", Rule::Ptrace),
    (102, "getuid", Rule::Allow),
    (104, "getgid", Rule::Allow),
    (107, "geteuid", Rule::Allow),
    (108, "getegid", Rule::Allow),
    (110, "getppid", Rule::Allow),
    (111, "getpgrp", Rule::Allow),
    (112, "setsid", Rule::Allow),
    (115, "getgroups", Rule::Allow),
    (118, "getresuid", Rule::Allow),
    (120, "getresgid", Rule::Allow),
    (121, "getpgid", Rule::Allow),
    (124, "getsid", Rule::Allow),
    (127, "rt_sigpending", Rule::Allow),
    (128, "rt_sigtimedwait", Rule::Allow),
    (130, "rt_sigsuspend", Rule::Allow),
    (131, "sigaltstack", Rule::Allow),
    (133, "mknod", Rule::Allow),
    (135, "personality", Rule::Allow),
    (137, "statfs", Rule::Allow),
    (138, "fstatfs", Rule::Allow),
    (157, "prctl", Rule::Allow),
    (158, "arch_prctl", Rule::Allow),
    (162, "sync", Rule::Allow),
    (186, "gettid", Rule::Allow),
    (188, "setxattr", Rule::Allow),
    (189, "lsetxattr", Rule::Allow),
    (190, "fsetxattr", Rule::Allow),
    (191, "getxattr", Rule::Allow),
    (192, "lgetxattr", Rule::Allow),
    (193, "fgetxattr", Rule::Allow),
    (194, "listxattr", Rule::Allow),
    (195, "llistxattr", Rule::Allow),
    (196, "flistxattr", Rule::Allow),
    (197, "removexattr", Rule::Allow),
    (198, "lremovexattr", Rule::Allow),
    (199, "fremovexattr", Rule::Allow),
    (200, "tkill", Rule::Allow),
    (201, "time", Rule::Allow),
    (202, "futex", Rule::Allow),
    (203, "sched_setaffinity", Rule::Allow),
    (204, "sched_getaffinity", Rule::Allow),
    (217, "getdents64", Rule::Allow),
    (218, "set_tid_address", Rule::Allow),
    (219, "restart_syscall", Rule::Allow),
    (221, "fadvise64", Rule::Allow),
    (228, "clock_gettime", Rule::Allow),
    (229, "clock_getres", Rule::Allow),
    (230, "clock_nanosleep", Rule::Allow),
    (231, "exit_group", Rule::Allow),
    (232, "epoll_wait", Rule::Allow),
    (233, "epoll_ctl", Rule::Allow),
    (234, "tgkill", Rule::Allow),
    (235, "utimes", Rule::Allow),
    (247, "waitid", Rule::Allow),
    (257, "openat", Rule::Allow),
    (258, "mkdirat", Rule::Allow),
    (259, "mknodat", Rule::Allow),
    (260, "fchownat", Rule::Allow),
    (261, "futimesat", Rule::Allow),
    (262, "newfstatat", Rule::Allow),
    (263, "unlinkat", Rule::Allow),
    (264, "renameat", Rule::Allow),
    (265, "linkat", Rule::Allow),
    (266, "symlinkat", Rule::Allow),
    (267, "readlinkat", Rule::Allow),
    (268, "fchmodat", Rule::Allow),
    (269, "faccessat", Rule::Allow),
    (270, "pselect6", Rule::Allow),
    (271, "ppoll", Rule::Allow),
    (273, "set_robust_list", Rule::Allow),
    (275, "splice", Rule::Allow),
    (277, "sync_file_range", Rule::Allow),
    (280, "utimensat", Rule::Allow),
    (281, "epoll_pwait", Rule::Allow),
    (283, "timerfd_create", Rule::Allow),
    (284, "eventfd", Rule::Allow),
    (285, "fallocate", Rule::Allow),
    (286, "timerfd_settime", Rule::Allow),
    (287, "timerfd_gettime", Rule::Allow),
    (288, "accept4", Rule::Allow),
    (289, "signalfd4", Rule::Allow),
    (290, "eventfd2", Rule::Allow),
    (291, "epoll_create1", Rule::Allow),
    (292, "dup3", Rule::Allow),
    (293, "pipe2", Rule::Allow),
    (295, "preadv", Rule::Allow),
    (296, "pwritev", Rule::Allow),
    (299, "recvmmsg", Rule::Allow),
    (302, "prlimit64", Rule::Allow),
    (306, "syncfs", Rule::Allow),
    (307, "sendmmsg", Rule::Allow),
    (308, "setns", Rule::Setns),
    (309, "getcpu", Rule::Allow),
    (310, "process_vm_readv", Rule::Allow),
    (311, "process_vm_writev", Rule::Allow),
    (316, "renameat2", Rule::Allow),
    (317, "seccomp", Rule::Allow),
    (318, "getrandom", Rule::Allow),
    (319, "memfd_create", Rule::Allow),
    (322, "execveat", Rule::ExecStub),
    (326, "copy_file_range", Rule::Allow),
    (327, "preadv2", Rule::Allow),
    (328, "pwritev2", Rule::Allow),
    (332, "statx", Rule::Allow),
    (334, "rseq", Rule::Allow),
    (435, "clone3", Rule::Enosys),
    (436, "close_range", Rule::Allow),
    (439, "faccessat2", Rule::Allow),
    (441, "epoll_pwait2", Rule::Allow),
];

/// The ticker thread's list: it sleeps, signals the running stub, parks,
/// runs whatever process signal handler lands on it, and exits.
const TICK: &[u32] = &[
    1,   // write (a handler's or the SIGSYS report)
    11,  // munmap (thread exit)
    13,  // rt_sigaction
    14,  // rt_sigprocmask
    15,  // rt_sigreturn
    24,  // sched_yield
    28,  // madvise (thread exit)
    35,  // nanosleep
    39,  // getpid
    60,  // exit
    62,  // kill
    131, // sigaltstack (thread exit)
    186, // gettid
    202, // futex (park)
    219, // restart_syscall
    228, // clock_gettime
    230, // clock_nanosleep
    231, // exit_group
    234, // tgkill
];

/// The name of syscall `nr` if the kernel thread's list has it (for the
/// SIGSYS report: a refused call is by definition not there, so this is
/// mostly for tests and logs).
pub fn syscall_name(nr: u32) -> Option<&'static str> {
    KERNEL.iter().find(|e| e.0 == nr).map(|e| e.1)
}

/// The kernel thread's filter. `stub_exe_fd`: the fd number of the sealed
/// stub executable, the one file execveat may run (None: no exec at all).
pub fn kernel_filter(stub_exe_fd: Option<i32>) -> Vec<u8> {
    kernel_filter_ns(stub_exe_fd, None)
}

/// The kernel thread's filter when the stubs have namespaces of their
/// own: setns also of `ns_fds` (user, mount, network, pid), each only
/// with its own type.
pub fn kernel_filter_ns(stub_exe_fd: Option<i32>, ns_fds: Option<[i32; 4]>) -> Vec<u8> {
    let entries: Vec<(u32, Rule)> = KERNEL.iter().map(|e| (e.0, e.2)).collect();
    build(
        &entries,
        Pins {
            exe: stub_exe_fd,
            ns: ns_fds,
        },
    )
}

/// The preemption ticker's filter (stacked on the kernel thread's when the
/// ticker starts after it).
pub fn tick_filter() -> Vec<u8> {
    let entries: Vec<(u32, Rule)> = TICK.iter().map(|&n| (n, Rule::Allow)).collect();
    build(&entries, Pins::default())
}

fn build(entries: &[(u32, Rule)], pins: Pins) -> Vec<u8> {
    use Ins::*;
    debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    let mut a = Asm {
        ins: Vec::new(),
        next_label: 2,
    };
    // Jumps are one byte: the wrong-arch answer sits right here.
    let (ok_arch, bad) = (a.label(), a.label());
    a.push(Ld(ARCH));
    a.push(Jeq(AUDIT_ARCH_X86_64, ok_arch, bad));
    a.push(Label(bad));
    a.push(Ret(RET_TRAP));
    a.push(Label(ok_arch));
    a.push(Ld(NR));
    search(&mut a, entries, pins);
    a.assemble()
}

/// A binary search over `e` on the syscall number (in A); every leaf
/// returns on the spot.
fn search(a: &mut Asm, e: &[(u32, Rule)], fd: Pins) {
    use Ins::*;
    if e.len() == 1 {
        let (nr, rule) = e[0];
        let (hit, miss) = (a.label(), a.label());
        a.push(Jeq(nr, hit, miss));
        a.push(Label(miss));
        a.push(Ret(RET_TRAP));
        a.push(Label(hit));
        check(a, rule, fd);
        return;
    }
    let mid = e.len() / 2;
    let (lo, hi, far) = (a.label(), a.label(), a.label());
    // A >= e[mid].0 (> e[mid].0 - 1; e[mid].0 >= 1 as mid >= 1). The
    // upper half may lie more than 255 instructions on: a long jump.
    a.push(Jgt(e[mid].0 - 1, far, lo));
    a.push(Label(far));
    a.push(Ja(hi));
    a.push(Label(lo));
    search(a, &e[..mid], fd);
    a.push(Label(hi));
    search(a, &e[mid..], fd);
}

/// The argument checks of one rule; each path ends in a return.
fn check(a: &mut Asm, rule: Rule, pins: Pins) {
    use Ins::*;
    let (allow, deny) = (a.label(), a.label());
    match rule {
        Rule::Allow => {
            a.push(Ret(RET_ALLOW));
            return;
        }
        Rule::Enosys => {
            a.push(Ret(RET_ERRNO | ENOSYS));
            return;
        }
        Rule::Clone => {
            let c = a.label();
            a.push(Ld(arg_lo(0)));
            a.push(Jset(CLONE_NEW_ANY, deny, c));
            a.push(Label(c));
            a.push(Jset(CLONE_VM, allow, deny));
        }
        Rule::ExecStub => match pins.exe {
            Some(fd) => {
                let (c1, c2, c3) = (a.label(), a.label(), a.label());
                a.push(Ld(arg_lo(0)));
                a.push(Jeq(fd as u32, c1, deny));
                a.push(Label(c1));
                a.push(Ld(arg_hi(0)));
                a.push(Jeq(0, c2, deny));
                a.push(Label(c2));
                a.push(Ld(arg_lo(4)));
                a.push(Jeq(AT_EMPTY_PATH, c3, deny));
                a.push(Label(c3));
                a.push(Ld(arg_hi(4)));
                a.push(Jeq(0, allow, deny));
            }
            None => {
                a.push(Ret(RET_TRAP));
                return;
            }
        },
        Rule::Socket => {
            let (c1, c2) = (a.label(), a.label());
            a.push(Ld(arg_lo(0)));
            a.push(Jeq(AF_UNIX, allow, c1));
            a.push(Label(c1));
            a.push(Jeq(AF_INET, allow, c2));
            a.push(Label(c2));
            a.push(Jeq(AF_INET6, allow, deny));
        }
        Rule::Ptrace => {
            let c = a.label();
            a.push(Ld(arg_lo(0)));
            a.push(Jeq(PTRACE_ATTACH, deny, c));
            a.push(Label(c));
            a.push(Jeq(PTRACE_SEIZE, deny, allow));
        }
        Rule::Ioctl => {
            a.push(Ld(arg_lo(1)));
            a.push(Jeq(TIOCSTI, deny, allow));
        }
        Rule::Setns => match pins.ns {
            Some(fds) => {
                let (c1, c2) = (a.label(), a.label());
                a.push(Ld(arg_hi(0)));
                a.push(Jeq(0, c1, deny));
                a.push(Label(c1));
                a.push(Ld(arg_hi(1)));
                a.push(Jeq(0, c2, deny));
                a.push(Label(c2));
                let types = [CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID];
                for (i, (fd, ty)) in fds.iter().zip(types).enumerate() {
                    let (hit, miss) = (a.label(), a.label());
                    a.push(Ld(arg_lo(0)));
                    a.push(Jeq(*fd as u32, hit, if i == 3 { deny } else { miss }));
                    a.push(Label(hit));
                    a.push(Ld(arg_lo(1)));
                    a.push(Jeq(ty, allow, deny));
                    a.push(Label(miss));
                }
                a.push(Ja(deny));
            }
            None => {
                a.push(Ret(RET_TRAP));
                return;
            }
        },
    }
    a.push(Label(allow));
    a.push(Ret(RET_ALLOW));
    a.push(Label(deny));
    a.push(Ret(RET_TRAP));
}

#[cfg(test)]
mod tests {
    use super::super::seccomp_filter::bpf::{data, run};
    use super::*;

    const X86: u32 = AUDIT_ARCH_X86_64;
    const I386: u32 = 0x4000_0003;

    fn verdict(prog: &[u8], nr: u32, args: [u64; 6]) -> u32 {
        run(prog, &data(nr, X86, 0x5555_0000_1000, args))
    }

    /// setns: only the four pinned fds, each with its own type; without
    /// them (namespaces=off) never.
    #[test]
    fn setns_only_into_the_stubs_namespaces() {
        let prog = kernel_filter_ns(Some(7), Some([20, 21, 22, 23]));
        let types = [0x1000_0000u64, 0x2_0000, 0x4000_0000, 0x2000_0000];
        for (i, fd) in [20u64, 21, 22, 23].into_iter().enumerate() {
            for (j, ty) in types.into_iter().enumerate() {
                let want = if i == j { RET_ALLOW } else { RET_TRAP };
                assert_eq!(
                    verdict(&prog, 308, [fd, ty, 0, 0, 0, 0]),
                    want,
                    "{fd} {ty:#x}"
                );
            }
            assert_eq!(
                verdict(&prog, 308, [fd, 0, 0, 0, 0, 0]),
                RET_TRAP,
                "{fd} any type"
            );
            let hi = types[i] | (1 << 32);
            assert_eq!(verdict(&prog, 308, [fd, hi, 0, 0, 0, 0]), RET_TRAP);
            assert_eq!(
                verdict(&prog, 308, [fd | (1 << 32), types[i], 0, 0, 0, 0]),
                RET_TRAP
            );
        }
        assert_eq!(verdict(&prog, 308, [19, 0x1000_0000, 0, 0, 0, 0]), RET_TRAP);
        assert_eq!(verdict(&prog, 308, [24, 0x2000_0000, 0, 0, 0, 0]), RET_TRAP);
        let none = kernel_filter(Some(7));
        assert_eq!(verdict(&none, 308, [20, 0x1000_0000, 0, 0, 0, 0]), RET_TRAP);
        // unshare and mount stay refused either way.
        assert_eq!(verdict(&prog, 272, [0x2_0000, 0, 0, 0, 0, 0]), RET_TRAP);
        assert_eq!(verdict(&prog, 165, [0; 6]), RET_TRAP);
    }

    #[test]
    fn every_listed_call_passes_and_the_rest_trap() {
        let prog = kernel_filter(Some(7));
        assert!(prog.len() / 8 <= 4096, "BPF_MAXINSNS");
        let listed: Vec<u32> = KERNEL.iter().map(|e| e.0).collect();
        for nr in 0..600u32 {
            let v = verdict(&prog, nr, [0; 6]);
            match KERNEL.iter().find(|e| e.0 == nr) {
                Some((_, _, Rule::Allow)) => assert_eq!(v, RET_ALLOW, "{nr}"),
                Some((_, _, Rule::Enosys)) => assert_eq!(v, RET_ERRNO | ENOSYS, "{nr}"),
                Some(_) => {} // argument-checked: below
                None => assert_eq!(v, RET_TRAP, "{nr} is not listed"),
            }
            assert!(listed.contains(&nr) || v == RET_TRAP);
        }
        // x32 numbers and other ABIs trap.
        assert_eq!(verdict(&prog, 0x4000_0000, [0; 6]), RET_TRAP);
        assert_eq!(run(&prog, &data(1, I386, 0, [0; 6])), RET_TRAP);
    }

    #[test]
    fn exec_fork_and_escapes_trap() {
        let prog = kernel_filter(Some(7));
        let e = 0x1000u64;
        for (nr, args, want, what) in [
            (59, [0; 6], RET_TRAP, "execve"),
            (57, [0; 6], RET_TRAP, "fork"),
            (58, [0; 6], RET_TRAP, "vfork"),
            (322, [7, 0, 0, 0, e, 0], RET_ALLOW, "execveat of the stub"),
            (322, [8, 0, 0, 0, e, 0], RET_TRAP, "execveat of another fd"),
            (
                322,
                [7 | 1 << 32, 0, 0, 0, e, 0],
                RET_TRAP,
                "fd with high bits",
            ),
            (322, [7, 0, 0, 0, 0, 0], RET_TRAP, "execveat by path"),
            (322, [7, 0, 0, 0, e | 1 << 32, 0], RET_TRAP, "flags high"),
            (56, [0x11, 0, 0, 0, 0, 0], RET_TRAP, "clone as fork"),
            (
                56,
                [0x4111, 0, 0, 0, 0, 0],
                RET_ALLOW,
                "clone CLONE_VM|VFORK",
            ),
            (
                56,
                [0x3d0f00, 0, 0, 0, 0, 0],
                RET_ALLOW,
                "clone of a thread",
            ),
            (56, [0x1000_0100, 0, 0, 0, 0, 0], RET_TRAP, "CLONE_NEWUSER"),
            (56, [0x2_0100, 0, 0, 0, 0, 0], RET_TRAP, "CLONE_NEWNS"),
            (435, [0; 6], RET_ERRNO | ENOSYS, "clone3"),
            (41, [1, 2, 0, 0, 0, 0], RET_ALLOW, "AF_UNIX"),
            (41, [2, 1, 0, 0, 0, 0], RET_ALLOW, "AF_INET"),
            (41, [10, 1, 0, 0, 0, 0], RET_ALLOW, "AF_INET6"),
            (41, [16, 3, 0, 0, 0, 0], RET_TRAP, "AF_NETLINK"),
            (41, [17, 3, 0, 0, 0, 0], RET_TRAP, "AF_PACKET"),
            (101, [16, 1, 0, 0, 0, 0], RET_TRAP, "PTRACE_ATTACH"),
            (101, [0x4206, 1, 0, 0, 0, 0], RET_TRAP, "PTRACE_SEIZE"),
            (101, [31, 1, 0, 0, 0, 0], RET_ALLOW, "PTRACE_SYSEMU"),
            (16, [0, 0x5412, 0, 0, 0, 0], RET_TRAP, "TIOCSTI"),
            (16, [0, 0x5401, 0, 0, 0, 0], RET_ALLOW, "TCGETS"),
            (165, [0; 6], RET_TRAP, "mount"),
            (272, [0; 6], RET_TRAP, "unshare"),
            (308, [0; 6], RET_TRAP, "setns"),
            (321, [0; 6], RET_TRAP, "bpf"),
            (298, [0; 6], RET_TRAP, "perf_event_open"),
            (425, [0; 6], RET_TRAP, "io_uring_setup"),
            (323, [0; 6], RET_TRAP, "userfaultfd"),
            (105, [0; 6], RET_TRAP, "setuid"),
            (161, [0; 6], RET_TRAP, "chroot"),
            (313, [0; 6], RET_TRAP, "finit_module"),
        ] {
            assert_eq!(verdict(&prog, nr, args), want, "{what}");
        }
        // Without a stub executable, no exec at all.
        let none = kernel_filter(None);
        assert_eq!(verdict(&none, 322, [7, 0, 0, 0, e, 0]), RET_TRAP);
    }

    #[test]
    fn the_ticker_may_only_sleep_signal_and_exit() {
        let prog = tick_filter();
        for nr in 0..600u32 {
            let want = if TICK.contains(&nr) {
                RET_ALLOW
            } else {
                RET_TRAP
            };
            assert_eq!(verdict(&prog, nr, [0; 6]), want, "{nr}");
        }
    }

    #[test]
    fn the_stubs_own_calls_are_listed() {
        // What a stub runs natively (spawn, set-up, op loop, vsyscall):
        // all of it must pass the filter it inherits.
        for name in [
            "prctl",
            "setsid",
            "personality",
            "sched_setaffinity",
            "close_range",
            "fcntl",
            "rt_sigaction",
            "rt_sigprocmask",
            "mmap",
            "mprotect",
            "munmap",
            "close",
            "sigaltstack",
            "seccomp",
            "openat",
            "dup2",
            "futex",
            "rt_sigreturn",
            "gettimeofday",
            "time",
            "getcpu",
            "exit",
        ] {
            assert!(KERNEL.iter().any(|e| e.1 == name), "{name}");
        }
        assert_eq!(syscall_name(322), Some("execveat"));
        assert_eq!(syscall_name(59), None);
    }
}
