//! SysV IPC syscalls decoded onto `kernel/ipc/`: shmget/shmat/shmdt/
//! shmctl, semget/semop/semtimedop/semctl, msgget/msgsnd/msgrcv/msgctl,
//! with the x86-64 layouts of `ipc64_perm`, `shmid64_ds`, `semid64_ds`,
//! `msqid64_ds` and the *info structures.

use std::time::Instant;

use super::{ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::ipc::sem::SemOp;
use crate::kernel::ipc::{IpcPerm, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;

const SHM_LOCK: u32 = 11;
const SHM_UNLOCK: u32 = 12;
const SHM_STAT: u32 = 13;
const SHM_INFO: u32 = 14;
const SHM_STAT_ANY: u32 = 15;
const GETPID: u32 = 11;
const GETVAL: u32 = 12;
const GETALL: u32 = 13;
const GETNCNT: u32 = 14;
const GETZCNT: u32 = 15;
const SETVAL: u32 = 16;
const SETALL: u32 = 17;
const SEM_STAT: u32 = 18;
const SEM_INFO: u32 = 19;
const SEM_STAT_ANY: u32 = 20;
const MSG_STAT: u32 = 11;
const MSG_INFO: u32 = 12;
const MSG_STAT_ANY: u32 = 13;

fn int(v: u64) -> i32 {
    v as u32 as i32
}

/// A little-endian writer for the user structures.
struct Out(Vec<u8>);

impl Out {
    fn new(len: usize) -> Out {
        Out(vec![0; len])
    }
    fn u16(&mut self, at: usize, v: u16) -> &mut Self {
        self.0[at..at + 2].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    /// `struct ipc64_perm` at 0.
    fn perm(&mut self, p: &IpcPerm) -> &mut Self {
        self.u32(0, p.key as u32)
            .u32(4, p.uid)
            .u32(8, p.gid)
            .u32(12, p.cuid)
            .u32(16, p.cgid)
            .u32(20, p.mode)
            .u16(24, p.seq)
    }
}

/// (uid, gid, mode) of an IPC_SET buffer's `ipc64_perm`.
fn read_perm(k: &mut Kernel, tid: Pid, addr: u64) -> KResult<(u32, u32, u32)> {
    let mut b = [0u8; 48];
    k.read_user(tid, addr, &mut b)?;
    let w = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    Ok((w(4), w(8), w(20)))
}

pub fn sys_shmget(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    ok(k.shmget(tid, int(a[0]), a[1], a[2] as u32)? as i64)
}

pub fn sys_shmat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    ok(k.shmat(tid, int(a[0]), a[1], a[2] as u32)? as i64)
}

pub fn sys_shmdt(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    k.shmdt(tid, a[0])?;
    ok(0)
}

pub fn sys_shmctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (int(a[0]), a[1] as u32, a[2]);
    match cmd {
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let id = if cmd == IPC_STAT {
                id
            } else {
                k.shm_reap();
                k.ipc.shm.id_at_index(id)?
            };
            let s = k.shm_stat(tid, id, cmd != SHM_STAT_ANY)?;
            let mut o = Out::new(112);
            o.perm(&s.perm)
                .u64(48, s.size)
                .u64(56, s.atime as u64)
                .u64(64, s.dtime as u64)
                .u64(72, s.ctime as u64)
                .u32(80, s.cpid as u32)
                .u32(84, s.lpid as u32)
                .u64(88, s.nattch);
            k.write_user(tid, buf, &o.0)?;
            ok(if cmd == IPC_STAT { 0 } else { id as i64 })
        }
        IPC_SET => {
            let (uid, gid, mode) = read_perm(k, tid, buf)?;
            k.shm_set(tid, id, uid, gid, mode)?;
            ok(0)
        }
        IPC_RMID => {
            k.shm_rmid(tid, id)?;
            ok(0)
        }
        SHM_LOCK | SHM_UNLOCK => {
            k.shm_lock(tid, id, cmd == SHM_LOCK)?;
            ok(0)
        }
        IPC_INFO => {
            let l = k.ipc.limits;
            let mut o = Out::new(72);
            o.u64(0, l.shmmax)
                .u64(8, 1)
                .u64(16, l.shmmni)
                .u64(24, l.shmmni)
                .u64(32, l.shmall);
            k.write_user(tid, buf, &o.0)?;
            ok(k.ipc.shm.max_index() as i64)
        }
        SHM_INFO => {
            k.shm_reap();
            let (n, tot, rss) = k.shm_totals();
            let mut o = Out::new(48);
            o.u32(0, n as u32).u64(8, tot).u64(16, rss);
            k.write_user(tid, buf, &o.0)?;
            ok(k.ipc.shm.max_index() as i64)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_semget(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    ok(k.semget(tid, int(a[0]), int(a[1]), a[2] as u32)? as i64)
}

pub fn sys_semop(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_semop(k, tid, a, 0)
}

pub fn sys_semtimedop(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_semop(k, tid, a, a[3])
}

fn do_semop(k: &mut Kernel, tid: Pid, a: [u64; 6], timeout: u64) -> SysResult {
    let (id, sops, nsops) = (int(a[0]), a[1], a[2]);
    if nsops < 1 || id < 0 {
        return Err(Errno::EINVAL);
    }
    if nsops > k.ipc.limits.semopm {
        return Err(Errno::E2BIG);
    }
    let raw = k.read_user_vec(tid, sops, nsops as usize * 6)?;
    let ops: Vec<SemOp> = raw
        .chunks_exact(6)
        .map(|c| SemOp {
            num: u16::from_le_bytes([c[0], c[1]]),
            op: i16::from_le_bytes([c[2], c[3]]),
            flg: i16::from_le_bytes([c[4], c[5]]),
        })
        .collect();
    let retried = k.task(tid)?.block_deadline;
    let deadline: Option<Instant> = match (retried, timeout) {
        (Some(d), _) => Some(d),
        (None, 0) => None,
        (None, ts) => {
            let d = crate::syscalls::time::read_timespec_duration(k, tid, ts)?;
            Some(crate::kernel::deadline::after(d))
        }
    };
    match k.semop(tid, id, &ops, deadline)? {
        Some(w) => {
            k.task_mut(tid)?.block_deadline = deadline;
            Ok(Outcome::Block(w))
        }
        None => ok(0),
    }
}

pub fn sys_semctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (id, num, cmd, arg) = (int(a[0]), int(a[1]), a[2] as u32, a[3]);
    let one = |k: &Kernel, check: bool| -> KResult<(usize, Vec<crate::kernel::ipc::sem::Sem>)> {
        let (_, sems, _, _) = k.sem_read(tid, id, check)?;
        let i = usize::try_from(num).map_err(|_| Errno::EINVAL)?;
        if i >= sems.len() {
            return Err(Errno::EINVAL);
        }
        Ok((i, sems))
    };
    match cmd {
        IPC_RMID => {
            k.sem_rmid(tid, id)?;
            ok(0)
        }
        IPC_SET => {
            let (uid, gid, mode) = read_perm(k, tid, arg)?;
            k.sem_set(tid, id, uid, gid, mode)?;
            ok(0)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let id = if cmd == IPC_STAT {
                id
            } else {
                k.ipc.sem.id_at_index(id)?
            };
            let (perm, sems, otime, ctime) = k.sem_read(tid, id, cmd != SEM_STAT_ANY)?;
            let mut o = Out::new(104);
            o.perm(&perm)
                .u64(48, otime as u64)
                .u64(64, ctime as u64)
                .u64(80, sems.len() as u64);
            k.write_user(tid, arg, &o.0)?;
            ok(if cmd == IPC_STAT { 0 } else { id as i64 })
        }
        IPC_INFO | SEM_INFO => {
            let l = k.ipc.limits;
            let (usz, aem) = if cmd == SEM_INFO {
                (
                    k.ipc.sem.len() as u32,
                    k.ipc.sem.iter().map(|(_, _, s)| s.nsems() as u32).sum(),
                )
            } else {
                (20, crate::kernel::ipc::sem::SEMVMX as u32)
            };
            let mut o = Out::new(40);
            o.u32(0, l.semmns as u32)
                .u32(4, l.semmni as u32)
                .u32(8, l.semmns as u32)
                .u32(12, l.semmns as u32)
                .u32(16, l.semmsl as u32)
                .u32(20, l.semopm as u32)
                .u32(24, l.semopm as u32)
                .u32(28, usz)
                .u32(32, crate::kernel::ipc::sem::SEMVMX as u32)
                .u32(36, aem);
            k.write_user(tid, arg, &o.0)?;
            ok(k.ipc.sem.max_index() as i64)
        }
        GETVAL => {
            let (i, s) = one(k, true)?;
            ok(s[i].val as i64)
        }
        GETPID => {
            let (i, s) = one(k, true)?;
            ok(s[i].pid as i64)
        }
        GETNCNT | GETZCNT => {
            let (i, _) = one(k, true)?;
            ok(k.sem_waiters(id, i as u16, cmd == GETZCNT)?)
        }
        GETALL => {
            let (_, sems, _, _) = k.sem_read(tid, id, true)?;
            let b: Vec<u8> = sems
                .iter()
                .flat_map(|s| (s.val as u16).to_le_bytes())
                .collect();
            k.write_user(tid, arg, &b)?;
            ok(0)
        }
        SETVAL => {
            let (i, _) = one(k, false)?;
            k.sem_setvals(tid, id, i, &[arg as u32 as i32])?;
            ok(0)
        }
        SETALL => {
            let (_, sems, _, _) = k.sem_read(tid, id, false)?;
            let b = k.read_user_vec(tid, arg, sems.len() * 2)?;
            let vals: Vec<i32> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                .collect();
            k.sem_setvals(tid, id, 0, &vals)?;
            ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_msgget(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    ok(k.msgget(tid, int(a[0]), a[1] as u32)? as i64)
}

pub fn sys_msgsnd(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (id, msgp, size, flags) = (int(a[0]), a[1], a[2] as i64, a[3] as u32);
    if size < 0 || size as u64 > k.ipc.limits.msgmax || id < 0 {
        return Err(Errno::EINVAL);
    }
    let mtype = k.read_u64(tid, msgp)? as i64;
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let data = k.read_user_vec(
        tid,
        msgp.checked_add(8).ok_or(Errno::EFAULT)?,
        size as usize,
    )?;
    match k.msgsnd(tid, id, mtype, data, flags)? {
        Some(w) => Ok(Outcome::Block(w)),
        None => ok(0),
    }
}

pub fn sys_msgrcv(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (id, msgp, size, want, flags) = (int(a[0]), a[1], a[2] as i64, a[3] as i64, a[4] as u32);
    if size < 0 || id < 0 {
        return Err(Errno::EINVAL);
    }
    let max = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    match k.msgrcv(tid, id, max, want, flags)? {
        Err(w) => Ok(Outcome::Block(w)),
        Ok((t, data)) => {
            k.write_u64(tid, msgp, t as u64)?;
            k.write_user(tid, msgp.checked_add(8).ok_or(Errno::EFAULT)?, &data)?;
            ok(data.len() as i64)
        }
    }
}

pub fn sys_msgctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (int(a[0]), a[1] as u32, a[2]);
    match cmd {
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let id = if cmd == IPC_STAT {
                id
            } else {
                k.ipc.msg.id_at_index(id)?
            };
            let s = k.msg_stat(tid, id, cmd != MSG_STAT_ANY)?;
            let mut o = Out::new(120);
            o.perm(&s.perm)
                .u64(48, s.stime as u64)
                .u64(56, s.rtime as u64)
                .u64(64, s.ctime as u64)
                .u64(72, s.cbytes)
                .u64(80, s.qnum)
                .u64(88, s.qbytes)
                .u32(96, s.lspid as u32)
                .u32(100, s.lrpid as u32);
            k.write_user(tid, buf, &o.0)?;
            ok(if cmd == IPC_STAT { 0 } else { id as i64 })
        }
        IPC_SET => {
            let (uid, gid, mode) = read_perm(k, tid, buf)?;
            let qbytes = k.read_u64(tid, buf.checked_add(88).ok_or(Errno::EFAULT)?)?;
            k.msg_set(tid, id, uid, gid, mode, qbytes)?;
            ok(0)
        }
        IPC_RMID => {
            k.msg_rmid(tid, id)?;
            ok(0)
        }
        IPC_INFO | MSG_INFO => {
            let l = k.ipc.limits;
            let (pool, map, tql) = if cmd == MSG_INFO {
                k.msg_totals()
            } else {
                (l.msgmni * l.msgmnb / 1024, l.msgmnb, l.msgmnb)
            };
            let mut o = Out::new(32);
            o.u32(0, pool as u32)
                .u32(4, map as u32)
                .u32(8, l.msgmax as u32)
                .u32(12, l.msgmnb as u32)
                .u32(16, l.msgmni as u32)
                .u32(20, 16)
                .u32(24, tql as u32)
                .u16(28, 0xffff);
            k.write_user(tid, buf, &o.0)?;
            ok(k.ipc.msg.max_index() as i64)
        }
        _ => Err(Errno::EINVAL),
    }
}
