//! Credentials and permission checks with the guest's uid/gid and mode bits.

use crate::errno::{Errno, KResult};
use crate::fs::Stat;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
}

impl Cred {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.egid == gid || self.groups.contains(&gid)
    }

    /// Checks `mask` (MAY_*) against a file's mode, owner and group. Root
    /// may do anything except execute a file with no execute bit at all.
    pub fn check(&self, st: &Stat, mask: u32) -> KResult<()> {
        if self.euid == 0 {
            let is_dir = st.mode & crate::fs::S_IFMT == crate::fs::S_IFDIR;
            if mask & MAY_EXEC != 0 && !is_dir && st.mode & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            return Ok(());
        }
        let bits = if self.euid == st.uid {
            (st.mode >> 6) & 7
        } else if self.in_group(st.gid) {
            (st.mode >> 3) & 7
        } else {
            st.mode & 7
        };
        if bits & mask == mask {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{S_IFDIR, S_IFREG};

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        Stat {
            mode,
            uid,
            gid,
            ..Default::default()
        }
    }

    #[test]
    fn owner_group_other() {
        let c = Cred {
            uid: 1000,
            euid: 1000,
            gid: 100,
            egid: 100,
            ..Default::default()
        };
        assert!(c
            .check(&st(S_IFREG | 0o600, 1000, 0), MAY_READ | MAY_WRITE)
            .is_ok());
        assert!(c.check(&st(S_IFREG | 0o060, 1000, 100), MAY_READ).is_err());
        assert!(c.check(&st(S_IFREG | 0o040, 0, 100), MAY_READ).is_ok());
        assert!(c.check(&st(S_IFREG | 0o004, 0, 0), MAY_WRITE).is_err());
    }

    #[test]
    fn root_needs_some_exec_bit() {
        let r = Cred::root();
        assert!(r
            .check(&st(S_IFREG | 0o600, 5, 5), MAY_READ | MAY_WRITE)
            .is_ok());
        assert_eq!(
            r.check(&st(S_IFREG | 0o644, 5, 5), MAY_EXEC),
            Err(Errno::EACCES)
        );
        assert!(r.check(&st(S_IFREG | 0o744, 5, 5), MAY_EXEC).is_ok());
        assert!(r.check(&st(S_IFDIR | 0o600, 5, 5), MAY_EXEC).is_ok());
    }
}
