//! The management console end to end: the real `umlrun` on a pty, driven
//! through its `<uml_dir>/<umid>/mconsole` socket by Debian's `uml_mconsole`
//! (the reference client), by raw datagrams for bad input, and by `umlctl`.
//!
//! Covered: version, help, proc, stack, log, the notify socket byte for
//! byte (socket, user messages from /proc/mconsole, hang messages from
//! /dev/watchdog, the panic when init exits, the last also against
//! Debian's linux.uml);
//! memory
//! hot-unplug (the guest's `free` shows exactly 32 MiB less, the host's
//! memfd blocks drop because clean page cache was evicted) and plug past
//! the boot size up to `maxmem=`; stop/go freezing a busy loop; cad through
//! init's inittab; halt; sysrq s writing back a page dirtied through a
//! shared mapping, which a SIGKILL loses without it, and w, e, u, b, i, o
//! each doing what its key says;
//! malformed datagrams, unknown commands, bad sizes and too-large unplugs
//! each answered with a clear error while the guest goes on; a client that
//! floods requests and vanishes; a stale socket from a killed instance; a
//! socket path longer than sun_path; `umlctl` list/stats/mem/errors; `config
//! ubd1=` hot-adding a disk the guest mounts, in the instance's ubd mode
//! on both platforms, umlrun root or dropped to nobody (mmap: a process
//! older than the disk maps a file of it without exec'ing and its own
//! stub, older than the disk, maps the image itself — the disk's fd was
//! passed to it over the socket it was born with; copy: no stub maps it),
//! `remove ubd1` refused while it is mounted and done after umount.
//!
//! Every instance is stopped by pid when a test fails (the harness's Drop).

mod support;
mod support_many;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support_many::{tool, Fleet, Instance, Runner, State, LOGIN_PROMPT};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

fn backing() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

/// One logged-in instance with `extra` switches.
fn boot(mode: &str, mem: &str, extra: &[&str]) -> Fleet {
    boot_as(mode, mem, extra, false)
}

