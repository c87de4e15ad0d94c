//! The guest's TCP/IP stack: one smoltcp interface over the IP device
//! (`device.rs`) with lo's addresses (127.0.0.1/8, ::1) and each ethN's,
//! the socket set, the port table (bind conflicts, ephemeral ports) and
//! the sockets the guest closed that still finish their TCP close
//! ("orphans").
//!
//! The interfaces are a table (`Eth`: eth0..eth5, each with its own
//! configuration, counters and NAT); a packet the stack sends goes to lo
//! if its destination is local, else out of the interface the routing
//! table (`ifcfg::lookup`) chooses.
//!
//! `poll` runs the stack until nothing moves: packets a socket sent to a
//! local address come back in at once, so a loopback exchange finishes
//! inside the syscall that started it. `poll_at` is when smoltcp's own
//! timers (retransmission, keep-alive) next need a poll; the scheduler
//! asks for it when the guest is idle.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::device::{IfStats, IpDevice};
use super::dhcp;
use super::ether::{EtherLink, Rx};
use super::ifcfg::{self, EthIf, IfCfg};
use super::natnet::NatNet;
use super::natpkt::{self, UdpOut};
use super::offload::OutFrame;
use crate::errno::{Errno, KResult};
use crate::net::packet::{self, Frame};

/// Linux's default ip_local_port_range.
pub const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;
/// Most rounds of one `poll` (each round: receive all, send all): a
/// bound, not a figure ever reached by a finite exchange.
const POLL_ROUNDS: usize = 10_000;

/// TCP, UDP or ICMP (ping sockets): each has its own port space (a
/// ping socket's "port" is its echo identifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// One bound port.
#[derive(Clone, Copy, Debug)]
struct Binding {
    owner: u64,
    proto: Proto,
    /// None: the wildcard address.
    addr: Option<IpAddr>,
    port: u16,
    reuseaddr: bool,
    listening: bool,
}

/// eth0 under the user-mode NAT (`NatNet::of_eth(0)`): the guest's
/// address, the gateway (the NAT's own address, where forwarded
/// connections come from), the prefix.
pub const ETH0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const ETH0_PREFIX: u8 = 24;
/// The NAT's DNS forwarder: queries to it go to the host's resolver.
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The largest MTU of an ethN on the user-mode NAT: its IP-level
/// device's packets (IPv4's 65535 bytes, a Linux tun device's max_mtu).
pub const USER_MAX_MTU: u16 = 65535;
/// IPv4's and TCP's headers without options: an MTU less this is the
/// MSS (Linux's tcp_mtu_to_mss for IPv4).
const TCP_IP_HEADERS: u16 = 40;
/// Guest UDP datagrams waiting for the kernel to send them on the host.
const UDP_OUT_MAX: usize = 256;
/// A NAT-side connection's buffers (host <-> guest forwarding).
const NAT_BUF: usize = 256 << 10;

/// The other end of an ethN under the user-mode NAT: a second smoltcp
/// interface (its gateway, 10.0.2.2 for eth0) whose TCP sockets terminate the guest's side of
/// each forwarded connection; the kernel pumps their data to and from
/// host sockets (`kernel/netfwd.rs`).
struct Nat {
    iface: Interface,
    dev: IpDevice,
    sockets: SocketSet<'static>,
    next_port: u16,
    /// Connections given up, removed once their reset went out.
    orphans: Vec<SocketHandle>,
    /// Guest SYNs held until the host side of their connection is known:
    /// (request id, (guest port, destination), packet).
    held: Vec<(u64, (u16, SocketAddrV4), Vec<u8>)>,
    /// Outbound connections the kernel has still to open on the host.
    pending: Vec<Outbound>,
    /// NAT sockets of outbound connections, by (guest port, destination).
    outbound: HashMap<SocketHandle, (u16, SocketAddrV4)>,
    /// Guest UDP datagrams out on eth0, for host UDP sockets.
    udp_out: std::collections::VecDeque<UdpOut>,
}

/// A guest TCP connection out through the NAT, to be opened on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub id: u64,
    pub dst: SocketAddrV4,
    /// The interface (ethN) it left by, and its NAT's network (what its
    /// gateway means).
    pub n: u8,
    pub net: NatNet,
}

/// A NAT-side connection: the interface's number and its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatHandle {
    pub n: u8,
    h: SocketHandle,
}

/// A guest UDP datagram out through ethN's NAT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpOutOn {
    pub n: u8,
    pub net: NatNet,
    pub d: UdpOut,
}

/// One ethN: its configuration, counters and what carries its packets:
/// a user-mode NAT (IP packets), or an Ethernet link (frames, for a host
/// tap device).
struct Eth {
    n: u8,
    mac: [u8; 6],
    cfg: IfCfg,
    stats: IfStats,
    net: NatNet,
    nat: Option<Nat>,
    ether: Option<EtherLink>,
    /// The largest MTU its link carries.
    max_mtu: u16,
}

impl Eth {
    fn ifindex(&self) -> i32 {
        ifcfg::ifindex_of(self.n)
    }

    /// The MSS a TCP SYN through it may offer: its MTU less the headers.
    fn mss(&self) -> u16 {
        self.cfg.mtu.saturating_sub(TCP_IP_HEADERS)
    }
}

pub struct NetStack {
    iface: Interface,
    dev: IpDevice,
    pub sockets: SocketSet<'static>,
    epoch: std::time::Instant,
    bindings: Vec<Binding>,
    next_ephemeral: u16,
    next_owner: u64,
    orphans: Vec<SocketHandle>,
    pub lo: IfStats,
    /// The ethN interfaces, by number.
    eths: Vec<Eth>,
    /// The next outbound request's id (unique over the interfaces).
    next_req: u64,
    /// Why the host refused a guest connection out through the NAT
    /// (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ...), by guest socket.
    conn_errors: HashMap<SocketHandle, Errno>,
    /// Changes whenever a poll moved something (epoll's edge trigger).
    pub generation: u64,
    /// Are there packet sockets (then `frames` collects what the ethN see)?
    pub taps: bool,
    /// Frames the ethN sent and received since the packet sockets last took
    /// them (capped; the rest is not seen by packet sockets).
    pub frames: Vec<Frame>,
    /// Hard ICMP errors about UDP datagrams, by the sending socket: the
    /// destination the error is about, and the errno (`take_udp_error`).
    udp_errors: HashMap<SocketHandle, (std::net::SocketAddr, Errno)>,
    /// What the TCP send rings beyond `BUF_MIN` may hold together
    /// (`autotuned_send_buf`): the kernel's socket buffer limit.
    pub send_budget: usize,
}

/// A TCP socket's send ring when SO_SNDBUF was not set and the budget
/// has room: what Linux's send buffer autotuning (tcp_wmem) reaches on a
/// bulk sender, within its 4 MiB maximum.
pub const SEND_AUTO: usize = 1 << 20;

/// Frames kept for packet sockets between two deliveries.
const FRAMES_MAX: usize = 1024;

