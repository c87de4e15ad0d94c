//! poll, ppoll, select, pselect6: readiness of many fds, sleeping until
//! one is ready, the timeout passes, or a signal comes.
//!
//! ppoll and pselect6 take a signal mask that holds for the duration of
//! the call (Linux's `set_user_sigmask`): the caller's mask is kept in
//! `Task::saved_mask` and comes back when the call returns, or, when a
//! handler interrupts it (EINTR), once the handler's frame is built, so
//! the handler runs with the call's mask and sigreturn restores the
//! caller's (`restore_saved_sigmask_unless(ret == -EINTR)`).

use std::time::{Duration, Instant};

use super::{ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::deadline;
use crate::kernel::files::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};
use crate::kernel::signal::SigSet;
use crate::kernel::task::{Pid, Wait};
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::vfs::file::ops_of;

/// The wait queues of the files a poll/select looks at, each with the
/// events it waits for there.
#[derive(Default)]
pub(crate) struct Waits {
    pub(crate) queues: Vec<(WaitQueueRef, u32)>,
}

/// Sleeps until a file's queue is woken, the timeout passes (None:
/// forever) or a signal comes; Return(0) once the timeout has passed.
pub(crate) fn wait_for(
    k: &mut Kernel,
    tid: Pid,
    timeout: Option<Duration>,
    waits: Waits,
) -> KResult<Option<Outcome>> {
    let deadline = match timeout {
        Some(d) if d.is_zero() => return Ok(Some(Outcome::Return(0))),
        Some(d) => {
            let t = k.task_mut(tid)?;
            let now = Instant::now();
            let deadline = *t.block_deadline.get_or_insert_with(|| deadline::after(d));
            if now >= deadline {
                return Ok(Some(Outcome::Return(0)));
            }
            Some(deadline)
        }
        None => None,
    };
    for (q, events) in &waits.queues {
        k.wait_on(tid, q, *events);
    }
    Ok(Some(Outcome::Block(Wait::Queue(deadline))))
}

/// poll bits of `fd` for `events` (POLLNVAL if it is not open), noting
/// its wait queue in `waits`.
fn revents(k: &mut Kernel, tid: Pid, fd: i32, events: u32, waits: &mut Waits) -> u32 {
    let f = match k.task(tid).and_then(|t| t.files.borrow().file(fd)) {
        Ok(f) => f,
        Err(_) => return POLLNVAL,
    };
    let ops = ops_of(&f);
    let want = events | POLLERR | POLLHUP;
    let r = ops.poll(k) & want;
    // A kind without a queue never changes its answer: nothing to wait on.
    match (ops.wait_queue(k), ops.as_epoll()) {
        (Some(q), _) => waits.queues.push((q, want)),
        (None, Some(ep)) => ep.wait_queues(k, &mut waits.queues),
        (None, None) => {}
    }
    r
}

pub(crate) fn timespec_timeout(k: &mut Kernel, tid: Pid, p: u64) -> KResult<Option<Duration>> {
    if p == 0 {
        return Ok(None);
    }
    Ok(Some(crate::syscalls::time::read_timespec_duration(
        k, tid, p,
    )?))
}

fn do_poll(k: &mut Kernel, tid: Pid, fds: u64, nfds: u64, timeout: Option<Duration>) -> SysResult {
    if nfds > 4096 {
        return Err(Errno::EINVAL);
    }
    let raw = k.read_user_vec(tid, fds, nfds as usize * 8)?;
    let mut out = raw.clone();
    let mut ready = 0;
    let mut waits = Waits::default();
    for i in 0..nfds as usize {
        let fd = i32::from_le_bytes(raw[i * 8..i * 8 + 4].try_into().expect("4"));
        let ev = u16::from_le_bytes(raw[i * 8 + 4..i * 8 + 6].try_into().expect("2")) as u32;
        let re = if fd < 0 {
            0
        } else {
            revents(k, tid, fd, ev, &mut waits)
        };
        out[i * 8 + 6..i * 8 + 8].copy_from_slice(&(re as u16).to_le_bytes());
        if re != 0 {
            ready += 1;
        }
    }
    if ready > 0 {
        k.write_user(tid, fds, &out)?;
        return ok(ready);
    }
    if timeout != Some(Duration::ZERO) {
        interrupted(k, tid)?;
    }
    match wait_for(k, tid, timeout, waits)? {
        Some(Outcome::Return(_)) => {
            k.write_user(tid, fds, &out)?;
            ok(0)
        }
        Some(o) => Ok(o),
        None => ok(0),
    }
}

pub fn sys_poll(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let ms = a[2] as i32;
    let timeout = (ms >= 0).then(|| Duration::from_millis(ms as u64));
    do_poll(k, tid, a[0], a[1], timeout)
}

pub fn sys_ppoll(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let timeout = timespec_timeout(k, tid, a[2])?;
    let masked = apply_call_mask(k, tid, a[3], a[4])?;
    let r = do_poll(k, tid, a[0], a[1], timeout);
    finish_call_mask(k, tid, masked, r)
}

