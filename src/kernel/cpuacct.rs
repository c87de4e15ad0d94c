//! Charging CPU time to tasks, turn by turn, without asking the host every
//! turn.
//!
//! Each turn of a task (`sched.rs`) costs the kernel thread's CPU time
//! (system time, Linux's way: serving its syscalls, faults, signals and
//! the host calls that switch to it) and its stub's (the guest's side).
//! Asking the host for both clocks is two host syscalls a turn — as much
//! as a fifth of a unix-socket ping-pong round trip, whose two turns are
//! four guest syscalls (issue 11). So short turns are only noted (the
//! task, its address space, the turn's wall time) and settled together:
//! once the noted turns add up to [`SETTLE_AFTER`] of wall time, or
//! [`MAX_NOTED`] turns, when the kernel goes idle, and before anything
//! reads the figures (`Kernel::cpu_ticks`, `Kernel::kernel_ns`, and so
//! times(2), getrusage(2), CPU clocks and timers, RLIMIT_CPU, /proc,
//! wait status). Settling reads each clock once: the kernel thread's
//! time since the first noted turn began is shared among the noted turns
//! by their wall time, each stub's by the wall time of the turns that ran
//! on it. Nothing is lost, only charged up to [`SETTLE_AFTER`] later (Linux
//! itself charges at its tick); a turn that is long on its own (a CPU-bound
//! task's) and a real-time task's turn settle at once, so fair shares and
//! the real-time throttle see them as before.

use std::time::Duration;

use super::core::Kernel;
use super::task::{MmId, Pid};

/// Noted turns settle once their wall time adds up to this (Linux's tick
/// at HZ=250: it charges a tick's time to whoever it finds running).
pub const SETTLE_AFTER: Duration = Duration::from_millis(4);

/// Noted turns settle once there are this many.
pub const MAX_NOTED: usize = 128;

/// One turn whose CPU time is not charged yet.
#[derive(Debug, Clone, Copy)]
struct Turn {
    tid: Pid,
    mm: Option<MmId>,
    wall_ns: u64,
}

/// The turns not charged yet, and since when the kernel thread's clock
/// runs for them.
#[derive(Debug, Default)]
pub struct CpuNotes {
    turns: Vec<Turn>,
    wall_ns: u64,
}

impl CpuNotes {
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

/// `total` shared as `part` of `whole` (floor; `whole` 0 gives 0).
fn share(total: u64, part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    let s = u128::from(total) * u128::from(part) / u128::from(whole);
    u64::try_from(s).unwrap_or(u64::MAX)
}

impl Kernel {
    /// Notes the turn `tid` just had (`wall` long) and settles the noted
    /// turns when they are due; `now_exact` settles at once.
    pub(super) fn note_turn(&mut self, tid: Pid, wall: Duration, now_exact: bool) {
        let wall_ns = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
        let mm = self.tasks.get(&tid).map(|t| t.mm);
        let notes = &mut self.cpu_notes;
        notes.turns.push(Turn { tid, mm, wall_ns });
        notes.wall_ns = notes.wall_ns.saturating_add(wall_ns);
        let due = now_exact
            || notes.turns.len() >= MAX_NOTED
            || notes.wall_ns >= u64::try_from(SETTLE_AFTER.as_nanos()).unwrap_or(u64::MAX);
        if due {
            self.settle_cpu();
        }
    }

    /// Charges the noted turns: system time (`kernel_ns`) and virtual
    /// runtime. Reads the kernel thread's CPU clock once and each stub's
    /// once. The kernel thread's clock then runs on for the next turn.
    pub fn settle_cpu(&mut self) {
        if self.cpu_notes.turns.is_empty() {
            return;
        }
        let turns = std::mem::take(&mut self.cpu_notes.turns);
        let wall_total = std::mem::take(&mut self.cpu_notes.wall_ns);
        let after = crate::host::clock::thread_cpu_ns();
        let spent = self
            .cpu_mark
            .map(|before| after.saturating_sub(before))
            .unwrap_or(0);
        self.cpu_mark = Some(after);
        // Each stub's time since it was last read, shared among its turns.
        let mut stubs: Vec<(MmId, u64, u64)> = Vec::new(); // (mm, guest ns, wall ns)
        for t in &turns {
            let Some(mm) = t.mm else { continue };
            match stubs.iter_mut().find(|s| s.0 == mm) {
                Some(s) => s.2 = s.2.saturating_add(t.wall_ns),
                None => {
                    let guest = match self.mms.get_mut(&mm) {
                        Some(m) => {
                            let now = m.guest.cpu_time_ns();
                            // A stub first seen now counts from here.
                            let before = m.cpu_seen.unwrap_or(now);
                            m.cpu_seen = Some(now);
                            now.saturating_sub(before)
                        }
                        None => 0,
                    };
                    stubs.push((mm, guest, t.wall_ns));
                }
            }
        }
        for t in &turns {
            let kernel = share(spent, t.wall_ns, wall_total);
            let guest =
                t.mm.and_then(|mm| stubs.iter().find(|s| s.0 == mm))
                    .map_or(0, |s| share(s.1, t.wall_ns, s.2));
            if let Some(task) = self.tasks.get_mut(&t.tid) {
                task.kernel_ns = task.kernel_ns.saturating_add(kernel);
                if !super::schedattr::is_rt(task.sched.policy) {
                    let w = super::fair::weight(&task.sched);
                    task.vruntime =
                        super::fair::charge(task.vruntime, kernel.saturating_add(guest), w);
                }
            }
        }
    }

    /// What `tid` has been charged so far: its system time, and its
    /// stub's time as last read (for the difference a settle makes).
    pub(super) fn charged_cpu(&self, tid: Pid) -> Charged {
        let Some(t) = self.tasks.get(&tid) else {
            return Charged::default();
        };
        Charged {
            kernel_ns: t.kernel_ns,
            stub: self
                .mms
                .get(&t.mm)
                .and_then(|m| m.cpu_seen.map(|c| (t.mm, c))),
        }
    }
}

/// A task's charged CPU time at one moment (`Kernel::charged_cpu`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Charged {
    kernel_ns: u64,
    stub: Option<(MmId, u64)>,
}

impl Charged {
    /// The CPU time (ns) charged between `before` and this: the kernel's,
    /// and the stub's when it is the same stub seen both times.
    pub fn since(&self, before: Charged) -> u64 {
        let guest = match (before.stub, self.stub) {
            (Some((m0, c0)), Some((m1, c1))) if m0 == m1 => c1.saturating_sub(c0),
            _ => 0,
        };
        self.kernel_ns
            .saturating_sub(before.kernel_ns)
            .saturating_add(guest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_never_overflow() {
        assert_eq!(share(1000, 1, 4), 250);
        assert_eq!(share(1000, 3, 4), 750);
        assert_eq!(share(1000, 5, 0), 0);
        assert_eq!(share(u64::MAX, u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(share(u64::MAX, 1, 2), u64::MAX / 2);
    }
}
