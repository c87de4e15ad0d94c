//! Host memory goes back: a guest (mem=256M) allocates and touches 128 MiB,
//! then frees it; the host-resident size of umlrun's physmem memfd must go
//! up by at least 100 MiB while the memory is in use and come back to
//! within 2 MiB of where it was once it is freed. Measured from the host,
//! two ways: the Rss of umlrun's mapping of the memfd (/proc/<pid>/smaps)
//! and the memfd's allocated blocks (fstat st_blocks via /proc/<pid>/fd),
//! in both ubd modes.
//!
//! The guest side is busybox: `dd if=/dev/zero bs=128M count=1 iflag=fullblock`
//! mallocs a
//! 128 MiB buffer and fills it from /dev/zero (every page touched); piped
//! into a `sleep` that never reads, dd then blocks in write holding the
//! buffer until the job is killed.

mod support_many;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support_many::{Fleet, Instance, Runner};

const MIB: u64 = 1 << 20;
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the figures to settle (not an assertion on speed:
/// the check is on the value reached).
const SETTLE: Duration = Duration::from_secs(60);
/// The name src/physmem gives its memfd (`MemFd::create("umlrun-physmem", ..)`).
const MEMFD_LINK: &str = "/memfd:umlrun-physmem";

fn backing() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

/// Host-side figures of umlrun's physmem, in bytes.
#[derive(Clone, Copy, Debug)]
struct Resident {
    /// Rss of umlrun's mapping(s) of the memfd.
    rss: u64,
    /// The memfd's st_blocks * 512: what the host really holds for it.
    blocks: u64,
}

/// The /proc path of umlrun's physmem memfd.
fn memfd_path(pid: i32) -> PathBuf {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut found = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            if target.to_string_lossy().starts_with(MEMFD_LINK) {
                found.push(e.path());
            }
        }
    }
    assert!(
        !found.is_empty(),
        "no fd of umlrun (pid {pid}) links to {MEMFD_LINK}"
    );
    found.swap_remove(0)
}

