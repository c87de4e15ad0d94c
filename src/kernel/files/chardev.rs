//! The memory character devices: /dev/null, /dev/zero, /dev/full,
//! /dev/random, /dev/urandom (their semantics are in `fs::devices`).

use std::rc::Rc;

use crate::errno::KResult;
use crate::fs::devices::CharDevice;
use crate::fs::{Stat, S_IFCHR};
use crate::kernel::Kernel;
use crate::mm::vma::Backing;
use crate::vfs::file::{FileDescription, Io};
use crate::vfs::Node;

pub struct CharDevFile {
    dev: CharDevice,
    /// The device node it was opened by.
    node: Option<Node>,
}

impl CharDevFile {
    pub fn new(dev: CharDevice, node: Option<Node>) -> Rc<Self> {
        Rc::new(CharDevFile { dev, node })
    }
}

impl FileDescription for CharDevFile {
    fn read(&self, k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let rng = &mut k.rng;
        self.dev.read(buf, &mut |b| rng.fill(b))
    }

    fn write(&self, _k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        self.dev.write(data)
    }

    /// /dev/zero maps as anonymous memory (shared or private).
    fn mmap(&self, _k: &mut Kernel, _io: &Io, _shared: bool, _prot: u32) -> KResult<Backing> {
        match self.dev {
            CharDevice::Zero => Ok(Backing::Anon),
            _ => Err(crate::errno::Errno::ENODEV),
        }
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        if let Some(n) = self.node {
            return k.stat_inode(n);
        }
        let st = Stat {
            mode: S_IFCHR | 0o666,
            nlink: 1,
            rdev: self.dev.rdev(),
            ..Default::default()
        };
        Ok((st, 0xb))
    }

    /// Linux's null_lseek (null, zero, full: always 0, so Python's
    /// io.open(os.devnull, "r+") finds it seekable) and noop_llseek
    /// (random, urandom: the offset stays).
    fn seek(&self, _k: &mut Kernel, cur: u64, _off: i64, whence: u64) -> KResult<u64> {
        // ksys_lseek: a whence past SEEK_HOLE is EINVAL before the file.
        if whence > 4 {
            return Err(crate::errno::Errno::EINVAL);
        }
        match self.dev {
            CharDevice::Null | CharDevice::Zero | CharDevice::Full => Ok(0),
            CharDevice::Random | CharDevice::Urandom => Ok(cur),
            _ => Err(crate::errno::Errno::ESPIPE),
        }
    }

    fn fills_request(&self) -> bool {
        true
    }

    fn node(&self) -> Option<Node> {
        self.node
    }
}
