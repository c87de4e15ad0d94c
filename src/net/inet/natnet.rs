//! The addresses of one interface's user-mode NAT, slirp's layout: eth0
//! is on 10.0.2.0/24 (the guest .15, the gateway .2, the DNS forwarder
//! .3) and ethN on 10.0.(2+N).0/24, so that each interface has its own
//! network and the routing table tells them apart.

use std::net::Ipv4Addr;

use super::ifcfg::mask_of;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatNet {
    /// The guest's address (the DHCP server's lease).
    pub guest: Ipv4Addr,
    /// The NAT's own address: the host's 127.0.0.1 as the guest sees it,
    /// and where forwarded connections come from.
    pub gateway: Ipv4Addr,
    /// The DNS forwarder.
    pub dns: Ipv4Addr,
    pub prefix: u8,
}

impl NatNet {
    /// The network of ethN's NAT.
    pub fn of_eth(n: u8) -> NatNet {
        let third = 2u8.saturating_add(n);
        NatNet {
            guest: Ipv4Addr::new(10, 0, third, 15),
            gateway: Ipv4Addr::new(10, 0, third, 2),
            dns: Ipv4Addr::new(10, 0, third, 3),
            prefix: 24,
        }
    }

    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_of(self.prefix))
    }

    /// Is `ip` on this network?
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = mask_of(self.prefix);
        u32::from(ip) & m == u32::from(self.guest) & m
    }

    /// The network's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.guest) | !mask_of(self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_interface_has_its_network() {
        let e0 = NatNet::of_eth(0);
        assert_eq!(e0.guest, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(e0.gateway, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(e0.broadcast(), Ipv4Addr::new(10, 0, 2, 255));
        let e1 = NatNet::of_eth(1);
        assert_eq!(e1.dns, Ipv4Addr::new(10, 0, 3, 3));
        assert!(e1.contains(Ipv4Addr::new(10, 0, 3, 200)));
        assert!(!e1.contains(e0.gateway));
    }
}
