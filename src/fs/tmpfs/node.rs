//! tmpfs inodes and the inode table: attributes, kinds, name checks.

use std::collections::{BTreeMap, HashMap};

use super::pages::FilePages;
use crate::errno::{Errno, KResult};
use crate::fs::*;

/// Longest file name (NAME_MAX).
pub const NAME_MAX: usize = 255;

#[derive(Debug, Clone)]
pub enum Kind {
    File {
        size: u64,
        pages: FilePages,
    },
    Dir {
        entries: BTreeMap<Vec<u8>, Ino>,
        parent: Ino,
    },
    Symlink(Vec<u8>),
    /// Device node, fifo or socket: only attributes live here.
    Special,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub kind: Kind,
    /// Open references the kernel holds (see `Tmpfs::hold`).
    pub holds: u32,
    /// Extended attributes, full name (with namespace) to value.
    pub xattrs: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir { .. })
    }

    pub fn dt(&self) -> u8 {
        match self.mode & S_IFMT {
            S_IFDIR => DT_DIR,
            S_IFREG => DT_REG,
            S_IFLNK => DT_LNK,
            S_IFCHR => DT_CHR,
            S_IFBLK => DT_BLK,
            S_IFIFO => DT_FIFO,
            S_IFSOCK => DT_SOCK,
            _ => DT_UNKNOWN,
        }
    }

    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File { size, .. } => *size,
            Kind::Dir { entries, .. } => (entries.len() as u64 + 2) * 20,
            Kind::Symlink(t) => t.len() as u64,
            Kind::Special => 0,
        }
    }

    pub fn pages(&self) -> u64 {
        match &self.kind {
            Kind::File { pages, .. } => pages.count(),
            _ => 0,
        }
    }
}

/// The inode table.
#[derive(Debug, Default)]
pub struct Table {
    pub nodes: HashMap<Ino, Node>,
    pub next_ino: Ino,
}

impl Table {
    pub fn get(&self, ino: Ino) -> KResult<&Node> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    pub fn get_mut(&mut self, ino: Ino) -> KResult<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    pub fn entries(&self, dir: Ino) -> KResult<&BTreeMap<Vec<u8>, Ino>> {
        match &self.get(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub fn entries_mut(&mut self, dir: Ino) -> KResult<&mut BTreeMap<Vec<u8>, Ino>> {
        match &mut self.get_mut(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub fn parent(&self, dir: Ino) -> KResult<Ino> {
        match &self.get(dir)?.kind {
            Kind::Dir { parent, .. } => Ok(*parent),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Is `a` equal to `b` or an ancestor of it?
    pub fn is_ancestor(&self, a: Ino, mut b: Ino) -> bool {
        loop {
            if a == b {
                return true;
            }
            match self.parent(b) {
                Ok(p) if p != b => b = p,
                _ => return false,
            }
        }
    }

    pub fn insert(&mut self, node: Node) -> Ino {
        self.next_ino += 1;
        self.nodes.insert(self.next_ino, node);
        self.next_ino
    }
}

/// Checks a name to be created or looked up in a directory.
pub fn check_name(name: &[u8]) -> KResult<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name(b""), Err(Errno::ENOENT));
        assert_eq!(check_name(&[b'a'; 256]), Err(Errno::ENAMETOOLONG));
        assert!(check_name(&[b'a'; 255]).is_ok());
        assert_eq!(check_name(b"a/b"), Err(Errno::EINVAL));
        assert!(is_dot(b"..") && !is_dot(b"..."));
    }
}
