//! The guest kernel: tasks, signals, processes, exec, the scheduler loop.
//!
//! | file          | owns |
//! |---------------|------|
//! | `core.rs`     | the `Kernel` state and guest-memory helpers |
//! | `task.rs`     | tasks, their states and wait statuses |
//! | `sched.rs`    | the run loop: switching stubs, faults, blocking and waking; the scheduling policy |
//! | `futex.rs`    | futex waiter lists keyed by what backs the word (mm+address, frame, file offset) |
//! | `futex_pi.rs` | PI futexes (LOCK_PI/TRYLOCK_PI/UNLOCK_PI) and robust lists walked at thread exit |
//! | `timers.rs`   | the deadline queue: task timeouts and real-time timers, earliest first |
//! | `hostsrc.rs`  | host event sources registered with the host event loop; the idle wait |
//! | `process.rs`  | fork/clone, exit, zombies, wait4, reparenting |
//! | `exec.rs`     | execve: ELF and `#!` loading into a fresh address space |
//! | `schedattr.rs`| nice, scheduling policy and priority per task, and their rules |
//! | `signal.rs`   | signal sets, actions, the x86-64 signal frame |
//! | `signals.rs`  | sending and delivering signals, stop/continue |
//! | `fdtable.rs`  | file descriptor tables |
//! | `files/`      | the kinds of open file (`FileDescription` implementations), one file each |
//! | `ipc/`        | SysV IPC: shared memory, semaphores, message queues |
//! | `locks.rs`    | the lock manager: POSIX/OFD record locks, flock, leases; blocking, deadlock, release on close, /proc/locks |
//! | `waitq.rs`    | wait queues: per-object waiters with event masks |
//! | `console.rs`  | /dev/console: the line discipline on umlrun's stdin/stdout |
//! | `orphans.rs`  | open-but-unlinked files kept alive under a hidden name |
//! | `pipes.rs`    | pipe and fifo buffers |
//! | `random.rs`   | the guest's random numbers |
//! | `procsrc.rs`  | the snapshot of kernel state that /proc shows |
//! | `mountfs.rs`  | making procfs, tmpfs and devtmpfs instances |
//! | `boot.rs`     | building the kernel from the config and starting init |
//! | `deadline.rs` | checked arithmetic on guest times: timespecs, timeouts saturating to forever |
//! | `testing/`    | (tests only) unit tests of all the above on the fake platform |
//! | `mconsole.rs` | serving the management console: commands, `stop`/`go`, memory hot-plug, `stats` |
//!
//! Lock order: there are no locks; the kernel runs on one host thread.

#![deny(unsafe_code)]

pub mod boot;
pub mod console;
pub mod core;
pub mod deadline;
pub mod exec;
pub mod fdtable;
pub mod files;
pub mod futex;
pub mod futex_pi;
pub mod hostsrc;
pub mod ipc;
pub mod locks;
pub mod mconsole;
pub mod mountfs;
pub mod orphans;
pub mod pipes;
pub mod process;
pub mod procsrc;
pub mod random;
pub mod sched;
pub mod schedattr;
pub mod signal;
pub mod signals;
pub mod task;
#[cfg(test)]
mod testing;
pub mod timers;
pub mod waitq;

pub use self::core::{Kernel, KernelConfig, Shutdown};
