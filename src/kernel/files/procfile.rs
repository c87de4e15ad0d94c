//! Files of a file system whose content is generated from kernel state
//! (`FileSystem::generated`: /proc). Each read takes a fresh snapshot and
//! reads the file system directly; nothing is cached. Everything else is
//! a regular file's.

use std::rc::Rc;

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
}

impl ProcFile {
    pub fn new(node: Node) -> Rc<Self> {
        Rc::new(ProcFile {
            file: RegularFile { node },
        })
    }
}

impl FileDescription for ProcFile {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        k.refresh_proc(io.tid);
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

    fn fills_request(&self) -> bool {
        true
    }

    fn node(&self) -> Option<Node> {
        Some(self.file.node)
    }
}
