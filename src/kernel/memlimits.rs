//! Per-guest memory limits a container needs (issue 14): the page cache's
//! cap (`pagecache_max=`), and caps on memory mappings — how many VMAs a
//! process may have (`max_map_count=`, Linux's vm.max_map_count) and how
//! many bytes of file-backed mappings the whole guest may hold
//! (`mapped_file_max=`). All three are set at boot and changed at run time
//! through the management console (`config pagecache_max=16M`,
//! `config max_map_count=1000`, `config mapped_file_max=none`).
//!
//! Enforcement: the page-cache cap by the page cache's own reclaim (a
//! lower cap evicts clean pages at once, least recently used first);
//! the mapping caps at mmap(2), which fails with ENOMEM past them as Linux
//! does past vm.max_map_count. Each refusal is counted (`stats`: `limits`).
//! Programs' own images (exec) count toward `mapped_file_max` but exec is
//! not refused by it.
//!
//! Each process's RLIMIT_AS and RLIMIT_DATA too (Linux's may_expand_vm):
//! mmap, brk, mremap and mprotect that would take VmSize past RLIMIT_AS,
//! or VmData (private writable mappings, not the stack) past RLIMIT_DATA,
//! fail with ENOMEM (brk leaves the break), counted as well.

use super::core::Kernel;
use super::task::Pid;
use crate::abi::PAGE;
pub use crate::config::limits::{parse_limit, LimitName, LimitValue};
use crate::config::size::format_size;
use crate::errno::{Errno, KResult};
use crate::mm::Backing;

const RLIMIT_DATA: usize = 2;
const RLIMIT_AS: usize = 9;
const RLIM_INF: u64 = u64::MAX;

/// Linux's default vm.max_map_count.
pub const DEFAULT_MAX_MAP_COUNT: u64 = 65530;

/// The limits and how often each refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemLimits {
    /// VMAs per process (mmap fails with ENOMEM past it).
    pub max_map_count: u64,
    /// Bytes of file-backed mappings, all processes together; None: no cap.
    pub mapped_file_max: Option<u64>,
    /// mmap/munmap/mprotect refused by `max_map_count`.
    pub map_count_refusals: u64,
    /// mmap/mremap refused by `mapped_file_max`.
    pub mapped_file_refusals: u64,
    /// mmap/brk/mremap/mprotect refused by a process's RLIMIT_AS or
    /// RLIMIT_DATA.
    pub rlimit_vm_refusals: u64,
}

impl Default for MemLimits {
    fn default() -> Self {
        MemLimits {
            max_map_count: DEFAULT_MAX_MAP_COUNT,
            mapped_file_max: None,
            map_count_refusals: 0,
            mapped_file_refusals: 0,
            rlimit_vm_refusals: 0,
        }
    }
}

impl Kernel {
    /// Bytes of file-backed mappings in every address space.
    pub fn mapped_file_bytes(&self) -> u64 {
        self.mms
            .values()
            .flat_map(|mm| mm.aspace.vmas())
            .filter(|v| matches!(v.backing, Backing::File { .. }))
            .fold(0u64, |a, v| a.saturating_add(v.len()))
    }

