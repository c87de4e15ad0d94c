//! Page faults: demand paging, copy-on-write, fault-around (anonymous
//! windows: window.rs), and the
//! kernel's own access to guest memory through the guest page table.

use super::aspace::{AddressSpace, Pte};
use super::frames::FrameRefs;
use super::types::*;
use super::vma::{Backing, Vma};
use crate::errno::{Errno, KResult};
use crate::physmem::{Frame, Piece};

/// Pages mapped around a read fault on a file mapping (the fault itself
/// included): one stub round trip brings in a whole run of a binary.
const FAULT_AROUND: u64 = 16;
/// Pages around a fault whose PTE is there but not the host mapping (a
/// forked child's inherited pages), or that a write fault may make
/// writable without a copy: mapped in the same round trip. No reads and
/// no allocation, so a wider window than `FAULT_AROUND`.
const MAP_AROUND: u64 = 64;
/// Cached file pages mapped on each side of a read fault: each is a PTE an
/// idle process keeps (heap in umlrun), so fewer than `MAP_AROUND`.
const CACHED_AROUND: u64 = 32;

impl AddressSpace {
    /// Resolves a fault of the guest at `addr` and queues the host
    /// mappings that make the access succeed when the guest resumes.
    pub fn handle_fault(
        &mut self,
        addr: GuestVirt,
        write: bool,
        anon: &mut FrameRefs,
    ) -> Result<(), FaultError> {
        let page = addr.page();
        // A write to a page a fork shared that is this space's alone now.
        let sole = write
            && self
                .pte(page)
                .is_some_and(|p| p.anon && !p.writable && anon.refcount(p.frame) == 1);
        if self.pte(page).is_none() && self.anon_window(page, anon) {
            self.fault_around(page, write, false, anon);
            return Ok(());
        }
        self.resolve(page, write, anon)?;
        let physmem = anon.physmem().clone();
        let pte = *self.pte(page).expect("resolved");
        if pte.host_prot.is_some() {
            self.refresh_host(page, &physmem);
            if self.pte(page).and_then(|p| p.host_prot).is_none() {
                self.map_host(page, &physmem);
            }
        } else {
            self.map_host(page, &physmem);
        }
        self.fault_around(page, write, sole, anon);
        Ok(())
    }

