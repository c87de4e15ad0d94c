//! Where tmpfs keeps file data: a `PageStore` of 4 KiB pages addressed by
//! opaque handles (physmem frames in the kernel, a Vec in tests), and the
//! sparse page map of one file on top of it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::errno::{Errno, KResult};

pub use crate::abi::PAGE_SIZE;

/// A store of zero-filled pages. The kernel implements it over physmem so
/// that freeing a page punches it from the memfd.
pub trait PageStore {
    /// A new zeroed page, or ENOSPC/ENOMEM.
    fn alloc(&self) -> KResult<u64>;
    fn free(&self, h: u64);
    /// Copies `buf.len()` bytes at `off` of page `h` (off + len <= 4096).
    fn read(&self, h: u64, off: usize, buf: &mut [u8]);
    fn write(&self, h: u64, off: usize, data: &[u8]);
}

/// Pages on the heap, for tests; counts live pages.
#[derive(Default)]
pub struct VecPageStore {
    pages: RefCell<Vec<Option<Box<[u8; PAGE_SIZE]>>>>,
    free_list: RefCell<Vec<u64>>,
    /// Fail allocations past this many live pages (ENOSPC), if set.
    pub limit: Option<usize>,
}

impl VecPageStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn live(&self) -> usize {
        self.pages.borrow().iter().filter(|p| p.is_some()).count()
    }
}

impl PageStore for VecPageStore {
    fn alloc(&self) -> KResult<u64> {
        if self.limit.is_some_and(|l| self.live() >= l) {
            return Err(Errno::ENOSPC);
        }
        let mut pages = self.pages.borrow_mut();
        let page = Some(Box::new([0u8; PAGE_SIZE]));
        if let Some(h) = self.free_list.borrow_mut().pop() {
            pages[h as usize] = page;
            return Ok(h);
        }
        pages.push(page);
        Ok(pages.len() as u64 - 1)
    }

    fn free(&self, h: u64) {
        let mut pages = self.pages.borrow_mut();
        if let Some(slot) = pages.get_mut(h as usize) {
            if slot.take().is_some() {
                self.free_list.borrow_mut().push(h);
            }
        }
    }

    fn read(&self, h: u64, off: usize, buf: &mut [u8]) {
        match self.pages.borrow().get(h as usize) {
            Some(Some(p)) => buf.copy_from_slice(&p[off..off + buf.len()]),
            _ => buf.fill(0),
        }
    }

    fn write(&self, h: u64, off: usize, data: &[u8]) {
        if let Some(Some(p)) = self.pages.borrow_mut().get_mut(h as usize) {
            p[off..off + data.len()].copy_from_slice(data);
        }
    }
}

/// The data pages of one file: page index -> handle; missing pages are holes.
#[derive(Debug, Default, Clone)]
pub struct FilePages {
    pub map: BTreeMap<u64, u64>,
}

