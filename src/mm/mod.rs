//! Guest address spaces on physical memory.
//!
//! | file        | owns |
//! |-------------|------|
//! | `types.rs`  | `GuestVirt` (a guest address), page arithmetic, protections, the map operations handed to the platform |
//! | `frames.rs` | reference counts of frames: page tables, fork sharing and the page cache hold them |
//! | `vma.rs`    | virtual memory areas and what backs them |
//! | `aspace.rs` | one address space: VMAs (and their running total size), the guest page table, mmap/munmap/mprotect/brk, fork |
//! | `fault.rs`  | resolving a page fault: demand paging, copy-on-write, fault-around |
//! | `window.rs` | anonymous fault windows: one host mapping per aligned window; giving untouched pages back |
//! | `pagecache.rs` | file pages in frames; substitution of image pages under ubd=mmap |
//! | `mlock.rs`  | mlock/munlock/mlockall on VMAs: the lock flag over a range, merging, locked size, populating |
//! | `rss.rs`    | resident pages by kind (anon, file, shmem) per VMA and address space, for /proc |
//! | `usage.rs`  | what smaps, smaps_rollup and status's Vm* lines count: Pss, shared/private, clean/dirty, swap, peaks |
//! | `reclaim.rs`| swap-out candidates, the clock's reference test (revoking host mappings), the reverse map of shared frames |
//! | `swap.rs`   | swap areas (Linux's format), their slots, and which frames are swapped out |
//! | `shmem.rs`  | tmpfs pages in swap: the tmpfs page store, its least-recently-used order |
//! | `vm_total_prop.rs` | (test) the running mapped total against a walk of the VMAs after random operations |
//!
//! Nothing here touches the host: every change to a stub's host mappings
//! is returned as a list of `MapOp`s that the platform applies in a batch.
//!
//! Concurrency: everything here belongs to the one kernel thread (`Rc`,
//! `RefCell`, no locks). The layers below are shared and locked: the page
//! cache calls the file system (ext2's `RwLock`, then ubd's) and then
//! physmem (its `Mutex`, a leaf: never held while another lock is taken).
//! A guest copy resolves all its pages first and then copies under one
//! physmem lock (see docs/ARCHITECTURE.md, "Concurrency").

#![deny(unsafe_code)]

pub mod aspace;
pub mod fault;
pub mod frames;
pub mod mlock;
pub mod pagecache;
pub mod reclaim;
pub mod rss;
pub mod shmem;
pub mod swap;
pub mod types;
pub mod usage;
#[cfg(test)]
mod vm_total_prop;
pub mod vma;
pub mod window;

pub use aspace::AddressSpace;
pub use frames::FrameRefs;
pub use types::*;
pub use vma::{Backing, PageSource, Vma};
