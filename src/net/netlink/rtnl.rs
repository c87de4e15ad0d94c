//! rtnetlink: the NETLINK_ROUTE requests, answered from a snapshot of the
//! interfaces (`View`: lo, and each ethN's configuration and counters)
//! in the messages Linux sends, attribute by attribute in its order:
//!
//! - RTM_GETLINK (dump, or one link by index or IFLA_IFNAME),
//!   RTM_GETADDR and RTM_GETROUTE dumps (the main and local tables;
//!   RTM_GETROUTE of one address is `ip route get`), RTM_GETRULE (the
//!   three default rules), RTM_GETNEIGH (empty: the devices carry IP
//!   packets, there is no neighbour table);
//! - RTM_NEWLINK/RTM_SETLINK: an ethN's IFLA_MTU (`EthIf::set_mtu`'s
//!   rules), IFF_UP through ifi_flags/ifi_change (the name and address
//!   only set to what they are); RTM_NEWADDR and
//!   RTM_DELADDR of an ethN's one IPv4 address; RTM_NEWROUTE and
//!   RTM_DELROUTE in the main table through an ethN (RTA_OIF, else the
//!   one the gateway is on), with `ifcfg.rs`'s rules and
//!   NLM_F_CREATE/EXCL/REPLACE as Linux's fib_table_insert.
//!
//! Changes need privilege (EPERM, checked first as Linux does); lo cannot
//! be changed (a change that changes nothing succeeds, else
//! EOPNOTSUPP), nor can anything IPv6 (lo's ::1 is fixed).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::net::inet::device::IfStats;
use crate::net::inet::ifcfg::{self, EthIf, Route, IFINDEX_LO};
use crate::net::inet::ifreq::{self, Iface};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_GETRULE: u16 = 34;
/// RTM_MAX in Linux 6.x: types past it are EOPNOTSUPP.
const RTM_MAX: u16 = 127;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_PROMISCUITY: u16 = 30;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_CARRIER: u16 = 33;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTA_PREF: u16 = 20;

const RT_TABLE_UNSPEC: u32 = 0;
const RT_TABLE_DEFAULT: u32 = 253;
const RT_TABLE_MAIN: u32 = 254;
const RT_TABLE_LOCAL: u32 = 255;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const RTN_BROADCAST: u8 = 3;
const RTM_F_CLONED: u32 = 0x200;

const FRA_PRIORITY: u16 = 6;
const FRA_TABLE: u16 = 15;
const FR_ACT_TO_TBL: u8 = 1;

const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const IFF_LOWER_UP: u32 = 0x10000;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_DOWN: u8 = 2;
const IF_OPER_UP: u8 = 6;
const TXQLEN: u32 = 1000;

/// sizeof(struct ifinfomsg), (struct ifaddrmsg), (struct rtmsg).
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
const RTMSG: usize = 12;

/// What the requests see and change.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The ethN: configuration and counters.
    pub eths: Vec<EthIf>,
    pub lo_stats: IfStats,
}

impl View {
    /// The ethN with `ifindex`.
    fn eth(&self, ifindex: i32) -> Option<&EthIf> {
        self.eths.get(ifcfg::by_index(&self.eths, ifindex)?)
    }

    fn eth_mut(&mut self, ifindex: i32) -> Option<&mut EthIf> {
        let i = ifcfg::by_index(&self.eths, ifindex)?;
        self.eths.get_mut(i)
    }
}

/// A request's outcome: its reply messages, or a dump to hand out.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Done: an ack follows if asked for.
    Done,
    /// One reply message (a GET of one object).
    Reply(Vec<u8>),
    /// The messages of a dump (NLMSG_DONE is added by the caller).
    Dump(Vec<Vec<u8>>),
}

/// A request to answer: the whole message and its header.
pub struct Request<'a> {
    pub hdr: NlHdr,
    pub msg: &'a [u8],
    /// The reply's port id.
    pub portid: u32,
    pub privileged: bool,
}

impl Request<'_> {
    /// The family header (after nlmsghdr); short requests give what
    /// they have (a legacy dump sends only struct rtgenmsg's family).
    fn body(&self) -> &[u8] {
        self.msg.get(NLMSG_HDRLEN..).unwrap_or(&[])
    }

    fn family(&self) -> u8 {
        self.body().first().copied().unwrap_or(AF_UNSPEC)
    }

    /// The fixed family header, EINVAL if the request is shorter.
    fn fixed(&self, n: usize) -> KResult<&[u8]> {
        self.body().get(..n).ok_or(Errno::EINVAL)
    }

    fn attr(&self, fixed: usize, ty: u16) -> Option<&[u8]> {
        attrs(self.msg, fixed)
            .into_iter()
            .find(|a| a.0 == ty)
            .map(|a| a.1)
    }

    fn is_dump(&self) -> bool {
        self.hdr.flags & NLM_F_DUMP == NLM_F_DUMP
    }

    fn new_msg(&self, ty: u16, body: &[u8]) -> MsgBuilder {
        let flags = if self.is_dump() { NLM_F_MULTI } else { 0 };
        MsgBuilder::new(ty, flags, self.hdr.seq, self.portid, body)
    }
}

fn u32_of(d: &[u8]) -> KResult<u32> {
    let b: [u8; 4] = d
        .get(..4)
        .ok_or(Errno::EINVAL)?
        .try_into()
        .map_err(|_| Errno::EINVAL)?;
    Ok(u32::from_le_bytes(b))
}

fn ip_of(d: &[u8]) -> KResult<Ipv4Addr> {
    let b: [u8; 4] = d
        .get(..4)
        .ok_or(Errno::EINVAL)?
        .try_into()
        .map_err(|_| Errno::EINVAL)?;
    Ok(Ipv4Addr::from(b))
}

fn name_of(d: &[u8]) -> &[u8] {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    &d[..end]
}

