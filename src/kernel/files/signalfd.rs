//! signalfd: the caller's pending signals as a file (signalfd(2)). A read
//! takes pending signals in the file's mask, as `struct signalfd_siginfo`
//! records (128 bytes each, as many as fit), lowest signal number first
//! like Linux's dequeue; it waits while none is pending. Pollers see
//! POLLIN while one is. The signals are the reader's: the calling
//! thread's own, then those pending on the other threads of its process
//! (umlrun queues a process-directed signal on one thread; Linux keeps a
//! shared queue, which any thread's signalfd reads).
//!
//! As on Linux the mask does not block anything: a program blocks the
//! signals with sigprocmask, else they are delivered before it can read
//! them. Readiness is the polling task's (`EventHub::current`), and the
//! kernel wakes `EventHub::signals` whenever a signal is queued.

use std::cell::Cell;
use std::rc::Rc;

use super::{kind, POLLIN, POLLRDNORM};
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::signal::{
    SigInfo, SigSet, SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGKILL, SIGSEGV, SIGSTOP, SIGTRAP,
};
use crate::kernel::task::Pid;
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{ops_of, FileDescription, Io, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::vfs::OpenFile;

/// sizeof(struct signalfd_siginfo).
pub const SIGINFO_SIZE: usize = 128;
/// SI_QUEUE, SI_TIMER, SI_MESGQ, SI_ASYNCIO carry a value.
const SI_QUEUE: i32 = -1;

pub struct SignalFd {
    mask: Cell<SigSet>,
}

/// A mask as signalfd keeps it: SIGKILL and SIGSTOP can never be read.
fn fd_mask(raw: u64) -> SigSet {
    let mut m = SigSet(raw);
    m.del(SIGKILL);
    m.del(SIGSTOP);
    m
}

/// The `struct signalfd_siginfo` Linux fills for `i` (signalfd_copyinfo:
/// which fields depend on the signal and its code).
pub fn signalfd_siginfo(i: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    let mut put32 = |at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(0, i.signo as u32);
    put32(4, i.errno as u32);
    put32(8, i.code as u32);
    let fault = matches!(i.signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP) && i.code > 0;
    if let Some((band, fd)) = i.poll {
        // ssi_fd, ssi_band (Linux's SIL_POLL).
        put32(20, fd as u32);
        put32(28, band as u32);
        return b;
    }
    if i.code == crate::kernel::posix_timers::SI_TIMER {
        // ssi_tid, ssi_overrun, then the value below.
        put32(24, i.pid as u32);
        put32(32, i.uid);
    } else if !fault {
        put32(12, i.pid as u32);
        put32(16, i.uid);
    }
    if i.signo == SIGCHLD && i.code > 0 {
        put32(40, i.status as u32);
    } else if !fault && i.code <= SI_QUEUE {
        // ssi_int, then ssi_ptr (the whole sigval).
        put32(44, i.value as u32);
        b[48..56].copy_from_slice(&i.value.to_le_bytes());
    }
    if fault {
        b[72..80].copy_from_slice(&i.addr.to_le_bytes());
    }
    b
}

impl Kernel {
    /// Takes the lowest-numbered pending signal in `mask` from `tid`, or
    /// failing that from another thread of its process.
    fn dequeue_for_signalfd(&mut self, tid: Pid, mask: SigSet) -> Option<SigInfo> {
        let tgid = self.tasks.get(&tid)?.tgid;
        let mut order = vec![tid];
        order.extend(self.threads(tgid).into_iter().filter(|&t| t != tid));
        for t in order {
            let Some(task) = self.tasks.get_mut(&t) else {
                continue;
            };
            let best = task
                .pending
                .iter()
                .enumerate()
                .filter(|(_, i)| mask.has(i.signo))
                .min_by_key(|(n, i)| (i.signo, *n))
                .map(|(n, _)| n);
            if let Some(n) = best {
                let mut info = task.pending.remove(n);
                self.ptimer_signal_taken(tid, &mut info);
                return Some(info);
            }
        }
        None
    }

    /// Whether `tid` (or its process) has a pending signal in `mask`.
    fn signal_pending_in(&self, tid: Pid, mask: SigSet) -> bool {
        let Some(tgid) = self.tasks.get(&tid).map(|t| t.tgid) else {
            return false;
        };
        self.threads(tgid).into_iter().any(|t| {
            self.tasks
                .get(&t)
                .is_some_and(|t| t.pending.iter().any(|i| mask.has(i.signo)))
        })
    }
}

impl FileDescription for SignalFd {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let room = buf.len() / SIGINFO_SIZE;
        if room == 0 {
            return Err(Errno::EINVAL);
        }
        let mut n = 0;
        while n < room {
            let Some(info) = k.dequeue_for_signalfd(io.tid, self.mask.get()) else {
                break;
            };
            buf[n * SIGINFO_SIZE..(n + 1) * SIGINFO_SIZE].copy_from_slice(&signalfd_siginfo(&info));
            n += 1;
        }
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n * SIGINFO_SIZE)
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        if k.signal_pending_in(k.evhub.current, self.mask.get()) {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        Some(k.evhub.signals.clone())
    }

    fn seek(&self, _k: &mut Kernel, cur: u64, _off: i64, _whence: u64) -> KResult<u64> {
        Ok(cur)
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(super::anon_inode_stat())
    }

    /// As Linux's `signalfd_show_fdinfo`.
    fn fdinfo(&self, _k: &mut Kernel) -> String {
        format!("sigmask:\t{:016x}\n", self.mask.get().0)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// signalfd4(fd, mask, sizemask, flags): a new signalfd (fd -1) or a new
/// mask for an existing one.
pub fn sys_signalfd4(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[2] != 8 {
        return Err(Errno::EINVAL);
    }
    let flags = u32::try_from(a[3]).map_err(|_| Errno::EINVAL)?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = fd_mask(k.read_u64(tid, a[1])?);
    let fd = a[0] as u32 as i32;
    if fd != -1 {
        let f = k.task(tid)?.files.borrow().file(fd)?;
        let ops = ops_of(&f);
        let sfd = kind::<SignalFd>(&ops).ok_or(Errno::EINVAL)?;
        sfd.mask.set(mask);
        // A wider mask may make a waiter's read possible.
        let q = k.evhub.signals.clone();
        k.wake_queue(&q, POLLIN);
        return ok(fd as i64);
    }
    let ops = Rc::new(SignalFd {
        mask: Cell::new(mask),
    });
    k.check_file_max(tid)?;
    let file = OpenFile::new(
        ops,
        O_RDWR | (flags & O_NONBLOCK),
        b"anon_inode:[signalfd]".to_vec(),
    );
    let fd = k
        .task(tid)?
        .files
        .borrow_mut()
        .install(file, flags & O_CLOEXEC != 0, 0)?;
    ok(fd as i64)
}

/// signalfd(fd, mask, sizemask): signalfd4 without flags.
pub fn sys_signalfd(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    sys_signalfd4(k, tid, [a[0], a[1], a[2], 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::signal::{SIGUSR1, SIGUSR2};

    #[test]
    fn siginfo_records_carry_what_linux_fills() {
        let kill = signalfd_siginfo(&SigInfo {
            signo: SIGUSR1,
            code: 0,
            pid: 42,
            uid: 7,
            ..Default::default()
        });
        assert_eq!(&kill[0..4], &(SIGUSR1 as u32).to_le_bytes());
        assert_eq!(&kill[12..16], &42u32.to_le_bytes());
        assert_eq!(&kill[16..20], &7u32.to_le_bytes());
        assert_eq!(&kill[44..56], &[0u8; 12]);
        let q = signalfd_siginfo(&SigInfo {
            signo: SIGUSR2,
            code: SI_QUEUE,
            value: 0x1234,
            ..Default::default()
        });
        assert_eq!(&q[44..48], &0x1234u32.to_le_bytes());
        assert_eq!(&q[48..56], &0x1234u64.to_le_bytes());
        let segv = signalfd_siginfo(&SigInfo {
            signo: SIGSEGV,
            code: 1,
            addr: 0xdead,
            ..Default::default()
        });
        assert_eq!(&segv[72..80], &0xdeadu64.to_le_bytes());
        assert!(!fd_mask(u64::MAX).has(SIGKILL));
        assert!(fd_mask(u64::MAX).has(SIGUSR1));
    }
}
