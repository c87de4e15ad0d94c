//! Host TCP sockets for the user-mode NAT: port forwards' listeners and
//! the connections they accept, and the guest's outbound connections;
//! all non-blocking once open (the host event loop says when to read or
//! write).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

pub struct HostListener(TcpListener);

impl HostListener {
    /// Binds and listens on `addr` (SO_REUSEADDR, as std sets it).
    pub fn bind(addr: SocketAddrV4) -> io::Result<HostListener> {
        let l = TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(HostListener(l))
    }

    /// The next pending connection, or None.
    pub fn accept(&self) -> io::Result<Option<HostStream>> {
        match self.0.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(true)?;
                let _ = s.set_nodelay(true);
                Ok(Some(HostStream(s)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// The port bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.0.local_addr().map_or(0, |a| a.port())
    }
}

pub struct HostStream(TcpStream);

impl HostStream {
    /// Starts connecting to `addr` without waiting: the stream becomes
    /// writable once the connection is open or has failed, and
    /// `connected` then says which.
    pub fn connect_start(addr: SocketAddrV4) -> io::Result<HostStream> {
        // SAFETY: socket(2) creates an fd that the TcpStream owns at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh socket nobody else owns.
        let s = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: connect(2) reads one sockaddr_in of the size given.
        let r = unsafe {
            libc::connect(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        let _ = s.set_nodelay(true);
        Ok(HostStream(s))
    }

    /// A connection `connect_start` began: Ok(true) open, Ok(false)
    /// still opening, Err why it failed.
    pub fn connected(&self) -> io::Result<bool> {
        if let Some(e) = self.0.take_error()? {
            return Err(e);
        }
        match self.0.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads what is there: Ok(None) when nothing is (would block).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.0.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes what fits: Ok(0) when nothing does (would block).
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.0.write(data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The guest closed its sending side: so does the host connection.
    pub fn shutdown_write(&self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
