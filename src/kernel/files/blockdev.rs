//! Block devices: an open /dev/ubdX. Reads and writes of any size and
//! alignment go straight to the disk (`block::bdev`, COW-aware); lseek
//! knows the disk's size; fsync and BLKFLSBUF flush it; the block ioctls
//! answer as Linux's do. `open(O_EXCL)` claims the disk like Linux's
//! exclusive open: EBUSY if it is mounted or claimed, and a mount or
//! another exclusive open is EBUSY until this file is closed.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::block::bdev::{self, BLKDISCARD, BLKFLSBUF, BLKZEROOUT};
use crate::block::{Holder, Ubd};
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, O_APPEND};
use crate::vfs::Node;

/// Ids of exclusive opens (`Holder::File`).
static NEXT_CLAIM: AtomicU64 = AtomicU64::new(1);

pub struct BlockDevFile {
    ubd: Arc<Ubd>,
    /// The device node it was opened by.
    node: Node,
    /// The claim an O_EXCL open holds on its disk.
    claim: Option<u64>,
}

impl BlockDevFile {
    /// Opens the disk `rdev` names (ENXIO: no such disk); `exclusive`
    /// claims it (EBUSY if it is mounted or claimed already).
    pub fn open(k: &mut Kernel, node: Node, rdev: u64, exclusive: bool) -> KResult<Rc<Self>> {
        let disk = k.disks.by_rdev(rdev).ok_or(Errno::ENXIO)?;
        let (ubd, index) = (disk.ubd.clone(), disk.index);
        let claim = if exclusive {
            let id = NEXT_CLAIM.fetch_add(1, Ordering::Relaxed);
            k.disks.claim(index, Holder::File(id))?;
            Some(id)
        } else {
            None
        };
        Ok(Rc::new(BlockDevFile { ubd, node, claim }))
    }
}

impl FileDescription for BlockDevFile {
    fn read(&self, _k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let off = io.offset();
        let n = bdev::read(&self.ubd, off, buf)?;
        io.advance(off + n as u64);
        Ok(n)
    }

    fn write(&self, _k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        let off = if io.file.borrow().flags & O_APPEND != 0 {
            self.ubd.size()
        } else {
            io.offset()
        };
        let n = bdev::write(&self.ubd, off, data)?;
        io.advance(off + n as u64);
        Ok(n)
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        if let Some(reply) = bdev::query(&self.ubd, req) {
            k.write_user(io.tid, arg, &reply.bytes())?;
            return ok(0);
        }
        match req {
            BLKFLSBUF => {
                if k.task(io.tid)?.cred.euid != 0 {
                    return Err(Errno::EACCES);
                }
                bdev::flush(&self.ubd)?;
            }
            BLKDISCARD | BLKZEROOUT => {
                if !io.file.borrow().writable() {
                    return Err(Errno::EBADF);
                }
                if req == BLKDISCARD && self.ubd.cow_header().is_some() {
                    return Err(Errno::EOPNOTSUPP);
                }
                let start = k.read_u64(io.tid, arg)?;
                let len = k.read_u64(io.tid, arg.checked_add(8).ok_or(Errno::EFAULT)?)?;
                if req == BLKDISCARD {
                    bdev::discard(&self.ubd, start, len)?;
                } else {
                    bdev::zero_out(&self.ubd, start, len)?;
                }
            }
            // UML's ubd_ioctl answers EINVAL to what it does not know.
            _ => return Err(Errno::EINVAL),
        }
        ok(0)
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        k.stat_inode(self.node)
    }

    fn seek(&self, _k: &mut Kernel, cur: u64, off: i64, whence: u64) -> KResult<u64> {
        bdev::seek(self.ubd.size(), cur, off, whence)
    }

    fn positional(&self) -> bool {
        true
    }

    fn fills_request(&self) -> bool {
        true
    }

    fn node(&self) -> Option<Node> {
        Some(self.node)
    }

    fn fsync(&self, _k: &mut Kernel) -> KResult<()> {
        bdev::flush(&self.ubd)
    }

    fn release(&self, k: &mut Kernel) {
        if let Some(id) = self.claim {
            k.disks.release(Holder::File(id));
        }
    }
}
