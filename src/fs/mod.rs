//! File systems.
//!
//! | file         | owns |
//! |--------------|------|
//! | `blockio.rs` | the `BlockIo` trait file systems read their device through, and file/memory implementations |
//! | `ext2/`      | the ext2 file system (revisions 0 and 1) |

pub mod blockio;
pub mod ext2;

pub use blockio::{BlockIo, FileBlockIo, MemBlockIo};
