//! Swap areas: Linux's swap-space format on a guest block device, the
//! slots in use, and which frames have their contents in which slot.
//!
//! A swapped-out page keeps its frame number: the frame is made hollow
//! (physmem/hollow.rs: punched, the host holds nothing for it) and its
//! contents live in a slot until a fault brings them back
//! (`FrameRefs::swap_in`). Page tables, fork's sharing and copy-on-write
//! counts never see the difference; the last reference to a hollow frame
//! frees its slot. The choice of pages is the kernel's (kernel/swap.rs).
//!
//! The swap cache: a page read back by a read access keeps its slot (the
//! slot still holds exactly its contents) while swap is less than half
//! full (Linux's vm_swap_full); its page table entry is made read-only,
//! so the first write faults and `dirty` frees the slot. A clean page
//! chosen for swap-out again just goes hollow: no write (pswpout counts
//! only writes, as in Linux). When no slot is free, cached slots are
//! given up first.
//!
//! The header is Linux's `union swap_header` (what busybox and util-linux
//! `mkswap` write): "SWAPSPACE2" in the last 10 bytes of page 0, and at
//! byte 1024 version (1), last_page, nr_badpages, uuid, label, then the
//! bad page list at byte 1536. Every check of Linux's `read_swap_header`
//! gives its errno (EINVAL).

use std::cell::{Ref, RefCell, RefMut};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::errno::{Errno, KResult};
use crate::physmem::{Frame, PAGE_SIZE};

pub const SWAP_MAGIC: &[u8; 10] = b"SWAPSPACE2";
/// Linux's MAX_SWAP_BADPAGES for 4 KiB pages.
pub const MAX_BADPAGES: u32 = ((PAGE_SIZE - 1536 - 10) / 4) as u32;

/// What page 0 of a swap area says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapHeader {
    pub last_page: u32,
    pub badpages: Vec<u32>,
}

/// Parses and checks a swap header against a device of `dev_pages` pages.
/// Returns the header and the pages the area may use (page 0 included).
pub fn parse_header(page: &[u8; PAGE_SIZE], dev_pages: u64) -> KResult<(SwapHeader, u64)> {
    if &page[PAGE_SIZE - 10..] != SWAP_MAGIC {
        return Err(Errno::EINVAL);
    }
    let u32_at = |o: usize| u32::from_le_bytes(page[o..o + 4].try_into().expect("4 bytes"));
    if u32_at(1024) != 1 {
        return Err(Errno::EINVAL);
    }
    let last_page = u32_at(1028);
    let nr_bad = u32_at(1032);
    if nr_bad > MAX_BADPAGES {
        return Err(Errno::EINVAL);
    }
    let mut badpages = Vec::with_capacity(nr_bad as usize);
    for i in 0..nr_bad as usize {
        let b = u32_at(1536 + 4 * i);
        if b == 0 || b > last_page {
            return Err(Errno::EINVAL);
        }
        badpages.push(b);
    }
    // Linux truncates an area longer than its device.
    let maxpages = (u64::from(last_page) + 1).min(dev_pages);
    let bad_inside = badpages
        .iter()
        .filter(|&&b| u64::from(b) < maxpages)
        .count() as u64;
    if maxpages < 2 || maxpages - 1 <= bad_inside {
        // "Empty swap-file".
        return Err(Errno::EINVAL);
    }
    Ok((
        SwapHeader {
            last_page,
            badpages,
        },
        maxpages,
    ))
}

/// Page-sized I/O on what backs a swap area.
pub trait SwapDev {
    fn read_page(&self, offset: u64, buf: &mut [u8]) -> KResult<()>;
    fn write_page(&self, offset: u64, data: &[u8]) -> KResult<()>;
}

impl SwapDev for crate::block::Ubd {
    fn read_page(&self, offset: u64, buf: &mut [u8]) -> KResult<()> {
        self.read_at(offset, buf).map_err(|e| {
            log::warn!("swap read: {e}");
            Errno::EIO
        })
    }

    fn write_page(&self, offset: u64, data: &[u8]) -> KResult<()> {
        self.write_at(offset, data).map_err(|e| {
            log::warn!("swap write: {e}");
            Errno::EIO
        })
    }
}

