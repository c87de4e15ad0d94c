//! The lock calls decoded onto the lock manager (`kernel/locks.rs`):
//! fcntl's record-lock commands (F_GETLK/F_SETLK/F_SETLKW and their OFD
//! forms), leases (F_SETLEASE/F_GETLEASE), the signal owner of a file
//! (F_SETOWN/F_GETOWN, their _EX forms, F_SETSIG/F_GETSIG), and flock(2).

use super::{ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::locks::RangeRequest;
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::vfs::file::{ops_of, O_PATH};
use crate::vfs::locks::{Owner, OFFSET_MAX};
use crate::vfs::OpenFileRef;

pub const F_GETLK: u64 = 5;
pub const F_SETLK: u64 = 6;
pub const F_SETLKW: u64 = 7;
pub const F_SETOWN: u64 = 8;
pub const F_GETOWN: u64 = 9;
pub const F_SETSIG: u64 = 10;
pub const F_GETSIG: u64 = 11;
pub const F_SETOWN_EX: u64 = 15;
pub const F_GETOWN_EX: u64 = 16;
pub const F_OFD_GETLK: u64 = 36;
pub const F_OFD_SETLK: u64 = 37;
pub const F_OFD_SETLKW: u64 = 38;
pub const F_SETLEASE: u64 = 1024;
pub const F_GETLEASE: u64 = 1025;

const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// Is `cmd` one of the fcntl commands this file serves?
pub fn is_lock_cmd(cmd: u64) -> bool {
    matches!(
        cmd,
        F_GETLK
            | F_SETLK
            | F_SETLKW
            | F_SETOWN
            | F_GETOWN
            | F_SETSIG
            | F_GETSIG
            | F_SETOWN_EX
            | F_GETOWN_EX
            | F_OFD_GETLK
            | F_OFD_SETLK
            | F_OFD_SETLKW
            | F_SETLEASE
            | F_GETLEASE
    )
}

/// x86-64 `struct flock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flock {
    ty: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

fn read_flock(k: &mut Kernel, tid: Pid, addr: u64) -> KResult<Flock> {
    let mut b = [0u8; 32];
    k.read_user(tid, addr, &mut b)?;
    Ok(Flock {
        ty: i16::from_le_bytes([b[0], b[1]]),
        whence: i16::from_le_bytes([b[2], b[3]]),
        start: i64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        len: i64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
        pid: i32::from_le_bytes(b[24..28].try_into().expect("4 bytes")),
    })
}

fn write_flock(k: &mut Kernel, tid: Pid, addr: u64, l: &Flock) -> KResult<()> {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&l.ty.to_le_bytes());
    b[2..4].copy_from_slice(&l.whence.to_le_bytes());
    b[8..16].copy_from_slice(&l.start.to_le_bytes());
    b[16..24].copy_from_slice(&l.len.to_le_bytes());
    b[24..28].copy_from_slice(&l.pid.to_le_bytes());
    k.write_user(tid, addr, &b)
}

/// `struct flock`'s range as inclusive byte offsets (Linux's
/// flock_to_posix_lock): EINVAL for a bad whence or a start before 0,
/// EOVERFLOW past OFFSET_MAX.
fn range_of(k: &mut Kernel, f: &OpenFileRef, l: &Flock) -> KResult<(u64, u64)> {
    let base: i64 = match l.whence {
        0 => 0,
        1 => f.borrow().offset.min(OFFSET_MAX) as i64,
        2 => (ops_of(f).stat(k)?.0.size).min(OFFSET_MAX) as i64,
        _ => return Err(Errno::EINVAL),
    };
    if l.start > i64::MAX - base {
        return Err(Errno::EOVERFLOW);
    }
    let mut start = base + l.start;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let end = match l.len {
        n if n > 0 => {
            if n - 1 > i64::MAX - start {
                return Err(Errno::EOVERFLOW);
            }
            start + (n - 1)
        }
        n if n < 0 => {
            let end = start - 1;
            start = start.checked_add(n).ok_or(Errno::EINVAL)?;
            if start < 0 {
                return Err(Errno::EINVAL);
            }
            end
        }
        _ => i64::MAX,
    };
    Ok((start as u64, end as u64))
}

