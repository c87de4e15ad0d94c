//! Out of guest memory: reclaim, then the OOM killer.
//!
//! When a frame cannot be had (a fault, or the kernel writing into guest
//! memory for a syscall), `Kernel::out_of_memory` does what Linux's
//! allocator slow path does, in order: reclaim clean page cache that no
//! process maps (writing dirty pages back first if that is all there is),
//! then swap anonymous pages out (kernel/swap.rs), then kill the process
//! with the highest badness. The faulting task then
//! retries, unless it was the victim. A syscall that failed with ENOMEM
//! or ENOSPC because a frame was refused while it ran (exec's stack, a
//! tmpfs write) goes through the same path and is run again
//! (`dispatch_under_pressure`).
//!
//! Badness is Linux's `oom_badness`: the process's resident pages (and its
//! swapped-out pages) plus `oom_score_adj` thousandths of all memory;
//! `oom_score_adj = -1000` exempts a process, and init (pid 1) is never
//! chosen. Ties go to the later process in pid order, as Linux's scan
//! does. The kill is announced in the kernel log and on the console with
//! Linux's line (`Out of memory: Killed process N (comm) total-vm:...`).
//! With nothing left to kill, Linux panics; here a caller other than init
//! is killed itself (the instance lives), and init alone out of memory
//! ends the instance with Linux's panic line.

use super::core::{Kernel, Shutdown};
use super::kmsg::{KERN_ERR, KERN_WARNING};
use super::memevents::MemEvent;
use super::signal::SIGKILL;
use super::task::Pid;
use crate::errno::Errno;
use crate::syscalls::{self, Outcome};

/// Pages reclaimed per attempt (Linux's SWAP_CLUSTER_MAX).
pub const RECLAIM_BATCH: u64 = 32;
/// Times one syscall that ran out of frames is run again after the OOM
/// path freed memory (each time reclaim, swap or a kill freed some).
const PRESSURE_RETRIES: u32 = 64;

/// What the OOM path did so far (the mconsole `stats`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OomStats {
    /// Times a frame could not be had at once.
    pub events: u64,
    /// Page-cache pages dropped to satisfy one.
    pub reclaimed: u64,
    /// Processes killed by the OOM killer.
    pub kills: u64,
    /// Faults that waited for a plug first (`oom_wait=`, memwait.rs).
    pub waits: u64,
    /// The last victim (pid), if any.
    pub last_victim: Option<Pid>,
    /// Syscalls run again after they ran out of frames.
    pub syscall_retries: u64,
}

/// One process as the OOM killer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomCandidate {
    pub tgid: Pid,
    pub points: i64,
    pub comm: String,
    pub uid: u32,
    pub adj: i16,
    pub total_vm_kb: u64,
    pub anon_kb: u64,
    pub file_kb: u64,
}

/// Linux's `oom_badness`: None for an exempt process.
pub fn badness(rss_pages: u64, swap_pages: u64, adj: i16, total_pages: u64) -> Option<i64> {
    if adj <= -1000 {
        return None;
    }
    let base = rss_pages.saturating_add(swap_pages).min(i64::MAX as u64) as i64;
    let adj = i64::from(adj.clamp(-1000, 1000));
    let per_mille = (total_pages / 1000).min(i64::MAX as u64 / 1000) as i64;
    Some(base.saturating_add(adj * per_mille))
}

/// /proc/<pid>/oom_score: badness scaled to 0..=2000, then by 2/3 as
/// Linux shows it since 5.9 (proc_oom_score): 0..=1333.
pub fn oom_score(points: Option<i64>, total_pages: u64) -> i64 {
    let Some(p) = points else { return 0 };
    let total = total_pages.max(1).min(i64::MAX as u64) as i64;
    (1000 + p.saturating_mul(1000) / total).clamp(0, 2000) * 2 / 3
}

impl Kernel {
    /// All the memory the OOM killer weighs against: RAM plus swap.
    pub fn oom_total_pages(&self) -> u64 {
        self.physmem.frames_plugged() + self.frames.swap.borrow().total_pages()
    }

    /// Every process the OOM killer may choose, with its badness.
    pub fn oom_candidates(&self) -> Vec<OomCandidate> {
        let total = self.oom_total_pages();
        let untouched = self.physmem.untouched();
        self.tasks
            .values()
            .filter(|t| t.is_leader() && t.is_alive() && t.tgid != 1)
            .filter_map(|t| {
                let mm = self.mms.get(&t.mm)?;
                let (anon, file) = mm.aspace.rss_split(&untouched);
                let points = badness(anon + file, 0, t.oom_score_adj, total)?;
                Some(OomCandidate {
                    tgid: t.tgid,
                    points,
                    comm: String::from_utf8_lossy(&t.comm).into_owned(),
                    uid: t.cred.uid,
                    adj: t.oom_score_adj,
                    total_vm_kb: mm.aspace.total_vm() / 1024,
                    anon_kb: anon * 4,
                    file_kb: file * 4,
                })
            })
            .collect()
    }

