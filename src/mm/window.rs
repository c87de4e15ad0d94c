//! Anonymous fault windows: a fault in private anonymous memory maps the
//! whole aligned window around it in one host mapping, so a sequential
//! toucher asks the kernel once per window, not once per page. The
//! window's other frames are memfd holes the guest has not touched
//! (physmem/untouched.rs): they cost the host nothing until the guest's
//! own touch, a host minor fault that never reaches umlrun.
//!
//! RSS, mincore and MemFree count a window page once the host holds it;
//! under memory pressure the untouched pages are given back first
//! (`release_untouched`: an untouched anonymous page reads as zeros, so
//! forgetting it changes nothing the guest can see).

use super::aspace::{AddressSpace, Pte};
use super::frames::FrameRefs;
use super::types::*;
use super::vma::{Backing, Lock};
use crate::physmem::Untouched;

/// Pages of a window in an anonymous VMA smaller than `LARGE_VMA`.
pub const WINDOW: u64 = 16;
/// Pages of a window in a larger one (a 2 MiB region, as a huge page).
pub const LARGE_WINDOW: u64 = 512;
/// VMAs of at least this many bytes get `LARGE_WINDOW` (but not the stack).
pub const LARGE_VMA: u64 = 8 << 20;

impl AddressSpace {
    /// On a fault at `page` with no PTE: if it lies in private anonymous
    /// read-write memory that is not locked, gives every page of its
    /// aligned window that has no PTE (the run around `page`) a frame and
    /// maps them. False when no window was taken (the caller faults the
    /// one page in).
    pub(super) fn anon_window(&mut self, page: u64, anon: &mut FrameRefs) -> bool {
        let Some(vma) = self.find_vma(GuestVirt(page)) else {
            return false;
        };
        let rw = PROT_READ | PROT_WRITE;
        if !matches!(vma.backing, Backing::Anon)
            || vma.shared
            || vma.lock != Lock::None
            || vma.prot & rw != rw
        {
            return false;
        }
        // The stack is never given a large window: a process touches a
        // few pages of its 8 MiB, and 2 MiB of window there made every
        // idle process hold 511 PTEs, frame references and untouched
        // entries it never used (Linux keeps THP off stacks the same way:
        // MAP_STACK is VM_NOHUGEPAGE).
        let w = if vma.len() >= LARGE_VMA && vma.label != Some("[stack]") {
            LARGE_WINDOW
        } else {
            WINDOW
        } * PAGE;
        // w is a power of two, page < USER_TOP: no overflow.
        let base = page & !(w - 1);
        let ws = base.max(vma.start.get());
        let we = base.saturating_add(w).min(vma.end.get());
        let lo = self
            .ptes
            .range(ws..page)
            .next_back()
            .map_or(ws, |(p, _)| p + PAGE);
        let hi = self
            .ptes
            .range(page + PAGE..we)
            .next()
            .map_or(we, |(p, _)| *p);
        let n = (hi - lo) / PAGE;
        if n < 2 {
            return false;
        }
        let physmem = anon.physmem().clone();
        let Ok(frames) = anon.alloc_window(n) else {
            return false;
        };
        for (i, f) in frames.iter().enumerate() {
            let p = lo + i as u64 * PAGE;
            if p == page {
                physmem.touch(*f);
            }
            self.ptes.insert(
                p,
                Pte {
                    frame: *f,
                    anon: true,
                    writable: true,
                    host_prot: None,
                },
            );
        }
        let mut p = lo;
        while p < hi {
            self.map_host(p, &physmem);
            p += PAGE;
        }
        true
    }

