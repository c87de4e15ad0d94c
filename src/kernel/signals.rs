//! Sending and delivering signals: queueing, default actions (terminate,
//! core, stop, continue, ignore), handler frames, interrupted syscalls.

use super::core::Kernel;
use super::signal::*;
use super::task::{status_signaled, status_stopped, Pid, RestartBlock, TaskState, Wait};
use super::waitq::ALL_EVENTS;
use crate::errno::{Errno, KResult};

/// RLIMIT_SIGPENDING's index in a task's rlimits.
const RLIMIT_SIGPENDING: usize = 11;

impl Kernel {
    /// The first pending signal `tid` does not block.
    fn next_signal(&self, tid: Pid) -> Option<usize> {
        let t = self.tasks.get(&tid)?;
        let mask = t.sigmask.sanitized();
        t.pending.iter().position(|i| !mask.has(i.signo))
    }

    /// True if a signal would interrupt `tid` now (pending, unblocked and
    /// not ignored).
    pub fn has_deliverable_signal(&self, tid: Pid) -> bool {
        let Some(t) = self.tasks.get(&tid) else {
            return false;
        };
        let mask = t.sigmask.sanitized();
        let h = t.sighand.borrow();
        t.pending
            .iter()
            .any(|i| !mask.has(i.signo) && !h.is_ignored(i.signo))
    }

    /// May one more signal be queued for `tid`? Linux counts the queued
    /// signals of the receiver's user against the receiver's
    /// RLIMIT_SIGPENDING (ucounts); so does this, over every task of
    /// that uid. It bounds the kernel memory a guest's signal queues hold:
    /// past it rt_sigqueueinfo is EAGAIN and kill() coalesces.
    pub fn sigpending_room(&self, tid: Pid) -> bool {
        let Some(t) = self.tasks.get(&tid) else {
            return false;
        };
        let (uid, limit) = (t.cred.uid, t.rlimits[RLIMIT_SIGPENDING].0);
        let mut used = 0u64;
        for o in self.tasks.values() {
            if o.cred.uid == uid {
                used = used.saturating_add(o.pending.len() as u64);
                if used >= limit {
                    return false;
                }
            }
        }
        true
    }

    /// Queues `info` for the thread `tid` (standard signals do not queue
    /// twice). Handles SIGKILL/SIGCONT side effects at once, like Linux.
    pub fn send_to_thread(&mut self, tid: Pid, info: SigInfo) {
        let sig = info.signo;
        let Some(t) = self.tasks.get(&tid) else {
            return;
        };
        if !t.is_alive() {
            return;
        }
        let tgid = t.tgid;
        // init gets only the signals it has a handler for (or blocks, to
        // collect them with sigtimedwait): SIGKILL and SIGSTOP included,
        // as Linux's SIGNAL_UNKILLABLE.
        if tgid == 1 && t.sighand.borrow().get(sig).handler == SIG_DFL && !t.sigmask.has(sig) {
            return;
        }
        if sig == SIGCONT || sig == SIGKILL {
            self.continue_process(tgid);
        }
        if matches!(sig, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU) {
            // A stop signal discards a pending SIGCONT and vice versa.
            for th in self.threads(tgid) {
                if let Some(t) = self.tasks.get_mut(&th) {
                    t.pending.retain(|i| i.signo != SIGCONT);
                }
            }
        }
        // SIGCONT's default action happened above: like Linux, it is not
        // queued then, so it interrupts no syscall.
        let ignored = self.tasks.get(&tid).is_some_and(|t| {
            let h = t.sighand.borrow();
            sig != SIGKILL
                && sig != SIGSTOP
                && (h.is_ignored(sig) || sig == SIGCONT && h.get(sig).handler == SIG_DFL)
                && !t.sigmask.has(sig)
        });
        if ignored {
            return;
        }
        let room = self.sigpending_room(tid);
        let t = self.tasks.get_mut(&tid).expect("task");
        // Standard signals are pending at most once; real-time ones queue,
        // up to RLIMIT_SIGPENDING (then, as Linux's kill() past the limit,
        // only once per number: the queue cannot grow).
        let already = t.pending.iter().any(|i| i.signo == sig);
        if !already || (sig >= 32 && room) {
            t.pending.push(info);
        }
        let q = t.signal_q.clone();
        if matches!(t.state, TaskState::Blocked(_)) && !t.sigmask.sanitized().has(sig) {
            self.make_runnable(tid);
        }
        // signalfd readers and pollers look at their pending signals again.
        let sq = self.evhub.signals.clone();
        self.wake_queue(&sq, super::files::POLLIN);
        // rt_sigtimedwait waits for signals it blocks.
        self.wake_queue(&q, ALL_EVENTS);
    }

