//! AF_PACKET sockets: `sockaddr_ll` decoding and encoding, the Ethernet
//! frames eth0 shows them (the stack underneath carries IP packets: a
//! frame is made around each, with QEMU's user-mode MAC addresses), and
//! one socket's state: its protocol and interface, its filter, and its
//! capped receive queue (`net::dgram`). Pure, like `net::unix`: the file is
//! `kernel/files/packet.rs`, the syscalls `syscalls/rawnet.rs`.

use super::bpf;
use super::dgram::{Datagram, DgramQueue};
use crate::errno::{Errno, KResult};

pub const AF_PACKET: u16 = 17;
pub const SOL_PACKET: i32 = 263;
pub const PACKET_ADD_MEMBERSHIP: i32 = 1;
pub const PACKET_DROP_MEMBERSHIP: i32 = 2;
pub const PACKET_AUXDATA: i32 = 8;
pub const SO_ATTACH_FILTER: i32 = 26;
pub const SO_DETACH_FILTER: i32 = 27;

pub const ETH_P_ALL: u16 = 0x0003;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_HLEN: usize = 14;
pub const ARPHRD_ETHER: u16 = 1;

/// sll_pkttype.
pub const PACKET_HOST: u8 = 0;
pub const PACKET_BROADCAST: u8 = 1;
pub const PACKET_OTHERHOST: u8 = 3;
pub const PACKET_OUTGOING: u8 = 4;

/// eth0's MAC (QEMU's default NIC address) and the NAT's (slirp's
/// 52:55:0a:00:02:02: its gateway address in the low bytes).
pub const ETH0_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

/// ethN's MAC: eth0's with N added to the last byte.
pub fn eth_mac(n: u8) -> [u8; 6] {
    let mut m = ETH0_MAC;
    m[5] = m[5].wrapping_add(n);
    m
}

/// The MAC of the interface with `ifindex` (ethN is N + 2).
pub fn mac_of_ifindex(ifindex: i32) -> [u8; 6] {
    eth_mac(u8::try_from(ifindex.saturating_sub(2)).unwrap_or(0))
}
pub const NAT_MAC: [u8; 6] = [0x52, 0x55, 10, 0, 2, 2];
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// sizeof(struct sockaddr_ll).
pub const SOCKADDR_LL_LEN: usize = 20;
/// Bytes a socket's receive queue holds (Linux's default rmem, 212992).
pub const RCVBUF: usize = 212_992;
/// What one queued frame costs besides its bytes (Linux charges the
/// skb's truesize, a few hundred bytes more than the data).
const FRAME_OVERHEAD: usize = 576;
/// The largest frame eth0 carries: MTU 1500 plus the Ethernet header.
pub const FRAME_MAX: usize = 1500 + ETH_HLEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SOCK_RAW: the whole frame.
    Raw,
    /// SOCK_DGRAM: from the network header on; the link header is in
    /// the address.
    Dgram,
}

/// struct sockaddr_ll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockaddrLl {
    /// Network byte order value, host-endian here.
    pub protocol: u16,
    pub ifindex: i32,
    pub hatype: u16,
    pub pkttype: u8,
    pub halen: u8,
    pub addr: [u8; 8],
}

impl SockaddrLl {
    /// Decodes a guest sockaddr_ll: EINVAL if short, wrong family.
    pub fn parse(raw: &[u8]) -> KResult<SockaddrLl> {
        if raw.len() < 12 {
            return Err(Errno::EINVAL);
        }
        if u16::from_le_bytes([raw[0], raw[1]]) != AF_PACKET {
            return Err(Errno::EINVAL);
        }
        let mut addr = [0u8; 8];
        let n = raw.len().min(SOCKADDR_LL_LEN).saturating_sub(12);
        addr[..n].copy_from_slice(&raw[12..12 + n]);
        Ok(SockaddrLl {
            protocol: u16::from_be_bytes([raw[2], raw[3]]),
            ifindex: i32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
            hatype: u16::from_le_bytes([raw[8], raw[9]]),
            pkttype: raw[10],
            halen: raw[11],
            addr,
        })
    }

    pub fn encode(&self) -> [u8; SOCKADDR_LL_LEN] {
        let mut b = [0u8; SOCKADDR_LL_LEN];
        b[0..2].copy_from_slice(&AF_PACKET.to_le_bytes());
        b[2..4].copy_from_slice(&self.protocol.to_be_bytes());
        b[4..8].copy_from_slice(&self.ifindex.to_le_bytes());
        b[8..10].copy_from_slice(&self.hatype.to_le_bytes());
        b[10] = self.pkttype;
        b[11] = self.halen;
        b[12..20].copy_from_slice(&self.addr);
        b
    }
}

/// One frame seen on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ifindex: i32,
    pub pkttype: u8,
    /// The whole Ethernet frame.
    pub bytes: Vec<u8>,
}

