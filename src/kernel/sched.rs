//! The scheduler loop: run one task at a time until it blocks, exits or
//! uses its slice; when nothing is runnable, wait in the host event loop
//! for host input (the console), a signal to umlrun or the next deadline.
//!
//! Policy: one run queue; a real-time task (FIFO, RR) runs first, the
//! highest priority and earliest queued, and one that wakes with a higher
//! class or priority ends the running task's turn after its current stop
//! (`rt.rs`, with RR's quantum and the real-time throttle). Otherwise fair
//! shares (`fair.rs`): the runnable task with the smallest virtual runtime
//! runs next, and the CPU time it used (its stub's and the kernel's for
//! it) is charged by its weight (nice).
//! A task runs until it blocks or its slice ends — `SLICE` stops
//! (syscalls and faults), or 10 ms of guest computing without one (the
//! preemption tick, `host/preempt.rs`), or a `sched_yield` with others
//! waiting (then it is passed over once). Every turn, between two slices,
//! fires due deadlines (`timers.rs`), so a task that computes forever
//! delays a sleeper's wake-up by one slice at most; host input is looked
//! at between turns every `HOST_LOOK_EVERY` while busy, at once when idle.
//! Within a slice, due deadlines and pending host input end it early
//! (checked every 32 stops).

use std::time::Instant;

use super::core::{Kernel, Shutdown};
use super::signal::{SigInfo, SIGKILL, SIGSEGV};
use super::task::{status_signaled, Pid, TaskState, Wait};
use super::timers::TimerKey;
use crate::mm::GuestVirt;
use crate::mm::{FaultError, PAGE, PROT_READ, PROT_WRITE};
use crate::platform::{Fault, Regs, Stop};
use crate::syscalls::{self, Outcome};

/// Stops (syscalls and faults) a task may take before others get a turn.
const SLICE: u32 = 200;

/// How long a busy kernel goes at most without looking at host input
/// between turns: an epoll_wait(2) every turn would cost a ping-pong
/// between two tasks a host syscall per wake-up (issue 11); an idle
/// kernel looks at once, as it waits there.
const HOST_LOOK_EVERY: std::time::Duration = std::time::Duration::from_micros(500);

