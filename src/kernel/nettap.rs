//! The tuntap transport's host side (`eth<N>=tuntap,<tap>`): each tap
//! device is a host fd on the host event loop; the frames it brings are
//! handed to ethN's Ethernet link (`NetStack::ether_in`: ARP answered,
//! IPv4 up to the stack), and after each stack run the frames the link
//! queued are written to the device (`net_tap_out`). A frame the device
//! cannot take now is dropped and counted, as a full device queue drops.

use super::core::Kernel;
use super::hostsrc::HostSource;
use crate::host::event_loop::{Interest, Token};
use crate::host::tap::HostTap;

/// Frames read from one tap per event (the rest wait: the fd stays
/// readable).
const READ_BATCH: usize = 256;
/// A tap frame's largest size (the device's MTU is the host's to set:
/// 64 KiB covers any).
const FRAME_BUF: usize = 65_550;

pub struct TapDev {
    n: u8,
    tap: HostTap,
    token: Token,
}

/// Why a tap could not be attached.
#[derive(Debug, thiserror::Error)]
#[error("eth{n}=tuntap,{name}: {source}")]
pub struct TapError {
    pub n: u8,
    pub name: String,
    #[source]
    pub source: std::io::Error,
}

impl Kernel {
    /// Opens tap `name` for ethN (MAC `mac`) and watches it.
    pub(super) fn tap_attach(&mut self, n: u8, name: &str, mac: [u8; 6]) -> Result<(), TapError> {
        let err = |source| TapError {
            n,
            name: name.into(),
            source,
        };
        let tap = HostTap::open(name).map_err(err)?;
        let token = self
            .register_host_source(tap.raw_fd(), Interest::READ, HostSource::Tap(n))
            .map_err(err)?;
        self.net().attach_ether(n, mac);
        self.net_host.taps.push(TapDev { n, tap, token });
        Ok(())
    }

    /// Tap `n` is readable: its frames to the stack, then a stack run.
    pub(super) fn net_tap_ready(&mut self, n: u8) {
        let Some(i) = self.net_host.taps.iter().position(|t| t.n == n) else {
            return;
        };
        let mut buf = vec![0u8; FRAME_BUF];
        for _ in 0..READ_BATCH {
            let len = match self.net_host.taps[i].tap.read(&mut buf) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    // The device is gone (deleted on the host): stop
                    // watching it, or its readiness would spin.
                    log::warn!("eth{n}: the tap device failed ({e}): the link is down for good");
                    let t = self.net_host.taps.remove(i);
                    self.deregister_host_source(t.token);
                    break;
                }
            };
            self.net().ether_in(n, &buf[..len]);
        }
        self.net_settle();
    }

    /// Writes the frames the stack queued for the taps; true if any went.
    pub(super) fn net_tap_out(&mut self) -> bool {
        if self.net_host.taps.is_empty() {
            return false;
        }
        let mut any = false;
        let mut taps = std::mem::take(&mut self.net_host.taps);
        for t in &mut taps {
            let frames = self.net().take_ether_out(t.n);
            let mut dropped = 0u64;
            for f in frames {
                any = true;
                match t.tap.write(&f) {
                    Ok(true) => {}
                    Ok(false) => dropped += 1,
                    Err(e) => {
                        log::debug!("eth{} tap write: {e}", t.n);
                        dropped += 1;
                    }
                }
            }
            if dropped > 0 {
                self.net().ether_dropped(t.n, dropped);
            }
        }
        self.net_host.taps = taps;
        any
    }
}
