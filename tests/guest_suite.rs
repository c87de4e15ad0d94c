//! The guest test suite: each tests/guest/t_*.c program (built by
//! scripts/build-guest-tests into target/guest-tests) runs natively and as
//! init under umlrun over a fresh COW of tests.img; stdout and exit status
//! must match. Plus the isolation check (a guest file never reaches the
//! host) and the harness's own mechanics (timeouts, COW files, diff).

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

/// Programs compared native vs guest, one #[test] each (see `compare!`).
const COMPARED: &[&str] = &[
    "t_fileio",
    "t_process",
    "t_signal",
    "t_mm",
    "t_pipe",
    "t_time",
    "t_itimer",
    "t_sleep_restart",
    "t_misc",
    "t_mem_return",
    "t_rsskinds",
    "t_smaps",
    "t_anonwin",
    "t_sigxstate",
    "t_hardening",
    "t_unix",
    "t_epoll",
    "t_pselect",
    "t_conform_io",
    "t_exec_self",
    "t_eventfd",
    "t_conform_sys",
    "t_sched",
    "t_futex",
    "t_sysctl",
    "t_cwdref",
    "t_sendfile",
    "t_fsextra",
    "t_syncrange",
    "t_locks",
    "t_sysv",
    "t_timerfd",
    "t_signalfd",
    "t_pidfd",
    "t_memfd",
    "t_evloop",
    "t_unix_bulk",
    "t_procfd",
    "t_fuzz_found",
    "t_traps",
    "t_pty",
    "t_inet",
    "t_netlink",
    "t_futex_pi",
    "t_prctl",
    "t_limits",
    "t_proc_sys",
    "t_inotify",
    "t_socktimeo",
    "t_mremap",
    "t_ptimer",
    "t_splice",
    "t_clone3",
    "t_kcaps",
    "t_rename2",
    "t_procself2",
    "t_erofs",
    "t_tmpfile",
    "t_sockintr",
    "t_unixgc",
    "t_inetwake",
    "t_sockfull",
    "t_sendmmsg",
    "t_chmod_sgid",
    "t_rlimit_cpu",
    "t_mincore",
    "t_procboot",
    "t_devseek",
    "t_harden2",
    "t_procsig",
    "t_trailslash",
    "t_futexv",
    "t_mlock",
    "t_ucaps",
    "t_requeue_pi",
    "t_utimes",
    "t_udprefused",
    "t_pipewrite",
    "t_remount_ro",
    "t_settime",
    "t_nice_share",
    "t_setfl",
    "t_dnotify",
    "t_pipesig",
    "t_revoke",
    "t_rlimit_vm",
    "t_rt",
    "t_chroot",
    "t_cpuinfo",
    "t_ifaces",
    "t_socketpair",
    "t_cgroup2",
];
/// Programs with a test of their own.
const SPECIAL: &[&str] = &[
    "t_cpu_account",
    "t_filemax",
    // tests/hardening.rs
    "t_init_signals",
    // tests/seccomp_wall.rs
    "t_isolation",
    "t_int80",
    "t_wall",
    "t_stubarea",
    "t_memsteal",
    "t_tickblock",
    // tests/net_fwd.rs
    "t_fwd_server",
    // tests/net_errors.rs
    "t_net_errors",
    // tests/hardening.rs
    "t_forkbomb",
    // tests/ext2_xattr.rs
    "t_xattr_ext2",
    // this file, guest only
    "t_sockmem",
];

