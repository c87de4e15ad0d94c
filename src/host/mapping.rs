//! A MAP_SHARED view of a memfd in umlrun's own address space, with safe byte access and
//! remapping of single pages over host file pages (and back).
//!
//! Raw pointers never leave this type. Soundness rests on three facts:
//! - the base memfd is sealed against shrinking, so base pages never SIGBUS;
//! - every layout change (`remap_over`, `remap_back`) and every write takes
//!   `&mut self`, so no Rust reader sees a page change under it, and writes
//!   to pages remapped read-only are refused (tracked per page) instead of
//!   faulting;
//! - if a MAP_FIXED remap fails and leaves a hole (mincore says so), the
//!   range is restored from the base memfd (`Reverted`), and if even that
//!   fails the view is poisoned and refuses all access (a hole must never be
//!   read or written: another mapping could land there). A failure that
//!   leaves the range mapped (`Map`) changed nothing: the kernel checks its
//!   limits, such as vm.max_map_count, before unmapping.
//!
//! Other processes (the guest stubs) map the same pages and may write them at
//! any time; that sharing is outside Rust's memory model, as in rust-vmm's
//! vm-memory, so bytes are only ever copied in and out, never borrowed.
//!
//! Caller's duty for `remap_over`: the host file must not be truncated below
//! the mapped page while it stays mapped (reads would raise SIGBUS). Disk
//! images are never truncated.

use std::fs::File;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::sys::stat::fstat;

use super::memfd::MemFd;

/// The page size umlrun assumes (x86-64).
pub const PAGE: usize = crate::abi::PAGE_SIZE;

/// The host's per-process limit on mappings (`vm.max_map_count`), if it can
/// be read. Each page remapped over a view may split it into two more.
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Failures of mapping operations.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("a mapping of zero bytes was asked for")]
    Empty,
    #[error("range {offset}+{len} lies outside the {size}-byte mapping")]
    OutOfRange {
        offset: usize,
        len: usize,
        size: usize,
    },
    #[error("offset or length {0:#x} is not page-aligned")]
    Misaligned(u64),
    #[error("range {offset}+{len} is mapped read-only")]
    ReadOnly { offset: usize, len: usize },
    #[error("host file page at {offset} lies beyond the file's end ({size} bytes)")]
    BeyondFileEnd { offset: u64, size: u64 },
    #[error("fstat of the file to map failed: {0}")]
    Stat(Errno),
    #[error("duplicating the memfd descriptor failed: {0}")]
    Dup(std::io::Error),
    #[error("mmap failed, the range still shows what it showed before: {0}")]
    Map(Errno),
    #[error("mmap failed and the range went back to the memfd's own pages: {0}")]
    Reverted(Errno),
    #[error("the view lost a range it could not restore; it refuses all access")]
    Poisoned,
    #[error("mincore of the view failed: {0}")]
    Mincore(Errno),
}

/// A shared, fixed-size view of a whole memfd; pages of it can be replaced
/// by pages of other files. Unmapped on drop.
pub struct SharedMapping {
    base: NonNull<u8>,
    len: usize,
    writable: bool,
    /// A dup of the memfd, so a failed remap can always be undone.
    memfd: OwnedFd,
    /// One bit per page: set when the page is mapped read-only over a file.
    read_only: Vec<u64>,
    poisoned: bool,
}

// SAFETY: the mapping is plain memory owned by this value. `&self` methods
// only copy bytes out; everything that writes bytes or changes the layout
// takes `&mut self`, so the usual borrow rules keep threads apart.
unsafe impl Send for SharedMapping {}
// SAFETY: see `Send`; shared references only read.
unsafe impl Sync for SharedMapping {}

fn prot(writable: bool) -> ProtFlags {
    if writable {
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
    } else {
        ProtFlags::PROT_READ
    }
}

