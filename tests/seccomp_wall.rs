//! The seccomp platform and the wall between guest code and the host.
//!
//! `isolation_tally` runs the isolation probes below (and t_int80,
//! t_isolation) on both platforms and sums the attempts each prints.
//!
//! - t_wall (tests/guest/t_wall.c) tries every way it knows to make a host
//!   syscall that creates a marker file (raw `syscall` from its text and
//!   from a page it maps, `int $0x80`, `sysenter`, x32 numbers, vsyscall,
//!   jumps into the stub's code), on both platforms: no marker may appear
//!   on the host.
//! - t_stubarea (tests/guest/t_stubarea.c) tries to map over, protect,
//!   remap, unmap and write the stub's pages and to make the stub's op loop
//!   do it, on both platforms: every attempt fails or kills only the
//!   attempting process.
//! - t_memsteal (tests/guest/t_memsteal.c) jumps to every `syscall` in
//!   the stub's code with a host mmap of the guest memory file in its
//!   registers, on both platforms: another guest process's secret page
//!   must never be found.
//! - t_tickblock (tests/guest/t_tickblock.c) blocks every host signal with
//!   a forged frame at the stub's rt_sigreturn and spins: the kernel kills
//!   it and runs on.
//! - t_revoke (tests/guest/t_revoke.c): a mapping taken away cannot be
//!   used afterwards by any thread of the process, several boots on each
//!   platform (`REVOKE_RUNS=50` for a long run).
//! - A few compared guest programs run under `platform=seccomp` whatever
//!   UMLRUN_PLATFORM says, so CI covers the second platform even where it
//!   runs the whole suite on one (the whole suite runs under either with
//!   `UMLRUN_PLATFORM=seccomp cargo test --release --test guest_suite`).
mod support;

use std::path::Path;

use support::*;

fn opts(platform: &str) -> GuestOptions {
    GuestOptions {
        extra: vec![format!("platform={platform}")],
        ..GuestOptions::default()
    }
}

/// Runs guest program `name` (built natively first) on `platform` to its
/// end: the run and its exit status.
fn run_probe(name: &str, platform: &str) -> (GuestRun, i32) {
    let image = tests_image();
    native_bin(name);
    let run = run_guest_with(&image, &format!("/tests/{name}"), &opts(platform));
    let status = run.expect_finished(&format!("{name} on {platform}"));
    (run, status)
}

/// A probe's share of the isolation tally, from its last line `tally:
/// attempts N [reached M]` (M: attacks the probe itself saw succeed;
/// absent where only the host can tell).
fn tally_line(run: &GuestRun, name: &str, platform: &str) -> (u64, u64) {
    let line = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("tally: attempts "))
        .unwrap_or_else(|| panic!("{name} on {platform}: no tally line\n{}", run.tail(30)));
    let mut w = line.split_whitespace();
    let attempts = w.next().and_then(|n| n.parse().ok());
    let reached = match (w.next(), w.next()) {
        (Some("reached"), Some(m)) => m.parse().ok(),
        (None, _) => Some(0),
        _ => None,
    };
    match (attempts, reached) {
        (Some(a), Some(r)) => (a, r),
        _ => panic!("{name} on {platform}: bad tally line {line:?}"),
    }
}

/// Files under the host's /tmp whose names start with the guest's
/// `prefix` (a guest path /tmp/NAME-random): each is a host effect.
fn host_files(prefix: &str, tag: &str) -> Vec<String> {
    assert!(prefix.starts_with(&format!("/tmp/{tag}-")) && prefix.len() > tag.len() + 6);
    let name = Path::new(prefix)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&name))
        .collect()
}

/// A probe's (attempts, host effects) on one platform.
type Tally = (u64, u64);

/// A probe: runs its program on a platform and checks it.
type Probe = fn(&str) -> Tally;

