//! The kernel's pipes: anonymous pipes and fifos share one table of
//! `Pipe` buffers; open files refer to them by index.

use std::collections::HashMap;

use super::waitq::{WaitQueue, WaitQueueRef};
use crate::fs::pipe::Pipe;

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
}

impl PipeTable {
    pub fn create(&mut self) -> usize {
        self.next += 1;
        self.pipes.insert(self.next, Pipe::new());
        self.queues.insert(self.next, WaitQueue::new());
        self.next
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

    /// The pipe of a fifo, created on first open.
    pub fn fifo(&mut self, key: (usize, u64)) -> usize {
        if let Some(&id) = self.fifos.get(&key) {
            if self.pipes.contains_key(&id) {
                return id;
            }
        }
        let id = self.create();
        self.fifos.insert(key, id);
        id
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
                self.queues.remove(&id);
                self.open_queues.remove(&id);
                self.opens.remove(&id);
                self.fifos.retain(|_, v| *v != id);
            }
        }
    }
}

impl super::core::Kernel {
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
