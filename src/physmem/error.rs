//! The physmem error type: one message per way a physmem operation can fail.

use super::Frame;
use crate::host::mapping::MappingError;
use crate::host::memfd::MemFdError;

#[derive(Debug, thiserror::Error)]
pub enum PhysMemError {
    #[error("guest memory of {0} bytes is smaller than one 4096-byte frame")]
    TooSmall(u64),
    #[error("guest memory is exhausted: no free frame")]
    OutOfMemory,
    #[error("frame {0:?} lies beyond the end of guest memory")]
    BadFrame(Frame),
    #[error("frame {0:?} is not allocated")]
    NotAllocated(Frame),
    #[error("bytes {offset}+{len} do not fit in one 4096-byte frame")]
    OutOfFrame { offset: usize, len: usize },
    #[error("frame {0:?} is substituted by a read-only file page")]
    ReadOnly(Frame),
    #[error("file offset {0:#x} is not 4096-aligned")]
    Misaligned(u64),
    #[error("{0} frames are substituted already, the most the host's mapping limit allows; copy instead")]
    TooManySubstitutions(u64),
    #[error("frame {0:?} is not substituted")]
    NotSubstituted(Frame),
    #[error("guest memory file: {0}")]
    MemFd(#[from] MemFdError),
    #[error("guest memory view: {0}")]
    Mapping(#[from] MappingError),
}
