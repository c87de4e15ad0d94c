//! AF_NETLINK sockets, NETLINK_ROUTE only (rtnetlink: what `ip`, glibc's
//! getifaddrs and getaddrinfo's AI_ADDRCONFIG ask). Pure machinery, like
//! `net::packet`: the socket file is `kernel/files/netlink.rs`, the
//! socket calls `syscalls/netlink.rs`.
//!
//! | file       | owns |
//! |------------|------|
//! | `mod.rs`   | message framing (nlmsghdr, attributes, acks and errors), `sockaddr_nl`, the socket: port id, receive queue (`net::dgram`) and the dump in progress |
//! | `rtnl.rs`  | the rtnetlink requests: link, address and route dumps and changes, on a snapshot of the interfaces |
//!
//! Replies are made when the request is sent. A dump is queued apart
//! from the receive queue and handed out one datagram per receive, as
//! Linux's netlink_dump fills one buffer per recvmsg; only one dump at a
//! time (EBUSY, as Linux). The receive queue is capped by SO_RCVBUF:
//! replies past it are dropped and the next receive fails with ENOBUFS,
//! as Linux reports a netlink overrun. Multicast notifications (`ip
//! monitor`) are not sent: group membership is kept and reported only.

#![deny(unsafe_code)]

pub mod rtnl;

use std::collections::VecDeque;

use crate::errno::{Errno, KResult};
use crate::net::dgram::DgramQueue;

pub const AF_NETLINK: u16 = 16;
pub const NETLINK_ROUTE: u32 = 0;
pub const SOL_NETLINK: i32 = 270;
pub const NETLINK_ADD_MEMBERSHIP: i32 = 1;
pub const NETLINK_DROP_MEMBERSHIP: i32 = 2;
pub const NETLINK_PKTINFO: i32 = 3;
pub const NETLINK_BROADCAST_ERROR: i32 = 4;
pub const NETLINK_NO_ENOBUFS: i32 = 5;
pub const NETLINK_LISTEN_ALL_NSID: i32 = 8;
pub const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
pub const NETLINK_CAP_ACK: i32 = 10;
pub const NETLINK_EXT_ACK: i32 = 11;
pub const NETLINK_GET_STRICT_CHK: i32 = 12;

/// sizeof(struct nlmsghdr), sizeof(struct sockaddr_nl).
pub const NLMSG_HDRLEN: usize = 16;
pub const SOCKADDR_NL_LEN: usize = 12;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// An ack without the request's payload.
pub const NLM_F_CAPPED: u16 = 0x100;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
/// Types below this are control messages, acked and otherwise ignored.
pub const NLMSG_MIN_TYPE: u16 = 0x10;

/// Linux's default SO_RCVBUF/SO_SNDBUF for a netlink socket
/// (net.core.rmem_default).
pub const DEFAULT_BUF: usize = 212_992;
/// The most bytes of replies one dump datagram carries: Linux's
/// NLMSG_GOODSIZE with 4 KiB pages (a page less the skb overhead).
pub const DUMP_CHUNK: usize = 3776;
/// The largest request a send takes (bigger is EMSGSIZE; Linux's limit
/// is the send buffer, this is well inside any real one).
pub const SEND_MAX: usize = 64 << 10;

/// NLMSG_ALIGN.
pub fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One message's header, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlHdr {
    pub len: u32,
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

impl NlHdr {
    pub fn parse(b: &[u8]) -> Option<NlHdr> {
        let b = b.get(..NLMSG_HDRLEN)?;
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        Some(NlHdr {
            len: u32_at(0),
            ty: u16::from_le_bytes([b[4], b[5]]),
            flags: u16::from_le_bytes([b[6], b[7]]),
            seq: u32_at(8),
            pid: u32_at(12),
        })
    }

    pub fn encode(&self) -> [u8; NLMSG_HDRLEN] {
        let mut b = [0u8; NLMSG_HDRLEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..6].copy_from_slice(&self.ty.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..16].copy_from_slice(&self.pid.to_le_bytes());
        b
    }
}

