//! Anonymous memory files (memfd): create sparse, seal the size, punch holes, report residency.
//!
//! The guest's physical memory is one of these. It is sealed against growing
//! and shrinking right after creation: a mapping of it can then never raise
//! SIGBUS because the file got shorter, which is what lets `SharedMapping`
//! offer safe byte access to it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fallocate, fcntl, FallocateFlags, FcntlArg, FdFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::stat::fstat;
use nix::unistd::ftruncate;

/// Failures of memfd operations, each carrying the host errno.
#[derive(Debug, thiserror::Error)]
pub enum MemFdError {
    #[error("memfd name {0:?} contains a NUL byte")]
    BadName(String),
    #[error("memfd size {0} does not fit the host's off_t")]
    TooLarge(u64),
    #[error("memfd_create failed: {0}")]
    Create(Errno),
    #[error("sizing the memfd to {len} bytes failed: {errno}")]
    Resize { len: u64, errno: Errno },
    #[error("sealing the memfd failed: {0}")]
    Seal(Errno),
    #[error("punching a hole at {offset}+{len} failed: {errno}")]
    Punch { offset: u64, len: u64, errno: Errno },
    #[error("range {offset}+{len} lies outside the {size}-byte memfd")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("fstat of the memfd failed: {0}")]
    Stat(Errno),
    #[error("changing FD_CLOEXEC on the memfd failed: {0}")]
    Cloexec(Errno),
}

/// A sized, size-sealed memfd. Closed on drop.
#[derive(Debug)]
pub struct MemFd {
    fd: OwnedFd,
    len: u64,
}

impl MemFd {
    /// Creates a memfd of `len` bytes. It is sparse (costs the host nothing
    /// until written), close-on-exec until [`MemFd::set_cloexec`] says
    /// otherwise, and sealed against growing and shrinking.
    pub fn create(name: &str, len: u64) -> Result<MemFd, MemFdError> {
        let cname = CString::new(name).map_err(|_| MemFdError::BadName(name.to_owned()))?;
        let off_len = i64::try_from(len).map_err(|_| MemFdError::TooLarge(len))?;
        let fd = memfd_create(
            &cname,
            MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
        )
        .map_err(MemFdError::Create)?;
        ftruncate(&fd, off_len).map_err(|errno| MemFdError::Resize { len, errno })?;
        fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK),
        )
        .map_err(MemFdError::Seal)?;
        Ok(MemFd { fd, len })
    }

    /// Size in bytes (fixed by the seals).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for a zero-byte memfd.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives the range's host memory back at once; it then reads as zeros.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<(), MemFdError> {
        let end = offset.checked_add(len);
        if end.is_none_or(|e| e > self.len) {
            return Err(MemFdError::OutOfRange {
                offset,
                len,
                size: self.len,
            });
        }
        if len == 0 {
            return Ok(());
        }
        // Both fit off_t: they are bounded by self.len, which did.
        fallocate(
            self.fd.as_raw_fd(),
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        )
        .map_err(|errno| MemFdError::Punch { offset, len, errno })
    }

    /// Host memory the memfd really holds: `st_blocks * 512`.
    pub fn resident_bytes(&self) -> Result<u64, MemFdError> {
        let st = fstat(self.fd.as_raw_fd()).map_err(MemFdError::Stat)?;
        Ok((st.st_blocks as u64).saturating_mul(512))
    }

    /// Sets or clears FD_CLOEXEC. Stub processes that must inherit the memfd
    /// across exec need it cleared.
    pub fn set_cloexec(&self, on: bool) -> Result<(), MemFdError> {
        set_fd_cloexec(self.fd.as_fd(), on).map_err(MemFdError::Cloexec)
    }

    /// Whether FD_CLOEXEC is set.
    pub fn cloexec(&self) -> Result<bool, MemFdError> {
        let bits = fcntl(self.fd.as_raw_fd(), FcntlArg::F_GETFD).map_err(MemFdError::Cloexec)?;
        Ok(FdFlag::from_bits_truncate(bits).contains(FdFlag::FD_CLOEXEC))
    }
}

/// Sets or clears FD_CLOEXEC on any fd (e.g. a disk image a stub must map).
pub fn set_fd_cloexec(fd: BorrowedFd<'_>, on: bool) -> Result<(), Errno> {
    let raw = fd.as_raw_fd();
    let mut flags = FdFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFD)?);
    flags.set(FdFlag::FD_CLOEXEC, on);
    fcntl(raw, FcntlArg::F_SETFD(flags)).map(drop)
}

impl AsRawFd for MemFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for MemFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::uio::pwrite;

    #[test]
    fn fresh_memfd_is_sparse() {
        let m = MemFd::create("t", 16 << 20).unwrap();
        assert_eq!(m.len(), 16 << 20);
        assert_eq!(m.resident_bytes().unwrap(), 0);
    }

    #[test]
    fn seals_forbid_resizing() {
        let m = MemFd::create("t", 1 << 20).unwrap();
        assert_eq!(ftruncate(&m, 2 << 20), Err(Errno::EPERM));
        assert_eq!(ftruncate(&m, 4096), Err(Errno::EPERM));
        assert_eq!(fstat(m.as_raw_fd()).unwrap().st_size, 1 << 20);
    }

    #[test]
    fn punch_returns_memory_and_zeroes() {
        let m = MemFd::create("t", 1 << 20).unwrap();
        let page = [0xabu8; 4096];
        for i in 0..16 {
            pwrite(&m, &page, i * 4096).unwrap();
        }
        assert!(m.resident_bytes().unwrap() >= 16 * 4096);
        m.punch_hole(0, 16 * 4096).unwrap();
        assert_eq!(m.resident_bytes().unwrap(), 0);
        let mut buf = [1u8; 4096];
        nix::sys::uio::pread(&m, &mut buf, 4096).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn punch_outside_is_refused() {
        let m = MemFd::create("t", 8192).unwrap();
        assert!(matches!(
            m.punch_hole(4096, 8192),
            Err(MemFdError::OutOfRange { .. })
        ));
        assert!(m.punch_hole(u64::MAX, 2).is_err());
    }

    #[test]
    fn cloexec_can_be_cleared() {
        let m = MemFd::create("t", 4096).unwrap();
        assert!(m.cloexec().unwrap());
        m.set_cloexec(false).unwrap();
        assert!(!m.cloexec().unwrap());
        m.set_cloexec(true).unwrap();
        assert!(m.cloexec().unwrap());
    }

    #[test]
    fn bad_name_is_an_error() {
        assert!(matches!(
            MemFd::create("a\0b", 4096),
            Err(MemFdError::BadName(_))
        ));
    }
}
