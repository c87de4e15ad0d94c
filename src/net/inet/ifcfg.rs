//! The ethN interfaces' IPv4 configuration (`IfCfg`: one each) and the
//! main routing table (each route belongs to the interface it goes
//! out of; `lookup` walks them all), changed the way a guest changes
//! them (SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFBRDADDR,
//! SIOCSIFFLAGS, SIOCADDRT, SIOCDELRT), with Linux's rules:
//! - a new address gets its classful netmask and broadcast, and a
//!   connected route while the interface is up;
//! - taking the last address away (or changing it, its mask or its
//!   broadcast, which Linux does by deleting and re-adding it) and
//!   bringing the interface down flush every route through it;
//! - a gateway must be on a connected network of an up interface
//!   (ENETUNREACH), an identical route is EEXIST, a route to delete that
//!   is not there ESRCH.
//!
//! Pure: no stack here; `stack.rs` mirrors the result into smoltcp.

use std::net::Ipv4Addr;

use crate::errno::{Errno, KResult};

pub const IFINDEX_LO: i32 = 1;
pub const IFINDEX_ETH0: i32 = 2;
/// eth0..eth5: smoltcp's interface holds 8 addresses, lo's two and
/// one per ethN.
pub const ETH_MAX: u8 = 6;
const ETH_NAMES: [&str; ETH_MAX as usize] = ["eth0", "eth1", "eth2", "eth3", "eth4", "eth5"];
/// Every ethN's MTU when it is attached: Ethernet's (RFC 894), as a
/// Linux NIC starts.
pub const ETH_MTU: u16 = 1500;
/// The smallest MTU an ethN takes (Linux's ETH_MIN_MTU: IPv4's 68).
pub const MIN_MTU: u16 = 68;
/// Most routes the table holds (smoltcp's interface keeps at most 8
/// gateway routes; the rest would route nothing).
pub const ROUTES_MAX: usize = 8;

/// One route of the main table (through the interface that holds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub gw: Option<Ipv4Addr>,
    /// Linux's priority: what `route` shows as Metric.
    pub metric: u32,
    /// Made by the kernel for an address's network (proto kernel, scope
    /// link), not by the guest.
    pub connected: bool,
}

impl Route {
    pub fn mask(&self) -> u32 {
        mask_of(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.dst)
    }
}

/// The netmask of a prefix length (0..=32).
pub fn mask_of(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

/// The prefix length of a netmask, if it is one (contiguous ones).
pub fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (mask_of(p as u8) == m).then_some(p as u8)
}

