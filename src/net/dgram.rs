//! A datagram receive queue, as AF_PACKET and AF_NETLINK sockets keep
//! one: whole datagrams in arrival order, capped by what they cost (a
//! datagram that does not fit is refused and counted, unless the queue
//! is empty: one always gets through, as Linux compares the queue's
//! charge with the cap before adding), read one per receive. A short
//! buffer truncates a datagram and the rest is lost unless the receive
//! only peeks; its whole length is kept for MSG_TRUNC.
//!
//! AF_UNIX datagrams do not queue here: their queue charges each message
//! to its sender and carries descriptors and credentials
//! (`net::unix::queue`, `net::sockbuf`).

use std::collections::VecDeque;

/// One queued datagram.
pub trait Datagram {
    /// The bytes a receive reads.
    fn bytes(&self) -> &[u8];
    /// Its length before any cut (a packet filter's snap length):
    /// MSG_TRUNC's answer. By default the length of its bytes.
    fn full_len(&self) -> usize {
        self.bytes().len()
    }
    /// What it counts against the queue's cap.
    fn cost(&self) -> usize;
}

/// A datagram that is its bytes and costs their length.
impl Datagram for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn cost(&self) -> usize {
        self.len()
    }
}

/// What a receive got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Got {
    /// Bytes copied.
    pub n: usize,
    /// The datagram's whole length (MSG_TRUNC).
    pub full: usize,
}

#[derive(Debug)]
pub struct DgramQueue<T> {
    items: VecDeque<T>,
    /// What the queued datagrams cost together.
    queued: usize,
    /// Datagrams refused because the queue was full.
    drops: u64,
}

impl<T> Default for DgramQueue<T> {
    fn default() -> Self {
        DgramQueue {
            items: VecDeque::new(),
            queued: 0,
            drops: 0,
        }
    }
}

impl<T: Datagram> DgramQueue<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `d` if its cost fits under `cap` with what is queued, or
    /// the queue is empty; else refuses it (a drop). True if queued.
    pub fn push(&mut self, d: T, cap: usize) -> bool {
        let cost = d.cost();
        if self.queued.saturating_add(cost) > cap && !self.items.is_empty() {
            self.drops = self.drops.saturating_add(1);
            return false;
        }
        self.queued = self.queued.saturating_add(cost);
        self.items.push_back(d);
        true
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// What the queued datagrams cost together.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Datagrams refused so far.
    pub fn drops(&self) -> u64 {
        self.drops
    }

    /// The next datagram's length as a receive reads it (FIONREAD; 0 if
    /// none).
    pub fn next_len(&self) -> usize {
        self.items.front().map_or(0, |d| d.bytes().len())
    }

    /// Receives the next datagram into `buf` (None: the queue is empty),
    /// with what `meta` says of it (the sender's address...); it leaves
    /// the queue unless `peek`.
    pub fn recv_with<R>(
        &mut self,
        buf: &mut [u8],
        peek: bool,
        meta: impl FnOnce(&T) -> R,
    ) -> Option<(Got, R)> {
        let d = self.items.front()?;
        let bytes = d.bytes();
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        let got = Got {
            n,
            full: d.full_len(),
        };
        let m = meta(d);
        if !peek {
            if let Some(d) = self.items.pop_front() {
                self.queued = self.queued.saturating_sub(d.cost());
            }
        }
        Some((got, m))
    }

    /// `recv_with` when only the bytes matter.
    pub fn recv(&mut self, buf: &mut [u8], peek: bool) -> Option<Got> {
        self.recv_with(buf, peek, |_| ()).map(|(g, ())| g)
    }
}

