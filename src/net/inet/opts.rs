//! Socket options of inet sockets: the ones that change something here
//! (SO_REUSEADDR for bind, SO_LINGER for close, SO_RCVBUF/SO_SNDBUF for
//! the buffers of sockets not yet connected, TCP_NODELAY for Nagle,
//! SO_KEEPALIVE for keep-alive probes) and the many that programs set and
//! that cannot matter on this stack (IP_TOS, TCP_CORK, TCP_KEEPIDLE, ...):
//! those are accepted and read back as set, with Linux's defaults before.
//! An option this table does not know is ENOPROTOOPT, as on Linux.

use std::collections::BTreeMap;

use super::stack::Proto;
use crate::errno::{Errno, KResult};
use crate::net::sockbuf::{rcvbuf_from_opt, sndbuf_from_opt};
use crate::net::*;

pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;

pub const IP_TOS: i32 = 1;
pub const IP_TTL: i32 = 2;
pub const TCP_NODELAY: i32 = 1;
pub const TCP_MAXSEG: i32 = 2;
pub const TCP_CONGESTION: i32 = 13;
pub const TCP_INFO: i32 = 11;
pub const IPV6_V6ONLY: i32 = 26;

/// Linux's defaults: TCP's send buffer starts at tcp_wmem[1], its
/// receive buffer at tcp_rmem[1]; UDP's at net.core.[rw]mem_default.
const TCP_SNDBUF: usize = 16384;
const TCP_RCVBUF: usize = 131072;
const UDP_BUF: usize = 212992;

/// Options accepted and read back without effect: (level, name,
/// default, is a flag that reads back as 0/1).
const PLAIN: &[(i32, i32, i32, bool)] = &[
    (SOL_SOCKET, SO_DEBUG, 0, true),
    (SOL_SOCKET, SO_REUSEPORT, 0, true),
    (SOL_SOCKET, SO_DONTROUTE, 0, true),
    (SOL_SOCKET, SO_BROADCAST, 0, true),
    (SOL_SOCKET, SO_RCVLOWAT, 1, false),
    (SOL_SOCKET, SO_SNDLOWAT, 1, false),
    (SOL_SOCKET, SO_PASSCRED, 0, true),
    (SOL_SOCKET, 12, 0, false), // SO_PRIORITY
    (SOL_SOCKET, 29, 0, true),  // SO_TIMESTAMP
    (SOL_SOCKET, 10, 0, true),  // SO_OOBINLINE
    (SOL_SOCKET, 36, 0, false), // SO_MARK
    (SOL_SOCKET, 40, 0, true),  // SO_RXQ_OVFL
    (SOL_SOCKET, 47, 0, false), // SO_BUSY_POLL
    (IPPROTO_IP, IP_TOS, 0, false),
    (IPPROTO_IP, IP_TTL, 64, false),
    (IPPROTO_IP, 8, 0, true),      // IP_PKTINFO
    (IPPROTO_IP, 10, 1, false),    // IP_MTU_DISCOVER (IP_PMTUDISC_WANT)
    (IPPROTO_IP, 11, 0, true),     // IP_RECVERR
    (IPPROTO_IP, 12, 0, true),     // IP_RECVTTL
    (IPPROTO_IP, 13, 0, true),     // IP_RECVTOS
    (IPPROTO_IP, 15, 0, true),     // IP_FREEBIND
    (IPPROTO_IP, 24, 0, true),     // IP_BIND_ADDRESS_NO_PORT
    (IPPROTO_IP, 33, 1, false),    // IP_MULTICAST_TTL
    (IPPROTO_IP, 34, 1, true),     // IP_MULTICAST_LOOP
    (IPPROTO_TCP, 3, 0, true),     // TCP_CORK
    (IPPROTO_TCP, 4, 7200, false), // TCP_KEEPIDLE
    (IPPROTO_TCP, 5, 75, false),   // TCP_KEEPINTVL
    (IPPROTO_TCP, 6, 9, false),    // TCP_KEEPCNT
    (IPPROTO_TCP, 7, 6, false),    // TCP_SYNCNT
    (IPPROTO_TCP, 8, 60, false),   // TCP_LINGER2
    (IPPROTO_TCP, 9, 0, false),    // TCP_DEFER_ACCEPT
    (IPPROTO_TCP, 10, 0, false),   // TCP_WINDOW_CLAMP
    (IPPROTO_TCP, 12, 1, true),    // TCP_QUICKACK
    (IPPROTO_TCP, 18, 0, false),   // TCP_USER_TIMEOUT
    (IPPROTO_TCP, 23, 0, false),   // TCP_FASTOPEN
    (IPPROTO_TCP, 25, -1, false),  // TCP_NOTSENT_LOWAT (read back as set)
    (IPPROTO_IPV6, 16, 64, false), // IPV6_UNICAST_HOPS
    (IPPROTO_IPV6, 18, 1, false),  // IPV6_MULTICAST_HOPS
    (IPPROTO_IPV6, 19, 1, true),   // IPV6_MULTICAST_LOOP
    (IPPROTO_IPV6, 49, 0, true),   // IPV6_RECVPKTINFO
    (IPPROTO_IPV6, 67, 0, false),  // IPV6_TCLASS
];

