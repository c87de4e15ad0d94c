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
    /// Connects to `addr` (waiting at most `timeout`: the kernel thread
    /// waits with it), then makes the stream non-blocking.
    pub fn connect(addr: SocketAddrV4, timeout: std::time::Duration) -> io::Result<HostStream> {
        let s = TcpStream::connect_timeout(&addr.into(), timeout)?;
        s.set_nonblocking(true)?;
        let _ = s.set_nodelay(true);
        Ok(HostStream(s))
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
