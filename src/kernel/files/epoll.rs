//! epoll instances as open files. The interest list and trigger rules are
//! `crate::net::epoll::EpollSet`; here each interest watches an open file
//! through a weak reference (an interest never keeps a file open, and it
//! drops out when the file's last reference goes), and a file's readiness
//! is its kind's `poll` with its `generation` for the edge trigger. An
//! epoll file is itself readable while its set would report something,
//! so epolls nest (loops and depth are refused at EPOLL_CTL_ADD).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::{POLLIN, POLLRDNORM};
use crate::errno::KResult;
use crate::fs::Stat;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::kernel::Kernel;
use crate::net::epoll::{EpollSet, MAX_NESTS};
use crate::vfs::file::{ops_of, FileDescription, O_RDWR};
use crate::vfs::{OpenFile, OpenFileRef};

pub type Watched = Weak<RefCell<OpenFile>>;

pub struct EpollFile {
    pub set: RefCell<EpollSet<Watched>>,
    /// Woken when the interest list changes (an EPOLL_CTL may add a file
    /// that is ready already).
    pub ctl_q: WaitQueueRef,
}

/// (mask, generation) of a watched file; None when it is gone.
pub fn poll_watched(k: &mut Kernel, w: &Watched) -> Option<(u32, u64)> {
    let f = w.upgrade()?;
    let ops = ops_of(&f);
    Some((ops.poll(k), ops.generation(k)))
}

/// The identity an interest is keyed by.
pub fn file_id(f: &OpenFileRef) -> usize {
    Rc::as_ptr(f) as *const u8 as usize
}

impl EpollFile {
    /// A new epoll whose watches count against `uid` in `watches`.
    pub fn open(watches: crate::kernel::ucounts::UserCounts, uid: u32) -> OpenFileRef {
        let ep = Rc::new(EpollFile {
            set: RefCell::new(EpollSet::counted(watches, uid)),
            ctl_q: WaitQueue::new(),
        });
        OpenFile::new(ep, O_RDWR, b"anon_inode:[eventpoll]".to_vec())
    }

    fn readiness(&self, k: &mut Kernel) -> (bool, u64) {
        // A loop cannot exist (ELOOP at ADD), so no set is borrowed twice.
        match self.set.try_borrow_mut() {
            Ok(mut set) => set.readiness(&mut |w| poll_watched(k, w)),
            Err(_) => (false, 0),
        }
    }

    /// Every wait queue whose wake-up may change what this epoll reports:
    /// its own (EPOLL_CTL) and its interests', through nested epolls.
    /// A waiter (epoll_wait, or poll/select on the epoll fd) sleeps on
    /// all of them.
    pub fn wait_queues(&self, k: &Kernel, out: &mut Vec<(WaitQueueRef, u32)>) {
        self.wait_queues_at(k, out, 0);
    }

    fn wait_queues_at(&self, k: &Kernel, out: &mut Vec<(WaitQueueRef, u32)>, depth: usize) {
        fn add(out: &mut Vec<(WaitQueueRef, u32)>, q: WaitQueueRef) {
            if !out.iter().any(|(w, _)| Rc::ptr_eq(w, &q)) {
                out.push((q, ALL_EVENTS));
            }
        }
        add(out, self.ctl_q.clone());
        let files: Vec<OpenFileRef> = match self.set.try_borrow() {
            Ok(s) => s.files().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        for f in files {
            let ops = ops_of(&f);
            match ops.as_epoll() {
                Some(inner) if depth < MAX_NESTS => inner.wait_queues_at(k, out, depth + 1),
                Some(_) => {}
                None => {
                    if let Some(q) = ops.wait_queue(k) {
                        add(out, q);
                    }
                }
            }
        }
    }

    /// Whether `target` (an epoll) reaches `me` through its interests, or
    /// nests deeper than Linux allows: ELOOP for an ADD.
    pub fn would_loop(me: &OpenFileRef, target: &OpenFileRef) -> bool {
        fn walk(me: &OpenFileRef, f: &OpenFileRef, depth: usize) -> bool {
            if Rc::ptr_eq(me, f) || depth >= MAX_NESTS {
                return true;
            }
            let ops = ops_of(f);
            let Some(ep) = ops.as_epoll() else {
                return false;
            };
            let inner: Vec<OpenFileRef> = match ep.set.try_borrow() {
                Ok(s) => s.files().filter_map(Weak::upgrade).collect(),
                Err(_) => return true,
            };
            inner.iter().any(|g| walk(me, g, depth + 1))
        }
        walk(me, target, 0)
    }
}

impl FileDescription for EpollFile {
    fn poll(&self, k: &mut Kernel) -> u32 {
        if self.readiness(k).0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    fn generation(&self, k: &Kernel) -> u64 {
        // The wake-ups of every queue that may change its answer: their
        // sum changes whenever one of them does.
        let mut qs = Vec::new();
        self.wait_queues(k, &mut qs);
        qs.iter().fold(0u64, |g, (q, _)| g.wrapping_add(q.wakes()))
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(super::anon_inode_stat())
    }

    /// One line per interest, as Linux's `ep_show_fdinfo`.
    fn fdinfo(&self, k: &mut Kernel) -> String {
        let items: Vec<(i32, u32, u64, Option<OpenFileRef>)> = match self.set.try_borrow() {
            Ok(s) => s
                .interests()
                .map(|(fd, ev, data, w)| (fd, ev, data, w.upgrade()))
                .collect(),
            Err(_) => return String::new(),
        };
        let mut out = String::new();
        for (fd, ev, data, f) in items {
            // Linux stores every interest with EPOLLERR | EPOLLHUP added.
            let ev = ev | crate::net::epoll::EPOLLERR | crate::net::epoll::EPOLLHUP;
            let (pos, ino, dev) = match &f {
                Some(f) => {
                    let pos = f.borrow().offset;
                    let (st, dev) = ops_of(f).stat(k).unwrap_or_default();
                    (pos, st.ino, dev)
                }
                None => (0, 0, 0),
            };
            out.push_str(&format!(
                "tfd: {fd:8} events: {ev:8x} data: {data:16x}  pos:{pos} ino:{ino:x} sdev:{dev:x}\n"
            ));
        }
        out
    }

    fn as_epoll(&self) -> Option<&EpollFile> {
        Some(self)
    }
}
