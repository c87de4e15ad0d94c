//! dnotify: `fcntl(fd, F_NOTIFY, DN_*)` on a directory (Linux's
//! fs/notify/dnotify). A watch is (directory, open file, fd table, fd,
//! events); an event in the directory that a watch wants sends the open
//! file's signal to its owner (`send_sigio`: SIGIO, or the F_SETSIG signal
//! with si_code POLL_MSG, si_band and si_fd), and a watch without
//! DN_MULTISHOT goes after it fired once. F_NOTIFY makes the caller's
//! process the file's owner; a second F_NOTIFY through the same open file
//! and fd table adds its events to the watch; 0 (or DN_MULTISHOT alone)
//! removes it, as does closing any fd of that open file in that table.
//!
//! Events come from the same hooks as inotify's (`Kernel::notify_child`,
//! `notify_node`): an inotify mask on the directory (an entry's event with
//! its name, or the directory's own) maps to DN_* as Linux's
//! `convert_arg`: IN_CREATE and IN_MOVED_TO are DN_CREATE, IN_DELETE and
//! IN_MOVED_FROM DN_DELETE; a rename inside one directory is first a
//! DN_RENAME event of its own (`dnotify_rename`, called by renameat2).

use std::rc::{Rc, Weak};

use crate::errno::Errno;
use crate::fs::{S_IFDIR, S_IFMT};
use crate::kernel::signal::SigInfo;
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{ops_of, OpenFile};
use crate::vfs::{Node, OpenFileRef};

use super::inotify::{
    IN_ACCESS, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO,
};

pub const F_NOTIFY: u64 = 1026;
pub const DN_ACCESS: u32 = 0x1;
pub const DN_MODIFY: u32 = 0x2;
pub const DN_CREATE: u32 = 0x4;
pub const DN_DELETE: u32 = 0x8;
pub const DN_RENAME: u32 = 0x10;
pub const DN_ATTRIB: u32 = 0x20;
pub const DN_MULTISHOT: u32 = 0x8000_0000;

/// si_code of a dnotify signal, and of file signals in general (POLL_MSG).
const POLL_MSG: i32 = 3;
/// Linux's band_table[POLL_MSG - POLL_IN]: POLLIN | POLLRDNORM | POLLMSG.
const BAND_MSG: i64 = 0x441;
/// si_code for an F_SETSIG signal whose own si_codes mean something else.
const SI_SIGIO: i32 = -5;
/// si_code of a plain SIGIO (Linux's SEND_SIG_PRIV: SI_KERNEL).
const SI_KERNEL: i32 = 0x80;
/// Watches in all (Linux bounds them by the files one can open; this
/// bounds umlrun's memory).
const MAX_WATCHES: usize = 65536;

/// One F_NOTIFY registration.
pub struct DnWatch {
    dir: Node,
    file: Weak<std::cell::RefCell<OpenFile>>,
    /// The fd table it was made through (`FdTable::owner`).
    table: u64,
    fd: i32,
    /// DN_* events, with DN_MULTISHOT.
    mask: u32,
}

/// The DN_* events an inotify mask on a directory is.
fn dn_events(in_mask: u32) -> u32 {
    let mut m = 0;
    if in_mask & IN_ACCESS != 0 {
        m |= DN_ACCESS;
    }
    if in_mask & IN_MODIFY != 0 {
        m |= DN_MODIFY;
    }
    if in_mask & IN_ATTRIB != 0 {
        m |= DN_ATTRIB;
    }
    if in_mask & (IN_CREATE | IN_MOVED_TO) != 0 {
        m |= DN_CREATE;
    }
    if in_mask & (IN_DELETE | IN_MOVED_FROM) != 0 {
        m |= DN_DELETE;
    }
    m
}

/// fcntl(fd, F_NOTIFY, arg) for `tid` on the open file `f` (fd `fd`).
pub fn fcntl_notify(k: &mut Kernel, tid: Pid, f: OpenFileRef, fd: i32, arg: u64) -> SysResult {
    let arg = arg as u32;
    if f.borrow().flags & crate::vfs::file::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let table = k.task(tid)?.files.borrow().owner;
    if arg & !DN_MULTISHOT == 0 {
        k.dnotify_flush(table, &f);
        return ok(0);
    }
    let (st, _) = ops_of(&f).stat(k)?;
    let dir = match ops_of(&f).node() {
        Some(n) if st.mode & S_IFMT == S_IFDIR => n,
        _ => return Err(Errno::ENOTDIR),
    };
    let tgid = k.task(tid)?.tgid;
    f.borrow_mut().owner = (1, tgid);
    let hub = &mut k.evhub.dnotify;
    let same =
        |w: &&mut DnWatch| w.table == table && w.file.upgrade().is_some_and(|o| Rc::ptr_eq(&o, &f));
    if let Some(w) = hub.iter_mut().find(same) {
        // Linux's attach_dn: the same file and table add their events.
        w.fd = fd;
        w.mask |= arg;
        return ok(0);
    }
    hub.retain(|w| w.file.strong_count() > 0);
    if hub.len() >= MAX_WATCHES {
        return Err(Errno::ENOMEM);
    }
    hub.push(DnWatch {
        dir,
        file: Rc::downgrade(&f),
        table,
        fd,
        mask: arg,
    });
    ok(0)
}

