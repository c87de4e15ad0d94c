//! Guest physical memory: one sealed memfd of `maxmem=` bytes (default
//! `mem=`), `/dev/anon` style; the frames beyond `mem=` start unplugged.
//!
//! | file         | owns |
//! |--------------|------|
//! | `frame.rs`   | `Frame`, `PAGE_SIZE`, `FrameBacking` |
//! | `error.rs`   | `PhysMemError` |
//! | `alloc.rs`   | the O(1) frame allocator with double-free detection |
//! | `subst.rs`   | frames whose contents are a host file page (ubd=mmap) |
//! | `hotplug.rs` | taking free frames out of the guest and giving them back |
//! | `stats.rs`   | counts, and the host's own figure for memory held |
//! | `hollow.rs`  | frames whose contents went to swap: allocated, punched, filled again on swap-in |
//! | `limit.rs`   | the cap on frames the host backs (the host budget's share for the guest) |
//! | `untouched.rs` | frames of anonymous fault windows the guest has not touched yet: holes until then |
//! | `mod.rs`     | `PhysMem`: alloc, free (punching), byte access |
//!
//! Invariants: every free or unplugged frame is a hole in the memfd (it
//! costs the host nothing and reads as zeros) and is shown from the memfd in
//! umlrun's view; a substituted frame's memfd page is a hole too.
//!
//! Locking: one `parking_lot::Mutex` guards the allocator, the substitution
//! table and the view, and is held across the matching host calls
//! (fallocate, mmap), so a frame is never punched or remapped while another
//! thread uses it. No other lock is taken while it is held.
//!
//! Frames only ever come from `alloc`; a frame number beyond the end of
//! guest memory in `read`/`backing`, or a byte range crossing a frame
//! boundary in `read`, is a kernel bug and panics. Everything else returns
//! `PhysMemError`.

#![deny(unsafe_code)]

mod alloc;
mod error;
mod frame;
mod hollow;
mod hotplug;
mod limit;
mod stats;
mod subst;
mod untouched;

pub use error::PhysMemError;
pub use frame::{Frame, FrameBacking, PAGE_SIZE};
pub use stats::PhysMemStats;
pub use untouched::Untouched;

use std::os::fd::{AsRawFd, RawFd};

use parking_lot::Mutex;

use crate::host::mapping::{MappingError, SharedMapping};
use crate::host::memfd::MemFd;
use alloc::FrameAllocator;
use subst::SubstTable;

/// Part of a copy: (frame, offset in the frame, length).
pub type Piece = (Frame, usize, usize);

/// Guest physical memory.
pub struct PhysMem {
    memfd: MemFd,
    frames: u64,
    inner: Mutex<Inner>,
    /// Most frames the memfd may back at once (see `limit.rs`).
    backed_limit: std::sync::atomic::AtomicU64,
    /// umlrun's heap in use when the cap was set; growth past it lowers
    /// the cap at once (`limit.rs`; u64::MAX: not charged).
    heap_base: std::sync::atomic::AtomicU64,
    /// `alloc` calls refused so far (see `limit.rs` `refusals`).
    refused: std::sync::atomic::AtomicU64,
}

struct Inner {
    view: SharedMapping,
    alloc: FrameAllocator,
    subst: SubstTable,
    /// Most frames substituted at once; see `subst.rs`.
    subst_limit: u64,
    double_frees: u64,
    /// Frames punched so far (freed or unplugged).
    punched_frames: u64,
    /// fallocate calls made to punch them.
    punch_calls: u64,
    /// Allocated frames whose contents are in swap (hollow.rs).
    hollow: std::collections::HashSet<Frame>,
    /// Allocated frames of fault windows not touched yet (untouched.rs).
    untouched: std::collections::BTreeSet<u64>,
}

impl PhysMem {
    /// Creates `bytes` of guest memory (rounded down to whole frames).
    pub fn new(bytes: u64) -> Result<PhysMem, PhysMemError> {
        Self::with_max(bytes, bytes)
    }

