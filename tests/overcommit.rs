//! Overcommit end to end: the real `umlrun` on a pty, a guest program
//! (tests/guest/memhog.c, built here and handed to the guest on a data
//! disk) that allocates past what the instance may hold.
//!
//! - Past `mem=`: the guest's OOM killer kills the program (never init),
//!   the kernel log line names it (console and `dmesg`), the instance
//!   lives, a file written before survives, root logs in again and
//!   `poweroff` ends umlrun with 0.
//! - Past a host budget (`host_mem_max=96M`, and a real 96 MiB memory
//!   cgroup where the machine lets us make one) of a `mem=256M` guest: the
//!   same, with the instance's count of what it holds under the budget at
//!   its peak and 0 host OOM kills.
//! - With a 256 MiB swap disk in that budget: the 220 MB program finishes
//!   and every page reads back right; bad swap areas give Linux's errors;
//!   swapoff brings back what is still out.
//! - The swap cache: pages read back and not written go out again without
//!   a write (pswpout well below pswpin over repeated reads); `stats`'
//!   swap object moves with /proc/vmstat and /proc/meminfo.
//! - tmpfs pages go to swap: /tmp filled past the budget reads back right;
//!   so do the pages of a detached SysV shm segment.
//! - Shared pages go to swap while shared (MAP_SHARED|MAP_ANONYMOUS across
//!   fork, attached SysV shm, fork's copy-on-write pages) and every sharer
//!   reads them back right.
//! - fork and exec under hard swapping: every child runs and exits right,
//!   nothing is OOM-killed, the budget holds.
//!
//! Every instance is stopped by pid when a test fails (the harness's Drop).