/// A swap file: its pages where the file system put them on the device
/// (`FileSystem::swap_extents`), so swap I/O goes straight to the device
/// as in Linux and never through the file's page cache.
pub struct Extents {
    pub dev: Arc<dyn SwapDev>,
    /// The device byte offset of each page of the area, in order.
    pub pages: Vec<u64>,
}

impl Extents {
    fn at(&self, offset: u64) -> KResult<u64> {
        let i = usize::try_from(offset / PAGE_SIZE as u64).map_err(|_| Errno::EIO)?;
        self.pages.get(i).copied().ok_or(Errno::EIO)
    }
}

impl SwapDev for Extents {
    fn read_page(&self, offset: u64, buf: &mut [u8]) -> KResult<()> {
        self.dev.read_page(self.at(offset)?, buf)
    }

    fn write_page(&self, offset: u64, data: &[u8]) -> KResult<()> {
        self.dev.write_page(self.at(offset)?, data)
    }
}

/// Cached slots given up at once when no slot is free.
const SHRINK_BATCH: usize = 64;

const SLOT_FREE: u8 = 0;
const SLOT_USED: u8 = 1;
const SLOT_BAD: u8 = 2;

/// One active swap area.
pub struct SwapArea {
    pub id: u32,
    /// The name /proc/swaps shows (the path given to swapon).
    pub name: Vec<u8>,
    /// The guest disk it is on, if a whole disk.
    pub disk: Option<usize>,
    /// The file it is, if a swap file: (mount, inode).
    pub file: Option<(usize, u64)>,
    pub prio: i16,
    dev: Arc<dyn SwapDev>,
    /// Per page: free, used or bad; page 0 (the header) is bad.
    map: Vec<u8>,
    /// Usable pages (size in /proc/swaps), and pages in use.
    pub good: u64,
    pub used: u64,
    cursor: usize,
    /// False while swapoff empties it: no new slots (Linux's SWP_WRITEOK).
    writeok: bool,
}

impl SwapArea {
    pub fn new(
        id: u32,
        name: Vec<u8>,
        disk: Option<usize>,
        prio: i16,
        dev: Arc<dyn SwapDev>,
        header: &SwapHeader,
        maxpages: u64,
    ) -> SwapArea {
        let mut map = vec![SLOT_FREE; maxpages as usize];
        map[0] = SLOT_BAD;
        for &b in &header.badpages {
            if let Some(m) = map.get_mut(b as usize) {
                *m = SLOT_BAD;
            }
        }
        let good = map.iter().filter(|&&m| m == SLOT_FREE).count() as u64;
        SwapArea {
            id,
            name,
            disk,
            file: None,
            prio,
            dev,
            map,
            good,
            used: 0,
            cursor: 1,
            writeok: true,
        }
    }

    fn has_room(&self) -> bool {
        self.writeok && self.used < self.good
    }

    fn alloc(&mut self) -> Option<u64> {
        if !self.has_room() {
            return None;
        }
        let n = self.map.len();
        for i in 0..n {
            let s = (self.cursor + i) % n;
            if self.map[s] == SLOT_FREE {
                self.map[s] = SLOT_USED;
                self.used += 1;
                self.cursor = s + 1;
                return Some(s as u64);
            }
        }
        None
    }

    fn free(&mut self, slot: u64) {
        if let Some(m) = self.map.get_mut(slot as usize) {
            if *m == SLOT_USED {
                *m = SLOT_FREE;
                self.used -= 1;
            }
        }
    }
}

/// The swap space as the kernel's frames and the tmpfs page stores
/// (mm/shmem.rs) share it: one kernel thread uses it, borrows are short.
#[derive(Clone, Default)]
pub struct SwapRef(Rc<RefCell<SwapSpace>>);

impl SwapRef {
    pub fn borrow(&self) -> Ref<'_, SwapSpace> {
        self.0.borrow()
    }

    pub fn borrow_mut(&self) -> RefMut<'_, SwapSpace> {
        self.0.borrow_mut()
    }
}

