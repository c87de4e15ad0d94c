//! The guest-wide lock manager: record locks (POSIX and OFD), flock and
//! leases for every file, on top of the per-inode bookkeeping in
//! `vfs/locks.rs`.
//!
//! - Ownership: a POSIX lock belongs to the fd table it was taken through
//!   (`FdTable::owner`, Linux's `files_struct`), so it is not inherited by
//!   fork, and any close of an fd for the file through that table drops
//!   all of the table's locks on it (`locks_fd_closed`). OFD locks, flock
//!   locks and leases belong to the open file description and go when its
//!   last reference does (`locks_file_released`).
//! - Waiting: each locked inode has a wait queue; F_SETLKW, F_OFD_SETLKW and
//!   a blocking flock sleep on it and retry from the start when anything on
//!   the inode is released. A signal ends the sleep (EINTR, or a restart
//!   under SA_RESTART, as Linux's -ERESTARTSYS).
//! - Deadlock: before a POSIX F_SETLKW sleeps, the chain "owner A waits for
//!   owner B, who waits for C ..." is followed (at most `MAX_DEADLK_STEPS`
//!   steps, as Linux's posix_locks_deadlock); reaching the caller again is
//!   EDEADLK.
//! - Leases: an open that conflicts with another file's lease starts a
//!   break (the holder gets SIGIO or its F_SETSIG signal) and waits until
//!   the holder gives way or `lease-break-time` passes (O_NONBLOCK:
//!   EWOULDBLOCK).
//! - /proc/locks: `locks_text`, in Linux's format.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::core::Kernel;
use super::signal::SigInfo;
use super::task::{Pid, TaskState, Wait};
use super::waitq::{WaitQueueRef, ALL_EVENTS};
use crate::errno::{Errno, KResult};
use crate::vfs::locks::{InodeLocks, Lease, LeaseTarget, Owner, RangeLock};
use crate::vfs::{Node, OpenFileRef};

/// How far the wait-for chain is followed (Linux's MAX_DEADLK_ITERATIONS).
const MAX_DEADLK_STEPS: usize = 10;
/// Record locks one inode may hold (all owners together); beyond it a
/// lock or unlock that would add records is ENOLCK. Linux has no count
/// but fails with ENOLCK when a record cannot be allocated; this bounds
/// the kernel's memory (about 48 bytes a record, 192 KiB an inode) and the
/// O(n) cost of each lock call. Inodes with records are bounded by the
/// open files that hold them.
pub const MAX_LOCK_RECORDS: usize = 4096;
/// fs.lease-break-time: seconds a lease holder has to give way.
pub const LEASE_BREAK_SECS: u64 = 45;
const SIGIO: i32 = 29;
const NR_FCNTL: u64 = 72;

/// What a lock is on: an inode, or for a file without one (a pipe), the
/// open file description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKey {
    Node(Node),
    Anon(u64),
}

/// Every lock in the guest.
#[derive(Default)]
pub struct LockTable {
    inodes: HashMap<LockKey, InodeLocks>,
    queues: HashMap<LockKey, WaitQueueRef>,
    /// Tasks asleep in a POSIX F_SETLKW: tid → (its owner, the owner of
    /// the lock it waits for). An entry whose task is no longer asleep in
    /// fcntl is stale and ignored.
    waiting: HashMap<Pid, (Owner, Owner)>,
    /// The order locks were first taken on each key, for /proc/locks.
    order: Vec<LockKey>,
}

impl LockTable {
    fn entry(&mut self, key: LockKey) -> &mut InodeLocks {
        if !self.inodes.contains_key(&key) {
            self.order.push(key);
        }
        self.inodes.entry(key).or_default()
    }

    fn queue(&mut self, key: LockKey) -> WaitQueueRef {
        self.queues.entry(key).or_default().clone()
    }

    /// Forgets an inode with no locks left (its queue stays while tasks
    /// sleep on it).
    fn tidy(&mut self, key: LockKey) {
        if self.inodes.get(&key).is_some_and(|l| l.is_empty()) {
            self.inodes.remove(&key);
            self.order.retain(|k| *k != key);
        }
        if self.queues.get(&key).is_some_and(|q| q.is_empty()) {
            self.queues.remove(&key);
        }
    }

    /// The locks held on `key` (tests, F_SETLEASE).
    pub fn get(&self, key: LockKey) -> Option<&InodeLocks> {
        self.inodes.get(&key)
    }
}

/// A record-lock request, decoded from a `struct flock`.
#[derive(Clone, Copy, Debug)]
pub struct RangeRequest {
    pub owner: Owner,
    pub pid: i32,
    /// Some(write) to lock, None to unlock.
    pub kind: Option<bool>,
    pub start: u64,
    pub end: u64,
}

