//! Hardening tests that need the guest alone (no native run to compare
//! with): init's protection from signals, the random-syscall fuzzer's
//! CI slice (tests/guest/fuzz_syscalls.c; the long run is
//! scripts/fuzz-syscalls), and three attackers at once at mem=64M (a fork
//! bomb, a memory hog and the fuzzer) under the host memory bound HOWTO
//! states, with the console still usable.

mod support;
mod support_many;

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
    // A fork bomb's stubs come and go: one that ended between the listing
    // and the read has no status (None) and is left out; every stub still
    // there must have the flag, and most must still be there.
    let stub_nnp: Vec<Option<String>> = stubs.iter().map(|s| nnp(s)).collect();
    drop(child); // killed with its stubs, by pid, and reaped
    assert_eq!(umlrun.as_deref(), Some("1"), "umlrun's NoNewPrivs");
    let read: Vec<&str> = stub_nnp.iter().flatten().map(String::as_str).collect();
    assert!(
        read.len() * 2 > stubs.len(),
        "too few stub processes read: {stub_nnp:?}"
    );
    assert!(
        read.iter().all(|v| *v == "1"),
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

/// The host memory bound for one instance: `mem=` plus this much of the
/// kernel's own (umlrun's heap, the page tables it keeps for the guest,
/// the stubs' own pages). `stress_at_64m` peaked at 82 489 - 84 820 KiB
/// of Pss in six passing runs (2-CPU host at load 7-11): 64 MiB + 40 MiB
/// = 104 MiB is the highest peak with 26 % margin (HOWTO "Security").
const KERNEL_OVERHEAD_KIB: u64 = 40 * 1024;

/// A command's output without the kernel's console messages (the OOM
/// killer's, at `[ seconds.micros]`), which the console interleaves.
fn without_kmsg(out: &str) -> String {
    out.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with('[')
                && t[1..]
                    .split_once(']')
                    .is_some_and(|(n, _)| n.trim().parse::<f64>().is_ok()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// How long root's command may take while the three attackers run: the
/// test's load plus the host's (CI: 2 CPUs at load up to 8 or more).
const ROOT_UNDER_ATTACK: std::time::Duration = std::time::Duration::from_secs(90);

/// How long the three attackers run before root logs in again.
const STRESS: std::time::Duration = std::time::Duration::from_secs(20);

/// At mem=64M, three unprivileged users at once: a fork bomb (uid 1000,
/// `sleep`s until fork fails, at RLIMIT_NPROC), a memory hog past mem=
/// (uid 1001, tests/guest/memhog.c, OOM-killed each time), and the syscall
/// fuzzer (uid 1002, `fuzz_syscalls -u`), each restarted by a root loop
/// when it dies, for 20 s. Meanwhile the host memory of umlrun and its
/// stubs (Pss sum, sampled every 200 ms) stays under mem= + 40 MiB. Then
/// root logs out, logs in again, a command answers, the attackers are
/// killed, and `poweroff` ends umlrun with 0 (no panic, no 101 or 137).
///
/// It found two kernel faults, both fixed: root's commands stalled behind
/// the standing bomb (each /proc refresh gathered every process's costly
/// figures), and zombies of the fuzzer's clone children (another exit
/// signal than SIGCHLD) were never reaped by busybox init once orphaned.
/// The attackers end per uid: root's `kill -9 -1` would end the console's
/// `login` too, as on Linux. `STRESS_ONLY=bomb,hog,fuzz` (a subset)
/// narrows a failure down. About 60 s.
#[test]
fn stress_at_64m() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use support_many::shell::{busybox_image, ok, same, BOOT_TIMEOUT, CMD_TIMEOUT};
    use support_many::{Fleet, Runner, State, LOGIN_PROMPT};

    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &busybox_image(), "64M").unwrap();
    let img = tools::programs_disk(fleet.dir(), "stress", &["memhog", "fuzz_syscalls"], "16M");
    fleet.extra_args = vec![format!("ubd1={}", img.display())];
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    let pid = g.pid();
    // The host side: the peak Pss of umlrun and its stubs, every 200 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut peak_kb, mut peak_procs) = (0u64, 0usize);
            while !stop.load(Ordering::Relaxed) {
                let (kb, n) = procs::tree_pss_kb(pid);
                peak_kb = peak_kb.max(kb);
                peak_procs = peak_procs.max(n);
                std::thread::sleep(Duration::from_millis(200));
            }
            (peak_kb, peak_procs)
        })
    };
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "mount -o ro /dev/ubdb /mnt");
    ok(
        g,
        "printf 'bomb::1000:1000::/tmp:/bin/sh\\nhog::1001:1001::/tmp:/bin/sh\\nfuzz::1002:1002::/tmp:/bin/sh\\n' >> /etc/passwd",
    );
    // Each attacker runs under a root loop that restarts it when it dies
    // (the uids differ, so one's kill(-1) or RLIMIT_NPROC cannot reach
    // another), detached from the console's session.
    let attackers = [
        "su bomb -c 'while :; do sleep 1000 & done' >/dev/null 2>&1; sleep 1",
        "su hog -c '/mnt/memhog 100' >/dev/null 2>&1; echo rc=\\$? >> /tmp/hog.log",
        "su fuzz -c '/mnt/fuzz_syscalls -u 1 1000 2000' >> /tmp/fuzz.log 2>&1",
    ];
    let only = std::env::var("STRESS_ONLY").unwrap_or_else(|_| "bomb,hog,fuzz".into());
    let names = ["bomb", "hog", "fuzz"];
    for (a, _) in attackers
        .iter()
        .zip(names)
        .filter(|(_, n)| only.split(',').any(|o| o == *n))
    {
        ok(
            g,
            &format!(
                "setsid sh -c \"echo \\$\\$ >> /tmp/loops; while [ ! -e /tmp/stop ]; do {a}; done\" </dev/null >/dev/null 2>&1 &"
            ),
        );
    }
    let started = Instant::now();
    std::thread::sleep(STRESS.saturating_sub(Duration::from_secs(5)));
    // The bomb at its limit, seen by root while all three run (35 s with
    // the host at load 9; more than 60 s once at load 10).
    let asked = Instant::now();
    let (_, bombs) = g
        .run(
            "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$'",
            ROOT_UNDER_ATTACK,
        )
        .unwrap_or_else(|e| panic!("root's command under the attack: {e:?}"));
    let answered = asked.elapsed();
    let bombs = without_kmsg(&bombs);
    std::thread::sleep(STRESS.saturating_sub(started.elapsed()));
    // Log out and in again on the console while the attackers run.
    let at = g.mark();
    g.send("exit\n").unwrap();
    g.expect(LOGIN_PROMPT, at, BOOT_TIMEOUT).unwrap();
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    same(g, "id -u", "0");
    // End them: root's restart loops first (so nothing respawns), then
    // each attacker uid's own `kill -9 -1` (a root `kill -9 -1` would end
    // the console's login too, as on Linux), twice, until no process of
    // those uids is left.
    // (A loop may have ended already: a non-interactive sh exits when it
    // cannot fork, and the attackers can fill the task cap.)
    ok(
        g,
        "touch /tmp/stop; kill -9 $(cat /tmp/loops) 2>/dev/null; true",
    );
    ok(
        g,
        "for i in 1 2 3 4 5; do for u in bomb hog fuzz; do su $u -c 'kill -9 -1' 2>/dev/null; done; \
         cat /proc/[0-9]*/status 2>/dev/null | grep -qE '^Uid:[[:space:]]+100[012][[:space:]]' || break; sleep 0.5; done; true",
    );
    let left = ok(
        g,
        "for f in $(grep -lE '^Uid:[[:space:]]+100[012][[:space:]]' /proc/[0-9]*/status 2>/dev/null); do \
         grep -E '^(Name|State|Pid|PPid|Uid|SigBlk|SigIgn)' $f | tr '\\n' ' '; echo; done; true",
    );
    let left = without_kmsg(&left);
    let hog = without_kmsg(&ok(g, "cat /tmp/hog.log"));
    let fuzz = without_kmsg(&ok(g, "cat /tmp/fuzz.log"));
    g.send("poweroff\n").unwrap();
    let status = g.wait_exited(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    let (peak_kb, peak_procs) = sampler.join().unwrap();
    let all = String::from_utf8_lossy(&g.transcript()).replace('\r', "");
    eprintln!(
        "stress_at_64m: peak host memory {peak_kb} KiB (Pss of umlrun and stubs), peak {peak_procs} host processes; \
         bomb {} sleeps at 15 s (root's command answered in {answered:.1?}); memhog runs {} ({} OOM-killed); \
         fuzz seeds done {}",
        bombs.lines().last().unwrap_or("").trim(),
        hog.lines().count(),
        hog.matches("rc=137").count(),
        fuzz.lines().filter(|l| l.contains(" calls in ")).count(),
    );
    match status {
        Some(st) => assert_eq!(st.code(), Some(0), "umlrun ended {st}\n{}", g.tail(30)),
        None => panic!("umlrun still runs 30 s after poweroff\n{}", g.tail(30)),
    }
    assert!(
        !all.contains("panicked"),
        "umlrun panicked:\n{}",
        g.tail(30)
    );
    assert!(
        left.trim().is_empty(),
        "attackers left after their uids' kill -9 -1:\n{left}"
    );
    let bound = 64 * 1024 + KERNEL_OVERHEAD_KIB;
    assert!(
        peak_kb > 0 && peak_kb <= bound,
        "host memory of the instance peaked at {peak_kb} KiB, bound {bound} KiB"
    );
    // Each attacker really ran: the bomb stood at its limit, the hog was
    // OOM-killed, the fuzzer started.
    let bombs: u32 = bombs
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(bombs >= 100, "only {bombs} fork-bomb processes at 15 s");
    assert!(
        hog.contains("rc=137"),
        "memhog was never OOM-killed:\n{hog}"
    );
    assert!(
        fuzz.contains("fuzz: seeds "),
        "the fuzzer did not start:\n{fuzz}"
    );
    assert!(
        !fuzz.contains("STUCK"),
        "fuzzer: a process outlived SIGKILL:\n{fuzz}"
    );
}