    /// rt_sigtimedwait found none of its signals pending: `tid` sleeps on
    /// its signal queue until one is queued, `deadline` passes or a signal
    /// it does not block comes.
    pub fn sleep_on_signals(
        &mut self,
        tid: Pid,
        deadline: Option<std::time::Instant>,
    ) -> KResult<Wait> {
        let q = self.task(tid)?.signal_q.clone();
        self.wait_on(tid, &q, ALL_EVENTS);
        Ok(Wait::Queue(deadline))
    }

    /// Sends to a process: to the first thread that does not block it.
    pub fn send_to_process(&mut self, tgid: Pid, info: SigInfo) {
        let threads = self.threads(tgid);
        let target = threads
            .iter()
            .copied()
            .find(|t| {
                self.tasks
                    .get(t)
                    .is_some_and(|t| t.is_alive() && !t.sigmask.has(info.signo))
            })
            .or_else(|| threads.first().copied());
        if let Some(t) = target {
            self.send_to_thread(t, info);
        }
    }

    /// May `sender` signal `target` (Linux's `kill_ok_by_cred`)? Root may
    /// signal anyone; others only a process whose real or saved uid is
    /// their real or effective uid; SIGCONT within the session always.
    pub fn may_signal(&self, sender: Pid, target: Pid, sig: i32) -> bool {
        let (Some(s), Some(t)) = (self.tasks.get(&sender), self.tasks.get(&target)) else {
            return false;
        };
        let (sc, tc) = (&s.cred, &t.cred);
        sc.euid == 0
            || [sc.uid, sc.euid]
                .iter()
                .any(|u| *u == tc.uid || *u == tc.suid)
            || sig == SIGCONT && s.sid == t.sid
    }

    /// kill(2) semantics for pid > 0, 0, -1, < -1. ESRCH if no process
    /// matches, EPERM if the caller may signal none of them.
    pub fn kill(&mut self, sender: Pid, pid: i32, sig: i32) -> KResult<()> {
        if !(0..=NSIG).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        let (spid, suid) = {
            let t = self.task(sender)?;
            (t.tgid, t.cred.uid)
        };
        // -i32::MIN is no process group (Linux answers ESRCH).
        if pid == i32::MIN {
            return Err(Errno::ESRCH);
        }
        let targets: Vec<Pid> = if pid > 0 {
            self.tasks
                .get(&pid)
                .filter(|t| t.is_leader() && t.state != TaskState::Dead) // a zombie still exists
                .map(|t| vec![t.tgid])
                .unwrap_or_default()
        } else if pid == 0 {
            let pg = self.task(sender)?.pgid;
            self.process_group(pg)
        } else if pid == -1 {
            self.tasks
                .values()
                .filter(|t| t.is_leader() && t.is_alive() && t.tgid != 1 && t.tgid != spid)
                .map(|t| t.tgid)
                .collect()
        } else {
            self.process_group(-pid)
        };
        if targets.is_empty() {
            return Err(Errno::ESRCH);
        }
        let targets: Vec<Pid> = targets
            .into_iter()
            .filter(|&tg| self.may_signal(sender, tg, sig))
            .collect();
        if targets.is_empty() {
            return Err(Errno::EPERM);
        }
        if sig == 0 {
            return Ok(());
        }
        // init only gets signals it has a handler for (send_to_thread).
        for tg in targets {
            self.send_to_process(
                tg,
                SigInfo {
                    signo: sig,
                    code: SI_USER,
                    pid: spid,
                    uid: suid,
                    ..Default::default()
                },
            );
        }
        Ok(())
    }

