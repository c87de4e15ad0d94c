//! A socket's receive queue: messages as they were sent, each with the
//! descriptors and credentials it carries and the charge it holds
//! against its sender's buffer.
//!
//! Streams read across messages (`read_stream`) but, as Linux, never
//! past a message carrying descriptors (they arrive with the bytes they
//! were sent with) nor, with SO_PASSCRED, across messages from different
//! writers. Datagrams and seqpackets read one message at a time
//! (`read_record`); a short buffer truncates and the rest is dropped.

use std::collections::VecDeque;

use crate::net::sockaddr::UnixAddr;
use crate::net::sockbuf::Charge;
use crate::net::Ucred;

pub struct Msg<R> {
    pub data: Vec<u8>,
    /// Bytes of `data` already read (streams read messages in parts).
    pub consumed: usize,
    pub rights: Vec<R>,
    pub creds: Option<Ucred>,
    /// When it was queued (CLOCK_REALTIME), if the receiver asked for
    /// SO_TIMESTAMP by then (Linux stamps at send: unix_dgram_sendmsg).
    pub stamp: Option<crate::fs::Timespec>,
    /// The sender's name (datagrams: recvfrom's address).
    pub from: UnixAddr,
    pub charge: Option<Charge>,
}

impl<R> Msg<R> {
    fn unread(&self) -> usize {
        self.data.len() - self.consumed
    }
}

impl<R> Got<R> {
    /// Nothing read yet, with the first message's sender, credentials and
    /// stamp (what a stream read reports).
    fn empty_from(first: &Msg<R>) -> Self {
        Got {
            n: 0,
            full: 0,
            truncated: false,
            rights: Vec::new(),
            creds: first.creds,
            stamp: first.stamp,
            from: first.from.clone(),
        }
    }
}

/// What a read got.
#[derive(Debug, PartialEq, Eq)]
pub struct Got<R> {
    /// Bytes copied into the buffer.
    pub n: usize,
    /// A record's real length (recv with MSG_TRUNC returns it).
    pub full: usize,
    /// The record was longer than the buffer.
    pub truncated: bool,
    pub rights: Vec<R>,
    /// Credentials of the (first) message read, if it had any.
    pub creds: Option<Ucred>,
    /// The (first) message's queueing time, if stamped.
    pub stamp: Option<crate::fs::Timespec>,
    pub from: UnixAddr,
}

pub struct RecvQueue<R> {
    msgs: VecDeque<Msg<R>>,
    bytes: usize,
}

