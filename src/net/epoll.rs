//! The epoll interest list and ready list, generic over the watched
//! file `F` (an open file in the kernel, anything in unit tests).
//!
//! An interest is keyed by (fd, file identity) as Linux keys it by
//! (struct file, fd): closing one fd of a dup'ed file leaves the
//! interest; the caller removes interests when a file's last reference
//! goes (`forget_file`).
//!
//! Readiness comes from the caller's poll function, which gives a file's
//! current EPOLL* mask and its *generation*: a number that changes each
//! time the file's state may have changed (its wake-ups). Level-
//! triggered interests report while ready; edge-triggered ones
//! (EPOLLET) report when ready and the generation moved since they last
//! reported, which is when Linux's wake-up callback would have queued
//! them; EPOLLONESHOT interests report once, then sleep until
//! EPOLL_CTL_MOD re-arms them. Ready interests are reported oldest-ready
//! first, and a level-triggered one goes to the back after reporting, so
//! a small `maxevents` still reaches every ready file in turn.

use crate::abi::layout::{EpollEvent, GuestStruct};
use crate::errno::{Errno, KResult};

pub const EPOLL_CTL_ADD: i32 = 1;
pub const EPOLL_CTL_DEL: i32 = 2;
pub const EPOLL_CTL_MOD: i32 = 3;

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLPRI: u32 = 0x2;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDNORM: u32 = 0x40;
pub const EPOLLRDBAND: u32 = 0x80;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLWRBAND: u32 = 0x200;
pub const EPOLLMSG: u32 = 0x400;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// The bits that only steer epoll itself.
const CONTROL_BITS: u32 = EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET;
/// What EPOLLEXCLUSIVE may be combined with.
const EXCLUSIVE_OK: u32 =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

/// epoll_create1's only flag.
pub const EPOLL_CLOEXEC: u32 = 0o2000000;
/// epoll nesting depth limit (EP_MAX_NESTS).
pub const MAX_NESTS: usize = 4;
/// sizeof(struct epoll_event) on x86-64 (packed: u32 events, u64 data).
pub const EVENT_SIZE: usize = <EpollEvent as GuestStruct>::SIZE;
/// Largest maxevents (INT_MAX / sizeof(struct epoll_event)).
pub const MAX_EVENTS: i32 = (i32::MAX as usize / EVENT_SIZE) as i32;
/// Interests one epoll file may hold (Linux's limit is a per-user
/// memory share; this keeps umlrun's memory bounded). More is ENOSPC.
pub const MAX_INTERESTS: usize = 65536;

struct Interest<F> {
    fd: i32,
    file_id: usize,
    file: F,
    events: u32,
    data: u64,
    /// The file's generation when this interest last reported (ET).
    reported_gen: Option<u64>,
    /// ONESHOT fired: nothing until MOD.
    disarmed: bool,
    /// Scan number at which it was first seen ready (report order).
    ready_since: Option<u64>,
    /// Tie-break: order of addition.
    seq: u64,
    /// One of the epoll owner's `max_user_watches`, given back when the
    /// interest goes.
    _watch: Option<crate::kernel::ucounts::Charge>,
}

/// One epoll instance's interests.
pub struct EpollSet<F> {
    items: Vec<Interest<F>>,
    next_seq: u64,
    scans: u64,
    /// Whose watches these are (the creator's real uid), against
    /// `fs.epoll.max_user_watches`; None: uncounted (unit tests).
    account: Option<(crate::kernel::ucounts::UserCounts, u32)>,
}

impl<F> Default for EpollSet<F> {
    fn default() -> Self {
        EpollSet {
            items: Vec::new(),
            next_seq: 0,
            scans: 0,
            account: None,
        }
    }
}

impl<F> EpollSet<F> {
    /// A set whose interests count against `uid`'s watches in `counts`.
    pub fn counted(counts: crate::kernel::ucounts::UserCounts, uid: u32) -> EpollSet<F> {
        EpollSet {
            account: Some((counts, uid)),
            ..EpollSet::default()
        }
    }
}

/// One reported event: epoll_event.events and .data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub events: u32,
    pub data: u64,
}

impl Event {
    /// struct epoll_event as the guest sees it (12 bytes, packed).
    pub fn to_bytes(self) -> [u8; EVENT_SIZE] {
        let mut b = [0u8; EVENT_SIZE];
        EpollEvent::from(self).write_to(&mut b);
        b
    }

