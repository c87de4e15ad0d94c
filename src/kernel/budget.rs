//! The host memory budget: how much host memory the instance may hold,
//! what it holds, and keeping the one under the other.
//!
//! The budget is `host_mem_max=` (also `config host_mem_max=` on the
//! mconsole), else what umlrun's memory cgroup leaves it (host/memacct.rs:
//! v2 `memory.high`/`memory.max`, v1 `memory.limit_in_bytes`), re-read
//! every `REFRESH` while a budget is in force and whenever guest memory
//! has grown by `refresh_step` frames (`STEP`, less as the room left
//! shrinks; checked every scheduler turn), so a changed limit is followed. Every allocation of a guest frame meets the cap:
//! faults and copies to and from user memory run the pressure path and
//! retry, and so does a syscall that failed with ENOMEM or ENOSPC for want
//! of a frame (exec's new stack, a tmpfs write, a page-cache fill for
//! read(2): kernel/oom.rs `dispatch_under_pressure`). With several instances in one cgroup each
//! takes as its budget the limit minus what the others hold (the cgroup's
//! usage less its reclaimable file cache — inactive, not dirty — less our
//! own count; the reserve sized by the cgroup's limit, as every instance
//! sees the same room): the room left is shared first come, each instance looking
//! again after growing by 1/`ROOM_SHARE` of the room it saw, so instances
//! that burst at once do not together overshoot it, and whoever grows
//! into a full cgroup meets pressure in its own guest, never the host's
//! OOM killer.
//!
//! What the instance holds is counted from the host's own figures: the
//! memfd's blocks (guest frames that cost memory; frames of anonymous
//! fault windows count once touched, physmem/untouched.rs, though the cap
//! counts them when reserved: the guest may touch them unasked), umlrun's private memory
//! (`RssAnon + VmPTE`: heap, kernel structures, page tables) and its stubs'
//! (sampled, at most `STUB_SAMPLE` read per refresh, the rest taken at the
//! sample's mean). Guest memory gets the budget minus the kernel's and the
//! stubs' share minus a reserve (`reserve`), as a cap on the frames the
//! memfd backs (physmem/limit.rs). Past the cap an allocation fails as if
//! RAM were full: reclaim, then swap, then the guest's OOM killer
//! (kernel/oom.rs). A budget lowered below what the guest holds is reached
//! the same way at the next refresh (`shrink_to_budget`), never by ending
//! the instance.

use std::time::{Duration, Instant};

use super::core::Kernel;
use crate::abi::PAGE;
use crate::host::heap;
use crate::host::memacct::{self, Cgroup};

/// How often the cgroup and the host figures are read again while a
/// budget is in force (without one, only guest growth of `STEP` frames
/// reads the cgroup again: an idle instance with no limit never wakes).
pub const REFRESH: Duration = Duration::from_millis(500);
/// Frames guest memory may grow between two reads of the cgroup (4 MiB),
/// at most: less as the room left shrinks (`refresh_step`).
pub const STEP: u64 = 1024;
/// The least growth between two reads of the cgroup (256 KiB).
pub const MIN_STEP: u64 = 64;
/// A read of the cgroup is due once guest memory grew by this fraction of
/// the room the last read left: instances sharing a cgroup that all grow
/// at once, each by 1/`ROOM_SHARE` of the room it saw before looking
/// again, fill at most the room itself while there are no more than
/// `ROOM_SHARE` of them (and the room shrinks geometrically from read to
/// read), where a fixed step let eight bursting instances overshoot the
/// limit by 8 x `STEP` and the host's OOM killer act.
pub const ROOM_SHARE: u64 = 16;
/// Growth of umlrun's heap past its size at the last refresh that
/// refreshes (1 MiB): the growth is charged against the cap at once
/// (physmem/limit.rs), the refresh measures what it really cost.
pub const HEAP_STEP: u64 = 1 << 20;
/// New guest processes since the last refresh that refresh: each has a
/// stub whose memory the last sample did not see.
pub const MMS_STEP: usize = 8;
/// What the kernel's heap may need for a moment per page-table entry whose
/// frame is shared, beyond what it holds: a swap pass's reverse map
/// (mm/reclaim.rs `Sharers`, a hash entry and a list of holders per
/// shared frame) and its candidate lists, and the heap's fragmentation
/// around them. Measured: a fork of a 160 MiB process (40 960 entries)
/// then a swap pass grew the heap by 6.6 MB and umlrun's private memory
/// by 8.8 MB (215 bytes an entry).
pub const SHARED_PTE_TRANSIENT: u64 = 256;
/// Stubs whose /proc status is read per refresh.
const STUB_SAMPLE: usize = 16;
/// Fewest frames the guest is left, however small the budget (init and a
/// shell must still run to be told).
pub const MIN_GUEST_FRAMES: u64 = 2048;

