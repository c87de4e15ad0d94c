//! Directory references (Linux's `struct path`/dentry, gVisor's
//! `VirtualDentry`): the cwd, the root (chroot) and every open directory hold a `Dentry`, not
//! a path string. The kernel's `DentryTable` knows every live one and
//! keeps it true when the namespace changes: a rename moves the dentries
//! at and below the old name to the new one, an rmdir (or a rename over a
//! directory) marks the one there dead. So a process whose cwd or open
//! directory was moved keeps working in it, and one whose directory was
//! removed gets ENOENT instead of landing in a new directory of the same
//! name.
//!
//! A dentry stores its canonical absolute path; paths are what the walk
//! resolves from (`..` is resolved on the path, never on the disk).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::mount::Node;

pub struct Dentry {
    node: Node,
    path: RefCell<Vec<u8>>,
    dead: Cell<bool>,
}

pub type DentryRef = Rc<Dentry>;

impl Dentry {
    pub fn node(&self) -> Node {
        self.node
    }

    /// Its canonical absolute path now.
    pub fn path(&self) -> Vec<u8> {
        self.path.borrow().clone()
    }

    /// Removed (rmdir, or replaced by a rename).
    pub fn is_dead(&self) -> bool {
        self.dead.get()
    }
}

/// Every live dentry, to be kept in step with renames and removals.
#[derive(Default)]
pub struct DentryTable {
    live: RefCell<Vec<Weak<Dentry>>>,
    /// Size after the last sweep of dropped entries.
    swept: Cell<usize>,
}

/// `path` is `dir` or below it.
fn at_or_below(path: &[u8], dir: &[u8]) -> bool {
    path == dir || (path.starts_with(dir) && (dir == b"/" || path.get(dir.len()) == Some(&b'/')))
}

/// Canonical `path` as a process whose root (chroot) is the canonical
/// `root` names it: below the root, the rest after it ("/" for the root
/// itself); None when the root does not lead to it (Linux's d_path then
/// shows the path from the real root, getcwd prefixes "(unreachable)").
pub fn seen_from(root: &[u8], path: &[u8]) -> Option<Vec<u8>> {
    if root == b"/" {
        return Some(path.to_vec());
    }
    if !at_or_below(path, root) {
        return None;
    }
    let rest = &path[root.len()..];
    Some(if rest.is_empty() {
        b"/".to_vec()
    } else {
        rest.to_vec()
    })
}

/// What a path-showing file (/proc/<pid>/cwd, fd/<n>, exe, maps) shows
/// a reader whose root is `root`: `seen_from`, or the real path when
/// that root does not lead to it, as Linux's d_path.
pub fn shown_from(root: &[u8], path: &[u8]) -> Vec<u8> {
    if path.first() != Some(&b'/') {
        // "pipe:[..]", "socket:[..]", "anon_inode:...": not a path.
        return path.to_vec();
    }
    seen_from(root, path).unwrap_or_else(|| path.to_vec())
}

impl DentryTable {
    /// A reference to the directory `node` found at canonical `path`.
    pub fn get(&self, node: Node, path: Vec<u8>) -> DentryRef {
        let d = Rc::new(Dentry {
            node,
            path: RefCell::new(path),
            dead: Cell::new(false),
        });
        let mut live = self.live.borrow_mut();
        if live.len() >= 2 * self.swept.get().max(32) {
            live.retain(|w| w.strong_count() > 0);
            self.swept.set(live.len());
        }
        live.push(Rc::downgrade(&d));
        d
    }

    fn each(&self, mut f: impl FnMut(&Dentry)) {
        for w in self.live.borrow().iter() {
            if let Some(d) = w.upgrade() {
                if !d.is_dead() {
                    f(&d);
                }
            }
        }
    }

    /// `old` was renamed to `new` (canonical paths). A directory that was
    /// at `new` and got replaced dies first.
    pub fn renamed(&self, old: &[u8], new: &[u8], replaced: Option<Node>) {
        if let Some(n) = replaced {
            self.removed(new, n);
        }
        self.each(|d| {
            let p = d.path();
            if at_or_below(&p, old) {
                let mut np = new.to_vec();
                np.extend_from_slice(&p[old.len()..]);
                *d.path.borrow_mut() = np;
            }
        });
    }