/// Every swap area and the frames whose contents are in one.
#[derive(Default)]
pub struct SwapSpace {
    /// Highest priority first (Linux uses the highest first).
    pub areas: Vec<SwapArea>,
    /// Frame → (area id, slot).
    out: HashMap<Frame, (u32, u64)>,
    /// Resident frames whose slot still holds their contents (the swap
    /// cache): frame → (area id, slot).
    cached: HashMap<Frame, (u32, u64)>,
    next_id: u32,
    /// Pages read back and written out (/proc/vmstat pswpin, pswpout).
    pub pswpin: u64,
    pub pswpout: u64,
    /// Clean pages that went out again without a write (swap cache).
    pub cache_hits: u64,
    /// tmpfs frames by last use (mm/shmem.rs).
    pub shmem: super::shmem::ShmemLru,
    /// Round-robin among the areas of the highest priority with room.
    rr: usize,
}

impl SwapSpace {
    pub fn next_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds an area, keeping the order by priority.
    pub fn add(&mut self, a: SwapArea) {
        self.areas.push(a);
        self.areas.sort_by_key(|a| std::cmp::Reverse(a.prio));
    }

    pub fn total_pages(&self) -> u64 {
        self.areas.iter().map(|a| a.good).sum()
    }

    pub fn used_pages(&self) -> u64 {
        self.areas.iter().map(|a| a.used).sum()
    }

    /// Some area takes new pages (a cached slot may be given up, or a
    /// cached page may go out without a write).
    pub fn has_room(&self) -> bool {
        self.areas.iter().any(|a| a.has_room()) || !self.cached.is_empty()
    }

    /// Pages in the swap cache (/proc/meminfo SwapCached).
    pub fn cached_pages(&self) -> u64 {
        self.cached.len() as u64
    }

    /// `f` is resident and its slot still holds its contents.
    pub fn is_cached(&self, f: Frame) -> bool {
        self.cached.contains_key(&f)
    }

    /// Linux's vm_swap_full: more than half the swap space in use; then a
    /// page read back gives its slot up at once.
    fn full(&self) -> bool {
        self.used_pages().saturating_mul(2) > self.total_pages()
    }

    /// `f` is about to be written: a cached slot no longer matches it and
    /// is freed.
    pub fn dirty(&mut self, f: Frame) {
        if let Some((id, slot)) = self.cached.remove(&f) {
            self.free_slot(id, slot);
        }
    }

    fn free_slot(&mut self, id: u32, slot: u64) {
        if let Some(a) = self.areas.iter_mut().find(|a| a.id == id) {
            a.free(slot);
        }
    }

    /// A clean cached page goes out again: its slot is kept, no write.
    /// False if `f` is not in the swap cache (or its area is going away).
    pub fn store_cached(&mut self, f: Frame) -> bool {
        let Some(&(id, slot)) = self.cached.get(&f) else {
            return false;
        };
        if !self.areas.iter().any(|a| a.id == id && a.writeok) {
            return false;
        }
        self.cached.remove(&f);
        self.out.insert(f, (id, slot));
        self.shmem.gone_out(f);
        self.cache_hits += 1;
        true
    }

    /// Gives up the slots of up to `n` cached pages (their frames are
    /// resident, so nothing is lost); returns how many.
    fn shrink_cache(&mut self, n: usize) -> usize {
        let victims: Vec<Frame> = self.cached.keys().take(n).copied().collect();
        for f in &victims {
            self.dirty(*f);
        }
        victims.len()
    }

    /// Drops the swap cache entries in area `id` (swapoff).
    pub fn drop_cache_in(&mut self, id: u32) {
        let fs: Vec<Frame> = self
            .cached
            .iter()
            .filter(|(_, (a, _))| *a == id)
            .map(|(f, _)| *f)
            .collect();
        for f in fs {
            self.dirty(f);
        }
    }

    pub fn is_swapped(&self, f: Frame) -> bool {
        // Nothing swapped out (the usual case) costs no hashing.
        !self.out.is_empty() && self.out.contains_key(&f)
    }