/// fcntl's lock, lease and owner commands on fd `fd` (`a` as fcntl got them).
pub fn fcntl_lock(k: &mut Kernel, tid: Pid, f: OpenFileRef, a: [u64; 6]) -> SysResult {
    let cmd = a[1];
    if f.borrow().flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    match cmd {
        F_GETLK | F_OFD_GETLK | F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            record_lock(k, tid, &f, cmd, a[2])
        }
        F_SETLEASE => {
            let (st, _) = ops_of(&f).stat(k)?;
            if st.mode & S_IFMT != S_IFREG {
                return Err(Errno::EINVAL);
            }
            let kind = match a[2] as u32 as i32 {
                0 => Some(false),
                1 => Some(true),
                2 => None,
                _ => return Err(Errno::EINVAL),
            };
            let fsuid = k.task(tid)?.cred.euid;
            if fsuid != 0 && fsuid != st.uid {
                return Err(Errno::EACCES);
            }
            k.lease_set(tid, &f, kind)?;
            if kind.is_some() {
                // As Linux's F_SETLEASE: the lease taker owns the file's signals.
                let tgid = k.task(tid)?.tgid;
                f.borrow_mut().owner = (1, tgid);
            }
            ok(0)
        }
        F_GETLEASE => ok(k.lease_get(&f) as i64),
        F_SETOWN => {
            let who = a[2] as u32 as i32;
            let owner = if who < 0 {
                (2, who.checked_neg().ok_or(Errno::EINVAL)?)
            } else {
                (1, who)
            };
            check_owner(k, owner)?;
            f.borrow_mut().owner = owner;
            ok(0)
        }
        F_GETOWN => {
            let (ty, id) = f.borrow().owner;
            ok(if ty == 2 { -(id as i64) } else { id as i64 })
        }
        F_SETOWN_EX => {
            let mut b = [0u8; 8];
            k.read_user(tid, a[2], &mut b)?;
            let ty = i32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
            let id = i32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
            if !(0..=2).contains(&ty) {
                return Err(Errno::EINVAL);
            }
            check_owner(k, (ty, id))?;
            f.borrow_mut().owner = (ty, id);
            ok(0)
        }
        F_GETOWN_EX => {
            let (ty, id) = f.borrow().owner;
            let mut b = [0u8; 8];
            b[0..4].copy_from_slice(&ty.to_le_bytes());
            b[4..8].copy_from_slice(&id.to_le_bytes());
            k.write_user(tid, a[2], &b)?;
            ok(0)
        }
        F_SETSIG => {
            let sig = a[2];
            if sig > 64 {
                return Err(Errno::EINVAL);
            }
            f.borrow_mut().sig = sig as i32;
            ok(0)
        }
        F_GETSIG => ok(f.borrow().sig as i64),
        _ => Err(Errno::EINVAL),
    }
}

/// ESRCH unless the owner named exists (0 clears the owner).
fn check_owner(k: &Kernel, (ty, id): (i32, i32)) -> KResult<()> {
    if id == 0 {
        return Ok(());
    }
    let found = match ty {
        0 => k.tasks.get(&id).is_some_and(|t| t.is_alive()),
        1 => k
            .tasks
            .get(&id)
            .is_some_and(|t| t.is_alive() && t.is_leader()),
        _ => k.tasks.values().any(|t| t.pgid == id && t.is_alive()),
    };
    if found {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

fn record_lock(k: &mut Kernel, tid: Pid, f: &OpenFileRef, cmd: u64, addr: u64) -> SysResult {
    let mut l = read_flock(k, tid, addr)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && l.pid != 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = range_of(k, f, &l)?;
    let kind = match l.ty {
        F_RDLCK => Some(false),
        F_WRLCK => Some(true),
        F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    let t = k.task(tid)?;
    let pid = t.tgid;
    let owner = if ofd {
        Owner::Ofd(f.borrow().id)
    } else {
        Owner::Posix(t.files.borrow().owner)
    };
    let req = RangeRequest {
        owner,
        pid,
        kind,
        start,
        end,
    };
    let key = Kernel::lock_key(f);
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        if kind.is_none() {
            return Err(Errno::EINVAL);
        }
        match k.lock_test(key, &req) {
            Some(c) => {
                l = Flock {
                    ty: if c.write { F_WRLCK } else { F_RDLCK },
                    whence: 0,
                    start: c.start as i64,
                    len: if c.end == OFFSET_MAX {
                        0
                    } else {
                        (c.end - c.start + 1) as i64
                    },
                    pid: match c.owner {
                        Owner::Posix(_) => c.pid,
                        Owner::Ofd(_) => -1,
                    },
                };
            }
            None => l.ty = F_UNLCK,
        }
        write_flock(k, tid, addr, &l)?;
        return ok(0);
    }
    {
        let of = f.borrow();
        match kind {
            Some(false) if !of.readable() => return Err(Errno::EBADF),
            Some(true) if !of.writable() => return Err(Errno::EBADF),
            _ => {}
        }
    }
    let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
    match k.lock_set(tid, key, &req, wait)? {
        Some(w) => Ok(Outcome::Block(w)),
        None => ok(0),
    }
}

/// flock(2): LOCK_SH 1, LOCK_EX 2, LOCK_UN 8, with LOCK_NB 4.
pub fn sys_flock(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const LOCK_SH: u64 = 1;
    const LOCK_EX: u64 = 2;
    const LOCK_NB: u64 = 4;
    const LOCK_UN: u64 = 8;
    const LOCK_MAND: u64 = 32;
    let f = k.fd_file(tid, super::fd_arg(a[0]))?;
    if f.borrow().flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let op = a[1] as u32 as u64;
    if op & LOCK_MAND != 0 {
        // Linux ignores the long-gone mandatory flock (with a warning).
        return ok(0);
    }
    let kind = match op & !LOCK_NB {
        LOCK_SH => Some(false),
        LOCK_EX => Some(true),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    match k.flock(tid, &f, kind, op & LOCK_NB != 0)? {
        Some(w) => Ok(Outcome::Block(w)),
        None => ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_commands_are_recognised() {
        for c in [F_GETLK, F_OFD_SETLKW, F_SETLEASE, F_GETOWN_EX] {
            assert!(is_lock_cmd(c));
        }
        assert!(!is_lock_cmd(0));
        assert!(!is_lock_cmd(1026));
    }
}
