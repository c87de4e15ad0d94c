//! More file calls: preadv/pwritev and their v2 forms (RWF_* flags, -1
//! for the file's offset), close_range, fadvise64, fallocate,
//! sync_file_range.

use std::cell::RefCell;
use std::rc::Rc;

use super::{block_on, fd_arg, ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::fs::tty::TtyAccess;
use crate::fs::{SetAttr, S_IFBLK, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::kernel::files::{POLLIN, POLLOUT};
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;
use crate::vfs::file::{ops_of, O_APPEND, O_PATH};
use crate::vfs::OpenFileRef;

/// Biggest single vectored transfer (as read/write: a short count is legal).
const IO_MAX: usize = 1 << 20;

const RWF_HIPRI: u64 = 1;
const RWF_DSYNC: u64 = 2;
const RWF_SYNC: u64 = 4;
const RWF_NOWAIT: u64 = 8;
const RWF_APPEND: u64 = 16;
const RWF_SUPPORTED: u64 = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND;

/// The iovec array as (base, len), and its total (EINVAL past SSIZE_MAX).
fn iovecs(k: &mut Kernel, tid: Pid, iov: u64, cnt: u64) -> KResult<(Vec<(u64, usize)>, usize)> {
    let v = k.gather(tid, iov, cnt)?;
    let mut total = 0usize;
    for &(_, len) in &v {
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
    }
    if total > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    Ok((v, total))
}

/// The position of a p*v call: None for -1 in the v2 forms (the file's
/// offset), EINVAL for other negative ones; ESPIPE on an unseekable file.
fn position(f: &OpenFileRef, raw: u64, v2: bool, total: usize) -> KResult<Option<u64>> {
    if v2 && raw as i64 == -1 {
        return Ok(None);
    }
    if (raw as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if !ops_of(f).positional() {
        return Err(Errno::ESPIPE);
    }
    if raw
        .checked_add(total as u64)
        .is_none_or(|e| e > i64::MAX as u64)
    {
        return Err(Errno::EINVAL);
    }
    Ok(Some(raw))
}

/// A terminal access that sent SIGTTIN/SIGTTOU sleeps and retries.
fn stopped(e: Errno) -> SysResult {
    match e {
        Errno::ERESTARTSYS => Ok(Outcome::Block(Wait::Queue(None))),
        e => Err(e),
    }
}

fn check_flags(flags: u64) -> KResult<()> {
    if flags & !RWF_SUPPORTED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

fn do_preadv(k: &mut Kernel, tid: Pid, a: [u64; 6], v2: bool) -> SysResult {
    let flags = if v2 { a[5] } else { 0 };
    check_flags(flags)?;
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let (iov, total) = iovecs(k, tid, a[1], a[2])?;
    let pos = position(&f, a[3], v2, total)?;
    if pos.is_none() {
        if let Err(e) = ops_of(&f).job_control(k, tid, TtyAccess::Read) {
            return stopped(e);
        }
    }
    let mut data = vec![0u8; total.min(IO_MAX)];
    let r = k.file_read(tid, &f, &mut data, pos);
    if let Ok(n) = r {
        let mut done = 0;
        for (base, len) in iov {
            if done >= n {
                break;
            }
            let m = len.min(n - done);
            k.write_user(tid, base, &data[done..done + m])?;
            done += m;
        }
    }
    if flags & RWF_NOWAIT != 0 {
        return ok(r? as i64);
    }
    block_on(k, tid, &f, POLLIN, r)
}

fn do_pwritev(k: &mut Kernel, tid: Pid, a: [u64; 6], v2: bool) -> SysResult {
    let flags = if v2 { a[5] } else { 0 };
    check_flags(flags)?;
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let (iov, total) = iovecs(k, tid, a[1], a[2])?;
    let mut pos = position(&f, a[3], v2, total)?;
    if pos.is_none() {
        if let Err(e) = ops_of(&f).job_control(k, tid, TtyAccess::Write) {
            return stopped(e);
        }
    }
    let mut data = Vec::new();
    for (base, len) in iov {
        let m = len.min(IO_MAX - data.len());
        data.extend(k.read_user_vec(tid, base, m)?);
    }
    // RWF_APPEND: this one write goes to the end, like O_APPEND.
    let append = flags & RWF_APPEND != 0 && f.borrow().flags & O_APPEND == 0;
    if append {
        f.borrow_mut().flags |= O_APPEND;
        pos = None;
    }
    let r = k.file_write(tid, &f, &data, pos);
    if append {
        f.borrow_mut().flags &= !O_APPEND;
    }
    if flags & RWF_NOWAIT != 0 {
        return ok(r? as i64);
    }
    block_on(k, tid, &f, POLLOUT, r)
}

pub fn sys_preadv(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_preadv(k, tid, a, false)
}

pub fn sys_pwritev(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_pwritev(k, tid, a, false)
}

pub fn sys_preadv2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_preadv(k, tid, a, true)
}

pub fn sys_pwritev2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_pwritev(k, tid, a, true)
}

/// close_range(first, last, flags): CLOSE_RANGE_UNSHARE first gives the
/// caller its own fd table, CLOSE_RANGE_CLOEXEC marks instead of closing.
pub fn sys_close_range(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 1 << 1;
    const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        let t = k.task_mut(tid)?;
        let copy = t.files.borrow().clone();
        t.files = Rc::new(RefCell::new(copy));
    }
    let files = k.task(tid)?.files.clone();
    let fds: Vec<i32> = files
        .borrow()
        .iter()
        .map(|(fd, _)| fd)
        .filter(|&fd| fd >= first && fd <= last)
        .map(|fd| fd as i32)
        .collect();
    for fd in fds {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            files.borrow_mut().get_mut(fd)?.cloexec = true;
        } else {
            let e = files.borrow_mut().remove(fd)?;
            k.release_file(e.file);
        }
    }
    ok(0)
}