    /// A process group is orphaned when no member has a parent in another
    /// group of the same session (Linux's `will_become_orphaned_pgrp`;
    /// init as a parent does not count). Terminal stops do not stop it.
    pub fn is_orphaned_pgrp(&self, pgid: Pid) -> bool {
        !self.tasks.values().any(|t| {
            t.is_leader()
                && t.is_alive()
                && t.pgid == pgid
                && t.ppid != 1
                && self
                    .tasks
                    .get(&t.ppid)
                    .is_some_and(|p| p.is_alive() && p.pgid != pgid && p.sid == t.sid)
        })
    }

    /// Live processes in process group `pgid`.
    pub fn process_group(&self, pgid: Pid) -> Vec<Pid> {
        self.tasks
            .values()
            .filter(|t| t.is_leader() && t.is_alive() && t.pgid == pgid)
            .map(|t| t.tgid)
            .collect()
    }

    /// Sends a signal to every process of a process group (terminal ISIG).
    pub fn signal_group(&mut self, pgid: Pid, sig: i32) {
        for tg in self.process_group(pgid) {
            if tg == 1 {
                continue;
            }
            self.send_to_process(
                tg,
                SigInfo {
                    signo: sig,
                    code: SI_KERNEL,
                    ..Default::default()
                },
            );
        }
    }

    /// A synchronous signal caused by the task itself (fault): if it is
    /// blocked or ignored, the default action happens anyway, as in Linux.
    pub fn force_signal(&mut self, tid: Pid, info: SigInfo) {
        let info = SigInfo {
            forced: true,
            ..info
        };
        let Some(t) = self.tasks.get_mut(&tid) else {
            return;
        };
        let sig = info.signo;
        let blocked = t.sigmask.has(sig);
        let ign = t.sighand.borrow().get(sig).handler == SIG_IGN;
        if blocked || ign {
            t.sigmask.del(sig);
            t.sighand.borrow_mut().set(sig, SigAction::default());
        }
        t.pending.retain(|i| i.signo != sig);
        t.pending.insert(0, info);
    }

    /// A blocked syscall met a signal: restart it after the handler if
    /// SA_RESTART allows, else fail it with EINTR. A relative sleep with no
    /// handler to run (a stop, SIGCONT) resumes through restart_syscall
    /// with its first deadline, as Linux's ERESTART_RESTARTBLOCK does.
    pub fn interrupt_syscall(&mut self, tid: Pid, nr: u64, args: [u64; 6]) {
        self.pipes.forget_waiter(tid);
        let pi = pi_futex_interrupted(self, tid, nr, args);
        self.futexes.remove(tid);
        let Some(t) = self.tasks.get(&tid) else {
            return;
        };
        // The signal that will act: the first one not blocked nor ignored.
        let mask = t.sigmask.sanitized();
        let h = t.sighand.borrow();
        let Some(sig) = t
            .pending
            .iter()
            .map(|i| i.signo)
            .find(|&s| !mask.has(s) && !h.is_ignored(s))
            .or_else(|| self.next_signal(tid).map(|i| t.pending[i].signo))
        else {
            return;
        };
        let act = h.get(sig);
        drop(h);
        let has_handler = !matches!(act.handler, SIG_DFL | SIG_IGN);
        let sock = t.sock_sleep;
        // A socket call that already moved bytes returns them; one under
        // a socket timeout fails with EINTR (after a stop too, signal(7)).
        let restart = match pi {
            Some(PiInterrupted::Restart) => true,
            Some(PiInterrupted::Fail) => false,
            None => {
                sock.moved() == 0
                    && !sock.timed
                    && (!has_handler || act.flags & SA_RESTART != 0 && restartable(nr))
            }
        };
        let block = sleep_restart(t, nr, args);
        let mut r = self.regs(tid);
        if sock.moved() > 0 {
            r.rax = sock.moved();
        } else if restart {
            r.rip -= 2; // back onto the `syscall` instruction
            r.rax = if block.is_some() {
                NR_RESTART_SYSCALL
            } else {
                nr
            };
        } else if pi == Some(PiInterrupted::Fail) {
            r.rax = Errno::EAGAIN.to_syscall_return() as u64;
        } else {
            r.rax = Errno::EINTR.to_syscall_return() as u64;
        }
        // Linux writes the time left whenever a sleep is cut short, also
        // when it restarts (a handler may still make it fail later).
        if let Some(b) = block {
            self.report_remaining_sleep(tid, b);
        }
        self.set_regs(tid, r);
        if let Some(t) = self.tasks.get_mut(&tid) {
            t.block_deadline = None;
            t.sock_sleep = Default::default();
            t.restart = if restart { block } else { None };
        }
    }

