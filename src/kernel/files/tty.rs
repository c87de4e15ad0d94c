//! The console terminal (/dev/console, /dev/tty, /dev/tty0): reads and
//! writes through the line discipline, terminal ioctls, job control.

use std::rc::Rc;

use super::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, KResult};
use crate::fs::tty::{ReadResult, TtyAccess};
use crate::fs::{Stat, S_IFCHR};
use crate::kernel::task::Pid;
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::syscalls::SysResult;
use crate::vfs::file::{FileDescription, Io, O_NOCTTY};
use crate::vfs::Node;

pub struct ConsoleFile {
    /// The device node it was opened by (None: the boot console).
    node: Option<Node>,
}

impl ConsoleFile {
    pub fn new(node: Option<Node>) -> Rc<Self> {
        Rc::new(ConsoleFile { node })
    }
}

impl FileDescription for ConsoleFile {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let nonblock = io.file.borrow().nonblocking();
        match k.console.read(buf, nonblock) {
            ReadResult::Data(n) => Ok(n),
            ReadResult::Eof => Ok(0),
            ReadResult::WouldBlock | ReadResult::WouldBlockWithTimeout(_) => Err(Errno::EAGAIN),
        }
    }

    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        k.console.write(data);
        Ok(data.len())
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        let mut r = POLLOUT | POLLWRNORM;
        if k.console.tty.ldisc.readable() {
            r |= POLLIN | POLLRDNORM;
        }
        r
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        Some(k.console.waitq.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        let r = crate::syscalls::ioctl::tty_ioctl(k, io.tid, req, arg);
        // New settings (canonical mode, VMIN, a flush) can change what a
        // sleeping reader would get.
        k.console_changed();
        r
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        if let Some(n) = self.node {
            return k.stat_inode(n);
        }
        let st = Stat {
            mode: S_IFCHR | 0o620,
            nlink: 1,
            rdev: crate::fs::devices::encode_dev(5, 1),
            ..Default::default()
        };
        Ok((st, 0xb))
    }

    fn node(&self) -> Option<Node> {
        self.node
    }

    fn job_control(&self, k: &mut Kernel, tid: Pid, access: TtyAccess) -> KResult<()> {
        k.tty_job_control(tid, access)
    }

    fn opened(&self, k: &mut Kernel, tid: Pid, flags: u32) {
        if flags & O_NOCTTY != 0 {
            return;
        }
        // A session leader opening a terminal with no session acquires it.
        let Ok(t) = k.task(tid) else { return };
        let (sid, pgid, tgid) = (t.sid, t.pgid, t.tgid);
        if sid == tgid && k.console.tty.session.is_none() {
            let _ = k
                .console
                .tty
                .set_controlling(sid as u32, pgid as u32, false);
        }
    }
}
