//! The user-mode NAT's UDP, slirp's way: each guest UDP port that sends
//! out through an ethN's NAT gets a host UDP socket (a "flow", one per
//! interface and port), watched on the host event loop; the guest's
//! datagrams go out through it and what comes back is handed to the
//! guest on that interface as from the address the guest sent to. The
//! NAT's gateway (10.0.2.2 on eth0) is the host's 127.0.0.1, and its DNS
//! forwarder (10.0.2.3:53 on eth0) sends queries to the host's resolver
//! (`resolver=` of `ethN=user`, else the first IPv4 nameserver of the
//! host's /etc/resolv.conf), its answers come back from the forwarder.
//!
//! Bounded: at most `FLOWS_MAX` flows (the least recently used goes),
//! a flow idle for `FLOW_IDLE` is closed, and each flow remembers at
//! most `PEERS_MAX` destinations. Datagrams from addresses the guest
//! never sent to are still delivered (a full-cone NAT, as slirp).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::core::Kernel;
use super::hostsrc::HostSource;
use crate::host::event_loop::{Interest, Token};
use crate::host::netsock::HostUdp;
use crate::net::inet::ifcfg::ETH_MAX;
use crate::net::inet::natnet::NatNet;

const FLOWS_MAX: usize = 64;
const FLOW_IDLE: Duration = Duration::from_secs(120);
const PEERS_MAX: usize = 32;
/// Most datagrams taken from one host socket per run (the rest wait for
/// the next: the socket stays readable).
const RECV_BATCH: usize = 64;

struct Flow {
    /// The interface (ethN) and the guest's port.
    n: u8,
    net: NatNet,
    guest_port: u16,
    sock: HostUdp,
    token: Token,
    last: Instant,
    /// (host address, the guest's name for it) of destinations sent to.
    peers: Vec<(SocketAddr, SocketAddrV4)>,
}

/// The NAT's UDP flows and where DNS goes.
#[derive(Default)]
pub struct UdpNat {
    flows: Vec<Flow>,
    /// The host resolver behind each ethN's DNS forwarder (None: DNS is
    /// dropped).
    pub resolvers: [Option<SocketAddrV4>; ETH_MAX as usize],
}

impl UdpNat {
    /// Open flows (tests).
    pub fn flows(&self) -> usize {
        self.flows.len()
    }
}

/// Where a guest datagram to `dst` goes on the host; None: nowhere (the
/// guest's own network, broadcast, multicast, DNS without a resolver).
pub fn host_dst(
    net: &NatNet,
    dst: SocketAddrV4,
    resolver: Option<SocketAddrV4>,
) -> Option<SocketAddr> {
    let ip = *dst.ip();
    if ip == net.gateway {
        return Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dst.port()));
    }
    if ip == net.dns {
        return resolver.filter(|_| dst.port() == 53).map(SocketAddr::V4);
    }
    if net.contains(ip)
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_loopback()
    {
        return None;
    }
    Some(SocketAddr::V4(dst))
}

