//! Untouched frames: frames handed out for an anonymous fault window
//! (mm/fault.rs) and mapped into a stub before the guest used them. A
//! memfd hole reads as zeros and costs the host nothing until the first
//! touch through a mapping gives it a page, so a window of such frames is
//! free for the host until the guest walks into it.
//!
//! They count against the cap on frames (limit.rs): the guest may touch
//! them without asking, so admitting a frame past the cap could let the
//! host's memory pass the budget. They do not count as backed by the host
//! (`frames_host_backed`), as resident (RSS, mincore) or as used (MemFree)
//! until `settle` sees the host's page (mincore on the view): the figures
//! are the host's own, as Linux counts a page when it is touched, not when
//! it is reserved.
//!
//! A window is taken only while memory is plentiful (`WINDOW_MARGIN`), so
//! a sparse toucher cannot tie up guest memory in untouched frames; under
//! pressure the kernel first gives untouched frames back (mm/fault.rs
//! `release_untouched`) before it reclaims, swaps or kills.

use std::collections::BTreeSet;

use super::{Frame, PhysMem, PhysMemError};

/// Mincore is asked about at most this many pages per call (one byte each).
const SETTLE_CHUNK: u64 = 16 * 1024;

/// The untouched frames, settled, for look-ups in a loop (RSS of many
/// VMAs) without taking physmem's lock per page.
#[derive(Debug, Default, Clone)]
pub struct Untouched(BTreeSet<u64>);

impl Untouched {
    pub fn contains(&self, f: Frame) -> bool {
        self.0.contains(&f.0)
    }

