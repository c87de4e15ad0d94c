//! What swap-out needs from an address space: the pages it may take, the
//! clock's reference test, and taking one page out.
//!
//! The kernel cannot read the host's accessed bits, so recency is
//! approximated by revoking: a page's host mapping is removed (`revoke`)
//! and the page stays resident; if the guest touches it again it faults
//! back in softly (no I/O) and is mapped again. A page still unmapped at
//! the next pass was not used in between: it is "cold" and goes to swap
//! first (a clock with one reference bit, the bit being "mapped in the
//! stub").
//!
//! Shared pages: a frame more than one holder has (fork's copy-on-write
//! pages before either side writes, MAP_SHARED|MAP_ANONYMOUS pages shared
//! across fork, attached SysV shm pages) goes to swap as any other: it
//! keeps its frame number, so every sharer's page table still names it
//! and finds it again (the frame is Linux's swap-cache entry and swap
//! entry in one). What it needs is every host mapping of it gone first,
//! and there is no reverse map: `Sharers` is one, built by each swap-out
//! pass from every page table and the SysV segments. A shared frame may
//! go only when every one of its references was found there (page tables,
//! whose mappings are revoked, and segments, which map nothing), so a
//! frame with a holder the pass cannot see (the page cache, a pipe) stays
//! resident; none of its mappings may be mlocked. It is hot when any
//! sharer has it mapped, and the reference test revokes every mapping.

use std::collections::HashMap;

use super::aspace::AddressSpace;
use super::frames::FrameRefs;
use super::types::{MapOp, PAGE};
use crate::errno::KResult;
use crate::physmem::Frame;

/// A page swap-out may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapCandidate {
    pub page: u64,
    pub frame: Frame,
    /// Mapped in the stub now: used since the last revoke (a shared
    /// frame: mapped in any sharer's stub).
    pub hot: bool,
    /// Held by others too: every mapping goes first (`Sharers::maps`).
    pub shared: bool,
}

/// Who holds one shared frame.
#[derive(Debug)]
struct Holders<K> {
    /// Every page table entry naming it: (address space, page).
    maps: Vec<(K, u64)>,
    /// Holders that map nothing in a stub (a SysV segment).
    others: u32,
    /// Every entry is anonymous (shared anonymous memory, a private
    /// copy): never a page-cache frame.
    all_anon: bool,
    /// Mapped in some stub now.
    hot: bool,
    /// In an mlocked VMA, or a SHM_LOCKed segment.
    locked: bool,
}

/// The reverse map of the frames held more than once, for one swap-out
/// pass (`K` names an address space).
#[derive(Debug)]
pub struct Sharers<K> {
    by_frame: HashMap<Frame, Holders<K>>,
}

impl<K> Default for Sharers<K> {
    fn default() -> Self {
        Sharers {
            by_frame: HashMap::new(),
        }
    }
}

impl<K: Copy> Sharers<K> {
    fn entry(&mut self, f: Frame) -> &mut Holders<K> {
        self.by_frame.entry(f).or_insert_with(|| Holders {
            maps: Vec::new(),
            others: 0,
            all_anon: true,
            hot: false,
            locked: false,
        })
    }

    /// Notes every entry of `aspace` (`key`) whose frame has more than
    /// one reference.
    pub fn note(&mut self, key: K, aspace: &AddressSpace, frames: &FrameRefs) {
        let locked = aspace.locked_ranges(0);
        for (&page, p) in &aspace.ptes {
            if frames.refcount(p.frame) < 2 {
                continue;
            }
            let h = self.entry(p.frame);
            h.maps.push((key, page));
            h.all_anon &= p.anon;
            h.hot |= p.host_prot.is_some();
            h.locked |= locked.iter().any(|&(s, e)| s <= page && page < e);
        }
    }

    /// A holder of `f` that maps nothing in a stub: a SysV segment
    /// (`locked`: SHM_LOCK).
    pub fn holder(&mut self, f: Frame, locked: bool) {
        let h = self.entry(f);
        h.others += 1;
        h.locked |= locked;
    }

    /// `f` may go to swap once every mapping in `maps` is revoked: each
    /// of its references was noted, none locks it, it is anonymous or a
    /// segment's, resident, and was touched.
    pub fn swappable(&self, f: Frame, frames: &FrameRefs) -> bool {
        let Some(h) = self.by_frame.get(&f) else {
            return false;
        };
        let seen = h.maps.len() as u64 + u64::from(h.others);
        !h.locked
            && (h.all_anon || h.others > 0)
            && seen == u64::from(frames.refcount(f))
            && !frames.swap.borrow().is_swapped(f)
            && !frames.physmem().is_untouched(f)
    }

