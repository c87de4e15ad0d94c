//! tmpfs pages in swap (Linux's shmem swapping): the page store under
//! every tmpfs (and memfd) of the kernel, whose pages may go to swap as
//! anonymous pages do.
//!
//! Every read and write of a tmpfs page goes through the store, so it
//! knows exactly when each page was last used: a true least-recently-used
//! order (`ShmemLru`, kept in the shared `SwapSpace`), not the clock the
//! address spaces need. A tmpfs frame is never mapped in a stub (a mapping
//! of a tmpfs file maps page-cache copies), so a page going out needs no
//! revoke: it is written to a slot (or, clean in the swap cache, not
//! written at all) and its frame made hollow.
//!
//! Pressure reaches tmpfs pages two ways: the kernel's swap-out
//! (kernel/swap.rs) takes the oldest after the cold anonymous pages, and a
//! tmpfs write that needs a page when the frames the host backs are at
//! their limit swaps out older tmpfs pages first (else ENOSPC, as before).
//! A page in swap is read back on its next access; when there is no room
//! even then, the access goes through to the slot (read, or read-modify-
//! write), so a full budget never loses tmpfs data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::swap::SwapRef;
use crate::errno::{Errno, KResult};
use crate::fs::tmpfs::PageStore;
use crate::physmem::{Frame, PhysMem, PAGE_SIZE};

/// tmpfs pages swapped out at once when a tmpfs page is wanted at the
/// limit.
const SHMEM_BATCH: usize = 32;

/// tmpfs frames by last use.
#[derive(Default)]
pub struct ShmemLru {
    tick: u64,
    /// Every tmpfs frame, with its last use.
    at: HashMap<Frame, u64>,
    /// The resident ones, oldest first.
    order: BTreeMap<u64, Frame>,
}

impl ShmemLru {
    /// `f` (a tmpfs frame, resident) was used now.
    pub fn touch(&mut self, f: Frame) {
        self.tick += 1;
        if let Some(old) = self.at.insert(f, self.tick) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, f);
    }

    /// `f` is a tmpfs frame.
    pub fn tracks(&self, f: Frame) -> bool {
        self.at.contains_key(&f)
    }

    /// `f` went to swap: not a candidate until it is back.
    pub fn gone_out(&mut self, f: Frame) {
        if let Some(t) = self.at.get(&f) {
            self.order.remove(t);
        }
    }

    /// `f` was freed.
    pub fn remove(&mut self, f: Frame) {
        if let Some(t) = self.at.remove(&f) {
            self.order.remove(&t);
        }
    }

    /// Up to `n` resident tmpfs frames, least recently used first.
    pub fn oldest(&self, n: usize) -> Vec<Frame> {
        self.order.values().take(n).copied().collect()
    }

    /// Resident tmpfs frames.
    pub fn resident(&self) -> usize {
        self.order.len()
    }
}

/// The page store of the kernel's tmpfs instances: physmem frames that
/// may be in swap.
pub struct ShmemStore {
    physmem: Arc<PhysMem>,
    swap: SwapRef,
}

impl ShmemStore {
    pub fn new(physmem: Arc<PhysMem>, swap: SwapRef) -> ShmemStore {
        ShmemStore { physmem, swap }
    }

    /// Swaps out up to `n` of the least recently used resident tmpfs
    /// pages; returns how many went.
    pub fn swap_out_oldest(physmem: &PhysMem, swap: &SwapRef, n: usize) -> u64 {
        let victims = swap.borrow().shmem.oldest(n);
        let mut got = 0;
        for f in victims {
            if swap_out_frame(physmem, swap, f).is_err() {
                break;
            }
            got += 1;
        }
        got
    }

    /// Makes room for one frame by sending older tmpfs pages to swap.
    fn make_room(&self) -> bool {
        self.physmem.frames_backed() < self.physmem.backed_limit()
            || Self::swap_out_oldest(&self.physmem, &self.swap, SHMEM_BATCH) > 0
    }

