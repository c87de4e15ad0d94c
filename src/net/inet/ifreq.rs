//! The interface ioctls on a socket (SIOCGIF*), as busybox ifconfig,
//! route and udhcpc ask them: the interfaces (lo, and the ethN) and the
//! answers in `struct ifreq` / `struct ifconf` layout. Pure: the caller
//! copies the 40-byte ifreq in and out.
//! An ethN's address, netmask, broadcast, IFF_UP and MTU are set by
//! `ifreq_set` (with Linux's rules, `ifcfg.rs`); lo cannot be changed:
//! a set that changes nothing succeeds, any other is EOPNOTSUPP. Every
//! set is EPERM without privilege, as Linux checks that first (before
//! it looks the name up).

use std::net::Ipv4Addr;

use super::ifcfg::{EthIf, IFINDEX_LO};
use crate::errno::{Errno, KResult};

pub const SIOCGIFNAME: u32 = 0x8910;
pub const SIOCGIFCONF: u32 = 0x8912;
pub const SIOCGIFFLAGS: u32 = 0x8913;
pub const SIOCSIFFLAGS: u32 = 0x8914;
pub const SIOCGIFADDR: u32 = 0x8915;
pub const SIOCSIFADDR: u32 = 0x8916;
pub const SIOCGIFDSTADDR: u32 = 0x8917;
pub const SIOCGIFBRDADDR: u32 = 0x8919;
pub const SIOCSIFBRDADDR: u32 = 0x891a;
pub const SIOCGIFNETMASK: u32 = 0x891b;
pub const SIOCSIFNETMASK: u32 = 0x891c;
pub const SIOCGIFMETRIC: u32 = 0x891d;
pub const SIOCGIFMTU: u32 = 0x8921;
pub const SIOCSIFMTU: u32 = 0x8922;
pub const SIOCGIFHWADDR: u32 = 0x8927;
pub const SIOCGIFINDEX: u32 = 0x8933;
pub const SIOCGIFTXQLEN: u32 = 0x8942;
pub const SIOCGIFMAP: u32 = 0x8970;

/// sizeof(struct ifreq).
pub const IFREQ_LEN: usize = 40;
const IFNAMSIZ: usize = 16;

/// One interface as the ioctls show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: &'static str,
    pub index: i32,
    pub flags: u16,
    pub mtu: i32,
    /// None: no IPv4 address (SIOCGIFADDR is EADDRNOTAVAIL).
    pub addr: Option<Ipv4Addr>,
    pub mask: Ipv4Addr,
    pub broadcast: Ipv4Addr,
    /// ARPHRD_* and the hardware address.
    pub hw: (u16, [u8; 6]),
}

const IFF_UP: u16 = 0x1;
const IFF_BROADCAST: u16 = 0x2;
const IFF_LOOPBACK: u16 = 0x8;
const IFF_RUNNING: u16 = 0x40;
const IFF_MULTICAST: u16 = 0x1000;

/// The interfaces: lo, then the ethN. Each shows QEMU's user-mode MAC
/// address (the last byte counting up from eth0's) and its MTU
/// (Ethernet's 1500 until the guest sets another), as a Linux guest on
/// a user-mode NIC does (the stack underneath carries IP packets).
pub fn interfaces(eths: &[EthIf]) -> Vec<Iface> {
    let mut v = vec![Iface {
        name: "lo",
        index: IFINDEX_LO,
        flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING,
        mtu: 65536,
        addr: Some(Ipv4Addr::LOCALHOST),
        mask: Ipv4Addr::new(255, 0, 0, 0),
        broadcast: Ipv4Addr::UNSPECIFIED,
        hw: (772, [0; 6]),
    }];
    for eth in eths {
        let e = &eth.cfg;
        let up = if e.up { IFF_UP | IFF_RUNNING } else { 0 };
        v.push(Iface {
            name: eth.name(),
            index: eth.ifindex(),
            flags: up | IFF_BROADCAST | IFF_MULTICAST,
            mtu: i32::from(e.mtu),
            addr: e.ip(),
            mask: e.mask(),
            broadcast: e.broadcast,
            hw: (1, eth.mac),
        });
    }
    v
}