    /// Delivers pending signals before `tid` returns to user mode. Returns
    /// false when the task no longer runs (killed or stopped).
    pub fn deliver_signals(&mut self, tid: Pid) -> bool {
        while let Some(idx) = self.next_signal(tid) {
            let t = self.tasks.get_mut(&tid).expect("task");
            let mut info = t.pending.remove(idx);
            self.ptimer_signal_taken(tid, &mut info);
            let t = self.tasks.get_mut(&tid).expect("task");
            let sig = info.signo;
            let act = t.sighand.borrow().get(sig);
            if act.handler == SIG_IGN && sig != SIGKILL && sig != SIGSTOP {
                continue;
            }
            if act.handler == SIG_DFL || sig == SIGKILL || sig == SIGSTOP {
                // init never takes a default action for a signal sent to
                // it (one queued while blocked, its handler reset since);
                // its own faults do kill it.
                if t.tgid == 1 && !info.forced {
                    continue;
                }
                match default_action(sig) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Stop => {
                        let (tgid, pgid) = (t.tgid, t.pgid);
                        // Orphaned process groups ignore terminal stops.
                        if sig != SIGSTOP && self.is_orphaned_pgrp(pgid) {
                            continue;
                        }
                        self.stop_process(tgid, sig);
                        return false;
                    }
                    DefaultAction::Terminate | DefaultAction::CoreDump => {
                        let core = default_action(sig) == DefaultAction::CoreDump;
                        self.exit_group(tid, status_signaled(sig, core));
                        return false;
                    }
                }
            }
            if !self.setup_frame(tid, &info, &act) {
                self.exit_group(tid, status_signaled(SIGSEGV, true));
                return false;
            }
            return true;
        }
        // sigsuspend's or pselect's temporary mask ends once no handler
        // ran (with one, the frame carries the caller's mask).
        if let Some(t) = self.tasks.get_mut(&tid) {
            if let Some(m) = t.saved_mask.take() {
                t.sigmask = m;
            }
        }
        true
    }

    /// Builds the rt_sigframe and points the task at the handler.
    fn setup_frame(&mut self, tid: Pid, info: &SigInfo, act: &SigAction) -> bool {
        if !self.load(tid) {
            return false;
        }
        let regs = self.regs(tid);
        let fp = match self.mm_of(tid).map(|mm| mm.guest.fpregs()) {
            Ok(Ok(fp)) => fp,
            _ => return false,
        };
        let t = self.tasks.get_mut(&tid).expect("task");
        let old_mask = t.saved_mask.take().unwrap_or(t.sigmask);
        let Some(frame) = build_frame(&regs, &fp, info, act, old_mask, &t.altstack) else {
            log::debug!("task {tid}: no room for a signal frame");
            return false;
        };
        let mut newmask = SigSet(t.sigmask.0 | act.mask.0);
        if act.flags & SA_NODEFER == 0 {
            newmask.add(info.signo);
        }
        t.sigmask = newmask.sanitized();
        if act.flags & SA_RESETHAND != 0 {
            // Back to SIG_DFL; the flags and mask stay, as on Linux.
            t.sighand
                .borrow_mut()
                .set(info.signo, SigAction { handler: 0, ..*act });
        }
        if self.write_user(tid, frame.addr, &frame.bytes).is_err()
            || self
                .write_user(tid, frame.fp_addr, &frame.fp_bytes)
                .is_err()
        {
            log::debug!(
                "task {tid}: cannot write a signal frame at {:#x}",
                frame.addr
            );
            return false;
        }
        self.set_regs(tid, frame.regs);
        true
    }

    /// Stops every thread of a process (SIGSTOP & co.) and tells the parent.
    pub fn stop_process(&mut self, tgid: Pid, sig: i32) {
        for th in self.threads(tgid) {
            if let Some(t) = self.tasks.get_mut(&th) {
                if t.is_alive() {
                    if let TaskState::Blocked(_) = t.state {
                        // The syscall restarts after SIGCONT.
                    }
                    if t.state == TaskState::Runnable || matches!(t.state, TaskState::Blocked(_)) {
                        t.state = TaskState::Stopped;
                    }
                }
            }
        }
        self.runq.retain(|p| {
            self.tasks
                .get(p)
                .is_some_and(|t| t.state == TaskState::Runnable)
        });
        let ppid = self.tasks.get(&tgid).map(|t| t.ppid).unwrap_or(0);
        if let Some(l) = self.tasks.get_mut(&tgid) {
            l.stop_report = Some(status_stopped(sig));
        }
        self.notify_parent(ppid, tgid, super::signal::CLD_STOPPED, sig);
    }

    /// SIGCONT: resumes a stopped process.
    pub fn continue_process(&mut self, tgid: Pid) {
        let mut resumed = false;
        for th in self.threads(tgid) {
            if let Some(t) = self.tasks.get_mut(&th) {
                t.pending
                    .retain(|i| !matches!(i.signo, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU));
                if t.state == TaskState::Stopped {
                    // A syscall it was blocked in is retried from the start.
                    t.state = TaskState::Runnable;
                    resumed = true;
                    if !self.runq.contains(&th) {
                        self.runq.push_back(th);
                    }
                }
            }
        }
        if resumed {
            // A resumed real-time thread may pre-empt the running task.
            for th in self.threads(tgid) {
                self.check_preempt(th);
            }
            let ppid = self.tasks.get(&tgid).map(|t| t.ppid).unwrap_or(0);
            if let Some(l) = self.tasks.get_mut(&tgid) {
                l.cont_report = true;
                l.stop_report = None;
            }
            self.notify_parent(ppid, tgid, super::signal::CLD_CONTINUED, SIGCONT);
        }
    }

    /// SIGCHLD to `ppid` about `child`, unless the parent asked not to.
    pub fn notify_parent(&mut self, ppid: Pid, child: Pid, code: i32, status: i32) {
        let Some(p) = self.tasks.get(&ppid) else {
            return;
        };
        let act = p.sighand.borrow().get(SIGCHLD);
        if (code == super::signal::CLD_STOPPED || code == super::signal::CLD_CONTINUED)
            && act.flags & SA_NOCLDSTOP != 0
        {
            self.wake_child_waiters(ppid);
            return;
        }
        self.send_to_process(
            ppid,
            SigInfo {
                signo: SIGCHLD,
                code,
                pid: child,
                status,
                ..Default::default()
            },
        );
        self.wake_child_waiters(ppid);
    }

    /// rt_sigreturn: restores the state saved in the frame at rsp.
    pub fn sigreturn(&mut self, tid: Pid) -> KResult<()> {
        let regs = self.regs(tid);
        let mut uc = vec![0u8; UCONTEXT_SIZE];
        self.read_user(tid, regs.rsp, &mut uc)?;
        let back = parse_sigreturn(&uc, &regs);
        if back.fp_addr != 0 {
            let mut fp = vec![0u8; 512];
            self.read_user(tid, back.fp_addr, &mut fp)?;
            let max_xstate = self.mm_of(tid).map_or(0, |mm| mm.guest.fp_frame_size());
            fp.resize(super::signal::fpstate_len(&fp, max_xstate), 0);
            self.read_user(tid, back.fp_addr + 512, &mut fp[512..])?;
            let fp = super::signal::fpstate_from_frame(&fp);
            if self.load(tid) {
                let _ = self.mm_of(tid).map(|mm| mm.guest.set_fpregs(&fp));
            }
        }
        // uc_stack.ss_flags etc. are not restored (sigaltstack via frame).
        self.set_regs(tid, back.regs);
        let t = self.task_mut(tid)?;
        t.sigmask = back.mask;
        // A sleep cut short before this handler is not resumed after it:
        // restart_syscall fails with EINTR (Linux's do_no_restart_syscall).
        t.restart = None;
        Ok(())
    }
}

