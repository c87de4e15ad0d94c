//! Process life: fork/vfork/clone, exit and exit_group, zombies, wait4,
//! reparenting to init.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::core::{Kernel, Mm, Shutdown};
use super::signal::{SigInfo, CLD_DUMPED, CLD_EXITED, CLD_KILLED, SIGCHLD};
use super::task::{Pid, Task, TaskState, Wait, STATUS_CONTINUED};
use super::waitq::ALL_EVENTS;
use crate::errno::{Errno, KResult};
use crate::mm::GuestVirt;
use crate::platform::{Guest, Regs};

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;

pub const WNOHANG: u64 = 1;
pub const WUNTRACED: u64 = 2;
pub const WEXITED: u64 = 4;
pub const WCONTINUED: u64 = 8;
pub const WNOWAIT: u64 = 0x0100_0000;
pub const WALL: u64 = 0x4000_0000;

pub struct CloneArgs {
    pub flags: u64,
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
}

impl Kernel {
    /// A new platform guest for a fresh address space.
    pub fn new_guest(&mut self) -> KResult<Box<dyn Guest>> {
        self.platform.new_guest().map_err(|e| {
            log::error!("cannot start a guest process: {e}");
            Errno::EAGAIN
        })
    }

    /// fork, vfork and clone. Returns the child's tid.
    pub fn clone_task(&mut self, parent: Pid, a: CloneArgs) -> KResult<Pid> {
        let f = a.flags;
        let from_init = self.task(parent)?.tgid == 1;
        super::clonecheck::check_clone(f, a.tls, from_init)?;
        // The task cap (sized to guest memory) and, for all but root, the
        // caller's RLIMIT_NPROC over its user's tasks: EAGAIN, as Linux.
        let mem = self.physmem.frames_total().saturating_mul(4096);
        if self.tasks.len() >= super::clonecheck::max_tasks(mem) {
            return Err(Errno::EAGAIN);
        }
        let p = self.task(parent)?;
        if p.cred.euid != 0 {
            let (uid, nproc) = (p.cred.uid, p.rlimits[6].0);
            let mine = self
                .tasks
                .values()
                .filter(|t| t.cred.uid == uid && t.is_alive())
                .count();
            if mine as u64 >= nproc {
                return Err(Errno::EAGAIN);
            }
        }
        // The parent's registers and FP state are in its stub now.
        self.load(parent);
        let mut regs = self.regs(parent);
        let fp = self.mm_of(parent)?.guest.fpregs().ok();
        let p = self.task(parent)?;
        let pmm = p.mm;
        let mm = if f & CLONE_VM != 0 {
            self.mms.get_mut(&pmm).ok_or(Errno::EFAULT)?.users += 1;
            pmm
        } else {
            // Every page is about to be shared: what a swap pass's reverse
            // map will cost the kernel is made room for first.
            let ptes = self.mms.get(&pmm).map_or(0, |m| m.aspace.pte_count());
            self.budget_note_shared_ptes(ptes);
            let guest = self.new_guest()?;
            let id = self.alloc_mm_id();
            let Kernel {
                mms,
                frames,
                physmem,
                ..
            } = self;
            let pm = mms.get_mut(&pmm).ok_or(Errno::EFAULT)?;
            let mut aspace = pm.aspace.fork(frames, physmem);
            // Both sides touch the same few pages at once; resolving them
            // now rides on the flushes that happen anyway and saves a fault
            // round trip each (two for a read, then a write). Best effort:
            // a page that cannot be resolved now faults as usual later.
            for (addr, write) in fork_hot_pages(&regs) {
                let _ = aspace.handle_fault(GuestVirt(addr), write, frames);
            }
            // The parent's stack is written right after fork returns.
            let _ = pm.aspace.handle_fault(GuestVirt(regs.rsp), true, frames);
            // Its stub's CPU time counts from here (`cpuacct.rs`).
            let cpu_seen = Some(guest.cpu_time_ns());
            let exe_deny = pm.exe_deny.clone();
            mms.insert(
                id,
                Mm {
                    aspace,
                    guest,
                    loaded: None,
                    users: 1,
                    exe_deny,
                    cpu_seen,
                },
            );
            // The parent's private pages just became read-only.
            self.flush_mappings(parent);
            id
        };
        let tid = self.alloc_pid();
        let p = self.task(parent)?;
        let files = if f & CLONE_FILES != 0 {
            p.files.clone()
        } else {
            Rc::new(RefCell::new(p.files.borrow().forked()))
        };
        let fs = if f & CLONE_FS != 0 {
            p.fs.clone()
        } else {
            Rc::new(RefCell::new(p.fs.borrow().clone()))
        };
        let sighand = if f & CLONE_SIGHAND != 0 {
            p.sighand.clone()
        } else {
            Rc::new(RefCell::new(p.sighand.borrow().clone()))
        };
        let (tgid, ppid) = if f & CLONE_THREAD != 0 {
            (p.tgid, p.ppid)
        } else if f & CLONE_PARENT != 0 {
            (tid, p.ppid)
        } else {
            (tid, p.tgid)
        };
        regs.rax = 0;
        if a.stack != 0 {
            regs.rsp = a.stack;
        }
        if f & CLONE_SETTLS != 0 {
            regs.fs_base = a.tls;
        }
        let child = Task {
            tid,
            tgid,
            ppid,
            pgid: p.pgid,
            sid: p.sid,
            mm,
            files,
            fs,
            sighand,
            sigmask: p.sigmask,
            saved_mask: None,
            pending: Vec::new(),
            altstack: if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
                Default::default()
            } else {
                p.altstack
            },
            cred: p.cred.clone(),
            regs,
            fp,
            state: TaskState::Runnable,
            syscall: None,
            exit_status: 0,
            exit_signal: if f & CLONE_THREAD != 0 {
                0
            } else {
                (f & 0xff) as i32
            },
            clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 {
                a.child_tid
            } else {
                0
            },
            robust_list: 0,
            comm: p.comm.clone(),
            cmdline: p.cmdline.clone(),
            exe: p.exe.clone(),
            exe_node: p.exe_node,
            vfork_parent: if f & CLONE_VFORK != 0 {
                Some(parent)
            } else {
                None
            },
            start: Instant::now(),
            stop_report: None,
            cont_report: false,
            itimer: None,
            cpu_itimers: Default::default(),
            posix_timers: Default::default(),
            syscalls: 0,
            block_deadline: None,
            sock_sleep: Default::default(),
            waiting_on: Vec::new(),
            child_q: super::waitq::WaitQueue::new(),
            signal_q: super::waitq::WaitQueue::new(),
            restart: None,
            rlimits: p.rlimits,
            pdeathsig: 0,
            sched: p.sched.forked(),
            vruntime: p.vruntime,
            rr_left_ns: super::schedattr::RR_TIMESLICE_NS,
            no_new_privs: p.no_new_privs,
            securebits: p.securebits,
            cap_bset: p.cap_bset,
            oom_score_adj: p.oom_score_adj,
            oom_score_adj_min: p.oom_score_adj_min,
            child_subreaper: false,
            timer_slack: p.timer_slack,
            personality: p.personality,
            cpu_exit: (0, 0),
            kernel_ns: 0,
            child_cpu: (0, 0),
        };
        let parent_tgid = p.tgid;
        self.tasks.insert(tid, child);
        self.forks += 1;
        if tgid == tid {
            // A new process starts in its parent's cgroup.
            self.cgroups
                .borrow_mut()
                .fork(Some(parent_tgid as u32), tid as u32);
        }
        // From here on the child exists: a bad address is ignored, as
        // Linux ignores it (an error return would leave a task that is
        // never run and never reaped).
        if f & CLONE_PARENT_SETTID != 0 {
            let _ = self.write_u32(parent, a.parent_tid, tid as u32);
        }
        if f & CLONE_CHILD_SETTID != 0 {
            // In the child's address space (the same one for threads).
            let _ = self.write_u32(tid, a.child_tid, tid as u32);
        }
        self.runq.push_back(tid);
        Ok(tid)
    }

    /// Ends one thread. The process ends when its last thread does.
    pub fn exit_thread(&mut self, tid: Pid, status: i32) {
        let Some(t) = self.tasks.get(&tid) else {
            return;
        };
        if !t.is_alive() {
            return;
        }
        let tgid = t.tgid;
        let ctid = t.clear_child_tid;
        let mmid = t.mm;
        // Robust futexes it holds are marked FUTEX_OWNER_DIED first.
        self.exit_robust_list(tid);
        // PI futexes it still owns go to their waiters.
        self.futexes.remove(tid);
        self.exit_pi_owner(tid);
        if ctid != 0 {
            // CLONE_CHILD_CLEARTID: zero it and wake a futex waiter.
            let _ = self.write_u32(tid, ctid, 0);
            // pthread_join sleeps in FUTEX_WAIT on this word.
            self.futex_wake(tid, ctid, usize::MAX);
        }
        self.wake_vfork_parent(tid);
        self.pipes.forget_waiter(tid);
        self.futexes.remove(tid);
        self.locks_task_gone(tid);
        self.leave_queues(tid);
        let others_alive = self
            .threads(tgid)
            .into_iter()
            .any(|th| th != tid && self.tasks.get(&th).is_some_and(|t| t.is_alive()));
        if !others_alive {
            let cpu = self.cpu_ticks(tid);
            if let Some(l) = self.tasks.get_mut(&tgid) {
                l.cpu_exit = cpu;
            }
        }
        // Release the address space reference.
        self.release_mm(tid, mmid);
        let t = self.tasks.get_mut(&tid).expect("task");
        t.pending.clear();
        if t.tid != t.tgid {
            t.state = TaskState::Dead;
            self.tasks.remove(&tid);
            if !others_alive {
                self.process_exited(tgid, status);
            }
            return;
        }
        t.exit_status = status;
        t.state = TaskState::Zombie;
        if !others_alive {
            self.process_exited(tgid, status);
        }
    }

    /// Drops `tid`'s use of address space `mmid`; the last user hands the
    /// guest back to the platform (which may keep it for the next one) and
    /// frees the frames.
    pub fn release_mm(&mut self, tid: Pid, mmid: u64) {
        let Some(mm) = self.mms.get_mut(&mmid) else {
            return;
        };
        if mm.loaded == Some(tid) {
            mm.loaded = None;
        }
        mm.users = mm.users.saturating_sub(1);
        if mm.users == 0 {
            let Mm {
                mut aspace, guest, ..
            } = self.mms.remove(&mmid).expect("mm");
            // Unmap (or kill) first: punching frames that a live stub still
            // maps makes the host walk its page tables.
            self.platform.retire(guest);
            aspace.clear(&mut self.frames);
            self.reap_orphans();
            self.shm_reap();
        }
    }

    /// The whole process is gone: close files, reparent children, tell
    /// the parent.
    fn process_exited(&mut self, tgid: Pid, status: i32) {
        if !self.tasks.contains_key(&tgid) {
            return;
        }
        // It leaves its cgroup (a zombie is in none, as on Linux).
        self.cgroups.borrow_mut().exit(tgid as u32);
        // pidfd pollers look again.
        let q = self.evhub.exits.clone();
        self.wake_queue(&q, super::files::POLLIN);
        let Some(l) = self.tasks.get(&tgid) else {
            return;
        };
        let files = l.files.clone();
        let (ppid, exit_signal, sid) = (l.ppid, l.exit_signal, l.sid);
        // The task's reference and ours: nobody else shares the table.
        if Rc::strong_count(&files) == 2 {
            let owner = files.borrow().owner;
            let entries = files.borrow_mut().take_all();
            for e in entries {
                self.close_entry(owner, e.file);
            }
        }
        if let Some(l) = self.tasks.get_mut(&tgid) {
            l.files = Rc::new(RefCell::new(Default::default()));
        }
        // SEM_UNDO: what the process did to semaphores is undone.
        self.sem_exit(tgid);
        // A session leader's exit hangs up its terminal's session.
        if sid == tgid {
            self.console.session_leader_exited(sid);
            self.pty_session_ended(sid);
        }
        if tgid == 1 {
            log::info!("init exited with status {status:#x}");
            self.panic(
                &super::boot::init_panic_message(status),
                Shutdown::InitDied(status),
            );
            return;
        }
        let orphans: Vec<Pid> = self
            .tasks
            .values()
            .filter(|t| t.ppid == tgid && t.tgid != tgid)
            .map(|t| t.tid)
            .collect();
        let reaper = self.find_reaper(tgid);
        let mut zombie_orphans = false;
        for o in orphans {
            let t = self.tasks.get_mut(&o).expect("task");
            t.ppid = reaper;
            // The new parent hears SIGCHLD, whatever the child's clone
            // asked its old parent for, so a plain wait4 reaps it (Linux's
            // reparent_leader: "we don't want people slaying init").
            if t.is_leader() {
                t.exit_signal = SIGCHLD;
            }
            zombie_orphans |= t.state == TaskState::Zombie;
            let sig = t.pdeathsig;
            if sig > 0 && t.is_alive() {
                self.send_to_process(
                    o,
                    SigInfo {
                        signo: sig,
                        ..Default::default()
                    },
                );
            }
        }
        if zombie_orphans {
            self.send_to_process(
                reaper,
                SigInfo {
                    signo: SIGCHLD,
                    code: CLD_EXITED,
                    ..Default::default()
                },
            );
        }
        // A parent that ignores SIGCHLD (or SA_NOCLDWAIT) reaps at once.
        let auto_reap = self.tasks.get(&ppid).is_some_and(|p| {
            let a = p.sighand.borrow().get(SIGCHLD);
            a.handler == super::signal::SIG_IGN || a.flags & super::signal::SA_NOCLDWAIT != 0
        });
        if zombie_orphans {
            // The reaper has new children to reap.
            self.wake_child_waiters(reaper);
        }
        if auto_reap {
            self.tasks.remove(&tgid);
            // The parent's wait may have nothing left to wait for (ECHILD).
            self.wake_child_waiters(ppid);
            return;
        }
        let code = if status & 0x7f == 0 {
            CLD_EXITED
        } else if status & 0x80 != 0 {
            CLD_DUMPED
        } else {
            CLD_KILLED
        };
        if exit_signal > 0 {
            let st = if code == CLD_EXITED {
                (status >> 8) & 0xff
            } else {
                status & 0x7f
            };
            self.notify_parent(ppid, tgid, code, st);
        }
        self.wake_child_waiters(ppid);
    }

    /// One of `ppid`'s children stopped, continued or exited: its
    /// wait4/waitid callers look again.
    pub fn wake_child_waiters(&mut self, ppid: Pid) {
        if let Some(q) = self.tasks.get(&ppid).map(|t| t.child_q.clone()) {
            self.wake_queue(&q, ALL_EVENTS);
        }
    }

    /// wait4/waitid found nothing to report yet: `tid` sleeps on its
    /// process's child queue until a child changes state (or a signal).
    pub fn sleep_on_children(&mut self, tid: Pid) -> KResult<Wait> {
        let tgid = self.task(tid)?.tgid;
        let q = self.task(tgid)?.child_q.clone();
        self.wait_on(tid, &q, ALL_EVENTS);
        Ok(Wait::Queue(None))
    }

    /// Who adopts the children of exiting process `tgid`: the nearest
    /// living ancestor that is a child subreaper (PR_SET_CHILD_SUBREAPER),
    /// else init (Linux's find_new_reaper).
    fn find_reaper(&self, tgid: Pid) -> Pid {
        let mut p = self.tasks.get(&tgid).map(|t| t.ppid).unwrap_or(1);
        let mut steps = 0;
        while p > 1 && steps < 4096 {
            let Some(t) = self.tasks.get(&p) else { break };
            if t.child_subreaper && t.is_alive() {
                return p;
            }
            p = t.ppid;
            steps += 1;
        }
        1
    }

    /// exit_group and fatal signals: every thread of the process ends.
    pub fn exit_group(&mut self, tid: Pid, status: i32) {
        let Some(tgid) = self.tasks.get(&tid).map(|t| t.tgid) else {
            return;
        };
        for th in self.threads(tgid) {
            if th != tgid {
                self.exit_thread(th, status);
            }
        }
        self.exit_thread(tgid, status);
        self.runq.retain(|p| *p != tid);
    }

    pub fn kill_process(&mut self, tid: Pid, sig: i32) {
        self.exit_group(tid, super::task::status_signaled(sig, false));
    }

    pub fn mark_stub_dead(&mut self, tid: Pid) {
        if let Ok(mm) = self.mm_of(tid) {
            mm.guest.kill();
        }
    }

    /// A vfork child exec'd or exited: its parent may run again.
    pub fn wake_vfork_parent(&mut self, tid: Pid) {
        let Some(p) = self.tasks.get_mut(&tid).and_then(|t| t.vfork_parent.take()) else {
            return;
        };
        self.make_runnable(p);
    }

    /// wait4/waitid: finds a child matching `pid` with something to report,
    /// or None (the caller blocks) or ECHILD.
    pub fn wait_child(&mut self, tid: Pid, pid: i32, options: u64) -> KResult<Option<Waited>> {
        let me = self.task(tid)?;
        let tgid = me.tgid;
        let my_pgid = me.pgid;
        let mut any = false;
        let mut found: Option<(Pid, i32, i32, bool)> = None;
        for c in self.tasks.values() {
            if c.ppid != tgid || !c.is_leader() {
                continue;
            }
            let matches = match pid {
                p if p > 0 => c.tgid == p,
                0 => c.pgid == my_pgid,
                -1 => true,
                p => c.pgid == -p,
            };
            if !matches {
                continue;
            }
            // Without __WALL, clone children that do not signal SIGCHLD are skipped.
            if options & WALL == 0 && c.exit_signal != SIGCHLD && c.exit_signal != 0 {
                continue;
            }
            any = true;
            if c.state == TaskState::Zombie && options & WEXITED != 0 {
                let code = if c.exit_status & 0x7f == 0 {
                    CLD_EXITED
                } else {
                    CLD_KILLED
                };
                found = Some((c.tid, c.exit_status, code, true));
                break;
            }
            if options & WUNTRACED != 0 {
                if let Some(st) = c.stop_report {
                    found = Some((c.tid, st, super::signal::CLD_STOPPED, false));
                    break;
                }
            }
            if options & WCONTINUED != 0 && c.cont_report {
                found = Some((c.tid, STATUS_CONTINUED, super::signal::CLD_CONTINUED, false));
                break;
            }
        }
        let Some((cpid, status, code, reap)) = found else {
            if !any {
                return Err(Errno::ECHILD);
            }
            return Ok(None);
        };
        self.settle_cpu();
        let cpu = match self.tasks.get(&cpid) {
            Some(c) => {
                let own = if reap {
                    c.cpu_exit
                } else {
                    self.cpu_ticks_settled(cpid)
                };
                (own.0 + c.child_cpu.0, own.1 + c.child_cpu.1)
            }
            None => (0, 0),
        };
        if options & WNOWAIT == 0 {
            if reap {
                if let Some(c) = self.tasks.remove(&cpid) {
                    let me = self.tasks.get_mut(&tgid).expect("waiter");
                    me.child_cpu.0 += c.cpu_exit.0 + c.child_cpu.0;
                    me.child_cpu.1 += c.cpu_exit.1 + c.child_cpu.1;
                }
            } else if let Some(c) = self.tasks.get_mut(&cpid) {
                if code == super::signal::CLD_STOPPED {
                    c.stop_report = None;
                } else {
                    c.cont_report = false;
                }
            }
        }
        Ok(Some(Waited {
            pid: cpid,
            status,
            code,
            cpu,
        }))
    }
}

