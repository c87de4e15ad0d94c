//! AF_UNIX sockets.
//!
//! | file           | owns |
//! |----------------|------|
//! | `socket.rs`    | one socket: the stream/seqpacket connection state machine, datagrams, shutdown, poll |
//! | `queue.rs`     | the receive queue: message boundaries, descriptors and credentials in flight, MSG_PEEK/TRUNC |
//! | `namespace.rs` | bound names: abstract names, path names by socket inode, autobind |

pub mod namespace;
pub mod queue;
pub mod socket;

pub use socket::{SockRef, SockType, UnixNet, UnixSocket};
