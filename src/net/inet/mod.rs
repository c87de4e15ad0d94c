//! Inet sockets: AF_INET and AF_INET6, TCP and UDP (and IPv4 ping and
//! root's raw ICMP sockets), on the smoltcp
//! TCP/IP stack. Pure machinery, like `net::unix`: the socket file is
//! `kernel/files/inet.rs`, the syscalls `syscalls/inet.rs`.
//!
//! | file        | owns |
//! |-------------|------|
//! | `addr.rs`   | `sockaddr_in`/`sockaddr_in6` decoding and encoding, v4-mapped addresses |
//! | `device.rs` | the IP-level device under smoltcp: capped queues, interface counters |
//! | `ifcfg.rs` | each ethN's address and flags, the routing table over them (`lookup`), changed with Linux's rules |
//! | `natnet.rs` | the addresses of ethN's user-mode NAT (10.0.(2+N).0/24: guest .15, gateway .2, DNS .3) |
//! | `ether.rs`  | the Ethernet link under a frame-carrying ethN (a tap): ARP cache and requests, framing, sorting received frames |
//! | `offload.rs` | a tap's offloads (IFF_VNET_HDR): TCP checksums left to the host, a flow's segments written as one GSO frame |
//! | `dhcp.rs`   | the user-mode NAT's DHCP server (slirp's lease: 10.0.2.15/24, router .2, DNS .3) |
//! | `ifreq.rs`  | the interface ioctls (SIOCGIFCONF, SIOCGIFFLAGS, ...): lo and the ethN in `struct ifreq` layout |
//! | `natpkt.rs` | raw packets the stack and the NAT handle themselves: guest UDP out, UDP to the guest, ICMP errors about UDP, ARP replies |
//! | `procnet.rs` | the text of /proc/net/{dev,tcp,tcp6,udp,udp6,route,if_inet6} |
//! | `stack.rs`  | the smoltcp interface (lo's and the ethN's addresses), the ethN table and their NATs, the socket set, ports (bind conflicts, ephemeral), polling, orphans |
//! | `socket.rs` | one socket: Linux's TCP/UDP socket states on smoltcp's (listen backlog, connect, send/recv, poll, close) |
//! | `opts.rs`   | socket options: the few with an effect, the many accepted and read back |

#![deny(unsafe_code)]

pub mod addr;
pub mod device;
pub mod dhcp;
pub mod ether;
pub mod ifcfg;
pub mod ifreq;
pub mod natnet;
pub mod natpkt;
pub mod offload;
pub mod opts;
pub mod procnet;
pub mod socket;
pub mod stack;

pub use addr::Family;
pub use socket::InetSocket;
pub use stack::{NetStack, Proto};
