//! inotify: file system events as a file (inotify(7)). An instance holds
//! watches (wd → inode and mask) and a queue of `struct inotify_event`
//! records; a read takes whole records (EINVAL if the first does not
//! fit), waiting while the queue is empty; pollers see POLLIN while it is
//! not. An event identical to the last one queued is merged into it, and
//! past `MAX_QUEUED` events one IN_Q_OVERFLOW is queued instead.
//!
//! Events come from the syscall layer's hooks (`Kernel::notify_child`,
//! `notify_node`, `notify_path`): IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO
//! (one cookie per rename), IN_ATTRIB, IN_MODIFY (write, truncate),
//! IN_CLOSE_WRITE/IN_CLOSE_NOWRITE (last close of an open file), IN_OPEN
//! (not O_PATH), IN_ACCESS (a read that returned bytes, every getdents),
//! IN_DELETE_SELF and IN_MOVE_SELF, IN_IGNORED when a watch goes,
//! IN_UNMOUNT then IN_IGNORED for watches on a file system unmounted;
//! open/close/access of a directory carry IN_ISDIR; for a file, a watch
//! on its directory gets the event too, with the name. IN_DELETE_SELF comes at
//! the unlink of the last link, not when the inode is finally freed.
//! Hooks cost one check of `EventHub::inotify` when nothing watches. The
//! same hooks feed dnotify's watches (dnotify.rs) on the directory.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};

use super::{kind, POLLIN, POLLRDNORM};
use crate::errno::{Errno, KResult};
use crate::fs::{Stat, S_IFDIR, S_IFMT};
use crate::kernel::task::Pid;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef};
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{ops_of, FileDescription, Io, O_CLOEXEC, O_NONBLOCK, O_PATH, O_RDONLY};
use crate::vfs::{Node, OpenFile, OpenFileRef};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
/// The events a watch can ask for.
pub const IN_ALL_EVENTS: u32 = 0xfff;
const WATCH_FLAGS: u32 =
    IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ONESHOT;

/// Linux's ALL_INOTIFY_BITS: a mask inotify_add_watch takes has one of
/// these and nothing else. The bits only events carry (IN_ISDIR,
/// IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED) are taken and ignored:
/// libmount's mount monitor asks for IN_CREATE|IN_ISDIR.
const ALL_INOTIFY_BITS: u32 =
    IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED | IN_ISDIR | WATCH_FLAGS;

/// sizeof(struct inotify_event) without the name.
const EVENT_HEAD: usize = 16;
/// Linux's default max_queued_events.
pub const MAX_QUEUED: usize = 16384;
/// Watches per instance (Linux's max_user_watches is per user; this
/// bounds umlrun's memory).
pub const MAX_WATCHES: usize = 8192;
const FIONREAD: u32 = 0x541b;

#[derive(Clone, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The record: the name NUL-padded to a multiple of 16 bytes.
    fn bytes(&self) -> Vec<u8> {
        let len = if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_HEAD) * EVENT_HEAD
        };
        let mut b = Vec::with_capacity(EVENT_HEAD + len);
        b.extend_from_slice(&self.wd.to_le_bytes());
        b.extend_from_slice(&self.mask.to_le_bytes());
        b.extend_from_slice(&self.cookie.to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&self.name);
        b.resize(EVENT_HEAD + len, 0);
        b
    }
}

#[derive(Clone, Copy)]
struct Watch {
    node: Node,
    mask: u32,
}

pub struct Inotify {
    watches: RefCell<BTreeMap<i32, Watch>>,
    next_wd: Cell<i32>,
    queue: RefCell<VecDeque<Event>>,
    waitq: WaitQueueRef,
    /// One of its user's `max_user_instances`, given back when it goes.
    _instance: crate::kernel::ucounts::Charge,
}

impl Inotify {
    fn push(&self, k: &mut Kernel, e: Event) {
        {
            let mut q = self.queue.borrow_mut();
            if q.back() == Some(&e) {
                return;
            }
            if q.len() >= MAX_QUEUED {
                if q.back().is_some_and(|l| l.mask == IN_Q_OVERFLOW) {
                    return;
                }
                q.push_back(Event {
                    wd: -1,
                    mask: IN_Q_OVERFLOW,
                    cookie: 0,
                    name: Vec::new(),
                });
            } else {
                q.push_back(e);
            }
        }
        k.wake_queue(&self.waitq, POLLIN);
    }

