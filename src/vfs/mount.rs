//! The mount table.

use std::rc::Rc;

use crate::errno::{Errno, KResult};
use crate::fs::{FileSystem, Ino};

pub type MountId = usize;

/// A location in the tree: an inode of a mounted file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Node {
    pub mnt: MountId,
    pub ino: Ino,
}

pub struct Mount {
    pub fs: Rc<dyn FileSystem>,
    /// Where it is mounted: (parent mount's node); None for the root.
    pub mountpoint: Option<Node>,
    /// The canonical path it is mounted at, for /proc/mounts.
    pub path: Vec<u8>,
    /// What /proc/mounts shows as the device ("/dev/ubda", "proc").
    pub source: String,
    pub read_only: bool,
    /// A small device number for st_dev.
    pub dev: u64,
}

#[derive(Default)]
pub struct MountTable {
    mounts: Vec<Option<Mount>>,
}

impl MountTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mounts `fs` at `at` (None: as the root). Returns the new mount.
    pub fn mount(
        &mut self,
        fs: Rc<dyn FileSystem>,
        at: Option<Node>,
        path: Vec<u8>,
        source: String,
        read_only: bool,
    ) -> KResult<MountId> {
        if at.is_none() && self.mounts.iter().any(|m| m.is_some()) {
            return Err(Errno::EBUSY);
        }
        if let Some(n) = at {
            if self.mounted_on(n).is_some() {
                return Err(Errno::EBUSY);
            }
        }
        let id = self.mounts.len();
        self.mounts.push(Some(Mount {
            fs,
            mountpoint: at,
            path,
            source,
            read_only,
            dev: 0x800 + id as u64,
        }));
        Ok(id)
    }

    /// Unmounts the file system whose root is `root`.
    pub fn umount(&mut self, root: Node) -> KResult<()> {
        let m = self.get(root.mnt)?;
        if m.mountpoint.is_none() || root.ino != m.fs.root() {
            return Err(Errno::EINVAL);
        }
        if self
            .mounts
            .iter()
            .flatten()
            .any(|c| c.mountpoint.map(|p| p.mnt) == Some(root.mnt))
        {
            return Err(Errno::EBUSY);
        }
        let _ = m.fs.sync();
        self.mounts[root.mnt] = None;
        Ok(())
    }

    pub fn get(&self, id: MountId) -> KResult<&Mount> {
        self.mounts
            .get(id)
            .and_then(|m| m.as_ref())
            .ok_or(Errno::ENOENT)
    }

    pub fn fs(&self, id: MountId) -> KResult<Rc<dyn FileSystem>> {
        Ok(self.get(id)?.fs.clone())
    }

    pub fn root(&self) -> KResult<Node> {
        let (id, m) = self
            .mounts
            .iter()
            .enumerate()
            .find_map(|(i, m)| {
                m.as_ref()
                    .filter(|m| m.mountpoint.is_none())
                    .map(|m| (i, m))
            })
            .ok_or(Errno::ENOENT)?;
        Ok(Node {
            mnt: id,
            ino: m.fs.root(),
        })
    }

    /// The mount whose mountpoint is `n`, if any.
    pub fn mounted_on(&self, n: Node) -> Option<MountId> {
        self.mounts
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, m)| m.as_ref().filter(|m| m.mountpoint == Some(n)).map(|_| i))
    }

    /// Every live mount in mount order.
    pub fn iter(&self) -> impl Iterator<Item = (MountId, &Mount)> {
        self.mounts
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (i, m)))
    }

    /// Syncs every mounted file system (sync(2), shutdown).
    pub fn sync_all(&self) -> KResult<()> {
        let mut res = Ok(());
        for (_, m) in self.iter() {
            if let Err(e) = m.fs.sync() {
                log::error!("sync of {} failed: {e}", m.source);
                res = Err(e);
            }
        }
        res
    }
}

impl MountTable {
    /// mount -o remount,ro / rw.
    pub fn set_read_only(&mut self, id: MountId, ro: bool) -> KResult<()> {
        let m = self
            .mounts
            .get_mut(id)
            .and_then(|m| m.as_mut())
            .ok_or(Errno::EINVAL)?;
        m.read_only = ro;
        Ok(())
    }
}
