//! Swap in the guest: swapon(2)/swapoff(2) on a ubd disk, choosing pages
//! to swap out, and what /proc/swaps and /proc/vmstat show.
//!
//! Swap-out (`swap_out_pages`) is the OOM path's second step, after
//! page-cache reclaim: a clock hand walks every address space's anonymous
//! pages (mm/reclaim.rs): private ones, and shared ones — fork's
//! copy-on-write pages before either side writes, MAP_SHARED|MAP_ANONYMOUS
//! pages shared across fork, attached SysV shm pages — when the pass's
//! reverse map (`Sharers`, built from every page table and the segments)
//! accounts for every reference to the frame. Pages not mapped in any
//! stub since the hand last passed (cold) are written out at once; pages
//! mapped (hot) lose their host mappings (every sharer's) and get a second
//! chance: if the guest uses them they fault back without I/O, if not
//! they are cold next time. SysV shm pages that no process maps go first
//! (not SHM_LOCKed ones); after the anonymous pages, tmpfs pages, least
//! recently used first (mm/shmem.rs: tmpfs and memfd data go to swap
//! too). When every candidate was hot, the pages just revoked go (FIFO),
//! so a burst always finds memory. Written through the block layer
//! (COW-aware ubd), the frame punched at once (mm/swap.rs). A fault on a
//! swapped page reads it back into the same frame (`FrameRefs::swap_in`),
//! which every sharer's page table still names.
//!
//! Swap files: a regular file whose file system gives its block map
//! (ext2; tmpfs cannot: EINVAL as in Linux; holes: EINVAL) is used
//! through its extents on the device (mm/swap.rs `Extents`); unlink and
//! rename of an active one are EPERM; write, truncate (and O_TRUNC),
//! fallocate and copy_file_range ETXTBSY; umount of its file system
//! EBUSY. Areas are used by priority, round-
//! robin among equals; swapoff takes the area out of use first and makes
//! room by swapping to the others.
//!
//! A page read back by a read keeps its slot (the swap cache, mm/swap.rs)
//! until written; going out again clean costs no write.
//!
//! Not yet: page-cache copies of tmpfs pages a mapping holds stay
//! resident.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::core::{Kernel, Mm};
use super::kmsg::KERN_INFO;
use super::task::{MmId, Pid};
use crate::block::disks::Holder;
use crate::errno::{Errno, KResult};
use crate::fs::procfs::SwapInfo;
use crate::fs::{S_IFBLK, S_IFMT, S_IFREG};
use crate::mm::reclaim::{Sharers, SwapCandidate};
use crate::mm::swap::{parse_header, Extents, SwapArea, SwapDev};
use crate::mm::FrameRefs;
use crate::physmem::{Frame, PAGE_SIZE};
use crate::syscalls::{ok, SysResult};

/// Pages swapped out per call of the OOM path (1 MiB).
pub const SWAP_BATCH: u64 = 256;

// swapon(2) flags.
const SWAP_FLAG_PREFER: u64 = 0x8000;
const SWAP_FLAG_PRIO_MASK: u64 = 0x7fff;
const SWAP_FLAG_DISCARD: u64 = 0x10000;
const SWAP_FLAG_DISCARD_ONCE: u64 = 0x20000;
const SWAP_FLAG_DISCARD_PAGES: u64 = 0x40000;
const SWAP_FLAGS_VALID: u64 = SWAP_FLAG_PRIO_MASK
    | SWAP_FLAG_PREFER
    | SWAP_FLAG_DISCARD
    | SWAP_FLAG_DISCARD_ONCE
    | SWAP_FLAG_DISCARD_PAGES;

/// The clock hand and the next default priority.
#[derive(Debug)]
pub struct SwapCtl {
    pub hand: (MmId, u64),
    /// Linux gives areas without a priority -2, -3, ...
    pub next_prio: i16,
}

impl Default for SwapCtl {
    fn default() -> Self {
        SwapCtl {
            hand: (0, 0),
            next_prio: -2,
        }
    }
}

