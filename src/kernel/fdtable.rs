//! A process's file descriptor table: fd → open file description plus the
//! close-on-exec flag. Shared by CLONE_FILES threads, copied by fork.

use std::collections::BTreeMap;

use crate::errno::{Errno, KResult};
use crate::vfs::OpenFileRef;

/// RLIMIT_NOFILE default.
pub const NOFILE_MAX: u32 = 1024;

#[derive(Clone)]
pub struct FdEntry {
    pub file: OpenFileRef,
    pub cloexec: bool,
}

#[derive(Clone)]
pub struct FdTable {
    fds: BTreeMap<u32, FdEntry>,
    /// RLIMIT_NOFILE's soft limit: fds must stay below it.
    pub limit: u32,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable {
            fds: BTreeMap::new(),
            limit: NOFILE_MAX,
        }
    }
}

impl FdTable {
    pub fn new() -> Self {
        Self::default()
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
        for (&fd, _) in self.fds.range(min..) {
            if fd != want {
                break;
            }
            want += 1;
        }
        if want >= self.limit {
            return Err(Errno::EMFILE);
        }
        Ok(want)
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
}