impl NetStack {
    /// The send ring for a new TCP socket that did not set SO_SNDBUF
    /// (`base`: its plain size). Linux grows such a buffer up to
    /// tcp_wmem's maximum while the connection moves data; smoltcp
    /// cannot resize a live socket's ring, so it is made `SEND_AUTO`
    /// bytes at once, when the rings already made that large leave room
    /// in `send_budget` (else `base`). The ring's pages are touched only
    /// as data passes through it, and what is queued in it is charged to
    /// guest memory like any socket buffer (`kernel/sockmem.rs`).
    pub fn autotuned_send_buf(&mut self, base: usize) -> usize {
        if base >= SEND_AUTO {
            return base;
        }
        let used: usize = self
            .sockets
            .iter()
            .filter_map(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => {
                    Some(t.send_capacity().saturating_sub(super::socket::BUF_MIN))
                }
                _ => None,
            })
            .fold(0usize, usize::saturating_add);
        let extra = SEND_AUTO - super::socket::BUF_MIN;
        if used.saturating_add(extra) <= self.send_budget {
            SEND_AUTO
        } else {
            base
        }
    }

    /// A stack with lo up; `seed` picks initial sequence numbers.
    pub fn new(seed: u64) -> NetStack {
        let mut dev = IpDevice::default();
        let epoch = std::time::Instant::now();
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let mut iface = Interface::new(cfg, &mut dev, smoltcp::time::Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Addr::LOCALHOST), 8));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128));
        });
        NetStack {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            epoch,
            bindings: Vec::new(),
            next_ephemeral: *EPHEMERAL.start(),
            next_owner: 1,
            orphans: Vec::new(),
            lo: IfStats::default(),
            eths: Vec::new(),
            next_req: 1,
            conn_errors: HashMap::new(),
            generation: 0,
            taps: false,
            frames: Vec::new(),
            udp_errors: HashMap::new(),
            send_budget: 0,
        }
    }

    /// The stack's clock.
    pub fn now(&self) -> smoltcp::time::Instant {
        let us = self.epoch.elapsed().as_micros();
        smoltcp::time::Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
    }

    /// A fresh owner id for a socket's port bindings.
    pub fn new_owner(&mut self) -> u64 {
        let n = self.next_owner;
        self.next_owner += 1;
        n
    }

    pub fn context(&mut self) -> &mut smoltcp::iface::Context {
        self.iface.context()
    }

    /// Is `ip` an address of this guest (bind may use it)?
    pub fn is_local(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v) if v.is_loopback() => true,
            ip => self.iface.has_ip_addr(IpAddress::from(ip)),
        }
    }

    /// Attaches ethN to a user-mode NAT on its own network
    /// (`NatNet::of_eth`): configured (up with the NAT's lease, and a
    /// default route via its gateway if no interface has one yet), or
    /// down with no address for the guest to configure (udhcpc,
    /// ifconfig). An interface already there is left as it is.
    pub fn attach_user_nat(&mut self, n: u8, seed: u64, configured: bool) {
        if n >= ifcfg::ETH_MAX || self.eths.iter().any(|e| e.n == n) {
            return;
        }
        let net = NatNet::of_eth(n);
        let has_default = self
            .eths
            .iter()
            .any(|e| e.cfg.routes.iter().any(|r| r.prefix == 0));
        let cfg = match (configured, has_default) {
            (false, _) => IfCfg::unconfigured(),
            (true, false) => IfCfg::configured(net.guest, net.prefix, net.gateway),
            (true, true) => IfCfg::addressed(net.guest, net.prefix),
        };
        let mut dev = IpDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut dev, self.now());
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(net.gateway), net.prefix));
        });
        // Whatever address the guest gives itself, the NAT answers it.
        let _ = iface.routes_mut().add_default_ipv4_route(net.guest);
        // The NAT answers for every address the guest connects to.
        iface.set_any_ip(true);
        let eth = Eth {
            n,
            mac: packet::eth_mac(n),
            cfg,
            stats: IfStats::default(),
            net,
            ether: None,
            max_mtu: USER_MAX_MTU,
            nat: Some(Nat {
                iface,
                dev,
                sockets: SocketSet::new(Vec::new()),
                next_port: *EPHEMERAL.start(),
                orphans: Vec::new(),
                held: Vec::new(),
                pending: Vec::new(),
                outbound: HashMap::new(),
                udp_out: std::collections::VecDeque::new(),
            }),
        };
        self.insert_eth(eth);
    }

    fn insert_eth(&mut self, eth: Eth) {
        let at = self.eths.partition_point(|e| e.n < eth.n);
        self.eths.insert(at, eth);
        self.sync();
    }

    /// Attaches ethN to an Ethernet link with MAC `mac` (a host tap or a
    /// switch port: the kernel moves its frames,
    /// `ether_in`/`take_ether_out`), whose MTU may be set up to
    /// `max_mtu` (it starts at Ethernet's 1500). It starts down with no
    /// address, for the guest to configure, as a NIC does. `offload`:
    /// its device finishes TCP checksums and cuts GSO frames
    /// (`offload.rs`).
    pub fn attach_ether(&mut self, n: u8, mac: [u8; 6], max_mtu: u16, offload: bool) {
        if n >= ifcfg::ETH_MAX || self.eths.iter().any(|e| e.n == n) {
            return;
        }
        self.insert_eth(Eth {
            n,
            mac,
            cfg: IfCfg::unconfigured(),
            stats: IfStats::default(),
            net: NatNet::of_eth(n),
            nat: None,
            ether: Some(EtherLink::new(mac)),
            max_mtu,
        });
        if let Some(l) = self
            .eths
            .iter_mut()
            .find(|e| e.n == n)
            .and_then(|e| e.ether.as_mut())
        {
            l.offload = offload;
        }
    }

    /// A frame read from ethN's device: ARP handled, IPv4 for this
    /// station to the stack; counted (malformed ones as dropped), and
    /// shown to the packet sockets. While ethN is down a frame is read
    /// off the device and counted nowhere: a Linux NIC that is down
    /// receives nothing (the host's IPv6 autoconfiguration frames as a
    /// tap comes up were 5 "drops" before the guest's ifconfig).
    pub fn ether_in(&mut self, n: u8, f: &[u8]) {
        let Some(i) = self.eth_pos(n) else {
            return;
        };
        let now = std::time::Instant::now();
        let e = &mut self.eths[i];
        let (up, me, mac, ifindex, mss) = (e.cfg.up, e.cfg.ip(), e.mac, e.ifindex(), e.mss());
        let Some(l) = e.ether.as_mut() else {
            return;
        };
        if !up {
            return;
        }
        let rx = l.receive(f, me, now);
        e.stats.rx_packets += 1;
        e.stats.rx_bytes += f.len() as u64;
        if rx == Rx::Malformed {
            e.stats.rx_dropped += 1;
            return;
        }
        let dst = f.get(..6).unwrap_or(&[]);
        let pkttype = if dst == mac {
            packet::PACKET_HOST
        } else if dst == packet::BROADCAST_MAC {
            packet::PACKET_BROADCAST
        } else {
            packet::PACKET_OTHERHOST
        };
        if self.taps {
            self.tap(Frame {
                ifindex,
                pkttype,
                bytes: f.to_vec(),
            });
        }
        if let Rx::Ip(mut p) = rx {
            // The peer's MSS is lowered to this interface's: the stack's
            // own MTU (lo's) is not the link's, and its TCP sends
            // min(peer's MSS, its own).
            super::ether::clamp_mss(&mut p, mss);
            self.note_icmp_error(&p);
            if !self.dev.deliver(p) {
                self.eths[i].stats.rx_dropped += 1;
            }
        }
    }

    /// The frames ethN's Ethernet link has for its device (shown to the
    /// packet sockets as they go).
    pub fn take_ether_out(&mut self, n: u8) -> Vec<OutFrame> {
        let Some(i) = self.eth_pos(n) else {
            return Vec::new();
        };
        let ifindex = self.eths[i].ifindex();
        let out: Vec<OutFrame> = match self.eths[i].ether.as_mut() {
            Some(l) => l.out.drain(..).collect(),
            None => return Vec::new(),
        };
        if self.taps {
            for f in &out {
                self.tap(Frame {
                    ifindex,
                    pkttype: packet::PACKET_OUTGOING,
                    bytes: f.bytes.clone(),
                });
            }
        }
        out
    }

    /// Frames ethN's device brought that were not for it (a switch
    /// port's datagrams from another sender): counted as dropped.
    pub fn ether_rx_dropped(&mut self, n: u8, k: u64) {
        if let Some(i) = self.eth_pos(n) {
            self.eths[i].stats.rx_dropped += k;
        }
    }

    /// Frames ethN's device refused: counted as its drops.
    pub fn ether_dropped(&mut self, n: u8, k: u64) {
        if let Some(i) = self.eth_pos(n) {
            self.eths[i].stats.tx_dropped += k;
        }
    }

    /// Is there an ethN with this N?
    pub fn eth_exists(&self, n: u8) -> bool {
        self.eth_pos(n).is_some()
    }

    /// Is there any ethN?
    pub fn has_eth(&self) -> bool {
        !self.eths.is_empty()
    }

    /// The ethN as the configuration paths see them.
    pub fn eths(&self) -> Vec<EthIf> {
        self.eths
            .iter()
            .map(|e| EthIf {
                n: e.n,
                mac: e.mac,
                cfg: e.cfg.clone(),
                stats: e.stats,
                max_mtu: e.max_mtu,
            })
            .collect()
    }

    /// Is there a route to the non-local `ip` (an interface that reaches it)?
    pub fn routes(&self, ip: IpAddr) -> bool {
        match unmapped(ip) {
            IpAddr::V4(v) => self.eths.iter().any(|e| e.cfg.lookup(v).is_some()),
            IpAddr::V6(_) => false,
        }
    }

    /// The interface (position in `eths`) a packet to `ip` leaves by.
    fn route_of(&self, ip: Ipv4Addr) -> Option<usize> {
        ifcfg::lookup_in(self.eths.iter().map(|e| &e.cfg), ip).map(|(i, _)| i)
    }

    /// The source address for a packet to the non-local `dst`: the
    /// address of the interface its route leaves by (Linux's choice).
    pub fn src_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.eths.get(self.route_of(dst)?)?.cfg.ip()
    }

    /// The source address Linux gives a packet to `dst` from a socket
    /// bound to the wildcard: 127.0.0.1 (or ::1) for loopback, a local
    /// address itself, else the address of the interface the route
    /// leaves by; None if none applies (smoltcp then picks).
    pub fn source_of(&self, dst: IpAddr) -> Option<IpAddr> {
        match unmapped(dst) {
            IpAddr::V4(v) if v.is_loopback() => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(v) if v.is_loopback() => Some(IpAddr::V6(v)),
            IpAddr::V4(v) if self.is_local(IpAddr::V4(v)) => Some(IpAddr::V4(v)),
            IpAddr::V4(v) => self.src_for(v).map(IpAddr::V4),
            IpAddr::V6(_) => None,
        }
    }

    /// Mirrors the interfaces' configuration into smoltcp: their
    /// addresses (while up; the default route's interface first, as
    /// smoltcp takes the first address for a destination no network of
    /// its holds), then lo's; and the routes with a gateway or to other
    /// networks.
    fn sync(&mut self) {
        let default_if = self.route_of(Ipv4Addr::new(255, 255, 255, 254));
        let mut addrs: Vec<(Ipv4Addr, u8)> = Vec::new();
        for (i, e) in self.eths.iter().enumerate() {
            if let (true, Some(a)) = (e.cfg.up, e.cfg.addr) {
                if Some(i) == default_if {
                    addrs.insert(0, a);
                } else {
                    addrs.push(a);
                }
            }
        }
        self.iface.update_ip_addrs(|a| {
            a.clear();
            for (ip, prefix) in addrs {
                let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip), prefix));
            }
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Addr::LOCALHOST), 8));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128));
        });
        let routes: Vec<ifcfg::Route> = self
            .eths
            .iter()
            .filter(|e| e.cfg.up)
            .flat_map(|e| e.cfg.routes.iter().filter(|r| !r.connected).copied())
            .collect();
        self.iface.routes_mut().update(|t| {
            t.clear();
            for r in routes {
                // On an IP-level device the next hop is not looked up:
                // the route only says the destination is reachable.
                let _ = t.push(smoltcp::iface::Route {
                    cidr: IpCidr::new(IpAddress::Ipv4(r.dst), r.prefix),
                    via_router: IpAddress::Ipv4(r.gw.unwrap_or(r.dst)),
                    preferred_until: None,
                    expires_at: None,
                });
            }
        });
    }

    /// Runs `f` on the interfaces' configuration (the SIOCS* ioctls, the
    /// route ioctls, rtnetlink) and mirrors the result into smoltcp;
    /// ENODEV without any ethN.
    pub fn configure<T>(&mut self, f: impl FnOnce(&mut [EthIf]) -> KResult<T>) -> KResult<T> {
        if self.eths.is_empty() {
            return Err(Errno::ENODEV);
        }
        let mut ifs = self.eths();
        let r = f(&mut ifs);
        for (e, new) in self.eths.iter_mut().zip(ifs) {
            e.cfg = new.cfg;
        }
        self.sync();
        r
    }

    /// The position in `eths` of ethN.
    fn eth_pos(&self, n: u8) -> Option<usize> {
        self.eths.iter().position(|e| e.n == n)
    }

    /// Opens a NAT-side connection to the guest's `port` on ethN (a
    /// forwarded host connection); None without ethN or its address.
    pub fn nat_connect(&mut self, n: u8, port: u16) -> Option<NatHandle> {
        let i = self.eth_pos(n)?;
        let e = &mut self.eths[i];
        let guest = e.cfg.ip().filter(|_| e.cfg.up)?;
        let nat = e.nat.as_mut()?;
        let rx = tcp::SocketBuffer::new(vec![0u8; NAT_BUF]);
        let tx = tcp::SocketBuffer::new(vec![0u8; NAT_BUF]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_ack_delay(None);
        s.set_nagle_enabled(false);
        let local = nat.next_port;
        nat.next_port = if local >= *EPHEMERAL.end() {
            *EPHEMERAL.start()
        } else {
            local + 1
        };
        let remote = smoltcp::wire::IpEndpoint::new(IpAddress::Ipv4(guest), port);
        s.connect(nat.iface.context(), remote, local).ok()?;
        Some(NatHandle {
            n,
            h: nat.sockets.add(s),
        })
    }

    /// Outbound connections the guest started since the last call.
    pub fn take_outbound(&mut self) -> Vec<Outbound> {
        self.eths
            .iter_mut()
            .filter_map(|e| e.nat.as_mut())
            .flat_map(|nat| std::mem::take(&mut nat.pending))
            .collect()
    }

    /// The host side of outbound request `id` is open (Ok) or failed.
    /// Open: a NAT socket takes the guest's SYN (returned, to be pumped);
    /// failed: the guest's connecting socket ends with the host's error
    /// (`take_conn_error`), as Linux's own connect would have: refused,
    /// timed out, host or network unreachable.
    pub fn outbound_done(&mut self, id: u64, res: Result<(), Errno>) -> Option<NatHandle> {
        let (i, k) =
            self.eths.iter().enumerate().find_map(|(i, e)| {
                Some((i, e.nat.as_ref()?.held.iter().position(|h| h.0 == id)?))
            })?;
        let (_, t, syn) = self.eths[i].nat.as_mut()?.held.remove(k);
        if let Err(e) = res {
            let want = smoltcp::wire::IpEndpoint::new(IpAddress::Ipv4(*t.1.ip()), t.1.port());
            let guest = self.sockets.iter_mut().find_map(|(gh, s)| match s {
                smoltcp::socket::Socket::Tcp(s)
                    if s.state() == tcp::State::SynSent
                        && s.remote_endpoint() == Some(want)
                        && s.local_endpoint().map(|l| l.port) == Some(t.0) =>
                {
                    s.abort();
                    Some(gh)
                }
                _ => None,
            });
            if let Some(gh) = guest {
                self.conn_errors.insert(gh, e);
            }
            return None;
        }
        let eth = &mut self.eths[i];
        let nat = eth.nat.as_mut()?;
        let mut h = None;
        let rx = tcp::SocketBuffer::new(vec![0u8; NAT_BUF]);
        let tx = tcp::SocketBuffer::new(vec![0u8; NAT_BUF]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_ack_delay(None);
        s.set_nagle_enabled(false);
        let ep = smoltcp::wire::IpListenEndpoint {
            addr: Some(IpAddress::Ipv4(*t.1.ip())),
            port: t.1.port(),
        };
        if s.listen(ep).is_ok() {
            let handle = nat.sockets.add(s);
            nat.outbound.insert(handle, t);
            h = Some(NatHandle {
                n: eth.n,
                h: handle,
            });
        }
        if !nat.dev.deliver(syn) {
            eth.stats.tx_dropped += 1;
        }
        h
    }

    /// UDP datagrams the guest sent out through the NATs since the last
    /// call.
    pub fn take_udp_out(&mut self) -> Vec<UdpOutOn> {
        let mut out = Vec::new();
        for e in &mut self.eths {
            let Some(nat) = e.nat.as_mut() else {
                continue;
            };
            for d in nat.udp_out.drain(..) {
                out.push(UdpOutOn {
                    n: e.n,
                    net: e.net,
                    d,
                });
            }
        }
        out
    }

    /// A UDP datagram from `from` (as the guest sees it) for the guest's
    /// `port` on ethN; false if it was dropped (no ethN, too big, queue
    /// full).
    pub fn udp_in(&mut self, n: u8, from: SocketAddrV4, port: u16, payload: &[u8]) -> bool {
        let Some(i) = self.eth_pos(n) else {
            return false;
        };
        let e = &mut self.eths[i];
        let Some(ip) = e.cfg.ip() else {
            e.stats.rx_dropped += 1;
            return false;
        };
        let to = SocketAddrV4::new(ip, port);
        let Some(p) = natpkt::udp_packet(from, to, payload) else {
            e.stats.rx_dropped += 1;
            return false;
        };
        self.eth_rx(i, p)
    }

    /// Notes an ICMP error about a UDP datagram for the socket that sent
    /// it (smoltcp gives ICMP errors to no UDP socket).
    fn note_icmp_error(&mut self, p: &[u8]) {
        let Some((src, dst, e)) = natpkt::icmp_udp_error(p) else {
            return;
        };
        let sender = self.sockets.iter().find_map(|(h, s)| match s {
            smoltcp::socket::Socket::Udp(u) => {
                let ep = u.endpoint();
                let ip_ok = ep
                    .addr
                    .is_none_or(|a| unmapped(IpAddr::from(a)) == unmapped(src.ip()));
                (ep.port == src.port() && ip_ok).then_some(h)
            }
            _ => None,
        });
        if let Some(h) = sender {
            self.udp_errors.insert(h, (dst, e));
        }
    }

    /// An ICMP error (`ty`, `code`) from ethN's NAT's host side about the
    /// datagram the guest's UDP `port` sent to `dst`: an ICMP packet from
    /// `dst` quoting that datagram's headers arrives on ethN.
    pub fn udp_icmp_error(&mut self, n: u8, port: u16, dst: SocketAddrV4, ty: u8, code: u8) {
        let Some(i) = self.eth_pos(n) else {
            return;
        };
        let Some(me) = self.eths[i].cfg.ip() else {
            return;
        };
        let Some(orig) = natpkt::udp_packet(SocketAddrV4::new(me, port), dst, &[]) else {
            return;
        };
        let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&orig);
        let c = natpkt::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        if let Some(p) = natpkt::icmp_in_ipv4(*dst.ip(), me, &icmp) {
            self.eth_rx(i, p);
        }
    }

    /// The hard ICMP error UDP socket `h` got about datagrams to `peer`
    /// (its connected peer), once.
    pub fn take_udp_error(&mut self, h: SocketHandle, peer: std::net::SocketAddr) -> Option<Errno> {
        let (dst, e) = *self.udp_errors.get(&h)?;
        self.udp_errors.remove(&h);
        let same = unmapped(dst.ip()) == unmapped(peer.ip()) && dst.port() == peer.port();
        same.then_some(e)
    }

    /// Forgets UDP socket `h`'s errors (it is being removed).
    pub fn forget_udp(&mut self, h: SocketHandle) {
        self.udp_errors.remove(&h);
    }

    /// A packet arriving on the interface at `i` from its NAT: to the
    /// stack (if the interface is up: a down one receives and counts
    /// nothing, as on Linux) and to the packet sockets. False if it did
    /// not go in.
    fn eth_rx(&mut self, i: usize, p: Vec<u8>) -> bool {
        let Some(e) = self.eths.get_mut(i) else {
            return false;
        };
        if !e.cfg.up {
            return false;
        }
        let ifindex = e.ifindex();
        self.note_icmp_error(&p);
        let len = p.len() as u64;
        self.tap_ipv4(ifindex, &p, false);
        let ok = self.dev.deliver(p);
        let s = &mut self.eths[i].stats;
        if ok {
            s.rx_packets += 1;
            s.rx_bytes += len;
        } else {
            s.rx_dropped += 1;
        }
        ok
    }

    /// Keeps an IPv4 packet of an ethN as a frame for the packet sockets,
    /// if there are any: the frame (a copy of the packet) is built only
    /// then, never on the data path of a guest without packet sockets.
    fn tap_ipv4(&mut self, ifindex: i32, p: &[u8], outgoing: bool) {
        if self.taps && self.frames.len() < FRAMES_MAX {
            self.frames.push(Frame::ipv4(ifindex, p, outgoing));
        }
    }

    /// Keeps a frame for the packet sockets, if there are any.
    fn tap(&mut self, f: Frame) {
        if self.taps && self.frames.len() < FRAMES_MAX {
            self.frames.push(f);
        }
    }

    /// A raw IPv4 packet (header included) a raw socket sends: routed
    /// as the stack's own (lo, or out on an ethN); ENETUNREACH if nothing
    /// routes its destination.
    pub fn raw_send(&mut self, p: Vec<u8>) -> KResult<()> {
        let dst = dst_of(&p).ok_or(Errno::EINVAL)?;
        if !self.is_local(dst) && !self.routes(dst) && dst != IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Err(Errno::ENETUNREACH);
        }
        if self.dev.sent.len() >= super::device::QUEUE_MAX {
            return Err(Errno::ENOBUFS);
        }
        self.dev.sent.push_back(p);
        Ok(())
    }

    /// A frame a packet socket sends on an ethN: ENETDOWN if it is down,
    /// ENODEV if there is no such interface. IPv4 goes out as if the
    /// stack had sent it (DHCP to the NAT's server included); ARP for the
    /// NAT's addresses is answered; anything else leaves and is lost, as
    /// on a wire nobody listens to.
    pub fn packet_send(&mut self, f: Frame) -> KResult<()> {
        let i = self
            .eths
            .iter()
            .position(|e| e.ifindex() == f.ifindex)
            .ok_or(Errno::ENODEV)?;
        if !self.eths[i].cfg.up {
            return Err(Errno::ENETDOWN);
        }
        let e = &mut self.eths[i];
        if let Some(l) = e.ether.as_mut() {
            // A real link: the frame goes out as the program made it
            // (packet sockets see it when it is written).
            let len = f.bytes.len() as u64;
            if l.send_frame(f.bytes) {
                e.stats.tx_packets += 1;
                e.stats.tx_bytes += len;
                return Ok(());
            }
            e.stats.tx_dropped += 1;
            return Err(Errno::ENOBUFS);
        }
        let ty = f.ethertype();
        let payload = f.bytes.get(packet::ETH_HLEN..).unwrap_or(&[]).to_vec();
        self.tap(f);
        match ty {
            packet::ETH_P_IP => self.eth_out(i, payload),
            packet::ETH_P_ARP => {
                let e = &mut self.eths[i];
                e.stats.tx_packets += 1;
                e.stats.tx_bytes += payload.len() as u64;
                let (mac, ifindex) = (e.mac, e.ifindex());
                if let Some(r) =
                    natpkt::arp_reply(&payload, &[e.net.gateway, e.net.dns], packet::NAT_MAC)
                {
                    let frame = packet::ethernet(mac, packet::NAT_MAC, packet::ETH_P_ARP, &r);
                    e.stats.rx_packets += 1;
                    e.stats.rx_bytes += r.len() as u64;
                    self.tap(Frame {
                        ifindex,
                        pkttype: packet::PACKET_HOST,
                        bytes: frame,
                    });
                }
            }
            _ => {
                let e = &mut self.eths[i];
                e.stats.tx_packets += 1;
                e.stats.tx_bytes += payload.len() as u64;
            }
        }
        Ok(())
    }

    /// Why the NAT ended guest socket `h`'s connect, once.
    pub fn take_conn_error(&mut self, h: SocketHandle) -> Option<Errno> {
        self.conn_errors.remove(&h)
    }

    /// A NAT-side connection.
    pub fn nat_tcp(&mut self, h: NatHandle) -> Option<&mut tcp::Socket<'static>> {
        let i = self.eth_pos(h.n)?;
        Some(
            self.eths[i]
                .nat
                .as_mut()?
                .sockets
                .get_mut::<tcp::Socket>(h.h),
        )
    }

    /// Drops a NAT-side connection (aborting it if still open).
    pub fn nat_remove(&mut self, h: NatHandle) {
        let Some(i) = self.eth_pos(h.n) else {
            return;
        };
        let Some(nat) = self.eths[i].nat.as_mut() else {
            return;
        };
        let s = nat.sockets.get_mut::<tcp::Socket>(h.h);
        if s.state() != tcp::State::TimeWait {
            s.abort();
        }
        nat.orphans.push(h.h);
        nat.outbound.remove(&h.h);
    }

    /// Starts a TCP connection from `local` to `remote` on socket `h`.
    /// Without a local address, a connection off the guest takes the
    /// address of the interface its route leaves by.
    pub fn tcp_connect(
        &mut self,
        h: SocketHandle,
        remote: smoltcp::wire::IpEndpoint,
        local: smoltcp::wire::IpListenEndpoint,
    ) -> KResult<()> {
        let mut local = local;
        if let (None, IpAddress::Ipv4(d)) = (local.addr, remote.addr) {
            if !self.is_local(IpAddr::V4(d)) {
                local.addr = self.src_for(d).map(IpAddress::Ipv4);
            }
        }
        let cx = self.iface.context();
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .connect(cx, remote, local)
            .map_err(|e| match e {
                tcp::ConnectError::InvalidState => Errno::EISCONN,
                tcp::ConnectError::Unaddressable => Errno::EADDRNOTAVAIL,
            })
    }

    /// Runs the stack until nothing moves; true if anything did.
    pub fn poll(&mut self) -> bool {
        let mut moved = false;
        for _ in 0..POLL_ROUNDS {
            let now = self.now();
            let r = self.iface.poll(now, &mut self.dev, &mut self.sockets);
            let mut busy = r != PollResult::None;
            busy |= self.route_sent();
            for nat in self.eths.iter_mut().filter_map(|e| e.nat.as_mut()) {
                busy |= nat.iface.poll(now, &mut nat.dev, &mut nat.sockets) != PollResult::None;
                busy |= !nat.dev.rx.is_empty();
            }
            busy |= self.route_nat_sent();
            if !busy && self.dev.rx.is_empty() {
                break;
            }
            moved = true;
        }
        let now = std::time::Instant::now();
        for e in &mut self.eths {
            let me = e.cfg.ip();
            if let Some(l) = e.ether.as_mut() {
                l.expire(now, me);
            }
        }
        self.reap_orphans();
        if moved {
            self.generation = self.generation.wrapping_add(1);
        }
        moved
    }

    /// Hands each packet the guest sent to its destination: a local
    /// address comes back in on lo, anything else goes out of the
    /// interface its route leaves by (a limited broadcast, or a packet
    /// no route covers, such as a DHCP client's: the first interface
    /// that is up), else it is dropped. True if any moved.
    fn route_sent(&mut self) -> bool {
        let mut any = false;
        while let Some(p) = self.dev.sent.pop_front() {
            any = true;
            let len = p.len() as u64;
            let dst = dst_of(&p);
            if dst.is_some_and(|d| self.is_local(d)) {
                self.note_icmp_error(&p);
                self.lo.tx_packets += 1;
                self.lo.tx_bytes += len;
                if self.dev.deliver(p) {
                    self.lo.rx_packets += 1;
                    self.lo.rx_bytes += len;
                } else {
                    self.lo.rx_dropped += 1;
                }
                continue;
            }
            let routed = match dst {
                Some(IpAddr::V4(d)) => self.route_of(d),
                _ => None,
            };
            match routed.or_else(|| self.eths.iter().position(|e| e.cfg.up)) {
                Some(i) if self.eths[i].ether.is_some() => self.ether_out(i, p),
                Some(i) => {
                    // The guest's SYN offers the MSS of eth's MTU, as
                    // Linux's would (the stack computes its own from
                    // lo's): the NAT's socket sends segments of at most
                    // that.
                    let mut p = p;
                    super::ether::clamp_mss(&mut p, self.eths[i].mss());
                    self.tap_ipv4(self.eths[i].ifindex(), &p, true);
                    self.eth_out(i, p);
                }
                None => self.lo.tx_dropped += 1,
            }
        }
        self.lo.tx_dropped = self.lo.tx_dropped.max(self.dev.tx_dropped);
        any
    }

    /// A packet the guest sends out on the interface at `i`, to its NAT:
    /// UDP through a host socket (or the DHCP server), pings answered for
    /// the NAT's addresses, TCP to the NAT's stack (a SYN opens a host
    /// connection).
    fn eth_out(&mut self, i: usize, p: Vec<u8>) {
        let len = p.len() as u64;
        let Some(e) = self.eths.get_mut(i) else {
            return;
        };
        let (n, net) = (e.n, e.net);
        let Some(nat) = e.nat.as_mut() else {
            return;
        };
        let stats = &mut e.stats;
        if let Some(d) = natpkt::udp_of(&p) {
            if dhcp::is_for_server(&d, &net) {
                // The NAT's own DHCP server answers; nothing leaves.
                stats.tx_packets += 1;
                stats.tx_bytes += len;
                if let Some(r) = dhcp::answer(&d, &net) {
                    self.eth_rx(i, r);
                }
                return;
            }
            // UDP leaves through a host socket (`kernel/netudp.rs`).
            if nat.udp_out.len() < UDP_OUT_MAX {
                nat.udp_out.push_back(d);
                stats.tx_packets += 1;
                stats.tx_bytes += len;
            } else {
                stats.tx_dropped += 1;
            }
            return;
        }
        if natpkt::is_echo_request(&p) {
            // Pings: the NAT answers for its own addresses; no
            // ICMP goes out to the host.
            stats.tx_packets += 1;
            stats.tx_bytes += len;
            if let Some(r) = natpkt::echo_reply(&p, &[net.gateway, net.dns]) {
                self.eth_rx(i, r);
            }
            return;
        }
        if let Some(t) = tcp_syn_of(&p) {
            if nat.held.iter().any(|h| h.1 == t) {
                return; // a retransmission of a held SYN
            }
            if !nat.outbound.values().any(|&v| v == t) {
                let id = self.next_req;
                self.next_req += 1;
                nat.pending.push(Outbound {
                    id,
                    dst: t.1,
                    n,
                    net,
                });
                nat.held.push((id, t, p));
                stats.tx_packets += 1;
                stats.tx_bytes += len;
                return;
            }
        }
        if nat.dev.deliver(p) {
            stats.tx_packets += 1;
            stats.tx_bytes += len;
        } else {
            stats.tx_dropped += 1;
        }
    }

    /// A packet the guest sends out on the Ethernet link at `i`: to the
    /// next hop (the route's gateway, else the destination itself) found
    /// by ARP, or to everyone for a broadcast. IPv4 only (the interfaces
    /// have no IPv6 address).
    fn ether_out(&mut self, i: usize, mut p: Vec<u8>) {
        let Some(e) = self.eths.get_mut(i) else {
            return;
        };
        let mss = e.mss();
        let Some(l) = e.ether.as_mut() else {
            return;
        };
        // No IP fragmentation: a packet over the MTU is dropped (TCP's
        // segments fit: SYNs both ways carry the MSS of this MTU).
        if p.len() > usize::from(e.cfg.mtu) {
            e.stats.tx_dropped += 1;
            return;
        }
        super::ether::clamp_mss(&mut p, mss);
        // The link fills the checksums as it frames the packet.
        let len = p.len() as u64;
        let Some(IpAddr::V4(dst)) = dst_of(&p) else {
            e.stats.tx_dropped += 1;
            return;
        };
        let bcast = dst.is_broadcast()
            || (!e.cfg.broadcast.is_unspecified() && dst == e.cfg.broadcast)
            || dst.is_multicast();
        let hop = e.cfg.lookup(dst).and_then(|r| r.gw).unwrap_or(dst);
        if l.send_ip(p, hop, bcast, e.cfg.ip(), std::time::Instant::now()) {
            e.stats.tx_packets += 1;
            e.stats.tx_bytes += len;
        } else {
            e.stats.tx_dropped += 1;
        }
    }

    /// Packets the NATs sent: those for the guest arrive on their
    /// interface.
    fn route_nat_sent(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.eths.len() {
            let e = &mut self.eths[i];
            let Some(nat) = e.nat.as_mut().filter(|n| !n.dev.sent.is_empty()) else {
                continue;
            };
            any = true;
            let sent: Vec<Vec<u8>> = nat.dev.sent.drain(..).collect();
            let me = e.cfg.ip().map(IpAddr::V4);
            let mss = e.mss();
            for mut p in sent {
                // The NAT's SYNs offer its device's MSS: lowered to
                // eth's, so the guest's TCP sends segments that fit it.
                super::ether::clamp_mss(&mut p, mss);
                if me.is_some() && dst_of(&p) == me {
                    self.eth_rx(i, p);
                } else {
                    self.eths[i].stats.rx_dropped += 1;
                }
            }
        }
        any
    }

    /// When smoltcp next needs a poll (None: not before something happens).
    pub fn poll_at(&mut self) -> Option<std::time::Instant> {
        let now = self.now();
        let nat_at = self
            .eths
            .iter_mut()
            .filter_map(|e| {
                let nat = e.nat.as_mut()?;
                nat.iface.poll_at(now, &nat.sockets)
            })
            .min();
        // A packet waiting for ARP: asked again, or dropped, in a second.
        let arp_at = self
            .eths
            .iter()
            .any(|e| e.ether.as_ref().is_some_and(|l| l.waiting()))
            .then(|| now + smoltcp::time::Duration::from_secs(1));
        let at = self
            .iface
            .poll_at(now, &self.sockets)
            .into_iter()
            .chain(nat_at)
            .chain(arp_at)
            .min()?;
        let us = u64::try_from(at.total_micros()).unwrap_or(0);
        Some(self.epoch + std::time::Duration::from_micros(us))
    }

    /// A TCP socket the guest closed: kept until its close handshake ends.
    /// Reaped after the next poll (an abort's reset is sent first).
    pub fn orphan(&mut self, h: SocketHandle) {
        self.orphans.push(h);
    }

    fn reap_orphans(&mut self) {
        for nat in self.eths.iter_mut().filter_map(|e| e.nat.as_mut()) {
            let sockets = &mut nat.sockets;
            nat.orphans.retain(|&h| {
                let st = sockets.get::<tcp::Socket>(h).state();
                let done = matches!(st, tcp::State::Closed | tcp::State::TimeWait);
                if done {
                    sockets.remove(h);
                }
                !done
            });
        }
        let sockets = &mut self.sockets;
        let errors = &mut self.conn_errors;
        self.orphans.retain(|&h| {
            let st = sockets.get::<tcp::Socket>(h).state();
            // TIME_WAIT ends at once: nothing on lo is ever late.
            let done = matches!(st, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(h);
                errors.remove(&h);
            }
            !done
        });
    }

    /// Sockets the guest closed that are still closing (tests, /proc).
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    pub fn udp(&mut self, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(h)
    }

    pub fn icmp(&mut self, h: SocketHandle) -> &mut icmp::Socket<'static> {
        self.sockets.get_mut::<icmp::Socket>(h)
    }

    /// Binds `port` on `addr` (None: any) for `owner`; port 0 picks an
    /// ephemeral one. EADDRINUSE on a conflict, as Linux decides it:
    /// overlapping addresses clash unless both set SO_REUSEADDR and
    /// neither listens.
    pub fn bind_port(
        &mut self,
        owner: u64,
        proto: Proto,
        addr: Option<IpAddr>,
        port: u16,
        reuseaddr: bool,
    ) -> KResult<u16> {
        let port = if port == 0 {
            self.ephemeral(proto)?
        } else {
            if self
                .bindings
                .iter()
                .any(|b| b.proto == proto && b.port == port && clashes(b, addr, reuseaddr))
            {
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        self.bindings.push(Binding {
            owner,
            proto,
            addr,
            port,
            reuseaddr,
            listening: false,
        });
        Ok(port)
    }

    /// Marks `owner`'s binding as listening: EADDRINUSE if another
    /// socket holds the same port (SO_REUSEADDR does not share a
    /// listening port).
    pub fn listen_port(&mut self, owner: u64, proto: Proto) -> KResult<()> {
        let Some(me) = self
            .bindings
            .iter()
            .find(|b| b.owner == owner && b.proto == proto)
        else {
            return Err(Errno::EINVAL);
        };
        let me = *me;
        let clash = self.bindings.iter().any(|b| {
            b.owner != owner
                && b.proto == proto
                && b.port == me.port
                && (b.addr.is_none() || me.addr.is_none() || b.addr == me.addr)
                && (b.listening || !(b.reuseaddr && me.reuseaddr))
        });
        if clash {
            return Err(Errno::EADDRINUSE);
        }
        for b in self.bindings.iter_mut().filter(|b| b.owner == owner) {
            b.listening = true;
        }
        Ok(())
    }

    /// Gives back `owner`'s ports.
    pub fn unbind(&mut self, owner: u64) {
        self.bindings.retain(|b| b.owner != owner);
    }

    fn ephemeral(&mut self, proto: Proto) -> KResult<u16> {
        let span = (*EPHEMERAL.end() - *EPHEMERAL.start()) as u32 + 1;
        for _ in 0..span {
            let p = self.next_ephemeral;
            self.next_ephemeral = if p >= *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                p + 1
            };
            if !self
                .bindings
                .iter()
                .any(|b| b.proto == proto && b.port == p)
            {
                return Ok(p);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    /// Bound ports (tests, /proc/net).
    pub fn bound(&self, proto: Proto) -> Vec<(Option<IpAddr>, u16)> {
        self.bindings
            .iter()
            .filter(|b| b.proto == proto)
            .map(|b| (b.addr, b.port))
            .collect()
    }
}

/// A TCP SYN (without ACK) in a raw IPv4 packet: (source port,
/// destination).
fn tcp_syn_of(p: &[u8]) -> Option<(u16, SocketAddrV4)> {
    if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
        return None;
    }
    let ihl = ((p[0] & 0xf) as usize) * 4;
    let t = p.get(ihl..ihl.checked_add(20)?)?;
    if t[13] & 0x12 != 0x02 {
        return None;
    }
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let sport = u16::from_be_bytes([t[0], t[1]]);
    let dport = u16::from_be_bytes([t[2], t[3]]);
    Some((sport, SocketAddrV4::new(dst, dport)))
}

/// The destination of a raw IPv4 or IPv6 packet.
fn dst_of(p: &[u8]) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let b: [u8; 4] = p[16..20].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 if p.len() >= 40 => {
            let b: [u8; 16] = p[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// A v4-mapped IPv6 address as the IPv4 address it maps.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn clashes(b: &Binding, addr: Option<IpAddr>, reuseaddr: bool) -> bool {
    let overlap = b.addr.is_none() || addr.is_none() || b.addr == addr;
    overlap && (b.listening || !(b.reuseaddr && reuseaddr))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big send rings are given while the budget has room for another,
    /// then sockets get their plain size; a socket's own large SO_SNDBUF
    /// size is kept.
    #[test]
    fn big_send_rings_stay_within_the_budget() {
        use super::super::socket::BUF_MIN;
        let mut st = NetStack::new(1);
        st.send_budget = 3 * (SEND_AUTO - BUF_MIN) + 1000;
        let mut given = Vec::new();
        for _ in 0..5 {
            let n = st.autotuned_send_buf(BUF_MIN);
            given.push(n);
            let rx = tcp::SocketBuffer::new(vec![0u8; BUF_MIN]);
            let tx = tcp::SocketBuffer::new(vec![0u8; n]);
            st.sockets.add(tcp::Socket::new(rx, tx));
        }
        assert_eq!(given, [SEND_AUTO, SEND_AUTO, SEND_AUTO, BUF_MIN, BUF_MIN]);
        assert_eq!(st.autotuned_send_buf(2 * SEND_AUTO), 2 * SEND_AUTO);
        let mut none = NetStack::new(1);
        assert_eq!(none.autotuned_send_buf(BUF_MIN), BUF_MIN, "no budget");
    }

    #[test]
    fn bind_conflicts_follow_linux() {
        let mut s = NetStack::new(1);
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s.bind_port(1, Proto::Tcp, None, 80, false), Ok(80));
        assert_eq!(
            s.bind_port(2, Proto::Tcp, lo, 80, false),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(s.bind_port(2, Proto::Udp, lo, 80, false), Ok(80));
        s.unbind(1);
        assert_eq!(s.bind_port(3, Proto::Tcp, lo, 80, true), Ok(80));
        assert_eq!(s.bind_port(4, Proto::Tcp, None, 80, true), Ok(80));
        // Both SO_REUSEADDR and 3 does not listen: 4 may (as Linux).
        assert_eq!(s.listen_port(4, Proto::Tcp), Ok(()));
        assert_eq!(s.listen_port(3, Proto::Tcp), Err(Errno::EADDRINUSE));
        assert_eq!(
            s.bind_port(5, Proto::Tcp, lo, 80, true),
            Err(Errno::EADDRINUSE)
        );
        let e = s.bind_port(6, Proto::Tcp, None, 0, false).unwrap();
        assert!(EPHEMERAL.contains(&e));
        let f = s.bind_port(7, Proto::Tcp, None, 0, false).unwrap();
        assert_ne!(e, f);
    }

    #[test]
    fn syn_parser_reads_the_tuple() {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[16..20].copy_from_slice(&[10, 0, 2, 2]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&8080u16.to_be_bytes());
        p[33] = 0x02;
        let want = (40000, "10.0.2.2:8080".parse().unwrap());
        assert_eq!(tcp_syn_of(&p), Some(want));
        p[33] = 0x12; // SYN+ACK: not a new connection
        assert_eq!(tcp_syn_of(&p), None);
        assert_eq!(dst_of(&p), Some("10.0.2.2".parse().unwrap()));
        p[0] = 0x4f; // options past the end
        assert_eq!(tcp_syn_of(&p), None);
    }

    proptest::proptest! {
        /// Whatever the bytes, the packet parsers answer without panicking.
        #[test]
        fn parsers_take_any_bytes(p in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = tcp_syn_of(&p);
            let _ = dst_of(&p);
        }
    }

    /// A TCP segment in an ethN frame the packet sockets keep: its
    /// payload length, and the MSS option if it is a SYN.
    fn segment_of(f: &Frame) -> Option<(usize, Option<u16>)> {
        let p = f.bytes.get(packet::ETH_HLEN..)?;
        if p.len() < 20 || p[9] != 6 {
            return None;
        }
        let ihl = usize::from(p[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let t = p.get(ihl..total)?;
        let doff = usize::from(t[12] >> 4) * 4;
        let mut mss = None;
        if t[13] & 0x02 != 0 {
            let opts = &t[20..doff];
            let mut i = 0;
            while i + 1 < opts.len() && opts[i] != 0 {
                if opts[i] == 1 {
                    i += 1;
                    continue;
                }
                if opts[i] == 2 {
                    mss = Some(u16::from_be_bytes([opts[i + 2], opts[i + 3]]));
                }
                i += usize::from(opts[i + 1]).max(2);
            }
        }
        Some((t.len() - doff, mss))
    }

    /// A forwarded connection on eth0=user moving 300 kB each way: at
    /// MTU 1500 both SYNs offer MSS 1460 and no segment carries more
    /// than 1460 bytes, as on a Linux guest's 1500-byte link; at 9000,
    /// 8960 and segments bigger than 1460 (the clamp follows the MTU).
    /// Without the clamps the stacks offer 65495 and send 64 KiB.
    #[test]
    fn user_link_segments_fit_its_mtu() {
        for mtu in [1500u16, 9000] {
            let mut st = NetStack::new(1);
            st.attach_user_nat(0, 2, true);
            st.configure(|ifs| ifs[0].set_mtu(mtu.into())).unwrap();
            st.taps = true;
            let buf = || tcp::SocketBuffer::new(vec![0u8; 256 << 10]);
            let mut g = tcp::Socket::new(buf(), buf());
            g.listen(80).unwrap();
            let gh = st.sockets.add(g);
            let nh = st.nat_connect(0, 80).unwrap();
            let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
            let (mut sent_g, mut got_n, mut sent_n, mut got_g) = (0, 0, 0, 0);
            let (mut biggest, mut syn_mss) = (0usize, Vec::new());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while (got_n < data.len() || got_g < data.len()) && std::time::Instant::now() < deadline
            {
                if !st.poll() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                for f in std::mem::take(&mut st.frames) {
                    if let Some((len, mss)) = segment_of(&f) {
                        biggest = biggest.max(len);
                        syn_mss.extend(mss);
                    }
                }
                let g = st.tcp(gh);
                if g.may_send() {
                    sent_g += g.send_slice(&data[sent_g..]).unwrap();
                }
                while g.can_recv() {
                    got_g += g.recv(|b| (b.len(), b.len())).unwrap();
                }
                let n = st.nat_tcp(nh).unwrap();
                while n.can_recv() {
                    got_n += n.recv(|b| (b.len(), b.len())).unwrap();
                }
                if n.may_send() {
                    sent_n += n.send_slice(&data[sent_n..]).unwrap();
                }
            }
            assert_eq!((got_n, got_g), (data.len(), data.len()), "MTU {mtu}");
            let mss = usize::from(mtu) - 40;
            assert_eq!(syn_mss, [mss as u16, mss as u16], "MTU {mtu}: both SYNs");
            assert!(biggest <= mss, "MTU {mtu}: a {biggest}-byte segment");
            assert!(
                biggest > 1460 || mtu == 1500,
                "MTU {mtu}: at most {biggest}"
            );
        }
    }

    /// A tap's frames while ethN is down are counted nowhere (a Linux
    /// NIC that is down receives nothing); once up, a malformed one is a
    /// drop and an IPv6 frame (no IPv6 here) a received packet only.
    #[test]
    fn a_down_link_counts_nothing() {
        let mut st = NetStack::new(1);
        let mac = [2, 0, 0, 0, 0, 1];
        st.attach_ether(0, mac, 1500, false);
        let mut v6 = packet::ethernet(
            [0x33, 0x33, 0, 0, 0, 0x16],
            [2, 0, 0, 0, 0, 2],
            0x86dd,
            &[0x60; 40],
        );
        st.ether_in(0, &v6);
        st.ether_in(0, &[1, 2, 3]);
        assert_eq!(st.eths()[0].stats, IfStats::default());
        st.configure(|ifs| {
            ifs[0].cfg.set_up(true);
            Ok(())
        })
        .unwrap();
        st.ether_in(0, &v6);
        v6.truncate(5);
        st.ether_in(0, &v6);
        let s = st.eths()[0].stats;
        assert_eq!((s.rx_packets, s.rx_dropped), (2, 1), "{s:?}");
    }

    #[test]
    fn lo_addresses_are_local() {
        let s = NetStack::new(1);
        assert!(s.is_local("127.0.0.1".parse().unwrap()));
        assert!(s.is_local("127.3.2.1".parse().unwrap()));
        assert!(s.is_local("::1".parse().unwrap()));
        assert!(!s.is_local("10.0.2.15".parse().unwrap()));
    }
}