/// An uncapped queue of `items` (a netlink dump, made whole at once).
impl<T: Datagram> FromIterator<T> for DgramQueue<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut q = DgramQueue::new();
        for d in items {
            q.push(d, usize::MAX);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram cut to a snap length, with an overhead, like a frame.
    struct Cut {
        data: Vec<u8>,
        full: usize,
    }

    impl Datagram for Cut {
        fn bytes(&self) -> &[u8] {
            &self.data
        }
        fn full_len(&self) -> usize {
            self.full
        }
        fn cost(&self) -> usize {
            self.data.len() + 100
        }
    }

    #[test]
    fn the_cap_refuses_and_counts_until_a_read_makes_room() {
        let mut q = DgramQueue::new();
        assert!(q.push(vec![1u8; 40], 100));
        assert!(q.push(vec![2u8; 60], 100), "exactly the cap fits");
        assert!(!q.push(vec![3u8; 1], 100));
        assert_eq!((q.len(), q.queued(), q.drops()), (2, 100, 1));
        let mut b = [0u8; 64];
        assert_eq!(q.recv(&mut b, false), Some(Got { n: 40, full: 40 }));
        assert_eq!(q.queued(), 60, "a read gives its cost back");
        assert!(q.push(vec![3u8; 40], 100), "room again after a read");
        assert_eq!(q.drops(), 1);
    }

    #[test]
    fn one_datagram_past_the_cap_gets_through_an_empty_queue() {
        let mut q = DgramQueue::new();
        assert!(q.push(vec![0u8; 500], 100));
        assert!(!q.push(vec![0u8; 1], 100));
        let mut b = [0u8; 600];
        assert_eq!(q.recv(&mut b, false).map(|g| g.n), Some(500));
        assert!(q.is_empty() && q.queued() == 0);
    }

    #[test]
    fn peek_keeps_a_datagram_and_a_short_read_loses_its_rest() {
        let mut q = DgramQueue::new();
        q.push(b"hello".to_vec(), 1000);
        q.push(b"world!".to_vec(), 1000);
        assert_eq!(q.next_len(), 5);
        let mut b = [0u8; 3];
        assert_eq!(q.recv(&mut b, true), Some(Got { n: 3, full: 5 }));
        assert_eq!(&b, b"hel");
        assert_eq!((q.len(), q.queued()), (2, 11), "a peek takes nothing");
        assert_eq!(q.recv(&mut b, false), Some(Got { n: 3, full: 5 }));
        assert_eq!(q.next_len(), 6, "the rest of a truncated datagram is gone");
        let mut big = [0u8; 16];
        assert_eq!(q.recv(&mut big, false), Some(Got { n: 6, full: 6 }));
        assert_eq!(&big[..6], b"world!");
        assert_eq!(q.recv(&mut big, false), None);
        assert_eq!(q.next_len(), 0);
    }

    #[test]
    fn cost_and_whole_length_come_from_the_datagram() {
        let mut q = DgramQueue::new();
        let cut = |n| Cut {
            data: vec![7u8; n],
            full: 1000,
        };
        assert!(q.push(cut(10), 300));
        assert!(q.push(cut(10), 300));
        assert_eq!(q.queued(), 220, "each costs its bytes and overhead");
        assert!(!q.push(cut(10), 300));
        let mut b = [0u8; 64];
        let (g, first) = q.recv_with(&mut b, false, |d| d.data[0]).unwrap();
        assert_eq!((g, first), (Got { n: 10, full: 1000 }, 7));
        assert_eq!(q.queued(), 110);
    }

    #[test]
    fn a_queue_made_whole_is_uncapped() {
        let q: DgramQueue<Vec<u8>> = (0..100).map(|_| vec![0u8; 1 << 20]).collect();
        assert_eq!((q.len(), q.drops()), (100, 0));
    }

    #[test]
    fn an_empty_datagram_is_a_datagram() {
        let mut q = DgramQueue::new();
        q.push(Vec::new(), 10);
        assert!(!q.is_empty());
        let mut b = [0u8; 4];
        assert_eq!(q.recv(&mut b, false), Some(Got { n: 0, full: 0 }));
        assert!(q.is_empty());
    }
}
