//! Shared by integration tests that boot guests: run the real `umlrun` binary
//! (or a native program) with a timeout, a fresh COW file per run, the console
//! output normalized, and a line diff for reports.
//!
//! `mod support;` from a test file. The guest test image and programs come
//! from `scripts/build-guest-tests` (target/guest-tests/).
#![allow(dead_code)]

pub mod cgroup1;
pub mod cgroup2;
pub mod dns;
#[allow(clippy::duplicate_mod)]
pub mod tools;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one run may take unless `UMLRUN_GUEST_TIMEOUT` (seconds) says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The guest memory of `run_guest` (the contract's default).
pub const DEFAULT_MEM: &str = "64M";
/// The environment every guest init gets; native runs get the same.
pub const GUEST_ENV: &[(&str, &str)] = &[
    ("HOME", "/"),
    ("TERM", "linux"),
    ("PATH", "/sbin:/bin:/usr/sbin:/usr/bin"),
];
const BUILD_HINT: &str = "run scripts/build-guest-tests (scripts/test does it before cargo test)";

/// The outcome of one run.
#[derive(Debug)]
pub struct GuestRun {
    /// stdout, console line endings ("\r\n") normalized to "\n".
    pub stdout: String,
    pub stderr: String,
    /// Exit code, or 128+signal if killed; None when the run timed out.
    pub status: Option<i32>,
}

impl GuestRun {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// The last `n` lines of stdout and of stderr, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        format!(
            "--- stdout (last {n} lines)\n{}\n--- stderr (last {n} lines)\n{}",
            last_lines(&self.stdout, n),
            last_lines(&self.stderr, n)
        )
    }

    /// Panics with the tail of the output if the run timed out.
    pub fn expect_finished(&self, what: &str) -> i32 {
        match self.status {
            Some(s) => s,
            None => panic!("{what}: timed out and was killed\n{}", self.tail(30)),
        }
    }
}

/// Options for `run_guest_with`.
#[derive(Clone, Debug)]
pub struct GuestOptions {
    pub mem: String,
    pub timeout: Duration,
    /// More switches, appended after the standard ones.
    pub extra: Vec<String>,
}