    pub fn len(&self) -> u64 {
        self.0.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PhysMem {
    /// `n` zero-filled frames for a window (as many of them adjacent as the
    /// allocator has), all marked untouched. Refused (`OutOfMemory`, and
    /// nothing taken) unless, after it, at least an eighth of plugged
    /// memory stays free and the frames counted against the cap stay an
    /// eighth of the cap below it: windows are for times of plenty.
    pub fn alloc_window(&self, n: u64) -> Result<Vec<Frame>, PhysMemError> {
        let limit = self.backed_limit();
        let plugged = self.frames_plugged();
        let mut inner = self.inner.lock();
        let free_after = inner.alloc.free_count().checked_sub(n);
        let committed_after = inner.committed().checked_add(n);
        let ok = free_after.is_some_and(|f| f >= plugged / 8)
            && committed_after
                .is_some_and(|c| limit == u64::MAX || c.saturating_add(limit / 8) <= limit);
        if !ok || n == 0 {
            return Err(PhysMemError::OutOfMemory);
        }
        let frames = inner.alloc.alloc_run(n).ok_or(PhysMemError::OutOfMemory)?;
        inner.untouched.extend(frames.iter().map(|f| f.0));
        Ok(frames)
    }

    /// The guest is about to touch `f` (the page that faulted): it counts
    /// from now on.
    pub fn touch(&self, f: Frame) {
        self.inner.lock().untouched.remove(&f.0);
    }

    /// Whether `f` was untouched at the last `settle` (no host call).
    pub fn is_untouched(&self, f: Frame) -> bool {
        self.inner.lock().untouched.contains(&f.0)
    }

    /// Asks the host which untouched frames it now holds a page for, and
    /// counts those as touched. Returns how many stay untouched.
    pub fn settle(&self) -> u64 {
        let mut inner = self.inner.lock();
        let (Some(&lo), Some(&hi)) = (inner.untouched.first(), inner.untouched.last()) else {
            return 0;
        };
        let mut touched = Vec::new();
        let mut buf = vec![0u8; SETTLE_CHUNK.min(hi - lo + 1) as usize];
        let mut at = lo;
        while at <= hi {
            let n = SETTLE_CHUNK.min(hi - at + 1);
            let out = &mut buf[..n as usize];
            if let Err(e) = inner.view.resident(Frame(at).offset() as usize, out) {
                // Without the host's answer every frame is taken as
                // touched: figures may overstate, never understate.
                log::error!("physmem: {e}; untouched frames counted as touched");
                inner.untouched.clear();
                return 0;
            }
            touched.extend(
                inner
                    .untouched
                    .range(at..at + n)
                    .filter(|&&f| out[(f - at) as usize] != 0)
                    .copied(),
            );
            // The next untouched frame after this chunk, skipping gaps.
            match inner.untouched.range(at + n..).next() {
                Some(&next) => at = next,
                None => break,
            }
        }
        for f in touched {
            inner.untouched.remove(&f);
        }
        inner.untouched.len() as u64
    }

    /// The untouched frames after a `settle`.
    pub fn untouched(&self) -> Untouched {
        self.settle();
        Untouched(self.inner.lock().untouched.clone())
    }

    /// Frames the host really holds a page for: those counted against
    /// the cap less the untouched ones (settled first).
    pub fn frames_host_backed(&self) -> u64 {
        self.settle();
        let inner = self.inner.lock();
        inner
            .committed()
            .saturating_sub(inner.untouched.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::physmem::{PhysMem, PAGE_SIZE};

    #[test]
    fn untouched_frames_count_once_the_host_holds_them() {
        let pm = PhysMem::new(256 * 4096).unwrap();
        let w = pm.alloc_window(16).unwrap();
        assert_eq!(w.len(), 16);
        // Adjacent frames: one host mapping covers the window.
        assert!(w.windows(2).all(|p| p[1].0 == p[0].0 + 1));
        assert_eq!(pm.frames_backed(), 16, "all count against the cap");
        assert_eq!(pm.frames_host_backed(), 0);
        assert_eq!(pm.untouched().len(), 16);
        pm.touch(w[0]);
        pm.write(w[3], 0, &[1; PAGE_SIZE]).unwrap();
        // A read through a shared mapping gives a shmem hole a page too.
        let mut b = [0u8; 8];
        pm.read(w[5], 0, &mut b);
        assert_eq!(b, [0; 8]);
        let u = pm.untouched();
        assert!(!u.contains(w[0]) && !u.contains(w[3]) && !u.contains(w[5]));
        assert!(u.contains(w[1]));
        assert_eq!(u.len(), 13);
        // w[0] was only promised: the host has nothing for it yet.
        assert_eq!(pm.frames_host_backed(), 3);
        assert_eq!(pm.stats().host_resident_bytes, 2 * 4096);
        pm.free_many(&w);
        assert_eq!(pm.untouched().len(), 0);
        assert_eq!((pm.frames_backed(), pm.frames_host_backed()), (0, 0));
    }

    #[test]
    fn windows_only_in_plenty() {
        let pm = PhysMem::new(64 * 4096).unwrap();
        // 64 frames: a window must leave 8 free.
        assert!(pm.alloc_window(57).is_err());
        assert!(pm.alloc_window(0).is_err());
        let w = pm.alloc_window(56).unwrap();
        assert!(pm.alloc_window(1).is_err());
        pm.free_many(&w);
        pm.set_backed_limit(32);
        // Committed + n + limit/8 <= limit.
        assert!(pm.alloc_window(29).is_err());
        let w = pm.alloc_window(28).unwrap();
        assert_eq!(pm.frames_backed(), 28);
        // Single frames still come up to the cap.
        let more: Vec<_> = (0..4).map(|_| pm.alloc().unwrap()).collect();
        assert!(pm.alloc().is_err());
        pm.free_many(&w);
        pm.free_many(&more);
    }

    #[test]
    fn a_hollow_frame_is_not_untouched() {
        let pm = PhysMem::new(64 * 4096).unwrap();
        let w = pm.alloc_window(4).unwrap();
        pm.hollow(w[1]).unwrap();
        assert!(!pm.is_untouched(w[1]));
        assert_eq!(pm.frames_backed(), 3);
        assert_eq!(pm.frames_host_backed(), 0);
        pm.free_many(&w);
    }
}