/// restart_syscall(2): what a sleep stopped or interrupted without a
/// handler resumes with.
pub const NR_RESTART_SYSCALL: u64 = 219;

/// Syscalls SA_RESTART may restart (not the sleeps and waits Linux
/// always fails with EINTR when a handler runs).
fn restartable(nr: u64) -> bool {
    !matches!(
        nr,
        7 | 23 | 34 | 35 | 130 | 219 | 230 | 232 | 270 | 271 | 281 // poll select pause nanosleep sigsuspend restart_syscall clock_nanosleep epoll_wait pselect ppoll epoll_pwait
        | 65 | 69 | 70 | 220 // SysV IPC: semop msgsnd msgrcv semtimedop (never restarted, signal(7))
    )
}

/// How a signal ends a PI futex sleep, where Linux does not follow
/// SA_RESTART: FUTEX_LOCK_PI(2) and a FUTEX_WAIT_REQUEUE_PI not yet
/// requeued restart after the handler (ERESTARTNOINTR); one already
/// requeued to its PI futex fails with EAGAIN (Linux's EWOULDBLOCK, as a
/// restart would find the word changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PiInterrupted {
    Restart,
    Fail,
}

fn pi_futex_interrupted(k: &Kernel, tid: Pid, nr: u64, args: [u64; 6]) -> Option<PiInterrupted> {
    const NR_FUTEX: u64 = 202;
    if nr != NR_FUTEX {
        return None;
    }
    // FUTEX_CMD_MASK: without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
    match args[1] & !(128 | 256) {
        6 | 13 => Some(PiInterrupted::Restart), // LOCK_PI, LOCK_PI2
        11 if k.futex_requeued_pi(tid) => Some(PiInterrupted::Fail),
        11 => Some(PiInterrupted::Restart), // WAIT_REQUEUE_PI
        _ => None,
    }
}

/// The restart block of an interrupted relative sleep: nanosleep,
/// clock_nanosleep without TIMER_ABSTIME (an absolute one simply runs
/// again), or a restart_syscall already resuming one.
fn sleep_restart(t: &super::task::Task, nr: u64, args: [u64; 6]) -> Option<RestartBlock> {
    let rem = match nr {
        35 => args[1],
        230 if args[1] & 1 == 0 => args[3],
        NR_RESTART_SYSCALL => return t.restart,
        _ => return None,
    };
    Some(RestartBlock {
        deadline: t.block_deadline?,
        rem,
    })
}

impl Kernel {
    /// A sleep was cut short: the time left goes to its `rem`.
    fn report_remaining_sleep(&mut self, tid: Pid, b: RestartBlock) {
        if b.rem == 0 {
            return;
        }
        let left = b
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        let mut buf = [0u8; 16];
        buf[..8].copy_from_slice(&left.as_secs().to_le_bytes());
        buf[8..].copy_from_slice(&(left.subsec_nanos() as u64).to_le_bytes());
        let _ = self.write_user(tid, b.rem, &buf);
    }
}
