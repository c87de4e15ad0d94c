//! The guest kernel: tasks, signals, processes, exec, the scheduler loop.
//!
//! | file          | owns |
//! |---------------|------|
//! | `core.rs`     | the `Kernel` state and guest-memory helpers |
//! | `task.rs`     | tasks, their states and wait statuses |
//! | `sched.rs`    | the run loop: switching stubs, faults, blocking and waking; the scheduling policy |
//! | `futex.rs`    | futex waiter lists keyed by what backs the word (mm+address, frame, file offset) |
//! | `futex_pi.rs` | PI futexes (LOCK_PI/TRYLOCK_PI/UNLOCK_PI) and robust lists walked at thread exit |
//! | `futex_requeue_pi.rs` | WAIT_REQUEUE_PI / CMP_REQUEUE_PI: plain waiters requeued onto a PI futex |
//! | `timers.rs`   | the deadline queue: task timeouts and real-time timers, earliest first |
//! | `posix_timers.rs` | POSIX timers (timer_create): SI_TIMER signals, overruns, wall and CPU clocks |
//! | `hostsrc.rs`  | host event sources registered with the host event loop; the idle wait |
//! | `inet.rs`     | the guest TCP/IP stack: made on first use, run after socket calls and on its timers |
//! | `netfwd.rs`   | the user-mode NAT's host side: port-forward listeners, pumping forwarded connections |
//! | `nettap.rs`   | the Ethernet transports' host side (tuntap, uml_switch ports): frames to and from ethN's Ethernet link, the device backlog |
//! | `sockmem.rs`  | socket buffers charged to guest memory: physmem frames held in proportion to the bytes queued |
//! | `netproc.rs`  | the rows of /proc/net's inet files: interface counters, TCP/UDP sockets, routes |
//! | `netudp.rs`   | the user-mode NAT's UDP: a host socket per guest port, the DNS forwarder at 10.0.2.3 |
//! | `process.rs`  | fork/clone, exit, zombies, wait4, reparenting |
//! | `clonecheck.rs` | clone(2)'s checks on its flags and TLS base, as Linux's |
//! | `exec.rs`     | execve: ELF and `#!` loading into a fresh address space |
//! | `fair.rs`     | fair shares: weights by nice, virtual runtime, which runnable task runs next |
//! | `cpuacct.rs`  | charging CPU time to tasks: short turns noted and charged together (system time, virtual runtime) |
//! | `rt.rs`       | the real-time classes: FIFO/RR before fair tasks, pre-emption, RR's quantum, the throttle |
//! | `schedattr.rs`| nice, scheduling policy and priority per task, and their rules |
//! | `signal.rs`   | signal sets, actions, the x86-64 signal frame |
//! | `signals.rs`  | sending and delivering signals, stop/continue |
//! | `fdtable.rs`  | file descriptor tables |
//! | `files/`      | the kinds of open file (`FileDescription` implementations), one file each |
//! | `ipc/`        | SysV IPC: shared memory, semaphores, message queues |
//! | `locks.rs`    | the lock manager: POSIX/OFD record locks, flock, leases; blocking, deadlock, release on close, /proc/locks |
//! | `waitq.rs`    | wait queues: per-object waiters with event masks |
//! | `console.rs`  | /dev/console: the line discipline on umlrun's stdin/stdout |
//! | `sysfs.rs`    | a minimal /sys (cpu, block devices, empty kernel/class/fs/cgroup) built at mount |
//! | `pty.rs`      | pseudo-terminal pairs (/dev/ptmx, /dev/pts/N): the slave's tty, the master's buffer, hang-up |
//! | `orphans.rs`  | open-but-unlinked files kept alive under a hidden name |
//! | `pipes.rs`    | pipe and fifo buffers, and each user's pipe pages (pipe-user-pages-soft/hard) |
//! | `ucounts.rs`  | per-user counts with a cap (inotify instances, epoll watches, pipe pages), given back on drop |
//! | `random.rs`   | the guest's random numbers |
//! | `procsrc.rs`  | the snapshot of kernel state that /proc shows |
//! | `mountfs.rs`  | making procfs, tmpfs and devtmpfs instances |
//! | `boot.rs`     | building the kernel from the config and starting init |
//! | `deadline.rs` | checked arithmetic on guest times: timespecs, timeouts saturating to forever |
//! | `testing/`    | (tests only) unit tests of all the above on the fake platform |
//! | `kmsg.rs`     | the kernel log: printk to the console and a ring that syslog(2)/dmesg reads |
//! | `budget.rs`   | the host memory budget (host_mem_max=, the cgroup): what the instance holds, the cap on guest frames |
//! | `oom.rs`      | out of guest memory: page-cache reclaim, the OOM killer by badness (never init) |
//! | `memwait.rs`  | `oom_wait=`: a fault below maxmem= sleeps for a balancer's plug before the OOM killer |
//! | `psi.rs`      | memory stall accounting: /proc/pressure/memory (some/full, avg10/60/300) |
//! | `memevents.rs`| near-budget, reclaiming, swapping and OOM-kill events on the mconsole notify socket |
//! | `swap.rs`     | swapon/swapoff on ubd disks, the swap-out clock, /proc/swaps and /proc/vmstat |
//! | `mconsole.rs` | serving the management console: commands, `stop`/`go`, memory hot-plug, `stats` |
//! | `memlimits.rs`| per-guest limits: pagecache_max, max_map_count, mapped_file_max (set at run time); RLIMIT_AS, RLIMIT_DATA (may_expand_vm); refusals |
//!
//! Concurrency: one kernel thread per instance owns the `Kernel` (`Rc`,
//! `RefCell`: no locks here, nothing reachable from another thread). The
//! shared lower layers it calls take their own locks, in this order: ext2,
//! blockio, ubd `writer`, ubd `bitmap`; physmem last (a leaf). See
//! docs/ARCHITECTURE.md, "Concurrency". Blocking is per object: see
//! `waitq.rs`.

#![deny(unsafe_code)]

pub mod boot;
pub mod budget;
pub mod clonecheck;
pub mod console;
pub mod core;
pub mod cpuacct;
pub mod deadline;
pub mod exec;
pub mod fair;
pub mod fdtable;
pub mod files;
pub mod futex;
pub mod futex_pi;
pub mod futex_requeue_pi;
pub mod hostsrc;
pub mod inet;
pub mod ipc;
pub mod kmsg;
pub mod locks;
pub mod mconsole;
pub mod memevents;
pub mod memlimits;
pub mod memwait;
pub mod mountfs;
pub mod netfwd;
pub mod netproc;
pub mod nettap;
pub mod netudp;
pub mod oom;
pub mod orphans;
pub mod pipes;
pub mod posix_timers;
pub mod process;
pub mod procsrc;
pub mod psi;
pub mod pty;
pub mod random;
pub mod rt;
pub mod sched;
pub mod schedattr;
pub mod signal;
pub mod signals;
pub mod sockmem;
pub mod swap;
pub mod sysfs;
pub mod task;
#[cfg(test)]
mod testing;
pub mod timers;
pub mod ucounts;
pub mod waitq;

pub use self::core::{Kernel, KernelConfig, Shutdown};
