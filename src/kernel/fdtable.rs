//! A process's file descriptor table: fd → open file description plus the
//! close-on-exec flag. Shared by CLONE_FILES threads, copied by fork.
//!
//! A call that installs several fds at once (pipe, pipe2, and later
//! socketpair, SCM_RIGHTS, ptys) first takes them all with [`FdTable::reserve`]
//! — EMFILE with nothing taken if they do not all fit — and then either fills
//! them with [`FdTable::install_reserved`] or gives them back with
//! [`FdTable::unreserve`], so a failure never leaves half the fds behind.

use std::collections::{BTreeMap, BTreeSet};

use crate::errno::{Errno, KResult};
use crate::vfs::OpenFileRef;

/// RLIMIT_NOFILE default.
pub const NOFILE_MAX: u32 = 1024;
/// fs.nr_open: the most RLIMIT_NOFILE may be set to.
pub const NR_OPEN: u32 = 1 << 20;

#[derive(Clone)]
pub struct FdEntry {
    pub file: OpenFileRef,
    pub cloexec: bool,
}

#[derive(Clone)]
pub struct FdTable {
    fds: BTreeMap<u32, FdEntry>,
    /// Slots taken by a reservation, not yet installed: no other install
    /// may use them.
    reserved: BTreeSet<u32>,
    /// RLIMIT_NOFILE's soft limit: fds must stay below it.
    pub limit: u32,
    /// The owner of the POSIX locks taken through this table (Linux's
    /// `files_struct`): unique among tables; `forked` gives a new one.
    pub owner: u64,
}

/// The next `FdTable::owner`.
static NEXT_OWNER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// fd numbers held by [`FdTable::reserve`] for one call; it must end in
/// [`FdTable::install_reserved`] or [`FdTable::unreserve`].
#[must_use]
#[derive(Debug)]
pub struct FdReservation {
    fds: Vec<u32>,
}

impl FdReservation {
    /// The reserved fd numbers, lowest first.
    pub fn fds(&self) -> Vec<i32> {
        self.fds.iter().map(|&f| f as i32).collect()
    }
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable {
            fds: BTreeMap::new(),
            reserved: BTreeSet::new(),
            limit: NOFILE_MAX,
            owner: next_owner(),
        }
    }
}