    /// Mapped in some stub when the pass began.
    pub fn hot(&self, f: Frame) -> bool {
        self.by_frame.get(&f).is_some_and(|h| h.hot)
    }

    /// Every page table entry naming `f`.
    pub fn maps(&self, f: Frame) -> &[(K, u64)] {
        self.by_frame.get(&f).map_or(&[], |h| &h.maps)
    }

    /// Frames held more than once that were noted.
    pub fn len(&self) -> usize {
        self.by_frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_frame.is_empty()
    }
}

impl AddressSpace {
    /// The [start, end) ranges of mlocked VMAs ending after `from`.
    pub(super) fn locked_ranges(&self, from: u64) -> Vec<(u64, u64)> {
        self.vmas
            .values()
            .filter(|v| v.lock != super::vma::Lock::None && v.end.get() > from)
            .map(|v| (v.start.get(), v.end.get()))
            .collect()
    }

    /// The pages swap-out may take from `from` on: private anonymous
    /// pages held by this page table alone (one reference), and shared
    /// frames `sharers` says may go; never pages swapped out already,
    /// pages of a locked VMA (mlock), nor window pages never touched (they
    /// are given back, not swapped: window.rs).
    pub fn swap_candidates<K: Copy>(
        &self,
        frames: &FrameRefs,
        from: u64,
        sharers: &Sharers<K>,
    ) -> Vec<SwapCandidate> {
        let locked = self.locked_ranges(from);
        self.ptes
            .range(from..)
            .filter(|(a, _)| !locked.iter().any(|&(s, e)| s <= **a && **a < e))
            .filter_map(|(a, p)| {
                let shared = frames.refcount(p.frame) > 1;
                let ok = if shared {
                    sharers.swappable(p.frame, frames)
                } else {
                    p.anon
                        && !frames.swap.borrow().is_swapped(p.frame)
                        && !frames.physmem().is_untouched(p.frame)
                };
                ok.then(|| SwapCandidate {
                    page: *a,
                    frame: p.frame,
                    hot: if shared {
                        sharers.hot(p.frame)
                    } else {
                        p.host_prot.is_some()
                    },
                    shared,
                })
            })
            .collect()
    }

    /// Removes `page`'s host mapping (the clock's reference test); the
    /// next access faults and maps it again.
    pub fn revoke(&mut self, page: u64) {
        if let Some(p) = self.ptes.get_mut(&page) {
            if p.host_prot.take().is_some() {
                self.ops
                    .extend(super::aspace::page_span(page, PAGE).map(|span| MapOp::Unmap { span }));
            }
        }
    }