    /// Creates `bytes` of guest memory that hot-plug can grow up to `max`
    /// bytes: the memfd is `max` long (sparse, sealed at that size) and the
    /// frames beyond `bytes` start unplugged, costing the host nothing.
    pub fn with_max(bytes: u64, max: u64) -> Result<PhysMem, PhysMemError> {
        let plugged = bytes / PAGE_SIZE as u64;
        if plugged == 0 {
            return Err(PhysMemError::TooSmall(bytes));
        }
        let frames = (max / PAGE_SIZE as u64).max(plugged);
        let memfd = MemFd::create("umlrun-physmem", frames * PAGE_SIZE as u64)?;
        let view = SharedMapping::of_memfd(&memfd, true)?;
        log::debug!("physmem: {frames} frames on memfd {}", memfd.as_raw_fd());
        Ok(PhysMem {
            memfd,
            frames,
            backed_limit: std::sync::atomic::AtomicU64::new(u64::MAX),
            heap_base: std::sync::atomic::AtomicU64::new(u64::MAX),
            refused: std::sync::atomic::AtomicU64::new(0),
            inner: Mutex::new(Inner {
                view,
                alloc: FrameAllocator::new(frames),
                subst: SubstTable::default(),
                subst_limit: subst::default_limit(),
                double_frees: 0,
                punched_frames: 0,
                punch_calls: 0,
                hollow: Default::default(),
                untouched: Default::default(),
            }),
        })
        .inspect(|pm| {
            // Fresh frames are holes already: no punching needed.
            let mut inner = pm.inner.lock();
            let taken = inner.alloc.unplug(frames - plugged).len() as u64;
            debug_assert_eq!(taken, frames - plugged);
        })
    }

    /// Number of frames in the memfd, plugged or not.
    pub fn frames_total(&self) -> u64 {
        self.frames
    }

    /// The memfd stubs map frames from.
    pub fn memfd_raw(&self) -> RawFd {
        self.memfd.as_raw_fd()
    }

    /// Lets (or stops) exec'd stub processes inherit the memfd (FD_CLOEXEC).
    pub fn set_inheritable(&self, inherit: bool) -> Result<(), PhysMemError> {
        Ok(self.memfd.set_cloexec(!inherit)?)
    }

    /// A zero-filled frame.
    /// Refused (`OutOfMemory`) when no frame is free, or when the frames
    /// the memfd backs are at the limit (`set_backed_limit`).
    /// Every refusal is counted (`refusals`).
    pub fn alloc(&self) -> Result<Frame, PhysMemError> {
        self.alloc_keeping(0)
    }

    /// As [`PhysMem::alloc`], also refused when fewer than `keep` frames
    /// are free: what a user fault may take, leaving `keep` for the
    /// kernel's own needs (kernel/memwait.rs).
    pub fn alloc_keeping(&self, keep: u64) -> Result<Frame, PhysMemError> {
        let mut inner = self.inner.lock();
        let f = if inner.committed() >= self.backed_limit()
            || (keep > 0 && inner.alloc.free_count() <= keep)
        {
            None
        } else {
            inner.alloc.alloc()
        };
        f.ok_or_else(|| {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            PhysMemError::OutOfMemory
        })
    }

    /// Frees a frame: undoes any substitution and gives its host memory back
    /// at once. A double free is logged and ignored.
    pub fn free(&self, f: Frame) {
        self.free_many(&[f]);
    }

    /// Frees many frames; adjacent ones are punched with one fallocate.
    pub fn free_many(&self, frames: &[Frame]) {
        let mut inner = self.inner.lock();
        let mut freed = Vec::with_capacity(frames.len());
        for &f in frames {
            if !inner.alloc.is_allocated(f) {
                inner.note_bad_free(f, f.0 >= self.frames);
                continue;
            }
            // A frame still showing a file page must not be handed out
            // again: if the host refuses to undo the substitution (logged),
            // the frame is leaked rather than corrupted.
            if inner.subst.contains(f) && inner.drop_substitution(&self.memfd, f).is_err() {
                continue;
            }
            inner.untouched.remove(&f.0);
            if inner.alloc.free(f).is_ok() && !inner.hollow.remove(&f) {
                freed.push(f);
            }
        }
        freed.sort_unstable();
        inner.punch_runs(&self.memfd, &freed);
    }

    /// Copies bytes out of a frame.
    ///
    /// # Panics
    /// If `f` is beyond guest memory or `offset + buf.len() > PAGE_SIZE`:
    /// both are kernel bugs (frames come from `alloc`, callers split ranges
    /// at frame boundaries).
    pub fn read(&self, f: Frame, offset: usize, buf: &mut [u8]) {
        let at = self.byte_offset(f, offset, buf.len()).unwrap_or_else(|e| {
            panic!(
                "physmem::read of frame {} at {offset}+{}: {e}",
                f.0,
                buf.len()
            )
        });
        if let Err(e) = self.inner.lock().view.read_at(at, buf) {
            // Only a poisoned view gets here; it has already logged why.
            log::error!("physmem: read of frame {} failed: {e}", f.0);
            buf.fill(0);
        }
    }

