//! umlrun: a user-mode kernel in the spirit of User-Mode Linux.
//!
//! docs/ARCHITECTURE.md is the map for newcomers: the layers, the path of
//! one `openat` + `read`, and how to add a syscall, a file kind, a file
//! system, a device or a host event source.
//!
//! | module     | owns |
//! |------------|------|
//! | `abi`      | ABI numbers defined once: the page size, the signal numbers |
//! | `errno`    | the Linux errno every syscall error carries |
//! | `config`   | the UML-style command-line switches |
//! | `host`     | the only code that calls libc/nix (memfd, mmap, fallocate, ptrace, fcntl) |
//! | `physmem`  | guest physical memory on a memfd: frames, hole punching, substitution, hot-plug |
//! | `block`    | UML COW v1/v2/v3 files and the `ubd` block devices (copy and mmap modes) |
//! | `fs`       | file systems: ext2, procfs, tmpfs, devtmpfs, the tty line discipline, pipes' buffers |
//! | `vfs`      | mounts, path walk, permissions, directory references, open files (`FileDescription`) |
//! | `mm`       | guest address spaces: VMAs, faults, the page cache, frame references |
//! | `kernel`   | tasks, scheduler, signals, processes, exec, open-file kinds, wait queues, timers, futexes |
//! | `syscalls` | the syscall table (data) and thin per-family handlers |
//! | `loader`   | ELF and `#!` parsing, load plans, the initial stack image |
//! | `net`      | sockets: AF_UNIX, socket addresses, control messages, buffer accounting, epoll |
//! | `platform` | the interface guest code runs through (`Platform`, `Guest`): ptrace stubs, and a fake for unit tests |
//! | `mconsole` | UML's management console protocol and commands (the socket is `host::mcsock`) |
//! | `ratelimit`| rate-limited logging for paths a guest can trigger (`log_limited!`) |
//! | `balance`  | the host memory balancer's policies (decisions only; no daemon yet) |

pub mod abi;
pub mod balance;
pub mod block;
pub mod config;
pub mod errno;
pub mod fs;
pub mod host;
pub mod kernel;
pub mod loader;
pub mod mconsole;
pub mod mm;
pub mod net;
pub mod physmem;
pub mod platform;
pub mod ratelimit;
pub mod syscalls;
pub mod vfs;