impl Frame {
    /// An Ethernet frame around an IPv4 packet on ethN: in from the NAT
    /// (to ethN's MAC, or broadcast) or out from the guest.
    pub fn ipv4(ifindex: i32, packet: &[u8], outgoing: bool) -> Frame {
        let bcast = packet.len() >= 20 && packet[16..20] == [255; 4];
        let me = mac_of_ifindex(ifindex);
        let (dst, src, pkttype) = if outgoing {
            (NAT_MAC, me, PACKET_OUTGOING)
        } else if bcast {
            (BROADCAST_MAC, NAT_MAC, PACKET_BROADCAST)
        } else {
            (me, NAT_MAC, PACKET_HOST)
        };
        Frame {
            ifindex,
            pkttype,
            bytes: ethernet(dst, src, ETH_P_IP, packet),
        }
    }

    pub fn ethertype(&self) -> u16 {
        match self.bytes.get(12..14) {
            Some(t) => u16::from_be_bytes([t[0], t[1]]),
            None => 0,
        }
    }
}

/// An Ethernet frame: destination, source, type, payload.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A frame read from a packet socket.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub n: usize,
    /// The whole length (MSG_TRUNC).
    pub full: usize,
    pub from: SockaddrLl,
}

pub struct PacketSocket {
    pub kind: Kind,
    /// The protocol it receives (host order; 0: none until bound).
    pub protocol: u16,
    /// The interface it is bound to (0: all).
    pub ifindex: i32,
    pub filter: Option<bpf::Program>,
    pub auxdata: bool,
    rx: DgramQueue<Queued>,
}

/// A frame as a packet socket keeps it: cut to what its filter kept,
/// read from `off` on (the network header for SOCK_DGRAM).
struct Queued {
    frame: Frame,
    off: usize,
    /// Its length from `off` before the filter's cut (MSG_TRUNC).
    full: usize,
}

impl Datagram for Queued {
    fn bytes(&self) -> &[u8] {
        self.frame.bytes.get(self.off..).unwrap_or(&[])
    }
    fn full_len(&self) -> usize {
        self.full
    }
    fn cost(&self) -> usize {
        self.frame.bytes.len().saturating_add(FRAME_OVERHEAD)
    }
}

impl PacketSocket {
    pub fn new(kind: Kind, protocol: u16) -> PacketSocket {
        PacketSocket {
            kind,
            protocol,
            ifindex: 0,
            filter: None,
            auxdata: false,
            rx: DgramQueue::new(),
        }
    }

    /// Offers `f` to the socket: queued if its protocol and interface
    /// match and its filter keeps it (cut to what the filter keeps).
    /// Outgoing frames reach ETH_P_ALL sockets only, as on Linux.
    /// True if queued.
    pub fn offer(&mut self, f: &Frame) -> bool {
        let ty = f.ethertype();
        let wanted = match self.protocol {
            0 => false,
            ETH_P_ALL => true,
            p => p == ty && f.pkttype != PACKET_OUTGOING,
        };
        if !wanted || (self.ifindex != 0 && self.ifindex != f.ifindex) {
            return false;
        }
        let off = self.offset(f);
        let data = f.bytes.get(off..).unwrap_or(&[]);
        let keep = match &self.filter {
            None => usize::MAX,
            Some(p) => p.run(&bpf::Packet {
                data,
                frame: &f.bytes,
                net_off: ETH_HLEN,
                protocol: ty,
                pkttype: f.pkttype,
                ifindex: f.ifindex,
            }) as usize,
        };
        if keep == 0 {
            return false;
        }
        let snap = data.len().min(keep);
        let mut kept = f.clone();
        kept.bytes.truncate(off + snap);
        let q = Queued {
            frame: kept,
            off,
            full: data.len(),
        };
        self.rx.push(q, RCVBUF)
    }

    /// Frames dropped because the queue was full.
    pub fn drops(&self) -> u64 {
        self.rx.drops()
    }

    /// Where the socket's view of `f` starts.
    fn offset(&self, f: &Frame) -> usize {
        match self.kind {
            Kind::Raw => 0,
            Kind::Dgram => ETH_HLEN.min(f.bytes.len()),
        }
    }

    pub fn readable(&self) -> bool {
        !self.rx.is_empty()
    }

    /// Bytes of the next frame as the socket reads it (FIONREAD).
    pub fn next_len(&self) -> usize {
        self.rx.next_len()
    }

    /// Reads the next frame into `buf`; EAGAIN if none.
    pub fn recv(&mut self, buf: &mut [u8], peek: bool) -> KResult<Received> {
        let (got, from) = self
            .rx
            .recv_with(buf, peek, |q| {
                let f = &q.frame;
                let mut addr = [0u8; 8];
                addr[..6].copy_from_slice(f.bytes.get(6..12).unwrap_or(&[0; 6]));
                SockaddrLl {
                    protocol: f.ethertype(),
                    ifindex: f.ifindex,
                    hatype: ARPHRD_ETHER,
                    pkttype: f.pkttype,
                    halen: 6,
                    addr,
                }
            })
            .ok_or(Errno::EAGAIN)?;
        Ok(Received {
            n: got.n,
            full: got.full,
            from,
        })
    }

