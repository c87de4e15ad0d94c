//! Commands in one logged-in [`Instance`], checked: the helpers every
//! fleet test wrote for itself (`ok`, `same`, `fails`), the busybox image,
//! booting one logged-in instance, and the no-panic check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Fleet, Instance, Runner};

/// How long booting to the login prompt may take.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one shell command may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// disk-images/busybox.img, which must have been built.
pub fn busybox_image() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

/// One instance of `runner` over a fresh COW of busybox.img with `mem`
/// and `extra` switches, booted and logged in as root. The Fleet owns the
/// temp dir and stops the instance on drop.
pub fn boot_one(runner: Runner, mem: &str, extra: Vec<String>) -> Fleet {
    let mut fleet = Fleet::new(runner, &busybox_image(), mem).unwrap();
    fleet.extra_args = extra;
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    fleet
}

/// Runs `cmd`, expects exit status 0, returns its output.
pub fn ok(g: &mut Instance, cmd: &str) -> String {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(status, 0, "`{cmd}` exited {status}; output:\n{out}");
    out
}

/// Runs `cmd` and expects exactly `want` as its output (after trimming
/// the trailing newline).
pub fn same(g: &mut Instance, cmd: &str, want: &str) {
    let out = ok(g, cmd);
    assert_eq!(out.trim_end(), want, "`{cmd}` printed:\n{out}");
}

/// Runs `cmd`, expects it to fail with `why` in its output.
pub fn fails(g: &mut Instance, cmd: &str, why: &str) {
    let (status, out) = g.run(&format!("{cmd} 2>&1"), CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "`{cmd}` succeeded; output:\n{out}");
    assert!(out.contains(why), "`{cmd}` failed without {why:?}:\n{out}");
}

/// No Rust panic message on the console (umlrun's stderr is the pty too).
pub fn assert_no_panic(g: &Instance) {
    let all = String::from_utf8_lossy(&g.transcript()).replace('\r', "");
    assert!(
        !all.contains("panicked"),
        "umlrun panicked:\n{}",
        g.tail(30)
    );
}
