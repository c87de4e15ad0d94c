//! File syscalls: open/close, read/write and friends, stat, directories,
//! links, permissions, fcntl, pipes.

use super::fsmeta::*;
use super::tmpfile::O_TMPFILE_BIT;
use super::{
    block_on, fd_arg, ok, Outcome, SysResult, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR,
    AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW,
};
use crate::abi::layout::{GuestStruct, Iovec};
use crate::errno::{Errno, KResult};
use crate::fs::devices::{decode_dev, encode_dev, CharDevice};
use crate::fs::tty::TtyAccess;
use crate::fs::{
    SetAttr, Stat, Timespec, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
    S_IFSOCK, S_ISGID, S_ISVTX,
};
use crate::kernel::files::inotify::{
    isdir_bit, IN_ACCESS, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_ISDIR, IN_MODIFY, IN_MOVED_FROM,
    IN_MOVED_TO, IN_MOVE_SELF, IN_OPEN,
};
use crate::kernel::files::pty::{PtyMaster, PtySlave};
use crate::kernel::files::{
    blockdev::BlockDevFile, chardev::CharDevFile, dir::DirFile, pipe::PipeEnd, procfile::ProcFile,
    regular::RegularFile, tty::ConsoleFile,
};
use crate::kernel::files::{POLLIN, POLLOUT};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::vfs::file::*;
use crate::vfs::file::{ops_of, FileDescription, Io};
use crate::vfs::perm::{MAY_EXEC, MAY_READ, MAY_WRITE};
use crate::vfs::walk::is_dir;
use crate::vfs::{Cred, OpenFile, OpenFileRef, Resolved};
use std::rc::Rc;

/// Biggest single read/write moved in one call (a short count is legal).
const IO_MAX: usize = 1 << 20;
/// Most one read() returns (Linux caps at 2 GiB; this bounds the kernel's work).
const READ_MAX: usize = 256 << 20;

impl Kernel {
    /// The directory a *at() call is relative to, as its path now (the
    /// cwd's or the dirfd's reference follows renames); ENOENT for a
    /// relative path in a removed directory.
    /// An absolute path starts at the caller's root (its chroot).
    pub fn base_dir(&self, tid: Pid, dirfd: i32, path: &[u8]) -> KResult<Vec<u8>> {
        let t = self.task(tid)?;
        let d = if path.first() == Some(&b'/') {
            t.fs.borrow().root.clone()
        } else if dirfd == AT_FDCWD {
            t.fs.borrow().cwd.clone()
        } else {
            let f = t.files.borrow().file(dirfd)?;
            let d = f.borrow().ops.directory();
            d.ok_or(Errno::ENOTDIR)?
        };
        if d.is_dead() {
            return Err(Errno::ENOENT);
        }
        Ok(d.path())
    }

    /// The caller's root directory (chroot) as its canonical path now.
    pub fn root_dir(&self, tid: Pid) -> KResult<Vec<u8>> {
        Ok(self.task(tid)?.fs.borrow().root.path())
    }

    /// Canonical `path` as `tid` names it (relative to its root; the
    /// real path when its root does not lead there, as Linux's d_path).
    pub fn shown_path(&self, tid: Pid, path: &[u8]) -> Vec<u8> {
        match self.root_dir(tid) {
            Ok(root) => crate::vfs::dentry::shown_from(&root, path),
            Err(_) => path.to_vec(),
        }
    }

    pub(crate) fn cred(&self, tid: Pid) -> KResult<Cred> {
        Ok(self.task(tid)?.cred.clone())
    }

    /// Refreshes /proc's snapshot when a path may lead into it.
    fn touch_proc(&mut self, tid: Pid, base: &[u8], path: &[u8]) {
        // The base as the caller names it (its root may be a chroot).
        let base = self.shown_path(tid, base);
        if path.starts_with(b"/proc") || (path.first() != Some(&b'/') && base.starts_with(b"/proc"))
        {
            let scope = self.proc_lookup_scope(tid, &base, path);
            self.refresh_proc_for(tid, scope);
        }
    }

    pub fn lookup_at(
        &mut self,
        tid: Pid,
        dirfd: i32,
        path: &[u8],
        follow: bool,
    ) -> KResult<Resolved> {
        if path.is_empty() {
            // Before the dirfd is looked at, as on Linux.
            return Err(Errno::ENOENT);
        }
        let base = self.base_dir(tid, dirfd, path)?;
        self.touch_proc(tid, &base, path);
        let cred = self.cred(tid)?;
        let root = self.root_dir(tid)?;
        self.mounts.resolve(&root, &base, path, follow, &cred)
    }

    pub(crate) fn parent_at(
        &mut self,
        tid: Pid,
        dirfd: i32,
        path: &[u8],
    ) -> KResult<(Resolved, Vec<u8>, Option<Resolved>)> {
        let base = self.base_dir(tid, dirfd, path)?;
        self.touch_proc(tid, &base, path);
        let cred = self.cred(tid)?;
        let root = self.root_dir(tid)?;
        let (parent, name, existing) = self.mounts.resolve_parent(&root, &base, path, &cred)?;
        Ok((parent, name, existing))
    }

    /// Checks that a directory may be changed by `tid` (write+search, rw mount).
    pub(crate) fn may_modify_dir(&self, tid: Pid, dir: &Resolved) -> KResult<()> {
        if self.mounts.get(dir.node.mnt)?.read_only {
            return Err(Errno::EROFS);
        }
        self.cred(tid)?.check(&dir.stat, MAY_WRITE | MAY_EXEC)
    }

