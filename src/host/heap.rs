//! umlrun's heap, counted as it grows: a global allocator over the
//! system's that keeps the bytes in use and the most in use since the
//! last `mark`. The host budget (kernel/budget.rs) reads umlrun's private
//! memory from /proc only at each refresh; between two, this count says
//! how much the kernel's own structures (a fork's page-table copy, a swap
//! pass's reverse map) may have grown, so the budget can charge it at once
//! and refresh. umlrun's binary installs it (`#[global_allocator]`); where
//! it is not installed (tests, the other tools) both figures stay 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counted.
pub struct Counting;

/// Bytes allocated and not freed, and the most they were since the last
/// `mark`.
struct Counters {
    live: AtomicU64,
    peak: AtomicU64,
}

impl Counters {
    const fn new() -> Self {
        Counters {
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    fn grew(&self, by: usize) {
        let now = self.live.fetch_add(by as u64, Ordering::Relaxed) + by as u64;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn shrank(&self, by: usize) {
        self.live.fetch_sub(by as u64, Ordering::Relaxed);
    }

    fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    fn peak_since_mark(&self) -> u64 {
        self.peak.load(Ordering::Relaxed).max(self.live())
    }

    fn mark(&self) -> u64 {
        let now = self.live();
        self.peak.store(now, Ordering::Relaxed);
        now
    }
}

static HEAP: Counters = Counters::new();

fn grew(by: usize) {
    HEAP.grew(by);
}

fn shrank(by: usize) {
    HEAP.shrank(by);
}

// SAFETY: every call is passed on unchanged to `System`, which upholds
// GlobalAlloc's contract; the counters only record sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as alloc.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator (System) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: ptr came from System with this layout; new_size is the
        // caller's, under realloc's contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Bytes the heap holds for allocations now (0 where not installed).
pub fn live() -> u64 {
    HEAP.live()
}

/// The most the heap held since the last `mark`.
pub fn peak_since_mark() -> u64 {
    HEAP.peak_since_mark()
}

/// Starts a new peak at what is held now; returns it.
pub fn mark() -> u64 {
    HEAP.mark()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_growth_and_the_peak_since_the_mark() {
        let c = Counters::new();
        c.grew(1000);
        c.shrank(600);
        assert_eq!(c.live(), 400);
        assert_eq!(c.peak_since_mark(), 1000);
        assert_eq!(c.mark(), 400);
        assert_eq!(c.peak_since_mark(), 400);
        c.grew(100);
        c.shrank(500);
        assert_eq!((c.live(), c.peak_since_mark()), (0, 500));
    }
}