/// Run `name` natively, then in the guest, and compare.
fn compare_with(name: &str, opts: GuestOptions) {
    let image = tests_image();
    let bin = native_bin(name);
    let native = run_native(&bin, &[], opts.timeout);
    let native_status = native.expect_finished(&format!("{name} (native)"));
    // The programs check themselves: natively they must pass, else the
    // program (or this host) is wrong, not the guest kernel.
    assert!(
        native_status == 0 && !native.stdout.contains(": FAIL"),
        "{name} fails natively (status {native_status}): fix the program\n{}",
        native.tail(40)
    );
    let guest = run_guest_with(&image, &format!("/tests/{name}"), &opts);
    let guest_status = guest.expect_finished(&format!("{name} under umlrun"));
    if guest.stdout != native.stdout || guest_status != native_status {
        let changes = if guest.stdout.is_empty() {
            "(the guest printed nothing)\n".to_string()
        } else {
            diff(&native.stdout, &guest.stdout)
        };
        panic!(
            "{name}: the guest differs from native\nexit status: native {native_status}, guest {guest_status}\n{}{}",
            changes,
            format_args!(
                "--- umlrun stderr (last 20 lines)\n{}",
                guest
                    .stderr
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        );
    }
}

fn compare(name: &str) {
    compare_with(name, GuestOptions::default());
}

macro_rules! compare {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { compare(stringify!($name)); } )*
    };
}

compare!(
    t_fileio,
    t_process,
    t_signal,
    t_mm,
    t_rsskinds,
    t_smaps,
    t_anonwin,
    t_pipe,
    t_time,
    t_itimer,
    t_sleep_restart,
    t_misc,
    t_sigxstate,
    t_pselect,
    t_conform_io,
    t_exec_self,
    t_eventfd,
    t_conform_sys,
    t_sched,
    t_futex,
    t_sysctl,
    t_cwdref,
    t_fuzz_found,
    t_unix,
    t_epoll,
    t_sendfile,
    t_fsextra,
    t_syncrange,
    t_locks,
    t_sysv,
    t_timerfd,
    t_signalfd,
    t_pidfd,
    t_memfd,
    t_evloop,
    t_unix_bulk,
    t_procfd,
    t_traps,
    t_rename2,
    t_pty,
    t_inet,
    t_netlink,
    t_futex_pi,
    t_prctl,
    t_limits,
    t_proc_sys,
    t_inotify,
    t_socktimeo,
    t_mremap,
    t_ptimer,
    t_splice,
    t_clone3,
    t_kcaps,
    t_procself2,
    t_erofs,
    t_tmpfile,
    t_sockintr,
    t_unixgc,
    t_inetwake,
    t_sockfull,
    t_sendmmsg,
    t_chmod_sgid,
    t_rlimit_cpu,
    t_mincore,
    t_procboot,
    t_devseek,
    t_harden2,
    t_procsig,
    t_trailslash,
    t_futexv,
    t_mlock,
    t_ucaps,
    t_requeue_pi,
    t_utimes,
    t_udprefused,
    t_pipewrite,
    t_remount_ro,
    t_settime,
    t_nice_share,
    t_setfl,
    t_dnotify,
    t_pipesig,
    t_revoke,
    t_rlimit_vm,
    t_rt,
    t_chroot,
    t_cpuinfo,
    t_socketpair,
    t_cgroup2,
);

/// The interface table, on two interfaces in the guest (`eth0=user
/// eth1=user`): the same facts hold as on the host's interfaces.
#[test]
fn t_ifaces() {
    compare_with(
        "t_ifaces",
        GuestOptions {
            extra: vec!["eth0=user".into(), "eth1=user".into()],
            ..GuestOptions::default()
        },
    );
}

/// t_hardening in both ubd modes: under ubd=mmap the shared file pages
/// first map the read-only image, and a write copies them up.
#[test]
fn t_hardening() {
    compare_with(
        "t_hardening",
        GuestOptions {
            extra: vec!["ubd=copy".into()],
            ..GuestOptions::default()
        },
    );
}

#[test]
fn t_hardening_ubd_mmap() {
    compare_with(
        "t_hardening",
        GuestOptions {
            extra: vec!["ubd=mmap".into()],
            ..GuestOptions::default()
        },
    );
}

/// fs.file-max: guest only, as it lowers a system-wide setting (which
/// the host's must not be); the program checks every figure itself.
#[test]
fn t_filemax() {
    let image = tests_image();
    native_bin("t_filemax");
    let run = run_guest(&image, "/tests/t_filemax", timeout());
    let status = run.expect_finished("t_filemax under umlrun");
    assert!(
        status == 0 && !run.stdout.contains("FAIL"),
        "t_filemax failed in the guest (status {status})\n{}",
        run.tail(30)
    );
}

