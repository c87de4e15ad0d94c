//! Extended attributes: getxattr, setxattr, listxattr, removexattr and
//! their l* (the link itself) and f* (an open file) forms. The VFS rules
//! are Linux's (`fs/xattr.c`): names are 1..=255 bytes in a known
//! namespace, values at most 64 KiB, user.* only on regular files and
//! directories (with read/write permission), trusted.* for root only and
//! hidden from others' lists; the file system stores them
//! (`FileSystem::xattr_*`: tmpfs and ext2 keep them, one without answers
//! EOPNOTSUPP).

use super::{fd_arg, ok, SysResult, AT_FDCWD};
use crate::errno::{Errno, KResult};
use crate::fs::tmpfs::{XATTR_CREATE, XATTR_REPLACE};
use crate::fs::{S_IFDIR, S_IFMT, S_IFREG};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::vfs::file::O_PATH;
use crate::vfs::perm::{MAY_READ, MAY_WRITE};
use crate::vfs::Resolved;

const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_LIST_MAX: usize = 65536;

/// What a call names: a path (following a final link or not) or an fd.
enum Target {
    Path(u64, bool),
    Fd(u64),
}

/// The file a call names. An open file with no inode of its own (a pipe,
/// a socket) has no xattrs: user.* there is ENODATA to read and EPERM to
/// write (Linux's xattr_permission on a non-regular file), others
/// EOPNOTSUPP. `name`: the attribute asked about (None: a listing).
fn resolve(k: &mut Kernel, tid: Pid, t: Target, name: Option<(&[u8], bool)>) -> KResult<Resolved> {
    match t {
        Target::Path(p, follow) => {
            let path = k.read_path(tid, p)?;
            k.lookup_at(tid, AT_FDCWD, &path, follow)
        }
        Target::Fd(fd) => {
            let f = k.fd_file(tid, fd_arg(fd))?;
            let of = f.borrow();
            if of.flags & O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            let Some(node) = of.node() else {
                return Err(match name {
                    Some((n, write)) if n.starts_with(b"user.") => {
                        if write {
                            Errno::EPERM
                        } else {
                            Errno::ENODATA
                        }
                    }
                    Some(_) => Errno::EOPNOTSUPP,
                    None => return Err(Errno::EOPNOTSUPP),
                });
            };
            Ok(Resolved {
                node,
                path: of.path.clone(),
                stat: k.mounts.stat_node(node)?,
            })
        }
    }
}

fn read_name(k: &mut Kernel, tid: Pid, p: u64) -> KResult<Vec<u8>> {
    let name = k.read_path(tid, p).map_err(|e| match e {
        Errno::ENAMETOOLONG => Errno::ERANGE,
        e => e,
    })?;
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(name)
}

/// Linux's xattr_permission: may `tid` read (`write`: change) `name` on `r`?
fn permission(k: &mut Kernel, tid: Pid, r: &Resolved, name: &[u8], write: bool) -> KResult<()> {
    let cred = k.cred(tid)?;
    let ty = r.stat.mode & S_IFMT;
    if name.starts_with(b"trusted.") {
        if cred.euid != 0 {
            return Err(if write { Errno::EPERM } else { Errno::ENODATA });
        }
        return Ok(());
    }
    if name.starts_with(b"security.") {
        if write && cred.euid != 0 && cred.euid != r.stat.uid {
            return Err(Errno::EPERM);
        }
        return Ok(());
    }
    if name.starts_with(b"user.") {
        if ty != S_IFREG && ty != S_IFDIR {
            return Err(if write { Errno::EPERM } else { Errno::ENODATA });
        }
        if ty == S_IFDIR
            && r.stat.mode & 0o1000 != 0
            && write
            && cred.euid != 0
            && cred.euid != r.stat.uid
        {
            return Err(Errno::EPERM);
        }
        return cred.check(&r.stat, if write { MAY_WRITE } else { MAY_READ });
    }
    // system.* (POSIX ACLs) and unknown namespaces: none here.
    Err(Errno::EOPNOTSUPP)
}