/// Linux's inet_abc_len: the classful prefix of an address, None for
/// class D and E (EINVAL).
fn classful(ip: Ipv4Addr) -> Option<u8> {
    let a = ip.octets()[0];
    if ip.is_unspecified() {
        Some(0)
    } else if a < 128 {
        Some(8)
    } else if a < 192 {
        Some(16)
    } else if a < 224 {
        Some(24)
    } else {
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfCfg {
    pub up: bool,
    /// The address and its prefix length.
    pub addr: Option<(Ipv4Addr, u8)>,
    pub broadcast: Ipv4Addr,
    /// Sorted as Linux's table walks them: by destination, then longer
    /// prefix first, then metric.
    pub routes: Vec<Route>,
    /// The largest IPv4 packet the interface sends; TCP's MSS on it is
    /// this less 40 (`stack.rs` clamps SYNs both ways to it).
    pub mtu: u16,
}

impl IfCfg {
    /// Up with no address (`eth0=user,addr=none`): the guest configures it.
    pub fn unconfigured() -> IfCfg {
        IfCfg {
            up: false,
            addr: None,
            broadcast: Ipv4Addr::UNSPECIFIED,
            routes: Vec::new(),
            mtu: ETH_MTU,
        }
    }

    /// Up with `addr`/`prefix` (and its connected route).
    pub fn addressed(addr: Ipv4Addr, prefix: u8) -> IfCfg {
        let mut e = IfCfg::unconfigured();
        e.up = true;
        e.insert_addr(
            addr,
            prefix,
            Ipv4Addr::from(u32::from(addr) | !mask_of(prefix)),
        );
        e
    }

    /// Up with `addr`/`prefix` and a default route via `gw`.
    pub fn configured(addr: Ipv4Addr, prefix: u8, gw: Ipv4Addr) -> IfCfg {
        let mut e = IfCfg::addressed(addr, prefix);
        e.routes.push(Route {
            dst: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            gw: Some(gw),
            metric: 0,
            connected: false,
        });
        e.sort();
        e
    }

    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.addr.map(|a| a.0)
    }

    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr.map_or(0, |a| mask_of(a.1)))
    }

    fn sort(&mut self) {
        self.routes
            .sort_by_key(|r| (u32::from(r.dst), std::cmp::Reverse(r.prefix), r.metric));
    }

    fn connected_route(&self) -> Option<Route> {
        let (ip, prefix) = self.addr?;
        Some(Route {
            dst: Ipv4Addr::from(u32::from(ip) & mask_of(prefix)),
            prefix,
            gw: None,
            metric: 0,
            connected: true,
        })
    }

    /// Linux's inet_del_ifa of the only address: every route goes.
    fn delete_addr(&mut self) {
        self.addr = None;
        self.broadcast = Ipv4Addr::UNSPECIFIED;
        self.routes.clear();
    }

    fn insert_addr(&mut self, ip: Ipv4Addr, prefix: u8, broadcast: Ipv4Addr) {
        self.addr = Some((ip, prefix));
        self.broadcast = broadcast;
        if self.up {
            if let Some(r) = self.connected_route() {
                self.routes.push(r);
                self.sort();
            }
        }
    }

    /// RTM_NEWADDR: `ip`/`prefix` with `broadcast` (0.0.0.0: none, as
    /// `ip addr add` without `brd`). EEXIST for the address eth0 has
    /// (with `excl`; else its broadcast is replaced); EOPNOTSUPP for a
    /// second, different one (eth0 holds one IPv4 address), EINVAL for a
    /// prefix over 32.
    pub fn add_addr(
        &mut self,
        ip: Ipv4Addr,
        prefix: u8,
        broadcast: Ipv4Addr,
        excl: bool,
    ) -> KResult<()> {
        if prefix > 32 {
            return Err(Errno::EINVAL);
        }
        match self.addr {
            Some(a) if a == (ip, prefix) => {
                if excl {
                    return Err(Errno::EEXIST);
                }
                self.broadcast = broadcast;
                Ok(())
            }
            Some(_) => Err(Errno::EOPNOTSUPP),
            None => {
                self.insert_addr(ip, prefix, broadcast);
                Ok(())
            }
        }
    }

    /// RTM_DELADDR: removes the address (its routes go with it).
    pub fn remove_addr(&mut self) {
        self.delete_addr();
    }

    /// SIOCSIFADDR. 0.0.0.0 deletes the address.
    pub fn set_addr(&mut self, ip: Ipv4Addr) -> KResult<()> {
        let prefix = classful(ip).ok_or(Errno::EINVAL)?;
        if self.ip() == Some(ip) {
            return Ok(());
        }
        self.delete_addr();
        if ip.is_unspecified() {
            return Ok(());
        }
        let b = if prefix < 31 {
            Ipv4Addr::from(u32::from(ip) | !mask_of(prefix))
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        self.insert_addr(ip, prefix, b);
        Ok(())
    }

    /// SIOCSIFNETMASK: EADDRNOTAVAIL without an address, EINVAL for a
    /// mask that is not one. The broadcast follows if it was the old
    /// mask's.
    pub fn set_netmask(&mut self, mask: Ipv4Addr) -> KResult<()> {
        let (ip, old) = self.addr.ok_or(Errno::EADDRNOTAVAIL)?;
        let prefix = prefix_of(mask).ok_or(Errno::EINVAL)?;
        if prefix == old {
            return Ok(());
        }
        let follow = u32::from(self.broadcast) == u32::from(ip) | !mask_of(old);
        let b = if prefix < 31 && follow {
            Ipv4Addr::from(u32::from(ip) | !mask_of(prefix))
        } else {
            self.broadcast
        };
        self.delete_addr();
        self.insert_addr(ip, prefix, b);
        Ok(())
    }

    /// SIOCSIFBRDADDR.
    pub fn set_broadcast(&mut self, b: Ipv4Addr) -> KResult<()> {
        let (ip, prefix) = self.addr.ok_or(Errno::EADDRNOTAVAIL)?;
        if b != self.broadcast {
            self.delete_addr();
            self.insert_addr(ip, prefix, b);
        }
        Ok(())
    }

    /// SIOCSIFFLAGS: only IFF_UP changes anything. Down flushes the
    /// routes; up brings the address's network route back.
    pub fn set_up(&mut self, up: bool) {
        if up == self.up {
            return;
        }
        self.up = up;
        self.routes.clear();
        if up {
            if let Some(r) = self.connected_route() {
                self.routes.push(r);
            }
        }
    }

    /// The route `ip` takes: longest prefix, then lowest metric.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<Route> {
        if !self.up {
            return None;
        }
        self.routes
            .iter()
            .filter(|r| r.contains(ip))
            .min_by_key(|r| (std::cmp::Reverse(r.prefix), r.metric))
            .copied()
    }

    /// SIOCADDRT through eth0 (`dev` given: eth0 named, or no device).
    pub fn add_route(&mut self, r: Route, dev_named: bool) -> KResult<()> {
        if u32::from(r.dst) & !r.mask() != 0 {
            return Err(Errno::EINVAL);
        }
        match r.gw {
            Some(gw) => {
                // The gateway must be on a connected network.
                let via = self.lookup(gw).filter(|v| v.gw.is_none());
                if via.is_none() {
                    return Err(Errno::ENETUNREACH);
                }
            }
            None if !dev_named => return Err(Errno::ENODEV),
            None if !self.up => return Err(Errno::ENETDOWN),
            None => {}
        }
        let same = |x: &Route| {
            x.dst == r.dst && x.prefix == r.prefix && x.gw == r.gw && x.metric == r.metric
        };
        if self.routes.iter().any(same) {
            return Err(Errno::EEXIST);
        }
        if self.routes.len() >= ROUTES_MAX {
            return Err(Errno::ENOBUFS);
        }
        self.routes.push(r);
        self.sort();
        Ok(())
    }

    /// SIOCDELRT: the first route to `dst`/`prefix` whose gateway
    /// (if given) and metric (if given) match; ESRCH if none.
    pub fn del_route(
        &mut self,
        dst: Ipv4Addr,
        prefix: u8,
        gw: Option<Ipv4Addr>,
        metric: Option<u32>,
    ) -> KResult<()> {
        let i = self
            .routes
            .iter()
            .position(|r| {
                r.dst == dst
                    && r.prefix == prefix
                    && gw.is_none_or(|g| r.gw == Some(g))
                    && metric.is_none_or(|m| r.metric == m)
            })
            .ok_or(Errno::ESRCH)?;
        self.routes.remove(i);
        Ok(())
    }
}