    pub fn do_open(
        &mut self,
        tid: Pid,
        dirfd: i32,
        path: &[u8],
        flags: u32,
        mode: u32,
    ) -> KResult<i64> {
        let cred = self.cred(tid)?;
        // fs.file-max first, as Linux's path_openat takes the file first.
        self.check_file_max(tid)?;
        let follow = flags & O_NOFOLLOW == 0;
        // A file made by this open is not checked against its own mode.
        let mut created = false;
        let tmpfile = flags & O_TMPFILE_BIT != 0 && flags & O_PATH == 0;
        let flags = if tmpfile {
            // O_TMPFILE is __O_TMPFILE|O_DIRECTORY, never with O_CREAT,
            // always for writing (Linux's build_open_flags).
            if flags & (O_DIRECTORY | O_CREAT) != O_DIRECTORY || flags & O_ACCMODE == O_RDONLY {
                return Err(Errno::EINVAL);
            }
            flags & !(O_TMPFILE_BIT | O_DIRECTORY)
        } else {
            flags
        };
        let r = if tmpfile {
            let dir = self.lookup_at(tid, dirfd, path, follow)?;
            created = true;
            self.make_tmpfile(tid, &dir, mode, flags & O_EXCL == 0)?
        } else if flags & O_CREAT != 0 {
            let (parent, name, existing) = self.parent_at(tid, dirfd, path)?;
            // A trailing slash names a directory, which open cannot make
            // (Linux's open_last_lookups: EISDIR, whatever is there).
            if path.ends_with(b"/") {
                return Err(Errno::EISDIR);
            }
            match existing {
                Some(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
                Some(r) if r.stat.mode & S_IFMT == S_IFLNK && follow => {
                    self.lookup_at(tid, dirfd, path, true)?
                }
                Some(r) => r,
                None => {
                    self.may_modify_dir(tid, &parent)?;
                    created = true;
                    let umask = self.task(tid)?.fs.borrow().umask;
                    let fs = self.mounts.fs(parent.node.mnt)?;
                    let ino = fs.create(
                        parent.node.ino,
                        &name,
                        S_IFREG | new_mode(&cred, &parent.stat, mode & 0o7777 & !umask, false),
                        cred.euid,
                        new_gid(&cred, &parent.stat),
                        0,
                    )?;
                    let node = crate::vfs::Node {
                        mnt: parent.node.mnt,
                        ino,
                    };
                    self.notify_child(parent.node, &name, IN_CREATE, 0);
                    let mut p = parent.path.clone();
                    if p != b"/" {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&name);
                    Resolved {
                        node,
                        path: p,
                        stat: self.mounts.stat_node(node)?,
                    }
                }
            }
        } else {
            self.lookup_at(tid, dirfd, path, follow)?
        };
        let acc = flags & O_ACCMODE;
        let ty = r.stat.mode & S_IFMT;
        // O_PATH|O_NOFOLLOW opens the link itself (fstat, fchownat and
        // readlinkat with an empty path then act on it); anything else
        // that ends on a link is ELOOP.
        if ty == S_IFLNK && flags & O_PATH == 0 {
            return Err(Errno::ELOOP);
        }
        if flags & O_DIRECTORY != 0 && ty != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        // O_TRUNC asks for write access too, even with O_RDONLY (Linux's
        // build_open_flags); O_PATH asks for none.
        let trunc = flags & O_TRUNC != 0 && flags & O_PATH == 0;
        if ty == S_IFDIR && (acc != O_RDONLY || trunc) {
            return Err(Errno::EISDIR);
        }
        if flags & O_PATH == 0 {
            let mut mask = 0;
            if acc != O_WRONLY {
                mask |= MAY_READ;
            }
            if acc != O_RDONLY || trunc {
                mask |= MAY_WRITE;
            }
            // A read-only mount refuses before the permission bits are
            // looked at (Linux's inode_permission); devices and FIFOs on
            // it stay writable.
            if mask & MAY_WRITE != 0 && ty == S_IFREG && self.mounts.get(r.node.mnt)?.read_only {
                return Err(Errno::EROFS);
            }
            if !created {
                cred.check(&r.stat, mask)?;
            }
            // O_NOATIME only for the owner or root (Linux's may_open).
            if flags & O_NOATIME != 0 && cred.euid != 0 && cred.euid != r.stat.uid {
                return Err(Errno::EPERM);
            }
        }
        if ty == S_IFREG && flags & O_PATH == 0 {
            // A conflicting lease is broken first (Linux's break_lease).
            self.break_leases(tid, r.node, acc != O_RDONLY, flags & O_NONBLOCK != 0)?;
        }
        let mut write_access = None;
        let generated = self.mounts.fs(r.node.mnt)?.generated();
        let ops: Rc<dyn FileDescription> = match ty {
            S_IFDIR => DirFile::new(self.dentries.get(r.node, r.path.clone())),
            S_IFREG if generated => ProcFile::new(self, r.node),
            S_IFREG => {
                // The file's write access, held as long as it (or a mapping
                // made from it) lives: ETXTBSY while a program runs from it.
                if acc != O_RDONLY && flags & O_PATH == 0 {
                    write_access = Some(self.writecounts.get_write((r.node.mnt, r.node.ino))?);
                } else if trunc {
                    self.deny_write_to_program(r.node)?;
                }
                if trunc {
                    self.deny_write_to_swapfile(r.node)?;
                }
                if trunc && r.stat.size > 0 {
                    self.mounts.fs(r.node.mnt)?.truncate(r.node.ino, 0)?;
                    self.pagecache.borrow_mut().truncate(
                        (r.node.mnt, r.node.ino),
                        0,
                        &mut self.frames,
                    );
                }
                RegularFile::new(r.node)
            }
            // /dev/ptmx makes a pty pair; /dev/pts/N is a slave.
            S_IFCHR if flags & O_PATH == 0 && r.stat.rdev == encode_dev(5, 2) => {
                PtyMaster::open(self, tid, Some(r.node))?
            }
            S_IFCHR if flags & O_PATH == 0 && (136..144).contains(&decode_dev(r.stat.rdev).0) => {
                let (major, minor) = decode_dev(r.stat.rdev);
                PtySlave::open(self, (major - 136) * 256 + minor, Some(r.node))?
            }
            S_IFCHR if flags & O_PATH == 0 => match CharDevice::from_rdev(r.stat.rdev) {
                Some(d) if d.is_terminal() => ConsoleFile::new(Some(r.node)),
                Some(CharDevice::Watchdog) => {
                    crate::kernel::files::watchdog::WatchdogFile::open(self, Some(r.node))?
                }
                Some(d) => CharDevFile::new(d, Some(r.node)),
                None => return Err(Errno::ENXIO),
            },
            S_IFIFO if flags & O_PATH == 0 => {
                let who = self.pipe_user(tid)?;
                let id = self.pipes.fifo((r.node.mnt, r.node.ino), who)?;
                match self.pipes.open_fifo(
                    id,
                    tid,
                    acc != O_WRONLY,
                    acc != O_RDONLY,
                    flags & O_NONBLOCK != 0,
                ) {
                    Ok(()) => self.fifo_opened(id),
                    Err(Errno::EAGAIN) => {
                        // A waiting reader counts already: writers may go.
                        self.fifo_opened(id);
                        self.wait_for_fifo_peer(tid, id);
                        return Err(Errno::ERESTARTSYS);
                    }
                    Err(e) => return Err(e),
                }
                PipeEnd::fifo(id, acc == O_WRONLY, r.node)
            }
            S_IFBLK if flags & O_PATH == 0 => {
                BlockDevFile::open(self, r.node, r.stat.rdev, flags & O_EXCL != 0)?
            }
            S_IFSOCK => return Err(Errno::ENXIO),
            // O_PATH: only the inode (reads and writes are EBADF).
            _ if flags & O_PATH != 0 => RegularFile::new(r.node),
            _ => return Err(Errno::ENXIO),
        };
        let watched = (!self.evhub.inotify.is_empty() && flags & O_PATH == 0)
            .then(|| (r.path.clone(), r.node));
        let file = OpenFile::new(ops.clone(), flags, r.path);
        file.borrow_mut().write_access = write_access;
        let installed = self
            .task(tid)?
            .files
            .borrow_mut()
            .install(file, flags & O_CLOEXEC != 0, 0);
        let fd = match installed {
            Ok(fd) => fd,
            Err(e) => {
                // Nothing refers to it: give back what opening took.
                ops.release(self);
                return Err(e);
            }
        };
        ops.opened(self, tid, flags);
        if let Some((path, node)) = watched {
            self.notify_file(tid, &path, node, IN_OPEN);
        }
        Ok(fd as i64)
    }

    pub fn close_fd(&mut self, tid: Pid, fd: i32) -> KResult<()> {
        let files = self.task(tid)?.files.clone();
        let e = files.borrow_mut().remove(fd)?;
        let owner = files.borrow().owner;
        self.close_entry(owner, e.file);
        Ok(())
    }

    pub(crate) fn fd_file(&self, tid: Pid, fd: i32) -> KResult<OpenFileRef> {
        self.task(tid)?.files.borrow().file(fd)
    }

    /// Stat of what an open file refers to.
    fn fstat_file(&mut self, _tid: Pid, f: &OpenFileRef) -> KResult<(Stat, u64)> {
        let ops = ops_of(f);
        ops.stat(self)
    }

    fn stat_at(&mut self, tid: Pid, dirfd: i32, path_ptr: u64, flags: u64) -> KResult<(Stat, u64)> {
        let path = self.read_path(tid, path_ptr)?;
        if path.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return Err(Errno::ENOENT);
            }
            let f = if dirfd == AT_FDCWD {
                let cwd = self.task(tid)?.fs.borrow().cwd.node();
                return self.stat_inode(cwd);
            } else {
                self.fd_file(tid, dirfd)?
            };
            return self.fstat_file(tid, &f);
        }
        let r = self.lookup_at(tid, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
        let dev = self.mounts.get(r.node.mnt)?.dev;
        Ok((r.stat, dev))
    }

    pub(crate) fn gather(&mut self, tid: Pid, iov: u64, cnt: u64) -> KResult<Vec<(u64, usize)>> {
        if cnt > 1024 {
            return Err(Errno::EINVAL);
        }
        let mut v = Vec::new();
        for i in 0..cnt {
            let at = (i * Iovec::SIZE as u64)
                .checked_add(iov)
                .ok_or(Errno::EFAULT)?;
            let Iovec { iov_base, iov_len } = self.read_struct(tid, at)?;
            if iov_len > isize::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            v.push((iov_base, iov_len as usize));
        }
        Ok(v)
    }
}

impl Kernel {
    /// ETXTBSY when `node` is the program a live address space runs:
    /// Linux denies write access to it from execve until that address
    /// space goes (vfs/writecount.rs). Without this a truncated running
    /// binary made every page not yet read in a SIGBUS (fuzzer seed 345).
    pub(crate) fn deny_write_to_program(&self, node: crate::vfs::Node) -> KResult<()> {
        if self.writecounts.write_denied((node.mnt, node.ino)) {
            return Err(Errno::ETXTBSY);
        }
        Ok(())
    }

    /// ETXTBSY when `node` is an active swap file: Linux refuses writes,
    /// truncation (also O_TRUNC opens), fallocate and copy_file_range on
    /// an S_SWAPFILE inode, whose blocks swap writes behind the file
    /// system's back. Opening it for writing itself succeeds, as there.
    pub(crate) fn deny_write_to_swapfile(&self, node: crate::vfs::Node) -> KResult<()> {
        if self.is_swapfile(node.mnt, node.ino) {
            return Err(Errno::ETXTBSY);
        }
        Ok(())
    }
}

fn path_arg(k: &mut Kernel, tid: Pid, p: u64) -> KResult<Vec<u8>> {
    k.read_path(tid, p)
}

pub fn sys_read(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_read(k, tid, fd_arg(a[0]), a[1], a[2] as usize, None)
}

pub fn sys_pread64(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    do_read(k, tid, fd_arg(a[0]), a[1], a[2] as usize, Some(a[3]))
}