    /// The frame a send makes of `data` for `to` (or the bound
    /// protocol and interface): EMSGSIZE if too big, EINVAL if a raw
    /// frame is shorter than its header, ENXIO with no interface.
    pub fn frame_for(&self, data: &[u8], to: Option<&SockaddrLl>) -> KResult<Frame> {
        let ifindex = to.map_or(self.ifindex, |a| a.ifindex);
        if ifindex == 0 {
            return Err(Errno::ENXIO);
        }
        let bytes = match self.kind {
            Kind::Raw => {
                if data.len() < ETH_HLEN {
                    return Err(Errno::EINVAL);
                }
                data.to_vec()
            }
            Kind::Dgram => {
                let proto = to.map_or(self.protocol, |a| a.protocol);
                let dst = match to {
                    Some(a) if a.halen >= 6 => [
                        a.addr[0], a.addr[1], a.addr[2], a.addr[3], a.addr[4], a.addr[5],
                    ],
                    _ => return Err(Errno::EINVAL),
                };
                ethernet(dst, mac_of_ifindex(ifindex), proto, data)
            }
        };
        if bytes.len() > FRAME_MAX {
            return Err(Errno::EMSGSIZE);
        }
        Ok(Frame {
            ifindex,
            pkttype: PACKET_OUTGOING,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_to(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = 17;
        p[16..20].copy_from_slice(&dst);
        p
    }

    #[test]
    fn sockaddr_ll_round_trip() {
        let a = SockaddrLl {
            protocol: ETH_P_IP,
            ifindex: 2,
            hatype: 1,
            pkttype: 1,
            halen: 6,
            addr: [1, 2, 3, 4, 5, 6, 0, 0],
        };
        let b = a.encode();
        assert_eq!(&b[0..4], &[17, 0, 8, 0]);
        assert_eq!(SockaddrLl::parse(&b), Ok(a));
        assert_eq!(SockaddrLl::parse(&b[..11]), Err(Errno::EINVAL));
        let mut inet = b;
        inet[0] = 2;
        assert_eq!(SockaddrLl::parse(&inet), Err(Errno::EINVAL));
    }

    #[test]
    fn dgram_sockets_read_from_the_ip_header_raw_ones_the_frame() {
        let f = Frame::ipv4(2, &udp_to([255; 4]), false);
        assert_eq!(f.pkttype, PACKET_BROADCAST);
        let mut d = PacketSocket::new(Kind::Dgram, ETH_P_IP);
        let mut r = PacketSocket::new(Kind::Raw, ETH_P_ALL);
        let mut arp = PacketSocket::new(Kind::Raw, ETH_P_ARP);
        assert!(d.offer(&f) && r.offer(&f) && !arp.offer(&f));
        let mut buf = [0u8; 100];
        let got = d.recv(&mut buf, false).unwrap();
        assert_eq!((got.n, got.full), (28, 28));
        assert_eq!(buf[0], 0x45);
        assert_eq!(got.from.addr[..6], NAT_MAC);
        assert_eq!(got.from.protocol, ETH_P_IP);
        let got = r.recv(&mut buf[..10], false).unwrap();
        assert_eq!((got.n, got.full), (10, 42));
        assert_eq!(buf[..6], BROADCAST_MAC);
        assert_eq!(d.recv(&mut buf, false), Err(Errno::EAGAIN));
        // Outgoing frames: ETH_P_ALL only.
        let out = Frame::ipv4(2, &udp_to([10, 0, 2, 2]), true);
        assert!(!d.offer(&out));
        assert!(r.offer(&out));
        // Bound to another interface: nothing.
        d.ifindex = 1;
        assert!(!d.offer(&f));
    }

    #[test]
    fn the_queue_is_capped_and_drops_are_counted() {
        let mut d = PacketSocket::new(Kind::Dgram, ETH_P_IP);
        let f = Frame::ipv4(2, &vec![0x45; 1500], false);
        let mut n = 0;
        while d.offer(&f) {
            n += 1;
        }
        assert_eq!(n, RCVBUF / (1514 + FRAME_OVERHEAD));
        assert_eq!(d.drops(), 1);
        let mut buf = [0u8; 2000];
        d.recv(&mut buf, false).unwrap();
        assert!(d.offer(&f), "room again after a read");
    }

    #[test]
    fn sends_make_frames() {
        let d = PacketSocket::new(Kind::Dgram, ETH_P_IP);
        let to = SockaddrLl {
            protocol: ETH_P_IP,
            ifindex: 2,
            halen: 6,
            addr: [0xff; 8],
            ..Default::default()
        };
        let f = d.frame_for(&udp_to([255; 4]), Some(&to)).unwrap();
        assert_eq!(f.bytes.len(), 42);
        assert_eq!(f.ethertype(), ETH_P_IP);
        assert_eq!(f.bytes[6..12], ETH0_MAC);
        assert_eq!(d.frame_for(&[0; 28], None), Err(Errno::ENXIO));
        assert_eq!(d.frame_for(&[0; 1501], Some(&to)), Err(Errno::EMSGSIZE));
        let r = PacketSocket::new(Kind::Raw, ETH_P_ALL);
        assert_eq!(r.frame_for(&[0; 10], Some(&to)), Err(Errno::EINVAL));
    }
}
