//! `eth0=tuntap,<tap>` end to end, in a network namespace this test
//! makes: a tap device there with 10.9.0.1/24 on the host side, umlrun
//! started inside the namespace on it, the guest configured by
//! `ifconfig` to 10.9.0.2/24. ARP resolves both ways, pings go both ways
//! (the guest's busybox ping, the host's ping), and TCP both ways: the
//! guest's wget fetches 2 MiB from a server on the host side, and the
//! host side fetches a 1 MiB file from busybox httpd in the guest, each
//! checked by md5, at MTU 1500, at 65520 on both sides (`ip link` on the
//! tap, ifconfig in the guest) and at 1500 in the guest only; no rx drop. The namespace (and the tap with it) is deleted by
//! name on every path. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and
//! /dev/net/tun: without them it says why and passes without running.

mod support_many;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support_many::tools::md5_hex as md5;
use support_many::{Fleet, Runner, RunnerKind};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// The namespace, deleted (with its tap) when dropped.
struct Netns {
    name: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A namespace with tap `tap` in it, 10.9.0.1/24 on its host side; Err
/// says why this host cannot make one.
fn make_netns(ns: &str, tap: &str) -> Result<Netns, String> {
    if !Path::new("/dev/net/tun").exists() {
        return Err("no /dev/net/tun".into());
    }
    let _ = ip(&["netns", "del", ns]);
    ip(&["netns", "add", ns])?;
    let guard = Netns { name: ns.into() };
    ip(&["-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"])?;
    ip(&["-n", ns, "addr", "add", "10.9.0.1/24", "dev", tap])?;
    ip(&["-n", ns, "link", "set", tap, "up"])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    Ok(guard)
}

/// Runs `f` on a thread inside namespace `ns` (sockets it makes stay
/// there).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).expect("the namespace's file");
        // SAFETY: setns on an fd we own, for this thread only.
        let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the thread in the namespace")
}

/// The internet checksum.
fn csum(d: &[u8]) -> u16 {
    let mut s: u32 = d
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// One echo request to `to` from a raw ICMP socket (root's); true if its
/// reply came within 5 s.
fn ping_once(to: [u8; 4], seq: u16) -> bool {
    // SAFETY: plain socket calls on an fd this function owns and closes;
    // the buffers outlive each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let id = (std::process::id() & 0xffff) as u16;
        let mut req = vec![8u8, 0, 0, 0];
        req.extend_from_slice(&id.to_be_bytes());
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend_from_slice(b"umlrun tap ping");
        let c = csum(&req);
        req[2..4].copy_from_slice(&c.to_be_bytes());
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as u16;
        sa.sin_addr.s_addr = u32::from_ne_bytes(to);
        let sent = libc::sendto(
            fd,
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        let mut ok = false;
        if sent == req.len() as isize {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let mut buf = [0u8; 1500];
            while !ok && std::time::Instant::now() < deadline {
                let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
                if n < 28 {
                    break;
                }
                let ihl = usize::from(buf[0] & 0xf) * 4;
                let icmp = &buf[ihl..n as usize];
                ok = buf[12..16] == to
                    && icmp.len() >= 8
                    && icmp[0] == 0
                    && icmp[4..6] == id.to_be_bytes()
                    && icmp[6..8] == seq.to_be_bytes()
                    && csum(icmp) == 0;
            }
        }
        libc::close(fd);
        ok
    }
}

/// A script that starts umlrun inside `ns` (`ip netns exec` execs it,
/// so the pid the harness holds is umlrun's).
fn wrapper(dir: &Path, ns: &str) -> PathBuf {
    let p = dir.join("umlrun-in-ns");
    let umlrun = env!("CARGO_BIN_EXE_umlrun");
    std::fs::write(
        &p,
        format!("#!/bin/sh\nexec ip netns exec {ns} {umlrun} \"$@\"\n"),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&p).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&p, perm).unwrap();
    p
}

/// TCP both ways on the tap: the guest's wget fetches 2 MiB from a
/// server on the host side, and the host side fetches a 1 MiB file from
/// busybox httpd in the guest (started on the first call), each checked
/// by md5.
fn tcp_both_ways(ns: &str, sh: &mut impl FnMut(&str) -> (i32, String)) {
    let body: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let want = md5(&body);
    let server = in_ns(ns, || {
        TcpListener::bind("10.9.0.1:0").expect("bind in the namespace")
    });
    let port = server.local_addr().unwrap().port();
    let serve = support_many::serve_http_once(server, body);
    let (st, out) = sh(&format!(
        "wget -q -O - http://10.9.0.1:{port}/blob | md5sum"
    ));
    assert_eq!(st, 0, "{out}");
    assert!(out.starts_with(&want), "guest got {out}, sent {want}");
    assert!(serve.join().unwrap().starts_with("GET /blob HTTP/1."));

    let (st, out) = sh(
        "[ -f /tmp/www/f ] || { mkdir -p /tmp/www && dd if=/dev/urandom of=/tmp/www/f bs=64k \
         count=16 2>/dev/null && httpd -p 80 -h /tmp/www; } && md5sum /tmp/www/f",
    );
    assert_eq!(st, 0, "{out}");
    let guest_sum = out.split_whitespace().next().unwrap_or("").to_string();
    let got = in_ns(ns, || {
        let mut s = TcpStream::connect("10.9.0.2:80").expect("connect to the guest");
        s.set_read_timeout(Some(CMD_TIMEOUT)).unwrap();
        s.write_all(b"GET /f HTTP/1.0\r\n\r\n").unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).expect("the answer");
        v
    });
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    assert!(got.starts_with(b"HTTP/1.1 200 OK"), "{:?}", &got[..split]);
    let file = &got[split + 4..];
    assert_eq!(file.len(), 1 << 20);
    assert_eq!(md5(file), guest_sum);
}

