//! Per-user counts with a cap, as Linux keeps them per user (ucounts and
//! user_struct): inotify instances (`fs.inotify.max_user_instances`,
//! EMFILE beyond), epoll watches (`fs.epoll.max_user_watches`, ENOSPC
//! beyond) and pipe pages (`fs.pipe-user-pages-soft` and `-hard`, in
//! `kernel/pipes.rs`). A [`Charge`] is what one object holds; dropping it
//! gives the count back, so every way an object goes (close, exit, a
//! process's last reference) is covered.
//!
//! Beside them the one system-wide cap on open files, `fs.file-max`:
//! every open file description counts (vfs/file.rs `nr_files`), and a
//! call that would make one past the cap is ENFILE unless the caller is
//! root (Linux's alloc_empty_file and CAP_SYS_ADMIN), so one user's fds,
//! spread over as many processes as RLIMIT_NPROC lets it have, cannot
//! grow the kernel's memory without bound, and root can still log in.
#![deny(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Linux's NR_FILE: the least default `fs.file-max`.
pub const NR_FILE: u64 = 8192;

/// Linux's default `fs.file-max` (files_maxfiles_init): one file per
/// 10 KiB of memory (about 10 % of it, at 1 KiB a file), at least NR_FILE.
pub fn default_file_max(mem_bytes: u64) -> u64 {
    (mem_bytes / 10240).max(NR_FILE)
}

/// Linux's default `fs.inotify.max_user_instances`.
pub const DEFAULT_MAX_USER_INSTANCES: u64 = 128;
/// Linux's default `fs.pipe-user-pages-soft` (16384 pages: 1024 pipes of
/// the default 16 pages).
pub const DEFAULT_PIPE_USER_PAGES_SOFT: u64 = 16384;
/// Linux's `EP_ITEM_COST` on x86-64: sizeof(struct epitem) (128) plus
/// sizeof(struct eppoll_entry) (72).
pub const EP_ITEM_COST: u64 = 200;

/// Linux's default `fs.epoll.max_user_watches` for `mem_bytes` of RAM:
/// 4 % of low memory divided by what one watch costs the kernel.
pub fn default_max_user_watches(mem_bytes: u64) -> u64 {
    (mem_bytes / 25 / EP_ITEM_COST).clamp(1, i32::MAX as u64)
}

/// Counts per user against one cap (shared by every object it charges;
/// the cap may change at run time, through /proc/sys).
#[derive(Clone, Default)]
pub struct UserCounts {
    counts: Rc<RefCell<HashMap<u32, u64>>>,
    max: Rc<Cell<u64>>,
}

impl UserCounts {
    pub fn new(max: u64) -> UserCounts {
        UserCounts {
            counts: Rc::default(),
            max: Rc::new(Cell::new(max)),
        }
    }

    pub fn max(&self) -> u64 {
        self.max.get()
    }

    pub fn set_max(&self, max: u64) {
        self.max.set(max);
    }

    /// What `uid` holds now.
    pub fn held(&self, uid: u32) -> u64 {
        self.counts.borrow().get(&uid).copied().unwrap_or(0)
    }

    /// One more for `uid` if that stays within the cap.
    pub fn try_charge(&self, uid: u32) -> Option<Charge> {
        if self.held(uid) >= self.max() {
            return None;
        }
        Some(self.charge(uid, 1))
    }

    /// `n` more for `uid`, whatever the cap (the caller decided).
    pub fn charge(&self, uid: u32, n: u64) -> Charge {
        let mut c = self.counts.borrow_mut();
        let e = c.entry(uid).or_insert(0);
        *e = e.saturating_add(n);
        Charge {
            counts: self.clone(),
            uid,
            n,
        }
    }
}

/// `n` units charged to `uid`, given back on drop.
pub struct Charge {
    counts: UserCounts,
    uid: u32,
    n: u64,
}

impl Charge {
    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn amount(&self) -> u64 {
        self.n
    }