    /// Writes a page's contents to a free slot and records it for `f`.
    /// The area is chosen as Linux does: the highest priority with a free
    /// slot, round-robin among areas of that same priority.
    pub fn store(&mut self, f: Frame, data: &[u8]) -> KResult<()> {
        // A stale cached slot of `f` itself goes first.
        self.dirty(f);
        if !self.areas.iter().any(|a| a.has_room()) {
            self.shrink_cache(SHRINK_BATCH);
        }
        let Some(prio) = self.areas.iter().find(|a| a.has_room()).map(|a| a.prio) else {
            return Err(Errno::ENOMEM);
        };
        let same: Vec<usize> = (0..self.areas.len())
            .filter(|&i| self.areas[i].prio == prio && self.areas[i].has_room())
            .collect();
        self.rr = self.rr.wrapping_add(1);
        let first = self.rr % same.len();
        let order = same[first..].iter().chain(&same[..first]).copied();
        for i in order.collect::<Vec<_>>() {
            let a = &mut self.areas[i];
            let Some(slot) = a.alloc() else { continue };
            if let Err(e) = a.dev.write_page(slot * PAGE_SIZE as u64, data) {
                // A slot that cannot be written is not used again.
                a.map[slot as usize] = SLOT_BAD;
                a.used -= 1;
                a.good -= 1;
                return Err(e);
            }
            self.out.insert(f, (a.id, slot));
            self.shmem.gone_out(f);
            self.pswpout += 1;
            return Ok(());
        }
        Err(Errno::ENOMEM)
    }

    /// Reads `f`'s contents back and frees its slot, or with `keep`
    /// (a read access, swap not full) keeps it as the swap cache. Returns
    /// whether the slot was kept: then the caller must see that no write
    /// reaches the frame without `dirty` first.
    pub fn load(&mut self, f: Frame, buf: &mut [u8; PAGE_SIZE], keep: bool) -> KResult<bool> {
        let &(id, slot) = self.out.get(&f).ok_or(Errno::EINVAL)?;
        let keep = keep && !self.full();
        let a = self
            .areas
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(Errno::EIO)?;
        a.dev.read_page(slot * PAGE_SIZE as u64, buf)?;
        let keep = keep && a.writeok;
        if !keep {
            a.free(slot);
        }
        self.out.remove(&f);
        if keep {
            self.cached.insert(f, (id, slot));
        }
        if self.shmem.tracks(f) {
            self.shmem.touch(f);
        }
        self.pswpin += 1;
        Ok(keep)
    }

    fn slot_of(&mut self, f: Frame) -> KResult<(&mut SwapArea, u64)> {
        let &(id, slot) = self.out.get(&f).ok_or(Errno::EINVAL)?;
        let a = self
            .areas
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(Errno::EIO)?;
        Ok((a, slot))
    }

    /// Reads swapped-out `f`'s slot, leaving it out (a tmpfs access with
    /// no room to bring the page in).
    pub fn peek(&mut self, f: Frame, buf: &mut [u8; PAGE_SIZE]) -> KResult<()> {
        let (a, slot) = self.slot_of(f)?;
        a.dev.read_page(slot * PAGE_SIZE as u64, buf)?;
        self.pswpin += 1;
        Ok(())
    }

    /// Writes swapped-out `f`'s new contents into its slot in place.
    pub fn rewrite(&mut self, f: Frame, data: &[u8; PAGE_SIZE]) -> KResult<()> {
        let (a, slot) = self.slot_of(f)?;
        a.dev.write_page(slot * PAGE_SIZE as u64, data)?;
        self.pswpout += 1;
        Ok(())
    }

    /// The last reference to `f` went: its slot is free again.
    pub fn forget(&mut self, f: Frame) {
        if let Some((id, slot)) = self.out.remove(&f) {
            self.free_slot(id, slot);
        }
        self.dirty(f);
    }

    /// The frames whose contents are in area `id`.
    pub fn frames_in(&self, id: u32) -> Vec<Frame> {
        self.out
            .iter()
            .filter(|(_, (a, _))| *a == id)
            .map(|(f, _)| *f)
            .collect()
    }

    /// Lets area `id` take new pages or not (swapoff).
    pub fn set_writeok(&mut self, id: u32, on: bool) {
        if let Some(a) = self.areas.iter_mut().find(|a| a.id == id) {
            a.writeok = on;
        }
    }

