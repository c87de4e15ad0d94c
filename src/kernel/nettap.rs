//! The host side of the transports that carry Ethernet frames:
//! `eth<N>=tuntap,<tap>` (a host tap device) and
//! `eth<N>=daemon,<mac>,unix,<ctl>` (a port on a `uml_switch`,
//! `host::umlswitch`). Each is a host fd on the host event loop; the
//! frames it brings are handed to ethN's Ethernet link
//! (`NetStack::ether_in`: ARP answered, IPv4 up to the stack), and after
//! each stack run the frames the link queued are written to the device
//! (`net_tap_out`). A frame the device cannot take now (a switch whose
//! queue for us is full) waits in the device's backlog, and the fd is
//! watched for writing until the backlog is gone, as a NIC's transmit
//! queue backs up; past `BACKLOG_MAX` frames they are dropped and
//! counted, as a full device queue drops.

use super::core::Kernel;
use super::hostsrc::HostSource;
use crate::host::event_loop::{Interest, Token};
use crate::host::tap::HostTap;
use crate::host::umlswitch::HostSwitch;
use crate::net::inet::offload::OutFrame;

/// Frames read from one tap per event (the rest wait: the fd stays
/// readable).
const READ_BATCH: usize = 256;
/// A tap frame's largest size (the device's MTU is the host's to set:
/// 64 KiB covers any).
const FRAME_BUF: usize = 65_550;

/// Frames waiting for a device that cannot take them now.
const BACKLOG_MAX: usize = 1024;

/// A switch port's largest MTU: uml_switch reads 1500 bytes of payload
/// after the Ethernet header, as UML's daemon transport sends.
pub const SWITCH_MTU: u16 = 1500;
/// A tap's largest MTU: the host tap's own (Linux's tun.c: 65535 less
/// the Ethernet header); its frames fit `FRAME_BUF` with the
/// virtio_net_hdr.
pub const TAP_MAX_MTU: u16 = 65_521;

/// The host end of one Ethernet link.
enum LinkDev {
    Tap(HostTap),
    Switch(HostSwitch),
}

impl LinkDev {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        match self {
            LinkDev::Tap(t) => t.read(buf),
            LinkDev::Switch(s) => s.read(buf),
        }
    }

    /// Writes frame `f`: on a tap with offloads, with its virtio_net_hdr
    /// (a switch port's frames are all whole).
    fn write(&mut self, f: &OutFrame) -> std::io::Result<bool> {
        match self {
            LinkDev::Tap(t) => t.write_vnet(&f.vnet_header(), &f.bytes),
            LinkDev::Switch(s) => s.write(&f.bytes),
        }
    }

    fn offloads(&self) -> bool {
        match self {
            LinkDev::Tap(t) => t.offloads(),
            LinkDev::Switch(_) => false,
        }
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            LinkDev::Tap(t) => t.raw_fd(),
            LinkDev::Switch(s) => s.raw_fd(),
        }
    }

    /// Datagrams the switch port refused as not the switch's.
    fn foreign(&self) -> u64 {
        match self {
            LinkDev::Tap(_) => 0,
            LinkDev::Switch(s) => s.foreign,
        }
    }
}

pub struct TapDev {
    n: u8,
    dev: LinkDev,
    token: Token,
    /// `foreign` already counted as drops.
    foreign_seen: u64,
    /// Frames the device refused for now, oldest first.
    backlog: std::collections::VecDeque<OutFrame>,
    /// The fd is watched for writing (the backlog is not empty).
    want_write: bool,
}

impl TapDev {
    /// Writes the backlog while the device takes it; the frames it failed
    /// on for good.
    fn flush(&mut self) -> u64 {
        let mut failed = 0;
        while let Some(f) = self.backlog.front() {
            match self.dev.write(f) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    log::debug!("eth{} device write: {e}", self.n);
                    failed += 1;
                }
            }
            self.backlog.pop_front();
        }
        failed
    }
}

/// Why a tap or a switch port could not be attached: the `ethN=` value
/// and the host's reason.
#[derive(Debug, thiserror::Error)]
#[error("eth{n}={what}: {source}")]
pub struct TapError {
    pub n: u8,
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

impl Kernel {
    /// Opens tap `name` for ethN (MAC `mac`) and watches it.
    pub(super) fn tap_attach(&mut self, n: u8, name: &str, mac: [u8; 6]) -> Result<(), TapError> {
        let err = |source| TapError {
            n,
            what: format!("tuntap,{name}"),
            source,
        };
        let tap = HostTap::open(name).map_err(err)?;
        self.link_attach(n, LinkDev::Tap(tap), mac, TAP_MAX_MTU)
            .map_err(err)
    }