/// The budget's state and the last figures measured.
#[derive(Debug, Default)]
pub struct Budget {
    /// Set by `host_mem_max=` or the mconsole; None: follow the cgroup.
    pub switch: Option<u64>,
    pub cgroup: Option<Cgroup>,
    /// The budget in force, and where it came from.
    pub bytes: Option<u64>,
    pub source: &'static str,
    /// umlrun's own private memory, the stubs' and how many there are.
    pub kernel_bytes: u64,
    pub stub_bytes: u64,
    pub stubs: usize,
    /// The cgroup's usage at the last refresh, and the part of it that is
    /// neither reclaimable file cache nor ours.
    pub cgroup_usage: Option<u64>,
    pub others_bytes: u64,
    /// The cap on backed frames computed at the last refresh.
    pub guest_frames: Option<u64>,
    /// Frames backed at the last refresh, and the growth past them that
    /// refreshes (`refresh_step`).
    pub backed_at_refresh: u64,
    pub refresh_step: u64,
    /// How much umlrun's own memory may grow between two refreshes: the
    /// most /proc showed it grow (before any trim) since the last, or what
    /// shared page-table entries may cost a swap pass
    /// (`SHARED_PTE_TRANSIENT`), decaying by 1/64 a refresh once not seen
    /// again. Kept out of guest memory beside the reserve.
    pub transient: u64,
    /// umlrun's private memory as the last refresh left it (after a trim).
    pub kernel_bytes_prev: u64,
    /// umlrun's heap in use at the last refresh (host/heap.rs), and the
    /// most it grew past that before the next.
    pub heap_at_refresh: u64,
    pub heap_peak_growth: u64,
    /// Guest processes (stubs) at the last refresh.
    pub mms_at_refresh: usize,
    /// The most the instance was counted to hold at a refresh (umlrun's
    /// own memory as /proc showed it before any trim), and its parts:
    /// memfd, umlrun, stubs.
    pub peak_parts: [u64; 3],
    pub peak_held: u64,
    /// When the figures were last read (the fake platform's tests set it
    /// to hold the cap they set).
    pub(super) last: Option<Instant>,
}

impl Budget {
    /// What the instance holds on the host by the last figures.
    pub fn held(&self, memfd_bytes: u64) -> u64 {
        memfd_bytes + self.kernel_bytes + self.stub_bytes
    }
}

/// Headroom kept between what is counted and the budget: the kernel's heap
/// and page tables move between refreshes. `limit` is the budget's own
/// size for `host_mem_max=`, and the cgroup's limit when the budget is
/// what the cgroup leaves: every instance in the cgroup sees the same
/// room (the limit less its usage), so a reserve sized by each one's
/// share left the cgroup itself as little as the smallest share's, 4 MiB,
/// and its reclaim then fought over the file pages in use.
pub fn reserve(limit: u64) -> u64 {
    (limit / 16).clamp(4 << 20, 32 << 20)
}

