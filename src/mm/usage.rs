//! What /proc/<pid>/smaps, smaps_rollup and the Vm* lines of status show,
//! counted as Linux's smaps walk counts (fs/proc/task_mmu.c):
//!
//! - a page mapped by one page table entry in the whole guest is
//!   private, by more than one shared; its proportional share (Pss) is
//!   the page divided by that map count, in Linux's fixed point;
//! - anonymous pages (and private copies of file pages) are dirty; a
//!   page-cache page is dirty when the cache holds it dirty; shared
//!   memory (tmpfs, SysV, shared anonymous) is dirty once written;
//! - a swapped-out page is not resident: it counts in Swap and SwapPss.
//!
//! The map counts come from one walk over every address space
//! (`map_counts`), and only for frames with more than one reference: a
//! frame with one reference is mapped once at most.

use std::collections::HashMap;

use super::aspace::AddressSpace;
use super::frames::FrameRefs;
use super::pagecache::PageCache;
use super::types::{GuestVirt, PAGE};
use super::vma::{Backing, Lock, Vma};
use crate::physmem::Frame;

/// Linux's PSS_SHIFT: Pss is summed in 1/4096ths of a byte.
pub const PSS_SHIFT: u32 = 12;

/// One VMA's (or a whole address space's) usage. Sizes are bytes;
/// `pss*` fields are bytes << PSS_SHIFT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub resident: u64,
    /// Of `resident`: page-cache pages and shared memory (RssFile,
    /// RssShmem); `anonymous` is the rest (RssAnon).
    pub resident_file: u64,
    pub resident_shmem: u64,
    pub pss: u64,
    pub pss_dirty: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub referenced: u64,
    pub anonymous: u64,
    pub swap: u64,
    pub swap_pss: u64,
    pub pss_locked: u64,
}

impl Usage {
    pub fn add(&mut self, o: &Usage) {
        self.resident += o.resident;
        self.resident_file += o.resident_file;
        self.resident_shmem += o.resident_shmem;
        self.pss += o.pss;
        self.pss_dirty += o.pss_dirty;
        self.pss_anon += o.pss_anon;
        self.pss_file += o.pss_file;
        self.pss_shmem += o.pss_shmem;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.referenced += o.referenced;
        self.anonymous += o.anonymous;
        self.swap += o.swap;
        self.swap_pss += o.swap_pss;
        self.pss_locked += o.pss_locked;
    }
}

/// How many page table entries map each frame that more than one
/// reference holds, over all the guest's address spaces.
pub fn map_counts<'a>(
    spaces: impl Iterator<Item = &'a AddressSpace>,
    frames: &FrameRefs,
) -> HashMap<Frame, u32> {
    let mut counts = HashMap::new();
    for a in spaces {
        for pte in a.ptes.values() {
            if frames.refcount(pte.frame) > 1 {
                *counts.entry(pte.frame).or_insert(0u32) += 1;
            }
        }
    }
    counts
}

/// Distinct page-cache and shared-memory frames mapped anywhere
/// (/proc/meminfo Mapped, Linux's NR_FILE_MAPPED).
pub fn mapped_file_pages<'a>(spaces: impl Iterator<Item = &'a AddressSpace>) -> u64 {
    let mut seen = std::collections::HashSet::new();
    for a in spaces {
        for v in a.vmas.values() {
            let shared_anon = v.shared && matches!(v.backing, Backing::Anon);
            for pte in a.ptes.range(v.start.get()..v.end.get()).map(|(_, p)| p) {
                if !pte.anon || shared_anon {
                    seen.insert(pte.frame);
                }
            }
        }
    }
    seen.len() as u64
}

/// What the walk needs to know of a page besides its entry.
pub struct PageFacts<'a> {
    /// Window pages the guest has not touched: mapped, not resident.
    pub untouched: &'a crate::physmem::Untouched,
    pub frames: &'a FrameRefs,
    pub pagecache: &'a PageCache,
    pub map_counts: &'a HashMap<Frame, u32>,
}

