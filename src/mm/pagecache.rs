//! The guest's page cache: file pages in physmem frames, keyed by
//! (mount, inode, page index).
//!
//! With `ubd=mmap` a page whose disk block is an aligned 4 KiB page of
//! the image is a substituted frame: no copy and no memfd page, and every
//! instance booted from the same image maps the same host page. Otherwise
//! the page is read into a frame (`ubd=copy`, as UML does with read()).
//! A write through a shared mapping first copies a substituted page into
//! its frame (the image page is read-only), then marks it dirty; dirty
//! pages go back through the file system on sync, munmap and shutdown.
//!
//! The cache holds one reference on each frame; page tables hold theirs,
//! so dropping a page from the cache never frees a frame still mapped.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::frames::FrameRefs;
use super::types::{FaultError, PAGE};
use super::vma::PageSource;
use crate::errno::{Errno, KResult};
use crate::fs::{FileSystem, Ino};
use crate::physmem::Frame;

/// (mount id, inode): which file a page belongs to.
pub type FileKey = (usize, Ino);

#[derive(Debug, Clone, Copy)]
struct CachedPage {
    frame: Frame,
    dirty: bool,
    substituted: bool,
    /// Mapped writable and shared at some point: writes can reach it
    /// without a fault, so writeback always includes it.
    shared_write: bool,
    /// When it was last used (the cache's clock), for LRU eviction.
    used: u64,
}

/// Counters for /proc/meminfo and the measurement script.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCacheStats {
    pub cached: u64,
    pub dirty: u64,
    pub substituted: u64,
    pub evicted: u64,
    pub written_back: u64,
    pub hits: u64,
    pub misses: u64,
}

pub struct PageCache {
    files: HashMap<FileKey, BTreeMap<u64, CachedPage>>,
    stats: PageCacheStats,
    /// Pages cached now.
    count: u64,
    /// The cap (`pagecache_max=`, else a share of guest memory).
    max_pages: u64,
    /// Use clock for LRU eviction.
    tick: u64,
    /// Frames that stopped showing an image page (copied up): every
    /// stub still mapping the image page must map the frame again.
    unsubstituted: Vec<Frame>,
}

impl Default for PageCache {
    fn default() -> Self {
        PageCache {
            files: HashMap::new(),
            stats: PageCacheStats::default(),
            count: 0,
            max_pages: u64::MAX,
            tick: 0,
            unsubstituted: Vec::new(),
        }
    }
}

