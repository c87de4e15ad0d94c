//! mlock, munlock and mlockall on an address space: the lock flag over a
//! range of VMAs (split at the range's ends, merged again with equal
//! neighbours as Linux's mlock_fixup does), the locked size (VmLck,
//! RLIMIT_MEMLOCK) and populating locked ranges. Locked pages are never
//! chosen for swap-out (`reclaim.rs`).

use std::rc::Rc;

use super::aspace::AddressSpace;
use super::frames::FrameRefs;
use super::types::*;
use super::vma::{Backing, Lock, Vma};
use crate::errno::{Errno, KResult};

/// Can `b` follow `a` as one VMA (Linux's is_mergeable_vma, for the
/// cases this kernel makes): adjacent, same attributes, private anonymous
/// memory or consecutive pages of the same file.
fn mergeable(a: &Vma, b: &Vma) -> bool {
    if a.end != b.start
        || a.prot != b.prot
        || a.shared != b.shared
        || a.may_write != b.may_write
        || a.label != b.label
        || a.lock != b.lock
    {
        return false;
    }
    match (&a.backing, &b.backing) {
        (Backing::Anon, Backing::Anon) => !a.shared,
        (
            Backing::File {
                source: sa,
                pgoff: pa,
            },
            Backing::File {
                source: sb,
                pgoff: pb,
            },
        ) => Rc::ptr_eq(sa, sb) && pa.checked_add(a.len() / PAGE) == Some(*pb),
        _ => false,
    }
}

impl AddressSpace {
    /// Bytes in locked VMAs (Linux's locked_vm, shown as VmLck).
    pub fn locked_bytes(&self) -> u64 {
        self.vmas
            .values()
            .filter(|v| v.lock != Lock::None)
            .map(|v| v.len())
            .sum()
    }

    /// Bytes of [start, end) already in locked VMAs (Linux's
    /// count_mm_mlocked_page_nr: a range locked again is not counted twice).
    pub fn locked_bytes_in(&self, start: GuestVirt, end: GuestVirt) -> u64 {
        self.vmas_in(start, end)
            .filter(|v| v.lock != Lock::None)
            .map(|v| v.end.min(end).get() - v.start.max(start).get())
            .sum()
    }

    /// Where the mapped run starting at `start` ends (at most `end`):
    /// `start` itself when `start` is not mapped.
    fn mapped_reach(&self, start: GuestVirt, end: GuestVirt) -> GuestVirt {
        let mut at = start;
        for v in self.vmas_in(start, end) {
            if v.start > at {
                break;
            }
            at = v.end;
        }
        at.min(end)
    }