/// The messages of one sent buffer, as Linux's netlink_rcv_skb walks
/// them: each (header, whole message bytes); the walk stops at a header
/// whose length is short or runs past the end.
pub fn messages(buf: &[u8]) -> Vec<(NlHdr, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(h) = buf.get(at..).and_then(NlHdr::parse) {
        let len = h.len as usize;
        let Some(end) = at.checked_add(len).filter(|&e| e <= buf.len()) else {
            break;
        };
        if len < NLMSG_HDRLEN {
            break;
        }
        out.push((h, &buf[at..end]));
        at = match at.checked_add(align(len)) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

/// A message being built: header, family header, then attributes.
pub struct MsgBuilder {
    buf: Vec<u8>,
}

impl MsgBuilder {
    pub fn new(ty: u16, flags: u16, seq: u32, pid: u32, body: &[u8]) -> MsgBuilder {
        let mut buf = NlHdr {
            len: 0,
            ty,
            flags,
            seq,
            pid,
        }
        .encode()
        .to_vec();
        buf.extend_from_slice(body);
        buf.resize(align(buf.len()), 0);
        MsgBuilder { buf }
    }

    /// One attribute (struct rtattr / nlattr: u16 length, u16 type, data,
    /// padded to 4).
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_le_bytes());
        self.buf.extend_from_slice(&ty.to_le_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_le_bytes())
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.attr(ty, &[v])
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d)
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        self.buf
    }
}

/// The attributes after a message's fixed part `fixed` bytes long:
/// (type without the nested/byte-order bits, data). A malformed one ends
/// the walk (Linux's nla_parse ignores trailing bytes shorter than one).
pub fn attrs(msg: &[u8], fixed: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let Some(mut at) = NLMSG_HDRLEN.checked_add(align(fixed)) else {
        return out;
    };
    while let Some(h) = msg.get(at..at.saturating_add(4)) {
        let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
        let ty = u16::from_le_bytes([h[2], h[3]]) & 0x3fff;
        if len < 4 {
            break;
        }
        let Some(data) = msg.get(at + 4..at.saturating_add(len)) else {
            break;
        };
        out.push((ty, data));
        at = at.saturating_add(align(len));
    }
    out
}

/// The error (or ack, `err` 0) answering request `req` (whole message):
/// Linux's netlink_ack. An error quotes the whole request unless the
/// socket set NETLINK_CAP_ACK; an ack quotes its header only.
pub fn ack(req: &[u8], err: i32, portid: u32, cap_ack: bool) -> Vec<u8> {
    let h = NlHdr::parse(req).unwrap_or(NlHdr {
        len: 0,
        ty: 0,
        flags: 0,
        seq: 0,
        pid: 0,
    });
    let full = err != 0 && !cap_ack;
    let quoted: &[u8] = if full {
        req
    } else {
        &req[..NLMSG_HDRLEN.min(req.len())]
    };
    let mut body = err.to_le_bytes().to_vec();
    body.extend_from_slice(quoted);
    body.resize(4 + NLMSG_HDRLEN.max(quoted.len()), 0);
    let flags = if full { 0 } else { NLM_F_CAPPED };
    MsgBuilder::new(NLMSG_ERROR, flags, h.seq, portid, &body).finish()
}

/// NLMSG_DONE ending a dump: its payload is the int 0.
pub fn done(seq: u32, portid: u32) -> Vec<u8> {
    MsgBuilder::new(NLMSG_DONE, NLM_F_MULTI, seq, portid, &0i32.to_le_bytes()).finish()
}

/// Packs a dump's messages into datagrams of at most `DUMP_CHUNK` bytes
/// (a message bigger than that goes alone), NLMSG_DONE last.
pub fn pack_dump(msgs: Vec<Vec<u8>>, seq: u32, portid: u32) -> VecDeque<Vec<u8>> {
    let mut out = VecDeque::new();
    let mut cur: Vec<u8> = Vec::new();
    for m in msgs.into_iter().chain(std::iter::once(done(seq, portid))) {
        if !cur.is_empty() && cur.len() + m.len() > DUMP_CHUNK {
            out.push_back(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&m);
    }
    out.push_back(cur);
    out
}

/// `struct sockaddr_nl`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockaddrNl {
    pub pid: u32,
    pub groups: u32,
}