/// One ethN as the configuration paths (ioctls, rtnetlink, /proc/net)
/// see it: its number, configuration and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthIf {
    pub n: u8,
    /// Its MAC (QEMU's NIC address with N added, or the one `tuntap` gave).
    pub mac: [u8; 6],
    pub cfg: IfCfg,
    pub stats: super::device::IfStats,
    /// The largest MTU its link carries (Linux's dev->max_mtu): the
    /// transport's, `stack.rs`.
    pub max_mtu: u16,
}

impl EthIf {
    /// SIOCSIFMTU and IFLA_MTU (Linux's dev_set_mtu_ext): the MTU it
    /// has changes nothing; else EINVAL outside `MIN_MTU..=max_mtu`
    /// (a negative `ifr_mtu` included). Privilege is the caller's.
    pub fn set_mtu(&mut self, mtu: i64) -> KResult<()> {
        if mtu == i64::from(self.cfg.mtu) {
            return Ok(());
        }
        if mtu < i64::from(MIN_MTU) || mtu > i64::from(self.max_mtu) {
            return Err(Errno::EINVAL);
        }
        self.cfg.mtu = u16::try_from(mtu).map_err(|_| Errno::EINVAL)?;
        Ok(())
    }

    /// lo is 1, ethN is N + 2 (eth0 is 2, as on Linux).
    pub fn ifindex(&self) -> i32 {
        ifindex_of(self.n)
    }

    pub fn name(&self) -> &'static str {
        ETH_NAMES
            .get(usize::from(self.n))
            .copied()
            .unwrap_or("eth?")
    }
}

