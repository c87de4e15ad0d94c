//! Resident pages by kind, as Linux's RSS counters and /proc/<pid>/smaps
//! count them: anonymous (private memory and private copies of file
//! pages, MM_ANONPAGES), file (page-cache pages mapped, MM_FILEPAGES) and
//! shared memory (shared anonymous mappings, tmpfs files, SysV segments:
//! MM_SHMEMPAGES).

use super::aspace::AddressSpace;
use super::vma::{Backing, Vma};
use crate::physmem::Untouched;

/// Resident pages of one kind each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss {
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
}

impl Rss {
    pub fn total(&self) -> u64 {
        self.anon + self.file + self.shmem
    }

    fn add(&mut self, o: Rss) {
        self.anon += o.anon;
        self.file += o.file;
        self.shmem += o.shmem;
    }
}

impl AddressSpace {
    /// The resident pages of one VMA, by kind (window pages the guest
    /// has not touched are not resident: `untouched`, settled).
    pub fn vma_rss(&self, v: &Vma, untouched: &Untouched) -> Rss {
        let mut r = Rss::default();
        let shmem_source = match &v.backing {
            Backing::Anon => v.shared,
            Backing::File { source, .. } => source.shmem(),
        };
        for pte in self
            .ptes
            .range(v.start.get()..v.end.get())
            .map(|(_, p)| p)
            .filter(|p| !untouched.contains(p.frame))
        {
            if pte.anon && !(v.shared && matches!(v.backing, Backing::Anon)) {
                r.anon += 1;
            } else if shmem_source {
                r.shmem += 1;
            } else {
                r.file += 1;
            }
        }
        r
    }

    /// The resident pages of the whole address space, by kind.
    pub fn rss(&self, untouched: &Untouched) -> Rss {
        let mut r = Rss::default();
        for v in self.vmas() {
            r.add(self.vma_rss(v, untouched));
        }
        r
    }
}
