//! End to end through the console with busybox's own socket users:
//! `syslogd` binds the datagram socket /dev/log and `logger` sends to it,
//! and the message lands in /var/log/messages. Drives the real binary on
//! a pty like tests/console.rs; every instance is stopped by pid when a
//! test fails (the harness's Drop).

mod support;
mod support_many;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support_many::{Fleet, Instance, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

fn backing() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

fn ok(g: &mut Instance, cmd: &str) -> String {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(status, 0, "`{cmd}` exited {status}; output:\n{out}");
    out
}

#[test]
fn syslogd_and_logger_over_dev_log() {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "mkdir -p /var/log && syslogd -O /var/log/messages");
    let sock = ok(
        g,
        "i=0; while [ ! -S /dev/log ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done; ls -l /dev/log",
    );
    assert!(
        sock.trim_start().starts_with('s'),
        "/dev/log is no socket:\n{sock}"
    );
    ok(
        g,
        "logger -t evtest hello-from-logger-1 && logger -t evtest -p user.err second-message",
    );
    let out = ok(
        g,
        "i=0; until grep -q second-message /var/log/messages || [ $i -ge 50 ]; do usleep 100000; i=$((i+1)); done; grep evtest /var/log/messages",
    );
    assert!(
        out.contains("evtest: hello-from-logger-1") && out.contains("evtest: second-message"),
        "/var/log/messages lacks the messages:\n{out}"
    );
    assert!(out.contains("user.err"), "priority not logged:\n{out}");
    let unix = ok(g, "cat /proc/net/unix");
    assert!(
        unix.lines()
            .any(|l| l.contains(" 0002 01 ") && l.ends_with("/dev/log")),
        "/proc/net/unix does not list syslogd's datagram socket:\n{unix}"
    );
    ok(g, "killall syslogd");
}
