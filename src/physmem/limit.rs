//! A cap on the frames the memfd backs: the part of the instance's host
//! memory budget left for guest memory (kernel/budget.rs sets it). Past it
//! `alloc` fails as if guest memory were full, so the guest meets memory
//! pressure (reclaim, swap, its OOM killer) before the host's OOM killer
//! has a reason to act. Substituted frames (ubd=mmap image pages) do not
//! count: the memfd holds nothing for them.

use std::sync::atomic::Ordering;

use super::{Inner, PhysMem};

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
    pub fn backed_limit(&self) -> u64 {
        self.backed_limit.load(Ordering::Relaxed)
    }

    /// Sets the cap. Frames already allocated past it stay: only new
    /// allocations are refused until enough are freed.
    pub fn set_backed_limit(&self, frames: u64) {
        self.backed_limit.store(frames, Ordering::Relaxed);
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

    /// Frames counted against the cap now (allocated, neither substituted
    /// nor hollow; untouched ones included). What the host really holds
    /// is `frames_host_backed` (untouched.rs).
    pub fn frames_backed(&self) -> u64 {
        self.inner.lock().committed()
    }
}

#[cfg(test)]
mod tests {
    use crate::physmem::{PhysMem, PhysMemError};

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
}