/// 128 MiB touched and freed: needs more than the default 64M of guest memory.
#[test]
fn t_mem_return() {
    compare_with(
        "t_mem_return",
        GuestOptions {
            mem: "256M".into(),
            ..GuestOptions::default()
        },
    );
}

/// Every tests/guest/t_*.c has a test here, and every test has a program.
#[test]
fn every_guest_program_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("tests/guest"))
        .expect("tests/guest")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("t_") && n.ends_with(".c"))
        .map(|n| n.trim_end_matches(".c").to_string())
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = COMPARED
        .iter()
        .chain(SPECIAL)
        .map(|s| s.to_string())
        .collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "tests/guest/t_*.c and guest_suite.rs disagree"
    );
}

/// The native side alone: every compared program passes on the host and
/// prints no FAIL (what the guest must reproduce).
#[test]
fn native_runs_pass() {
    for name in COMPARED {
        let run = run_native(&native_bin(name), &[], timeout());
        let st = run.expect_finished(name);
        assert!(
            st == 0
                && !run.stdout.contains(": FAIL")
                && run.stdout.contains(&format!("== {name}: ")),
            "{name} natively: status {st}\n{}",
            run.tail(40)
        );
    }
}

/// Native output is deterministic: two runs print the same.
#[test]
fn native_output_is_deterministic() {
    for name in ["t_process", "t_signal", "t_pipe"] {
        let bin = native_bin(name);
        let a = run_native(&bin, &[], timeout());
        let b = run_native(&bin, &[], timeout());
        assert_eq!(a.status, b.status, "{name}");
        assert!(
            a.stdout == b.stdout,
            "{name} is not deterministic\n{}",
            diff(&a.stdout, &b.stdout)
        );
    }
}

// --- the harness itself -------------------------------------------------------

/// The process is gone, or a zombie waiting for whoever inherited it.
fn dead(pid: i32) -> bool {
    for _ in 0..200 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

#[test]
fn harness_kills_a_hung_run_by_pid() {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "echo started; echo $$ >&2; exec sleep 1000"]);
    let run = run_command(cmd, Duration::from_millis(500));
    assert!(run.timed_out(), "{run:?}");
    assert_eq!(run.stdout, "started\n");
    assert!(run.tail(5).contains("started"));
    let pid: i32 = run.stderr.trim().parse().expect("pid");
    assert!(dead(pid), "the hung process {pid} survived the timeout");
    let caught = std::panic::catch_unwind(|| run.expect_finished("sleeper"));
    assert!(caught.is_err());
}

#[test]
fn harness_kills_the_group_left_holding_the_pipes() {
    // The shell exits at once but a background child keeps stdout open.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "sleep 1000 & echo $! >&2; echo bye"]);
    let run = run_command(cmd, Duration::from_secs(30));
    assert_eq!(run.status, Some(0));
    assert_eq!(run.stdout, "bye\n");
    let pid: i32 = run.stderr.trim().parse().expect("pid");
    assert!(dead(pid), "background process {pid} survived");
}

/// `procs::Reaped` ends a whole tree by pid when it is dropped, also when
/// the test panics: a child that left the group and session (setsid, as
/// Debian's linux.uml helpers can), and an orphan whose parent exited
/// first but which is still in the group.
#[test]
fn harness_reaped_ends_the_whole_tree_on_panic() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            "setsid sleep 1000 & echo $!; (sleep 1000 & echo $!) ; exec sleep 1000",
        ])
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut guard = support::procs::Reaped(child);
    let out = std::io::BufReader::new(guard.stdout.take().unwrap());
    let pids: Vec<i32> = out
        .lines()
        .take(2)
        .map(|l| l.unwrap().trim().parse().unwrap())
        .collect();
    let root = guard.id() as i32;
    // Both are running under the shell's tree before the guard goes.
    std::thread::sleep(Duration::from_millis(200));
    for p in &pids {
        assert!(!dead(*p), "{p} not started");
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _g = guard;
        panic!("a failing test");
    }));
    assert!(r.is_err());
    for p in pids.iter().chain([&root]) {
        assert!(dead(*p), "{p} survived the guard");
    }
}

