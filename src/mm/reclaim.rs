//! What swap-out needs from an address space: the pages it may take, the
//! clock's reference test, and taking one page out.
//!
//! The kernel cannot read the host's accessed bits, so recency is
//! approximated by revoking: a page's host mapping is removed (`revoke`)
//! and the page stays resident; if the guest touches it again it faults
//! back in softly (no I/O) and is mapped again. A page still unmapped at
//! the next pass was not used in between: it is "cold" and goes to swap
//! first (a clock with one reference bit, the bit being "mapped in the
//! stub").

use super::aspace::AddressSpace;
use super::frames::FrameRefs;
use super::types::{MapOp, PAGE};
use crate::errno::KResult;

/// A page swap-out may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapCandidate {
    pub page: u64,
    /// Mapped in the stub now: used since the last revoke.
    pub hot: bool,
}

impl AddressSpace {
    /// Private anonymous pages held by this page table alone (one
    /// reference), not swapped out already, from `from` on; never pages
    /// of a locked VMA (mlock), nor window pages never touched (they are
    /// given back, not swapped: window.rs).
    pub fn swap_candidates(&self, frames: &FrameRefs, from: u64) -> Vec<SwapCandidate> {
        let locked: Vec<(u64, u64)> = self
            .vmas
            .values()
            .filter(|v| v.lock != super::vma::Lock::None && v.end.get() > from)
            .map(|v| (v.start.get(), v.end.get()))
            .collect();
        self.ptes
            .range(from..)
            .filter(|(a, _)| !locked.iter().any(|&(s, e)| s <= **a && **a < e))
            .filter(|(_, p)| {
                p.anon
                    && frames.refcount(p.frame) == 1
                    && !frames.swap.borrow().is_swapped(p.frame)
                    && !frames.physmem().is_untouched(p.frame)
            })
            .map(|(a, p)| SwapCandidate {
                page: *a,
                hot: p.host_prot.is_some(),
            })
            .collect()
    }

    /// Removes `page`'s host mapping (the clock's reference test); the
    /// next access faults and maps it again.
    pub fn revoke(&mut self, page: u64) {
        if let Some(p) = self.ptes.get_mut(&page) {
            if p.host_prot.take().is_some() {
                self.ops
                    .extend(super::aspace::page_span(page, PAGE).map(|span| MapOp::Unmap { span }));
            }
        }
    }

    /// Sends `page`'s frame to swap: its host mapping goes first (the
    /// unmap reaches the stub before it runs again), then its contents.
    pub fn swap_out_page(&mut self, page: u64, frames: &mut FrameRefs) -> KResult<()> {
        let Some(f) = self.ptes.get(&page).map(|p| p.frame) else {
            return Ok(());
        };
        self.revoke(page);
        frames.swap_out(f)
    }
}
