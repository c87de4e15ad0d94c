//! One guest address space: its VMAs, its page table (guest page →
//! frame) and the host-mapping operations still to be applied to its stub.
//!
//! Invariants: VMAs never overlap; every PTE lies inside a VMA; a PTE's
//! host mapping (if any) never grants more than the VMA's protection, and
//! never write access to a frame shared copy-on-write.

use std::collections::BTreeMap;

use super::frames::FrameRefs;
use super::types::*;
use super::vma::{Backing, Vma};
use crate::errno::{Errno, KResult};
use crate::physmem::{Frame, PhysMem, Untouched};
use crate::platform::{HostOffset, PageSpan, Prot};

/// A guest page-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pte {
    pub frame: Frame,
    /// The frame is private to this mapping's owners (anonymous memory or
    /// a private copy), not a page cache frame. Every PTE holds one
    /// reference on its frame either way.
    pub anon: bool,
    /// Writes may go to this frame (false for copy-on-write sharing).
    pub writable: bool,
    /// The protection the stub's host mapping currently has, if mapped
    /// (PROT_* bits: a u8 keeps a PTE at 16 bytes, and an idle instance
    /// holds hundreds of them).
    pub host_prot: Option<u8>,
}

// An idle instance holds hundreds of PTEs (a B-tree entry each).
const _: () = assert!(std::mem::size_of::<Pte>() == 16);

#[derive(Default)]
pub struct AddressSpace {
    pub(super) vmas: BTreeMap<GuestVirt, Vma>,
    /// Bytes in all VMAs (Linux's total_vm), kept by every change of a
    /// VMA's extent: VmSize, VmPeak and RLIMIT_MEMLOCK checks read it
    /// without walking the VMAs (a walk per mapping made 65k mappings
    /// quadratic).
    vm_total: u64,
    pub(super) ptes: BTreeMap<u64, Pte>,
    pub brk_start: u64,
    pub brk: u64,
    pub(super) ops: Vec<MapOp>,
    /// mlockall(MCL_FUTURE): the lock new mappings and heap growth get
    /// (Linux's def_flags); not inherited by fork, dropped at exec.
    pub lock_future: super::vma::Lock,
    /// Peaks recorded before unmaps (usage.rs: VmHWM in pages, VmPeak in bytes).
    pub(super) hiwater_rss: std::cell::Cell<u64>,
    pub(super) hiwater_vm: u64,
    /// Where the last top-down search ended and the largest hole it left
    /// above (Linux's old free_area_cache and cached_hole_size): the next
    /// search starts there instead of walking every VMA from the top, so
    /// n mappings cost O(n), not O(n²). None: from `MMAP_BASE`.
    free_cache: std::cell::Cell<Option<(u64, u64)>>,
    /// A fork made this space's private pages read-only: the first write
    /// fault that finds one of them no longer shared (the child exec'd or
    /// exited) gives every page this space alone holds write access back
    /// at once (fault.rs: `write_around`).
    pub(super) cow_sweep: bool,
}

impl AddressSpace {
    pub fn new() -> Self {
        Self::default()
    }

    /// Page-table entries held (pages mapped, in swap or not).
    pub fn pte_count(&self) -> usize {
        self.ptes.len()
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// The VMAs that intersect [start, end), in address order: the one
    /// holding `start` (if any) and those starting below `end`, found in
    /// O(log n) rather than by walking every VMA below `end` (a per-call
    /// walk made 65k mappings quadratic).
    pub fn vmas_in(&self, start: GuestVirt, end: GuestVirt) -> impl Iterator<Item = &Vma> {
        let first = self
            .vmas
            .range(..start)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.end > start && start < end);
        let rest = (start < end).then(|| self.vmas.range(start..end).map(|(_, v)| v));
        first.into_iter().chain(rest.into_iter().flatten())
    }

    /// How many VMAs there are (vm.max_map_count counts these).
    pub fn vma_count(&self) -> usize {
        self.vmas.len()
    }

