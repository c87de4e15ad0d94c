//! Pipe and fifo ends: one `Pipe` buffer in the kernel's pipe table, read
//! at one end and written at the other; EOF when no writer is left, EPIPE
//! (and SIGPIPE) when no reader is.

use std::rc::Rc;

use super::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, KResult};
use crate::fs::{Stat, S_IFIFO};
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io};
use crate::vfs::Node;

const FIONREAD: u32 = 0x541b;

pub struct PipeEnd {
    /// The kernel's pipe table index.
    pub id: usize,
    pub write: bool,
    /// The fifo's inode (None: an anonymous pipe).
    pub node: Option<Node>,
    /// An anonymous pipe's owner (uid, gid): its maker's effective ids,
    /// as Linux's pipefs inode has them (fstat, F_SETFL O_NOATIME).
    pub owner: (u32, u32),
}

impl PipeEnd {
    /// An end of the fifo at `node`.
    pub fn fifo(id: usize, write: bool, node: Node) -> Rc<Self> {
        Rc::new(PipeEnd {
            id,
            write,
            node: Some(node),
            owner: (0, 0),
        })
    }

    /// An end of an anonymous pipe made by `owner` (uid, gid).
    pub fn anon(id: usize, write: bool, owner: (u32, u32)) -> Rc<Self> {
        Rc::new(PipeEnd {
            id,
            write,
            node: None,
            owner,
        })
    }
}

impl PipeEnd {
    fn wake(&self, k: &mut Kernel, events: u32) {
        if let Some(q) = k.pipes.queue(self.id) {
            k.wake_queue(&q, events);
        }
    }
}

impl FileDescription for PipeEnd {
    fn read(&self, k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let r = k.pipes.get(self.id).ok_or(Errno::EBADF)?.read(buf);
        if matches!(r, Ok(n) if n > 0) {
            self.wake(k, POLLOUT | POLLWRNORM);
        }
        r
    }

    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        let r = k.pipes.get(self.id).ok_or(Errno::EBADF)?.write(data);
        match r {
            Err(Errno::EPIPE) => k.send_to_thread(
                io.tid,
                SigInfo {
                    signo: SIGPIPE,
                    ..Default::default()
                },
            ),
            Ok(n) if n > 0 => self.wake(k, POLLIN | POLLRDNORM),
            _ => {}
        }
        r
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        let Some(p) = k.pipes.get(self.id) else {
            return POLLERR;
        };
        if self.write {
            let mut r = if p.writable() {
                POLLOUT | POLLWRNORM
            } else {
                0
            };
            if p.readers() == 0 {
                r |= POLLERR;
            }
            r
        } else {
            // As Linux's pipe_poll: POLLIN only for data; an empty pipe
            // without writers is POLLHUP alone.
            let mut r = if p.fionread() > 0 {
                POLLIN | POLLRDNORM
            } else {
                0
            };
            if p.writers() == 0 {
                r |= POLLHUP;
            }
            r
        }
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        k.pipes.queue(self.id)
    }

    fn writes_whole(&self) -> bool {
        true
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        if req != FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let n = k.pipes.get(self.id).map(|p| p.fionread()).unwrap_or(0);
        k.write_u32(io.tid, arg, n as u32)?;
        ok(0)
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        if let Some(n) = self.node {
            return k.stat_inode(n);
        }
        let st = Stat {
            // pipefs inode numbers: the pipe's id, what its
            // /proc/<pid>/fd link shows as pipe:[ino].
            ino: self.id as u64,
            mode: S_IFIFO | 0o600,
            nlink: 1,
            uid: self.owner.0,
            gid: self.owner.1,
            blksize: 4096,
            ..Default::default()
        };
        Ok((st, 0xb))
    }

    fn node(&self) -> Option<Node> {
        self.node
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn write_room(&self, k: &mut Kernel) -> Option<usize> {
        let p = k.pipes.get(self.id)?;
        if p.readers() == 0 {
            // The write fails with EPIPE (and SIGPIPE) whatever its size.
            return None;
        }
        Some(p.capacity().saturating_sub(p.fionread()))
    }

    fn pipe_size(&self, k: &mut Kernel, set: Option<(usize, bool)>) -> KResult<usize> {
        match set {
            Some((n, privileged)) => k.pipes.resize(self.id, n, privileged),
            None => Ok(k.pipes.get(self.id).ok_or(Errno::EBADF)?.capacity()),
        }
    }

    fn release(&self, k: &mut Kernel) {
        if let Some(p) = k.pipes.get(self.id) {
            if self.write {
                p.close_writer();
            } else {
                p.close_reader();
            }
        }
        // The other side sees EOF (POLLHUP) or EPIPE (POLLERR).
        self.wake(
            k,
            POLLIN | POLLOUT | POLLHUP | POLLERR | POLLRDNORM | POLLWRNORM,
        );
        k.pipes.gc(self.id);
    }
}