    /// The process with the highest badness (the later one on a tie).
    pub fn oom_select(&self) -> Option<OomCandidate> {
        let mut best: Option<OomCandidate> = None;
        for c in self.oom_candidates() {
            if best.as_ref().is_none_or(|b| c.points >= b.points) {
                best = Some(c);
            }
        }
        best
    }

    /// Gives back every anonymous window page no process has touched
    /// (mm/window.rs); returns how many.
    pub fn release_untouched(&mut self) -> u64 {
        let untouched = self.physmem.untouched();
        if untouched.is_empty() {
            return 0;
        }
        let Kernel { mms, frames, .. } = self;
        mms.values_mut()
            .map(|mm| mm.aspace.release_untouched(&untouched, frames))
            .sum()
    }

    /// Drops up to `want` clean page-cache pages no process maps, least
    /// recently used first; dirty pages are written back first when clean
    /// ones run out. While the host budget's cap is what refuses frames,
    /// substituted image pages stay (they count nothing against it).
    /// Returns the room made (`PhysMem::room`): frames an allocation may
    /// take now that it could not before, not merely frames freed.
    pub fn reclaim_page_cache(&mut self, want: u64) -> u64 {
        let before = self.physmem.room();
        let counted_only = self.physmem.cap_binds();
        let mut got =
            self.pagecache
                .borrow_mut()
                .reclaim_unmapped(want, &mut self.frames, counted_only);
        if got == 0 && self.pagecache.borrow().stats().dirty > 0 {
            self.writeback_pagecache();
            got =
                self.pagecache
                    .borrow_mut()
                    .reclaim_unmapped(want, &mut self.frames, counted_only);
        }
        self.oom.reclaimed += got;
        self.physmem.room().saturating_sub(before)
    }

    /// No frame for `tid`: reclaim, else kill by badness. True when the
    /// caller should retry (memory was freed and it is still alive). A
    /// caller chosen as the victim inside a syscall is killed when the
    /// syscall returns (`oom_victim`), elsewhere at once.
    pub fn out_of_memory(&mut self, tid: Pid, in_syscall: bool) -> bool {
        // Only the budget's checkpoint stopped it: the cgroup was read
        // again and there is room.
        if self.budget_on_alloc_failure() {
            return true;
        }
        let start = std::time::Instant::now();
        let r = self.out_of_memory_slow(tid, in_syscall);
        let full = self.runq.is_empty();
        self.psi
            .stall(start.elapsed(), full, std::time::Instant::now());
        r
    }

    /// Runs syscall `nr`; when it fails with ENOMEM or ENOSPC because a
    /// frame was refused while it ran (`PhysMem::refusals` moved: guest
    /// memory or the host budget full), the OOM path runs (reclaim, swap,
    /// the OOM killer) and the syscall is run again, as Linux's allocator
    /// reclaims inside the syscall instead of failing it. Exec's new
    /// stack, a tmpfs or page-cache page for write(2) or read(2) all meet
    /// pressure this way, not only faults and copies to and from user
    /// memory. Only failures with nothing done are retried: a handler
    /// that did part of its work returns what it did, not the error.
    pub fn dispatch_under_pressure(&mut self, tid: Pid, nr: u64, args: [u64; 6]) -> Outcome {
        let short = [
            Errno::ENOMEM.to_syscall_return(),
            Errno::ENOSPC.to_syscall_return(),
        ];
        let mut tries = 0;
        loop {
            let before = self.physmem.refusals();
            let out = syscalls::dispatch(self, tid, nr, args);
            let starved = matches!(out, Outcome::Return(v) if short.contains(&v))
                && self.physmem.refusals() != before;
            if !starved || self.oom_victim.is_some() || tries >= PRESSURE_RETRIES {
                if starved && tries >= PRESSURE_RETRIES {
                    crate::log_limited!(
                        log::Level::Debug,
                        "syscall {nr} of {tid} still out of frames after {tries} runs of the OOM path (room {})",
                        self.physmem.room()
                    );
                }
                return out;
            }
            tries += 1;
            self.oom.syscall_retries += 1;
            if !self.out_of_memory(tid, true) {
                return out;
            }
        }
    }

