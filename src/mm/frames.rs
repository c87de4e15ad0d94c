//! Anonymous frames and their reference counts.
//!
//! A private page shared between a parent and child after fork is one
//! frame with two references, mapped read-only in both; the first write
//! copies it (or, with one reference left, just makes it writable). The
//! last reference frees the frame, which punches it: host memory goes back.

use std::collections::HashMap;
use std::sync::Arc;

use crate::errno::{Errno, KResult};
use crate::physmem::{Frame, PhysMem};

pub struct FrameRefs {
    physmem: Arc<PhysMem>,
    refs: HashMap<Frame, u32>,
}

impl FrameRefs {
    pub fn new(physmem: Arc<PhysMem>) -> Self {
        FrameRefs {
            physmem,
            refs: HashMap::new(),
        }
    }

    pub fn physmem(&self) -> &Arc<PhysMem> {
        &self.physmem
    }

    /// A fresh zero-filled frame with one reference.
    pub fn alloc(&mut self) -> KResult<Frame> {
        let f = self.physmem.alloc().map_err(|_| Errno::ENOMEM)?;
        self.refs.insert(f, 1);
        Ok(f)
    }

    /// A new frame holding a copy of `from` (which may be any frame,
    /// anonymous or page cache).
    pub fn alloc_copy(&mut self, from: Frame) -> KResult<Frame> {
        let f = self.alloc()?;
        if self.physmem.copy_frame(from, f).is_err() {
            self.put(f);
            return Err(Errno::EIO);
        }
        Ok(f)
    }

    pub fn get(&mut self, f: Frame) {
        *self.refs.entry(f).or_insert(0) += 1;
    }

    pub fn refcount(&self, f: Frame) -> u32 {
        self.refs.get(&f).copied().unwrap_or(0)
    }

    /// Drops one reference; the last one frees (and punches) the frame.
    pub fn put(&mut self, f: Frame) {
        match self.refs.get_mut(&f) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.refs.remove(&f);
                self.physmem.free(f);
            }
            None => log::error!("anon frame {f:?} released without a reference"),
        }
    }

    /// Frames currently held by guests (for /proc/meminfo AnonPages).
    pub fn count(&self) -> usize {
        self.refs.len()
    }
}