/// [`boot`]; `for_nobody`: the fleet's directory open to others (umlrun
/// started as root with `uid=65534` opens files there after the drop).
fn boot_as(mode: &str, mem: &str, extra: &[&str], for_nobody: bool) -> Fleet {
    let mut fleet = Fleet::new(Runner::umlrun(mode), &backing(), mem).unwrap();
    fleet.extra_args = extra.iter().map(|s| s.to_string()).collect();
    if for_nobody {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(fleet.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    fleet
}

fn socket(fleet: &Fleet) -> PathBuf {
    fleet
        .uml_dir()
        .join(&fleet.instances[0].umid)
        .join("mconsole")
}

/// `uml_mconsole <socket> <cmd>`: (OK?, the text after "OK "/"ERR ").
fn mc(fleet: &Fleet, cmd: &str) -> (bool, String) {
    let out = Command::new(tool("uml_mconsole"))
        .arg(socket(fleet))
        .args(cmd.split(' '))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // uml_mconsole ends every answer with a newline of its own.
    let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
    if let Some(t) = text.strip_prefix("OK ") {
        (true, t.to_string())
    } else if let Some(t) = text.strip_prefix("ERR ") {
        (false, t.to_string())
    } else {
        panic!(
            "uml_mconsole {cmd}: no OK/ERR answer: {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn mc_ok(fleet: &Fleet, cmd: &str) -> String {
    let (ok, t) = mc(fleet, cmd);
    assert!(ok, "`{cmd}` failed: {t}");
    t
}

fn mc_err(fleet: &Fleet, cmd: &str) -> String {
    let (ok, t) = mc(fleet, cmd);
    assert!(!ok, "`{cmd}` should fail, answered: {t}");
    t
}

fn ok(g: &mut Instance, cmd: &str) -> String {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(status, 0, "`{cmd}` exited {status}; output:\n{out}");
    out
}

/// The `total` column of busybox `free` (KiB).
fn free_total(g: &mut Instance) -> u64 {
    let out = ok(g, "free");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Mem:"))
        .unwrap_or_else(|| panic!("no Mem: line in\n{out}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn stats(fleet: &Fleet) -> serde_json::Value {
    serde_json::from_str(&mc_ok(fleet, "stats")).expect("stats is JSON")
}

/// Host bytes the instance's physmem memfd holds (st_blocks * 512), seen
/// from the host through /proc/<pid>/fd.
fn memfd_blocks(pid: i32) -> u64 {
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if target
            .to_string_lossy()
            .starts_with("/memfd:umlrun-physmem")
        {
            return std::fs::metadata(e.path()).unwrap().blocks() * 512;
        }
    }
    panic!("umlrun {pid} has no physmem memfd open");
}

fn assert_no_panic(g: &Instance) {
    let all = String::from_utf8_lossy(&g.transcript()).into_owned();
    assert!(
        !all.contains("panicked"),
        "umlrun panicked:\n{}",
        g.tail(30)
    );
}

fn expect_exit_0(g: &mut Instance, after: &str) {
    match g.wait_exited(EXIT_TIMEOUT) {
        Some(st) => assert_eq!(st.code(), Some(0), "umlrun ended with {st} after {after}"),
        None => panic!("umlrun still runs after {after}\n{}", g.tail(20)),
    }
    assert_no_panic(g);
}

/// A raw client: a datagram socket bound to an abstract name.
fn raw_client(tag: &str) -> UnixDatagram {
    let name = format!("mconsole-test-{}-{tag}", std::process::id());
    let s = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name).unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends `dgram`, returns the first reply datagram.
fn raw_ask(fleet: &Fleet, c: &UnixDatagram, dgram: &[u8]) -> Vec<u8> {
    c.send_to(dgram, socket(fleet)).unwrap();
    let mut buf = vec![0u8; 2048];
    let n = c.recv(&mut buf).expect("no reply");
    buf.truncate(n);
    buf
}

fn request(cmd: &[u8], magic: u32, version: u32, len: u32) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&magic.to_ne_bytes());
    d.extend_from_slice(&version.to_ne_bytes());
    d.extend_from_slice(&len.to_ne_bytes());
    d.extend_from_slice(cmd);
    d.resize(524, 0);
    d
}

/// (err, text) of a v2 reply datagram.
fn reply_of(d: &[u8]) -> (bool, String) {
    assert!(d.len() >= 12, "short reply {d:?}");
    let err = u32::from_ne_bytes(d[0..4].try_into().unwrap()) != 0;
    let len = u32::from_ne_bytes(d[8..12].try_into().unwrap()) as usize;
    let text = String::from_utf8_lossy(&d[12..12 + len]);
    (err, text.trim_end_matches('\0').to_string())
}

// UML's `enum mconsole_notify` types.
const NOTIFY_SOCKET: u32 = 0;
const NOTIFY_PANIC: u32 = 1;
const NOTIFY_HANG: u32 = 2;
const NOTIFY_USER: u32 = 3;

/// A notify datagram as UML's mconsole_notify sends it: magic, version 2,
/// type, len, then exactly `len` bytes of data.
fn notify_dgram(kind: u32, data: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    for w in [0xcafe_babe, 2, kind, data.len() as u32] {
        d.extend_from_slice(&u32::to_ne_bytes(w));
    }
    d.extend_from_slice(data);
    d
}

/// Boots `runner` with init=/bin/false and a notify socket; returns the
/// instance's mconsole socket path and the datagrams the notify socket
/// got until the panic one (or 60 s passed).
fn notifies_of_init_exit(runner: Runner) -> (PathBuf, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let n = UnixDatagram::bind(&notify).unwrap();
    n.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut fleet = Fleet::new(runner, &backing(), "64M").unwrap();
    fleet.extra_args = vec![
        format!("mconsole=notify:{}", notify.display()),
        "init=/bin/false".into(),
    ];
    fleet.start(1).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(len) = n.recv(&mut buf) {
        got.push(buf[..len].to_vec());
        if buf[8..12] == NOTIFY_PANIC.to_ne_bytes() {
            break;
        }
    }
    (socket(&fleet), got)
}

// --- the basic commands ----------------------------------------------------

/// init exiting is a kernel panic: the notify socket hears the socket
/// message, then the panic message, byte for byte what Debian's linux.uml
/// sends for the same init (run here too: the reference).
#[test]
fn init_exit_sends_umls_panic_notify() {
    let mut want_panic = b"Attempted to kill init! exitcode=0x00000100".to_vec();
    want_panic.push(0);
    let want_panic = notify_dgram(NOTIFY_PANIC, &want_panic);
    for runner in [Runner::umlrun("mmap"), Runner::uml()] {
        let what = format!("{:?}", runner.kind);
        let (sock, got) = notifies_of_init_exit(runner);
        let mut path = sock.into_os_string().into_encoded_bytes();
        path.push(0);
        assert_eq!(
            got,
            vec![notify_dgram(NOTIFY_SOCKET, &path), want_panic.clone()],
            "{what}: {:?}",
            got.iter()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn version_help_proc_stack_log_and_notify() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let n = UnixDatagram::bind(&notify).unwrap();
    n.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let arg = format!("mconsole=notify:{}", notify.display());
    let mut fleet = boot("mmap", "64M", &[&arg]);
    // The notify socket heard of the console's socket at start.
    let mut buf = [0u8; 600];
    let len = n.recv(&mut buf).unwrap();
    // The path with its NUL (strlen + 1), as UML's mconsole_init sends it.
    let mut path = socket(&fleet).into_os_string().into_encoded_bytes();
    path.push(0);
    assert_eq!(&buf[..len], notify_dgram(NOTIFY_SOCKET, &path), "socket");

    // A guest program's write to /proc/mconsole (0200, there only with a
    // notify socket, as in UML) is a "user" notify message: exactly the
    // bytes written, no NUL; a 600-byte write is cut to 512 (Debian's
    // linux.uml 6.1 sent these same datagrams for the same writes).
    let g = &mut fleet.instances[0];
    let ls = ok(g, "ls -l /proc/mconsole");
    assert!(ls.starts_with("--w-------"), "{ls}");
    ok(g, "echo hello-user > /proc/mconsole");
    let len = n.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], notify_dgram(NOTIFY_USER, b"hello-user\n"));
    ok(
        g,
        "printf '%600s' > /tmp/u600 && dd if=/tmp/u600 of=/proc/mconsole bs=600 count=1 2>/dev/null",
    );
    let len = n.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], notify_dgram(NOTIFY_USER, &[b' '; 512]));

    // /dev/watchdog (UML's harddog): busybox's watchdog daemon pets it
    // every second with a 2 s timeout: no hang; stopped, it pets no more:
    // a "hang" notify (no data), as uml_watchdog -mconsole sends.
    ok(g, "watchdog -T 2 -t 1 /dev/watchdog");
    n.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    assert!(n.recv(&mut buf).is_err(), "a hang reported while petted");
    let g = &mut fleet.instances[0];
    ok(g, "kill -STOP $(pidof watchdog)");
    let len = n.recv(&mut buf).expect("no hang notify after the timeout");
    assert_eq!(&buf[..len], notify_dgram(NOTIFY_HANG, b""), "hang");
    // Closing it (the daemon's exit) stops the timer: no more hangs.
    let g = &mut fleet.instances[0];
    ok(
        g,
        "w=$(pidof watchdog); kill -CONT $w; kill $w; sleep 1; ! pidof watchdog",
    );
    assert!(n.recv(&mut buf).is_err(), "a hang reported after close");
    n.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    let v = mc_ok(&fleet, "version");
    assert!(v.starts_with("Linux "), "{v}");
    assert!(mc_ok(&fleet, "help").contains("stop - pause the UML"));
    let meminfo = mc_ok(&fleet, "proc meminfo");
    assert!(meminfo.contains("MemTotal:          65536 kB"), "{meminfo}");
    let status = mc_ok(&fleet, "proc 1/status");
    assert!(status.contains("Pid:\t1"), "{status}");
    assert_eq!(mc_err(&fleet, "proc nosuchfile"), "Failed to open file");
    let st = mc_ok(&fleet, "stack 1");
    assert!(st.starts_with("Task 1 ") && st.contains("RIP: 0x"), "{st}");
    assert_eq!(mc_err(&fleet, "stack 9999"), "Couldn't find that pid");
    let g = &mut fleet.instances[0];
    let at = g.mark();
    mc_ok(&fleet, "log hello-from-the-host");
    let g = &mut fleet.instances[0];
    g.expect(b"hello-from-the-host", at, CMD_TIMEOUT).unwrap();
    let t = mc_ok(&fleet, "sysrq t");
    assert!(t.contains("Show State"), "{t}");
    // One line per task, named as Linux names it: the basename of the
    // path it exec'd (busybox's applet links: init, login, sh).
    for comm in ["init", "login", "sh"] {
        assert!(
            t.lines().any(|l| l.split_whitespace().next() == Some(comm)),
            "{t}"
        );
    }
    assert!(mc_ok(&fleet, "sysrq m").contains("pages RAM"));
    assert!(mc_ok(&fleet, "sysrq h").contains("HELP"));
    assert_eq!(mc_ok(&fleet, "config ubd0").trim(), {
        let c = &fleet.instances[0].cow;
        format!(
            "ubd0={},{}",
            c.display(),
            backing().canonicalize().unwrap().display()
        )
    });
    assert_eq!(mc_err(&fleet, "remove ubd0"), "Device is currently open");
    assert_eq!(mc_err(&fleet, "remove ubd3"), "Device doesn't exist");
    let g = &mut fleet.instances[0];
    assert_eq!(ok(g, "echo still-here").trim(), "still-here");
    assert_no_panic(g);
}

// --- memory hot-plug ---------------------------------------------------------

#[test]
fn unplug_shows_in_free_and_gives_host_memory_back() {
    // Copy mode: file pages are memfd frames, so evicting them shows.
    let mut fleet = boot("copy", "64M", &[]);
    let g = &mut fleet.instances[0];
    // 40 MiB of clean page cache: unplugging 32 MiB must evict some.
    ok(
        g,
        "dd if=/dev/zero of=/root/big bs=1M count=40 2>/dev/null; sync",
    );
    ok(g, "cat /root/big > /dev/null");
    let total_before = free_total(g);
    assert_eq!(total_before, 65536);
    let pid = g.pid();
    let host_before = memfd_blocks(pid);
    assert!(
        host_before > 30 << 20,
        "page cache not in the memfd: {host_before}"
    );
    assert_eq!(mc_ok(&fleet, "config mem=-32M"), "");
    assert_eq!(mc_ok(&fleet, "config mem"), (32u64 << 20).to_string());
    let g = &mut fleet.instances[0];
    assert_eq!(free_total(g), total_before - 32 * 1024);
    let meminfo = ok(g, "cat /proc/meminfo");
    assert!(meminfo.contains("MemTotal:          32768 kB"), "{meminfo}");
    // What is free and available follows: no more than what is left.
    for key in ["MemFree:", "MemAvailable:"] {
        let kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {meminfo}"));
        assert!(
            kb > 0 && kb <= 32768,
            "{key} {kb} kB after unplugging to 32M"
        );
    }
    let host_after = memfd_blocks(pid);
    assert!(
        host_after + (8 << 20) < host_before,
        "host memfd blocks {host_before} -> {host_after}: evicted cache not punched"
    );
    let s = stats(&fleet);
    assert_eq!(s["memory"]["total_bytes"], 32u64 << 20);
    assert!(s["memory"]["page_cache"]["cap_bytes"].as_u64().unwrap() <= 32 << 20);
    assert!(s["host"]["punched_bytes"].as_u64().unwrap() >= 32 << 20);
    // The guest still works (the file reads back from disk) and plugs back.
    let g = &mut fleet.instances[0];
    assert_eq!(ok(g, "wc -c < /root/big").trim(), "41943040");
    assert_eq!(mc_ok(&fleet, "config mem=+32M"), "");
    let g = &mut fleet.instances[0];
    assert_eq!(free_total(g), total_before);
    assert_no_panic(g);
}

/// `stats` answers every figure issue 13 names, each consistent with what
/// the guest did: memory total/plugged/free/used, anon, page cache (clean,
/// dirty, image-substituted), shmem/tmpfs, file-backed mappings (count,
/// bytes), host bytes held and punched, faults, syscalls, processes, the
/// RSS top 10, uptime.
#[test]
fn stats_answers_every_figure_and_each_follows_the_guest() {
    let mut fleet = boot("mmap", "64M", &[]);
    let g = &mut fleet.instances[0];
    // 4 MiB on a tmpfs, a sleeping process with a file mapping (its
    // program), a written file, read cache.
    ok(g, "mkdir -p /tmp/t && mount -t tmpfs none /tmp/t");
    ok(g, "dd if=/dev/zero of=/tmp/t/f bs=1M count=4 2>/dev/null");
    ok(g, "sleep 600 >/dev/null 2>&1 &");
    ok(g, "cat /bin/busybox > /dev/null");
    let before = stats(&fleet);
    let g = &mut fleet.instances[0];
    ok(g, "echo dirty > /root/dirty-page");
    let s = stats(&fleet);
    let m = &s["memory"];
    let n = |v: &serde_json::Value| {
        v.as_u64()
            .unwrap_or_else(|| panic!("not a count: {v} in {s}"))
    };
    assert_eq!(n(&m["total_bytes"]), 64 << 20, "{s}");
    assert_eq!(n(&m["plugged_bytes"]), 64 << 20, "{s}");
    let (free, used) = (n(&m["free_bytes"]), n(&m["used_bytes"]));
    assert!(free > 0 && used > 0 && free + used <= 64 << 20, "{s}");
    assert!(n(&m["anon_bytes"]) > 0, "{s}");
    let pc = &m["page_cache"];
    let (cached, clean, dirty) = (
        n(&pc["bytes"]),
        n(&pc["clean_bytes"]),
        n(&pc["dirty_bytes"]),
    );
    assert_eq!(clean + dirty, cached, "{s}");
    // write() goes through to the file system here; only a write through
    // a shared file mapping leaves a page dirty in the cache, which
    // busybox cannot make: the dirty figure is only summed, not provoked.
    assert!(dirty <= cached, "{s}");
    // ubd=mmap: busybox's pages are the image's own.
    assert!(n(&pc["image_substituted_bytes"]) > 0, "{s}");
    assert!(n(&m["shmem_tmpfs_bytes"]) >= 4 << 20, "{s}");
    let maps = &m["file_mappings"];
    assert!(n(&maps["count"]) >= 2 && n(&maps["bytes"]) >= 4096, "{s}");
    assert!(n(&s["host"]["memfd_allocated_bytes"]) > 0, "{s}");
    n(&s["host"]["punched_bytes"]);
    assert!(
        n(&s["faults"]) >= n(&before["faults"]) && n(&s["faults"]) > 0,
        "{s}"
    );
    assert!(n(&s["syscalls"]) > n(&before["syscalls"]), "{s}");
    assert!(
        n(&s["processes"]) >= 4,
        "init, login or getty, sh, sleep: {s}"
    );
    let top = s["top_rss"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 10, "{s}");
    let sizes: Vec<u64> = top.iter().map(|t| n(&t["rss_bytes"])).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "not sorted: {s}");
    assert!(top.iter().any(|t| t["comm"] == "sleep"), "{s}");
    let up = s["uptime_seconds"].as_f64().unwrap();
    assert!(
        up > 0.0 && up >= before["uptime_seconds"].as_f64().unwrap(),
        "{s}"
    );
    assert_no_panic(&fleet.instances[0]);
}