/// fadvise64: advice is a hint; checked as Linux checks it, then taken
/// (the page cache reads what is asked when it is asked).
pub fn sys_fadvise64(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    if f.borrow().flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if !ops_of(&f).positional() {
        return Err(Errno::ESPIPE);
    }
    if a[3] > 5 || (a[2] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    ok(0)
}

/// sync_file_range: starts (and with the WAIT flags waits for) the
/// write-back of the file's dirty pages in [offset, offset+nbytes), nbytes
/// 0 meaning "to the end of the file". Pages go to the file system as
/// fsync's do, but the file system's own metadata and the disk are not
/// flushed, as on Linux. PostgreSQL calls it for every 256 KiB it writes
/// at a checkpoint (checkpoint_flush_after).
pub fn sys_sync_file_range(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const WAIT_BEFORE: u64 = 1;
    const WRITE: u64 = 2;
    const WAIT_AFTER: u64 = 4;
    let (off, nbytes, flags) = (a[1] as i64, a[2] as i64, a[3]);
    // Linux looks the fd up first (O_PATH ones are not found), then checks
    // the flags and the range, then the file's type.
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    if f.borrow().flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if flags & !(WAIT_BEFORE | WRITE | WAIT_AFTER) != 0 || off < 0 {
        return Err(Errno::EINVAL);
    }
    let end = match off.checked_add(nbytes) {
        Some(e) if e >= off => e,
        _ => return Err(Errno::EINVAL),
    };
    let Some(node) = f.borrow().node() else {
        return Err(Errno::ESPIPE);
    };
    match k.mounts.stat_node(node)?.mode & S_IFMT {
        S_IFREG | S_IFBLK | S_IFDIR | S_IFLNK => {}
        _ => return Err(Errno::ESPIPE),
    }
    if flags == 0 {
        return ok(0);
    }
    const PAGE: u64 = 4096;
    let first = off as u64 / PAGE;
    let last = if nbytes == 0 {
        u64::MAX
    } else {
        (end as u64).div_ceil(PAGE)
    };
    let fs = k.mounts.fs(node.mnt)?;
    k.pagecache.borrow_mut().writeback_range(
        fs.as_ref(),
        (node.mnt, node.ino),
        &k.frames,
        first..last,
    )?;
    ok(0)
}

/// fallocate: tmpfs takes mode 0 (grow to offset+len), KEEP_SIZE (nothing
/// to reserve: its pages are allocated on write) and PUNCH_HOLE|KEEP_SIZE
/// (the range reads as zeros); other file systems answer EOPNOTSUPP, as
/// Linux's ext2 does (glibc's posix_fallocate then writes zeros itself).
pub fn sys_fallocate(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const FALLOC_FL_KEEP_SIZE: u64 = 1;
    const FALLOC_FL_PUNCH_HOLE: u64 = 2;
    let (mode, off, len) = (a[1], a[2] as i64, a[3] as i64);
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    let end = off.checked_add(len).ok_or(Errno::EFBIG)? as u64;
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    if !f.borrow().writable() {
        return Err(Errno::EBADF);
    }
    let node = match f.borrow().node() {
        Some(n) => n,
        None if !ops_of(&f).positional() => return Err(Errno::ESPIPE),
        None => return Err(Errno::ENODEV),
    };
    k.deny_write_to_swapfile(node)?;
    let st = k.mounts.stat_node(node)?;
    match st.mode & S_IFMT {
        S_IFREG => {}
        S_IFDIR => return Err(Errno::EISDIR),
        _ => return Err(Errno::ENODEV),
    }
    let fs = k.mounts.fs(node.mnt)?;
    if fs.fs_type() != "tmpfs" {
        return Err(Errno::EOPNOTSUPP);
    }
    match mode {
        0 => {
            if end > st.size {
                fs.setattr(
                    node.ino,
                    &SetAttr {
                        size: Some(end),
                        ..Default::default()
                    },
                )?;
            }
        }
        FALLOC_FL_KEEP_SIZE => {}
        m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
            let stop = end.min(st.size);
            let mut at = off as u64;
            let zeros = vec![0u8; 64 << 10];
            while at < stop {
                let n = ((stop - at) as usize).min(zeros.len());
                k.write_file_data(node, at, &zeros[..n])?;
                at += n as u64;
            }
        }
        _ => return Err(Errno::EOPNOTSUPP),
    }
    ok(0)
}