    /// Makes sure `page` has a PTE allowing the access (allocating,
    /// reading in or breaking copy-on-write as needed), without touching
    /// the host mapping unless the frame changed.
    pub(super) fn resolve(
        &mut self,
        page: u64,
        write: bool,
        anon: &mut FrameRefs,
    ) -> Result<Frame, FaultError> {
        let vma = self
            .find_vma(GuestVirt(page))
            .cloned()
            .ok_or(FaultError::Segv { accerr: false })?;
        if (write && vma.prot & PROT_WRITE == 0) || vma.prot == PROT_NONE {
            return Err(FaultError::Segv { accerr: true });
        }
        let physmem = anon.physmem().clone();
        if let Some(pte) = self.pte(page).copied() {
            // Swapped out: the contents come back into the same frame. A
            // read of a page this PTE alone holds keeps its slot (the swap
            // cache): the PTE turns read-only, so the first write comes
            // back here and frees the slot (`dirty` below).
            let keep = !write && anon.refcount(pte.frame) == 1;
            if anon.swap_in(pte.frame, keep)? && pte.writable {
                let mut clean = pte;
                clean.writable = false;
                self.ptes.insert(page, clean);
                self.refresh_host(page, &physmem);
                return Ok(pte.frame);
            }
            if !write || pte.writable {
                return Ok(pte.frame);
            }
            // Write to a read-only PTE in a writable VMA. A shared file
            // page may be copied up from the image (same frame, another
            // host backing): then the host mapping is made anew.
            let before = physmem.backing(pte.frame);
            let new = if vma.shared {
                match &vma.backing {
                    Backing::File { source, .. } => {
                        let f = source.page_for_write(
                            vma.file_index(GuestVirt(page)).expect("file vma"),
                            anon,
                        )?;
                        if f != pte.frame {
                            anon.get(f); // the new PTE's reference
                        }
                        f
                    }
                    Backing::Anon => pte.frame,
                }
            } else if pte.anon && anon.refcount(pte.frame) == 1 {
                pte.frame
            } else {
                anon.alloc_copy(pte.frame).map_err(|_| FaultError::Oom)?
            };
            if new == pte.frame {
                // Written in place: a swap cache slot no longer matches.
                anon.dirty(new);
            }
            let was_mapped = pte.host_prot.is_some();
            let newpte = Pte {
                frame: new,
                anon: if new == pte.frame {
                    pte.anon
                } else {
                    !vma.shared
                },
                writable: true,
                host_prot: if new == pte.frame {
                    pte.host_prot
                } else {
                    None
                },
            };
            if new == pte.frame {
                self.ptes.insert(page, newpte);
                let after = physmem.backing(new);
                if was_mapped && (after.fd, after.offset) != (before.fd, before.offset) {
                    self.map_host(page, &physmem);
                } else {
                    self.refresh_host(page, &physmem);
                }
            } else {
                self.set_pte(page, newpte, anon);
                if was_mapped {
                    self.map_host(page, &physmem);
                }
            }
            return Ok(new);
        }
        let pte = match &vma.backing {
            Backing::Anon => {
                let f = anon.alloc().map_err(|_| FaultError::Oom)?;
                Pte {
                    frame: f,
                    anon: true,
                    writable: true,
                    host_prot: None,
                }
            }
            Backing::File { source, .. } => {
                let idx = vma.file_index(GuestVirt(page)).expect("file vma");
                if vma.shared {
                    let f = if write {
                        source.page_for_write(idx, anon)?
                    } else {
                        source.page(idx, anon)?
                    };
                    // A SysV shm page may be in swap (kernel/swap.rs).
                    anon.swap_in(f, false)?;
                    anon.get(f);
                    Pte {
                        frame: f,
                        anon: false,
                        writable: write,
                        host_prot: None,
                    }
                } else {
                    let f = source.page(idx, anon)?;
                    anon.swap_in(f, false)?;
                    if write {
                        let c = anon.alloc_copy(f).map_err(|_| FaultError::Oom)?;
                        Pte {
                            frame: c,
                            anon: true,
                            writable: true,
                            host_prot: None,
                        }
                    } else {
                        anon.get(f);
                        Pte {
                            frame: f,
                            anon: false,
                            writable: false,
                            host_prot: None,
                        }
                    }
                }
            }
        };
        self.ptes.insert(page, pte);
        Ok(pte.frame)
    }