/// Reads the call's signal mask (`ptr` 0: none; `size` must be 8) and
/// puts it in force, saving the caller's mask unless a retry of the same
/// call already did. True if a mask was applied.
pub(crate) fn apply_call_mask(k: &mut Kernel, tid: Pid, ptr: u64, size: u64) -> KResult<bool> {
    if ptr == 0 {
        return Ok(false);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = SigSet(k.read_u64(tid, ptr)?).sanitized();
    let t = k.task_mut(tid)?;
    if t.saved_mask.is_none() {
        t.saved_mask = Some(t.sigmask);
    }
    t.sigmask = mask;
    Ok(true)
}

/// After a masked wait: a call that blocks keeps the call's mask; EINTR
/// keeps it until the handler's frame is built; any other result gives
/// the caller's mask back at once (a signal only the call's mask let
/// through stays pending).
pub(crate) fn finish_call_mask(k: &mut Kernel, tid: Pid, masked: bool, r: SysResult) -> SysResult {
    if !masked {
        return r;
    }
    let keep = matches!(r, Ok(Outcome::Block(_)) | Err(Errno::EINTR));
    if !keep {
        if let Ok(t) = k.task_mut(tid) {
            if let Some(m) = t.saved_mask.take() {
                t.sigmask = m;
            }
        }
    }
    r
}

/// Nothing was ready: a signal the (possibly temporary) mask lets through
/// ends the call with EINTR at once instead of sleeping.
pub(crate) fn interrupted(k: &Kernel, tid: Pid) -> KResult<()> {
    if k.has_deliverable_signal(tid) {
        return Err(Errno::EINTR);
    }
    Ok(())
}

/// The guest address of word `w` of an fd_set at `base` (EFAULT where it
/// would wrap past the end of the address space).
fn fd_set_word(base: u64, w: usize) -> KResult<u64> {
    base.checked_add(w as u64 * 8).ok_or(Errno::EFAULT)
}

fn do_select(k: &mut Kernel, tid: Pid, a: [u64; 6], timeout: Option<Duration>) -> SysResult {
    let n = a[0] as i64;
    if !(0..=1024).contains(&n) {
        return Err(Errno::EINVAL);
    }
    let words = (n as usize).div_ceil(64);
    let mut sets = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (i, set) in sets.iter_mut().enumerate() {
        if a[i + 1] != 0 {
            for (w, word) in set.iter_mut().enumerate() {
                *word = k.read_u64(tid, fd_set_word(a[i + 1], w)?)?;
            }
        }
    }
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut ready = 0;
    let mut waits = Waits::default();
    for fd in 0..n as usize {
        let (w, b) = (fd / 64, 1u64 << (fd % 64));
        let want = [
            sets[0][w] & b != 0,
            sets[1][w] & b != 0,
            sets[2][w] & b != 0,
        ];
        if !want.iter().any(|x| *x) {
            continue;
        }
        let mask = [POLLIN, POLLOUT, POLLPRI]
            .into_iter()
            .zip(want)
            .filter(|(_, w)| *w)
            .fold(0, |m, (ev, _)| m | ev);
        let re = revents(k, tid, fd as i32, mask, &mut waits);
        if re & POLLNVAL != 0 {
            return Err(Errno::EBADF);
        }
        let got = [
            re & (POLLIN | POLLHUP | POLLERR) != 0,
            re & (POLLOUT | POLLERR) != 0,
            re & POLLPRI != 0,
        ];
        for i in 0..3 {
            if want[i] && got[i] {
                out[i][w] |= b;
                ready += 1;
            }
        }
    }
    if ready == 0 {
        if timeout != Some(Duration::ZERO) {
            interrupted(k, tid)?;
        }
        match wait_for(k, tid, timeout, waits)? {
            Some(Outcome::Return(_)) | None => {}
            Some(o) => return Ok(o),
        }
    }
    for (i, set) in out.iter().enumerate() {
        if a[i + 1] != 0 {
            for (w, word) in set.iter().enumerate() {
                k.write_u64(tid, fd_set_word(a[i + 1], w)?, *word)?;
            }
        }
    }
    ok(ready)
}

pub fn sys_select(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let timeout = if a[4] == 0 {
        None
    } else {
        let sec = k.read_u64(tid, a[4])? as i64;
        let usec = k.read_u64(tid, a[4].checked_add(8).ok_or(Errno::EFAULT)?)? as i64;
        Some(deadline::select_timeval(sec, usec)?)
    };
    do_select(k, tid, a, timeout)
}

pub fn sys_pselect6(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let timeout = timespec_timeout(k, tid, a[4])?;
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let (ss, len) = if a[5] == 0 {
        (0, 0)
    } else {
        (
            k.read_u64(tid, a[5])?,
            k.read_u64(tid, a[5].checked_add(8).ok_or(Errno::EFAULT)?)?,
        )
    };
    let masked = apply_call_mask(k, tid, ss, len)?;
    let r = do_select(k, tid, a, timeout);
    finish_call_mask(k, tid, masked, r)
}

#[cfg(test)]
mod fd_set_tests {
    use super::*;

    #[test]
    fn an_fd_set_at_the_top_of_the_address_space_is_efault_not_a_wrap() {
        assert_eq!(fd_set_word(0x1000, 15), Ok(0x1000 + 120));
        assert_eq!(fd_set_word(u64::MAX - 7, 0), Ok(u64::MAX - 7));
        assert_eq!(fd_set_word(u64::MAX - 7, 1), Err(Errno::EFAULT));
    }
}