impl FdTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy for a new process (fork): the same fds, a new lock owner, so
    /// POSIX locks are not inherited.
    pub fn forked(&self) -> Self {
        FdTable {
            owner: next_owner(),
            ..self.clone()
        }
    }

    pub fn get(&self, fd: i32) -> KResult<&FdEntry> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds.get(&(fd as u32)).ok_or(Errno::EBADF)
    }

    pub fn get_mut(&mut self, fd: i32) -> KResult<&mut FdEntry> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds.get_mut(&(fd as u32)).ok_or(Errno::EBADF)
    }

    pub fn file(&self, fd: i32) -> KResult<OpenFileRef> {
        Ok(self.get(fd)?.file.clone())
    }

    /// The lowest free fd at or above `min`.
    pub fn lowest_free(&self, min: u32) -> KResult<u32> {
        let mut want = min;
        while want < self.limit {
            if !self.fds.contains_key(&want) && !self.reserved.contains(&want) {
                return Ok(want);
            }
            want += 1;
        }
        Err(Errno::EMFILE)
    }

    /// Takes the `n` lowest free fds at or above `min`, or none at all
    /// (EMFILE) when fewer than `n` are free below the limit.
    pub fn reserve(&mut self, n: usize, min: u32) -> KResult<FdReservation> {
        let mut fds = Vec::with_capacity(n);
        let mut from = min;
        for _ in 0..n {
            match self.lowest_free(from) {
                Ok(fd) => {
                    self.reserved.insert(fd);
                    fds.push(fd);
                    from = fd + 1;
                }
                Err(e) => {
                    self.unreserve(FdReservation { fds });
                    return Err(e);
                }
            }
        }
        Ok(FdReservation { fds })
    }

    /// Fills a reservation, one file per reserved fd in order; returns the fds.
    pub fn install_reserved(
        &mut self,
        r: FdReservation,
        files: Vec<(OpenFileRef, bool)>,
    ) -> Vec<i32> {
        debug_assert_eq!(r.fds.len(), files.len(), "one file per reserved fd");
        let mut out = Vec::with_capacity(r.fds.len());
        for (fd, (file, cloexec)) in r.fds.into_iter().zip(files) {
            self.reserved.remove(&fd);
            self.fds.insert(fd, FdEntry { file, cloexec });
            out.push(fd as i32);
        }
        out
    }

    /// Gives a reservation's fds back unused.
    pub fn unreserve(&mut self, r: FdReservation) {
        for fd in r.fds {
            self.reserved.remove(&fd);
        }
    }

    pub fn install(&mut self, file: OpenFileRef, cloexec: bool, min: u32) -> KResult<i32> {
        let fd = self.lowest_free(min)?;
        self.fds.insert(fd, FdEntry { file, cloexec });
        Ok(fd as i32)
    }

    /// dup2 semantics: replaces whatever `fd` held; returns the old entry.
    pub fn install_at(
        &mut self,
        fd: i32,
        file: OpenFileRef,
        cloexec: bool,
    ) -> KResult<Option<FdEntry>> {
        if fd < 0 || fd as u32 >= self.limit {
            return Err(Errno::EBADF);
        }
        Ok(self.fds.insert(fd as u32, FdEntry { file, cloexec }))
    }

    pub fn remove(&mut self, fd: i32) -> KResult<FdEntry> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.fds.remove(&(fd as u32)).ok_or(Errno::EBADF)
    }

    /// Drops the close-on-exec fds (execve); returns them for closing.
    pub fn close_on_exec(&mut self) -> Vec<FdEntry> {
        let gone: Vec<u32> = self
            .fds
            .iter()
            .filter(|(_, e)| e.cloexec)
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .filter_map(|k| self.fds.remove(&k))
            .collect()
    }

    pub fn take_all(&mut self) -> Vec<FdEntry> {
        std::mem::take(&mut self.fds).into_values().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &FdEntry)> {
        self.fds.iter().map(|(k, v)| (*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::files::chardev::CharDevFile;
    use crate::vfs::OpenFile;

    fn f() -> OpenFileRef {
        OpenFile::new(
            CharDevFile::new(crate::fs::devices::CharDevice::Null, None),
            2,
            b"/dev/null".to_vec(),
        )
    }

    #[test]
    fn lowest_free_fills_gaps() {
        let mut t = FdTable::new();
        assert_eq!(t.install(f(), false, 0).unwrap(), 0);
        assert_eq!(t.install(f(), false, 0).unwrap(), 1);
        assert_eq!(t.install(f(), true, 0).unwrap(), 2);
        t.remove(1).unwrap();
        assert_eq!(t.install(f(), false, 0).unwrap(), 1);
        assert_eq!(t.install(f(), false, 10).unwrap(), 10);
        assert_eq!(t.close_on_exec().len(), 1);
        assert!(t.get(2).is_err());
        assert_eq!(t.get(-1).err(), Some(Errno::EBADF));
    }

    #[test]
    fn reserve_is_all_or_nothing() {
        let mut t = FdTable::new();
        t.limit = 4;
        t.install(f(), false, 0).unwrap();
        t.install(f(), false, 0).unwrap();
        t.install(f(), false, 0).unwrap();
        // One slot free: a two-fd call gets EMFILE and takes nothing.
        assert_eq!(t.reserve(2, 0).err(), Some(Errno::EMFILE));
        assert_eq!(t.lowest_free(0).unwrap(), 3);
        t.remove(1).unwrap();
        let r = t.reserve(2, 0).unwrap();
        assert_eq!(r.fds(), vec![1, 3]);
        // Reserved slots are not handed out to anyone else meanwhile.
        assert_eq!(t.install(f(), false, 0).err(), Some(Errno::EMFILE));
        assert_eq!(
            t.install_reserved(r, vec![(f(), false), (f(), true)]),
            vec![1, 3]
        );
        assert!(t.get(3).unwrap().cloexec);
        t.remove(1).unwrap();
        t.remove(3).unwrap();
        let r = t.reserve(2, 0).unwrap();
        t.unreserve(r);
        assert_eq!(t.reserve(2, 0).unwrap().fds(), vec![1, 3]);
    }
}
