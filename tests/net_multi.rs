//! Two interfaces on the console of the default busybox image:
//! `eth0=user eth1=user,hostfwd=...` gives eth0 (10.0.2.15, the default
//! route) and eth1 (10.0.3.15, its own NAT at 10.0.3.2), both seen by
//! `ip link`/`ip addr`/`ip route`, ifconfig (SIOCGIFCONF), /proc/net/dev
//! and /proc/net/route; routing chooses by destination (`ip route get`,
//! and traffic: a wget to 10.0.3.2 leaves by eth1 and is counted there,
//! one to 10.0.2.2 by eth0); eth1's port forward reaches a guest server
//! through eth1; eth1 taken
//! down takes its network with it, not eth0's. Only host loopback traffic.

mod support_many;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use support_many::{Fleet, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

fn lines(out: &str) -> Vec<String> {
    out.lines().map(|l| l.trim_end().to_string()).collect()
}

/// A host HTTP server answering `n` GETs with `body`; the requests it
/// got.
fn serve(n: usize, body: &'static str) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let mut reqs = Vec::new();
        for _ in 0..n {
            let (mut c, _) = server.accept().expect("accept the guest");
            let mut req = [0u8; 1024];
            let k = c.read(&mut req).expect("request");
            write!(
                c,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            reqs.push(String::from_utf8_lossy(&req[..k]).to_string());
        }
        reqs
    });
    (port, t)
}

/// The (rx bytes, tx bytes) of `dev` in /proc/net/dev's text.
fn counters(proc_net_dev: &str, dev: &str) -> (u64, u64) {
    let f = support_many::net_dev_counters(proc_net_dev, dev);
    (f[0], f[8])
}

#[test]
fn two_interfaces_route_by_destination() {
    let fwd = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let mut fleet = Fleet::one_logged_in(
        Runner::umlrun("mmap"),
        &image,
        "64M",
        &[
            "eth0=user".into(),
            format!("eth1=user,hostfwd=tcp:127.0.0.1:{fwd}-:8080"),
        ],
        BOOT_TIMEOUT,
        CMD_TIMEOUT,
    );
    let g = &mut fleet.instances[0];
    let mut sh = |cmd: &str| g.sh(cmd, CMD_TIMEOUT);

    let (st, out) = sh("ip link");
    assert_eq!(st, 0, "{out}");
    let l = lines(&out);
    assert_eq!(l.len(), 6, "lo, eth0, eth1: {out}");
    assert!(
        l[4].starts_with("3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"),
        "{out}"
    );
    assert_eq!(
        l[5],
        "    link/ether 52:54:00:12:34:57 brd ff:ff:ff:ff:ff:ff"
    );
    let (st, out) = sh("ip -4 addr show dev eth1");
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("inet 10.0.3.15/24 brd 10.0.3.255 scope global eth1"),
        "{out}"
    );
    let (st, out) = sh("ip route");
    assert_eq!(st, 0, "{out}");
    assert_eq!(
        lines(&out),
        [
            "default via 10.0.2.2 dev eth0",
            "10.0.2.0/24 dev eth0 scope link  src 10.0.2.15",
            "10.0.3.0/24 dev eth1 scope link  src 10.0.3.15"
        ],
        "{out}"
    );
    let (st, out) = sh("ip route get 10.0.3.2; ip route get 192.0.2.1");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("10.0.3.2 dev eth1  src 10.0.3.15"), "{out}");
    assert!(
        out.contains("192.0.2.1 via 10.0.2.2 dev eth0  src 10.0.2.15"),
        "{out}"
    );
    // ifconfig lists interfaces through SIOCGIFCONF (with addresses)
    // and asks each by name.
    let (st, out) = sh("ifconfig | grep -E '^[a-z]|inet addr'");
    assert_eq!(st, 0, "{out}");
    let l = lines(&out);
    assert!(l.iter().any(|x| x.starts_with("eth1 ")), "{out}");
    assert!(
        out.contains("inet addr:10.0.3.15  Bcast:10.0.3.255  Mask:255.255.255.0"),
        "{out}"
    );
    let (st, out) = sh("cat /proc/net/route | cut -f1-3");
    assert_eq!(st, 0, "{out}");
    assert_eq!(
        lines(&out)[1..],
        [
            "eth0\t00000000\t0202000A",
            "eth0\t0002000A\t00000000",
            "eth1\t0003000A\t00000000"
        ],
        "{out}"
    );

    // Traffic by destination: each wget leaves by its own interface and
    // is counted there.
    let (_, before) = sh("cat /proc/net/dev");
    let (e0, e1) = (counters(&before, "eth0"), counters(&before, "eth1"));
    let (port, server) = serve(1, "one\n");
    let (st, out) = sh(&format!("wget -q -O - http://10.0.3.2:{port}/via-eth1"));
    assert_eq!((st, out.trim_end()), (0, "one"), "{out}");
    let (_, mid) = sh("cat /proc/net/dev");
    let (m0, m1) = (counters(&mid, "eth0"), counters(&mid, "eth1"));
    assert!(m1.0 > e1.0 && m1.1 > e1.1, "eth1 carried it: {before}{mid}");
    assert_eq!(m0, e0, "eth0 did not: {before}{mid}");
    assert!(server.join().unwrap()[0].starts_with("GET /via-eth1 "));
    let (port, server) = serve(1, "zero\n");
    let (st, out) = sh(&format!("wget -q -O - http://10.0.2.2:{port}/via-eth0"));
    assert_eq!((st, out.trim_end()), (0, "zero"), "{out}");
    let (_, after) = sh("cat /proc/net/dev");
    assert!(counters(&after, "eth0").1 > m0.1, "{mid}{after}");
    assert_eq!(counters(&after, "eth1"), m1, "{mid}{after}");
    server.join().unwrap();

    // eth1's forward reaches the guest's server through eth1.
    let (st, out) = sh(
        "(echo -e 'HTTP/1.0 200 OK\\r\\n\\r\\nfrom eth1' | nc -l -p 8080 > /tmp/req &); sleep 1; echo up",
    );
    assert_eq!((st, out.trim_end()), (0, "up"), "{out}");
    let mut c = TcpStream::connect(("127.0.0.1", fwd)).expect("connect to eth1's forward");
    c.set_read_timeout(Some(CMD_TIMEOUT)).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(answer.ends_with("from eth1\n"), "{answer}");
    drop(c);
    let (st, out) = sh("sleep 1; cat /tmp/req");
    assert_eq!(st, 0, "{out}");
    assert!(out.starts_with("GET / HTTP/1.0"), "{out}");

    // eth1 down: its network is gone, eth0's default route stays.
    let (st, out) = sh("ifconfig eth1 down && ip route");
    assert_eq!(st, 0, "{out}");
    assert!(!out.contains("eth1"), "{out}");
    assert!(out.contains("default via 10.0.2.2 dev eth0"), "{out}");
    let (st, out) = sh("ip route get 10.0.3.2");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("via 10.0.2.2 dev eth0"), "{out}");
}