    /// Takes area `id` out (its pages must be back already).
    pub fn remove(&mut self, id: u32) -> Option<SwapArea> {
        let i = self.areas.iter().position(|a| a.id == id)?;
        Some(self.areas.remove(i))
    }
}

/// A swap area in memory, for the unit tests of the layers above.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use parking_lot::Mutex;

    pub struct MemDev(pub Mutex<Vec<u8>>);

    impl SwapDev for MemDev {
        fn read_page(&self, offset: u64, buf: &mut [u8]) -> KResult<()> {
            let o = offset as usize;
            buf.copy_from_slice(&self.0.lock()[o..o + buf.len()]);
            Ok(())
        }
        fn write_page(&self, offset: u64, data: &[u8]) -> KResult<()> {
            let o = offset as usize;
            self.0.lock()[o..o + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    /// Adds an area of `pages` pages (as busybox `mkswap` makes it) to
    /// `s`; returns its id.
    pub fn add_area(s: &mut SwapSpace, pages: u32) -> u32 {
        let mut hdr = [0u8; PAGE_SIZE];
        hdr[1024..1028].copy_from_slice(&1u32.to_le_bytes());
        hdr[1028..1032].copy_from_slice(&(pages - 1).to_le_bytes());
        hdr[PAGE_SIZE - 10..].copy_from_slice(SWAP_MAGIC);
        let (h, max) = parse_header(&hdr, u64::from(pages)).unwrap();
        let dev: Arc<dyn SwapDev> =
            Arc::new(MemDev(Mutex::new(vec![0; pages as usize * PAGE_SIZE])));
        let id = s.next_id();
        s.add(SwapArea::new(id, b"mem".to_vec(), None, -2, dev, &h, max));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// What busybox `mkswap` writes for a device of `pages` pages.
    pub fn mkswap(pages: u32) -> [u8; PAGE_SIZE] {
        let mut p = [0u8; PAGE_SIZE];
        p[1024..1028].copy_from_slice(&1u32.to_le_bytes());
        p[1028..1032].copy_from_slice(&(pages - 1).to_le_bytes());
        p[PAGE_SIZE - 10..].copy_from_slice(SWAP_MAGIC);
        p
    }

    #[test]
    fn headers_like_linux() {
        let h = mkswap(100);
        assert_eq!(parse_header(&h, 100).unwrap().1, 100);
        // Longer than the device: truncated.
        assert_eq!(parse_header(&h, 50).unwrap().1, 50);
        let mut bad = h;
        bad[PAGE_SIZE - 1] = b'1';
        assert_eq!(parse_header(&bad, 100), Err(Errno::EINVAL));
        let mut v2 = h;
        v2[1024] = 2;
        assert_eq!(parse_header(&v2, 100), Err(Errno::EINVAL));
        // Too small: only the header page.
        assert_eq!(parse_header(&mkswap(1), 1), Err(Errno::EINVAL));
        let mut badpages = mkswap(100);
        badpages[1032..1036].copy_from_slice(&1u32.to_le_bytes());
        badpages[1536..1540].copy_from_slice(&5u32.to_le_bytes());
        let (hd, _) = parse_header(&badpages, 100).unwrap();
        assert_eq!(hd.badpages, vec![5]);
        badpages[1536..1540].copy_from_slice(&500u32.to_le_bytes());
        assert_eq!(parse_header(&badpages, 100), Err(Errno::EINVAL));
        badpages[1032..1036].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_header(&badpages, 100), Err(Errno::EINVAL));
    }

    struct MemDev(Mutex<Vec<u8>>);

    impl SwapDev for MemDev {
        fn read_page(&self, offset: u64, buf: &mut [u8]) -> KResult<()> {
            let o = offset as usize;
            buf.copy_from_slice(&self.0.lock()[o..o + buf.len()]);
            Ok(())
        }
        fn write_page(&self, offset: u64, data: &[u8]) -> KResult<()> {
            let o = offset as usize;
            self.0.lock()[o..o + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn store_load_forget() {
        let mut hdr = mkswap(4);
        hdr[1032..1036].copy_from_slice(&1u32.to_le_bytes());
        hdr[1536..1540].copy_from_slice(&2u32.to_le_bytes());
        let (h, max) = parse_header(&hdr, 4).unwrap();
        let dev = Arc::new(MemDev(Mutex::new(vec![0; 4 * PAGE_SIZE])));
        let mut s = SwapSpace::default();
        let id = s.next_id();
        s.add(SwapArea::new(
            id,
            b"/dev/x".to_vec(),
            None,
            -2,
            dev,
            &h,
            max,
        ));
        // Pages 1 and 3: page 0 is the header, page 2 is bad.
        assert_eq!(s.total_pages(), 2);
        s.store(Frame(10), &[1; PAGE_SIZE]).unwrap();
        s.store(Frame(11), &[2; PAGE_SIZE]).unwrap();
        assert_eq!(s.store(Frame(12), &[3; PAGE_SIZE]), Err(Errno::ENOMEM));
        assert_eq!(s.used_pages(), 2);
        let mut buf = [0u8; PAGE_SIZE];
        s.load(Frame(11), &mut buf, false).unwrap();
        assert_eq!(buf, [2; PAGE_SIZE]);
        assert!(!s.is_swapped(Frame(11)));
        s.forget(Frame(10));
        assert_eq!(s.used_pages(), 0);
        assert_eq!((s.pswpin, s.pswpout), (1, 2));
    }

    #[test]
    fn a_clean_page_read_back_goes_out_again_without_a_write() {
        let mut s = SwapSpace::default();
        let (_, _) = area(&mut s, 9, -2);
        let mut buf = [0u8; PAGE_SIZE];
        s.store(Frame(1), &[1; PAGE_SIZE]).unwrap();
        // Read back with keep: the slot stays (still used), cached.
        assert!(s.load(Frame(1), &mut buf, true).unwrap());
        assert_eq!(buf, [1; PAGE_SIZE]);
        assert!(s.is_cached(Frame(1)) && !s.is_swapped(Frame(1)));
        assert_eq!((s.used_pages(), s.cached_pages()), (1, 1));
        // Out again: no write, same slot.
        let writes = s.pswpout;
        assert!(s.store_cached(Frame(1)));
        assert_eq!((s.pswpout, s.cache_hits), (writes, 1));
        assert!(s.is_swapped(Frame(1)) && !s.is_cached(Frame(1)));
        s.load(Frame(1), &mut buf, true).unwrap();
        assert_eq!(buf, [1; PAGE_SIZE]);
        // Dirtied: the slot is freed, and the next swap-out writes.
        s.dirty(Frame(1));
        assert_eq!((s.used_pages(), s.cached_pages()), (0, 0));
        assert!(!s.store_cached(Frame(1)));
        s.store(Frame(1), &[2; PAGE_SIZE]).unwrap();
        assert_eq!(s.pswpout, writes + 1);
        s.load(Frame(1), &mut buf, false).unwrap();
        assert_eq!((buf, s.used_pages()), ([2; PAGE_SIZE], 0));
        // The last reference to a cached frame frees its slot.
        s.store(Frame(2), &[3; PAGE_SIZE]).unwrap();
        s.load(Frame(2), &mut buf, true).unwrap();
        s.forget(Frame(2));
        assert_eq!((s.used_pages(), s.cached_pages()), (0, 0));
    }

    #[test]
    fn the_swap_cache_gives_way_when_swap_is_half_full_or_full() {
        let mut s = SwapSpace::default();
        // Eight usable slots.
        let (id, _) = area(&mut s, 9, -2);
        let mut buf = [0u8; PAGE_SIZE];
        for f in 0..4 {
            s.store(Frame(f), &[f as u8; PAGE_SIZE]).unwrap();
        }
        // Half full: still kept.
        assert!(s.load(Frame(0), &mut buf, true).unwrap());
        s.store(Frame(4), &[4; PAGE_SIZE]).unwrap();
        // Five of eight used: more than half, not kept.
        assert!(!s.load(Frame(1), &mut buf, true).unwrap());
        assert_eq!(buf, [1; PAGE_SIZE]);
        // Fill every slot but the cached one; the next store takes it.
        for f in 5..9 {
            s.store(Frame(f), &[f as u8; PAGE_SIZE]).unwrap();
        }
        assert_eq!((s.used_pages(), s.cached_pages()), (8, 1));
        assert!(s.has_room());
        s.store(Frame(9), &[9; PAGE_SIZE]).unwrap();
        assert_eq!((s.used_pages(), s.cached_pages()), (8, 0));
        assert!(!s.has_room());
        assert_eq!(s.store(Frame(10), &[0; PAGE_SIZE]), Err(Errno::ENOMEM));
        for f in [2u64, 3, 4, 5, 6, 7, 8, 9] {
            s.load(Frame(f), &mut buf, false).unwrap();
            assert_eq!(buf, [f as u8; PAGE_SIZE]);
        }
        // swapoff drops the cache of its area.
        s.store(Frame(1), &[1; PAGE_SIZE]).unwrap();
        assert!(s.load(Frame(1), &mut buf, true).unwrap());
        s.drop_cache_in(id);
        assert_eq!((s.used_pages(), s.cached_pages()), (0, 0));
    }

    fn area(s: &mut SwapSpace, pages: u32, prio: i16) -> (u32, Arc<MemDev>) {
        let dev = Arc::new(MemDev(Mutex::new(vec![0; pages as usize * PAGE_SIZE])));
        let (h, max) = parse_header(&mkswap(pages), u64::from(pages)).unwrap();
        let id = s.next_id();
        let d: Arc<dyn SwapDev> = dev.clone();
        s.add(SwapArea::new(id, b"a".to_vec(), None, prio, d, &h, max));
        (id, dev)
    }

    #[test]
    fn highest_priority_first_round_robin_among_equals() {
        let mut s = SwapSpace::default();
        let (low, _) = area(&mut s, 5, -2);
        let (hi1, _) = area(&mut s, 3, 7);
        let (hi2, _) = area(&mut s, 3, 7);
        // Four pages: two each in the prio-7 areas, alternating.
        for f in 0..4 {
            s.store(Frame(f), &[f as u8; PAGE_SIZE]).unwrap();
        }
        let used = |s: &SwapSpace, id| s.areas.iter().find(|a| a.id == id).unwrap().used;
        assert_eq!((used(&s, hi1), used(&s, hi2), used(&s, low)), (2, 2, 0));
        // They are full: the lower priority takes the rest.
        s.store(Frame(9), &[9; PAGE_SIZE]).unwrap();
        assert_eq!(used(&s, low), 1);
        // A slot freed in a prio-7 area is used before the lower one.
        s.forget(Frame(0));
        s.store(Frame(10), &[10; PAGE_SIZE]).unwrap();
        assert_eq!(used(&s, low), 1);
        let mut buf = [0u8; PAGE_SIZE];
        for f in [1u64, 2, 3, 9, 10] {
            s.load(Frame(f), &mut buf, false).unwrap();
            assert_eq!(buf, [f as u8; PAGE_SIZE]);
        }
    }

    #[test]
    fn a_swap_file_goes_where_its_extents_say() {
        // A file of three pages on a six-page device, out of order.
        let dev = Arc::new(MemDev(Mutex::new(vec![0; 6 * PAGE_SIZE])));
        let inner: Arc<dyn SwapDev> = dev.clone();
        let pg = PAGE_SIZE as u64;
        let ext = Extents {
            dev: inner,
            pages: vec![4 * pg, pg, 5 * pg],
        };
        ext.write_page(pg, &[7; PAGE_SIZE]).unwrap();
        ext.write_page(2 * pg, &[8; PAGE_SIZE]).unwrap();
        let d = dev.0.lock();
        assert!(d[pg as usize..2 * pg as usize].iter().all(|&b| b == 7));
        assert!(d[5 * pg as usize..].iter().all(|&b| b == 8));
        assert!(d[4 * pg as usize..5 * pg as usize].iter().all(|&b| b == 0));
        drop(d);
        let mut buf = [0u8; PAGE_SIZE];
        ext.read_page(pg, &mut buf).unwrap();
        assert_eq!(buf, [7; PAGE_SIZE]);
        // Past the file: EIO, never another page of the device.
        assert_eq!(ext.read_page(3 * pg, &mut buf), Err(Errno::EIO));
        assert_eq!(ext.write_page(u64::MAX, &buf), Err(Errno::EIO));
    }
}
