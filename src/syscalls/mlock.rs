//! mlock, mlock2, munlock, mlockall and munlockall as Linux has them: the
//! lock flag lives on VMAs (`mm/mlock.rs`); RLIMIT_MEMLOCK bounds what a
//! process without privilege locks (root, standing in for CAP_IPC_LOCK,
//! is not bound); EPERM when that limit is 0.

use super::{ok, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::mm::vma::Lock;
use crate::mm::*;

const RLIMIT_MEMLOCK: usize = 8;
const MLOCK_ONFAULT: u64 = 1;
const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

/// (RLIMIT_MEMLOCK soft limit in bytes, privileged).
fn memlock_limit(k: &Kernel, tid: Pid) -> KResult<(u64, bool)> {
    let t = k.task(tid)?;
    Ok((t.rlimits[RLIMIT_MEMLOCK].0, t.cred.euid == 0))
}

/// Linux's can_do_mlock: EPERM when the limit is 0 and unprivileged.
fn can_do_mlock(k: &Kernel, tid: Pid) -> KResult<()> {
    match memlock_limit(k, tid)? {
        (0, false) => Err(Errno::EPERM),
        _ => Ok(()),
    }
}

/// Linux's mlock_future_ok: may `bytes` more be locked by this process?
pub(crate) fn mlock_future_ok(k: &mut Kernel, tid: Pid, bytes: u64) -> KResult<bool> {
    let (limit, root) = memlock_limit(k, tid)?;
    if root {
        return Ok(true);
    }
    let locked = k.mm_of(tid)?.aspace.locked_bytes();
    Ok(locked / PAGE + bytes / PAGE <= limit / PAGE)
}

/// The page range of (addr, len) as mlock rounds it: the start down, the
/// length up to cover the last byte.
fn lock_range(addr: u64, len: u64) -> KResult<(GuestVirt, GuestVirt)> {
    let start = page_down(addr);
    let len = len
        .checked_add(addr - start)
        .and_then(page_up)
        .ok_or(Errno::ENOMEM)?;
    let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
    Ok((GuestVirt(start), GuestVirt(end)))
}

fn do_mlock(k: &mut Kernel, tid: Pid, addr: u64, len: u64, lock: Lock) -> SysResult {
    can_do_mlock(k, tid)?;
    let (start, end) = lock_range(addr, len)?;
    if start == end {
        return ok(0);
    }
    let (limit, root) = memlock_limit(k, tid)?;
    let aspace = &k.mm_of(tid)?.aspace;
    let limit_pages = limit / PAGE;
    let mut pages = (end.get() - start.get()) / PAGE + aspace.locked_bytes() / PAGE;
    if pages > limit_pages && !root {
        // Pages of the range locked already are not counted twice.
        pages -= aspace.locked_bytes_in(start, end) / PAGE;
        if pages > limit_pages {
            return Err(Errno::ENOMEM);
        }
    }
    let id = k.task(tid)?.mm;
    let Kernel { mms, frames, .. } = k;
    let aspace = &mut mms.get_mut(&id).ok_or(Errno::EFAULT)?.aspace;
    aspace.set_lock(start, end, lock)?;
    aspace.populate_locked(start, end, frames);
    ok(0)
}

pub fn sys_mlock(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_mlock(k, tid, a[0], a[1], Lock::Populated)
}

pub fn sys_mlock2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[2] & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    let lock = if a[2] & MLOCK_ONFAULT != 0 {
        Lock::OnFault
    } else {
        Lock::Populated
    };
    do_mlock(k, tid, a[0], a[1], lock)
}

pub fn sys_munlock(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (start, end) = lock_range(a[0], a[1])?;
    k.mm_of(tid)?.aspace.set_lock(start, end, Lock::None)?;
    ok(0)
}

pub fn sys_mlockall(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let flags = a[0];
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    can_do_mlock(k, tid)?;
    let (limit, root) = memlock_limit(k, tid)?;
    let lock = if flags & MCL_ONFAULT != 0 {
        Lock::OnFault
    } else {
        Lock::Populated
    };
    let id = k.task(tid)?.mm;
    let Kernel { mms, frames, .. } = k;
    let aspace = &mut mms.get_mut(&id).ok_or(Errno::EFAULT)?.aspace;
    if flags & MCL_CURRENT != 0 && !root && aspace.total_vm() / PAGE > limit / PAGE {
        return Err(Errno::ENOMEM);
    }
    aspace.lock_future = if flags & MCL_FUTURE != 0 {
        lock
    } else {
        Lock::None
    };
    if flags & MCL_CURRENT != 0 {
        aspace.set_lock_all(lock);
        aspace.populate_locked(GuestVirt(0), GuestVirt(USER_TOP), frames);
    }
    ok(0)
}

pub fn sys_munlockall(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    let aspace = &mut k.mm_of(tid)?.aspace;
    aspace.lock_future = Lock::None;
    aspace.set_lock_all(Lock::None);
    ok(0)
}