/// Is `req` an interface ioctl this file answers?
pub fn is_if_ioctl(req: u32) -> bool {
    matches!(
        req,
        SIOCGIFNAME
            | SIOCGIFCONF
            | SIOCGIFFLAGS
            | SIOCSIFFLAGS
            | SIOCGIFADDR
            | SIOCSIFADDR
            | SIOCGIFDSTADDR
            | SIOCGIFBRDADDR
            | SIOCSIFBRDADDR
            | SIOCGIFNETMASK
            | SIOCSIFNETMASK
            | SIOCGIFMETRIC
            | SIOCGIFMTU
            | SIOCSIFMTU
            | SIOCGIFHWADDR
            | SIOCGIFINDEX
            | SIOCGIFTXQLEN
            | SIOCGIFMAP
            | 0x890b // SIOCADDRT
            | 0x890c // SIOCDELRT
    )
}

fn sockaddr_in(ip: Ipv4Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&2u16.to_le_bytes());
    b[4..8].copy_from_slice(&ip.octets());
    b
}

fn name_of(req: &[u8; IFREQ_LEN]) -> &[u8] {
    let n = &req[..IFNAMSIZ];
    let end = n.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    &n[..end]
}

fn int_at(req: &[u8; IFREQ_LEN], o: usize) -> i32 {
    i32::from_le_bytes([req[o], req[o + 1], req[o + 2], req[o + 3]])
}

