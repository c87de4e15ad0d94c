//! Tasks: one per guest thread. A process is a thread group; threads of
//! one process share an address space (one stub, registers swapped in and
//! out like UML does), file table, fs context and signal handlers.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::fdtable::FdTable;
use super::signal::{AltStack, SigHandlers, SigInfo, SigSet};
use crate::platform::{FpRegs, Regs};
use crate::vfs::Cred;

pub type Pid = i32;
pub type MmId = u64;

/// What a blocked task waits for. A blocked syscall is retried from the
/// start when it is woken. Every wait also ends on a signal it does not
/// block (except `Vfork`); nothing wakes "everyone": the object that
/// changes wakes its own waiters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// A deadline (nanosleep); also ends on a signal.
    Until(Instant),
    /// Only a signal wakes it (pause, sigsuspend).
    Signal,
    /// A vfork parent until its child execs or exits (no retry: the
    /// result is already in its registers).
    Vfork,
    /// FUTEX_WAIT: only futex_wake (or a signal) ends it.
    Futex,
    /// FUTEX_WAIT with a timeout.
    FutexUntil(Instant),
    /// On the wait queues in `Task::waiting_on` (see `kernel::waitq`),
    /// until one is woken, the deadline passes or a signal comes: files
    /// and poll/select/epoll, a fifo open, wait4/waitid (the process's
    /// child queue), rt_sigtimedwait (the task's signal queue). With no
    /// queue, only a signal (or SIGCONT's restart) ends it.
    Queue(Option<Instant>),
}

