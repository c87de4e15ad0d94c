//! The kernel's pipes: anonymous pipes and fifos share one table of
//! `Pipe` buffers; open files refer to them by index.

use std::collections::HashMap;

use crate::fs::pipe::Pipe;

#[derive(Default)]
pub struct PipeTable {
    pipes: HashMap<usize, Pipe>,
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
        self.next
    }

    pub fn get(&mut self, id: usize) -> Option<&mut Pipe> {
        self.pipes.get_mut(&id)
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

    /// Opens fifo `id` for reading and/or writing with Linux's rules: a
    /// reader waits for a writer and vice versa (unless O_NONBLOCK: a reader
    /// goes on, a writer gets ENXIO); O_RDWR never waits. Err(EAGAIN) means
    /// "sleep and retry". `tid` identifies the waiting opener.
    pub fn open_fifo(&mut self, id: usize, tid: i32, read: bool, write: bool, nonblock: bool) -> crate::errno::KResult<()> {
        use crate::errno::Errno;
        let (ropens, wopens) = self.opens.get(&id).copied().unwrap_or((0, 0));
        let p = self.pipes.get(&id).ok_or(Errno::EBADF)?;
        let (readers, writers) = (p.readers(), p.writers());
        let waiting = |t: &HashMap<(usize, i32, bool), u64>, w: bool| t.keys().any(|k| k.0 == id && k.2 == w);
        let go = if read && write {
            true
        } else if read {
            // Went through if a writer is there, came since we waited, or is waiting.
            nonblock || writers > 0 || waiting(&self.waiters, true) || self.waiters.get(&(id, tid, false)).is_some_and(|g| wopens > *g)
        } else {
            if readers == 0 && !waiting(&self.waiters, false) && nonblock {
                return Err(Errno::ENXIO);
            }
            readers > 0 || waiting(&self.waiters, false) || self.waiters.get(&(id, tid, true)).is_some_and(|g| ropens > *g)
        };
        if !go {
            let gen = if read { wopens } else { ropens };
            self.waiters.entry((id, tid, write)).or_insert(gen);
            return Err(Errno::EAGAIN);
        }
        self.waiters.remove(&(id, tid, write && !read));
        let p = self.pipes.get_mut(&id).expect("pipe");
        let e = self.opens.entry(id).or_insert((0, 0));
        if read {
            p.open_reader();
            e.0 += 1;
        }
        if write {
            p.open_writer();
            e.1 += 1;
        }
        Ok(())
    }

    /// A blocked fifo opener gave up (signal, exit).
    pub fn forget_waiter(&mut self, tid: i32) {
        self.waiters.retain(|k, _| k.1 != tid);
    }

    /// Drops a pipe nobody has open any more.
    pub fn gc(&mut self, id: usize) {
        if let Some(p) = self.pipes.get(&id) {
            if p.readers() == 0 && p.writers() == 0 && !self.waiters.keys().any(|k| k.0 == id) {
                self.pipes.remove(&id);
                self.opens.remove(&id);
                self.fifos.retain(|_, v| *v != id);
            }
        }
    }
}
