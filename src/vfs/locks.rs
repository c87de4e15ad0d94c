//! Advisory locks on one inode, as Linux keeps them (fs/locks.c): the
//! pure bookkeeping, with no tasks, queues or time in it. The kernel side
//! (who owns what, blocking, deadlock detection, release on close, leases
//! breaking, /proc/locks) is `kernel/locks.rs`.
//!
//! Three independent families share an inode:
//!
//! - **record locks** (`fcntl` F_SETLK/F_OFD_SETLK): byte ranges, read or
//!   write, owned either by a process's fd table (POSIX locks) or by an
//!   open file description (OFD locks). One owner's ranges never overlap:
//!   a new lock splits or absorbs what the owner held there, and ranges
//!   of one type that touch are merged. Two owners conflict where their
//!   ranges overlap and one of them writes. POSIX and OFD locks are one
//!   list and conflict with each other (different owners).
//! - **flock locks**: whole-file, shared or exclusive, owned by the open
//!   file description; independent of record locks, as on Linux.
//! - **leases** (F_SETLEASE): read or write, owned by the open file
//!   description; the kernel breaks them when a conflicting open comes.
//!
//! Ranges are inclusive `[start, end]` byte offsets with `end` at most
//! `OFFSET_MAX` (i64::MAX, "to the end of the file").

/// The largest offset (Linux's OFFSET_MAX): a lock to EOF ends here.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// Who holds a record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A POSIX lock: the fd table (Linux's `files_struct`) it was taken
    /// through.
    Posix(u64),
    /// An OFD lock: the open file description.
    Ofd(u64),
}

/// One held record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeLock {
    pub owner: Owner,
    /// The process that took it (l_pid; OFD locks report -1).
    pub pid: i32,
    pub write: bool,
    pub start: u64,
    /// Inclusive; `OFFSET_MAX` means "to the end of the file".
    pub end: u64,
}

impl RangeLock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    /// Would `self` stop `other` from being taken?
    pub fn conflicts(&self, other: &RangeLock) -> bool {
        self.owner != other.owner
            && (self.write || other.write)
            && self.overlaps(other.start, other.end)
    }
}

/// One held flock(2) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlockLock {
    /// The open file description holding it.
    pub file: u64,
    pub pid: i32,
    pub write: bool,
}

/// What a broken lease must become before the breaker may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseTarget {
    /// A writer opens: every lease must go.
    Unlock,
    /// A reader opens: a write lease must come down to a read lease.
    Read,
}

/// One lease (F_SETLEASE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub file: u64,
    pub pid: i32,
    pub write: bool,
    /// Being broken: what it must become, and when the kernel takes it
    /// away regardless (lease-break-time after the break began).
    pub breaking: Option<(LeaseTarget, std::time::Instant)>,
}

/// What a flock request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlockOutcome {
    /// Something was released on the way (a conversion drops the old lock
    /// first, as Linux does): waiters should look again.
    pub released: bool,
    /// The lock that stops the request, if one does.
    pub conflict: Option<FlockLock>,
}

/// Every lock on one inode.
#[derive(Debug, Default, Clone)]
pub struct InodeLocks {
    /// Record locks, ordered by start.
    pub ranges: Vec<RangeLock>,
    pub flocks: Vec<FlockLock>,
    pub leases: Vec<Lease>,
}

