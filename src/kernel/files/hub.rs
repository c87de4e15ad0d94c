//! What the event files (timerfd, signalfd, pidfd, memfd, inotify, dnotify) need from
//! the rest of the kernel, in one place: the armed timerfds by id (their
//! expiries are `TimerKey::TimerFd` deadlines), and the wait queues that
//! kernel events wake — a signal queued to any task (signalfd), a
//! process exiting (pidfd); the memfd file system and seals.
//! `Kernel::evhub` holds it.

use std::collections::HashMap;
use std::rc::Weak;

use super::timerfd::TimerFd;
use crate::kernel::task::Pid;
use crate::kernel::waitq::{WaitQueue, WaitQueueRef};

pub struct EventHub {
    /// Live timerfds by id (weak: a timerfd lives as long as its open file).
    pub timerfds: HashMap<u64, Weak<TimerFd>>,
    next_timer: u64,
    /// Woken (POLLIN) whenever a signal is queued to any task: signalfd
    /// readers and pollers look again at their own pending signals.
    pub signals: WaitQueueRef,
    /// Woken (POLLIN) whenever a process ends: pidfd pollers look again.
    pub exits: WaitQueueRef,
    /// Woken when the mount table changes, and when a swap area comes or
    /// goes: pollers of /proc/<pid>/mountinfo and /proc/swaps
    /// (procfile.rs); the wake count is the event number.
    pub mounts: WaitQueueRef,
    pub swaps: WaitQueueRef,
    /// The task whose syscall is being served: a signalfd's readiness is
    /// the pending signals of whoever polls it (Linux's `current`).
    pub current: Pid,
    /// The kernel's own tmpfs holding memfd inodes (memfd.rs), once made.
    pub memfd_mount: Option<usize>,
    /// Seals of memfd inodes, by (mount, inode).
    pub seals: HashMap<(usize, u64), u32>,
    /// Inotify instances (weak; empty: no file system hook does anything).
    pub inotify: Vec<Weak<super::inotify::Inotify>>,
    /// F_NOTIFY watches (dnotify.rs; empty: nothing to check).
    pub dnotify: Vec<super::dnotify::DnWatch>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            timerfds: HashMap::new(),
            next_timer: 1,
            signals: WaitQueue::new(),
            exits: WaitQueue::new(),
            mounts: WaitQueue::new(),
            swaps: WaitQueue::new(),
            current: 0,
            memfd_mount: None,
            seals: HashMap::new(),
            inotify: Vec::new(),
            dnotify: Vec::new(),
        }
    }
}

impl EventHub {
    /// Does any inotify instance or dnotify watch listen to file system
    /// events? (The hooks cost only this check when none does.)
    pub fn fs_watched(&self) -> bool {
        !self.inotify.is_empty() || !self.dnotify.is_empty()
    }

    /// A fresh id (timerfds, memfd names).
    pub fn timer_id(&mut self) -> u64 {
        let id = self.next_timer;
        self.next_timer = self.next_timer.wrapping_add(1).max(1);
        id
    }
}
