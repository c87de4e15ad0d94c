//! The text of /proc/net/{dev,tcp,tcp6,udp,udp6,route,if_inet6} in
//! Linux's exact formats (net/core/net-procfs.c, net/ipv4/tcp_ipv4.c,
//! udp.c, fib_trie.c, net/ipv6/tcp_ipv6.c, datagram.c, addrconf.c):
//! addresses as the kernel's native-endian words in hex, ports in hex,
//! the fixed-width lines padded with spaces as `seq_pad` pads them.
//! Timers, retransmits and the kernel pointer (`%pK`, zero for a reader
//! without CAP_SYSLOG) read as an idle socket's.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use super::device::IfStats;
use super::ifcfg::EthIf;

/// One socket as the tables show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Linux's TCP state number (01 ESTABLISHED ... 0A LISTEN; UDP: 07
    /// unconnected, 01 connected).
    pub state: u8,
    pub txq: usize,
    pub rxq: usize,
    pub uid: u32,
    pub ino: u64,
}

/// Pads `line` with spaces to `width`, then ends it (`seq_pad`).
fn pad(out: &mut String, line: &str, width: usize) {
    let _ = writeln!(out, "{line:<width$}");
}

fn hex4(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => format!("{:08X}", u32::from_le_bytes(v.octets())),
        IpAddr::V6(v) => {
            let o = v.octets();
            o.chunks(4)
                .map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
    }
}

/// An address in the family of the table (v4-mapped in the v6 tables).
fn addr(a: SocketAddr, v6: bool) -> String {
    let ip = match (a.ip(), v6) {
        (IpAddr::V4(v), true) => IpAddr::V6(v.to_ipv6_mapped()),
        (ip, _) => ip,
    };
    format!("{}:{:04X}", hex4(ip), a.port())
}

const TCP_HEAD: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const TCP6_HEAD: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const UDP_HEAD: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";
const UDP6_HEAD: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";
const ROUTE_HEAD: &str =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";

/// /proc/net/tcp (`v6` false) or tcp6.
pub fn tcp(rows: &[SockRow], v6: bool) -> String {
    let mut out = String::new();
    if v6 {
        let _ = writeln!(out, "{TCP6_HEAD}");
    } else {
        pad(&mut out, TCP_HEAD, 149);
    }
    for (i, r) in rows.iter().enumerate() {
        // rto, ato, quick|pingpong, cwnd, ssthresh (a listener: its
        // fastopen queue length).
        let tail = if r.state == 0x0a {
            "100 0 0 10 0"
        } else {
            "20 4 0 10 -1"
        };
        let line = format!(
            "{:4}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:5} {:8} {} 1 0000000000000000 {tail}",
            i,
            addr(r.local, v6),
            addr(r.remote, v6),
            r.state,
            r.txq,
            r.rxq,
            r.uid,
            0,
            r.ino
        );
        if v6 {
            let _ = writeln!(out, "{line}");
        } else {
            pad(&mut out, &line, 149);
        }
    }
    out
}

/// /proc/net/udp (`v6` false) or udp6.
pub fn udp(rows: &[SockRow], v6: bool) -> String {
    let mut out = String::new();
    if v6 {
        let _ = writeln!(out, "{UDP6_HEAD}");
    } else {
        pad(&mut out, UDP_HEAD, 127);
    }
    for r in rows {
        // The hash bucket of the local port (a 128-slot table).
        let slot = r.local.port() & 127;
        let line = format!(
            "{:5}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:5} {:8} {} 2 0000000000000000 0",
            slot,
            addr(r.local, v6),
            addr(r.remote, v6),
            r.state,
            r.txq,
            r.rxq,
            r.uid,
            0,
            r.ino
        );
        if v6 {
            let _ = writeln!(out, "{line}");
        } else {
            pad(&mut out, &line, 127);
        }
    }
    out
}

/// /proc/net/dev: lo, then the ethN.
pub fn dev(lo: &IfStats, eths: &[EthIf]) -> String {
    let mut out = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    let mut line = |name: &str, s: &IfStats| {
        let _ = writeln!(
            out,
            "{name:>6}: {:7} {:7} {:4} {:4} {:4} {:5} {:10} {:9} {:8} {:7} {:4} {:4} {:4} {:5} {:7} {:10}",
            s.rx_bytes, s.rx_packets, 0, s.rx_dropped, 0, 0, 0, 0,
            s.tx_bytes, s.tx_packets, 0, s.tx_dropped, 0, 0, 0, 0
        );
    };
    line("lo", lo);
    for e in eths {
        line(e.name(), &e.stats);
    }
    out
}

