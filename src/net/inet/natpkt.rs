//! Raw IPv4 packets the user-mode NAT reads and writes itself, outside
//! smoltcp's sockets: the guest's UDP datagrams leaving on eth0 (each
//! goes out through a host UDP socket), the datagrams the NAT hands
//! back to the guest, and the NAT's answers to pings of its addresses. Every parser takes any bytes: a short, truncated
//! or fragmented packet is `None`, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::errno::Errno;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr};

/// A UDP datagram the guest sent out on eth0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpOut {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// The IPv4 header of `p` if it is a whole, unfragmented packet:
/// (header length, total length, protocol, source, destination).
fn ipv4_header(p: &[u8]) -> Option<(usize, usize, u8, Ipv4Addr, Ipv4Addr)> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || total < ihl || total > p.len() {
        return None;
    }
    // More fragments, or a fragment offset: not a whole datagram.
    let frag = u16::from_be_bytes([p[6], p[7]]);
    if frag & 0x3fff != 0 {
        return None;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Some((ihl, total, p[9], src, dst))
}

/// A UDP datagram in a raw IPv4 packet.
pub fn udp_of(p: &[u8]) -> Option<UdpOut> {
    let (ihl, total, proto, src, dst) = ipv4_header(p)?;
    if proto != 17 {
        return None;
    }
    let u = p.get(ihl..total)?;
    if u.len() < 8 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([u[4], u[5]]));
    let payload = u.get(8..len)?;
    Some(UdpOut {
        src: SocketAddrV4::new(src, u16::from_be_bytes([u[0], u[1]])),
        dst: SocketAddrV4::new(dst, u16::from_be_bytes([u[2], u[3]])),
        payload: payload.to_vec(),
    })
}

/// An IPv4 packet carrying a UDP datagram from `src` to `dst`, with its
/// checksums. None if the payload does not fit one IPv4 packet.
pub fn udp_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Option<Vec<u8>> {
    let udp = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
    };
    let udp_len = udp.header_len().checked_add(payload.len())?;
    let ip = Ipv4Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit: 64,
    };
    let total = ip.buffer_len().checked_add(udp_len)?;
    if total > usize::from(u16::MAX) {
        return None;
    }
    let caps = ChecksumCapabilities::default();
    let mut buf = vec![0u8; total];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut pkt, &caps);
    let mut u = UdpPacket::new_unchecked(pkt.payload_mut());
    udp.emit(
        &mut u,
        &IpAddress::Ipv4(*src.ip()),
        &IpAddress::Ipv4(*dst.ip()),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &caps,
    );
    Some(buf)
}

/// The Internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum = sum.wrapping_add(u32::from(w));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet from `src` to `dst` around an ICMP `payload` (what a
/// raw ICMP socket reads), with its header checksum.
pub fn icmp_in_ipv4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Option<Vec<u8>> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmp,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let total = ip.buffer_len().checked_add(payload.len())?;
    if total > usize::from(u16::MAX) {
        return None;
    }
    let mut buf = vec![0u8; total];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut pkt, &ChecksumCapabilities::default());
    pkt.payload_mut().copy_from_slice(payload);
    Some(buf)
}

/// Is `p` an ICMP echo request (a ping)?
pub fn is_echo_request(p: &[u8]) -> bool {
    ipv4_header(p).is_some_and(|(ihl, total, proto, _, _)| {
        proto == 1 && p.get(ihl..total).is_some_and(|i| i.len() >= 8 && i[0] == 8)
    })
}

/// The echo reply to `p` if it is an ICMP echo request for one of
/// `answering`'s addresses (the NAT's own): same identifier, sequence
/// and data, from the address pinged, with its checksums.
pub fn echo_reply(p: &[u8], answering: &[Ipv4Addr]) -> Option<Vec<u8>> {
    let (ihl, total, proto, src, dst) = ipv4_header(p)?;
    if proto != 1 || !answering.contains(&dst) {
        return None;
    }
    let icmp = p.get(ihl..total)?;
    if icmp.len() < 8 || icmp[0] != 8 || icmp[1] != 0 {
        return None;
    }
    let ip = Ipv4Repr {
        src_addr: dst,
        dst_addr: src,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + icmp.len()];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut pkt, &ChecksumCapabilities::default());
    let body = pkt.payload_mut();
    body.copy_from_slice(icmp);
    body[0] = 0;
    body[2..4].fill(0);
    let c = checksum(body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    Some(buf)
}