/// One ifreq ioctl (not SIOCGIFCONF): the ifreq to copy back (None for a
/// set), or the errno.
pub fn ifreq_ioctl(
    ifs: &[Iface],
    req: u32,
    ifr: &[u8; IFREQ_LEN],
    privileged: bool,
) -> KResult<Option<[u8; IFREQ_LEN]>> {
    let mut out = *ifr;
    if is_set(req) && !privileged {
        return Err(Errno::EPERM);
    }
    if req == SIOCGIFNAME {
        let idx = int_at(ifr, 16);
        let i = ifs.iter().find(|i| i.index == idx).ok_or(Errno::ENODEV)?;
        out[..IFNAMSIZ].fill(0);
        out[..i.name.len()].copy_from_slice(i.name.as_bytes());
        return Ok(Some(out));
    }
    let name = name_of(ifr);
    let i = ifs
        .iter()
        .find(|i| i.name.as_bytes() == name)
        .ok_or(Errno::ENODEV)?;
    let put_addr = |out: &mut [u8; IFREQ_LEN], ip| out[16..32].copy_from_slice(&sockaddr_in(ip));
    let put_int = |out: &mut [u8; IFREQ_LEN], v: i32| out[16..20].copy_from_slice(&v.to_le_bytes());
    match req {
        SIOCGIFFLAGS => {
            out[16..18].copy_from_slice(&i.flags.to_le_bytes());
        }
        SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR if i.addr.is_none() => {
            return Err(Errno::EADDRNOTAVAIL)
        }
        SIOCGIFADDR | SIOCGIFDSTADDR => put_addr(&mut out, i.addr.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        SIOCGIFNETMASK => put_addr(&mut out, i.mask),
        SIOCGIFBRDADDR => put_addr(&mut out, i.broadcast),
        SIOCGIFMETRIC => put_int(&mut out, 0),
        SIOCGIFMTU => put_int(&mut out, i.mtu),
        SIOCGIFINDEX => put_int(&mut out, i.index),
        SIOCGIFTXQLEN => put_int(&mut out, 1000),
        SIOCGIFMAP => out[16..IFREQ_LEN].fill(0),
        SIOCGIFHWADDR => {
            out[16..32].fill(0);
            out[16..18].copy_from_slice(&i.hw.0.to_le_bytes());
            out[18..24].copy_from_slice(&i.hw.1);
        }
        SIOCSIFFLAGS | SIOCSIFADDR | SIOCSIFNETMASK | SIOCSIFBRDADDR | SIOCSIFMTU => {
            let same = match req {
                SIOCSIFFLAGS => u16::from_le_bytes([ifr[16], ifr[17]]) == i.flags,
                SIOCSIFADDR => {
                    Some(ifr[16..32].to_vec()) == i.addr.map(|a| sockaddr_in(a).to_vec())
                }
                SIOCSIFNETMASK => ifr[16..32] == sockaddr_in(i.mask),
                SIOCSIFBRDADDR => ifr[16..32] == sockaddr_in(i.broadcast),
                _ => int_at(ifr, 16) == i.mtu,
            };
            return if same {
                Ok(None)
            } else {
                Err(Errno::EOPNOTSUPP)
            };
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(Some(out))
}

/// Is `req` an ifreq set (privileged)?
fn is_set(req: u32) -> bool {
    matches!(
        req,
        SIOCSIFFLAGS | SIOCSIFADDR | SIOCSIFNETMASK | SIOCSIFBRDADDR | SIOCSIFMTU
    )
}

/// The ethN (its position in `eths`) a set that `ifreq_set` applies
/// to names; None if `req` is no such set or names no ethN.
pub fn eth_set_target(eths: &[EthIf], req: u32, ifr: &[u8; IFREQ_LEN]) -> Option<usize> {
    is_set(req)
        .then(|| super::ifcfg::by_name(eths, name_of(ifr)))
        .flatten()
}

/// The IPv4 address of a set's `struct sockaddr_in`: EINVAL if its
/// family is not AF_INET.
fn addr_arg(ifr: &[u8; IFREQ_LEN]) -> KResult<Ipv4Addr> {
    if u16::from_le_bytes([ifr[16], ifr[17]]) != 2 {
        return Err(Errno::EINVAL);
    }
    Ok(Ipv4Addr::new(ifr[20], ifr[21], ifr[22], ifr[23]))
}

/// Applies a set (`eth_set_target`) to an ethN, privilege already
/// checked. SIOCSIFMTU's `ifr_mtu` is a C int (a negative one is EINVAL).
pub fn ifreq_set(eth: &mut EthIf, req: u32, ifr: &[u8; IFREQ_LEN]) -> KResult<()> {
    let e = &mut eth.cfg;
    match req {
        SIOCSIFFLAGS => {
            e.set_up(u16::from_le_bytes([ifr[16], ifr[17]]) & IFF_UP != 0);
            Ok(())
        }
        SIOCSIFMTU => eth.set_mtu(i64::from(int_at(ifr, 16))),
        SIOCSIFADDR => e.set_addr(addr_arg(ifr)?),
        SIOCSIFNETMASK => e.set_netmask(addr_arg(ifr)?),
        _ => e.set_broadcast(addr_arg(ifr)?),
    }
}

/// SIOCGIFCONF: the ifreqs (name and IPv4 address) of the interfaces
/// that fit `room` bytes; with `room` None (a null buffer), only the
/// length all of them need.
pub fn ifconf(ifs: &[Iface], room: Option<usize>) -> (usize, Vec<u8>) {
    let with_addr: Vec<(&Iface, Ipv4Addr)> =
        ifs.iter().filter_map(|i| Some((i, i.addr?))).collect();
    let need = with_addr.len() * IFREQ_LEN;
    let Some(room) = room else {
        return (need, Vec::new());
    };
    let mut out = Vec::new();
    for (i, addr) in with_addr.into_iter().take(room / IFREQ_LEN) {
        let mut r = [0u8; IFREQ_LEN];
        r[..i.name.len()].copy_from_slice(i.name.as_bytes());
        r[16..32].copy_from_slice(&sockaddr_in(addr));
        out.extend_from_slice(&r);
    }
    (out.len(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::inet::ifcfg::IfCfg;

    fn eth(n: u8, cfg: IfCfg) -> EthIf {
        EthIf {
            n,
            mac: crate::net::packet::eth_mac(n),
            cfg,
            stats: Default::default(),
            max_mtu: 65535,
        }
    }

    fn configured() -> Vec<EthIf> {
        vec![eth(
            0,
            IfCfg::configured(Ipv4Addr::new(10, 0, 2, 15), 24, Ipv4Addr::new(10, 0, 2, 2)),
        )]
    }

    fn named(n: &str) -> [u8; IFREQ_LEN] {
        let mut r = [0u8; IFREQ_LEN];
        r[..n.len()].copy_from_slice(n.as_bytes());
        r
    }

    #[test]
    fn eth0_answers_as_linux_shows_a_user_mode_nic() {
        let ifs = interfaces(&configured());
        let g = |req, n| ifreq_ioctl(&ifs, req, &named(n), false);
        let r = g(SIOCGIFFLAGS, "eth0").unwrap().unwrap();
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 0x1043);
        let r = g(SIOCGIFFLAGS, "lo").unwrap().unwrap();
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 0x49);
        let r = g(SIOCGIFADDR, "eth0").unwrap().unwrap();
        assert_eq!(&r[16..24], &[2, 0, 0, 0, 10, 0, 2, 15]);
        let r = g(SIOCGIFNETMASK, "eth0").unwrap().unwrap();
        assert_eq!(&r[20..24], &[255, 255, 255, 0]);
        let r = g(SIOCGIFBRDADDR, "eth0").unwrap().unwrap();
        assert_eq!(&r[20..24], &[10, 0, 2, 255]);
        let r = g(SIOCGIFHWADDR, "eth0").unwrap().unwrap();
        assert_eq!(&r[16..24], &[1, 0, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        let r = g(SIOCGIFINDEX, "eth0").unwrap().unwrap();
        assert_eq!(int_at(&r, 16), 2);
        let r = g(SIOCGIFMTU, "lo").unwrap().unwrap();
        assert_eq!(int_at(&r, 16), 65536);
        assert_eq!(g(SIOCGIFFLAGS, "eth1"), Err(Errno::ENODEV));
        let mut by_index = [0u8; IFREQ_LEN];
        by_index[16] = 2;
        let r = ifreq_ioctl(&ifs, SIOCGIFNAME, &by_index, false)
            .unwrap()
            .unwrap();
        assert_eq!(&r[..5], b"eth0\0");
        by_index[16] = 9;
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCGIFNAME, &by_index, false),
            Err(Errno::ENODEV)
        );
        // No eth0 without the NAT.
        assert_eq!(
            ifreq_ioctl(&interfaces(&[]), SIOCGIFFLAGS, &named("eth0"), false),
            Err(Errno::ENODEV)
        );
    }

    #[test]
    fn sets_need_privilege_and_lo_changes_nothing() {
        let ifs = interfaces(&configured());
        let mut r = named("lo");
        r[16..18].copy_from_slice(&0x49u16.to_le_bytes());
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFFLAGS, &r, false),
            Err(Errno::EPERM)
        );
        assert_eq!(ifreq_ioctl(&ifs, SIOCSIFFLAGS, &r, true), Ok(None));
        r[16] = 0x48; // down
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFFLAGS, &r, true),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(eth_set_target(&configured(), SIOCSIFFLAGS, &r), None);
    }

    /// `ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up` on an eth0
    /// with no address: the sets, then what the gets answer.
    #[test]
    fn ifconfig_configures_eth0() {
        let mut e = eth(0, IfCfg::unconfigured());
        let ifs = interfaces(&[e.clone()]);
        let g = |ifs: &[Iface], req| ifreq_ioctl(ifs, req, &named("eth0"), false);
        assert_eq!(g(&ifs, SIOCGIFADDR), Err(Errno::EADDRNOTAVAIL));
        let r = g(&ifs, SIOCGIFFLAGS).unwrap().unwrap();
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 0x1002, "down");
        assert_eq!(ifconf(&ifs, None).0, 40, "only lo has an address");
        let set = |e: &mut EthIf, req, v: [u8; 4]| {
            let mut r = named("eth0");
            r[16] = 2;
            r[20..24].copy_from_slice(&v);
            assert_eq!(eth_set_target(std::slice::from_ref(e), req, &r), Some(0));
            ifreq_set(e, req, &r)
        };
        set(&mut e, SIOCSIFADDR, [10, 0, 2, 15]).unwrap();
        set(&mut e, SIOCSIFNETMASK, [255, 255, 255, 0]).unwrap();
        assert_eq!(
            set(&mut e, SIOCSIFNETMASK, [255, 0, 255, 0]),
            Err(Errno::EINVAL)
        );
        let mut up = named("eth0");
        up[16..18].copy_from_slice(&0x1043u16.to_le_bytes());
        ifreq_set(&mut e, SIOCSIFFLAGS, &up).unwrap();
        let ifs = interfaces(&[e.clone()]);
        let r = g(&ifs, SIOCGIFFLAGS).unwrap().unwrap();
        assert_eq!(u16::from_le_bytes([r[16], r[17]]), 0x1043);
        let r = g(&ifs, SIOCGIFBRDADDR).unwrap().unwrap();
        assert_eq!(&r[20..24], &[10, 0, 2, 255]);
        let mut bad = named("eth0");
        bad[16] = 10; // AF_INET6
        assert_eq!(ifreq_set(&mut e, SIOCSIFADDR, &bad), Err(Errno::EINVAL));
    }

    fn mtu_req(name: &str, mtu: i32) -> [u8; IFREQ_LEN] {
        let mut r = named(name);
        r[16..20].copy_from_slice(&mtu.to_le_bytes());
        r
    }

    /// SIOCSIFMTU as Linux's dev_ifsioc and dev_set_mtu_ext answer it:
    /// EPERM first (before the name is looked up), ENODEV for no such
    /// interface, the same MTU a success whatever the range, EINVAL
    /// below 68 (negative included) or above the link's maximum; the
    /// new MTU is what SIOCGIFMTU answers after.
    #[test]
    fn sifmtu_follows_linux() {
        let mut e = eth(0, IfCfg::unconfigured());
        e.max_mtu = 9000;
        let ifs = interfaces(&[e.clone()]);
        let set = |e: &mut EthIf, mtu: i32| {
            let r = mtu_req("eth0", mtu);
            assert_eq!(
                eth_set_target(std::slice::from_ref(e), SIOCSIFMTU, &r),
                Some(0)
            );
            ifreq_set(e, SIOCSIFMTU, &r)
        };
        let r = ifreq_ioctl(&ifs, SIOCGIFMTU, &named("eth0"), false)
            .unwrap()
            .unwrap();
        assert_eq!(int_at(&r, 16), 1500);
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFMTU, &mtu_req("eth0", 1400), false),
            Err(Errno::EPERM)
        );
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFMTU, &mtu_req("eth7", 1400), false),
            Err(Errno::EPERM),
            "privilege is checked before the name"
        );
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFMTU, &mtu_req("eth7", 1400), true),
            Err(Errno::ENODEV)
        );
        assert_eq!(set(&mut e, 67), Err(Errno::EINVAL));
        assert_eq!(set(&mut e, -1), Err(Errno::EINVAL));
        assert_eq!(set(&mut e, i32::MIN), Err(Errno::EINVAL));
        assert_eq!(set(&mut e, 9001), Err(Errno::EINVAL));
        assert_eq!(e.cfg.mtu, 1500, "a refused MTU changes nothing");
        assert_eq!(set(&mut e, 68), Ok(()));
        assert_eq!(set(&mut e, 9000), Ok(()));
        let ifs = interfaces(&[e.clone()]);
        let r = ifreq_ioctl(&ifs, SIOCGIFMTU, &named("eth0"), false)
            .unwrap()
            .unwrap();
        assert_eq!(int_at(&r, 16), 9000);
        // The MTU it has: a success even past a lowered maximum.
        e.max_mtu = 1500;
        assert_eq!(set(&mut e, 9000), Ok(()));
        // lo's MTU stays: the same value is fine, another EOPNOTSUPP.
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFMTU, &mtu_req("lo", 65536), true),
            Ok(None)
        );
        assert_eq!(
            ifreq_ioctl(&ifs, SIOCSIFMTU, &mtu_req("lo", 1500), true),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(eth_set_target(&[e], SIOCSIFMTU, &mtu_req("lo", 1500)), None);
    }

    #[test]
    fn ifconf_lists_what_fits() {
        let ifs = interfaces(&configured());
        assert_eq!(ifconf(&ifs, None).0, 80);
        let (n, b) = ifconf(&ifs, Some(79));
        assert_eq!((n, &b[..3]), (40, &b"lo\0"[..]));
        let (n, b) = ifconf(&ifs, Some(200));
        assert_eq!(n, 80);
        assert_eq!(&b[40..45], b"eth0\0");
        assert_eq!(&b[60..64], &[10, 0, 2, 15]);
    }

    /// A second interface: its own index, MAC and address, found by name
    /// and by index, listed by SIOCGIFCONF after eth0.
    #[test]
    fn eth1_is_an_interface_of_its_own() {
        let mut ifs = configured();
        ifs.push(eth(1, IfCfg::addressed(Ipv4Addr::new(10, 0, 3, 15), 24)));
        let ifaces = interfaces(&ifs);
        let g = |req, n| ifreq_ioctl(&ifaces, req, &named(n), false);
        let r = g(SIOCGIFINDEX, "eth1").unwrap().unwrap();
        assert_eq!(int_at(&r, 16), 3);
        let r = g(SIOCGIFHWADDR, "eth1").unwrap().unwrap();
        assert_eq!(&r[18..24], &[0x52, 0x54, 0, 0x12, 0x34, 0x57]);
        let r = g(SIOCGIFADDR, "eth1").unwrap().unwrap();
        assert_eq!(&r[20..24], &[10, 0, 3, 15]);
        let mut by_index = [0u8; IFREQ_LEN];
        by_index[16] = 3;
        let r = ifreq_ioctl(&ifaces, SIOCGIFNAME, &by_index, false)
            .unwrap()
            .unwrap();
        assert_eq!(&r[..5], b"eth1\0");
        let (n, b) = ifconf(&ifaces, Some(400));
        assert_eq!(n, 120);
        assert_eq!(&b[80..85], b"eth1\0");
        let mut set = named("eth1");
        set[16] = 2;
        assert_eq!(eth_set_target(&ifs, SIOCSIFADDR, &set), Some(1));
        assert_eq!(eth_set_target(&ifs, SIOCSIFADDR, &named("eth2")), None);
    }
}