    /// Copies bytes into a frame; refused if it is substituted read-only.
    pub fn write(&self, f: Frame, offset: usize, data: &[u8]) -> Result<(), PhysMemError> {
        let at = self.byte_offset(f, offset, data.len())?;
        self.inner
            .lock()
            .view
            .write_at(at, data)
            .map_err(|e| read_only_as(e, f))
    }

    /// Copies bytes out of several frames under one lock (a guest copy
    /// of many pages takes the lock once, not once per page): `pieces`
    /// are (frame, offset in it, length), filling `buf` in order.
    ///
    /// # Panics
    /// As `read`, or if the lengths do not add up to `buf.len()`.
    pub fn read_pieces(&self, pieces: &[Piece], buf: &mut [u8]) {
        let inner = self.inner.lock();
        let mut done = 0usize;
        for &(f, offset, len) in pieces {
            let at = self.byte_offset(f, offset, len).unwrap_or_else(|e| {
                panic!(
                    "physmem::read_pieces of frame {} at {offset}+{len}: {e}",
                    f.0
                )
            });
            let dst = &mut buf[done..done + len];
            if let Err(e) = inner.view.read_at(at, dst) {
                log::error!("physmem: read of frame {} failed: {e}", f.0);
                dst.fill(0);
            }
            done += len;
        }
        assert_eq!(
            done,
            buf.len(),
            "physmem::read_pieces: lengths do not add up"
        );
    }

    /// As `read_pieces`, appending the bytes to `out` (no zeroed buffer
    /// to fill first).
    pub fn append_pieces(&self, pieces: &[Piece], out: &mut Vec<u8>) {
        let inner = self.inner.lock();
        out.reserve(pieces.iter().map(|p| p.2).sum());
        for &(f, offset, len) in pieces {
            let at = self.byte_offset(f, offset, len).unwrap_or_else(|e| {
                panic!(
                    "physmem::append_pieces of frame {} at {offset}+{len}: {e}",
                    f.0
                )
            });
            if let Err(e) = inner.view.append_to(at, len, out) {
                log::error!("physmem: read of frame {} failed: {e}", f.0);
                out.resize(out.len() + len, 0);
            }
        }
    }

    /// Copies `data` into several frames under one lock, in order; stops
    /// at the first frame that refuses (substituted read-only), after
    /// writing the ones before it.
    pub fn write_pieces(&self, pieces: &[Piece], data: &[u8]) -> Result<(), PhysMemError> {
        let mut inner = self.inner.lock();
        let mut done = 0usize;
        for &(f, offset, len) in pieces {
            let at = self.byte_offset(f, offset, len)?;
            let src = data
                .get(done..done + len)
                .ok_or(PhysMemError::OutOfFrame { offset, len })?;
            inner
                .view
                .write_at(at, src)
                .map_err(|e| read_only_as(e, f))?;
            done += len;
        }
        Ok(())
    }

    /// Copies a whole frame's contents onto another.
    pub fn copy_frame(&self, from: Frame, to: Frame) -> Result<(), PhysMemError> {
        let src = self.byte_offset(from, 0, PAGE_SIZE)?;
        let dst = self.byte_offset(to, 0, PAGE_SIZE)?;
        self.inner
            .lock()
            .view
            .copy_within(src, dst, PAGE_SIZE)
            .map_err(|e| read_only_as(e, to))
    }

    /// Offset in the view of `offset..offset+len` inside frame `f`.
    fn byte_offset(&self, f: Frame, offset: usize, len: usize) -> Result<usize, PhysMemError> {
        if f.0 >= self.frames {
            return Err(PhysMemError::BadFrame(f));
        }
        if offset.checked_add(len).is_none_or(|end| end > PAGE_SIZE) {
            return Err(PhysMemError::OutOfFrame { offset, len });
        }
        // Fits: the whole view is mapped, so its length fits usize.
        Ok(f.offset() as usize + offset)
    }
}

fn read_only_as(e: MappingError, f: Frame) -> PhysMemError {
    match e {
        MappingError::ReadOnly { .. } => PhysMemError::ReadOnly(f),
        e => e.into(),
    }
}

impl Inner {
    /// Logs a free of a frame that is not allocated, rate-limited: a kernel
    /// bug must not flood the log.
    fn note_bad_free(&mut self, f: Frame, beyond: bool) {
        self.double_frees += 1;
        let n = self.double_frees;
        if n <= 8 || n.is_power_of_two() {
            let what = if beyond {
                "beyond guest memory"
            } else {
                "not allocated (double free)"
            };
            log::warn!(
                "physmem: free of frame {} ignored: {what} [{n} so far]",
                f.0
            );
        }
    }

