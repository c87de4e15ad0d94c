//! A port on a `uml_switch` (Debian's uml-utilities) for
//! `eth<N>=daemon,<mac>,unix,<ctl>`, speaking what UML's daemon
//! transport speaks (arch/um/drivers/daemon_user.c, protocol version 3):
//!
//! 1. a SOCK_STREAM connection to the switch's control socket `<ctl>`,
//!    kept open for the port's life (the switch drops the port when it
//!    closes);
//! 2. a SOCK_DGRAM AF_UNIX data socket bound to an abstract address of
//!    our own (a zero byte, then the pid, a per-process counter and the
//!    microseconds, over the whole `sun_path` as UML binds it);
//! 3. one request on the control socket: magic 0xfeedface, version 3,
//!    REQ_NEW_CONTROL (0), the data socket's `sockaddr_un`; the switch
//!    answers with the `sockaddr_un` of its own data socket;
//! 4. then every Ethernet frame is one datagram, sent to that address
//!    (the data socket is connected to it) and received from it.
//!    Datagrams from any other address are not the switch's: they are
//!    dropped and counted (`foreign`).
//!
//! Non-blocking after the handshake (which waits at most `HANDSHAKE_FOR`
//! for the switch's answer): the host event loop says when frames wait,
//! and when the switch has room again for a frame it refused.

use std::io::{self, Read, Write};
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const SWITCH_MAGIC: u32 = 0xfeed_face;
const SWITCH_VERSION: u32 = 3;
const REQ_NEW_CONTROL: u32 = 0;
/// How long the switch may take to answer the request.
const HANDSHAKE_FOR: Duration = Duration::from_secs(5);

/// `struct request_v3` as UML writes it (124 bytes: the C layout, with
/// the tail padding).
#[repr(C)]
struct RequestV3 {
    magic: u32,
    version: u32,
    ty: u32,
    sock: libc::sockaddr_un,
}

/// Each port of this process gets its own abstract name.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

pub struct HostSwitch {
    /// The control connection: closing it unplugs the port.
    _ctl: UnixStream,
    data: OwnedFd,
    /// The switch's data socket.
    peer: libc::sockaddr_un,
    /// Datagrams that came from another address than the switch's.
    pub foreign: u64,
}

fn sun_zeroed() -> libc::sockaddr_un {
    // SAFETY: sockaddr_un is plain bytes; all zeros is a valid value.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    a
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: only used on the repr(C) plain-data structs above, whose
    // every byte (padding included, zeroed at creation) is initialised.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }
}