impl<R> Default for RecvQueue<R> {
    fn default() -> Self {
        RecvQueue {
            msgs: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<R> RecvQueue<R> {
    /// The descriptors in flight in this queue (the collector's scan).
    pub fn rights(&self) -> impl Iterator<Item = &R> {
        self.msgs.iter().flat_map(|m| m.rights.iter())
    }

    /// Whether any queued message carries descriptors.
    pub fn has_rights(&self) -> bool {
        self.msgs.iter().any(|m| !m.rights.is_empty())
    }
}

impl<R: Clone> RecvQueue<R> {
    pub fn push(&mut self, m: Msg<R>) {
        self.bytes += m.unread();
        self.msgs.push_back(m);
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Messages queued (a datagram receiver's backlog).
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Unread bytes in all messages (FIONREAD on a stream or seqpacket).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The first message's length (FIONREAD on a datagram socket).
    pub fn first_len(&self) -> usize {
        self.msgs.front().map_or(0, Msg::unread)
    }

    /// Takes everything (the socket is closing); the caller drops the
    /// descriptors once no socket is borrowed.
    pub fn drain(&mut self) -> Vec<Msg<R>> {
        self.bytes = 0;
        self.msgs.drain(..).collect()
    }

    /// Whether a stream read of `want` bytes can be satisfied now without
    /// waiting (MSG_WAITALL): enough bytes, or a message boundary that
    /// ends a read early.
    pub fn stream_has(&self, want: usize, passcred: bool) -> bool {
        let mut have = 0usize;
        let first_creds = self.msgs.front().and_then(|m| m.creds);
        for m in &self.msgs {
            if have > 0 && passcred && m.creds != first_creds {
                return true;
            }
            have += m.unread();
            if have >= want || !m.rights.is_empty() {
                return true;
            }
        }
        false
    }

    /// A stream read into `buf` (None if the queue is empty).
    pub fn read_stream(&mut self, buf: &mut [u8], peek: bool, passcred: bool) -> Option<Got<R>> {
        let mut got = Got::empty_from(self.msgs.front()?);
        let mut i = 0;
        while got.n < buf.len() && i < self.msgs.len() {
            let m = &mut self.msgs[i];
            if got.n > 0 && passcred && m.creds != got.creds {
                break;
            }
            let chunk = m.unread().min(buf.len() - got.n);
            buf[got.n..got.n + chunk].copy_from_slice(&m.data[m.consumed..m.consumed + chunk]);
            got.n += chunk;
            let had_rights = !m.rights.is_empty();
            if peek {
                got.rights.extend(m.rights.iter().cloned());
                if had_rights {
                    break;
                }
                i += 1;
                continue;
            }
            got.rights.append(&mut m.rights);
            m.consumed += chunk;
            self.bytes -= chunk;
            if m.unread() > 0 {
                break;
            }
            self.msgs.pop_front();
            if had_rights {
                break;
            }
        }
        got.full = got.n;
        Some(got)
    }

    /// A stream read of at most `max` bytes that takes them out of the
    /// queue instead of copying them into a buffer: each piece pushed on
    /// `out` is (bytes, offset of the first unread one). A message read
    /// to its end gives its own buffer, one read in part a copy of that
    /// part. Stops where `read_stream` stops (None if the queue is
    /// empty); never a peek.
    pub fn take_stream(
        &mut self,
        max: usize,
        passcred: bool,
        out: &mut Vec<(Vec<u8>, usize)>,
    ) -> Option<Got<R>> {
        let mut got = Got::empty_from(self.msgs.front()?);
        while got.n < max {
            let Some(m) = self.msgs.front_mut() else {
                break;
            };
            if got.n > 0 && passcred && m.creds != got.creds {
                break;
            }
            let chunk = m.unread().min(max - got.n);
            let had_rights = !m.rights.is_empty();
            got.rights.append(&mut m.rights);
            got.n += chunk;
            self.bytes -= chunk;
            if chunk < m.unread() {
                out.push((m.data[m.consumed..m.consumed + chunk].to_vec(), 0));
                m.consumed += chunk;
                break;
            }
            let m = self.msgs.pop_front().expect("front");
            if chunk > 0 {
                out.push((m.data, m.consumed));
            }
            if had_rights {
                break;
            }
        }
        got.full = got.n;
        Some(got)
    }

    /// One record into `buf` (None if the queue is empty).
    pub fn read_record(&mut self, buf: &mut [u8], peek: bool) -> Option<Got<R>> {
        let m = self.msgs.front()?;
        let n = m.data.len().min(buf.len());
        buf[..n].copy_from_slice(&m.data[..n]);
        let mut got = Got {
            n,
            full: m.data.len(),
            truncated: m.data.len() > buf.len(),
            rights: Vec::new(),
            creds: m.creds,
            stamp: m.stamp,
            from: m.from.clone(),
        };
        if peek {
            got.rights = m.rights.clone();
        } else {
            let mut m = self.msgs.pop_front().expect("front");
            self.bytes -= m.unread();
            got.rights = std::mem::take(&mut m.rights);
        }
        Some(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(data: &[u8], rights: &[u32], creds: Option<Ucred>) -> Msg<u32> {
        Msg {
            data: data.to_vec(),
            consumed: 0,
            rights: rights.to_vec(),
            creds,
            stamp: None,
            from: UnixAddr::Unnamed,
            charge: None,
        }
    }

    #[test]
    fn stream_reads_join_messages_and_split_them() {
        let mut q = RecvQueue::default();
        q.push(msg(b"abc", &[], None));
        q.push(msg(b"defg", &[], None));
        assert_eq!(q.bytes(), 7);
        let mut b = [0u8; 5];
        let g = q.read_stream(&mut b, true, false).unwrap();
        assert_eq!((g.n, &b[..5]), (5, &b"abcde"[..]));
        assert_eq!(q.bytes(), 7, "peek leaves the bytes");
        let g = q.read_stream(&mut b, false, false).unwrap();
        assert_eq!(g.n, 5);
        assert_eq!(q.bytes(), 2);
        let g = q.read_stream(&mut b, false, false).unwrap();
        assert_eq!((g.n, &b[..2]), (2, &b"fg"[..]));
        assert!(q.read_stream(&mut b, false, false).is_none());
    }

    #[test]
    fn stream_reads_stop_after_descriptors() {
        let mut q = RecvQueue::default();
        q.push(msg(b"ab", &[], None));
        q.push(msg(b"cd", &[7, 8], None));
        q.push(msg(b"ef", &[], None));
        let mut b = [0u8; 10];
        let g = q.read_stream(&mut b, true, false).unwrap();
        assert_eq!((g.n, g.rights.clone()), (4, vec![7, 8]));
        let g = q.read_stream(&mut b, false, false).unwrap();
        assert_eq!((g.n, g.rights), (4, vec![7, 8]));
        let g = q.read_stream(&mut b, false, false).unwrap();
        assert_eq!((g.n, g.rights), (2, vec![]));
        // Descriptors come with the first byte of their message.
        q.push(msg(b"xyz", &[9], None));
        let mut one = [0u8; 1];
        assert_eq!(
            q.read_stream(&mut one, false, false).unwrap().rights,
            vec![9]
        );
        assert_eq!(
            q.read_stream(&mut b, false, false).unwrap().rights,
            Vec::<u32>::new()
        );
    }

    #[test]
    fn taking_moves_whole_messages_and_copies_parts() {
        let mut q = RecvQueue::default();
        q.push(msg(b"abc", &[], None));
        q.push(msg(b"defg", &[5], None));
        q.push(msg(b"hi", &[], None));
        let mut out = Vec::new();
        let g = q.take_stream(2, false, &mut out).unwrap();
        assert_eq!((g.n, out.clone()), (2, vec![(b"ab".to_vec(), 0)]));
        out.clear();
        // The rest of "abc" is its own buffer from offset 2; the read
        // stops after the message with descriptors, as read_stream.
        let g = q.take_stream(100, false, &mut out).unwrap();
        assert_eq!((g.n, g.rights), (5, vec![5]));
        assert_eq!(out, vec![(b"abc".to_vec(), 2), (b"defg".to_vec(), 0)]);
        assert_eq!(q.bytes(), 2);
        out.clear();
        assert_eq!(q.take_stream(100, false, &mut out).unwrap().n, 2);
        assert!(q.take_stream(100, false, &mut out).is_none());
    }

    #[test]
    fn passcred_keeps_writers_apart() {
        let a = Some(Ucred {
            pid: 1,
            uid: 0,
            gid: 0,
        });
        let c = Some(Ucred {
            pid: 2,
            uid: 0,
            gid: 0,
        });
        let mut q = RecvQueue::<u32>::default();
        q.push(msg(b"ab", &[], a));
        q.push(msg(b"cd", &[], c));
        let mut b = [0u8; 10];
        assert!(q.stream_has(4, false));
        assert!(q.stream_has(10, true));
        assert!(!q.stream_has(10, false));
        let g = q.read_stream(&mut b, false, true).unwrap();
        assert_eq!((g.n, g.creds), (2, a));
        let g = q.read_stream(&mut b, false, true).unwrap();
        assert_eq!((g.n, g.creds), (2, c));
    }

    #[test]
    fn records_keep_boundaries_and_truncate() {
        let mut q = RecvQueue::default();
        q.push(msg(b"hello", &[3], None));
        q.push(msg(b"", &[], None));
        assert_eq!(q.first_len(), 5);
        let mut b = [0u8; 3];
        let g = q.read_record(&mut b, true).unwrap();
        assert_eq!((g.n, g.full, g.truncated, g.rights), (3, 5, true, vec![3]));
        let g = q.read_record(&mut b, false).unwrap();
        assert_eq!((g.n, g.full, g.truncated), (3, 5, true));
        assert_eq!(q.len(), 1);
        let g = q.read_record(&mut b, false).unwrap();
        assert_eq!((g.n, g.full), (0, 0), "an empty datagram is a message");
        assert!(q.read_record(&mut b, false).is_none());
        assert_eq!(q.bytes(), 0);
    }
}