/// Frames of growth after which the cgroup is read again, for `room`
/// frames left under the cap at the last read.
pub fn refresh_step(room: u64) -> u64 {
    (room / ROOM_SHARE).clamp(MIN_STEP, STEP)
}

/// Frames guest memory may back under `budget` once the kernel's and the
/// stubs' memory and the reserve are taken out.
pub fn guest_frames(budget: u64, kernel: u64, stubs: u64, reserve: u64) -> u64 {
    let room = budget
        .saturating_sub(kernel)
        .saturating_sub(stubs)
        .saturating_sub(reserve);
    (room / PAGE).max(MIN_GUEST_FRAMES)
}

impl Kernel {
    /// At boot: the switch's budget, else the cgroup's.
    pub fn budget_init(&mut self, switch: Option<u64>) {
        self.budget.switch = switch;
        self.budget.cgroup = Cgroup::own();
        self.budget_refresh();
        if let Some(b) = self.budget.bytes {
            log::info!(
                "host memory budget {} MiB ({})",
                b >> 20,
                self.budget.source
            );
        }
    }

    /// A new `host_mem_max=` (the mconsole); None goes back to the cgroup.
    pub fn budget_set(&mut self, switch: Option<u64>) {
        self.budget.switch = switch;
        self.budget_refresh();
        self.shrink_to_budget();
    }

    /// When the next refresh is due, if a budget is in force.
    pub fn budget_deadline(&self) -> Option<Instant> {
        let last = self.budget.last?;
        self.budget.bytes.is_some().then_some(last + REFRESH)
    }

    /// Called every scheduler turn: refreshes when due (every `REFRESH`
    /// while a budget is in force) or when guest memory grew by
    /// `refresh_step` frames since the last refresh (a cgroup limit may
    /// have come or changed, other instances in it may have grown), then
    /// brings the guest under a budget that shrank.
    pub fn budget_tick(&mut self) {
        let due = self.budget_deadline().is_some_and(|d| Instant::now() >= d);
        let step = match self.budget.refresh_step {
            0 => STEP,
            s => s,
        };
        let grew = self.budget.cgroup.is_some()
            && self.physmem.frames_backed() >= self.budget.backed_at_refresh.saturating_add(step);
        // The kernel's own memory grew (a fork's page-table copy, a swap
        // pass's reverse map, new stubs): measure it now, not at `REFRESH`.
        let kernel_grew = self.budget.bytes.is_some()
            && (heap::peak_since_mark() >= self.budget.heap_at_refresh.saturating_add(HEAP_STEP)
                || self.mms.len() >= self.budget.mms_at_refresh.saturating_add(MMS_STEP));
        if due || grew || kernel_grew {
            self.budget_refresh();
            self.shrink_to_budget();
        }
    }

