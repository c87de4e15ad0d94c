//! The user-mode NAT's DHCP server, as QEMU's slirp has one: whatever
//! the guest asks, it offers 10.0.2.15/24 with router 10.0.2.2 and DNS
//! 10.0.2.3 for a day. The guest reaches it by UDP to port 67 (broadcast
//! from a packet socket before it has an address, unicast to 10.0.2.2
//! when it renews); the answer is an IPv4 packet for eth0.
//!
//! Parsing and building use smoltcp's DHCP wire format; any bytes are
//! taken: what is not a DHCP request is no answer, never a panic.

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::wire::{DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr};

use super::natnet::NatNet;
use super::natpkt::{self, UdpOut};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// The lease: a day, as slirp gives.
pub const LEASE_SECS: u32 = 86_400;
const OPT_DNS: u8 = 6;
const OPT_BROADCAST: u8 = 28;

/// Is this guest datagram for the DHCP server (port 67 at the gateway
/// or broadcast)?
pub fn is_for_server(d: &UdpOut, net: &NatNet) -> bool {
    d.dst.port() == SERVER_PORT && (*d.dst.ip() == net.gateway || d.dst.ip().is_broadcast())
}

/// The server's answer to a datagram the guest sent it: an IPv4 packet
/// from 10.0.2.2:67 (broadcast unless the client has an address), or
/// None (not DHCP, or a message that wants no answer: release, decline).
pub fn answer(d: &UdpOut, net: &NatNet) -> Option<Vec<u8>> {
    if !is_for_server(d, net) {
        return None;
    }
    let pkt = DhcpPacket::new_checked(&d.payload[..]).ok()?;
    let req = DhcpRepr::parse(&pkt).ok()?;
    let mask = net.mask();
    let (lease, gateway) = (net.guest, net.gateway);
    let (kind, yours) = match req.message_type {
        DhcpMessageType::Discover => (DhcpMessageType::Offer, lease),
        DhcpMessageType::Request => {
            let asked = req.requested_ip.unwrap_or(req.client_ip);
            let other_server = req.server_identifier.is_some_and(|s| s != gateway);
            if other_server {
                return None;
            }
            if asked == lease {
                (DhcpMessageType::Ack, lease)
            } else {
                (DhcpMessageType::Nak, Ipv4Addr::UNSPECIFIED)
            }
        }
        DhcpMessageType::Inform => (DhcpMessageType::Ack, Ipv4Addr::UNSPECIFIED),
        _ => return None,
    };
    let nak = kind == DhcpMessageType::Nak;
    let dns = net.dns.octets();
    let bcast = Ipv4Addr::from(u32::from(lease) | !u32::from(mask)).octets();
    let extra = [
        DhcpOption {
            kind: OPT_DNS,
            data: &dns,
        },
        DhcpOption {
            kind: OPT_BROADCAST,
            data: &bcast,
        },
    ];
    let rep = DhcpRepr {
        message_type: kind,
        transaction_id: req.transaction_id,
        secs: 0,
        client_hardware_address: req.client_hardware_address,
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: yours,
        server_ip: if nak { Ipv4Addr::UNSPECIFIED } else { gateway },
        router: (!nak).then_some(gateway),
        subnet_mask: (!nak).then_some(mask),
        relay_agent_ip: req.relay_agent_ip,
        broadcast: req.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(gateway),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: (!nak && yours == lease).then_some(LEASE_SECS),
        renew_duration: None,
        rebind_duration: None,
        additional_options: if nak { &[] } else { &extra },
    };
    let mut buf = vec![0u8; rep.buffer_len()];
    let mut out = DhcpPacket::new_unchecked(&mut buf[..]);
    rep.emit(&mut out).ok()?;
    // Answer the client where it can hear: at its address if it has
    // one, else by broadcast (a client without an address cannot take
    // unicast before it is configured).
    let to = if req.client_ip.is_unspecified() || nak {
        Ipv4Addr::BROADCAST
    } else {
        req.client_ip
    };
    natpkt::udp_packet(
        SocketAddrV4::new(gateway, SERVER_PORT),
        SocketAddrV4::new(to, CLIENT_PORT),
        &buf,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::inet::stack::{DNS_IP, ETH0_IP, GATEWAY_IP};

    fn eth0() -> NatNet {
        NatNet::of_eth(0)
    }
    use smoltcp::wire::EthernetAddress;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn request(kind: DhcpMessageType, requested: Option<Ipv4Addr>, ciaddr: Ipv4Addr) -> UdpOut {
        let rep = DhcpRepr {
            message_type: kind,
            transaction_id: 0x1234_5678,
            secs: 0,
            client_hardware_address: EthernetAddress(MAC),
            client_ip: ciaddr,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: requested,
            client_identifier: Some(EthernetAddress(MAC)),
            server_identifier: None,
            parameter_request_list: Some(&[1, 3, 6, 12, 15, 28]),
            dns_servers: None,
            max_size: Some(576),
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut buf = vec![0u8; rep.buffer_len()];
        rep.emit(&mut DhcpPacket::new_unchecked(&mut buf[..]))
            .unwrap();
        UdpOut {
            src: SocketAddrV4::new(ciaddr, CLIENT_PORT),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT),
            payload: buf,
        }
    }

    /// What the tests look at in an answer.
    struct Reply {
        message_type: DhcpMessageType,
        transaction_id: u32,
        your_ip: Ipv4Addr,
        router: Option<Ipv4Addr>,
        subnet_mask: Option<Ipv4Addr>,
        server_identifier: Option<Ipv4Addr>,
        lease_duration: Option<u32>,
        dns: Option<Ipv4Addr>,
    }

    fn parse(p: &[u8]) -> (SocketAddrV4, Reply, Vec<u8>) {
        let d = natpkt::udp_of(p).expect("a UDP packet");
        assert_eq!(d.src, SocketAddrV4::new(GATEWAY_IP, SERVER_PORT));
        // The IPv4 header checksum is right (udhcpc checks it).
        assert_eq!(natpkt::checksum(&p[..20]), 0);
        let off = p.len() - d.payload.len();
        let pkt = DhcpPacket::new_checked(&p[off..]).unwrap();
        let opts: Vec<u8> = pkt.options().map(|o| o.kind).collect();
        let r = DhcpRepr::parse(&pkt).unwrap();
        let reply = Reply {
            message_type: r.message_type,
            transaction_id: r.transaction_id,
            your_ip: r.your_ip,
            router: r.router,
            subnet_mask: r.subnet_mask,
            server_identifier: r.server_identifier,
            lease_duration: r.lease_duration,
            dns: r.dns_servers.as_ref().and_then(|v| v.first().copied()),
        };
        (d.dst, reply, opts)
    }

    #[test]
    fn discover_request_ack_as_slirp() {
        let offer = answer(
            &request(DhcpMessageType::Discover, None, Ipv4Addr::UNSPECIFIED),
            &eth0(),
        )
        .expect("an offer");
        let (to, r, opts) = parse(&offer);
        assert_eq!(to, SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT));
        assert_eq!(r.message_type, DhcpMessageType::Offer);
        assert_eq!(r.transaction_id, 0x1234_5678);
        assert_eq!(r.your_ip, ETH0_IP);
        assert_eq!(r.router, Some(GATEWAY_IP));
        assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(r.server_identifier, Some(GATEWAY_IP));
        assert_eq!(r.lease_duration, Some(LEASE_SECS));
        assert_eq!(r.dns, Some(DNS_IP));
        assert!(opts.contains(&OPT_BROADCAST));

        let ack = answer(
            &request(
                DhcpMessageType::Request,
                Some(ETH0_IP),
                Ipv4Addr::UNSPECIFIED,
            ),
            &eth0(),
        )
        .unwrap();
        let (_, r, _) = parse(&ack);
        assert_eq!(r.message_type, DhcpMessageType::Ack);
        assert_eq!(r.your_ip, ETH0_IP);

        // A renewal, unicast from the bound address: answered there.
        let mut renew = request(DhcpMessageType::Request, None, ETH0_IP);
        renew.dst = SocketAddrV4::new(GATEWAY_IP, SERVER_PORT);
        let ack = answer(&renew, &eth0()).unwrap();
        let (to, r, _) = parse(&ack);
        assert_eq!(to, SocketAddrV4::new(ETH0_IP, CLIENT_PORT));
        assert_eq!(r.message_type, DhcpMessageType::Ack);
    }

    #[test]
    fn other_addresses_are_refused_and_releases_unanswered() {
        let nak = answer(
            &request(
                DhcpMessageType::Request,
                Some(Ipv4Addr::new(10, 0, 2, 99)),
                Ipv4Addr::UNSPECIFIED,
            ),
            &eth0(),
        )
        .unwrap();
        let (to, r, _) = parse(&nak);
        assert_eq!(r.message_type, DhcpMessageType::Nak);
        assert_eq!(*to.ip(), Ipv4Addr::BROADCAST);
        assert_eq!(
            answer(&request(DhcpMessageType::Release, None, ETH0_IP), &eth0()),
            None
        );
        let mut elsewhere = request(DhcpMessageType::Discover, None, Ipv4Addr::UNSPECIFIED);
        elsewhere.dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 3), SERVER_PORT);
        assert_eq!(answer(&elsewhere, &eth0()), None);
    }

    proptest::proptest! {
        /// Any payload to port 67: an answer or none, never a panic.
        #[test]
        fn any_bytes(p in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let d = UdpOut {
                src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT),
                dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT),
                payload: p,
            };
            let _ = answer(&d, &eth0());
        }
    }
}
