//! umlrun: a user-mode kernel in the spirit of User-Mode Linux.
//!
//! | module     | owns |
//! |------------|------|
//! | `config`   | the UML-style command-line switches |
//! | `host`     | the only code that calls libc/nix (memfd, mmap, fallocate, ptrace, fcntl) |
//! | `physmem`  | guest physical memory on a memfd: frames, hole punching, substitution, hot-plug |
//! | `block`    | UML COW v1/v2/v3 files and the `ubd` block devices (copy and mmap modes) |
//! | `fs`       | ext2, and later the VFS, procfs, tmpfs, /dev |
//! | `loader`   | ELF and `#!` parsing, load plans, the initial stack image |
//! | `net`      | sockets: AF_UNIX, socket addresses, control messages, buffer accounting, epoll |
//! | `platform` | the interface guest code runs through (`Platform`, `Guest`): ptrace stubs, and a fake for unit tests |
//! | `mconsole` | UML's management console protocol and commands (the socket is `host::mcsock`) |

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
pub mod syscalls;
pub mod vfs;