    /// renameat2(RENAME_EXCHANGE) swapped the entries at `a` and `b`
    /// (neither inside the other): what was at or below one is now at or
    /// below the other.
    pub fn exchanged(&self, a: &[u8], b: &[u8]) {
        self.each(|d| {
            let p = d.path();
            let moved = if at_or_below(&p, a) {
                Some((a.len(), b))
            } else if at_or_below(&p, b) {
                Some((b.len(), a))
            } else {
                None
            };
            if let Some((cut, to)) = moved {
                let mut np = to.to_vec();
                np.extend_from_slice(&p[cut..]);
                *d.path.borrow_mut() = np;
            }
        });
    }

    /// The directory `node` at `path` was removed.
    pub fn removed(&self, path: &[u8], node: Node) {
        self.each(|d| {
            if d.node == node && *d.path.borrow() == path {
                d.dead.set(true);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(ino: u64) -> Node {
        Node { mnt: 0, ino }
    }

    #[test]
    fn paths_are_seen_from_a_root() {
        assert_eq!(seen_from(b"/", b"/a/b").unwrap(), b"/a/b");
        assert_eq!(seen_from(b"/j", b"/j").unwrap(), b"/");
        assert_eq!(seen_from(b"/j", b"/j/a").unwrap(), b"/a");
        assert_eq!(
            seen_from(b"/j", b"/jail/a"),
            None,
            "a common prefix is not below"
        );
        assert_eq!(seen_from(b"/j", b"/"), None);
        assert_eq!(
            shown_from(b"/j", b"/tmp"),
            b"/tmp",
            "unreachable: the real path"
        );
        assert_eq!(shown_from(b"/j", b"/j/x"), b"/x");
        assert_eq!(shown_from(b"/j", b"pipe:[3]"), b"pipe:[3]");
    }

    #[test]
    fn exchange_swaps_both_subtrees() {
        let t = DentryTable::default();
        let a = t.get(n(2), b"/a".to_vec());
        let ab = t.get(n(3), b"/a/b".to_vec());
        let x = t.get(n(4), b"/d/x".to_vec());
        let xy = t.get(n(5), b"/d/x/y".to_vec());
        let other = t.get(n(6), b"/ab".to_vec());
        t.exchanged(b"/a", b"/d/x");
        assert_eq!(a.path(), b"/d/x");
        assert_eq!(ab.path(), b"/d/x/b");
        assert_eq!(x.path(), b"/a");
        assert_eq!(xy.path(), b"/a/y");
        assert_eq!(other.path(), b"/ab");
    }

    #[test]
    fn rename_moves_the_dentry_and_those_below() {
        let t = DentryTable::default();
        let a = t.get(n(2), b"/a".to_vec());
        let ab = t.get(n(3), b"/a/b".to_vec());
        let ax = t.get(n(4), b"/ax".to_vec());
        t.renamed(b"/a", b"/z/y", None);
        assert_eq!(a.path(), b"/z/y");
        assert_eq!(ab.path(), b"/z/y/b");
        assert_eq!(ax.path(), b"/ax", "a sibling with a common prefix stays");
    }

    #[test]
    fn removal_and_replacement_kill_only_that_directory() {
        let t = DentryTable::default();
        let a = t.get(n(2), b"/a".to_vec());
        let b = t.get(n(3), b"/b".to_vec());
        let again = t.get(n(9), b"/a".to_vec());
        t.removed(b"/a", n(2));
        assert!(a.is_dead());
        assert!(!again.is_dead(), "another directory at that name lives");
        t.renamed(b"/b", b"/a", Some(n(9)));
        assert!(again.is_dead());
        assert_eq!(b.path(), b"/a");
        assert!(!b.is_dead());
    }

    #[test]
    fn dropped_dentries_are_swept() {
        let t = DentryTable::default();
        for i in 0..1000 {
            let _ = t.get(n(i), b"/x".to_vec());
        }
        assert!(t.live.borrow().len() < 100);
    }
}