/// The guest's name for a host address a datagram came from: the one
/// the guest sent to, else the NAT's gateway for the host's loopback,
/// else the address itself (IPv6 senders: None, the ethN have no IPv6).
fn guest_src(
    net: &NatNet,
    peers: &[(SocketAddr, SocketAddrV4)],
    from: SocketAddr,
) -> Option<SocketAddrV4> {
    if let Some(&(_, g)) = peers.iter().rev().find(|(h, _)| *h == from) {
        return Some(g);
    }
    match from {
        SocketAddr::V4(a) if a.ip().is_loopback() => Some(SocketAddrV4::new(net.gateway, a.port())),
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

/// An ICMP error for the guest: the interface, its UDP port, the
/// destination it sent to (as the guest sees it), the ICMP type and code.
type Notice = (u8, u16, SocketAddrV4, u8, u8);
/// Most queued ICMP errors taken from one host socket at a time.
const ERRQ_BATCH: usize = 16;

/// Takes `f`'s queued ICMP errors (IP_RECVERR) as notices for the guest
/// (those about destinations it never sent to are dropped); true if any.
fn icmp_errors(f: &mut Flow, notices: &mut Vec<Notice>) -> bool {
    let mut any = false;
    for _ in 0..ERRQ_BATCH {
        let Some((dst, ty, code)) = f.sock.take_icmp_error() else {
            break;
        };
        let to = SocketAddr::V4(dst);
        if let Some(&(_, g)) = f.peers.iter().find(|p| p.0 == to) {
            notices.push((f.n, f.guest_port, g, ty, code));
            any = true;
        }
    }
    any
}

impl Kernel {
    /// Sends the guest's UDP datagrams out through host sockets and hands
    /// back what came in; true if anything moved.
    pub(super) fn net_udp(&mut self) -> bool {
        let Some(st) = self.inet.as_mut() else {
            return false;
        };
        let out = st.take_udp_out();
        let mut moved = !out.is_empty();
        let mut notices = Vec::new();
        let now = Instant::now();
        for o in out {
            let (n, net, d) = (o.n, o.net, o.d);
            let resolver = self.resolver_of(n);
            let Some(to) = host_dst(&net, d.dst, resolver) else {
                continue;
            };
            let Some(i) = self.udp_flow(n, net, d.src.port(), now) else {
                continue;
            };
            let f = &mut self.net_host.udp.flows[i];
            f.last = now;
            if !f.peers.iter().any(|&(h, g)| h == to && g == d.dst) {
                if f.peers.len() >= PEERS_MAX {
                    f.peers.remove(0);
                }
                f.peers.push((to, d.dst));
            }
            if let Err(e) = f.sock.send_to(&d.payload, to) {
                // An earlier datagram's ICMP error comes back here too.
                log::debug!("udp out to {to}: {e}");
                moved |= icmp_errors(f, &mut notices);
            }
        }
        if self.net_host.udp.flows.is_empty() {
            self.udp_notices(notices);
            return moved;
        }
        let mut buf = vec![0u8; 65536];
        let mut flows = std::mem::take(&mut self.net_host.udp.flows);
        for f in &mut flows {
            for _ in 0..RECV_BATCH {
                let (n, from) = match f.sock.recv_from(&mut buf) {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => {
                        // An ICMP error the host queued (IP_RECVERR): the
                        // guest's sender hears it as an ICMP error from
                        // the destination it sent to.
                        log::debug!("udp flow {}: {e}", f.guest_port);
                        moved |= icmp_errors(f, &mut notices);
                        continue;
                    }
                };
                moved = true;
                f.last = now;
                if let Some(src) = guest_src(&f.net, &f.peers, from) {
                    self.net().udp_in(f.n, src, f.guest_port, &buf[..n]);
                }
            }
        }
        // Idle flows end.
        flows.retain(|f| {
            let keep = now.duration_since(f.last) < FLOW_IDLE;
            if !keep {
                self.deregister_host_source(f.token);
            }
            keep
        });
        self.net_host.udp.flows = flows;
        self.udp_notices(notices);
        moved
    }

    /// Hands the host's ICMP errors to the guest's senders.
    fn udp_notices(&mut self, notices: Vec<Notice>) {
        for (n, port, dst, ty, code) in notices {
            self.net().udp_icmp_error(n, port, dst, ty, code);
        }
    }

    /// The host resolver behind ethN's DNS forwarder.
    pub(super) fn resolver_of(&self, n: u8) -> Option<SocketAddrV4> {
        self.net_host
            .udp
            .resolvers
            .get(usize::from(n))
            .copied()
            .flatten()
    }

    /// The flow of the guest's UDP `port` on ethN, opened if needed (the
    /// least recently used goes when there are `FLOWS_MAX`).
    fn udp_flow(&mut self, n: u8, net: NatNet, port: u16, now: Instant) -> Option<usize> {
        let flows = &self.net_host.udp.flows;
        if let Some(i) = flows.iter().position(|f| f.n == n && f.guest_port == port) {
            return Some(i);
        }
        if flows.len() >= FLOWS_MAX {
            let (i, _) = flows.iter().enumerate().min_by_key(|(_, f)| f.last)?;
            let f = self.net_host.udp.flows.remove(i);
            self.deregister_host_source(f.token);
        }
        let opened = HostUdp::open().and_then(|sock| {
            let t =
                self.register_host_source(sock.raw_fd(), Interest::READ, HostSource::NetConn)?;
            Ok((sock, t))
        });
        let (sock, token) = match opened {
            Ok(o) => o,
            Err(e) => {
                log::debug!("udp flow for guest port {port}: {e}");
                return None;
            }
        };
        self.net_host.udp.flows.push(Flow {
            n,
            net,
            guest_port: port,
            sock,
            token,
            last: now,
            peers: Vec::new(),
        });
        Some(self.net_host.udp.flows.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_map_to_the_host() {
        let r = Some("127.0.0.1:5353".parse().unwrap());
        let eth0 = NatNet::of_eth(0);
        let d = |s: &str| host_dst(&eth0, s.parse().unwrap(), r);
        assert_eq!(d("10.0.2.2:7"), Some("127.0.0.1:7".parse().unwrap()));
        assert_eq!(d("10.0.2.3:53"), Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(d("10.0.2.3:54"), None);
        assert_eq!(d("192.0.2.1:9"), Some("192.0.2.1:9".parse().unwrap()));
        assert_eq!(d("10.0.2.9:9"), None);
        assert_eq!(d("255.255.255.255:67"), None);
        assert_eq!(d("224.0.0.251:5353"), None);
        assert_eq!(host_dst(&eth0, "10.0.2.3:53".parse().unwrap(), None), None);
        // eth1's NAT: its own gateway and forwarder; eth0's network is
        // somewhere else (not the host's loopback).
        let eth1 = NatNet::of_eth(1);
        let d1 = |s: &str| host_dst(&eth1, s.parse().unwrap(), r);
        assert_eq!(d1("10.0.3.2:7"), Some("127.0.0.1:7".parse().unwrap()));
        assert_eq!(d1("10.0.3.3:53"), Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(d1("10.0.3.9:9"), None);
    }

    #[test]
    fn answers_come_from_the_address_sent_to() {
        let peers = vec![(
            "127.0.0.1:5353".parse().unwrap(),
            "10.0.2.3:53".parse().unwrap(),
        )];
        let g = |s: &str| guest_src(&NatNet::of_eth(0), &peers, s.parse().unwrap());
        assert_eq!(g("127.0.0.1:5353"), Some("10.0.2.3:53".parse().unwrap()));
        assert_eq!(g("127.0.0.1:9"), Some("10.0.2.2:9".parse().unwrap()));
        assert_eq!(g("192.0.2.1:9"), Some("192.0.2.1:9".parse().unwrap()));
        assert_eq!(g("[::1]:9"), None);
    }
}
