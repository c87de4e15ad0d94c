//! eth0 configured by the guest, on the console of the default busybox
//! image booted with `eth0=user,addr=none`:
//! - before: eth0 is down with no address (busybox `ifconfig` line for
//!   line as on Linux), and the network is unreachable;
//! - busybox `udhcpc -i eth0` gets its lease from the NAT's DHCP server
//!   through AF_PACKET sockets (with its BPF filter attached) and the
//!   image's /etc/udhcpc/default.script configures eth0 with
//!   SIOCSIFADDR/SIOCSIFNETMASK/SIOCSIFBRDADDR/SIOCSIFFLAGS and
//!   SIOCDELRT/SIOCADDRT, and writes /etc/resolv.conf;
//! - after: `ifconfig`, `route -n` show what Linux shows, a name
//!   resolves through 10.0.2.3, and `wget` fetches from a host server;
//! - `ifconfig eth0 down` flushes the routes; `ifconfig ... up` and
//!   `route add default gw` by hand bring the network back.
//!
//! Only host loopback traffic; the instance is stopped by pid if a test
//! fails (the harness's Drop).

mod support;
mod support_many;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use support::dns::DnsServer;
use support_many::{Fleet, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one HTTP request on the host's 127.0.0.1 with `body`; the
/// request line comes back through the join handle.
fn serve_once(body: &'static [u8]) -> (u16, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = support_many::serve_http_once(l, body.to_vec());
    (port, t)
}

/// eth0 as busybox ifconfig prints it on Linux, with and without the
/// lease (the counters' lines are left out: they vary).
const ETH0_DOWN: &str = "eth0      Link encap:Ethernet  HWaddr 52:54:00:12:34:56  \n          BROADCAST MULTICAST  MTU:1500  Metric:1\n";
const ETH0_UP: [&str; 3] = [
    "eth0      Link encap:Ethernet  HWaddr 52:54:00:12:34:56  \n",
    "          inet addr:10.0.2.15  Bcast:10.0.2.255  Mask:255.255.255.0\n",
    "          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1\n",
];
const ROUTES: &str = "Kernel IP routing table\n\
    Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n\
    0.0.0.0         10.0.2.2        0.0.0.0         UG    0      0        0 eth0\n\
    10.0.2.0        0.0.0.0         255.255.255.0   U     0      0        0 eth0\n";
const NO_ROUTES: &str = "Kernel IP routing table\n\
    Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n";

#[test]
fn udhcpc_configures_eth0_from_the_nats_dhcp_server() {
    let dns = DnsServer::start([192, 0, 2, 44]);
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &image, "64M").unwrap();
    fleet.extra_args.push(format!(
        "eth0=user,addr=none,resolver=127.0.0.1:{}",
        dns.port
    ));
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();

    let (st, out) = g
        .run("test -x /etc/udhcpc/default.script", CMD_TIMEOUT)
        .unwrap();
    assert_eq!(
        st, 0,
        "the image has no udhcpc script: run disk-images/build"
    );

    // Before: down, no address, no route.
    let (st, out2) = g.run("ifconfig eth0", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}{out2}");
    assert!(out2.starts_with(ETH0_DOWN), "{out2}");
    assert!(!out2.contains("inet addr"), "{out2}");
    let (_, out) = g.run("route -n", CMD_TIMEOUT).unwrap();
    assert_eq!(out, NO_ROUTES);
    let (st, out) = g
        .run("wget -q -O - http://10.0.2.2:1/", CMD_TIMEOUT)
        .unwrap();
    assert_ne!(st, 0, "{out}");
    assert!(out.contains("Network is unreachable"), "{out}");

    // DHCP.
    let (st, out) = g.run("udhcpc -i eth0 -t 5 -T 2", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("lease of 10.0.2.15 obtained from 10.0.2.2, lease time 86400"),
        "{out}"
    );

    // After: as Linux shows a NIC that took slirp's lease.
    let (st, out) = g.run("ifconfig eth0", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    for want in ETH0_UP {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let (_, out) = g.run("route -n", CMD_TIMEOUT).unwrap();
    assert_eq!(out, ROUTES);
    let (_, out) = g.run("cat /etc/resolv.conf", CMD_TIMEOUT).unwrap();
    assert_eq!(out, "nameserver 10.0.2.3\n");
    let (st, out) = g.run("nslookup dhcp.test", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("Name:\tdhcp.test\nAddress: 192.0.2.44\n"),
        "{out}"
    );
    assert!(dns.queries() >= 1);
    let (port, req) = serve_once(b"leased\n");
    let (st, out) = g
        .run(
            &format!("wget -q -O - http://10.0.2.2:{port}/x"),
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!((st, out.as_str()), (0, "leased\n"), "{out}");
    assert!(req.join().unwrap().starts_with("GET /x HTTP/1."));

    // Down flushes the routes; up and a route by hand bring it back.
    let (st, out) = g
        .run("ifconfig eth0 down && route -n", CMD_TIMEOUT)
        .unwrap();
    assert_eq!((st, out.as_str()), (0, NO_ROUTES), "{out}");
    let (st, out) = g.run("route add default gw 10.0.2.2", CMD_TIMEOUT).unwrap();
    assert_ne!(st, 0, "{out}");
    assert!(out.contains("Network is unreachable"), "{out}");
    let (st, out) = g
        .run(
            "ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up && route add default gw 10.0.2.2 && route -n",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!((st, out.as_str()), (0, ROUTES), "{out}");
    let (st, out) = g.run("route add default gw 10.0.2.2", CMD_TIMEOUT).unwrap();
    assert_ne!(st, 0, "{out}");
    assert!(out.contains("File exists"), "{out}");
    let (port, req) = serve_once(b"by hand\n");
    let (st, out) = g
        .run(
            &format!("wget -q -O - http://10.0.2.2:{port}/y"),
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!((st, out.as_str()), (0, "by hand\n"), "{out}");
    assert!(req.join().unwrap().starts_with("GET /y HTTP/1."));
}
