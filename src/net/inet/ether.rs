//! An Ethernet link under one of the stack's interfaces, for the
//! transports that carry frames (a host tap device): IPv4 packets the
//! stack sends are framed to the next hop's MAC, found by ARP (RFC 826:
//! a request broadcast, the reply cached), and frames that come in are
//! sorted: ARP is answered and learnt from, IPv4 for this MAC (or
//! broadcast) goes up to the stack, the rest is dropped, malformed
//! frames counted. Pure: no host I/O here; the kernel writes `out` to
//! the device and hands read frames to `receive`.
//!
//! Bounded: `CACHE_MAX` neighbours (the oldest goes), `PENDING_MAX`
//! packets waiting for an answer (each waits at most `PENDING_FOR`, as
//! Linux's unresolved queue), a request per address at most every
//! `REQUEST_EVERY`, `OUT_MAX` frames waiting to be written.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::offload::{self, OutFrame};

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Neighbours kept.
const CACHE_MAX: usize = 64;
/// How long a learnt neighbour is used (Linux's reachable time is
/// 30 s, then it is confirmed again; here it is asked again).
const CACHE_FOR: Duration = Duration::from_secs(60);
const PENDING_MAX: usize = 64;
const PENDING_FOR: Duration = Duration::from_secs(3);
const REQUEST_EVERY: Duration = Duration::from_secs(1);
pub const OUT_MAX: usize = 1024;
/// The smallest frame on the wire (without the FCS): shorter ones are
/// padded.
const FRAME_MIN: usize = 60;

/// What a received frame was.
#[derive(Debug, PartialEq, Eq)]
pub enum Rx {
    /// An IPv4 packet for the stack.
    Ip(Vec<u8>),
    /// ARP, handled (an answer may be in `out`, pending packets sent).
    Arp,
    /// For another station, or a protocol nobody here speaks.
    Ignored,
    /// Too short, or a header that is not one: dropped and counted.
    Malformed,
}

#[derive(Debug)]
pub struct EtherLink {
    pub mac: [u8; 6],
    cache: Vec<(Ipv4Addr, [u8; 6], Instant)>,
    pending: Vec<(Ipv4Addr, Vec<u8>, Instant)>,
    asked: Vec<(Ipv4Addr, Instant)>,
    /// Frames to write to the device.
    pub out: VecDeque<OutFrame>,
    /// The device finishes TCP checksums and cuts runs of segments (a
    /// tap with IFF_VNET_HDR: `offload.rs`); else every frame is whole.
    pub offload: bool,
    /// Packets dropped: no room to wait or to go out, or no answer.
    pub dropped: u64,
    pub malformed: u64,
}

/// A frame: destination, source, type, payload (padded to the minimum).
pub fn frame(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity((ETH_HLEN + payload.len()).max(FRAME_MIN));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < FRAME_MIN {
        f.resize(FRAME_MIN, 0);
    }
    f
}

/// The internet checksum of `data` with `sum` carried in.
pub(super) fn checksum(sum: u32, data: &[u8]) -> u16 {
    !fold64(partial(u64::from(sum), data))
}