    /// Would changing `[start, end)` split a VMA (a boundary falls inside one)?
    pub fn splits_at(&self, start: GuestVirt, end: GuestVirt) -> bool {
        [start, end]
            .iter()
            .any(|&p| self.find_vma(p).is_some_and(|v| v.start < p))
    }

    pub fn find_vma(&self, addr: GuestVirt) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(addr))
    }

    pub fn pte(&self, page: u64) -> Option<&Pte> {
        self.ptes.get(&page)
    }

    /// Resident pages (for /proc RSS figures): window pages the guest has
    /// not touched are not (`untouched`, settled by the caller).
    pub fn resident_pages(&self, untouched: &Untouched) -> usize {
        self.ptes
            .values()
            .filter(|p| !untouched.contains(p.frame))
            .count()
    }

    /// Resident pages split as Linux's RSS counters are: (anonymous or
    /// private copies, file pages).
    pub fn rss_split(&self, untouched: &Untouched) -> (u64, u64) {
        let (mut anon, mut file) = (0, 0);
        for p in self.ptes.values().filter(|p| !untouched.contains(p.frame)) {
            if p.anon {
                anon += 1;
            } else {
                file += 1;
            }
        }
        (anon, file)
    }

    /// Bytes mapped (Linux's total_vm): a running total.
    pub fn total_vm(&self) -> u64 {
        self.vm_total
    }

    /// Adds `vma` (its range must be free), counting it in `vm_total`.
    pub(super) fn add_vma(&mut self, vma: Vma) {
        self.vm_total += vma.len();
        let prev = self.vmas.insert(vma.start, vma);
        debug_assert!(prev.is_none(), "add_vma over a VMA");
    }

    /// Removes the VMA starting at `start`, uncounting it.
    pub(super) fn take_vma(&mut self, start: GuestVirt) -> Option<Vma> {
        let v = self.vmas.remove(&start)?;
        self.vm_total -= v.len();
        Some(v)
    }

    /// Moves the end of the VMA starting at `start` (heap growth, mremap
    /// in place, merges), keeping `vm_total`.
    pub(super) fn set_vma_end(&mut self, start: GuestVirt, end: GuestVirt) {
        let v = self.vmas.get_mut(&start).expect("vma");
        self.vm_total = self.vm_total - v.len() + (end.get() - v.start.get());
        v.end = end;
    }

    /// The host-mapping operations accumulated since the last call.
    pub fn take_ops(&mut self) -> Vec<MapOp> {
        coalesce(std::mem::take(&mut self.ops))
    }

    pub fn has_pending_ops(&self) -> bool {
        !self.ops.is_empty()
    }

    /// Splits VMAs so that `addr` is a VMA boundary (if inside one).
    pub(super) fn split_at(&mut self, addr: GuestVirt) {
        let key = match self.find_vma(addr) {
            Some(v) if v.start < addr => v.start,
            _ => return,
        };
        let vma = self.vmas.get_mut(&key).expect("vma just found");
        let tail = vma.split_off(addr);
        self.vmas.insert(tail.start, tail);
    }

    /// True when no VMA intersects [start, end).
    pub fn is_free(&self, start: GuestVirt, end: GuestVirt) -> bool {
        if let Some((_, v)) = self.vmas.range(..end).next_back() {
            if v.end > start {
                return false;
            }
        }
        true
    }

    /// A free range of `len` bytes, top-down below `MMAP_BASE`, or at
    /// `hint` if that is free.
    pub fn find_free(&self, hint: GuestVirt, len: u64) -> Option<GuestVirt> {
        if hint.get() >= MMAP_MIN_ADDR && is_page_aligned(hint.get()) {
            if let Some(end) = user_end_virt(hint, len) {
                if self.is_free(hint, end) {
                    return Some(hint);
                }
            }
        }
        let cached = self.free_cache.get().filter(|&(_, hole)| len > hole);
        let found = match cached {
            Some((top, hole)) => self
                .search_down(top, len)
                .map(|(a, skipped)| (a, hole.max(skipped)))
                .or_else(|| self.search_down(MMAP_BASE, len)),
            None => self.search_down(MMAP_BASE, len),
        };
        self.free_cache.set(found);
        found.map(|(a, _)| GuestVirt(a))
    }

    /// The highest free range of `len` bytes below `top`, and the largest
    /// hole passed over on the way (each smaller than `len`).
    fn search_down(&self, top: u64, len: u64) -> Option<(u64, u64)> {
        let mut top = top;
        let mut skipped = 0;
        for v in self.vmas.range(..GuestVirt(top)).rev().map(|(_, v)| v) {
            let (vstart, vend) = (v.start.get(), v.end.get());
            if vend <= top {
                if top - vend >= len {
                    return Some((top - len, skipped));
                }
                skipped = skipped.max(top - vend);
            }
            top = top.min(vstart);
        }
        top.checked_sub(len)
            .filter(|&a| a >= MMAP_MIN_ADDR)
            .map(|a| (a, skipped))
    }

    /// Installs `vma`, replacing whatever was mapped in its range.
    pub fn insert_vma(&mut self, vma: Vma, anon: &mut FrameRefs) {
        self.unmap_range(vma.start, vma.end, anon);
        self.add_vma(vma);
    }

    /// munmap: removes VMAs and pages in [start, end) and frees anonymous
    /// frames no one else holds.
    pub fn unmap_range(&mut self, start: GuestVirt, end: GuestVirt, anon: &mut FrameRefs) {
        if start >= end {
            return;
        }
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<GuestVirt> = self.vmas.range(start..end).map(|(k, _)| *k).collect();
        // The peak is noted only when something goes (Linux's
        // update_hiwater_vm before an unmap); `hiwater_vm` adds the
        // current total when read.
        if !keys.is_empty() {
            self.note_hiwater();
            // The hole this leaves may be above where searches start now.
            if let Some((top, hole)) = self.free_cache.get() {
                if end.get() > top {
                    self.free_cache.set(Some((end.get().min(MMAP_BASE), hole)));
                }
            }
        }
        for k in keys {
            self.take_vma(k);
        }
        self.discard(start, end, anon);
    }

    /// mprotect over [start, end). Every page in the range must be mapped.
    /// EACCES when PROT_WRITE is asked of a mapping that may never be
    /// written (a shared mapping of a file opened read-only).
    pub fn protect(
        &mut self,
        start: GuestVirt,
        end: GuestVirt,
        prot: u32,
        physmem: &PhysMem,
    ) -> KResult<()> {
        if start >= end {
            return Ok(());
        }
        let mut at = start;
        while at < end {
            match self.find_vma(at) {
                Some(v) if prot & PROT_WRITE != 0 && !v.may_write => return Err(Errno::EACCES),
                Some(v) => at = v.end,
                None => return Err(Errno::ENOMEM),
            }
        }
        self.split_at(start);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            v.prot = prot;
        }
        let pages: Vec<u64> = self
            .ptes
            .range(start.get()..end.get())
            .map(|(k, _)| *k)
            .collect();
        for p in pages {
            self.refresh_host(p, physmem);
        }
        Ok(())
    }

    /// The protection a PTE may have in the host, given its VMA.
    pub(super) fn allowed_prot(&self, page: u64, pte: &Pte, physmem: &PhysMem) -> u32 {
        let vma_prot = self
            .find_vma(GuestVirt(page))
            .map(|v| v.prot)
            .unwrap_or(PROT_NONE);
        let mut prot = vma_prot;
        if !pte.writable || !physmem.backing(pte.frame).writable {
            prot &= !PROT_WRITE;
        }
        prot
    }

    /// Brings a mapped page's host protection in line with its PTE.
    pub(super) fn refresh_host(&mut self, page: u64, physmem: &PhysMem) {
        let Some(pte) = self.ptes.get(&page).copied() else {
            return;
        };
        let Some(cur) = pte.host_prot else { return };
        let want = self.allowed_prot(page, &pte, physmem);
        if want == u32::from(cur) {
            return;
        }
        let Some(span) = page_span(page, PAGE) else {
            return;
        };
        if want == PROT_NONE {
            self.ops.push(MapOp::Unmap { span });
            self.ptes.get_mut(&page).expect("pte").host_prot = None;
        } else {
            self.ops.push(MapOp::Protect {
                span,
                prot: Prot::from_bits(want as u64),
            });
            self.ptes.get_mut(&page).expect("pte").host_prot = Some(want as u8);
        }
    }

    /// Maps a PTE into the host with the protection it may have.
    pub(super) fn map_host(&mut self, page: u64, physmem: &PhysMem) {
        let Some(pte) = self.ptes.get(&page).copied() else {
            return;
        };
        let prot = self.allowed_prot(page, &pte, physmem);
        if prot == PROT_NONE {
            return;
        }
        let b = physmem.backing(pte.frame);
        let (Some(span), Some(offset)) = (page_span(page, PAGE), host_offset(b.offset)) else {
            return;
        };
        self.ops.push(MapOp::Map {
            span,
            prot: Prot::from_bits(prot as u64),
            fd: b.fd,
            offset,
        });
        self.ptes.get_mut(&page).expect("pte").host_prot = Some(prot as u8);
    }

    /// Maps again every page showing one of `frames` in the host: their
    /// backing changed (an image page copied up into its frame), and a
    /// stub still showing the old one would read stale data.
    pub fn remap_frames(&mut self, frames: &[Frame], physmem: &PhysMem) {
        let pages: Vec<u64> = self
            .ptes
            .iter()
            .filter(|(_, p)| p.host_prot.is_some() && frames.contains(&p.frame))
            .map(|(a, _)| *a)
            .collect();
        for p in pages {
            self.map_host(p, physmem);
        }
    }

    /// Replaces the frame behind `page` (after a copy-on-write break).
    pub(super) fn set_pte(&mut self, page: u64, pte: Pte, anon: &mut FrameRefs) {
        if let Some(old) = self.ptes.insert(page, pte) {
            anon.put(old.frame);
        }
    }

    /// brk: moves the end of the heap. Returns the new break (the old one
    /// when the request cannot be met, as Linux does).
    pub fn set_brk(&mut self, new: u64, anon: &mut FrameRefs) -> u64 {
        if new < self.brk_start {
            return self.brk;
        }
        let old_end = GuestVirt(page_up(self.brk).unwrap_or(self.brk));
        let Some(new_end) = page_up(new).filter(|&e| e <= USER_TOP).map(GuestVirt) else {
            return self.brk;
        };
        if new_end > old_end {
            if !self.is_free(old_end, new_end) {
                return self.brk;
            }
            // Grow the heap VMA if it ends at old_end, else start one.
            let heap_key = self
                .vmas
                .range(..old_end)
                .next_back()
                .filter(|(_, v)| {
                    v.end == old_end && v.label == Some("[heap]") && v.lock == self.lock_future
                })
                .map(|(k, _)| *k);
            match heap_key {
                Some(k) => self.set_vma_end(k, new_end),
                None => {
                    self.add_vma(Vma {
                        start: old_end,
                        end: new_end,
                        prot: PROT_READ | PROT_WRITE,
                        shared: false,
                        may_write: true,
                        backing: Backing::Anon,
                        label: Some("[heap]"),
                        lock: self.lock_future,
                        write_ref: None,
                    });
                }
            }
        } else if new_end < old_end {
            self.unmap_range(new_end, old_end, anon);
        }
        self.brk = new;
        self.brk
    }

    /// fork: a copy of this address space. Private pages become
    /// copy-on-write in both (read-only in the parent's host mapping too);
    /// shared pages stay shared.
    pub fn fork(&mut self, anon: &mut FrameRefs, physmem: &PhysMem) -> AddressSpace {
        // Window pages never touched are zeros: the child need not share
        // them, and no untouched frame is ever shared copy-on-write.
        let untouched = physmem.untouched();
        self.release_untouched(&untouched, anon);
        let mut child = AddressSpace {
            vmas: self.vmas.clone(),
            vm_total: self.vm_total,
            ptes: BTreeMap::new(),
            brk_start: self.brk_start,
            brk: self.brk,
            ops: Vec::new(),
            lock_future: super::vma::Lock::None,
            hiwater_rss: Default::default(),
            hiwater_vm: 0,
            free_cache: Default::default(),
            cow_sweep: false,
        };
        // Locks are not inherited (Linux's dup_mmap clears VM_LOCKED).
        for v in child.vmas.values_mut() {
            v.lock = super::vma::Lock::None;
        }
        let pages: Vec<u64> = self.ptes.keys().copied().collect();
        for page in pages {
            let shared = self
                .find_vma(GuestVirt(page))
                .map(|v| v.shared)
                .unwrap_or(false);
            let pte = self.ptes.get_mut(&page).expect("pte");
            anon.get(pte.frame);
            if !shared {
                pte.writable = false;
            }
            let mut cpte = *pte;
            cpte.host_prot = None;
            child.ptes.insert(page, cpte);
            if !shared {
                self.refresh_host(page, physmem);
            }
        }
        self.cow_sweep = true;
        child
    }

    /// Drops every mapping (exit, exec).
    pub fn clear(&mut self, anon: &mut FrameRefs) {
        self.unmap_range(GuestVirt(0), GuestVirt(!(PAGE - 1)), anon);
        self.ops.clear();
        self.brk_start = 0;
        self.brk = 0;
        self.lock_future = super::vma::Lock::None;
        // A new program is a new mm: its peaks start again.
        self.hiwater_rss.set(0);
        self.hiwater_vm = 0;
    }
}