/// What a setsockopt asks of the socket beyond storing the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    Nagle(bool),
    KeepAlive(bool),
}

#[derive(Clone, Debug)]
pub struct InetOpts {
    pub reuseaddr: bool,
    pub keepalive: bool,
    pub nodelay: bool,
    pub v6only: bool,
    /// (on, seconds)
    pub linger: (i32, i32),
    pub sndbuf: usize,
    /// SO_SNDBUF was set: the size is the program's, not autotuned
    /// (Linux's SOCK_SNDBUF_LOCK).
    pub sndbuf_locked: bool,
    pub rcvbuf: usize,
    /// SO_RCVTIMEO / SO_SNDTIMEO as (sec, usec): stored and reported.
    pub rcvtimeo: (i64, i64),
    pub sndtimeo: (i64, i64),
    plain: BTreeMap<(i32, i32), i32>,
}

impl InetOpts {
    pub fn new(proto: Proto) -> InetOpts {
        let (sndbuf, rcvbuf) = match proto {
            Proto::Tcp => (TCP_SNDBUF, TCP_RCVBUF),
            Proto::Udp | Proto::Icmp => (UDP_BUF, UDP_BUF),
        };
        InetOpts {
            reuseaddr: false,
            keepalive: false,
            nodelay: false,
            v6only: false,
            linger: (0, 0),
            sndbuf,
            sndbuf_locked: false,
            rcvbuf,
            rcvtimeo: (0, 0),
            sndtimeo: (0, 0),
            plain: BTreeMap::new(),
        }
    }

    /// TCP_SYNCNT: how many times a connect's SYN is sent again.
    pub fn syn_retries(&self) -> u32 {
        self.plain
            .get(&(IPPROTO_TCP, 7))
            .map_or(6, |&v| v.clamp(1, 127) as u32)
    }

    /// setsockopt: `val` is the guest's option bytes (at most 16 read).
    pub fn set(&mut self, proto: Proto, level: i32, name: i32, val: &[u8]) -> KResult<Effect> {
        let tcp_level = level == IPPROTO_TCP;
        if tcp_level && proto != Proto::Tcp || level == IPPROTO_UDP {
            return Err(Errno::ENOPROTOOPT);
        }
        if level == IPPROTO_TCP && name == TCP_CONGESTION {
            return Ok(Effect::None);
        }
        let timeval = level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO);
        let need = if timeval || (level == SOL_SOCKET && name == SO_LINGER) {
            if timeval {
                16
            } else {
                8
            }
        } else {
            4
        };
        if val.len() < need {
            return Err(Errno::EINVAL);
        }
        let word = |o: usize| i32::from_le_bytes([val[o], val[o + 1], val[o + 2], val[o + 3]]);
        let v = word(0);
        match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => self.reuseaddr = v != 0,
            (SOL_SOCKET, SO_KEEPALIVE) => {
                self.keepalive = v != 0;
                return Ok(Effect::KeepAlive(v != 0));
            }
            (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => {
                self.sndbuf = sndbuf_from_opt(v);
                self.sndbuf_locked = true;
            }
            (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => self.rcvbuf = rcvbuf_from_opt(v),
            (SOL_SOCKET, SO_LINGER) => self.linger = (v, word(4)),
            (SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO) => {
                let q = |o: usize| i64::from_le_bytes(val[o..o + 8].try_into().expect("8"));
                let (sec, usec) = (q(0), q(8));
                if !(0..1_000_000).contains(&usec) {
                    return Err(Errno::EDOM);
                }
                if name == SO_RCVTIMEO {
                    self.rcvtimeo = (sec.max(0), usec);
                } else {
                    self.sndtimeo = (sec.max(0), usec);
                }
            }
            (IPPROTO_TCP, TCP_NODELAY) => {
                self.nodelay = v != 0;
                return Ok(Effect::Nagle(v == 0));
            }
            (IPPROTO_TCP, TCP_MAXSEG) => {
                if !(0..=32767).contains(&v) || (v != 0 && v < 88) {
                    return Err(Errno::EINVAL);
                }
                self.plain.insert((level, name), v);
            }
            (IPPROTO_IPV6, IPV6_V6ONLY) => self.v6only = v != 0,
            // TCP_SYNCNT: 1..=MAX_TCP_SYNCNT.
            (IPPROTO_TCP, 7) if !(1..=127).contains(&v) => return Err(Errno::EINVAL),
            (IPPROTO_IP, IP_TTL) if !(-1..=255).contains(&v) || v == 0 => {
                return Err(Errno::EINVAL);
            }
            (IPPROTO_IP, IP_TTL) if v == -1 => {
                self.plain.remove(&(level, name));
            }
            _ => {
                let Some(&(_, _, _, flag)) = PLAIN.iter().find(|p| p.0 == level && p.1 == name)
                else {
                    return Err(Errno::ENOPROTOOPT);
                };
                let v = match (level, name) {
                    // TCP keeps the ECN bits of IP_TOS to itself.
                    (IPPROTO_IP, IP_TOS) if proto == Proto::Tcp => v & 0xfc,
                    (IPPROTO_IP, IP_TOS) => v & 0xff,
                    _ if flag => (v != 0) as i32,
                    _ => v,
                };
                self.plain.insert((level, name), v);
            }
        }
        Ok(Effect::None)
    }

