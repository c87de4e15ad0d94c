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

    /// Drops a pipe nobody has open any more.
    pub fn gc(&mut self, id: usize) {
        if let Some(p) = self.pipes.get(&id) {
            if p.readers() == 0 && p.writers() == 0 {
                self.pipes.remove(&id);
                self.fifos.retain(|_, v| *v != id);
            }
        }
    }
}
