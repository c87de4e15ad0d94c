//! The user-mode NAT on the console of the default busybox image:
//! - UDP: busybox `nslookup` in the guest asks a small DNS server the
//!   test runs on the host's 127.0.0.1, once as 10.0.2.2:<port> (UDP out
//!   through the NAT, the answer back from the address asked) and once
//!   through the DNS forwarder 10.0.2.3 (`eth0=user,resolver=...`, the
//!   guest's /etc/resolv.conf naming 10.0.2.3);
//! - the interfaces as busybox `ifconfig`, `route -n` and `netstat`
//!   show them (SIOCGIF* ioctls, /proc/net/{dev,route,tcp,udp,if_inet6}),
//!   line for line what they print on Linux for the same interfaces;
//! - busybox `ping` of the NAT's addresses, through a ping socket.
//!
//! Only host loopback traffic; the instance is stopped by pid if a test
//! fails (the harness's Drop).

mod support;
mod support_many;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use support::dns::DnsServer;
use support_many::{Fleet, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn nslookup_through_the_nat_and_the_dns_forwarder() {
    let direct = DnsServer::start([192, 0, 2, 7]);
    let resolver = DnsServer::start([198, 51, 100, 9]);
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &image, "64M").unwrap();
    fleet
        .extra_args
        .push(format!("eth0=user,resolver=127.0.0.1:{}", resolver.port));
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();

    // UDP to the host as 10.0.2.2.
    let (st, out) = g
        .run(
            &format!("nslookup foo.test 10.0.2.2:{}", direct.port),
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("Name:\tfoo.test\nAddress: 192.0.2.7\n"),
        "{out}"
    );
    assert!(direct.queries() >= 2, "A and AAAA");

    // The DNS forwarder, named by the guest's resolv.conf.
    let (st, out) = g
        .run(
            "echo nameserver 10.0.2.3 > /etc/resolv.conf && nslookup bar.test",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("Server:\t\t10.0.2.3\n"), "{out}");
    assert!(
        out.contains("Name:\tbar.test\nAddress: 198.51.100.9\n"),
        "{out}"
    );
    assert!(resolver.queries() >= 2);

    // A port nobody answers on: the guest's query times out, nothing
    // else breaks (the next lookup still works).
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let (st, out) = g
        .run(&format!("nslookup x.test 10.0.2.2:{dead}"), CMD_TIMEOUT)
        .unwrap();
    assert_ne!(st, 0, "{out}");
    let (st, out) = g.run("nslookup baz.test", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("Address: 198.51.100.9"), "{out}");

    // The interfaces, as Linux's busybox shows a user-mode NIC and lo.
    let (st, out) = g.run("ifconfig", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    for want in [
        "eth0      Link encap:Ethernet  HWaddr 52:54:00:12:34:56  \n",
        "          inet addr:10.0.2.15  Bcast:10.0.2.255  Mask:255.255.255.0\n",
        "          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1\n",
        "          collisions:0 txqueuelen:1000 \n",
        "lo        Link encap:Local Loopback  \n",
        "          inet addr:127.0.0.1  Mask:255.0.0.0\n",
        "          inet6 addr: ::1/128 Scope:Host\n",
        "          UP LOOPBACK RUNNING  MTU:65536  Metric:1\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    // The lookups above went out on eth0 and came back.
    let rx = out
        .lines()
        .find(|l| l.contains("RX packets:"))
        .and_then(|l| l.split("RX packets:").nth(1))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(rx >= 4, "eth0 received {rx} packets\n{out}");
    let (st, out) = g.run("route -n", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    assert_eq!(
        out,
        "Kernel IP routing table\n\
         Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n\
         0.0.0.0         10.0.2.2        0.0.0.0         UG    0      0        0 eth0\n\
         10.0.2.0        0.0.0.0         255.255.255.0   U     0      0        0 eth0\n"
    );
    // busybox ping: no raw socket (EPERM), so a ping socket; the NAT
    // answers for 10.0.2.2 and 10.0.2.3, and nothing else answers.
    let (st, out) = g.run("ping -c 2 10.0.2.2", CMD_TIMEOUT).unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(
        out.starts_with("PING 10.0.2.2 (10.0.2.2): 56 data bytes\n64 bytes from 10.0.2.2: seq=0 "),
        "{out}"
    );
    assert!(
        out.contains("2 packets transmitted, 2 packets received, 0% packet loss\n"),
        "{out}"
    );
    let (st, out) = g.run("ping -c 1 -W 1 10.0.2.99", CMD_TIMEOUT).unwrap();
    assert_ne!(st, 0, "{out}");
    assert!(
        out.contains("1 packets transmitted, 0 packets received, 100% packet loss"),
        "{out}"
    );

    // A TCP listener (busybox nc listens on ::, dual-stack), as netstat
    // reads it from /proc/net/tcp6.
    let (st, out) = g
        .run(
            "(sleep 20 | nc -l -p 9000 &); sleep 1; netstat -ltn",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains(
            "tcp        0      0 :::9000                 :::*                    LISTEN      \n"
        ),
        "{out}"
    );
}
