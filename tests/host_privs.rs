//! Least privilege for umlrun itself (issue 10): its own seccomp filter
//! (`host_seccomp=`) on both platforms under a console-test workload, and
//! `uid=`/`gid=` (root drops to an unprivileged user; anyone else gets a
//! one-line error), and `namespaces=` (the stubs in their own pid, mount
//! and network namespaces: /proc/<stub>/ns/* differ from the test's own).

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
    /// The (pid, mnt, net) namespaces of umlrun and of each stub.
    umlrun_ns: Ns,
    stubs_ns: Vec<Ns>,
    /// Each stub's user namespace link.
    stubs_user: Vec<String>,
    /// The namespace holder (`namespaces=`): its status, namespaces, fd
    /// targets; and the names in a stub's `/` (its /proc/<pid>/root).
    holder: Option<(String, Ns, Vec<String>)>,
    stub_root: Vec<String>,
}

/// The (pid, mnt, net) namespace links of a process, e.g. `pid:[4026531836]`.
type Ns = [String; 3];

fn ns_of(pid: &str) -> Ns {
    ["pid", "mnt", "net"].map(|n| {
        std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    })
}

fn comm_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Boots busybox.img (fresh COW) with `init=/bin/sh` reading WORKLOAD,
/// `platform=` and `extra` switches; samples umlrun's and its stubs'
/// /proc status while the workload runs.
fn boot_workload(platform: &str, extra: &[&str], cow_dir_mode: Option<u32>) -> Booted {
    boot_workload_in(&[], platform, extra, cow_dir_mode)
}