/// /proc/net/route: the ethN's routes (the main table; lo's routes are
/// in the local table, which this file does not show), in the table's
/// order: by destination, longer prefix first, then metric.
pub fn route(eths: &[EthIf]) -> String {
    let mut out = String::new();
    pad(&mut out, ROUTE_HEAD, 127);
    let le = |v: u32| u32::from_le_bytes(v.to_be_bytes());
    let mut all: Vec<(&str, &super::ifcfg::Route)> = eths
        .iter()
        .flat_map(|e| e.cfg.routes.iter().map(move |r| (e.name(), r)))
        .collect();
    all.sort_by_key(|(_, r)| (u32::from(r.dst), std::cmp::Reverse(r.prefix), r.metric));
    for (name, r) in all {
        // RTF_UP, RTF_GATEWAY, RTF_HOST.
        let flags =
            0x1 | if r.gw.is_some() { 0x2 } else { 0 } | if r.prefix == 32 { 0x4 } else { 0 };
        let (dst, gw, mask) = (
            le(u32::from(r.dst)),
            le(r.gw.map_or(0, u32::from)),
            le(r.mask()),
        );
        let metric = r.metric;
        let line = format!(
            "{name}\t{dst:08X}\t{gw:08X}\t{flags:04X}\t0\t0\t{metric}\t{mask:08X}\t0\t0\t0"
        );
        pad(&mut out, &line, 127);
    }
    out
}

/// /proc/net/if_inet6: lo's ::1 (eth0 has no IPv6 address).
pub fn if_inet6() -> String {
    // address, ifindex, prefix length, scope (host), flags (permanent).
    "00000000000000000000000000000001 01 80 10 80       lo\n".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::inet::ifcfg::IfCfg;

    fn row(local: &str, remote: &str, state: u8) -> SockRow {
        SockRow {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            txq: 0,
            rxq: 5,
            uid: 0,
            ino: 4242,
        }
    }

    #[test]
    fn tcp_lines_are_linuxs() {
        let t = tcp(&[row("127.0.0.1:22", "0.0.0.0:0", 0x0a)], false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].len(), 149);
        assert!(lines[0].starts_with("  sl  local_address rem_address   st tx_queue"));
        assert_eq!(lines[1].len(), 149);
        assert!(lines[1].starts_with(
            "   0: 0100007F:0016 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0"
        ), "{}", lines[1]);
        let t6 = tcp(&[row("[::1]:80", "[::]:0", 0x0a)], true);
        assert!(t6.lines().nth(1).unwrap().starts_with(
            "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A "
        ));
    }

    #[test]
    fn udp_and_v4_mapped_rows() {
        let u = udp(&[row("10.0.2.15:68", "0.0.0.0:0", 7)], false);
        let l: Vec<&str> = u.lines().collect();
        assert_eq!((l[0].len(), l[1].len()), (127, 127));
        assert!(
            l[1].starts_with("   68: 0F02000A:0044 00000000:0000 07 "),
            "{}",
            l[1]
        );
        let u6 = udp(&[row("127.0.0.1:53", "0.0.0.0:0", 7)], true);
        assert!(u6
            .lines()
            .nth(1)
            .unwrap()
            .contains("0000000000000000FFFF00000100007F:0035"));
    }

    #[test]
    fn dev_and_route() {
        let s = IfStats {
            rx_bytes: 100,
            rx_packets: 2,
            ..IfStats::default()
        };
        let eth = |n, cfg| EthIf {
            n,
            mac: crate::net::packet::eth_mac(n),
            cfg,
            stats: IfStats::default(),
            max_mtu: 1500,
        };
        let d = dev(&s, &[eth(0, IfCfg::unconfigured())]);
        let l: Vec<&str> = d.lines().collect();
        assert_eq!(
            l[2],
            "    lo:     100       2    0    0    0     0          0         0        0       0    0    0    0     0       0          0"
        );
        assert!(l[3].starts_with("  eth0:       0"));
        let e = IfCfg::configured(
            "10.0.2.15".parse().unwrap(),
            24,
            "10.0.2.2".parse().unwrap(),
        );
        let e1 = IfCfg::addressed("10.0.3.15".parse().unwrap(), 24);
        let r = route(&[eth(0, e), eth(1, e1)]);
        let l: Vec<&str> = r.lines().collect();
        assert_eq!(l.len(), 4);
        assert!(l[1].starts_with("eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0 "));
        assert!(l[2].starts_with("eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0 "));
        assert!(l[3].starts_with("eth1\t0003000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0 "));
        assert_eq!(route(&[]).lines().count(), 1);
        assert_eq!(route(&[eth(0, IfCfg::unconfigured())]).lines().count(), 1);
    }
}