#[test]
fn harness_status_encoding() {
    let sh = |s: &str| {
        let mut c = std::process::Command::new("/bin/sh");
        c.args(["-c", s]);
        run_command(c, Duration::from_secs(30))
    };
    assert_eq!(sh("exit 7").status, Some(7));
    assert_eq!(sh("kill -SEGV $$").status, Some(128 + 11));
    let run = sh("printf 'a\\r\\nb\\r\\n'");
    assert_eq!(run.stdout, "a\nb\n", "console line endings normalized");
}

#[test]
fn harness_native_env_matches_the_guest_contract() {
    let run = run_native(Path::new("/usr/bin/env"), &[], Duration::from_secs(30));
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["HOME=/", "PATH=/sbin:/bin:/usr/sbin:/usr/bin", "TERM=linux"]
    );
}

#[test]
fn harness_fresh_cow_is_a_cow_over_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("backing.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let cow = fresh_cow(&img);
    let head = std::fs::read(&cow.path).unwrap();
    assert_eq!(&head[0..4], &0x4F4F_4F4Du32.to_be_bytes(), "COW magic");
    assert_eq!(&head[4..8], &3u32.to_be_bytes(), "COW version 3");
    // The header names a link beside the COW (cow_backing=beside), which
    // leads to the image.
    let link = cow.dir.path().canonicalize().unwrap().join("backing.img");
    let named = &head[32..32 + link.as_os_str().len() + 1];
    assert_eq!(
        &named[..named.len() - 1],
        link.as_os_str().as_encoded_bytes()
    );
    assert_eq!(named[named.len() - 1], 0, "the path ends there");
    assert_eq!(link.canonicalize().unwrap(), img.canonicalize().unwrap());
    let cow_dir = cow.dir.path().to_path_buf();
    drop(cow);
    assert!(!cow_dir.exists(), "the COW temp dir is removed");
    // Each run gets its own file.
    let (a, b) = (fresh_cow(&img), fresh_cow(&img));
    assert_ne!(a.path, b.path);
}

#[test]
fn harness_diff_shows_changes_with_context() {
    assert_eq!(diff("a\nb\n", "a\nb\n"), "");
    let d = diff(
        "1\n2\n3\n4\n5\n6\n7\n8\n9\n",
        "1\n2\n3\n4\n5\nsix\n7\n8\n9\n",
    );
    assert!(d.contains("-6\n+six\n"), "{d}");
    assert!(d.contains(" 5\n") && d.contains(" 7\n"), "{d}");
    assert!(!d.contains(" 1\n"), "context is limited: {d}");
    let d = diff("x\n", "x\ny: FAIL\n");
    assert!(d.contains("+y: FAIL"), "{d}");
    let d = diff("x\n", "x");
    assert!(d.contains("final newline"), "{d}");
}

#[test]
fn harness_guest_command_line_follows_the_contract() {
    let args = guest_args(
        Path::new("/t/disk.cow"),
        Path::new("/t/uml"),
        "/tests/t_fileio",
        &GuestOptions::default(),
    );
    assert_eq!(
        args,
        [
            "mem=64M",
            "ubd0=/t/disk.cow",
            "init=/tests/t_fileio",
            "con0=fd:0,fd:1",
            "uml_dir=/t/uml"
        ]
    );
}

/// Socket buffers are guest memory: t_sockmem fills AF_UNIX and TCP
/// buffers and reads /proc/meminfo before, during and after (guest only:
/// a shared host's MemFree moves by more than the few MiB measured).
#[test]
fn t_sockmem() {
    let image = tests_image();
    native_bin("t_sockmem");
    let run = run_guest(&image, "/tests/t_sockmem", timeout());
    let status = run.expect_finished("t_sockmem under umlrun");
    assert_eq!(status, 0, "{}", run.tail(30));
    assert!(run.stdout.contains("0 failed"), "{}", run.tail(30));
}