impl Kernel {
    /// Swaps out up to `want` pages; returns how many went.
    pub fn swap_out_pages(&mut self, want: u64) -> u64 {
        if !self.frames.swap.borrow().has_room() {
            return 0;
        }
        let mut ids: Vec<MmId> = self.mms.keys().copied().collect();
        ids.sort_unstable();
        let (hand_mm, hand_page) = self.swapctl.hand;
        let start = ids.iter().position(|&i| i >= hand_mm).unwrap_or(0);
        ids.rotate_left(start);
        // SysV shm pages no process maps are idle by definition: first.
        let shm = self.swap_out_shm(want);
        if shm >= want {
            return shm;
        }
        let sharers = self.sharers();
        let Kernel { mms, frames, .. } = self;
        let mut got = shm;
        let mut revoked: Vec<(MmId, SwapCandidate)> = Vec::new();
        // Shared frames dealt with in this pass (each is met once per
        // sharer).
        let mut met: HashSet<Frame> = HashSet::new();
        let mut hand = (0, 0);
        'all: for id in ids {
            let from = if id == hand_mm { hand_page } else { 0 };
            let Some(cands) = mms
                .get(&id)
                .map(|mm| mm.aspace.swap_candidates(frames, from, &sharers))
            else {
                continue;
            };
            for c in cands {
                if got >= want && revoked.len() as u64 >= 2 * want {
                    hand = (id, c.page);
                    break 'all;
                }
                if c.shared && !met.insert(c.frame) {
                    continue;
                }
                if !c.hot {
                    if got < want {
                        match swap_out_one(mms, frames, &sharers, id, c) {
                            Ok(()) => got += 1,
                            Err(_) => break 'all,
                        }
                    }
                } else if (revoked.len() as u64) < 2 * want {
                    revoke_one(mms, &sharers, id, c);
                    revoked.push((id, c));
                }
            }
        }
        self.swapctl.hand = hand;
        if got < want {
            // Then tmpfs pages, least recently used first (mm/shmem.rs).
            got += crate::mm::shmem::ShmemStore::swap_out_oldest(
                &self.physmem,
                &self.frames.swap,
                (want - got) as usize,
            );
        }
        if got == 0 {
            // Everything was in use: the pages just revoked go, oldest
            // first.
            let Kernel { mms, frames, .. } = self;
            for (id, c) in revoked.into_iter().take(want as usize) {
                if frames.swap.borrow().is_swapped(c.frame) {
                    continue;
                }
                if swap_out_one(mms, frames, &sharers, id, c).is_err() {
                    break;
                }
                got += 1;
            }
        }
        got
    }

    /// The reverse map of the frames held more than once (mm/reclaim.rs):
    /// every page table, and the SysV segments holding frames someone has
    /// attached.
    fn sharers(&self) -> Sharers<MmId> {
        let mut s = Sharers::default();
        for (id, mm) in &self.mms {
            s.note(*id, &mm.aspace, &self.frames);
        }
        if s.is_empty() {
            return s;
        }
        let locked = crate::kernel::ipc::shm::SHM_LOCKED;
        for (_, p, seg) in self.ipc.shm.iter() {
            for f in seg.pages.frame_list() {
                if self.frames.refcount(f) > 1 {
                    s.holder(f, p.mode & locked != 0);
                }
            }
        }
        s
    }

    /// SysV shm pages no process has mapped (the segment's is the only
    /// reference: nothing to revoke), of segments not SHM_LOCKed.
    fn swap_out_shm(&mut self, want: u64) -> u64 {
        let locked = crate::kernel::ipc::shm::SHM_LOCKED;
        let frames: Vec<crate::physmem::Frame> = self
            .ipc
            .shm
            .iter()
            .filter(|(_, p, _)| p.mode & locked == 0)
            .flat_map(|(_, _, s)| s.pages.frame_list())
            .filter(|&f| self.frames.refcount(f) == 1 && !self.frames.swap.borrow().is_swapped(f))
            .take(want as usize)
            .collect();
        let mut got = 0;
        for f in frames {
            if self.frames.swap_out(f).is_err() {
                break;
            }
            got += 1;
        }
        got
    }

    /// /proc/swaps rows.
    pub fn swap_infos(&self) -> Vec<SwapInfo> {
        self.frames
            .swap
            .borrow()
            .areas
            .iter()
            .map(|a| SwapInfo {
                name: a.name.clone(),
                partition: a.disk.is_some(),
                size_kib: a.good * 4,
                used_kib: a.used * 4,
                prio: a.prio,
            })
            .collect()
    }

    /// /proc/vmstat counters.
    pub fn vmstat(&self) -> Vec<(&'static str, u64)> {
        let st = self.physmem.stats();
        let pc = self.pagecache.borrow().stats();
        vec![
            ("nr_free_pages", st.frames_free),
            ("nr_file_pages", pc.cached),
            (
                "nr_anon_pages",
                (self.frames.count() as u64).saturating_sub(pc.cached),
            ),
            ("nr_swapped_out", self.physmem.frames_hollow()),
            ("nr_swapcached", self.frames.swap.borrow().cached_pages()),
            ("pswpin", self.frames.swap.borrow().pswpin),
            ("pswpout", self.frames.swap.borrow().pswpout),
            ("pgfault", self.counters.faults),
            ("oom_kill", self.oom.kills),
        ]
    }

    /// What a swap path names: a whole disk, or a regular file whose file
    /// system can say where its blocks are (ext2; tmpfs cannot: EINVAL,
    /// as in Linux). Other kinds are EINVAL as in Linux.
    fn swap_target(&mut self, tid: Pid, path: &[u8]) -> Result<Target, Errno> {
        let r = self.lookup_at(tid, crate::syscalls::AT_FDCWD, path, true)?;
        match r.stat.mode & S_IFMT {
            S_IFBLK => {
                let disk = self.disks.by_rdev(r.stat.rdev).ok_or(Errno::ENXIO)?;
                Ok(Target::Disk(disk.index))
            }
            S_IFREG => Ok(Target::File(r.node.mnt, r.node.ino)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The active area a swap path names (swapoff), or EINVAL.
    fn swap_area_of(&mut self, tid: Pid, path: &[u8]) -> Result<u32, Errno> {
        let t = self.swap_target(tid, path)?;
        self.frames
            .swap
            .borrow()
            .areas
            .iter()
            .find(|a| match t {
                Target::Disk(i) => a.disk == Some(i),
                Target::File(m, ino) => a.file == Some((m, ino)),
            })
            .map(|a| a.id)
            .ok_or(Errno::EINVAL)
    }

    /// An active swap file is (mount, inode): unlink and rename over it
    /// are EPERM, as Linux's may_delete says for IS_SWAPFILE.
    pub fn is_swapfile(&self, mnt: usize, ino: u64) -> bool {
        self.frames
            .swap
            .borrow()
            .areas
            .iter()
            .any(|a| a.file == Some((mnt, ino)))
    }
}

/// The clock's reference test on candidate `c` of address space `id`: its
/// host mapping goes, and every other sharer's of a shared frame.
fn revoke_one(mms: &mut HashMap<MmId, Mm>, sharers: &Sharers<MmId>, id: MmId, c: SwapCandidate) {
    if c.shared {
        for &(m, page) in sharers.maps(c.frame) {
            if let Some(mm) = mms.get_mut(&m) {
                mm.aspace.revoke(page);
            }
        }
    } else if let Some(mm) = mms.get_mut(&id) {
        mm.aspace.revoke(c.page);
    }
}

/// Sends candidate `c` of address space `id` to swap: every host mapping
/// of its frame goes first (each reaches its stub before the stub runs
/// again: one task runs at a time), then its contents.
fn swap_out_one(
    mms: &mut HashMap<MmId, Mm>,
    frames: &mut FrameRefs,
    sharers: &Sharers<MmId>,
    id: MmId,
    c: SwapCandidate,
) -> KResult<()> {
    if c.shared {
        revoke_one(mms, sharers, id, c);
        return frames.swap_out(c.frame);
    }
    match mms.get_mut(&id) {
        Some(mm) => mm.aspace.swap_out_page(c.page, frames),
        None => Ok(()),
    }
}

/// What swapon names.
#[derive(Clone, Copy)]
enum Target {
    Disk(usize),
    File(usize, u64),
}

/// A swap file opened: its device, size in pages and header page.
type OpenedSwapFile = (Arc<dyn SwapDev>, u64, [u8; PAGE_SIZE]);

/// The device, size and header of a swap file; EBUSY if it is swap
/// already.
// Swap areas hold their devices as Arc<dyn SwapDev> (a disk's Ubd is
// shared with the block layer); the kernel thread alone uses them.
#[allow(clippy::arc_with_non_send_sync)]
fn open_swap_file(k: &Kernel, mnt: usize, ino: u64) -> Result<OpenedSwapFile, Errno> {
    if k.is_swapfile(mnt, ino) {
        return Err(Errno::EBUSY);
    }
    let fs = k.mounts.get(mnt)?.fs.clone();
    let (ubd, pages) = fs.swap_extents(ino)?;
    if ubd.read_only() {
        return Err(Errno::EROFS);
    }
    if pages.is_empty() {
        return Err(Errno::EINVAL);
    }
    // The header as the file holds it (mkswap wrote it through the file).
    let mut page = [0u8; PAGE_SIZE];
    let n = fs.read(ino, 0, &mut page)?;
    if n < PAGE_SIZE {
        return Err(Errno::EINVAL);
    }
    let npages = pages.len() as u64;
    let inner: Arc<dyn SwapDev> = ubd;
    Ok((Arc::new(Extents { dev: inner, pages }), npages, page))
}

/// swapon(path, flags).
pub fn sys_swapon(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    let flags = a[1];
    if flags & !SWAP_FLAGS_VALID != 0 {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, a[0])?;
    let target = k.swap_target(tid, &path)?;
    let (dev, dev_pages, page, disk, file) = match target {
        Target::Disk(index) => {
            let disk = k.disks.get(index).ok_or(Errno::ENXIO)?;
            if disk.holder().is_some() {
                return Err(Errno::EBUSY);
            }
            let ubd = disk.ubd.clone();
            if ubd.read_only() {
                return Err(Errno::EROFS);
            }
            if ubd.size() < PAGE_SIZE as u64 {
                return Err(Errno::EINVAL);
            }
            let mut page = [0u8; PAGE_SIZE];
            ubd.read_page(0, &mut page)?;
            let pages = ubd.size() / PAGE_SIZE as u64;
            let dev: Arc<dyn SwapDev> = ubd;
            (dev, pages, page, Some(index), None)
        }
        Target::File(mnt, ino) => {
            let (dev, pages, page) = open_swap_file(k, mnt, ino)?;
            (dev, pages, page, None, Some((mnt, ino)))
        }
    };
    let (hdr, maxpages) = parse_header(&page, dev_pages)?;
    if let Some(index) = disk {
        k.disks.claim(index, Holder::Swap)?;
    }
    let prio = if flags & SWAP_FLAG_PREFER != 0 {
        (flags & SWAP_FLAG_PRIO_MASK) as i16
    } else {
        let p = k.swapctl.next_prio;
        k.swapctl.next_prio = p.saturating_sub(1);
        p
    };
    let id = k.frames.swap.borrow_mut().next_id();
    let mut area = SwapArea::new(id, path.clone(), disk, prio, dev, &hdr, maxpages);
    area.file = file;
    let kib = area.good * 4;
    k.frames.swap.borrow_mut().add(area);
    k.printk(
        KERN_INFO,
        &format!(
            "Adding {kib}k swap on {}.  Priority:{prio} extents:1 across:{kib}k",
            String::from_utf8_lossy(&path)
        ),
    );
    swaps_changed(k);
    ok(0)
}

/// Pollers of /proc/swaps look again (kernel/files/procfile.rs).
fn swaps_changed(k: &mut Kernel) {
    let q = k.evhub.swaps.clone();
    k.wake_queue(&q, crate::kernel::waitq::ALL_EVENTS);
}

/// swapoff(path): every page comes back, or ENOMEM with nothing changed.
pub fn sys_swapoff(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    let path = k.read_path(tid, a[0])?;
    let id = k.swap_area_of(tid, &path)?;
    // As Linux's SWP_WRITEOK: nothing new goes to the area while it
    // empties; a page that has no room to come back first makes room by
    // reclaim and by swapping other pages out to the other areas.
    k.frames.swap.borrow_mut().set_writeok(id, false);
    let room = |k: &Kernel| {
        k.physmem
            .backed_limit()
            .saturating_sub(k.physmem.frames_backed())
    };
    let out = k.frames.swap.borrow().frames_in(id);
    for f in out {
        if !k.frames.swap.borrow().is_swapped(f) {
            continue;
        }
        if room(k) == 0 {
            k.reclaim_page_cache(SWAP_BATCH);
            if room(k) == 0 {
                k.swap_out_pages(SWAP_BATCH);
            }
            if room(k) == 0 && k.budget_deadline().is_some() {
                // Under a host budget the heap a swap pass held (its
                // reverse map) lowers the cap until the budget measures
                // again, and one syscall sees no refresh: measure now,
                // then try once more.
                k.budget_refresh();
                if room(k) == 0 {
                    k.swap_out_pages(SWAP_BATCH);
                }
            }
            if room(k) == 0 {
                // What came back stays in; the area is usable again.
                k.frames.swap.borrow_mut().set_writeok(id, true);
                return Err(Errno::ENOMEM);
            }
        }
        if k.frames.swap_in(f, false).is_err() {
            k.frames.swap.borrow_mut().set_writeok(id, true);
            return Err(Errno::EIO);
        }
    }
    k.frames.swap.borrow_mut().drop_cache_in(id);
    if let Some(area) = k.frames.swap.borrow_mut().remove(id) {
        if let Some(index) = area.disk {
            k.disks.release_disk(index);
        }
    }
    swaps_changed(k);
    ok(0)
}