#[test]
fn plug_grows_past_boot_size_up_to_maxmem() {
    let mut fleet = boot("mmap", "64M", &["maxmem=256M"]);
    assert_eq!(mc_ok(&fleet, "config mem=+64M"), "");
    let g = &mut fleet.instances[0];
    assert_eq!(free_total(g), 128 * 1024);
    assert_eq!(mc_ok(&fleet, "config mem"), (128u64 << 20).to_string());
    // More than maxmem allows: what fits, said so.
    let t = mc_ok(&fleet, "config mem=+1G");
    assert!(
        t.starts_with("plugged 128M of 1G asked (maxmem=256M)"),
        "{t}"
    );
    let t = mc_err(&fleet, "config mem=+4K");
    assert!(t.contains("already at maxmem=256M"), "{t}");
    let g = &mut fleet.instances[0];
    assert_eq!(free_total(g), 256 * 1024);
    // Grown memory is usable: a 100 MiB tmpfs file would not fit in 64M.
    ok(g, "mount -t tmpfs big /mnt && dd if=/dev/zero of=/mnt/x bs=1M count=100 2>/dev/null && rm /mnt/x && umount /mnt");
    // And back below the boot size.
    assert_eq!(mc_ok(&fleet, "config mem=-224M"), "");
    let g = &mut fleet.instances[0];
    assert_eq!(free_total(g), 32 * 1024);
    assert_no_panic(g);
}

