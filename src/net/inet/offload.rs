//! A tap's offloads (IFF_VNET_HDR, as QEMU and passt use them): each
//! frame written to the device carries a `virtio_net_hdr` saying what
//! the host's kernel finishes for us. A TCP frame's checksum is left to
//! it (NEEDS_CSUM: the check field holds the pseudo header's sum), and
//! consecutive segments of one flow that the stack sent in one run are
//! written as one frame the kernel cuts back into segments (GSO, TCPV4)
//! — or, delivered locally, never cuts: one write and no checksum pass
//! per up to 64 KiB instead of a write and a checksum per 1460 bytes.
//!
//! Pure: the frames and their headers; `ether.rs` queues them and
//! `kernel/nettap.rs` writes them.

use super::ether::ETH_HLEN;

/// `struct virtio_net_hdr` (without num_buffers): what TUNSETVNETHDRSZ
/// is by default.
pub const VNET_HDR_LEN: usize = 10;
const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
/// The most one frame of several segments may hold (its IPv4 total
/// length; 64 KiB less room, as Linux's GSO_MAX_SIZE is 65536).
const GSO_MAX: usize = 65_000;
/// TCP's flags that may sit in the middle of a run: ACK alone (PSH may
/// end one, on its last segment).
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// A frame queued for a link's device, and what the device finishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutFrame {
    pub bytes: Vec<u8>,
    /// None: a whole frame, checksums filled.
    pub tcp: Option<TcpRun>,
}

/// An IPv4 TCP frame whose checksum the device fills: one segment, or
/// a run of them the device cuts at `mss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRun {
    /// Ethernet, IPv4 and TCP headers.
    hdr_len: u16,
    /// Each segment's payload (the first's); only the last may be
    /// shorter.
    mss: u16,
    segs: u16,
    /// The sequence number after the run's last byte.
    next_seq: u32,
}

impl OutFrame {
    pub fn whole(bytes: Vec<u8>) -> OutFrame {
        OutFrame { bytes, tcp: None }
    }

    /// A frame of `frame_tcp` (an IPv4 TCP packet `tcp_partial` prepared,
    /// framed): its checksum is the device's.
    pub fn tcp(bytes: Vec<u8>) -> OutFrame {
        let run = tcp_fields(&bytes[ETH_HLEN.min(bytes.len())..]).map(|t| TcpRun {
            hdr_len: (ETH_HLEN + t.hdr) as u16,
            mss: t.payload as u16,
            segs: 1,
            next_seq: t.seq.wrapping_add(t.payload as u32),
        });
        OutFrame { bytes, tcp: run }
    }

    /// The virtio_net_hdr to write before the frame.
    pub fn vnet_header(&self) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        let Some(t) = self.tcp else {
            return h;
        };
        let ihl = usize::from(self.bytes[ETH_HLEN] & 0xf) * 4;
        h[0] = F_NEEDS_CSUM;
        h[1] = if t.segs > 1 { GSO_TCPV4 } else { GSO_NONE };
        h[2..4].copy_from_slice(&t.hdr_len.to_le_bytes());
        if t.segs > 1 {
            h[4..6].copy_from_slice(&t.mss.to_le_bytes());
        }
        h[6..8].copy_from_slice(&((ETH_HLEN + ihl) as u16).to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        h
    }

