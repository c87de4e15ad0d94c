//! The OOM path at the host budget's cap (kernel/oom.rs): it must make
//! room under the cap, not merely free frames. Page-cache pages that
//! show an image page (ubd=mmap substitution) cost the cap nothing, so
//! dropping them frees frames but makes no room; the OOM path then has
//! to swap. (It used to stop at the page cache and say "retry", and an
//! exec under hard swapping met the cap 64 times and failed with ENOMEM:
//! tests/overcommit.rs `with_swap_fork_and_exec_...`.)

use std::fs::File;
use std::sync::Arc;

use super::*;
use crate::errno::{Errno, KResult};
use crate::fs::{DirEntry, FileSystem, Ino, SetAttr, Stat, StatFs};
use crate::physmem::Frame;

/// A read-only file of `pages` pages whose every page maps page for page
/// from a host file, as an ext2 file on a ubd=mmap image does: the page
/// cache substitutes them (`FileSystem::page_mapping`).
struct ImageFile {
    host: Arc<File>,
    pages: u64,
}

const INO: Ino = 2;

impl FileSystem for ImageFile {
    fn fs_type(&self) -> &'static str {
        "image"
    }
    fn root(&self) -> Ino {
        1
    }
    fn stat(&self, ino: Ino) -> KResult<Stat> {
        if ino != INO {
            return Err(Errno::ENOENT);
        }
        Ok(Stat {
            ino,
            mode: crate::fs::S_IFREG | 0o444,
            size: self.pages * 4096,
            ..Default::default()
        })
    }
    fn page_mapping(&self, ino: Ino, index: u64) -> Option<(Arc<File>, u64, bool)> {
        (ino == INO && index < self.pages).then(|| (self.host.clone(), index * 4096, false))
    }
    fn read(&self, _: Ino, _: u64, buf: &mut [u8]) -> KResult<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn lookup(&self, _: Ino, _: &[u8]) -> KResult<Ino> {
        Err(Errno::ENOENT)
    }
    fn readdir(&self, _: Ino) -> KResult<Vec<DirEntry>> {
        Err(Errno::ENOTDIR)
    }
    fn write(&self, _: Ino, _: u64, _: &[u8]) -> KResult<usize> {
        Err(Errno::EROFS)
    }
    fn truncate(&self, _: Ino, _: u64) -> KResult<()> {
        Err(Errno::EROFS)
    }
    fn create(&self, _: Ino, _: &[u8], _: u32, _: u32, _: u32, _: u64) -> KResult<Ino> {
        Err(Errno::EROFS)
    }
    fn mkdir(&self, _: Ino, _: &[u8], _: u32, _: u32, _: u32) -> KResult<Ino> {
        Err(Errno::EROFS)
    }
    fn symlink(&self, _: Ino, _: &[u8], _: &[u8], _: u32, _: u32) -> KResult<Ino> {
        Err(Errno::EROFS)
    }
    fn readlink(&self, _: Ino) -> KResult<Vec<u8>> {
        Err(Errno::EINVAL)
    }
    fn link(&self, _: Ino, _: Ino, _: &[u8]) -> KResult<()> {
        Err(Errno::EROFS)
    }
    fn unlink(&self, _: Ino, _: &[u8]) -> KResult<()> {
        Err(Errno::EROFS)
    }
    fn rmdir(&self, _: Ino, _: &[u8]) -> KResult<()> {
        Err(Errno::EROFS)
    }
    fn rename(&self, _: Ino, _: &[u8], _: Ino, _: &[u8]) -> KResult<()> {
        Err(Errno::EROFS)
    }
    fn setattr(&self, _: Ino, _: &SetAttr) -> KResult<()> {
        Err(Errno::EROFS)
    }
    fn statfs(&self) -> KResult<StatFs> {
        Err(Errno::ENOSYS)
    }
    fn sync(&self) -> KResult<()> {
        Ok(())
    }
}

/// Init with `anon_kb` of its data touched, a swap area, and `cached`
/// image pages in the page cache (substituted, unmapped, clean), with
/// the cap set at what guest memory backs now: the next frame is refused.
fn at_the_cap(anon_kb: usize, cached: u64) -> Kernel {
    let mut p = Program::new();
    p.stop();
    p.exit(0);
    let (mut k, _trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    k.shutdown = None;
    k.write_user(1, DATA, &vec![7u8; anon_kb * 1024]).unwrap();
    crate::mm::swap::testing::add_area(&mut k.frames.swap.borrow_mut(), 1024);
    let host = tempfile::tempfile().unwrap();
    host.set_len(cached * 4096).unwrap();
    let fs = ImageFile {
        host: Arc::new(host),
        pages: cached,
    };
    for i in 0..cached {
        k.pagecache
            .borrow_mut()
            .get(&fs, (99, INO), i, &mut k.frames)
            .unwrap();
    }
    assert_eq!(k.physmem.stats().frames_substituted, cached);
    k.release_untouched();
    k.physmem.set_backed_limit(k.physmem.frames_backed());
    // The cap stays as set: no read of the (absent) cgroup lifts it.
    k.budget.last = Some(std::time::Instant::now() + std::time::Duration::from_secs(3600));
    assert!(k.frames.alloc().is_err(), "not at the cap");
    assert!(k.physmem.cap_binds());
    k
}

#[test]
fn at_the_cap_the_oom_path_swaps_instead_of_dropping_image_pages() {
    let mut k = at_the_cap(512, 64);
    assert!(k.out_of_memory(1, true), "the OOM path gave up");
    // Room under the cap: a batch of frames can be had now.
    let got: Vec<Frame> = (0..crate::kernel::oom::RECLAIM_BATCH)
        .map_while(|_| k.frames.alloc().ok())
        .collect();
    assert_eq!(
        got.len() as u64,
        crate::kernel::oom::RECLAIM_BATCH,
        "no room made under the cap (pswpout {})",
        k.frames.swap.borrow().pswpout
    );
    assert!(k.frames.swap.borrow().pswpout > 0, "nothing went to swap");
    // The image pages were no help against the cap: they stay cached.
    assert_eq!(k.pagecache.borrow().stats().cached, 64);
    assert_eq!(k.oom.kills, 0);
    // And what went to swap reads back right, a page at a time (each
    // copy brings its pages in at once: it needs room for them).
    for f in got {
        k.frames.put(f);
    }
    for page in 0..128 {
        let b = k.read_user_vec(1, DATA + page * 4096, 4096).unwrap();
        assert!(b.iter().all(|&x| x == 7), "page {page} came back wrong");
    }
}

/// Reclaim's answer is room, not frames freed: with guest RAM (not the
/// cap) full, dropping an image page is room; at the cap it is none.
#[test]
fn page_cache_reclaim_counts_room_not_frames() {
    let mut k = at_the_cap(64, 8);
    assert_eq!(k.reclaim_page_cache(8), 0);
    assert_eq!(k.pagecache.borrow().stats().cached, 8);
    k.physmem.set_backed_limit(u64::MAX);
    let _held: Vec<Frame> = std::iter::from_fn(|| k.frames.alloc().ok()).collect();
    assert_eq!(k.physmem.room(), 0);
    assert_eq!(k.reclaim_page_cache(8), 8);
    assert_eq!(k.pagecache.borrow().stats().cached, 0);
}
