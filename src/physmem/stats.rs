//! Physmem statistics, with the host's own figure for the memory it holds.

use super::{PhysMem, PAGE_SIZE};

/// A snapshot of guest memory use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysMemStats {
    /// All frames of the memfd, plugged or not.
    pub frames_total: u64,
    pub frames_free: u64,
    pub frames_allocated: u64,
    /// Allocated frames currently showing a host file page.
    pub frames_substituted: u64,
    pub frames_unplugged: u64,
    /// Allocated frames of fault windows not touched at the last settle
    /// (untouched.rs): the host holds nothing for them.
    pub frames_untouched: u64,
    /// What the memfd really holds on the host: fstat `st_blocks * 512`.
    pub host_resident_bytes: u64,
    /// Bytes given back to the host by punching (frees and unplugs) so far.
    pub punched_bytes: u64,
    /// Host calls (fallocate) that punched them: one per run of adjacent
    /// frames freed together.
    pub punch_calls: u64,
}

impl PhysMem {
    /// Counts from the allocator and substitution table, and the memfd's
    /// `st_blocks` (0 if fstat fails, which is logged).
    pub fn stats(&self) -> PhysMemStats {
        let (free, allocated, unplugged, substituted, punched, punch_calls, untouched) = {
            let inner = self.inner.lock();
            (
                inner.alloc.free_count(),
                inner.alloc.allocated_count(),
                inner.alloc.unplugged_count(),
                inner.subst.len(),
                inner.punched_frames,
                inner.punch_calls,
                inner.untouched.len() as u64,
            )
        };
        let host_resident_bytes = self.memfd.resident_bytes().unwrap_or_else(|e| {
            log::error!("physmem: {e}");
            0
        });
        PhysMemStats {
            frames_total: self.frames,
            frames_free: free,
            frames_allocated: allocated,
            frames_substituted: substituted,
            frames_unplugged: unplugged,
            frames_untouched: untouched,
            host_resident_bytes,
            punched_bytes: punched * PAGE_SIZE as u64,
            punch_calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::physmem::{PhysMem, PAGE_SIZE};

    #[test]
    fn counts_add_up_and_residency_follows_writes() {
        let pm = PhysMem::new(32 * 4096).unwrap();
        let s = pm.stats();
        assert_eq!(
            (s.frames_total, s.frames_free, s.frames_allocated),
            (32, 32, 0)
        );
        assert_eq!(s.host_resident_bytes, 0);
        let fs: Vec<_> = (0..10).map(|_| pm.alloc().unwrap()).collect();
        for &f in &fs {
            pm.write(f, 0, &[1; PAGE_SIZE]).unwrap();
        }
        let s = pm.stats();
        assert_eq!((s.frames_free, s.frames_allocated), (22, 10));
        assert_eq!(s.host_resident_bytes, 10 * 4096);
        pm.free_many(&fs[..5]);
        let s = pm.stats();
        assert_eq!((s.frames_free, s.frames_allocated), (27, 5));
        assert_eq!(s.host_resident_bytes, 5 * 4096);
    }
}