impl Default for GuestOptions {
    fn default() -> Self {
        GuestOptions {
            mem: DEFAULT_MEM.to_string(),
            timeout: timeout(),
            extra: Vec::new(),
        }
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/guest-tests, where scripts/build-guest-tests puts its output.
pub fn guest_tests_dir() -> PathBuf {
    repo().join("target/guest-tests")
}

/// The run timeout: `UMLRUN_GUEST_TIMEOUT` seconds, else DEFAULT_TIMEOUT.
pub fn timeout() -> Duration {
    std::env::var("UMLRUN_GUEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The umlrun binary: `UMLRUN_BIN` if set, else the one cargo built for
/// this test run. Panics if it is missing.
pub fn umlrun_bin() -> PathBuf {
    let bin = std::env::var_os("UMLRUN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_umlrun")));
    assert!(
        bin.is_file(),
        "umlrun binary {} is missing: cargo build --release",
        bin.display()
    );
    bin
}

/// The umlcow binary cargo built for this test run.
pub fn umlcow_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_umlcow"))
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The native build of guest program `name` (target/guest-tests/bin/name).
/// Panics if it is missing or older than its source.
pub fn native_bin(name: &str) -> PathBuf {
    let bin = guest_tests_dir().join("bin").join(name);
    let src = repo().join("tests/guest").join(format!("{name}.c"));
    let Some(bin_time) = mtime(&bin) else {
        panic!("{} is missing: {BUILD_HINT}", bin.display());
    };
    for dep in [src, repo().join("tests/guest/t_common.h")] {
        if mtime(&dep).is_some_and(|t| t > bin_time) {
            panic!(
                "{} is older than {}: {BUILD_HINT}",
                bin.display(),
                dep.display()
            );
        }
    }
    bin
}

/// target/guest-tests/tests.img. Panics if it is missing or older than any
/// program built for it.
pub fn tests_image() -> PathBuf {
    let img = guest_tests_dir().join("tests.img");
    let Some(img_time) = mtime(&img) else {
        panic!("{} is missing: {BUILD_HINT}", img.display());
    };
    if let Ok(dir) = std::fs::read_dir(guest_tests_dir().join("bin")) {
        for e in dir.flatten() {
            if mtime(&e.path()).is_some_and(|t| t > img_time) {
                panic!(
                    "{} is older than {}: {BUILD_HINT}",
                    img.display(),
                    e.path().display()
                );
            }
        }
    }
    img
}

/// A fresh COW file over a backing image, in its own temp dir (removed on drop).
pub struct Cow {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// `umlcow create <dir>/disk.cow <dir>/backing.img`, where backing.img is a
/// link to `image`: the header names a file beside the COW, which umlrun's
/// default `cow_backing=beside` opens (the image itself lives elsewhere).
/// Panics with umlcow's message on failure.
pub fn fresh_cow(image: &Path) -> Cow {
    let dir = tempfile::Builder::new()
        .prefix("umlrun-guest-")
        .tempdir()
        .expect("tempdir");
    let path = dir.path().join("disk.cow");
    let image = image
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    let link = dir.path().join("backing.img");
    std::os::unix::fs::symlink(&image, &link).expect("link to the backing image");
    let out = Command::new(umlcow_bin())
        .arg("create")
        .arg(&path)
        .arg(&link)
        .stdin(Stdio::null())
        .output()
        .expect("run umlcow");
    assert!(
        out.status.success() && path.is_file(),
        "umlcow create {} {} failed: {}",
        path.display(),
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Cow { dir, path }
}

/// Boot `image` (through a fresh COW) with `init` as pid 1 and mem=64M.
pub fn run_guest(image: &Path, init: &str, timeout: Duration) -> GuestRun {
    run_guest_with(
        image,
        init,
        &GuestOptions {
            timeout,
            ..GuestOptions::default()
        },
    )
}

/// The command line `run_guest_with` uses for a COW file (for messages).
pub fn guest_args(cow: &Path, uml_dir: &Path, init: &str, opts: &GuestOptions) -> Vec<String> {
    let mut args = vec![
        format!("mem={}", opts.mem),
        format!("ubd0={}", cow.display()),
        format!("init={init}"),
        "con0=fd:0,fd:1".to_string(),
        format!("uml_dir={}", uml_dir.display()),
    ];
    args.extend(opts.extra.iter().cloned());
    args
}

/// Boot `image` through a fresh COW (removed afterwards) and run `init`.
pub fn run_guest_with(image: &Path, init: &str, opts: &GuestOptions) -> GuestRun {
    let cow = fresh_cow(image);
    let uml_dir = cow.dir.path().join("uml");
    std::fs::create_dir_all(&uml_dir).expect("uml_dir");
    let mut cmd = Command::new(umlrun_bin());
    cmd.args(guest_args(&cow.path, &uml_dir, init, opts))
        .current_dir(cow.dir.path());
    let run = run_command(cmd, opts.timeout);
    drop(cow);
    run
}

/// Run a host program with the guest's environment, cwd / and stdin
/// /dev/null, so its output can be compared with the guest's.
pub fn run_native(bin: &Path, args: &[&str], timeout: Duration) -> GuestRun {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_clear().current_dir("/");
    for (k, v) in GUEST_ENV {
        cmd.env(k, v);
    }
    run_command(cmd, timeout)
}

/// Run `cmd` in its own process group with piped output and an open stdin
/// pipe that never delivers data. On timeout the process (and its group,
/// which only holds what it started) is killed by id and `status` is None.
pub fn run_command(mut cmd: Command, timeout: Duration) -> GuestRun {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let stdin = child.stdin.take(); // kept open until the end: no EOF on the console
    let (out_buf, out_t) = collect(child.stdout.take().expect("stdout"));
    let (err_buf, err_t) = collect(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(st) => break Some(st),
            None if Instant::now() >= deadline => {
                kill_tree(&mut child);
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    drop(stdin);
    // Something the process started may still hold the pipes: give it a
    // moment, then kill the group and take what was read.
    let pgid = child.id() as i32;
    if !wait_threads(&[&out_t, &err_t], Duration::from_secs(5)) {
        // SAFETY: kill(2) on the process group we created for this child.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        wait_threads(&[&out_t, &err_t], Duration::from_secs(2));
    }
    let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
    GuestRun {
        stdout: normalize_console(&text(&out_buf)),
        stderr: text(&err_buf),
        status: status.map(|st| match (st.code(), st.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            (None, None) => -1,
        }),
    }
}

fn kill_tree(child: &mut Child) {
    let pid = child.id() as i32;
    // SAFETY: kill(2) of the child we spawned and of the process group it
    // leads (created with process_group(0)); nothing else is in that group.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.wait();
}

type Collector = (Arc<Mutex<Vec<u8>>>, JoinHandle<()>);

fn collect<R: Read + Send + 'static>(mut r: R) -> Collector {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&buf);
    let t = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buf, t)
}

fn wait_threads(ts: &[&JoinHandle<()>], limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ts.iter().all(|t| t.is_finished()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ts.iter().all(|t| t.is_finished())
}

/// Console output to plain text: the tty's "\r\n" becomes "\n".
pub fn normalize_console(s: &str) -> String {
    s.replace("\r\n", "\n")
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A line diff of `want` (native) against `got` (guest): " " common, "-"
/// only in want, "+" only in got, with up to 3 lines of context around
/// changes. Empty if equal.
pub fn diff(want: &str, got: &str) -> String {
    if want == got {
        return String::new();
    }
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // Longest common subsequence table, from the end.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    if !want.is_empty() && !got.is_empty() && want.ends_with('\n') != got.ends_with('\n') {
        ops.push(('!', "(the last line differs in its final newline)"));
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(3);
        let hi = (k + 3).min(ops.len() - 1);
        ops[lo..=hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = String::from("--- native\n+++ guest\n");
    let mut skipped = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("@@\n");
                skipped = false;
            }
            out.push_str(&format!("{c}{line}\n"));
        } else {
            skipped = true;
        }
    }
    out
}