    /// Queues `mask` for every watch on `node` that wants it; IN_IGNORED
    /// for one-shot watches that fired.
    fn report(&self, k: &mut Kernel, node: Node, mask: u32, cookie: u32, name: &[u8]) {
        let hits: Vec<(i32, Watch)> = self
            .watches
            .borrow()
            .iter()
            .filter(|(_, w)| w.node == node && w.mask & mask & IN_ALL_EVENTS != 0)
            .map(|(&wd, &w)| (wd, w))
            .collect();
        for (wd, w) in hits {
            self.push(
                k,
                Event {
                    wd,
                    mask: mask & (IN_ALL_EVENTS | IN_ISDIR),
                    cookie,
                    name: name.to_vec(),
                },
            );
            if w.mask & IN_ONESHOT != 0 {
                self.drop_watch(k, wd);
            }
        }
    }

    fn drop_watch(&self, k: &mut Kernel, wd: i32) -> bool {
        if self.watches.borrow_mut().remove(&wd).is_none() {
            return false;
        }
        self.push(
            k,
            Event {
                wd,
                mask: IN_IGNORED,
                cookie: 0,
                name: Vec::new(),
            },
        );
        true
    }

    fn queued_bytes(&self) -> usize {
        self.queue.borrow().iter().map(|e| e.bytes().len()).sum()
    }
}

