//! Frame numbers, the page size, and where a frame's bytes live on the host.

use std::os::fd::RawFd;

/// Size of one guest physical frame.
pub use crate::abi::PAGE_SIZE;

/// A guest physical frame number; frame N lives at memfd offset N*4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame(pub u64);

impl Frame {
    /// Byte offset of the frame in the memfd (and in umlrun's view of it).
    pub fn offset(self) -> u64 {
        self.0 * PAGE_SIZE as u64
    }
}

/// The host fd and offset a stub must mmap to show a frame, and whether the
/// mapping may be writable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBacking {
    pub fd: RawFd,
    pub offset: u64,
    pub writable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(Frame(0).offset(), 0);
        assert_eq!(Frame(3).offset(), 3 * 4096);
        assert!(Frame(1) < Frame(2));
    }
}