    /// Maps neighbours in the same round trip: pages that already have a
    /// PTE but no host mapping (a forked child's inherited pages, pages the
    /// kernel touched for the guest) on both sides, and, after a read fault
    /// on a file mapping, the following pages of the file.
    fn fault_around(&mut self, page: u64, write: bool, sole: bool, anon: &mut FrameRefs) {
        let Some(vma) = self.find_vma(GuestVirt(page)).cloned() else {
            return;
        };
        if vma.prot == PROT_NONE {
            return;
        }
        let physmem = anon.physmem().clone();
        let lo = vma.start.get().max(page.saturating_sub(MAP_AROUND * PAGE));
        let hi = vma.end.get().min(page.saturating_add(MAP_AROUND * PAGE));
        let unmapped: Vec<u64> = self
            .ptes
            .range(lo..hi)
            .filter(|(p, pte)| {
                **p != page && pte.host_prot.is_none() && !anon.swap.borrow().is_swapped(pte.frame)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in unmapped {
            self.map_host(p, &physmem);
        }
        if write {
            // The first such write after a fork: the whole space at once.
            let whole = sole && std::mem::take(&mut self.cow_sweep);
            self.write_around(page, (!whole).then_some((&vma, lo, hi)), anon);
            return;
        }
        if !matches!(vma.backing, Backing::File { .. }) {
            return;
        }
        let read_hi = hi.min(page.saturating_add(FAULT_AROUND * PAGE));
        let mut p = page + PAGE;
        while p < read_hi {
            if self.pte(p).is_none() {
                if self.resolve(p, false, anon).is_err() {
                    break;
                }
                self.map_host(p, &physmem);
            }
            p += PAGE;
        }
        // Both sides, to the wider window: only pages the page cache
        // already holds (nothing read in, nothing allocated).
        let Backing::File { source, .. } = &vma.backing else {
            return;
        };
        let lo = lo.max(page.saturating_sub(CACHED_AROUND * PAGE));
        let hi = hi.min(page.saturating_add(CACHED_AROUND * PAGE));
        let (Some(first), Some(end)) = (
            vma.file_index(GuestVirt(lo)),
            vma.file_index(GuestVirt(hi - PAGE))
                .and_then(|i| i.checked_add(1)),
        ) else {
            return;
        };
        for idx in source.cached(first..end) {
            let Some(p) = idx
                .checked_sub(first)
                .and_then(|i| i.checked_mul(PAGE))
                .and_then(|off| lo.checked_add(off))
            else {
                continue;
            };
            if self.pte(p).is_none() && self.resolve(p, false, anon).is_ok() {
                self.map_host(p, &physmem);
            }
        }
    }

    /// After a write fault, the pages this address space alone holds but
    /// may not write (the other side of a fork has exec'd or exited)
    /// become writable: their own write faults would change nothing but
    /// the host protection, each at the cost of a round trip. `window`:
    /// only [lo, hi) of the faulting VMA; None: every VMA.
    fn write_around(&mut self, page: u64, window: Option<(&Vma, u64, u64)>, anon: &mut FrameRefs) {
        let private_writable = |v: &Vma| !v.shared && v.prot & PROT_WRITE != 0;
        let spans: Vec<(u64, u64)> = match window {
            Some((v, lo, hi)) if private_writable(v) => vec![(lo, hi)],
            Some(_) => return,
            None => self
                .vmas
                .values()
                .filter(|v| private_writable(v))
                .map(|v| (v.start.get(), v.end.get()))
                .collect(),
        };
        let mut own = Vec::new();
        for (a, b) in spans.into_iter().filter(|(a, b)| a < b) {
            own.extend(
                self.ptes
                    .range(a..b)
                    .filter(|(p, pte)| {
                        **p != page
                            && pte.anon
                            && !pte.writable
                            && pte.host_prot.is_some()
                            && anon.refcount(pte.frame) == 1
                    })
                    .map(|(p, _)| *p),
            );
        }
        let physmem = anon.physmem().clone();
        for p in own {
            let pte = self.ptes.get_mut(&p).expect("pte");
            pte.writable = true;
            let f = pte.frame;
            // Written in place from now on: a swap cache slot goes stale.
            anon.dirty(f);
            self.refresh_host(p, &physmem);
        }
    }

    /// Copies guest memory at `addr` into `buf` (the kernel's
    /// copy_from_user). Pages are brought in as a read fault would, all
    /// first (each gets its page-table reference, so none goes away while
    /// the others are resolved); then the bytes are copied under one
    /// physmem lock, not one per page. On a bad page the bytes before it
    /// are copied and EFAULT returned.
    pub fn read_user(
        &mut self,
        addr: GuestVirt,
        buf: &mut [u8],
        anon: &mut FrameRefs,
    ) -> KResult<()> {
        let (pieces, r) = self.resolve_range(addr, buf.len(), false, anon);
        let n: usize = pieces.iter().map(|p| p.2).sum();
        anon.physmem().read_pieces(&pieces, &mut buf[..n]);
        // ENOMEM: a swapped-out page cannot come back until the caller's
        // OOM path makes room.
        r.map_err(|e| match e {
            FaultError::Oom => Errno::ENOMEM,
            _ => Errno::EFAULT,
        })
    }

    /// As `read_user`, appending the `len` bytes at `addr` to `out`; on a
    /// bad page the bytes before it are appended and EFAULT returned.
    pub fn read_user_append(
        &mut self,
        addr: GuestVirt,
        len: usize,
        out: &mut Vec<u8>,
        anon: &mut FrameRefs,
    ) -> KResult<()> {
        let (pieces, r) = self.resolve_range(addr, len, false, anon);
        anon.physmem().append_pieces(&pieces, out);
        r.map_err(|e| match e {
            FaultError::Oom => Errno::ENOMEM,
            _ => Errno::EFAULT,
        })
    }

    /// Copies `data` into guest memory at `addr` (copy_to_user), breaking
    /// copy-on-write like a guest write would; one physmem lock for the
    /// copy, as `read_user`.
    pub fn write_user(
        &mut self,
        addr: GuestVirt,
        data: &[u8],
        anon: &mut FrameRefs,
    ) -> KResult<()> {
        let (pieces, r) = self.resolve_range(addr, data.len(), true, anon);
        anon.physmem()
            .write_pieces(&pieces, data)
            .map_err(|_| Errno::EFAULT)?;
        // ENOMEM: out of guest memory (the caller's OOM path), not a
        // bad address.
        r.map_err(|e| match e {
            FaultError::Oom => Errno::ENOMEM,
            _ => Errno::EFAULT,
        })
    }

    /// Resolves the pages of [addr, addr + len) as a read or write fault
    /// would: the frame pieces of the range, up to the first page that
    /// fails (and why it failed).
    fn resolve_range(
        &mut self,
        addr: GuestVirt,
        len: usize,
        write: bool,
        anon: &mut FrameRefs,
    ) -> (Pieces, Result<(), FaultError>) {
        let mut pieces = Pieces::for_len(len);
        let mut done = 0usize;
        // The VMA that allows this access around the last page, so a
        // long copy looks it up once, not per page.
        let mut allowed: Option<(u64, u64)> = None;
        while done < len {
            let Some(a) = addr.checked_add(done as u64) else {
                return (pieces, Err(FaultError::Segv { accerr: false }));
            };
            let page = a.page();
            let off = a.page_offset();
            let n = (PAGE as usize - off).min(len - done);
            let at_hand = self.mapped_frame(page, write, &mut allowed, anon);
            match at_hand.map_or_else(|| self.resolve(page, write, anon), Ok) {
                Ok(f) => pieces.push((f, off, n)),
                Err(e) => return (pieces, Err(e)),
            }
            done += n;
        }
        (pieces, Ok(()))
    }

    /// `resolve`'s answer when it has nothing to do: a VMA allowing the
    /// access (cached in `allowed` as its range), a PTE allowing it and
    /// a frame in memory. None: `resolve` must run (a fault to serve, or
    /// an error to give).
    fn mapped_frame(
        &self,
        page: u64,
        write: bool,
        allowed: &mut Option<(u64, u64)>,
        anon: &FrameRefs,
    ) -> Option<Frame> {
        if !allowed.is_some_and(|(lo, hi)| (lo..hi).contains(&page)) {
            let vma = self.find_vma(GuestVirt(page))?;
            if (write && vma.prot & PROT_WRITE == 0) || vma.prot == PROT_NONE {
                return None;
            }
            *allowed = Some((vma.start.get(), vma.end.get()));
        }
        let pte = self.pte(page)?;
        if write && !pte.writable {
            return None;
        }
        (!anon.swap.borrow().is_swapped(pte.frame)).then_some(pte.frame)
    }

    /// Writes into guest memory regardless of the VMA's protection (the
    /// loader filling a read-only segment's partial page, ptrace-like).
    pub fn write_user_force(
        &mut self,
        addr: GuestVirt,
        data: &[u8],
        anon: &mut FrameRefs,
    ) -> KResult<()> {
        let start = addr.page();
        let end = addr
            .get()
            .checked_add(data.len() as u64)
            .and_then(page_up)
            .ok_or(Errno::EFAULT)?;
        // Never a mapping that may not be written (VM_MAYWRITE).
        let saved: Vec<(GuestVirt, u32)> = self
            .vmas_in(GuestVirt(start), GuestVirt(end))
            .filter(|v| v.may_write)
            .map(|v| (v.start, v.prot))
            .collect();
        for (k, _) in &saved {
            self.vmas.get_mut(k).expect("vma").prot |= PROT_WRITE | PROT_READ;
        }
        let r = self.write_user(addr, data, anon);
        for (k, p) in saved {
            self.vmas.get_mut(&k).expect("vma").prot = p;
        }
        let physmem = anon.physmem().clone();
        let pages: Vec<u64> = self.ptes.range(start..end).map(|(k, _)| *k).collect();
        for p in pages {
            self.refresh_host(p, &physmem);
        }
        r
    }

    /// Reads a NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(
        &mut self,
        addr: GuestVirt,
        max: usize,
        anon: &mut FrameRefs,
    ) -> KResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut a = addr;
        loop {
            let page_left = PAGE as usize - a.page_offset();
            let mut chunk = vec![0u8; page_left.min(max + 1 - out.len())];
            self.read_user(a, &mut chunk, anon)?;
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            a = a.checked_add(chunk.len() as u64).ok_or(Errno::EFAULT)?;
        }
    }
}

