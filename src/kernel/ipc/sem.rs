//! SysV semaphore sets. semop applies all of its operations or none: a
//! call that cannot go on sleeps on the set's wait queue and retries from
//! the start whenever a value of the set changes (IPC_NOWAIT: EAGAIN;
//! semtimedop's timeout: EAGAIN). IPC_RMID wakes the sleepers, whose retry
//! answers EIDRM. SEM_UNDO adjustments are kept per process and set and
//! applied when the process exits (`sem_exit`); SETVAL/SETALL clear them
//! for the semaphores they set, as on Linux.

use std::time::Instant;

use super::{now_secs, IpcPerm, IPC_NOWAIT, MAY_READ, MAY_WRITE};
use crate::errno::{Errno, KResult};
use crate::kernel::task::{Pid, TaskState, Wait};
use crate::kernel::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::kernel::Kernel;

/// The largest semaphore value.
pub const SEMVMX: i32 = 32767;
pub const SEM_UNDO: i16 = 0x1000;
const NR_SEMOP: u64 = 65;
const NR_SEMTIMEDOP: u64 = 220;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sem {
    pub val: i32,
    /// The process of the last operation.
    pub pid: Pid,
}

/// One `struct sembuf`.
#[derive(Debug, Clone, Copy)]
pub struct SemOp {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

pub struct SemSet {
    pub sems: Vec<Sem>,
    pub otime: i64,
    pub ctime: i64,
    pub queue: WaitQueueRef,
    /// Tasks asleep in semop: (task, semaphore, waits for zero).
    sleepers: Vec<(Pid, u16, bool)>,
}

impl Kernel {
    /// semget(2).
    pub fn semget(&mut self, tid: Pid, key: i32, nsems: i32, flags: u32) -> KResult<i32> {
        let l = self.ipc.limits;
        if nsems < 0 || nsems as u64 > l.semmsl {
            return Err(Errno::EINVAL);
        }
        let cred = self.task(tid)?.cred.clone();
        let total: u64 = self
            .ipc
            .sem
            .iter()
            .map(|(_, _, s)| s.sems.len() as u64)
            .sum();
        let got = self.ipc.sem.get_or_make(
            key,
            flags,
            &cred,
            l.semmni,
            |_, s| {
                if (nsems as usize) > s.sems.len() {
                    Err(Errno::EINVAL)
                } else {
                    Ok(())
                }
            },
            || {
                if nsems == 0 {
                    return Err(Errno::EINVAL);
                }
                if total + nsems as u64 > l.semmns {
                    return Err(Errno::ENOSPC);
                }
                Ok(SemSet {
                    sems: vec![Sem::default(); nsems as usize],
                    otime: 0,
                    ctime: now_secs(),
                    queue: WaitQueue::new(),
                    sleepers: Vec::new(),
                })
            },
        )?;
        Ok(got.id())
    }

    /// Is `tid` asleep in semop on set `id`?
    fn asleep_in_semop(&self, tid: Pid, id: i32) -> bool {
        self.tasks.get(&tid).is_some_and(|t| {
            matches!(t.state, TaskState::Blocked(Wait::Queue(_)))
                && t.syscall.is_some_and(|(nr, a)| {
                    (nr == NR_SEMOP || nr == NR_SEMTIMEDOP) && a[0] as u32 as i32 == id
                })
        })
    }

    /// semop/semtimedop: all of `ops` at once, or a sleep (until
    /// `deadline`, when there is one).
    pub fn semop(
        &mut self,
        tid: Pid,
        id: i32,
        ops: &[SemOp],
        deadline: Option<Instant>,
    ) -> KResult<Option<Wait>> {
        if self.ipc.removed_under.remove(&(tid, id)) {
            return Err(Errno::EIDRM);
        }
        let cred = self.task(tid)?.cred.clone();
        let tgid = self.task(tid)?.tgid;
        let (perm, set) = self.ipc.sem.get_mut(id)?;
        set.sleepers.retain(|s| s.0 != tid);
        let n = set.sems.len();
        if ops.iter().any(|o| o.num as usize >= n) {
            return Err(Errno::EFBIG);
        }
        let alter = ops.iter().any(|o| o.op != 0);
        perm.check(&cred, if alter { MAY_WRITE } else { MAY_READ })?;
        let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
        for o in ops {
            let v = &mut vals[o.num as usize];
            let blocked = match o.op {
                0 => *v != 0,
                op if op > 0 => {
                    if *v + op as i32 > SEMVMX {
                        return Err(Errno::ERANGE);
                    }
                    *v += op as i32;
                    false
                }
                op => {
                    if *v + (op as i32) < 0 {
                        true
                    } else {
                        *v += op as i32;
                        false
                    }
                }
            };
            if blocked {
                if o.flg as u32 & IPC_NOWAIT != 0 {
                    return Err(Errno::EAGAIN);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Errno::EAGAIN);
                }
                set.sleepers.push((tid, o.num, o.op == 0));
                let q = set.queue.clone();
                self.wait_on(tid, &q, ALL_EVENTS);
                return Ok(Some(Wait::Queue(deadline)));
            }
        }
        // SEM_UNDO: the exit-time adjustment cancels the change.
        let undo: Vec<&SemOp> = ops.iter().filter(|o| o.flg & SEM_UNDO != 0).collect();
        if !undo.is_empty() {
            let adj = self
                .ipc
                .sem_undo
                .entry((tgid, id))
                .or_insert_with(|| vec![0; n]);
            let mut next = adj.clone();
            for o in &undo {
                let a = &mut next[o.num as usize];
                *a -= o.op as i32;
                if a.abs() > SEMVMX {
                    return Err(Errno::ERANGE);
                }
            }
            *adj = next;
        }
        let (_, set) = self.ipc.sem.get_mut(id)?;
        let mut changed = false;
        for o in ops {
            set.sems[o.num as usize].pid = tgid;
        }
        for (s, v) in set.sems.iter_mut().zip(vals) {
            changed |= s.val != v;
            s.val = v;
        }
        set.otime = now_secs();
        if changed {
            let q = set.queue.clone();
            self.wake_queue(&q, ALL_EVENTS);
        }
        Ok(None)
    }

