//! busybox `ip` on the console of the default image, over rtnetlink:
//! `ip link`, `ip addr` and `ip route` show eth0 (on `eth0=user`) as
//! Linux would, and `ip addr add/del`, `ip route add/del` and `ip link
//! set up/down` change it, each change seen by the next `ip` (and by
//! ifconfig/route's /proc and ioctl view) and by traffic: after the
//! guest renumbers eth0 by hand, a server on the host is reached through
//! the NAT again. Only host loopback traffic.

mod support_many;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use support_many::{Fleet, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// One logged-in busybox instance with eth0=user.
fn busybox_on_eth0_user() -> Fleet {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    Fleet::one_logged_in(
        Runner::umlrun("mmap"),
        &image,
        "64M",
        &["eth0=user".into()],
        BOOT_TIMEOUT,
        CMD_TIMEOUT,
    )
}

fn lines(out: &str) -> Vec<String> {
    out.lines().map(|l| l.trim_end().to_string()).collect()
}

#[test]
fn busybox_ip_shows_and_changes_eth0() {
    let mut fleet = busybox_on_eth0_user();
    let g = &mut fleet.instances[0];
    let mut sh = |cmd: &str| g.sh(cmd, CMD_TIMEOUT);

    let (st, out) = sh("ip link");
    assert_eq!(st, 0, "{out}");
    let l = lines(&out);
    assert!(
        l[0].starts_with("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue"),
        "{out}"
    );
    assert_eq!(
        l[1],
        "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00"
    );
    assert!(
        l[2].starts_with("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast"),
        "{out}"
    );
    assert_eq!(
        l[3],
        "    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff"
    );

    let (st, out) = sh("ip addr show dev eth0");
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0"),
        "{out}"
    );
    let (st, out) = sh("ip -4 addr show dev lo");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("inet 127.0.0.1/8 scope host lo"), "{out}");

    let (st, out) = sh("ip route");
    assert_eq!(st, 0, "{out}");
    assert_eq!(
        lines(&out),
        [
            "default via 10.0.2.2 dev eth0",
            "10.0.2.0/24 dev eth0 scope link  src 10.0.2.15"
        ],
        "{out}"
    );

    // Down: no routes; up again: the connected route only (as Linux).
    let (st, out) = sh("ip link set eth0 down && ip link show eth0 && ip route");
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("2: eth0: <BROADCAST,MULTICAST> mtu 1500"),
        "{out}"
    );
    assert!(!out.contains("default"), "{out}");
    let (st, out) = sh("ip link set eth0 up && ip route");
    assert_eq!(st, 0, "{out}");
    assert_eq!(
        lines(&out),
        ["10.0.2.0/24 dev eth0 scope link  src 10.0.2.15"],
        "{out}"
    );

    // Renumber by hand: the old address away, a new one, a default route.
    let (st, out) = sh(
        "ip addr del 10.0.2.15/24 dev eth0 && ip addr add 10.0.2.77/24 brd + dev eth0 \
         && ip route add default via 10.0.2.2 dev eth0 && ip addr show dev eth0 && ip route",
    );
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("inet 10.0.2.77/24 brd 10.0.2.255 scope global eth0"),
        "{out}"
    );
    assert!(!out.contains("10.0.2.15"), "{out}");
    assert!(out.contains("default via 10.0.2.2 dev eth0"), "{out}");
    // ifconfig and /proc/net/route see the same.
    let (st, out) = sh("ifconfig eth0 | grep 'inet addr'; cat /proc/net/route | wc -l");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("inet addr:10.0.2.77"), "{out}");
    assert!(
        out.trim_end().ends_with('3'),
        "header and two routes: {out}"
    );

    // eth0 holds one IPv4 address: a second is refused, not ignored.
    let (st, out) = sh("ip addr add 10.0.3.1/24 dev eth0");
    assert_ne!(st, 0);
    assert!(out.contains("Operation not supported"), "{out}");
    // Errors as Linux's: a second default route of the same metric, a
    // gateway off-link, deleting what is not there.
    let (st, out) = sh("ip route add default via 10.0.2.2");
    assert_ne!(st, 0);
    assert!(out.contains("File exists"), "{out}");
    let (st, out) = sh("ip route add 192.168.7.0/24 via 172.16.0.1");
    assert_ne!(st, 0);
    assert!(out.contains("Network is unreachable"), "{out}");
    let (st, out) = sh("ip route del 192.168.9.0/24");
    assert_ne!(st, 0);
    assert!(out.contains("No such process"), "{out}");
    let (st, out) =
        sh("ip route add 192.168.7.0/24 dev eth0 && ip route del 192.168.7.0/24 && echo ok");
    assert_eq!((st, out.trim_end()), (0, "ok"));

    // Traffic goes out with the new address: the host's server is
    // reached through the NAT.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let hport = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut c, _) = server.accept().expect("accept the guest");
        let mut req = [0u8; 512];
        let _ = c.read(&mut req);
        c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhi\n")
            .unwrap();
    });
    let (st, out) = sh(&format!("wget -q -O - http://10.0.2.2:{hport}/"));
    assert_eq!((st, out.trim_end()), (0, "hi"), "{out}");
    serve.join().unwrap();
}