mod support;
mod support_many;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support_many::shell::{busybox_image as backing, fails, ok, same};
use support_many::tools::programs_disk;
use support_many::{Fleet, Instance, Runner, State, LOGIN_PROMPT};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// A program that touches a few hundred MB under pressure.
const HOG_TIMEOUT: Duration = Duration::from_secs(240);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// An ext2 image holding /memhog, /shmhog, /sharehog and /forkswap
/// (gcc -static of tests/guest/memhog.c, shmhog.c, sharehog.c,
/// forkswap.c).
fn hog_disk(dir: &Path) -> PathBuf {
    programs_disk(
        dir,
        "hogtree",
        &["memhog", "shmhog", "sharehog", "forkswap"],
        "16M",
    )
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

/// `stats` as JSON, through `umlctl`.
fn stats(fleet: &Fleet) -> serde_json::Value {
    try_stats(fleet).unwrap_or_else(|e| panic!("{e}"))
}

fn try_stats(fleet: &Fleet) -> Result<serde_json::Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_umlctl"))
        .arg(format!("uml_dir={}", fleet.uml_dir().display()))
        .arg(&fleet.instances[0].umid)
        .args(["stats", "--json"])
        .output()
        .map_err(|e| format!("umlctl: {e}"))?;
    if !out.status.success() {
        return Err(format!("umlctl stats: {out:?}"));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("stats: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The 220 MB program in a 96 MiB budget without swap: killed inside the
/// guest, the instance lives and keeps under its budget.
fn hog_in_a_budget(fleet: &mut Fleet) {
    hog_in_a_budget_of(fleet, Some(96 << 20));
}

/// As `hog_in_a_budget`; `want`: the budget stats must show (None: any
/// at most 96 MiB, as a cgroup's share is).
fn hog_in_a_budget_of(fleet: &mut Fleet, want: Option<u64>) {
    let g = &mut fleet.instances[0];
    ok(g, "echo written-before > /root/keep.txt && sync");
    let at = g.mark();
    let (_, out) = run_hog(g, 220);
    assert!(out.contains("status=137"), "memhog was not killed:\n{out}");
    let console = String::from_utf8_lossy(&g.transcript()[at..]).replace('\r', "");
    assert!(
        console.contains("Out of memory: Killed process") && console.contains("(memhog)"),
        "no kernel line naming the victim:\n{console}"
    );
    let s = stats(fleet);
    eprintln!("stats after the kill: {}", s["budget"]);
    let budget = s["budget"]["host_mem_max_bytes"].as_u64().unwrap();
    match want {
        Some(w) => assert_eq!(budget, w, "{s}"),
        None => assert!(budget <= 96 << 20, "{s}"),
    }
    assert!(s["oom"]["kills"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        s["budget"]["held_bytes"].as_u64().unwrap() < budget,
        "held past the budget: {s}"
    );
    assert!(
        s["budget"]["peak_held_bytes"].as_u64().unwrap() < budget,
        "held past the budget at its peak: {s}"
    );
    let g = &mut fleet.instances[0];
    same(g, "cat /root/keep.txt", "written-before");
    relogin_and_poweroff(g);
}

#[test]
fn host_mem_max_a_220m_program_in_96m_is_killed_in_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::new(dir.path());
    let mut fleet = boot("256M", &["host_mem_max=96M".into(), notify.switch()]);
    hog_in_a_budget(&mut fleet);
    // The balancer's events: near the budget, then the kill.
    let events = notify.drain();
    assert!(events.contains("memory near-budget"), "{events}");
    assert!(
        events.contains("memory oom-kill pid=") && events.contains("comm=memhog"),
        "{events}"
    );
}

/// A socket for UML's notify messages (`mconsole=notify:`).
struct Notify {
    sock: std::os::unix::net::UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn new(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        Notify { sock, path }
    }

    fn switch(&self) -> String {
        format!("mconsole=notify:{}", self.path.display())
    }

    /// Every message received so far, as text.
    fn drain(&self) -> String {
        let mut all = String::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = self.sock.recv(&mut buf) {
            all.push_str(&String::from_utf8_lossy(&buf[..n]).replace('\0', ""));
            all.push('\n');
        }
        all
    }
}

/// The same as `host_mem_max_...` but with the budget from a real memory
/// cgroup (v1 or v2, whichever the machine lets us make) of 96 MiB, and 0
/// host OOM kills in it.
#[test]
fn cgroup_a_220m_program_in_96m_is_killed_in_the_guest() {
    let name = format!("umlrun-overcommit-{}", std::process::id());
    let cg = match support::cgroup::MemCgroup::new(&name, 96 << 20) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: no memory cgroup can be made here: {why}");
            return;
        }
    };
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "256M").unwrap();
    let img = hog_disk(fleet.dir());
    fleet.runner.binary = cg.wrapper(fleet.dir(), Path::new(env!("CARGO_BIN_EXE_umlrun")));
    fleet.extra_args = vec![format!("ubd1={}", img.display())];
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "mount -o ro /dev/ubdb /mnt");
    let s = stats(&fleet);
    let source = s["budget"]["source"].as_str().unwrap_or("").to_string();
    assert!(
        source.starts_with("cgroup v"),
        "budget not from the cgroup: {s}"
    );
    hog_in_a_budget_of(&mut fleet, None);
    assert_eq!(cg.oom_kills(), 0, "the host's OOM killer acted");
    drop(fleet);
}

