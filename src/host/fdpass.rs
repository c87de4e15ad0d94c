//! Handing host fds to stubs that already run (a disk hot-added in
//! ubd=mmap mode: every stub must hold its fd at the number umlrun has),
//! as Linux's UML seccomp mode does: SCM_RIGHTS over a unix socket.
//!
//! One `AF_UNIX` `SOCK_SEQPACKET` socketpair per umlrun ([`channel`]):
//! umlrun sends on one end; every stub is born holding the other
//! ([`FdChannel::stub_end`], kept at the same number, like the disk fds)
//! and runs one `recvmsg` on it when umlrun says so, with the message
//! header umlrun laid out in a page the stub may write ([`write_msghdr`]).
//! The received fd lands at the lowest free number of the receiving fd
//! table, which umlrun reads from /proc beforehand ([`lowest_free_fd`]),
//! so the stub needs nothing from memory guest code could write to move
//! it to its place (dup2, close); umlrun then checks the result by
//! device and inode ([`thread_fd_is`]).
//!
//! Nothing is opened by path: a stub in a user namespace of its own (which
//! may not open umlrun's /proc/<pid>/fd) takes fds this way as well as any.
//! umlrun keeps the stubs' end open too, for stubs spawned later and to
//! drop a message a stub failed to take before it sends the next
//! ([`FdChannel::send`]): the socket is shared, one message in flight.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// `recvmsg` flags a stub passes (and its filter pins): never block.
pub const RECV_FLAGS: u64 = libc::MSG_DONTWAIT as u64;
/// Bytes [`write_msghdr`] lays out.
pub const MSGHDR_LEN: usize = 128;

/// The socketpair of one umlrun.
#[derive(Debug)]
pub struct FdChannel {
    tx: OwnedFd,
    rx: OwnedFd,
}

/// umlrun's channel, made on first use (both ends close-on-exec: the
/// stub spawn keeps [`FdChannel::stub_end`] by number).
pub fn channel() -> Result<&'static FdChannel, nix::Error> {
    static CH: OnceLock<FdChannel> = OnceLock::new();
    if let Some(c) = CH.get() {
        return Ok(c);
    }
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into `fds`.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: both fds are new and ours alone.
    let (tx, rx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(CH.get_or_init(|| FdChannel { tx, rx }))
}

impl FdChannel {
    /// The end every stub holds (same number in umlrun and the stubs).
    pub fn stub_end(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Queues `fd` for the next stub's `recvmsg` (one byte of data, one
    /// SCM_RIGHTS fd). A message still queued (a stub that failed to take
    /// it) is dropped first, so a stub takes only the fd meant for it.
    pub fn send(&self, fd: RawFd) -> Result<(), nix::Error> {
        self.drain();
        let mut byte = [b'f'];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // Room for CMSG_SPACE(4) = 24 bytes, 8-aligned.
        let mut control = [0u64; 4];
        // SAFETY: a zeroed msghdr is valid; every pointer set below points
        // into this frame, alive across the call.
        unsafe {
            let space = libc::CMSG_SPACE(4) as usize;
            debug_assert!(space <= std::mem::size_of_val(&control));
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
            if libc::sendmsg(self.tx.as_raw_fd(), &msg, libc::MSG_DONTWAIT) != 1 {
                return Err(nix::Error::last());
            }
        }
        Ok(())
    }

    /// Takes (and closes) whatever is queued on the stubs' end.
    fn drain(&self) {
        loop {
            let mut byte = [0u8; 1];
            let mut iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let mut control = [0u64; 4];
            // SAFETY: as in `send`; the kernel writes only into `byte`,
            // `control` and `msg`, all in this frame.
            unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&control);
                let n = libc::recvmsg(
                    self.rx.as_raw_fd(),
                    &mut msg,
                    libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
                );
                if n < 0 {
                    return;
                }
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                        let stale = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
                        libc::close(stale);
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
        }
    }
}

/// The `struct msghdr` a stub's `recvmsg` uses, laid out for stub address
/// `at` (8-aligned, [`MSGHDR_LEN`] bytes the stub may write): the header,
/// one iovec of one byte, and room for one SCM_RIGHTS fd. The kernel
/// writes the data byte, the control message and the header's lengths
/// and flags there; umlrun reads none of it back.
pub fn write_msghdr(at: u64) -> Vec<u8> {
    const IOV: u64 = 64;
    const DATA: u64 = 80;
    const CONTROL: u64 = 88;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(4) } as u64;
    debug_assert!(CONTROL + space <= MSGHDR_LEN as u64);
    let mut out = vec![0u8; MSGHDR_LEN];
    let mut put = |off: u64, v: u64| {
        out[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
    };
    // struct msghdr: name, namelen (+pad), iov, iovlen, control,
    // controllen, flags (+pad).
    put(0, 0);
    put(8, 0);
    put(16, at + IOV);
    put(24, 1);
    put(32, at + CONTROL);
    put(40, space);
    put(48, 0);
    // struct iovec
    put(IOV, at + DATA);
    put(IOV + 8, 1);
    out
}

/// The lowest fd number free in the fd table of thread `tid` of process
/// `pid` (where a `recvmsg` there puts the fd it receives).
pub fn lowest_free_fd(pid: i32, tid: i32) -> Result<RawFd, nix::Error> {
    let mut used: Vec<RawFd> = std::fs::read_dir(format!("/proc/{pid}/task/{tid}/fd"))
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    used.sort_unstable();
    let mut n = 0;
    for u in used {
        if u == n {
            n += 1;
        } else if u > n {
            break;
        }
    }
    Ok(n)
}

/// Whether fd `fd` of thread `tid` of `pid` is the file umlrun's own fd
/// `fd` is (same device and inode).
pub fn thread_fd_is(pid: i32, tid: i32, fd: RawFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/task/{tid}/fd/{fd}"));
    let ours = std::fs::metadata(format!("/proc/self/fd/{fd}"));
    match (theirs, ours) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message sent and received in process: the fd arrives, refers to
    /// the same file, and lands at the lowest free number.
    #[test]
    fn an_fd_goes_through_and_a_stale_one_is_dropped() {
        let ch = channel().unwrap();
        let f = tempfile::tempfile().unwrap();
        ch.send(f.as_raw_fd()).unwrap();
        // Not taken: the next send drops it first.
        let g = tempfile::tempfile().unwrap();
        ch.send(g.as_raw_fd()).unwrap();
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 4];
        // SAFETY: as in FdChannel::drain.
        let got = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            let n = libc::recvmsg(ch.stub_end(), &mut msg, libc::MSG_DONTWAIT);
            assert_eq!(n, 1);
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null());
            OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()))
        };
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(format!("/proc/self/fd/{}", got.as_raw_fd())).unwrap();
        let b = g.metadata().unwrap();
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
        // Nothing else queued.
        ch.drain();
    }

    #[test]
    fn msghdr_points_into_itself() {
        let at = 0x7fff_fc01_0000u64;
        let m = write_msghdr(at);
        let word = |o: usize| u64::from_le_bytes(m[o..o + 8].try_into().unwrap());
        assert_eq!(word(16), at + 64);
        assert_eq!(word(24), 1);
        assert_eq!(word(32), at + 88);
        assert!(word(40) >= 20 && at + 88 + word(40) <= at + MSGHDR_LEN as u64);
        assert_eq!(word(64), at + 80);
        assert_eq!(word(72), 1);
    }
}
