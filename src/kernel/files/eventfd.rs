//! eventfd: a 64-bit counter as a file (eventfd(2)). A write adds to it,
//! a read takes it all (or 1 in semaphore mode); reads wait while it is
//! 0 and writes while adding would pass 0xffff_ffff_ffff_fffe. Readers
//! and writers sleep on its wait queue; pollers see POLLIN while it is
//! above 0 and POLLOUT while a write of 1 would fit.
//!
//! Everything an eventfd is lives here: the kind and its syscalls
//! (registered in `syscalls::table`).

use std::cell::Cell;
use std::rc::Rc;

use super::{POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::task::Pid;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef};
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, O_CLOEXEC, O_NONBLOCK, O_RDWR};
use crate::vfs::OpenFile;

/// EFD_SEMAPHORE; EFD_CLOEXEC and EFD_NONBLOCK are O_CLOEXEC and O_NONBLOCK.
pub const EFD_SEMAPHORE: u32 = 1;
/// The most the counter holds.
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Cell<u64>,
    semaphore: bool,
    waitq: WaitQueueRef,
}

impl EventFd {
    pub fn new(initval: u64, semaphore: bool) -> Rc<Self> {
        Rc::new(EventFd {
            count: Cell::new(initval),
            semaphore,
            waitq: WaitQueue::new(),
        })
    }
}

impl FileDescription for EventFd {
    fn read(&self, k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let c = self.count.get();
        if c == 0 {
            return Err(Errno::EAGAIN);
        }
        let v = if self.semaphore { 1 } else { c };
        self.count.set(c - v);
        buf[..8].copy_from_slice(&v.to_le_bytes());
        k.wake_queue(&self.waitq, POLLOUT);
        Ok(8)
    }

    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        let v = u64::from_le_bytes(data.get(..8).ok_or(Errno::EINVAL)?.try_into().expect("8"));
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let c = self.count.get();
        if MAX - c < v {
            return Err(Errno::EAGAIN);
        }
        self.count.set(c + v);
        if v > 0 {
            k.wake_queue(&self.waitq, POLLIN);
        }
        Ok(8)
    }

    fn poll(&self, _k: &mut Kernel) -> u32 {
        let c = self.count.get();
        let mut r = 0;
        if c > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if c < MAX {
            r |= POLLOUT | POLLWRNORM;
        }
        if c == u64::MAX {
            r |= POLLERR;
        }
        r
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.waitq.clone())
    }

    /// Linux's eventfd seeks with `noop_llseek`: the offset stays (0).
    fn seek(&self, _k: &mut Kernel, cur: u64, _off: i64, _whence: u64) -> KResult<u64> {
        Ok(cur)
    }

    /// As Linux's `eventfd_show_fdinfo` (without its eventfd-id line:
    /// eventfds here have no id).
    fn fdinfo(&self, _k: &mut Kernel) -> String {
        format!("eventfd-count: {:16x}\n", self.count.get())
    }

    /// An anonymous inode: no type bits, mode 0600.
    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(super::anon_inode_stat())
    }
}

/// eventfd2(initval, flags).
pub fn sys_eventfd2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    let flags = u32::try_from(a[1]).map_err(|_| Errno::EINVAL)?;
    if flags & !(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    // initval is an unsigned int.
    let ops = EventFd::new(a[0] & 0xffff_ffff, flags & EFD_SEMAPHORE != 0);
    let file = OpenFile::new(
        ops,
        O_RDWR | (flags & O_NONBLOCK),
        b"anon_inode:[eventfd]".to_vec(),
    );
    let fd = k
        .task(tid)?
        .files
        .borrow_mut()
        .install(file, flags & O_CLOEXEC != 0, 0)?;
    ok(fd as i64)
}

/// eventfd(initval): eventfd2 without flags.
pub fn sys_eventfd(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    sys_eventfd2(k, tid, [a[0], 0, 0, 0, 0, 0])
}
