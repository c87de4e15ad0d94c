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

fn lines(out: &str) -> Vec<String> {
    out.lines().map(|l| l.trim_end().to_string()).collect()
}

#[test]
fn busybox_ip_shows_and_changes_eth0() {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &image, "64M").unwrap();
    fleet.extra_args.push("eth0=user".into());
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    let mut sh = |cmd: &str| {
        let (st, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
        eprintln!("$ {cmd}\n{out}[{st}]");
        (st, out)
    };

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