/// copy_file_range between two regular files, through the page cache
/// (no reflinks): at most 1 MiB a call, a short count is legal.
pub fn sys_copy_file_range(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (in_ptr, out_ptr, len, flags) = (a[1], a[3], a[4], a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let inp = k.fd_file(tid, fd_arg(a[0]))?;
    let out = k.fd_file(tid, fd_arg(a[2]))?;
    if !inp.borrow().readable() || !out.borrow().writable() || out.borrow().flags & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let (ni, no) = match (inp.borrow().node(), out.borrow().node()) {
        (Some(i), Some(o)) => (i, o),
        _ => return Err(Errno::EINVAL),
    };
    for n in [ni, no] {
        match k.mounts.stat_node(n)?.mode & S_IFMT {
            S_IFREG => {}
            S_IFDIR => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    let pin = if in_ptr != 0 {
        k.read_u64(tid, in_ptr)?
    } else {
        inp.borrow().offset
    };
    let pout = if out_ptr != 0 {
        k.read_u64(tid, out_ptr)?
    } else {
        out.borrow().offset
    };
    for p in [pin, pout] {
        if p.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
            return Err(Errno::EINVAL);
        }
    }
    let count = (len as usize).min(IO_MAX);
    // The same file: the ranges must not overlap.
    if ni == no
        && pin < pout.saturating_add(count as u64)
        && pout < pin.saturating_add(count as u64)
    {
        return Err(Errno::EINVAL);
    }
    k.deny_write_to_swapfile(ni)?;
    k.deny_write_to_swapfile(no)?;
    if count == 0 {
        return ok(0);
    }
    let mut buf = vec![0u8; count];
    let n = k.read_file_data(ni, pin, &mut buf)?;
    if n == 0 {
        return ok(0);
    }
    if k.mounts.get(no.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    let w = k.write_file_data(no, pout, &buf[..n])?;
    if in_ptr != 0 {
        k.write_u64(tid, in_ptr, pin + w as u64)?;
    } else {
        inp.borrow_mut().offset = pin + w as u64;
    }
    if out_ptr != 0 {
        k.write_u64(tid, out_ptr, pout + w as u64)?;
    } else {
        out.borrow_mut().offset = pout + w as u64;
    }
    ok(w as i64)
}
