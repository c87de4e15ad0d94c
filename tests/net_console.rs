//! Networking end to end on the console of the default busybox image:
//! busybox `httpd` in the guest serves a file that the host fetches
//! through `eth0=user,hostfwd=...`, the guest's own `wget` fetches it
//! over loopback, an `nc` transfer over loopback, and the guest's `wget`
//! out through the NAT to a server on the host (10.0.2.2 = the host's
//! 127.0.0.1), and refused there. Only host loopback traffic. The instance is stopped by
//! pid if a test fails (the harness's Drop).

mod support_many;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use support_many::{Fleet, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// A GET over a fresh host connection; the whole answer.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forward");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: guest\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the answer");
    out
}

#[test]
fn busybox_httpd_served_to_the_host_through_hostfwd() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &image, "64M").unwrap();
    fleet
        .extra_args
        .push(format!("eth0=user,hostfwd=tcp:127.0.0.1:{port}-:80"));
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    let (st, out) = g
        .run(
            "mkdir -p /tmp/www && echo hello from the guest > /tmp/www/index.html \
             && httpd -p 80 -h /tmp/www && echo started",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!((st, out.trim_end()), (0, "started"));
    for _ in 0..3 {
        let answer = http_get(port, "/index.html");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.ends_with("\r\n\r\nhello from the guest\n"),
            "{answer}"
        );
    }
    let missing = http_get(port, "/nope.html");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    // The guest's own client, over lo.
    let (st, out) = g
        .run("wget -q -O - http://127.0.0.1/index.html", CMD_TIMEOUT)
        .unwrap();
    assert_eq!((st, out.trim_end()), (0, "hello from the guest"));
    // An in-guest loopback transfer with nc: 1 MiB, same md5 both ends
    // (the listener's stdin stays open: busybox nc stops at its EOF).
    let (st, out) = g
        .run(
            "dd if=/dev/urandom of=/tmp/blob bs=64k count=16 2>/dev/null; \
             (sleep 5 | nc -l -p 9000 > /tmp/got &) ; sleep 1; nc 127.0.0.1 9000 < /tmp/blob; sleep 1; \
             md5sum < /tmp/blob; md5sum < /tmp/got",
            CMD_TIMEOUT,
        )
        .unwrap();
    let sums: Vec<&str> = out.lines().filter(|l| l.len() >= 32).collect();
    assert_eq!(st, 0, "{out}");
    assert!(sums.len() == 2 && sums[0] == sums[1], "{out}");

    // Out through the NAT: the guest wgets from a server on the host's
    // 127.0.0.1 as 10.0.2.2.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let hport = server.local_addr().unwrap().port();
    let serve = {
        let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        support_many::serve_http_once(server, body)
    };
    let (st, out) = g
        .run(
            &format!("wget -q -O - http://10.0.2.2:{hport}/file | wc -c"),
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!((st, out.trim()), (0, "300000"), "{out}");
    let req = serve.join().unwrap();
    assert!(req.starts_with("GET /file HTTP/1."), "{req}");
    // A host port nobody listens on: refused.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (st, out) = g
        .run(
            &format!("wget -q -O - http://10.0.2.2:{closed}/"),
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_ne!(st, 0, "{out}");
    assert!(out.contains("refused"), "{out}");
}

/// Many short HTTP connections through the forward, the request sent a
/// varying moment after the connection opens (0 to 2 ms): each must be
/// answered. A request that arrived on the host while the guest's read
/// had just found its socket empty used to be pumped in by that very
/// read, whose wake-up then went to nobody: the connection stalled
/// until the host gave up (the CI failure of net_fwd). `UMLRUN_BIN`
/// picks the binary (before/after runs).
#[test]
fn httpd_answers_many_short_connections_without_a_stall() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let mut runner = Runner::umlrun("mmap");
    if let Some(b) = std::env::var_os("UMLRUN_BIN") {
        runner.binary = b.into();
    }
    let mut fleet = Fleet::new(runner, &image, "64M").unwrap();
    fleet
        .extra_args
        .push(format!("eth0=user,hostfwd=tcp:127.0.0.1:{port}-:80"));
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    let (st, out) = g
        .run(
            "mkdir -p /tmp/www && echo short > /tmp/www/i.html \
             && httpd -p 80 -h /tmp/www && echo started",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!((st, out.trim_end()), (0, "started"));
    let n: u32 = std::env::var("NET_SHORT_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let started = std::time::Instant::now();
    let mut seed = 0x2545_f491_u32;
    for i in 0..n {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let delay = Duration::from_micros(u64::from(seed >> 16) % 2000);
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forward");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::thread::sleep(delay);
        s.write_all(b"GET /i.html HTTP/1.0\r\n\r\n").unwrap();
        let mut out = Vec::new();
        if let Err(e) = s.read_to_end(&mut out) {
            panic!(
                "connection {i} of {n} (request {delay:?} after connect) stalled: {e} after {} bytes",
                out.len()
            );
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with("\r\n\r\nshort\n"), "connection {i}: {text}");
    }
    eprintln!("{n} short connections in {:?}", started.elapsed());
}
