//! Open-but-unlinked files. ext2 frees an inode when its last name goes;
//! Linux keeps it until the last close. So when the last name of a file
//! that is still open or mapped is removed, the kernel first gives it a
//! hidden name in lost+found (or the same directory), and removes that
//! name when the file is finally closed and unmapped. The disk stays
//! consistent throughout (`e2fsck` sees an ordinary file if we crash).
//!
//! An O_TMPFILE file is an orphan from birth; one opened without O_EXCL
//! may be named by linkat, which makes it an ordinary file. Hidden names
//! are left out of directory listings.

use super::core::Kernel;
use crate::errno::{Errno, KResult};
use crate::fs::FileSystem;
use crate::mm::Backing;
use crate::vfs::Node;

impl Kernel {
    /// Is `node` open by any process or mapped by any address space?
    pub fn in_use(&self, node: Node) -> bool {
        let open = self.tasks.values().any(|t| {
            t.files
                .borrow()
                .iter()
                .any(|(_, e)| e.file.borrow().node() == Some(node))
        });
        open || self.mms.values().any(|mm| {
            mm.aspace.vmas().any(|v| match &v.backing {
                Backing::File { source, .. } => source.key() == Some((node.mnt, node.ino)),
                Backing::Anon => false,
            })
        })
    }

    /// Removes `name` from `dir`, keeping the file alive under a hidden
    /// name if this was its last link and it is still in use.
    pub fn unlink_keeping_open(
        &mut self,
        dir: Node,
        name: &[u8],
        target: Node,
        nlink: u32,
    ) -> KResult<()> {
        let fs = self.mounts.fs(dir.mnt)?;
        if nlink > 1 || !self.in_use(target) {
            fs.unlink(dir.ino, name)?;
            if nlink <= 1 {
                self.pagecache
                    .borrow_mut()
                    .drop_file((target.mnt, target.ino), &mut self.frames);
            }
            return Ok(());
        }
        let hidden_dir = self.hidden_dir(fs.as_ref(), dir.ino);
        let hidden = format!(".umlrun-orphan-{}", target.ino).into_bytes();
        fs.link(target.ino, hidden_dir, &hidden)?;
        if let Err(e) = fs.unlink(dir.ino, name) {
            let _ = fs.unlink(hidden_dir, &hidden);
            return Err(e);
        }
        self.orphans
            .insert((target.mnt, target.ino), (hidden_dir, hidden));
        Ok(())
    }

    /// Before `dir` is removed: orphans hidden in it (a file system with
    /// no lost+found, e.g. tmpfs) move to the file system's root, so the
    /// directory is as empty as the guest sees it (python's tempfile
    /// removes a directory while a file unlinked in it is still open).
    pub fn evict_orphans_from(&mut self, dir: Node) {
        let Ok(fs) = self.mounts.fs(dir.mnt) else {
            return;
        };
        let root = fs.root();
        if dir.ino == root {
            return;
        }
        for (key, (hdir, name)) in self.orphans.iter_mut() {
            if key.0 != dir.mnt || *hdir != dir.ino {
                continue;
            }
            if fs.link(key.1, root, name).is_ok() {
                if fs.unlink(dir.ino, name).is_ok() {
                    *hdir = root;
                } else {
                    let _ = fs.unlink(root, name);
                }
            }
        }
    }

    /// Where hidden names go: lost+found when the file system has one,
    /// else `dir`.
    pub(crate) fn hidden_dir(&self, fs: &dyn FileSystem, dir: u64) -> u64 {
        fs.lookup(fs.root(), b"lost+found")
            .ok()
            .filter(|d| {
                fs.stat(*d)
                    .map(|s| s.mode & crate::fs::S_IFMT == crate::fs::S_IFDIR)
                    .unwrap_or(false)
            })
            .unwrap_or(dir)
    }
    /// Before linkat gives `node` a new name: Ok(true) when it is a
    /// linkable O_TMPFILE (its hidden name then goes, see
    /// `named_tmpfile`), ENOENT for any other orphan (Linux refuses to
    /// link an inode with no links), Ok(false) for an ordinary file.
    pub fn may_link_orphan(&self, node: Node) -> KResult<bool> {
        let key = (node.mnt, node.ino);
        if !self.orphans.contains_key(&key) {
            return Ok(false);
        }
        if self.linkable_tmpfiles.contains(&key) {
            Ok(true)
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// An O_TMPFILE was linked to a real name: it is an ordinary file now
    /// (unlinking that name while open makes an unlinkable orphan).
    pub fn named_tmpfile(&mut self, node: Node) {
        let key = (node.mnt, node.ino);
        self.linkable_tmpfiles.remove(&key);
        if let Some((dir, name)) = self.orphans.remove(&key) {
            match self.mounts.fs(node.mnt) {
                Ok(fs) => {
                    if let Err(e) = fs.unlink(dir, &name) {
                        log::warn!("removing the hidden name of tmpfile {}: {e}", node.ino);
                    }
                }
                Err(e) => log::warn!("tmpfile {} on a gone mount: {e}", node.ino),
            }
        }
    }

    /// Is `name` in `dir` the hidden name of an orphan? (readdir skips it.)
    pub fn is_hidden_name(&self, mnt: usize, dir: u64, name: &[u8]) -> bool {
        name.starts_with(b".umlrun-")
            && self
                .orphans
                .iter()
                .any(|(k, (d, n))| k.0 == mnt && *d == dir && n == name)
    }

    /// Drops hidden names of orphans nobody uses any more.
    pub fn reap_orphans(&mut self) {
        if self.orphans.is_empty() {
            return;
        }
        let done: Vec<(usize, u64)> = self
            .orphans
            .keys()
            .copied()
            .filter(|&(mnt, ino)| !self.in_use(Node { mnt, ino }))
            .collect();
        for key in done {
            let (dir, name) = self.orphans.remove(&key).expect("listed");
            self.linkable_tmpfiles.remove(&key);
            self.pagecache.borrow_mut().drop_file(key, &mut self.frames);
            match self.mounts.fs(key.0) {
                Ok(fs) => {
                    if let Err(e) = fs.unlink(dir, &name) {
                        log::warn!("removing orphan inode {}: {e}", key.1);
                    }
                }
                Err(e) => log::warn!("orphan inode {} on a gone mount: {e}", key.1),
            }
        }
    }

    /// The link count a guest sees (an orphan's hidden name not counted).
    pub fn visible_nlink(&self, node: Node, nlink: u32) -> u32 {
        if self.orphans.contains_key(&(node.mnt, node.ino)) {
            nlink.saturating_sub(1)
        } else {
            nlink
        }
    }
}