    /// May `tid` have one more VMA? `at_limit`: Linux's mmap checks
    /// `map_count > max` (one over is allowed before the new one), the
    /// splitting calls `map_count >= max`.
    pub(crate) fn check_map_count(&mut self, tid: Pid, splitting: bool) -> KResult<()> {
        let count = self.mm_of(tid)?.aspace.vma_count() as u64;
        let max = self.config.limits.max_map_count;
        let over = if splitting { count >= max } else { count > max };
        if over {
            self.config.limits.map_count_refusals += 1;
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// May the guest map `more` bytes of file more?
    pub(crate) fn check_mapped_file(&mut self, more: u64) -> KResult<()> {
        let Some(max) = self.config.limits.mapped_file_max else {
            return Ok(());
        };
        if self.mapped_file_bytes().saturating_add(more) > max {
            self.config.limits.mapped_file_refusals += 1;
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Would `grow` more bytes of mappings (private writable ones if
    /// `data`) pass `tid`'s RLIMIT_AS (VmSize) or RLIMIT_DATA (VmData)?
    /// (as_over, data_over), compared in pages with the limits rounded
    /// down, as Linux's may_expand_vm; Linux lets a data limit of 0 pass
    /// up to the hard limit (for Valgrind). With both unlimited (the
    /// default) nothing is walked.
    fn vm_limits_over(&mut self, tid: Pid, grow: u64, data: bool) -> KResult<(bool, bool)> {
        let r = self.task(tid)?.rlimits;
        let (as_max, (data_cur, data_max)) = (r[RLIMIT_AS].0, r[RLIMIT_DATA]);
        let check_data = data && data_cur != RLIM_INF;
        if as_max == RLIM_INF && !check_data {
            return Ok((false, false));
        }
        let (total, data_vm) = self.mm_of(tid)?.aspace.vm_totals();
        let pages = grow / PAGE;
        let as_over = as_max != RLIM_INF && total / PAGE + pages > as_max / PAGE;
        let data_pages = data_vm / PAGE + pages;
        let data_over = check_data
            && data_pages > data_cur / PAGE
            && !(data_cur == 0 && data_pages <= data_max / PAGE);
        Ok((as_over, data_over))
    }

    /// Linux's may_expand_vm: ENOMEM (counted) when `grow` more bytes of
    /// mappings, private writable ones if `data`, would pass RLIMIT_AS or
    /// RLIMIT_DATA (mmap, brk, mremap growing).
    pub(crate) fn may_expand_vm(&mut self, tid: Pid, grow: u64, data: bool) -> KResult<()> {
        let (as_over, data_over) = self.vm_limits_over(tid, grow, data)?;
        if as_over || data_over {
            self.config.limits.rlimit_vm_refusals += 1;
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// mprotect making `bytes` of private read-only mappings writable
    /// (data): ENOMEM when they pass RLIMIT_DATA, unless they would pass
    /// RLIMIT_AS too (Linux's mprotect_fixup refuses only when the new
    /// flags fail may_expand_vm and the old ones pass it).
    pub(crate) fn may_become_data(&mut self, tid: Pid, bytes: u64) -> KResult<()> {
        let (as_over, data_over) = self.vm_limits_over(tid, bytes, true)?;
        if data_over && !as_over {
            self.config.limits.rlimit_vm_refusals += 1;
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `config <limit>`: the value now.
    pub fn limit_get(&self, name: LimitName) -> String {
        let size = |v: Option<u64>| v.map_or("none".to_string(), format_size);
        match name {
            LimitName::PagecacheMax => size(
                self.config
                    .pagecache_max_pages
                    .map(|p| p.saturating_mul(PAGE)),
            ),
            LimitName::MaxMapCount => self.config.limits.max_map_count.to_string(),
            LimitName::MappedFileMax => size(self.config.limits.mapped_file_max),
        }
    }

    /// `config <limit>=<value>`. A lower page-cache cap evicts at once.
    pub fn limit_set(&mut self, name: LimitName, v: LimitValue) {
        match name {
            LimitName::PagecacheMax => {
                self.config.pagecache_max_pages = v.map(|b| b / PAGE);
                self.mem_size_changed();
            }
            LimitName::MaxMapCount => {
                self.config.limits.max_map_count = v.unwrap_or(DEFAULT_MAX_MAP_COUNT)
            }
            LimitName::MappedFileMax => self.config.limits.mapped_file_max = v,
        }
        log::info!("{} set to {}", name.name(), self.limit_get(name));
    }

    /// The `limits` object of `stats`.
    pub fn limits_json(&self) -> serde_json::Value {
        let l = &self.config.limits;
        serde_json::json!({
            "pagecache_max_bytes": self.config.pagecache_max_pages.map(|p| p.saturating_mul(PAGE)),
            "max_map_count": l.max_map_count,
            "mapped_file_max_bytes": l.mapped_file_max,
            "mapped_file_bytes": self.mapped_file_bytes(),
            "map_count_refusals": l.map_count_refusals,
            "mapped_file_refusals": l.mapped_file_refusals,
            "rlimit_vm_refusals": l.rlimit_vm_refusals,
        })
    }
}
