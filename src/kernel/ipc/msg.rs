//! SysV message queues. A queue holds typed messages up to msg_qbytes
//! bytes; a sender that would overflow it and a receiver that finds no
//! matching message sleep on the queue's wait queue (IPC_NOWAIT: EAGAIN /
//! ENOMSG) and retry when it changes. msgrcv's type picks the first
//! message (0), the first of that type (> 0; with MSG_EXCEPT the first of
//! another), or the first of the lowest type up to |type| (< 0). IPC_RMID
//! wakes the sleepers, whose retry answers EIDRM.

use std::collections::VecDeque;

use super::{now_secs, IpcPerm, IPC_NOWAIT, MAY_READ, MAY_WRITE};
use crate::errno::{Errno, KResult};
use crate::kernel::task::{Pid, TaskState, Wait};
use crate::kernel::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::kernel::Kernel;

pub const MSG_NOERROR: u32 = 0o10000;
pub const MSG_EXCEPT: u32 = 0o20000;
pub const MSG_COPY: u32 = 0o40000;
const NR_MSGSND: u64 = 69;
const NR_MSGRCV: u64 = 70;

pub struct MsgQueue {
    pub msgs: VecDeque<(i64, Vec<u8>)>,
    pub cbytes: u64,
    pub qbytes: u64,
    pub lspid: Pid,
    pub lrpid: Pid,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub queue: WaitQueueRef,
    sleepers: Vec<Pid>,
}

/// What IPC_STAT reports.
pub struct MsgStat {
    pub perm: IpcPerm,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub cbytes: u64,
    pub qnum: u64,
    pub qbytes: u64,
    pub lspid: Pid,
    pub lrpid: Pid,
}

/// Which message msgrcv takes from `msgs`.
pub fn pick(msgs: &VecDeque<(i64, Vec<u8>)>, want: i64, except: bool) -> Option<usize> {
    if want == 0 {
        return (!msgs.is_empty()).then_some(0);
    }
    if want > 0 {
        return msgs
            .iter()
            .position(|(t, _)| if except { *t != want } else { *t == want });
    }
    let bound = want.checked_neg().unwrap_or(i64::MAX);
    let mut best: Option<(usize, i64)> = None;
    for (i, (t, _)) in msgs.iter().enumerate() {
        if *t <= bound && best.is_none_or(|(_, b)| *t < b) {
            best = Some((i, *t));
        }
    }
    best.map(|(i, _)| i)
}

impl Kernel {
    /// msgget(2).
    pub fn msgget(&mut self, tid: Pid, key: i32, flags: u32) -> KResult<i32> {
        let cred = self.task(tid)?.cred.clone();
        let l = self.ipc.limits;
        let got = self.ipc.msg.get_or_make(
            key,
            flags,
            &cred,
            l.msgmni,
            |_, _| Ok(()),
            || {
                Ok(MsgQueue {
                    msgs: VecDeque::new(),
                    cbytes: 0,
                    qbytes: l.msgmnb,
                    lspid: 0,
                    lrpid: 0,
                    stime: 0,
                    rtime: 0,
                    ctime: now_secs(),
                    queue: WaitQueue::new(),
                    sleepers: Vec::new(),
                })
            },
        )?;
        Ok(got.id())
    }

    fn asleep_in_msg(&self, tid: Pid, id: i32) -> bool {
        self.tasks.get(&tid).is_some_and(|t| {
            matches!(t.state, TaskState::Blocked(Wait::Queue(_)))
                && t.syscall.is_some_and(|(nr, a)| {
                    (nr == NR_MSGSND || nr == NR_MSGRCV) && a[0] as u32 as i32 == id
                })
        })
    }

    /// Sleeps on queue `id`'s wait queue.
    fn msg_sleep(&mut self, tid: Pid, id: i32) -> KResult<Option<Wait>> {
        let (_, q) = self.ipc.msg.get_mut(id)?;
        q.sleepers.push(tid);
        let wq = q.queue.clone();
        self.wait_on(tid, &wq, ALL_EVENTS);
        Ok(Some(Wait::Queue(None)))
    }

    /// msgsnd(2) of a message already read from the guest.
    pub fn msgsnd(
        &mut self,
        tid: Pid,
        id: i32,
        mtype: i64,
        data: Vec<u8>,
        flags: u32,
    ) -> KResult<Option<Wait>> {
        if self.ipc.removed_under.remove(&(tid, id)) {
            return Err(Errno::EIDRM);
        }
        let cred = self.task(tid)?.cred.clone();
        let tgid = self.task(tid)?.tgid;
        let (perm, q) = self.ipc.msg.get_mut(id)?;
        q.sleepers.retain(|&t| t != tid);
        perm.check(&cred, MAY_WRITE)?;
        let len = data.len() as u64;
        let fits = q.cbytes + len <= q.qbytes && (q.msgs.len() as u64) < q.qbytes;
        if !fits {
            if flags & IPC_NOWAIT != 0 {
                return Err(Errno::EAGAIN);
            }
            return self.msg_sleep(tid, id);
        }
        q.cbytes += len;
        q.msgs.push_back((mtype, data));
        q.lspid = tgid;
        q.stime = now_secs();
        let wq = q.queue.clone();
        self.wake_queue(&wq, ALL_EVENTS);
        Ok(None)
    }