fn do_get(k: &mut Kernel, tid: Pid, t: Target, a: [u64; 6]) -> SysResult {
    let name = read_name(k, tid, a[1])?;
    let r = resolve(k, tid, t, Some((&name, false)))?;
    permission(k, tid, &r, &name, false)?;
    let value = k.mounts.fs(r.node.mnt)?.xattr_get(r.node.ino, &name)?;
    let size = a[3] as usize;
    if size == 0 {
        return ok(value.len() as i64);
    }
    if value.len() > size {
        return Err(Errno::ERANGE);
    }
    k.write_user(tid, a[2], &value)?;
    ok(value.len() as i64)
}

fn do_set(k: &mut Kernel, tid: Pid, t: Target, a: [u64; 6]) -> SysResult {
    let flags = a[4];
    if flags & !u64::from(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(k, tid, a[1])?;
    let size = a[3] as usize;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let value = k.read_user_vec(tid, a[2], size)?;
    let r = resolve(k, tid, t, Some((&name, true)))?;
    if k.mounts.get(r.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    permission(k, tid, &r, &name, true)?;
    k.mounts
        .fs(r.node.mnt)?
        .xattr_set(r.node.ino, &name, Some(&value), flags as u32)?;
    ok(0)
}

fn do_list(k: &mut Kernel, tid: Pid, t: Target, a: [u64; 6]) -> SysResult {
    // No inode (a pipe): an empty list, as Linux's listxattr gives.
    let r = match resolve(k, tid, t, None) {
        Err(Errno::EOPNOTSUPP) => return ok(0),
        r => r?,
    };
    let root = k.cred(tid)?.euid == 0;
    let names = k.mounts.fs(r.node.mnt)?.xattr_list(r.node.ino)?;
    let mut out = Vec::new();
    for n in names {
        if n.starts_with(b"trusted.") && !root {
            continue;
        }
        out.extend_from_slice(&n);
        out.push(0);
    }
    let size = a[2] as usize;
    if size == 0 {
        return ok(out.len() as i64);
    }
    if out.len() > size.min(XATTR_LIST_MAX) {
        return Err(if out.len() > XATTR_LIST_MAX {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    k.write_user(tid, a[1], &out)?;
    ok(out.len() as i64)
}

fn do_remove(k: &mut Kernel, tid: Pid, t: Target, a: [u64; 6]) -> SysResult {
    let name = read_name(k, tid, a[1])?;
    let r = resolve(k, tid, t, Some((&name, true)))?;
    if k.mounts.get(r.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    permission(k, tid, &r, &name, true)?;
    k.mounts
        .fs(r.node.mnt)?
        .xattr_set(r.node.ino, &name, None, 0)?;
    ok(0)
}

pub fn sys_getxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_get(k, tid, Target::Path(a[0], true), a)
}
pub fn sys_lgetxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_get(k, tid, Target::Path(a[0], false), a)
}
pub fn sys_fgetxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_get(k, tid, Target::Fd(a[0]), a)
}
pub fn sys_setxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_set(k, tid, Target::Path(a[0], true), a)
}
pub fn sys_lsetxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_set(k, tid, Target::Path(a[0], false), a)
}
pub fn sys_fsetxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_set(k, tid, Target::Fd(a[0]), a)
}
pub fn sys_listxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_list(k, tid, Target::Path(a[0], true), a)
}
pub fn sys_llistxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_list(k, tid, Target::Path(a[0], false), a)
}
pub fn sys_flistxattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_list(k, tid, Target::Fd(a[0]), a)
}
pub fn sys_removexattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_remove(k, tid, Target::Path(a[0], true), a)
}
pub fn sys_lremovexattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_remove(k, tid, Target::Path(a[0], false), a)
}
pub fn sys_fremovexattr(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_remove(k, tid, Target::Fd(a[0]), a)
}