/// Merges adjacent operations of the same kind into one (e.g. 16 pages of
/// one file mapped in a row become one mmap).
fn coalesce(ops: Vec<MapOp>) -> Vec<MapOp> {
    let mut out: Vec<MapOp> = Vec::with_capacity(ops.len());
    for op in ops {
        if let Some(last) = out.last_mut() {
            if let Some(merged) = last.merge(&op) {
                *last = merged;
                continue;
            }
        }
        out.push(op);
    }
    out
}

/// The span `[start, start + len)` for a host op. The page table only
/// holds page-aligned user addresses (VMAs are checked when made), so
/// None is a kernel bug: logged (rate-limited), and the op is not queued
/// (the page then simply has no host mapping and faults again).
pub(super) fn page_span(start: u64, len: u64) -> Option<PageSpan> {
    let span = PageSpan::new(GuestVirt(start), len);
    if span.is_none() {
        bad_op(format_args!("guest range {start:#x}+{len:#x}"));
    }
    span
}

/// A frame's host file offset as a map op takes it; None (logged) is a
/// kernel bug, as for [`page_span`].
fn host_offset(off: u64) -> Option<HostOffset> {
    let o = HostOffset::new(off);
    if o.is_none() {
        bad_op(format_args!("host offset {off:#x}"));
    }
    o
}

