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
    /// Swap areas and the frames whose contents are in them (swap.rs).
    pub swap: super::swap::SwapSpace,
}

impl FrameRefs {
    pub fn new(physmem: Arc<PhysMem>) -> Self {
        FrameRefs {
            physmem,
            refs: HashMap::new(),
            swap: Default::default(),
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
                self.swap.forget(f);
                self.physmem.free(f);
            }
            None => log::error!("anon frame {f:?} released without a reference"),
        }
    }

    /// Writes `f`'s contents to swap and makes it hollow: the host gets
    /// its memory back. The caller has revoked every host mapping of it.
    pub fn swap_out(&mut self, f: Frame) -> KResult<()> {
        if self.swap.is_swapped(f) {
            return Ok(());
        }
        let mut buf = [0u8; crate::physmem::PAGE_SIZE];
        self.physmem.read(f, 0, &mut buf);
        self.swap.store(f, &buf)?;
        if self.physmem.hollow(f).is_err() {
            // Keep the contents where they are; the slot goes.
            let _ = self.swap.load(f, &mut buf);
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Brings a swapped-out frame's contents back (a no-op for any other
    /// frame). Refused with `Oom` while the frames the host backs are at
    /// their limit: the caller's OOM path makes room first. A read error
    /// is `Bus`, as Linux's SIGBUS for a swap-in that failed.
    pub fn swap_in(&mut self, f: Frame) -> Result<(), super::FaultError> {
        if !self.swap.is_swapped(f) {
            return Ok(());
        }
        if self.physmem.frames_backed() >= self.physmem.backed_limit() {
            return Err(super::FaultError::Oom);
        }
        let mut buf = [0u8; crate::physmem::PAGE_SIZE];
        self.swap
            .load(f, &mut buf)
            .map_err(|_| super::FaultError::Bus)?;
        self.physmem
            .fill(f, &buf)
            .map_err(|_| super::FaultError::Bus)
    }

    /// Frames currently held by guests (for /proc/meminfo AnonPages).
    pub fn count(&self) -> usize {
        self.refs.len()
    }
}