impl SockaddrNl {
    /// Decodes one with Linux's checks: EINVAL if shorter than the
    /// struct or of another family.
    pub fn parse(raw: &[u8]) -> KResult<SockaddrNl> {
        if raw.len() < SOCKADDR_NL_LEN {
            return Err(Errno::EINVAL);
        }
        if u16::from_le_bytes([raw[0], raw[1]]) != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        Ok(SockaddrNl {
            pid: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
            groups: u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]),
        })
    }

    pub fn encode(&self) -> [u8; SOCKADDR_NL_LEN] {
        let mut b = [0u8; SOCKADDR_NL_LEN];
        b[0..2].copy_from_slice(&AF_NETLINK.to_le_bytes());
        b[4..8].copy_from_slice(&self.pid.to_le_bytes());
        b[8..12].copy_from_slice(&self.groups.to_le_bytes());
        b
    }
}

/// Sent with SOCK_RAW or SOCK_DGRAM (the same to netlink).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Raw,
    Dgram,
}

/// One datagram received: bytes copied, whole length (MSG_TRUNC).
pub use crate::net::dgram::Got;

/// One NETLINK_ROUTE socket.
#[derive(Debug)]
pub struct NetlinkSocket {
    pub kind: Kind,
    /// The port id (0 until bound or autobound by a send).
    pub portid: u32,
    /// Multicast groups joined (bits 1..32 of bind's nl_groups, and
    /// NETLINK_ADD_MEMBERSHIP up to 32).
    pub groups: u32,
    /// connect's destination port (0: the kernel).
    pub dst_pid: u32,
    /// Replies, capped by SO_RCVBUF (`net::dgram`).
    queue: DgramQueue<Vec<u8>>,
    /// The dump in progress: datagrams not yet received (uncapped: it is
    /// made whole when asked, handed out one per receive).
    dump: DgramQueue<Vec<u8>>,
    /// Replies were dropped: the next receive is ENOBUFS.
    overrun: bool,
    pub rcvbuf: usize,
    pub sndbuf: usize,
    pub cap_ack: bool,
    pub ext_ack: bool,
    pub strict: bool,
    pub pktinfo: bool,
    pub no_enobufs: bool,
    pub broadcast_error: bool,
}

impl NetlinkSocket {
    pub fn new(kind: Kind) -> NetlinkSocket {
        NetlinkSocket {
            kind,
            portid: 0,
            groups: 0,
            dst_pid: 0,
            queue: DgramQueue::new(),
            dump: DgramQueue::new(),
            overrun: false,
            rcvbuf: DEFAULT_BUF,
            sndbuf: DEFAULT_BUF,
            cap_ack: false,
            ext_ack: false,
            strict: false,
            pktinfo: false,
            no_enobufs: false,
            broadcast_error: false,
        }
    }

    /// Is a dump still being received (a new one is EBUSY)?
    pub fn dumping(&self) -> bool {
        !self.dump.is_empty()
    }

    /// Queues a reply datagram; past SO_RCVBUF it is dropped and the
    /// socket overruns (unless NETLINK_NO_ENOBUFS).
    pub fn push(&mut self, d: Vec<u8>) {
        if !self.queue.push(d, self.rcvbuf) {
            self.overrun = !self.no_enobufs;
        }
    }

    /// Starts a dump: its datagrams are handed out after what is queued.
    pub fn start_dump(&mut self, d: VecDeque<Vec<u8>>) {
        self.dump = d.into_iter().collect();
    }

    pub fn readable(&self) -> bool {
        !self.queue.is_empty() || !self.dump.is_empty() || self.overrun
    }

    /// The next datagram's length (FIONREAD; 0 if none).
    pub fn next_len(&self) -> usize {
        if self.queue.is_empty() {
            self.dump.next_len()
        } else {
            self.queue.next_len()
        }
    }

