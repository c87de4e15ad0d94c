//! The guest's one IP-level device under smoltcp: whatever the stack
//! sends is queued here, and the stack (`stack.rs`) routes each packet:
//! to a local address it comes back in on `lo` (the receive queue), else
//! it goes out through eth0's transport if there is one. Both queues are
//! capped; what does not fit is dropped and counted, as a full device
//! queue drops on Linux.

use std::collections::VecDeque;

use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The largest packet: lo's MTU (Linux's is 65536; an IPv4 total length
/// field stops at 65535).
pub const LO_MTU: usize = 65535;
/// Packets a queue holds before it drops.
pub const QUEUE_MAX: usize = 4096;

/// Counters of one interface, as /proc/net/dev shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
}

#[derive(Default)]
pub struct IpDevice {
    /// Packets the stack will receive next.
    pub rx: VecDeque<Vec<u8>>,
    /// Packets the stack sent, not yet routed.
    pub sent: VecDeque<Vec<u8>>,
    /// Sends refused because `sent` was full.
    pub tx_dropped: u64,
}

impl IpDevice {
    /// Queues a packet for the stack to receive; false if the queue is
    /// full (the caller counts the drop).
    pub fn deliver(&mut self, p: Vec<u8>) -> bool {
        if self.rx.len() >= QUEUE_MAX {
            return false;
        }
        self.rx.push_back(p);
        true
    }
}

pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

pub struct TxToken<'a>(&'a mut IpDevice);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        if self.0.sent.len() < QUEUE_MAX {
            self.0.sent.push_back(buf);
        } else {
            self.0.tx_dropped += 1;
        }
        r
    }
}

impl phy::Device for IpDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = LO_MTU;
        // Packets never leave umlrun's memory unchecked: the transports
        // that take them off the machine compute their own checksums.
        c.checksum = ChecksumCapabilities::ignored();
        c
    }

    fn receive(&mut self, _t: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let p = self.rx.pop_front()?;
        Some((RxToken(p), TxToken(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_queue_is_capped() {
        let mut d = IpDevice::default();
        for _ in 0..QUEUE_MAX {
            assert!(d.deliver(vec![0]));
        }
        assert!(!d.deliver(vec![0]));
        assert_eq!(d.rx.len(), QUEUE_MAX);
    }
}