/// The one's complement sum of `data` as 16-bit big-endian words
/// (a last odd byte is padded with zero), added to `acc`: 4-byte words
/// summed into 64 bits, carries folded once at the end (`fold64`) —
/// the same sum as word by word, a few times faster (the bytes of a
/// tap's every frame go through it).
fn partial(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pair = rest.chunks(2);
    for c in &mut pair {
        acc += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

/// Folds a 64-bit one's complement sum to 16 bits (end-around carries).
fn fold64(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Fills in the checksums of an IPv4 packet the stack made: the stack
/// leaves them out (nothing it sends inside umlrun is checked), but a
/// host on the wire drops a packet without them. The header's, and
/// TCP's, UDP's or ICMP's of an unfragmented packet; a packet that is
/// not whole IPv4 is left as it is.
pub fn fill_checksums(p: &mut [u8]) {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || total < ihl || total > p.len() {
        return;
    }
    p[10..12].fill(0);
    let c = checksum(0, &p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff;
    if frag != 0 {
        return;
    }
    let proto = p[9];
    let (src, dst) = ([p[12], p[13], p[14], p[15]], [p[16], p[17], p[18], p[19]]);
    let l4 = &mut p[ihl..total];
    let len = l4.len();
    let pseudo = |proto: u8| -> u32 {
        let w = |b: [u8; 4]| {
            u32::from(u16::from_be_bytes([b[0], b[1]]))
                + u32::from(u16::from_be_bytes([b[2], b[3]]))
        };
        w(src) + w(dst) + u32::from(proto) + len as u32
    };
    match proto {
        6 if len >= 20 => {
            l4[16..18].fill(0);
            let c = checksum(pseudo(6), l4);
            l4[16..18].copy_from_slice(&c.to_be_bytes());
        }
        17 if len >= 8 => {
            l4[6..8].fill(0);
            let c = match checksum(pseudo(17), l4) {
                0 => 0xffff,
                c => c,
            };
            l4[6..8].copy_from_slice(&c.to_be_bytes());
        }
        1 if len >= 4 => {
            l4[2..4].fill(0);
            let c = checksum(0, l4);
            l4[2..4].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

/// Lowers the MSS option of a TCP SYN in IPv4 packet `p` to at most
/// `mss` (as Linux's TCPMSS --clamp-mss-to-pmtu does on a router): the
/// stack computes its MSS from its own large MTU (lo's), and an ethN
/// with a smaller one must neither offer nor use bigger segments
/// (`stack.rs` clamps SYNs both ways). Checksums are left as they are:
/// those going out are filled by `fill_checksums` (or the tap), and the
/// stack checks none on what comes in (packet sockets see the frame as
/// it came). Anything that is not a whole TCP SYN with a well-formed MSS
/// option is left as it is. True if it changed the packet.
pub fn clamp_mss(p: &mut [u8], mss: u16) -> bool {
    if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
        return false;
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || total > p.len() || u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 {
        return false;
    }
    let Some(tcp) = p.get_mut(ihl..total) else {
        return false;
    };
    if tcp.len() < 20 || tcp[13] & 0x02 == 0 {
        return false;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    let Some(opts) = tcp.get_mut(20..doff) else {
        return false;
    };
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return false,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    return false;
                }
                if kind == 2 && len == 4 {
                    let have = u16::from_be_bytes([opts[i + 2], opts[i + 3]]);
                    if have <= mss {
                        return false;
                    }
                    opts[i + 2..i + 4].copy_from_slice(&mss.to_be_bytes());
                    return true;
                }
                i += len;
            }
        }
    }
    false
}

/// An ARP packet for Ethernet and IPv4: operation 1 (request) or 2.
fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

impl EtherLink {
    pub fn new(mac: [u8; 6]) -> EtherLink {
        EtherLink {
            mac,
            cache: Vec::new(),
            pending: Vec::new(),
            asked: Vec::new(),
            out: VecDeque::new(),
            offload: false,
            dropped: 0,
            malformed: 0,
        }
    }

    /// A whole frame a packet socket made, to write as it is; false if
    /// the queue is full.
    pub fn send_frame(&mut self, f: Vec<u8>) -> bool {
        self.push_out(f)
    }

    /// Queues a frame to write; false (and counted) if the queue is full.
    fn push_out(&mut self, f: Vec<u8>) -> bool {
        self.queue(OutFrame::whole(f))
    }

    fn queue(&mut self, f: OutFrame) -> bool {
        if self.out.len() >= OUT_MAX {
            self.dropped += 1;
            return false;
        }
        self.out.push_back(f);
        true
    }

    /// Frames IPv4 packet `p` for `mac` and queues it with its checksums
    /// filled, or, on a link that offloads them, a TCP segment with its
    /// checksum left to the device, joined to the flow's run queued last
    /// if it continues it (`offload.rs`).
    fn push_ip(&mut self, mac: [u8; 6], mut p: Vec<u8>) -> bool {
        if self.offload && offload::tcp_partial(&mut p) {
            if let Some(last) = self.out.back_mut() {
                if last.append(mac, &p) {
                    return true;
                }
            }
            let f = frame(mac, self.mac, ETH_P_IP, &p);
            return self.queue(OutFrame::tcp(f));
        }
        fill_checksums(&mut p);
        let f = frame(mac, self.mac, ETH_P_IP, &p);
        self.push_out(f)
    }

    fn lookup(&self, ip: Ipv4Addr, now: Instant) -> Option<[u8; 6]> {
        self.cache
            .iter()
            .find(|c| c.0 == ip && now.duration_since(c.2) < CACHE_FOR)
            .map(|c| c.1)
    }

    fn learn(&mut self, ip: Ipv4Addr, mac: [u8; 6], now: Instant) {
        if let Some(c) = self.cache.iter_mut().find(|c| c.0 == ip) {
            c.1 = mac;
            c.2 = now;
            return;
        }
        if self.cache.len() >= CACHE_MAX {
            if let Some(i) = (0..self.cache.len()).min_by_key(|&i| self.cache[i].2) {
                self.cache.remove(i);
            }
        }
        self.cache.push((ip, mac, now));
    }

    /// Sends IPv4 `packet` to `next_hop` (`broadcast`: to every station)
    /// from `me`: framed at once if the neighbour is known, else held
    /// while ARP asks for it. False if it was dropped.
    pub fn send_ip(
        &mut self,
        packet: Vec<u8>,
        next_hop: Ipv4Addr,
        broadcast: bool,
        me: Option<Ipv4Addr>,
        now: Instant,
    ) -> bool {
        self.expire(now, me);
        if broadcast {
            return self.push_ip(BROADCAST, packet);
        }
        if let Some(mac) = self.lookup(next_hop, now) {
            return self.push_ip(mac, packet);
        }
        if self.pending.len() >= PENDING_MAX {
            self.dropped += 1;
            return false;
        }
        self.pending.push((next_hop, packet, now));
        self.request(next_hop, me, now);
        true
    }

    /// Broadcasts a request for `ip`, at most once per `REQUEST_EVERY`.
    fn request(&mut self, ip: Ipv4Addr, me: Option<Ipv4Addr>, now: Instant) {
        self.asked
            .retain(|a| now.duration_since(a.1) < REQUEST_EVERY);
        if self.asked.iter().any(|a| a.0 == ip) || self.asked.len() >= PENDING_MAX {
            return;
        }
        self.asked.push((ip, now));
        let spa = me.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let p = arp(1, self.mac, spa, [0; 6], ip);
        let f = frame(BROADCAST, self.mac, ETH_P_ARP, &p);
        self.push_out(f);
    }

    /// Drops the packets that waited too long for their neighbour, and
    /// asks again (once a second) for those still waiting, as Linux
    /// probes an unresolved neighbour a few times.
    pub fn expire(&mut self, now: Instant, me: Option<Ipv4Addr>) {
        let before = self.pending.len();
        self.pending
            .retain(|p| now.duration_since(p.2) < PENDING_FOR);
        self.dropped += (before - self.pending.len()) as u64;
        let mut want: Vec<Ipv4Addr> = self.pending.iter().map(|p| p.0).collect();
        want.dedup();
        for ip in want {
            self.request(ip, me, now);
        }
    }

    /// Is a packet waiting for a neighbour (the caller polls again)?
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A frame read from the device, with this interface's address `me`.
    pub fn receive(&mut self, f: &[u8], me: Option<Ipv4Addr>, now: Instant) -> Rx {
        if f.len() < ETH_HLEN {
            self.malformed += 1;
            return Rx::Malformed;
        }
        let dst: [u8; 6] = f[0..6].try_into().unwrap_or([0; 6]);
        let ty = u16::from_be_bytes([f[12], f[13]]);
        let payload = &f[ETH_HLEN..];
        let for_us = dst == self.mac || dst == BROADCAST;
        match ty {
            ETH_P_ARP => self.receive_arp(payload, me, now),
            ETH_P_IP if !for_us => Rx::Ignored,
            ETH_P_IP => {
                // The IP header's length, without the frame's padding.
                if payload.len() < 20 || payload[0] >> 4 != 4 {
                    self.malformed += 1;
                    return Rx::Malformed;
                }
                let total = usize::from(u16::from_be_bytes([payload[2], payload[3]]));
                if total < 20 || total > payload.len() {
                    self.malformed += 1;
                    return Rx::Malformed;
                }
                Rx::Ip(payload[..total].to_vec())
            }
            _ => Rx::Ignored,
        }
    }

    fn receive_arp(&mut self, p: &[u8], me: Option<Ipv4Addr>, now: Instant) -> Rx {
        let Some(r) = p.get(..28) else {
            self.malformed += 1;
            return Rx::Malformed;
        };
        if r[0..6] != [0, 1, 8, 0, 6, 4] {
            self.malformed += 1;
            return Rx::Malformed;
        }
        let op = u16::from_be_bytes([r[6], r[7]]);
        let sha: [u8; 6] = r[8..14].try_into().unwrap_or([0; 6]);
        let spa = Ipv4Addr::new(r[14], r[15], r[16], r[17]);
        let tpa = Ipv4Addr::new(r[24], r[25], r[26], r[27]);
        let to_me = me.is_some_and(|m| m == tpa);
        // RFC 826's merge: refresh a known sender; learn one that asks
        // for us or answers us.
        let known = self.cache.iter().any(|c| c.0 == spa);
        if sha != BROADCAST && !spa.is_unspecified() && (known || to_me) {
            self.learn(spa, sha, now);
            self.flush(spa, sha);
        }
        if op == 1 && to_me {
            if let Some(m) = me {
                let reply = arp(2, self.mac, m, sha, spa);
                let f = frame(sha, self.mac, ETH_P_ARP, &reply);
                self.push_out(f);
            }
        }
        Rx::Arp
    }

    /// Sends the packets that waited for `ip`, now at `mac`.
    fn flush(&mut self, ip: Ipv4Addr, mac: [u8; 6]) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].0 == ip {
                let (_, p, _) = self.pending.remove(i);
                self.push_ip(mac, p);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 9];

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn ipv4(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p
    }

    /// On a link that offloads, a flow's segments queued together (here
    /// after waiting for ARP) leave as one frame for the device to cut,
    /// TCP's checksum left to it; without offloads each is its own whole
    /// frame.
    #[test]
    fn tcp_segments_join_on_a_link_that_offloads() {
        let tcp = |seq: u32, n: usize| {
            let mut p = ipv4(40 + n);
            p[9] = 6;
            p[12..20].copy_from_slice(&[10, 9, 0, 2, 10, 9, 0, 1]);
            p[24..28].copy_from_slice(&seq.to_be_bytes());
            p[32] = 5 << 4;
            p[33] = 0x10;
            p
        };
        let now = Instant::now();
        let me = Some(ip("10.9.0.2"));
        for offload in [false, true] {
            let mut l = EtherLink::new(ME);
            l.offload = offload;
            for i in 0..3 {
                assert!(l.send_ip(tcp(1000 + i * 1000, 1000), ip("10.9.0.1"), false, me, now));
            }
            l.out.clear(); // the ARP request
            let mut reply = frame(
                ME,
                PEER,
                ETH_P_ARP,
                &arp(2, PEER, ip("10.9.0.1"), ME, ip("10.9.0.2")),
            );
            reply.truncate(ETH_HLEN + 28);
            assert_eq!(l.receive(&reply, me, now), Rx::Arp);
            let out: Vec<OutFrame> = l.out.drain(..).collect();
            if offload {
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].bytes.len(), ETH_HLEN + 40 + 3000);
                assert_eq!(out[0].vnet_header()[1], 1, "GSO TCPv4");
            } else {
                assert_eq!(out.len(), 3);
                for f in &out {
                    assert_eq!(f.vnet_header(), [0; 10]);
                    let p = &f.bytes[ETH_HLEN..];
                    let pseudo = 0x0a09 + 0x0002 + 0x0a09 + 0x0001 + 6 + 1020;
                    assert_eq!(checksum(pseudo, &p[20..]), 0, "TCP's checksum filled");
                }
            }
        }
    }

    #[test]
    fn a_packet_waits_for_arp_then_goes_to_the_answer() {
        let now = Instant::now();
        let mut l = EtherLink::new(ME);
        let me = Some(ip("10.9.0.2"));
        assert!(l.send_ip(ipv4(40), ip("10.9.0.1"), false, me, now));
        assert!(l.waiting());
        // One request, broadcast, asking for 10.9.0.1 from 10.9.0.2.
        let req = l.out.pop_front().unwrap().bytes;
        assert_eq!(req.len(), 60);
        assert_eq!(req[0..6], BROADCAST);
        assert_eq!(req[12..14], [8, 6]);
        assert_eq!(req[ETH_HLEN + 14..ETH_HLEN + 18], [10, 9, 0, 2]);
        assert_eq!(req[ETH_HLEN + 24..ETH_HLEN + 28], [10, 9, 0, 1]);
        // A second packet does not ask again within the second.
        assert!(l.send_ip(ipv4(40), ip("10.9.0.1"), false, me, now));
        assert!(l.out.is_empty());
        // The answer: both packets go, to the peer's MAC.
        let reply = frame(
            ME,
            PEER,
            ETH_P_ARP,
            &arp(2, PEER, ip("10.9.0.1"), ME, ip("10.9.0.2")),
        );
        assert_eq!(l.receive(&reply, me, now), Rx::Arp);
        assert_eq!(l.out.len(), 2);
        let f = l.out.pop_front().unwrap().bytes;
        assert_eq!(
            (f[0..6].to_vec(), f[6..12].to_vec()),
            (PEER.to_vec(), ME.to_vec())
        );
        assert_eq!(f[12..14], [8, 0]);
        assert!(!l.waiting());
        l.out.clear();
        // Known now: straight out.
        assert!(l.send_ip(ipv4(40), ip("10.9.0.1"), false, me, now));
        assert_eq!(l.out.len(), 1);
    }

    #[test]
    fn requests_for_us_are_answered_and_others_ignored() {
        let now = Instant::now();
        let mut l = EtherLink::new(ME);
        let me = Some(ip("10.9.0.2"));
        let ask = |t: &str| {
            frame(
                BROADCAST,
                PEER,
                ETH_P_ARP,
                &arp(1, PEER, ip("10.9.0.1"), [0; 6], ip(t)),
            )
        };
        assert_eq!(l.receive(&ask("10.9.0.7"), me, now), Rx::Arp);
        assert!(l.out.is_empty(), "not ours: no answer, nothing learnt");
        assert_eq!(l.receive(&ask("10.9.0.2"), me, now), Rx::Arp);
        let r = l.out.pop_front().unwrap().bytes;
        assert_eq!(r[0..6], PEER);
        assert_eq!(r[ETH_HLEN + 6..ETH_HLEN + 8], [0, 2], "a reply");
        assert_eq!(r[ETH_HLEN + 8..ETH_HLEN + 14], ME);
        // The asker was learnt.
        assert!(l.send_ip(ipv4(20), ip("10.9.0.1"), false, me, now));
        assert_eq!(l.out.pop_front().unwrap().bytes[0..6], PEER);
        // Without an address nothing is answered.
        assert_eq!(l.receive(&ask("10.9.0.2"), None, now), Rx::Arp);
        assert!(l.out.is_empty());
    }

    /// The checksums come out as a receiver checks them: summing a
    /// checked part again gives zero.
    /// The word-at-a-time sum equals RFC 1071's 16 bits at a time, for
    /// every length (odd ones too) and carried-in sum.
    #[test]
    fn fast_sum_equals_the_plain_one() {
        fn plain(mut sum: u32, data: &[u8]) -> u16 {
            for c in data.chunks(2) {
                sum = sum.wrapping_add(u32::from(u16::from_be_bytes([
                    c[0],
                    *c.get(1).unwrap_or(&0),
                ])));
            }
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for len in (0..70).chain([1499, 1500, 1501, 2999, 3000]) {
            for sum in [0, 1, 0xffff, 0x3_fffc] {
                assert_eq!(
                    checksum(sum, &data[..len]),
                    plain(sum, &data[..len]),
                    "{len} {sum}"
                );
            }
        }
        let ones = vec![0xffu8; 65535];
        assert_eq!(checksum(0x3_fffc, &ones), plain(0x3_fffc, &ones));
    }

    #[test]
    fn checksums_are_filled() {
        let mut p = ipv4(28);
        p[9] = 17;
        p[12..20].copy_from_slice(&[10, 9, 0, 2, 10, 9, 0, 1]);
        p[24..26].copy_from_slice(&8u16.to_be_bytes());
        fill_checksums(&mut p);
        assert_eq!(checksum(0, &p[..20]), 0, "the header");
        let pseudo = 0x0a09 + 0x0002 + 0x0a09 + 0x0001 + 17 + 8;
        assert_eq!(checksum(pseudo, &p[20..]), 0, "UDP with its pseudo header");
        let mut icmp = ipv4(28);
        icmp[9] = 1;
        icmp[20] = 8;
        fill_checksums(&mut icmp);
        assert_eq!(checksum(0, &icmp[20..]), 0);
        fill_checksums(&mut [0x45, 0, 0, 99]);
    }

    #[test]
    fn ip_frames_are_sorted_and_trimmed() {
        let now = Instant::now();
        let mut l = EtherLink::new(ME);
        let me = Some(ip("10.9.0.2"));
        let f = frame(ME, PEER, ETH_P_IP, &ipv4(28));
        assert_eq!(f.len(), 60, "padded on the wire");
        assert_eq!(l.receive(&f, me, now), Rx::Ip(ipv4(28)), "the padding goes");
        let other = frame([2, 0, 0, 0, 0, 1], PEER, ETH_P_IP, &ipv4(28));
        assert_eq!(l.receive(&other, me, now), Rx::Ignored);
        let v6 = frame(ME, PEER, 0x86dd, &[0; 40]);
        assert_eq!(l.receive(&v6, me, now), Rx::Ignored);
        let mut bad = frame(ME, PEER, ETH_P_IP, &ipv4(28));
        bad[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&999u16.to_be_bytes());
        assert_eq!(l.receive(&bad, me, now), Rx::Malformed);
        assert_eq!(l.receive(&[0; 10], me, now), Rx::Malformed);
        assert_eq!(l.malformed, 2);
    }

    #[test]
    fn unanswered_packets_are_dropped_and_bounded() {
        let now = Instant::now();
        let mut l = EtherLink::new(ME);
        for i in 0..PENDING_MAX + 5 {
            let _ = l.send_ip(ipv4(20), Ipv4Addr::new(10, 9, 1, i as u8), false, None, now);
        }
        assert_eq!(l.dropped, 5);
        l.expire(now + PENDING_FOR, None);
        assert!(!l.waiting());
        assert_eq!(l.dropped, 5 + PENDING_MAX as u64);
    }

    proptest::proptest! {
        /// Whatever the bytes, a frame is sorted without a panic.
        #[test]
        fn any_frame_is_taken(f in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let mut l = EtherLink::new(ME);
            let _ = l.receive(&f, Some(Ipv4Addr::new(10, 9, 0, 2)), Instant::now());
            let mut p = f.clone();
            fill_checksums(&mut p);
            let mut p = f.clone();
            let _ = clamp_mss(&mut p, 1460);
            // As a TCP SYN with options, so the option walk is reached.
            let mut p = ipv4(20);
            p[9] = 6;
            p.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x02, 0, 0, 0, 0, 0, 0]);
            p.extend_from_slice(&f);
            let total = p.len().min(0xffff) as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            let _ = clamp_mss(&mut p, 1460);
        }
    }

    #[test]
    fn syn_mss_is_clamped_to_the_link() {
        // A SYN from a stack with a 64 KiB MTU: NOP, NOP, MSS 65495,
        // window scale.
        let tcp_syn = |mss: u16, flags: u8| {
            let mut p = ipv4(20 + 32);
            p[9] = 6;
            let t = &mut p[20..];
            t[12] = 8 << 4;
            t[13] = flags;
            t[20..32].copy_from_slice(&[1, 1, 2, 4, 0, 0, 3, 3, 7, 0, 0, 0]);
            t[24..26].copy_from_slice(&mss.to_be_bytes());
            p
        };
        let mss_of = |p: &[u8]| u16::from_be_bytes([p[44], p[45]]);
        let mut p = tcp_syn(65495, 0x02);
        assert!(clamp_mss(&mut p, 1460));
        assert_eq!(mss_of(&p), 1460);
        let mut p = tcp_syn(65495, 0x12);
        assert!(clamp_mss(&mut p, 1460));
        assert_eq!(mss_of(&p), 1460);
        // Smaller already, or not a SYN: left alone.
        let mut p = tcp_syn(536, 0x02);
        assert!(!clamp_mss(&mut p, 1460));
        assert_eq!(mss_of(&p), 536);
        let mut p = tcp_syn(65495, 0x10);
        assert!(!clamp_mss(&mut p, 1460));
        // An option running past the header: left alone.
        let mut p = tcp_syn(65495, 0x02);
        p[20 + 22] = 2;
        p[20 + 23] = 40;
        assert!(!clamp_mss(&mut p, 1460));
    }
}