fn do_read(k: &mut Kernel, tid: Pid, fd: i32, buf: u64, len: usize, pos: Option<u64>) -> SysResult {
    let f = k.fd_file(tid, fd)?;
    let ops = ops_of(&f);
    if pos.is_some() && !ops.positional() {
        return Err(Errno::ESPIPE);
    }
    if let Some(p) = pos {
        verify_area(p, len as u64)?;
    }
    if let Err(e) = ops.job_control(k, tid, TtyAccess::Read) {
        return open_result(k, tid, Err(e));
    }
    // A socket whose family makes read(2) a receive (AF_UNIX).
    if pos.is_none() {
        if let Some(r) = super::sockcall::sock_read(k, tid, &f, buf, len.min(IO_MAX)) {
            return r;
        }
    }
    // Files and memory devices fill the whole request, in chunks; pipes
    // and terminals return what is there.
    let chunked = ops.fills_request();
    let total = len.min(READ_MAX);
    let mut done = 0usize;
    loop {
        let mut want = (total - done).min(IO_MAX);
        if let Some(n) = ops.read_size(k) {
            want = want.min(n);
        }
        let mut data = vec![0u8; want];
        let r = k.file_read(tid, &f, &mut data, pos.map(|p| p + done as u64));
        match r {
            Ok(n) => {
                k.write_user(tid, buf + done as u64, &data[..n])?;
                done += n;
                if n < want || !chunked || done == total {
                    return ok(done as i64);
                }
            }
            Err(e) if done > 0 => {
                log::debug!("read stopped after {done} bytes: {e}");
                return ok(done as i64);
            }
            Err(e) => return block_on(k, tid, &f, POLLIN, Err(e)),
        }
    }
}

pub fn sys_write(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_write(k, tid, fd_arg(a[0]), a[1], a[2] as usize, None)
}

pub fn sys_pwrite64(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    do_write(k, tid, fd_arg(a[0]), a[1], a[2] as usize, Some(a[3]))
}

fn do_write(
    k: &mut Kernel,
    tid: Pid,
    fd: i32,
    buf: u64,
    len: usize,
    pos: Option<u64>,
) -> SysResult {
    let f = k.fd_file(tid, fd)?;
    let ops = ops_of(&f);
    if pos.is_some() && !ops.positional() {
        return Err(Errno::ESPIPE);
    }
    if let Some(p) = pos {
        verify_area(p, len as u64)?;
    }
    if let Err(e) = ops.job_control(k, tid, TtyAccess::Write) {
        return open_result(k, tid, Err(e));
    }
    // A socket whose family makes write(2) a send (AF_UNIX, inet).
    let capped = || vec![(buf, len.min(MAX_RW_COUNT as usize))];
    if let Some(r) = super::sockcall::sock_write(k, tid, &f, capped) {
        return r;
    }
    write_iov(k, tid, &f, &[(buf, len)], pos)
}

/// The iovecs cut to MAX_RW_COUNT bytes in all, as Linux's import_iovec.
fn cap_iov(iov: Vec<(u64, usize)>) -> Vec<(u64, usize)> {
    let mut left = MAX_RW_COUNT as usize;
    iov.into_iter()
        .map(|(base, len)| {
            let n = len.min(left);
            left -= n;
            (base, n)
        })
        .collect()
}

pub fn sys_readv(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let iov = k.gather(tid, a[1], a[2])?;
    if let Err(e) = ops_of(&f).job_control(k, tid, TtyAccess::Read) {
        return open_result(k, tid, Err(e));
    }
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(IO_MAX);
    let mut data = vec![0u8; total];
    let r = k.file_read(tid, &f, &mut data, None);
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
    block_on(k, tid, &f, POLLIN, r)
}

pub fn sys_writev(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let iov = k.gather(tid, a[1], a[2])?;
    if let Err(e) = ops_of(&f).job_control(k, tid, TtyAccess::Write) {
        return open_result(k, tid, Err(e));
    }
    if let Some(r) = super::sockcall::sock_write(k, tid, &f, || cap_iov(iov.clone())) {
        return r;
    }
    write_iov(k, tid, &f, &iov, None)
}

/// write(2)/writev(2)/pwrite(2) of the bytes `iov` names, up to
/// MAX_RW_COUNT, in chunks of IO_MAX. A blocking write to a kind that
/// takes it whole (pipes, fifos, stream sockets: `writes_whole`) sleeps
/// until every byte went, as Linux's pipe_write: the bytes written so far
/// are kept in the task (`SockSleep::done`) across the sleep, and a signal
/// then returns that count (EINTR or a restart only when nothing went,
/// `Kernel::interrupt_syscall`). Other kinds return a short count.
fn write_iov(
    k: &mut Kernel,
    tid: Pid,
    f: &OpenFileRef,
    iov: &[(u64, usize)],
    pos: Option<u64>,
) -> SysResult {
    let total = iov
        .iter()
        .fold(0usize, |acc, v| acc.saturating_add(v.1))
        .min(MAX_RW_COUNT as usize);
    let ops = ops_of(f);
    let whole = pos.is_none() && ops.writes_whole() && !f.borrow().nonblocking();
    let mut done = if whole {
        k.task(tid)?.sock_sleep.done.min(total)
    } else {
        0
    };
    loop {
        let want = (total - done).min(IO_MAX);
        let data = match super::net::gather_from(k, tid, iov, done, want) {
            Ok(d) => d,
            Err(_) if done > 0 => return ok(done as i64),
            Err(e) => return Err(e),
        };
        let at = match pos {
            Some(p) => Some(p.checked_add(done as u64).ok_or(Errno::EINVAL)?),
            None => None,
        };
        match k.file_write(tid, f, &data, at) {
            Ok(n) => {
                done += n;
                let more = done < total && n > 0 && (n == want || whole);
                if !more {
                    return ok(done as i64);
                }
            }
            Err(Errno::EAGAIN) if whole && done > 0 => {
                k.task_mut(tid)?.sock_sleep.done = done;
                return block_on(k, tid, f, POLLOUT, Err(Errno::EAGAIN));
            }
            Err(e) if done > 0 => {
                log::debug!("write stopped after {done} bytes: {e}");
                return ok(done as i64);
            }
            Err(e) => return block_on(k, tid, f, POLLOUT, Err(e)),
        }
    }
}

/// An open that must wait (a fifo with no peer yet: on the fifo's open
/// queue), or a terminal access that sent SIGTTIN/SIGTTOU (until that
/// signal comes), sleeps and retries (ERESTARTSYS). An open that waits for
/// a lease break sleeps on the inode's lock queue until the break's
/// deadline (`Kernel::break_leases` set it).
fn open_result(k: &Kernel, tid: Pid, r: KResult<i64>) -> SysResult {
    match r {
        Err(Errno::ERESTARTSYS) => match k.task(tid)?.block_deadline {
            Some(d) if !k.task(tid)?.waiting_on.is_empty() => {
                Ok(Outcome::Block(crate::kernel::task::Wait::Queue(Some(d))))
            }
            _ => Ok(Outcome::Block(crate::kernel::task::Wait::Queue(None))),
        },
        r => ok(r?),
    }
}

pub fn sys_open(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.do_open(tid, AT_FDCWD, &p, a[1] as u32, a[2] as u32);
    open_result(k, tid, r)
}

pub fn sys_openat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[1])?;
    let r = k.do_open(tid, fd_arg(a[0]), &p, a[2] as u32, a[3] as u32);
    open_result(k, tid, r)
}

pub fn sys_creat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    ok(k.do_open(tid, AT_FDCWD, &p, O_CREAT | O_WRONLY | O_TRUNC, a[1] as u32)?)
}

pub fn sys_close(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    k.close_fd(tid, fd_arg(a[0]))?;
    ok(0)
}

pub fn sys_lseek(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let cur = f.borrow().offset;
    let new = ops_of(&f).seek(k, cur, a[1] as i64, a[2])?;
    f.borrow_mut().offset = new;
    ok(new as i64)
}

pub fn sys_getdents64(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let cap = (a[2] as usize).min(IO_MAX);
    let ops = ops_of(&f);
    let io = Io {
        tid,
        file: &f,
        pos: None,
    };
    let (bytes, next) = ops.readdir(k, &io, cap)?;
    k.write_user(tid, a[1], &bytes)?;
    f.borrow_mut().offset = next;
    // Every getdents is an access (Linux's iterate_dir), even at the end.
    if let Some(node) = ops.node() {
        let path = f.borrow().path.clone();
        k.notify_file(tid, &path, node, IN_ACCESS);
    }
    ok(bytes.len() as i64)
}

fn put_stat(k: &mut Kernel, tid: Pid, at: u64, st: &Stat, dev: u64) -> SysResult {
    k.write_user(tid, at, &stat_bytes(st, dev))?;
    ok(0)
}

pub fn sys_stat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (st, dev) = k.stat_at(tid, AT_FDCWD, a[0], 0)?;
    put_stat(k, tid, a[1], &st, dev)
}