impl Kernel {
    /// The key locks on `f` are kept under.
    pub fn lock_key(f: &OpenFileRef) -> LockKey {
        let of = f.borrow();
        match of.node() {
            Some(n) => LockKey::Node(n),
            None => LockKey::Anon(of.id),
        }
    }

    /// Wakes the tasks sleeping for a lock on `key`.
    fn locks_changed(&mut self, key: LockKey) {
        if let Some(q) = self.locks.queues.get(&key).cloned() {
            self.wake_queue(&q, ALL_EVENTS);
        }
        self.locks.tidy(key);
    }

    /// F_GETLK/F_OFD_GETLK: the first lock that would stop `req`.
    pub fn lock_test(&self, key: LockKey, req: &RangeRequest) -> Option<RangeLock> {
        let probe = RangeLock {
            owner: req.owner,
            pid: req.pid,
            write: req.kind?,
            start: req.start,
            end: req.end,
        };
        self.locks.inodes.get(&key)?.range_conflict(&probe)
    }

    /// F_SETLK(W)/F_OFD_SETLK(W): takes, changes or drops a record lock.
    /// On a conflict: EAGAIN, or with `wait` a sleep on the inode's queue
    /// (EDEADLK where the sleep would close a cycle of POSIX owners).
    pub fn lock_set(
        &mut self,
        tid: Pid,
        key: LockKey,
        req: &RangeRequest,
        wait: bool,
    ) -> KResult<Option<Wait>> {
        self.locks.waiting.remove(&tid);
        if let Some(blocker) = self.lock_test(key, req) {
            if !wait {
                return Err(Errno::EAGAIN);
            }
            if let (Owner::Posix(_), Owner::Posix(_)) = (req.owner, blocker.owner) {
                if self.lock_deadlock(req.owner, blocker.owner) {
                    return Err(Errno::EDEADLK);
                }
                self.locks.waiting.insert(tid, (req.owner, blocker.owner));
            }
            let q = self.locks.queue(key);
            self.wait_on(tid, &q, ALL_EVENTS);
            return Ok(Some(Wait::Queue(None)));
        }
        if req.kind.is_none() && !self.locks.inodes.contains_key(&key) {
            return Ok(None);
        }
        let set = self.locks.entry(key).try_set_range(
            req.owner,
            req.pid,
            req.kind,
            req.start,
            req.end,
            MAX_LOCK_RECORDS,
        );
        let Some(released) = set else {
            self.locks.tidy(key);
            return Err(Errno::ENOLCK);
        };
        if released {
            self.locks_changed(key);
        } else {
            self.locks.tidy(key);
        }
        Ok(None)
    }

    /// Is `tid` still asleep in a lock call (its `waiting` entry current)?
    fn asleep_on_lock(&self, tid: Pid) -> bool {
        self.tasks.get(&tid).is_some_and(|t| {
            matches!(t.state, TaskState::Blocked(Wait::Queue(_)))
                && t.syscall.is_some_and(|(nr, _)| nr == NR_FCNTL)
        })
    }

    /// Would `me` waiting for `blocker` close a cycle of waiting owners?
    fn lock_deadlock(&self, me: Owner, mut blocker: Owner) -> bool {
        for _ in 0..MAX_DEADLK_STEPS {
            let next = self
                .locks
                .waiting
                .iter()
                .find(|(tid, (w, _))| *w == blocker && self.asleep_on_lock(**tid))
                .map(|(_, (_, b))| *b);
            match next {
                Some(b) if b == me => return true,
                Some(b) => blocker = b,
                None => return false,
            }
        }
        false
    }

