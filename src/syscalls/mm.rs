//! Memory syscalls: mmap, munmap, mprotect, mremap, brk, madvise, msync,
//! mincore (file pages resident when cached), mlock and friends in `mlock.rs`. Nothing is mapped at mmap time (pages come on first touch),
//! except shared anonymous memory, which must be one set of frames for
//! every process that inherits it.

use super::{fd_arg, ok, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::mm::*;
use crate::vfs::file::{ops_of, Io};

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_LOCKED: u64 = 0x2000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// The flags MAP_SHARED_VALIDATE knows (Linux's LEGACY_MAP_MASK: shared,
/// private, fixed, anonymous, 32bit, growsdown, denywrite, executable,
/// locked, noreserve, populate, nonblock, stack, hugetlb and its 2 MB and
/// 1 GB sizes, fixed_noreplace, uninitialized); others give EOPNOTSUPP.
const MAP_VALIDATE_KNOWN: u64 = 0x03
    | 0x10
    | 0x20
    | 0x40
    | 0x100
    | 0x800
    | 0x1000
    | 0x2000
    | 0x4000
    | 0x8000
    | 0x1_0000
    | 0x2_0000
    | 0x4_0000
    | MAP_FIXED_NOREPLACE
    | 0x400_0000
    | (21 << 26)
    | (30 << 26);

/// Is every page of [start, end) in some mapping? (mprotect, msync and
/// munlock fail with ENOMEM over a hole.)
fn fully_mapped(k: &mut Kernel, tid: Pid, start: u64, end: u64) -> KResult<bool> {
    let mut at = start;
    let aspace = &k.mm_of(tid)?.aspace;
    for v in aspace.vmas_in(GuestVirt(start), GuestVirt(end)) {
        if v.start.get() > at {
            return Ok(false);
        }
        at = v.end.get();
        if at >= end {
            return Ok(true);
        }
    }
    Ok(at >= end)
}

impl Kernel {
    /// Refuses ranges that hit the stub's own pages or leave user space.
    pub(crate) fn check_user_range(&mut self, tid: Pid, start: u64, len: u64) -> KResult<()> {
        let end = user_end(start, len).ok_or(Errno::ENOMEM)?;
        if start < MMAP_MIN_ADDR {
            return Err(Errno::ENOMEM);
        }
        // The whole stub area, on either platform (not only the pages a
        // stub reports as reserved).
        let stub_area =
            crate::platform::stub_image::STUB_BASE..crate::platform::stub_image::STUB_AREA_END;
        if stub_area.start < end && start < stub_area.end {
            return Err(Errno::ENOMEM);
        }
        let mm = self.mm_of(tid)?;
        if mm
            .guest
            .reserved()
            .iter()
            .any(|r| r.start < end && start < r.end)
        {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Image pages copied up into their frames since the last call
    /// (ubd=mmap): every stub still showing the image page maps the frame
    /// again before it runs, so all mappings see the same bytes.
    pub fn remap_copied_up(&mut self) {
        let frames = self.pagecache.borrow_mut().take_unsubstituted();
        if frames.is_empty() {
            return;
        }
        let physmem = self.physmem.clone();
        for mm in self.mms.values_mut() {
            mm.aspace.remap_frames(&frames, &physmem);
        }
    }

    /// Writes back dirty page-cache pages (munmap, msync of shared
    /// file mappings). All files' dirty pages go: simple, and a guest
    /// rarely has many.
    fn writeback_range(&mut self, tid: Pid, start: u64, end: u64) {
        let any_shared_file = self.mm_of(tid).is_ok_and(|mm| {
            mm.aspace
                .vmas_in(GuestVirt(start), GuestVirt(end))
                .any(|v| v.shared && matches!(v.backing, Backing::File { .. }))
        });
        if any_shared_file {
            self.writeback_pagecache();
        }
    }
}

pub fn sys_mmap(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2] as u32, a[3], fd_arg(a[4]), a[5]);
    if len == 0 || !is_page_aligned(off) || prot & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let shared = match flags & 3 {
        MAP_SHARED | MAP_SHARED_VALIDATE => true,
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let mut backing = Backing::Anon;
    let mut may_write = true;
    let mut write_ref = None;
    if flags & MAP_ANONYMOUS == 0 {
        let f = k.task(tid)?.files.borrow().file(fd)?;
        if flags & 3 == MAP_SHARED_VALIDATE && flags & !MAP_VALIDATE_KNOWN != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let io = Io {
            tid,
            file: &f,
            pos: None,
        };
        backing = ops_of(&f).mmap(k, &io, shared, prot)?;
        // VM_MAYWRITE: a shared mapping of a file not open for writing
        // can never become writable (mprotect checks it).
        may_write = !shared || !matches!(backing, Backing::File { .. }) || f.borrow().writable();
        if let Backing::File { pgoff, .. } = &mut backing {
            *pgoff = off / PAGE;
            // The mapping keeps the file's write access (vfs/writecount.rs).
            write_ref = f.borrow().write_access.clone();
        }
    }
    let start = if fixed {
        if !is_page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        k.check_user_range(tid, addr, len)?;
        let end = user_end(addr, len).ok_or(Errno::ENOMEM)?;
        if flags & MAP_FIXED_NOREPLACE != 0
            && !k
                .mm_of(tid)?
                .aspace
                .is_free(GuestVirt(addr), GuestVirt(end))
        {
            return Err(Errno::EEXIST);
        }
        addr
    } else {
        let hint = page_down(addr);
        let mm = k.mm_of(tid)?;
        let mut at = mm
            .aspace
            .find_free(GuestVirt(hint), len)
            .ok_or(Errno::ENOMEM)?;
        if k.check_user_range(tid, at.get(), len).is_err() {
            at = k
                .mm_of(tid)?
                .aspace
                .find_free(GuestVirt(0), len)
                .ok_or(Errno::ENOMEM)?;
        }
        at.get()
    };
    let vma = Vma {
        start: GuestVirt(start),
        end: user_end_virt(GuestVirt(start), len).ok_or(Errno::ENOMEM)?,
        prot,
        shared,
        may_write,
        backing,
        label: None,
        write_ref,
        lock: match k.mm_of(tid)?.aspace.lock_future {
            // MAP_LOCKED locks this mapping as mlock would.
            crate::mm::vma::Lock::None if flags & MAP_LOCKED != 0 => {
                crate::mm::vma::Lock::Populated
            }
            l => l,
        },
    };
    // A locked mapping must fit RLIMIT_MEMLOCK (Linux's mlock_future_ok).
    if vma.lock != crate::mm::vma::Lock::None && !super::mlock::mlock_future_ok(k, tid, len)? {
        return Err(Errno::EAGAIN);
    }
    // vm.max_map_count (the guest's max_map_count=): ENOMEM past it
    // (Linux's do_mmap), before the host's own per-process limit can kill
    // the stub. Then the guest's cap on file-backed mappings.
    k.check_map_count(tid, false)?;
    if matches!(vma.backing, Backing::File { .. }) {
        k.check_mapped_file(len)?;
    }
    // RLIMIT_AS and RLIMIT_DATA (Linux's mmap_region: a MAP_FIXED mapping
    // counts only what it adds over the mappings it replaces).
    let replaced = if fixed {
        k.mm_of(tid)?.aspace.bytes_in(vma.start, vma.end, |_| true)
    } else {
        0
    };
    k.may_expand_vm(tid, len - replaced, vma.is_data())?;
    let anon_shared = shared && matches!(vma.backing, Backing::Anon);
    let id = k.task(tid)?.mm;
    let Kernel { mms, frames, .. } = k;
    let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
    let (vstart, vend) = (vma.start, vma.end);
    mm.aspace.insert_vma(vma, frames);
    mm.aspace.populate_locked(vstart, vend, frames);
    if anon_shared {
        let mut p = start;
        while p < start + len {
            let saved = mm
                .aspace
                .find_vma(GuestVirt(p))
                .map(|v| v.prot)
                .unwrap_or(0);
            // Populate regardless of protection: one set of frames.
            if saved & PROT_WRITE == 0 {
                mm.aspace
                    .write_user_force(crate::mm::GuestVirt(p), &[0], frames)
                    .map_err(|_| Errno::ENOMEM)?;
            } else {
                mm.aspace
                    .write_user(crate::mm::GuestVirt(p), &[0], frames)
                    .map_err(|_| Errno::ENOMEM)?;
            }
            p += PAGE;
        }
    }
    ok(start as i64)
}

pub fn sys_munmap(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (addr, len) = (a[0], a[1]);
    if !is_page_aligned(addr) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    // Linux: a range reaching past TASK_SIZE is EINVAL.
    let end = user_end(addr, len).ok_or(Errno::EINVAL)?;
    // vm.max_map_count: punching a hole inside one VMA makes two of it
    // (Linux's vms_gather_munmap_vmas: ENOMEM at the limit).
    let (va, vend) = (GuestVirt(addr), GuestVirt(end));
    let aspace = &k.mm_of(tid)?.aspace;
    if aspace
        .find_vma(va)
        .is_some_and(|v| v.start < va && vend < v.end)
    {
        k.check_map_count(tid, true)?;
    }
    k.writeback_range(tid, addr, end);
    let id = k.task(tid)?.mm;
    let Kernel { mms, frames, .. } = k;
    mms.get_mut(&id).ok_or(Errno::EFAULT)?.aspace.unmap_range(
        GuestVirt(addr),
        GuestVirt(end),
        frames,
    );
    // An unmapped SysV attach may have been a removed segment's last.
    k.shm_reap();
    ok(0)
}

pub fn sys_mprotect(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (addr, len, prot) = (a[0], a[1], a[2] as u32);
    if !is_page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    // PROT_GROWSDOWN/UP are accepted and ignored.
    let prot = prot & 7;
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return ok(0);
    }
    let end = user_end(addr, len).ok_or(Errno::ENOMEM)?;
    let physmem = k.physmem.clone();
    let (addr, end) = (GuestVirt(addr), GuestVirt(end));
    if k.mm_of(tid)?.aspace.splits_at(addr, end) {
        // split_vma's vm.max_map_count check.
        k.check_map_count(tid, true)?;
    }
    if prot & PROT_WRITE != 0 {
        // Private read-only mappings made writable become data (RLIMIT_DATA).
        let more = k.mm_of(tid)?.aspace.bytes_in(addr, end, |v| {
            !v.shared && v.prot & PROT_WRITE == 0 && v.label != Some("[stack]")
        });
        if more > 0 {
            k.may_become_data(tid, more)?;
        }
    }
    k.mm_of(tid)?.aspace.protect(addr, end, prot, &physmem)?;
    ok(0)
}

pub fn sys_brk(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let id = k.task(tid)?.mm;
    let Kernel { mms, .. } = k;
    let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
    if a[0] == 0 {
        return ok(mm.aspace.brk as i64);
    }
    // After mlockall(MCL_FUTURE) the heap grows locked: within
    // RLIMIT_MEMLOCK (else the break stays), and populated.
    let (old_end, lock) = (page_up(mm.aspace.brk), mm.aspace.lock_future);
    let new_end = page_up(a[0]);
    if let (Some(o), Some(n)) = (old_end, new_end) {
        // The heap is data: within RLIMIT_AS and RLIMIT_DATA, else the
        // break stays (Linux's brk: may_expand_vm).
        if n > o && k.may_expand_vm(tid, n - o, true).is_err() {
            return ok(k.mm_of(tid)?.aspace.brk as i64);
        }
        if n > o && lock != crate::mm::vma::Lock::None {
            if !super::mlock::mlock_future_ok(k, tid, n - o)? {
                return ok(k.mm_of(tid)?.aspace.brk as i64);
            }
            let Kernel { mms, frames, .. } = k;
            let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
            let got = mm.aspace.set_brk(a[0], frames);
            if got == a[0] {
                mm.aspace
                    .populate_locked(GuestVirt(o), GuestVirt(n), frames);
            }
            return ok(got as i64);
        }
    }
    let Kernel { mms, frames, .. } = k;
    let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
    ok(mm.aspace.set_brk(a[0], frames) as i64)
}

/// mremap(2) as Linux 6.18 has it: an old range must lie inside one VMA
/// (EFAULT over a hole or across VMAs) unless it only shrinks, or only
/// moves (MREMAP_FIXED, same length: each VMA of the range moves, the
/// holes between them stay); a part of a VMA may move or shrink; growing
/// in place needs the range to end where its VMA ends. Every range is
/// checked against the top of user space before any arithmetic.
pub fn sys_mremap(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    let (old, old_len, new_len, flags, new_addr) = (a[0], a[1], a[2], a[3], a[4]);
    if !is_page_aligned(old) || new_len == 0 || flags & !3 != 0 {
        return Err(Errno::EINVAL);
    }
    let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
    // Linux: a range past the top of user space is EINVAL.
    let old_end = user_end_virt(GuestVirt(old), old_len).ok_or(Errno::EINVAL)?;
    let old = GuestVirt(old);
    let id = k.task(tid)?.mm;
    if flags & MREMAP_FIXED != 0 {
        if flags & MREMAP_MAYMOVE == 0 || !is_page_aligned(new_addr) {
            return Err(Errno::EINVAL);
        }
        k.check_user_range(tid, new_addr, new_len)
            .map_err(|_| Errno::EINVAL)?;
        let new = GuestVirt(new_addr);
        let new_end = user_end_virt(new, new_len).ok_or(Errno::EINVAL)?;
        // The old and new ranges may not overlap (Linux: EINVAL).
        if new < old_end && old < new_end {
            return Err(Errno::EINVAL);
        }
        if old_len != new_len {
            // Linux's check_prep_vma, before the target is unmapped: the
            // old range in one VMA (EFAULT), and a locked mapping that
            // grows within RLIMIT_MEMLOCK (EAGAIN).
            let (locked, data) = match k.mm_of(tid)?.aspace.find_vma(old) {
                Some(v) if old_end <= v.end => (v.lock != crate::mm::vma::Lock::None, v.is_data()),
                _ => return Err(Errno::EFAULT),
            };
            let growth = new_len.saturating_sub(old_len);
            if locked && growth > 0 && !super::mlock::mlock_future_ok(k, tid, growth)? {
                return Err(Errno::EAGAIN);
            }
            // Growth within RLIMIT_AS and RLIMIT_DATA (ENOMEM).
            if growth > 0 {
                k.may_expand_vm(tid, growth, data)?;
            }
        }
        let Kernel { mms, frames, .. } = k;
        let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
        if old_len == new_len {
            mm.aspace.move_vmas(old, old_len, new, frames)?;
            return ok(new_addr as i64);
        }
        mm.aspace.unmap_range(new, new_end, frames);
        let mut len = old_len;
        if new_len < old_len {
            // The tail goes first (Linux's mremap_to).
            let cut = user_end_virt(old, new_len).ok_or(Errno::EINVAL)?;
            mm.aspace.unmap_range(cut, old_end, frames);
            len = new_len;
        }
        mm.aspace.move_range(old, len, new, new_len, frames)?;
        return ok(new_addr as i64);
    }
    if new_len <= old_len {
        let Kernel { mms, frames, .. } = k;
        let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
        let cut = user_end_virt(old, new_len).ok_or(Errno::EINVAL)?;
        mm.aspace.unmap_range(cut, old_end, frames);
        return ok(old.get() as i64);
    }
    // vma_to_resize: the old range lies inside one VMA.
    let (file_backed, data) = match k.mm_of(tid)?.aspace.find_vma(old) {
        Some(v) if old_end <= v.end => (matches!(v.backing, Backing::File { .. }), v.is_data()),
        _ => return Err(Errno::EFAULT),
    };
    // A file mapping that grows counts against mapped_file_max.
    if file_backed {
        k.check_mapped_file(new_len - old_len)?;
    }
    // Growth within RLIMIT_AS and RLIMIT_DATA (vma_to_resize: ENOMEM).
    k.may_expand_vm(tid, new_len - old_len, data)?;
    // A locked mapping grows within RLIMIT_MEMLOCK (EAGAIN, as Linux's
    // vma_to_resize); its new pages are populated.
    let locked = k
        .mm_of(tid)?
        .aspace
        .find_vma(old)
        .is_some_and(|v| v.lock != crate::mm::vma::Lock::None);
    if locked && !super::mlock::mlock_future_ok(k, tid, new_len - old_len)? {
        return Err(Errno::EAGAIN);
    }
    // Growing in place must not reach the stub's pages.
    let can_grow = k.check_user_range(tid, old.get(), new_len).is_ok();
    let Kernel { mms, frames, .. } = k;
    let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
    if can_grow && mm.aspace.grow_in_place(old, old_end, new_len - old_len) {
        let new_end = GuestVirt(old.get() + new_len);
        mm.aspace.populate_locked(old_end, new_end, frames);
        return ok(old.get() as i64);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let to = mm
        .aspace
        .find_free(GuestVirt(0), new_len)
        .ok_or(Errno::ENOMEM)?;
    mm.aspace.move_range(old, old_len, to, new_len, frames)?;
    mm.aspace.populate_locked(
        GuestVirt(to.get() + old_len),
        GuestVirt(to.get() + new_len),
        frames,
    );
    ok(to.get() as i64)
}

pub fn sys_madvise(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const MADV_DONTNEED: u64 = 4;
    const MADV_FREE: u64 = 8;
    let (addr, len, advice) = (a[0], a[1], a[2]);
    if !is_page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
    if advice == MADV_DONTNEED || advice == MADV_FREE {
        let id = k.task(tid)?.mm;
        let Kernel { mms, frames, .. } = k;
        let mm = mms.get_mut(&id).ok_or(Errno::EFAULT)?;
        // Shared mappings keep their data (it lives in the shared frames).
        let private_ranges: Vec<(u64, u64)> = mm
            .aspace
            .vmas_in(GuestVirt(addr), GuestVirt(end))
            .filter(|v| !v.shared)
            .map(|v| (v.start.get().max(addr), v.end.get().min(end)))
            .collect();
        for (s, e) in private_ranges {
            mm.aspace.discard(GuestVirt(s), GuestVirt(e), frames);
        }
    }
    ok(0)
}

pub fn sys_msync(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    let (start, flags) = (a[0], a[2]);
    if !is_page_aligned(start)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return ok(0);
    }
    k.writeback_range(tid, start, end);
    if !fully_mapped(k, tid, start, end)? {
        return Err(Errno::ENOMEM);
    }
    ok(0)
}

pub fn sys_mincore(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (addr, len, vec) = (a[0], a[1], a[2]);
    if !is_page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    // Linux: access_ok on the range as given (ENOMEM), then on the vector
    // (EFAULT); any length is walked, PAGE entries at a time.
    user_end(addr, len).ok_or(Errno::ENOMEM)?;
    let pages = len / PAGE + u64::from(len % PAGE != 0);
    user_end(vec, pages).ok_or(Errno::EFAULT)?;
    let (mut start, mut out, mut left) = (addr, vec, pages);
    let mut buf = Vec::with_capacity(left.min(PAGE) as usize);
    while left > 0 {
        buf.clear();
        mincore_chunk(k, tid, start, left.min(PAGE), &mut buf)?;
        // What came before a hole or a bad vector stays written, as on
        // Linux, which copies each chunk out before walking the next.
        k.write_user(tid, out, &buf)?;
        let n = buf.len() as u64;
        left -= n;
        out += n;
        start += n * PAGE;
    }
    ok(0)
}

/// Linux's do_mincore: the residency of up to `pages` pages from `start`
/// (inside user space), as far as the VMA holding `start` goes; ENOMEM
/// when no VMA holds it.
fn mincore_chunk(
    k: &mut Kernel,
    tid: Pid,
    start: u64,
    pages: u64,
    out: &mut Vec<u8>,
) -> KResult<()> {
    let mm = k.mm_of(tid)?;
    let Some(v) = mm.aspace.find_vma(GuestVirt(start)) else {
        return Err(Errno::ENOMEM);
    };
    let end = v.end.get().min(start + pages * PAGE);
    let (vstart, backing) = (v.start.get(), v.backing.clone());
    // A window page the guest has not touched is not resident (Linux: a
    // page is resident once faulted in).
    let untouched = k.physmem.untouched();
    for p in (start..end).step_by(PAGE as usize) {
        if k.mm_of(tid)?
            .aspace
            .pte(p)
            .is_some_and(|pte| !untouched.contains(pte.frame))
        {
            out.push(1);
            continue;
        }
        // A file page not mapped here is resident when the page cache
        // (or tmpfs) holds it, as Linux reports page-cache residency.
        let file_page = match &backing {
            Backing::File { source, pgoff } => source
                .key()
                .and_then(|key| Some((key, pgoff.checked_add((p - vstart) / PAGE)?))),
            Backing::Anon => None,
        };
        let resident = file_page.is_some_and(|(key, idx)| {
            k.pagecache.borrow().has_page(key, idx)
                || k.mounts
                    .fs(key.0)
                    .is_ok_and(|fs| fs.next_page(key.1, idx, true) == Some(Some(idx)))
        });
        out.push(resident as u8);
    }
    Ok(())
}
