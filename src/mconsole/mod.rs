//! The management console, UML's mconsole: a datagram socket at
//! `<uml_dir>/<umid>/mconsole` that Debian's `uml_mconsole` and our `umlctl`
//! talk to, and the notify socket (`mconsole=notify:<path>`).
//!
//! | file          | owns |
//! |---------------|------|
//! | `protocol.rs` | the wire format: requests, chunked replies, notify messages (pure) |
//! | `commands.rs` | command text → `Command`, UML's help text and messages, `mem=` changes |
//! | `client.rs`   | one request and its whole answer, for `umlctl` and tests |
//!
//! The socket itself is `host::mcsock`; running the commands against the
//! kernel is `kernel::mconsole`.

#![deny(unsafe_code)]

pub mod client;
pub mod commands;
pub mod protocol;

pub use commands::{Command, Device, MemChange};
