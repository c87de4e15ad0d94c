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
    pub swap: super::swap::SwapRef,
    /// Frames `alloc` leaves free (0: none): set while a user fault is
    /// served under `oom_wait=`, so a syscall still finds a frame while
    /// the faulting task waits for a plug (kernel/memwait.rs).
    pub keep_free: u64,
}

impl FrameRefs {
    pub fn new(physmem: Arc<PhysMem>) -> Self {
        FrameRefs {
            physmem,
            refs: HashMap::new(),
            swap: Default::default(),
            keep_free: 0,
        }
    }

    pub fn physmem(&self) -> &Arc<PhysMem> {
        &self.physmem
    }

    /// A fresh zero-filled frame with one reference.
    pub fn alloc(&mut self) -> KResult<Frame> {
        let f = self
            .physmem
            .alloc_keeping(self.keep_free)
            .map_err(|_| Errno::ENOMEM)?;
        self.refs.insert(f, 1);
        Ok(f)
    }

    /// `n` fresh frames for a fault window, each with one reference, all
    /// untouched (physmem/untouched.rs); refused unless memory is plentiful.
    pub fn alloc_window(&mut self, n: u64) -> KResult<Vec<Frame>> {
        let fs = self.physmem.alloc_window(n).map_err(|_| Errno::ENOMEM)?;
        for &f in &fs {
            self.refs.insert(f, 1);
        }
        Ok(fs)
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
                self.swap.borrow_mut().forget(f);
                self.physmem.free(f);
            }
            None => log::error!("anon frame {f:?} released without a reference"),
        }
    }

    /// Drops one reference on each of `frames` (a frame may repeat); the
    /// frames whose last reference goes are freed together, so adjacent
    /// ones are punched with one fallocate (a forked child's few copied
    /// pages are usually adjacent: one host call at its exit, not four).
    pub fn put_many(&mut self, frames: &[Frame]) {
        let mut freed = Vec::new();
        for &f in frames {
            match self.refs.get_mut(&f) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    self.refs.remove(&f);
                    self.swap.borrow_mut().forget(f);
                    freed.push(f);
                }
                None => log::error!("anon frame {f:?} released without a reference"),
            }
        }
        if !freed.is_empty() {
            self.physmem.free_many(&freed);
        }
    }

    /// Writes `f`'s contents to swap and makes it hollow: the host gets
    /// its memory back. The caller has revoked every host mapping of it.
    pub fn swap_out(&mut self, f: Frame) -> KResult<()> {
        if self.swap.borrow().is_swapped(f) {
            return Ok(());
        }
        // A clean page of the swap cache: its slot holds it already.
        if !self.swap.borrow_mut().store_cached(f) {
            let mut buf = [0u8; crate::physmem::PAGE_SIZE];
            self.physmem.read(f, 0, &mut buf);
            self.swap.borrow_mut().store(f, &buf)?;
        }
        if self.physmem.hollow(f).is_err() {
            // Keep the contents where they are; the slot goes.
            self.swap.borrow_mut().forget(f);
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// `f` is about to be written (a write fault or the kernel's
    /// copy_to_user made its PTE writable): its swap cache slot goes.
    pub fn dirty(&mut self, f: Frame) {
        self.swap.borrow_mut().dirty(f);
    }

    /// Brings a swapped-out frame's contents back (a no-op for any other
    /// frame). Refused with `Oom` while the frames the host backs are at
    /// their limit: the caller's OOM path makes room first. A read error
    /// is `Bus`, as Linux's SIGBUS for a swap-in that failed. With `keep`
    /// the slot may stay as the swap cache: true is returned then, and
    /// the caller keeps every PTE of the frame read-only until `dirty`.
    pub fn swap_in(&mut self, f: Frame, keep: bool) -> Result<bool, super::FaultError> {
        if !self.swap.borrow().is_swapped(f) {
            return Ok(false);
        }
        if !self.physmem.may_fill() {
            return Err(super::FaultError::Oom);
        }
        let mut buf = [0u8; crate::physmem::PAGE_SIZE];
        let kept = self
            .swap
            .borrow_mut()
            .load(f, &mut buf, keep)
            .map_err(|_| super::FaultError::Bus)?;
        if self.physmem.fill(f, &buf).is_err() {
            self.swap.borrow_mut().dirty(f);
            return Err(super::FaultError::Bus);
        }
        Ok(kept)
    }

    /// Frames currently held by guests (for /proc/meminfo AnonPages).
    pub fn count(&self) -> usize {
        self.refs.len()
    }
}