    /// Sets the lock of every VMA in [start, end) (page-aligned), splitting
    /// at the ends and merging equal neighbours. Over a hole, as Linux's
    /// apply_vma_lock_flags: the VMAs before the first hole are changed,
    /// then ENOMEM.
    pub fn set_lock(&mut self, start: GuestVirt, end: GuestVirt, lock: Lock) -> KResult<()> {
        if start >= end {
            return Ok(());
        }
        let reach = self.mapped_reach(start, end);
        if reach > start {
            self.split_at(start);
            self.split_at(reach);
            for (_, v) in self.vmas.range_mut(start..reach) {
                v.lock = lock;
            }
            self.merge_between(start, reach);
        }
        if reach < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// mlockall(MCL_CURRENT) and munlockall: every VMA gets `lock`.
    pub fn set_lock_all(&mut self, lock: Lock) {
        for v in self.vmas.values_mut() {
            v.lock = lock;
        }
        self.merge_between(GuestVirt(0), GuestVirt(USER_TOP));
    }

    /// Merges mergeable VMAs from the one holding or ending at `start` to
    /// the one starting at `end`.
    fn merge_between(&mut self, start: GuestVirt, end: GuestVirt) {
        let first = self
            .vmas
            .range(..start)
            .next_back()
            .filter(|(_, v)| v.end >= start)
            .map(|(k, _)| *k)
            .unwrap_or(start);
        let keys: Vec<GuestVirt> = self.vmas.range(first..=end).map(|(k, _)| *k).collect();
        let mut cur: Option<GuestVirt> = None;
        for k in keys {
            match cur {
                Some(c) if mergeable(&self.vmas[&c], &self.vmas[&k]) => {
                    let next = self.take_vma(k).expect("listed");
                    self.set_vma_end(c, next.end);
                }
                _ => cur = Some(k),
            }
        }
    }

    /// Faults in the pages of [start, end) that lie in VMAs locked with
    /// `Lock::Populated` and are accessible (Linux's __mm_populate after
    /// mlock: writable private pages are written, so copy-on-write breaks
    /// now; errors are ignored, as Linux ignores them for mlock). Stops
    /// early when memory runs out.
    pub fn populate_locked(&mut self, start: GuestVirt, end: GuestVirt, anon: &mut FrameRefs) {
        let ranges: Vec<(u64, u64, bool)> = self
            .vmas_in(start, end)
            .filter(|v| v.lock == Lock::Populated && v.prot != PROT_NONE)
            .map(|v| {
                (
                    v.start.max(start).get(),
                    v.end.min(end).get(),
                    v.prot & PROT_WRITE != 0 && !v.shared,
                )
            })
            .collect();
        for (s, e, write) in ranges {
            let mut p = s;
            while p < e {
                match self.resolve(p, write, anon) {
                    // Locked pages are resident: a window page counts now.
                    Ok(f) => anon.physmem().touch(f),
                    Err(super::types::FaultError::Oom) => return,
                    Err(_) => {}
                }
                p += PAGE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64) -> Vma {
        Vma {
            start: GuestVirt(start),
            end: GuestVirt(end),
            prot: PROT_READ | PROT_WRITE,
            shared: false,
            may_write: true,
            backing: Backing::Anon,
            label: None,
            lock: Lock::None,
            write_ref: None,
        }
    }

    fn space(vmas: &[Vma]) -> AddressSpace {
        let mut a = AddressSpace::new();
        for v in vmas {
            a.add_vma(v.clone());
        }
        a
    }

    fn layout(a: &AddressSpace) -> Vec<(u64, u64, Lock)> {
        a.vmas()
            .map(|v| (v.start.get(), v.end.get(), v.lock))
            .collect()
    }

    const B: u64 = 0x10_0000;

    #[test]
    fn lock_splits_and_unlock_merges_back() {
        let mut a = space(&[anon(B, B + 8 * PAGE)]);
        a.set_lock(
            GuestVirt(B + 2 * PAGE),
            GuestVirt(B + 4 * PAGE),
            Lock::Populated,
        )
        .unwrap();
        assert_eq!(
            layout(&a),
            vec![
                (B, B + 2 * PAGE, Lock::None),
                (B + 2 * PAGE, B + 4 * PAGE, Lock::Populated),
                (B + 4 * PAGE, B + 8 * PAGE, Lock::None),
            ]
        );
        assert_eq!(a.locked_bytes(), 2 * PAGE);
        assert_eq!(
            a.locked_bytes_in(GuestVirt(B), GuestVirt(B + 3 * PAGE)),
            PAGE
        );
        // Locking the neighbour with the same mode merges the two.
        a.set_lock(
            GuestVirt(B + 4 * PAGE),
            GuestVirt(B + 5 * PAGE),
            Lock::Populated,
        )
        .unwrap();
        assert_eq!(layout(&a)[1], (B + 2 * PAGE, B + 5 * PAGE, Lock::Populated));
        assert_eq!(a.locked_bytes(), 3 * PAGE);
        // A different mode splits again.
        a.set_lock(
            GuestVirt(B + 4 * PAGE),
            GuestVirt(B + 5 * PAGE),
            Lock::OnFault,
        )
        .unwrap();
        assert_eq!(a.vma_count(), 4);
        assert_eq!(a.locked_bytes(), 3 * PAGE);
        a.set_lock(GuestVirt(B), GuestVirt(B + 8 * PAGE), Lock::None)
            .unwrap();
        assert_eq!(layout(&a), vec![(B, B + 8 * PAGE, Lock::None)]);
        assert_eq!(a.locked_bytes(), 0);
    }

    #[test]
    fn hole_is_enomem_after_the_part_before_it() {
        let mut a = space(&[anon(B, B + 2 * PAGE), anon(B + 3 * PAGE, B + 4 * PAGE)]);
        // Unmapped start: nothing changes.
        assert_eq!(
            a.set_lock(GuestVirt(B - PAGE), GuestVirt(B + PAGE), Lock::Populated),
            Err(Errno::ENOMEM)
        );
        assert_eq!(a.locked_bytes(), 0);
        // The part before the hole is locked, then ENOMEM.
        assert_eq!(
            a.set_lock(
                GuestVirt(B + PAGE),
                GuestVirt(B + 4 * PAGE),
                Lock::Populated
            ),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            layout(&a),
            vec![
                (B, B + PAGE, Lock::None),
                (B + PAGE, B + 2 * PAGE, Lock::Populated),
                (B + 3 * PAGE, B + 4 * PAGE, Lock::None),
            ]
        );
        assert_eq!(
            a.set_lock(
                GuestVirt(B + 3 * PAGE),
                GuestVirt(B + 5 * PAGE),
                Lock::Populated
            ),
            Err(Errno::ENOMEM)
        );
        assert_eq!(a.locked_bytes(), 2 * PAGE);
        a.set_lock(GuestVirt(B), GuestVirt(B + 2 * PAGE), Lock::None)
            .unwrap();
        assert_eq!(a.vma_count(), 2);
        // Two VMAs with a hole between never merge.
        a.set_lock_all(Lock::OnFault);
        assert_eq!(a.vma_count(), 2);
        assert_eq!(a.locked_bytes(), 3 * PAGE);
    }

    #[test]
    fn unlike_vmas_do_not_merge() {
        let mut ro = anon(B + 2 * PAGE, B + 4 * PAGE);
        ro.prot = PROT_READ;
        let mut shared = anon(B + 4 * PAGE, B + 6 * PAGE);
        shared.shared = true;
        let mut a = space(&[anon(B, B + 2 * PAGE), ro, shared]);
        a.set_lock_all(Lock::Populated);
        assert_eq!(a.vma_count(), 3);
        a.set_lock_all(Lock::None);
        assert_eq!(a.vma_count(), 3);
    }

    #[test]
    fn populated_and_never_swap_candidates() {
        let pm = std::sync::Arc::new(crate::physmem::PhysMem::new(16 * PAGE).unwrap());
        let mut frames = FrameRefs::new(pm);
        let mut a = space(&[anon(B, B + 4 * PAGE)]);
        a.set_lock(GuestVirt(B), GuestVirt(B + 2 * PAGE), Lock::Populated)
            .unwrap();
        a.populate_locked(GuestVirt(B), GuestVirt(B + 4 * PAGE), &mut frames);
        assert!(a.pte(B).is_some() && a.pte(B + PAGE).is_some());
        assert!(
            a.pte(B + 2 * PAGE).is_none(),
            "unlocked pages stay untouched"
        );
        for p in [B + 2 * PAGE, B + 3 * PAGE] {
            a.resolve(p, true, &mut frames).unwrap();
        }
        let pages = |a: &AddressSpace, f: &FrameRefs| -> Vec<u64> {
            a.swap_candidates(f, 0, &crate::mm::reclaim::Sharers::<u64>::default())
                .iter()
                .map(|c| c.page)
                .collect()
        };
        assert_eq!(pages(&a, &frames), vec![B + 2 * PAGE, B + 3 * PAGE]);
        // On-fault locks protect the pages they hold as well.
        a.set_lock(
            GuestVirt(B + 3 * PAGE),
            GuestVirt(B + 4 * PAGE),
            Lock::OnFault,
        )
        .unwrap();
        assert_eq!(pages(&a, &frames), vec![B + 2 * PAGE]);
        a.set_lock_all(Lock::None);
        assert_eq!(pages(&a, &frames).len(), 4);
        // A fork's child inherits no lock, nor MCL_FUTURE; exec drops both.
        a.set_lock_all(Lock::Populated);
        a.lock_future = Lock::OnFault;
        let physmem = frames.physmem().clone();
        let mut child = a.fork(&mut frames, &physmem);
        assert_eq!((child.locked_bytes(), child.lock_future), (0, Lock::None));
        assert_eq!(a.locked_bytes(), 4 * PAGE);
        child.clear(&mut frames);
        a.clear(&mut frames);
        assert_eq!((a.locked_bytes(), a.lock_future), (0, Lock::None));
    }
}
