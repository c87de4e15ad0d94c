//! timerfd: a timer as a file (timerfd_create(2)). It counts expirations;
//! a read takes the count (8 bytes) and waits while it is 0; pollers see
//! POLLIN while it is above 0.
//!
//! The count is computed from the clock when asked (`TimerFd::catch_up`):
//! an armed timer holds its next expiry as an `Instant`, and each look
//! adds the expirations that passed since. The kernel's deadline queue
//! holds one `TimerKey::TimerFd(id)` entry while the count is 0 and the
//! timer armed, only to wake readers and pollers at the expiry; once the
//! count is above 0 nothing more can change for them until a read, so a
//! fast periodic timer nobody reads costs no wake-ups.
//!
//! Clocks: CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME and their
//! _ALARM variants, all the host's. An absolute CLOCK_REALTIME expiry is
//! turned into an `Instant` when set; the guest cannot set the clock, so
//! TFD_TIMER_CANCEL_ON_SET is accepted and never fires (no ECANCELED).
//!
//! Everything a timerfd is lives here: the kind and its three syscalls.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{kind, POLLIN, POLLRDNORM};
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::deadline;
use crate::kernel::task::Pid;
use crate::kernel::timers::TimerKey;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef};
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{ops_of, FileDescription, Io, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::vfs::OpenFile;

pub const TFD_TIMER_ABSTIME: u64 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

/// The clocks a timerfd may use (Linux ids): realtime, monotonic,
/// boottime, realtime alarm, boottime alarm.
fn host_clock_of(clockid: u64) -> KResult<u32> {
    match clockid {
        0 | 8 => Ok(0),
        1 => Ok(1),
        7 | 9 => Ok(7),
        _ => Err(Errno::EINVAL),
    }
}

#[derive(Clone, Copy, Default)]
struct State {
    /// The next expiry; None: disarmed.
    next: Option<Instant>,
    /// Period (zero: one-shot).
    interval: Duration,
    /// Expirations not read yet.
    ticks: u64,
}

pub struct TimerFd {
    id: u64,
    /// The host clock (0 realtime, 1 monotonic, 7 boottime).
    clock: u32,
    state: Cell<State>,
    waitq: WaitQueueRef,
}

/// Expirations of a timer due at `next` with period `iv` that passed by
/// `now`, and its following expiry (None: a one-shot that expired).
fn expirations(next: Instant, iv: Duration, now: Instant) -> (u64, Option<Instant>) {
    if now < next {
        return (0, Some(next));
    }
    if iv.is_zero() {
        return (1, None);
    }
    let late = (now - next).as_nanos();
    let n = late / iv.as_nanos() + 1;
    let step = iv.as_nanos().saturating_mul(n).min(u64::MAX as u128) as u64;
    (
        u64::try_from(n).unwrap_or(u64::MAX),
        Some(deadline::later(next, Duration::from_nanos(step))),
    )
}

impl TimerFd {
    /// Adds the expirations that passed by now to the count.
    fn catch_up(&self) -> State {
        let mut s = self.state.get();
        if let Some(next) = s.next {
            let (n, following) = expirations(next, s.interval, Instant::now());
            s.ticks = s.ticks.saturating_add(n);
            s.next = following;
            self.state.set(s);
        }
        s
    }

    /// Queues the deadline that wakes waiters, when one can change
    /// anything (armed, nothing to read yet); else drops it.
    fn schedule(&self, k: &mut Kernel) {
        let s = self.state.get();
        match s.next {
            Some(at) if s.ticks == 0 => k.timers.set(TimerKey::TimerFd(self.id), at),
            _ => k.timers.cancel(TimerKey::TimerFd(self.id)),
        }
    }

    /// (time left, interval) as timerfd_gettime shows them.
    fn current(&self) -> (Duration, Duration) {
        let s = self.catch_up();
        let left = s.next.map_or(Duration::ZERO, |n| {
            n.saturating_duration_since(Instant::now())
        });
        // An armed timer due right now shows 1 ns left, never 0 (which
        // would read as disarmed).
        let left = if s.next.is_some() && left.is_zero() {
            Duration::from_nanos(1)
        } else {
            left
        };
        (left, s.interval)
    }
}

impl FileDescription for TimerFd {
    fn read(&self, k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut s = self.catch_up();
        if s.ticks == 0 {
            self.schedule(k);
            return Err(Errno::EAGAIN);
        }
        buf[..8].copy_from_slice(&s.ticks.to_le_bytes());
        s.ticks = 0;
        self.state.set(s);
        self.schedule(k);
        Ok(8)
    }

    fn poll(&self, _k: &mut Kernel) -> u32 {
        if self.catch_up().ticks > 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.waitq.clone())
    }

    /// noop_llseek, as Linux's timerfd.
    fn seek(&self, _k: &mut Kernel, cur: u64, _off: i64, _whence: u64) -> KResult<u64> {
        Ok(cur)
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(super::anon_inode_stat())
    }

    /// As Linux's `timerfd_show`.
    fn fdinfo(&self, _k: &mut Kernel) -> String {
        let (v, i) = self.current();
        let clockid = match self.clock {
            0 => 0,
            7 => 7,
            _ => 1,
        };
        format!(
            "clockid: {clockid}\nticks: {}\nsettime flags: 00\nit_value: ({}, {})\nit_interval: ({}, {})\n",
            self.state.get().ticks,
            v.as_secs(),
            v.subsec_nanos(),
            i.as_secs(),
            i.subsec_nanos()
        )
    }

    fn release(&self, k: &mut Kernel) {
        k.timers.cancel(TimerKey::TimerFd(self.id));
        k.evhub.timerfds.remove(&self.id);
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Kernel {
    /// A timerfd's deadline came: its readers and pollers look again.
    pub fn fire_timerfd(&mut self, id: u64) {
        let Some(tf) = self.evhub.timerfds.get(&id).and_then(|w| w.upgrade()) else {
            self.evhub.timerfds.remove(&id);
            return;
        };
        if tf.catch_up().ticks > 0 {
            self.wake_queue(&tf.waitq, POLLIN);
        }
        tf.schedule(self);
    }
}

/// timerfd_create(clockid, flags).
pub fn sys_timerfd_create(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    let clock = host_clock_of(a[0])?;
    let flags = u32::try_from(a[1]).map_err(|_| Errno::EINVAL)?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let id = k.evhub.timer_id();
    let tf = Rc::new(TimerFd {
        id,
        clock,
        state: Cell::new(State::default()),
        waitq: WaitQueue::new(),
    });
    k.evhub.timerfds.insert(id, Rc::downgrade(&tf));
    let file = OpenFile::new(
        tf,
        O_RDWR | (flags & O_NONBLOCK),
        b"anon_inode:[timerfd]".to_vec(),
    );
    let fd = k
        .task(tid)?
        .files
        .borrow_mut()
        .install(file, flags & O_CLOEXEC != 0, 0)?;
    ok(fd as i64)
}

/// The timerfd behind `fd`: EBADF if none is open, EINVAL if it is
/// another kind.
fn timerfd_of(k: &Kernel, tid: Pid, fd: u64) -> KResult<Rc<dyn FileDescription>> {
    let f = k.task(tid)?.files.borrow().file(fd as u32 as i32)?;
    let ops = ops_of(&f);
    if kind::<TimerFd>(&ops).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(ops)
}

/// A guest `struct itimerspec` (interval, then value).
pub(crate) fn read_itimerspec(k: &mut Kernel, tid: Pid, p: u64) -> KResult<(Duration, (i64, i64))> {
    let b = k.read_user_vec(tid, p, 32)?;
    let g = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let interval = deadline::timespec(g(0), g(8))?;
    deadline::timespec(g(16), g(24))?;
    Ok((interval, (g(16), g(24))))
}

pub(crate) fn write_itimerspec(
    k: &mut Kernel,
    tid: Pid,
    p: u64,
    value: Duration,
    interval: Duration,
) -> KResult<()> {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&interval.as_secs().to_le_bytes());
    b[8..16].copy_from_slice(&u64::from(interval.subsec_nanos()).to_le_bytes());
    b[16..24].copy_from_slice(&value.as_secs().to_le_bytes());
    b[24..32].copy_from_slice(&u64::from(value.subsec_nanos()).to_le_bytes());
    k.write_user(tid, p, &b)
}

/// timerfd_settime(fd, flags, new_value, old_value).
pub fn sys_timerfd_settime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let flags = a[1];
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = timerfd_of(k, tid, a[0])?;
    let tf = kind::<TimerFd>(&ops).expect("checked");
    let (interval, (sec, nsec)) = read_itimerspec(k, tid, a[2])?;
    let (old_v, old_i) = tf.current();
    let next = if sec == 0 && nsec == 0 {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        Some(crate::syscalls::time::clock_deadline(
            tf.clock,
            sec as u64,
            nsec as u64,
        ))
    } else {
        Some(deadline::after(deadline::timespec(sec, nsec)?))
    };
    tf.state.set(State {
        next,
        interval: if next.is_some() {
            interval
        } else {
            Duration::ZERO
        },
        ticks: 0,
    });
    tf.schedule(k);
    if a[3] != 0 {
        write_itimerspec(k, tid, a[3], old_v, old_i)?;
    }
    ok(0)
}

/// timerfd_gettime(fd, curr_value).
pub fn sys_timerfd_gettime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let ops = timerfd_of(k, tid, a[0])?;
    let tf = kind::<TimerFd>(&ops).expect("checked");
    let (v, i) = tf.current();
    write_itimerspec(k, tid, a[1], v, i)?;
    ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_count_every_period_passed() {
        let t0 = Instant::now();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(expirations(t0 + ms(10), ms(5), t0), (0, Some(t0 + ms(10))));
        assert_eq!(expirations(t0, Duration::ZERO, t0 + ms(1)), (1, None));
        // Due at 0, every 10 ms, looked at 35 ms later: 0, 10, 20, 30.
        assert_eq!(expirations(t0, ms(10), t0 + ms(35)), (4, Some(t0 + ms(40))));
        // Exactly on an expiry counts it.
        assert_eq!(expirations(t0, ms(10), t0 + ms(10)), (2, Some(t0 + ms(20))));
        // A 1 ns period over a long time neither overflows nor panics.
        let (n, next) = expirations(t0, Duration::from_nanos(1), t0 + Duration::from_secs(3600));
        assert_eq!(n, 3_600_000_000_001);
        assert!(next.is_some());
    }
}
