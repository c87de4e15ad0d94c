//! Drives the real `umlrun` binary: help and version, one-line errors with
//! exit code 2, the `<uml_dir>/<umid>/pid` life cycle, and the honest
//! "cannot boot yet" stop (exit code 3).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A zero-filled disk holds no file system: the guest cannot boot (exit 3).
const NO_BOOT: &str = "umlrun: root=/dev/ubda: not an ext2 file system the kernel can mount";

fn umlrun(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_umlrun"))
        .args(args)
        // What was set up is logged at info level (quiet by default).
        .env("RUST_LOG", "umlrun=info")
        .output()
        .expect("run umlrun")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temp dir with a small raw image and a uml_dir inside it.
struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("disk.img"), vec![0u8; 1 << 20]).unwrap();
        Scratch { tmp }
    }
    fn image(&self) -> String {
        self.tmp.path().join("disk.img").display().to_string()
    }
    fn uml_dir(&self) -> PathBuf {
        self.tmp.path().join("uml")
    }
    fn uml_dir_switch(&self) -> String {
        format!("uml_dir={}", self.uml_dir().display())
    }
}

fn pid_max() -> u32 {
    fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn help_and_version_exit_zero() {
    let o = umlrun(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("usage: umlrun"), "{out}");
    for switch in [
        "mem=",
        "ubd<N>",
        "ubd=mmap",
        "umid=",
        "uml_dir=",
        "con0=",
        "root=",
        "init=",
        "pagecache_max=",
        "cpu=",
    ] {
        assert!(out.contains(switch), "help lacks {switch}");
    }
    let o = umlrun(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("umlrun {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `--syscalls`: one line per named syscall with its support level
/// (issue 12: the project can print the list).
#[test]
fn syscalls_lists_each_calls_support_level() {
    let o = umlrun(&["--syscalls"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let level = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert_eq!(level("read"), "full");
    assert_eq!(level("sched_setscheduler"), "full");
    assert_eq!(level("chroot"), "full");
    assert_eq!(level("settimeofday"), "partial:");
    assert_eq!(level("rseq"), "unsupported");
    assert!(out.lines().count() > 250, "{out}");
}

#[test]
fn wrong_switches_exit_2_with_one_line_naming_them() {
    let s = Scratch::new();
    let img = s.image();
    let cases: &[(&[&str], String)] = &[
        (
            &["mem=12Q", &img],
            "umlrun: mem=12Q: bad size (use a number with K, M or G)\n".into(),
        ),
        (
            &["--bogus", &img],
            "umlrun: --bogus: unknown switch (see umlrun --help)\n".into(),
        ),
        (
            &["ubd=fast", &img],
            "umlrun: ubd=fast: use ubd=mmap or ubd=copy\n".into(),
        ),
        (
            &["ubd0q=x"],
            "umlrun: ubd0q=x: unknown flag 'q' (use r, s, d or c)\n".into(),
        ),
        (
            &[&img, &img],
            format!("umlrun: {img}: ubd0 is already given by ubd0={img}\n"),
        ),
        (&["ubd0="], "umlrun: ubd0=: missing file name\n".into()),
        (
            &["con0=pty", &img],
            "umlrun: con0=pty: use con0=fd:IN,fd:OUT, con0=fd:N or con0=null\n".into(),
        ),
    ];
    for (args, want) in cases {
        let o = umlrun(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), *want, "{args:?}");
        assert!(o.stdout.is_empty());
    }
    // Nothing was claimed on the way to those errors.
    assert!(!s.uml_dir().exists());
}

#[test]
fn missing_image_is_a_clear_line() {
    let s = Scratch::new();
    let missing = s.tmp.path().join("nope.cow").display().to_string();
    let o = umlrun(&[&s.uml_dir_switch(), &missing]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("umlrun: ubd0={missing}: no such file\n")
    );
    let with_backing = format!("ubd1r={},{missing}", s.image());
    let o = umlrun(&[&s.uml_dir_switch(), &with_backing]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("umlrun: {with_backing}: {missing}: no such file\n")
    );
    let o = umlrun(&[&s.uml_dir_switch(), &s.tmp.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).ends_with(": is a directory, not a disk image\n"));
    assert!(!s.uml_dir().exists());
}

#[test]
fn blank_disk_cannot_boot_exit_3_and_pid_dir_is_removed() {
    let s = Scratch::new();
    let o = umlrun(&[
        "mem=64M",
        "ubd=mmap",
        "umid=t1",
        &s.uml_dir_switch(),
        &s.image(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.last().unwrap().starts_with(NO_BOOT), "{err}");
    assert!(
        err.contains("] mem      64M (67108864 bytes, 16384 frames of 4K)"),
        "{err}"
    );
    assert!(err.contains("mmap mode) = /dev/ubda"), "{err}");
    assert!(err.contains("] umid     t1\n"), "{err}");
    let pid_file = s.uml_dir().join("t1/pid");
    assert!(
        err.contains(&format!("pid file {} (pid ", pid_file.display())),
        "{err}"
    );
    // The directory was made (uml_dir exists) and removed again on exit.
    assert!(s.uml_dir().is_dir());
    assert!(!s.uml_dir().join("t1").exists());
}

#[test]
fn umid_in_use_by_a_live_pid_is_refused() {
    let s = Scratch::new();
    let dir = s.uml_dir().join("busy");
    fs::create_dir_all(&dir).unwrap();
    // This test process is alive for the whole run.
    let me = std::process::id();
    fs::write(dir.join("pid"), format!("{me}\n")).unwrap();
    let o = umlrun(&["umid=busy", &s.uml_dir_switch(), &s.image()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "umlrun: umid=busy: in use by live process {me} (see {})\n",
            dir.join("pid").display()
        )
    );
    // The rival's pid file is left alone.
    assert_eq!(
        fs::read_to_string(dir.join("pid")).unwrap(),
        format!("{me}\n")
    );
}

#[test]
fn stale_pid_file_is_cleaned_and_reclaimed() {
    let s = Scratch::new();
    let dir = s.uml_dir().join("old");
    fs::create_dir_all(dir.join("leftover")).unwrap();
    // pid_max is never a live pid.
    fs::write(dir.join("pid"), format!("{}\n", pid_max())).unwrap();
    let o = umlrun(&["umid=old", &s.uml_dir_switch(), &s.image()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("pid file {} (pid ", dir.join("pid").display())),
        "{err}"
    );
    assert!(!err.contains(&format!("(pid {})", pid_max())));
    assert!(!dir.exists());
}

#[test]
fn default_uml_dir_is_under_home_and_umid_is_random() {
    let s = Scratch::new();
    let home = s.tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_umlrun"))
            .arg(s.image())
            .env("HOME", &home)
            .env("RUST_LOG", "umlrun=info")
            .output()
            .unwrap()
    };
    let umid_of = |o: &Output| -> String {
        let err = stderr(o);
        let line = err
            .lines()
            .find(|l| l.contains("] umid "))
            .unwrap()
            .to_string();
        line.split("] umid").nth(1).unwrap().trim().to_string()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.status.code(), Some(3));
    let (ua, ub) = (umid_of(&a), umid_of(&b));
    assert_eq!(ua.len(), 6);
    assert_ne!(ua, ub);
    let uml = home.join(".uml");
    assert!(stderr(&a).contains(&format!("pid file {}/{ua}/pid", uml.display())));
    assert!(uml.is_dir());
    assert_eq!(
        fs::read_dir(&uml).unwrap().count(),
        0,
        "instance dirs left behind"
    );
}

#[test]
fn cpu_switch_pins_or_refuses() {
    let s = Scratch::new();
    let cpu = umlrun::host::misc::allowed_cpus()[0];
    let o = umlrun(&[&format!("cpu={cpu}"), &s.uml_dir_switch(), &s.image()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains(&format!("cpu      {cpu} (pinned)")));
    let o = umlrun(&["cpu=100000", &s.uml_dir_switch(), &s.image()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("umlrun: cpu=100000: this process may not run on that CPU"));
}

#[test]
fn non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let o = Command::new(env!("CARGO_BIN_EXE_umlrun"))
        .arg(std::ffi::OsStr::from_bytes(b"mem=\xff"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).ends_with(": not valid UTF-8\n"));
}
