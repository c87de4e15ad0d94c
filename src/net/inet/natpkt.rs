//! Raw IPv4 packets the user-mode NAT reads and writes itself, outside
//! smoltcp's sockets: the guest's UDP datagrams leaving on eth0 (each
//! goes out through a host UDP socket), and the datagrams the NAT hands
//! back to the guest. Every parser takes any bytes: a short, truncated
//! or fragmented packet is `None`, never a panic.

use std::net::{Ipv4Addr, SocketAddrV4};

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

    proptest::proptest! {
        /// Whatever the bytes, the parser answers without panicking.
        #[test]
        fn udp_parser_takes_any_bytes(p in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = udp_of(&p);
        }
    }
}
