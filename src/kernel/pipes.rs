//! The kernel's pipes: anonymous pipes and fifos share one table of
//! `Pipe` buffers; open files refer to them by index.
//!
//! Each pipe's pages count against the user who made it, as Linux's
//! `account_pipe_buffers`: past `fs.pipe-user-pages-soft` an unprivileged
//! user's new pipes get 2 pages instead of 16 and may not grow (F_SETPIPE_SZ
//! EPERM); past `fs.pipe-user-pages-hard` (0: none) no new pipe (ENFILE).

use std::collections::HashMap;

use super::ucounts::{Charge, UserCaps};
use super::waitq::{WaitQueue, WaitQueueRef};
use crate::errno::{Errno, KResult};
use crate::fs::pipe::Pipe;

/// Linux's PIPE_DEF_BUFFERS: a new pipe's pages.
const DEF_PAGES: u64 = 16;
/// Linux's PIPE_MIN_DEF_BUFFERS: a new pipe's pages past the soft limit.
const MIN_PAGES: u64 = 2;

/// Who makes or resizes a pipe: the user its pages count against, and
/// whether the caller is exempt from the limits (root: Linux's
/// CAP_SYS_RESOURCE or CAP_SYS_ADMIN).
#[derive(Clone, Copy, Debug)]
pub struct PipeUser {
    pub uid: u32,
    pub privileged: bool,
}

#[derive(Default)]
pub struct PipeTable {
    pipes: HashMap<usize, Pipe>,
    /// Each pipe's wait queue: its readers and writers, and pollers.
    queues: HashMap<usize, WaitQueueRef>,
    /// Each fifo's open queue: openers waiting for the other side.
    open_queues: HashMap<usize, WaitQueueRef>,
    next: usize,
    /// Fifo inode (mount, ino) → its pipe while anyone has it open.
    fifos: HashMap<(usize, u64), usize>,
    /// How many times each fifo was opened for reading and for writing.
    opens: HashMap<usize, (u64, u64)>,
    /// Blocked fifo openers: (pipe, task, for writing) → the other side's
    /// open count when they started waiting.
    waiters: HashMap<(usize, i32, bool), u64>,
    /// The per-user caps (pipe pages), shared with the kernel.
    pub caps: UserCaps,
    /// Each pipe's pages, charged to its maker.
    charges: HashMap<usize, Charge>,
}

impl PipeTable {
    /// A new pipe of 16 pages (2 past the soft limit), charged to `who`.
    pub fn create(&mut self, who: PipeUser) -> KResult<usize> {
        let counts = &self.caps.pipe_pages;
        let (soft, hard) = (counts.max(), self.caps.pipe_pages_hard.get());
        let held = counts.held(who.uid);
        let over = |limit: u64, pages: u64| limit != 0 && held.saturating_add(pages) > limit;
        let mut pages = DEF_PAGES;
        if !who.privileged && over(soft, pages) {
            pages = MIN_PAGES;
        }
        if !who.privileged && over(hard, pages) {
            return Err(Errno::ENFILE);
        }
        let charge = counts.charge(who.uid, pages);
        self.next += 1;
        let mut p = Pipe::new();
        p.set_capacity(pages as usize * 4096)?;
        self.pipes.insert(self.next, p);
        self.queues.insert(self.next, WaitQueue::new());
        self.charges.insert(self.next, charge);
        Ok(self.next)
    }

    /// F_SETPIPE_SZ: growing past a limit is EPERM for the unprivileged
    /// (shrinking never is); the pipe's charge follows its new size.
    pub fn resize(&mut self, id: usize, size: usize, privileged: bool) -> KResult<usize> {
        // Linux's round_pipe_size: nothing above 2^31 (EINVAL).
        if size > 1 << 31 {
            return Err(Errno::EINVAL);
        }
        let p = self.pipes.get_mut(&id).ok_or(Errno::EBADF)?;
        let old = (p.capacity() / 4096) as u64;
        let new = size
            .div_ceil(4096)
            .max(1)
            .checked_next_power_of_two()
            .ok_or(Errno::EINVAL)? as u64;
        if let Some(c) = self.charges.get(&id) {
            let counts = &self.caps.pipe_pages;
            let (soft, hard) = (counts.max(), self.caps.pipe_pages_hard.get());
            let after = counts
                .held(c.uid())
                .saturating_sub(c.amount())
                .saturating_add(new);
            let over = |limit: u64| limit != 0 && after > limit;
            if new > old && !privileged && (over(soft) || over(hard)) {
                return Err(Errno::EPERM);
            }
        }
        let cap = p.set_capacity(size)?;
        if let Some(c) = self.charges.get_mut(&id) {
            c.set_amount((cap / 4096) as u64);
        }
        Ok(cap)
    }

    pub fn get(&mut self, id: usize) -> Option<&mut Pipe> {
        self.pipes.get_mut(&id)
    }