impl Wait {
    /// When the wait ends by itself, if it does.
    pub fn deadline(&self) -> Option<Instant> {
        match *self {
            Wait::Until(d) | Wait::FutexUntil(d) => Some(d),
            Wait::Queue(d) => d,
            Wait::Signal | Wait::Vfork | Wait::Futex => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskState {
    Runnable,
    Blocked(Wait),
    /// Stopped by a job-control signal.
    Stopped,
    /// Exited; the status waits for the parent's wait4.
    Zombie,
    /// Reaped or a thread that exited: about to be removed.
    Dead,
}

/// Current directory, root and umask (shared by CLONE_FS).
#[derive(Clone)]
pub struct FsContext {
    /// The current directory: a reference, kept true across renames.
    pub cwd: crate::vfs::DentryRef,
    /// The root directory (chroot): where absolute paths and absolute
    /// symlinks start and `..` stops; a reference like the cwd.
    pub root: crate::vfs::DentryRef,
    pub umask: u32,
}

/// What restart_syscall resumes: a relative nanosleep/clock_nanosleep
/// keeps its first deadline, so a stop or a signal does not lengthen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBlock {
    pub deadline: Instant,
    /// The guest's `rem` timespec pointer (0: none).
    pub rem: u64,
}

/// A socket call or a write to a pipe asleep part-way (Linux keeps this on the sleeper's
/// stack; a retried call here starts over, so the task keeps it). Reset
/// whenever a syscall ends or a signal cuts it short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SockSleep {
    /// Bytes this call already moved (a blocking stream send or pipe write
    /// that went in parts): a retry goes on after them; a signal, the timeout or an
    /// error returns them instead of failing (Linux's `sent ? : err`).
    pub done: usize,
    /// The sleep runs under SO_RCVTIMEO/SO_SNDTIMEO: a signal fails it
    /// with EINTR, never a restart, even under SA_RESTART (socket(7),
    /// Linux's `sock_intr_errno`).
    pub timed: bool,
    /// A blocking sendmmsg asleep: the messages it sent whole before this
    /// sleep (`done` is then the bytes of the next one that went).
    pub mmsg: Option<u64>,
}

impl SockSleep {
    /// What the call returns if a signal or the timeout cuts it short
    /// (0: nothing moved, so it fails or restarts): the bytes moved, or
    /// for sendmmsg the messages sent, one that went in part counted.
    pub fn moved(&self) -> u64 {
        match self.mmsg {
            Some(m) => m.saturating_add(u64::from(self.done > 0)),
            None => self.done as u64,
        }
    }
}

/// CAP_LAST_CAP (CAP_CHECKPOINT_RESTORE) and the full bounding set a
/// task starts with.
pub const CAP_LAST_CAP: u64 = 40;
pub const CAP_FULL_SET: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

pub struct Task {
    pub tid: Pid,
    pub tgid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub mm: MmId,
    pub files: Rc<RefCell<FdTable>>,
    pub fs: Rc<RefCell<FsContext>>,
    pub sighand: Rc<RefCell<SigHandlers>>,
    pub sigmask: SigSet,
    /// Mask to restore after sigsuspend/pselect once a handler runs.
    pub saved_mask: Option<SigSet>,
    pub pending: Vec<SigInfo>,
    pub altstack: AltStack,
    pub cred: Cred,
    pub regs: Regs,
    pub fp: Option<FpRegs>,
    pub state: TaskState,
    /// A blocked syscall to retry: (number, arguments).
    pub syscall: Option<(u64, [u64; 6])>,
    /// The wait status for wait4 once a zombie.
    pub exit_status: i32,
    /// Signal sent to the parent on exit (SIGCHLD; 0 for threads).
    pub exit_signal: i32,
    pub clear_child_tid: u64,
    /// set_robust_list: the head of the thread's robust futex list (0: none),
    /// walked when the thread exits (`kernel/futex_pi.rs`).
    pub robust_list: u64,
    pub comm: Vec<u8>,
    pub cmdline: Vec<u8>,
    pub exe: Vec<u8>,
    /// The executable itself: exec through /proc/<pid>/exe runs this
    /// file even after it was renamed or unlinked.
    pub exe_node: Option<crate::vfs::Node>,
    /// Parent blocked in vfork until this child execs or exits.
    pub vfork_parent: Option<Pid>,
    pub start: Instant,
    /// Stop/continue notifications not yet reported to wait4.
    pub stop_report: Option<i32>,
    pub cont_report: bool,
    /// ITIMER_REAL / alarm: next expiry and interval.
    pub itimer: Option<(Instant, std::time::Duration)>,
    /// ITIMER_VIRTUAL and ITIMER_PROF (per process: the leader's count).
    pub cpu_itimers: CpuItimers,
    /// POSIX timers (timer_create; per process: the leader's).
    pub posix_timers: super::posix_timers::PosixTimers,
    pub syscalls: u64,
    /// The deadline of the blocked syscall's timeout, fixed when it first
    /// blocked so retries do not extend it.
    pub block_deadline: Option<Instant>,
    /// The socket call now asleep: its progress and timeout kind.
    pub sock_sleep: SockSleep,
    /// The wait queues a `Wait::Queue` sleep is registered on.
    pub waiting_on: Vec<super::waitq::WaitQueueRef>,
    /// Woken when one of this process's children stops, continues or
    /// exits (wait4/waitid sleep here; used on the thread-group leader).
    pub child_q: super::waitq::WaitQueueRef,
    /// Woken when a signal is queued for this thread, blocked or not
    /// (rt_sigtimedwait sleeps here).
    pub signal_q: super::waitq::WaitQueueRef,
    /// A sleep stopped or interrupted without a handler, resumed by
    /// restart_syscall (Linux's `restart_block`).
    pub restart: Option<RestartBlock>,
    pub rlimits: [(u64, u64); 16],
    /// PR_SET_PDEATHSIG: sent when the parent exits.
    pub pdeathsig: i32,
    /// PR_SET_NO_NEW_PRIVS: kept across fork and exec, never cleared.
    pub no_new_privs: bool,
    /// prctl's secure bits (SECURE_NOROOT .. NO_CAP_AMBIENT_RAISE and
    /// their locks): kept, inherited and obeyed for their own changes;
    /// their effect on capabilities is not modelled (capabilities are
    /// not: root has all).
    pub securebits: u32,
    /// The capability bounding set (PR_CAPBSET_READ/DROP): kept and
    /// inherited, not enforced (as capset).
    pub cap_bset: u64,
    /// /proc/<pid>/oom_score_adj (-1000..=1000): added to the OOM
    /// killer's badness; -1000 exempts the process. Kept across fork.
    pub oom_score_adj: i16,
    /// The floor a process without privilege may not lower
    /// oom_score_adj below (Linux's signal->oom_score_adj_min: set when
    /// root writes oom_score_adj). Kept across fork.
    pub oom_score_adj_min: i16,
    /// PR_SET_CHILD_SUBREAPER (the leader's counts): orphaned descendants
    /// are reparented here instead of to init. Not inherited.
    pub child_subreaper: bool,
    /// PR_SET_TIMERSLACK, in ns (inherited; recorded, no timer is
    /// coarsened by it).
    pub timer_slack: u64,
    /// personality(2): inherited across fork and exec.
    pub personality: u32,
    /// Nice value, scheduling policy and priority (per thread).
    pub sched: super::schedattr::SchedAttr,
    /// Virtual runtime (ns at nice 0's weight): the fair scheduler runs
    /// the runnable task with the smallest (kernel/fair.rs).
    pub vruntime: u64,
    /// SCHED_RR's quantum left (ns of CPU time; kernel/rt.rs).
    pub rr_left_ns: u64,
    /// CPU ticks (user, system) the process used, sampled at exit.
    pub cpu_exit: (u64, u64),
    /// CPU time (ns) the kernel spent serving this thread (its syscalls,
    /// faults and signals): system time its stub's host figures do not show.
    pub kernel_ns: u64,
    /// CPU ticks of reaped children (times' cutime/cstime).
    pub child_cpu: (u64, u64),
}

impl Task {
    pub fn is_leader(&self) -> bool {
        self.tid == self.tgid
    }

