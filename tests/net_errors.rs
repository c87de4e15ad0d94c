//! A guest's connect out through the user-mode NAT fails as Linux's
//! would: ECONNREFUSED from a host port nobody listens on, ETIMEDOUT
//! (after TCP_SYNCNT's SYN retries, 3 s for 1) from a host listener that
//! drops SYNs (its backlog is full), blocking and non-blocking. The
//! guest program (tests/guest/t_net_errors.c) runs natively against
//! 127.0.0.1 first, and the guest's lines must equal Linux's. The guest
//! learns the ports through a port forward. Only host loopback traffic.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use support::tools::free_tcp_port as free_port;
use support::*;

#[test]
fn connect_errors_through_the_nat_match_linux() {
    // A listener whose accept queue (backlog 0: one connection) is full:
    // Linux drops the SYNs that come next.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: listen(2) on a socket the listener owns; only the backlog changes.
    let r = unsafe { libc::listen(silent.as_raw_fd(), 0) };
    assert_eq!(r, 0);
    let silent_port = silent.local_addr().unwrap().port();
    let _filler = TcpStream::connect(("127.0.0.1", silent_port)).expect("fill the queue");
    let refused_port = free_port();
    let args = [
        "127.0.0.1".to_string(),
        refused_port.to_string(),
        silent_port.to_string(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let native = run_native(&native_bin("t_net_errors"), &argv, Duration::from_secs(60));
    assert_eq!(native.expect_finished("t_net_errors (native)"), 0);
    assert!(native.stdout.ends_with("done\n"), "{}", native.stdout);

    let port = free_port();
    let opts = GuestOptions {
        extra: vec![format!("eth0=user,hostfwd=tcp:127.0.0.1:{port}-:8080")],
        ..GuestOptions::default()
    };
    let image = tests_image();
    let guest = std::thread::spawn(move || run_guest_with(&image, "/tests/t_net_errors", &opts));
    // The first connections may come before the guest listens: reset,
    // no bytes; try again.
    let until = Instant::now() + Duration::from_secs(90);
    let report = loop {
        assert!(Instant::now() < until, "the guest never answered");
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        if s.write_all(format!("{refused_port} {silent_port}\n").as_bytes())
            .is_err()
        {
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
    assert_eq!(run.expect_finished("t_net_errors"), 0, "{}", run.tail(20));
    assert_eq!(
        report, native.stdout,
        "guest (left) and Linux (right) differ"
    );
    assert_eq!(run.stdout, format!("listening\n{}", native.stdout));
}
