//! Virtual memory areas: a range of guest addresses with one protection
//! and one backing (anonymous memory or pages of a file).

use std::fmt;
use std::rc::Rc;

use super::frames::FrameRefs;
use super::types::{FaultError, GuestVirt, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::physmem::Frame;

/// A file's pages as the page cache serves them to mappings.
pub trait PageSource {
    /// The frame caching page `index` (read in or substituted if needed).
    /// The page cache keeps its own reference; the caller takes one for
    /// its PTE. Beyond the end of file is `Bus`.
    fn page(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError>;
    /// Same, for a write through a shared mapping: the page is marked
    /// dirty and its frame is writable in the host (copied up first if it
    /// mapped a read-only image page).
    fn page_for_write(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError>;
    /// (device, inode) for /proc/<pid>/maps.
    fn ident(&self) -> (u64, u64);
    /// The path shown in /proc/<pid>/maps.
    fn name(&self) -> Vec<u8>;
    /// (mount, inode) of the file, when it is one the VFS knows.
    fn key(&self) -> Option<(usize, u64)> {
        None
    }
    /// Shared memory (tmpfs, SysV): its mapped pages count as RssShmem.
    fn shmem(&self) -> bool {
        false
    }
    /// The page indices in `range` already cached (fault-around maps them
    /// without reading anything in); none when the source cannot tell.
    fn cached(&self, range: std::ops::Range<u64>) -> Vec<u64> {
        let _ = range;
        Vec::new()
    }
}

#[derive(Clone)]
pub enum Backing {
    Anon,
    File {
        source: Rc<dyn PageSource>,
        /// File page index of the VMA's first page.
        pgoff: u64,
    },
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Anon => write!(f, "Anon"),
            Backing::File { source, pgoff } => write!(
                f,
                "File({}, pgoff {pgoff})",
                String::from_utf8_lossy(&source.name())
            ),
        }
    }
}

/// mlock state of a VMA (Linux's VM_LOCKED and VM_LOCKONFAULT): locked
/// pages stay resident (never chosen for swap-out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lock {
    #[default]
    None,
    /// mlock, mlockall(MCL_CURRENT): every page is faulted in when locked.
    Populated,
    /// mlock2(MLOCK_ONFAULT), MCL_ONFAULT: pages are locked as they fault in.
    OnFault,
}

#[derive(Clone, Debug)]
pub struct Vma {
    /// First byte (page-aligned) and one past the last (page-aligned,
    /// `start < end <= USER_TOP`): whoever builds a VMA checks the range
    /// (`user_end`) first, so arithmetic inside it cannot wrap.
    pub start: GuestVirt,
    pub end: GuestVirt,
    pub prot: u32,
    /// MAP_SHARED: writes are seen by every mapping of the same pages.
    pub shared: bool,
    /// The mapping may ever be made writable (Linux's VM_MAYWRITE): false
    /// for a shared mapping of a file not opened for writing, so neither
    /// mprotect nor any other path can grant PROT_WRITE on it.
    pub may_write: bool,
    pub backing: Backing,
    /// What /proc/<pid>/maps shows for anonymous areas ("[heap]", "[stack]").
    pub label: Option<&'static str>,
    /// mlock state: kept by split and mremap, cleared in a fork's child.
    pub lock: Lock,
    /// The write access of the open file this was mapped from, when that
    /// file was opened for writing: the mapping keeps it (Linux's
    /// `vm_file`), so execve of the file stays ETXTBSY after the fd is
    /// closed (vfs/writecount.rs). Split, mremap and fork clone it.
    pub write_ref: Option<crate::vfs::writecount::WriteRef>,
}

impl Vma {
    pub fn len(&self) -> u64 {
        self.end.get() - self.start.get()
    }

    /// Linux's is_data_mapping: private, writable, not the stack. VmData
    /// counts these; RLIMIT_DATA bounds them.
    pub fn is_data(&self) -> bool {
        self.prot & PROT_WRITE != 0 && !self.shared && self.label != Some("[stack]")
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    pub fn contains(&self, addr: GuestVirt) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The file page index for `addr` in a file-backed VMA.
    pub fn file_index(&self, addr: GuestVirt) -> Option<u64> {
        match &self.backing {
            Backing::File { pgoff, .. } => {
                pgoff.checked_add(addr.get().checked_sub(self.start.get())? / PAGE)
            }
            Backing::Anon => None,
        }
    }

    /// The part of this VMA from `at` on; `self` keeps the part before.
    pub fn split_off(&mut self, at: GuestVirt) -> Vma {
        debug_assert!(self.start < at && at < self.end);
        let mut tail = self.clone();
        tail.start = at;
        if let Backing::File { pgoff, .. } = &mut tail.backing {
            *pgoff = pgoff.saturating_add((at.get() - self.start.get()) / PAGE);
        }
        self.end = at;
        tail
    }

    /// "r-xp"-style flags for /proc/<pid>/maps.
    pub fn perms(&self) -> String {
        let mut s = String::with_capacity(4);
        s.push(if self.prot & PROT_READ != 0 { 'r' } else { '-' });
        s.push(if self.prot & PROT_WRITE != 0 {
            'w'
        } else {
            '-'
        });
        s.push(if self.prot & PROT_EXEC != 0 { 'x' } else { '-' });
        s.push(if self.shared { 's' } else { 'p' });
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_file_offsets() {
        struct Nothing;
        impl PageSource for Nothing {
            fn page(&self, _: u64, _: &mut FrameRefs) -> Result<Frame, FaultError> {
                Err(FaultError::Bus)
            }
            fn page_for_write(&self, _: u64, _: &mut FrameRefs) -> Result<Frame, FaultError> {
                Err(FaultError::Bus)
            }
            fn ident(&self) -> (u64, u64) {
                (0, 0)
            }
            fn name(&self) -> Vec<u8> {
                b"/x".to_vec()
            }
        }
        let mut v = Vma {
            start: GuestVirt(0x10000),
            end: GuestVirt(0x14000),
            prot: PROT_READ | PROT_EXEC,
            shared: false,
            may_write: true,
            backing: Backing::File {
                source: Rc::new(Nothing),
                pgoff: 2,
            },
            label: None,
            lock: Lock::OnFault,
            write_ref: None,
        };
        let t = v.split_off(GuestVirt(0x12000));
        assert_eq!((v.start.get(), v.end.get()), (0x10000, 0x12000));
        assert_eq!((t.start.get(), t.end.get()), (0x12000, 0x14000));
        assert_eq!(t.file_index(GuestVirt(0x12000)), Some(4));
        assert_eq!(v.file_index(GuestVirt(0x11000)), Some(3));
        assert_eq!(v.perms(), "r-xp");
        assert_eq!((v.lock, t.lock), (Lock::OnFault, Lock::OnFault));
    }
}