    /// Plugs ethN (MAC `mac`) into the uml_switch whose control socket
    /// is `ctl`, and watches its data socket.
    pub(super) fn switch_attach(
        &mut self,
        n: u8,
        ctl: &std::path::Path,
        mac: [u8; 6],
    ) -> Result<(), TapError> {
        let err = |source| TapError {
            n,
            what: format!("daemon,,unix,{}", ctl.display()),
            source,
        };
        let port = HostSwitch::connect(ctl).map_err(err)?;
        self.link_attach(n, LinkDev::Switch(port), mac, SWITCH_MTU)
            .map_err(err)
    }

    fn link_attach(
        &mut self,
        n: u8,
        dev: LinkDev,
        mac: [u8; 6],
        max_mtu: u16,
    ) -> std::io::Result<()> {
        let token = self.register_host_source(dev.raw_fd(), Interest::READ, HostSource::Tap(n))?;
        let offload = dev.offloads();
        self.net().attach_ether(n, mac, max_mtu, offload);
        self.net_host.taps.push(TapDev {
            n,
            dev,
            token,
            foreign_seen: 0,
            backlog: std::collections::VecDeque::new(),
            want_write: false,
        });
        Ok(())
    }

    /// Tap `n` is readable (or writable again): its frames to the stack,
    /// then a stack run (which writes the backlog, `net_tap_out`).
    pub(super) fn net_tap_ready(&mut self, n: u8) {
        if let Some(i) = self.net_host.taps.iter().position(|t| t.n == n) {
            self.tap_read(i);
        }
        self.net_settle();
    }

    /// Hands the frames waiting on the device at `i` to the stack (at
    /// most `READ_BATCH`); true if any came. A device that fails is
    /// removed.
    fn tap_read(&mut self, i: usize) -> bool {
        let n = self.net_host.taps[i].n;
        let mut buf = vec![0u8; FRAME_BUF];
        let mut any = false;
        for _ in 0..READ_BATCH {
            let len = match self.net_host.taps[i].dev.read(&mut buf) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    // The device is gone (deleted on the host): stop
                    // watching it, or its readiness would spin.
                    log::warn!("eth{n}: the host device failed ({e}): the link is down for good");
                    let t = self.net_host.taps.remove(i);
                    self.deregister_host_source(t.token);
                    return any;
                }
            };
            any = true;
            self.net().ether_in(n, &buf[..len]);
        }
        if let Some(t) = self.net_host.taps.get_mut(i) {
            let foreign = t.dev.foreign();
            if foreign > t.foreign_seen {
                let k = foreign - t.foreign_seen;
                t.foreign_seen = foreign;
                self.net().ether_rx_dropped(n, k);
            }
        }
        any
    }

    /// Writes the frames the stack queued for the taps; true if any went
    /// or came. A tap written to is read at once: a local peer's answer
    /// (TCP's ACK of what was just written) is usually there already,
    /// and taking it in this stack run frees the guest's send room
    /// before its next write finds none and sleeps for the event loop.
    pub(super) fn net_tap_out(&mut self) -> bool {
        if self.net_host.taps.is_empty() {
            return false;
        }
        let mut any = false;
        let mut written = Vec::new();
        let mut taps = std::mem::take(&mut self.net_host.taps);
        for t in &mut taps {
            let frames = self.net().take_ether_out(t.n);
            if !frames.is_empty() {
                any = true;
                written.push(t.n);
            }
            t.backlog.extend(frames);
            let mut dropped = t.flush();
            if t.backlog.len() > BACKLOG_MAX {
                let k = t.backlog.len() - BACKLOG_MAX;
                t.backlog.drain(..k);
                dropped += k as u64;
            }
            if dropped > 0 {
                self.net().ether_dropped(t.n, dropped);
            }
            let want = !t.backlog.is_empty();
            if want != t.want_write {
                let interest = Interest {
                    read: true,
                    write: want,
                };
                match self.host_loop.modify(t.dev.raw_fd(), interest, t.token) {
                    Ok(()) => t.want_write = want,
                    Err(e) => log::debug!("eth{} watch for writing: {e}", t.n),
                }
            }
        }
        // Taps opened meanwhile (none: nothing above opens one) stay.
        taps.append(&mut self.net_host.taps);
        self.net_host.taps = taps;
        for n in written {
            if let Some(i) = self.net_host.taps.iter().position(|t| t.n == n) {
                any |= self.tap_read(i);
            }
        }
        any
    }
}
