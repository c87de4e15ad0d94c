//! Overcommit end to end: the real `umlrun` on a pty, a guest program
//! (tests/guest/memhog.c, built here and handed to the guest on a data
//! disk) that allocates past what the instance may hold.
//!
//! - Past `mem=`: the guest's OOM killer kills the program (never init),
//!   the kernel log line names it (console and `dmesg`), the instance
//!   lives, a file written before survives, root logs in again and
//!   `poweroff` ends umlrun with 0.
//!
//! Every instance is stopped by pid when a test fails (the harness's Drop).

mod support;
mod support_many;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support_many::{tool, Fleet, Instance, Runner, State, LOGIN_PROMPT};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// A program that touches a few hundred MB under pressure.
const HOG_TIMEOUT: Duration = Duration::from_secs(240);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

fn backing() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

/// An ext2 image holding /memhog (gcc -static of tests/guest/memhog.c).
fn hog_disk(dir: &Path) -> PathBuf {
    let tree = dir.join("hogtree");
    std::fs::create_dir_all(&tree).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest/memhog.c");
    let st = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
        .arg(tree.join("memhog"))
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed on {}", src.display());
    let img = dir.join("hog.img");
    let out = Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "mke2fs: {out:?}");
    img
}

/// One logged-in instance with `mem`, the hog disk as ubd1 mounted at
/// /mnt, and `extra` switches.
fn boot(mem: &str, extra: &[String]) -> Fleet {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), mem).unwrap();
    let img = hog_disk(fleet.dir());
    let mut args = vec![format!("ubd1={}", img.display())];
    args.extend_from_slice(extra);
    fleet.extra_args = args;
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "mount -o ro /dev/ubdb /mnt");
    fleet
}

fn ok(g: &mut Instance, cmd: &str) -> String {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(status, 0, "`{cmd}` exited {status}; output:\n{out}");
    out
}

fn same(g: &mut Instance, cmd: &str, want: &str) {
    let out = ok(g, cmd);
    assert_eq!(out.trim_end(), want, "`{cmd}` printed:\n{out}");
}

/// Logs out and in again (a fresh getty and login), then `poweroff`:
/// umlrun must end with 0 and no panic.
fn relogin_and_poweroff(g: &mut Instance) {
    let at = g.mark();
    g.send("exit\n").unwrap();
    g.expect(LOGIN_PROMPT, at, BOOT_TIMEOUT).unwrap();
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    same(g, "id -u", "0");
    g.send("poweroff\n").unwrap();
    match g.wait_exited(EXIT_TIMEOUT) {
        Some(st) => assert_eq!(st.code(), Some(0), "umlrun ended {st}\n{}", g.tail(20)),
        None => panic!("umlrun still runs after poweroff\n{}", g.tail(20)),
    }
    let all = String::from_utf8_lossy(&g.transcript()).into_owned();
    assert!(
        !all.contains("panicked"),
        "umlrun panicked:\n{}",
        g.tail(30)
    );
}

/// The hog, run in the background of the shell with its status saved, so
/// the OOM kill's console line cannot interleave with the marker.
fn run_hog(g: &mut Instance, mib: u32) -> (i32, String) {
    g.run(
        &format!("/mnt/memhog {mib} > /tmp/hog.out 2>&1; echo status=$? >> /tmp/hog.out; cat /tmp/hog.out"),
        HOG_TIMEOUT,
    )
    .unwrap()
}

#[test]
fn a_program_past_mem_is_oom_killed_and_the_instance_lives() {
    let mut fleet = boot("64M", &[]);
    let g = &mut fleet.instances[0];
    ok(g, "echo written-before > /root/keep.txt && sync");
    let at = g.mark();
    let (_, out) = run_hog(g, 100);
    assert!(out.contains("status=137"), "memhog was not killed:\n{out}");
    let console = String::from_utf8_lossy(&g.transcript()[at..]).replace('\r', "");
    assert!(
        console.contains("Out of memory: Killed process") && console.contains("(memhog)"),
        "no kernel line naming the victim on the console:\n{console}"
    );
    let log = ok(g, "dmesg");
    assert!(
        log.contains("invoked oom-killer") && log.contains("(memhog) total-vm:"),
        "dmesg:\n{log}"
    );
    // Init and the shell are alive; the memory came back.
    same(g, "cat /root/keep.txt", "written-before");
    same(g, "kill -0 1 && echo init-alive", "init-alive");
    let free = ok(g, "free | awk '/Mem:/ {print $4}'");
    let kb: u64 = free.trim().parse().unwrap_or(0);
    assert!(kb > 40 * 1024, "free after the OOM kill: {kb} kB");
    relogin_and_poweroff(g);
}