    /// Punches sorted frames, one fallocate per run of adjacent frames.
    fn punch_runs(&mut self, memfd: &MemFd, sorted: &[Frame]) {
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i + 1;
            while j < sorted.len() && sorted[j].0 == sorted[j - 1].0 + 1 {
                j += 1;
            }
            self.punch_range(memfd, sorted[i], (j - i) as u64);
            i = j;
        }
    }

    /// Punches `count` frames from `first`. If the host refuses, the frames
    /// are zeroed by hand so they still read as zeros.
    fn punch_range(&mut self, memfd: &MemFd, first: Frame, count: u64) {
        let start = first.offset();
        let len = count * PAGE_SIZE as u64;
        self.punched_frames += count;
        self.punch_calls += 1;
        if let Err(e) = memfd.punch_hole(start, len) {
            log::error!("physmem: {e}; zeroing instead");
            let zero = [0u8; PAGE_SIZE];
            for f in first.0..first.0 + count {
                if let Err(e) = self.view.write_at(Frame(f).offset() as usize, &zero) {
                    log::error!("physmem: zeroing frame {f} failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert!(matches!(PhysMem::new(0), Err(PhysMemError::TooSmall(0))));
        assert!(matches!(
            PhysMem::new(4095),
            Err(PhysMemError::TooSmall(4095))
        ));
        assert_eq!(PhysMem::new(3 * 4096 + 100).unwrap().frames_total(), 3);
    }

    #[test]
    fn out_of_memory() {
        let pm = PhysMem::new(2 * 4096).unwrap();
        pm.alloc().unwrap();
        pm.alloc().unwrap();
        assert!(matches!(pm.alloc(), Err(PhysMemError::OutOfMemory)));
    }

    #[test]
    fn write_read_copy() {
        let pm = PhysMem::new(1 << 20).unwrap();
        let a = pm.alloc().unwrap();
        let b = pm.alloc().unwrap();
        pm.write(a, 100, b"frame").unwrap();
        pm.copy_frame(a, b).unwrap();
        let mut buf = [0u8; 5];
        pm.read(b, 100, &mut buf);
        assert_eq!(&buf, b"frame");
    }

    #[test]
    fn bad_ranges_are_errors() {
        let pm = PhysMem::new(4 * 4096).unwrap();
        let a = pm.alloc().unwrap();
        assert!(matches!(
            pm.write(a, 4090, &[0; 7]),
            Err(PhysMemError::OutOfFrame { .. })
        ));
        assert!(matches!(
            pm.write(Frame(4), 0, &[0; 1]),
            Err(PhysMemError::BadFrame(_))
        ));
        assert!(pm.copy_frame(a, Frame(9)).is_err());
    }

    #[test]
    #[should_panic(expected = "physmem::read")]
    fn read_across_a_frame_panics() {
        let pm = PhysMem::new(4 * 4096).unwrap();
        let mut buf = [0u8; 8];
        pm.read(Frame(0), 4092, &mut buf);
    }

    #[test]
    fn freed_frames_come_back_zeroed_and_punched() {
        let pm = PhysMem::new(64 * 4096).unwrap();
        let frames: Vec<Frame> = (0..16).map(|_| pm.alloc().unwrap()).collect();
        for &f in &frames {
            pm.write(f, 0, &[0xee; PAGE_SIZE]).unwrap();
        }
        assert!(pm.stats().host_resident_bytes >= 16 * 4096);
        pm.free_many(&frames);
        assert_eq!(pm.stats().host_resident_bytes, 0);
        let again: Vec<Frame> = (0..16).map(|_| pm.alloc().unwrap()).collect();
        let mut buf = [1u8; PAGE_SIZE];
        for f in again {
            pm.read(f, 0, &mut buf);
            assert!(buf.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn double_free_is_ignored() {
        let pm = PhysMem::new(8 * 4096).unwrap();
        let a = pm.alloc().unwrap();
        let b = pm.alloc().unwrap();
        pm.write(b, 0, b"live").unwrap();
        pm.free(a);
        pm.free(a);
        pm.free_many(&[a, Frame(1000)]);
        let mut buf = [0u8; 4];
        pm.read(b, 0, &mut buf);
        assert_eq!(&buf, b"live");
        let s = pm.stats();
        assert_eq!(s.frames_allocated, 1);
        assert_eq!(s.frames_free, 7);
        assert_eq!(pm.alloc().unwrap(), a);
        assert_ne!(pm.alloc().unwrap(), a);
    }
}