/// What wait4/waitid report of one child.
pub struct Waited {
    pub pid: Pid,
    /// The wait status.
    pub status: i32,
    /// waitid's si_code (CLD_EXITED, CLD_KILLED, ...).
    pub code: i32,
    /// CPU ticks (user, system) of the child and its reaped children
    /// (Linux's RUSAGE_BOTH): the rusage both report.
    pub cpu: (u64, u64),
}

/// The pages a forked child touches first: its stack (written at once,
/// red zone included), its TLS block (glibc's fork writes it in the child)
/// and its code. (address, write).
fn fork_hot_pages(r: &Regs) -> Vec<(u64, bool)> {
    let page = |a: u64| a & !0xfff;
    let mut v = vec![(r.rsp, true)];
    if page(r.rsp.wrapping_sub(128)) != page(r.rsp) {
        v.push((r.rsp.wrapping_sub(128), true));
    }
    if r.fs_base != 0 {
        v.push((r.fs_base, true));
    }
    v.push((r.rip, false));
    v
}

impl Kernel {
    /// CPU ticks (user, system) of `tid`'s process so far: the host's
    /// accounting of its stub (threads share it). Charges the turns not
    /// charged yet first (`cpuacct.rs`).
    pub fn cpu_ticks(&mut self, tid: Pid) -> (u64, u64) {
        self.settle_cpu();
        self.cpu_ticks_settled(tid)
    }