impl SharedMapping {
    /// Maps the whole memfd MAP_SHARED.
    pub fn of_memfd(memfd: &MemFd, writable: bool) -> Result<SharedMapping, MappingError> {
        let len = usize::try_from(memfd.len()).map_err(|_| MappingError::Empty)?;
        let nz = NonZeroUsize::new(len).ok_or(MappingError::Empty)?;
        let dup = memfd
            .as_fd()
            .try_clone_to_owned()
            .map_err(MappingError::Dup)?;
        // SAFETY: a fresh mapping chosen by the kernel (no address given), so
        // it cannot alias any Rust object; the memfd is sealed at `len` bytes.
        let ptr = unsafe { mmap(None, nz, prot(writable), MapFlags::MAP_SHARED, memfd, 0) }
            .map_err(MappingError::Map)?;
        let pages = len.div_ceil(PAGE);
        Ok(SharedMapping {
            base: ptr.cast(),
            len,
            writable,
            memfd: dup,
            read_only: vec![0; pages.div_ceil(64)],
            poisoned: false,
        })
    }

    /// Size of the view in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty view (never: construction refuses zero bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), MappingError> {
        if self.poisoned {
            return Err(MappingError::Poisoned);
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(MappingError::OutOfRange {
                offset,
                len,
                size: self.len,
            }),
        }
    }

    fn check_pages(&self, offset: usize, len: usize) -> Result<(), MappingError> {
        self.check(offset, len)?;
        if !offset.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || len == 0 {
            return Err(MappingError::Misaligned(if !offset.is_multiple_of(PAGE) {
                offset as u64
            } else {
                len as u64
            }));
        }
        Ok(())
    }

    fn page_read_only(&self, page: usize) -> bool {
        self.read_only[page / 64] & (1 << (page % 64)) != 0
    }

    fn set_read_only(&mut self, offset: usize, len: usize, on: bool) {
        for page in offset / PAGE..(offset + len) / PAGE {
            if on {
                self.read_only[page / 64] |= 1 << (page % 64);
            } else {
                self.read_only[page / 64] &= !(1 << (page % 64));
            }
        }
    }

    /// Whether `offset..offset+len` may be written.
    pub fn is_writable(&self, offset: usize, len: usize) -> bool {
        if !self.writable || self.check(offset, len).is_err() {
            return false;
        }
        if len == 0 {
            return true;
        }
        (offset / PAGE..=(offset + len - 1) / PAGE).all(|p| !self.page_read_only(p))
    }

    /// Copies `buf.len()` bytes at `offset` out of the view.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), MappingError> {
        self.check(offset, buf.len())?;
        // SAFETY: the range is inside the live mapping (checked above, and the
        // view is not poisoned, so every page is mapped and cannot SIGBUS);
        // `buf` is a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// Appends the `len` bytes at `offset` to `out`: `read_at` without
    /// zeroing a buffer first (guest memory copied into a socket queue).
    pub fn append_to(
        &self,
        offset: usize,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), MappingError> {
        self.check(offset, len)?;
        out.reserve(len);
        let at = out.len();
        // SAFETY: the source range is inside the live mapping (checked
        // above, as in `read_at`); the destination is `len` bytes of
        // `out`'s spare capacity (reserved above, a distinct allocation),
        // all written by the copy before `set_len` counts them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                out.as_mut_ptr().add(at),
                len,
            );
            out.set_len(at + len);
        }
        Ok(())
    }

    /// Copies `data` into the view at `offset`; refused on read-only pages.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<(), MappingError> {
        self.check(offset, data.len())?;
        if !self.is_writable(offset, data.len()) {
            return Err(MappingError::ReadOnly {
                offset,
                len: data.len(),
            });
        }
        // SAFETY: in bounds and every page of the range is mapped writable
        // (checked above); `data` is a distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.as_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// Which pages of `offset..offset + out.len() * PAGE` the host holds
    /// (mincore: for a memfd, whether the page is in its page cache; a
    /// hole reads as "not resident"): `out[i]` is 1 or 0 for page `i`.
    pub fn resident(&self, offset: usize, out: &mut [u8]) -> Result<(), MappingError> {
        let len = out
            .len()
            .checked_mul(PAGE)
            .ok_or(MappingError::OutOfRange {
                offset,
                len: usize::MAX,
                size: self.len,
            })?;
        if out.is_empty() {
            return Ok(());
        }
        self.check_pages(offset, len)?;
        // SAFETY: the range lies inside the live mapping (checked above)
        // and `out` has one byte per page of it; mincore only writes `out`.
        let r = unsafe {
            libc::mincore(
                self.base.as_ptr().add(offset).cast(),
                len,
                out.as_mut_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(MappingError::Mincore(Errno::last()));
        }
        for b in out.iter_mut() {
            *b &= 1;
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` inside the view (ranges may overlap).
    pub fn copy_within(&mut self, src: usize, dst: usize, len: usize) -> Result<(), MappingError> {
        self.check(src, len)?;
        self.check(dst, len)?;
        if !self.is_writable(dst, len) {
            return Err(MappingError::ReadOnly { offset: dst, len });
        }
        // SAFETY: both ranges are inside the mapping and the destination is
        // writable (checked above); `copy` allows overlap.
        unsafe {
            std::ptr::copy(
                self.base.as_ptr().add(src),
                self.base.as_ptr().add(dst),
                len,
            )
        };
        Ok(())
    }

    /// Maps `len` bytes of `fd` at `fd_offset` over the view at `offset`
    /// (MAP_SHARED|MAP_FIXED). See the module notes for what a failure leaves.
    fn map_fixed(
        &mut self,
        offset: usize,
        len: usize,
        fd: BorrowedFd<'_>,
        fd_offset: u64,
        writable: bool,
    ) -> Result<(), MappingError> {
        let file_off = i64::try_from(fd_offset).map_err(|_| MappingError::Misaligned(fd_offset))?;
        let addr = NonZeroUsize::new(self.base.as_ptr() as usize + offset);
        let nz = NonZeroUsize::new(len).ok_or(MappingError::Empty)?;
        // SAFETY: the target range lies inside our own mapping (checked by the
        // callers), so MAP_FIXED replaces only pages this value owns; no Rust
        // reference into them exists because all access copies, and we hold
        // `&mut self`.
        let res = unsafe {
            mmap(
                addr,
                nz,
                prot(writable),
                MapFlags::MAP_SHARED | MapFlags::MAP_FIXED,
                fd,
                file_off,
            )
        };
        match res {
            Ok(_) => Ok(()),
            // The kernel checks its limits (e.g. vm.max_map_count) before it
            // unmaps anything, and since 6.12 undoes the unmap on later
            // failures: if the range is still mapped, the old pages are.
            Err(errno) if self.range_mapped(offset, len) => Err(MappingError::Map(errno)),
            Err(errno) => {
                if self.restore_base(offset, len) {
                    Err(MappingError::Reverted(errno))
                } else {
                    Err(MappingError::Poisoned)
                }
            }
        }
    }

    /// Brings the file pages just mapped at `offset..offset+len` into the
    /// host page cache without the kernel's mmap read-around, which would
    /// otherwise read (and charge to this instance) up to the whole image
    /// around every page a guest touches first. Once the pages are cached,
    /// the stubs' own mappings of them fault without reading around either.
    fn fault_in_without_readaround(&self, offset: usize, len: usize) {
        let start = self.base.as_ptr() as usize + offset;
        // SAFETY: advice only; the range lies inside our own mapping.
        let r = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_RANDOM) };
        if r != 0 {
            log::debug!(
                "madvise(MADV_RANDOM) on the physmem view: {}",
                nix::Error::last()
            );
        }
        for page in (0..len).step_by(PAGE) {
            // SAFETY: a mapped, readable page of our own mapping (the file
            // reaches that far, checked by the caller); a volatile read of
            // one byte creates no reference.
            unsafe { std::ptr::read_volatile((start + page) as *const u8) };
        }
    }

    /// Whether every page of `offset..offset+len` is mapped (mincore fails
    /// with ENOMEM on a hole).
    fn range_mapped(&self, offset: usize, len: usize) -> bool {
        let mut vec = vec![0u8; len.div_ceil(PAGE)];
        // SAFETY: mincore only reads the page tables of the given range and
        // writes one byte per page into `vec`, which is that long.
        let rc =
            unsafe { libc::mincore(self.base.as_ptr().add(offset).cast(), len, vec.as_mut_ptr()) };
        rc == 0
    }

    /// Puts the memfd's own pages back at `offset..offset+len` after a remap
    /// left a hole; poisons the view (and says false) if even that fails.
    fn restore_base(&mut self, offset: usize, len: usize) -> bool {
        let addr = NonZeroUsize::new(self.base.as_ptr() as usize + offset);
        let Some(nz) = NonZeroUsize::new(len) else {
            return true;
        };
        // SAFETY: as in `map_fixed`: our own range, our own memfd, `&mut self`.
        let res = unsafe {
            mmap(
                addr,
                nz,
                prot(self.writable),
                MapFlags::MAP_SHARED | MapFlags::MAP_FIXED,
                self.memfd.as_fd(),
                offset as i64,
            )
        };
        match res {
            Ok(_) => {
                self.set_read_only(offset, len, !self.writable);
                true
            }
            Err(errno) => {
                log::error!("physmem view lost {len} bytes at {offset:#x}: {errno}");
                self.poisoned = true;
                false
            }
        }
    }

    /// Shows `len` bytes of `file` at `file_offset` in the view at `offset`.
    /// All three must be page-aligned and the file must reach that far. With
    /// `writable`, writes through the view go to the file (it must be open
    /// for writing); without it, `write_at` there is refused.
    pub fn remap_over(
        &mut self,
        offset: usize,
        len: usize,
        file: &File,
        file_offset: u64,
        writable: bool,
    ) -> Result<(), MappingError> {
        self.check_pages(offset, len)?;
        if !file_offset.is_multiple_of(PAGE as u64) {
            return Err(MappingError::Misaligned(file_offset));
        }
        let size = fstat(file.as_raw_fd()).map_err(MappingError::Stat)?.st_size as u64;
        if file_offset
            .checked_add(len as u64)
            .is_none_or(|end| end > size)
        {
            return Err(MappingError::BeyondFileEnd {
                offset: file_offset,
                size,
            });
        }
        let writable = writable && self.writable;
        self.map_fixed(offset, len, file.as_fd(), file_offset, writable)?;
        self.set_read_only(offset, len, !writable);
        self.fault_in_without_readaround(offset, len);
        Ok(())
    }

    /// Shows `memfd`'s pages at `memfd_offset` in the view at `offset` again,
    /// with the view's own protection.
    pub fn remap_back(
        &mut self,
        offset: usize,
        len: usize,
        memfd: &MemFd,
        memfd_offset: u64,
    ) -> Result<(), MappingError> {
        self.check_pages(offset, len)?;
        if !memfd_offset.is_multiple_of(PAGE as u64) {
            return Err(MappingError::Misaligned(memfd_offset));
        }
        if memfd_offset
            .checked_add(len as u64)
            .is_none_or(|end| end > memfd.len())
        {
            return Err(MappingError::BeyondFileEnd {
                offset: memfd_offset,
                size: memfd.len(),
            });
        }
        let writable = self.writable;
        self.map_fixed(offset, len, memfd.as_fd(), memfd_offset, writable)?;
        self.set_read_only(offset, len, !writable);
        Ok(())
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe exactly the mapping made in
        // `of_memfd` (remaps only replaced pages inside it), and nothing can
        // use it after drop.
        if let Err(errno) = unsafe { munmap(self.base.cast(), self.len) } {
            log::error!("munmap of a {}-byte view failed: {errno}", self.len);
        }
    }
}

impl std::fmt::Debug for SharedMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMapping")
            .field("len", &self.len)
            .field("writable", &self.writable)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn view(pages: usize) -> (MemFd, SharedMapping) {
        let m = MemFd::create("t", (pages * PAGE) as u64).unwrap();
        let v = SharedMapping::of_memfd(&m, true).unwrap();
        (m, v)
    }

    fn file_with(pages: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        for &b in pages {
            f.write_all(&[b; PAGE]).unwrap();
        }
        f
    }

    #[test]
    fn write_then_read_and_memfd_sees_it() {
        let (m, mut v) = view(4);
        v.write_at(PAGE + 10, b"hello").unwrap();
        let mut buf = [0u8; 5];
        v.read_at(PAGE + 10, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        let mut via_fd = [0u8; 5];
        nix::sys::uio::pread(&m, &mut via_fd, (PAGE + 10) as i64).unwrap();
        assert_eq!(&via_fd, b"hello");
    }

    #[test]
    fn out_of_range_is_an_error() {
        let (_m, mut v) = view(1);
        let mut buf = [0u8; 2];
        assert!(v.read_at(PAGE - 1, &mut buf).is_err());
        assert!(v.write_at(usize::MAX, &buf).is_err());
        assert!(v.copy_within(0, PAGE - 1, 2).is_err());
    }

    #[test]
    fn max_map_count_is_readable() {
        assert!(max_map_count().is_some_and(|n| n > 0));
    }

    #[test]
    fn copy_within_overlapping() {
        let (_m, mut v) = view(1);
        v.write_at(0, b"abcdef").unwrap();
        v.copy_within(0, 2, 4).unwrap();
        let mut buf = [0u8; 6];
        v.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"ababcd");
    }

    #[test]
    fn remap_over_read_only_then_back() {
        let (m, mut v) = view(3);
        v.write_at(PAGE, &[7u8; PAGE]).unwrap();
        let f = file_with(&[0x11, 0x22]);
        v.remap_over(PAGE, PAGE, &f, PAGE as u64, false).unwrap();
        let mut buf = [0u8; PAGE];
        v.read_at(PAGE, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0x22));
        assert!(!v.is_writable(PAGE, 1));
        assert!(v.is_writable(0, PAGE));
        assert!(matches!(
            v.write_at(PAGE + 5, b"x"),
            Err(MappingError::ReadOnly { .. })
        ));
        assert!(v.write_at(PAGE - 1, b"xy").is_err());
        v.remap_back(PAGE, PAGE, &m, PAGE as u64).unwrap();
        v.read_at(PAGE, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
        v.write_at(PAGE + 5, b"x").unwrap();
    }

    #[test]
    fn writable_remap_writes_the_file() {
        let (_m, mut v) = view(2);
        let f = file_with(&[0]);
        v.remap_over(0, PAGE, &f, 0, true).unwrap();
        v.write_at(100, b"disk").unwrap();
        let mut buf = [0u8; 4];
        nix::sys::uio::pread(&f, &mut buf, 100).unwrap();
        assert_eq!(&buf, b"disk");
    }

    #[test]
    fn remap_checks_alignment_and_file_end() {
        let (_m, mut v) = view(2);
        let f = file_with(&[1]);
        assert!(matches!(
            v.remap_over(1, PAGE, &f, 0, false),
            Err(MappingError::Misaligned(_))
        ));
        assert!(matches!(
            v.remap_over(0, PAGE, &f, 12, false),
            Err(MappingError::Misaligned(_))
        ));
        assert!(matches!(
            v.remap_over(0, PAGE, &f, PAGE as u64, false),
            Err(MappingError::BeyondFileEnd { .. })
        ));
        assert!(v.remap_over(PAGE, 2 * PAGE, &f, 0, false).is_err());
    }

    #[test]
    fn failed_remap_leaves_the_view_usable() {
        let (_m, mut v) = view(2);
        v.write_at(0, b"keep").unwrap();
        // Opened read-only: a writable MAP_SHARED mapping of it is refused.
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(PAGE as u64).unwrap();
        let ro = File::open(tmp.path()).unwrap();
        assert!(matches!(
            v.remap_over(0, PAGE, &ro, 0, true),
            Err(MappingError::Map(_))
        ));
        let mut buf = [0u8; 4];
        v.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"keep");
        v.write_at(0, b"more").unwrap();
    }
}
