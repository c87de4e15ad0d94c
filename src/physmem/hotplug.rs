//! Hot-(un)plug, like UML 2.6's `config mem=-64M`: free frames leave the
//! guest (punched, so the host gets them back) and can be given back later.
//!
//! Evicting page cache to make frames free is the caller's job; this only
//! takes frames that are free now. The guest's MemTotal is
//! `frames_total - frames_unplugged` (see `PhysMem::frames_plugged`).
//! `PhysMem::with_max` makes a memfd larger than the boot size whose top
//! starts unplugged: plugging it is how a guest grows past `mem=`.

use super::{Frame, PhysMem};

impl PhysMem {
    /// Takes up to `frames` free frames out of the allocator (highest first)
    /// and punches them; returns how many were taken.
    pub fn unplug(&self, frames: u64) -> u64 {
        let mut inner = self.inner.lock();
        let runs = inner.alloc.unplug(frames);
        let mut n = 0;
        let mut single: Vec<Frame> = Vec::new();
        for (first, count) in runs {
            n += count;
            if count == 1 {
                single.push(first);
            } else {
                inner.punch_range(&self.memfd, first, count);
            }
        }
        single.sort_unstable();
        inner.punch_runs(&self.memfd, &single);
        log::info!("physmem: unplugged {n} of {frames} frames asked for");
        n
    }

    /// Gives up to `frames` unplugged frames back; returns how many.
    pub fn plug(&self, frames: u64) -> u64 {
        let n = self.inner.lock().alloc.plug(frames);
        log::info!("physmem: plugged {n} of {frames} frames asked for");
        n
    }

    /// Frames the guest may use: all of them minus the unplugged ones.
    pub fn frames_plugged(&self) -> u64 {
        self.frames - self.inner.lock().alloc.unplugged_count()
    }
}

#[cfg(test)]
mod tests {
    use crate::physmem::{PhysMem, PhysMemError, PAGE_SIZE};

    #[test]
    fn unplug_takes_only_free_frames_and_plug_returns_them() {
        let pm = PhysMem::new(16 * 4096).unwrap();
        let held: Vec<_> = (0..4).map(|_| pm.alloc().unwrap()).collect();
        assert_eq!(pm.unplug(10), 10);
        assert_eq!(pm.frames_plugged(), 6);
        assert_eq!(pm.unplug(10), 2);
        let s = pm.stats();
        assert_eq!(s.frames_unplugged, 12);
        assert_eq!(s.frames_free, 0);
        assert_eq!(s.frames_allocated, 4);
        assert!(matches!(pm.alloc(), Err(PhysMemError::OutOfMemory)));
        assert_eq!(pm.plug(5), 5);
        assert_eq!(pm.stats().frames_free, 5);
        assert_eq!(pm.plug(100), 7);
        assert_eq!(pm.frames_plugged(), 16);
        let more: Vec<_> = (0..12).map(|_| pm.alloc().unwrap()).collect();
        for f in more.iter().chain(&held) {
            assert!(f.0 < 16);
        }
        assert!(matches!(pm.alloc(), Err(PhysMemError::OutOfMemory)));
    }

    #[test]
    fn unplugged_frames_are_punched_and_come_back_zeroed() {
        let pm = PhysMem::new(8 * 4096).unwrap();
        let frames: Vec<_> = (0..8).map(|_| pm.alloc().unwrap()).collect();
        for &f in &frames {
            pm.write(f, 0, &[0x42; PAGE_SIZE]).unwrap();
        }
        pm.free_many(&frames);
        assert_eq!(pm.unplug(8), 8);
        assert_eq!(pm.stats().host_resident_bytes, 0);
        assert_eq!(pm.plug(8), 8);
        let mut buf = [1u8; PAGE_SIZE];
        for _ in 0..8 {
            let f = pm.alloc().unwrap();
            pm.read(f, 0, &mut buf);
            assert!(buf.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn with_max_starts_the_top_unplugged_and_grows_into_it() {
        // 1 GiB of maxmem over 64 frames plugged: no per-frame list for
        // the rest, and the host holds nothing.
        let pm = PhysMem::with_max(64 * 4096, 1 << 30).unwrap();
        assert_eq!(pm.frames_total(), (1 << 30) / 4096);
        assert_eq!(pm.frames_plugged(), 64);
        let s = pm.stats();
        assert_eq!((s.frames_free, s.host_resident_bytes), (64, 0));
        let held: Vec<_> = (0..64).map(|_| pm.alloc().unwrap()).collect();
        assert!(matches!(pm.alloc(), Err(PhysMemError::OutOfMemory)));
        assert!(held.iter().all(|f| f.0 < 64));
        // Grow past the boot size: new frames work and read as zeros.
        assert_eq!(pm.plug(32), 32);
        assert_eq!(pm.frames_plugged(), 96);
        let f = pm.alloc().unwrap();
        assert!(f.0 >= 64 && f.0 < 96, "{f:?}");
        pm.write(f, 0, &[9; PAGE_SIZE]).unwrap();
        // And never past maxmem.
        let left = pm.frames_total() - 96;
        assert_eq!(pm.plug(u64::MAX), left);
        assert_eq!(pm.plug(1), 0);
        assert_eq!(pm.frames_plugged(), pm.frames_total());
        // Shrink back below the boot size: free frames only.
        assert_eq!(pm.unplug(u64::MAX), pm.frames_total() - 65);
        assert_eq!(pm.frames_plugged(), 65);
        assert!(pm.stats().punched_bytes >= (pm.frames_total() - 65) * 4096);
    }

    #[test]
    fn with_max_below_mem_is_just_mem() {
        let pm = PhysMem::with_max(16 * 4096, 4096).unwrap();
        assert_eq!((pm.frames_total(), pm.frames_plugged()), (16, 16));
        assert!(matches!(
            PhysMem::with_max(100, 1 << 20),
            Err(PhysMemError::TooSmall(100))
        ));
    }
}