impl FileDescription for Inotify {
    fn read(&self, _k: &mut Kernel, _io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let mut q = self.queue.borrow_mut();
        if q.is_empty() {
            return Err(Errno::EAGAIN);
        }
        let mut n = 0;
        while let Some(e) = q.front() {
            let b = e.bytes();
            if n + b.len() > buf.len() {
                if n == 0 {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            buf[n..n + b.len()].copy_from_slice(&b);
            n += b.len();
            q.pop_front();
        }
        Ok(n)
    }

    fn poll(&self, _k: &mut Kernel) -> u32 {
        if self.queue.borrow().is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        }
    }

    fn wait_queue(&self, _k: &Kernel) -> Option<WaitQueueRef> {
        Some(self.waitq.clone())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        if req != FIONREAD {
            return Err(Errno::EINVAL);
        }
        let n = self.queued_bytes().min(i32::MAX as usize) as u32;
        k.write_u32(io.tid, arg, n)?;
        ok(0)
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(super::anon_inode_stat())
    }

    /// As Linux's `inotify_show_fdinfo` (without the file handle).
    fn fdinfo(&self, _k: &mut Kernel) -> String {
        self.watches
            .borrow()
            .iter()
            .map(|(wd, w)| {
                format!(
                    "inotify wd:{wd:x} ino:{:x} sdev:{:x} mask:{:x} ignored_mask:0\n",
                    w.node.ino,
                    0x800 + w.node.mnt,
                    w.mask
                )
            })
            .collect()
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Kernel {
    /// The live inotify instances (None when nothing watches).
    fn inotifies(&mut self) -> Option<Vec<Rc<Inotify>>> {
        if self.evhub.inotify.is_empty() {
            return None;
        }
        self.evhub.inotify.retain(|w| w.strong_count() > 0);
        let v: Vec<Rc<Inotify>> = self
            .evhub
            .inotify
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        (!v.is_empty()).then_some(v)
    }

    /// An event about `name` in directory `dir`.
    pub fn notify_child(&mut self, dir: Node, name: &[u8], mask: u32, cookie: u32) {
        self.dnotify_event(dir, mask);
        let Some(all) = self.inotifies() else {
            return;
        };
        for i in all {
            i.report(self, dir, mask, cookie, name);
        }
    }

    /// An event about `node` itself (its own watches, no name).
    pub fn notify_node(&mut self, node: Node, mask: u32) {
        self.dnotify_event(node, mask);
        let Some(all) = self.inotifies() else {
            return;
        };
        for i in all {
            i.report(self, node, mask, 0, b"");
        }
    }

    /// An event about the file `node` at canonical `path`: its own
    /// watches, and its directory's (found by the path) with its name.
    pub fn notify_path(&mut self, tid: Pid, path: &[u8], node: Node, mask: u32) {
        if self.inotifies().is_none() && self.evhub.dnotify.is_empty() {
            return;
        }
        // The directory's watches first, then the file's, as Linux.
        if let Some(cut) = path.iter().rposition(|&c| c == b'/') {
            let (dir, name) = (&path[..cut.max(1)], &path[cut + 1..]);
            if !name.is_empty() && path.starts_with(b"/") {
                // A canonical path: from the real root, whatever the
                // caller's root (chroot) is.
                let found = self
                    .cred(tid)
                    .and_then(|cred| self.mounts.resolve(b"/", b"/", dir, true, &cred));
                if let Ok(d) = found {
                    self.notify_child(d.node, name, mask, 0);
                }
            }
        }
        self.notify_node(node, mask);
    }

    /// `node` lost its last name (or a directory was removed): IN_DELETE_SELF,
    /// then every watch on it goes (IN_IGNORED).
    pub fn notify_gone(&mut self, node: Node) {
        let Some(all) = self.inotifies() else {
            return;
        };
        for i in all {
            i.report(self, node, IN_DELETE_SELF, 0, b"");
            let wds: Vec<i32> = i
                .watches
                .borrow()
                .iter()
                .filter(|(_, w)| w.node == node)
                .map(|(&wd, _)| wd)
                .collect();
            for wd in wds {
                i.drop_watch(self, wd);
            }
        }
    }

    /// The last reference to an open file went: IN_CLOSE_WRITE or
    /// IN_CLOSE_NOWRITE for a file with an inode.
    pub fn notify_close(&mut self, f: &OpenFileRef) {
        if !self.evhub.fs_watched() {
            return;
        }
        let (node, path, writable) = {
            let of = f.borrow();
            (of.node(), of.path.clone(), of.writable())
        };
        if f.borrow().flags & O_PATH != 0 {
            return;
        }
        if let Some(n) = node {
            let mask = if writable {
                IN_CLOSE_WRITE
            } else {
                IN_CLOSE_NOWRITE
            };
            let tid = self.evhub.current;
            self.notify_file(tid, &path, n, mask);
        }
    }

    /// An event on an open file (open, access, close): IN_ISDIR added for
    /// a directory, as Linux's fsnotify_parent does.
    pub fn notify_file(&mut self, tid: Pid, path: &[u8], node: Node, mask: u32) {
        if !self.evhub.fs_watched() {
            return;
        }
        let dir = self.mounts.stat_node(node).map_or(0, |st| isdir_bit(&st));
        self.notify_path(tid, path, node, mask | dir);
    }

    /// Mount `mnt` goes: every watch on one of its inodes gets IN_UNMOUNT
    /// (whatever its mask, as Linux) and then goes (IN_IGNORED).
    pub fn notify_unmount(&mut self, mnt: usize) {
        let Some(all) = self.inotifies() else {
            return;
        };
        for i in all {
            let wds: Vec<(i32, Node)> = i
                .watches
                .borrow()
                .iter()
                .filter(|(_, w)| w.node.mnt == mnt)
                .map(|(&wd, w)| (wd, w.node))
                .collect();
            for (wd, node) in wds {
                let dir = self.mounts.stat_node(node).map_or(0, |st| isdir_bit(&st));
                i.push(
                    self,
                    Event {
                        wd,
                        mask: IN_UNMOUNT | dir,
                        cookie: 0,
                        name: Vec::new(),
                    },
                );
                i.drop_watch(self, wd);
            }
        }
    }

    /// A fresh rename cookie.
    pub fn rename_cookie(&mut self) -> u32 {
        self.evhub.timer_id() as u32
    }
}

/// IN_ISDIR for a directory's stat.
pub fn isdir_bit(st: &Stat) -> u32 {
    if st.mode & S_IFMT == S_IFDIR {
        IN_ISDIR
    } else {
        0
    }
}

fn inotify_of(k: &Kernel, tid: Pid, fd: u64) -> KResult<Rc<dyn FileDescription>> {
    let f = k.task(tid)?.files.borrow().file(fd as u32 as i32)?;
    let ops = ops_of(&f);
    if kind::<Inotify>(&ops).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(ops)
}

/// inotify_init1(flags).
pub fn sys_inotify_init1(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    let flags = u32::try_from(a[0]).map_err(|_| Errno::EINVAL)?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    // Per user (effective uid), root included: EMFILE beyond
    // fs.inotify.max_user_instances, as Linux's inc_ucount.
    let euid = k.cred(tid)?.euid;
    let instance = k
        .ucaps
        .inotify_instances
        .try_charge(euid)
        .ok_or(Errno::EMFILE)?;
    let i = Rc::new(Inotify {
        watches: RefCell::new(BTreeMap::new()),
        next_wd: Cell::new(1),
        queue: RefCell::new(VecDeque::new()),
        waitq: WaitQueue::new(),
        _instance: instance,
    });
    k.evhub.inotify.push(Rc::downgrade(&i));
    let file = OpenFile::new(
        i,
        O_RDONLY | (flags & O_NONBLOCK),
        b"anon_inode:inotify".to_vec(),
    );
    let fd = k
        .task(tid)?
        .files
        .borrow_mut()
        .install(file, flags & O_CLOEXEC != 0, 0)?;
    ok(fd as i64)
}

/// inotify_init(): inotify_init1(0).
pub fn sys_inotify_init(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    sys_inotify_init1(k, tid, [0; 6])
}

/// inotify_add_watch(fd, path, mask).
pub fn sys_inotify_add_watch(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let mask = a[2] as u32;
    let ops = inotify_of(k, tid, a[0])?;
    let ino = kind::<Inotify>(&ops).expect("checked");
    if mask & ALL_INOTIFY_BITS == 0 || mask & !ALL_INOTIFY_BITS != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    let path = k.read_path(tid, a[1])?;
    let r = k.lookup_at(
        tid,
        crate::syscalls::AT_FDCWD,
        &path,
        mask & IN_DONT_FOLLOW == 0,
    )?;
    if mask & IN_ONLYDIR != 0 && r.stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    k.cred(tid)?.check(&r.stat, crate::vfs::perm::MAY_READ)?;
    let want = mask & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
    let mut w = ino.watches.borrow_mut();
    if let Some((&wd, watch)) = w.iter_mut().find(|(_, x)| x.node == r.node) {
        if mask & IN_MASK_CREATE != 0 {
            return Err(Errno::EEXIST);
        }
        watch.mask = if mask & IN_MASK_ADD != 0 {
            watch.mask | want
        } else {
            want
        };
        return ok(wd as i64);
    }
    if w.len() >= MAX_WATCHES {
        return Err(Errno::ENOSPC);
    }
    let wd = ino.next_wd.get();
    ino.next_wd.set(wd.checked_add(1).unwrap_or(1));
    w.insert(
        wd,
        Watch {
            node: r.node,
            mask: want,
        },
    );
    ok(wd as i64)
}

/// inotify_rm_watch(fd, wd).
pub fn sys_inotify_rm_watch(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let ops = inotify_of(k, tid, a[0])?;
    let ino = kind::<Inotify>(&ops).expect("checked");
    if !ino.drop_watch(k, a[1] as u32 as i32) {
        return Err(Errno::EINVAL);
    }
    ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pad_names_to_16_bytes() {
        let e = Event {
            wd: 3,
            mask: IN_CREATE,
            cookie: 0,
            name: b"abc".to_vec(),
        };
        let b = e.bytes();
        assert_eq!(b.len(), 32);
        assert_eq!(&b[12..16], &16u32.to_le_bytes());
        assert_eq!(&b[16..19], b"abc");
        assert!(b[19..].iter().all(|&c| c == 0));
        let exact = Event {
            name: vec![b'x'; 15],
            ..e.clone()
        };
        assert_eq!(exact.bytes().len(), 32);
        let more = Event {
            name: vec![b'x'; 16],
            ..e.clone()
        };
        assert_eq!(more.bytes().len(), 48);
        let none = Event {
            name: Vec::new(),
            ..e
        };
        assert_eq!(none.bytes().len(), 16);
    }
}
