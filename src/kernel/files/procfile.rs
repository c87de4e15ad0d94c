//! Files of a file system whose content is generated from kernel state
//! (`FileSystem::generated`: /proc). Each read takes a fresh snapshot and
//! reads the file system directly; nothing is cached. Everything else is
//! a regular file's. The mount table files and /proc/swaps poll as on
//! Linux (mounts_poll, swaps_poll): always readable, and POLLERR|POLLPRI
//! once after each change since the file was opened or last polled
//! (systemd and libmount watch mountinfo with epoll).

use std::cell::Cell;
use std::rc::Rc;

use super::{POLLERR, POLLIN, POLLPRI, POLLRDNORM};
use crate::fs::PollEvent;
use crate::kernel::waitq::WaitQueueRef;

use super::regular::RegularFile;
use crate::errno::KResult;
use crate::fs::Stat;
use crate::kernel::Kernel;
use crate::mm::vma::Backing;
use crate::syscalls::SysResult;
use crate::vfs::file::{FileDescription, Io};
use crate::vfs::Node;

pub struct ProcFile {
    file: RegularFile,
    /// What this file follows for poll, if anything, and the event
    /// number it last reported (the open's, at first).
    event: Option<PollEvent>,
    seen: Cell<u64>,
}

impl ProcFile {
    pub fn new(k: &Kernel, node: Node) -> Rc<Self> {
        let event = k
            .mounts
            .fs(node.mnt)
            .ok()
            .and_then(|f| f.poll_event(node.ino));
        let seen = event.map_or(0, |e| event_queue(k, e).wakes());
        Rc::new(ProcFile {
            file: RegularFile { node },
            event,
            seen: Cell::new(seen),
        })
    }
}

/// The queue woken by `e` (its wake count is the event number).
fn event_queue(k: &Kernel, e: PollEvent) -> WaitQueueRef {
    match e {
        PollEvent::Mounts => k.evhub.mounts.clone(),
        PollEvent::Swaps => k.evhub.swaps.clone(),
    }
}

impl FileDescription for ProcFile {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        k.refresh_proc_for(io.tid, Kernel::proc_scope_of(self.file.node.ino));
        let off = io.offset();
        let n = k
            .mounts
            .fs(self.file.node.mnt)?
            .read(self.file.node.ino, off, buf)?;
        io.advance(off + n as u64);
        Ok(n)
    }

    /// Writes go to the file system (only sysctls take them) and then to
    /// the kernel state they set.
    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        let off = io.offset();
        // cgroup.procs takes "0" for the writer's own process.
        let writer = k.task(io.tid).map(|t| t.tgid as u32).unwrap_or(0);
        k.cgroups.borrow_mut().writer = writer;
        let n = k
            .mounts
            .fs(self.file.node.mnt)?
            .write(self.file.node.ino, off, data)?;
        k.apply_proc_writes();
        io.advance(off + n as u64);
        Ok(n)
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        self.file.ioctl(k, io, req, arg)
    }

    fn mmap(&self, k: &mut Kernel, io: &Io, shared: bool, prot: u32) -> KResult<Backing> {
        self.file.mmap(k, io, shared, prot)
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        self.file.stat(k)
    }

    fn seek(&self, k: &mut Kernel, cur: u64, off: i64, whence: u64) -> KResult<u64> {
        self.file.seek(k, cur, off, whence)
    }

    fn positional(&self) -> bool {
        true
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        let Some(e) = self.event else {
            return crate::vfs::file::POLL_ALWAYS;
        };
        let now = event_queue(k, e).wakes();
        let mut mask = POLLIN | POLLRDNORM;
        if self.seen.replace(now) != now {
            mask |= POLLERR | POLLPRI;
        }
        mask
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        self.event.map(|e| event_queue(k, e))
    }

    fn epoll_able(&self) -> bool {
        self.event.is_some()
    }

    fn fills_request(&self) -> bool {
        true
    }

    fn node(&self) -> Option<Node> {
        Some(self.file.node)
    }
}
