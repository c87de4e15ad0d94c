//! O_TMPFILE: open(dir, O_TMPFILE) makes a regular file with no name,
//! kept alive as an orphan (kernel/orphans.rs) from the start, which
//! linkat may name unless it was opened with O_EXCL; and SEEK_DATA /
//! SEEK_HOLE, page by page on file systems that keep holes (tmpfs), the
//! whole file as data elsewhere (Linux's ext2: generic_file_llseek).

use super::fs::{new_gid, new_mode};
use crate::errno::{Errno, KResult};
use crate::fs::S_IFREG;
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::vfs::perm::{MAY_EXEC, MAY_WRITE};
use crate::vfs::walk::is_dir;
use crate::vfs::{Node, Resolved};

/// __O_TMPFILE (O_TMPFILE is this with O_DIRECTORY).
pub const O_TMPFILE_BIT: u32 = 0o20000000;

const PAGE: u64 = crate::abi::PAGE;

impl Kernel {
    /// open(dir, O_TMPFILE): a new regular file in `dir`'s file system
    /// with no name the guest sees. It is an orphan from the start (a
    /// hidden name keeps it until the last close; nlink shows 0); unless
    /// opened with O_EXCL (`linkable` false) linkat may name it later.
    /// Linux's order of checks: EROFS, write and search permission on
    /// `dir` (EACCES), then EOPNOTSUPP where the file system has no
    /// unnamed files (proc, sysfs, devpts).
    pub fn make_tmpfile(
        &mut self,
        tid: Pid,
        dir: &Resolved,
        mode: u32,
        linkable: bool,
    ) -> KResult<Resolved> {
        if !is_dir(&dir.stat) {
            return Err(Errno::ENOTDIR);
        }
        if self.mounts.get(dir.node.mnt)?.read_only {
            return Err(Errno::EROFS);
        }
        let cred = self.cred(tid)?;
        cred.check(&dir.stat, MAY_WRITE | MAY_EXEC)?;
        let fs = self.mounts.fs(dir.node.mnt)?;
        if fs.generated() || !matches!(fs.fs_type(), "tmpfs" | "ext2" | "devtmpfs") {
            return Err(Errno::EOPNOTSUPP);
        }
        let umask = self.task(tid)?.fs.borrow().umask;
        let mode = S_IFREG | new_mode(&cred, &dir.stat, mode & 0o7777 & !umask, false);
        let gid = new_gid(&cred, &dir.stat);
        let hidden_dir = self.hidden_dir(fs.as_ref(), dir.node.ino);
        // A name no other file has: the next free counter value.
        let mut made = None;
        for _ in 0..64 {
            self.tmpfiles_made = self.tmpfiles_made.wrapping_add(1);
            let name = format!(".umlrun-tmpfile-{}", self.tmpfiles_made).into_bytes();
            match fs.create(hidden_dir, &name, mode, cred.euid, gid, 0) {
                Ok(ino) => {
                    made = Some((ino, name));
                    break;
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
        let (ino, name) = made.ok_or(Errno::EEXIST)?;
        let key = (dir.node.mnt, ino);
        self.orphans.insert(key, (hidden_dir, name));
        if linkable {
            self.linkable_tmpfiles.insert(key);
        }
        let node = Node {
            mnt: dir.node.mnt,
            ino,
        };
        // /proc/PID/fd shows "DIR/#INO (deleted)", as Linux.
        let mut path = dir.path.clone();
        if path != b"/" {
            path.push(b'/');
        }
        path.extend_from_slice(format!("#{ino}").as_bytes());
        Ok(Resolved {
            node,
            path,
            stat: self.mounts.stat_node(node)?,
        })
    }

    /// lseek's SEEK_DATA (`data`) or SEEK_HOLE from `off` in `node`:
    /// ENXIO for a negative offset or one at or past the end; a hole is a
    /// page neither the file system nor the page cache holds (a virtual
    /// hole ends every file).
    pub fn seek_data_hole(&self, node: Node, off: i64, data: bool) -> KResult<u64> {
        let size = self.mounts.stat_node(node)?.size;
        let off = u64::try_from(off).map_err(|_| Errno::ENXIO)?;
        if off >= size {
            return Err(Errno::ENXIO);
        }
        let fs = self.mounts.fs(node.mnt)?;
        let key = (node.mnt, node.ino);
        let cache = self.pagecache.borrow();
        let from = off / PAGE;
        let Some(fs_next) = fs.next_page(node.ino, from, data) else {
            // No holes kept: all data up to the end.
            return Ok(if data { off } else { size });
        };
        let at = if data {
            let cached = cache.next_cached(key, from);
            match (fs_next, cached) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).ok_or(Errno::ENXIO)?,
            }
        } else {
            // The first page neither holds; each step passes a cached
            // page, so this ends.
            let mut idx = fs_next.ok_or(Errno::ENXIO)?;
            while cache.has_page(key, idx) {
                idx = idx.checked_add(1).ok_or(Errno::ENXIO)?;
                idx = fs
                    .next_page(node.ino, idx, false)
                    .flatten()
                    .ok_or(Errno::ENXIO)?;
            }
            idx
        };
        let pos = at.saturating_mul(PAGE).max(off);
        if data {
            if pos >= size {
                return Err(Errno::ENXIO);
            }
            Ok(pos)
        } else {
            Ok(pos.min(size))
        }
    }
}
