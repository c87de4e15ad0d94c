//! The guest kernel: tasks, signals, processes, exec, the scheduler loop.
//!
//! | file          | owns |
//! |---------------|------|
//! | `core.rs`     | the `Kernel` state and guest-memory helpers |
//! | `task.rs`     | tasks, their states and wait statuses |
//! | `sched.rs`    | the run loop: switching stubs, faults, blocking and waking; the scheduling policy |
//! | `futex.rs`    | futex waiter lists keyed by what backs the word (mm+address, frame, file offset) |
//! | `timers.rs`   | the deadline queue: task timeouts and real-time timers, earliest first |
//! | `hostsrc.rs`  | host event sources registered with the host event loop; the idle wait |
//! | `process.rs`  | fork/clone, exit, zombies, wait4, reparenting |
//! | `exec.rs`     | execve: ELF and `#!` loading into a fresh address space |
//! | `schedattr.rs`| nice, scheduling policy and priority per task, and their rules |
//! | `signal.rs`   | signal sets, actions, the x86-64 signal frame |
//! | `signals.rs`  | sending and delivering signals, stop/continue |
//! | `fdtable.rs`  | file descriptor tables |
//! | `files/`      | the kinds of open file (`FileDescription` implementations), one file each |
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
//! | `kmsg.rs`     | the kernel log: printk to the console and a ring that syslog(2)/dmesg reads |
//! | `budget.rs`   | the host memory budget (host_mem_max=, the cgroup): what the instance holds, the cap on guest frames |
//! | `oom.rs`      | out of guest memory: page-cache reclaim, the OOM killer by badness (never init) |
//! | `psi.rs`      | memory stall accounting: /proc/pressure/memory (some/full, avg10/60/300) |
//! | `memevents.rs`| near-budget, reclaiming, swapping and OOM-kill events on the mconsole notify socket |
//! | `swap.rs`     | swapon/swapoff on ubd disks, the swap-out clock, /proc/swaps and /proc/vmstat |
//! | `mconsole.rs` | serving the management console: commands, `stop`/`go`, memory hot-plug, `stats` |
//!
//! Lock order: there are no locks; the kernel runs on one host thread.

#![deny(unsafe_code)]

pub mod boot;
pub mod budget;
pub mod console;
pub mod core;
pub mod deadline;
pub mod exec;
pub mod fdtable;
pub mod files;
pub mod futex;
pub mod hostsrc;
pub mod kmsg;
pub mod mconsole;
pub mod memevents;
pub mod mountfs;
pub mod oom;
pub mod orphans;
pub mod pipes;
pub mod process;
pub mod procsrc;
pub mod psi;
pub mod random;
pub mod sched;
pub mod schedattr;
pub mod signal;
pub mod signals;
pub mod swap;
pub mod task;
#[cfg(test)]
mod testing;
pub mod timers;
pub mod waitq;

pub use self::core::{Kernel, KernelConfig, Shutdown};