    pub fn from_bytes(b: &[u8; EVENT_SIZE]) -> Event {
        EpollEvent::read_from(b).into()
    }
}

impl From<Event> for EpollEvent {
    fn from(e: Event) -> EpollEvent {
        EpollEvent {
            events: e.events,
            data: e.data,
        }
    }
}

impl From<EpollEvent> for Event {
    fn from(e: EpollEvent) -> Event {
        Event {
            events: e.events,
            data: e.data,
        }
    }
}

impl<F> EpollSet<F> {
    fn find(&self, fd: i32, file_id: usize) -> Option<usize> {
        self.items
            .iter()
            .position(|i| i.fd == fd && i.file_id == file_id)
    }

    /// epoll_ctl after the fds are resolved: `file_id` identifies the
    /// open file `fd` refers to, `target_is_epoll` whether it is an epoll
    /// file (the caller has checked the file can be polled, is not the
    /// epoll itself, and that adding an epoll makes no loop).
    pub fn ctl(
        &mut self,
        op: i32,
        fd: i32,
        file_id: usize,
        file: F,
        ev: Event,
        target_is_epoll: bool,
    ) -> KResult<()> {
        let mut events = ev.events & !EPOLLWAKEUP;
        if op != EPOLL_CTL_DEL && ev.events & EPOLLEXCLUSIVE != 0 {
            if op == EPOLL_CTL_MOD {
                return Err(Errno::EINVAL);
            }
            if op == EPOLL_CTL_ADD && (target_is_epoll || ev.events & !EXCLUSIVE_OK != 0) {
                return Err(Errno::EINVAL);
            }
        }
        let at = self.find(fd, file_id);
        match op {
            EPOLL_CTL_ADD => {
                if at.is_some() {
                    return Err(Errno::EEXIST);
                }
                if self.items.len() >= MAX_INTERESTS {
                    return Err(Errno::ENOSPC);
                }
                let watch = match &self.account {
                    Some((counts, uid)) => Some(counts.try_charge(*uid).ok_or(Errno::ENOSPC)?),
                    None => None,
                };
                events |= EPOLLERR | EPOLLHUP;
                self.next_seq += 1;
                self.items.push(Interest {
                    fd,
                    file_id,
                    file,
                    events,
                    data: ev.data,
                    reported_gen: None,
                    disarmed: false,
                    ready_since: None,
                    seq: self.next_seq,
                    _watch: watch,
                });
                Ok(())
            }
            EPOLL_CTL_MOD => {
                let i = at.ok_or(Errno::ENOENT)?;
                let it = &mut self.items[i];
                if it.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = events | EPOLLERR | EPOLLHUP;
                it.data = ev.data;
                it.reported_gen = None;
                it.disarmed = false;
                Ok(())
            }
            EPOLL_CTL_DEL => {
                let i = at.ok_or(Errno::ENOENT)?;
                self.items.remove(i);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// The file with identity `file_id` was closed for good: its
    /// interests go.
    pub fn forget_file(&mut self, file_id: usize) {
        self.items.retain(|i| i.file_id != file_id);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// (fd, events, data, file) of every interest, in the order added
    /// (/proc/<pid>/fdinfo's tfd lines).
    pub fn interests(&self) -> impl Iterator<Item = (i32, u32, u64, &F)> {
        self.items.iter().map(|i| (i.fd, i.events, i.data, &i.file))
    }

    /// The watched files (to walk nested epolls for loops and depth).
    pub fn files(&self) -> impl Iterator<Item = &F> {
        self.items.iter().map(|i| &i.file)
    }

    /// Which interests would report now, with their masks.
    fn due(&mut self, poll: &mut dyn FnMut(&F) -> Option<(u32, u64)>) -> Vec<(usize, u32, u64)> {
        self.scans += 1;
        let scan = self.scans;
        let mut gone = Vec::new();
        let mut due = Vec::new();
        for (idx, it) in self.items.iter_mut().enumerate() {
            let Some((mask, gen)) = poll(&it.file) else {
                gone.push(idx);
                continue;
            };
            let m = mask & it.events & !CONTROL_BITS;
            let fresh = it.events & EPOLLET == 0 || it.reported_gen != Some(gen);
            if m != 0 && !it.disarmed && fresh {
                it.ready_since.get_or_insert(scan);
                due.push((idx, m, gen));
            } else {
                it.ready_since = None;
            }
        }
        due.sort_by_key(|&(i, _, _)| (self.items[i].ready_since, self.items[i].seq));
        for &i in gone.iter().rev() {
            self.items.remove(i);
            due.retain(|d| d.0 != i);
            for d in due.iter_mut() {
                if d.0 > i {
                    d.0 -= 1;
                }
            }
        }
        due
    }

    /// epoll_wait's scan: up to `max` events, consuming edge and
    /// one-shot triggers. `poll` gives a file's (mask, generation), or
    /// None if it is gone (its interest is dropped).
    pub fn collect(
        &mut self,
        max: usize,
        poll: &mut dyn FnMut(&F) -> Option<(u32, u64)>,
    ) -> Vec<Event> {
        let due = self.due(poll);
        let scan = self.scans;
        let mut out = Vec::new();
        for (idx, m, gen) in due.into_iter().take(max) {
            let it = &mut self.items[idx];
            out.push(Event {
                events: m,
                data: it.data,
            });
            it.reported_gen = Some(gen);
            if it.events & EPOLLONESHOT != 0 {
                it.disarmed = true;
            }
            // Reported: to the back of the ready order.
            it.ready_since = Some(scan + 1);
            it.seq = {
                self.next_seq += 1;
                self.next_seq
            };
        }
        out
    }

    /// Whether epoll_wait would report something (the epoll file's own
    /// readiness when it is watched by poll or another epoll), and a
    /// generation for the nesting epoll's edge trigger.
    pub fn readiness(&mut self, poll: &mut dyn FnMut(&F) -> Option<(u32, u64)>) -> (bool, u64) {
        let mut gen = 0u64;
        let mut wrapped = |f: &F| {
            let r = poll(f);
            if let Some((_, g)) = r {
                gen = gen.wrapping_mul(31).wrapping_add(g);
            }
            r
        };
        let ready = !self.due(&mut wrapped).is_empty();
        (ready, gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Files are numbers; their (mask, generation) live in a map.
    #[derive(Default)]
    struct World(HashMap<usize, (u32, u64)>);

    impl World {
        fn set(&mut self, f: usize, mask: u32) {
            let e = self.0.entry(f).or_insert((0, 0));
            e.0 = mask;
            e.1 += 1;
        }
        fn wait(&self, ep: &mut EpollSet<usize>, max: usize) -> Vec<(u32, u64)> {
            ep.collect(max, &mut |f| self.0.get(f).copied())
                .into_iter()
                .map(|e| (e.events, e.data))
                .collect()
        }
    }

    fn ev(events: u32, data: u64) -> Event {
        Event { events, data }
    }

    fn add(ep: &mut EpollSet<usize>, f: usize, events: u32) -> KResult<()> {
        ep.ctl(EPOLL_CTL_ADD, f as i32, f, f, ev(events, f as u64), false)
    }

    #[test]
    fn ctl_errors_as_linux() {
        let mut ep = EpollSet::default();
        add(&mut ep, 3, EPOLLIN).unwrap();
        assert_eq!(add(&mut ep, 3, EPOLLIN), Err(Errno::EEXIST));
        assert_eq!(
            ep.ctl(EPOLL_CTL_MOD, 4, 4, 4, ev(EPOLLIN, 0), false),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            ep.ctl(EPOLL_CTL_DEL, 4, 4, 4, ev(0, 0), false),
            Err(Errno::ENOENT)
        );
        assert_eq!(ep.ctl(99, 3, 3, 3, ev(0, 0), false), Err(Errno::EINVAL));
        // The same fd number of another file is another interest.
        ep.ctl(EPOLL_CTL_ADD, 3, 30, 30, ev(EPOLLIN, 0), false)
            .unwrap();
        assert_eq!(
            ep.ctl(
                EPOLL_CTL_ADD,
                5,
                5,
                5,
                ev(EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 0),
                false
            ),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            ep.ctl(
                EPOLL_CTL_ADD,
                5,
                5,
                5,
                ev(EPOLLIN | EPOLLEXCLUSIVE, 0),
                true
            ),
            Err(Errno::EINVAL)
        );
        add(&mut ep, 5, EPOLLIN | EPOLLEXCLUSIVE).unwrap();
        assert_eq!(
            ep.ctl(EPOLL_CTL_MOD, 5, 5, 5, ev(EPOLLIN, 0), false),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            ep.ctl(
                EPOLL_CTL_MOD,
                3,
                3,
                3,
                ev(EPOLLIN | EPOLLEXCLUSIVE, 0),
                false
            ),
            Err(Errno::EINVAL)
        );
        ep.ctl(EPOLL_CTL_DEL, 5, 5, 5, ev(0, 0), false).unwrap();
        assert_eq!(ep.len(), 2);
        ep.forget_file(30);
        assert_eq!(ep.len(), 1);
    }

    #[test]
    fn level_triggered_reports_while_ready() {
        let mut w = World::default();
        let mut ep = EpollSet::default();
        add(&mut ep, 1, EPOLLIN).unwrap();
        w.set(1, EPOLLOUT);
        assert_eq!(w.wait(&mut ep, 8), vec![]);
        w.set(1, EPOLLIN | EPOLLOUT);
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 1)]);
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 1)]);
        // HUP and ERR are always reported.
        w.set(1, EPOLLHUP);
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLHUP, 1)]);
    }

    #[test]
    fn edge_triggered_reports_each_change_once() {
        let mut w = World::default();
        let mut ep = EpollSet::default();
        w.set(1, EPOLLIN);
        add(&mut ep, 1, EPOLLIN | EPOLLET).unwrap();
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 1)], "ready at ADD");
        assert_eq!(w.wait(&mut ep, 8), vec![]);
        w.set(1, EPOLLIN); // more data while still readable
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 1)]);
        assert_eq!(w.wait(&mut ep, 8), vec![]);
        // MOD re-arms.
        ep.ctl(EPOLL_CTL_MOD, 1, 1, 1, ev(EPOLLIN | EPOLLET, 7), false)
            .unwrap();
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 7)]);
    }

    #[test]
    fn oneshot_until_mod() {
        let mut w = World::default();
        let mut ep = EpollSet::default();
        w.set(1, EPOLLIN);
        add(&mut ep, 1, EPOLLIN | EPOLLONESHOT).unwrap();
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 1)]);
        w.set(1, EPOLLIN);
        assert_eq!(w.wait(&mut ep, 8), vec![]);
        ep.ctl(EPOLL_CTL_MOD, 1, 1, 1, ev(EPOLLIN | EPOLLONESHOT, 2), false)
            .unwrap();
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 2)]);
    }

    #[test]
    fn maxevents_rotates_through_ready_files() {
        let mut w = World::default();
        let mut ep = EpollSet::default();
        for f in 1..=3 {
            w.set(f, EPOLLIN);
            add(&mut ep, f, EPOLLIN).unwrap();
        }
        assert_eq!(w.wait(&mut ep, 2), vec![(EPOLLIN, 1), (EPOLLIN, 2)]);
        assert_eq!(w.wait(&mut ep, 2), vec![(EPOLLIN, 3), (EPOLLIN, 1)]);
        assert_eq!(w.wait(&mut ep, 2), vec![(EPOLLIN, 2), (EPOLLIN, 3)]);
    }

    #[test]
    fn gone_files_drop_out_and_readiness_nests() {
        let mut w = World::default();
        let mut ep = EpollSet::default();
        add(&mut ep, 1, EPOLLIN).unwrap();
        add(&mut ep, 2, EPOLLIN).unwrap();
        w.set(2, EPOLLIN);
        let (ready, g1) = ep.readiness(&mut |f| w.0.get(f).copied());
        assert!(ready);
        assert_eq!(ep.len(), 1, "file 1 is unknown to the world: gone");
        w.set(2, EPOLLIN);
        let (_, g2) = ep.readiness(&mut |f| w.0.get(f).copied());
        assert_ne!(g1, g2);
        // readiness consumes nothing.
        assert_eq!(w.wait(&mut ep, 8), vec![(EPOLLIN, 2)]);
    }

    #[test]
    fn event_layout_is_packed() {
        let e = ev(EPOLLIN | EPOLLOUT, 0x1122334455667788);
        let b = e.to_bytes();
        assert_eq!(&b[..4], &5u32.to_le_bytes());
        assert_eq!(Event::from_bytes(&b), e);
        assert_eq!(MAX_EVENTS, 178956970);
    }
}