/// t_wall: no marker file may appear on the host.
fn wall(platform: &str) -> Tally {
    let (run, status) = run_probe("t_wall", platform);
    let prefix = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("wall prefix: "))
        .unwrap_or_else(|| {
            panic!(
                "t_wall printed no prefix (status {status})\n{}",
                run.tail(30)
            )
        })
        .trim()
        .to_string();
    assert_eq!(status, 0, "t_wall failed in the guest\n{}", run.tail(30));
    let leaked = host_files(&prefix, "wall");
    assert!(
        leaked.is_empty(),
        "guest code created {leaked:?} on the host (platform {platform})\n{}",
        run.tail(60)
    );
    // The guest's own syscall went to the guest kernel, which created the
    // file in the guest; the stub's code page was found and jumped into.
    assert!(
        run.stdout
            .contains("own syscall created the file in this system: yes"),
        "{}",
        run.tail(60)
    );
    let sites: usize = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("stub syscall sites: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(sites >= 2, "no stub syscall sites found\n{}", run.tail(60));
    let (attempts, reached) = tally_line(&run, "t_wall", platform);
    (attempts, reached + leaked.len() as u64)
}

/// t_stubarea: the stub's pages (code, op lists, XSAVE, the seccomp
/// shared area) cannot be mapped over, protected, remapped or written by
/// guest code, and the instance survives every attempt.
fn stub_area(platform: &str) -> Tally {
    let (run, status) = run_probe("t_stubarea", platform);
    assert!(
        status == 0 && run.stdout.contains("stubarea: ok") && !run.stdout.contains("FAIL"),
        "t_stubarea failed on {platform} (status {status})\n{}",
        run.tail(40)
    );
    tally_line(&run, "t_stubarea", platform)
}

/// t_memsteal: a guest process that jumps to each `syscall` in the
/// stub's code with mmap(window, MAP_SHARED|MAP_FIXED, host fd guess,
/// offset) in its registers must not map the guest memory file (or a disk
/// image): another process's secret page is never found, and the instance
/// keeps working.
fn memsteal(platform: &str) -> Tally {
    let (run, status) = run_probe("t_memsteal", platform);
    assert!(
        status == 0 && run.stdout.contains("memsteal: safe") && !run.stdout.contains("STOLEN"),
        "t_memsteal on {platform}: one guest process read another's memory (status {status})\n{}",
        run.tail(40)
    );
    let sites: usize = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("stub syscall sites: "))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(sites >= 2, "no stub syscall sites found\n{}", run.tail(40));
    tally_line(&run, "t_memsteal", platform)
}

/// t_int80: int $0x80 in a 64-bit task is SIGSEGV, as on a kernel without
/// IA32 emulation (the host may serve it, so no native comparison).
fn int80(platform: &str) -> Tally {
    let (run, status) = run_probe("t_int80", platform);
    assert!(
        status == 0
            && run
                .stdout
                .contains("int80: SIGSEGV si_code SI_KERNEL at the int, eax kept"),
        "t_int80 on {platform} (status {status})\n{}",
        run.tail(20)
    );
    tally_line(&run, "t_int80", platform)
}

/// t_isolation: a file the guest creates under /tmp lives in the guest's
/// disk only.
fn isolation(platform: &str) -> Tally {
    let (run, status) = run_probe("t_isolation", platform);
    let path = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("isolation file: "))
        .unwrap_or_else(|| {
            panic!(
                "t_isolation printed no path (status {status})\n{}",
                run.tail(20)
            )
        })
        .trim()
        .to_string();
    assert_eq!(
        status,
        0,
        "t_isolation failed in the guest\n{}",
        run.tail(20)
    );
    let leaked = host_files(&path, "isolation");
    assert!(
        leaked.is_empty(),
        "the guest's {path} appeared on the host: a guest syscall reached the host"
    );
    let (attempts, reached) = tally_line(&run, "t_isolation", platform);
    (attempts, reached + leaked.len() as u64)
}

/// The isolation attempts this test must make at the least: per platform
/// t_wall 33 (7 ways + 2 per stub syscall site, 13 sites), t_stubarea 162
/// (84 mapping calls and writes, 6 jumps per site), t_memsteal 13 (one
/// attacker per site), t_int80 1, t_isolation 1: 420 on both. A probe
/// dropped (or a stub with fewer sites) fails the test.
const MIN_ATTEMPTS: u64 = 2 * (33 + 162 + 13 + 1 + 1);