pub fn sys_lstat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (st, dev) = k.stat_at(tid, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)?;
    put_stat(k, tid, a[1], &st, dev)
}

pub fn sys_fstat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let (st, dev) = k.fstat_file(tid, &f)?;
    put_stat(k, tid, a[1], &st, dev)
}

pub fn sys_newfstatat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (st, dev) = k.stat_at(tid, fd_arg(a[0]), a[1], a[3])?;
    put_stat(k, tid, a[2], &st, dev)
}

pub fn sys_statx(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (st, dev) = k.stat_at(tid, fd_arg(a[0]), a[1], a[2])?;
    k.write_user(tid, a[4], &statx_bytes(&st, dev))?;
    ok(0)
}

pub fn sys_statfs(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    let mut s = k.mounts.fs(r.node.mnt)?.statfs()?;
    let m = k.mounts.get(r.node.mnt)?;
    let ro = m.read_only;
    s.fs_type = crate::kernel::mountfs::statfs_magic(m.kind, s.fs_type);
    k.write_user(tid, a[1], &statfs_bytes(&s, ro))?;
    ok(0)
}

pub fn sys_fstatfs(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let n = f.borrow().node();
    let ro = match n {
        Some(n) => k.mounts.get(n.mnt)?.read_only,
        None => false,
    };
    let s = match n {
        Some(n) => {
            let mut s = k.mounts.fs(n.mnt)?.statfs()?;
            s.fs_type = crate::kernel::mountfs::statfs_magic(k.mounts.get(n.mnt)?.kind, s.fs_type);
            s
        }
        None => crate::fs::StatFs {
            fs_type: 0x50495045,
            block_size: 4096,
            name_max: 255,
            ..Default::default()
        },
    };
    k.write_user(tid, a[1], &statfs_bytes(&s, ro))?;
    ok(0)
}

fn do_mkdir(k: &mut Kernel, tid: Pid, dirfd: i32, pp: u64, mode: u32) -> SysResult {
    let p = path_arg(k, tid, pp)?;
    let (parent, name, existing) = k.parent_at(tid, dirfd, &p)?;
    if existing.is_some() {
        return Err(Errno::EEXIST);
    }
    k.may_modify_dir(tid, &parent)?;
    let cred = k.cred(tid)?;
    let umask = k.task(tid)?.fs.borrow().umask;
    k.mounts.fs(parent.node.mnt)?.mkdir(
        parent.node.ino,
        &name,
        new_mode(&cred, &parent.stat, mode & 0o7777 & !umask, true),
        cred.euid,
        new_gid(&cred, &parent.stat),
    )?;
    k.notify_child(parent.node, &name, IN_CREATE | IN_ISDIR, 0);
    ok(0)
}

pub fn sys_mkdir(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_mkdir(k, tid, AT_FDCWD, a[0], a[1] as u32)
}

pub fn sys_mkdirat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_mkdir(k, tid, fd_arg(a[0]), a[1], a[2] as u32)
}

fn do_mknod(k: &mut Kernel, tid: Pid, dirfd: i32, pp: u64, mode: u32, dev: u64) -> SysResult {
    let p = path_arg(k, tid, pp)?;
    let (parent, name, existing) = k.parent_at(tid, dirfd, &p)?;
    if existing.is_some() {
        return Err(Errno::EEXIST);
    }
    k.may_modify_dir(tid, &parent)?;
    let cred = k.cred(tid)?;
    let umask = k.task(tid)?.fs.borrow().umask;
    let ty = if mode & S_IFMT == 0 {
        S_IFREG
    } else {
        mode & S_IFMT
    };
    if ty == S_IFDIR {
        return Err(Errno::EINVAL);
    }
    k.mounts.fs(parent.node.mnt)?.create(
        parent.node.ino,
        &name,
        ty | new_mode(&cred, &parent.stat, mode & 0o7777 & !umask, false),
        cred.euid,
        new_gid(&cred, &parent.stat),
        dev,
    )?;
    k.notify_child(parent.node, &name, IN_CREATE, 0);
    ok(0)
}

pub fn sys_mknod(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_mknod(k, tid, AT_FDCWD, a[0], a[1] as u32, a[2])
}

pub fn sys_mknodat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_mknod(k, tid, fd_arg(a[0]), a[1], a[2] as u32, a[3])
}

fn do_unlink(k: &mut Kernel, tid: Pid, dirfd: i32, pp: u64, rmdir: bool) -> SysResult {
    let p = path_arg(k, tid, pp)?;
    // A last component of ".", ".." or the root is refused by its kind
    // (Linux's LAST_DOT, LAST_DOTDOT, LAST_ROOT), once the path resolves.
    let last = p.split(|&b| b == b'/').rfind(|c| !c.is_empty());
    let refused = match last {
        Some(b".") => Some(if rmdir { Errno::EINVAL } else { Errno::EISDIR }),
        Some(b"..") => Some(if rmdir {
            Errno::ENOTEMPTY
        } else {
            Errno::EISDIR
        }),
        None if !p.is_empty() => Some(if rmdir { Errno::EBUSY } else { Errno::EISDIR }),
        _ => None,
    };
    if let Some(e) = refused {
        k.lookup_at(tid, dirfd, &p, true)?;
        return Err(e);
    }
    let (parent, name, existing) = k.parent_at(tid, dirfd, &p)?;
    // Linux asks for write access to the mount before it looks the name
    // up: a missing name on a read-only mount is EROFS.
    if k.mounts.get(parent.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    let target = existing.ok_or(Errno::ENOENT)?;
    k.may_modify_dir(tid, &parent)?;
    sticky_check(&k.cred(tid)?, &parent.stat, &target.stat)?;
    if k.mounts.mounted_on(target.node).is_some() || target.node.mnt != parent.node.mnt {
        return Err(Errno::EBUSY);
    }
    let fs = k.mounts.fs(parent.node.mnt)?;
    if rmdir {
        if !is_dir(&target.stat) {
            return Err(Errno::ENOTDIR);
        }
        k.evict_orphans_from(target.node);
        fs.rmdir(parent.node.ino, &name)?;
        k.dentries.removed(&target.path, target.node);
        k.notify_child(parent.node, &name, IN_DELETE | IN_ISDIR, 0);
        k.notify_gone(target.node);
    } else {
        if is_dir(&target.stat) {
            return Err(Errno::EISDIR);
        }
        if k.is_swapfile(target.node.mnt, target.node.ino) {
            return Err(Errno::EPERM);
        }
        k.unlink_keeping_open(parent.node, &name, target.node, target.stat.nlink)?;
        // As Linux: the link count changed, the last link's inode is
        // gone, then the directory lost the name.
        k.notify_node(target.node, IN_ATTRIB);
        if target.stat.nlink <= 1 {
            k.notify_gone(target.node);
        }
        k.notify_child(parent.node, &name, IN_DELETE, 0);
    }
    ok(0)
}

pub fn sys_unlink(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_unlink(k, tid, AT_FDCWD, a[0], false)
}

pub fn sys_rmdir(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_unlink(k, tid, AT_FDCWD, a[0], true)
}

pub fn sys_unlinkat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_unlink(k, tid, fd_arg(a[0]), a[1], a[2] & AT_REMOVEDIR != 0)
}

/// The group of a new entry in `dir`: the directory's when it is setgid
/// (BSD semantics), else the creator's.
pub(crate) fn new_gid(cred: &Cred, dir: &Stat) -> u32 {
    if dir.mode & S_ISGID != 0 {
        dir.gid
    } else {
        cred.egid
    }
}

/// The permission bits of a new entry in `dir`: a new directory in a
/// setgid directory is setgid too; a new file keeps S_ISGID (with group
/// exec) only if its creator is root or in the group it gets (Linux's
/// inode_init_owner and mode_strip_sgid).
pub(crate) fn new_mode(cred: &Cred, dir: &Stat, mode: u32, is_dir: bool) -> u32 {
    if dir.mode & S_ISGID == 0 {
        return mode;
    }
    if is_dir {
        return mode | S_ISGID;
    }
    let gid = new_gid(cred, dir);
    if mode & S_ISGID != 0 && mode & 0o010 != 0 && cred.euid != 0 && !cred.in_group(gid) {
        return mode & !S_ISGID;
    }
    mode
}

/// In a sticky directory (/tmp) only the entry's owner, the directory's
/// owner or root may remove or rename an entry (Linux: EPERM, after the
/// directory's own write permission).
fn sticky_check(cred: &Cred, dir: &Stat, victim: &Stat) -> KResult<()> {
    if dir.mode & S_ISVTX == 0 || cred.euid == 0 || cred.euid == victim.uid || cred.euid == dir.uid
    {
        return Ok(());
    }
    Err(Errno::EPERM)
}