fn bad_op(what: std::fmt::Arguments<'_>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    if n <= 8 || n.is_power_of_two() {
        log::error!("mm: host map op over {what} not queued (kernel bug) [{n} so far]");
    }
}

impl AddressSpace {
    /// MADV_DONTNEED: forgets the pages of [start, end) but keeps the
    /// VMAs; the next touch sees zeros (anonymous) or the file again.
    pub fn discard(&mut self, start: GuestVirt, end: GuestVirt, anon: &mut FrameRefs) {
        if start >= end {
            return;
        }
        let pages: Vec<u64> = self
            .ptes
            .range(start.get()..end.get())
            .map(|(k, _)| *k)
            .collect();
        self.drop_ptes(&pages, anon);
    }

    /// Removes the entries of `pages` (ascending, all present), drops
    /// their frame references and queues host unmaps for the ones mapped
    /// in the host, one per run: never the holes between them, where the
    /// platform's own pages (the stub, the vDSO) may be.
    pub(super) fn drop_ptes(&mut self, pages: &[u64], anon: &mut FrameRefs) {
        let mut run: Option<(u64, u64)> = None;
        let mut frames = Vec::with_capacity(pages.len());
        for &p in pages {
            let pte = self.ptes.remove(&p).expect("listed");
            frames.push(pte.frame);
            if pte.host_prot.is_none() {
                continue;
            }
            run = match run {
                Some((a, l)) if a + l == p => Some((a, l + PAGE)),
                Some((addr, len)) => {
                    self.ops
                        .extend(page_span(addr, len).map(|span| MapOp::Unmap { span }));
                    Some((p, PAGE))
                }
                None => Some((p, PAGE)),
            };
        }
        if let Some((addr, len)) = run {
            self.ops
                .extend(page_span(addr, len).map(|span| MapOp::Unmap { span }));
        }
        anon.put_many(&frames);
    }

