//! The checked values a [`super::MapOp`] is made of: [`PageSpan`], a
//! page-aligned, non-empty range of guest addresses inside user space,
//! and [`HostOffset`], a page-aligned offset into a host file. Their
//! fields are private and their constructors check, so the kernel cannot
//! hand the platform an unaligned, wrapping or kernel-half range: every
//! value a platform encodes into a host mmap/munmap/mprotect passed here.

use std::ops::Range;

use super::TASK_SIZE;
use crate::abi::PAGE;
use crate::mm::types::GuestVirt;

/// A range of whole guest pages, `[start, start + len)`: `start` and
/// `len` page-aligned, `len > 0`, the end at most [`TASK_SIZE`] (so no
/// arithmetic on it can wrap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageSpan {
    start: GuestVirt,
    len: u64,
}

impl PageSpan {
    /// `[start, start + len)`, or None unless both are page-aligned, `len`
    /// is not 0 and the end does not pass [`TASK_SIZE`].
    pub fn new(start: GuestVirt, len: u64) -> Option<PageSpan> {
        let aligned = |v: u64| v & (PAGE - 1) == 0;
        if !aligned(start.get()) || !aligned(len) || len == 0 {
            return None;
        }
        start
            .get()
            .checked_add(len)
            .filter(|&end| end <= TASK_SIZE)
            .map(|_| PageSpan { start, len })
    }

    /// The one page at `page` (page-aligned, below [`TASK_SIZE`]).
    pub fn page(page: GuestVirt) -> Option<PageSpan> {
        PageSpan::new(page, PAGE)
    }

    /// `[start, end)`, with the checks of [`PageSpan::new`].
    pub fn from_range(r: Range<u64>) -> Option<PageSpan> {
        PageSpan::new(GuestVirt(r.start), r.end.checked_sub(r.start)?)
    }

    pub fn start(self) -> GuestVirt {
        self.start
    }

    /// Bytes (a whole number of pages, never 0).
    pub fn len(self) -> u64 {
        self.len
    }

    /// Never: a span holds at least one page (for clippy's `len` rule).
    pub fn is_empty(self) -> bool {
        false
    }

    /// The first address after the span (at most [`TASK_SIZE`]).
    pub fn end(self) -> GuestVirt {
        GuestVirt(self.start.get() + self.len)
    }

    /// As a plain range of addresses.
    pub fn range(self) -> Range<u64> {
        self.start.get()..self.end().get()
    }

    /// Whether any address of `r` is in the span.
    pub fn overlaps(self, r: &Range<u64>) -> bool {
        r.start < self.end().get() && self.start.get() < r.end
    }

    /// The span followed by `next`, when `next` starts where this ends.
    pub fn join(self, next: PageSpan) -> Option<PageSpan> {
        if self.end() != next.start {
            return None;
        }
        // Both end at most at TASK_SIZE: no wrap, and the sum is checked
        // again by `new`.
        PageSpan::new(self.start, self.len + next.len)
    }
}

/// A page-aligned byte offset into a host file (the physmem memfd, a
/// disk image), below 2^63 (a host `off_t`), so an offset plus a span's
/// length cannot wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostOffset(u64);

impl HostOffset {
    pub const ZERO: HostOffset = HostOffset(0);

    /// `off`, or None unless page-aligned and below 2^63.
    pub fn new(off: u64) -> Option<HostOffset> {
        (off & (PAGE - 1) == 0 && off <= i64::MAX as u64).then_some(HostOffset(off))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// `self + len`, when that is still a valid offset.
    pub fn checked_add(self, len: u64) -> Option<HostOffset> {
        HostOffset::new(self.0.checked_add(len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_checked() {
        let s = PageSpan::new(GuestVirt(0x1000), 0x2000).unwrap();
        assert_eq!(s.range(), 0x1000..0x3000);
        assert_eq!(s.end(), GuestVirt(0x3000));
        assert!(PageSpan::new(GuestVirt(0x1001), 0x1000).is_none());
        assert!(PageSpan::new(GuestVirt(0x1000), 0x1001).is_none());
        assert!(PageSpan::new(GuestVirt(0x1000), 0).is_none());
        assert!(PageSpan::new(GuestVirt(TASK_SIZE - PAGE), PAGE).is_some());
        assert!(PageSpan::new(GuestVirt(TASK_SIZE), PAGE).is_none());
        assert!(PageSpan::new(GuestVirt(0xffff_ffff_ffff_f000), 0x2000).is_none());
        assert!(PageSpan::new(GuestVirt(0x1000), !(PAGE - 1)).is_none());
        let (hi, lo) = (0x3000, 0x1000);
        assert!(PageSpan::from_range(hi..lo).is_none());
        assert_eq!(
            PageSpan::from_range(0x1000..0x2000),
            PageSpan::page(GuestVirt(0x1000))
        );
    }

    #[test]
    fn spans_join_only_when_adjacent() {
        let a = PageSpan::page(GuestVirt(0x1000)).unwrap();
        let b = PageSpan::page(GuestVirt(0x2000)).unwrap();
        let c = PageSpan::page(GuestVirt(0x4000)).unwrap();
        assert_eq!(a.join(b), PageSpan::new(GuestVirt(0x1000), 0x2000));
        assert_eq!(b.join(a), None);
        assert_eq!(a.join(c), None);
        assert!(a.overlaps(&(0x1fff..0x5000)));
        assert!(!a.overlaps(&(0x2000..0x5000)));
        assert!(!a.overlaps(&(0..0x1000)));
    }

    #[test]
    fn offsets_are_checked() {
        assert_eq!(HostOffset::new(0x3000).unwrap().get(), 0x3000);
        assert!(HostOffset::new(0x3001).is_none());
        assert!(HostOffset::new(1 << 63).is_none());
        let top = HostOffset::new((i64::MAX as u64) & !(PAGE - 1)).unwrap();
        assert!(top.checked_add(PAGE).is_none());
        assert_eq!(HostOffset::ZERO.checked_add(PAGE), HostOffset::new(PAGE));
    }
}
