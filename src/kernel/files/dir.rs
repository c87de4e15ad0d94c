//! Open directories: getdents64 from a listing taken at the first call
//! (and again after a seek to 0), lseek, fstat; read/write are EISDIR.

use std::cell::RefCell;
use std::rc::Rc;

use super::regular::seek_in;
use crate::errno::{Errno, KResult};
use crate::fs::{DirEntry, Stat};
use crate::kernel::Kernel;
use crate::syscalls::fsmeta::dirents64;
use crate::vfs::file::{FileDescription, Io};
use crate::vfs::{DentryRef, Node};

pub struct DirFile {
    node: Node,
    dentry: DentryRef,
    entries: RefCell<Option<Vec<DirEntry>>>,
}

impl DirFile {
    pub fn new(dentry: DentryRef) -> Rc<Self> {
        Rc::new(DirFile {
            node: dentry.node(),
            dentry,
            entries: RefCell::new(None),
        })
    }
}

impl FileDescription for DirFile {
    fn read(&self, _k: &mut Kernel, _io: &Io, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _k: &mut Kernel, _io: &Io, _data: &[u8]) -> KResult<usize> {
        Err(Errno::EISDIR)
    }

    /// pread/pwrite reach read/write (EISDIR), as on Linux, not ESPIPE.
    fn positional(&self) -> bool {
        true
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        k.stat_inode(self.node)
    }

    fn seek(&self, _k: &mut Kernel, cur: u64, off: i64, whence: u64) -> KResult<u64> {
        let new = seek_in(0, cur, off, whence)?;
        if new == 0 {
            *self.entries.borrow_mut() = None;
        }
        Ok(new)
    }

    fn readdir(&self, k: &mut Kernel, io: &Io, cap: usize) -> KResult<(Vec<u8>, u64)> {
        let fs = k.mounts.fs(self.node.mnt)?;
        if fs.generated() {
            k.refresh_proc_for(io.tid, Kernel::proc_scope_of(self.node.ino));
        }
        if self.entries.borrow().is_none() && self.dentry.is_dead() {
            // A removed directory lists as empty.
            *self.entries.borrow_mut() = Some(Vec::new());
        }
        if self.entries.borrow().is_none() {
            let mut list = fs.readdir(self.node.ino)?;
            if !k.orphans.is_empty() {
                let (mnt, ino) = (self.node.mnt, self.node.ino);
                list.retain(|e| !k.is_hidden_name(mnt, ino, &e.name));
            }
            *self.entries.borrow_mut() = Some(list);
        }
        let entries = self.entries.borrow();
        let list = entries.as_ref().ok_or(Errno::EIO)?;
        let start = usize::try_from(io.file.borrow().offset).unwrap_or(usize::MAX);
        let (b, next) = dirents64(list, start.min(list.len()), cap);
        if b.is_empty() && next < list.len() {
            return Err(Errno::EINVAL);
        }
        Ok((b, next as u64))
    }

    fn node(&self) -> Option<Node> {
        Some(self.node)
    }

    fn directory(&self) -> Option<DentryRef> {
        Some(self.dentry.clone())
    }
}