    /// Receives one datagram into `buf` (the rest of a longer one is
    /// lost unless `peek`). EAGAIN if none, ENOBUFS once after an overrun.
    pub fn recv(&mut self, buf: &mut [u8], peek: bool) -> KResult<Got> {
        if self.overrun && !peek {
            self.overrun = false;
            return Err(Errno::ENOBUFS);
        }
        let q = if self.queue.is_empty() {
            &mut self.dump
        } else {
            &mut self.queue
        };
        q.recv(buf, peek).ok_or(Errno::EAGAIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stop_at_a_bad_length() {
        let a = MsgBuilder::new(18, NLM_F_REQUEST | NLM_F_DUMP, 7, 0, &[0]).finish();
        assert_eq!(a.len(), 20);
        let mut buf = a.clone();
        buf.extend_from_slice(&a);
        assert_eq!(messages(&buf).len(), 2);
        assert_eq!(messages(&buf)[1].0.seq, 7);
        let mut bad = a.clone();
        bad[0] = 200; // runs past the end
        assert!(messages(&bad).is_empty());
        bad[0] = 8; // shorter than a header
        assert!(messages(&bad).is_empty());
        assert!(messages(&a[..10]).is_empty());
        let mut huge = a.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(messages(&huge).is_empty());
    }

    #[test]
    fn attributes_round_trip() {
        let mut m = MsgBuilder::new(16, 0, 1, 2, &[0u8; 16]);
        m.attr_str(3, "eth0")
            .attr_u32(4, 1500)
            .attr(1, &[1, 2, 3, 4, 5, 6]);
        let m = m.finish();
        let a = attrs(&m, 16);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0], (3, &b"eth0\0"[..]));
        assert_eq!(a[1], (4, &1500u32.to_le_bytes()[..]));
        assert_eq!(a[2].1.len(), 6);
        // A truncated attribute ends the walk.
        assert_eq!(attrs(&m[..m.len() - 4], 16).len(), 2);
    }

    #[test]
    fn acks_and_errors_quote_as_linux() {
        let req = MsgBuilder::new(20, NLM_F_REQUEST | NLM_F_ACK, 9, 0, &[0u8; 8]).finish();
        let a = ack(&req, 0, 42, false);
        let h = NlHdr::parse(&a).unwrap();
        assert_eq!(
            (h.ty, h.flags, h.seq, h.pid),
            (NLMSG_ERROR, NLM_F_CAPPED, 9, 42)
        );
        assert_eq!(a.len(), 16 + 4 + 16);
        let e = ack(&req, -1, 42, false);
        assert_eq!(e.len(), 16 + 4 + req.len());
        assert_eq!(NlHdr::parse(&e).unwrap().flags, 0);
        assert_eq!(i32::from_le_bytes(e[16..20].try_into().unwrap()), -1);
        assert_eq!(ack(&req, -1, 42, true).len(), 36);
    }

    #[test]
    fn dumps_are_chunked_and_the_queue_capped() {
        let msgs: Vec<Vec<u8>> = (0..10).map(|_| vec![0u8; 1000]).collect();
        let d = pack_dump(msgs, 1, 5);
        assert_eq!(d.len(), 4, "3 + 3 + 3 + 1 and DONE");
        assert!(d.iter().all(|x| x.len() <= DUMP_CHUNK));
        let mut s = NetlinkSocket::new(Kind::Raw);
        s.rcvbuf = 100;
        s.push(vec![1; 80]);
        s.push(vec![2; 80]);
        assert!(s.readable());
        let mut b = [0u8; 50];
        assert_eq!(s.recv(&mut b, true), Ok(Got { n: 50, full: 80 }));
        assert_eq!(s.recv(&mut b, false), Err(Errno::ENOBUFS));
        assert_eq!(s.recv(&mut b, false), Ok(Got { n: 50, full: 80 }));
        assert_eq!(s.recv(&mut b, false), Err(Errno::EAGAIN));
        s.start_dump(pack_dump(Vec::new(), 3, 5));
        assert!(s.dumping());
        assert_eq!(s.next_len(), 20);
        assert_eq!(s.recv(&mut b, false).unwrap().full, 20);
        assert!(!s.dumping());
    }

    #[test]
    fn sockaddr_nl_checks() {
        let a = SockaddrNl { pid: 7, groups: 1 };
        assert_eq!(SockaddrNl::parse(&a.encode()), Ok(a));
        assert_eq!(SockaddrNl::parse(&a.encode()[..8]), Err(Errno::EINVAL));
        let mut b = a.encode();
        b[0] = 1;
        assert_eq!(SockaddrNl::parse(&b), Err(Errno::EINVAL));
    }

    proptest::proptest! {
        /// Whatever a guest sends, the walkers answer without panicking.
        #[test]
        fn any_bytes_parse(p in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for (_, m) in messages(&p) {
                let _ = attrs(m, 16);
                let _ = ack(m, -22, 1, false);
            }
            let _ = attrs(&p, 0);
        }
    }
}