    /// `cpu_ticks` once `settle_cpu` has run (with nothing run since).
    pub fn cpu_ticks_settled(&self, tid: Pid) -> (u64, u64) {
        let Some(t) = self.tasks.get(&tid) else {
            return (0, 0);
        };
        match self.mms.get(&t.mm) {
            Some(mm) => {
                let (user, sys) = mm.guest.cpu_ticks();
                (user, sys + self.kernel_ns_settled(tid) / 10_000_000)
            }
            None => t.cpu_exit,
        }
    }

    /// CPU time (ns) the kernel spent serving `tid`'s process (all its
    /// threads): part of its system time. Charges the turns not charged
    /// yet first (`cpuacct.rs`).
    pub fn kernel_ns(&mut self, tid: Pid) -> u64 {
        self.settle_cpu();
        self.kernel_ns_settled(tid)
    }

    fn kernel_ns_settled(&self, tid: Pid) -> u64 {
        let Some(t) = self.tasks.get(&tid) else {
            return 0;
        };
        self.tasks
            .values()
            .filter(|o| o.tgid == t.tgid)
            .map(|o| o.kernel_ns)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_pages_cover_stack_tls_and_code() {
        let r = Regs {
            rsp: 0x7fff_0000_0040,
            fs_base: 0x4b_0380,
            rip: 0x40_1545,
            ..Regs::default()
        };
        assert_eq!(
            fork_hot_pages(&r),
            vec![
                (0x7fff_0000_0040, true),
                (0x7fff_0000_0040 - 128, true),
                (0x4b_0380, true),
                (0x40_1545, false)
            ]
        );
        let r = Regs {
            rsp: 0x7fff_0000_0800,
            rip: 0x40_1545,
            ..Regs::default()
        };
        assert_eq!(
            fork_hot_pages(&r),
            vec![(0x7fff_0000_0800, true), (0x40_1545, false)]
        );
    }
}