pub fn ifindex_of(n: u8) -> i32 {
    i32::from(n) + 2
}

/// The position of the interface named `name` (as the guest wrote it).
pub fn by_name(ifs: &[EthIf], name: &[u8]) -> Option<usize> {
    ifs.iter().position(|e| e.name().as_bytes() == name)
}

pub fn by_index(ifs: &[EthIf], ifindex: i32) -> Option<usize> {
    ifs.iter().position(|e| e.ifindex() == ifindex)
}

/// The route `ip` takes over every interface: longest prefix, then
/// lowest metric, then the lower interface (Linux's fib lookup in the
/// main table): the interface's position and the route.
pub fn lookup(ifs: &[EthIf], ip: Ipv4Addr) -> Option<(usize, Route)> {
    lookup_in(ifs.iter().map(|e| &e.cfg), ip)
}

/// `lookup` over the interfaces' configurations, in order.
pub fn lookup_in<'a>(
    cfgs: impl Iterator<Item = &'a IfCfg>,
    ip: Ipv4Addr,
) -> Option<(usize, Route)> {
    cfgs.enumerate()
        .filter_map(|(i, e)| Some((i, e.lookup(ip)?)))
        .min_by_key(|(i, r)| (std::cmp::Reverse(r.prefix), r.metric, *i))
}

/// Gateway and network routes (not the connected ones) in all tables:
/// smoltcp keeps at most `ROUTES_MAX` of them.
fn routes_kept(ifs: &[EthIf]) -> usize {
    ifs.iter()
        .map(|e| e.cfg.routes.iter().filter(|r| !r.connected).count())
        .sum()
}

/// SIOCADDRT / RTM_NEWROUTE: through interface `dev` if named, else a
/// gateway route goes through the interface whose connected network
/// holds the gateway (ENETUNREACH if none), and a route without one
/// needs a device (ENODEV).
pub fn add_route(ifs: &mut [EthIf], r: Route, dev: Option<usize>) -> KResult<()> {
    if u32::from(r.dst) & !r.mask() != 0 {
        return Err(Errno::EINVAL);
    }
    let i = match (dev, r.gw) {
        (Some(i), _) => i,
        (None, Some(gw)) => ifs
            .iter()
            .position(|e| e.cfg.lookup(gw).is_some_and(|v| v.gw.is_none()))
            .ok_or(Errno::ENETUNREACH)?,
        (None, None) => return Err(Errno::ENODEV),
    };
    let kept = routes_kept(ifs);
    let e = &mut ifs.get_mut(i).ok_or(Errno::ENODEV)?.cfg;
    e.add_route(r, dev.is_some())?;
    if kept >= ROUTES_MAX {
        let _ = e.del_route(r.dst, r.prefix, r.gw, Some(r.metric));
        return Err(Errno::ENOBUFS);
    }
    Ok(())
}

/// SIOCDELRT / RTM_DELROUTE: from interface `dev` if named, else the
/// first that has a matching route; ESRCH if none does.
pub fn del_route(
    ifs: &mut [EthIf],
    dst: Ipv4Addr,
    prefix: u8,
    gw: Option<Ipv4Addr>,
    metric: Option<u32>,
    dev: Option<usize>,
) -> KResult<()> {
    for (i, e) in ifs.iter_mut().enumerate() {
        if dev.is_none_or(|d| d == i) && e.cfg.del_route(dst, prefix, gw, metric).is_ok() {
            return Ok(());
        }
    }
    Err(Errno::ESRCH)
}

/// sizeof(struct rtentry) on x86-64.
pub const RTENTRY_LEN: usize = 120;
const RTF_GATEWAY: u16 = 0x2;
const RTF_HOST: u16 = 0x4;

/// A decoded `struct rtentry` (SIOCADDRT/SIOCDELRT): the route, and the
/// guest pointer to its device name (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtEntry {
    pub route: Route,
    pub dev_ptr: u64,
}

