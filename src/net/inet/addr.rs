//! `sockaddr_in` and `sockaddr_in6`: decoding with Linux's length and
//! family rules for bind, connect and sendto, and encoding for
//! getsockname, getpeername, accept and recvfrom. An AF_INET6 socket sees
//! IPv4 peers as v4-mapped addresses (`::ffff:a.b.c.d`); inside the stack
//! they are plain IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::errno::{Errno, KResult};

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// sizeof(struct sockaddr_in).
pub const SIN_LEN: usize = 16;
/// sizeof(struct sockaddr_in6).
pub const SIN6_LEN: usize = 28;
/// SIN6_LEN_RFC2133: the shortest sockaddr_in6 Linux takes (no scope id).
const SIN6_LEN_RFC2133: usize = 24;

/// The address family of an inet socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn raw(self) -> u16 {
        match self {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }

    /// The wildcard address of the family.
    pub fn any(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// What the guest's address asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrReq {
    /// AF_UNSPEC on connect: dissolve the association.
    Unspec,
    Addr(SocketAddr),
}

/// Why the address is read: Linux checks a little differently for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Bind,
    Connect,
    SendTo,
}

fn family_of(raw: &[u8]) -> KResult<u16> {
    if raw.len() < 2 {
        return Err(Errno::EINVAL);
    }
    Ok(u16::from_le_bytes([raw[0], raw[1]]))
}

/// Decodes a guest address for a socket of family `fam`.
pub fn parse(fam: Family, raw: &[u8], why: Use) -> KResult<AddrReq> {
    let f = family_of(raw)?;
    if why == Use::Connect && f == 0 {
        return Ok(AddrReq::Unspec);
    }
    match fam {
        Family::V4 => {
            if raw.len() < SIN_LEN {
                return Err(Errno::EINVAL);
            }
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            let ok_family = f == AF_INET
                || (f == 0 && (why == Use::SendTo || (why == Use::Bind && ip.is_unspecified())));
            if !ok_family {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            Ok(AddrReq::Addr(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        Family::V6 => {
            if raw.len() < SIN6_LEN_RFC2133 {
                return Err(Errno::EINVAL);
            }
            if f != AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[8..24]);
            let ip6 = Ipv6Addr::from(a);
            let ip = match ip6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(ip6),
            };
            Ok(AddrReq::Addr(SocketAddr::new(ip, port)))
        }
    }
}

/// Encodes `a` as a socket of family `fam` reports it.
pub fn encode(fam: Family, a: SocketAddr) -> Vec<u8> {
    let port = a.port().to_be_bytes();
    match fam {
        Family::V4 => {
            let ip = match a.ip() {
                IpAddr::V4(v) => v,
                IpAddr::V6(v) => v.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            };
            let mut b = vec![0u8; SIN_LEN];
            b[0..2].copy_from_slice(&AF_INET.to_le_bytes());
            b[2..4].copy_from_slice(&port);
            b[4..8].copy_from_slice(&ip.octets());
            b
        }
        Family::V6 => {
            let ip = match a.ip() {
                IpAddr::V4(v) if v.is_unspecified() => Ipv6Addr::UNSPECIFIED,
                IpAddr::V4(v) => v.to_ipv6_mapped(),
                IpAddr::V6(v) => v,
            };
            let mut b = vec![0u8; SIN6_LEN];
            b[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
            b[2..4].copy_from_slice(&port);
            b[8..24].copy_from_slice(&ip.octets());
            b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin(f: u16, port: u16, ip: [u8; 4]) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[0..2].copy_from_slice(&f.to_le_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&ip);
        b
    }

    #[test]
    fn v4_rules() {
        let a = sin(AF_INET, 8080, [127, 0, 0, 1]);
        let want = AddrReq::Addr("127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse(Family::V4, &a, Use::Bind), Ok(want));
        assert_eq!(encode(Family::V4, "127.0.0.1:8080".parse().unwrap()), a);
        assert_eq!(parse(Family::V4, &a[..15], Use::Bind), Err(Errno::EINVAL));
        assert_eq!(parse(Family::V4, &a[..1], Use::Connect), Err(Errno::EINVAL));
        let u = sin(0, 1, [127, 0, 0, 1]);
        assert_eq!(parse(Family::V4, &u, Use::Connect), Ok(AddrReq::Unspec));
        assert_eq!(parse(Family::V4, &u, Use::Bind), Err(Errno::EAFNOSUPPORT));
        assert!(parse(Family::V4, &sin(0, 1, [0; 4]), Use::Bind).is_ok());
        assert!(parse(Family::V4, &u, Use::SendTo).is_ok());
        assert_eq!(
            parse(Family::V4, &sin(1, 1, [0; 4]), Use::Bind),
            Err(Errno::EAFNOSUPPORT)
        );
    }

    #[test]
    fn v6_and_mapped() {
        let sa: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let b = encode(Family::V6, sa);
        assert_eq!(b.len(), SIN6_LEN);
        assert_eq!(&b[8..24], &Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets());
        assert_eq!(parse(Family::V6, &b, Use::Connect), Ok(AddrReq::Addr(sa)));
        let l6: SocketAddr = "[::1]:9".parse().unwrap();
        let b6 = encode(Family::V6, l6);
        assert_eq!(
            parse(Family::V6, &b6[..24], Use::Bind),
            Ok(AddrReq::Addr(l6))
        );
        assert_eq!(parse(Family::V6, &b6[..23], Use::Bind), Err(Errno::EINVAL));
        assert_eq!(
            parse(Family::V6, &sin(AF_INET, 1, [0; 4]), Use::Bind),
            Err(Errno::EINVAL)
        );
        let any = encode(Family::V6, "0.0.0.0:5".parse().unwrap());
        assert_eq!(&any[8..24], &[0u8; 16]);
    }
}