#[test]
fn tuntap_ping_and_tcp_both_ways() {
    let id = std::process::id() % 100_000;
    let (ns, tap) = (format!("umlrun-tap-{id}"), format!("umlt{id}"));
    let _ns = match make_netns(&ns, &tap) {
        Ok(g) => g,
        Err(why) => {
            eprintln!("SKIPPED: this host cannot make a namespace with a tap: {why}");
            return;
        }
    };
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    let scratch = tempfile::tempdir().unwrap();
    let runner = Runner {
        kind: RunnerKind::Umlrun {
            mode: "mmap".into(),
        },
        binary: wrapper(scratch.path(), &ns),
    };
    let mut fleet = Fleet::one_logged_in(
        runner,
        &image,
        "64M",
        &[format!("eth0=tuntap,{tap}")],
        BOOT_TIMEOUT,
        CMD_TIMEOUT,
    );
    let g = &mut fleet.instances[0];
    let mut sh = |cmd: &str| g.sh(cmd, CMD_TIMEOUT);

    let (st, out) = sh("ip link show eth0");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("link/ether 52:54:00:12:34:56"), "{out}");
    let (st, out) = sh("ifconfig eth0 10.9.0.2 netmask 255.255.255.0 up && ip route");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("10.9.0.0/24 dev eth0"), "{out}");

    // Pings: the guest's (busybox ping as root: a raw ICMP socket), and
    // the host side's, answered by the guest's stack.
    let (st, out) = sh("ping -c 3 -W 5 10.9.0.1");
    if st != 0 {
        sh("cat /proc/net/dev");
        let host = Command::new("ip")
            .args(["-n", &ns, "-s", "link", "show", &tap])
            .output()
            .unwrap();
        eprintln!("host side: {}", String::from_utf8_lossy(&host.stdout));
    }
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("3 packets received"), "{out}");
    // (The host has no ping: a raw ICMP socket in the namespace.)
    let replies = in_ns(&ns, || {
        (1..=3u16)
            .filter(|&seq| ping_once([10, 9, 0, 2], seq))
            .count()
    });
    assert_eq!(replies, 3, "the host side's echo requests answered");
    // The host side learnt the guest's MAC by ARP.
    let neigh = Command::new("ip")
        .args(["-n", &ns, "neigh", "show", "10.9.0.2"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&neigh.stdout).contains("52:54:00:12:34:56"),
        "{}",
        String::from_utf8_lossy(&neigh.stdout)
    );

    tcp_both_ways(&ns, &mut sh);

    // MTU 65520 on both sides (the host tap's by `ip link`, the guest's
    // by ifconfig, up to a tap's 65521): the same TCP both ways, whole.
    ip(&["-n", &ns, "link", "set", &tap, "mtu", "65520"]).unwrap();
    let (st, out) = sh("ifconfig eth0 mtu 65522");
    assert_ne!(st, 0);
    assert!(out.contains("SIOCSIFMTU: Invalid argument"), "{out}");
    let (st, out) = sh("ifconfig eth0 mtu 65520 && ip link show eth0");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("mtu 65520"), "{out}");
    tcp_both_ways(&ns, &mut sh);
    // And back to 1500 on the guest only: the host side's 65480-byte
    // MSS is lowered to 1460 on the way in, or the guest's segments
    // would not fit its link.
    let (st, out) = sh("ifconfig eth0 mtu 1500");
    assert_eq!(st, 0, "{out}");
    tcp_both_ways(&ns, &mut sh);

    // The counters saw it: frames both ways, nothing malformed.
    let (st, out) = sh("cat /proc/net/dev | grep eth0");
    assert_eq!(st, 0, "{out}");
    let f = support_many::net_dev_counters(&out, "eth0");
    assert!(f[0] > 6 << 20 && f[8] > 3 << 20, "{out}");
    // No drops: the host's frames before eth0 was up (its IPv6
    // autoconfiguration as the tap came up) are not counted, as a down
    // Linux NIC receives nothing.
    assert_eq!((f[2], f[3]), (0, 0), "rx errs, drop: {out}");
}