/// With a 256 MiB swap disk (busybox mkswap + swapon), the same 220 MB
/// program in the same 96 MiB budget finishes and every page reads back
/// as written; the swap traffic shows in /proc/vmstat, the area in
/// /proc/swaps and meminfo; after the program ends its slots are free
/// again, and swapoff brings back the rest (the idle shell's pages) and
/// takes the area out, the shell going on.
#[test]
fn with_swap_a_220m_program_in_96m_finishes_and_every_page_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let swap = dir.path().join("swap.img");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let notify = Notify::new(dir.path());
    let mut fleet = boot(
        "256M",
        &[
            "host_mem_max=96M".into(),
            format!("ubd2={}", swap.display()),
            notify.switch(),
        ],
    );
    let g = &mut fleet.instances[0];
    // Bad areas get Linux's errors: no signature, a mounted disk, twice.
    fails(g, "swapon /dev/ubdc", "Invalid argument");
    fails(g, "swapon /dev/ubdb", "Device or resource busy");
    fails(g, "swapoff /dev/ubdc", "Invalid argument");
    ok(g, "mkswap /dev/ubdc");
    ok(g, "swapon /dev/ubdc");
    fails(g, "swapon /dev/ubdc", "Device or resource busy");
    let swaps = ok(g, "cat /proc/swaps");
    assert!(
        swaps.contains("/dev/ubdc") && swaps.contains("partition") && swaps.contains("262140"),
        "/proc/swaps:\n{swaps}"
    );
    same(g, "awk '/SwapTotal/ {print $2}' /proc/meminfo", "262140");
    let (_, out) = run_hog(g, 220);
    assert!(
        out.contains("memhog: 220 MiB ok") && out.contains("status=0"),
        "memhog did not finish with every page right:\n{out}"
    );
    let vm = ok(g, "grep pswp /proc/vmstat");
    let count = |k: &str| -> u64 {
        vm.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(count("pswpout ") > 10_000, "{vm}");
    assert!(count("pswpin ") > 10_000, "{vm}");
    // The stalls show in PSI, the swapping on the notify socket.
    let psi = ok(g, "cat /proc/pressure/memory");
    let some_total: u64 = psi
        .lines()
        .find_map(|l| l.strip_prefix("some "))
        .and_then(|l| l.rsplit("total=").next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        some_total > 0 && psi.contains("\nfull avg10="),
        "/proc/pressure/memory:\n{psi}"
    );
    let events = notify.drain();
    assert!(events.contains("memory swapping pages="), "{events}");
    // The hog's slots are free again; what is left in swap are a few
    // pages of the idle init, getty and shell, which swapoff brings back.
    let used = ok(
        g,
        "awk '/SwapTotal/ {t=$2} /SwapFree/ {f=$2} END {print t-f}' /proc/meminfo",
    );
    let used: u64 = used.trim().parse().unwrap();
    assert!(used < 2048, "{used} kB still in swap after the hog ended");
    let s = stats(&fleet);
    eprintln!("stats after the swap run: {}", s["budget"]);
    assert!(
        s["budget"]["peak_held_bytes"].as_u64().unwrap() < 96 << 20,
        "held past the budget: {s}"
    );
    assert_eq!(s["oom"]["kills"].as_u64(), Some(0), "{s}");
    let g = &mut fleet.instances[0];
    ok(g, "swapoff /dev/ubdc");
    same(g, "awk '/SwapTotal/ {print $2}' /proc/meminfo", "0");
    same(g, "tail -n +2 /proc/swaps | wc -l", "0");
    relogin_and_poweroff(g);
}