    fn out_of_memory_slow(&mut self, tid: Pid, in_syscall: bool) -> bool {
        self.oom.events += 1;
        // As Linux's direct reclaim, the steps go on until a batch of room
        // is made, counted as room (`PhysMem::room`: free frames, and
        // under the host budget's cap), not as frames freed: page-cache
        // reclaim of a few frames, or of image pages that cost the cap
        // nothing, used to say "retry" without swapping, and the retry
        // (an exec reading its program's pages again) ate that little
        // room and met the cap again, 64 times, then failed with ENOMEM.
        let start = self.physmem.room();
        let made = |k: &Kernel| k.physmem.room().saturating_sub(start);
        // Window pages never touched go first: the guest loses nothing.
        self.release_untouched();
        if made(self) < RECLAIM_BATCH {
            let freed = self.reclaim_page_cache(RECLAIM_BATCH);
            if freed > 0 {
                self.mem_event(MemEvent::Reclaiming, &format!("pages={freed}"));
            }
        }
        let mut out = 0;
        if made(self) < RECLAIM_BATCH {
            out = self.swap_out_pages(super::swap::SWAP_BATCH);
            if out > 0 {
                self.mem_event(MemEvent::Swapping, &format!("pages={out}"));
            }
        }
        // Pages that went to swap are a retry's chance even when guest RAM
        // rather than the cap is full (hollow frames stay allocated).
        if made(self) > 0 || out > 0 {
            return true;
        }
        // A fault below maxmem= waits for the balancer's plug first.
        if !in_syscall && self.oom_wait_for_plug(tid) {
            return false;
        }
        let caller = self.task(tid).map(|t| t.tgid).unwrap_or(tid);
        let Some(victim) = self.oom_select() else {
            return self.oom_no_victim(tid, caller, in_syscall);
        };
        self.oom_announce(tid, &victim);
        if victim.tgid == caller {
            self.kill_oom_victim(caller, in_syscall);
            false
        } else {
            self.kill_process(victim.tgid, SIGKILL);
            true
        }
    }

    /// Over the host budget with nothing left to reclaim: kill by badness
    /// (never init). False when there is no one to kill.
    pub fn oom_kill_for_budget(&mut self) -> bool {
        let Some(victim) = self.oom_select() else {
            return false;
        };
        self.printk(
            KERN_WARNING,
            "host memory budget exceeded: invoking oom-killer",
        );
        self.oom_announce_kill(&victim);
        self.kill_process(victim.tgid, SIGKILL);
        true
    }

    fn kill_oom_victim(&mut self, tgid: Pid, in_syscall: bool) {
        if in_syscall {
            self.oom_victim = Some(tgid);
        } else {
            self.kill_process(tgid, SIGKILL);
        }
    }

    /// Nothing the killer may choose: Linux panics. The caller goes if it
    /// is not init; init alone out of memory ends the instance.
    fn oom_no_victim(&mut self, tid: Pid, caller: Pid, in_syscall: bool) -> bool {
        if caller != 1 {
            let comm = self
                .task(tid)
                .map(|t| String::from_utf8_lossy(&t.comm).into_owned())
                .unwrap_or_default();
            self.printk(
                KERN_ERR,
                &format!(
                    "Out of memory and no killable processes: killing the allocating process {caller} ({comm})"
                ),
            );
            self.oom.kills += 1;
            self.oom.last_victim = Some(caller);
            self.kill_oom_victim(caller, in_syscall);
            return false;
        }
        self.printk(
            KERN_ERR,
            "Kernel panic - not syncing: System is deadlocked on memory",
        );
        self.panic(
            "System is deadlocked on memory",
            Shutdown::InitDied(super::task::status_signaled(SIGKILL, false)),
        );
        false
    }

    /// Linux's two lines: who invoked the killer, and whom it killed.
    fn oom_announce(&mut self, tid: Pid, v: &OomCandidate) {
        let (comm, adj) = self
            .task(tid)
            .map(|t| {
                (
                    String::from_utf8_lossy(&t.comm).into_owned(),
                    t.oom_score_adj,
                )
            })
            .unwrap_or_default();
        self.printk(
            KERN_WARNING,
            &format!(
                "{comm} invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj={adj}"
            ),
        );
        self.oom_announce_kill(v);
    }

    fn oom_announce_kill(&mut self, v: &OomCandidate) {
        self.printk(
            KERN_ERR,
            &format!(
                "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:0kB, UID:{} pgtables:0kB oom_score_adj:{}",
                v.tgid, v.comm, v.total_vm_kb, v.anon_kb, v.file_kb, v.uid, v.adj
            ),
        );
        self.oom.kills += 1;
        self.oom.last_victim = Some(v.tgid);
        let detail = format!("pid={} comm={}", v.tgid, v.comm);
        self.mem_event(MemEvent::OomKill, &detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badness_like_linux() {
        // 1000 pages of memory: one thousandth is one page.
        assert_eq!(badness(100, 0, 0, 1000), Some(100));
        assert_eq!(badness(100, 20, 0, 1000), Some(120));
        assert_eq!(badness(100, 0, 500, 1000), Some(600));
        assert_eq!(badness(100, 0, -500, 1000), Some(-400));
        assert_eq!(badness(100, 0, -1000, 1000), None);
        assert_eq!(badness(u64::MAX, u64::MAX, 1000, u64::MAX), Some(i64::MAX));
        assert_eq!(oom_score(Some(0), 1000), 666);
        assert_eq!(oom_score(Some(500), 1000), 1000);
        assert_eq!(oom_score(None, 1000), 0);
    }
}
