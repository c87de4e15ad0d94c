//! The two ends of a pseudo-terminal (the pair is kernel/pty.rs): the
//! master (/dev/ptmx; TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER, and
//! the slave's termios and window size) and the slave (/dev/pts/N: a
//! terminal with the console's ioctls and job control).

use std::rc::Rc;

use super::{POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, KResult};
use crate::fs::devices::encode_dev;
use crate::fs::devpts::slave_dev;
use crate::fs::tty::TtyAccess;
use crate::fs::{Stat, S_IFCHR};
use crate::kernel::pty::{TtyId, TO_MASTER_CAP};
use crate::kernel::task::Pid;
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, OpenFile, O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK};
use crate::vfs::Node;

const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPTLCK: u32 = 0x8004_5439;
const TIOCGPTPEER: u32 = 0x5441;
const FIONREAD: u32 = 0x541B;

pub struct PtyMaster {
    pub index: u32,
    node: Option<Node>,
}

pub struct PtySlave {
    pub index: u32,
    node: Option<Node>,
}

impl PtyMaster {
    /// Opening /dev/ptmx (`node`: the node it was opened by).
    pub fn open(k: &mut Kernel, tid: Pid, node: Option<Node>) -> KResult<Rc<Self>> {
        let index = k.pty_create(tid)?;
        Ok(Rc::new(PtyMaster { index, node }))
    }
}

impl PtySlave {
    pub fn open(k: &mut Kernel, index: u32, node: Option<Node>) -> KResult<Rc<Self>> {
        k.pty_open_slave(index)?;
        Ok(Rc::new(PtySlave { index, node }))
    }
}

fn dev_stat(k: &mut Kernel, node: Option<Node>, rdev: u64, mode: u32) -> KResult<(Stat, u64)> {
    if let Some(n) = node {
        if let Ok(r) = k.stat_inode(n) {
            return Ok(r);
        }
    }
    let st = Stat {
        mode: S_IFCHR | mode,
        nlink: 1,
        rdev,
        blksize: 1024,
        ..Default::default()
    };
    Ok((st, 0x16))
}

impl FileDescription for PtyMaster {
    fn read(&self, k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        k.pty_master_read(self.index, buf)
    }

    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        k.pty_master_write(self.index, data)
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        let Ok(p) = k.pty(self.index) else {
            return POLLHUP | POLLIN;
        };
        let mut r = POLLOUT | POLLWRNORM;
        if !p.to_master.is_empty() {
            r |= POLLIN | POLLRDNORM;
        } else if p.slave_hung_up {
            r |= POLLHUP | POLLIN;
        }
        r
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        k.ptys.ptys.get(&self.index).map(|p| p.waitq.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        match req {
            TIOCGPTN => {
                k.write_u32(io.tid, arg, self.index)?;
                ok(0)
            }
            TIOCSPTLCK => {
                let lock = k.read_u32(io.tid, arg)? != 0;
                k.pty(self.index)?.locked = lock;
                ok(0)
            }
            TIOCGPTLCK => {
                let l = k.pty(self.index)?.locked as u32;
                k.write_u32(io.tid, arg, l)?;
                ok(0)
            }
            TIOCGPTPEER => {
                let flags = arg as u32;
                if flags & !(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) != 0 {
                    return Err(crate::errno::Errno::EINVAL);
                }
                let ops = PtySlave::open(k, self.index, None)?;
                let path = format!("/dev/pts/{}", self.index).into_bytes();
                let file = OpenFile::new(ops.clone(), flags, path);
                let installed =
                    k.task(io.tid)?
                        .files
                        .borrow_mut()
                        .install(file, flags & O_CLOEXEC != 0, 0);
                match installed {
                    Ok(fd) => {
                        ops.opened(k, io.tid, flags);
                        ok(fd as i64)
                    }
                    Err(e) => {
                        ops.release(k);
                        Err(e)
                    }
                }
            }
            FIONREAD => {
                let n = k.pty(self.index)?.to_master.len();
                k.write_u32(io.tid, arg, n as u32)?;
                ok(0)
            }
            // The pair's termios and window size, without job control.
            _ => {
                let r = crate::syscalls::ioctl::tty_ioctl_on(
                    k,
                    io.tid,
                    TtyId::Pty(self.index),
                    req,
                    arg,
                    false,
                );
                k.pty_changed(self.index);
                r
            }
        }
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        dev_stat(k, self.node, encode_dev(5, 2), 0o666)
    }

    fn release(&self, k: &mut Kernel) {
        k.pty_master_closed(self.index);
    }
}

impl FileDescription for PtySlave {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let nonblock = io.file.borrow().nonblocking();
        k.pty_slave_read(self.index, buf, nonblock)
    }

    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        k.pty_slave_write(self.index, data)
    }

    fn poll(&self, k: &mut Kernel) -> u32 {
        let Ok(p) = k.pty(self.index) else {
            return POLLHUP | POLLIN;
        };
        let mut r = 0;
        if p.to_master.len() < TO_MASTER_CAP {
            r |= POLLOUT | POLLWRNORM;
        }
        if p.tty.ldisc.readable() {
            r |= POLLIN | POLLRDNORM;
        }
        if !p.master_open {
            r |= POLLHUP | POLLIN;
        }
        r
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        k.ptys.ptys.get(&self.index).map(|p| p.waitq.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        if req == TIOCGPTN {
            return Err(Errno::ENOTTY);
        }
        let r =
            crate::syscalls::ioctl::tty_ioctl_on(k, io.tid, TtyId::Pty(self.index), req, arg, true);
        k.pty_changed(self.index);
        r
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        dev_stat(k, self.node, slave_dev(self.index), 0o620)
    }

    fn job_control(&self, k: &mut Kernel, tid: Pid, access: TtyAccess) -> KResult<()> {
        k.tty_job_control_on(TtyId::Pty(self.index), tid, access)
    }

    fn opened(&self, k: &mut Kernel, tid: Pid, flags: u32) {
        // A session leader with no controlling terminal acquires this one.
        if flags & O_NOCTTY != 0 {
            return;
        }
        let Ok(t) = k.task(tid) else {
            return;
        };
        let (sid, pgid, tgid) = (t.sid, t.pgid, t.tgid);
        if sid != tgid || k.session_has_tty(sid as u32) {
            return;
        }
        if let Ok(p) = k.pty(self.index) {
            let _ = p.tty.set_controlling(sid as u32, pgid as u32, false);
        }
    }

    fn release(&self, k: &mut Kernel) {
        k.pty_slave_closed(self.index);
    }
}