/// Decodes an rtentry with Linux's checks (rtentry_to_fib_config):
/// EAFNOSUPPORT for a non-IPv4 destination or mask, EINVAL for a mask
/// that is not one or a destination with host bits outside it.
pub fn parse_rtentry(raw: &[u8]) -> KResult<RtEntry> {
    if raw.len() < RTENTRY_LEN {
        return Err(Errno::EFAULT);
    }
    let family = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]);
    let ip = |o: usize| Ipv4Addr::new(raw[o + 4], raw[o + 5], raw[o + 6], raw[o + 7]);
    if family(8) != 2 {
        return Err(Errno::EAFNOSUPPORT);
    }
    let dst = ip(8);
    let flags = u16::from_le_bytes([raw[56], raw[57]]);
    let prefix = if flags & RTF_HOST != 0 {
        32
    } else {
        let mask = ip(40);
        if family(40) != 2 && (family(40) != 0 || !mask.is_unspecified()) {
            return Err(Errno::EAFNOSUPPORT);
        }
        prefix_of(mask).ok_or(Errno::EINVAL)?
    };
    if u32::from(dst) & !mask_of(prefix) != 0 {
        return Err(Errno::EINVAL);
    }
    let gw = (flags & RTF_GATEWAY != 0 && family(24) == 2)
        .then(|| ip(24))
        .filter(|g| !g.is_unspecified());
    let metric = i16::from_le_bytes([raw[80], raw[81]]);
    let dev_ptr = u64::from_le_bytes(raw[88..96].try_into().map_err(|_| Errno::EFAULT)?);
    Ok(RtEntry {
        route: Route {
            dst,
            prefix,
            gw,
            // `route` passes the metric plus one; Linux takes one off.
            metric: u32::from(metric.max(1) as u16 - 1),
            connected: false,
        },
        dev_ptr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn default_via(gw: &str) -> Route {
        Route {
            dst: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            gw: Some(ip(gw)),
            metric: 0,
            connected: false,
        }
    }

    #[test]
    fn masks_and_prefixes() {
        assert_eq!(mask_of(0), 0);
        assert_eq!(mask_of(24), 0xffff_ff00);
        assert_eq!(mask_of(32), u32::MAX);
        assert_eq!(mask_of(200), u32::MAX);
        assert_eq!(prefix_of(ip("255.255.255.0")), Some(24));
        assert_eq!(prefix_of(ip("0.0.0.0")), Some(0));
        assert_eq!(prefix_of(ip("255.0.255.0")), None);
    }

    /// What busybox `ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up`
    /// then `route add default gw 10.0.2.2` do, step by step, as Linux
    /// answers each step.
    #[test]
    fn ifconfig_then_route_as_linux() {
        let mut e = IfCfg::unconfigured();
        assert_eq!(
            e.add_route(default_via("10.0.2.2"), false),
            Err(Errno::ENETUNREACH)
        );
        assert_eq!(
            e.set_netmask(ip("255.255.255.0")),
            Err(Errno::EADDRNOTAVAIL)
        );
        e.set_addr(ip("10.0.2.15")).unwrap();
        // Classful: a class A address gets /8, and no route while down.
        assert_eq!(e.addr, Some((ip("10.0.2.15"), 8)));
        assert_eq!(e.broadcast, ip("10.255.255.255"));
        assert!(e.routes.is_empty());
        e.set_netmask(ip("255.255.255.0")).unwrap();
        assert_eq!(e.broadcast, ip("10.0.2.255"), "the broadcast follows");
        e.set_up(true);
        assert_eq!(e.routes.len(), 1);
        assert!(e.routes[0].connected);
        assert_eq!((e.routes[0].dst, e.routes[0].prefix), (ip("10.0.2.0"), 24));
        assert_eq!(
            e.add_route(default_via("192.168.1.1"), false),
            Err(Errno::ENETUNREACH)
        );
        e.add_route(default_via("10.0.2.2"), false).unwrap();
        assert_eq!(
            e.add_route(default_via("10.0.2.2"), false),
            Err(Errno::EEXIST)
        );
        // The default route is listed first, as /proc/net/route has it.
        assert_eq!(e.routes[0].gw, Some(ip("10.0.2.2")));
        assert_eq!(e.lookup(ip("1.2.3.4")).unwrap().gw, Some(ip("10.0.2.2")));
        assert_eq!(e.lookup(ip("10.0.2.3")).unwrap().gw, None);
        // The udhcpc script's `route del default gw 0.0.0.0 dev eth0` loop.
        assert_eq!(e.del_route(Ipv4Addr::UNSPECIFIED, 0, None, None), Ok(()));
        assert_eq!(
            e.del_route(Ipv4Addr::UNSPECIFIED, 0, None, None),
            Err(Errno::ESRCH)
        );
        assert_eq!(e.lookup(ip("1.2.3.4")), None);
    }

    #[test]
    fn down_and_address_changes_flush_routes() {
        let mut e = IfCfg::configured(ip("10.0.2.15"), 24, ip("10.0.2.2"));
        assert_eq!(e.routes.len(), 2);
        e.set_up(false);
        assert!(e.routes.is_empty());
        assert_eq!(e.lookup(ip("10.0.2.2")), None);
        e.set_up(true);
        assert_eq!(e.routes.len(), 1, "only the connected route comes back");
        e.add_route(default_via("10.0.2.2"), true).unwrap();
        e.set_addr(ip("10.0.2.15")).unwrap();
        assert_eq!(e.routes.len(), 2, "the same address changes nothing");
        e.set_addr(ip("10.0.2.16")).unwrap();
        assert_eq!(e.routes.len(), 1, "a new address: routes flushed");
        e.set_addr(Ipv4Addr::UNSPECIFIED).unwrap();
        assert_eq!(e.addr, None);
        assert!(e.routes.is_empty());
        assert_eq!(e.set_addr(ip("224.0.0.1")), Err(Errno::EINVAL));
    }

    #[test]
    fn device_routes_and_limits() {
        let mut e = IfCfg::configured(ip("10.0.2.15"), 24, ip("10.0.2.2"));
        let net = |d: &str, p| Route {
            dst: ip(d),
            prefix: p,
            gw: None,
            metric: 0,
            connected: false,
        };
        assert_eq!(
            e.add_route(net("192.168.0.0", 16), false),
            Err(Errno::ENODEV)
        );
        assert_eq!(
            e.add_route(net("192.168.0.1", 16), true),
            Err(Errno::EINVAL)
        );
        e.add_route(net("192.168.0.0", 16), true).unwrap();
        assert_eq!(e.lookup(ip("192.168.3.4")).unwrap().prefix, 16);
        for i in 0..10u8 {
            let r = e.add_route(net(&format!("172.16.{i}.0"), 24), true);
            if e.routes.len() >= ROUTES_MAX {
                assert!(r.is_ok() || r == Err(Errno::ENOBUFS));
            }
        }
        assert_eq!(e.routes.len(), ROUTES_MAX);
    }

    /// The rtentry busybox `route add default gw 10.0.2.2 dev eth0`
    /// passes, and Linux's refusals.
    #[test]
    fn rtentry_as_busybox_route_fills_it() {
        let mut raw = vec![0u8; RTENTRY_LEN];
        raw[8] = 2; // dst AF_INET 0.0.0.0
        raw[24] = 2;
        raw[28..32].copy_from_slice(&[10, 0, 2, 2]);
        raw[40] = 2; // genmask AF_INET 0.0.0.0
        raw[56] = 0x3; // RTF_UP | RTF_GATEWAY
        raw[80] = 1; // metric 0, plus one
        raw[88..96].copy_from_slice(&0x1000u64.to_le_bytes());
        let r = parse_rtentry(&raw).unwrap();
        assert_eq!(r.route, default_via("10.0.2.2"));
        assert_eq!(r.dev_ptr, 0x1000);
        let mut host = raw.clone();
        host[56] = 0x5; // RTF_UP | RTF_HOST, no gateway
        host[12..16].copy_from_slice(&[192, 168, 1, 1]);
        let r = parse_rtentry(&host).unwrap();
        assert_eq!((r.route.prefix, r.route.gw), (32, None));
        let mut bad = raw.clone();
        bad[8] = 10;
        assert_eq!(parse_rtentry(&bad), Err(Errno::EAFNOSUPPORT));
        let mut bad = raw.clone();
        bad[12] = 10; // 10.0.0.0 with mask 0.0.0.0
        assert_eq!(parse_rtentry(&bad), Err(Errno::EINVAL));
        let mut bad = raw.clone();
        bad[44..48].copy_from_slice(&[255, 0, 255, 0]);
        assert_eq!(parse_rtentry(&bad), Err(Errno::EINVAL));
        assert_eq!(parse_rtentry(&raw[..100]), Err(Errno::EFAULT));
    }
}
