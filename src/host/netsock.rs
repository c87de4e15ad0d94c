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

/// A host UDP socket of the user-mode NAT: one per guest UDP port that
/// sent out through eth0, bound to any address and port of the host.
pub struct HostUdp(std::net::UdpSocket);

impl HostUdp {
    pub fn open() -> io::Result<HostUdp> {
        let s = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
        s.set_nonblocking(true)?;
        // ICMP errors about what this socket sent (which destination
        // refused) are queued for `take_icmp_error`.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket this value owns, with a c_int.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVERR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(HostUdp(s))
    }

    /// The next ICMP error queued on the socket (IP_RECVERR): the
    /// destination of the datagram it is about, the ICMP type and code.
    /// None when there is none (or it is not an ICMP error).
    pub fn take_icmp_error(&self) -> Option<(SocketAddrV4, u8, u8)> {
        let mut name: libc::sockaddr_in = zeroed_sockaddr_in();
        let mut data = [0u8; 64];
        let mut control = [0u64; 32];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain data; every pointer set below points at
        // a live local buffer of the length given.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: recvmsg with the buffers above, non-blocking.
        let r = unsafe {
            libc::recvmsg(
                self.0.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            return None;
        }
        let mut found = None;
        // SAFETY: the CMSG_* walk stays inside `control`, which the
        // kernel filled (msg_controllen bytes).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_RECVERR {
                    let ee = libc::CMSG_DATA(c) as *const libc::sock_extended_err;
                    let ee = std::ptr::read_unaligned(ee);
                    if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP {
                        found = Some((ee.ee_type, ee.ee_code));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let (ty, code) = found?;
        let ip = std::net::Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr));
        Some((SocketAddrV4::new(ip, u16::from_be(name.sin_port)), ty, code))
    }

    /// Sends one datagram; Ok(false) when the socket's buffer is full
    /// (the datagram is dropped, as a full queue drops on Linux).
    pub fn send_to(&self, data: &[u8], to: std::net::SocketAddr) -> io::Result<bool> {
        match self.0.send_to(data, to) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The next datagram and its sender; Ok(None) when none is there.
    /// An error the host queued (an ICMP port unreachable) is Err.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, std::net::SocketAddr)>> {
        match self.0.recv_from(buf) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn zeroed_sockaddr_in() -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: 0,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    }
}

/// The host's resolver: the first IPv4 `nameserver` of /etc/resolv.conf,
/// port 53; None if there is none.
pub fn host_resolver() -> Option<SocketAddrV4> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    resolver_of(&text)
}

/// The first IPv4 `nameserver` line of a resolv.conf text.
pub fn resolver_of(text: &str) -> Option<SocketAddrV4> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        if w.next() != Some("nameserver") {
            return None;
        }
        let ip: std::net::Ipv4Addr = w.next()?.parse().ok()?;
        Some(SocketAddrV4::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_is_the_first_ipv4_nameserver() {
        let t = "# c\nsearch x\nnameserver ::1\nnameserver 127.0.0.53\nnameserver 8.8.8.8\n";
        assert_eq!(resolver_of(t), Some("127.0.0.53:53".parse().unwrap()));
        assert_eq!(resolver_of("nameserver\n"), None);
    }

    #[test]
    fn udp_round_trip_on_loopback() {
        let a = HostUdp::open().unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        assert!(a.send_to(b"ping", to).unwrap());
        let mut buf = [0u8; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        b.send_to(b"pong", from).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some((n, _)) = a.recv_from(&mut buf).unwrap() {
                assert_eq!(&buf[..n], b"pong");
                break;
            }
            assert!(std::time::Instant::now() < until);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
