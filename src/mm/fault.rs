//! Page faults: demand paging, copy-on-write, fault-around (anonymous
//! windows: window.rs), and the
//! kernel's own access to guest memory through the guest page table.

use super::aspace::{AddressSpace, Pte};
use super::frames::FrameRefs;
use super::types::*;
use super::vma::Backing;
use crate::errno::{Errno, KResult};
use crate::physmem::{Frame, Piece};

/// Pages mapped around a read fault on a file mapping (the fault itself
/// included): one stub round trip brings in a whole run of a binary.
const FAULT_AROUND: u64 = 16;

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
        if self.pte(page).is_none() && self.anon_window(page, anon) {
            self.fault_around(page, write, anon);
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
        self.fault_around(page, write, anon);
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
    fn fault_around(&mut self, page: u64, write: bool, anon: &mut FrameRefs) {
        let Some(vma) = self.find_vma(GuestVirt(page)).cloned() else {
            return;
        };
        if vma.prot == PROT_NONE {
            return;
        }
        let physmem = anon.physmem().clone();
        let lo = vma
            .start
            .get()
            .max(page.saturating_sub(FAULT_AROUND * PAGE));
        let hi = vma.end.get().min(page + FAULT_AROUND * PAGE);
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
        if write || !matches!(vma.backing, Backing::File { .. }) {
            return;
        }
        let mut p = page + PAGE;
        while p < hi {
            if self.pte(p).is_none() {
                if self.resolve(p, false, anon).is_err() {
                    break;
                }
                self.map_host(p, &physmem);
            }
            p += PAGE;
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