/// An ICMP error about a UDP datagram, as Linux reports it to the
/// sender's socket: (the datagram's source, its destination, the errno).
/// Only the "hard" errors (icmp_err_convert's fatal ones: port and
/// protocol unreachable, administratively prohibited), which a connected
/// socket hears without IP_RECVERR. IPv4 and IPv6 (no extension headers).
pub fn icmp_udp_error(p: &[u8]) -> Option<(SocketAddr, SocketAddr, Errno)> {
    let (icmp, v6) = match p.first()? >> 4 {
        4 => {
            let (ihl, total, proto, _, _) = ipv4_header(p)?;
            if proto != 1 {
                return None;
            }
            (p.get(ihl..total)?, false)
        }
        6 if p.len() >= 40 && p[6] == 58 => (&p[40..], true),
        _ => return None,
    };
    let (ty, code) = (*icmp.first()?, *icmp.get(1)?);
    let e = match (v6, ty, code) {
        (false, 3, 2) => Errno::ENOPROTOOPT,
        (false, 3, 3 | 9 | 10) => Errno::ECONNREFUSED,
        (false, 3, 13) => Errno::EHOSTUNREACH,
        (true, 1, 4) => Errno::ECONNREFUSED,
        (true, 1, 1) => Errno::EACCES,
        _ => return None,
    };
    let inner = icmp.get(8..)?;
    let (src, dst, udp): (IpAddr, IpAddr, &[u8]) = if v6 {
        if inner.len() < 40 || inner[0] >> 4 != 6 || inner[6] != 17 {
            return None;
        }
        let a: [u8; 16] = inner[8..24].try_into().ok()?;
        let b: [u8; 16] = inner[24..40].try_into().ok()?;
        (
            Ipv6Addr::from(a).into(),
            Ipv6Addr::from(b).into(),
            &inner[40..],
        )
    } else {
        if inner.len() < 20 || inner[0] >> 4 != 4 || inner[9] != 17 {
            return None;
        }
        let ihl = usize::from(inner[0] & 0xf) * 4;
        let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
        let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
        (src.into(), dst.into(), inner.get(ihl..)?)
    };
    let ports = udp.get(..4)?;
    Some((
        SocketAddr::new(src, u16::from_be_bytes([ports[0], ports[1]])),
        SocketAddr::new(dst, u16::from_be_bytes([ports[2], ports[3]])),
        e,
    ))
}