    pub fn is_alive(&self) -> bool {
        !matches!(self.state, TaskState::Zombie | TaskState::Dead)
    }
}

/// Linux's default timer slack (50 µs).
pub const DEFAULT_TIMER_SLACK_NS: u64 = 50_000;

/// Nanoseconds in one host CPU tick (the unit of the stubs' CPU times).
pub const CPU_TICK_NS: u64 = 10_000_000;

/// One CPU-time interval timer, on the process's own CPU clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimer {
    /// The clock reading (ns) at which it fires.
    pub expires: u64,
    /// Reload (ns); 0: one-shot.
    pub interval: u64,
}

/// ITIMER_VIRTUAL (user CPU time) and ITIMER_PROF (user + system) of one
/// process, like Linux's: each counts on a process CPU clock that the
/// kernel advances from its stub's host CPU ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuItimers {
    pub virt: Option<CpuTimer>,
    pub prof: Option<CpuTimer>,
    /// The clocks (user, user + system) in ns, as far as charged.
    clock: (u64, u64),
    /// The stub's (user, system) ticks at the last charge.
    seen: (u64, u64),
}

/// Which of the two CPU timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuClock {
    Virt,
    Prof,
}

impl CpuItimers {
    pub fn armed(&self) -> bool {
        self.virt.is_some() || self.prof.is_some()
    }

    /// Advances the clocks to the stub's `ticks` (user, system). A count
    /// that went back means a new stub counting from zero (exec).
    pub fn charge(&mut self, ticks: (u64, u64)) {
        let delta = |now: u64, was: u64| if now >= was { now - was } else { now };
        let (du, ds) = (delta(ticks.0, self.seen.0), delta(ticks.1, self.seen.1));
        self.seen = ticks;
        self.clock.0 += du * CPU_TICK_NS;
        self.clock.1 += (du + ds) * CPU_TICK_NS;
    }

    /// The timers that expired at the charged clocks; each is reloaded
    /// with its interval (keeping its phase, as Linux does) or disarmed.
    pub fn expire(&mut self) -> Vec<CpuClock> {
        let mut fired = Vec::new();
        for (which, now) in [
            (CpuClock::Virt, self.clock.0),
            (CpuClock::Prof, self.clock.1),
        ] {
            let slot = self.slot(which);
            if let Some(t) = slot.filter(|t| now >= t.expires) {
                *slot = (t.interval > 0).then_some(CpuTimer {
                    expires: t.expires + t.interval,
                    ..t
                });
                fired.push(which);
            }
        }
        fired
    }

    fn slot(&mut self, which: CpuClock) -> &mut Option<CpuTimer> {
        match which {
            CpuClock::Virt => &mut self.virt,
            CpuClock::Prof => &mut self.prof,
        }
    }