/// Sum of Rss over every mapping of the memfd in /proc/<pid>/smaps.
fn memfd_rss(pid: i32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_memfd = false;
    let mut mapped = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        // A mapping's header starts with its address range "lo-hi".
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_memfd = line.contains(MEMFD_LINK);
            mapped |= in_memfd;
        } else if in_memfd {
            if let Some(v) = line.strip_prefix("Rss:") {
                kib += v
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    assert!(mapped, "umlrun (pid {pid}) has no mapping of {MEMFD_LINK}");
    kib * 1024
}

fn resident(g: &Instance) -> Resident {
    let pid = g.pid();
    let fd = memfd_path(pid);
    Resident {
        rss: memfd_rss(pid),
        blocks: std::fs::metadata(&fd).unwrap().blocks() * 512,
    }
}

/// Poll until `ok` holds (or SETTLE passes); returns the last figures.
fn settle(g: &Instance, ok: impl Fn(Resident) -> bool) -> Resident {
    let end = Instant::now() + SETTLE;
    loop {
        let r = resident(g);
        if ok(r) || Instant::now() >= end {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_ok(g: &mut Instance, cmd: &str) -> String {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(status, 0, "`{cmd}` exited {status}; output:\n{out}");
    out
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

fn allocate_and_free_128m(mode: &str) {
    let mut fleet = Fleet::new(Runner::umlrun(mode), &backing(), "256M").unwrap();
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(CMD_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();

    // Warm up: the same programs once, so their page cache and the shell's
    // job table are in place before the baseline.
    run_ok(
        g,
        "dd if=/dev/zero bs=1M count=1 iflag=fullblock 2>/dev/null | sleep 1000 &",
    );
    run_ok(g, "kill %1; wait; sync");
    run_ok(g, "jobs; ps >/dev/null");
    let before = resident(g);

    run_ok(
        g,
        "dd if=/dev/zero bs=128M count=1 iflag=fullblock 2>/dev/null | sleep 1000 &",
    );
    let during = settle(g, |r| {
        r.rss >= before.rss + 100 * MIB && r.blocks >= before.blocks + 100 * MIB
    });
    eprintln!("ubd={mode}: before {before:?}, during {during:?}");
    // busybox runs dd in the forked shell (no exec): ps shows `{dd} -sh`.
    let ps = run_ok(g, "ps");
    assert!(
        ps.contains("{dd}") && ps.contains("sleep 1000"),
        "dd is no longer running, nothing holds the buffer:\n{ps}"
    );

    run_ok(g, "kill %1; wait");
    let near = |a: u64, b: u64| a.abs_diff(b) <= 2 * MIB;
    let after = settle(g, |r| {
        near(r.rss, before.rss) && near(r.blocks, before.blocks)
    });
    eprintln!(
        "ubd={mode}: memfd Rss {:.1} -> {:.1} -> {:.1} MiB; blocks {:.1} -> {:.1} -> {:.1} MiB",
        mib(before.rss),
        mib(during.rss),
        mib(after.rss),
        mib(before.blocks),
        mib(during.blocks),
        mib(after.blocks)
    );
    assert!(
        during.rss >= before.rss + 100 * MIB,
        "ubd={mode}: memfd Rss went from {:.1} to only {:.1} MiB with 128 MiB in use",
        mib(before.rss),
        mib(during.rss)
    );
    assert!(
        during.blocks >= before.blocks + 100 * MIB,
        "ubd={mode}: memfd blocks went from {:.1} to only {:.1} MiB with 128 MiB in use",
        mib(before.blocks),
        mib(during.blocks)
    );
    assert!(
        near(after.rss, before.rss),
        "ubd={mode}: memfd Rss {:.1} MiB after the free, {:.1} MiB before",
        mib(after.rss),
        mib(before.rss)
    );
    assert!(
        near(after.blocks, before.blocks),
        "ubd={mode}: memfd blocks {:.1} MiB after the free, {:.1} MiB before",
        mib(after.blocks),
        mib(before.blocks)
    );
}

#[test]
fn freed_128m_goes_back_to_the_host_ubd_mmap() {
    allocate_and_free_128m("mmap");
}

#[test]
fn freed_128m_goes_back_to_the_host_ubd_copy() {
    allocate_and_free_128m("copy");
}

/// One number field of /proc/<pid>/status (or a thread's status file).
fn status_field(path: &std::path::Path, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
}

/// umlrun's own anonymous memory (heap, mostly) as the host counts it.
fn own_anon(pid: i32) -> u64 {
    let kb = status_field(Path::new(&format!("/proc/{pid}/status")), "RssAnon:");
    kb.expect("RssAnon in /proc/pid/status") * 1024
}

/// One mmap-mode instance over a fresh COW, logged in as root.
fn boot_logged_in() -> Fleet {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(CMD_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    fleet
}

/// A burst of guest work (reading every file through many processes)
/// grows umlrun's heap; once the guest is idle again, that memory goes back
/// to the host instead of staying with every instance.
#[test]
fn umlrun_heap_goes_back_after_a_workload() {
    let mut fleet = boot_logged_in();
    let g = &mut fleet.instances[0];
    let pid = g.pid();
    let idle = own_anon(pid);
    run_ok(g, "find / -xdev -type f | xargs cat > /dev/null");
    let end = Instant::now() + SETTLE;
    let mut after = own_anon(pid);
    while after > idle + 256 * 1024 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        after = own_anon(pid);
    }
    assert!(
        after <= idle + 256 * 1024,
        "umlrun's anonymous memory: {:.2} MiB idle, {:.2} MiB after the workload",
        mib(idle),
        mib(after)
    );
}

/// umlrun's child processes (its stubs: one per guest process, plus the
/// spares it keeps).
fn stubs(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .map(|c| c.split_whitespace().count())
        .sum()
}

/// Between commands an instance keeps a spare stub for the next fork;
/// once the guest settled (a second without a syscall or fault) it gives
/// the spare back (a process of the host's), and the next fork spawns one.
#[test]
fn a_settled_instance_gives_its_spare_stub_back() {
    let mut fleet = boot_logged_in();
    let g = &mut fleet.instances[0];
    let pid = g.pid();
    run_ok(g, "true");
    // The prompt came before the idle kernel spawned its spare.
    std::thread::sleep(Duration::from_millis(300));
    let busy = stubs(pid);
    std::thread::sleep(Duration::from_millis(2500));
    let settled = stubs(pid);
    assert_eq!(
        settled + 1,
        busy,
        "stubs right after a command {busy}, after 2.5 s idle {settled}"
    );
    run_ok(g, "true");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stubs(pid), busy, "a spare is kept again after a command");
}

/// Resident kB of each child's seccomp shared area (`memfd:umlrun-stub-shm`
/// mappings; ptrace stubs have none).
fn shared_area_kb(pid: i32) -> Vec<u64> {
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    kids.split_whitespace()
        .filter_map(|k| std::fs::read_to_string(format!("/proc/{k}/smaps")).ok())
        .filter(|m| m.contains("umlrun-stub-shm"))
        .map(|m| {
            let mut in_shm = false;
            let mut kb = 0;
            for l in m.lines() {
                if l.contains('-') && l.split_whitespace().count() >= 5 && !l.ends_with(" kB") {
                    in_shm = l.contains("umlrun-stub-shm");
                } else if let (true, Some(v)) = (in_shm, l.strip_prefix("Rss:")) {
                    kb += v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0);
                }
            }
            kb
        })
        .collect()
}

/// A settled seccomp stub keeps one page of its shared area (the page its
/// frames land in): its op page and the pages a fresh frame (every exec)
/// and an FP image were written in go back, and it runs on afterwards.
#[test]
fn settled_seccomp_stubs_keep_one_shared_page() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    if !cpuinfo.split_whitespace().any(|w| w == "fsgsbase") {
        eprintln!("no FSGSBASE: the seccomp platform cannot run here");
        return;
    }
    let mut fleet = boot_logged_in();
    let g = &mut fleet.instances[0];
    let pid = g.pid();
    // A fresh exec in a new stub (the shell's child), then idle.
    run_ok(g, "sleep 30 &");
    std::thread::sleep(Duration::from_millis(2500));
    let kb = shared_area_kb(pid);
    assert!(kb.len() >= 3, "seccomp stubs with a shared area: {kb:?}");
    assert!(kb.iter().all(|&k| k <= 4), "resident kB per stub: {kb:?}");
    // The settled stubs run on: the shell's maps and runs ops again (its
    // op page's constants written anew), a child forks and execs.
    let out = run_ok(g, "cat /proc/self/stat > /dev/null; echo sh-$((6 * 7))");
    assert!(out.contains("sh-42"), "{out}");
    std::thread::sleep(Duration::from_millis(2500));
    let again = shared_area_kb(pid);
    assert!(
        again.iter().all(|&k| k <= 4),
        "resident kB per stub: {again:?}"
    );
    assert!(run_ok(g, "echo back").contains("back"));
}

/// Voluntary context switches of all of a process's threads so far.
fn wakeups(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| status_field(&t.path().join("status"), "voluntary_ctxt_switches:"))
        .sum()
}

/// An idle instance (at its shell prompt, nothing running) does not wake
/// the host up: no preemption tick while no guest code runs, only the
/// console's slow polls of the terminal size (a few a second; the test
/// harness's pty is not umlrun's controlling terminal, so no SIGWINCH
/// would say) — hundreds of idle instances must not keep a host CPU busy.
#[test]
fn an_idle_instance_does_not_tick() {
    let mut fleet = boot_logged_in();
    let g = &mut fleet.instances[0];
    run_ok(g, "true");
    std::thread::sleep(Duration::from_millis(500));
    let pid = g.pid();
    let before = wakeups(pid);
    std::thread::sleep(Duration::from_secs(3));
    let woke = wakeups(pid) - before;
    // A 10 ms tick alone would be ~300 here.
    assert!(woke <= 40, "an idle umlrun woke up {woke} times in 3 s");
}

/// An idle instance whose console is not a terminal (stdin and stdout are
/// pipes, as under a supervisor) does not wake up at all: it sleeps in one
/// epoll_wait until input or a deadline comes, and an idle guest has none.
#[test]
fn an_idle_instance_off_a_terminal_sleeps_without_waking() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::umlrun("mmap");
    let cow = dir.path().join("idle.cow");
    runner.make_cow(&cow, &backing()).unwrap();
    let argv = runner.argv(&cow, &backing(), "idle-pipe", dir.path(), "64M");
    // Killed with its stubs by pid if the test fails before its SIGTERM.
    let mut child = support_many::procs::Reaped::spawn(
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let pid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(6).any(|w| w == b"login:") {
                let _ = tx.send(());
            }
        }
    });
    let booted = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let woke = booted.then(|| {
        // Boot's last deadlines (the heap trim a second after work) pass.
        std::thread::sleep(Duration::from_millis(1500));
        let before = wakeups(pid);
        std::thread::sleep(Duration::from_secs(3));
        wakeups(pid) - before
    });
    // SIGTERM: a clean shutdown (stubs stopped, the COW synced).
    // SAFETY: kill(2) of the child we spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
    drop(child.stdin.take());
    let _ = reader.join();
    assert!(booted, "no login prompt within 60 s");
    let woke = woke.unwrap();
    assert!(
        woke <= 2,
        "an idle umlrun on pipes woke up {woke} times in 3 s"
    );
}