    /// getsockopt of the options this table keeps (the ones that need
    /// the socket's state are the caller's).
    pub fn get(&self, proto: Proto, level: i32, name: i32) -> KResult<Vec<u8>> {
        let int = |v: i32| v.to_le_bytes().to_vec();
        let timeval = |(s, u): (i64, i64)| {
            let mut v = s.to_le_bytes().to_vec();
            v.extend_from_slice(&u.to_le_bytes());
            v
        };
        if level == IPPROTO_TCP && proto != Proto::Tcp || level == IPPROTO_UDP {
            return Err(Errno::ENOPROTOOPT);
        }
        Ok(match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => int(self.reuseaddr as i32),
            (SOL_SOCKET, SO_KEEPALIVE) => int(self.keepalive as i32),
            (SOL_SOCKET, SO_SNDBUF) => int(self.sndbuf as i32),
            (SOL_SOCKET, SO_RCVBUF) => int(self.rcvbuf as i32),
            (SOL_SOCKET, SO_LINGER) => {
                let mut v = int(self.linger.0);
                v.extend(int(self.linger.1));
                v
            }
            (SOL_SOCKET, SO_RCVTIMEO) => timeval(self.rcvtimeo),
            (SOL_SOCKET, SO_SNDTIMEO) => timeval(self.sndtimeo),
            (IPPROTO_TCP, TCP_NODELAY) => int(self.nodelay as i32),
            (IPPROTO_TCP, TCP_MAXSEG) => int(*self.plain.get(&(level, name)).unwrap_or(&536)),
            (IPPROTO_TCP, TCP_CONGESTION) => b"cubic\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
            (IPPROTO_IPV6, IPV6_V6ONLY) => int(self.v6only as i32),
            _ => {
                let Some(&(_, _, def, _)) = PLAIN.iter().find(|p| p.0 == level && p.1 == name)
                else {
                    return Err(Errno::ENOPROTOOPT);
                };
                int(*self.plain.get(&(level, name)).unwrap_or(&def))
            }
        })
    }

    /// Linger with a zero timeout: close resets the connection.
    pub fn abortive_close(&self) -> bool {
        self.linger.0 != 0 && self.linger.1 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(o: &mut InetOpts, p: Proto, l: i32, n: i32, v: i32) -> KResult<Effect> {
        o.set(p, l, n, &v.to_le_bytes())
    }

    #[test]
    fn read_back_and_defaults() {
        let mut o = InetOpts::new(Proto::Tcp);
        assert_eq!(o.get(Proto::Tcp, IPPROTO_IP, IP_TTL), Ok(int(64)));
        assert_eq!(
            set(&mut o, Proto::Tcp, IPPROTO_IP, IP_TOS, 0x13),
            Ok(Effect::None)
        );
        assert_eq!(o.get(Proto::Tcp, IPPROTO_IP, IP_TOS), Ok(int(0x10)));
        assert_eq!(
            set(&mut o, Proto::Tcp, IPPROTO_TCP, TCP_NODELAY, 5),
            Ok(Effect::Nagle(false))
        );
        assert_eq!(o.get(Proto::Tcp, IPPROTO_TCP, TCP_NODELAY), Ok(int(1)));
        assert_eq!(
            set(&mut o, Proto::Tcp, SOL_SOCKET, SO_RCVBUF, 10000),
            Ok(Effect::None)
        );
        assert_eq!(o.rcvbuf, 20000);
        assert!(!o.sndbuf_locked, "autotuned until SO_SNDBUF");
        assert_eq!(
            set(&mut o, Proto::Tcp, SOL_SOCKET, SO_SNDBUF, 10000),
            Ok(Effect::None)
        );
        assert!(o.sndbuf_locked);
        assert_eq!(
            set(&mut o, Proto::Tcp, SOL_SOCKET, 999, 1),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            set(&mut o, Proto::Udp, IPPROTO_TCP, TCP_NODELAY, 1),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            o.set(Proto::Tcp, SOL_SOCKET, SO_LINGER, &[1, 0, 0, 0]),
            Err(Errno::EINVAL)
        );
        let mut l = 1i32.to_le_bytes().to_vec();
        l.extend(0i32.to_le_bytes());
        assert_eq!(
            o.set(Proto::Tcp, SOL_SOCKET, SO_LINGER, &l),
            Ok(Effect::None)
        );
        assert!(o.abortive_close());
        assert_eq!(
            set(&mut o, Proto::Tcp, IPPROTO_IP, IP_TTL, 0),
            Err(Errno::EINVAL)
        );
    }

    fn int(v: i32) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }
}
