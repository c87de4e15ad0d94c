//! Making the file systems the guest can mount: procfs, tmpfs (pages in
//! physmem, punched when freed) and the /dev tmpfs.

use std::rc::Rc;
use std::sync::Arc;

use super::core::Kernel;
use super::procsrc::{KernelProcSource, ProcSnapshot};
use crate::errno::{Errno, KResult};
use crate::fs::devices::populate_dev;
use crate::fs::procfs::ProcFs;
use crate::fs::tmpfs::{PageStore, Tmpfs, TmpfsOptions};
use crate::fs::FileSystem;
use crate::physmem::{Frame, PhysMem};

/// tmpfs pages are physmem frames: freeing one punches it.
pub struct PhysPageStore(pub Arc<PhysMem>);

impl PageStore for PhysPageStore {
    fn alloc(&self) -> KResult<u64> {
        self.0.alloc().map(|f| f.0).map_err(|_| Errno::ENOSPC)
    }
    fn free(&self, h: u64) {
        self.0.free(Frame(h));
    }
    fn read(&self, h: u64, off: usize, buf: &mut [u8]) {
        self.0.read(Frame(h), off, buf);
    }
    fn write(&self, h: u64, off: usize, data: &[u8]) {
        if let Err(e) = self.0.write(Frame(h), off, data) {
            log::error!("tmpfs page write failed: {e}");
        }
    }
}

impl Kernel {
    pub fn new_tmpfs(&self, mode: u32) -> Rc<dyn FileSystem> {
        let clock: crate::fs::tmpfs::Clock = Rc::new(crate::syscalls::now_ts);
        Rc::new(Tmpfs::new(
            Rc::new(PhysPageStore(self.physmem.clone())),
            clock,
            TmpfsOptions {
                max_pages: Some(self.physmem.frames_plugged() / 2),
                max_inodes: 65536,
                root_mode: mode,
                root_uid: 0,
                root_gid: 0,
            },
        ))
    }

    pub fn new_devfs(&self) -> KResult<Rc<dyn FileSystem>> {
        let fs = self.new_tmpfs(0o755);
        populate_dev(fs.as_ref())?;
        Ok(fs)
    }

    pub fn new_procfs(&mut self) -> Rc<dyn FileSystem> {
        let snap = self
            .proc_snapshot
            .get_or_insert_with(|| Rc::new(std::cell::RefCell::new(ProcSnapshot::default())))
            .clone();
        Rc::new(ProcFs::new(Rc::new(KernelProcSource(snap))))
    }

    /// A file system for mount(2) by type name.
    pub fn fs_by_type(&mut self, fstype: &[u8]) -> KResult<Rc<dyn FileSystem>> {
        match fstype {
            b"proc" => Ok(self.new_procfs()),
            b"tmpfs" | b"ramfs" => Ok(self.new_tmpfs(0o1777)),
            b"devtmpfs" => self.new_devfs(),
            _ => Err(Errno::ENODEV),
        }
    }
}
