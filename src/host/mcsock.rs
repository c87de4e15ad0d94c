//! The AF_UNIX datagram sockets of the management console: the instance's
//! server socket `<uml_dir>/<umid>/mconsole`, the client end `umlctl` (and
//! tests) use, and the one-way sender for notify messages.
//!
//! The server never blocks: requests are read and replies sent with
//! non-blocking calls, so a client that sends and vanishes, or stops
//! reading its replies, costs the guest nothing (the reply is dropped).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The longest socket path the host takes (`sun_path` is 108 bytes with
/// its NUL).
pub const MAX_PATH: usize = 107;

/// A datagram peer to reply to.
pub type Peer = SocketAddr;

/// The instance's listening socket.
#[derive(Debug)]
pub struct DgramServer {
    sock: UnixDatagram,
    path: PathBuf,
}

fn too_long(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "socket path is {} bytes; the host allows {MAX_PATH}",
            path.as_os_str().len()
        ),
    )
}

impl DgramServer {
    /// Binds `path`, replacing a stale socket left there by a killed
    /// instance (the caller owns the directory), non-blocking.
    pub fn bind(path: &Path) -> io::Result<DgramServer> {
        if path.as_os_str().len() > MAX_PATH {
            return Err(too_long(path));
        }
        match std::fs::remove_file(path) {
            Ok(()) => log::info!("replaced stale socket {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let sock = UnixDatagram::bind(path)?;
        sock.set_nonblocking(true)?;
        Ok(DgramServer {
            sock,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fd to wait on.
    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The next datagram (at most `max` bytes kept; a longer one is
    /// reported with its full length), or None when none is waiting.
    pub fn recv(&self, max: usize) -> Option<(Vec<u8>, usize, Peer)> {
        // One byte more than the caller keeps tells an oversized datagram
        // apart (MSG_TRUNC's length is not reachable through std).
        let mut buf = vec![0u8; max + 1];
        loop {
            match self.sock.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    let full = n;
                    buf.truncate(n.min(max));
                    return Some((buf, full, peer));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => {
                    log::debug!("mconsole: recv failed: {e}");
                    return None;
                }
            }
        }
    }

    /// Sends one datagram without blocking. An error means the peer is
    /// gone or not reading; the caller drops the rest of the answer.
    pub fn send(&self, peer: &Peer, data: &[u8]) -> io::Result<()> {
        if peer.is_unnamed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the client has no address to reply to",
            ));
        }
        self.sock.send_to_addr(data, peer).map(|_| ())
    }
}

impl Drop for DgramServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Is `fd` readable within `timeout` (None: forever)?
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> bool {
    // SAFETY: the caller's fd stays open for this call.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let ms = match timeout {
        None => PollTimeout::NONE,
        Some(t) => {
            PollTimeout::try_from(t.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX)
        }
    };
    let mut fds = [PollFd::new(bfd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

/// A client socket bound to a fresh abstract address (as `uml_mconsole`
/// binds one), so the server can reply.
pub struct DgramClient {
    sock: UnixDatagram,
}

impl DgramClient {
    pub fn new() -> io::Result<DgramClient> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "umlrun-mconsole-client-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let sock = UnixDatagram::bind_addr(&addr)?;
        Ok(DgramClient { sock })
    }

    /// Sends a datagram to the socket at `path`.
    pub fn send_to(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if path.as_os_str().len() > MAX_PATH {
            return Err(too_long(path));
        }
        self.sock.send_to(data, path).map(|_| ())
    }

    /// The next datagram, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> io::Result<Vec<u8>> {
        self.sock.set_read_timeout(Some(timeout))?;
        let mut buf = vec![0u8; 4096];
        let n = self.sock.recv(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// Sends one datagram to `path` from an unbound socket, without blocking
/// (notify messages: nobody replies).
pub fn send_oneway(path: &Path, data: &[u8]) -> io::Result<()> {
    if path.as_os_str().len() > MAX_PATH {
        return Err(too_long(path));
    }
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    sock.send_to(data, path).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mconsole");
        // A stale file at the path is replaced.
        std::fs::write(&path, "stale").unwrap();
        let srv = DgramServer::bind(&path).unwrap();
        assert!(srv.recv(600).is_none());
        let c = DgramClient::new().unwrap();
        c.send_to(&path, b"hello").unwrap();
        assert!(wait_readable(srv.raw_fd(), Some(Duration::from_secs(1))));
        let (d, full, peer) = srv.recv(600).unwrap();
        assert_eq!((d.as_slice(), full), (&b"hello"[..], 5));
        srv.send(&peer, b"world").unwrap();
        assert_eq!(c.recv(Duration::from_secs(1)).unwrap(), b"world");
        drop(srv);
        assert!(!path.exists());
    }

    #[test]
    fn oversized_datagram_is_reported_and_gone_client_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let srv = DgramServer::bind(&path).unwrap();
        let c = DgramClient::new().unwrap();
        c.send_to(&path, &[7u8; 2000]).unwrap();
        let (d, full, peer) = srv.recv(524).unwrap();
        assert_eq!(d.len(), 524);
        assert!(full > 524);
        drop(c);
        // The peer is gone: an error, at once.
        assert!(srv.send(&peer, b"x").is_err());
        // An unbound sender cannot be answered.
        send_oneway(&path, b"x").unwrap();
        let (_, _, peer) = srv.recv(524).unwrap();
        assert!(srv.send(&peer, b"x").is_err());
    }

    #[test]
    fn a_client_that_does_not_read_never_blocks_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let srv = DgramServer::bind(&path).unwrap();
        let c = DgramClient::new().unwrap();
        c.send_to(&path, b"x").unwrap();
        let (_, _, peer) = srv.recv(524).unwrap();
        let t = std::time::Instant::now();
        let mut failed = false;
        for _ in 0..10_000 {
            if srv.send(&peer, &[0u8; 524]).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the client's queue never filled");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn long_paths_are_refused() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        let e = DgramServer::bind(&long).unwrap_err();
        assert!(e.to_string().contains("the host allows 107"), "{e}");
        assert!(send_oneway(&long, b"x").is_err());
        assert!(DgramClient::new().unwrap().send_to(&long, b"x").is_err());
    }
}