    /// mremap's move: the part [old, old+len) of one VMA, with its pages,
    /// goes to [new, new+new_len) (which must be free); pages past
    /// `new_len` are dropped. As Linux's vma_to_resize: EFAULT when the
    /// old range is not inside one VMA (a hole, or two VMAs). Host
    /// mappings are rebuilt by faults.
    pub fn move_range(
        &mut self,
        old: GuestVirt,
        len: u64,
        new: GuestVirt,
        new_len: u64,
        anon: &mut FrameRefs,
    ) -> KResult<()> {
        let old_end = user_end_virt(old, len).ok_or(Errno::EFAULT)?;
        let new_end = user_end_virt(new, new_len).ok_or(Errno::ENOMEM)?;
        let v = self.find_vma(old).ok_or(Errno::EFAULT)?;
        if old_end > v.end {
            return Err(Errno::EFAULT);
        }
        if !self.is_free(new, new_end) {
            return Err(Errno::ENOMEM);
        }
        self.split_at(old);
        self.split_at(old_end);
        let mut nv = self.take_vma(old).expect("split at old");
        nv.start = new;
        nv.end = new_end;
        self.add_vma(nv);
        let pages: Vec<u64> = self
            .ptes
            .range(old.get()..old_end.get())
            .map(|(k, _)| *k)
            .collect();
        for p in pages {
            let mut pte = self.ptes.remove(&p).expect("listed");
            pte.host_prot = None;
            let off = p - old.get();
            if off < new_len {
                self.ptes.insert(new.get() + off, pte);
            } else {
                anon.put(pte.frame);
            }
        }
        // Nothing to unmap when the old range was empty (old_len 0).
        if len != 0 {
            self.ops
                .extend(page_span(old.get(), len).map(|span| MapOp::Unmap { span }));
        }
        Ok(())
    }

