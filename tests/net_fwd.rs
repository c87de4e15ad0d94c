//! The user-mode NAT's port forward end to end: a guest server on eth0
//! (tests/guest/t_fwd_server.c) is reached from the host through
//! `eth0=user,hostfwd=tcp:127.0.0.1:<port>-:8080`; a 256 KiB HTTP answer
//! and a 3 MiB upload with a half-close cross it intact. Only host
//! loopback traffic.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::*;

/// A host port free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Connects, retrying while the guest boots.
fn connect(port: u16) -> TcpStream {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < until => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot reach the forward: {e}"),
        }
    }
}

/// How long a forwarded connection may stay silent: the guest answers
/// in milliseconds; a connection that gets neither bytes nor an end in
/// this long has stalled (a lost wake-up), and the test says so rather
/// than retrying into the guest's next connection.
const STALL: Duration = Duration::from_secs(20);

/// Reads until the other side closes (a reset ends it too: what came
/// before it is returned); fails the test if the connection stalls.
fn read_all(s: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut v = Vec::new();
    s.set_read_timeout(Some(STALL)).expect("timeout");
    match s.read_to_end(&mut v) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
            "{what}: the forwarded connection stalled: no end after {STALL:?} ({} bytes came)",
            v.len()
        ),
        _ => v,
    }
}

#[test]
fn guest_server_reached_through_hostfwd() {
    let port = free_port();
    let image = tests_image();
    let opts = GuestOptions {
        extra: vec![format!("eth0=user,hostfwd=tcp:127.0.0.1:{port}-:8080")],
        ..GuestOptions::default()
    };
    let guest = std::thread::spawn(move || run_guest_with(&image, "/tests/t_fwd_server", &opts));

    // 1: HTTP GET, a 4 MiB answer (one guest write that sleeps on a
    // full send buffer and is woken as room frees). The first connections may come
    // before the guest listens: the guest resets them at once (no bytes,
    // an end) and we try again. One the guest took is answered; one that
    // stalls fails here (retrying would hand it the upload's turn).
    let body = loop {
        let mut s = connect(port);
        if s.write_all(b"GET / HTTP/1.0\r\nHost: guest\r\n\r\n")
            .is_err()
        {
            continue;
        }
        let got = read_all(&mut s, "the GET");
        if !got.is_empty() {
            break got;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(64)]).to_string();
    assert!(
        text.starts_with("HTTP/1.0 200 OK\r\nContent-Length: 4194304\r\n\r\n"),
        "{text}"
    );
    let payload = &body[body.iter().position(|&b| b == b'a').expect("body")..];
    assert_eq!(payload.len(), 4 << 20);
    assert!(payload
        .iter()
        .enumerate()
        .all(|(i, &b)| b == b'a' + (i % 26) as u8));

    // 2: a 3 MiB upload, half-closed, answered with count and checksum.
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut s = connect(port);
    let writer = {
        let mut w = s.try_clone().expect("clone");
        let data = data.clone();
        std::thread::spawn(move || {
            w.write_all(&data).expect("upload");
            w.shutdown(Shutdown::Write).expect("half-close");
        })
    };
    let answer = String::from_utf8(read_all(&mut s, "the upload")).expect("utf8");
    writer.join().expect("writer");
    let sum = data
        .iter()
        .fold(0u64, |acc, &b| acc.wrapping_mul(31).wrapping_add(b as u64));
    assert_eq!(answer, format!("got {} sum {sum}\n", data.len()));

    let run = guest.join().expect("guest thread");
    let st = run.expect_finished("t_fwd_server");
    assert_eq!(st, 0, "{}", run.tail(20));
    assert!(
        run.stdout.contains("request from 10.0.2.2: GET / HTTP/1.0"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("served 2"), "{}", run.stdout);
}

/// A forward to a host port already taken is a one-line error at start.
#[test]
fn hostfwd_to_a_busy_port_fails_at_start() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let opts = GuestOptions {
        extra: vec![format!("eth0=user,hostfwd=tcp:127.0.0.1:{port}-:80")],
        timeout: Duration::from_secs(30),
        ..GuestOptions::default()
    };
    let run = run_guest_with(&tests_image(), "/tests/t_fwd_server", &opts);
    let st = run.expect_finished("umlrun with a busy hostfwd port");
    assert_ne!(st, 0);
    assert!(
        run.stderr
            .contains(&format!("hostfwd=tcp:127.0.0.1:{port}-:80")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("listening"),
        "the guest must not start"
    );
}