    fn now(&self, which: CpuClock) -> u64 {
        match which {
            CpuClock::Virt => self.clock.0,
            CpuClock::Prof => self.clock.1,
        }
    }

    /// (value, interval) in ns left on a timer, as getitimer reports it:
    /// an expired timer whose signal is not yet sent shows one tick.
    pub fn get(&self, which: CpuClock) -> (u64, u64) {
        let t = match which {
            CpuClock::Virt => self.virt,
            CpuClock::Prof => self.prof,
        };
        match t {
            Some(t) => (
                t.expires
                    .checked_sub(self.now(which))
                    .filter(|&v| v > 0)
                    .unwrap_or(CPU_TICK_NS),
                t.interval,
            ),
            None => (0, 0),
        }
    }

    /// Arms (value > 0) or disarms a timer, from the charged clock.
    pub fn set(&mut self, which: CpuClock, value: u64, interval: u64) {
        let now = self.now(which);
        *self.slot(which) = (value > 0).then_some(CpuTimer {
            expires: now + value,
            interval,
        });
    }
}

/// Linux wait-status encodings.
pub fn status_exited(code: i32) -> i32 {
    (code & 0xff) << 8
}

pub fn status_signaled(sig: i32, core: bool) -> i32 {
    (sig & 0x7f) | if core { 0x80 } else { 0 }
}

pub fn status_stopped(sig: i32) -> i32 {
    ((sig & 0xff) << 8) | 0x7f
}

pub const STATUS_CONTINUED: i32 = 0xffff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_matches_libc_macros() {
        // WIFEXITED/WEXITSTATUS
        let s = status_exited(3);
        assert_eq!(s & 0x7f, 0);
        assert_eq!((s >> 8) & 0xff, 3);
        // WIFSIGNALED/WTERMSIG
        let s = status_signaled(9, false);
        assert!(((s & 0x7f) + 1) as i8 >> 1 > 0);
        assert_eq!(s & 0x7f, 9);
        // WIFSTOPPED/WSTOPSIG
        let s = status_stopped(19);
        assert_eq!(s & 0xff, 0x7f);
        assert_eq!((s >> 8) & 0xff, 19);
    }

    const T: u64 = CPU_TICK_NS;

    #[test]
    fn virtual_timer_fires_on_user_time_only() {
        let mut c = CpuItimers::default();
        c.charge((7, 3)); // time before arming does not count
        c.set(CpuClock::Virt, 5 * T, 0);
        assert_eq!(c.get(CpuClock::Virt), (5 * T, 0));
        c.charge((7, 40)); // system time only
        assert!(c.expire().is_empty());
        c.charge((11, 40));
        assert!(c.expire().is_empty());
        assert_eq!(c.get(CpuClock::Virt), (T, 0));
        c.charge((12, 40));
        assert_eq!(c.expire(), vec![CpuClock::Virt]);
        assert!(!c.armed(), "a one-shot timer disarms");
        assert_eq!(c.get(CpuClock::Virt), (0, 0));
    }

    #[test]
    fn prof_timer_counts_user_and_system_and_reloads() {
        let mut c = CpuItimers::default();
        c.set(CpuClock::Prof, 2 * T, 3 * T);
        c.charge((1, 1));
        assert_eq!(c.expire(), vec![CpuClock::Prof]);
        // Reloaded from its expiry, not from when it was noticed.
        assert_eq!(c.get(CpuClock::Prof), (3 * T, 3 * T));
        c.charge((2, 2));
        assert!(c.expire().is_empty());
        c.charge((3, 2));
        assert_eq!(c.expire(), vec![CpuClock::Prof]);
        assert!(c.armed());
        c.set(CpuClock::Prof, 0, 0);
        assert!(!c.armed());
    }

    #[test]
    fn a_new_stub_counting_from_zero_is_not_a_jump() {
        let mut c = CpuItimers::default();
        c.charge((500, 100));
        c.set(CpuClock::Virt, 10 * T, 0);
        c.charge((2, 0)); // exec: a fresh count
        assert_eq!(c.get(CpuClock::Virt), (8 * T, 0));
        assert!(c.expire().is_empty());
    }
}