    /// Forgets the pages whose frames the guest never touched (and no one
    /// else holds): their host mappings go, the frames are freed. Returns
    /// how many. Nothing the guest sees changes: the next touch faults a
    /// zero page in again.
    pub fn release_untouched(&mut self, untouched: &Untouched, anon: &mut FrameRefs) -> u64 {
        if untouched.is_empty() {
            return 0;
        }
        let pages: Vec<u64> = self
            .ptes
            .iter()
            .filter(|(_, p)| p.anon && untouched.contains(p.frame) && anon.refcount(p.frame) == 1)
            .map(|(a, _)| *a)
            .collect();
        self.drop_ptes(&pages, anon);
        pages.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::vma::Vma;
    use crate::physmem::PhysMem;
    use std::sync::Arc;

    const B: u64 = 0x4000_0000;

    fn setup(len: u64, lock: Lock) -> (AddressSpace, FrameRefs) {
        let mut a = AddressSpace::new();
        let v = Vma {
            start: GuestVirt(B),
            end: GuestVirt(B + len),
            prot: PROT_READ | PROT_WRITE,
            shared: false,
            may_write: true,
            backing: Backing::Anon,
            label: None,
            lock,
            write_ref: None,
        };
        a.add_vma(v);
        (
            a,
            FrameRefs::new(Arc::new(PhysMem::new(8192 * PAGE).unwrap())),
        )
    }

    fn maps(a: &mut AddressSpace) -> Vec<(u64, u64)> {
        a.take_ops()
            .iter()
            .filter(|o| matches!(o, MapOp::Map { .. }))
            .map(|o| (o.range().start, o.range().end))
            .collect()
    }

    #[test]
    fn a_fault_maps_its_window_in_one_op() {
        let (mut a, mut f) = setup(64 * PAGE, Lock::None);
        a.handle_fault(GuestVirt(B + 20 * PAGE + 5), true, &mut f)
            .unwrap();
        // The aligned 16-page window around page 20: pages 16..32.
        assert_eq!(maps(&mut a), vec![(B + 16 * PAGE, B + 32 * PAGE)]);
        let u = f.physmem().untouched();
        assert_eq!(u.len(), 15, "all but the faulting page are untouched");
        assert!(!u.contains(a.pte(B + 20 * PAGE).unwrap().frame));
        assert_eq!(a.rss(&u).anon, 1);
        assert_eq!(a.resident_pages(&u), 1);
        // A fault next to a mapped page takes only the pages still free.
        a.handle_fault(GuestVirt(B + 15 * PAGE), true, &mut f)
            .unwrap();
        assert_eq!(maps(&mut a), vec![(B, B + 16 * PAGE)]);
        // Untouched pages go back; the touched ones stay.
        let u = f.physmem().untouched();
        assert_eq!(a.release_untouched(&u, &mut f), 30);
        assert_eq!(a.resident_pages(&Default::default()), 2);
        assert_eq!(f.count(), 2);
        let unmapped: u64 = a.take_ops().iter().map(|o| o.span().len()).sum();
        assert_eq!(unmapped, 30 * PAGE);
    }

    #[test]
    fn large_vmas_get_2_mib_windows_and_fork_releases() {
        let (mut a, mut f) = setup(LARGE_VMA, Lock::None);
        a.handle_fault(GuestVirt(B + 3 * PAGE), true, &mut f)
            .unwrap();
        assert_eq!(maps(&mut a), vec![(B, B + LARGE_WINDOW * PAGE)]);
        let pm = f.physmem().clone();
        let child = a.fork(&mut f, &pm);
        assert_eq!(a.resident_pages(&Default::default()), 1);
        assert_eq!(child.resident_pages(&Default::default()), 1);
        assert_eq!(f.count(), 1);
    }

    #[test]
    fn the_stack_gets_small_windows() {
        let (mut a, mut f) = setup(LARGE_VMA, Lock::None);
        a.vmas.get_mut(&GuestVirt(B)).unwrap().label = Some("[stack]");
        a.handle_fault(GuestVirt(B + LARGE_VMA - 8), true, &mut f)
            .unwrap();
        let top = B + LARGE_VMA;
        assert_eq!(maps(&mut a), vec![(top - WINDOW * PAGE, top)]);
        assert_eq!(f.count() as u64, WINDOW);
    }

    #[test]
    fn no_window_where_it_would_change_what_the_guest_sees() {
        // Locked memory (VmLck, populate), a one-page VMA.
        for (len, lock) in [(64 * PAGE, Lock::OnFault), (PAGE, Lock::None)] {
            let (mut a, mut f) = setup(len, lock);
            a.handle_fault(GuestVirt(B), true, &mut f).unwrap();
            assert_eq!(maps(&mut a), vec![(B, B + PAGE)]);
            assert_eq!(f.physmem().untouched().len(), 0);
        }
        // Memory not plentiful: one page at a time.
        let (mut a, mut f) = setup(64 * PAGE, Lock::None);
        f.physmem().set_backed_limit(8);
        a.handle_fault(GuestVirt(B), true, &mut f).unwrap();
        assert_eq!(maps(&mut a), vec![(B, B + PAGE)]);
    }
}
