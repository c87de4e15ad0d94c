//! `eth0=daemon,<mac>,unix,<ctl>` end to end: Debian's `uml_switch`
//! (uml-utilities) started on a control socket in a temp dir, guests
//! plugged into it with different MACs, configured by `ifconfig` on
//! 10.20.0.0/24. ARP resolves, pings go both ways, and a 20 MiB file
//! moves over TCP each way (busybox httpd on one side, wget on the
//! other) with equal md5. Two umlrun guests; then a umlrun guest and a
//! Debian `linux.uml` guest on the same busybox image. Without
//! `uml_switch` (or, for the second test, `linux.uml`) a test says why
//! and passes without running. The switch is ended by its pid and its
//! temp dir removed on every path; the guests are stopped by the
//! harness (by pid).

mod support_many;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support_many::{Fleet, Instance, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
const MOVE_TIMEOUT: Duration = Duration::from_secs(180);

/// A uml_switch on `<dir>/ctl`, killed (by pid) and its dir removed when
/// dropped.
struct Switch {
    child: Child,
    dir: tempfile::TempDir,
}

impl Switch {
    fn start() -> Option<Switch> {
        let dir = tempfile::tempdir().unwrap();
        let ctl = dir.path().join("ctl");
        let child = Command::new("uml_switch")
            .arg("-unix")
            .arg(&ctl)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let sw = Switch { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ctl.exists() {
            assert!(
                Instant::now() < deadline,
                "uml_switch made no control socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sw)
    }

    fn ctl(&self) -> PathBuf {
        self.dir.path().join("ctl")
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn image() -> PathBuf {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(image.is_file(), "run disk-images/build first");
    image
}

/// One guest of `runner` on the switch with `mac`, booted and logged in.
fn boot(runner: Runner, mem: &str, sw: &Switch, mac: &str) -> Fleet {
    let mut fleet = Fleet::new(runner, &image(), mem).unwrap();
    fleet
        .extra_args
        .push(format!("eth0=daemon,{mac},unix,{}", sw.ctl().display()));
    fleet.start(1).unwrap();
    fleet
}

fn up(f: &mut Fleet, ip: &str, mac: &str) {
    let g = &mut f.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    let (st, out) = g.sh(
        &format!("ifconfig eth0 {ip} netmask 255.255.255.0 up && ifconfig eth0"),
        CMD_TIMEOUT,
    );
    assert_eq!(st, 0, "{out}");
    assert!(out.to_lowercase().contains(mac), "{out}");
}

/// Pings both ways, then 20 MiB each way over TCP with equal md5.
fn exchange(a: &mut Instance, a_ip: &str, b: &mut Instance, b_ip: &str) {
    for (g, to) in [(&mut *a, b_ip), (&mut *b, a_ip)] {
        let (st, out) = g.sh(&format!("ping -c 3 -W 5 {to}"), CMD_TIMEOUT);
        if st != 0 {
            g.sh("cat /proc/net/dev", CMD_TIMEOUT);
        }
        assert_eq!(st, 0, "{out}");
        assert!(out.contains("3 packets received"), "{out}");
    }
    move_file(a, a_ip, b);
    move_file(b, b_ip, a);
}

/// 20 MiB from busybox httpd on `server` to wget on `client`, by md5.
fn move_file(server: &mut Instance, server_ip: &str, client: &mut Instance) {
    {
        let (st, out) = server.sh(
            "mkdir -p /tmp/www && dd if=/dev/urandom of=/tmp/www/f bs=1M count=20 2>/dev/null \
             && (httpd -p 80 -h /tmp/www || true) && md5sum /tmp/www/f",
            CMD_TIMEOUT,
        );
        assert_eq!(st, 0, "{out}");
        let want = out.split_whitespace().next().unwrap_or("").to_string();
        assert_eq!(want.len(), 32, "{out}");
        let started = Instant::now();
        let (st, out) = client.sh(
            &format!("wget -q -O - http://{server_ip}/f | md5sum"),
            MOVE_TIMEOUT,
        );
        eprintln!("20 MiB {server_ip} -> client in {:.2?}", started.elapsed());
        assert_eq!(st, 0, "{out}");
        assert!(out.starts_with(&want), "got {out}, sent {want}");
        let (st, out) = server.sh("rm -f /tmp/www/f", CMD_TIMEOUT);
        assert_eq!(st, 0, "{out}");
    }
}

/// Nothing went over 1514 bytes (the switch would cut it) and nothing
/// arrived malformed: umlrun's eth0 counters.
fn counters_clean(g: &mut Instance) {
    let (st, out) = g.sh("grep eth0 /proc/net/dev", CMD_TIMEOUT);
    assert_eq!(st, 0, "{out}");
    let f = support_many::net_dev_counters(&out, "eth0");
    // rx bytes, tx bytes: both ways moved 20 MiB; no frame dropped (a
    // switch with no room makes the sender wait, none oversized) and
    // none refused on receipt.
    assert!(f[0] > 20 << 20 && f[8] > 20 << 20, "{out}");
    assert_eq!(
        (f[2], f[3], f[10], f[11]),
        (0, 0, 0, 0),
        "errs/drops: {out}"
    );
}

#[test]
fn two_umlrun_guests_on_uml_switch() {
    if !have("uml_switch") {
        eprintln!("SKIPPED: no uml_switch (scripts install uml-utilities)");
        return;
    }
    let sw = Switch::start().expect("start uml_switch");
    let (mac_a, mac_b) = ("52:54:00:20:00:01", "52:54:00:20:00:02");
    let mut fa = boot(Runner::umlrun("mmap"), "128M", &sw, mac_a);
    let mut fb = boot(Runner::umlrun("mmap"), "128M", &sw, mac_b);
    up(&mut fa, "10.20.0.1", mac_a);
    up(&mut fb, "10.20.0.2", mac_b);
    exchange(
        &mut fa.instances[0],
        "10.20.0.1",
        &mut fb.instances[0],
        "10.20.0.2",
    );
    counters_clean(&mut fa.instances[0]);
    counters_clean(&mut fb.instances[0]);
    assert!(fa.stop_all().is_empty() && fb.stop_all().is_empty());
}

#[test]
fn umlrun_and_linux_uml_on_uml_switch() {
    if !have("uml_switch") || !have("linux.uml") || !have("uml_mkcow") {
        eprintln!("SKIPPED: no uml_switch, linux.uml or uml_mkcow (scripts install them)");
        return;
    }
    let sw = Switch::start().expect("start uml_switch");
    let (mac_a, mac_b) = ("52:54:00:20:00:11", "52:54:00:20:00:12");
    let mut fa = boot(Runner::umlrun("mmap"), "128M", &sw, mac_a);
    let mut fb = boot(Runner::uml(), "128M", &sw, mac_b);
    up(&mut fa, "10.20.0.11", mac_a);
    up(&mut fb, "10.20.0.12", mac_b);
    exchange(
        &mut fa.instances[0],
        "10.20.0.11",
        &mut fb.instances[0],
        "10.20.0.12",
    );
    counters_clean(&mut fa.instances[0]);
    fa.stop_all();
    fb.stop_all();
}

/// `uml_mconsole <socket> <cmd>` to the first guest of `fleet`: (OK?,
/// the answer's text).
fn mconsole(fleet: &Fleet, cmd: &str) -> (bool, String) {
    let sock = fleet
        .uml_dir()
        .join(&fleet.instances[0].umid)
        .join("mconsole");
    let out = Command::new(support_many::tool("uml_mconsole"))
        .arg(sock)
        .args(cmd.split(' '))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    eprintln!("mconsole {cmd}: {text}");
    match (text.strip_prefix("OK"), text.strip_prefix("ERR")) {
        (Some(t), _) => (true, t.trim().to_string()),
        (_, Some(t)) => (false, t.trim().to_string()),
        _ => panic!("uml_mconsole {cmd}: no OK/ERR answer: {text:?}"),
    }
}

#[test]
fn hot_add_a_switch_port_through_the_mconsole() {
    if !have("uml_switch") || !have("uml_mconsole") {
        eprintln!("SKIPPED: no uml_switch or uml_mconsole (scripts install uml-utilities)");
        return;
    }
    let sw = Switch::start().expect("start uml_switch");
    let (mac_a, mac_b) = ("52:54:00:20:00:21", "52:54:00:20:00:22");
    let mut fa = boot(Runner::umlrun("mmap"), "64M", &sw, mac_a);
    // B starts with no network at all.
    let mut fb = Fleet::new(Runner::umlrun("mmap"), &image(), "64M").unwrap();
    fb.start(1).unwrap();
    up(&mut fa, "10.20.0.21", mac_a);
    let b = &mut fb.instances[0];
    b.wait_login(BOOT_TIMEOUT).unwrap();
    b.login(CMD_TIMEOUT).unwrap();
    let (st, out) = b.sh("ip link show eth1", CMD_TIMEOUT);
    assert_ne!(st, 0, "{out}");

    let spec = format!("daemon,{mac_b},unix,{}", sw.ctl().display());
    let (ok, t) = mconsole(&fb, &format!("config eth1={spec}"));
    assert!(ok, "{t}");
    assert_eq!(mconsole(&fb, "config eth1"), (true, spec.clone()));
    // Taken already; a switch that is not there; a transport that is not
    // one: each a clear error, and nothing of them is left behind.
    let (ok, t) = mconsole(&fb, &format!("config eth1={spec}"));
    assert!(!ok && t.contains("already configured"), "{t}");
    let nowhere = sw.dir.path().join("nowhere.ctl");
    let (ok, t) = mconsole(
        &fb,
        &format!("config eth2=daemon,,unix,{}", nowhere.display()),
    );
    assert!(!ok && t.contains("No such file"), "{t}");
    let (ok, t) = mconsole(&fb, "config eth3=carrier-pigeon");
    assert!(!ok && t.contains("unknown transport"), "{t}");
    assert_eq!(mconsole(&fb, "config eth2"), (true, String::new()));
    let (ok, t) = mconsole(&fb, "remove eth1");
    assert!(!ok, "{t}");

    let b = &mut fb.instances[0];
    let (st, out) = b.sh("ip link", CMD_TIMEOUT);
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("eth1") && out.contains(mac_b), "{out}");
    assert!(!out.contains("eth2") && !out.contains("eth3"), "{out}");
    let (st, out) = b.sh(
        "ifconfig eth1 10.20.0.22 netmask 255.255.255.0 up && ping -c 3 -W 5 10.20.0.21",
        CMD_TIMEOUT,
    );
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("3 packets received"), "{out}");
    let a = &mut fa.instances[0];
    let (st, out) = a.sh("ping -c 3 -W 5 10.20.0.22", CMD_TIMEOUT);
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("3 packets received"), "{out}");
    assert!(fa.stop_all().is_empty() && fb.stop_all().is_empty());
}