impl AddressSpace {
    /// Linux's smaps figures for one VMA.
    pub fn vma_usage(&self, v: &Vma, facts: &PageFacts<'_>) -> Usage {
        let mut u = Usage::default();
        let shmem = match &v.backing {
            Backing::Anon => v.shared,
            Backing::File { source, .. } => source.shmem(),
        };
        let file_key = match &v.backing {
            Backing::File { source, .. } if !shmem => source.key(),
            _ => None,
        };
        let swap = facts.frames.swap.borrow();
        for (&page, pte) in self.ptes.range(v.start.get()..v.end.get()) {
            if facts.untouched.contains(pte.frame) {
                continue;
            }
            let count = facts
                .map_counts
                .get(&pte.frame)
                .copied()
                .unwrap_or(1)
                .max(1) as u64;
            let share = (PAGE << PSS_SHIFT) / count;
            if swap.is_swapped(pte.frame) {
                u.swap += PAGE;
                u.swap_pss += share;
                continue;
            }
            // Private anonymous memory, or a private copy of a file page
            // (of tmpfs too): Linux's MM_ANONPAGES, as rss.rs counts.
            let anon = pte.anon && !(v.shared && matches!(v.backing, Backing::Anon));
            let dirty = if anon {
                !swap.is_cached(pte.frame)
            } else if shmem {
                pte.anon || pte.writable
            } else {
                let idx = v.file_index(super::GuestVirt(page));
                match (file_key, idx) {
                    (Some(key), Some(i)) => facts.pagecache.is_dirty(key, i),
                    _ => false,
                }
            };
            u.resident += PAGE;
            u.referenced += PAGE;
            u.pss += share;
            if anon {
                u.anonymous += PAGE;
                u.pss_anon += share;
            } else if shmem {
                u.resident_shmem += PAGE;
                u.pss_shmem += share;
            } else {
                u.resident_file += PAGE;
                u.pss_file += share;
            }
            match (count > 1, dirty) {
                (true, true) => u.shared_dirty += PAGE,
                (true, false) => u.shared_clean += PAGE,
                (false, true) => u.private_dirty += PAGE,
                (false, false) => u.private_clean += PAGE,
            }
            if dirty {
                u.pss_dirty += share;
            }
            if v.lock != Lock::None {
                u.pss_locked += share;
            }
        }
        u
    }
}

/// The sizes of status's Vm* lines that come from the VMAs, in bytes
/// (Linux's total_vm, data_vm, stack_vm, exec_vm and page tables).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmSizes {
    pub total: u64,
    /// Private writable mappings that are not the stack (VmData).
    pub data: u64,
    /// The stack (VmStk).
    pub stack: u64,
    /// Executable, not writable, not stack (VmExe + VmLib).
    pub exec: u64,
    /// Page-table pages: one per 2 MiB, 1 GiB and 512 GiB region with a
    /// resident page (VmPTE counts these, as Linux's mm_pgtables_bytes).
    pub page_tables: u64,
}

impl AddressSpace {
    pub fn vm_sizes(&self) -> VmSizes {
        let mut s = VmSizes::default();
        for v in self.vmas.values() {
            let len = v.len();
            s.total += len;
            let stack = v.label == Some("[stack]");
            let write = v.prot & super::PROT_WRITE != 0;
            if stack {
                s.stack += len;
            } else if v.is_data() {
                s.data += len;
            }
            if v.prot & super::PROT_EXEC != 0 && !write && !stack {
                s.exec += len;
            }
        }
        let mut tables = 0u64;
        for shift in [21u32, 30, 39] {
            let mut last = None;
            for &page in self.ptes.keys() {
                let region = page >> shift;
                if last != Some(region) {
                    tables += 1;
                    last = Some(region);
                }
            }
        }
        s.page_tables = tables * PAGE;
        s
    }

    /// (VmSize, VmData) in bytes: what RLIMIT_AS and RLIMIT_DATA bound,
    /// without `vm_sizes`'s walk of the page tables.
    pub fn vm_totals(&self) -> (u64, u64) {
        self.vmas.values().fold((0, 0), |(t, d), v| {
            (t + v.len(), if v.is_data() { d + v.len() } else { d })
        })
    }

    /// Bytes of the VMAs `pick` chooses that lie within [start, end).
    pub fn bytes_in(&self, start: GuestVirt, end: GuestVirt, pick: impl Fn(&Vma) -> bool) -> u64 {
        self.vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .filter(|(_, v)| pick(v))
            .map(|(_, v)| v.end.min(end).get() - v.start.max(start).get())
            .sum()
    }

    /// The highest resident size seen, in pages (VmHWM): the recorded
    /// peak or `now` (touched pages now), whichever is higher, as Linux's
    /// get_mm_hiwater_rss; `now` is recorded.
    pub fn hiwater_rss(&self, now: u64) -> u64 {
        let peak = self.hiwater_rss.get().max(now);
        self.hiwater_rss.set(peak);
        peak
    }

    /// The highest mapped size seen, in bytes (VmPeak).
    pub fn hiwater_vm(&self) -> u64 {
        self.hiwater_vm.max(self.total_vm())
    }

    /// Records the mapped-size peak before mappings go (Linux's
    /// update_hiwater_vm before an unmap). The resident peak is recorded
    /// when /proc reads it (`hiwater_rss`), as lazily as Linux, whose
    /// counters are only folded in at some points: what was never seen
    /// touched is not claimed.
    pub(super) fn note_hiwater(&mut self) {
        self.hiwater_vm = self.hiwater_vm.max(self.total_vm());
    }
}