/// The frame pieces of a guest range (`resolve_range`). A range of at
/// most a page (at most two pieces: most syscall copies) is kept inline,
/// so a small copy allocates nothing; a longer one uses a list.
enum Pieces {
    Inline(usize, [Piece; 2]),
    Heap(Vec<Piece>),
}

impl Pieces {
    fn for_len(len: usize) -> Pieces {
        if len <= PAGE as usize {
            Pieces::Inline(0, [(Frame(0), 0, 0); 2])
        } else {
            Pieces::Heap(Vec::with_capacity(len / PAGE as usize + 2))
        }
    }

    fn push(&mut self, p: Piece) {
        match self {
            Pieces::Inline(n, a) if *n < a.len() => {
                a[*n] = p;
                *n += 1;
            }
            Pieces::Inline(n, a) => {
                // Unreachable by `for_len`'s bound; kept total.
                let mut v = a[..*n].to_vec();
                v.push(p);
                *self = Pieces::Heap(v);
            }
            Pieces::Heap(v) => v.push(p),
        }
    }
}

impl std::ops::Deref for Pieces {
    type Target = [Piece];

    fn deref(&self) -> &[Piece] {
        match self {
            Pieces::Inline(n, a) => &a[..*n],
            Pieces::Heap(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::vma::{Lock, PageSource};
    use crate::physmem::PhysMem;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use std::sync::Arc;

    const B: u64 = 0x10_0000;

    fn vma(pages: u64, prot: u32, backing: Backing) -> Vma {
        Vma {
            start: GuestVirt(B),
            end: GuestVirt(B + pages * PAGE),
            prot,
            shared: false,
            may_write: true,
            backing,
            label: None,
            lock: Lock::None,
            write_ref: None,
        }
    }

    fn space(pages: u64, prot: u32, backing: Backing) -> (AddressSpace, FrameRefs) {
        let mut f = FrameRefs::new(Arc::new(PhysMem::new(1024 * PAGE).unwrap()));
        let mut a = AddressSpace::new();
        a.insert_vma(vma(pages, prot, backing), &mut f);
        (a, f)
    }

    fn at(i: u64) -> u64 {
        B + i * PAGE
    }

    #[test]
    fn the_first_write_after_a_fork_ended_gives_every_page_back() {
        let (mut a, mut f) = space(256, PROT_READ | PROT_WRITE, Backing::Anon);
        for i in [0, 40, 200] {
            a.handle_fault(GuestVirt(at(i)), true, &mut f).unwrap();
        }
        let pm = f.physmem().clone();
        // While the child lives, a write copies one page, nothing more.
        let mut c = a.fork(&mut f, &pm);
        a.handle_fault(GuestVirt(at(0)), true, &mut f).unwrap();
        assert!(a.pte(at(0)).unwrap().writable);
        assert!(!a.pte(at(40)).unwrap().writable);
        assert!(!a.pte(at(200)).unwrap().writable);
        // The child is gone: the next write restores every page at once,
        // also the one 199 pages away.
        c.clear(&mut f);
        drop(c);
        a.take_ops();
        a.handle_fault(GuestVirt(at(40)), true, &mut f).unwrap();
        assert!(a.pte(at(200)).unwrap().writable);
        let ops = a.take_ops();
        assert!(
            ops.iter()
                .any(|o| matches!(o, MapOp::Protect { .. }) && o.range().contains(&at(200))),
            "{ops:?}"
        );
        // Nothing was copied for it: the same frame, one reference.
        assert_eq!(f.refcount(a.pte(at(200)).unwrap().frame), 1);
    }

    /// A file whose page cache holds the pages in `cached`; counts reads.
    struct Cached {
        pages: RefCell<BTreeMap<u64, Frame>>,
        reads: Cell<u32>,
    }

    impl PageSource for Cached {
        fn page(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError> {
            if let Some(f) = self.pages.borrow().get(&index) {
                return Ok(*f);
            }
            self.reads.set(self.reads.get() + 1);
            let f = frames.alloc().map_err(|_| FaultError::Oom)?;
            self.pages.borrow_mut().insert(index, f);
            Ok(f)
        }
        fn page_for_write(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError> {
            self.page(index, frames)
        }
        fn ident(&self) -> (u64, u64) {
            (0, 0)
        }
        fn name(&self) -> Vec<u8> {
            b"/lib/x.so".to_vec()
        }
        fn cached(&self, range: std::ops::Range<u64>) -> Vec<u64> {
            self.pages.borrow().range(range).map(|(i, _)| *i).collect()
        }
    }

    fn file_space(cached: std::ops::Range<u64>) -> (AddressSpace, FrameRefs, Rc<Cached>) {
        let src = Rc::new(Cached {
            pages: Default::default(),
            reads: Cell::new(0),
        });
        let backing = Backing::File {
            source: src.clone(),
            pgoff: 0,
        };
        let (a, mut f) = space(256, PROT_READ | PROT_EXEC, backing);
        for i in cached {
            src.page(i, &mut f).unwrap();
        }
        src.reads.set(0);
        (a, f, src)
    }

    #[test]
    fn a_read_fault_maps_the_cached_pages_on_both_sides() {
        let (mut a, mut f, src) = file_space(0..256);
        a.handle_fault(GuestVirt(at(100)), false, &mut f).unwrap();
        let mapped = |a: &AddressSpace, i| a.pte(at(i)).is_some_and(|p| p.host_prot.is_some());
        assert!(!mapped(&a, 67));
        assert!((68..132).all(|i| mapped(&a, i)));
        assert!(!mapped(&a, 132));
        assert_eq!(src.reads.get(), 0, "everything was cached");
    }

    #[test]
    fn only_the_pages_after_a_read_fault_are_read_in() {
        let (mut a, mut f, src) = file_space(100..101);
        a.handle_fault(GuestVirt(at(100)), false, &mut f).unwrap();
        assert!(a.pte(at(99)).is_none(), "not cached: not read in behind");
        assert!((100..116).all(|i| a.pte(at(i)).is_some()));
        assert!(a.pte(at(116)).is_none());
        assert_eq!(src.reads.get(), 15);
    }

    #[test]
    fn pieces_keep_a_page_inline_and_spill_past_two() {
        let p = |i: u64| (Frame(i), i as usize, 1);
        let mut small = Pieces::for_len(PAGE as usize);
        assert!(matches!(small, Pieces::Inline(..)));
        small.push(p(1));
        small.push(p(2));
        assert_eq!(&small[..], &[p(1), p(2)]);
        // Past the bound `for_len` gives (never by resolve_range): a list.
        small.push(p(3));
        assert!(matches!(small, Pieces::Heap(_)));
        assert_eq!(&small[..], &[p(1), p(2), p(3)]);
        let mut big = Pieces::for_len(PAGE as usize + 1);
        assert!(matches!(big, Pieces::Heap(_)));
        big.push(p(4));
        assert_eq!(&big[..], &[p(4)]);
        assert!(Pieces::for_len(0).is_empty());
    }
}
