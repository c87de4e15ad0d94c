//! Hardening tests that need the guest alone (no native run to compare
//! with): init's protection from signals, and the random-syscall fuzzer's
//! CI slice (tests/guest/fuzz_syscalls.c; the long run is
//! scripts/fuzz-syscalls).

mod support;

use support::*;

/// Runs guest-only program `name` as init; it checks itself.
fn run_self_checking(name: &str) {
    let image = tests_image();
    native_bin(name);
    let run = run_guest(&image, &format!("/tests/{name}"), timeout());
    let status = run.expect_finished(&format!("{name} under umlrun"));
    assert!(
        status == 0
            && !run.stdout.contains(": FAIL")
            && run.stdout.contains(&format!("== {name}: ")),
        "{name}: status {status}\n{}\n--- stderr\n{}",
        run.tail(40),
        run.stderr
    );
}

/// init ignores every signal it has no handler for, from anyone.
#[test]
fn t_init_signals() {
    run_self_checking("t_init_signals");
}

/// A fork bomb as uid 1000 stops at RLIMIT_NPROC (half the cap sized to
/// mem=), root can still run commands, and root's own bomb stops at the
/// cap: at mem=64M, 256 and 512 tasks.
#[test]
fn t_forkbomb() {
    run_self_checking("t_forkbomb");
    let image = tests_image();
    let run = run_guest(&image, "/tests/t_forkbomb", timeout());
    assert!(
        run.stdout.contains("RLIMIT_NPROC 256")
            && run.stdout.contains("uid 1000 bomb: 255 processes"),
        "{}",
        run.tail(20)
    );
}

/// umlrun and its stubs run with no_new_privs.
#[test]
fn no_new_privs_on_umlrun_and_stubs() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let image = tests_image();
    let cow = fresh_cow(&image);
    let uml = cow.dir.path().join("uml");
    std::fs::create_dir_all(&uml).unwrap();
    // t_forkbomb runs for seconds (it pauses at each peak).
    let child = procs::Reaped::spawn(
        Command::new(umlrun_bin())
            .args(guest_args(
                &cow.path,
                &uml,
                "/tests/t_forkbomb",
                &GuestOptions::default(),
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0),
    )
    .expect("start umlrun");
    let pid = child.id();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let nnp = |p: &str| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("NoNewPrivs:").map(|v| v.trim().to_string()))
    };
    let umlrun = nnp(&pid.to_string());
    let stubs: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let stub_nnp: Vec<Option<String>> = stubs.iter().map(|s| nnp(s)).collect();
    drop(child); // killed with its stubs, by pid, and reaped
    assert_eq!(umlrun.as_deref(), Some("1"), "umlrun's NoNewPrivs");
    assert!(!stubs.is_empty(), "no stub processes seen");
    assert!(
        stub_nnp.iter().all(|v| v.as_deref() == Some("1")),
        "stubs' NoNewPrivs: {stub_nnp:?}"
    );
}

/// Seeds the CI slice fuzzes: `FUZZ_FIRST_SEED` moves the window (the
/// default is fixed, so a failure reproduces).
fn first_seed() -> u64 {
    std::env::var("FUZZ_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Boots the fuzzer as init for `seeds` seeds of `calls` syscalls from
/// `first`, with the parameters on the console. Returns (stdout, stderr,
/// exit status or None after `limit`).
fn fuzz_boot(
    first: u64,
    seeds: u64,
    calls: u64,
    ubd: &str,
    limit: std::time::Duration,
) -> (String, String, Option<i32>) {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, Stdio};
    let image = tests_image();
    let cow = fresh_cow(&image);
    let dir = cow.dir.path();
    std::fs::create_dir_all(dir.join("uml")).expect("uml_dir");
    std::fs::write(dir.join("in"), format!("{first} {seeds} {calls}\n")).expect("input");
    let file = |n: &str| std::fs::File::create(dir.join(n)).expect("output file");
    let mut child = procs::Reaped::spawn(
        Command::new(umlrun_bin())
            .args([
                "mem=64M".to_string(),
                format!("ubd={ubd}"),
                format!("ubd0={}", cow.path.display()),
                "init=/tests/fuzz_syscalls".to_string(),
                "con0=fd:0,fd:1".to_string(),
                format!("uml_dir={}", dir.join("uml").display()),
            ])
            .current_dir(dir)
            .stdin(std::fs::File::open(dir.join("in")).expect("input"))
            .stdout(Stdio::from(file("out")))
            .stderr(Stdio::from(file("err")))
            .process_group(0),
    )
    .expect("start umlrun");
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
        }
        if std::time::Instant::now() >= deadline {
            procs::kill_tree(child.id() as i32, true, std::time::Duration::from_secs(10));
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let read = |n: &str| {
        String::from_utf8_lossy(&std::fs::read(dir.join(n)).unwrap_or_default()).into_owned()
    };
    let out = (read("out"), read("err"), status);
    drop(cow);
    out
}

/// The CI slice of the syscall fuzzer: 100 000 random syscalls (10 seeds
/// of 10 000, in both ubd modes) from uid 1000 and root. umlrun must not
/// panic, hang or die, and every process must die of SIGKILL.
#[test]
fn fuzz_syscalls_slice() {
    let first = first_seed();
    let mut total = 0u64;
    for (i, ubd) in ["mmap", "copy"].iter().enumerate() {
        let from = first + 5 * i as u64;
        let (out, err, status) =
            fuzz_boot(from, 5, 10_000, ubd, std::time::Duration::from_secs(300));
        let what = format!(
            "seeds {from}..{} ubd={ubd} (reproduce: scripts/fuzz-syscalls --first {from} --seeds 5 --ubd {ubd})",
            from + 4
        );
        let tail: String = out
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            status.is_some(),
            "{what}: umlrun hung (no exit in 300 s)\n{tail}\n{err}"
        );
        assert!(
            status != Some(101) && !err.contains("panicked"),
            "{what}: umlrun panicked\n{tail}\n{err}"
        );
        assert!(
            !out.contains("fuzz: STUCK"),
            "{what}: a process outlived SIGKILL\n{tail}"
        );
        let done = out
            .lines()
            .find_map(|l| l.strip_prefix("fuzz: done: 5 seeds, "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(
            status == Some(0) && done.is_some(),
            "{what}: the instance died (status {status:?})\n{tail}\n{err}"
        );
        total += done.unwrap_or(0);
    }
    assert!(total >= 100_000, "only {total} syscalls made");
}