/// The NAT's answer to an ARP request (Ethernet/IPv4, the 28-byte ARP
/// payload) for one of `addrs`: the reply payload, from `mac`.
pub fn arp_reply(req: &[u8], addrs: &[Ipv4Addr], mac: [u8; 6]) -> Option<Vec<u8>> {
    let r = req.get(..28)?;
    // Ethernet, IPv4, 6- and 4-byte addresses, a request.
    if r[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] {
        return None;
    }
    let tpa = Ipv4Addr::new(r[24], r[25], r[26], r[27]);
    if !addrs.contains(&tpa) {
        return None;
    }
    let mut out = Vec::with_capacity(28);
    out.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&tpa.octets());
    out.extend_from_slice(&r[8..14]);
    out.extend_from_slice(&r[14..18]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_datagram_parses_back_with_good_checksums() {
        let src: SocketAddrV4 = "10.0.2.3:53".parse().unwrap();
        let dst: SocketAddrV4 = "10.0.2.15:40000".parse().unwrap();
        let p = udp_packet(src, dst, b"answer").unwrap();
        let got = udp_of(&p).unwrap();
        assert_eq!(got.src, src);
        assert_eq!(got.dst, dst);
        assert_eq!(got.payload, b"answer");
        // smoltcp checks both checksums when asked to.
        let pkt = Ipv4Packet::new_checked(&p[..]).unwrap();
        let caps = ChecksumCapabilities::default();
        let ip = Ipv4Repr::parse(&pkt, &caps).unwrap();
        let u = UdpPacket::new_checked(pkt.payload()).unwrap();
        UdpRepr::parse(
            &u,
            &IpAddress::Ipv4(ip.src_addr),
            &IpAddress::Ipv4(ip.dst_addr),
            &caps,
        )
        .unwrap();
        assert!(udp_packet(src, dst, &vec![0; 65535]).is_none());
    }

    #[test]
    fn fragments_and_truncations_are_not_datagrams() {
        let src: SocketAddrV4 = "10.0.2.15:1000".parse().unwrap();
        let dst: SocketAddrV4 = "10.0.2.2:2000".parse().unwrap();
        let mut p = udp_packet(src, dst, b"xyz").unwrap();
        assert!(udp_of(&p[..p.len() - 1]).is_none());
        p[6] = 0x20; // more fragments
        assert!(udp_of(&p).is_none());
        p[6] = 0;
        p[9] = 6; // TCP
        assert!(udp_of(&p).is_none());
    }

    #[test]
    fn pings_of_the_nat_are_answered() {
        let gw = Ipv4Addr::new(10, 0, 2, 2);
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7, b'h', b'i', b'!'];
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 2, 15),
            dst_addr: gw,
            next_header: IpProtocol::Icmp,
            payload_len: icmp.len(),
            hop_limit: 64,
        };
        let mut req = vec![0u8; 20 + icmp.len()];
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut req[..]),
            &ChecksumCapabilities::default(),
        );
        req[20..].copy_from_slice(&icmp);
        let r = echo_reply(&req, &[gw]).unwrap();
        assert_eq!(&r[12..16], &[10, 0, 2, 2]);
        assert_eq!(&r[16..20], &[10, 0, 2, 15]);
        assert_eq!(r[20], 0);
        assert_eq!(&r[24..], &icmp[4..]);
        assert_eq!(checksum(&r[20..]), 0, "a good checksum sums to zero");
        assert_eq!(checksum(&r[..20]), 0);
        assert!(echo_reply(&req, &[Ipv4Addr::new(10, 0, 2, 3)]).is_none());
        assert!(echo_reply(&req[..27], &[gw]).is_none());
        assert!(is_echo_request(&req));
        assert!(!is_echo_request(&r));
    }

    proptest::proptest! {
        /// Whatever the bytes, the parsers answer without panicking.
        #[test]
        fn udp_parser_takes_any_bytes(p in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = udp_of(&p);
            let _ = echo_reply(&p, &[Ipv4Addr::new(10, 0, 2, 2)]);
            let _ = is_echo_request(&p);
        }
    }

    #[test]
    fn arp_requests_for_the_nat_are_answered() {
        let gw = Ipv4Addr::new(10, 0, 2, 2);
        let mut req = vec![0, 1, 8, 0, 6, 4, 0, 1];
        req.extend([1, 2, 3, 4, 5, 6, 10, 0, 2, 15]);
        req.extend([0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
        let mac = [0x52, 0x55, 10, 0, 2, 2];
        let r = arp_reply(&req, &[gw], mac).unwrap();
        assert_eq!(r[6..8], [0, 2]);
        assert_eq!(r[8..14], mac);
        assert_eq!(r[14..18], [10, 0, 2, 2]);
        assert_eq!(r[18..24], [1, 2, 3, 4, 5, 6]);
        assert_eq!(r[24..28], [10, 0, 2, 15]);
        req[27] = 99;
        assert_eq!(arp_reply(&req, &[gw], mac), None);
        assert_eq!(arp_reply(&req[..20], &[gw], mac), None);
    }

    /// What smoltcp sends for a datagram to a closed port on lo.
    #[test]
    fn port_unreachable_names_the_datagram() {
        let src = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000);
        let dst = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let orig = udp_packet(src, dst, b"x").unwrap();
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&orig);
        let p = icmp_in_ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &icmp).unwrap();
        assert_eq!(
            icmp_udp_error(&p),
            Some((src.into(), dst.into(), Errno::ECONNREFUSED))
        );
        // Host unreachable is not a hard error: not reported.
        let mut soft = icmp.clone();
        soft[1] = 1;
        let p = icmp_in_ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &soft).unwrap();
        assert_eq!(icmp_udp_error(&p), None);
        // Cut short: nothing.
        let p = icmp_in_ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &icmp[..20]).unwrap();
        assert_eq!(icmp_udp_error(&p), None);
    }

    proptest::proptest! {
        #[test]
        fn icmp_errors_take_any_bytes(p in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = icmp_udp_error(&p);
        }
    }
}
