//! A host tap device for `eth<N>=tuntap,<name>`: /dev/net/tun attached
//! to an existing tap interface by name (TUNSETIFF with IFF_TAP and
//! IFF_NO_PI: whole Ethernet frames, no packet-info header), as UML's
//! tuntap transport opens a named device. With IFF_VNET_HDR where the
//! host has it: each frame goes with a `virtio_net_hdr`, so a write may
//! leave the TCP checksum to the host and carry a run of segments the
//! host cuts (`net::inet::offload`); reads get one too, and TUNSETOFFLOAD
//! lets the host send TCPv4 runs of up to 64 KiB uncut with their
//! checksum unfinished (the guest's stack checks no checksum: packets
//! inside umlrun never pass a wire), one read per run. Non-blocking: the host event
//! loop says when frames wait; a write the device cannot take now is
//! refused (the caller counts the drop).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
/// virtio_net_hdr's gso_type: none, TCPv4.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
/// `virtio_net_hdr`'s size (TUNSETVNETHDRSZ's default).
pub const VNET_HDR_LEN: usize = 10;
const IFNAMSIZ: usize = 16;

pub struct HostTap {
    f: File,
    /// Frames carry a virtio_net_hdr (IFF_VNET_HDR was granted).
    vnet: bool,
}

/// struct ifreq as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl HostTap {
    /// Attaches to tap device `name` (it must exist, or the caller must
    /// be allowed to create it: Linux makes one for CAP_NET_ADMIN).
    pub fn open(name: &str) -> io::Result<HostTap> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        match Self::attach(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) {
            Ok(f) => {
                let offload = TUN_F_CSUM | TUN_F_TSO4;
                // SAFETY: TUNSETOFFLOAD takes its flags by value.
                let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETOFFLOAD, offload) };
                if r < 0 {
                    // Cut, checksummed frames, as without it.
                    log::debug!("tap {name}: TUNSETOFFLOAD: {}", io::Error::last_os_error());
                }
                Ok(HostTap { f, vnet: true })
            }
            // A host without vnet headers on taps: plain frames.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(HostTap {
                f: Self::attach(name, IFF_TAP | IFF_NO_PI)?,
                vnet: false,
            }),
            Err(e) => Err(e),
        }
    }

    fn attach(name: &str, flags: libc::c_short) -> io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads (and may write) one struct ifreq, which
        // `req` is, alive for the call.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(f)
    }

    /// Frames carry a virtio_net_hdr: `write_vnet` may ask for offloads.
    pub fn offloads(&self) -> bool {
        self.vnet
    }

    /// One frame into `buf`; None if none waits. A frame the host sent
    /// with offloads we did not turn on (so never: UDP, TCPv6, ECN)
    /// reads as length 0: malformed.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.vnet {
            return would_block(self.f.read(buf));
        }
        let mut hdr = [0u8; VNET_HDR_LEN];
        let mut iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
        ];
        // SAFETY: both iovecs describe live, writable buffers of their
        // lengths, borrowed for the call.
        let r = unsafe { libc::readv(self.f.as_raw_fd(), iov.as_mut_ptr(), 2) };
        let n = would_block(if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        })?;
        Ok(n.map(|n| {
            if n < VNET_HDR_LEN || !matches!(hdr[1], GSO_NONE | GSO_TCPV4) {
                0
            } else {
                n - VNET_HDR_LEN
            }
        }))
    }

    /// Writes one frame; false if the device cannot take it now.
    pub fn write(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.write_vnet(&[0; VNET_HDR_LEN], frame)
    }

    /// Writes one frame with its virtio_net_hdr `hdr` (left out on a tap
    /// without them, where `hdr` must ask for nothing); false if the
    /// device cannot take it now.
    pub fn write_vnet(&mut self, hdr: &[u8; VNET_HDR_LEN], frame: &[u8]) -> io::Result<bool> {
        let r = if self.vnet {
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_ptr() as *mut libc::c_void,
                    iov_len: hdr.len(),
                },
                libc::iovec {
                    iov_base: frame.as_ptr() as *mut libc::c_void,
                    iov_len: frame.len(),
                },
            ];
            // SAFETY: both iovecs describe live buffers of their lengths,
            // only read by the call.
            let r = unsafe { libc::writev(self.f.as_raw_fd(), iov.as_ptr(), 2) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        } else {
            self.f.write(frame)
        };
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.f.as_raw_fd()
    }
}

/// A read's result with "nothing waits" (and an interrupted call) as
/// None.
fn would_block(r: io::Result<usize>) -> io::Result<Option<usize>> {
    match r {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}
