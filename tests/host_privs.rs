//! Least privilege for umlrun itself (issue 10): its own seccomp filter
//! (`host_seccomp=`) on both platforms under a console-test workload, and
//! `uid=`/`gid=` (root drops to an unprivileged user; anyone else gets a
//! one-line error).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// What the console tests do, as one shell session: files, pipes,
/// directories, a 3.2 MB write and checksum, sync, /proc, fork+exec.
const WORKLOAD: &str = "\
sleep 1
ls / | wc -l
cat /etc/passwd | wc -l
echo hello > /tmp/x; cat /tmp/x; rm /tmp/x
mkdir -p /tmp/a/b/c; ls -R /tmp/a
sleep 0.2 & wait
dd if=/dev/zero of=/root/big bs=64k count=50 2>/dev/null; md5sum /root/big; sync; rm /root/big
ps >/dev/null; free >/dev/null; df >/dev/null; uname -s
i=0; while [ $i -lt 20 ]; do /bin/true; i=$((i+1)); done; echo loops $i
echo done-workload
poweroff -f
";

fn busybox_image() -> PathBuf {
    let p = repo().join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build",
        p.display()
    );
    p
}

/// `/proc/<pid>/status` fields of interest, one line.
fn status_of(pid: u32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let keep = [
        "Uid:",
        "Gid:",
        "Groups:",
        "CapEff:",
        "CapPrm:",
        "NoNewPrivs:",
        "Seccomp:",
    ];
    Some(
        s.lines()
            .filter(|l| keep.iter().any(|k| l.starts_with(k)))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .split("; ")
        .find_map(|f| f.strip_prefix(name).map(str::trim))
}

struct Booted {
    stdout: String,
    stderr: String,
    status: Option<i32>,
    /// umlrun's status once its filter state settled, and its stubs'.
    umlrun: String,
    stubs: Vec<String>,
}

/// Boots busybox.img (fresh COW) with `init=/bin/sh` reading WORKLOAD,
/// `platform=` and `extra` switches; samples umlrun's and its stubs'
/// /proc status while the workload runs.
fn boot_workload(platform: &str, extra: &[&str], cow_dir_mode: Option<u32>) -> Booted {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let cow = fresh_cow(&busybox_image());
    let dir = cow.dir.path();
    if let Some(mode) = cow_dir_mode {
        use std::os::unix::fs::PermissionsExt;
        // The dropped user must reach its COW file (it was opened before
        // the drop, but the directory is searched for the pid file too).
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let uml = dir.join("uml");
    std::fs::create_dir_all(&uml).unwrap();
    let file = |n: &str| std::fs::File::create(dir.join(n)).expect("output file");
    let mut args = vec![
        "mem=64M".to_string(),
        format!("platform={platform}"),
        format!("ubd0={}", cow.path.display()),
        "init=/bin/sh".to_string(),
        "con0=fd:0,fd:1".to_string(),
        format!("uml_dir={}", uml.display()),
        "umid=privs".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = procs::Reaped::spawn(
        Command::new(umlrun_bin())
            .args(&args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(file("out")))
            .stderr(Stdio::from(file("err")))
            .process_group(0),
    )
    .expect("start umlrun");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(WORKLOAD.as_bytes()).unwrap();
    drop(stdin);
    let pid = child.id();
    let deadline = Instant::now() + timeout();
    let (mut umlrun, mut stubs) = (String::new(), Vec::new());
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st.code().unwrap_or(128 + st.signal().unwrap_or(0)));
        }
        if Instant::now() >= deadline {
            procs::kill_tree(pid as i32, true, Duration::from_secs(10));
            let _ = child.wait();
            break None;
        }
        // Sample until a stub exists (the filter is on before the first).
        if stubs.is_empty() {
            let kids: Vec<u32> =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect();
            if !kids.is_empty() {
                umlrun = status_of(pid).unwrap_or_default();
                stubs = kids.iter().filter_map(|&k| status_of(k)).collect();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
    Booted {
        stdout: read("out"),
        stderr: read("err"),
        status,
        umlrun,
        stubs,
    }
}

fn host_md5_of_zeros(len: usize) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c {len} /dev/zero | md5sum"))
        .output()
        .expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn check_workload(b: &Booted, what: &str) {
    assert_eq!(
        b.status,
        Some(0),
        "{what}: exit\n{}\n--- stderr\n{}",
        b.stdout,
        b.stderr
    );
    let md5 = host_md5_of_zeros(64 * 1024 * 50);
    for want in [
        "hello",
        "/tmp/a/b/c:",
        md5.as_str(),
        "Linux",
        "loops 20",
        "done-workload",
    ] {
        assert!(
            b.stdout.contains(want),
            "{what}: no {want:?} in\n{}\n--- stderr\n{}",
            b.stdout,
            b.stderr
        );
    }
    assert!(
        !b.stderr.contains("refused by umlrun's own seccomp filter"),
        "{what}: {}",
        b.stderr
    );
    assert!(!b.stubs.is_empty(), "{what}: no stub seen");
}

fn filtered_workload(platform: &str) {
    let b = boot_workload(platform, &[], None);
    check_workload(&b, platform);
    // Mode 2 (filter) on umlrun, and on every stub (they inherit it).
    assert_eq!(
        field(&b.umlrun, "Seccomp:"),
        Some("2"),
        "umlrun: {}",
        b.umlrun
    );
    assert_eq!(
        field(&b.umlrun, "NoNewPrivs:"),
        Some("1"),
        "umlrun: {}",
        b.umlrun
    );
    for s in &b.stubs {
        assert_eq!(field(s, "Seccomp:"), Some("2"), "stub: {s}");
    }
}

#[test]
fn host_seccomp_filter_runs_the_console_workload_ptrace() {
    filtered_workload("ptrace");
}

#[test]
fn host_seccomp_filter_runs_the_console_workload_seccomp() {
    filtered_workload("seccomp");
}

/// The switch for debugging: umlrun itself runs unfiltered (its ptrace
/// stubs then have their own filter only; seccomp stubs always do).
#[test]
fn host_seccomp_off_leaves_umlrun_unfiltered() {
    let b = boot_workload("ptrace", &["host_seccomp=off"], None);
    check_workload(&b, "host_seccomp=off");
    assert_eq!(
        field(&b.umlrun, "Seccomp:"),
        Some("0"),
        "umlrun: {}",
        b.umlrun
    );
    assert_eq!(
        field(&b.umlrun, "NoNewPrivs:"),
        Some("1"),
        "umlrun: {}",
        b.umlrun
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Started as root with uid=65534 gid=65534: umlrun and every stub run as
/// nobody, with no capability and no supplementary group, and the guest
/// works (its disk was opened before the drop). Not root: the switches
/// are refused with one line before anything starts.
#[test]
fn uid_gid_drop_root_to_nobody() {
    if !is_root() {
        let cow = fresh_cow(&busybox_image());
        let out = Command::new(umlrun_bin())
            .args(["uid=0", "gid=0", "con0=null"])
            .arg(&cow.path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("umlrun: uid=0 gid=0: only root can change user"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        return;
    }
    for platform in ["ptrace", "seccomp"] {
        let b = boot_workload(platform, &["uid=65534", "gid=65534"], Some(0o755));
        check_workload(&b, &format!("uid= on {platform}"));
        for s in std::iter::once(&b.umlrun).chain(&b.stubs) {
            assert_eq!(
                field(s, "Uid:"),
                Some("65534 65534 65534 65534"),
                "{platform}: {s}"
            );
            assert_eq!(
                field(s, "Gid:"),
                Some("65534 65534 65534 65534"),
                "{platform}: {s}"
            );
            assert_eq!(
                field(s, "CapEff:"),
                Some("0000000000000000"),
                "{platform}: {s}"
            );
            assert_eq!(
                field(s, "CapPrm:"),
                Some("0000000000000000"),
                "{platform}: {s}"
            );
        }
        assert_eq!(
            field(&b.umlrun, "Groups:"),
            Some(""),
            "{platform}: {}",
            b.umlrun
        );
    }
}

/// An unprivileged umlrun asked to become another user says so in one
/// line and exits 1 (run as nobody through setpriv when the test is root).
#[test]
fn uid_gid_refused_without_root() {
    let cow = fresh_cow(&busybox_image());
    let bin: &Path = &umlrun_bin();
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(["uid=0", "gid=0", "con0=null"])
        .arg(&cow.path)
        .stdin(Stdio::null())
        .output()
        .expect("run umlrun");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("umlrun: uid=0 gid=0: only root can change user (umlrun runs as uid "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