fn do_rename(
    k: &mut Kernel,
    tid: Pid,
    od: i32,
    op: u64,
    nd: i32,
    np: u64,
    flags: u64,
) -> SysResult {
    const RENAME_NOREPLACE: u64 = 1;
    const RENAME_EXCHANGE: u64 = 2;
    const RENAME_WHITEOUT: u64 = 4;
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    // A whiteout needs no CAP_MKNOD (Linux 5.8 on).
    let cred = k.cred(tid)?;
    let o = path_arg(k, tid, op)?;
    let n = path_arg(k, tid, np)?;
    let (opar, oname, oex) = k.parent_at(tid, od, &o)?;
    let (npar, nname, nex) = k.parent_at(tid, nd, &n)?;
    // As Linux's do_renameat2: EXDEV, then write access to the mount
    // (EROFS), then the names are looked up.
    if opar.node.mnt != npar.node.mnt {
        return Err(Errno::EXDEV);
    }
    if k.mounts.get(opar.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    let src = oex.ok_or(Errno::ENOENT)?;
    if flags & RENAME_EXCHANGE != 0 && nex.is_none() {
        return Err(Errno::ENOENT);
    }
    if flags & RENAME_NOREPLACE != 0 && nex.is_some() {
        return Err(Errno::EEXIST);
    }
    k.may_modify_dir(tid, &opar)?;
    k.may_modify_dir(tid, &npar)?;
    sticky_check(&cred, &opar.stat, &src.stat)?;
    if let Some(dst) = &nex {
        sticky_check(&cred, &npar.stat, &dst.stat)?;
        if dst.node == src.node {
            return ok(0);
        }
    }
    // Linux's may_delete: an active swap file is neither moved nor replaced.
    let swapfile = |r: &crate::vfs::Resolved| k.is_swapfile(r.node.mnt, r.node.ino);
    if swapfile(&src) || nex.as_ref().is_some_and(swapfile) {
        return Err(Errno::EPERM);
    }
    let fs = k.mounts.fs(opar.node.mnt)?;
    if flags & RENAME_EXCHANGE != 0 {
        let dst = nex.ok_or(Errno::ENOENT)?;
        fs.exchange(opar.node.ino, &oname, npar.node.ino, &nname)?;
        if opar.node == npar.node {
            // Two moves, as Linux's: each a rename in the directory.
            k.dnotify_rename(opar.node);
            k.dnotify_rename(opar.node);
        }
        let cookie = k.rename_cookie();
        k.notify_child(
            opar.node,
            &oname,
            IN_MOVED_FROM | isdir_bit(&src.stat),
            cookie,
        );
        k.notify_child(
            npar.node,
            &nname,
            IN_MOVED_TO | isdir_bit(&src.stat),
            cookie,
        );
        let cookie = k.rename_cookie();
        k.notify_child(
            npar.node,
            &nname,
            IN_MOVED_FROM | isdir_bit(&dst.stat),
            cookie,
        );
        k.notify_child(
            opar.node,
            &oname,
            IN_MOVED_TO | isdir_bit(&dst.stat),
            cookie,
        );
        k.notify_node(src.node, IN_MOVE_SELF);
        k.notify_node(dst.node, IN_MOVE_SELF);
        if is_dir(&src.stat) || is_dir(&dst.stat) {
            k.dentries.exchanged(&src.path, &dst.path);
        }
        return ok(0);
    }
    if flags & RENAME_WHITEOUT != 0 && !fs.supports_whiteout() {
        return Err(Errno::EINVAL);
    }
    fs.rename(opar.node.ino, &oname, npar.node.ino, &nname)?;
    if flags & RENAME_WHITEOUT != 0 {
        // The whiteout: a 0:0 character device where the source was.
        if let Err(e) = fs.create(opar.node.ino, &oname, S_IFCHR, cred.euid, cred.egid, 0) {
            log::debug!("renameat2: whiteout not made: {e:?}");
        }
    }
    if opar.node == npar.node {
        k.dnotify_rename(opar.node);
    }
    let cookie = k.rename_cookie();
    let dir_bit = isdir_bit(&src.stat);
    k.notify_child(opar.node, &oname, IN_MOVED_FROM | dir_bit, cookie);
    k.notify_child(npar.node, &nname, IN_MOVED_TO | dir_bit, cookie);
    k.notify_node(src.node, IN_MOVE_SELF);
    if let Some(dst) = nex
        .as_ref()
        .filter(|d| d.stat.nlink <= 1 || is_dir(&d.stat))
    {
        k.notify_gone(dst.node);
    }
    if is_dir(&src.stat) {
        // The cwds and open directories at and below it move along; one
        // it replaced is gone.
        let mut to = npar.path.clone();
        if to != b"/" {
            to.push(b'/');
        }
        to.extend_from_slice(&nname);
        let replaced = nex.as_ref().filter(|d| is_dir(&d.stat)).map(|d| d.node);
        k.dentries.renamed(&src.path, &to, replaced);
    }
    if let Some(dst) = nex {
        if dst.stat.nlink <= 1 {
            k.pagecache
                .borrow_mut()
                .drop_file((dst.node.mnt, dst.node.ino), &mut k.frames);
        }
    }
    ok(0)
}

pub fn sys_rename(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_rename(k, tid, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

pub fn sys_renameat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_rename(k, tid, fd_arg(a[0]), a[1], fd_arg(a[2]), a[3], 0)
}

pub fn sys_renameat2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_rename(k, tid, fd_arg(a[0]), a[1], fd_arg(a[2]), a[3], a[4])
}

fn do_link(k: &mut Kernel, tid: Pid, od: i32, op: u64, nd: i32, np: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let o = path_arg(k, tid, op)?;
    let n = path_arg(k, tid, np)?;
    // An empty path links the file `od` holds (the flink of O_TMPFILE),
    // for a caller with CAP_DAC_READ_SEARCH (root); ENOENT otherwise.
    let src = if o.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if k.cred(tid)?.euid != 0 {
            return Err(Errno::ENOENT);
        }
        resolved_of_fd(k, tid, od)?
    } else {
        k.lookup_at(tid, od, &o, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    let (npar, nname, nex) = k.parent_at(tid, nd, &n)?;
    // Linux's order: the new name (EEXIST), write access to its mount
    // (EROFS), EXDEV, permission on the directory, then a directory EPERM.
    if nex.is_some() {
        return Err(Errno::EEXIST);
    }
    if k.mounts.get(npar.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    if src.node.mnt != npar.node.mnt {
        return Err(Errno::EXDEV);
    }
    k.may_modify_dir(tid, &npar)?;
    if is_dir(&src.stat) {
        return Err(Errno::EPERM);
    }
    // An inode with no links is linked only if it is an O_TMPFILE made
    // without O_EXCL (ENOENT otherwise, as Linux).
    let tmpfile = k.may_link_orphan(src.node)?;
    k.mounts
        .fs(npar.node.mnt)?
        .link(src.node.ino, npar.node.ino, &nname)?;
    if tmpfile {
        k.named_tmpfile(src.node);
    }
    k.notify_node(src.node, IN_ATTRIB);
    k.notify_child(npar.node, &nname, IN_CREATE, 0);
    ok(0)
}

pub fn sys_link(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_link(k, tid, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)
}

pub fn sys_linkat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_link(k, tid, fd_arg(a[0]), a[1], fd_arg(a[2]), a[3], a[4])
}

fn do_symlink(k: &mut Kernel, tid: Pid, tp: u64, nd: i32, np: u64) -> SysResult {
    let target = path_arg(k, tid, tp)?;
    let n = path_arg(k, tid, np)?;
    let (npar, nname, nex) = k.parent_at(tid, nd, &n)?;
    if nex.is_some() {
        return Err(Errno::EEXIST);
    }
    k.may_modify_dir(tid, &npar)?;
    let cred = k.cred(tid)?;
    k.mounts.fs(npar.node.mnt)?.symlink(
        npar.node.ino,
        &nname,
        &target,
        cred.euid,
        new_gid(&cred, &npar.stat),
    )?;
    k.notify_child(npar.node, &nname, IN_CREATE, 0);
    ok(0)
}

pub fn sys_symlink(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_symlink(k, tid, a[0], AT_FDCWD, a[1])
}

pub fn sys_symlinkat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_symlink(k, tid, a[0], fd_arg(a[1]), a[2])
}

fn do_readlink(k: &mut Kernel, tid: Pid, dirfd: i32, pp: u64, buf: u64, len: u64) -> SysResult {
    if len as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(k, tid, pp)?;
    // An empty path reads the link an O_PATH fd holds (Linux 2.6.39+).
    let r = if p.is_empty() && dirfd != AT_FDCWD {
        let r = resolved_of_fd(k, tid, dirfd).map_err(|_| Errno::ENOENT)?;
        if r.stat.mode & S_IFMT != S_IFLNK {
            return Err(Errno::ENOENT);
        }
        r
    } else {
        k.lookup_at(tid, dirfd, &p, false)?
    };
    if r.stat.mode & S_IFMT != S_IFLNK {
        return Err(Errno::EINVAL);
    }
    let target = k.mounts.fs(r.node.mnt)?.readlink(r.node.ino)?;
    let n = target.len().min(len as usize);
    k.write_user(tid, buf, &target[..n])?;
    ok(n as i64)
}

pub fn sys_readlink(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_readlink(k, tid, AT_FDCWD, a[0], a[1], a[2])
}

pub fn sys_readlinkat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_readlink(k, tid, fd_arg(a[0]), a[1], a[2], a[3])
}