    /// Brings `f` back from swap if it is there and there is room (its
    /// slot stays as the swap cache while it is clean). False: it stays
    /// out.
    fn bring_in(&self, f: Frame) -> bool {
        if !self.swap.borrow().is_swapped(f) {
            return true;
        }
        if !self.make_room() {
            return false;
        }
        let mut buf = [0u8; PAGE_SIZE];
        if self.swap.borrow_mut().load(f, &mut buf, true).is_err() {
            return false;
        }
        if self.physmem.fill(f, &buf).is_err() {
            log::error!("tmpfs page {f:?}: refill after swap-in failed");
            return false;
        }
        true
    }

    /// A page of `f` as its slot holds it (no room to bring it in).
    fn peek(&self, f: Frame) -> Option<[u8; PAGE_SIZE]> {
        let mut buf = [0u8; PAGE_SIZE];
        match self.swap.borrow_mut().peek(f, &mut buf) {
            Ok(()) => Some(buf),
            Err(e) => {
                log::warn!("tmpfs page {f:?}: swap read failed: {e:?}");
                None
            }
        }
    }
}

/// Writes tmpfs frame `f` to swap and makes it hollow.
fn swap_out_frame(physmem: &PhysMem, swap: &SwapRef, f: Frame) -> KResult<()> {
    let mut s = swap.borrow_mut();
    if s.is_swapped(f) {
        return Ok(());
    }
    if !s.store_cached(f) {
        let mut buf = [0u8; PAGE_SIZE];
        physmem.read(f, 0, &mut buf);
        s.store(f, &buf)?;
    }
    if physmem.hollow(f).is_err() {
        // Its contents are still in the frame; the slot goes.
        s.forget(f);
        s.shmem.touch(f);
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl PageStore for ShmemStore {
    fn alloc(&self) -> KResult<u64> {
        let f = match self.physmem.alloc() {
            Ok(f) => f,
            Err(_) => {
                if !self.make_room() {
                    return Err(Errno::ENOSPC);
                }
                self.physmem.alloc().map_err(|_| Errno::ENOSPC)?
            }
        };
        self.swap.borrow_mut().shmem.touch(f);
        Ok(f.0)
    }

    fn free(&self, h: u64) {
        let f = Frame(h);
        {
            let mut s = self.swap.borrow_mut();
            s.forget(f);
            s.shmem.remove(f);
        }
        self.physmem.free(f);
    }

    fn read(&self, h: u64, off: usize, buf: &mut [u8]) {
        let f = Frame(h);
        if !self.bring_in(f) {
            match self.peek(f) {
                Some(p) => buf.copy_from_slice(&p[off..off + buf.len()]),
                None => buf.fill(0),
            }
            return;
        }
        self.physmem.read(f, off, buf);
        self.swap.borrow_mut().shmem.touch(f);
    }

    fn write(&self, h: u64, off: usize, data: &[u8]) {
        let f = Frame(h);
        if !self.bring_in(f) {
            // No room: the slot is written in place.
            if let Some(mut p) = self.peek(f) {
                p[off..off + data.len()].copy_from_slice(data);
                if let Err(e) = self.swap.borrow_mut().rewrite(f, &p) {
                    log::error!("tmpfs page {f:?}: swap write failed: {e:?}");
                }
            }
            return;
        }
        // The slot no longer matches what the frame will hold.
        self.swap.borrow_mut().dirty(f);
        if let Err(e) = self.physmem.write(f, off, data) {
            log::error!("tmpfs page write failed: {e}");
        }
        self.swap.borrow_mut().shmem.touch(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::swap::{parse_header, SwapArea, SwapDev, SWAP_MAGIC};
    use parking_lot::Mutex;

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

    /// A store over 64 frames of which the host backs 4, with 32 pages
    /// of swap.
    fn store() -> (ShmemStore, Arc<PhysMem>, SwapRef) {
        let pm = Arc::new(PhysMem::new(64 * PAGE_SIZE as u64).unwrap());
        pm.set_backed_limit(4);
        let swap = SwapRef::default();
        let mut hdr = [0u8; PAGE_SIZE];
        hdr[1024..1028].copy_from_slice(&1u32.to_le_bytes());
        hdr[1028..1032].copy_from_slice(&31u32.to_le_bytes());
        hdr[PAGE_SIZE - 10..].copy_from_slice(SWAP_MAGIC);
        let (h, max) = parse_header(&hdr, 32).unwrap();
        let dev: Arc<dyn SwapDev> = Arc::new(MemDev(Mutex::new(vec![0; 32 * PAGE_SIZE])));
        {
            let mut s = swap.borrow_mut();
            let id = s.next_id();
            s.add(SwapArea::new(id, b"m".to_vec(), None, -2, dev, &h, max));
        }
        (ShmemStore::new(pm.clone(), swap.clone()), pm, swap)
    }

    #[test]
    fn tmpfs_pages_past_the_limit_go_to_swap_and_read_back() {
        let (st, pm, swap) = store();
        let hs: Vec<u64> = (0..10u8)
            .map(|i| {
                let h = st.alloc().unwrap();
                st.write(h, 0, &[i; PAGE_SIZE]);
                h
            })
            .collect();
        assert!(pm.frames_backed() <= 4);
        assert!(swap.borrow().pswpout >= 6);
        let mut buf = [0u8; PAGE_SIZE];
        for (i, &h) in hs.iter().enumerate() {
            st.read(h, 0, &mut buf);
            assert_eq!(buf, [i as u8; PAGE_SIZE], "page {i}");
        }
        assert!(pm.frames_backed() <= 4);
        for h in hs {
            st.free(h);
        }
        assert_eq!((pm.frames_backed(), swap.borrow().used_pages()), (0, 0));
        assert_eq!(swap.borrow().shmem.resident(), 0);
    }

    #[test]
    fn with_no_room_an_access_goes_through_to_the_slot() {
        let (st, pm, swap) = store();
        let h = st.alloc().unwrap();
        st.write(h, 100, b"hello");
        assert_eq!(ShmemStore::swap_out_oldest(&pm, &swap, 8), 1);
        // Other memory fills the limit: nothing of tmpfs to push out.
        let others: Vec<Frame> = (0..4).map(|_| pm.alloc().unwrap()).collect();
        let mut b = [0u8; 5];
        st.read(h, 100, &mut b);
        assert_eq!(&b, b"hello");
        st.write(h, 102, b"LLO");
        st.read(h, 100, &mut b);
        assert_eq!(&b, b"heLLO");
        assert!(swap.borrow().is_swapped(Frame(h)));
        // Room again: the next access brings it in.
        pm.free(others[0]);
        st.read(h, 100, &mut b);
        assert_eq!(&b, b"heLLO");
        assert!(!swap.borrow().is_swapped(Frame(h)));
        // The limit full and no tmpfs page to push out: ENOSPC.
        assert_eq!(ShmemStore::swap_out_oldest(&pm, &swap, 8), 1);
        let more = pm.alloc().unwrap();
        assert_eq!(st.alloc(), Err(Errno::ENOSPC));
        st.free(h);
        for f in others.into_iter().skip(1).chain([more]) {
            pm.free(f);
        }
        assert_eq!((pm.frames_backed(), swap.borrow().used_pages()), (0, 0));
    }

    #[test]
    fn lru_order_follows_use_and_leaves_out_swapped_pages() {
        let mut l = ShmemLru::default();
        for f in 1..=4 {
            l.touch(Frame(f));
        }
        l.touch(Frame(1));
        assert_eq!(l.oldest(2), vec![Frame(2), Frame(3)]);
        l.gone_out(Frame(2));
        assert!(l.tracks(Frame(2)));
        assert_eq!(l.oldest(2), vec![Frame(3), Frame(4)]);
        assert_eq!(l.resident(), 3);
        // Back in: used now, the newest.
        l.touch(Frame(2));
        assert_eq!(l.oldest(4), vec![Frame(3), Frame(4), Frame(1), Frame(2)]);
        l.remove(Frame(4));
        assert!(!l.tracks(Frame(4)));
        assert_eq!(l.oldest(4), vec![Frame(3), Frame(1), Frame(2)]);
    }
}