/// eth0's MTU set the ways a guest sets it (busybox `ifconfig eth0 mtu`
/// and `ip link set eth0 mtu`, both SIOCSIFMTU), read back by `ip link`
/// (rtnetlink's IFLA_MTU) and ifconfig (SIOCGIFMTU), with Linux's
/// errors: EINVAL below 68 or over the link's maximum (65535 on
/// eth0=user), EPERM for a user without CAP_NET_ADMIN. Traffic through
/// the NAT keeps working at a small and at the largest MTU (the TCP MSS
/// follows eth0's MTU both ways; 256 KiB each time, md5 checked).
#[test]
fn eth0_mtu_is_set_and_read_back_as_on_linux() {
    let mut fleet = busybox_on_eth0_user();
    let g = &mut fleet.instances[0];
    let mut sh = |cmd: &str| g.sh(cmd, CMD_TIMEOUT);
    let (st, out) = sh("ifconfig eth0 | grep -o 'MTU:[0-9]*'");
    assert_eq!((st, out.trim_end()), (0, "MTU:1500"));
    let (st, out) = sh("ifconfig eth0 mtu 9000 && ip link show eth0 && ifconfig eth0");
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9000"),
        "{out}"
    );
    assert!(out.contains("MTU:9000"), "{out}");
    let (st, out) = sh("ip link set eth0 mtu 1400 && ip link show eth0");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("mtu 1400"), "{out}");

    for bad in ["67", "0", "65536", "-1"] {
        let (st, out) = sh(&format!("ifconfig eth0 mtu {bad}"));
        assert_ne!(st, 0, "{bad}: {out}");
        assert!(out.contains("SIOCSIFMTU: Invalid argument"), "{bad}: {out}");
    }
    let (st, out) = sh("ip link set eth0 mtu 70000");
    assert_ne!(st, 0);
    assert!(out.contains("Invalid argument"), "{out}");
    // Not root: EPERM, and nothing changed.
    let (st, out) = sh(
        "printf 'netuser::1000:1000::/tmp:/bin/sh\\n' >> /etc/passwd && \
         su netuser -c 'ifconfig eth0 mtu 1300'",
    );
    assert_ne!(st, 0, "{out}");
    assert!(out.contains("SIOCSIFMTU: Operation not permitted"), "{out}");
    let (st, out) = sh("su netuser -c 'ifconfig eth0 mtu 1400' && echo same-is-fine");
    assert_ne!(st, 0, "EPERM even for the MTU it has, as Linux: {out}");
    let (st, out) = sh("ifconfig eth0 | grep -o 'MTU:[0-9]*'");
    assert_eq!((st, out.trim_end()), (0, "MTU:1400"));

    // Traffic at a small MTU and at the largest: a host server's 256 KiB
    // through the NAT, whole, in packets that fit eth0's MTU (its
    // /proc/net/dev receive bytes per packet: at most 576 at 576; over
    // 1500 at 65535, so the MSS follows the MTU rather than staying at
    // 1460).
    let rx = |sh: &mut dyn FnMut(&str) -> (i32, String)| {
        let (st, out) = sh("grep eth0: /proc/net/dev");
        assert_eq!(st, 0, "{out}");
        let f = support_many::net_dev_counters(&out, "eth0");
        (f[0], f[1])
    };
    let body: Vec<u8> = (0..256u32 << 10)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let want = support_many::tools::md5_hex(&body);
    for mtu in [576, 65535] {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let hport = server.local_addr().unwrap().port();
        let b = body.clone();
        let serve = std::thread::spawn(move || {
            let (mut c, _) = server.accept().expect("accept the guest");
            let mut req = [0u8; 512];
            let _ = c.read(&mut req);
            write!(c, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).unwrap();
            c.write_all(&b).unwrap();
        });
        let (st, out) = sh(&format!("ifconfig eth0 mtu {mtu}"));
        assert_eq!(st, 0, "MTU {mtu}: {out}");
        let (b0, p0) = rx(&mut sh);
        let (st, out) = sh(&format!("wget -q -O - http://10.0.2.2:{hport}/ | md5sum"));
        assert_eq!(st, 0, "MTU {mtu}: {out}");
        assert!(out.starts_with(&want), "MTU {mtu}: {out}");
        serve.join().unwrap();
        let (b1, p1) = rx(&mut sh);
        let per = (b1 - b0) / (p1 - p0).max(1);
        if mtu == 576 {
            assert!(per <= 576, "MTU {mtu}: {per} bytes a packet");
        } else {
            assert!(per > 1500, "MTU {mtu}: {per} bytes a packet");
        }
    }
}