impl PageCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache that holds at most `max_pages` pages.
    pub fn with_limit(max_pages: u64) -> Self {
        PageCache {
            max_pages: max_pages.max(16),
            ..Self::default()
        }
    }

    /// The frames copied up since the last call (see `unsubstituted`).
    pub fn take_unsubstituted(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.unsubstituted)
    }

    pub fn max_pages(&self) -> u64 {
        self.max_pages
    }

    /// Changes the cap (guest memory was hot-plugged), dropping clean
    /// pages at once when the cache is over the new one.
    pub fn set_limit(&mut self, max_pages: u64, frames: &mut FrameRefs) {
        self.max_pages = max_pages.max(16);
        self.shrink_to(self.max_pages, frames);
    }

    pub fn stats(&self) -> PageCacheStats {
        let mut s = self.stats;
        s.cached = 0;
        s.dirty = 0;
        s.substituted = 0;
        for p in self.files.values().flat_map(|m| m.values()) {
            s.cached += 1;
            s.dirty += p.dirty as u64;
            s.substituted += p.substituted as u64;
        }
        s
    }

    /// The page indices of a file in `range` that are cached.
    pub fn cached(&self, key: FileKey, range: std::ops::Range<u64>) -> Vec<u64> {
        if range.is_empty() {
            return Vec::new();
        }
        self.files
            .get(&key)
            .map(|m| m.range(range).map(|(i, _)| *i).collect())
            .unwrap_or_default()
    }

    /// The frame for page `idx` of a file, reading it in on a miss.
    pub fn get(
        &mut self,
        fs: &dyn FileSystem,
        key: FileKey,
        idx: u64,
        frames: &mut FrameRefs,
    ) -> Result<Frame, FaultError> {
        self.tick += 1;
        let now = self.tick;
        if let Some(p) = self.files.get_mut(&key).and_then(|m| m.get_mut(&idx)) {
            self.stats.hits += 1;
            p.used = now;
            return Ok(p.frame);
        }
        self.stats.misses += 1;
        if self.count >= self.max_pages {
            self.shrink_to(self.max_pages - self.max_pages / 8, frames);
        }
        let size = fs.stat(key.1).map_err(|_| FaultError::Bus)?.size;
        let start = idx.checked_mul(PAGE).ok_or(FaultError::Bus)?;
        if start >= size {
            return Err(FaultError::Bus);
        }
        let frame = match frames.alloc() {
            Ok(f) => f,
            Err(_) => {
                // Guest memory is full: clean cache pages go first.
                self.shrink_to(self.count / 2, frames);
                frames.alloc().map_err(|_| FaultError::Oom)?
            }
        };
        let physmem = frames.physmem().clone();
        let mut substituted = false;
        // Only whole pages are substituted: the tail of the last block on
        // disk is not guaranteed to be zero, and the guest must see zeros.
        if start.saturating_add(PAGE) <= size {
            if let Some((file, off, _)) = fs.page_mapping(key.1, idx) {
                substituted = physmem.substitute(frame, file, off, false).is_ok();
            }
        }
        if !substituted {
            let mut buf = vec![0u8; PAGE as usize];
            let n = match fs.read(key.1, start, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    crate::log_limited!(
                        log::Level::Warn,
                        "page cache read of inode {} page {idx} failed: {e}",
                        key.1
                    );
                    frames.put(frame);
                    return Err(FaultError::Bus);
                }
            };
            // A fresh frame already reads as zeros: holes cost no host page.
            if n > 0
                && buf[..n].iter().any(|&b| b != 0)
                && physmem.write(frame, 0, &buf[..n]).is_err()
            {
                frames.put(frame);
                return Err(FaultError::Bus);
            }
        }
        self.files.entry(key).or_default().insert(
            idx,
            CachedPage {
                frame,
                dirty: false,
                substituted,
                shared_write: false,
                used: now,
            },
        );
        self.count += 1;
        Ok(frame)
    }

    /// Like `get`, for a write through a shared mapping: the frame becomes
    /// writable (a substituted image page is copied in first) and dirty.
    pub fn get_for_write(
        &mut self,
        fs: &dyn FileSystem,
        key: FileKey,
        idx: u64,
        frames: &mut FrameRefs,
    ) -> Result<Frame, FaultError> {
        let frame = self.get(fs, key, idx, frames)?;
        // Blocks first: a disk too full for this page is SIGBUS now (as
        // Linux's page_mkwrite), never a write that writeback drops.
        if let Err(e) = fs.prepare_page_write(key.1, idx) {
            log::debug!("shared write to inode {} page {idx}: {e}", key.1);
            return Err(FaultError::Bus);
        }
        let physmem = frames.physmem().clone();
        let p = self
            .files
            .get_mut(&key)
            .and_then(|m| m.get_mut(&idx))
            .expect("just cached");
        if p.substituted {
            physmem
                .unsubstitute(frame, true)
                .map_err(|_| FaultError::Oom)?;
            p.substituted = false;
            self.unsubstituted.push(frame);
        }
        p.dirty = true;
        p.shared_write = true;
        Ok(frame)
    }

    /// Copies cached pages over `buf` (file bytes read from disk at
    /// `offset`): a shared mapping's writes are in the frames first.
    /// Does the cache hold page `idx` of `key`?
    pub fn has_page(&self, key: FileKey, idx: u64) -> bool {
        self.files.get(&key).is_some_and(|m| m.contains_key(&idx))
    }

    /// Whether the cache holds page `idx` of `key` dirty.
    pub fn is_dirty(&self, key: FileKey, idx: u64) -> bool {
        self.files
            .get(&key)
            .and_then(|m| m.get(&idx))
            .is_some_and(|p| p.dirty)
    }

    /// The first page of `key` at or after `from` the cache holds.
    pub fn next_cached(&self, key: FileKey, from: u64) -> Option<u64> {
        self.files.get(&key)?.range(from..).next().map(|(&k, _)| k)
    }

    pub fn overlay(&self, key: FileKey, offset: u64, buf: &mut [u8], frames: &FrameRefs) {
        let Some(pages) = self.files.get(&key) else {
            return;
        };
        let Some((first, last, end)) = page_span(offset, buf.len()) else {
            return;
        };
        let physmem = frames.physmem();
        for (&idx, p) in pages.range(first..=last) {
            if !p.shared_write {
                continue;
            }
            let pstart = idx * PAGE;
            let from = offset.max(pstart);
            let to = end.min(pstart.saturating_add(PAGE));
            physmem.read(
                p.frame,
                (from - pstart) as usize,
                &mut buf[(from - offset) as usize..(to - offset) as usize],
            );
        }
    }

    /// Keeps cached pages in step with a write() of `data` at `offset`
    /// that already went to the file system.
    pub fn update(&mut self, key: FileKey, offset: u64, data: &[u8], frames: &FrameRefs) {
        let Some(pages) = self.files.get_mut(&key) else {
            return;
        };
        // An empty write (sendfile at EOF, write of 0 bytes) touches no
        // page: its range would end before it starts.
        let Some((first, last, end)) = page_span(offset, data.len()) else {
            return;
        };
        let physmem = frames.physmem();
        for (&idx, p) in pages.range_mut(first..=last) {
            if p.substituted {
                if physmem.unsubstitute(p.frame, true).is_err() {
                    continue;
                }
                p.substituted = false;
                self.unsubstituted.push(p.frame);
            }
            let pstart = idx * PAGE;
            let from = offset.max(pstart);
            let to = end.min(pstart.saturating_add(PAGE));
            let src = &data[(from - offset) as usize..(to - offset) as usize];
            let _ = physmem.write(p.frame, (from - pstart) as usize, src);
        }
    }

    /// Drops pages wholly beyond `size` and zeroes the tail of the page
    /// that straddles it (truncate).
    pub fn truncate(&mut self, key: FileKey, size: u64, frames: &mut FrameRefs) {
        let Some(pages) = self.files.get_mut(&key) else {
            return;
        };
        let keep = size.div_ceil(PAGE);
        let gone: Vec<u64> = pages.range(keep..).map(|(k, _)| *k).collect();
        for idx in gone {
            let p = pages.remove(&idx).expect("listed");
            self.stats.evicted += 1;
            self.count -= 1;
            frames.put(p.frame);
        }
        if !size.is_multiple_of(PAGE) {
            if let Some(p) = pages.get_mut(&(size / PAGE)) {
                let physmem = frames.physmem();
                if p.substituted && physmem.unsubstitute(p.frame, true).is_ok() {
                    p.substituted = false;
                    self.unsubstituted.push(p.frame);
                }
                let off = (size % PAGE) as usize;
                let _ = physmem.write(p.frame, off, &vec![0u8; PAGE as usize - off]);
            }
        }
    }

    /// Writes the dirty pages of one file back through its file system.
    pub fn writeback(
        &mut self,
        fs: &dyn FileSystem,
        key: FileKey,
        frames: &FrameRefs,
    ) -> KResult<()> {
        self.writeback_range(fs, key, frames, 0..u64::MAX)
    }

    /// Writes back the dirty pages of one file whose page index lies in
    /// `pages` (sync_file_range: only the pages of its byte range).
    pub fn writeback_range(
        &mut self,
        fs: &dyn FileSystem,
        key: FileKey,
        frames: &FrameRefs,
        range: std::ops::Range<u64>,
    ) -> KResult<()> {
        let Some(pages) = self.files.get_mut(&key) else {
            return Ok(());
        };
        if range.is_empty() {
            return Ok(());
        }
        let size = fs.stat(key.1)?.size;
        let physmem = frames.physmem();
        let mut res = Ok(());
        for (&idx, p) in pages
            .range_mut(range)
            .filter(|(_, p)| p.dirty || p.shared_write)
        {
            let start = idx * PAGE;
            if start >= size {
                p.dirty = false;
                continue;
            }
            let n = (size - start).min(PAGE) as usize;
            let mut buf = vec![0u8; n];
            physmem.read(p.frame, 0, &mut buf);
            match fs.write(key.1, start, &buf) {
                Ok(_) => {
                    p.dirty = false;
                    self.stats.written_back += 1;
                }
                Err(e) => res = Err(e),
            }
        }
        res
    }

    /// Writes back every dirty page (sync, shutdown).
    pub fn writeback_all(
        &mut self,
        fs_of: &dyn Fn(usize) -> Option<Rc<dyn FileSystem>>,
        frames: &FrameRefs,
    ) -> KResult<()> {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        let mut res = Ok(());
        for key in keys {
            match fs_of(key.0) {
                Some(fs) => {
                    if let Err(e) = self.writeback(fs.as_ref(), key, frames) {
                        res = Err(e);
                    }
                }
                None => res = Err(Errno::EIO),
            }
        }
        res
    }

    /// Writes back the dirty pages of every file of mount `mnt` (umount,
    /// remount read-only).
    pub fn writeback_mount(
        &mut self,
        fs: &dyn FileSystem,
        mnt: usize,
        frames: &FrameRefs,
    ) -> KResult<()> {
        let keys: Vec<FileKey> = self.files.keys().filter(|k| k.0 == mnt).copied().collect();
        let mut res = Ok(());
        for key in keys {
            if let Err(e) = self.writeback(fs, key, frames) {
                res = Err(e);
            }
        }
        res
    }

    /// Forgets every page of mount `mnt`'s files (it is being unmounted:
    /// nothing maps them any more).
    pub fn drop_mount(&mut self, mnt: usize, frames: &mut FrameRefs) {
        let keys: Vec<FileKey> = self.files.keys().filter(|k| k.0 == mnt).copied().collect();
        for key in keys {
            self.drop_file(key, frames);
        }
    }

    /// Forgets a file's pages (after its last unlink, or unmount).
    pub fn drop_file(&mut self, key: FileKey, frames: &mut FrameRefs) {
        if let Some(pages) = self.files.remove(&key) {
            for p in pages.into_values() {
                self.stats.evicted += 1;
                self.count -= 1;
                frames.put(p.frame);
            }
        }
    }

    /// Memory pressure: drops up to `want` clean pages that only the
    /// cache holds (no page table maps them, so their frames really come
    /// free), least recently used first. With `counted_only` (the host
    /// budget's cap is what refuses frames) substituted image pages stay:
    /// they cost the host no memory of ours, so dropping them makes no
    /// room and only costs the next reader of the file a re-read. Returns
    /// how many were dropped.
    pub fn reclaim_unmapped(
        &mut self,
        want: u64,
        frames: &mut FrameRefs,
        counted_only: bool,
    ) -> u64 {
        let mut clean: Vec<(u64, FileKey, u64)> = self
            .files
            .iter()
            .flat_map(|(k, m)| {
                m.iter()
                    .filter(|(_, p)| !p.dirty && !p.shared_write && frames.refcount(p.frame) == 1)
                    .filter(|(_, p)| !(counted_only && p.substituted))
                    .map(move |(i, p)| (p.used, *k, *i))
            })
            .collect();
        clean.sort_unstable();
        let mut got = 0;
        for (_, key, idx) in clean.into_iter().take(want as usize) {
            if let Some(p) = self.files.get_mut(&key).and_then(|m| m.remove(&idx)) {
                frames.put(p.frame);
                self.stats.evicted += 1;
                self.count -= 1;
                got += 1;
            }
        }
        self.files.retain(|_, m| !m.is_empty());
        got
    }

    /// Drops the least recently used clean pages until at most
    /// `max_pages` are cached (the `pagecache_max=` cap). Dirty pages stay
    /// (sync writes them back). Pages still mapped keep their frames
    /// through the page tables' references, so dropping is always safe.
    pub fn shrink_to(&mut self, max_pages: u64, frames: &mut FrameRefs) {
        if self.count <= max_pages {
            return;
        }
        let mut clean: Vec<(u64, FileKey, u64)> = self
            .files
            .iter()
            .flat_map(|(k, m)| {
                m.iter()
                    .filter(|(_, p)| !p.dirty && !p.shared_write)
                    .map(move |(i, p)| (p.used, *k, *i))
            })
            .collect();
        clean.sort_unstable();
        for (_, key, idx) in clean {
            if self.count <= max_pages {
                break;
            }
            if let Some(p) = self.files.get_mut(&key).and_then(|m| m.remove(&idx)) {
                frames.put(p.frame);
                self.stats.evicted += 1;
                self.count -= 1;
            }
        }
        self.files.retain(|_, m| !m.is_empty());
    }
}

