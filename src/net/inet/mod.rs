//! Inet sockets: AF_INET and AF_INET6, TCP and UDP, on the smoltcp
//! TCP/IP stack. Pure machinery, like `net::unix`: the socket file is
//! `kernel/files/inet.rs`, the syscalls `syscalls/inet.rs`.
//!
//! | file        | owns |
//! |-------------|------|
//! | `addr.rs`   | `sockaddr_in`/`sockaddr_in6` decoding and encoding, v4-mapped addresses |
//! | `device.rs` | the IP-level device under smoltcp: capped queues, interface counters |
//! | `stack.rs`  | the interface (lo), the socket set, ports (bind conflicts, ephemeral), polling, orphans |
//! | `socket.rs` | one socket: Linux's TCP/UDP socket states on smoltcp's (listen backlog, connect, send/recv, poll, close) |
//! | `opts.rs`   | socket options: the few with an effect, the many accepted and read back |

#![deny(unsafe_code)]

pub mod addr;
pub mod device;
pub mod opts;
pub mod socket;
pub mod stack;

pub use addr::Family;
pub use socket::InetSocket;
pub use stack::{NetStack, Proto};