/// EROFS when `r` is on a read-only mount: Linux asks for write access
/// to the mount before any permission check of a metadata change.
fn refuse_read_only(k: &Kernel, r: &Resolved) -> KResult<()> {
    if k.mounts.get(r.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    Ok(())
}

fn setattr_checked(k: &mut Kernel, tid: Pid, r: &Resolved, attr: SetAttr) -> SysResult {
    refuse_read_only(k, r)?;
    let cred = k.cred(tid)?;
    if cred.euid != 0 && cred.euid != r.stat.uid {
        return Err(Errno::EPERM);
    }
    k.mounts.fs(r.node.mnt)?.setattr(r.node.ino, &attr)?;
    k.notify_path(tid, &r.path, r.node, IN_ATTRIB);
    ok(0)
}

fn resolved_of_fd(k: &mut Kernel, tid: Pid, fd: i32) -> KResult<Resolved> {
    let f = k.fd_file(tid, fd)?;
    let of = f.borrow();
    let node = of.node().ok_or(Errno::EINVAL)?;
    Ok(Resolved {
        node,
        path: of.path.clone(),
        stat: k.mounts.stat_node(node)?,
    })
}

/// chmod: only the permission bits change (setattr keeps the type). An
/// owner who is not root and not in the file's group cannot set S_ISGID:
/// it is cleared, on every file system and file type (Linux's
/// setattr_prepare).
fn chmod_to(k: &mut Kernel, tid: Pid, r: &Resolved, mode: u64) -> SysResult {
    let cred = k.cred(tid)?;
    let mut mode = mode as u32 & 0o7777;
    if cred.euid != 0 && !cred.in_group(r.stat.gid) {
        mode &= !S_ISGID;
    }
    let attr = SetAttr {
        mode: Some(mode),
        ..Default::default()
    };
    setattr_checked(k, tid, r, attr)
}

pub fn sys_chmod(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    chmod_to(k, tid, &r, a[1])
}

pub fn sys_fchmodat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[1])?;
    let r = k.lookup_at(tid, fd_arg(a[0]), &p, true)?;
    chmod_to(k, tid, &r, a[2])
}

/// EBADF for an O_PATH fd: calls on the file itself (fchmod, fchown,
/// ftruncate, fsync) do not take one, as on Linux.
fn refuse_o_path(k: &mut Kernel, tid: Pid, fd: i32) -> KResult<()> {
    if k.fd_file(tid, fd)?.borrow().flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(())
}

pub fn sys_fchmod(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    refuse_o_path(k, tid, fd_arg(a[0]))?;
    let r = resolved_of_fd(k, tid, fd_arg(a[0]))?;
    chmod_to(k, tid, &r, a[1])
}

fn chown_attr(uid: u64, gid: u64) -> SetAttr {
    SetAttr {
        uid: (uid as u32 != u32::MAX).then_some(uid as u32),
        gid: (gid as u32 != u32::MAX).then_some(gid as u32),
        ..Default::default()
    }
}

fn chown_checked(k: &mut Kernel, tid: Pid, r: &Resolved, mut attr: SetAttr) -> SysResult {
    refuse_read_only(k, r)?;
    if k.cred(tid)?.euid != 0 && attr.uid.is_some_and(|u| u != r.stat.uid) {
        return Err(Errno::EPERM);
    }
    // A change of owner drops set-user-ID (and set-group-ID with group
    // execute) of non-directories, as Linux does.
    let ty = r.stat.mode & S_IFMT;
    if (attr.uid.is_some() || attr.gid.is_some()) && ty != S_IFDIR && ty != S_IFLNK {
        let mut m = r.stat.mode & 0o7777;
        m &= !0o4000;
        if m & 0o010 != 0 {
            m &= !0o2000;
        }
        if m != r.stat.mode & 0o7777 {
            attr.mode = Some(m);
        }
    }
    setattr_checked(k, tid, r, attr)
}

pub fn sys_chown(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    chown_checked(k, tid, &r, chown_attr(a[1], a[2]))
}

pub fn sys_lchown(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, false)?;
    chown_checked(k, tid, &r, chown_attr(a[1], a[2]))
}

pub fn sys_fchown(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    refuse_o_path(k, tid, fd_arg(a[0]))?;
    let r = resolved_of_fd(k, tid, fd_arg(a[0]))?;
    chown_checked(k, tid, &r, chown_attr(a[1], a[2]))
}

pub fn sys_fchownat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[4] & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(k, tid, a[1])?;
    let r = resolve_at(k, tid, fd_arg(a[0]), &p, a[4])?;
    chown_checked(k, tid, &r, chown_attr(a[2], a[3]))
}

pub fn now_ts() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

/// utimensat's special nanosecond values.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// Linux's vfs_utimes after the lookup: EINVAL for a nanosecond value
/// out of range, EROFS, then the permission — setting explicit times
/// needs the owner or root (EPERM); setting both to now ("touch", NULL
/// or both UTIME_NOW) also lets anyone who may write the file (EACCES).
fn utimes_checked(
    k: &mut Kernel,
    tid: Pid,
    r: &Resolved,
    times: Option<[Timespec64; 2]>,
) -> SysResult {
    let valid = |n: i64| n == UTIME_NOW || n == UTIME_OMIT || (0..1_000_000_000).contains(&n);
    let times = match times {
        Some(t) if !valid(t[0].1) || !valid(t[1].1) => return Err(Errno::EINVAL),
        Some(t) if t[0].1 == UTIME_NOW && t[1].1 == UTIME_NOW => None,
        t => t,
    };
    refuse_read_only(k, r)?;
    let cred = k.cred(tid)?;
    if cred.euid != 0 && cred.euid != r.stat.uid {
        if times.is_some() {
            return Err(Errno::EPERM);
        }
        cred.check(&r.stat, MAY_WRITE)?;
    }
    let now = now_ts();
    let pick = |t: Option<Timespec64>| match t {
        None => Some(now),
        Some((_, UTIME_NOW)) => Some(now),
        Some((_, UTIME_OMIT)) => None,
        // In range: checked above.
        Some((sec, nsec)) => Some(Timespec {
            sec,
            nsec: nsec as u32,
        }),
    };
    let attr = SetAttr {
        atime: pick(times.map(|t| t[0])),
        mtime: pick(times.map(|t| t[1])),
        ..Default::default()
    };
    k.mounts.fs(r.node.mnt)?.setattr(r.node.ino, &attr)?;
    k.notify_path(tid, &r.path, r.node, IN_ATTRIB);
    ok(0)
}

/// A guest (seconds, nanoseconds) pair.
type Timespec64 = (i64, i64);

/// Two guest structs of two 64-bit fields at `p`: timespecs, timevals or
/// a utimbuf's two seconds (`pairs` false).
fn read_time_pairs(k: &mut Kernel, tid: Pid, p: u64, pairs: bool) -> KResult<[Timespec64; 2]> {
    let b = k.read_user_vec(tid, p, if pairs { 32 } else { 16 })?;
    let get = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ok(if pairs {
        [(get(0), get(1)), (get(2), get(3))]
    } else {
        [(get(0), 0), (get(1), 0)]
    })
}

/// utimensat(dirfd, path, times, flags), Linux's order: the times are
/// read first, and both UTIME_OMIT succeeds without looking at the path;
/// unknown flags EINVAL; a NULL path acts on the fd (no flags then).
pub fn sys_utimensat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let times = match a[2] {
        0 => None,
        p => Some(read_time_pairs(k, tid, p, true)?),
    };
    if times.is_some_and(|t| t[0].1 == UTIME_OMIT && t[1].1 == UTIME_OMIT) {
        return ok(0);
    }
    let flags = a[3];
    let r = if a[1] == 0 && fd_arg(a[0]) != AT_FDCWD {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        refuse_o_path(k, tid, fd_arg(a[0]))?;
        resolved_of_fd(k, tid, fd_arg(a[0]))?
    } else {
        if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
            return Err(Errno::EINVAL);
        }
        if a[1] == 0 {
            return Err(Errno::EFAULT);
        }
        let p = path_arg(k, tid, a[1])?;
        resolve_at(k, tid, fd_arg(a[0]), &p, flags)?
    };
    utimes_checked(k, tid, &r, times)
}