    /// mremap's move-only form (MREMAP_FIXED, same length): every VMA
    /// piece of [old, old+len) moves to the same offset from `new`; the
    /// holes between them stay as they were at the destination. EFAULT
    /// when `old` itself is not mapped (Linux 6.17+'s remap_move).
    pub fn move_vmas(
        &mut self,
        old: GuestVirt,
        len: u64,
        new: GuestVirt,
        anon: &mut FrameRefs,
    ) -> KResult<()> {
        let old_end = user_end_virt(old, len).ok_or(Errno::EFAULT)?;
        user_end_virt(new, len).ok_or(Errno::ENOMEM)?;
        if self.find_vma(old).is_none() {
            return Err(Errno::EFAULT);
        }
        let pieces: Vec<(GuestVirt, GuestVirt)> = self
            .vmas
            .range(..old_end)
            .map(|(_, v)| v)
            .filter(|v| v.end > old)
            .map(|v| (v.start.max(old), v.end.min(old_end)))
            .collect();
        for (s, e) in pieces {
            let off = s.get() - old.get();
            let plen = e.get() - s.get();
            let to = GuestVirt(new.get() + off);
            let to_end = GuestVirt(to.get() + plen);
            self.unmap_range(to, to_end, anon);
            self.move_range(s, plen, to, plen, anon)?;
        }
        Ok(())
    }