impl FilePages {
    /// Reads `buf.len()` bytes at `offset`; holes read as zeros.
    pub fn read(&self, store: &dyn PageStore, offset: u64, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (idx, in_page) = (pos / PAGE_SIZE as u64, (pos % PAGE_SIZE as u64) as usize);
            let n = (PAGE_SIZE - in_page).min(buf.len() - done);
            match self.map.get(&idx) {
                Some(&h) => store.read(h, in_page, &mut buf[done..done + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Writes `data` at `offset`, allocating pages; returns how much was
    /// written before an allocation failed (the error if nothing was).
    pub fn write(&mut self, store: &dyn PageStore, offset: u64, data: &[u8]) -> KResult<usize> {
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let (idx, in_page) = (pos / PAGE_SIZE as u64, (pos % PAGE_SIZE as u64) as usize);
            let n = (PAGE_SIZE - in_page).min(data.len() - done);
            let h = match self.map.get(&idx) {
                Some(&h) => h,
                None => match store.alloc() {
                    Ok(h) => {
                        self.map.insert(idx, h);
                        h
                    }
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => return Ok(done),
                },
            };
            store.write(h, in_page, &data[done..done + n]);
            done += n;
        }
        Ok(done)
    }

    /// Shrinks to `size` bytes: frees whole pages past it and zeroes the
    /// tail of the last partial page so a later grow reads zeros.
    pub fn truncate(&mut self, store: &dyn PageStore, size: u64) {
        let first_gone = size.div_ceil(PAGE_SIZE as u64);
        for (_, h) in self.map.split_off(&first_gone) {
            store.free(h);
        }
        let in_page = (size % PAGE_SIZE as u64) as usize;
        if in_page != 0 {
            if let Some(&h) = self.map.get(&(size / PAGE_SIZE as u64)) {
                store.write(h, in_page, &[0u8; PAGE_SIZE][in_page..]);
            }
        }
    }

    pub fn free_all(&mut self, store: &dyn PageStore) {
        for (_, h) in std::mem::take(&mut self.map) {
            store.free(h);
        }
    }

    pub fn count(&self) -> u64 {
        self.map.len() as u64
    }

    /// The first page at or after `from` that is present (`data`) or a
    /// hole (`!data`); holes never run out (u64::MAX aside).
    pub fn next_page(&self, from: u64, data: bool) -> Option<u64> {
        let mut present = self.map.range(from..).map(|(&k, _)| k);
        if data {
            return present.next();
        }
        let mut idx = from;
        for k in present {
            if k != idx {
                break;
            }
            idx = idx.checked_add(1)?;
        }
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_finds_data_and_holes() {
        let store = VecPageStore::new();
        let mut f = FilePages::default();
        assert_eq!(f.next_page(0, true), None);
        assert_eq!(f.next_page(7, false), Some(7));
        f.write(&store, 3 * PAGE_SIZE as u64, &[1]).unwrap();
        f.write(&store, 4 * PAGE_SIZE as u64, &[1]).unwrap();
        f.write(&store, 9 * PAGE_SIZE as u64, &[1]).unwrap();
        assert_eq!(f.next_page(0, true), Some(3));
        assert_eq!(f.next_page(4, true), Some(4));
        assert_eq!(f.next_page(5, true), Some(9));
        assert_eq!(f.next_page(10, true), None);
        assert_eq!(f.next_page(0, false), Some(0));
        assert_eq!(f.next_page(3, false), Some(5));
        assert_eq!(f.next_page(9, false), Some(10));
    }

    #[test]
    fn sparse_write_read_truncate() {
        let s = VecPageStore::new();
        let mut f = FilePages::default();
        assert_eq!(f.write(&s, 3 * 4096 + 10, b"abc"), Ok(3));
        assert_eq!(s.live(), 1, "holes are not allocated");
        let mut b = vec![1u8; 20];
        f.read(&s, 3 * 4096, &mut b);
        assert_eq!(&b[..10], &[0u8; 10]);
        assert_eq!(&b[10..13], b"abc");
        // Write across a page boundary.
        assert_eq!(f.write(&s, 4096 - 2, b"wxyz"), Ok(4));
        assert_eq!(s.live(), 3);
        f.truncate(&s, 4096 + 1);
        assert_eq!(s.live(), 2);
        let mut b = [9u8; 4];
        f.read(&s, 4096 - 2, &mut b);
        assert_eq!(&b, b"wxy\0", "tail past the new size reads zero");
        f.free_all(&s);
        assert_eq!(s.live(), 0);
    }

    #[test]
    fn allocation_failure_gives_partial_write() {
        let s = VecPageStore {
            limit: Some(1),
            ..Default::default()
        };
        let mut f = FilePages::default();
        assert_eq!(f.write(&s, 0, &[1u8; 5000]), Ok(4096));
        assert_eq!(f.write(&s, 8192, b"x"), Err(Errno::ENOSPC));
        let h = s.alloc();
        assert_eq!(h, Err(Errno::ENOSPC));
    }

    #[test]
    fn freed_handles_are_reused_zeroed() {
        let s = VecPageStore::new();
        let h = s.alloc().unwrap();
        s.write(h, 0, b"dirty");
        s.free(h);
        s.free(h); // double free is harmless
        let h2 = s.alloc().unwrap();
        assert_eq!(h2, h);
        let mut b = [1u8; 5];
        s.read(h2, 0, &mut b);
        assert_eq!(b, [0u8; 5]);
    }
}