/// The swap cache: a 160 MB program in a 96 MiB budget with a 512 MiB
/// swap disk reads all its pages four times over. A page read back keeps
/// its slot until written, so going out again costs no write: pswpout
/// ends well below pswpin, where without the cache every page read back
/// had been written once for it (pswpout >= pswpin). While the pages are
/// held, SwapCached in /proc/meminfo and nr_swapcached in /proc/vmstat
/// show the cache; when the program ends its slots are free again.
/// `stats` (mconsole) shows the same: its swap object is empty before
/// swapon, has the area's size after, counts pswpin/pswpout as
/// /proc/vmstat does, shows what is out and cached while the pages are
/// held, and is empty again after swapoff.
#[test]
fn with_swap_a_clean_page_goes_out_again_without_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let swap = dir.path().join("swap.img");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let mut fleet = boot(
        "256M",
        &[
            "host_mem_max=96M".into(),
            format!("ubd2={}", swap.display()),
        ],
    );
    // `stats` has a swap object: nothing before swapon, the area after.
    let s0 = stats(&fleet);
    assert_eq!(s0["swap"]["total_bytes"].as_u64(), Some(0), "{s0}");
    let g = &mut fleet.instances[0];
    ok(g, "mkswap /dev/ubdc && swapon /dev/ubdc");
    let total_kb: u64 = ok(g, "awk '/SwapTotal/ {print $2}' /proc/meminfo")
        .trim()
        .parse()
        .unwrap();
    let s1 = stats(&fleet);
    assert_eq!(
        s1["swap"]["total_bytes"].as_u64(),
        Some(total_kb * 1024),
        "{s1}"
    );
    let g = &mut fleet.instances[0];
    ok(
        g,
        "/mnt/memhog 160 5 600 4 > /tmp/h.out 2>&1 & echo $! > /tmp/h.pid",
    );
    let start = std::time::Instant::now();
    loop {
        // Shell builtins only while the hog runs: an exec meanwhile may
        // find no frame (the page cache was reclaimed) and fail ENOMEM.
        let out = ok(g, "while read -r l; do echo \"$l\"; done < /tmp/h.out");
        if out.contains("memhog: 160 MiB ok") {
            break;
        }
        assert!(
            !out.contains("bad") && start.elapsed() < 2 * HOG_TIMEOUT,
            "memhog did not check out:\n{out}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let vm = ok(g, "cat /proc/vmstat");
    let count = |k: &str| -> u64 {
        vm.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let (pin, pout, cached) = (count("pswpin "), count("pswpout "), count("nr_swapcached "));
    eprintln!("swap cache run: pswpin {pin} pswpout {pout} nr_swapcached {cached}");
    // Four passes over ~64 MiB that does not fit: tens of thousands of
    // pages read back.
    assert!(pin > 30_000, "{vm}");
    assert!(
        pout * 4 < pin * 3,
        "clean pages were written again: pswpin {pin} pswpout {pout}"
    );
    let sc: u64 = ok(g, "awk '/SwapCached/ {print $2}' /proc/meminfo")
        .trim()
        .parse()
        .unwrap();
    assert!(
        sc > 0 && cached > 0,
        "SwapCached {sc} kB, nr_swapcached {cached}"
    );
    // The figures in `stats` moved with the guest's own: the counters lie
    // between two reads of /proc/vmstat around them (the shell's own
    // commands may swap a little meanwhile), a good part of the 160 MiB
    // is out, and the swap cache shows.
    let s2 = stats(&fleet);
    let g = &mut fleet.instances[0];
    let (pin2, pout2) = (vmstat(g, "pswpin"), vmstat(g, "pswpout"));
    let sw = &s2["swap"];
    let fig = |k: &str| sw[k].as_u64().unwrap_or_else(|| panic!("swap.{k}: {s2}"));
    assert!(
        (pin..=pin2).contains(&fig("pswpin")) && (pout..=pout2).contains(&fig("pswpout")),
        "stats swap {sw} against /proc/vmstat pswpin {pin}..{pin2} pswpout {pout}..{pout2}"
    );
    assert!(fig("used_bytes") > 32 << 20, "{sw}");
    assert!(fig("cached_bytes") > 0, "{sw}");
    assert_eq!(fig("total_bytes"), total_kb * 1024, "{sw}");
    ok(g, "kill $(cat /tmp/h.pid); wait 2>/dev/null; true");
    let used = ok(
        g,
        "awk '/SwapTotal/ {t=$2} /SwapFree/ {f=$2} END {print t-f}' /proc/meminfo",
    );
    let used: u64 = used.trim().parse().unwrap();
    assert!(used < 2048, "{used} kB still in swap after the hog ended");
    let s3 = stats(&fleet);
    assert!(
        s3["swap"]["used_bytes"].as_u64().unwrap() < 2 << 20,
        "{}",
        s3["swap"]
    );
    let g = &mut fleet.instances[0];
    ok(g, "swapoff /dev/ubdc");
    same(g, "awk '/SwapCached/ {print $2}' /proc/meminfo", "0");
    let s4 = stats(&fleet);
    let sw = &s4["swap"];
    assert!(
        sw["total_bytes"].as_u64() == Some(0)
            && sw["used_bytes"].as_u64() == Some(0)
            && sw["cached_bytes"].as_u64() == Some(0)
            && sw["pswpout"].as_u64() >= Some(pout2),
        "after swapoff: {sw}"
    );
    let g = &mut fleet.instances[0];
    relogin_and_poweroff(g);
}

/// tmpfs pages go to swap: 120 MB of random data written to /tmp (tmpfs)
/// of a `mem=256M` guest in a 96 MiB budget with a 256 MiB swap disk.
/// Every file reads back with the checksum it was written with, the
/// instance stays under its budget with no OOM kill, and once the files
/// are removed their slots are free again.
#[test]
fn with_swap_tmpfs_filled_past_the_budget_reads_back_right() {
    let dir = tempfile::tempdir().unwrap();
    let swap = dir.path().join("swap.img");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let mut fleet = boot(
        "256M",
        &[
            "host_mem_max=96M".into(),
            format!("ubd2={}", swap.display()),
        ],
    );
    let g = &mut fleet.instances[0];
    ok(g, "mkswap /dev/ubdc && swapon /dev/ubdc");
    let (st, out) = g
        .run(
            "for i in $(seq 1 15); do dd if=/dev/urandom bs=1M count=8 2>/dev/null \
             | tee /tmp/f$i | md5sum | cut -d' ' -f1 > /tmp/f$i.sum || echo fail $i; done",
            HOG_TIMEOUT,
        )
        .unwrap();
    // Nothing may fail, not even a program's exec (the shell's "-sh:
    // tee: Cannot allocate memory" once left a file unwritten).
    if st != 0 || out.contains("fail") || out.contains("-sh:") {
        panic!("filling /tmp: {out}\n{}", what_happened(&mut fleet));
    }
    let g = &mut fleet.instances[0];
    let sums = ok(g, "cat /tmp/f*.sum | sort -u | wc -l");
    if sums.trim_end() != "15" {
        panic!(
            "{} distinct sums of 15 files; the fill printed:\n{out}\n{}",
            sums.trim_end(),
            what_happened(&mut fleet)
        );
    }
    let g = &mut fleet.instances[0];
    same(
        g,
        "du -sk /tmp | awk '$1 >= 120*1024 {print \"big\"}'",
        "big",
    );
    let vm = ok(g, "grep pswpout /proc/vmstat");
    let pout: u64 = vm.trim().rsplit(' ').next().unwrap().parse().unwrap();
    // At least the 24 MB past the budget went out.
    assert!(pout > 6_000, "{vm}");
    let (st, out) = g
        .run(
            "for i in $(seq 1 15); do [ \"$(md5sum < /tmp/f$i | cut -d' ' -f1)\" = \
             \"$(cat /tmp/f$i.sum)\" ] || echo bad $i; done; echo checked",
            HOG_TIMEOUT,
        )
        .unwrap();
    if st != 0 || out.trim_end() != "checked" {
        panic!(
            "tmpfs data came back wrong: {out}\n{}",
            what_happened(&mut fleet)
        );
    }
    let g = &mut fleet.instances[0];
    let vm = ok(g, "grep pswp /proc/vmstat");
    eprintln!("tmpfs swap run: {vm}");
    let s = stats(&fleet);
    assert!(
        s["budget"]["peak_held_bytes"].as_u64().unwrap() < 96 << 20,
        "held past the budget: {s}"
    );
    assert_eq!(s["oom"]["kills"].as_u64(), Some(0), "{s}");
    let g = &mut fleet.instances[0];
    ok(g, "rm /tmp/f*");
    let used = ok(
        g,
        "awk '/SwapTotal/ {t=$2} /SwapFree/ {f=$2} END {print t-f}' /proc/meminfo",
    );
    let used: u64 = used.trim().parse().unwrap();
    assert!(used < 2048, "{used} kB still in swap after the files went");
    ok(g, "swapoff /dev/ubdc");
    relogin_and_poweroff(g);
}

/// What the guest and the kernel say after the tmpfs fill went wrong: the
/// files and their sums, the kernel log (OOM kills, swap errors), memory
/// and swap figures and the instance's `stats`.
fn what_happened(fleet: &mut Fleet) -> String {
    let g = &mut fleet.instances[0];
    let mut report = String::new();
    for cmd in [
        "ls -l /tmp",
        "for i in $(seq 1 15); do echo \"f$i $(cat /tmp/f$i.sum)\"; done",
        "dmesg | tail -40",
        "cat /proc/meminfo /proc/swaps; grep -E 'pswp|oom' /proc/vmstat",
    ] {
        let out = match g.run(cmd, CMD_TIMEOUT) {
            Ok((st, out)) => format!("(exit {st})\n{out}"),
            Err(e) => format!("failed: {e}\n{}", g.tail(30)),
        };
        report.push_str(&format!("$ {cmd} {out}\n"));
    }
    match try_stats(fleet) {
        Ok(s) => report.push_str(&format!("stats: {s}\n")),
        Err(e) => report.push_str(&format!("stats: {e}\n")),
    }
    report
}

/// SysV shm pages go to swap: a 48 MiB segment written and detached, then
/// 100 MiB of anonymous memory touched in the 96 MiB budget. The detached
/// segment's pages go out first (/proc/sysvipc/shm shows them in its swap
/// column) and read back right when it is attached again.
#[test]
fn with_swap_a_detached_shm_segment_goes_out_and_reads_back_right() {
    let dir = tempfile::tempdir().unwrap();
    let swap = dir.path().join("swap.img");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let mut fleet = boot(
        "256M",
        &[
            "host_mem_max=96M".into(),
            format!("ubd2={}", swap.display()),
        ],
    );
    let g = &mut fleet.instances[0];
    ok(g, "mkswap /dev/ubdc && swapon /dev/ubdc");
    let (st, out) = g
        .run(
            "/mnt/shmhog 48 100 > /tmp/s.out 2>&1; echo status=$? >> /tmp/s.out; cat /tmp/s.out",
            HOG_TIMEOUT,
        )
        .unwrap();
    assert_eq!(st, 0, "{out}");
    assert!(
        out.contains("shmhog: ok") && out.contains("status=0"),
        "the segment came back wrong:\n{out}"
    );
    let swapped: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("shmhog: swap "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    eprintln!("shm swap run: {swapped} bytes of the segment in swap");
    assert!(
        swapped >= 16 << 20,
        "the segment did not go to swap:\n{out}"
    );
    ok(g, "swapoff /dev/ubdc");
    relogin_and_poweroff(g);
}

/// A sparse swap disk of `mib` MiB in `dir`, as `ubd2=`.
fn swap_disk(dir: &Path, mib: u64) -> String {
    let swap = dir.join("swap.img");
    std::fs::File::create(&swap)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    format!("ubd2={}", swap.display())
}

/// A figure of /proc/vmstat.
fn vmstat(g: &mut Instance, key: &str) -> u64 {
    ok(
        g,
        &format!("awk '$1 == \"{key}\" {{print $2}}' /proc/vmstat"),
    )
    .trim()
    .parse()
    .unwrap_or(0)
}

/// Shared pages go to swap (mm/reclaim.rs `Sharers`): for each kind —
/// MAP_SHARED|MAP_ANONYMOUS shared across fork, a SysV segment attached
/// in both, fork's copy-on-write pages before either side writes —
/// tests/guest/sharehog.c writes a 48 MiB region, forks, and touches
/// 100 MiB more in the 96 MiB budget: at least a third of the region
/// goes to swap while both processes hold it. The child reads it back
/// and writes it, it goes out again, and the parent reads the child's
/// data (anon, shm) or its own (cow): every page right, no OOM kill, the
/// budget kept.
#[test]
fn with_swap_shared_pages_go_out_and_every_sharer_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = boot(
        "256M",
        &["host_mem_max=96M".into(), swap_disk(dir.path(), 256)],
    );
    let g = &mut fleet.instances[0];
    ok(g, "mkswap /dev/ubdc && swapon /dev/ubdc");
    for kind in ["anon", "shm", "cow"] {
        let (_, out) = g
            .run(
                &format!(
                    "/mnt/sharehog {kind} 48 100 > /tmp/s.out 2>&1; echo status=$? >> /tmp/s.out; cat /tmp/s.out"
                ),
                HOG_TIMEOUT,
            )
            .unwrap();
        assert!(
            out.contains(&format!("sharehog: {kind} ok")) && out.contains("status=0"),
            "{kind}: the shared pages came back wrong:\n{out}"
        );
        let kb: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("sharehog: {kind} swap ")))
            .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0);
        eprintln!("{kind}: {kb} kB of the shared region in swap while shared\n{out}");
        assert!(
            kb >= 16 * 1024,
            "{kind}: the shared region did not go to swap:\n{out}"
        );
    }
    eprintln!(
        "shared swap run: pswpout {} pswpin {}",
        vmstat(g, "pswpout"),
        vmstat(g, "pswpin")
    );
    let s = stats(&fleet);
    assert!(
        s["budget"]["peak_held_bytes"].as_u64().unwrap() < 96 << 20,
        "held past the budget: {s}"
    );
    assert_eq!(s["oom"]["kills"].as_u64(), Some(0), "{s}");
    let g = &mut fleet.instances[0];
    let used = ok(
        g,
        "awk '/SwapTotal/ {t=$2} /SwapFree/ {f=$2} END {print t-f}' /proc/meminfo",
    );
    let used: u64 = used.trim().parse().unwrap();
    assert!(
        used < 2048,
        "{used} kB still in swap after the programs ended"
    );
    ok(g, "swapoff /dev/ubdc");
    relogin_and_poweroff(g);
}

