//! Path resolution.

use std::collections::VecDeque;

use super::mount::{MountTable, Node};
use super::perm::{Cred, MAY_EXEC};
use crate::errno::{Errno, KResult};
use crate::fs::{Stat, S_IFDIR, S_IFLNK, S_IFMT};

/// Linux's limit on symlinks followed in one walk.
const MAX_SYMLINKS: u32 = 40;
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

/// A resolved location.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub node: Node,
    /// Canonical absolute path ("/" for the root).
    pub path: Vec<u8>,
    pub stat: Stat,
}

/// The result of a walk that may end at a name that does not exist yet.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Resolved),
    /// Everything but the last component exists; `parent` is a directory.
    Missing {
        parent: Resolved,
        name: Vec<u8>,
    },
}

fn split(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

pub fn join_path(names: &[Vec<u8>]) -> Vec<u8> {
    if names.is_empty() {
        return b"/".to_vec();
    }
    let mut p = Vec::new();
    for n in names {
        p.push(b'/');
        p.extend_from_slice(n);
    }
    p
}

pub fn is_dir(st: &Stat) -> bool {
    st.mode & S_IFMT == S_IFDIR
}

impl MountTable {
    /// Steps into whatever is mounted on `n`.
    fn cross_mounts(&self, mut n: Node) -> KResult<Node> {
        while let Some(m) = self.mounted_on(n) {
            n = Node {
                mnt: m,
                ino: self.fs(m)?.root(),
            };
        }
        Ok(n)
    }

    pub fn stat_node(&self, n: Node) -> KResult<Stat> {
        let mut st = self.fs(n.mnt)?.stat(n.ino)?;
        st.ino = n.ino;
        Ok(st)
    }

    /// The nodes and names from the real root down to the canonical
    /// directory `path`: a reference the caller already holds (its root,
    /// its cwd, an open directory), so no search permission is checked on
    /// the way, as Linux starts a walk from the reference itself.
    fn descend(&self, path: &[u8]) -> KResult<(Vec<Node>, Vec<Vec<u8>>)> {
        let mut stack = vec![self.cross_mounts(self.root()?)?];
        let mut names = Vec::new();
        for c in split(path) {
            let cur = *stack.last().expect("root stays");
            let ino = self.fs(cur.mnt)?.lookup(cur.ino, c)?;
            let node = self.cross_mounts(Node { mnt: cur.mnt, ino })?;
            if !is_dir(&self.stat_node(node)?) {
                // Canonical paths name directories only: it was replaced.
                return Err(Errno::ENOENT);
            }
            stack.push(node);
            names.push(c.to_vec());
        }
        Ok((stack, names))
    }

    /// Resolves `path` relative to the canonical directory `base`, with
    /// the canonical directory `root` as the caller's root (chroot): an
    /// absolute path or symlink starts there and `..` there stays there.
    /// A walk that starts outside `root` (a cwd or dirfd kept across
    /// chroot) may go up past it to the real root, as on Linux, where
    /// `..` stops only at the root itself.
    /// `follow_last`: follow a symlink in the last component.
    pub fn walk(
        &self,
        root: &[u8],
        base: &[u8],
        path: &[u8],
        follow_last: bool,
        cred: &Cred,
    ) -> KResult<Lookup> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() > PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let must_be_dir = path.ends_with(b"/");
        let follow_last = follow_last || must_be_dir;
        let mut comps: VecDeque<Vec<u8>> = split(path).map(|c| c.to_vec()).collect();
        let (root_stack, root_names) = self.descend(root)?;
        let (mut stack, mut names) = if path[0] == b'/' {
            (root_stack.clone(), root_names.clone())
        } else {
            self.descend(base)?
        };
        let mut links = 0u32;
        while let Some(c) = comps.pop_front() {
            if c == b"." {
                continue;
            }
            if c == b".." {
                if names != root_names && stack.len() > 1 {
                    stack.pop();
                    names.pop();
                }
                continue;
            }
            if c.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            let cur = *stack.last().expect("root stays");
            let cur_st = self.stat_node(cur)?;
            if !is_dir(&cur_st) {
                return Err(Errno::ENOTDIR);
            }
            cred.check(&cur_st, MAY_EXEC)?;
            let fs = self.fs(cur.mnt)?;
            let ino = match fs.lookup(cur.ino, &c) {
                Ok(i) => i,
                Err(Errno::ENOENT) if comps.is_empty() => {
                    return Ok(Lookup::Missing {
                        parent: Resolved {
                            node: cur,
                            path: join_path(&names),
                            stat: cur_st,
                        },
                        name: c,
                    });
                }
                Err(e) => return Err(e),
            };
            let node = self.cross_mounts(Node { mnt: cur.mnt, ino })?;
            let st = self.stat_node(node)?;
            let last = comps.is_empty();
            if st.mode & S_IFMT == S_IFLNK && (!last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let lfs = self.fs(node.mnt)?;
                let target = lfs.readlink(node.ino)?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                if let Some(to) = self.magic_target(lfs.as_ref(), node.ino) {
                    // The file itself, named by the link's text (a
                    // directory target is walked by its text below),
                    // which is relative to the walker's root.
                    stack.truncate(1);
                    stack.push(to);
                    names.clone_from(&root_names);
                    names.push(target.strip_prefix(b"/").unwrap_or(&target).to_vec());
                    continue;
                }
                if target[0] == b'/' {
                    stack.clone_from(&root_stack);
                    names.clone_from(&root_names);
                }
                for t in split(&target).collect::<Vec<_>>().into_iter().rev() {
                    comps.push_front(t.to_vec());
                }
                if must_be_dir && comps.is_empty() {
                    comps.push_back(b".".to_vec());
                }
                continue;
            }
            stack.push(node);
            names.push(c);
        }
        let node = *stack.last().expect("root stays");
        let stat = self.stat_node(node)?;
        if must_be_dir && !is_dir(&stat) {
            return Err(Errno::ENOTDIR);
        }
        Ok(Lookup::Found(Resolved {
            node,
            path: join_path(&names),
            stat,
        }))
    }

    /// Where a magic link (see `FileSystem::magic_link`) leads, when that
    /// is a file that still exists and is not a directory.
    fn magic_target(&self, fs: &dyn crate::fs::FileSystem, ino: crate::fs::Ino) -> Option<Node> {
        let (mnt, ino) = fs.magic_link(ino)?;
        let to = Node { mnt, ino };
        let st = self.stat_node(to).ok()?;
        (!is_dir(&st)).then_some(to)
    }

    /// Resolves a path that must exist.
    pub fn resolve(
        &self,
        root: &[u8],
        base: &[u8],
        path: &[u8],
        follow_last: bool,
        cred: &Cred,
    ) -> KResult<Resolved> {
        match self.walk(root, base, path, follow_last, cred)? {
            Lookup::Found(r) => Ok(r),
            Lookup::Missing { .. } => Err(Errno::ENOENT),
        }
    }

    /// For creating operations: the parent directory and the last name.
    /// Fails with EEXIST semantics left to the caller (Found means it exists).
    pub fn resolve_parent(
        &self,
        root: &[u8],
        base: &[u8],
        path: &[u8],
        cred: &Cred,
    ) -> KResult<(Resolved, Vec<u8>, Option<Resolved>)> {
        let trimmed = trim_trailing_slashes(path);
        if trimmed == b"/" {
            // The root always exists (mkdir -p /a/b starts with mkdir("/")).
            return Err(Errno::EEXIST);
        }
        let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..i.max(1)], &trimmed[i + 1..]),
            None => (&b"."[..], trimmed),
        };
        let dir = if trimmed.first() == Some(&b'/') && dir.is_empty() {
            &b"/"[..]
        } else {
            dir
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(if name.is_empty() {
                Errno::ENOENT
            } else {
                Errno::EEXIST
            });
        }
        let parent = self.resolve(root, base, dir, true, cred)?;
        if !is_dir(&parent.stat) {
            return Err(Errno::ENOTDIR);
        }
        let existing = match self.walk(root, &parent.path, name, false, cred)? {
            Lookup::Found(r) => Some(r),
            Lookup::Missing { .. } => None,
        };
        Ok((parent, name.to_vec(), existing))
    }
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins() {
        assert_eq!(join_path(&[]), b"/");
        assert_eq!(join_path(&[b"a".to_vec(), b"b".to_vec()]), b"/a/b");
        assert_eq!(trim_trailing_slashes(b"/a//"), b"/a");
        assert_eq!(trim_trailing_slashes(b"/"), b"/");
    }
}