    /// Sends `page`'s frame to swap: its host mapping goes first (the
    /// unmap reaches the stub before it runs again), then its contents.
    /// A frame others hold too goes through `Sharers` instead.
    pub fn swap_out_page(&mut self, page: u64, frames: &mut FrameRefs) -> KResult<()> {
        let Some(f) = self.ptes.get(&page).map(|p| p.frame) else {
            return Ok(());
        };
        self.revoke(page);
        frames.swap_out(f)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::rc::Rc;
    use std::sync::Arc;

    use super::*;
    use crate::mm::swap::testing::add_area;
    use crate::mm::types::{FaultError, GuestVirt, PROT_READ, PROT_WRITE};
    use crate::mm::vma::{Backing, Lock, PageSource, Vma};
    use crate::physmem::PhysMem;

    const B: u64 = 0x4000_0000;
    const N: u64 = 4;

    fn vma(shared: bool, backing: Backing) -> Vma {
        Vma {
            start: GuestVirt(B),
            end: GuestVirt(B + N * PAGE),
            prot: PROT_READ | PROT_WRITE,
            shared,
            may_write: true,
            backing,
            label: None,
            lock: Lock::None,
            write_ref: None,
        }
    }

    /// Frames with a 64-page swap area, and an address space with one
    /// VMA of N pages, page i holding the byte i + 1.
    fn setup(shared: bool, backing: Backing) -> (AddressSpace, FrameRefs) {
        let mut frames = FrameRefs::new(Arc::new(PhysMem::new(256 * PAGE).unwrap()));
        add_area(&mut frames.swap.borrow_mut(), 64);
        let mut a = AddressSpace::new();
        a.insert_vma(vma(shared, backing), &mut frames);
        for i in 0..N {
            write(&mut a, i, i as u8 + 1, &mut frames);
        }
        (a, frames)
    }

    fn write(a: &mut AddressSpace, page: u64, v: u8, f: &mut FrameRefs) {
        a.write_user(GuestVirt(B + page * PAGE), &[v; PAGE as usize], f)
            .unwrap();
    }

    /// Page `page` as the address space reads it, if every byte is the same.
    fn read(a: &mut AddressSpace, page: u64, f: &mut FrameRefs) -> Option<u8> {
        let mut buf = [0u8; PAGE as usize];
        a.read_user(GuestVirt(B + page * PAGE), &mut buf, f)
            .unwrap();
        buf.iter().all(|&b| b == buf[0]).then_some(buf[0])
    }

    /// What the kernel's pass does (kernel/swap.rs), all of it: every
    /// page it may take goes, a shared frame once, after every mapping
    /// of it was revoked. Returns how many frames went.
    fn swap_all(spaces: &mut [&mut AddressSpace], frames: &mut FrameRefs) -> usize {
        let mut s = Sharers::default();
        for (i, a) in spaces.iter().enumerate() {
            s.note(i, a, frames);
        }
        let mut met = HashSet::new();
        let mut n = 0;
        for i in 0..spaces.len() {
            for c in spaces[i].swap_candidates(frames, 0, &s) {
                if c.shared {
                    if !met.insert(c.frame) {
                        continue;
                    }
                    for &(k, p) in s.maps(c.frame) {
                        spaces[k].revoke(p);
                    }
                    frames.swap_out(c.frame).unwrap();
                } else {
                    spaces[i].swap_out_page(c.page, frames).unwrap();
                }
                n += 1;
            }
        }
        n
    }

    fn swapped(a: &AddressSpace, page: u64, f: &FrameRefs) -> bool {
        f.swap
            .borrow()
            .is_swapped(a.pte(B + page * PAGE).unwrap().frame)
    }

    #[test]
    fn copy_on_write_pages_go_out_once_and_both_sides_read_them_back() {
        let (mut a, mut f) = setup(false, Backing::Anon);
        let pm = f.physmem().clone();
        let mut c = a.fork(&mut f, &pm);
        // Seen from the parent alone, the child's references are unknown:
        // nothing may go.
        let mut only_parent = Sharers::default();
        only_parent.note(0, &a, &f);
        assert!(a.swap_candidates(&f, 0, &only_parent).is_empty());
        assert_eq!(swap_all(&mut [&mut a, &mut c], &mut f), N as usize);
        assert_eq!(f.swap.borrow().pswpout, N);
        assert_eq!(pm.frames_backed(), 0);
        assert!((0..N).all(|i| swapped(&a, i, &f) && swapped(&c, i, &f)));
        // The child reads page 0 back; the parent finds it resident.
        assert_eq!(read(&mut c, 0, &mut f), Some(1));
        assert_eq!(read(&mut a, 0, &mut f), Some(1));
        assert_eq!(f.swap.borrow().pswpin, 1);
        // The child writes page 1 (still in swap): its own copy; the
        // parent's page is as it was.
        write(&mut c, 1, 9, &mut f);
        assert_eq!(read(&mut c, 1, &mut f), Some(9));
        assert_eq!(read(&mut a, 1, &mut f), Some(2));
        // The parent alone holds page 1 now: a private page again, and
        // out it goes with the other pages only the parent or the child
        // holds; the shared ones go once.
        assert_eq!(f.refcount(a.pte(B + PAGE).unwrap().frame), 1);
        swap_all(&mut [&mut a, &mut c], &mut f);
        for (sp, want) in [(&mut a, [1, 2, 3, 4]), (&mut c, [1, 9, 3, 4])] {
            for (i, w) in want.into_iter().enumerate() {
                assert_eq!(read(sp, i as u64, &mut f), Some(w), "page {i}");
            }
        }
        c.clear(&mut f);
        a.clear(&mut f);
        assert_eq!((f.count(), f.swap.borrow().used_pages()), (0, 0));
    }

    #[test]
    fn shared_anonymous_pages_go_out_and_a_write_after_is_seen_by_both() {
        let (mut a, mut f) = setup(true, Backing::Anon);
        let pm = f.physmem().clone();
        let mut c = a.fork(&mut f, &pm);
        assert_eq!(swap_all(&mut [&mut a, &mut c], &mut f), N as usize);
        assert_eq!(f.swap.borrow().used_pages(), N);
        // A read of a shared page keeps no slot (another sharer's
        // writable mapping would not pass through `dirty`).
        assert_eq!(read(&mut c, 2, &mut f), Some(3));
        assert_eq!(f.swap.borrow().used_pages(), N - 1);
        write(&mut c, 0, 7, &mut f);
        assert_eq!(read(&mut a, 0, &mut f), Some(7));
        write(&mut a, 3, 8, &mut f);
        assert_eq!(read(&mut c, 3, &mut f), Some(8));
        assert_eq!(
            a.pte(B).unwrap().frame,
            c.pte(B).unwrap().frame,
            "still one frame"
        );
        // Out and back again (page 1 is out still): every sharer sees
        // the last writes.
        assert_eq!(swap_all(&mut [&mut a, &mut c], &mut f), N as usize - 1);
        for sp in [&mut a, &mut c] {
            let got: Vec<Option<u8>> = (0..N).map(|i| read(sp, i, &mut f)).collect();
            assert_eq!(got, vec![Some(7), Some(2), Some(3), Some(8)]);
        }
        a.clear(&mut f);
        c.clear(&mut f);
        assert_eq!((f.count(), f.swap.borrow().used_pages()), (0, 0));
    }

    #[test]
    fn a_shared_frame_stays_while_a_holder_is_unseen_or_locks_it() {
        let (mut a, mut f) = setup(false, Backing::Anon);
        let pm = f.physmem().clone();
        let mut c = a.fork(&mut f, &pm);
        // A holder the pass cannot see (a pipe's reference, say).
        let held = a.pte(B).unwrap().frame;
        f.get(held);
        // The child locks page 1 (mlock).
        c.set_lock(GuestVirt(B + PAGE), GuestVirt(B + 2 * PAGE), Lock::OnFault)
            .unwrap();
        assert_eq!(swap_all(&mut [&mut a, &mut c], &mut f), 2);
        assert!(!swapped(&a, 0, &f) && !swapped(&a, 1, &f));
        assert!(swapped(&a, 2, &f) && swapped(&c, 3, &f));
        f.put(held);
        a.clear(&mut f);
        c.clear(&mut f);
        assert_eq!((f.count(), f.swap.borrow().used_pages()), (0, 0));
    }

    /// A SysV segment's pages: it holds each frame, attaches map them.
    struct Segment(Vec<Frame>);

    impl PageSource for Segment {
        fn page(&self, index: u64, _: &mut FrameRefs) -> Result<Frame, FaultError> {
            self.0.get(index as usize).copied().ok_or(FaultError::Bus)
        }
        fn page_for_write(&self, index: u64, f: &mut FrameRefs) -> Result<Frame, FaultError> {
            self.page(index, f)
        }
        fn ident(&self) -> (u64, u64) {
            (1, 1)
        }
        fn name(&self) -> Vec<u8> {
            b"/SYSV00000000 (deleted)".to_vec()
        }
        fn shmem(&self) -> bool {
            true
        }
    }

    #[test]
    fn attached_segment_pages_go_out_only_with_the_segment_counted() {
        let mut f = FrameRefs::new(Arc::new(PhysMem::new(256 * PAGE).unwrap()));
        add_area(&mut f.swap.borrow_mut(), 64);
        let seg: Vec<Frame> = (0..N).map(|_| f.alloc().unwrap()).collect();
        let source: Rc<dyn PageSource> = Rc::new(Segment(seg.clone()));
        let mut a = AddressSpace::new();
        a.insert_vma(vma(true, Backing::File { source, pgoff: 0 }), &mut f);
        for i in 0..N {
            write(&mut a, i, i as u8 + 1, &mut f);
        }
        let pm = f.physmem().clone();
        let mut c = a.fork(&mut f, &pm);
        assert_eq!(f.refcount(seg[0]), 3);
        // Without the segment counted (or with a page-cache frame, whose
        // cache reference no pass sees), nothing goes.
        assert_eq!(swap_all(&mut [&mut a, &mut c], &mut f), 0);
        let mut s = Sharers::default();
        s.note(0, &a, &f);
        s.note(1, &c, &f);
        for &fr in &seg {
            s.holder(fr, false);
        }
        let cands = a.swap_candidates(&f, 0, &s);
        assert_eq!(cands.len(), N as usize);
        assert!(cands.iter().all(|c| c.shared));
        for cand in cands {
            for &(k, p) in s.maps(cand.frame) {
                [&mut a, &mut c][k].revoke(p);
            }
            f.swap_out(cand.frame).unwrap();
        }
        assert_eq!(f.physmem().frames_backed(), 0);
        // A SHM_LOCKed segment's pages would have stayed.
        let mut locked = Sharers::default();
        locked.note(0, &a, &f);
        locked.holder(seg[0], true);
        assert!(!locked.swappable(seg[0], &f));
        write(&mut c, 1, 5, &mut f);
        assert_eq!(read(&mut a, 1, &mut f), Some(5));
        assert_eq!(read(&mut c, 2, &mut f), Some(3));
        assert_eq!(read(&mut a, 3, &mut f), Some(4));
        a.clear(&mut f);
        c.clear(&mut f);
        for fr in seg {
            f.put(fr);
        }
        assert_eq!((f.count(), f.swap.borrow().used_pages()), (0, 0));
    }
}
