//! Hollow frames: allocated frames whose contents were written to swap and
//! whose memfd page was punched. The frame number stays with its owners
//! (page tables, copy-on-write counts do not change); the host holds
//! nothing for it until `fill` gives it its contents back. Hollow frames
//! do not count against the backed limit (limit.rs).

use super::{Frame, PhysMem, PhysMemError, PAGE_SIZE};

impl PhysMem {
    /// Punches allocated frame `f` and marks it hollow. The caller has
    /// saved its contents and made sure no stub still maps it.
    pub fn hollow(&self, f: Frame) -> Result<(), PhysMemError> {
        if f.0 >= self.frames {
            return Err(PhysMemError::BadFrame(f));
        }
        let mut inner = self.inner.lock();
        if !inner.alloc.is_allocated(f) || inner.subst.contains(f) {
            return Err(PhysMemError::BadFrame(f));
        }
        inner.untouched.remove(&f.0);
        if inner.hollow.insert(f) {
            inner.punch_range(&self.memfd, f, 1);
        }
        Ok(())
    }

    /// Gives a hollow frame its contents back.
    pub fn fill(&self, f: Frame, data: &[u8; PAGE_SIZE]) -> Result<(), PhysMemError> {
        let at = self.byte_offset(f, 0, PAGE_SIZE)?;
        let mut inner = self.inner.lock();
        if !inner.hollow.remove(&f) {
            return Err(PhysMemError::BadFrame(f));
        }
        inner.view.write_at(at, data).map_err(|e| e.into())
    }

    pub fn is_hollow(&self, f: Frame) -> bool {
        self.inner.lock().hollow.contains(&f)
    }

    /// Frames hollow now.
    pub fn frames_hollow(&self) -> u64 {
        self.inner.lock().hollow.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use crate::physmem::{PhysMem, PAGE_SIZE};

    #[test]
    fn hollow_frames_cost_nothing_and_come_back() {
        let pm = PhysMem::new(16 * 4096).unwrap();
        let f = pm.alloc().unwrap();
        pm.write(f, 0, &[7; PAGE_SIZE]).unwrap();
        assert_eq!(pm.frames_backed(), 1);
        pm.hollow(f).unwrap();
        assert!(pm.is_hollow(f));
        assert_eq!(pm.frames_backed(), 0);
        assert_eq!(pm.stats().host_resident_bytes, 0);
        pm.fill(f, &[9; PAGE_SIZE]).unwrap();
        assert!(!pm.is_hollow(f));
        let mut b = [0u8; 4];
        pm.read(f, 0, &mut b);
        assert_eq!(b, [9; 4]);
        assert!(pm.fill(f, &[0; PAGE_SIZE]).is_err());
        // A hollow frame freed is simply free.
        pm.hollow(f).unwrap();
        pm.free(f);
        assert_eq!(pm.frames_hollow(), 0);
        assert!(pm.hollow(f).is_err());
    }
}