/// utimes(path, timevals) and futimesat: tv_usec outside [0, 10^6) is
/// EINVAL before the path is looked at.
fn do_utimes_tv(k: &mut Kernel, tid: Pid, dirfd: i32, pp: u64, tv: u64) -> SysResult {
    let times = match tv {
        0 => None,
        p => {
            let t = read_time_pairs(k, tid, p, true)?;
            if !(0..1_000_000).contains(&t[0].1) || !(0..1_000_000).contains(&t[1].1) {
                return Err(Errno::EINVAL);
            }
            // Below 10^6, so the product is below 10^9.
            Some([(t[0].0, t[0].1 * 1000), (t[1].0, t[1].1 * 1000)])
        }
    };
    let p = path_arg(k, tid, pp)?;
    let r = k.lookup_at(tid, dirfd, &p, true)?;
    utimes_checked(k, tid, &r, times)
}

pub fn sys_utimes(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_utimes_tv(k, tid, AT_FDCWD, a[0], a[1])
}

pub fn sys_futimesat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_utimes_tv(k, tid, fd_arg(a[0]), a[1], a[2])
}

/// utime(path, utimbuf): two whole seconds.
pub fn sys_utime(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let times = match a[1] {
        0 => None,
        p => Some(read_time_pairs(k, tid, p, false)?),
    };
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    utimes_checked(k, tid, &r, times)
}

/// The file an *at call with `flags` names: with AT_EMPTY_PATH and an
/// empty path the dirfd itself (the cwd for AT_FDCWD), as Linux's
/// LOOKUP_EMPTY; else the path from dirfd, following a last symlink
/// unless AT_SYMLINK_NOFOLLOW.
fn resolve_at(k: &mut Kernel, tid: Pid, dirfd: i32, p: &[u8], flags: u64) -> KResult<Resolved> {
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            return k.lookup_at(tid, AT_FDCWD, b".", true);
        }
        return resolved_of_fd(k, tid, dirfd);
    }
    k.lookup_at(tid, dirfd, p, flags & AT_SYMLINK_NOFOLLOW == 0)
}

/// truncate(2) (`by_path`: permission is checked) and ftruncate(2) in
/// Linux's order: EISDIR, EINVAL for what is not a regular file, EROFS,
/// then the permission bits.
fn do_truncate(k: &mut Kernel, tid: Pid, r: &Resolved, len: u64, by_path: bool) -> SysResult {
    if is_dir(&r.stat) {
        return Err(Errno::EISDIR);
    }
    if r.stat.mode & S_IFMT != S_IFREG {
        return Err(Errno::EINVAL);
    }
    if k.mounts.get(r.node.mnt)?.read_only {
        return Err(Errno::EROFS);
    }
    if by_path {
        k.cred(tid)?.check(&r.stat, MAY_WRITE)?;
    }
    k.check_seals_truncate(r.node, len)?;
    k.deny_write_to_program(r.node)?;
    k.deny_write_to_swapfile(r.node)?;
    // Growing past RLIMIT_FSIZE: EFBIG and SIGXFSZ (inode_newsize_ok).
    if len > r.stat.size {
        if let Some(last) = len.checked_sub(1) {
            k.fsize_room(tid, last, 1)?;
        }
    }
    k.mounts.fs(r.node.mnt)?.truncate(r.node.ino, len)?;
    k.pagecache
        .borrow_mut()
        .truncate((r.node.mnt, r.node.ino), len, &mut k.frames);
    ok(0)
}

pub fn sys_truncate(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    do_truncate(k, tid, &r, a[1], true)?;
    k.notify_path(tid, &r.path, r.node, IN_MODIFY);
    ok(0)
}

pub fn sys_ftruncate(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    refuse_o_path(k, tid, fd_arg(a[0]))?;
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    if !f.borrow().writable() {
        return Err(Errno::EINVAL);
    }
    let r = resolved_of_fd(k, tid, fd_arg(a[0]))?;
    do_truncate(k, tid, &r, a[1], false)?;
    k.notify_path(tid, &r.path, r.node, IN_MODIFY);
    ok(0)
}

pub fn sys_fsync(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    refuse_o_path(k, tid, fd_arg(a[0]))?;
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    if let Some(n) = f.borrow().node() {
        let fs = k.mounts.fs(n.mnt)?;
        k.pagecache
            .borrow_mut()
            .writeback(fs.as_ref(), (n.mnt, n.ino), &k.frames)?;
        fs.sync()?;
    }
    ops_of(&f).fsync(k)?;
    ok(0)
}

pub fn sys_sync(k: &mut Kernel, _tid: Pid, _a: [u64; 6]) -> SysResult {
    k.sync_all();
    ok(0)
}

fn do_access(k: &mut Kernel, tid: Pid, dirfd: i32, pp: u64, mode: u64, flags: u64) -> SysResult {
    const AT_EACCESS: u64 = 0x200;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = path_arg(k, tid, pp)?;
    let r = resolve_at(k, tid, dirfd, &p, flags)?;
    if mode & 7 == 0 {
        return ok(0);
    }
    // access() checks with the real ids (AT_EACCESS: the effective ones).
    let mut cred = k.cred(tid)?;
    if flags & AT_EACCESS == 0 {
        cred.euid = cred.uid;
        cred.egid = cred.gid;
    }
    let mut mask = 0;
    if mode & 4 != 0 {
        mask |= MAY_READ;
    }
    if mode & 2 != 0 {
        mask |= MAY_WRITE;
        let ty = r.stat.mode & S_IFMT;
        if k.mounts.get(r.node.mnt)?.read_only && matches!(ty, S_IFREG | S_IFDIR | S_IFLNK) {
            return Err(Errno::EROFS);
        }
    }
    if mode & 1 != 0 {
        mask |= MAY_EXEC;
    }
    cred.check(&r.stat, mask)?;
    ok(0)
}

pub fn sys_access(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_access(k, tid, AT_FDCWD, a[0], a[1], 0)
}

pub fn sys_faccessat(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_access(k, tid, fd_arg(a[0]), a[1], a[2], 0)
}

pub fn sys_faccessat2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_access(k, tid, fd_arg(a[0]), a[1], a[2], a[3])
}

pub fn sys_chdir(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    if !is_dir(&r.stat) {
        return Err(Errno::ENOTDIR);
    }
    k.cred(tid)?.check(&r.stat, MAY_EXEC)?;
    let d = k.dentries.get(r.node, r.path);
    k.task(tid)?.fs.borrow_mut().cwd = d;
    ok(0)
}

pub fn sys_fchdir(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let d = ops_of(&f).directory().ok_or(Errno::ENOTDIR)?;
    let st = k.mounts.stat_node(d.node())?;
    k.cred(tid)?.check(&st, MAY_EXEC)?;
    k.task(tid)?.fs.borrow_mut().cwd = d;
    ok(0)
}

/// chroot: Linux's checks in its order — the path (ENOENT, ENOTDIR,
/// ELOOP, EFAULT), search permission on it (EACCES), then the privilege
/// (EPERM) — then the directory becomes the root of the caller's fs
/// context (shared under CLONE_FS, copied by fork): absolute paths and
/// symlinks start there and `..` stops there (vfs/walk.rs). The cwd stays
/// where it is, as on Linux (so a cwd outside the new root is a way out).
pub fn sys_chroot(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let p = path_arg(k, tid, a[0])?;
    let r = k.lookup_at(tid, AT_FDCWD, &p, true)?;
    if !is_dir(&r.stat) {
        return Err(Errno::ENOTDIR);
    }
    let cred = k.cred(tid)?;
    cred.check(&r.stat, MAY_EXEC)?;
    if cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    let d = k.dentries.get(r.node, r.path);
    k.task(tid)?.fs.borrow_mut().root = d;
    ok(0)
}

/// getcwd: the cwd's path now, relative to the caller's root; ENOENT
/// once it was removed; "(unreachable)" and the real path when the root
/// does not lead to it (a cwd kept across chroot), as Linux's getcwd.
pub fn sys_getcwd(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (d, root) = {
        let fs = k.task(tid)?.fs.borrow();
        (fs.cwd.clone(), fs.root.path())
    };
    if d.is_dead() {
        return Err(Errno::ENOENT);
    }
    let mut cwd = match crate::vfs::dentry::seen_from(&root, &d.path()) {
        Some(p) => p,
        None => [&b"(unreachable)"[..], &d.path()].concat(),
    };
    cwd.push(0);
    if cwd.len() > a[1] as usize {
        return Err(Errno::ERANGE);
    }
    k.write_user(tid, a[0], &cwd)?;
    ok(cwd.len() as i64)
}

pub fn sys_umask(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let t = k.task(tid)?;
    let old = t.fs.borrow().umask;
    t.fs.borrow_mut().umask = a[0] as u32 & 0o777;
    ok(old as i64)
}

