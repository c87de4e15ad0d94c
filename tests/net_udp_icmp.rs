//! ICMP errors back to a guest's UDP sender through the user-mode NAT:
//! a connected UDP socket sending to a host port nobody listens on gets
//! ECONNREFUSED once (recv, the send after, SO_ERROR, POLLERR), as on
//! Linux. The NAT's host socket hears the host's ICMP port unreachable
//! (IP_RECVERR) and hands it to the guest as an ICMP error from the
//! destination. tests/guest/t_udprefused.c runs natively against
//! 127.0.0.1 first; the guest's lines (against 10.0.2.2) must equal
//! Linux's. The guest learns the port through a port forward. Only host
//! loopback traffic.

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::tools::free_tcp_port;
use support::*;

#[test]
fn port_unreachable_through_the_nat_matches_linux() {
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().unwrap().port()
    };
    let port_arg = closed.to_string();
    let native = run_native(
        &native_bin("t_udprefused"),
        &["127.0.0.1", &port_arg],
        Duration::from_secs(60),
    );
    assert_eq!(
        native.expect_finished("t_udprefused (native)"),
        0,
        "{}",
        native.stdout
    );
    assert!(native.stdout.ends_with("done\n"), "{}", native.stdout);

    let fwd = free_tcp_port();
    let opts = GuestOptions {
        extra: vec![format!("eth0=user,hostfwd=tcp:127.0.0.1:{fwd}-:8080")],
        ..GuestOptions::default()
    };
    let image = tests_image();
    let guest = std::thread::spawn(move || run_guest_with(&image, "/tests/t_udprefused", &opts));
    let until = Instant::now() + Duration::from_secs(90);
    let report = loop {
        assert!(Instant::now() < until, "the guest never answered");
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", fwd)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        if s.write_all(format!("{closed}\n").as_bytes()).is_err() {
            continue;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        if !out.is_empty() {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = guest.join().expect("guest thread");
    assert_eq!(run.expect_finished("t_udprefused"), 0, "{}", run.tail(20));
    assert_eq!(
        report, native.stdout,
        "guest (left) and Linux (right) differ"
    );
}