/// fork and exec under hard swapping: tests/guest/forkswap.c holds
/// 160 MiB (past the 96 MiB budget: it lives in swap), rewrites 2 MiB of
/// it each round, and forks 150 children that each exec a short program
/// (itself, or busybox `true`) and exit with a known status; every fourth
/// reads inherited pages back first. Every child runs and exits right,
/// the working set checks out at the end, nothing is OOM-killed, swap
/// traffic goes on all along, and the instance's count of what it holds
/// stays under the budget at its peak; it lives on (login, poweroff).
///
/// It found two bugs (issue 19). An execve failing with ENOMEM (4 of 7
/// runs before the fix, 0 of 8 after) was the OOM path stopping at
/// page-cache reclaim at the cap (kernel/oom.rs; kernel/testing/pressure.rs).
/// Then the peak held passed the 96 MiB budget by up to 0.8 MB (4 of 11
/// runs: 100.7-101.5 MB): umlrun's own memory, read from /proc only at
/// each refresh, grew by 2-8 MB between two (its heap's high-water mark
/// rose at each fork's page-table copy and each swap pass's reverse map,
/// with the freed pages still resident), past the 6 MiB reserve. Now the
/// heap is counted as it grows and charged against the cap at once, a
/// fork reserves what a swap pass over its shared pages may need, and the
/// free heap goes back to the host near the cap (kernel/budget.rs).
#[test]
fn with_swap_fork_and_exec_under_hard_swapping_every_child_exits_right() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = boot(
        "256M",
        &["host_mem_max=96M".into(), swap_disk(dir.path(), 512)],
    );
    let g = &mut fleet.instances[0];
    ok(g, "mkswap /dev/ubdc && swapon /dev/ubdc");
    let start = std::time::Instant::now();
    let (_, out) = g
        .run(
            "/mnt/forkswap 160 150 2 > /tmp/f.out 2>&1; echo status=$? >> /tmp/f.out; cat /tmp/f.out",
            2 * HOG_TIMEOUT,
        )
        .unwrap();
    let took = start.elapsed();
    let (pout, pin) = (vmstat(g, "pswpout"), vmstat(g, "pswpin"));
    eprintln!("forkswap: {took:?}, pswpout {pout} pswpin {pin}\n{out}");
    assert!(
        out.contains("forkswap: 150 children ok, 160 MiB ok") && out.contains("status=0"),
        "a child or the working set went wrong:\n{out}"
    );
    // 160 MiB does not fit in 96: it went out and came back, many times.
    assert!(pout > 20_000 && pin > 10_000, "pswpout {pout} pswpin {pin}");
    let s = stats(&fleet);
    let peak = s["budget"]["peak_held_bytes"].as_u64().unwrap();
    eprintln!(
        "stats after forkswap: {}\npeak held {peak} of the {} budget",
        s["budget"],
        96u64 << 20
    );
    assert!(peak < 96 << 20, "held past the budget: {s}");
    assert_eq!(s["oom"]["kills"].as_u64(), Some(0), "{s}");
    let g = &mut fleet.instances[0];
    same(g, "kill -0 1 && echo init-alive", "init-alive");
    relogin_and_poweroff(g);
}
