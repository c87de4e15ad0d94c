//! futex_waitv(2) (Linux 5.16+): one sleep on up to 128 futex words, woken
//! by a FUTEX_WAKE on any of them; returns the index of the word woken.
//! The waiter lists are `kernel/futex.rs`'s, one entry per word.

use std::time::Instant;

use super::{Outcome, SysResult};
use crate::errno::Errno;
use crate::kernel::futex::FutexKey;
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;

/// FUTEX_WAITV_MAX.
const WAITV_MAX: u64 = 128;
/// sizeof(struct futex_waitv): u64 val, u64 uaddr, u32 flags, u32 __reserved.
const WAITV_SIZE: u64 = 24;
/// FUTEX2_SIZE_U32 (the only size Linux implements).
const FUTEX2_SIZE_U32: u32 = 2;
const FUTEX2_SIZE_MASK: u32 = 3;
const FUTEX2_PRIVATE: u32 = 128;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;

/// One decoded `struct futex_waitv`.
struct Entry {
    val: u32,
    uaddr: u64,
    private: bool,
}

/// Reads and checks the vector as Linux's `futex_parse_waitv` does, entry
/// by entry: EFAULT for an unreadable one, EINVAL for unknown flags, a
/// size other than 32 bits, a nonzero `__reserved` or a value that does
/// not fit in 32 bits.
fn parse(k: &mut Kernel, tid: Pid, base: u64, n: u64) -> Result<Vec<Entry>, Errno> {
    let mut out = Vec::new();
    for i in 0..n {
        let addr = i
            .checked_mul(WAITV_SIZE)
            .and_then(|o| base.checked_add(o))
            .ok_or(Errno::EFAULT)?;
        let b = k.read_user_vec(tid, addr, WAITV_SIZE as usize)?;
        let word =
            |r: std::ops::Range<usize>| b[r].iter().rev().fold(0u64, |a, &x| a << 8 | x as u64);
        let (val, uaddr) = (word(0..8), word(8..16));
        let (flags, reserved) = (word(16..20) as u32, word(20..24) as u32);
        if flags & !(FUTEX2_SIZE_MASK | FUTEX2_PRIVATE) != 0
            || reserved != 0
            || flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32
        {
            return Err(Errno::EINVAL);
        }
        let val = u32::try_from(val).map_err(|_| Errno::EINVAL)?;
        out.push(Entry {
            val,
            uaddr,
            private: flags & FUTEX2_PRIVATE != 0,
        });
    }
    Ok(out)
}

/// futex_waitv(waiters, nr_futexes, flags, timeout, clockid).
pub fn sys_futex_waitv(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (base, n, flags, ts, clockid) = (a[0], a[1] as u32 as u64, a[2] as u32, a[3], a[4] as u32);
    k.futexes.remove(tid);
    if flags != 0 || n == 0 || n > WAITV_MAX || base == 0 {
        return Err(Errno::EINVAL);
    }
    // A call that blocked is retried when its deadline passes.
    let retried = k.task(tid)?.block_deadline;
    if retried.is_some_and(|d| Instant::now() >= d) {
        return Err(Errno::ETIMEDOUT);
    }
    let deadline = match (retried, ts) {
        (Some(d), _) => Some(d),
        (None, 0) => None,
        (None, ts) => {
            if clockid != CLOCK_REALTIME && clockid != CLOCK_MONOTONIC {
                return Err(Errno::EINVAL);
            }
            // Absolute, on `clockid`.
            let d = crate::syscalls::time::read_timespec_duration(k, tid, ts)?;
            Some(crate::syscalls::time::clock_deadline(
                clockid,
                d.as_secs(),
                d.subsec_nanos().into(),
            ))
        }
    };
    let entries = parse(k, tid, base, n)?;
    // Every key first (EINVAL for a misaligned word, EFAULT for an
    // unmapped shared one), then the values in order.
    let mut keys: Vec<FutexKey> = Vec::with_capacity(entries.len());
    for e in &entries {
        keys.push(k.futex_key(tid, e.uaddr, e.private)?);
    }
    for e in &entries {
        if k.read_u32(tid, e.uaddr)? != e.val {
            return Err(Errno::EAGAIN);
        }
    }
    match deadline {
        Some(d) if Instant::now() >= d => Err(Errno::ETIMEDOUT),
        Some(d) => {
            k.task_mut(tid)?.block_deadline = Some(d);
            k.futexes.enqueue_vec(&keys, tid, u32::MAX);
            Ok(Outcome::Block(Wait::FutexUntil(d)))
        }
        None => {
            k.futexes.enqueue_vec(&keys, tid, u32::MAX);
            Ok(Outcome::Block(Wait::Futex))
        }
    }
}