impl Kernel {
    /// An fd of `f` in table `table` was closed (Linux's dnotify_flush):
    /// its watch goes.
    pub fn dnotify_flush(&mut self, table: u64, f: &OpenFileRef) {
        if self.evhub.dnotify.is_empty() {
            return;
        }
        self.evhub.dnotify.retain(|w| {
            w.file.strong_count() > 0
                && !(w.table == table && w.file.upgrade().is_some_and(|o| Rc::ptr_eq(&o, f)))
        });
    }

    /// An inotify-style event `in_mask` on directory `dir` (about an entry
    /// or the directory itself): the dnotify watches on it that want it.
    pub fn dnotify_event(&mut self, dir: Node, in_mask: u32) {
        if self.evhub.dnotify.is_empty() {
            return;
        }
        let dn = dn_events(in_mask);
        if dn != 0 {
            self.dnotify_fire(dir, dn);
        }
    }

    /// An entry of `dir` was renamed within it (Linux's FS_RENAME as
    /// dnotify sees it: not for a move to another directory); the
    /// IN_MOVED_FROM/IN_MOVED_TO hooks then give DN_DELETE and DN_CREATE.
    pub fn dnotify_rename(&mut self, dir: Node) {
        if !self.evhub.dnotify.is_empty() {
            self.dnotify_fire(dir, DN_RENAME);
        }
    }

    /// One event of DN_* kinds `dn` on `dir`: a signal per watch that
    /// wants one of them; one-shot watches go.
    fn dnotify_fire(&mut self, dir: Node, dn: u32) {
        let mut fired = Vec::new();
        self.evhub.dnotify.retain(|w| {
            if w.dir != dir || w.mask & dn == 0 {
                return true;
            }
            let Some(f) = w.file.upgrade() else {
                return false;
            };
            fired.push((f, w.fd));
            w.mask & DN_MULTISHOT != 0
        });
        for (f, fd) in fired {
            self.send_sigio(&f, fd);
        }
    }

    /// Linux's send_sigio(.., POLL_MSG): the open file's signal to its
    /// owner (F_SETOWN/F_SETOWN_EX: a thread, a process or a process
    /// group). SIGIO plain (SI_KERNEL) unless F_SETSIG named another, which
    /// carries si_code POLL_MSG (SI_SIGIO for signals whose codes mean
    /// something else), si_band and si_fd.
    pub fn send_sigio(&mut self, f: &OpenFileRef, fd: i32) {
        use crate::kernel::signal::{
            SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGIO, SIGSEGV, SIGSYS, SIGTRAP,
        };
        let ((ty, id), sig) = {
            let of = f.borrow();
            (of.owner, of.sig)
        };
        if id <= 0 {
            return;
        }
        let info = if sig == 0 {
            SigInfo {
                signo: SIGIO,
                code: SI_KERNEL,
                ..Default::default()
            }
        } else {
            let specific = matches!(
                sig,
                SIGILL | SIGFPE | SIGSEGV | SIGBUS | SIGTRAP | SIGCHLD | SIGSYS
            );
            SigInfo {
                signo: sig,
                code: if specific { SI_SIGIO } else { POLL_MSG },
                poll: Some((BAND_MSG, fd)),
                ..Default::default()
            }
        };
        match ty {
            0 => {
                if self.tasks.get(&id).is_some_and(|t| t.is_alive()) {
                    self.send_to_thread(id, info);
                }
            }
            1 => {
                let tgid = self.tasks.get(&id).filter(|t| t.is_alive()).map(|t| t.tgid);
                if let Some(tgid) = tgid {
                    self.send_to_process(tgid, info);
                }
            }
            _ => {
                let leaders: Vec<Pid> = self
                    .tasks
                    .values()
                    .filter(|t| t.pgid == id && t.is_leader() && t.is_alive())
                    .map(|t| t.tgid)
                    .collect();
                for tgid in leaders {
                    self.send_to_process(tgid, info);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_masks_map_as_linux_convert_arg() {
        assert_eq!(dn_events(IN_CREATE), DN_CREATE);
        assert_eq!(dn_events(IN_MOVED_TO), DN_CREATE);
        assert_eq!(dn_events(IN_DELETE), DN_DELETE);
        assert_eq!(dn_events(IN_MOVED_FROM), DN_DELETE);
        assert_eq!(dn_events(IN_MODIFY), DN_MODIFY);
        assert_eq!(dn_events(IN_ACCESS), DN_ACCESS);
        assert_eq!(dn_events(IN_ATTRIB), DN_ATTRIB);
        assert_eq!(dn_events(super::super::inotify::IN_OPEN), 0);
        assert_eq!(dn_events(super::super::inotify::IN_CLOSE_WRITE), 0);
    }
}