fn do_pipe(k: &mut Kernel, tid: Pid, fds: u64, flags: u64) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    let flags = flags as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK | 0o40000) != 0 {
        return Err(Errno::EINVAL);
    }
    // Both fds first (EMFILE with nothing installed), then the pipe, then
    // the user's array (EFAULT with nothing installed), as Linux orders it.
    let files = k.task(tid)?.files.clone();
    let slots = files.borrow_mut().reserve(2, 0)?;
    let nums = slots.fds();
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&nums[0].to_le_bytes());
    b[4..].copy_from_slice(&nums[1].to_le_bytes());
    if let Err(e) = k.write_user(tid, fds, &b) {
        files.borrow_mut().unreserve(slots);
        return Err(e);
    }
    let who = match k.pipe_user(tid) {
        Ok(w) => w,
        Err(e) => {
            files.borrow_mut().unreserve(slots);
            return Err(e);
        }
    };
    let id = match k.pipes.create(who) {
        Ok(id) => id,
        Err(e) => {
            files.borrow_mut().unreserve(slots);
            return Err(e);
        }
    };
    let p = k.pipes.get(id).expect("new pipe");
    p.open_reader();
    p.open_writer();
    let nb = flags & O_NONBLOCK;
    let owner = match k.cred(tid) {
        Ok(c) => (c.euid, c.egid),
        Err(_) => (0, 0),
    };
    let r = OpenFile::new(
        PipeEnd::anon(id, false, owner),
        O_RDONLY | nb,
        format!("pipe:[{id}]").into_bytes(),
    );
    let w = OpenFile::new(
        PipeEnd::anon(id, true, owner),
        O_WRONLY | nb,
        format!("pipe:[{id}]").into_bytes(),
    );
    let cloexec = flags & O_CLOEXEC != 0;
    files
        .borrow_mut()
        .install_reserved(slots, vec![(r, cloexec), (w, cloexec)]);
    ok(0)
}

pub fn sys_pipe(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_pipe(k, tid, a[0], 0)
}

pub fn sys_pipe2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_pipe(k, tid, a[0], a[1])
}

pub fn sys_dup(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let files = k.task(tid)?.files.clone();
    let f = files.borrow().file(fd_arg(a[0]))?;
    let fd = files.borrow_mut().install(f, false, 0)?;
    ok(fd as i64)
}

fn do_dup3(k: &mut Kernel, tid: Pid, old: i32, new: i32, flags: u64) -> SysResult {
    let files = k.task(tid)?.files.clone();
    let f = files.borrow().file(old)?;
    let prev = files
        .borrow_mut()
        .install_at(new, f, flags as u32 & O_CLOEXEC != 0)?;
    if let Some(p) = prev {
        let owner = files.borrow().owner;
        k.close_entry(owner, p.file);
    }
    ok(new as i64)
}

pub fn sys_dup2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (old, new) = (fd_arg(a[0]), fd_arg(a[1]));
    if old == new {
        k.fd_file(tid, old)?;
        return ok(new as i64);
    }
    do_dup3(k, tid, old, new, 0)
}

pub fn sys_dup3(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (old, new) = (fd_arg(a[0]), fd_arg(a[1]));
    if old == new || a[2] as u32 & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    do_dup3(k, tid, old, new, a[2])
}

pub fn sys_fcntl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const F_GETPIPE_SZ: u64 = 1032;
    const F_SETPIPE_SZ: u64 = 1031;
    let fd = fd_arg(a[0]);
    let files = k.task(tid)?.files.clone();
    // An O_PATH descriptor allows only dup and the fd and file flags
    // (Linux's check_fcntl_cmd): anything else is EBADF.
    let o_path = files.borrow().file(fd)?.borrow().flags & O_PATH != 0;
    if o_path
        && !matches!(
            a[1],
            F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_GETFL
        )
    {
        return Err(Errno::EBADF);
    }
    match a[1] {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let f = files.borrow().file(fd)?;
            let min = u32::try_from(a[2]).map_err(|_| Errno::EINVAL)?;
            ok(files
                .borrow_mut()
                .install(f, a[1] == F_DUPFD_CLOEXEC, min)? as i64)
        }
        F_GETFD => ok(files.borrow().get(fd)?.cloexec as i64),
        F_SETFD => {
            files.borrow_mut().get_mut(fd)?.cloexec = a[2] & 1 != 0;
            ok(0)
        }
        F_GETFL => {
            let f = files.borrow().file(fd)?;
            ok(crate::kernel::files::fdinfo::status_flags(&f) as i64)
        }
        F_SETFL => {
            let f = files.borrow().file(fd)?;
            setfl(k, tid, &f, a[2] as u32)
        }
        cmd if super::locks::is_lock_cmd(cmd) => {
            let f = files.borrow().file(fd)?;
            super::locks::fcntl_lock(k, tid, f, a)
        }
        crate::kernel::files::memfd::F_ADD_SEALS | crate::kernel::files::memfd::F_GET_SEALS => {
            let f = files.borrow().file(fd)?;
            crate::kernel::files::memfd::fcntl_seals(k, &f, a[1], a[2])
        }
        crate::kernel::files::dnotify::F_NOTIFY => {
            let f = files.borrow().file(fd)?;
            crate::kernel::files::dnotify::fcntl_notify(k, tid, f, fd, a[2])
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let f = files.borrow().file(fd)?;
            let set = if a[1] == F_SETPIPE_SZ {
                Some((a[2] as u32 as usize, k.pipe_user(tid)?.privileged))
            } else {
                None
            };
            ok(ops_of(&f).pipe_size(k, set)? as i64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// fcntl(F_SETFL), as Linux's setfl: O_APPEND, O_NONBLOCK and O_NOATIME
/// change; turning O_NOATIME on needs the file's owner or root
/// (CAP_FOWNER), else EPERM and nothing changes.
fn setfl(k: &mut Kernel, tid: Pid, f: &OpenFileRef, arg: u32) -> SysResult {
    let cur = f.borrow().flags;
    if arg & O_NOATIME != 0 && cur & O_NOATIME == 0 {
        let euid = k.cred(tid)?.euid;
        if euid != 0 && k.fstat_file(tid, f)?.0.uid != euid {
            return Err(Errno::EPERM);
        }
    }
    let changeable = O_APPEND | O_NONBLOCK | O_NOATIME;
    let mut of = f.borrow_mut();
    of.flags = (of.flags & !changeable) | (arg & changeable);
    ok(0)
}

/// Linux's rw_verify_area for a positional call: the offset and the end
/// must fit a loff_t (else EINVAL, before anything is read or written).
fn verify_area(pos: u64, count: u64) -> KResult<()> {
    match pos.checked_add(count) {
        Some(end) if pos <= i64::MAX as u64 && end <= i64::MAX as u64 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// Linux's MAX_RW_COUNT: the most one read/write/sendfile moves.
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// sendfile(2), checked in Linux's order (`do_sendfile`): the offset
/// pointer, the input (readable, seekable for a pointer), the count
/// against the offset (negative or overflowing: EINVAL), then the output
/// (writable, not O_APPEND). Nothing at or past the input's end, or a
/// count of 0, moves nothing and writes nothing.
pub fn sys_sendfile(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let ptr = a[2];
    let given = if ptr != 0 {
        Some(k.read_u64(tid, ptr)?)
    } else {
        None
    };
    let inp = k.fd_file(tid, fd_arg(a[1]))?;
    if !inp.borrow().readable() {
        return Err(Errno::EBADF);
    }
    let positional = ops_of(&inp).positional();
    if given.is_some() && !positional {
        return Err(Errno::ESPIPE);
    }
    let pos = given.unwrap_or_else(|| inp.borrow().offset);
    // rw_verify_area: the count as a ssize_t, the offset as a loff_t.
    if a[3] > i64::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    verify_area(pos, a[3])?;
    let out = k.fd_file(tid, fd_arg(a[0]))?;
    if !out.borrow().writable() {
        return Err(Errno::EBADF);
    }
    if !positional || out.borrow().flags & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut count = a[3].min(MAX_RW_COUNT).min(IO_MAX as u64) as usize;
    if count == 0 {
        return ok(0);
    }
    // Into a pipe: only what fits now, so no input is consumed and lost;
    // a full pipe makes a blocking sendfile sleep.
    if let Some(free) = ops_of(&out).write_room(k) {
        if free == 0 {
            return block_on(k, tid, &out, POLLOUT, Err(Errno::EAGAIN));
        }
        count = count.min(free);
    }
    let mut buf = vec![0u8; count];
    let n = k.file_read(tid, &inp, &mut buf, Some(pos))?;
    if n == 0 {
        return ok(0);
    }
    let w = match k.file_write(tid, &out, &buf[..n], None) {
        Ok(w) => w,
        Err(e) => return block_on(k, tid, &out, POLLOUT, Err(e)),
    };
    let new_pos = pos.checked_add(w as u64).ok_or(Errno::EOVERFLOW)?;
    if given.is_some() {
        k.write_u64(tid, ptr, new_pos)?;
    } else {
        inp.borrow_mut().offset = new_pos;
    }
    ok(w as i64)
}