    /// Reads the figures again and sets physmem's cap.
    pub fn budget_refresh(&mut self) {
        self.budget.last = Some(Instant::now());
        // What the host holds: window frames never touched cost nothing.
        let memfd = self.physmem.frames_host_backed() * PAGE;
        // umlrun's own memory: what it holds now counts for the peak; under
        // pressure its free heap pages go back first (as Linux's shrinkers
        // give back its caches), and what is left sets the cap.
        let heap_peak = heap::peak_since_mark();
        let kernel_held = memacct::private_bytes(None).unwrap_or(0);
        let near_cap = self.budget.guest_frames.is_some_and(|c| {
            self.physmem
                .frames_backed()
                .saturating_add(self.budget.refresh_step.max(MIN_STEP))
                >= c
        });
        self.budget.kernel_bytes = if near_cap {
            crate::host::misc::release_free_heap();
            memacct::private_bytes(None).unwrap_or(kernel_held)
        } else {
            kernel_held
        };
        let heap_live = heap::mark();
        // How much it grew since the last refresh, as /proc shows it.
        let grown = kernel_held.saturating_sub(self.budget.kernel_bytes_prev);
        self.budget.kernel_bytes_prev = self.budget.kernel_bytes;
        self.budget.transient = grown.max(self.budget.transient - self.budget.transient / 64);
        let stubs = memacct::children();
        self.budget.stubs = stubs.len();
        let sample: Vec<u64> = stubs
            .iter()
            .take(STUB_SAMPLE)
            .filter_map(|&p| memacct::private_bytes(Some(p)))
            .collect();
        self.budget.stub_bytes = if sample.is_empty() {
            0
        } else {
            sample.iter().sum::<u64>() / sample.len() as u64 * stubs.len() as u64
        };
        let ours = self.budget.held(memfd);
        // The peak with the kernel's memory as it was before the trim.
        let before_trim = memfd + kernel_held + self.budget.stub_bytes;
        if before_trim > self.budget.peak_held {
            self.budget.peak_held = before_trim;
            self.budget.peak_parts = [memfd, kernel_held, self.budget.stub_bytes];
        }
        self.budget.heap_peak_growth = self
            .budget
            .heap_peak_growth
            .max(heap_peak.saturating_sub(self.budget.heap_at_refresh));
        let cg = self.budget.cgroup.clone();
        self.budget.cgroup_usage = cg.as_ref().and_then(|c| c.usage());
        self.budget.others_bytes = match (&cg, self.budget.cgroup_usage) {
            (Some(c), Some(u)) => u
                .saturating_sub(c.reclaimable_cache().unwrap_or(0))
                .saturating_sub(ours),
            _ => 0,
        };
        let (bytes, source, limit) = match (self.budget.switch, cg.as_ref().and_then(|c| c.limit()))
        {
            (Some(b), _) => (Some(b), "host_mem_max=", b),
            (None, Some(l)) => (
                Some(l.bytes.saturating_sub(self.budget.others_bytes)),
                l.source,
                l.bytes,
            ),
            (None, None) => (None, "none", 0),
        };
        self.budget.bytes = bytes;
        self.budget.source = source;
        let (kernel, stubs) = (self.budget.kernel_bytes, self.budget.stub_bytes);
        let keep = reserve(limit).max(self.budget.transient.saturating_add(HEAP_STEP));
        let cap = bytes.map(|b| guest_frames(b, kernel, stubs, keep));
        self.budget.guest_frames = cap;
        let backed = self.physmem.frames_backed();
        self.budget.backed_at_refresh = backed;
        self.budget.refresh_step = match cap {
            Some(c) if self.budget.switch.is_none() => refresh_step(c.saturating_sub(backed)),
            _ => STEP,
        };
        self.physmem.set_backed_limit(cap.unwrap_or(u64::MAX));
        // Heap growth from here on lowers the cap at once (physmem/limit.rs).
        self.physmem
            .charge_heap_from(if cap.is_some() { heap_live } else { u64::MAX });
        log::debug!(
            "budget: held {ours} (memfd {memfd} kernel {kernel} (before trim {kernel_held}) stubs {stubs} in {}) cap {cap:?} frames (kept for the kernel {keep}), {backed} backed; heap {heap_live}, its peak since the last refresh {heap_peak} (then {})",
            self.budget.stubs,
            self.budget.heap_at_refresh,
        );
        self.budget.heap_at_refresh = heap_live;
        self.budget.mms_at_refresh = self.mms.len();
        self.mem_event_near_budget();
    }

    /// `n` page-table entries are about to be shared (a fork): a swap
    /// pass may then need `SHARED_PTE_TRANSIENT` bytes of heap each for a
    /// moment. The cap makes room for it before the fork, and guest memory
    /// is brought under it while its pages are still private (a pass over
    /// them needs no reverse map): the fork waits for room, as a guest
    /// frame does. No process is killed for it here.
    pub fn budget_note_shared_ptes(&mut self, n: usize) {
        let need = (n as u64).saturating_mul(SHARED_PTE_TRANSIENT);
        if self.budget.bytes.is_some() && need > self.budget.transient {
            self.budget.transient = need;
            self.budget_refresh();
            self.shrink_under_budget(false);
        }
    }

