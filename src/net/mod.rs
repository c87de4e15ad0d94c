//! Sockets: the guest-visible constants and the pure socket machinery
//! (no task, fd table or guest memory here; the syscall layer decodes
//! guest values and calls into these types).
//!
//! | file              | owns |
//! |-------------------|------|
//! | `sockaddr.rs`     | `sockaddr_un` decoding and encoding with Linux's length rules |
//! | `cmsg.rs`         | control messages: SCM_RIGHTS / SCM_CREDENTIALS parsing and encoding, MSG_CTRUNC |
//! | `sockbuf.rs`      | socket buffer accounting: SO_SNDBUF/SO_RCVBUF rules, charges that give memory back when dropped |
//! | `dgram.rs`        | the capped datagram receive queue AF_PACKET and AF_NETLINK sockets share (peek, truncation, drops) |
//! | `wakes.rs`        | the wake-ups a socket operation owes (each socket has its own wait queue) |
//! | `epoll.rs`        | the epoll interest list and ready list, generic over the watched file |
//! | `unix/`           | AF_UNIX sockets: stream, seqpacket and datagram, the name space |
//! | `packet.rs`       | AF_PACKET sockets: sockaddr_ll, eth0's frames, the capped receive queue |
//! | `bpf.rs`          | classic BPF socket filters: Linux's attach checks and the interpreter |
//! | `inet/`           | AF_INET/AF_INET6 TCP and UDP on the smoltcp stack, the interfaces |
//! | `netlink/`        | AF_NETLINK NETLINK_ROUTE sockets: message framing, rtnetlink's link, address and route requests |

#![deny(unsafe_code)]

pub mod bpf;
pub mod cmsg;
pub mod dgram;
pub mod epoll;
pub mod inet;
pub mod netlink;
pub mod packet;
pub mod sockaddr;
pub mod sockbuf;
pub mod unix;
pub mod wakes;

/// Which implementation serves a socket file's calls (each has its row
/// in the socket table, `syscalls/sockcall.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockKind {
    Unix,
    Inet,
    /// AF_INET SOCK_RAW IPPROTO_RAW: send-only raw IPv4.
    RawIp,
    Packet,
    Netlink,
}

impl SockKind {
    pub const ALL: [SockKind; 5] = [
        SockKind::Unix,
        SockKind::Inet,
        SockKind::RawIp,
        SockKind::Packet,
        SockKind::Netlink,
    ];
}

pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;

pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_SEQPACKET: u32 = 5;
pub const SOCK_NONBLOCK: u32 = 0o4000;
pub const SOCK_CLOEXEC: u32 = 0o2000000;
/// The type bits of socket(2)'s `type` argument.
pub const SOCK_TYPE_MASK: u32 = 0xf;

pub const MSG_OOB: u32 = 0x1;
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_DONTROUTE: u32 = 0x4;
pub const MSG_CTRUNC: u32 = 0x8;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_EOR: u32 = 0x80;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_MORE: u32 = 0x8000;
pub const MSG_WAITFORONE: u32 = 0x10000;
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

pub const SHUT_RD: u32 = 0;
pub const SHUT_WR: u32 = 1;
pub const SHUT_RDWR: u32 = 2;

pub const SOL_SOCKET: i32 = 1;
pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_LINGER: i32 = 13;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_PASSCRED: i32 = 16;
/// SO_TIMESTAMP (the old, timeval form), also its SCM_TIMESTAMP type.
pub const SO_TIMESTAMP: i32 = 29;
pub const SO_PEERCRED: i32 = 17;
pub const SO_RCVLOWAT: i32 = 18;
pub const SO_SNDLOWAT: i32 = 19;
pub const SO_RCVTIMEO: i32 = 20;
pub const SO_SNDTIMEO: i32 = 21;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_SNDBUFFORCE: i32 = 32;
pub const SO_RCVBUFFORCE: i32 = 33;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;

pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;

/// The sender's identity as SO_PEERCRED and SCM_CREDENTIALS give it
/// (`struct ucred`: pid, uid, gid, each 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// What a receiver sees for a message sent without credentials
    /// (no pid, the overflow ids).
    pub const NONE: Ucred = Ucred {
        pid: 0,
        uid: 65534,
        gid: 65534,
    };

    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..12].copy_from_slice(&self.gid.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 12]) -> Ucred {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Ucred {
            pid: i32::from_le_bytes(word(0)),
            uid: u32::from_le_bytes(word(4)),
            gid: u32::from_le_bytes(word(8)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ucred_round_trip() {
        let c = Ucred {
            pid: 42,
            uid: 1000,
            gid: 100,
        };
        assert_eq!(Ucred::from_bytes(&c.to_bytes()), c);
        assert_eq!(&c.to_bytes()[0..4], &[42, 0, 0, 0]);
    }
}