/// boot_workload with umlrun started through `wrap` (a command that execs
/// its arguments: setpriv, unshare); `wrap` as nobody hands the COW and its
/// directory to nobody first.
fn boot_workload_in(
    wrap: &[&str],
    platform: &str,
    extra: &[&str],
    cow_dir_mode: Option<u32>,
) -> Booted {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let cow = fresh_cow(&busybox_image());
    let dir = cow.dir.path();
    if wrap.iter().any(|w| w.starts_with("--reuid=65534")) {
        for p in [dir, cow.path.as_path()] {
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }
    }
    if let Some(mode) = cow_dir_mode {
        use std::os::unix::fs::PermissionsExt;
        // The dropped user must reach its COW file (it was opened before
        // the drop, but the directory is searched for the pid file too).
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let uml = dir.join("uml");
    std::fs::create_dir_all(&uml).unwrap();
    if wrap.iter().any(|w| w.starts_with("--reuid=65534")) {
        std::os::unix::fs::chown(&uml, Some(65534), Some(65534)).unwrap();
    }
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
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(umlrun_bin());
            c
        }
        None => Command::new(umlrun_bin()),
    };
    let mut child = procs::Reaped::spawn(
        cmd.args(&args)
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
    let (mut umlrun_ns, mut stubs_ns, mut holder) = (Ns::default(), Vec::new(), None);
    let mut stubs_user = Vec::new();
    let mut stub_root = Vec::new();
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
            // The namespace holder is a child too, but no stub; a child
            // still called umlrun has not exec'd yet (a stub's joiner, the
            // holder before it names itself): sampled again later.
            let (held, kids): (Vec<u32>, Vec<u32>) = kids
                .into_iter()
                .filter(|&k| comm_of(k) != "umlrun")
                .partition(|&k| comm_of(k) == "umlrun-nsholder");
            if !kids.is_empty() {
                umlrun = status_of(pid).unwrap_or_default();
                umlrun_ns = ns_of(&pid.to_string());
                stubs = kids.iter().filter_map(|&k| status_of(k)).collect();
                stubs_ns = kids.iter().map(|k| ns_of(&k.to_string())).collect();
                stubs_user = kids
                    .iter()
                    .map(|k| {
                        std::fs::read_link(format!("/proc/{k}/ns/user"))
                            .map(|l| l.display().to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                stub_root = std::fs::read_dir(format!("/proc/{}/root", kids[0]))
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                holder = held.first().map(|&h| {
                    let fds = std::fs::read_dir(format!("/proc/{h}/fd"))
                        .map(|rd| {
                            rd.flatten()
                                .filter_map(|e| std::fs::read_link(e.path()).ok())
                                .map(|l| l.display().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    let st = std::fs::read_to_string(format!("/proc/{h}/status"))
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| {
                            l.starts_with("NSpid:")
                                || l.starts_with("Seccomp:")
                                || l.starts_with("VmRSS:")
                        })
                        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                        .collect::<Vec<_>>()
                        .join("; ");
                    (st, ns_of(&h.to_string()), fds)
                });
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
        umlrun_ns,
        stubs_ns,
        stubs_user,
        holder,
        stub_root,
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

/// `namespaces=auto` (the default) where the host allows it: every stub
/// sits in the holder's pid, mount and network namespaces, none the
/// test's own; umlrun keeps the test's pid, mount and network namespaces
/// (the NAT and hot-added interfaces need the host's). The holder is pid 1
/// there, in strict seccomp, with nothing of umlrun's open (only its own
/// pipe) and nothing of umlrun's mapped (its own program); a stub's `/`
/// is empty (no bind mount of umlrun's /proc/<pid>/fd: stubs open
/// nothing, fds come over their socket), and every stub sits in a user
/// namespace of its own, root's too. The workload runs.
fn stubs_in_their_own_namespaces(wrap: &[&str], platform: &str, extra: &[&str]) {
    let what = format!("{wrap:?} {platform} {extra:?}");
    let b = boot_workload_in(wrap, platform, extra, Some(0o755));
    check_workload(&b, &what);
    let mine = ns_of("self");
    let (hstatus, hns, hfds) = b
        .holder
        .clone()
        .unwrap_or_else(|| panic!("{what}: no namespace holder\n--- stderr\n{}", b.stderr));
    for (s, ns) in b.stubs.iter().zip(&b.stubs_ns) {
        for i in 0..3 {
            assert_ne!(ns[i], mine[i], "{what}: stub {s} shares {}", mine[i]);
            assert_eq!(ns[i], hns[i], "{what}: stub {s} not in the holder's");
        }
    }
    assert_eq!(b.umlrun_ns[0], mine[0], "{what}: umlrun's pid namespace");
    assert_eq!(b.umlrun_ns[1], mine[1], "{what}: umlrun's mount namespace");
    assert_eq!(
        b.umlrun_ns[2], mine[2],
        "{what}: umlrun's network namespace"
    );
    assert!(hstatus.contains("Seccomp: 1"), "{what}: holder {hstatus}");
    assert!(
        hstatus
            .split("; ")
            .any(|f| f.starts_with("NSpid:") && f.ends_with(" 1")),
        "{what}: holder {hstatus}"
    );
    assert!(
        hfds.iter().all(|f| f.starts_with("pipe:")) && hfds.len() <= 2,
        "{what}: holder fds {hfds:?}"
    );
    // It sleeps as its own one-page program, not as a fork of umlrun
    // (which holds hundreds of kB).
    let rss_kb = hstatus
        .split("; ")
        .find_map(|f| f.strip_prefix("VmRSS: "))
        .and_then(|f| f.trim_end_matches(" kB").parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{what}: holder {hstatus}"));
    assert!(rss_kb <= 64, "{what}: holder {hstatus}");
    assert_eq!(b.stub_root, Vec::<String>::new(), "{what}: a stub's /");
    let my_user = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert!(!b.stubs_user.is_empty(), "{what}: no stub sampled");
    for s in &b.stubs_user {
        assert!(
            s.starts_with("user:[") && *s != my_user.display().to_string(),
            "{what}: a stub's user namespace {s:?} (the test's: {my_user:?})"
        );
    }
}

#[test]
fn namespaces_auto_ptrace() {
    stubs_in_their_own_namespaces(&[], "ptrace", &[]);
}

#[test]
fn namespaces_auto_seccomp() {
    stubs_in_their_own_namespaces(&[], "seccomp", &[]);
}

/// Not root: umlrun makes a user namespace of its own first (skipped
/// where the host forbids unprivileged user namespaces: then auto runs
/// without, which namespaces_on_refused_is_one_line covers). As root with
/// uid=: the stubs' user namespace is made as that user.
#[test]
fn namespaces_auto_unprivileged_and_after_uid() {
    if !is_root() {
        return;
    }
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let probe = Command::new(nobody[0])
        .args(&nobody[1..])
        .args(["unshare", "--user", "--map-current-user", "true"])
        .status()
        .expect("setpriv");
    if probe.success() {
        stubs_in_their_own_namespaces(&nobody, "seccomp", &[]);
    } else {
        eprintln!("unprivileged user namespaces refused here: that case not run");
    }
    stubs_in_their_own_namespaces(&[], "ptrace", &["uid=65534", "gid=65534"]);
}

/// `namespaces=off`: the stubs share umlrun's namespaces (and the test's),
/// no holder.
#[test]
fn namespaces_off_shares_the_hosts() {
    let b = boot_workload("ptrace", &["namespaces=off"], None);
    check_workload(&b, "namespaces=off");
    assert!(b.holder.is_none(), "namespaces=off: a holder");
    let mine = ns_of("self");
    assert_eq!(b.umlrun_ns, mine);
    for ns in &b.stubs_ns {
        assert_eq!(ns, &mine);
    }
}

/// Where no namespace can be made (umlrun inside a user namespace that
/// maps no id: it may make no user namespace of its own), namespaces=on
/// is one line and exit 1 before the guest starts; auto boots without.
#[test]
fn namespaces_on_refused_is_one_line() {
    if !is_root() {
        return;
    }
    let unmapped = ["unshare", "--user"];
    let cow = fresh_cow(&busybox_image());
    let out = Command::new(unmapped[0])
        .args(&unmapped[1..])
        .arg(umlrun_bin())
        .args(["namespaces=on", "con0=null", "mem=64M"])
        .arg(format!("uml_dir={}", cow.dir.path().display()))
        .arg(&cow.path)
        .stdin(Stdio::null())
        .output()
        .expect("run umlrun");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(
            "umlrun: namespaces=on: cannot make the stubs' namespaces: cannot make a user namespace: "
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let b = boot_workload_in(&unmapped, "ptrace", &[], None);
    check_workload(&b, "auto where none can be made");
    assert!(b.holder.is_none());
}
