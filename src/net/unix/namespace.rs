//! The names AF_UNIX sockets are bound to: abstract names (a table of
//! their own) and path names (keyed by the socket inode the bind made,
//! so a renamed or hard-linked socket file still reaches its socket and
//! an unlinked one does not). Entries hold weak references: a closed
//! socket's name is gone even before its entry is removed.

use std::collections::HashMap;
use std::rc::{Rc, Weak};

use crate::errno::{Errno, KResult};
use crate::net::sockaddr::UnixAddr;

/// A socket inode: (mount index, inode number).
pub type InodeKey = (usize, u64);

/// How many autobind names there are ("\0" + 5 hex digits).
const AUTOBIND_NAMES: u32 = 0x10_0000;

pub struct Namespace<S> {
    abstract_names: HashMap<Vec<u8>, Weak<S>>,
    paths: HashMap<InodeKey, Weak<S>>,
    next_auto: u32,
}

impl<S> Default for Namespace<S> {
    fn default() -> Self {
        Namespace {
            abstract_names: HashMap::new(),
            paths: HashMap::new(),
            next_auto: 0,
        }
    }
}

impl<S> Namespace<S> {
    /// Binds an abstract name; EADDRINUSE if a live socket has it.
    pub fn bind_abstract(&mut self, name: &[u8], s: &Rc<S>) -> KResult<()> {
        if self.lookup_abstract(name).is_some() {
            return Err(Errno::EADDRINUSE);
        }
        self.abstract_names.insert(name.to_vec(), Rc::downgrade(s));
        Ok(())
    }

    /// Picks a free autobind name and binds it. ENOSPC when all million
    /// are taken.
    pub fn autobind(&mut self, s: &Rc<S>) -> KResult<UnixAddr> {
        for _ in 0..AUTOBIND_NAMES {
            let n = self.next_auto;
            self.next_auto = (n + 1) % AUTOBIND_NAMES;
            let addr = UnixAddr::autobind(n);
            if let UnixAddr::Abstract(name) = &addr {
                if self.bind_abstract(name, s).is_ok() {
                    return Ok(addr);
                }
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Ties a freshly made socket inode to its socket.
    pub fn bind_path(&mut self, key: InodeKey, s: &Rc<S>) {
        self.paths.insert(key, Rc::downgrade(s));
    }

    pub fn lookup_abstract(&self, name: &[u8]) -> Option<Rc<S>> {
        self.abstract_names.get(name).and_then(Weak::upgrade)
    }

    pub fn lookup_path(&self, key: InodeKey) -> Option<Rc<S>> {
        self.paths.get(&key).and_then(Weak::upgrade)
    }

    /// A socket bound to `addr` (at `key` for a path) is closing.
    pub fn unbind(&mut self, addr: &UnixAddr, key: Option<InodeKey>) {
        match addr {
            UnixAddr::Abstract(n) => {
                self.abstract_names.remove(n);
            }
            UnixAddr::Path(_) => {
                if let Some(k) = key {
                    self.paths.remove(&k);
                }
            }
            UnixAddr::Unnamed => {}
        }
    }

    /// Names held (for tests and /proc/net/unix).
    pub fn len(&self) -> usize {
        self.abstract_names.len() + self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_names_are_unique_while_alive() {
        let mut ns = Namespace::<u8>::default();
        let a = Rc::new(1u8);
        ns.bind_abstract(b"x", &a).unwrap();
        assert_eq!(ns.bind_abstract(b"x", &Rc::new(2)), Err(Errno::EADDRINUSE));
        assert_eq!(*ns.lookup_abstract(b"x").unwrap(), 1);
        drop(a);
        // The holder is gone: the name is free even before unbind.
        assert!(ns.lookup_abstract(b"x").is_none());
        let b = Rc::new(3u8);
        ns.bind_abstract(b"x", &b).unwrap();
        ns.unbind(&UnixAddr::Abstract(b"x".to_vec()), None);
        assert!(ns.lookup_abstract(b"x").is_none());
    }

    #[test]
    fn autobind_skips_taken_names() {
        let mut ns = Namespace::<u8>::default();
        let s = Rc::new(0u8);
        ns.bind_abstract(b"00000", &s).unwrap();
        let a = ns.autobind(&s).unwrap();
        assert_eq!(a, UnixAddr::Abstract(b"00001".to_vec()));
        assert_eq!(a.encode().len(), 8);
    }

    #[test]
    fn paths_are_keyed_by_inode() {
        let mut ns = Namespace::<u8>::default();
        let s = Rc::new(0u8);
        ns.bind_path((1, 12), &s);
        assert!(ns.lookup_path((1, 12)).is_some());
        assert!(ns.lookup_path((1, 13)).is_none());
        ns.unbind(&UnixAddr::Path(b"/s".to_vec()), Some((1, 12)));
        assert!(ns.lookup_path((1, 12)).is_none());
        assert!(ns.is_empty());
    }
}