    /// Changes the amount held to `n` (a pipe resized).
    pub fn set_amount(&mut self, n: u64) {
        let mut c = self.counts.counts.borrow_mut();
        let e = c.entry(self.uid).or_insert(0);
        *e = e.saturating_sub(self.n).saturating_add(n);
        self.n = n;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut c = self.counts.counts.borrow_mut();
        if let Some(e) = c.get_mut(&self.uid) {
            *e = e.saturating_sub(self.n);
            if *e == 0 {
                c.remove(&self.uid);
            }
        }
    }
}

/// The kernel's per-user caps.
#[derive(Clone)]
pub struct UserCaps {
    pub inotify_instances: UserCounts,
    pub epoll_watches: UserCounts,
    /// Pages held by each user's pipes; the cap is the soft limit.
    pub pipe_pages: UserCounts,
    /// `fs.pipe-user-pages-hard` (0: none).
    pub pipe_pages_hard: Rc<Cell<u64>>,
    /// `fs.file-max`: open file descriptions the whole kernel may hold
    /// (root may go past it).
    pub file_max: Rc<Cell<u64>>,
}

impl UserCaps {
    pub fn new(mem_bytes: u64) -> UserCaps {
        UserCaps {
            inotify_instances: UserCounts::new(DEFAULT_MAX_USER_INSTANCES),
            epoll_watches: UserCounts::new(default_max_user_watches(mem_bytes)),
            pipe_pages: UserCounts::new(DEFAULT_PIPE_USER_PAGES_SOFT),
            pipe_pages_hard: Rc::new(Cell::new(0)),
            file_max: Rc::new(Cell::new(default_file_max(mem_bytes))),
        }
    }
}

impl crate::kernel::Kernel {
    /// ENFILE when the kernel holds `fs.file-max` open files and `tid`
    /// is not root: called by every call that makes an open file, before
    /// it makes anything.
    pub fn check_file_max(&self, tid: crate::kernel::task::Pid) -> crate::errno::KResult<()> {
        if crate::vfs::file::nr_files() >= self.ucaps.file_max.get() && self.cred(tid)?.euid != 0 {
            return Err(crate::errno::Errno::ENFILE);
        }
        Ok(())
    }
}

impl Default for UserCaps {
    fn default() -> Self {
        UserCaps::new(256 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_come_back_on_drop_per_user() {
        let u = UserCounts::new(2);
        let a = u.try_charge(1000).unwrap();
        let b = u.try_charge(1000).unwrap();
        assert!(u.try_charge(1000).is_none(), "third over the cap");
        let other = u.try_charge(1001).unwrap();
        assert_eq!((u.held(1000), u.held(1001)), (2, 1));
        drop(a);
        assert_eq!(u.held(1000), 1);
        let c = u.try_charge(1000).unwrap();
        drop((b, c, other));
        assert_eq!((u.held(1000), u.held(1001)), (0, 0));
        u.set_max(0);
        assert!(u.try_charge(5).is_none());
    }

    #[test]
    fn resized_charges_keep_the_sum() {
        let u = UserCounts::new(100);
        let mut p = u.charge(7, 16);
        let q = u.charge(7, 16);
        p.set_amount(2);
        assert_eq!(u.held(7), 18);
        drop(q);
        p.set_amount(256);
        assert_eq!(u.held(7), 256);
        drop(p);
        assert_eq!(u.held(7), 0);
    }

    #[test]
    fn linux_default_file_max() {
        assert_eq!(default_file_max(64 << 20), NR_FILE);
        // 1 GiB: 104857 (Linux shows about this less what the kernel took).
        assert_eq!(default_file_max(1 << 30), 104857);
    }

    #[test]
    fn linux_default_watches() {
        // 64 MiB: 2.68 MB / 200 bytes.
        assert_eq!(default_max_user_watches(64 << 20), 13421);
        assert_eq!(default_max_user_watches(0), 1);
    }
}