/// Every isolation probe on both platforms, summed: "isolation: N
/// attempts, 0 host effects" (the figure HOWTO "Security" states). A host
/// effect is a marker file on the host, or an attack a probe saw succeed.
#[test]
fn isolation_tally() {
    let probes: [(&str, Probe); 5] = [
        ("t_wall", wall),
        ("t_stubarea", stub_area),
        ("t_memsteal", memsteal),
        ("t_int80", int80),
        ("t_isolation", isolation),
    ];
    let (mut attempts, mut effects) = (0, 0);
    for platform in ["ptrace", "seccomp"] {
        for (name, probe) in probes {
            let (a, e) = probe(platform);
            eprintln!("{name} on {platform}: {a} attempts, {e} host effects");
            attempts += a;
            effects += e;
        }
    }
    eprintln!("isolation: {attempts} attempts, {effects} host effects");
    assert_eq!(
        effects, 0,
        "isolation: {attempts} attempts, {effects} host effects"
    );
    assert!(
        attempts >= MIN_ATTEMPTS,
        "isolation: only {attempts} attempts (at least {MIN_ATTEMPTS} expected)"
    );
}

/// t_tickblock: a guest process that blocks every host signal with a
/// forged frame at the stub's own rt_sigreturn and spins is killed (on
/// seccomp; on ptrace the jump is an ordinary guest syscall and the
/// parent kills it); the instance runs on: no guest can freeze the kernel
/// by escaping the preemption tick.
fn tickblock(platform: &str) {
    let (run, status) = run_probe("t_tickblock", platform);
    assert!(
        status == 0
            && run.stdout.contains("rt_sigreturn site found: yes")
            && run.stdout.contains("tickblock: ok"),
        "t_tickblock on {platform} (status {status})\n{}",
        run.tail(40)
    );
    if platform == "seccomp" {
        assert!(
            run.stdout.contains("child ended: SIGKILL"),
            "{}",
            run.tail(40)
        );
    }
}

#[test]
fn t_tickblock_ptrace() {
    tickblock("ptrace");
}

#[test]
fn t_tickblock_seccomp() {
    tickblock("seccomp");
}

/// A compared program under platform=seccomp: same output and status as
/// natively.
fn compare_seccomp(name: &str) {
    compare_on(name, "seccomp", 1);
}

/// `name` run `runs` times under `platform`: each run the same output and
/// status as natively.
fn compare_on(name: &str, platform: &str, runs: usize) {
    let image = tests_image();
    let native = run_native(&native_bin(name), &[], timeout());
    let native_status = native.expect_finished(&format!("{name} (native)"));
    for run in 1..=runs {
        let guest = run_guest_with(&image, &format!("/tests/{name}"), &opts(platform));
        let guest_status = guest.expect_finished(&format!("{name} on {platform}"));
        assert!(
            guest.stdout == native.stdout && guest_status == native_status,
            "{name} on {platform}, run {run}: differs from native (status {native_status} vs {guest_status})\n{}\n{}",
            diff(&native.stdout, &guest.stdout),
            guest.tail(20)
        );
    }
}

/// How many times the t_revoke tests boot it (`REVOKE_RUNS`, default 3;
/// each run is 7 x 40 rounds of a thread using a page another revokes).
fn revoke_runs() -> usize {
    std::env::var("REVOKE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// t_revoke (issue 10): a mapping taken away (munmap, mprotect to
/// PROT_NONE or PROT_READ, MAP_FIXED over it) cannot be used afterwards,
/// by the task that took it away or by another thread of the process
/// using it at that moment, and a reused frame's new contents never show
/// through the old address: the stub's mapping changes are in force
/// before any task of the address space runs again. SIGSEGV at the same
/// access as natively, on both platforms, several boots each.
#[test]
fn t_revoke_seccomp() {
    compare_on("t_revoke", "seccomp", revoke_runs());
}

#[test]
fn t_revoke_ptrace() {
    compare_on("t_revoke", "ptrace", revoke_runs());
}

macro_rules! seccomp {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { compare_seccomp(stringify!($name)); } )*
    };
}

seccomp!(
    t_signal,
    t_sigxstate,
    t_process,
    t_mm,
    t_futex,
    t_exec_self,
    t_traps
);