    /// flock(2): `kind` Some(exclusive) or None to unlock. A conflict is
    /// EWOULDBLOCK with `nonblock`, else a sleep on the inode's queue.
    pub fn flock(
        &mut self,
        tid: Pid,
        f: &OpenFileRef,
        kind: Option<bool>,
        nonblock: bool,
    ) -> KResult<Option<Wait>> {
        let key = Self::lock_key(f);
        let id = f.borrow().id;
        let pid = self.task(tid)?.tgid;
        if kind.is_none() && !self.locks.inodes.contains_key(&key) {
            return Ok(None);
        }
        let out = self.locks.entry(key).flock(id, pid, kind);
        if out.released {
            self.locks_changed(key);
        } else {
            self.locks.tidy(key);
        }
        if out.conflict.is_none() {
            return Ok(None);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        let q = self.locks.queue(key);
        self.wait_on(tid, &q, ALL_EVENTS);
        Ok(Some(Wait::Queue(None)))
    }

    /// An fd for `f` was closed through fd table `table`: that table's
    /// POSIX locks on the file go (POSIX's "any close drops them all").
    pub fn locks_fd_closed(&mut self, table: u64, f: &OpenFileRef) {
        let key = Self::lock_key(f);
        let dropped = self
            .locks
            .inodes
            .get_mut(&key)
            .is_some_and(|l| l.drop_owner(Owner::Posix(table)));
        if dropped {
            self.locks_changed(key);
        }
    }

    /// The open file description `id` (on `key`) is gone: its OFD locks,
    /// flock locks and leases go.
    pub fn locks_file_released(&mut self, key: LockKey, id: u64) {
        let Some(l) = self.locks.inodes.get_mut(&key) else {
            return;
        };
        let a = l.drop_owner(Owner::Ofd(id));
        let b = l.drop_file(id);
        if a || b {
            self.locks_changed(key);
        }
    }

    /// `tid` exits: it sleeps for no lock any more.
    pub fn locks_task_gone(&mut self, tid: Pid) {
        self.locks.waiting.remove(&tid);
    }

    /// The lease `f` holds (F_GETLEASE): 0 read, 1 write, 2 none; a lease
    /// being broken reports what it must become.
    pub fn lease_get(&self, f: &OpenFileRef) -> i32 {
        let key = Self::lock_key(f);
        let id = f.borrow().id;
        let Some(l) = self
            .locks
            .inodes
            .get(&key)
            .and_then(|l| l.leases.iter().find(|l| l.file == id))
        else {
            return 2;
        };
        match l.breaking {
            Some((LeaseTarget::Unlock, _)) => 2,
            Some((LeaseTarget::Read, _)) => 0,
            None => l.write as i32,
        }
    }

    /// How many open file descriptions of `node` there are other than
    /// `except`, and how many of those are open for writing.
    fn opens_of(&self, node: Node, except: u64) -> (usize, usize) {
        let mut seen = std::collections::HashSet::new();
        let (mut opens, mut writers) = (0, 0);
        for t in self.tasks.values() {
            for (_, e) in t.files.borrow().iter() {
                let of = e.file.borrow();
                if of.id == except || of.node() != Some(node) || !seen.insert(of.id) {
                    continue;
                }
                opens += 1;
                writers += of.writable() as usize;
            }
        }
        (opens, writers)
    }

    /// F_SETLEASE on a regular file: `kind` Some(write) or None to give
    /// the lease up. EAGAIN where the file is open in a way the lease
    /// would conflict with (a read lease: any writer, this one included;
    /// a write lease: any other open), or another file holds a lease that
    /// conflicts.
    pub fn lease_set(&mut self, tid: Pid, f: &OpenFileRef, kind: Option<bool>) -> KResult<()> {
        let key = Self::lock_key(f);
        let (id, writable) = {
            let of = f.borrow();
            (of.id, of.writable())
        };
        let LockKey::Node(node) = key else {
            return Err(Errno::EINVAL);
        };
        let pid = self.task(tid)?.tgid;
        let Some(write) = kind else {
            if let Some(l) = self.locks.inodes.get_mut(&key) {
                let before = l.leases.len();
                l.leases.retain(|l| l.file != id);
                if l.leases.len() != before {
                    self.locks_changed(key);
                }
            }
            return Ok(());
        };
        let (opens, writers) = self.opens_of(node, id);
        let others = self
            .locks
            .inodes
            .get(&key)
            .map(|l| l.leases.iter().filter(|l| l.file != id).collect::<Vec<_>>())
            .unwrap_or_default();
        let busy = if write {
            opens > 0 || !others.is_empty()
        } else {
            writable || writers > 0 || others.iter().any(|l| l.write)
        };
        if busy {
            return Err(Errno::EAGAIN);
        }
        let l = self.locks.entry(key);
        let was_breaking = match l.leases.iter_mut().find(|l| l.file == id) {
            Some(mine) => {
                let was = mine.breaking.is_some();
                // Giving way to a break to read, or staying/going read.
                mine.write = write;
                mine.breaking = None;
                mine.pid = pid;
                was
            }
            None => {
                l.leases.push(Lease {
                    file: id,
                    pid,
                    write,
                    breaking: None,
                });
                false
            }
        };
        if was_breaking {
            self.locks_changed(key);
        }
        Ok(())
    }

    /// An open of `node` (for writing or not) meets the leases on it:
    /// conflicting ones are broken (their holders signalled once), expired
    /// breaks are carried out. Ok(()) when the open may go on; EWOULDBLOCK
    /// for a non-blocking open that must wait; else ERESTARTSYS with `tid`
    /// on the inode's queue until the break deadline (`block_deadline`).
    pub fn break_leases(
        &mut self,
        tid: Pid,
        node: Node,
        write: bool,
        nonblock: bool,
    ) -> KResult<()> {
        let key = LockKey::Node(node);
        let Some(l) = self.locks.inodes.get_mut(&key) else {
            return Ok(());
        };
        if l.leases.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut signal = Vec::new();
        let mut expired = false;
        let mut deadline: Option<Instant> = None;
        l.leases.retain_mut(|lease| {
            if !(write || lease.write) {
                return true;
            }
            let target = if write {
                LeaseTarget::Unlock
            } else {
                LeaseTarget::Read
            };
            match lease.breaking {
                Some((_, d)) if now >= d => {
                    // lease-break-time passed: the kernel takes it.
                    expired = true;
                    if target == LeaseTarget::Read {
                        lease.write = false;
                        lease.breaking = None;
                        return true;
                    }
                    false
                }
                Some((t, d)) => {
                    // A reader's break widened by a writer.
                    if target == LeaseTarget::Unlock && t == LeaseTarget::Read {
                        lease.breaking = Some((target, d));
                    }
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                    true
                }
                None => {
                    let d = now + Duration::from_secs(LEASE_BREAK_SECS);
                    lease.breaking = Some((target, d));
                    signal.push((lease.file, lease.pid));
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                    true
                }
            }
        });
        if expired {
            self.locks_changed(key);
        }
        for (file, pid) in signal {
            self.lease_signal(file, pid);
        }
        let Some(d) = deadline else {
            return Ok(());
        };
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        let q = self.locks.queue(key);
        self.wait_on(tid, &q, ALL_EVENTS);
        self.task_mut(tid)?.block_deadline = Some(d);
        Err(Errno::ERESTARTSYS)
    }

    /// Tells a lease holder its lease is being broken: the file's F_SETSIG
    /// signal (SIGIO by default) to its owner (F_SETOWN), or to the
    /// process that took the lease.
    fn lease_signal(&mut self, file: u64, pid: Pid) {
        let (mut owner, mut sig) = ((1, pid), SIGIO);
        'find: for t in self.tasks.values() {
            for (_, e) in t.files.borrow().iter() {
                let of = e.file.borrow();
                if of.id == file {
                    if of.owner.1 > 0 {
                        owner = of.owner;
                    }
                    if of.sig != 0 {
                        sig = of.sig;
                    }
                    break 'find;
                }
            }
        }
        let targets: Vec<Pid> = match owner {
            (2, pgid) => self
                .tasks
                .values()
                .filter(|t| t.pgid == pgid && t.is_leader() && t.is_alive())
                .map(|t| t.tgid)
                .collect(),
            // A thread owner: its process (signals go to a process here).
            (_, id) => self.tasks.get(&id).map(|t| t.tgid).into_iter().collect(),
        };
        for tgid in targets {
            self.send_to_process(
                tgid,
                SigInfo {
                    signo: sig,
                    ..Default::default()
                },
            );
        }
    }

