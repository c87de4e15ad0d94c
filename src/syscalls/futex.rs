//! futex(2): decoding the operations; the waiter lists and keys are
//! `kernel/futex.rs`. WAIT, WAKE, their BITSET forms, REQUEUE,
//! CMP_REQUEUE and WAKE_OP; LOCK_PI, LOCK_PI2, TRYLOCK_PI and UNLOCK_PI
//! (`kernel/futex_pi.rs`); WAIT_REQUEUE_PI and CMP_REQUEUE_PI
//! (`kernel/futex_requeue_pi.rs`); set_robust_list/get_robust_list. As in
//! Linux, the timeout of the ops that take one is read (EFAULT, EINVAL)
//! before anything else is looked at.

use std::time::Instant;

use super::{ok, Outcome, SysResult};
use crate::errno::Errno;
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_UNLOCK_PI: u64 = 7;
const FUTEX_TRYLOCK_PI: u64 = 8;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_LOCK_PI2: u64 = 13;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_WAIT_REQUEUE_PI: u64 = 11;
const FUTEX_CMP_REQUEUE_PI: u64 = 12;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// A count argument (an int): negative counts as none.
fn count(v: u64) -> usize {
    (v as u32 as i32).max(0) as usize
}

pub fn sys_futex(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let uaddr = a[0];
    let private = a[1] & FUTEX_PRIVATE_FLAG != 0;
    let op = a[1] & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if a[1] & FUTEX_CLOCK_REALTIME != 0
        && !matches!(
            op,
            FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_LOCK_PI2 | FUTEX_WAIT_REQUEUE_PI
        )
    {
        return Err(Errno::ENOSYS);
    }
    match op {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if op == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                a[5] as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            futex_wait(k, tid, a, private, bitset)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if op == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                a[5] as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let key = k.futex_key(tid, uaddr, private)?;
            ok(k.futex_wake_checked(key, count(a[2]), bitset)? as i64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (n, max) = (a[2] as u32 as i32, a[3] as u32 as i32);
            if n < 0 || max < 0 {
                return Err(Errno::EINVAL);
            }
            let key = k.futex_key(tid, uaddr, private)?;
            let key2 = k.futex_key(tid, a[4], private)?;
            if op == FUTEX_CMP_REQUEUE && k.read_u32(tid, uaddr)? != a[5] as u32 {
                return Err(Errno::EAGAIN);
            }
            // Linux returns the waiters woken plus those requeued.
            ok(k.futex_requeue_plain(key, key2, n as usize, max as usize)? as i64)
        }
        FUTEX_CMP_REQUEUE_PI => {
            let args = crate::kernel::futex_requeue_pi::CmpRequeuePi {
                uaddr,
                uaddr2: a[4],
                nr_wake: a[2] as u32 as i32,
                nr_requeue: a[3] as u32 as i32,
                cmpval: a[5] as u32,
                private,
            };
            ok(k.futex_cmp_requeue_pi(tid, args)? as i64)
        }
        FUTEX_WAIT_REQUEUE_PI => {
            let retried = k.task(tid)?.block_deadline;
            if retried.is_some_and(|d| Instant::now() >= d) {
                k.futexes.remove(tid);
                return Err(Errno::ETIMEDOUT);
            }
            if k.futex_requeued_pi(tid) {
                // Woken on the PI futex otherwise than by a handoff.
                k.futexes.remove(tid);
                return Err(Errno::EAGAIN);
            }
            k.futexes.remove(tid);
            let deadline = match (retried, a[3]) {
                (Some(d), _) => Some(d),
                (None, 0) => None,
                (None, ts) => {
                    let d = crate::syscalls::time::read_timespec_duration(k, tid, ts)?;
                    // Absolute, on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME.
                    let clock = if a[1] & FUTEX_CLOCK_REALTIME != 0 {
                        0
                    } else {
                        1
                    };
                    Some(crate::syscalls::time::clock_deadline(
                        clock,
                        d.as_secs(),
                        d.subsec_nanos().into(),
                    ))
                }
            };
            let w = k.futex_wait_requeue_pi(tid, uaddr, a[2] as u32, a[4], private, deadline)?;
            Ok(Outcome::Block(w))
        }
        FUTEX_WAKE_OP => futex_wake_op(k, tid, a, private),
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let retried = k.task(tid)?.block_deadline;
            if retried.is_some_and(|d| Instant::now() >= d) {
                k.futexes.remove(tid);
                return Err(Errno::ETIMEDOUT);
            }
            let deadline = match (retried, a[3]) {
                (Some(d), _) => Some(d),
                (None, 0) => None,
                (None, _) if op == FUTEX_TRYLOCK_PI => None,
                (None, ts) => {
                    let d = crate::syscalls::time::read_timespec_duration(k, tid, ts)?;
                    // LOCK_PI's timeout is on CLOCK_REALTIME; LOCK_PI2's on
                    // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME.
                    let clock = if op == FUTEX_LOCK_PI || a[1] & FUTEX_CLOCK_REALTIME != 0 {
                        0
                    } else {
                        1
                    };
                    Some(crate::syscalls::time::clock_deadline(
                        clock,
                        d.as_secs(),
                        d.subsec_nanos().into(),
                    ))
                }
            };
            match k.futex_lock_pi(tid, uaddr, private, op == FUTEX_TRYLOCK_PI, deadline)? {
                Some(w) => Ok(Outcome::Block(w)),
                None => ok(0),
            }
        }
        FUTEX_UNLOCK_PI => {
            k.futex_unlock_pi(tid, uaddr, private)?;
            ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// FUTEX_WAIT(_BITSET): sleeps while the word holds `a[2]`, until a wake,
/// a signal or the timeout (relative for WAIT, absolute for WAIT_BITSET).
/// A call that blocked is retried when its deadline passes: it then
/// times out whatever the word holds.
fn futex_wait(k: &mut Kernel, tid: Pid, a: [u64; 6], private: bool, bitset: u32) -> SysResult {
    let (uaddr, val, op) = (a[0], a[2] as u32, a[1] & 0x7f);
    k.futexes.remove(tid);
    let retried = k.task(tid)?.block_deadline;
    if retried.is_some_and(|d| Instant::now() >= d) {
        return Err(Errno::ETIMEDOUT);
    }
    let key = k.futex_key(tid, uaddr, private)?;
    if k.read_u32(tid, uaddr)? != val {
        return Err(Errno::EAGAIN);
    }
    let deadline = match (retried, a[3]) {
        (Some(d), _) => Some(d),
        (None, 0) => None,
        (None, ts) => {
            let d = crate::syscalls::time::read_timespec_duration(k, tid, ts)?;
            if op == FUTEX_WAIT {
                // Relative; saturates to forever.
                Some(crate::kernel::deadline::after(d))
            } else {
                let clock = if a[1] & FUTEX_CLOCK_REALTIME != 0 {
                    0
                } else {
                    1
                };
                Some(crate::syscalls::time::clock_deadline(
                    clock,
                    d.as_secs(),
                    d.subsec_nanos().into(),
                ))
            }
        }
    };
    match deadline {
        Some(d) if Instant::now() >= d => Err(Errno::ETIMEDOUT),
        Some(d) => {
            k.task_mut(tid)?.block_deadline = Some(d);
            k.futexes.enqueue(key, tid, bitset);
            Ok(Outcome::Block(Wait::FutexUntil(d)))
        }
        None => {
            k.futexes.enqueue(key, tid, bitset);
            Ok(Outcome::Block(Wait::Futex))
        }
    }
}

/// FUTEX_WAKE_OP: changes the word at `a[4]` by the encoded operation,
/// wakes `a[2]` waiters on `a[0]` and, if the old value of the second
/// word passes the encoded comparison, `a[3]` waiters on it.
fn futex_wake_op(k: &mut Kernel, tid: Pid, a: [u64; 6], private: bool) -> SysResult {
    let (uaddr, uaddr2, enc) = (a[0], a[4], a[5] as u32);
    let key = k.futex_key(tid, uaddr, private)?;
    let key2 = k.futex_key(tid, uaddr2, private)?;
    // Both 12-bit arguments are signed (Linux sign-extends them).
    let sext12 = |v: u32| ((v << 20) as i32) >> 20;
    let mut oparg = sext12((enc >> 12) & 0xfff);
    let cmparg = sext12(enc & 0xfff);
    if enc & (8 << 28) != 0 {
        // FUTEX_OP_OPARG_SHIFT; an out-of-range shift is masked, as Linux does.
        oparg = 1i32 << (oparg & 31);
    }
    let old = k.read_u32(tid, uaddr2)?;
    let arg = oparg as u32;
    let new = match (enc >> 28) & 7 {
        0 => arg,
        1 => old.wrapping_add(arg),
        2 => old | arg,
        3 => old & !arg,
        4 => old ^ arg,
        _ => return Err(Errno::ENOSYS),
    };
    let (o, c) = (old as i32, cmparg);
    let cond = match (enc >> 24) & 0xf {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return Err(Errno::ENOSYS),
    };
    k.write_u32(tid, uaddr2, new)?;
    let mut n = k.futex_wake_checked(key, count(a[2]), FUTEX_BITSET_MATCH_ANY)?;
    if cond {
        n += k.futex_wake_checked(key2, count(a[3]), FUTEX_BITSET_MATCH_ANY)?;
    }
    ok(n as i64)
}

/// set_robust_list(head, len): len must be sizeof(struct robust_list_head).
pub fn sys_set_robust_list(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[1] != crate::kernel::futex_pi::ROBUST_HEAD_LEN {
        return Err(Errno::EINVAL);
    }
    k.task_mut(tid)?.robust_list = a[0];
    ok(0)
}

/// get_robust_list(pid, *head, *len): pid 0 is the caller.
pub fn sys_get_robust_list(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let target = if pid == 0 { tid } else { pid };
    let head = k.task(target).map_err(|_| Errno::ESRCH)?.robust_list;
    if pid != 0 && pid != tid {
        let (me, them) = (&k.task(tid)?.cred, &k.task(target)?.cred);
        if me.euid != 0 && me.euid != them.uid {
            return Err(Errno::EPERM);
        }
    }
    k.write_u64(tid, a[1], head)?;
    k.write_u64(tid, a[2], crate::kernel::futex_pi::ROBUST_HEAD_LEN)?;
    ok(0)
}