    /// The wait queue of pipe `id`.
    pub fn queue(&self, id: usize) -> Option<WaitQueueRef> {
        self.queues.get(&id).cloned()
    }

    /// The open queue of fifo `id` (blocked openers sleep there).
    pub fn open_queue(&mut self, id: usize) -> WaitQueueRef {
        self.open_queues.entry(id).or_default().clone()
    }

    /// The pipe of a fifo, created (and charged to `who`) on first open.
    pub fn fifo(&mut self, key: (usize, u64), who: PipeUser) -> KResult<usize> {
        if let Some(&id) = self.fifos.get(&key) {
            if self.pipes.contains_key(&id) {
                return Ok(id);
            }
        }
        let id = self.create(who)?;
        self.fifos.insert(key, id);
        Ok(id)
    }

    /// Opens fifo `id` with Linux's rules: a reader waits for a writer
    /// and a writer for a reader, and both opens complete together
    /// (O_NONBLOCK: a reader goes on, a writer without a reader gets
    /// ENXIO); O_RDWR never waits. Err(EAGAIN) means "sleep and retry";
    /// `tid` identifies the opener across retries. A waiting reader is
    /// counted at once so that writers can go ahead.
    pub fn open_fifo(
        &mut self,
        id: usize,
        tid: i32,
        read: bool,
        write: bool,
        nonblock: bool,
    ) -> crate::errno::KResult<()> {
        use crate::errno::Errno;
        if !self.pipes.contains_key(&id) {
            return Err(Errno::EBADF);
        }
        let (ropens, wopens) = self.opens.get(&id).copied().unwrap_or((0, 0));
        let p = self.pipes.get_mut(&id).expect("pipe");
        let e = self.opens.entry(id).or_insert((0, 0));
        if read && write {
            p.open_reader();
            p.open_writer();
            e.0 += 1;
            e.1 += 1;
            return Ok(());
        }
        if read {
            if let Some(&gen) = self.waiters.get(&(id, tid, false)) {
                if p.writers() > 0 || wopens > gen {
                    self.waiters.remove(&(id, tid, false));
                    return Ok(());
                }
                return Err(Errno::EAGAIN);
            }
            p.open_reader();
            e.0 += 1;
            if nonblock || p.writers() > 0 {
                return Ok(());
            }
            self.waiters.insert((id, tid, false), wopens);
            return Err(Errno::EAGAIN);
        }
        if p.readers() > 0 {
            p.open_writer();
            e.1 += 1;
            self.waiters.remove(&(id, tid, true));
            return Ok(());
        }
        if nonblock {
            return Err(Errno::ENXIO);
        }
        self.waiters.entry((id, tid, true)).or_insert(ropens);
        Err(Errno::EAGAIN)
    }

    /// A blocked fifo opener gave up (signal, exit): undo its early count.
    pub fn forget_waiter(&mut self, tid: i32) {
        let gone: Vec<(usize, i32, bool)> = self
            .waiters
            .keys()
            .filter(|k| k.1 == tid)
            .copied()
            .collect();
        for k in gone {
            self.waiters.remove(&k);
            if !k.2 {
                if let Some(p) = self.pipes.get_mut(&k.0) {
                    p.close_reader();
                }
            }
        }
    }

    /// Drops a pipe nobody has open any more.
    pub fn gc(&mut self, id: usize) {
        if let Some(p) = self.pipes.get(&id) {
            if p.readers() == 0 && p.writers() == 0 && !self.waiters.keys().any(|k| k.0 == id) {
                self.pipes.remove(&id);
                self.charges.remove(&id);
                self.queues.remove(&id);
                self.open_queues.remove(&id);
                self.opens.remove(&id);
                self.fifos.retain(|_, v| *v != id);
            }
        }
    }
}

impl super::core::Kernel {
    /// Whose pages a pipe `tid` makes are: its real uid (Linux's
    /// current_user()); root (euid 0) is exempt from the limits.
    pub fn pipe_user(&self, tid: crate::kernel::task::Pid) -> KResult<PipeUser> {
        let c = self.cred(tid)?;
        Ok(PipeUser {
            uid: c.uid,
            privileged: c.euid == 0,
        })
    }

    /// Fifo `id` gained an opener (or a waiting reader that already
    /// counts): the openers waiting for the other side look again.
    pub fn fifo_opened(&mut self, id: usize) {
        let q = self.pipes.open_queue(id);
        self.wake_queue(&q, super::waitq::ALL_EVENTS);
    }

    /// `tid`'s open of fifo `id` waits for the other side.
    pub fn wait_for_fifo_peer(&mut self, tid: i32, id: usize) {
        let q = self.pipes.open_queue(id);
        self.wait_on(tid, &q, super::waitq::ALL_EVENTS);
    }
}