    /// An allocation failed at the cap: if the figures are older than
    /// `REFRESH`, read them again (the cgroup may have room now) and say
    /// "retry" when the cap moved.
    pub fn budget_on_alloc_failure(&mut self) -> bool {
        let backed = self.physmem.frames_backed();
        if backed < self.physmem.backed_limit() {
            // Not the cap: guest RAM itself is full.
            return false;
        }
        if self.budget.last.is_some_and(|t| t.elapsed() < REFRESH) {
            return false;
        }
        self.budget_refresh();
        self.physmem.frames_backed() < self.physmem.backed_limit()
    }

    /// The `stats` figures: the budget, what the instance holds by our
    /// count and by the cgroup's.
    pub fn budget_json(&self, memfd_bytes: u64) -> serde_json::Value {
        let b = &self.budget;
        serde_json::json!({
            "host_mem_max_bytes": b.bytes,
            "source": b.source,
            "held_bytes": b.held(memfd_bytes),
            "peak_held_bytes": b.peak_held,
            "peak_memfd_bytes": b.peak_parts[0],
            "peak_kernel_private_bytes": b.peak_parts[1],
            "peak_stub_bytes": b.peak_parts[2],
            "heap_bytes": b.heap_at_refresh,
            "heap_peak_growth_bytes": b.heap_peak_growth,
            "transient_bytes": b.transient,
            "memfd_bytes": memfd_bytes,
            "kernel_private_bytes": b.kernel_bytes,
            "stub_bytes": b.stub_bytes,
            "stubs": b.stubs,
            "guest_frame_cap": b.guest_frames,
            "cgroup": b.cgroup.as_ref().map(|c| c.dir.display().to_string()),
            "cgroup_usage_bytes": b.cgroup_usage,
            "cgroup_others_bytes": b.others_bytes,
        })
    }

    /// Over a budget that shrank: reclaim and, as the last resort, the
    /// OOM killer, until the guest's backed frames fit (bounded).
    pub fn shrink_to_budget(&mut self) {
        self.shrink_under_budget(true);
    }

    /// As `shrink_to_budget`; without `kill` it stops where only the OOM
    /// killer could go further.
    fn shrink_under_budget(&mut self, kill: bool) {
        let Some(cap) = self.budget.guest_frames else {
            return;
        };
        for _ in 0..64 {
            let backed = self.physmem.frames_backed();
            if backed <= cap {
                return;
            }
            let over = backed - cap;
            if self.release_untouched() > 0 {
                continue;
            }
            if self.reclaim_page_cache(over.min(1024)) > 0 {
                continue;
            }
            if self.swap_out_pages(over.min(1024)) > 0 {
                continue;
            }
            if !kill || !self.oom_kill_for_budget() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_step_shrinks_with_the_room_between_its_bounds() {
        assert_eq!(refresh_step(u64::MAX), STEP);
        assert_eq!(refresh_step(ROOM_SHARE * STEP), STEP);
        assert_eq!(refresh_step(ROOM_SHARE * 300), 300);
        assert_eq!(refresh_step(ROOM_SHARE * MIN_STEP - 1), MIN_STEP);
        assert_eq!(refresh_step(0), MIN_STEP);
    }

    /// `ROOM_SHARE` instances seeing the same room and each growing by its
    /// step before looking again never fill more than the room: the room
    /// shrinks by at most what they took, round after round, until it is
    /// below the least step (the reserve's share).
    #[test]
    fn instances_growing_at_once_stay_inside_the_room() {
        let n = ROOM_SHARE;
        let mut room: u64 = 64 << 8; // 64 MiB in frames
        let mut taken = 0u64;
        while room >= ROOM_SHARE * MIN_STEP {
            let step = refresh_step(room);
            taken += n * step;
            assert!(taken <= 64 << 8, "overshot: {taken} frames");
            room -= n * step;
        }
    }
}