    /// /proc/locks, in Linux's format: one line per lock, numbered.
    pub fn locks_text(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        for key in &self.locks.order {
            let Some(l) = self.locks.inodes.get(key) else {
                continue;
            };
            let (dev, ino) = match key {
                LockKey::Node(node) => (
                    self.mounts.get(node.mnt).map(|m| m.dev).unwrap_or(0),
                    node.ino,
                ),
                LockKey::Anon(_) => (0, 0),
            };
            let place = format!(
                "{:02x}:{:02x}:{}",
                (dev >> 8) & 0xfff,
                (dev & 0xff) | ((dev >> 12) & 0xfff00),
                ino
            );
            let ty = |w: bool| if w { "WRITE" } else { "READ" };
            for r in &l.ranges {
                n += 1;
                let (kind, pid) = match r.owner {
                    Owner::Posix(_) => ("POSIX ", r.pid),
                    Owner::Ofd(_) => ("OFDLCK", -1),
                };
                let end = if r.end == crate::vfs::locks::OFFSET_MAX {
                    "EOF".to_string()
                } else {
                    r.end.to_string()
                };
                out.push_str(&format!(
                    "{n}: {kind} ADVISORY  {} {pid} {place} {} {end}\n",
                    ty(r.write),
                    r.start
                ));
            }
            for f in &l.flocks {
                n += 1;
                out.push_str(&format!(
                    "{n}: FLOCK  ADVISORY  {} {} {place} 0 EOF\n",
                    ty(f.write),
                    f.pid
                ));
            }
            for s in &l.leases {
                n += 1;
                let (state, t) = match s.breaking {
                    Some((LeaseTarget::Unlock, _)) => ("BREAKING  ", "UNLCK"),
                    Some((LeaseTarget::Read, _)) => ("BREAKING  ", "READ"),
                    None => ("ACTIVE    ", ty(s.write)),
                };
                out.push_str(&format!("{n}: LEASE  {state}{t} {} {place} 0 EOF\n", s.pid));
            }
        }
        out
    }
}