/// Answers one request (type at or past NLMSG_MIN_TYPE).
pub fn handle(v: &mut View, r: &Request) -> KResult<Answer> {
    let ty = r.hdr.ty;
    if ty > RTM_MAX {
        return Err(Errno::EOPNOTSUPP);
    }
    // Linux: every kind but GET needs CAP_NET_ADMIN, checked first.
    if ty & 3 != 2 && !r.privileged {
        return Err(Errno::EPERM);
    }
    match ty {
        RTM_GETLINK if r.is_dump() => Ok(Answer::Dump(
            links(v).iter().map(|(i, s)| link_msg(r, i, s, v)).collect(),
        )),
        RTM_GETLINK => get_link(v, r),
        RTM_GETADDR if r.is_dump() => Ok(Answer::Dump(addr_dump(v, r))),
        RTM_GETROUTE if r.is_dump() => Ok(Answer::Dump(route_dump(v, r))),
        RTM_GETROUTE => route_get(v, r),
        RTM_GETRULE if r.is_dump() => Ok(Answer::Dump(rule_dump(r))),
        RTM_GETNEIGH if r.is_dump() => Ok(Answer::Dump(Vec::new())),
        RTM_NEWLINK | RTM_SETLINK => set_link(v, r),
        RTM_DELLINK => {
            find_link(v, r)?;
            Err(Errno::EOPNOTSUPP)
        }
        RTM_NEWADDR => new_addr(v, r),
        RTM_DELADDR => del_addr(v, r),
        RTM_NEWROUTE => new_route(v, r),
        RTM_DELROUTE => del_route(v, r),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

fn links(v: &View) -> Vec<(Iface, IfStats)> {
    ifreq::interfaces(&v.eths)
        .into_iter()
        .map(|i| {
            let s = match v.eth(i.index) {
                Some(e) => e.stats,
                None => v.lo_stats,
            };
            (i, s)
        })
        .collect()
}

/// The link's flags as RTM_NEWLINK carries them (IFF_LOWER_UP too).
fn link_flags(i: &Iface) -> u32 {
    let f = u32::from(i.flags);
    if f & IFF_RUNNING != 0 {
        f | IFF_LOWER_UP
    } else {
        f
    }
}

fn stats32(s: &IfStats) -> Vec<u8> {
    // struct rtnl_link_stats: 24 __u32, the first eight counted.
    let mut f = [0u32; 24];
    f[0] = s.rx_packets as u32;
    f[1] = s.tx_packets as u32;
    f[2] = s.rx_bytes as u32;
    f[3] = s.tx_bytes as u32;
    f[6] = s.rx_dropped as u32;
    f[7] = s.tx_dropped as u32;
    f.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn stats64(s: &IfStats) -> Vec<u8> {
    // struct rtnl_link_stats64: 25 __u64 in Linux 6.x.
    let mut f = [0u64; 25];
    f[0] = s.rx_packets;
    f[1] = s.tx_packets;
    f[2] = s.rx_bytes;
    f[3] = s.tx_bytes;
    f[6] = s.rx_dropped;
    f[7] = s.tx_dropped;
    f.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn link_msg(r: &Request, i: &Iface, s: &IfStats, _v: &View) -> Vec<u8> {
    let flags = link_flags(i);
    let mut body = [0u8; IFINFOMSG];
    body[2..4].copy_from_slice(&i.hw.0.to_le_bytes());
    body[4..8].copy_from_slice(&i.index.to_le_bytes());
    body[8..12].copy_from_slice(&flags.to_le_bytes());
    let lo = i.index == IFINDEX_LO;
    let oper = if lo {
        IF_OPER_UNKNOWN
    } else if flags & IFF_UP != 0 {
        IF_OPER_UP
    } else {
        IF_OPER_DOWN
    };
    let mut m = r.new_msg(RTM_NEWLINK, &body);
    m.attr_str(IFLA_IFNAME, i.name)
        .attr_u32(IFLA_TXQLEN, if lo { 1000 } else { TXQLEN })
        .attr_u8(IFLA_OPERSTATE, oper)
        .attr_u8(IFLA_LINKMODE, 0)
        .attr_u32(IFLA_MTU, i.mtu as u32)
        .attr_u32(IFLA_GROUP, 0)
        .attr_u32(IFLA_PROMISCUITY, 0)
        .attr_u32(IFLA_NUM_TX_QUEUES, 1)
        .attr_u32(IFLA_NUM_RX_QUEUES, 1)
        .attr_u8(IFLA_CARRIER, 1)
        .attr_str(IFLA_QDISC, if lo { "noqueue" } else { "pfifo_fast" })
        .attr(IFLA_ADDRESS, &i.hw.1)
        .attr(IFLA_BROADCAST, if lo { &[0u8; 6] } else { &[0xffu8; 6] })
        .attr(IFLA_STATS64, &stats64(s))
        .attr(IFLA_STATS, &stats32(s));
    m.finish()
}

/// The link a request names: ifi_index, else IFLA_IFNAME; ENODEV.
fn find_link(v: &View, r: &Request) -> KResult<(Iface, IfStats)> {
    let body = r.fixed(IFINFOMSG)?;
    let index = i32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let name = r.attr(IFINFOMSG, IFLA_IFNAME).map(name_of);
    links(v)
        .into_iter()
        .find(|(i, _)| {
            if index != 0 {
                i.index == index
            } else {
                name == Some(i.name.as_bytes())
            }
        })
        .ok_or(if index == 0 && name.is_none() {
            Errno::EINVAL
        } else {
            Errno::ENODEV
        })
}

fn get_link(v: &View, r: &Request) -> KResult<Answer> {
    let (i, s) = find_link(v, r)?;
    Ok(Answer::Reply(link_msg(r, &i, &s, v)))
}

/// RTM_NEWLINK/RTM_SETLINK on an existing link: an ethN's MTU, then
/// IFF_UP (do_setlink's order); the name, address and queue length only
/// as they are.
fn set_link(v: &mut View, r: &Request) -> KResult<Answer> {
    let (i, _) = match find_link(v, r) {
        // Creating a link (a kind in IFLA_LINKINFO) is not built.
        Err(Errno::ENODEV) if r.hdr.ty == RTM_NEWLINK && r.hdr.flags & NLM_F_CREATE != 0 => {
            return Err(Errno::EOPNOTSUPP)
        }
        x => x?,
    };
    let body = r.fixed(IFINFOMSG)?;
    let index = i32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let mut mtu = None;
    for (ty, d) in attrs(r.msg, IFINFOMSG) {
        let same = match ty {
            IFLA_IFNAME => index == 0 || name_of(d) == i.name.as_bytes(),
            IFLA_MTU => {
                let m = u32_of(d)?;
                mtu = Some(m);
                m == i.mtu as u32 || v.eth(i.index).is_some()
            }
            IFLA_ADDRESS => d == i.hw.1,
            IFLA_TXQLEN => u32_of(d)? == TXQLEN,
            // Linux ignores these on devices without a link watch.
            IFLA_OPERSTATE | IFLA_LINKMODE | IFLA_GROUP => true,
            _ => false,
        };
        if !same {
            return Err(Errno::EOPNOTSUPP);
        }
    }
    if let (Some(m), Some(e)) = (mtu, v.eth_mut(i.index)) {
        // Linux passes the u32 on as an int: past i32::MAX, negative.
        e.set_mtu(i64::from(m as i32))?;
    }
    let flags = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
    let change = u32::from_le_bytes([body[12], body[13], body[14], body[15]]);
    if flags == 0 && change == 0 {
        return Ok(Answer::Done);
    }
    // rtnl_dev_combine_flags: ifi_change 0 means every bit.
    let cur = link_flags(&i);
    let want = if change != 0 {
        (flags & change) | (cur & !change)
    } else {
        flags
    };
    let up = want & IFF_UP != 0;
    if up == (cur & IFF_UP != 0) {
        return Ok(Answer::Done);
    }
    match v.eth_mut(i.index) {
        Some(e) => {
            e.cfg.set_up(up);
            Ok(Answer::Done)
        }
        None => Err(Errno::EOPNOTSUPP),
    }
}

fn addr_msg(
    r: &Request,
    family: u8,
    prefix: u8,
    scope: u8,
    index: i32,
    attrs_of: impl FnOnce(&mut MsgBuilder),
) -> Vec<u8> {
    let mut body = [0u8; IFADDRMSG];
    body[0] = family;
    body[1] = prefix;
    body[2] = IFA_F_PERMANENT as u8;
    body[3] = scope;
    body[4..8].copy_from_slice(&index.to_le_bytes());
    let mut m = r.new_msg(RTM_NEWADDR, &body);
    attrs_of(&mut m);
    m.finish()
}

/// struct ifa_cacheinfo of a permanent address.
fn cacheinfo() -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0..8].fill(0xff);
    c
}

fn v4_addr_msg(r: &Request, ip: Ipv4Addr, prefix: u8, brd: Ipv4Addr, i: &Iface) -> Vec<u8> {
    let scope = if ip.is_loopback() {
        RT_SCOPE_HOST
    } else {
        RT_SCOPE_UNIVERSE
    };
    addr_msg(r, AF_INET, prefix, scope, i.index, |m| {
        m.attr(IFA_ADDRESS, &ip.octets())
            .attr(IFA_LOCAL, &ip.octets());
        if !brd.is_unspecified() {
            m.attr(IFA_BROADCAST, &brd.octets());
        }
        m.attr_str(IFA_LABEL, i.name)
            .attr_u32(IFA_FLAGS, IFA_F_PERMANENT)
            .attr(IFA_CACHEINFO, &cacheinfo());
    })
}

fn addr_dump(v: &View, r: &Request) -> Vec<Vec<u8>> {
    let fam = r.family();
    let mut out = Vec::new();
    let ifs = links(v);
    if fam == AF_UNSPEC || fam == AF_INET {
        for (i, _) in &ifs {
            if i.index == IFINDEX_LO {
                out.push(v4_addr_msg(
                    r,
                    Ipv4Addr::LOCALHOST,
                    8,
                    Ipv4Addr::UNSPECIFIED,
                    i,
                ));
            } else if let Some(e) = v.eth(i.index) {
                if let Some((ip, prefix)) = e.cfg.addr {
                    out.push(v4_addr_msg(r, ip, prefix, e.cfg.broadcast, i));
                }
            }
        }
    }
    if fam == AF_UNSPEC || fam == AF_INET6 {
        out.push(addr_msg(r, AF_INET6, 128, RT_SCOPE_HOST, IFINDEX_LO, |m| {
            m.attr(IFA_ADDRESS, &Ipv6Addr::LOCALHOST.octets())
                .attr(IFA_CACHEINFO, &cacheinfo())
                .attr_u32(IFA_FLAGS, IFA_F_PERMANENT);
        }));
    }
    out
}

/// The address a NEWADDR/DELADDR names: (family, prefix, index, local).
/// (family, prefix length, index, IFA_LOCAL, IFA_BROADCAST).
type AddrArgs = (u8, u8, i32, Option<Ipv4Addr>, Option<Ipv4Addr>);

fn addr_args(r: &Request) -> KResult<AddrArgs> {
    let b = r.fixed(IFADDRMSG)?;
    let index = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let local = r.attr(IFADDRMSG, IFA_LOCAL).map(ip_of).transpose()?;
    let brd = r.attr(IFADDRMSG, IFA_BROADCAST).map(ip_of).transpose()?;
    Ok((b[0], b[1], index, local, brd))
}

fn new_addr(v: &mut View, r: &Request) -> KResult<Answer> {
    let (fam, prefix, index, local, brd) = addr_args(r)?;
    if index != IFINDEX_LO && v.eth(index).is_none() {
        return Err(Errno::ENODEV);
    }
    let excl = r.hdr.flags & NLM_F_EXCL != 0;
    if fam != AF_INET {
        let lo6 = fam == AF_INET6
            && index == IFINDEX_LO
            && prefix == 128
            && r.attr(IFADDRMSG, IFA_LOCAL)
                .or(r.attr(IFADDRMSG, IFA_ADDRESS))
                == Some(&Ipv6Addr::LOCALHOST.octets()[..]);
        return match (lo6, excl) {
            (true, true) => Err(Errno::EEXIST),
            (true, false) => Ok(Answer::Done),
            _ => Err(Errno::EOPNOTSUPP),
        };
    }
    // Linux: IFA_LOCAL is required (IFA_ADDRESS alone is EINVAL).
    let ip = local.ok_or(Errno::EINVAL)?;
    if prefix > 32 {
        return Err(Errno::EINVAL);
    }
    if index == IFINDEX_LO {
        return if (ip, prefix) == (Ipv4Addr::LOCALHOST, 8) {
            if excl {
                Err(Errno::EEXIST)
            } else {
                Ok(Answer::Done)
            }
        } else {
            Err(Errno::EOPNOTSUPP)
        };
    }
    let e = &mut v.eth_mut(index).ok_or(Errno::ENODEV)?.cfg;
    e.add_addr(ip, prefix, brd.unwrap_or(Ipv4Addr::UNSPECIFIED), excl)?;
    Ok(Answer::Done)
}

fn del_addr(v: &mut View, r: &Request) -> KResult<Answer> {
    let (fam, prefix, index, local, _) = addr_args(r)?;
    if index != IFINDEX_LO && v.eth(index).is_none() {
        return Err(Errno::ENODEV);
    }
    if fam != AF_INET {
        return Err(if fam == AF_INET6 && index == IFINDEX_LO {
            Errno::EOPNOTSUPP
        } else {
            Errno::EADDRNOTAVAIL
        });
    }
    let peer = r.attr(IFADDRMSG, IFA_ADDRESS).map(ip_of).transpose()?;
    // inet_rtm_deladdr: IFA_LOCAL must be the address; IFA_ADDRESS must
    // be on its network with the same prefix length.
    let matches = |ip: Ipv4Addr, p: u8| {
        local.is_none_or(|l| l == ip)
            && peer.is_none_or(|a| {
                let m = crate::net::inet::ifcfg::mask_of(p);
                prefix == p && u32::from(a) & m == u32::from(ip) & m
            })
    };
    if index == IFINDEX_LO {
        return Err(if matches(Ipv4Addr::LOCALHOST, 8) {
            Errno::EOPNOTSUPP
        } else {
            Errno::EADDRNOTAVAIL
        });
    }
    let e = &mut v.eth_mut(index).ok_or(Errno::ENODEV)?.cfg;
    match e.addr {
        Some((ip, p)) if matches(ip, p) => {
            e.remove_addr();
            Ok(Answer::Done)
        }
        _ => Err(Errno::EADDRNOTAVAIL),
    }
}

/// One IPv4 route as RTM_NEWROUTE carries it.
struct V4Route {
    table: u32,
    ty: u8,
    proto: u8,
    scope: u8,
    dst: Ipv4Addr,
    prefix: u8,
    gw: Option<Ipv4Addr>,
    metric: u32,
    src: Option<Ipv4Addr>,
    oif: i32,
    flags: u32,
}

/// One IPv4 route message.
fn route_msg(r: &Request, x: V4Route) -> Vec<u8> {
    let V4Route {
        table,
        ty,
        proto,
        scope,
        dst,
        prefix,
        gw,
        metric,
        src,
        oif,
        flags,
    } = x;
    let mut body = [0u8; RTMSG];
    body[0] = AF_INET;
    body[1] = prefix;
    body[4] = table as u8;
    body[5] = proto;
    body[6] = scope;
    body[7] = ty;
    body[8..12].copy_from_slice(&flags.to_le_bytes());
    let mut m = r.new_msg(RTM_NEWROUTE, &body);
    m.attr_u32(RTA_TABLE, table);
    if prefix > 0 {
        m.attr(RTA_DST, &dst.octets());
    }
    if metric != 0 {
        m.attr_u32(RTA_PRIORITY, metric);
    }
    if let Some(s) = src {
        m.attr(RTA_PREFSRC, &s.octets());
    }
    if let Some(g) = gw {
        m.attr(RTA_GATEWAY, &g.octets());
    }
    m.attr_u32(RTA_OIF, oif as u32);
    m.finish()
}

fn main_route_msg(r: &Request, e: &EthIf, rt: &Route) -> Vec<u8> {
    let (proto, scope, src) = if rt.connected {
        (RTPROT_KERNEL, RT_SCOPE_LINK, e.cfg.ip())
    } else if rt.gw.is_some() {
        (RTPROT_BOOT, RT_SCOPE_UNIVERSE, None)
    } else {
        (RTPROT_BOOT, RT_SCOPE_LINK, None)
    };
    route_msg(
        r,
        V4Route {
            table: RT_TABLE_MAIN,
            ty: RTN_UNICAST,
            proto,
            scope,
            dst: rt.dst,
            prefix: rt.prefix,
            gw: rt.gw,
            metric: rt.metric,
            src,
            oif: e.ifindex(),
            flags: 0,
        },
    )
}

fn v6_route_msg(r: &Request, table: u32, ty: u8, metric: u32) -> Vec<u8> {
    let mut body = [0u8; RTMSG];
    body[0] = AF_INET6;
    body[1] = 128;
    body[4] = table as u8;
    body[5] = RTPROT_KERNEL;
    body[6] = RT_SCOPE_UNIVERSE;
    body[7] = ty;
    let mut m = r.new_msg(RTM_NEWROUTE, &body);
    m.attr_u32(RTA_TABLE, table)
        .attr(RTA_DST, &Ipv6Addr::LOCALHOST.octets())
        .attr_u32(RTA_PRIORITY, metric)
        .attr_u32(RTA_OIF, IFINDEX_LO as u32)
        .attr_u8(RTA_PREF, 0);
    m.finish()
}

/// The main table (the ethN's routes, in the table's order: by
/// destination, longer prefix first, then metric), then the local table
/// (lo's, then each ethN's local and broadcast routes), then IPv6's ::1
/// routes.
fn route_dump(v: &View, r: &Request) -> Vec<Vec<u8>> {
    let fam = r.family();
    let mut out = Vec::new();
    if fam == AF_UNSPEC || fam == AF_INET {
        let lo = Ipv4Addr::LOCALHOST;
        let mut main: Vec<(&EthIf, &Route)> = v
            .eths
            .iter()
            .flat_map(|e| e.cfg.routes.iter().map(move |rt| (e, rt)))
            .collect();
        main.sort_by_key(|(_, rt)| (u32::from(rt.dst), std::cmp::Reverse(rt.prefix), rt.metric));
        for (e, rt) in main {
            out.push(main_route_msg(r, e, rt));
        }
        let local = |dst, prefix, ty, scope, oif| {
            route_msg(
                r,
                V4Route {
                    table: RT_TABLE_LOCAL,
                    ty,
                    proto: RTPROT_KERNEL,
                    scope,
                    dst,
                    prefix,
                    gw: None,
                    metric: 0,
                    src: Some(if oif == IFINDEX_LO { lo } else { dst }),
                    oif,
                    flags: 0,
                },
            )
        };
        out.push(local(
            Ipv4Addr::new(127, 0, 0, 0),
            8,
            RTN_LOCAL,
            RT_SCOPE_HOST,
            IFINDEX_LO,
        ));
        out.push(local(lo, 32, RTN_LOCAL, RT_SCOPE_HOST, IFINDEX_LO));
        out.push(local(
            Ipv4Addr::new(127, 255, 255, 255),
            32,
            RTN_BROADCAST,
            RT_SCOPE_LINK,
            IFINDEX_LO,
        ));
        for eth in v.eths.iter().filter(|e| e.cfg.up) {
            let e = &eth.cfg;
            if let Some((ip, _)) = e.addr {
                out.push(local(ip, 32, RTN_LOCAL, RT_SCOPE_HOST, eth.ifindex()));
                if !e.broadcast.is_unspecified() {
                    out.push(route_msg(
                        r,
                        V4Route {
                            table: RT_TABLE_LOCAL,
                            ty: RTN_BROADCAST,
                            proto: RTPROT_KERNEL,
                            scope: RT_SCOPE_LINK,
                            dst: e.broadcast,
                            prefix: 32,
                            gw: None,
                            metric: 0,
                            src: Some(ip),
                            oif: eth.ifindex(),
                            flags: 0,
                        },
                    ));
                }
            }
        }
    }
    if fam == AF_UNSPEC || fam == AF_INET6 {
        out.push(v6_route_msg(r, RT_TABLE_MAIN, RTN_UNICAST, 256));
        out.push(v6_route_msg(r, RT_TABLE_LOCAL, RTN_LOCAL, 0));
    }
    out
}

/// `ip route get ADDR`: the route RTA_DST takes.
fn route_get(v: &View, r: &Request) -> KResult<Answer> {
    let b = r.fixed(RTMSG)?;
    if b[0] != AF_INET {
        return Err(Errno::EOPNOTSUPP);
    }
    let dst = r
        .attr(RTMSG, RTA_DST)
        .map(ip_of)
        .transpose()?
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mine = v.eths.iter().any(|e| e.cfg.up && e.cfg.ip() == Some(dst));
    let m = if dst.is_loopback() || mine || dst.is_unspecified() {
        let src = if dst.is_loopback() || dst.is_unspecified() {
            Ipv4Addr::LOCALHOST
        } else {
            dst
        };
        route_msg(
            r,
            V4Route {
                table: RT_TABLE_LOCAL,
                ty: RTN_LOCAL,
                proto: RTPROT_KERNEL,
                scope: RT_SCOPE_HOST,
                dst,
                prefix: 32,
                gw: None,
                metric: 0,
                src: Some(src),
                oif: IFINDEX_LO,
                flags: RTM_F_CLONED,
            },
        )
    } else {
        let (i, rt) = ifcfg::lookup(&v.eths, dst).ok_or(Errno::ENETUNREACH)?;
        let e = &v.eths[i];
        route_msg(
            r,
            V4Route {
                table: RT_TABLE_MAIN,
                ty: RTN_UNICAST,
                proto: RTPROT_BOOT,
                scope: RT_SCOPE_UNIVERSE,
                dst,
                prefix: 32,
                gw: rt.gw,
                metric: 0,
                src: e.cfg.ip(),
                oif: e.ifindex(),
                flags: RTM_F_CLONED,
            },
        )
    };
    Ok(Answer::Reply(m))
}

fn rule_dump(r: &Request) -> Vec<Vec<u8>> {
    let fam = r.family();
    let mut out = Vec::new();
    let mut rule = |family: u8, table: u32, pref: u32| {
        let mut body = [0u8; 12];
        body[0] = family;
        body[4] = table as u8;
        body[7] = FR_ACT_TO_TBL;
        let mut m = r.new_msg(RTM_GETRULE - 2, &body); // RTM_NEWRULE
        m.attr_u32(FRA_TABLE, table);
        if pref != 0 {
            m.attr_u32(FRA_PRIORITY, pref);
        }
        out.push(m.finish());
    };
    if fam == AF_UNSPEC || fam == AF_INET {
        rule(AF_INET, RT_TABLE_LOCAL, 0);
        rule(AF_INET, RT_TABLE_MAIN, 32766);
        rule(AF_INET, RT_TABLE_DEFAULT, 32767);
    }
    if fam == AF_UNSPEC || fam == AF_INET6 {
        rule(AF_INET6, RT_TABLE_LOCAL, 0);
        rule(AF_INET6, RT_TABLE_MAIN, 32766);
    }
    out
}

/// The route a NEWROUTE/DELROUTE names, the interface it named (its
/// position in `eths`), and the metric if given.
fn route_args(v: &View, r: &Request) -> KResult<(Route, Option<usize>, Option<u32>)> {
    let b = r.fixed(RTMSG)?;
    if b[0] != AF_INET {
        return Err(Errno::EOPNOTSUPP);
    }
    let prefix = b[1];
    if prefix > 32 {
        return Err(Errno::EINVAL);
    }
    let table = match r.attr(RTMSG, RTA_TABLE) {
        Some(d) => u32_of(d)?,
        None => u32::from(b[4]),
    };
    if table != RT_TABLE_MAIN && table != RT_TABLE_UNSPEC {
        return Err(Errno::EOPNOTSUPP);
    }
    let dst = r
        .attr(RTMSG, RTA_DST)
        .map(ip_of)
        .transpose()?
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let gw = r
        .attr(RTMSG, RTA_GATEWAY)
        .map(ip_of)
        .transpose()?
        .filter(|g| !g.is_unspecified());
    let metric = r.attr(RTMSG, RTA_PRIORITY).map(u32_of).transpose()?;
    let oif = r.attr(RTMSG, RTA_OIF).map(u32_of).transpose()?;
    let dev = match oif {
        None => None,
        Some(i) if i == IFINDEX_LO as u32 => return Err(Errno::EOPNOTSUPP),
        Some(i) => {
            let i = i32::try_from(i).map_err(|_| Errno::ENODEV)?;
            Some(ifcfg::by_index(&v.eths, i).ok_or(Errno::ENODEV)?)
        }
    };
    if v.eths.is_empty() {
        return Err(if oif.is_some() {
            Errno::ENODEV
        } else {
            Errno::ENETUNREACH
        });
    }
    Ok((
        Route {
            dst,
            prefix,
            gw,
            metric: metric.unwrap_or(0),
            connected: false,
        },
        dev,
        metric,
    ))
}

fn new_route(v: &mut View, r: &Request) -> KResult<Answer> {
    let (rt, dev, _) = route_args(v, r)?;
    let ty = r.fixed(RTMSG)?[7];
    if ty != RTN_UNICAST {
        return Err(Errno::EOPNOTSUPP);
    }
    let f = r.hdr.flags;
    let same_key = |x: &Route| x.dst == rt.dst && x.prefix == rt.prefix && x.metric == rt.metric;
    let existing = v.eths.iter().enumerate().find_map(|(i, e)| {
        let k = e.cfg.routes.iter().position(same_key)?;
        Some((i, k))
    });
    if existing.is_some() && f & NLM_F_EXCL != 0 {
        return Err(Errno::EEXIST);
    }
    if f & NLM_F_REPLACE != 0 {
        if let Some((i, k)) = existing {
            let old = v.eths[i].cfg.routes.remove(k);
            if let Err(err) = ifcfg::add_route(&mut v.eths, rt, dev) {
                v.eths[i].cfg.routes.insert(k, old);
                return Err(err);
            }
            return Ok(Answer::Done);
        }
    }
    // fib_table_insert: a new route needs NLM_F_CREATE.
    if f & NLM_F_CREATE == 0 {
        return Err(Errno::ENOENT);
    }
    ifcfg::add_route(&mut v.eths, rt, dev)?;
    Ok(Answer::Done)
}

fn del_route(v: &mut View, r: &Request) -> KResult<Answer> {
    let (rt, dev, metric) = route_args(v, r)?;
    ifcfg::del_route(&mut v.eths, rt.dst, rt.prefix, rt.gw, metric, dev)?;
    Ok(Answer::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::inet::ifcfg::IfCfg;

    fn view() -> View {
        View {
            eths: vec![EthIf {
                n: 0,
                mac: crate::net::packet::eth_mac(0),
                cfg: IfCfg::configured(Ipv4Addr::new(10, 0, 2, 15), 24, Ipv4Addr::new(10, 0, 2, 2)),
                stats: IfStats::default(),
                max_mtu: 65535,
            }],
            ..Default::default()
        }
    }

    /// eth0 as `view`, and eth1 up on 10.0.3.15/24 without a default route.
    fn two() -> View {
        let mut v = view();
        v.eths.push(EthIf {
            n: 1,
            mac: crate::net::packet::eth_mac(1),
            cfg: IfCfg::addressed(Ipv4Addr::new(10, 0, 3, 15), 24),
            stats: IfStats {
                rx_packets: 7,
                ..IfStats::default()
            },
            max_mtu: 1500,
        });
        v
    }

    #[test]
    fn two_interfaces_dump_and_route_by_destination() {
        let mut v = two();
        let d = dump(&mut v, RTM_GETLINK, 0);
        assert_eq!(d.len(), 3);
        assert_eq!(attr_of(&d[2], IFINFOMSG, IFLA_IFNAME), b"eth1\0");
        assert_eq!(d[2][20..24], 3i32.to_le_bytes(), "ifindex 3");
        assert_eq!(
            attr_of(&d[2], IFINFOMSG, IFLA_STATS)[..4],
            7u32.to_le_bytes()
        );
        let a = dump(&mut v, RTM_GETADDR, AF_INET);
        assert_eq!(attr_of(&a[2], IFADDRMSG, IFA_LOCAL), [10, 0, 3, 15]);
        // default, 10.0.2.0/24, 10.0.3.0/24 in the main table.
        let r = dump(&mut v, RTM_GETROUTE, AF_INET);
        assert_eq!(attr_of(&r[2], RTMSG, RTA_OIF), 3u32.to_le_bytes());
        let get = |v: &mut View, ip: [u8; 4]| {
            let m = req(
                RTM_GETROUTE,
                0,
                &[AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                &[(RTA_DST, &ip)],
            );
            match run(v, &m, false) {
                Ok(Answer::Reply(r)) => {
                    (attr_of(&r, RTMSG, RTA_OIF), attr_of(&r, RTMSG, RTA_PREFSRC))
                }
                x => panic!("{x:?}"),
            }
        };
        assert_eq!(
            get(&mut v, [10, 0, 3, 9]),
            (3u32.to_le_bytes().to_vec(), vec![10, 0, 3, 15])
        );
        assert_eq!(
            get(&mut v, [192, 0, 2, 1]),
            (2u32.to_le_bytes().to_vec(), vec![10, 0, 2, 15])
        );
        // A gateway route without RTA_OIF goes where its gateway is.
        let mut rtm = [0u8; 12];
        rtm[0] = AF_INET;
        rtm[1] = 16;
        rtm[4] = RT_TABLE_MAIN as u8;
        rtm[7] = RTN_UNICAST;
        let add = req(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_ACK,
            &rtm,
            &[(RTA_DST, &[192, 168, 0, 0]), (RTA_GATEWAY, &[10, 0, 3, 2])],
        );
        assert_eq!(run(&mut v, &add, true), Ok(Answer::Done));
        assert_eq!(get(&mut v, [192, 168, 7, 7]).0, 3u32.to_le_bytes());
        // RTA_OIF of no interface.
        let bad = req(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_ACK,
            &rtm,
            &[(RTA_DST, &[172, 16, 0, 0]), (RTA_OIF, &9u32.to_le_bytes())],
        );
        assert_eq!(run(&mut v, &bad, true), Err(Errno::ENODEV));
        let del = req(
            RTM_DELROUTE,
            NLM_F_ACK,
            &rtm,
            &[(RTA_DST, &[192, 168, 0, 0])],
        );
        assert_eq!(run(&mut v, &del, true), Ok(Answer::Done));
        assert_eq!(get(&mut v, [192, 168, 7, 7]).0, 2u32.to_le_bytes());
    }

    fn req(ty: u16, flags: u16, body: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = MsgBuilder::new(ty, NLM_F_REQUEST | flags, 5, 0, body);
        for (t, d) in attrs {
            m.attr(*t, d);
        }
        m.finish()
    }

    fn run(v: &mut View, msg: &[u8], privileged: bool) -> KResult<Answer> {
        let hdr = NlHdr::parse(msg).unwrap();
        handle(
            v,
            &Request {
                hdr,
                msg,
                portid: 77,
                privileged,
            },
        )
    }

    fn dump(v: &mut View, ty: u16, family: u8) -> Vec<Vec<u8>> {
        match run(v, &req(ty, NLM_F_DUMP, &[family], &[]), false) {
            Ok(Answer::Dump(d)) => d,
            x => panic!("{x:?}"),
        }
    }

    fn attr_of(m: &[u8], fixed: usize, ty: u16) -> Vec<u8> {
        attrs(m, fixed)
            .into_iter()
            .find(|a| a.0 == ty)
            .map(|a| a.1.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn link_dump_shows_lo_and_eth0() {
        let mut v = view();
        let d = dump(&mut v, RTM_GETLINK, 0);
        assert_eq!(d.len(), 2);
        let h = NlHdr::parse(&d[1]).unwrap();
        assert_eq!(
            (h.ty, h.flags, h.seq, h.pid),
            (RTM_NEWLINK, NLM_F_MULTI, 5, 77)
        );
        assert_eq!(attr_of(&d[0], IFINFOMSG, IFLA_IFNAME), b"lo\0");
        assert_eq!(attr_of(&d[1], IFINFOMSG, IFLA_IFNAME), b"eth0\0");
        assert_eq!(attr_of(&d[1], IFINFOMSG, IFLA_MTU), 1500u32.to_le_bytes());
        let flags = u32::from_le_bytes(d[0][24..28].try_into().unwrap());
        assert_eq!(flags, 0x10049, "lo: UP LOOPBACK RUNNING LOWER_UP");
        assert_eq!(attr_of(&d[1], IFINFOMSG, IFLA_STATS).len(), 96);
        assert_eq!(attr_of(&d[1], IFINFOMSG, IFLA_OPERSTATE), [IF_OPER_UP]);
        // No eth0: only lo.
        let mut none = View::default();
        assert_eq!(dump(&mut none, RTM_GETLINK, 0).len(), 1);
        // One link by name.
        let m = req(RTM_GETLINK, 0, &[0; 16], &[(IFLA_IFNAME, b"eth0\0")]);
        let Ok(Answer::Reply(r)) = run(&mut v, &m, false) else {
            panic!()
        };
        assert_eq!(NlHdr::parse(&r).unwrap().flags, 0);
        let m = req(RTM_GETLINK, 0, &[0; 16], &[(IFLA_IFNAME, b"eth9\0")]);
        assert_eq!(run(&mut v, &m, false), Err(Errno::ENODEV));
    }

    #[test]
    fn addr_and_route_dumps() {
        let mut v = view();
        let a = dump(&mut v, RTM_GETADDR, AF_INET);
        assert_eq!(a.len(), 2);
        assert_eq!(attr_of(&a[1], IFADDRMSG, IFA_LOCAL), [10, 0, 2, 15]);
        assert_eq!(attr_of(&a[1], IFADDRMSG, IFA_BROADCAST), [10, 0, 2, 255]);
        assert_eq!(a[1][17], 24, "prefix length");
        assert_eq!(dump(&mut v, RTM_GETADDR, 0).len(), 3, "and ::1");
        assert_eq!(dump(&mut v, RTM_GETADDR, AF_INET6).len(), 1);
        let r = dump(&mut v, RTM_GETROUTE, AF_INET);
        // default, 10.0.2.0/24, then local 127/8, 127.0.0.1, 127.255.255.255,
        // 10.0.2.15 and 10.0.2.255.
        assert_eq!(r.len(), 7);
        assert_eq!(attr_of(&r[0], RTMSG, RTA_GATEWAY), [10, 0, 2, 2]);
        assert_eq!(r[0][17], 0, "the default route");
        assert_eq!(attr_of(&r[1], RTMSG, RTA_PREFSRC), [10, 0, 2, 15]);
        assert_eq!(r[1][21], RTPROT_KERNEL);
        assert_eq!(r[2][20], RT_TABLE_LOCAL as u8);
    }

    #[test]
    fn changes_need_privilege_and_follow_linux() {
        let mut v = view();
        let mut ifa = [0u8; 8];
        ifa[0] = AF_INET;
        ifa[1] = 24;
        ifa[4] = 2;
        let local: &[u8] = &[10, 0, 2, 15];
        let add = req(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
            &ifa,
            &[(IFA_LOCAL, local), (IFA_ADDRESS, local)],
        );
        assert_eq!(run(&mut v, &add, false), Err(Errno::EPERM));
        assert_eq!(run(&mut v, &add, true), Err(Errno::EEXIST));
        let del = req(RTM_DELADDR, NLM_F_ACK, &ifa, &[(IFA_LOCAL, local)]);
        assert_eq!(run(&mut v, &del, true), Ok(Answer::Done));
        let e = &v.eths[0].cfg;
        assert_eq!(e.addr, None);
        assert!(e.routes.is_empty(), "the routes went with the address");
        assert_eq!(run(&mut v, &del, true), Err(Errno::EADDRNOTAVAIL));
        let other = req(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            &ifa,
            &[(IFA_LOCAL, &[10, 0, 3, 1])],
        );
        assert_eq!(run(&mut v, &other, true), Ok(Answer::Done));
        assert_eq!(
            run(&mut v, &add, true),
            Err(Errno::EOPNOTSUPP),
            "one address"
        );
        let e = &v.eths[0].cfg;
        assert_eq!(e.addr, Some((Ipv4Addr::new(10, 0, 3, 1), 24)));
        assert_eq!(e.routes.len(), 1, "its connected route");
        assert_eq!(e.broadcast, Ipv4Addr::UNSPECIFIED, "no brd given");
        // A route through a gateway on the new network.
        let mut rtm = [0u8; RTMSG];
        rtm[0] = AF_INET;
        rtm[4] = RT_TABLE_MAIN as u8;
        rtm[7] = RTN_UNICAST;
        let gw: &[u8] = &[10, 0, 3, 254];
        let oif = 2u32.to_le_bytes();
        let radd = req(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_EXCL,
            &rtm,
            &[(RTA_GATEWAY, gw), (RTA_OIF, &oif)],
        );
        assert_eq!(run(&mut v, &radd, true), Ok(Answer::Done));
        assert_eq!(run(&mut v, &radd, true), Err(Errno::EEXIST));
        let nocreate = req(RTM_NEWROUTE, 0, &rtm, &[(RTA_GATEWAY, gw)]);
        assert_eq!(run(&mut v, &nocreate, true), Err(Errno::ENOENT));
        let far = req(
            RTM_NEWROUTE,
            NLM_F_CREATE,
            &rtm,
            &[(RTA_GATEWAY, &[9, 9, 9, 9])],
        );
        assert_eq!(run(&mut v, &far, true), Err(Errno::ENETUNREACH));
        let lo_oif = 1u32.to_le_bytes();
        let on_lo = req(RTM_NEWROUTE, NLM_F_CREATE, &rtm, &[(RTA_OIF, &lo_oif)]);
        assert_eq!(run(&mut v, &on_lo, true), Err(Errno::EOPNOTSUPP));
        let e = &v.eths[0].cfg;
        assert_eq!(
            e.lookup(Ipv4Addr::new(8, 8, 8, 8)).unwrap().gw,
            Some(Ipv4Addr::new(10, 0, 3, 254))
        );
        let rdel = req(RTM_DELROUTE, NLM_F_ACK, &rtm, &[]);
        assert_eq!(run(&mut v, &rdel, true), Ok(Answer::Done));
        assert_eq!(run(&mut v, &rdel, true), Err(Errno::ESRCH));
        // Link down and up through ifi_change.
        let mut ifi = [0u8; IFINFOMSG];
        ifi[4] = 2;
        ifi[12] = 1; // change IFF_UP, flags 0: down
        let down = req(RTM_NEWLINK, NLM_F_ACK, &ifi, &[]);
        assert_eq!(run(&mut v, &down, true), Ok(Answer::Done));
        assert!(!v.eths[0].cfg.up);
        ifi[8] = 1;
        let up = req(RTM_SETLINK, 0, &ifi, &[]);
        assert_eq!(run(&mut v, &up, true), Ok(Answer::Done));
        assert!(v.eths[0].cfg.up);
        ifi[4] = 1; // lo down
        ifi[8] = 0;
        let lo_down = req(RTM_NEWLINK, 0, &ifi, &[]);
        assert_eq!(run(&mut v, &lo_down, true), Err(Errno::EOPNOTSUPP));
        // lo's MTU stays; eth0's follows EthIf::set_mtu, then shows.
        let m = req(RTM_NEWLINK, 0, &ifi, &[(IFLA_MTU, &9000u32.to_le_bytes())]);
        assert_eq!(run(&mut v, &m, true), Err(Errno::EOPNOTSUPP));
        ifi[4] = 2;
        for bad in [67u32, 65536, u32::MAX] {
            let m = req(RTM_NEWLINK, 0, &ifi, &[(IFLA_MTU, &bad.to_le_bytes())]);
            assert_eq!(run(&mut v, &m, true), Err(Errno::EINVAL), "{bad}");
        }
        let m = req(RTM_SETLINK, 0, &ifi, &[(IFLA_MTU, &9000u32.to_le_bytes())]);
        assert_eq!(run(&mut v, &m, false), Err(Errno::EPERM));
        assert_eq!(run(&mut v, &m, true), Ok(Answer::Done));
        assert_eq!(v.eths[0].cfg.mtu, 9000);
        let get = req(RTM_GETLINK, 0, &ifi, &[]);
        let Ok(Answer::Reply(r)) = run(&mut v, &get, false) else {
            panic!()
        };
        assert_eq!(attr_of(&r, IFINFOMSG, IFLA_MTU), 9000u32.to_le_bytes());
        assert_eq!(
            run(&mut v, &req(99, 0, &[0; 16], &[]), true),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(
            run(&mut v, &req(RTM_NEWADDR, 0, &[2], &[]), true),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn route_get_answers_the_lookup() {
        let mut v = view();
        let mut rtm = [0u8; RTMSG];
        rtm[0] = AF_INET;
        let m = req(RTM_GETROUTE, 0, &rtm, &[(RTA_DST, &[1, 1, 1, 1])]);
        let Ok(Answer::Reply(r)) = run(&mut v, &m, false) else {
            panic!()
        };
        assert_eq!(attr_of(&r, RTMSG, RTA_GATEWAY), [10, 0, 2, 2]);
        assert_eq!(attr_of(&r, RTMSG, RTA_PREFSRC), [10, 0, 2, 15]);
        let mut none = View::default();
        assert_eq!(run(&mut none, &m, false), Err(Errno::ENETUNREACH));
    }

    proptest::proptest! {
        /// Any request bytes after a valid header: an answer, never a panic.
        #[test]
        fn any_request_is_answered(
            ty in 16u16..40,
            flags in proptest::num::u16::ANY,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..120),
        ) {
            let m = MsgBuilder::new(ty, flags, 1, 0, &body).finish();
            let mut v = view();
            let _ = run(&mut v, &m, true);
        }
    }
}