/// The pages `len` bytes at `offset` touch, first and last inclusive, and
/// the end offset; None for no bytes or a span past the end of u64. Every
/// `BTreeMap::range` over a byte span goes through this: a range whose
/// start is past its end panics.
fn page_span(offset: u64, len: usize) -> Option<(u64, u64, u64)> {
    if len == 0 {
        return None;
    }
    let end = offset.checked_add(len as u64)?;
    Some((offset / PAGE, (end - 1) / PAGE, end))
}

/// One file's pages as a mapping sees them.
pub struct FilePages {
    pub cache: Rc<RefCell<PageCache>>,
    pub fs: Rc<dyn FileSystem>,
    pub key: FileKey,
    pub dev: u64,
    pub path: Vec<u8>,
}

impl PageSource for FilePages {
    fn page(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError> {
        self.cache
            .borrow_mut()
            .get(self.fs.as_ref(), self.key, index, frames)
    }

    fn page_for_write(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError> {
        self.cache
            .borrow_mut()
            .get_for_write(self.fs.as_ref(), self.key, index, frames)
    }

    fn ident(&self) -> (u64, u64) {
        (self.dev, self.key.1)
    }

    fn name(&self) -> Vec<u8> {
        self.path.clone()
    }

    fn key(&self) -> Option<(usize, u64)> {
        Some(self.key)
    }

    fn shmem(&self) -> bool {
        self.fs.fs_type() == "tmpfs"
    }

    fn cached(&self, range: std::ops::Range<u64>) -> Vec<u64> {
        self.cache.borrow().cached(self.key, range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_span_never_ends_before_it_starts() {
        assert_eq!(page_span(4096, 0), None);
        assert_eq!(page_span(0, 0), None);
        assert_eq!(page_span(4096, 1), Some((1, 1, 4097)));
        assert_eq!(page_span(4095, 2), Some((0, 1, 4097)));
        assert_eq!(page_span(u64::MAX, 1), None);
        assert_eq!(
            page_span(u64::MAX - 1, 1),
            Some((u64::MAX / PAGE, u64::MAX / PAGE, u64::MAX))
        );
    }
}