/// How often an idle kernel at most hands freed heap back to the host.
const HEAP_TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A guest that did nothing for this long has settled: the platform drops
/// the spare guest it keeps for the next fork (see `Kernel::idle_platform`).
const SETTLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Kernel {
    /// Runs the guest until it powers off, halts, reboots or init dies.
    pub fn run(&mut self) -> Shutdown {
        loop {
            if let Some(s) = self.shutdown {
                return s;
            }
            if crate::host::signals::termination_requested() {
                return Shutdown::Terminated;
            }
            if self.tasks.values().all(|t| !t.is_alive()) {
                return Shutdown::InitDied(0);
            }
            // mconsole `stop`: no task runs, only the console is served.
            if self.mconsole.frozen {
                self.settle_cpu();
                self.mconsole_wait_frozen(std::time::Duration::from_millis(500));
                self.cpu_mark = None;
                continue;
            }
            // Every wake-up went straight to the run queue (wait queues,
            // signals, deadlines): an empty one is really idle.
            let idle = self.runq.is_empty();
            if idle {
                // The turns so far are charged before the idle wait.
                self.settle_cpu();
                // Idle time prepares the next fork's guest, or once the
                // guest settled gives it back.
                self.idle_platform();
                self.trim_heap_when_idle();
            }
            self.budget_tick();
            // One clock read serves a busy turn's look (a host look is
            // a zero-timeout poll then).
            let now = Instant::now();
            let timeout = if idle {
                // A budget in force and the network stack's timers are
                // followed while idle too.
                let net = self.net_deadline();
                self.next_deadline()
                    .into_iter()
                    .chain(self.budget_deadline())
                    .chain(net)
                    .min()
            } else {
                Some(now)
            };
            if idle || self.console_always_ready || now >= self.host_look_at {
                self.poll_host(timeout);
                self.host_look_at = Instant::now() + HOST_LOOK_EVERY;
            }
            if idle {
                // What the kernel did idle is no task's.
                self.cpu_mark = None;
            }
            self.fire_deadlines();
            self.net_timers();
            if let Some(tid) = self.pick_next() {
                self.run_task(tid);
                // Its CPU time moved: ITIMER_VIRTUAL/ITIMER_PROF.
                self.run_cpu_itimers(tid);
            }
        }
    }

    /// A burst of guest work (a find over the disk, a build) grows umlrun's
    /// heap; freed, it stays with the process unless handed back. Once the
    /// guest goes idle, at most once a second and only after some work,
    /// the free heap pages go back to the host (an idle instance's own
    /// memory is what density is made of).
    fn trim_heap_when_idle(&mut self) {
        let (work, at) = self.heap_trimmed;
        if self.activity() != work && at.elapsed() >= HEAP_TRIM_EVERY {
            crate::host::misc::release_free_heap();
            self.heap_trimmed = (self.activity(), Instant::now());
        }
    }

    /// Tells the platform the kernel is idle, and whether the guest has
    /// settled: no syscall and no fault for [`SETTLE_AFTER`]. A busy
    /// guest's pauses keep a spare guest ready for its next fork; a settled
    /// one gives it back (on the seccomp platform a spare is a process of
    /// two threads, two seccomp filters and pages of its shared area: a
    /// tenth of what an idle instance costs the host), and the first fork
    /// after it spawns its stub (a few ms).
    fn idle_platform(&mut self) {
        let act = self.activity();
        let now = Instant::now();
        if act != self.idle_since.0 {
            self.idle_since = (act, now, false);
        }
        let settled = now.duration_since(self.idle_since.1) >= SETTLE_AFTER;
        if settled && !self.idle_since.2 {
            for mm in self.mms.values_mut() {
                mm.guest.settle();
            }
        }
        self.idle_since.2 = settled;
        self.platform.idle(settled);
    }

    /// The earliest moment an idle kernel must wake up without host input:
    /// a guest deadline, a look at the host terminal's size when umlrun
    /// gets no SIGWINCH for it, handing freed heap back after some work,
    /// the moment the guest has settled (once per idle spell).
    fn next_deadline(&self) -> Option<Instant> {
        let trim =
            (self.activity() != self.heap_trimmed.0).then(|| self.heap_trimmed.1 + HEAP_TRIM_EVERY);
        let settle = (!self.idle_since.2).then(|| self.idle_since.1 + SETTLE_AFTER);
        [
            self.timers.next(),
            self.console.next_size_check(),
            trim,
            settle,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles the deadlines that passed: a blocked task whose timeout
    /// came runs again (its syscall sees the time and returns), a real-time
    /// timer sends its signal.
    fn fire_deadlines(&mut self) {
        let now = Instant::now();
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Task(tid) => {
                    let due = self.tasks.get(&tid).is_some_and(|t| match t.state {
                        TaskState::Blocked(w) => w.deadline().is_some_and(|d| d <= now),
                        _ => false,
                    });
                    if due {
                        self.make_runnable(tid);
                    }
                }
                TimerKey::RealTimer(tgid) => self.fire_real_timer(tgid),
                TimerKey::TimerFd(id) => self.fire_timerfd(id),
                TimerKey::PosixTimer(tgid, id) => self.fire_posix_timer(tgid, id),
                TimerKey::Watchdog => self.watchdog_expired(),
            }
        }
    }

    /// A deadline has passed (the running task's slice should end).
    fn deadline_passed(&self) -> bool {
        self.timers.next().is_some_and(|d| d <= Instant::now())
    }

    pub fn make_runnable(&mut self, tid: Pid) {
        if let Some(t) = self.tasks.get_mut(&tid) {
            if matches!(t.state, TaskState::Blocked(_)) || t.state == TaskState::Runnable {
                t.state = TaskState::Runnable;
                if !self.runq.contains(&tid) {
                    self.runq.push_back(tid);
                }
                self.check_preempt(tid);
            }
        }
    }

    /// The registers of `tid`, wherever they are now.
    pub fn regs(&mut self, tid: Pid) -> Regs {
        let Ok(t) = self.task(tid) else {
            return Regs::default();
        };
        let (mmid, saved) = (t.mm, t.regs);
        match self.mms.get(&mmid) {
            Some(mm) if mm.loaded == Some(tid) => *mm.guest.regs(),
            _ => saved,
        }
    }

    pub fn set_regs(&mut self, tid: Pid, r: Regs) {
        let Ok(t) = self.task_mut(tid) else { return };
        let mmid = t.mm;
        t.regs = r;
        if let Some(mm) = self.mms.get_mut(&mmid) {
            if mm.loaded == Some(tid) {
                *mm.guest.regs_mut() = r;
            }
        }
    }

    /// Puts `tid`'s registers into its stub, saving the thread that was
    /// there (threads of one process share one stub, as in UML).
    pub fn load(&mut self, tid: Pid) -> bool {
        let Ok(t) = self.task(tid) else { return false };
        let mmid = t.mm;
        let Some(mm) = self.mms.get_mut(&mmid) else {
            return false;
        };
        // The common case, checked before copying anything (the FP state
        // is half a kilobyte and more): the stub holds this thread.
        if mm.loaded == Some(tid) {
            return true;
        }
        let Ok(t) = self.task(tid) else { return false };
        let (regs, fp) = (t.regs, t.fp.clone());
        let Some(mm) = self.mms.get_mut(&mmid) else {
            return false;
        };
        if let Some(prev) = mm.loaded.take() {
            let r = *mm.guest.regs();
            let f = mm.guest.fpregs().ok();
            if let Some(p) = self.tasks.get_mut(&prev) {
                p.regs = r;
                p.fp = f;
            }
        }
        let mm = self.mms.get_mut(&mmid).expect("mm");
        *mm.guest.regs_mut() = regs;
        if let Some(fp) = fp {
            if let Err(e) = mm.guest.set_fpregs(&fp) {
                log::warn!("restoring FP state of {tid}: {e}");
            }
        }
        mm.loaded = Some(tid);
        true
    }

    /// Applies queued host-mapping changes to `tid`'s stub.
    pub fn flush_mappings(&mut self, tid: Pid) -> bool {
        self.remap_copied_up();
        let Ok(mm) = self.mm_of(tid) else {
            return false;
        };
        if !mm.aspace.has_pending_ops() {
            return true;
        }
        let ops = mm.aspace.take_ops();
        match mm.guest.apply(&ops) {
            Ok(()) => true,
            Err(e) => {
                crate::log_limited!(log::Level::Error, "task {tid}: mapping change failed: {e}");
                false
            }
        }
    }

    /// Takes the task to run next off the run queue: a real-time one first
    /// (`rt.rs`), else the smallest virtual runtime, each raised to the
    /// sleeper floor first (`fair.rs`).
    fn pick_next(&mut self) -> Option<Pid> {
        if let Some(i) = self.pick_rt() {
            return self.runq.remove(i);
        }
        let floor = self.fair.floor();
        let skip = self.fair.skip.take();
        let tasks = &mut self.tasks;
        // Real-time tasks come last here: only a throttle with no fair
        // task left could reach them, and pick_rt has already said no.
        let queue = self.runq.iter().map(|&p| {
            let v = match tasks.get_mut(&p) {
                Some(t) if super::schedattr::is_rt(t.sched.policy) => u64::MAX,
                Some(t) => {
                    t.vruntime = t.vruntime.max(floor);
                    t.vruntime
                }
                None => u64::MAX,
            };
            (p, v)
        });
        let i = super::fair::pick(queue, skip)?;
        self.runq.remove(i)
    }

    /// Runs `tid` for a slice. The CPU time the kernel thread spends on it
    /// (serving its syscalls, faults and signals, and the ptrace calls that
    /// switch to it) is charged to it as system time, as Linux would: its
    /// stub's host figures show only the guest side. Both are charged to
    /// its virtual runtime. A slice starts where the kernel's last busy
    /// turn ended (the scheduler's own work in between goes to the turns,
    /// as Linux's tick would charge it). The clocks are not read each
    /// turn: `cpuacct.rs` notes short turns and charges them together.
    fn run_task(&mut self, tid: Pid) {
        let rt = self
            .tasks
            .get(&tid)
            .is_some_and(|t| super::schedattr::is_rt(t.sched.policy));
        let start = Instant::now();
        if self.cpu_mark.is_none() {
            self.cpu_mark = Some(crate::host::clock::thread_cpu_ns());
        }
        self.rt.current = Some(tid);
        self.rt.current_is_rt = rt;
        self.run_task_slice(tid);
        self.rt.current = None;
        self.rt.need_resched = false;
        self.rt.requeue_tail = false;
        let wall = start.elapsed();
        // A real-time task's turn is charged at once: its quantum and
        // the throttle follow it turn by turn.
        let charged = rt.then(|| self.charged_cpu(tid));
        self.note_turn(tid, wall, rt);
        if let Some(before) = charged {
            let cpu = self.charged_cpu(tid).since(before);
            let wall = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
            self.rt_charge(tid, wall, cpu);
        }
        let tasks = &self.tasks;
        let runnable = self
            .runq
            .iter()
            .chain(std::iter::once(&tid))
            .filter_map(|p| tasks.get(p))
            .filter(|t| t.state == TaskState::Runnable && !super::schedattr::is_rt(t.sched.policy))
            .map(|t| t.vruntime);
        self.fair.advance(runnable);
    }

    fn run_task_slice(&mut self, tid: Pid) {
        match self.task(tid).map(|t| t.state) {
            Ok(TaskState::Runnable) => {}
            _ => return,
        }
        // A blocked syscall is retried (or interrupted) first; it leaves
        // the wait queues it slept on (a retry registers again).
        if let Some((nr, args)) = self.task_mut(tid).ok().and_then(|t| t.syscall.take()) {
            self.leave_queues(tid);
            if self.has_deliverable_signal(tid) {
                self.interrupt_syscall(tid, nr, args);
            } else if !self.finish_syscall(tid, nr, args) {
                return;
            }
        }
        let mut yielded = false;
        for stops in 0..SLICE {
            if !self.deliver_signals(tid) {
                return;
            }
            if !matches!(self.task(tid).map(|t| t.state), Ok(TaskState::Runnable)) {
                return;
            }
            if !self.load(tid) || !self.flush_mappings(tid) {
                self.kill_process(tid, SIGKILL);
                return;
            }
            let stop = self.mm_of(tid).map(|mm| mm.guest.switch());
            let stop = match stop {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    crate::log_limited!(log::Level::Error, "task {tid}: stub failed: {e}");
                    self.kill_process(tid, SIGKILL);
                    return;
                }
                Err(_) => return,
            };
            match stop {
                Stop::Syscall { nr, args } => {
                    self.counters.syscalls += 1;
                    if let Ok(t) = self.task_mut(tid) {
                        t.syscalls += 1;
                    }
                    if syscalls::refuse_int80(self, tid) {
                        continue;
                    }
                    if !self.finish_syscall(tid, nr, args) {
                        return;
                    }
                }
                Stop::Fault(f) => self.guest_fault(tid, f),
                Stop::Signal(sig) => {
                    // The preemption tick (or another host signal, never
                    // delivered to the guest): let others run.
                    log::trace!("task {tid}: host signal {sig} at the stub");
                    break;
                }
                Stop::Exited(code) | Stop::Killed(code) => {
                    crate::log_limited!(log::Level::Warn, "task {tid}: stub died ({code})");
                    self.mark_stub_dead(tid);
                    self.exit_group(tid, status_signaled(SIGKILL, false));
                    return;
                }
            }
            if self.shutdown.is_some() {
                return;
            }
            if std::mem::take(&mut self.yield_now) && !self.runq.is_empty() {
                // A real-time task goes to the tail of its priority instead.
                if !self.rt.current_is_rt {
                    self.fair.skip = Some(tid);
                }
                yielded = true;
                break;
            }
            // A task that pre-empts this one became runnable (`rt.rs`).
            if self.rt.need_resched {
                break;
            }
            // Deadlines and host input get a look every few stops (an
            // epoll_wait(2) each stop would cost more than a fast syscall
            // round trip).
            if stops % 32 == 31
                && (self.deadline_passed() || (!self.runq.is_empty() && self.host_input_pending()))
            {
                break;
            }
        }
        self.requeue_after_turn(tid, yielded);
    }

    /// Runs a syscall handler and stores its result. False when the task
    /// does not go on running (blocked, exited, stopped).
    fn finish_syscall(&mut self, tid: Pid, nr: u64, args: [u64; 6]) -> bool {
        let outcome = self.dispatch_under_pressure(tid, nr, args);
        if let Some(victim) = self.oom_victim.take() {
            log::info!("out of memory in a syscall: killing task {victim}");
            self.kill_process(victim, SIGKILL);
            return false;
        }
        match outcome {
            Outcome::Return(v) => {
                let mut r = self.regs(tid);
                r.rax = v as u64;
                self.set_regs(tid, r);
                matches!(self.task(tid).map(|t| t.state), Ok(TaskState::Runnable))
            }
            Outcome::Block(w) => {
                if let Ok(t) = self.task_mut(tid) {
                    t.syscall = Some((nr, args));
                    t.state = TaskState::Blocked(w);
                }
                if let Some(d) = w.deadline() {
                    self.timers.set(TimerKey::Task(tid), d);
                }
                // A signal that came while it ran (one it sent itself:
                // SIGTTOU, a kill of its own group) ends the wait at once,
                // as Linux's signal_pending() check before sleeping does.
                if w != Wait::Vfork && self.has_deliverable_signal(tid) {
                    self.make_runnable(tid);
                }
                false
            }
            Outcome::NoReturn => matches!(self.task(tid).map(|t| t.state), Ok(TaskState::Runnable)),
        }
    }

    /// A fault the guest took: demand paging, copy-on-write, or a signal.
    fn guest_fault(&mut self, tid: Pid, f: Fault) {
        self.counters.faults += 1;
        if f.signo != SIGSEGV {
            self.force_signal(
                tid,
                SigInfo {
                    signo: f.signo,
                    code: f.code,
                    addr: f.addr,
                    ..Default::default()
                },
            );
            return;
        }
        let page = f.addr & !(PAGE - 1);
        let Ok(mm) = self.mm_of(tid) else { return };
        let write = match f.write {
            // The instruction decoder's "write" is only a hint to save a
            // round trip: where the guest may not write it is taken as a
            // read, so a decoding mistake can never cost a SIGSEGV (a real
            // write faults again below, as ACCERR on a readable page).
            Some(true) => mm
                .aspace
                .find_vma(GuestVirt(page))
                .is_some_and(|v| v.prot & PROT_WRITE != 0),
            // ptrace does not say: a refused access to a page we mapped
            // readable but not writable is a write.
            _ => {
                f.is_accerr()
                    && mm
                        .aspace
                        .pte(page)
                        .and_then(|p| p.host_prot)
                        .map(u32::from)
                        .is_some_and(|p| p & PROT_READ != 0 && p & PROT_WRITE == 0)
            }
        };
        let reserved = mm.guest.reserved().iter().any(|r| r.contains(&f.addr));
        let keep = self.oom_wait_keep_free();
        let res = if reserved {
            Err(FaultError::Segv { accerr: true })
        } else {
            let id = self.task(tid).map(|t| t.mm).unwrap_or_default();
            let mm = self.mms.get_mut(&id).expect("mm");
            let (start, swapins) = (Instant::now(), self.frames.swap.borrow().pswpin);
            self.frames.keep_free = keep;
            let r = mm
                .aspace
                .handle_fault(GuestVirt(f.addr), write, &mut self.frames);
            self.frames.keep_free = 0;
            if self.frames.swap.borrow().pswpin != swapins {
                // Waiting for a page from swap is a memory stall.
                let full = self.runq.is_empty();
                self.psi.stall(start.elapsed(), full, Instant::now());
            }
            r
        };
        match res {
            Ok(()) => self.oom_wait_done(tid),
            Err(FaultError::Segv { accerr }) => {
                log::debug!("task {tid}: SIGSEGV at {:#x} (write {write})", f.addr);
                self.force_signal(
                    tid,
                    SigInfo {
                        signo: SIGSEGV,
                        code: if accerr { 2 } else { 1 },
                        addr: f.addr,
                        ..Default::default()
                    },
                );
            }
            Err(FaultError::Bus) => self.force_signal(
                tid,
                SigInfo {
                    signo: super::signal::SIGBUS,
                    code: 2,
                    addr: f.addr,
                    ..Default::default()
                },
            ),
            // Reclaim or the OOM killer; the guest faults again if it
            // was not the victim.
            Err(FaultError::Oom) => {
                self.out_of_memory(tid, false);
            }
        }
    }
}