    /// Grows by `extra` bytes, in place, the VMA that [start, end) ends:
    /// false unless `end` is that VMA's end and the space after is free.
    pub fn grow_in_place(&mut self, start: GuestVirt, end: GuestVirt, extra: u64) -> bool {
        let Some(v) = self.find_vma(start) else {
            return false;
        };
        let key = v.start;
        let Some(new_end) = user_end_virt(end, extra) else {
            return false;
        };
        if v.end != end || !self.is_free(end, new_end) {
            return false;
        }
        self.set_vma_end(key, new_end);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private anonymous VMA over [start, end), writable if `prot` says.
    fn anon_vma(start: u64, end: u64, prot: u32) -> super::super::vma::Vma {
        super::super::vma::Vma {
            start: GuestVirt(start),
            end: GuestVirt(end),
            prot,
            shared: false,
            may_write: true,
            backing: super::super::vma::Backing::Anon,
            label: None,
            lock: super::super::vma::Lock::None,
            write_ref: None,
        }
    }

    fn map(addr: u64, len: u64, fd: i32, off: u64) -> MapOp {
        MapOp::Map {
            span: PageSpan::new(GuestVirt(addr), len).unwrap(),
            prot: Prot::R,
            fd,
            offset: HostOffset::new(off).unwrap(),
        }
    }

    #[test]
    fn coalesces_runs() {
        let ops = vec![
            map(0x1000, PAGE, 3, 0),
            map(0x2000, PAGE, 3, PAGE),
            map(0x3000, PAGE, 4, 2 * PAGE),
        ];
        let c = coalesce(ops);
        assert_eq!(
            c,
            vec![map(0x1000, 2 * PAGE, 3, 0), map(0x3000, PAGE, 4, 2 * PAGE)]
        );
    }

    #[test]
    fn bad_ranges_make_no_op() {
        assert!(page_span(0x1001, PAGE).is_none());
        assert!(page_span(USER_TOP, PAGE).is_none());
        assert!(page_span(0x1000, 0).is_none());
        assert!(host_offset(7).is_none());
        assert_eq!(
            page_span(0x1000, PAGE).map(|s| s.range()),
            Some(0x1000..0x2000)
        );
    }

    #[test]
    fn a_childs_copied_pages_are_punched_in_one_host_call_when_adjacent() {
        let pm = std::sync::Arc::new(PhysMem::new(64 * PAGE).unwrap());
        let mut anon = FrameRefs::new(pm.clone());
        let mut a = AddressSpace::new();
        let start = GuestVirt(0x10_0000);
        a.insert_vma(
            anon_vma(start.get(), start.get() + 4 * PAGE, PROT_READ | PROT_WRITE),
            &mut anon,
        );
        for i in 0..4 {
            a.handle_fault(GuestVirt(start.get() + i * PAGE), true, &mut anon)
                .unwrap();
        }
        let mut c = a.fork(&mut anon, &pm);
        drop(a);
        // The child writes every page: four copies of its own.
        for i in 0..4 {
            c.handle_fault(GuestVirt(start.get() + i * PAGE), true, &mut anon)
                .unwrap();
        }
        let mut frames: Vec<u64> = (0..4)
            .map(|i| c.pte(start.get() + i * PAGE).unwrap().frame.0)
            .collect();
        frames.sort_unstable();
        assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");
        let before = pm.stats();
        c.clear(&mut anon);
        let after = pm.stats();
        assert_eq!(after.punched_bytes - before.punched_bytes, 4 * PAGE);
        assert_eq!(after.punch_calls - before.punch_calls, 1);
    }

    #[test]
    fn find_free_reuses_holes_with_its_cache() {
        let mut a = AddressSpace::new();
        let pm = std::sync::Arc::new(PhysMem::new(16 * PAGE).unwrap());
        let mut anon = FrameRefs::new(pm);
        let vma = |start: GuestVirt, len: u64| anon_vma(start.get(), start.get() + len, PROT_READ);
        let mut got = Vec::new();
        for _ in 0..8 {
            let x = a.find_free(GuestVirt(0), 0x1000).unwrap();
            a.insert_vma(vma(x, 0x1000), &mut anon);
            got.push(x.get());
        }
        // Top-down, one after the other.
        assert!(got.windows(2).all(|w| w[1] == w[0] - 0x1000), "{got:x?}");
        // A hole above where the cache stands is found again...
        let hole = GuestVirt(got[2]);
        a.unmap_range(hole, GuestVirt(got[2] + 0x1000), &mut anon);
        assert_eq!(a.find_free(GuestVirt(0), 0x1000), Some(hole));
        a.insert_vma(vma(hole, 0x1000), &mut anon);
        // ... and a request bigger than every hole goes below them all.
        let x = a.find_free(GuestVirt(0), 0x3000).unwrap();
        assert_eq!(x.get(), got[7] - 0x3000);
        // A small hole skipped by a bigger request is still used later.
        a.insert_vma(vma(x, 0x3000), &mut anon);
        a.unmap_range(GuestVirt(got[5]), GuestVirt(got[5] + 0x1000), &mut anon);
        let y = a.find_free(GuestVirt(0), 0x2000).unwrap();
        assert!(a.is_free(y, GuestVirt(y.get() + 0x2000)));
        assert_eq!(a.find_free(GuestVirt(0), 0x1000), Some(GuestVirt(got[5])));
    }

    #[test]
    fn vmas_in_lists_exactly_the_intersecting_vmas() {
        let mut a = AddressSpace::new();
        let pm = std::sync::Arc::new(PhysMem::new(16 * PAGE).unwrap());
        let mut anon = FrameRefs::new(pm);
        // VMAs at [1,3), [4,5), [5,8) pages (0x1000 units), holes between.
        for (s, e) in [(1u64, 3u64), (4, 5), (5, 8)] {
            let prot = if s == 4 { PROT_READ } else { PROT_NONE };
            a.insert_vma(anon_vma(s * PAGE, e * PAGE, prot), &mut anon);
        }
        let starts = |s: u64, e: u64| -> Vec<u64> {
            a.vmas_in(GuestVirt(s), GuestVirt(e))
                .map(|v| v.start.get() / PAGE)
                .collect()
        };
        // The walk it replaces, as the reference.
        let walk = |s: u64, e: u64| -> Vec<u64> {
            a.vmas()
                .filter(|v| s < e && v.start.get() < e && s < v.end.get())
                .map(|v| v.start.get() / PAGE)
                .collect()
        };
        for s in 0..10 {
            for e in 0..10 {
                assert_eq!(
                    starts(s * PAGE, e * PAGE),
                    walk(s * PAGE, e * PAGE),
                    "{s}..{e}"
                );
            }
        }
        assert_eq!(starts(2 * PAGE, 6 * PAGE), vec![1, 4, 5]);
        assert_eq!(starts(3 * PAGE, 4 * PAGE), Vec::<u64>::new());
        assert_eq!(starts(7 * PAGE, 7 * PAGE), Vec::<u64>::new());
    }

    #[test]
    fn find_free_is_top_down_and_respects_hint() {
        let a = AddressSpace::new();
        let x = a.find_free(GuestVirt(0), 0x3000).unwrap();
        assert_eq!(x.get(), MMAP_BASE - 0x3000);
        assert_eq!(
            a.find_free(GuestVirt(0x400000), 0x1000),
            Some(GuestVirt(0x400000))
        );
    }
}