impl HostSwitch {
    /// Plugs a new port into the switch whose control socket is `ctl`.
    pub fn connect(ctl: &Path) -> io::Result<HostSwitch> {
        let mut ctl_conn = UnixStream::connect(ctl)?;
        ctl_conn.set_read_timeout(Some(HANDSHAKE_FOR))?;
        ctl_conn.set_write_timeout(Some(HANDSHAKE_FOR))?;
        // SAFETY: socket(2) with constant arguments; the fd is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        let data = unsafe { OwnedFd::from_raw_fd(fd) };
        let local = bind_abstract(&data)?;
        let req = RequestV3 {
            magic: SWITCH_MAGIC,
            version: SWITCH_VERSION,
            ty: REQ_NEW_CONTROL,
            sock: local,
        };
        // The padding bytes of `req` must not leak stack: build the bytes
        // from zeroed storage.
        let mut bytes = [0u8; size_of::<RequestV3>()];
        bytes[0..4].copy_from_slice(&req.magic.to_ne_bytes());
        bytes[4..8].copy_from_slice(&req.version.to_ne_bytes());
        bytes[8..12].copy_from_slice(&req.ty.to_ne_bytes());
        let sun = as_bytes(&req.sock);
        bytes[12..12 + sun.len()].copy_from_slice(sun);
        ctl_conn.write_all(&bytes)?;
        let mut answer = [0u8; size_of::<libc::sockaddr_un>()];
        ctl_conn.read_exact(&mut answer).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the switch closed the control connection (not a uml_switch, or it refused the request)",
                )
            } else {
                e
            }
        })?;
        let mut peer = sun_zeroed();
        // SAFETY: `answer` is exactly a sockaddr_un's size; any bytes are
        // a valid sockaddr_un.
        unsafe {
            std::ptr::copy_nonoverlapping(
                answer.as_ptr(),
                &mut peer as *mut libc::sockaddr_un as *mut u8,
                answer.len(),
            )
        };
        if i32::from(peer.sun_family) != libc::AF_UNIX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the switch answered with an address that is not AF_UNIX",
            ));
        }
        // Connected to the switch's data socket: writability then follows
        // the room in the switch's queue (Linux's unix_dgram_poll), so a
        // full queue can be waited out instead of dropped; and Linux
        // refuses datagrams to us from any other sender.
        // SAFETY: connect with `peer`, a sockaddr_un of the size given.
        let r = unsafe {
            libc::connect(
                data.as_raw_fd(),
                &peer as *const libc::sockaddr_un as *const libc::sockaddr,
                size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(HostSwitch {
            _ctl: ctl_conn,
            data,
            peer,
            foreign: 0,
        })
    }

    /// One frame from the switch into `buf`; None if none waits.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            let mut from = sun_zeroed();
            let mut len = size_of::<libc::sockaddr_un>() as libc::socklen_t;
            // SAFETY: recvfrom into `buf` (its length given) and `from`
            // (its size given in `len`), both alive for the call.
            let n = unsafe {
                libc::recvfrom(
                    self.data.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut from as *mut libc::sockaddr_un as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                    _ => Err(e),
                };
            }
            if self.is_switch(&from, len) {
                return Ok(Some(n as usize));
            }
            self.foreign += 1;
        }
    }

    /// Is `from` (of length `len`) the switch's data socket?
    fn is_switch(&self, from: &libc::sockaddr_un, len: libc::socklen_t) -> bool {
        let path_len = (len as usize).saturating_sub(size_of::<libc::sa_family_t>());
        let (a, b) = (&from.sun_path, &self.peer.sun_path);
        if path_len == 0 || path_len > a.len() {
            return false;
        }
        // A path-bound socket's name ends at its NUL; an abstract one is
        // all `path_len` bytes.
        a[..path_len] == b[..path_len] && b[path_len..].iter().all(|&c| c == 0)
    }

    /// Sends one frame to the switch; false if it cannot take it now.
    pub fn write(&mut self, frame: &[u8]) -> io::Result<bool> {
        // SAFETY: send from `frame` (its length given), alive for the
        // call, on the socket connected to the switch.
        let n = unsafe {
            libc::send(
                self.data.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(false),
            _ => Err(e),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.data.as_raw_fd()
    }
}

/// Binds `fd` to a fresh abstract address, as UML names its data socket
/// (a zero byte, then who we are); returns it.
fn bind_abstract(fd: &OwnedFd) -> io::Result<libc::sockaddr_un> {
    let pid = std::process::id();
    for _ in 0..16 {
        let mut a = sun_zeroed();
        let usecs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros());
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let mut name = [0u8; 13];
        name[1..5].copy_from_slice(&pid.to_ne_bytes());
        name[5..9].copy_from_slice(&usecs.to_ne_bytes());
        name[9..13].copy_from_slice(&port.to_ne_bytes());
        for (d, s) in a.sun_path.iter_mut().zip(name) {
            *d = s as libc::c_char;
        }
        // SAFETY: bind with `a`, a sockaddr_un of the size given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &a as *const libc::sockaddr_un as *const libc::sockaddr,
                size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(a);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EADDRINUSE) {
            return Err(e);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EADDRINUSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_uml_s_size() {
        // 3 × u32 + sockaddr_un (110) + 2 bytes of tail padding.
        assert_eq!(size_of::<RequestV3>(), 124);
        assert_eq!(size_of::<libc::sockaddr_un>(), 110);
    }
}