    /// GETNCNT (`zero` false) / GETZCNT: tasks asleep on semaphore `num`.
    pub fn sem_waiters(&self, id: i32, num: u16, zero: bool) -> KResult<i64> {
        let (_, set) = self.ipc.sem.get(id)?;
        Ok(set
            .sleepers
            .iter()
            .filter(|&&(t, n, z)| n == num && z == zero && self.asleep_in_semop(t, id))
            .count() as i64)
    }

    /// SETVAL/SETALL: new values (each checked against SEMVMX); clears the
    /// undo adjustments of the semaphores set; wakes sleepers.
    pub fn sem_setvals(&mut self, tid: Pid, id: i32, first: usize, vals: &[i32]) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        let tgid = self.task(tid)?.tgid;
        let (perm, set) = self.ipc.sem.get_mut(id)?;
        perm.check(&cred, MAY_WRITE)?;
        if first + vals.len() > set.sems.len() {
            return Err(Errno::EINVAL);
        }
        if vals.iter().any(|&v| !(0..=SEMVMX).contains(&v)) {
            return Err(Errno::ERANGE);
        }
        for (i, &v) in vals.iter().enumerate() {
            set.sems[first + i] = Sem { val: v, pid: tgid };
        }
        set.ctime = now_secs();
        let q = set.queue.clone();
        for ((_, sid), adj) in self.ipc.sem_undo.iter_mut() {
            if *sid == id {
                for a in adj.iter_mut().skip(first).take(vals.len()) {
                    *a = 0;
                }
            }
        }
        self.wake_queue(&q, ALL_EVENTS);
        Ok(())
    }

    /// The set's semaphores and perm, for GETVAL/GETALL/GETPID/IPC_STAT.
    pub fn sem_read(
        &self,
        tid: Pid,
        id: i32,
        check: bool,
    ) -> KResult<(IpcPerm, Vec<Sem>, i64, i64)> {
        let cred = self.task(tid)?.cred.clone();
        let (perm, set) = self.ipc.sem.get(id)?;
        if check {
            perm.check(&cred, MAY_READ)?;
        }
        Ok((*perm, set.sems.clone(), set.otime, set.ctime))
    }

    /// IPC_SET.
    pub fn sem_set(&mut self, tid: Pid, id: i32, uid: u32, gid: u32, mode: u32) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        let (p, s) = self.ipc.sem.get_mut(id)?;
        p.may_change(&cred)?;
        p.set(uid, gid, mode);
        s.ctime = now_secs();
        Ok(())
    }

    /// IPC_RMID: the set goes; its sleepers wake to EIDRM.
    pub fn sem_rmid(&mut self, tid: Pid, id: i32) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        self.ipc.sem.get(id)?.0.may_change(&cred)?;
        let (_, set) = self.ipc.sem.remove(id).ok_or(Errno::EINVAL)?;
        for &(t, _, _) in &set.sleepers {
            if self.asleep_in_semop(t, id) {
                self.ipc.removed_under.insert((t, id));
            }
        }
        self.ipc.sem_undo.retain(|(_, sid), _| *sid != id);
        self.wake_queue(&set.queue, ALL_EVENTS);
        Ok(())
    }

    /// Process `tgid` exits: its SEM_UNDO adjustments are applied (each
    /// value kept within 0..=SEMVMX, as Linux clamps it).
    pub fn sem_exit(&mut self, tgid: Pid) {
        let mine: Vec<(i32, Vec<i32>)> = self
            .ipc
            .sem_undo
            .range((tgid, i32::MIN)..=(tgid, i32::MAX))
            .map(|(&(_, id), adj)| (id, adj.clone()))
            .collect();
        for (id, adj) in mine {
            self.ipc.sem_undo.remove(&(tgid, id));
            let Ok((_, set)) = self.ipc.sem.get_mut(id) else {
                continue;
            };
            let mut changed = false;
            for (s, a) in set.sems.iter_mut().zip(adj) {
                if a != 0 {
                    s.val = (s.val + a).clamp(0, SEMVMX);
                    s.pid = tgid;
                    changed = true;
                }
            }
            if changed {
                set.otime = now_secs();
                let q = set.queue.clone();
                self.wake_queue(&q, ALL_EVENTS);
            }
        }
        self.ipc.removed_under.retain(|(t, _)| *t != tgid);
    }
}

impl SemSet {
    pub fn nsems(&self) -> usize {
        self.sems.len()
    }
}
