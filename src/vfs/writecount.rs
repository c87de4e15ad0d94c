//! Write access per inode: Linux's `i_writecount`.
//!
//! A count per inode: above zero, that many holders may write it (open
//! files opened for writing, and the mappings made from them); below
//! zero, that many running programs deny writing it (execve). The two
//! exclude each other: a writer makes execve ETXTBSY, a running program
//! makes an open for writing (and truncate) ETXTBSY.
//!
//! Holders are reference-counted tokens, so the count follows the holder's
//! life without anyone remembering to give it back: an open file opened for
//! writing holds a `WriteRef`, every VMA mapped from that file clones it
//! (as Linux's `vma->vm_file` keeps the file and its write access, even
//! after the fd is closed, also for a private mapping), a file in flight
//! in an SCM_RIGHTS message keeps it because the message keeps the open
//! file. A `DenyRef` is held by an address space for the program it runs
//! (Linux's `mm->exe_file`); fork shares it, exec and exit drop it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::errno::{Errno, KResult};

/// An inode: (mount, inode number).
pub type InodeKey = (usize, u64);

/// The counts of every inode that has a writer or a running program.
#[derive(Default)]
pub struct WriteCounts {
    counts: RefCell<HashMap<InodeKey, i64>>,
}

pub type WriteCountsRef = Rc<WriteCounts>;

/// Write access to one inode, held while it lives.
pub struct WriteAccess {
    counts: WriteCountsRef,
    key: InodeKey,
}

/// What an open file or a VMA holds: clones share one access.
pub type WriteRef = Rc<WriteAccess>;

/// A running program's denial of write access to its file.
pub struct DenyWrite {
    counts: WriteCountsRef,
    key: InodeKey,
}

pub type DenyRef = Rc<DenyWrite>;

impl WriteCounts {
    pub fn new() -> WriteCountsRef {
        Rc::new(WriteCounts::default())
    }

    /// Write access to `key` (Linux's get_write_access): ETXTBSY while a
    /// program runs from it.
    pub fn get_write(self: &Rc<Self>, key: InodeKey) -> KResult<WriteRef> {
        self.change(key, 1)?;
        Ok(Rc::new(WriteAccess {
            counts: self.clone(),
            key,
        }))
    }

    /// Denies write access to `key` while the token lives (Linux's
    /// deny_write_access): ETXTBSY while anything may write it.
    pub fn deny_write(self: &Rc<Self>, key: InodeKey) -> KResult<DenyRef> {
        self.change(key, -1)?;
        Ok(Rc::new(DenyWrite {
            counts: self.clone(),
            key,
        }))
    }

    /// Anything may write `key` now (an open writer or a mapping of one).
    pub fn has_writers(&self, key: InodeKey) -> bool {
        self.count(key) > 0
    }

    /// A running program denies writes to `key`.
    pub fn write_denied(&self, key: InodeKey) -> bool {
        self.count(key) < 0
    }

    /// Inodes with a writer or a running program (for tests and /proc).
    pub fn len(&self) -> usize {
        self.counts.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn count(&self, key: InodeKey) -> i64 {
        self.counts.borrow().get(&key).copied().unwrap_or(0)
    }

    /// Adds `delta` (+1 a writer, -1 a denial) unless the other sign holds.
    fn change(&self, key: InodeKey, delta: i64) -> KResult<()> {
        let mut counts = self.counts.borrow_mut();
        let c = counts.entry(key).or_insert(0);
        if (*c > 0 && delta < 0) || (*c < 0 && delta > 0) {
            return Err(Errno::ETXTBSY);
        }
        // Each unit is a live token, so the count cannot come near i64's
        // range; the check only keeps that an argument, not a hope.
        *c = c.checked_add(delta).ok_or(Errno::ENFILE)?;
        Ok(())
    }

    /// A token went: its unit comes off, and a zero count is forgotten.
    fn put(&self, key: InodeKey, delta: i64) {
        let mut counts = self.counts.borrow_mut();
        if let Some(c) = counts.get_mut(&key) {
            *c -= delta;
            if *c == 0 {
                counts.remove(&key);
            }
        }
    }
}

impl Drop for WriteAccess {
    fn drop(&mut self) {
        self.counts.put(self.key, 1);
    }
}

impl Drop for DenyWrite {
    fn drop(&mut self) {
        self.counts.put(self.key, -1);
    }
}

impl fmt::Debug for WriteAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteAccess({}:{})", self.key.0, self.key.1)
    }
}

impl fmt::Debug for DenyWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DenyWrite({}:{})", self.key.0, self.key.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_and_programs_exclude_each_other() {
        let c = WriteCounts::new();
        let k = (1, 7);
        let w = c.get_write(k).unwrap();
        let w2 = w.clone();
        assert!(c.has_writers(k));
        assert_eq!(c.deny_write(k).err(), Some(Errno::ETXTBSY));
        drop(w);
        // A clone (a VMA mapped from the file) keeps the access.
        assert_eq!(c.deny_write(k).err(), Some(Errno::ETXTBSY));
        drop(w2);
        assert!(c.is_empty());
        let d = c.deny_write(k).unwrap();
        let d2 = c.deny_write(k).unwrap();
        assert!(c.write_denied(k));
        assert_eq!(c.get_write(k).err(), Some(Errno::ETXTBSY));
        drop(d);
        assert_eq!(c.get_write(k).err(), Some(Errno::ETXTBSY));
        drop(d2);
        let _w = c.get_write(k).unwrap();
        // Other inodes are not affected.
        let _d = c.deny_write((1, 8)).unwrap();
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_refused_token_leaves_no_entry() {
        let c = WriteCounts::new();
        let w = c.get_write((0, 1)).unwrap();
        assert!(c.deny_write((0, 1)).is_err());
        drop(w);
        assert!(c.is_empty());
    }
}