#[test]
fn no_growth_without_maxmem() {
    let fleet = boot("mmap", "64M", &[]);
    let t = mc_err(&fleet, "config mem=+64M");
    assert!(t.contains("already at maxmem=64M"), "{t}");
}

// --- stop / go, cad, halt, sysrq ---------------------------------------------

#[test]
fn stop_freezes_a_busy_loop_and_go_resumes_it() {
    let mut fleet = boot("mmap", "64M", &[]);
    let g = &mut fleet.instances[0];
    // A counter that forks a sleep each turn (a loop without any sleep
    // starves the shell on the ptrace platform, stop or no stop).
    ok(
        g,
        "(i=0; while :; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done) &",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mc_err(&fleet, "go"), "Not stopped");
    assert_eq!(mc_ok(&fleet, "stop"), "stopped");
    assert_eq!(mc_err(&fleet, "stop"), "Already stopped");
    let s1 = stats(&fleet);
    assert_eq!(s1["stopped"], true);
    let g = &mut fleet.instances[0];
    let at = g.mark();
    g.send("echo typed-while-stopped\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let s2 = stats(&fleet);
    assert_eq!(
        s1["syscalls"], s2["syscalls"],
        "guest ran while stopped: {s1} -> {s2}"
    );
    assert_eq!(s1["faults"], s2["faults"]);
    let g = &mut fleet.instances[0];
    assert_eq!(g.mark(), at, "the console echoed while stopped");
    assert_eq!(mc_ok(&fleet, "go"), "");
    let g = &mut fleet.instances[0];
    // What was typed while stopped runs now.
    g.expect(b"\ntyped-while-stopped", at, CMD_TIMEOUT).unwrap();
    let a: u64 = ok(g, "cat /tmp/c").trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let b: u64 = ok(g, "cat /tmp/c").trim().parse().unwrap();
    assert!(b > a, "the loop did not resume: {a} then {b}");
    ok(g, "kill %1");
    assert_no_panic(g);
}

#[test]
fn cad_reboots_through_inittab_reboot_restarts_and_halt_ends_cleanly() {
    let mut fleet = boot("mmap", "64M", &[]);
    let g = &mut fleet.instances[0];
    let at = g.mark();
    assert_eq!(mc_ok(&fleet, "cad"), "");
    let g = &mut fleet.instances[0];
    // busybox init's ::ctrlaltdel:/sbin/reboot: a new boot.
    g.expect(LOGIN_PROMPT, at + 1, BOOT_TIMEOUT).unwrap();
    assert!(g.alive(), "umlrun ended on cad");
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    assert_eq!(ok(g, "echo rebooted").trim(), "rebooted");
    // `reboot`: the kernel restarts at once (no init actions), a new boot
    // on the same console.
    let at = g.mark();
    assert_eq!(mc_ok(&fleet, "reboot"), "");
    let g = &mut fleet.instances[0];
    g.expect(LOGIN_PROMPT, at + 1, BOOT_TIMEOUT).unwrap();
    assert!(g.alive(), "umlrun ended on reboot");
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    assert_eq!(ok(g, "echo rebooted-again").trim(), "rebooted-again");
    // The console socket survived the reboots.
    assert_eq!(mc_ok(&fleet, "halt"), "");
    let g = &mut fleet.instances[0];
    expect_exit_0(g, "mconsole halt");
}

#[test]
fn sysrq_s_writes_back_what_a_sigkill_would_lose() {
    // A page dirtied through a shared mapping stays in the guest's page
    // cache until a sync. Without `sysrq s` a SIGKILL of umlrun loses it
    // (the control run); with it, the disk has it.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("mdirty");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest/mdirty_raw.c");
    let st = Command::new("gcc")
        .args([
            "-static",
            "-nostdlib",
            "-no-pie",
            "-Os",
            "-s",
            "-Wl,-n",
            "-Wl,--build-id=none",
        ])
        .args(["-fno-asynchronous-unwind-tables", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed on {}", src.display());
    let b64 = Command::new("base64")
        .args(["-w", "0"])
        .arg(&bin)
        .output()
        .unwrap();
    let b64 = String::from_utf8(b64.stdout).unwrap();
    for sync in [false, true] {
        let mut fleet = boot("mmap", "64M", &[]);
        let g = &mut fleet.instances[0];
        // In pieces: the shell's line editor takes lines of about 1 KiB.
        for piece in b64.as_bytes().chunks(200) {
            let piece = std::str::from_utf8(piece).unwrap();
            ok(g, &format!("echo -n {piece} >> /root/mdirty.b64"));
        }
        ok(
            g,
            "base64 -d /root/mdirty.b64 > /root/mdirty && chmod +x /root/mdirty && sync",
        );
        let at = g.mark();
        ok(g, "/root/mdirty &");
        g.expect(b"mapped", at, CMD_TIMEOUT).unwrap();
        if sync {
            let t = mc_ok(&fleet, "sysrq s");
            assert!(t.contains("Emergency Sync complete"), "{t}");
        }
        let g = &mut fleet.instances[0];
        g.signal(libc::SIGKILL);
        g.wait_exited(EXIT_TIMEOUT)
            .expect("umlrun survived SIGKILL");
        let merged = fleet.dir().join("merged.img");
        // The stubs die with umlrun a moment later; until then the COW is
        // still locked.
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
                .arg("merge")
                .arg("-b")
                .arg(&fleet.backing)
                .arg(&fleet.instances[0].cow)
                .arg(&merged)
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("in use") && Instant::now() < deadline, "{err}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let cat = Command::new(tool("debugfs"))
            .args(["-R", "cat /root/m"])
            .arg(&merged)
            .output()
            .unwrap();
        let on_disk = cat.stdout.starts_with(b"dirty-by-mmap\n");
        assert_eq!(
            on_disk,
            sync,
            "sysrq s: {sync}; /root/m on disk: {:?}",
            String::from_utf8_lossy(&cat.stdout[..cat.stdout.len().min(20)])
        );
    }
}

/// The other sysrq keys UML's mconsole passes to the guest, each by what
/// it does: w lists a sleeping task; e terminates every process but init;
/// i kills every process but init (init respawns the console getty); u
/// remounts every file system read-only; b reboots; o powers off (exit 0).
#[test]
fn sysrq_w_e_u_b_i_o_act_as_their_keys_say() {
    let mut fleet = boot("mmap", "64M", &[]);
    let g = &mut fleet.instances[0];
    ok(g, "sleep 1000 >/dev/null 2>&1 &");
    // A live task of that name in a sysrq t/w listing (a zombie is dead).
    let has = |listing: &str, comm: &str| {
        listing
            .lines()
            .any(|l| l.split_whitespace().next() == Some(comm) && !l.contains(" Z "))
    };
    let w = mc_ok(&fleet, "sysrq w");
    assert!(w.starts_with("SysRq : Show Blocked State"), "{w}");
    assert!(
        w.lines()
            .any(|l| l.split_whitespace().next() == Some("sleep") && l.contains(" S ")),
        "{w}"
    );
    // e: SIGTERM to all but init. Seen from the host (the login session
    // ends with it: login is the session leader).
    assert!(mc_ok(&fleet, "sysrq e").contains("Terminate All Tasks"));
    let deadline = Instant::now() + CMD_TIMEOUT;
    loop {
        let t = mc_ok(&fleet, "sysrq t");
        assert!(has(&t, "init"), "{t}");
        if !has(&t, "sleep") {
            break;
        }
        assert!(Instant::now() < deadline, "sleep survived sysrq e:\n{t}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // i: everything but init dies; init gives the console a new getty.
    let g = &mut fleet.instances[0];
    let at = g.mark();
    assert!(mc_ok(&fleet, "sysrq i").contains("Kill All Tasks"));
    let g = &mut fleet.instances[0];
    g.expect(LOGIN_PROMPT, at + 1, BOOT_TIMEOUT).unwrap();
    let t = mc_ok(&fleet, "sysrq t");
    assert!(has(&t, "init") && !has(&t, "sh"), "{t}");
    let g = &mut fleet.instances[0];
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    assert!(mc_ok(&fleet, "sysrq u").contains("Emergency Remount complete"));
    let g = &mut fleet.instances[0];
    let (status, out) = g.run("touch /root/after-u", CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    // b: a new boot (from the same disk: read-write again).
    let at = g.mark();
    assert!(mc_ok(&fleet, "sysrq b").contains("Resetting"));
    let g = &mut fleet.instances[0];
    g.expect(LOGIN_PROMPT, at + 1, BOOT_TIMEOUT).unwrap();
    assert!(g.alive(), "umlrun ended on sysrq b");
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "touch /root/after-b");
    assert!(mc_ok(&fleet, "sysrq o").contains("Power Off"));
    let g = &mut fleet.instances[0];
    expect_exit_0(g, "sysrq o");
}

// --- bad input ---------------------------------------------------------------

#[test]
fn bad_requests_get_clear_errors_and_the_guest_goes_on() {
    let mut fleet = boot("mmap", "64M", &[]);
    let c = raw_client("bad");
    // Short: 3 bytes.
    let (err, t) = reply_of(&raw_ask(&fleet, &c, b"abc"));
    assert!(err && t.contains("too short"), "{t}");
    // Oversized: 2000 bytes with a good header.
    let mut big = request(b"help", 0xcafe_babe, 2, 4);
    big.resize(2000, b'x');
    let (err, t) = reply_of(&raw_ask(&fleet, &c, &big));
    assert!(err && t == "Request too large", "{t}");
    // A length field beyond the data area.
    let (err, t) = reply_of(&raw_ask(
        &fleet,
        &c,
        &request(b"help", 0xcafe_babe, 2, 9999),
    ));
    assert!(err && t == "Request too large", "{t}");
    // Wrong version.
    let (err, t) = reply_of(&raw_ask(&fleet, &c, &request(b"help", 0xcafe_babe, 1, 4)));
    assert!(err && t.contains("only supports version 2"), "{t}");
    // Wrong magic: a version-0 client gets UML's plain-text refusal.
    let d = raw_ask(&fleet, &c, b"version\0");
    assert!(String::from_utf8_lossy(&d).starts_with("ERROR: Version 0 mconsole clients"));
    // Through uml_mconsole: unknown command, bad sizes, too much.
    assert_eq!(mc_err(&fleet, "frobnicate"), "Unknown command");
    assert_eq!(
        mc_err(&fleet, "config mem=-lots"),
        "Failed to parse memory increment"
    );
    assert_eq!(
        mc_err(&fleet, "config mem=32M"),
        "Expected increment to start with '-' or '+'"
    );
    assert_eq!(
        mc_err(&fleet, "config foo0=bar"),
        "Bad configuration option"
    );
    assert!(
        mc_err(&fleet, "config eth0=tuntap").contains("name an existing tap device"),
        "an interface spec without its tap is refused, saying why"
    );
    let t = mc_err(&fleet, "config mem=-100G");
    assert!(
        t.contains("Cannot unplug 100G: the guest has only 64M"),
        "{t}"
    );
    // Nearly all of it: what can be taken is, and said so; nothing dies.
    let t = mc_ok(&fleet, "config mem=-60M");
    assert!(
        t.starts_with("unplugged ") && t.contains("of 60M asked"),
        "{t}"
    );
    let g = &mut fleet.instances[0];
    assert_eq!(ok(g, "echo alive").trim(), "alive");
    // Plugging gives back what was taken, and says when that is less.
    let t = mc_ok(&fleet, "config mem=+60M");
    assert!(
        t.is_empty() || t.contains("(maxmem=64M); memory now 64M"),
        "{t}"
    );
    let g = &mut fleet.instances[0];
    assert_eq!(free_total(g), 65536);
    assert_no_panic(g);
}

#[test]
fn a_client_that_floods_and_vanishes_does_not_block_the_guest() {
    let mut fleet = boot("mmap", "64M", &[]);
    {
        // Hundreds of long answers nobody reads, then the client is gone.
        let c = raw_client("flood");
        let d = request(b"help", 0xcafe_babe, 2, 4);
        for _ in 0..300 {
            c.send_to(&d, socket(&fleet)).unwrap();
        }
        // An unbound sender cannot be answered at all.
        let u = UnixDatagram::unbound().unwrap();
        u.send_to(
            &request(b"proc meminfo", 0xcafe_babe, 2, 12),
            socket(&fleet),
        )
        .unwrap();
    }
    let t0 = Instant::now();
    let g = &mut fleet.instances[0];
    assert_eq!(ok(g, "echo unblocked").trim(), "unblocked");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(mc_ok(&fleet, "version").starts_with("Linux"));
}

#[test]
fn stale_socket_of_a_killed_instance_is_replaced() {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    // What a SIGKILLed instance leaves: its directory, a dead pid, a socket.
    let umid = format!("many{}-000", std::process::id());
    let dir = fleet.uml_dir().join(&umid);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pid"), "999999\n").unwrap();
    drop(UnixDatagram::bind(dir.join("mconsole")).unwrap());
    assert!(dir.join("mconsole").exists());
    fleet.start(1).unwrap();
    assert_eq!(fleet.instances[0].umid, umid);
    fleet.instances[0].wait_login(BOOT_TIMEOUT).unwrap();
    assert!(mc_ok(&fleet, "version").starts_with("Linux"));
}

#[test]
fn socket_path_longer_than_sun_path_is_one_warning_not_a_failure() {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    let long = fleet.dir().join("d".repeat(110));
    fleet.extra_args = vec![format!("uml_dir={}", long.display())];
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    let all = String::from_utf8_lossy(&g.transcript()).into_owned();
    assert!(
        all.contains("the host allows 107") && all.contains("running without a management console"),
        "{all}"
    );
    g.login(CMD_TIMEOUT).unwrap();
    assert_eq!(ok(g, "echo fine").trim(), "fine");
    // umlctl says clearly that there is no socket.
    let out = Command::new(env!("CARGO_BIN_EXE_umlctl"))
        .arg(format!("uml_dir={}", long.display()))
        .args([&g.umid, "version"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no management console socket"));
}

// --- umlctl ------------------------------------------------------------------

fn umlctl(fleet: &Fleet, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_umlctl"))
        .arg(format!("uml_dir={}", fleet.uml_dir().display()))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn umlctl_lists_reports_resizes_and_refuses_dead_instances() {
    let fleet = boot("mmap", "64M", &["maxmem=128M"]);
    let umid = fleet.instances[0].umid.clone();
    std::fs::create_dir_all(fleet.uml_dir().join("gone")).unwrap();
    std::fs::write(fleet.uml_dir().join("gone/pid"), "999999\n").unwrap();
    let (code, out, _) = umlctl(&fleet, &["list"]);
    assert_eq!(code, 0);
    let line = out.lines().find(|l| l.starts_with(&umid)).unwrap();
    assert!(line.contains("alive") && line.ends_with("64M"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("gone") && l.contains("stale")),
        "{out}"
    );

    let (code, out, _) = umlctl(&fleet, &[&umid, "stats"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("memory    64.0M plugged (maxmem 128.0M)"),
        "{out}"
    );
    let (code, out, _) = umlctl(&fleet, &[&umid, "stats", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["processes"].as_u64().unwrap() >= 2);
    assert!(v["top_rss"].as_array().unwrap().len() >= 2);

    assert_eq!(umlctl(&fleet, &[&umid, "mem", "+32M"]).1, "96M\n");
    assert_eq!(umlctl(&fleet, &[&umid, "mem", "-64M"]).1, "32M\n");
    assert_eq!(umlctl(&fleet, &[&umid, "mem"]).1, "32M\n");
    let (code, _, err) = umlctl(&fleet, &[&umid, "mem", "+1G"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = umlctl(&fleet, &[&umid, "mem", "+4K"]);
    assert_eq!(code, 1);
    assert!(err.contains("already at maxmem=128M"), "{err}");
    let (code, out, _) = umlctl(&fleet, &[&umid, "proc", "uptime"]);
    assert_eq!(code, 0);
    assert_eq!(out.split_whitespace().count(), 2, "{out}");

    let (code, _, err) = umlctl(&fleet, &["gone", "version"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "umlctl: gone: not running (stale: its pid 999999 is gone)\n"
    );
    let (code, _, err) = umlctl(&fleet, &["nosuch", "version"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("umlctl: nosuch: no such instance under "),
        "{err}"
    );
    let (code, _, err) = umlctl(&fleet, &[&umid, "frobnicate"]);
    assert_eq!((code, err.as_str()), (1, "umlctl: Unknown command\n"));
}

// --- ubd hot-add and hot-remove ----------------------------------------------

#[test]
fn ubd_hot_add_mounts_and_remove_refuses_while_mounted_mmap_ptrace() {
    ubd_hot_add_and_remove("mmap", "ptrace", false);
}

#[test]
fn ubd_hot_add_mounts_and_remove_refuses_while_mounted_mmap_seccomp() {
    ubd_hot_add_and_remove("mmap", "seccomp", false);
}

#[test]
fn ubd_hot_add_mounts_and_remove_refuses_while_mounted_copy() {
    ubd_hot_add_and_remove("copy", "seccomp", false);
}

/// umlrun unprivileged (started as root, `uid=65534 gid=65534`: the
/// stubs sit in a user namespace made as nobody, below umlrun's, where
/// they could not open umlrun's /proc/<pid>/fd): a running process still
/// gets the hot-added disk in mmap mode, its stub handed the fd over the
/// socket it was born with.
#[test]
fn ubd_hot_add_mmap_unprivileged_ptrace() {
    ubd_hot_add_and_remove("mmap", "ptrace", true);
}

#[test]
fn ubd_hot_add_mmap_unprivileged_seccomp() {
    ubd_hot_add_and_remove("mmap", "seccomp", true);
}

/// Host pids of `pid`'s children that are stubs (not the namespace
/// holder, not a spawner that has not exec'd yet).
fn stub_pids(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter(|k: &i32| {
            let comm = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
            !matches!(comm.trim(), "umlrun" | "umlrun-nsholder")
        })
        .collect()
}

/// Whether host process `pid` maps a file whose name contains `name`.
fn maps_file(pid: i32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .contains(name)
}

/// `config ubd1=` on an instance booted with `ubd=<mode>` on `platform`
/// (namespaces=auto, the default: the stubs in namespaces of their own;
/// `as_nobody`: umlrun drops to nobody after set-up): the new disk takes
/// the instance's mode, as boot-time disks do, mounts, runs a program
/// from it, refuses removal while mounted and goes after umount with the
/// guest's writes in the image. In mmap mode a process that runs before
/// the disk exists (`hotmap`, from a boot-time disk) maps a file of it
/// without exec'ing: its own stub, spawned before the hot-add, must map
/// the image itself, which it can only with the disk's fd passed to it
/// (a stub that cannot take it makes the whole disk copy mode, and then
/// no stub maps it). In copy mode no stub maps the image.
fn ubd_hot_add_and_remove(mode: &str, platform: &str, as_nobody: bool) {
    let platform = format!("platform={platform}");
    let dir = tempfile::tempdir().unwrap();
    let helpers = support_many::tools::programs_disk(dir.path(), "helpers", &["hotmap"], "8M");
    let helpers_arg = format!("ubd3r={}", helpers.display());
    let mut extra: Vec<&str> = vec![&platform, &helpers_arg];
    if as_nobody {
        extra.extend(["uid=65534", "gid=65534"]);
    }
    let mut fleet = boot_as(mode, "64M", &extra, as_nobody);
    let root = fleet.dir().join("data-root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hot-added disk\n").unwrap();
    // A program on the new disk: run from it, its pages are the image's
    // own (ubd=mmap), mapped by the stubs through the disk's fd.
    let bb = root.join("busybox");
    let dump = Command::new(tool("debugfs"))
        .arg("-R")
        .arg(format!("dump /bin/busybox {}", bb.display()))
        .arg(backing())
        .output()
        .unwrap();
    assert!(bb.is_file(), "debugfs dump: {dump:?}");
    std::fs::set_permissions(&bb, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let img = fleet.dir().join("data.img");
    let st = Command::new(tool("mke2fs"))
        .args(["-q", "-t", "ext2", "-b", "4096", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("8M")
        .status()
        .unwrap();
    assert!(st.success(), "mke2fs");
    if as_nobody {
        // umlrun opens it after the drop.
        std::os::unix::fs::chown(&img, Some(65534), Some(65534)).unwrap();
    }
    // Without a notify socket there is no /proc/mconsole (as in UML).
    let g = &mut fleet.instances[0];
    let (status, _) = g.run("test -e /proc/mconsole", CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "/proc/mconsole without a notify socket");
    assert_eq!(mc_ok(&fleet, "config ubd1"), "");
    assert_eq!(mc_err(&fleet, "remove ubd1"), "Device doesn't exist");
    // Settled first: on seccomp, stubs give back their op page then, and
    // init's (asleep in wait4 throughout) adopts the disk's fd with the
    // page's constants written anew.
    std::thread::sleep(Duration::from_millis(2500));
    // A process that exists before the disk does and maps a file of it
    // later, in the same address space (no exec: the same stub).
    let g = &mut fleet.instances[0];
    ok(g, "mkdir -p /h && mount -t ext2 -o ro /dev/ubdd /h");
    let at = g.mark();
    let old = ok(g, "/h/hotmap /mnt/busybox > /dev/console 2>&1 & echo $!");
    let old = old.trim().to_string();
    g.expect(b"waiting", at, CMD_TIMEOUT).unwrap();
    let umlrun = g.pid();
    let before = stub_pids(umlrun);
    assert_eq!(mc_ok(&fleet, &format!("config ubd1={}", img.display())), "");
    assert_eq!(
        mc_ok(&fleet, "config ubd1"),
        format!("ubd1={}", img.display())
    );
    let t = mc_err(&fleet, &format!("config ubd1={}", img.display()));
    assert!(t.contains("already configured"), "{t}");
    let t = mc_err(&fleet, "config ubd2=/no/such/file.img");
    assert!(t.starts_with("ubd2=/no/such/file.img: "), "{t}");
    let g = &mut fleet.instances[0];
    let at = g.mark();
    ok(g, "mount -t ext2 /dev/ubdb /mnt");
    g.expect(b"mapped ", at, CMD_TIMEOUT).unwrap();
    assert_eq!(ok(g, "cat /mnt/hello.txt").trim(), "hot-added disk");
    assert_eq!(
        ok(g, "/mnt/busybox echo from-a-new-stub").trim(),
        "from-a-new-stub"
    );
    assert!(
        ok(g, &format!("cat /proc/{old}/cmdline; echo")).contains("/h/hotmap"),
        "hotmap ({old}) is gone"
    );
    // Which stubs map the image now: hotmap's (it alone has a file of the
    // disk mapped), spawned before the disk came.
    let mapping: Vec<i32> = stub_pids(umlrun)
        .into_iter()
        .filter(|&p| maps_file(p, "data.img"))
        .collect();
    if mode == "mmap" {
        assert!(
            mapping.iter().any(|p| before.contains(p)),
            "no stub older than the disk maps data.img (stubs mapping it: {mapping:?}, \
             stubs before: {before:?}): a running process did not get the hot-added disk \
             in mmap mode"
        );
    } else {
        assert_eq!(
            mapping,
            Vec::<i32>::new(),
            "a stub maps data.img: the hot-added disk is not in copy mode"
        );
    }
    if as_nobody {
        // The drop held: umlrun runs as nobody.
        let status = std::fs::read_to_string(format!("/proc/{umlrun}/status")).unwrap();
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.contains("65534")),
            "{status}"
        );
    }
    let g = &mut fleet.instances[0];
    ok(g, &format!("kill {old}; wait {old}; true"));
    ok(g, "echo written-in-guest > /mnt/new.txt");
    assert_eq!(mc_err(&fleet, "remove ubd1"), "Device is currently open");
    let g = &mut fleet.instances[0];
    ok(g, "umount /mnt");
    assert_eq!(mc_ok(&fleet, "remove ubd1"), "");
    let g = &mut fleet.instances[0];
    let (status, _) = g.run("test -e /dev/ubdb", CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "/dev/ubdb still there after remove");
    // What the guest wrote is in the image, and the image is clean.
    let cat = Command::new(tool("debugfs"))
        .args(["-R", "cat /new.txt"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "written-in-guest\n");
    let fsck = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    assert_no_panic(&fleet.instances[0]);
}

// --- the HOWTO's uml_mconsole transcript -------------------------------------

/// The `uml_mconsole` session printed in HOWTO.md ("Management console"),
/// replayed against a fresh instance booted as it says (mem=64M
/// maxmem=256M): every answer must be the one printed (of `proc
/// meminfo`, its MemTotal line), so the HOWTO stays true.
#[test]
fn the_howto_uml_mconsole_transcript_holds() {
    let howto =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("HOWTO.md")).unwrap();
    let start = howto
        .find("A session with Debian's `uml_mconsole`")
        .expect("the transcript in HOWTO.md");
    let block = howto[start..]
        .split("```")
        .nth(1)
        .expect("the transcript's code block");
    // (command, the answer lines printed after it)
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        if let Some(cmd) = line.strip_prefix("$ uml_mconsole web1 ") {
            steps.push((cmd.to_string(), Vec::new()));
        } else if line.starts_with("$ ") {
            break; // umlctl's part: figures of the moment
        } else if let Some((_, out)) = steps.last_mut() {
            out.push(line.trim_end().to_string());
        }
    }
    assert!(steps.len() >= 10, "transcript too short: {steps:?}");
    let fleet = boot("mmap", "64M", &["maxmem=256M"]);
    for (cmd, want) in &steps {
        let out = Command::new(tool("uml_mconsole"))
            .arg(socket(&fleet))
            .args(cmd.split(' '))
            .output()
            .unwrap();
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        let strip = |v: &[String]| -> Vec<String> {
            let mut v = v.to_vec();
            while v.last().is_some_and(|l| l.is_empty()) {
                v.pop();
            }
            v
        };
        if cmd == "proc meminfo" {
            let total = want.iter().find(|l| l.starts_with("MemTotal:")).unwrap();
            assert!(got.contains(total), "`{cmd}`: no {total:?} in {got:?}");
            assert_eq!(got[0], "OK");
        } else {
            assert_eq!(strip(&got), strip(want), "`{cmd}`");
        }
    }
    assert_no_panic(&fleet.instances[0]);
}
