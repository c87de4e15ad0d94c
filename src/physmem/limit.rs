//! A cap on the frames the memfd backs: the part of the instance's host
//! memory budget left for guest memory (kernel/budget.rs sets it). Past it
//! `alloc` fails as if guest memory were full, so the guest meets memory
//! pressure (reclaim, swap, its OOM killer) before the host's OOM killer
//! has a reason to act. Substituted frames (ubd=mmap image pages) do not
//! count: the memfd holds nothing for them. The kernel's own heap growth
//! since the cap was set (host/heap.rs: a fork's page-table copy, a swap
//! pass's reverse map) is charged against it at once, frame for frame,
//! until the budget's next refresh measures it (`charge_heap_from`).

use std::sync::atomic::Ordering;

use super::{Inner, PhysMem, PAGE_SIZE};

impl Inner {
    /// Frames counted against the cap: allocated, neither substituted (an
    /// image page) nor hollow (in swap). Untouched window frames count:
    /// the guest may touch them without asking (untouched.rs).
    pub(super) fn committed(&self) -> u64 {
        self.alloc
            .allocated_count()
            .saturating_sub(self.subst.len())
            .saturating_sub(self.hollow.len() as u64)
    }
}

impl PhysMem {
    /// The most frames the memfd may back at once; `u64::MAX`: no cap.
    /// Less the frames the kernel's heap grew by since the cap was set,
    /// when that is charged (`charge_heap_from`).
    pub fn backed_limit(&self) -> u64 {
        let set = self.backed_limit.load(Ordering::Relaxed);
        if set == u64::MAX {
            return set;
        }
        set.saturating_sub(self.heap_growth_frames())
    }

    /// Sets the cap. Frames already allocated past it stay: only new
    /// allocations are refused until enough are freed.
    pub fn set_backed_limit(&self, frames: u64) {
        self.backed_limit.store(frames, Ordering::Relaxed);
    }

    /// From now on the cap is lowered by the most umlrun's heap held past
    /// `base` bytes (host/heap.rs `peak_since_mark`; `base` is what it
    /// held at the mark) until the next call; u64::MAX stops charging.
    /// The budget calls it at each refresh with what it measured: growth
    /// between two refreshes is counted before /proc shows it.
    pub fn charge_heap_from(&self, base: u64) {
        self.heap_base.store(base, Ordering::Relaxed);
    }

    /// Frames of heap growth charged against the cap now.
    pub fn heap_growth_frames(&self) -> u64 {
        growth_frames(
            crate::host::heap::peak_since_mark(),
            self.heap_base.load(Ordering::Relaxed),
        )
    }

    /// How many `alloc` calls were refused so far (no frame free, or the
    /// cap reached). A syscall that failed while this moved ran out of
    /// guest memory and may be run again after reclaim (kernel/oom.rs
    /// `dispatch_under_pressure`). Window allocations are not counted:
    /// their refusal only means single frames are used.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether a hollow frame may be filled again (below the cap); a
    /// refusal is counted as `alloc`'s are.
    pub fn may_fill(&self) -> bool {
        if self.frames_backed() < self.backed_limit() {
            return true;
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Frames an `alloc` may take now: free ones, and no more than the cap
    /// leaves. What the OOM path must make to let a refused allocation
    /// succeed: freeing a frame that does not count against the cap (a
    /// substituted image page) makes none while the cap is what refuses.
    pub fn room(&self) -> u64 {
        let inner = self.inner.lock();
        let under_cap = self.backed_limit().saturating_sub(inner.committed());
        inner.alloc.free_count().min(under_cap)
    }

    /// Whether the cap, not the free frames, is what limits allocation:
    /// then only frames it counts are worth freeing.
    pub fn cap_binds(&self) -> bool {
        let inner = self.inner.lock();
        self.backed_limit().saturating_sub(inner.committed()) < inner.alloc.free_count()
    }

    /// Frames counted against the cap now (allocated, neither substituted
    /// nor hollow; untouched ones included). What the host really holds
    /// is `frames_host_backed` (untouched.rs).
    pub fn frames_backed(&self) -> u64 {
        self.inner.lock().committed()
    }
}

/// Frames (rounded up) a heap that held `peak` bytes at most grew by past
/// `base`; none when not charged (`base` u64::MAX).
fn growth_frames(peak: u64, base: u64) -> u64 {
    peak.saturating_sub(base).div_ceil(PAGE_SIZE as u64)
}

#[cfg(test)]
mod tests {
    use super::growth_frames;
    use crate::physmem::{PhysMem, PhysMemError};

    #[test]
    fn heap_growth_is_charged_in_whole_frames_only_past_the_base() {
        assert_eq!(growth_frames(5 << 20, u64::MAX), 0);
        assert_eq!(growth_frames(4 << 20, 5 << 20), 0);
        assert_eq!(growth_frames((5 << 20) + 1, 5 << 20), 1);
        assert_eq!(growth_frames(7 << 20, 5 << 20), 512);
        // Not charged (the default, and the allocator not installed in
        // this test binary): the cap is what was set.
        let pm = PhysMem::new(64 * 4096).unwrap();
        pm.set_backed_limit(10);
        assert_eq!(pm.backed_limit(), 10);
        pm.charge_heap_from(0);
        assert_eq!(pm.heap_growth_frames(), 0);
        assert_eq!(pm.backed_limit(), 10);
    }

    #[test]
    fn the_limit_refuses_new_frames_only() {
        let pm = PhysMem::new(64 * 4096).unwrap();
        let a: Vec<_> = (0..8).map(|_| pm.alloc().unwrap()).collect();
        pm.set_backed_limit(4);
        assert_eq!(pm.frames_backed(), 8);
        assert!(matches!(pm.alloc(), Err(PhysMemError::OutOfMemory)));
        pm.free_many(&a[..5]);
        assert_eq!(pm.frames_backed(), 3);
        pm.alloc().unwrap();
        assert!(pm.alloc().is_err());
        assert_eq!(pm.refusals(), 2);
        pm.set_backed_limit(u64::MAX);
        assert!(pm.alloc().is_ok());
        assert_eq!(pm.refusals(), 2);
    }

    /// Room is what an allocation may take: the free frames, or less when
    /// the cap leaves less; a substituted frame does not count against the
    /// cap, so freeing one under the cap makes no room.
    #[test]
    fn room_is_the_lesser_of_free_frames_and_the_cap() {
        let pm = PhysMem::new(64 * 4096).unwrap();
        assert_eq!(pm.room(), 64);
        assert!(!pm.cap_binds());
        let a: Vec<_> = (0..8).map(|_| pm.alloc().unwrap()).collect();
        pm.set_backed_limit(10);
        assert_eq!(pm.room(), 2);
        assert!(pm.cap_binds());
        let file = tempfile::tempfile().unwrap();
        file.set_len(4096).unwrap();
        let file = std::sync::Arc::new(file);
        pm.substitute(a[0], file, 0, false).unwrap();
        assert_eq!(pm.room(), 3, "a substituted frame costs the cap nothing");
        pm.free(a[0]);
        assert_eq!(pm.room(), 3, "freeing it makes no room under the cap");
        pm.free(a[1]);
        assert_eq!(pm.room(), 4);
        pm.set_backed_limit(u64::MAX);
        assert_eq!(pm.room(), 58);
    }
}