impl InodeLocks {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.flocks.is_empty() && self.leases.is_empty()
    }

    /// The first lock of another owner that stops `req` (F_GETLK's answer).
    pub fn range_conflict(&self, req: &RangeLock) -> Option<RangeLock> {
        self.ranges.iter().find(|l| l.conflicts(req)).copied()
    }

    /// Sets `owner`'s locks on `[start, end]` to `kind` (Some(write) or
    /// None to unlock), without looking at other owners: the caller has
    /// checked `range_conflict` first. What the owner held there is split
    /// or replaced; ranges of one type that touch merge into one. Returns
    /// whether any lock was removed or shrunk (waiters should look again).
    pub fn set_range(
        &mut self,
        owner: Owner,
        pid: i32,
        kind: Option<bool>,
        start: u64,
        end: u64,
    ) -> bool {
        self.try_set_range(owner, pid, kind, start, end, usize::MAX)
            .unwrap_or(false)
    }

    /// `set_range`, refused (None, nothing changed) when it would leave
    /// more than `cap` records on the inode and more than there were: a
    /// guest splitting a range into ever more records would otherwise
    /// grow the kernel's memory without bound (Linux answers ENOLCK when
    /// it cannot allocate a lock record).
    pub fn try_set_range(
        &mut self,
        owner: Owner,
        pid: i32,
        kind: Option<bool>,
        start: u64,
        end: u64,
        cap: usize,
    ) -> Option<bool> {
        debug_assert!(start <= end && end <= OFFSET_MAX);
        let mut released = false;
        let (mut new_start, mut new_end) = (start, end);
        let mut keep = Vec::with_capacity(self.ranges.len().saturating_add(2));
        for &l in &self.ranges {
            if l.owner != owner {
                keep.push(l);
                continue;
            }
            let touches = l.start <= end.saturating_add(1) && start <= l.end.saturating_add(1);
            if kind == Some(l.write) && touches {
                // Absorbed into the new lock.
                new_start = new_start.min(l.start);
                new_end = new_end.max(l.end);
                continue;
            }
            if !l.overlaps(start, end) {
                keep.push(l);
                continue;
            }
            // Replaced where the request covers it; kept outside.
            released = true;
            if l.start < start {
                keep.push(RangeLock {
                    end: start - 1,
                    ..l
                });
            }
            if l.end > end {
                keep.push(RangeLock {
                    start: end + 1,
                    ..l
                });
            }
        }
        if let Some(write) = kind {
            keep.push(RangeLock {
                owner,
                pid,
                write,
                start: new_start,
                end: new_end,
            });
        }
        if keep.len() > cap && keep.len() > self.ranges.len() {
            return None;
        }
        keep.sort_by_key(|l| l.start);
        self.ranges = keep;
        Some(released)
    }

    /// Drops every record lock of `owner`; true if there was one.
    pub fn drop_owner(&mut self, owner: Owner) -> bool {
        let before = self.ranges.len();
        self.ranges.retain(|l| l.owner != owner);
        self.ranges.len() != before
    }

    /// flock(2) by open file `file`: `kind` Some(exclusive) to lock, None
    /// to unlock. A lock of the other type held through the same file is
    /// dropped first (so a conversion that then has to wait has released
    /// what it held, as on Linux).
    pub fn flock(&mut self, file: u64, pid: i32, kind: Option<bool>) -> FlockOutcome {
        let mut released = false;
        if let Some(i) = self.flocks.iter().position(|l| l.file == file) {
            if Some(self.flocks[i].write) == kind {
                return FlockOutcome {
                    released,
                    conflict: None,
                };
            }
            self.flocks.remove(i);
            released = true;
        }
        let Some(write) = kind else {
            return FlockOutcome {
                released,
                conflict: None,
            };
        };
        let conflict = self
            .flocks
            .iter()
            .find(|l| l.file != file && (l.write || write))
            .copied();
        if conflict.is_none() {
            self.flocks.push(FlockLock { file, pid, write });
        }
        FlockOutcome { released, conflict }
    }

    /// Drops every flock lock and lease of open file `file`; true if there
    /// was one.
    pub fn drop_file(&mut self, file: u64) -> bool {
        let before = self.flocks.len() + self.leases.len();
        self.flocks.retain(|l| l.file != file);
        self.leases.retain(|l| l.file != file);
        self.flocks.len() + self.leases.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Owner = Owner::Posix(1);
    const B: Owner = Owner::Posix(2);

    fn ranges(l: &InodeLocks) -> Vec<(Owner, bool, u64, u64)> {
        l.ranges
            .iter()
            .map(|r| (r.owner, r.write, r.start, r.end))
            .collect()
    }

    fn req(owner: Owner, write: bool, start: u64, end: u64) -> RangeLock {
        RangeLock {
            owner,
            pid: 0,
            write,
            start,
            end,
        }
    }

    #[test]
    fn a_lock_in_the_middle_splits_and_unlock_punches() {
        let mut l = InodeLocks::default();
        l.set_range(A, 1, Some(true), 0, 99);
        assert!(l.set_range(A, 1, Some(false), 40, 59));
        assert_eq!(
            ranges(&l),
            vec![(A, true, 0, 39), (A, false, 40, 59), (A, true, 60, 99)]
        );
        assert!(l.set_range(A, 1, None, 30, 69));
        assert_eq!(ranges(&l), vec![(A, true, 0, 29), (A, true, 70, 99)]);
        // Filling the gap with the same type merges everything.
        assert!(!l.set_range(A, 1, Some(true), 30, 69));
        assert_eq!(ranges(&l), vec![(A, true, 0, 99)]);
    }

    #[test]
    fn adjacent_ranges_of_one_type_merge_and_of_two_types_do_not() {
        let mut l = InodeLocks::default();
        l.set_range(A, 1, Some(false), 0, 9);
        l.set_range(A, 1, Some(false), 10, 19);
        assert_eq!(ranges(&l), vec![(A, false, 0, 19)]);
        l.set_range(A, 1, Some(true), 20, OFFSET_MAX);
        assert_eq!(
            ranges(&l),
            vec![(A, false, 0, 19), (A, true, 20, OFFSET_MAX)]
        );
        l.set_range(A, 1, None, 0, OFFSET_MAX);
        assert!(l.is_empty());
    }

    #[test]
    fn other_owners_conflict_only_with_a_writer_on_overlap() {
        let mut l = InodeLocks::default();
        l.set_range(A, 1, Some(true), 0, 99);
        l.set_range(B, 2, Some(false), 200, 299);
        assert_eq!(l.range_conflict(&req(B, false, 50, 59)).unwrap().owner, A);
        assert!(l.range_conflict(&req(B, true, 100, 199)).is_none());
        assert!(l.range_conflict(&req(A, true, 250, 250)).is_some());
        assert!(l.range_conflict(&req(A, false, 250, 250)).is_none());
        assert!(l
            .range_conflict(&req(Owner::Posix(3), false, 250, 250))
            .is_none());
        // One owner never conflicts with itself; an OFD owner is another.
        assert!(l.range_conflict(&req(A, true, 0, 99)).is_none());
        assert!(l.range_conflict(&req(Owner::Ofd(1), false, 0, 0)).is_some());
        assert!(l.drop_owner(A));
        assert!(!l.drop_owner(A));
        assert!(l.range_conflict(&req(Owner::Ofd(1), true, 0, 99)).is_none());
    }

    #[test]
    fn flock_converts_by_dropping_first_and_unlocks() {
        let mut l = InodeLocks::default();
        assert_eq!(l.flock(10, 1, Some(false)).conflict, None);
        assert_eq!(l.flock(11, 2, Some(false)).conflict, None);
        // Exclusive while another file shares: the shared lock is gone
        // (released), the new one not granted.
        let o = l.flock(10, 1, Some(true));
        assert!(o.released);
        assert_eq!(o.conflict.unwrap().file, 11);
        assert_eq!(l.flocks.len(), 1);
        assert!(l.flock(11, 2, None).released);
        assert_eq!(l.flock(10, 1, Some(true)).conflict, None);
        // Asking again for what is held changes nothing.
        assert_eq!(
            l.flock(10, 1, Some(true)),
            FlockOutcome {
                released: false,
                conflict: None
            }
        );
        assert!(l.drop_file(10));
        assert!(l.is_empty());
    }

    #[test]
    fn record_cap_refuses_growth_not_shrinking() {
        let mut l = InodeLocks::default();
        for i in 0..4u64 {
            assert_eq!(
                l.try_set_range(A, 1, Some(true), i * 2, i * 2, 4),
                Some(false)
            );
        }
        // A fifth separate record, and a split of one, are refused whole.
        assert_eq!(l.try_set_range(A, 1, Some(true), 20, 20, 4), None);
        assert_eq!(l.ranges.len(), 4);
        // Merging and unlocking still work at the cap.
        assert_eq!(l.try_set_range(A, 1, Some(true), 0, 3, 4), Some(false));
        assert_eq!(l.ranges.len(), 2);
        assert_eq!(l.try_set_range(A, 1, None, 0, OFFSET_MAX, 4), Some(true));
        assert!(l.ranges.is_empty());
    }
}