    /// msgrcv(2): Ok(Ok((type, bytes))) with a message, Ok(Err(wait)) to
    /// sleep.
    pub fn msgrcv(
        &mut self,
        tid: Pid,
        id: i32,
        max: usize,
        want: i64,
        flags: u32,
    ) -> KResult<Result<(i64, Vec<u8>), Wait>> {
        if self.ipc.removed_under.remove(&(tid, id)) {
            return Err(Errno::EIDRM);
        }
        if flags & MSG_COPY != 0 {
            // MSG_COPY needs CONFIG_CHECKPOINT_RESTORE; unsupported here.
            return Err(Errno::ENOSYS);
        }
        let cred = self.task(tid)?.cred.clone();
        let tgid = self.task(tid)?.tgid;
        let (perm, q) = self.ipc.msg.get_mut(id)?;
        q.sleepers.retain(|&t| t != tid);
        perm.check(&cred, MAY_READ)?;
        let Some(i) = pick(&q.msgs, want, flags & MSG_EXCEPT != 0) else {
            if flags & IPC_NOWAIT != 0 {
                return Err(Errno::ENOMSG);
            }
            return match self.msg_sleep(tid, id)? {
                Some(w) => Ok(Err(w)),
                None => Err(Errno::ENOMSG),
            };
        };
        if q.msgs[i].1.len() > max && flags & MSG_NOERROR == 0 {
            return Err(Errno::E2BIG);
        }
        let (t, mut data) = q.msgs.remove(i).expect("picked");
        q.cbytes -= data.len() as u64;
        data.truncate(max);
        q.lrpid = tgid;
        q.rtime = now_secs();
        let wq = q.queue.clone();
        self.wake_queue(&wq, ALL_EVENTS);
        Ok(Ok((t, data)))
    }

    pub fn msg_stat(&self, tid: Pid, id: i32, check: bool) -> KResult<MsgStat> {
        let cred = self.task(tid)?.cred.clone();
        let (p, q) = self.ipc.msg.get(id)?;
        if check {
            p.check(&cred, MAY_READ)?;
        }
        Ok(MsgStat {
            perm: *p,
            stime: q.stime,
            rtime: q.rtime,
            ctime: q.ctime,
            cbytes: q.cbytes,
            qnum: q.msgs.len() as u64,
            qbytes: q.qbytes,
            lspid: q.lspid,
            lrpid: q.lrpid,
        })
    }

    /// IPC_SET: owner, mode and msg_qbytes (raising it past msgmnb needs
    /// root: EPERM).
    pub fn msg_set(
        &mut self,
        tid: Pid,
        id: i32,
        uid: u32,
        gid: u32,
        mode: u32,
        qbytes: u64,
    ) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        let mnb = self.ipc.limits.msgmnb;
        let (p, q) = self.ipc.msg.get_mut(id)?;
        p.may_change(&cred)?;
        if qbytes > mnb && qbytes > q.qbytes && cred.euid != 0 {
            return Err(Errno::EPERM);
        }
        p.set(uid, gid, mode);
        q.qbytes = qbytes;
        q.ctime = now_secs();
        let wq = q.queue.clone();
        self.wake_queue(&wq, ALL_EVENTS);
        Ok(())
    }

    /// IPC_RMID: the queue and its messages go; sleepers wake to EIDRM.
    pub fn msg_rmid(&mut self, tid: Pid, id: i32) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        self.ipc.msg.get(id)?.0.may_change(&cred)?;
        let (_, q) = self.ipc.msg.remove(id).ok_or(Errno::EINVAL)?;
        for &t in &q.sleepers {
            if self.asleep_in_msg(t, id) {
                self.ipc.removed_under.insert((t, id));
            }
        }
        self.wake_queue(&q.queue, ALL_EVENTS);
        Ok(())
    }

    /// (queues, messages, bytes) for MSG_INFO.
    pub fn msg_totals(&self) -> (u64, u64, u64) {
        let mut t = (0, 0, 0);
        for (_, _, q) in self.ipc.msg.iter() {
            t.0 += 1;
            t.1 += q.msgs.len() as u64;
            t.2 += q.cbytes;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgrcv_picks_by_type_as_linux() {
        let q: VecDeque<(i64, Vec<u8>)> = [3, 1, 2, 1, 5].iter().map(|&t| (t, vec![])).collect();
        assert_eq!(pick(&q, 0, false), Some(0));
        assert_eq!(pick(&q, 1, false), Some(1));
        assert_eq!(pick(&q, 3, true), Some(1));
        assert_eq!(pick(&q, 4, false), None);
        // The lowest type up to |type|, the first of those.
        assert_eq!(pick(&q, -2, false), Some(1));
        assert_eq!(pick(&q, -10, false), Some(1));
        assert_eq!(pick(&q, i64::MIN, false), Some(1));
        assert_eq!(pick(&VecDeque::new(), 0, false), None);
    }
}