    /// Appends IPv4 TCP packet `p` (prepared by `tcp_partial`) to this
    /// run if it continues it: the same flow, headers equal but for the
    /// sequence number (the next one), the IP id and length and PSH; the
    /// run's segments so far all full; `p` no bigger than they; the
    /// whole within GSO's limit. False (nothing changed) otherwise.
    pub fn append(&mut self, mac: [u8; 6], p: &[u8]) -> bool {
        let Some(mut run) = self.tcp else {
            return false;
        };
        let Some(t) = tcp_fields(p) else {
            return false;
        };
        let hdr = usize::from(run.hdr_len);
        let f = &self.bytes;
        let have = f.len() - hdr;
        if f[0..6] != mac
            || t.payload == 0
            || t.payload > usize::from(run.mss)
            || have != usize::from(run.mss) * usize::from(run.segs)
            || ETH_HLEN + t.hdr != hdr
            || t.seq != run.next_seq
            || f.len() - ETH_HLEN + t.payload > GSO_MAX
            || run.segs == u16::MAX
        {
            return false;
        }
        let ip = &f[ETH_HLEN..hdr];
        let ihl = usize::from(ip[0] & 0xf) * 4;
        // IP: version, TOS, flags and fragment, TTL, protocol, addresses,
        // options.
        let same_ip = ip[0..2] == p[0..2] && ip[6..10] == p[6..10] && ip[12..ihl] == p[12..ihl];
        // TCP: ports, ack, offset, window, urgent pointer, options; the
        // run's last flags ACK alone, the new ones ACK or ACK|PSH.
        let (a, b) = (&ip[ihl..], &p[ihl..t.hdr]);
        let same_tcp = a[0..4] == b[0..4]
            && a[8..13] == b[8..13]
            && a[13] == ACK
            && (b[13] == ACK || b[13] == ACK | PSH)
            && a[14..16] == b[14..16]
            && a[18..] == b[18..];
        if !same_ip || !same_tcp {
            return false;
        }
        let flags = b[13];
        if run.segs == 1 {
            // Room for the whole run at once: no copy per append.
            self.bytes.reserve(ETH_HLEN + GSO_MAX - self.bytes.len());
        }
        self.bytes.extend_from_slice(&p[t.hdr..t.hdr + t.payload]);
        run.segs += 1;
        run.next_seq = t.seq.wrapping_add(t.payload as u32);
        self.tcp = Some(run);
        let ip = &mut self.bytes[ETH_HLEN..];
        let total = (ip.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[ihl + 13] = flags;
        tcp_partial(ip);
        true
    }
}

/// What `append` and `OutFrame::tcp` read of an IPv4 TCP packet.
struct TcpFields {
    /// IP and TCP headers.
    hdr: usize,
    payload: usize,
    seq: u32,
}

/// An unfragmented IPv4 TCP packet's fields (None: not one, or its
/// headers do not fit its length).
fn tcp_fields(p: &[u8]) -> Option<TcpFields> {
    if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 {
        return None;
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff;
    if ihl < 20 || frag != 0 || total > p.len() || total < ihl + 20 {
        return None;
    }
    let thl = usize::from(p[ihl + 12] >> 4) * 4;
    if thl < 20 || ihl + thl > total {
        return None;
    }
    let seq = u32::from_be_bytes([p[ihl + 4], p[ihl + 5], p[ihl + 6], p[ihl + 7]]);
    Some(TcpFields {
        hdr: ihl + thl,
        payload: total - ihl - thl,
        seq,
    })
}

/// Readies IPv4 TCP packet `p` for a device that finishes the checksum:
/// the IP header's checksum filled, TCP's check field set to the sum of
/// the pseudo header (addresses, protocol, TCP length) as NEEDS_CSUM
/// wants it. False (nothing changed) if `p` is not a whole unfragmented
/// IPv4 TCP packet.
pub fn tcp_partial(p: &mut [u8]) -> bool {
    let Some(t) = tcp_fields(p) else {
        return false;
    };
    let ihl = usize::from(p[0] & 0xf) * 4;
    p[10..12].fill(0);
    let c = super::ether::checksum(0, &p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp_len = (t.hdr - ihl + t.payload) as u32;
    let w = |i: usize| u32::from(u16::from_be_bytes([p[i], p[i + 1]]));
    let pseudo = w(12) + w(14) + w(16) + w(18) + 6 + tcp_len;
    let mut s = pseudo;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    p[ihl + 16..ihl + 18].copy_from_slice(&(s as u16).to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::super::ether::{checksum, fill_checksums, frame, ETH_P_IP};
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

    /// An IPv4 TCP segment 10.9.0.2:5004 -> 10.9.0.1:40000 with `n`
    /// payload bytes at sequence `seq`, flags `flags`.
    fn seg(seq: u32, n: usize, flags: u8) -> Vec<u8> {
        let total = 40 + n;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..20].copy_from_slice(&[10, 9, 0, 2, 10, 9, 0, 1]);
        p[20..22].copy_from_slice(&5004u16.to_be_bytes());
        p[22..24].copy_from_slice(&40000u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&77u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p[34..36].copy_from_slice(&1000u16.to_be_bytes());
        for (i, b) in p[40..].iter_mut().enumerate() {
            *b = (seq as usize + i) as u8;
        }
        p
    }

    fn start(p: &[u8]) -> OutFrame {
        let mut p = p.to_vec();
        assert!(tcp_partial(&mut p));
        OutFrame::tcp(frame(MAC, [2, 0, 0, 0, 0, 1], ETH_P_IP, &p))
    }

    fn add(f: &mut OutFrame, p: &[u8]) -> bool {
        let mut p = p.to_vec();
        assert!(tcp_partial(&mut p));
        f.append(MAC, &p)
    }

    /// Finishing the checksum as the device does (the sum from
    /// csum_start, stored at csum_start + csum_offset) gives what
    /// fill_checksums computes for the whole packet.
    #[test]
    fn the_partial_sum_finishes_to_the_full_checksum() {
        for n in [0, 1, 7, 1460] {
            let p = seg(1000, n, ACK | PSH);
            let mut full = p.clone();
            fill_checksums(&mut full);
            let mut part = p.clone();
            assert!(tcp_partial(&mut part));
            assert_eq!(part[..20], full[..20], "IP header checksum filled");
            let c = checksum(0, &part[20..]);
            part[36..38].copy_from_slice(&c.to_be_bytes());
            assert_eq!(part, full, "payload {n}");
        }
    }

    #[test]
    fn consecutive_full_segments_become_one_frame_for_gso() {
        let mut f = start(&seg(1000, 1460, ACK));
        assert!(add(&mut f, &seg(2460, 1460, ACK)));
        assert!(add(&mut f, &seg(3920, 500, ACK | PSH)));
        // A short segment ended the run.
        assert!(!add(&mut f, &seg(4420, 1460, ACK)));
        assert_eq!(f.bytes.len(), 14 + 40 + 1460 * 2 + 500);
        let ip = &f.bytes[14..];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, ip.len());
        assert_eq!(checksum(0, &ip[..20]), 0, "the IP header checksum is right");
        assert_eq!(ip[33], ACK | PSH, "the last segment's flags");
        // The payload is the three segments', in order.
        let want: Vec<u8> = [seg(1000, 1460, 0), seg(2460, 1460, 0), seg(3920, 500, 0)]
            .iter()
            .flat_map(|s| s[40..].to_vec())
            .collect();
        assert_eq!(&ip[40..], &want[..]);
        let h = f.vnet_header();
        assert_eq!(h[0], F_NEEDS_CSUM);
        assert_eq!(h[1], GSO_TCPV4);
        assert_eq!(u16::from_le_bytes([h[2], h[3]]), 54, "header length");
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1460, "gso_size");
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 34, "csum_start");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]), 16, "csum_offset");
        // The check field is the pseudo header's sum for the whole length.
        let mut whole = f.bytes[14..].to_vec();
        fill_checksums(&mut whole);
        let mut done = f.bytes[14..].to_vec();
        let c = checksum(0, &done[20..]);
        done[36..38].copy_from_slice(&c.to_be_bytes());
        assert_eq!(done, whole);
    }

    #[test]
    fn what_does_not_continue_the_run_is_not_appended() {
        let f0 = start(&seg(1000, 1460, ACK));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a gap", seg(2461, 1460, ACK)),
            ("bigger than the first", seg(2460, 1461, ACK)),
            ("no payload", seg(2460, 0, ACK)),
            ("a FIN", seg(2460, 100, ACK | 1)),
            ("another ack", {
                let mut p = seg(2460, 100, ACK);
                p[28] = 9;
                p
            }),
            ("another window", {
                let mut p = seg(2460, 100, ACK);
                p[35] = 9;
                p
            }),
            ("another port", {
                let mut p = seg(2460, 100, ACK);
                p[21] = 9;
                p
            }),
            ("another address", {
                let mut p = seg(2460, 100, ACK);
                p[19] = 9;
                p
            }),
        ];
        for (why, p) in cases {
            let mut f = f0.clone();
            assert!(!add(&mut f, &p), "{why}");
            assert_eq!(f, f0, "{why}: unchanged");
        }
        // After a PSH nothing more joins.
        let mut f = start(&seg(1000, 1460, ACK | PSH));
        assert!(!add(&mut f, &seg(2460, 1460, ACK)));
        // Another next hop.
        let mut f = f0.clone();
        let mut p = seg(2460, 100, ACK);
        assert!(tcp_partial(&mut p));
        assert!(!f.append([2, 0, 0, 0, 0, 8], &p));
        // A single segment is checksummed by the device, not cut.
        let h = f0.vnet_header();
        assert_eq!((h[0], h[1], h[4], h[5]), (F_NEEDS_CSUM, GSO_NONE, 0, 0));
        assert_eq!(
            OutFrame::whole(vec![0; 60]).vnet_header(),
            [0; VNET_HDR_LEN]
        );
    }

    #[test]
    fn a_run_stops_at_the_gso_limit() {
        let mut f = start(&seg(0, 1000, ACK));
        let mut seq = 1000;
        while add(&mut f, &seg(seq, 1000, ACK)) {
            seq += 1000;
        }
        let total = f.bytes.len() - 14;
        assert!(total <= GSO_MAX && total + 1000 > GSO_MAX, "{total}");
    }

    /// Whatever the bytes, nothing panics and a run is never started
    /// from what is not a whole TCP packet.
    #[test]
    fn random_packets_do_not_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = start(&seg(1000, 1460, ACK));
        for _ in 0..20_000 {
            let len = (next() % 200) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len > 40 && next() % 2 == 0 {
                p[0] = 0x45;
                p[9] = 6;
            }
            let _ = tcp_partial(&mut p);
            let mut f = base.clone();
            let _ = f.append(MAC, &p);
            let g = OutFrame::tcp(p.clone());
            let _ = g.vnet_header();
        }
    }
}
