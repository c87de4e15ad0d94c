//! devpts: /dev/pts, one character device (136:N) per pty slave the kernel
//! has unlocked, plus `ptmx` (5:2). The kernel's pty table (kernel/pty.rs)
//! owns the ptys; this file system only shows the `PtsView` it keeps up
//! to date. Every mount shows the same instance. Names cannot be made or
//! removed; an entry's owner and mode can change (grantpt).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::devices::encode_dev;
use super::*;
use crate::errno::{Errno, KResult};

/// Linux DEVPTS_SUPER_MAGIC.
pub const DEVPTS_SUPER_MAGIC: u64 = 0x1cd1;
const ROOT: Ino = 1;
const PTMX: Ino = 2;
/// Slave N is inode N + FIRST.
const FIRST: Ino = 3;

/// One visible slave: owner, group and permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtsEntry {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub ctime: Timespec,
}

/// Index → entry, shared with the kernel's pty table.
pub type PtsView = Rc<RefCell<BTreeMap<u32, PtsEntry>>>;

/// The major of pty slave `index` (136..=143, 256 minors each) and minor.
pub fn slave_dev(index: u32) -> u64 {
    encode_dev(136 + index / 256, index % 256)
}

pub struct DevPts {
    view: PtsView,
    created: Timespec,
}

impl DevPts {
    pub fn new(view: PtsView, created: Timespec) -> DevPts {
        DevPts { view, created }
    }

    fn index(&self, ino: Ino) -> KResult<u32> {
        let i = ino.checked_sub(FIRST).ok_or(Errno::ENOENT)?;
        let i = u32::try_from(i).map_err(|_| Errno::ENOENT)?;
        if self.view.borrow().contains_key(&i) {
            Ok(i)
        } else {
            Err(Errno::ENOENT)
        }
    }
}

impl FileSystem for DevPts {
    fn fs_type(&self) -> &'static str {
        "devpts"
    }

    fn root(&self) -> Ino {
        ROOT
    }

    fn stat(&self, ino: Ino) -> KResult<Stat> {
        let t = self.created;
        let base = Stat {
            ino,
            nlink: 1,
            blksize: 1024,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        };
        Ok(match ino {
            ROOT => Stat {
                mode: S_IFDIR | 0o755,
                nlink: 2,
                ..base
            },
            PTMX => Stat {
                mode: S_IFCHR | 0o666,
                rdev: encode_dev(5, 2),
                ..base
            },
            _ => {
                let i = self.index(ino)?;
                let e = self.view.borrow()[&i];
                Stat {
                    mode: S_IFCHR | (e.mode & 0o7777),
                    uid: e.uid,
                    gid: e.gid,
                    rdev: slave_dev(i),
                    ctime: e.ctime,
                    mtime: e.ctime,
                    atime: e.ctime,
                    ..base
                }
            }
        })
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        if dir != ROOT {
            return Err(Errno::ENOTDIR);
        }
        match name {
            b"." | b".." => Ok(ROOT),
            b"ptmx" => Ok(PTMX),
            _ => {
                let n = std::str::from_utf8(name)
                    .ok()
                    .filter(|s| !s.starts_with('0') || *s == "0")
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or(Errno::ENOENT)?;
                let ino = FIRST + n as u64;
                self.index(ino)?;
                Ok(ino)
            }
        }
    }

    fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        if dir != ROOT {
            return Err(Errno::ENOTDIR);
        }
        let mut v = vec![
            DirEntry {
                ino: ROOT,
                name: b".".to_vec(),
                file_type: DT_DIR,
            },
            DirEntry {
                ino: ROOT,
                name: b"..".to_vec(),
                file_type: DT_DIR,
            },
            DirEntry {
                ino: PTMX,
                name: b"ptmx".to_vec(),
                file_type: DT_CHR,
            },
        ];
        for &i in self.view.borrow().keys() {
            v.push(DirEntry {
                ino: FIRST + i as u64,
                name: i.to_string().into_bytes(),
                file_type: DT_CHR,
            });
        }
        Ok(v)
    }

    fn read(&self, _ino: Ino, _offset: u64, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _ino: Ino, _offset: u64, _data: &[u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }

    fn truncate(&self, _ino: Ino, _size: u64) -> KResult<()> {
        Err(Errno::EINVAL)
    }

    fn create(&self, _d: Ino, _n: &[u8], _m: u32, _u: u32, _g: u32, _r: u64) -> KResult<Ino> {
        Err(Errno::EACCES)
    }

    fn mkdir(&self, _d: Ino, _n: &[u8], _m: u32, _u: u32, _g: u32) -> KResult<Ino> {
        Err(Errno::EACCES)
    }

    fn symlink(&self, _d: Ino, _n: &[u8], _t: &[u8], _u: u32, _g: u32) -> KResult<Ino> {
        Err(Errno::EACCES)
    }

    fn readlink(&self, _ino: Ino) -> KResult<Vec<u8>> {
        Err(Errno::EINVAL)
    }

    fn link(&self, _ino: Ino, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn rmdir(&self, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn rename(&self, _od: Ino, _on: &[u8], _nd: Ino, _nn: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn setattr(&self, ino: Ino, attr: &SetAttr) -> KResult<()> {
        if ino == ROOT || ino == PTMX {
            return Err(Errno::EPERM);
        }
        let i = self.index(ino)?;
        let mut v = self.view.borrow_mut();
        let e = v.get_mut(&i).ok_or(Errno::ENOENT)?;
        if let Some(m) = attr.mode {
            e.mode = m & 0o7777;
        }
        if let Some(u) = attr.uid {
            e.uid = u;
        }
        if let Some(g) = attr.gid {
            e.gid = g;
        }
        Ok(())
    }

    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs {
            fs_type: DEVPTS_SUPER_MAGIC,
            block_size: 4096,
            name_max: 255,
            ..Default::default()
        })
    }

    fn sync(&self) -> KResult<()> {
        Ok(())
    }
}
