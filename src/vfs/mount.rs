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

/// The "mountpoint" of a mount that is in no tree (`mount_internal`):
/// a node no walk reaches.
pub const INTERNAL: Node = Node {
    mnt: MountId::MAX,
    ino: 0,
};

impl Mount {
    /// Mounted nowhere (`MountTable::mount_internal`).
    pub fn is_internal(&self) -> bool {
        self.mountpoint == Some(INTERNAL)
    }
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
    /// st_dev of its files and mountinfo's major:minor: the disk's
    /// numbers for a disk file system (`set_identity`), else an anonymous
    /// 0:N as Linux gives tmpfs, proc and the like.
    pub dev: u64,
    /// The type mount(2) was asked for, as /proc/mounts shows it: several
    /// types share one implementation (sysfs and devtmpfs are tmpfs here).
    pub kind: &'static str,
}

/// The first anonymous minor (Linux's get_anon_bdev hands out small
/// minors from an IDA; any unused 0:N will do as long as it is unique).
const ANON_MINOR_BASE: u64 = 0x20;

/// Linux's new_encode_dev of the anonymous device 0:(base + id).
fn anon_dev(id: MountId) -> u64 {
    let minor = ANON_MINOR_BASE + id as u64;
    (minor & 0xff) | ((minor & !0xff) << 12)
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
        let kind = fs.fs_type();
        self.mounts.push(Some(Mount {
            fs,
            mountpoint: at,
            path,
            source,
            read_only,
            dev: anon_dev(id),
            kind,
        }));
        Ok(id)
    }

    /// Mounts `fs` nowhere in the tree: a file system of the kernel's own
    /// (memfd's tmpfs), reached only through open files. It has no path,
    /// /proc/mounts does not list it, and it is never unmounted.
    pub fn mount_internal(&mut self, fs: Rc<dyn FileSystem>, source: String) -> MountId {
        let id = self.mounts.len();
        let kind = fs.fs_type();
        self.mounts.push(Some(Mount {
            fs,
            mountpoint: Some(INTERNAL),
            path: Vec::new(),
            source,
            read_only: false,
            dev: anon_dev(id),
            kind,
        }));
        id
    }

    /// Whether the file system whose root is `root` could be unmounted as
    /// far as the tree goes: EINVAL if `root` is not a mount's root, EBUSY
    /// for the root file system or one with mounts on top of it. (Open
    /// files, cwds and mappings are the kernel's to check.)
    pub fn check_umount(&self, root: Node) -> KResult<()> {
        let m = self.get(root.mnt).map_err(|_| Errno::EINVAL)?;
        if root.ino != m.fs.root() {
            return Err(Errno::EINVAL);
        }
        if m.mountpoint.is_none() {
            return Err(Errno::EBUSY);
        }
        if self
            .mounts
            .iter()
            .flatten()
            .any(|c| c.mountpoint.map(|p| p.mnt) == Some(root.mnt))
        {
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    /// Unmounts the file system whose root is `root` (see `check_umount`)
    /// and lets it write everything back. A failing write-back is logged:
    /// as on Linux, the unmount still happens.
    pub fn umount(&mut self, root: Node) -> KResult<()> {
        self.check_umount(root)?;
        let m = self.mounts[root.mnt].take().expect("checked");
        if let Err(e) = m.fs.unmount() {
            log::error!("unmounting {} from {}: {e}", m.source, path_str(&m.path));
        }
        Ok(())
    }

    /// Shutdown: every file system writes back and marks itself clean,
    /// the last mounted first. The table stays as it is.
    pub fn unmount_all(&self) {
        for (_, m) in self.iter().collect::<Vec<_>>().into_iter().rev() {
            if let Err(e) = m.fs.unmount() {
                log::error!("unmounting {} from {}: {e}", m.source, path_str(&m.path));
            }
        }
    }

    /// What mount `id` is to the guest: its device number (a disk's, for
    /// a disk file system: Some) and the type it was mounted as.
    pub fn set_identity(
        &mut self,
        id: MountId,
        dev: Option<u64>,
        kind: &'static str,
    ) -> KResult<()> {
        let m = self
            .mounts
            .get_mut(id)
            .and_then(|m| m.as_mut())
            .ok_or(Errno::EINVAL)?;
        if let Some(d) = dev {
            m.dev = d;
        }
        m.kind = kind;
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

fn path_str(p: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(p)
}

/// Is `path` (canonical) at or below the mount point `mount_path`? A cwd
/// there keeps the mount busy. `/mnt/data2` is not below `/mnt/data`.
pub fn is_under(path: &[u8], mount_path: &[u8]) -> bool {
    if mount_path == b"/" {
        return true;
    }
    match path.strip_prefix(mount_path) {
        Some(rest) => rest.is_empty() || rest[0] == b'/',
        None => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{DirEntry, SetAttr, Stat, StatFs};
    use std::cell::RefCell;

    /// A file system that only records the calls the mount table makes.
    struct Probe {
        name: &'static str,
        log: Rc<RefCell<Vec<String>>>,
    }

    impl FileSystem for Probe {
        fn fs_type(&self) -> &'static str {
            "probe"
        }
        fn root(&self) -> Ino {
            2
        }
        fn stat(&self, _: Ino) -> KResult<Stat> {
            Err(Errno::ENOSYS)
        }
        fn lookup(&self, _: Ino, _: &[u8]) -> KResult<Ino> {
            Err(Errno::ENOSYS)
        }
        fn readdir(&self, _: Ino) -> KResult<Vec<DirEntry>> {
            Err(Errno::ENOSYS)
        }
        fn read(&self, _: Ino, _: u64, _: &mut [u8]) -> KResult<usize> {
            Err(Errno::ENOSYS)
        }
        fn write(&self, _: Ino, _: u64, _: &[u8]) -> KResult<usize> {
            Err(Errno::ENOSYS)
        }
        fn truncate(&self, _: Ino, _: u64) -> KResult<()> {
            Err(Errno::ENOSYS)
        }
        fn create(&self, _: Ino, _: &[u8], _: u32, _: u32, _: u32, _: u64) -> KResult<Ino> {
            Err(Errno::ENOSYS)
        }
        fn mkdir(&self, _: Ino, _: &[u8], _: u32, _: u32, _: u32) -> KResult<Ino> {
            Err(Errno::ENOSYS)
        }
        fn symlink(&self, _: Ino, _: &[u8], _: &[u8], _: u32, _: u32) -> KResult<Ino> {
            Err(Errno::ENOSYS)
        }
        fn readlink(&self, _: Ino) -> KResult<Vec<u8>> {
            Err(Errno::ENOSYS)
        }
        fn link(&self, _: Ino, _: Ino, _: &[u8]) -> KResult<()> {
            Err(Errno::ENOSYS)
        }
        fn unlink(&self, _: Ino, _: &[u8]) -> KResult<()> {
            Err(Errno::ENOSYS)
        }
        fn rmdir(&self, _: Ino, _: &[u8]) -> KResult<()> {
            Err(Errno::ENOSYS)
        }
        fn rename(&self, _: Ino, _: &[u8], _: Ino, _: &[u8]) -> KResult<()> {
            Err(Errno::ENOSYS)
        }
        fn setattr(&self, _: Ino, _: &SetAttr) -> KResult<()> {
            Err(Errno::ENOSYS)
        }
        fn statfs(&self) -> KResult<StatFs> {
            Err(Errno::ENOSYS)
        }
        fn sync(&self) -> KResult<()> {
            self.log.borrow_mut().push(format!("sync {}", self.name));
            Ok(())
        }
        fn unmount(&self) -> KResult<()> {
            self.log.borrow_mut().push(format!("unmount {}", self.name));
            Ok(())
        }
    }

    fn probe(name: &'static str, log: &Rc<RefCell<Vec<String>>>) -> Rc<dyn FileSystem> {
        Rc::new(Probe {
            name,
            log: log.clone(),
        })
    }

    /// "/" with "/mnt" (inode 5 of the root) and "/mnt/sub" (inode 7 of
    /// /mnt's file system).
    fn table(log: &Rc<RefCell<Vec<String>>>) -> (MountTable, MountId, MountId, MountId) {
        let mut t = MountTable::new();
        let root = t
            .mount(
                probe("root", log),
                None,
                b"/".to_vec(),
                "/dev/ubda".into(),
                false,
            )
            .unwrap();
        let at = Node { mnt: root, ino: 5 };
        let mnt = t
            .mount(
                probe("mnt", log),
                Some(at),
                b"/mnt".to_vec(),
                "/dev/ubdb".into(),
                false,
            )
            .unwrap();
        let at = Node { mnt, ino: 7 };
        let sub = t
            .mount(
                probe("sub", log),
                Some(at),
                b"/mnt/sub".to_vec(),
                "tmpfs".into(),
                true,
            )
            .unwrap();
        (t, root, mnt, sub)
    }

    #[test]
    fn mounting_rules() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (mut t, root, mnt, sub) = table(&log);
        assert_eq!(
            t.mount(probe("x", &log), None, b"/".to_vec(), "x".into(), false),
            Err(Errno::EBUSY),
            "a second root"
        );
        let at = Node { mnt: root, ino: 5 };
        assert_eq!(
            t.mount(
                probe("x", &log),
                Some(at),
                b"/mnt".to_vec(),
                "x".into(),
                false
            ),
            Err(Errno::EBUSY),
            "the same mount point twice"
        );
        assert_eq!(t.mounted_on(at), Some(mnt));
        assert_eq!(t.root().unwrap(), Node { mnt: root, ino: 2 });
        assert!(t.get(sub).unwrap().read_only);
        assert_ne!(t.get(mnt).unwrap().dev, t.get(sub).unwrap().dev);
        t.set_read_only(mnt, true).unwrap();
        assert!(t.get(mnt).unwrap().read_only);
        assert_eq!(t.set_read_only(99, true), Err(Errno::EINVAL));
    }

    #[test]
    fn umount_checks_and_write_back() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (mut t, root, mnt, sub) = table(&log);
        let root_of = |m| Node { mnt: m, ino: 2 };
        assert_eq!(t.umount(root_of(root)), Err(Errno::EBUSY), "the root");
        assert_eq!(
            t.umount(Node { mnt, ino: 3 }),
            Err(Errno::EINVAL),
            "not a mount's root"
        );
        assert_eq!(t.umount(root_of(42)), Err(Errno::EINVAL), "no such mount");
        assert_eq!(t.umount(root_of(mnt)), Err(Errno::EBUSY), "sub is on it");
        assert!(log.borrow().is_empty(), "nothing unmounted by a refusal");
        t.umount(root_of(sub)).unwrap();
        t.umount(root_of(mnt)).unwrap();
        assert_eq!(*log.borrow(), ["unmount sub", "unmount mnt"]);
        assert!(t.get(mnt).is_err());
        assert_eq!(t.umount(root_of(mnt)), Err(Errno::EINVAL), "twice");
        // The mount point is free again; ids are never reused.
        let at = Node { mnt: root, ino: 5 };
        let again = t
            .mount(
                probe("again", &log),
                Some(at),
                b"/mnt".to_vec(),
                "x".into(),
                false,
            )
            .unwrap();
        assert!(again > sub);
    }

    #[test]
    fn shutdown_unmounts_the_last_mounted_first() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (t, ..) = table(&log);
        t.unmount_all();
        assert_eq!(
            *log.borrow(),
            ["unmount sub", "unmount mnt", "unmount root"]
        );
        assert_eq!(t.iter().count(), 3, "the table stays");
    }

    #[test]
    fn paths_under_a_mount_point() {
        assert!(is_under(b"/mnt/data", b"/mnt/data"));
        assert!(is_under(b"/mnt/data/x/y", b"/mnt/data"));
        assert!(!is_under(b"/mnt/data2", b"/mnt/data"));
        assert!(!is_under(b"/mnt", b"/mnt/data"));
        assert!(is_under(b"/anything", b"/"));
    }
}
