//! End to end through the console: the real `umlrun` binary on a pty, driven
//! like a user at a terminal — log in, run busybox commands and check their
//! output, `chroot` into a small tree, shell scripts, pipelines and redirections, Ctrl-C, Ctrl-D and job
//! control (background jobs, Ctrl-Z and `fg`, `kill -STOP`/`-CONT`, background
//! reads and TOSTOP writes stopped by SIGTTIN/SIGTTOU), `vi` (new and
//! edited files, scrolling, window resizes reaching the guest),
//! big pipelines and here-documents, `poweroff`/`halt`/`reboot`, SIGTERM to
//! umlrun (dirty data written back), the host terminal put in raw mode and
//! given back unchanged, and the COW file's contents afterwards (merged with
//! `umlcow merge`, read with `debugfs`, checked with `e2fsck -fn`). Bad
//! disks (missing image, truncated COW header, backing file changed) end
//! umlrun with one clear error line and no panic.
//!
//! Every instance is stopped by pid when a test fails (the harness's Drop).

mod support;
mod support_many;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support_many::shell::{assert_no_panic, boot_one, busybox_image as backing, ok, same};
use support_many::tools::debugfs;
use support_many::{Fleet, Instance, Runner, State, LOGIN_PROMPT, SHELL_PROMPT};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long umlrun may take to end after poweroff, halt or SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// One instance over a fresh COW of busybox.img, booted and logged in as
/// root. The Fleet owns the temp dir and stops the instance on drop.
fn boot(mode: &str) -> Fleet {
    boot_one(Runner::umlrun(mode), "64M", Vec::new())
}

/// The shell's `$?` of the last command must be `want`. Typed raw: run()
/// puts its own marker command first, which would reset `$?`.
fn expect_last_status(g: &mut Instance, want: i32) {
    let at = g.mark();
    g.send("echo status=$?\n").unwrap();
    g.expect(format!("\nstatus={want}").as_bytes(), at, CMD_TIMEOUT)
        .unwrap();
    g.expect(SHELL_PROMPT, at, CMD_TIMEOUT).unwrap();
}

fn console_text(g: &Instance, from: usize) -> String {
    String::from_utf8_lossy(&g.transcript()[from..]).replace('\r', "")
}

/// Wait for umlrun to end by itself and expect exit code 0.
fn expect_exit_0(g: &mut Instance, after: &str) {
    match g.wait_exited(EXIT_TIMEOUT) {
        Some(st) => assert_eq!(
            st.code(),
            Some(0),
            "umlrun ended with {st} after {after}\n{}",
            g.tail(20)
        ),
        None => panic!(
            "umlrun still runs {EXIT_TIMEOUT:?} after {after}\n{}",
            g.tail(20)
        ),
    }
    assert_no_panic(g);
}

/// `umlcow merge <cow> <dir>/merged.img` of the first instance, then
/// `e2fsck -fn` must pass; returns the merged image's path.
fn merge_and_fsck(fleet: &Fleet) -> PathBuf {
    merge_and_fsck_into(fleet, fleet.dir())
}

/// `umlcow merge -b <backing> <cow> <dir>/merged.img` of the first
/// instance, then `e2fsck -fn` must pass.
fn merge_and_fsck_into(fleet: &Fleet, dir: &Path) -> PathBuf {
    let merged = dir.join("merged.img");
    support_many::tools::merge_and_fsck(
        Path::new(env!("CARGO_BIN_EXE_umlcow")),
        &fleet.instances[0].cow,
        Some(&fleet.backing),
        &merged,
    );
    merged
}

/// A file's contents in an ext2 image, through debugfs.
fn debugfs_cat(image: &Path, path: &str) -> String {
    debugfs(image, &format!("cat {path}"))
}

// --- logging in, both ubd modes ---------------------------------------------

fn login_and_ls(mode: &str) {
    let mut fleet = boot(mode);
    let g = &mut fleet.instances[0];
    let out = ok(g, "ls /");
    for dir in ["bin", "dev", "etc", "proc", "root", "sbin", "tmp", "usr"] {
        assert!(
            out.split_whitespace().any(|w| w == dir),
            "ubd={mode}: `ls /` lacks {dir}:\n{out}"
        );
    }
    same(g, "cat /etc/hostname", "umlrun");
    // The image's busybox is the host's (disk-images/build copies it):
    // read all of it through this ubd mode and compare checksums.
    let host_busybox = std::env::var("BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
    let host_sum = Command::new("md5sum").arg(&host_busybox).output().unwrap();
    let host_sum = String::from_utf8_lossy(&host_sum.stdout);
    let want = host_sum.split_whitespace().next().unwrap();
    let got = ok(g, "md5sum /bin/busybox");
    assert_eq!(
        got.split_whitespace().next(),
        Some(want),
        "ubd={mode}: /bin/busybox reads back wrong"
    );
    assert_no_panic(g);
    // Powering off is checked on its own (poweroff_keeps_synced_file_in_cow).
}

#[test]
fn login_and_ls_ubd_mmap() {
    login_and_ls("mmap");
}

#[test]
fn login_and_ls_ubd_copy() {
    login_and_ls("copy");
}

// --- busybox commands -------------------------------------------------------

#[test]
fn file_commands() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "mkdir /tmp/a && mkdir /tmp/a/b && mkdir /tmp/a/b/c");
    ok(g, "echo one > /tmp/a/b/c/f");
    same(g, "ls /tmp/a/b/c", "f");
    ok(g, "cp /tmp/a/b/c/f /tmp/a/g");
    same(g, "cat /tmp/a/g", "one");
    ok(g, "mv /tmp/a/g /tmp/a/h");
    same(g, "ls -1 /tmp/a", "b\nh");
    same(g, "cat /tmp/a/h", "one");
    let (status, _) = g.run("test -e /tmp/a/g", CMD_TIMEOUT).unwrap();
    assert_eq!(status, 1, "mv left its source behind");
    ok(g, "rm /tmp/a/h && rm -r /tmp/a/b");
    same(g, "ls -A /tmp/a", "");
    // The same on the ext2 root (not tmpfs).
    ok(g, "mkdir /root/x && mkdir /root/x/y && cp /etc/passwd /root/x/y/p && mv /root/x/y/p /root/x/q");
    same(g, "cat /root/x/q", "root::0:0:root:/root:/bin/sh");
    ok(g, "rm -r /root/x");
    same(g, "find / -name busybox -type f", "/bin/busybox");
    same(
        g,
        "find /etc -name 'host*' | sort",
        "/etc/hostname\n/etc/hosts",
    );
}

#[test]
fn mkdir_p_makes_nested_directories() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    // mkdir -p starts with mkdir("/"), which must fail with EEXIST.
    ok(g, "mkdir -p /tmp/p/q/r && mkdir -p /root/p/q");
    same(
        g,
        "find /tmp/p /root/p -type d | sort",
        "/root/p\n/root/p/q\n/tmp/p\n/tmp/p/q\n/tmp/p/q/r",
    );
    // Again, over existing directories: still no error.
    ok(g, "mkdir -p /tmp/p/q/r");
}

/// busybox chroot: a shell in a small tree (a copy of busybox in it)
/// sees the tree as /, `cd /../..` stays at its root, and the shell
/// outside keeps the real root.
#[test]
fn chroot_runs_a_shell_in_a_tree() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(
        g,
        "mkdir -p /tmp/j/bin /tmp/j/etc && cp /bin/busybox /tmp/j/bin/ && echo jailed > /tmp/j/etc/jailmark",
    );
    same(
        g,
        "chroot /tmp/j /bin/busybox sh -c 'busybox cat /etc/jailmark; cd /../..; pwd; busybox ls -1 /'",
        "jailed\n/\nbin\netc",
    );
    same(
        g,
        "ls /tmp/j/etc; test -e /etc/jailmark || echo none",
        "jailmark\nnone",
    );
}

#[test]
fn cat_of_a_big_file_into_a_pipe() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let size = ok(g, "wc -c < /bin/busybox");
    // busybox cat copies with sendfile(2) into the pipe: it must block
    // while the pipe is full, not fail.
    same(g, "cat /bin/busybox | wc -c", size.trim_end());
    same(
        g,
        "cat /bin/busybox | cat | cat > /tmp/b; cmp /bin/busybox /tmp/b && echo same",
        "same",
    );
}

#[test]
fn text_commands() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(
        g,
        "printf 'pear 3\\napple 10\\nfig 7\\napple 2\\n' > /tmp/t",
    );
    same(g, "grep apple /tmp/t", "apple 10\napple 2");
    same(g, "grep -c apple /tmp/t", "2");
    same(g, "grep -v apple /tmp/t", "pear 3\nfig 7");
    same(
        g,
        "sed 's/apple/APPLE/; /fig/d' /tmp/t",
        "pear 3\nAPPLE 10\nAPPLE 2",
    );
    same(g, "sed -n 2p /tmp/t", "apple 10");
    same(g, "awk '{ s += $2 } END { print NR, s }' /tmp/t", "4 22");
    same(g, "awk '$2 > 5 { print $1 }' /tmp/t", "apple\nfig");
    same(g, "sort /tmp/t", "apple 10\napple 2\nfig 7\npear 3");
    same(g, "sort -k2 -n /tmp/t", "apple 2\npear 3\nfig 7\napple 10");
    same(g, "sort -u -k1,1 /tmp/t | wc -l", "3");
    same(g, "wc -l < /tmp/t", "4");
    let out = ok(g, "wc /tmp/t");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&words[..3], ["4", "8", "30"], "wc /tmp/t: {out}");
}

#[test]
fn system_commands() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let ps = ok(g, "ps");
    let init = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("ps shows no pid 1:\n{ps}"));
    assert!(init.contains("init"), "pid 1 is not init: {init}\n{ps}");
    assert!(
        ps.contains("-sh") || ps.contains("sh"),
        "ps lacks the shell:\n{ps}"
    );

    let top = ok(g, "top -n1");
    assert!(top.contains("PID"), "top -n1 has no process table:\n{top}");
    assert!(top.contains("init"), "top -n1 does not show init:\n{top}");

    let mount = ok(g, "mount");
    assert!(
        mount.lines().any(|l| l.contains(" on / type ext2")),
        "mount shows no ext2 root:\n{mount}"
    );
    assert!(
        mount.lines().any(|l| l.contains(" on /proc type proc")),
        "mount shows no /proc:\n{mount}"
    );
    let df = ok(g, "df /");
    let root = df
        .lines()
        .find(|l| l.trim_end().ends_with(" /"))
        .unwrap_or_else(|| panic!("df / has no line for /:\n{df}"));
    let blocks: u64 = root.split_whitespace().nth(1).unwrap().parse().unwrap();
    // A 64M image, in 1K blocks.
    assert!(
        (60_000..=65_536).contains(&blocks),
        "df / says {blocks} blocks for a 64M image:\n{df}"
    );
    let uname = ok(g, "uname -a");
    assert!(
        uname.starts_with("Linux umlrun ") && uname.contains("x86_64"),
        "uname -a: {uname}"
    );
    same(g, "uname -n", "umlrun");
}

#[test]
fn free_figures_add_up() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let free = ok(g, "free");
    let mem = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_else(|| panic!("free has no Mem: line:\n{free}"));
    // Mem: total used free shared buff/cache available, in KiB.
    let cols: Vec<u64> = mem
        .split_whitespace()
        .skip(1)
        .map(|c| c.parse().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(cols.len(), 6, "free's Mem: line has not 6 numbers:\n{free}");
    let (total, used, avail) = (cols[0], cols[1], cols[5]);
    // mem=64M; the kernel keeps some for itself.
    assert!(
        (32 * 1024..=64 * 1024).contains(&total),
        "free reports {total} KiB total for mem=64M:\n{free}"
    );
    assert!(
        used > 0 && used < total && avail <= total,
        "free's figures do not add up (used {used}, available {avail}, total {total}):\n{free}"
    );
}

#[test]
fn shell_scripts_pipelines_and_redirections() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    // A script written with echo, with a loop, a pipeline and arithmetic.
    ok(g, "echo 'i=0' > /tmp/s.sh");
    ok(
        g,
        "echo 'for w in c a b; do i=$((i+1)); echo \"$i $w\"; done | sort -k2 | tr a-z A-Z' >> /tmp/s.sh",
    );
    ok(
        g,
        "echo 'while [ $i -gt 0 ]; do i=$((i-1)); done; echo end $i' >> /tmp/s.sh",
    );
    same(g, "sh /tmp/s.sh", "2 A\n3 B\n1 C\nend 0");
    same(g, "seq 1 100 | grep 7 | wc -l", "19");

    // > and >>
    ok(g, "echo first > /tmp/r; echo second >> /tmp/r");
    same(g, "cat /tmp/r", "first\nsecond");
    ok(g, "echo over > /tmp/r");
    same(g, "cat /tmp/r", "over");
    // 2>&1: an error message goes where stdout goes.
    ok(g, "ls /nonexistent > /tmp/e 2>&1; true");
    let e = ok(g, "cat /tmp/e");
    assert!(
        e.contains("/nonexistent") && e.contains("No such file"),
        "2>&1 did not catch ls's error: {e}"
    );
    // 2> alone keeps stdout on the console.
    same(g, "(echo out; echo err >&2) 2>/tmp/e2", "out");
    same(g, "cat /tmp/e2", "err");
    // <
    same(g, "tr a-z A-Z < /tmp/r", "OVER");
    same(g, "read x < /tmp/r; echo got $x", "got over");
    // Exit statuses come back.
    let (status, _) = g.run("sh -c 'exit 3'", CMD_TIMEOUT).unwrap();
    assert_eq!(status, 3);
}

// --- power off and the COW ---------------------------------------------------

#[test]
fn poweroff_keeps_synced_file_in_cow() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "echo hello > /root/f; sync");
    g.send("poweroff\n").unwrap();
    expect_exit_0(g, "poweroff");
    let merged = merge_and_fsck(&fleet);
    assert_eq!(debugfs_cat(&merged, "/root/f"), "hello\n");
}

/// `poweroff -f` calls reboot(2) directly, without init's shutdown actions.
#[test]
fn poweroff_f_keeps_synced_file_in_cow() {
    let mut fleet = boot("copy");
    let g = &mut fleet.instances[0];
    ok(g, "echo forced > /root/f; sync");
    g.send("poweroff -f\n").unwrap();
    expect_exit_0(g, "poweroff -f");
    let merged = merge_and_fsck(&fleet);
    assert_eq!(debugfs_cat(&merged, "/root/f"), "forced\n");
}

#[test]
fn sigterm_shuts_down_cleanly_and_writes_back() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    // No sync: only the shutdown's write-back can put this on disk.
    ok(g, "echo dirty > /root/t");
    g.signal(libc::SIGTERM);
    expect_exit_0(g, "SIGTERM");
    let merged = merge_and_fsck(&fleet);
    assert_eq!(debugfs_cat(&merged, "/root/t"), "dirty\n");
}

/// A guest that fills its disk gets ENOSPC, the disk stays consistent, and
/// freeing the space makes it usable again.
#[test]
fn full_disk_is_enospc_and_recovers() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let (status, out) = g
        .run("dd if=/dev/zero of=/root/fill bs=1M 2>&1", CMD_TIMEOUT)
        .unwrap();
    assert_ne!(status, 0, "dd onto a full disk succeeded:\n{out}");
    assert!(out.contains("No space left on device"), "dd said:\n{out}");
    same(g, "df / | awk 'NR==2 {print $4}'", "0");
    let (status, _) = g.run("echo more > /root/more", CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "a new file fitted on a full disk");
    ok(g, "rm /root/fill && echo after > /root/after && sync");
    same(g, "cat /root/after", "after");
    g.send("poweroff\n").unwrap();
    expect_exit_0(g, "poweroff");
    let merged = merge_and_fsck(&fleet);
    assert_eq!(debugfs_cat(&merged, "/root/after"), "after\n");
}

/// Out of guest memory (mem=64M), the OOM path kills the process that
/// asked, whether it ran out in a page fault or inside a syscall copying
/// into its memory, and the rest of the system goes on.
#[test]
fn out_of_guest_memory_kills_the_process_not_the_guest() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    // read() into a 100 MiB buffer: the copy runs out.
    let (status, out) = g
        .run("dd if=/dev/zero of=/dev/null bs=100M count=1", CMD_TIMEOUT)
        .unwrap();
    assert_eq!(status, 137, "dd was not OOM-killed:\n{out}");
    // A string doubling until memory runs out: a page fault runs out.
    let (status, out) = g
        .run(
            "awk 'BEGIN { s = \"xxxxxxxx\"; while (1) s = s s }'",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_eq!(status, 137, "awk was not OOM-killed:\n{out}");
    // The memory came back: most of the 64 MiB is free again.
    let free = ok(g, "free | awk '/Mem:/ {print $4}'");
    let kb: u64 = free.trim().parse().unwrap_or(0);
    assert!(kb > 48 * 1024, "free after the OOM kills: {kb} kB");
    same(g, "echo still-here", "still-here");
}

/// A small tmpfs mounted for one test; lazily unmounted when dropped (the
/// instance on it may still be stopping).
struct SmallMount(PathBuf);

impl SmallMount {
    fn new(at: &Path, size: &str) -> SmallMount {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "this test needs root to mount a tmpfs (run the suite as root)"
        );
        SmallMount(at.to_path_buf())
    }
}

impl Drop for SmallMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The host disk under the COW file fills up: the guest's writes fail with
/// EIO (umlrun logs the host error), nothing panics or hangs, and once the
/// guest frees the space the disk works again and merges clean.
#[test]
fn host_disk_full_under_the_cow_is_eio_not_a_crash() {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    let _small = SmallMount::new(fleet.dir(), "3M");
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "echo before > /root/before; sync");
    let (status, out) = g
        .run(
            "dd if=/dev/zero of=/root/fill bs=1M count=10 2>&1",
            CMD_TIMEOUT,
        )
        .unwrap();
    assert_ne!(status, 0, "10 MB fitted in a 3 MB host file system:\n{out}");
    assert!(out.contains("Input/output error"), "dd said:\n{out}");
    ok(g, "rm /root/fill; echo after > /root/after; sync");
    same(g, "cat /root/before /root/after", "before\nafter");
    g.send("poweroff\n").unwrap();
    expect_exit_0(g, "poweroff");
    // Merge outside the full tmpfs.
    let out_dir = tempfile::tempdir().unwrap();
    let merged = merge_and_fsck_into(&fleet, out_dir.path());
    assert_eq!(debugfs_cat(&merged, "/root/after"), "after\n");
}

/// The host processes umlrun started (its stubs), from /proc.
fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return kids;
    };
    for t in tasks.flatten() {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        kids.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    kids
}

/// Whether `pid` still exists as a process that is not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// SIGKILL cannot be caught: what the guest synced is on disk, the image
/// is consistent for e2fsck, and no guest process outlives umlrun.
#[test]
fn sigkill_keeps_what_was_synced_and_leaves_no_stub() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "mkdir -p /root/d && echo kept > /root/d/f && sync");
    ok(g, "sleep 1000 &");
    let stubs = children_of(g.pid());
    assert!(
        stubs.len() >= 3,
        "init, sh and sleep should be stubs of umlrun: {stubs:?}"
    );
    g.signal(libc::SIGKILL);
    let st = g
        .wait_exited(EXIT_TIMEOUT)
        .expect("umlrun survived SIGKILL");
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    // The stubs die with their tracer (PTRACE_O_EXITKILL, PDEATHSIG).
    let deadline = std::time::Instant::now() + EXIT_TIMEOUT;
    while stubs.iter().any(|&p| running(p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left: Vec<i32> = stubs.iter().copied().filter(|&p| running(p)).collect();
    assert!(left.is_empty(), "stubs outlived umlrun: {left:?}");
    let merged = merge_and_fsck(&fleet);
    assert_eq!(debugfs_cat(&merged, "/root/d/f"), "kept\n");
}

#[test]
fn halt_ends_umlrun_with_0() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    g.send("halt\n").unwrap();
    expect_exit_0(g, "halt");
}

#[test]
fn reboot_boots_again() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "echo before-reboot > /root/r; sync");
    let at = g.mark();
    g.send("reboot\n").unwrap();
    g.expect(LOGIN_PROMPT, at, BOOT_TIMEOUT).unwrap();
    assert!(g.alive(), "umlrun ended on reboot");
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    same(g, "cat /root/r", "before-reboot");
    g.send("poweroff\n").unwrap();
    expect_exit_0(g, "reboot, then poweroff");
}

// --- the terminal: Ctrl-C, job control, Ctrl-D -------------------------------

#[test]
fn ctrl_c_interrupts_the_foreground_job() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let at = g.mark();
    // The job says when it runs (then it execs sleep in the same process):
    // under load a fixed delay is not enough for the shell to start it and
    // hand it the terminal, and a ^C that comes earlier hits the shell.
    g.send("sh -c 'echo sleep-starts; exec sleep 100'\n")
        .unwrap();
    let (_, line) = g.expect(b"\nsleep-starts", at, CMD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    g.send("\x03").unwrap();
    g.expect(SHELL_PROMPT, line, CMD_TIMEOUT).unwrap();
    assert!(g.alive(), "Ctrl-C ended umlrun");
    // 130 = 128 + SIGINT: sleep died of the signal. Typed raw: run() puts
    // its own marker command first, which would reset $?.
    expect_last_status(g, 130);
    let ps = ok(g, "ps");
    assert!(!ps.contains("sleep 100"), "sleep survived Ctrl-C:\n{ps}");
    assert_no_panic(g);
}

#[test]
fn job_control_background_jobs_and_kill() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "sleep 100 &");
    let pid = ok(g, "echo $!");
    assert!(pid.trim().parse::<u32>().is_ok(), "$! is not a pid: {pid}");
    let jobs = ok(g, "jobs");
    assert!(
        jobs.contains("[1]") && jobs.contains("Running") && jobs.contains("sleep 100"),
        "jobs: {jobs}"
    );
    let at = g.mark();
    ok(g, "kill %1");
    // The shell reports the end of the job (right away or at the next
    // `jobs`); afterwards the job is gone and so is the process.
    let jobs = ok(g, "sleep 1; jobs");
    let seen = console_text(g, at);
    assert!(
        seen.contains("Terminated") && seen.contains("sleep 100"),
        "the shell never reported the job terminated:\n{seen}"
    );
    assert!(!jobs.contains("Running"), "the job still runs: {jobs}");
    let ps = ok(g, "ps");
    assert!(
        !ps.contains("sleep 100"),
        "kill %1 left sleep running:\n{ps}"
    );
}

/// A process that computes forever in the background does not starve the
/// others: the shell's `date; sleep 1; echo x` still completes (the busy
/// loop is preempted, and the sleeper's deadline is seen between its
/// slices, not only when nothing is runnable), in about a second.
#[test]
fn a_busy_background_process_does_not_starve_the_shell() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "sh -c 'while :; do :; done' &");
    let busy = ok(g, "echo $!");
    let t = std::time::Instant::now();
    let out = ok(g, "date; sleep 1; echo x");
    let took = t.elapsed();
    assert!(out.trim_end().ends_with('x'), "printed:\n{out}");
    assert!(
        took < Duration::from_secs(5),
        "`date; sleep 1; echo x` took {took:?} next to a busy loop"
    );
    // Two busy loops and a timed sleep: each still gets its turn.
    ok(g, "sh -c 'while :; do :; done' &");
    let t = std::time::Instant::now();
    same(g, "sleep 1; echo y", "y");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "sleep 1 took {:?}",
        t.elapsed()
    );
    ok(g, &format!("kill {} $!", busy.trim()));
    assert_no_panic(g);
}

#[test]
fn ctrl_d_logs_out_and_getty_respawns() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let at = g.mark();
    g.send("\x04").unwrap();
    g.expect(LOGIN_PROMPT, at, BOOT_TIMEOUT).unwrap();
    assert!(g.alive(), "Ctrl-D ended umlrun");
    g.state = State::Login;
    g.login(CMD_TIMEOUT).unwrap();
    same(g, "echo again", "again");
}

// --- bad disks ---------------------------------------------------------------

/// Run umlrun with `args` (stdin a pipe, not a terminal); it must fail
/// with one clear stderr line that contains `needle` and no panic.
fn expect_one_line_error(args: &[String], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_umlrun"));
    cmd.args(args)
        .arg(format!("uml_dir={}", dir.path().display()))
        .arg("con0=fd:0,fd:1")
        .current_dir(dir.path());
    let run = support::run_command(cmd, Duration::from_secs(30));
    let status = run.expect_finished(&format!("umlrun {args:?}"));
    assert_ne!(status, 0, "umlrun {args:?} succeeded:\n{}", run.tail(20));
    assert!(
        !run.stderr.contains("panicked"),
        "umlrun {args:?} panicked:\n{}",
        run.stderr
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "umlrun {args:?}: want one error line, got:\n{}",
        run.stderr
    );
    assert!(
        lines[0].contains(needle),
        "umlrun {args:?}: the error does not name {needle:?}: {}",
        lines[0]
    );
    assert!(
        !run.stdout.contains("login:"),
        "umlrun {args:?} booted anyway"
    );
}

#[test]
fn missing_image_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.cow");
    expect_one_line_error(
        &[
            "mem=64M".into(),
            "ubd=mmap".into(),
            format!("ubd0={}", missing.display()),
        ],
        "no-such.cow",
    );
}

#[test]
fn truncated_cow_header_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cow = dir.path().join("short.cow");
    let full = support::fresh_cow(&backing());
    let bytes = std::fs::read(&full.path).unwrap();
    // Magic and version intact, the rest of the header cut off.
    std::fs::write(&cow, &bytes[..20]).unwrap();
    for mode in ["mmap", "copy"] {
        expect_one_line_error(
            &[
                "mem=64M".into(),
                format!("ubd={mode}"),
                format!("ubd0={}", cow.display()),
            ],
            "short.cow",
        );
    }
}

#[test]
fn backing_file_with_a_new_mtime_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("copy.img");
    std::fs::copy(backing(), &image).unwrap();
    let cow = support::fresh_cow(&image);
    // Same contents and size, one hour newer: the COW no longer matches.
    let f = std::fs::File::options().write(true).open(&image).unwrap();
    let then = std::fs::metadata(&image).unwrap().modified().unwrap();
    f.set_modified(then + Duration::from_secs(3600)).unwrap();
    drop(f);
    expect_one_line_error(
        &[
            "mem=64M".into(),
            "ubd=mmap".into(),
            format!("ubd0={}", cow.path.display()),
        ],
        "mtime",
    );
}

// --- a full-screen program, Ctrl-Z, the host terminal ------------------------

/// `vi` in the guest's terminal: insert text, ESC, `:wq`; the file holds
/// the text and the shell's terminal modes are back as they were.
#[test]
fn vi_edits_a_file_and_restores_the_terminal() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let modes_before = ok(g, "stty -g");
    let at = g.mark();
    g.send("vi /tmp/x\n").unwrap();
    // vi draws `~` for the lines past the end of the (empty) buffer and
    // names the new file on its status line; typing before vi has the
    // terminal in raw mode would feed the keys to the shell's line.
    let (_, typed) = g.expect(b"vi /tmp/x", at, CMD_TIMEOUT).unwrap();
    g.expect(b"~", typed, CMD_TIMEOUT).unwrap();
    g.expect(b"/tmp/x", typed, CMD_TIMEOUT).unwrap();
    g.send("ihello from vi").unwrap();
    // (vi may draw the text piecemeal, so it is not waited for.) ESC alone,
    // then the ex command: vi tells a lone ESC from the start of an escape
    // sequence (ESC : would be Alt-:) by a short pause.
    std::thread::sleep(Duration::from_millis(300));
    g.send("\x1b").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let at = g.mark();
    g.send(":wq\r").unwrap();
    g.expect(SHELL_PROMPT, at, CMD_TIMEOUT).unwrap();
    assert!(g.alive(), "umlrun ended in vi");
    same(g, "cat /tmp/x", "hello from vi");
    // vi put the terminal back: the same settings, canonical with echo, and
    // a plain command works. (No icrnl: getty sets it only when the login
    // name ends with CR, and the harness types LF.)
    same(g, "stty -g", modes_before.trim_end());
    let stty = ok(g, "stty -a");
    let words: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "opost", "onlcr"] {
        assert!(
            words.contains(&flag),
            "after vi the terminal lacks {flag}:\n{stty}"
        );
    }
    same(g, "echo back at the shell", "back at the shell");
    assert_no_panic(g);
}

/// Start `vi path` and wait until it has drawn its screen (the file's name
/// on the status line): from then on the terminal is in vi's raw mode and
/// keys reach vi, not the shell's line.
fn vi_open(g: &mut Instance, path: &str) {
    let at = g.mark();
    g.send(&format!("vi {path}\n")).unwrap();
    let (_, typed) = g
        .expect(format!("vi {path}").as_bytes(), at, CMD_TIMEOUT)
        .unwrap();
    g.expect(b"~", typed, CMD_TIMEOUT).ok();
    g.expect(path.as_bytes(), typed, CMD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(200));
}

/// Type `keys` into vi. Each ESC goes alone, between pauses: vi tells a
/// lone ESC from the start of an escape sequence (ESC : would be Alt-:)
/// by a short pause.
fn vi_keys(g: &mut Instance, keys: &str) {
    for (i, part) in keys.split('\x1b').enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(300));
            g.send("\x1b").unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        if !part.is_empty() {
            g.send(part).unwrap();
        }
    }
}

/// Leave vi with `cmd` (an ex command such as ":wq\r") and wait for the
/// shell prompt.
fn vi_quit(g: &mut Instance, cmd: &str) {
    let at = g.mark();
    vi_keys(g, cmd);
    g.expect(SHELL_PROMPT, at, CMD_TIMEOUT).unwrap();
    assert!(g.alive(), "umlrun ended in vi");
}

/// The terminal is canonical with echo and signals again, exactly as
/// `before` (`stty -g`) says.
fn assert_terminal_restored(g: &mut Instance, before: &str) {
    same(g, "stty -g", before.trim_end());
    let stty = ok(g, "stty -a");
    let words: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "opost", "onlcr"] {
        assert!(
            words.contains(&flag),
            "after vi the terminal lacks {flag}:\n{stty}"
        );
    }
}

/// A first session writes a new file of several lines with `i`, Enter,
/// ESC, `:wq`; a second edits it with `dd`, `x`, `A`, `o`, `:w` and `:q`.
/// After each the file holds exactly what was typed and the shell's
/// terminal is back in canonical mode with echo.
#[test]
fn vi_writes_then_edits_a_file() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let modes = ok(g, "stty -g");
    vi_open(g, "/root/v.txt");
    vi_keys(g, "ialpha one\rbravo two\rcharlie three\x1b");
    vi_quit(g, ":wq\r");
    same(g, "cat /root/v.txt", "alpha one\nbravo two\ncharlie three");
    same(g, "wc -c < /root/v.txt", "34");
    assert_terminal_restored(g, &modes);

    vi_open(g, "/root/v.txt");
    // dd: the first line goes; x: "b" of "bravo"; A: append at the end of
    // the line; j then o: a new line after the last one.
    vi_keys(g, "ddxA and more\x1bjonew last\x1b");
    let at = g.mark();
    vi_keys(g, ":w\r");
    // busybox vi's report of the write: lines and characters.
    g.expect(b"3L, 41C", at, CMD_TIMEOUT).unwrap();
    vi_quit(g, ":q\r");
    same(
        g,
        "cat /root/v.txt",
        "ravo two and more\ncharlie three\nnew last",
    );
    assert_terminal_restored(g, &modes);
    same(g, "echo back at the shell", "back at the shell");
    assert_no_panic(g);
}

/// A terminal screen fed with console output: just the control sequences
/// busybox vi and ash use (cursor moves, erase, scrolling at the bottom).
/// What vi's screen shows is then checked against the file, line by line.
struct Screen {
    rows: usize,
    cols: usize,
    cells: Vec<Vec<u8>>,
    row: usize,
    col: usize,
    /// Control sequences the model does not know (the check then fails).
    unknown: Vec<String>,
}

impl Screen {
    fn new(rows: usize, cols: usize) -> Screen {
        Screen {
            rows,
            cols,
            cells: vec![vec![b' '; cols]; rows],
            row: 0,
            col: 0,
            unknown: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            match b {
                b'\r' => self.col = 0,
                b'\n' => self.line_feed(),
                8 => self.col = self.col.saturating_sub(1),
                7 => {}
                0x1b if bytes.get(i) == Some(&b'[') => {
                    let start = i + 1;
                    let mut end = start;
                    while end < bytes.len() && !(0x40..=0x7e).contains(&bytes[end]) {
                        end += 1;
                    }
                    if end == bytes.len() {
                        return;
                    }
                    self.csi(&bytes[start..end], bytes[end]);
                    i = end + 1;
                }
                0x1b => {
                    self.unknown
                        .push(format!("ESC {:?}", bytes.get(i).map(|&c| c as char)));
                    i += 1;
                }
                _ => {
                    if self.col >= self.cols {
                        self.col = 0;
                        self.line_feed();
                    }
                    self.cells[self.row][self.col] = b;
                    self.col += 1;
                }
            }
        }
    }

    fn line_feed(&mut self) {
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            self.cells.remove(0);
            self.cells.push(vec![b' '; self.cols]);
        }
    }

    fn csi(&mut self, params: &[u8], op: u8) {
        let text = String::from_utf8_lossy(params).into_owned();
        let private = text.starts_with('?');
        let nums: Vec<usize> = text
            .trim_start_matches('?')
            .split(';')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let n = |i: usize, d: usize| nums.get(i).copied().filter(|&v| v > 0).unwrap_or(d);
        match op {
            b'H' | b'f' => {
                self.row = (n(0, 1) - 1).min(self.rows - 1);
                self.col = (n(1, 1) - 1).min(self.cols - 1);
            }
            b'K' if nums[0] == 0 => self.cells[self.row][self.col..].fill(b' '),
            b'J' if nums[0] == 0 => {
                self.cells[self.row][self.col..].fill(b' ');
                for r in self.row + 1..self.rows {
                    self.cells[r].fill(b' ');
                }
            }
            b'J' if nums[0] == 2 => self.cells.iter_mut().for_each(|r| r.fill(b' ')),
            b'A' => self.row = self.row.saturating_sub(n(0, 1)),
            b'B' => self.row = (self.row + n(0, 1)).min(self.rows - 1),
            b'C' => self.col = (self.col + n(0, 1)).min(self.cols - 1),
            b'D' => self.col = self.col.saturating_sub(n(0, 1)),
            // Attributes, modes (the alternate screen), cursor reports.
            b'm' | b'n' => {}
            b'h' | b'l' if private => {}
            _ => self.unknown.push(format!("CSI {text}{}", op as char)),
        }
    }

    /// Row `r` without trailing blanks.
    fn line(&self, r: usize) -> String {
        String::from_utf8_lossy(&self.cells[r])
            .trim_end()
            .to_string()
    }
}

/// What vi shows of `lines` (the file) on `screen`: every text row above
/// the status line is the file line after the one above it, rows past the
/// end of the file are `~`, and the file line `want` is among them.
fn assert_vi_shows(screen: &Screen, lines: &[String], want: &str) {
    assert!(
        screen.unknown.is_empty(),
        "vi sent sequences the check does not model: {:?}",
        screen.unknown
    );
    let shown: Vec<String> = (0..screen.rows - 1).map(|r| screen.line(r)).collect();
    let dump = shown.join("\n");
    let first = lines
        .iter()
        .position(|l| *l == shown[0])
        .unwrap_or_else(|| panic!("vi's first row is no line of the file:\n{dump}"));
    for (r, text) in shown.iter().enumerate() {
        match lines.get(first + r) {
            Some(l) => assert_eq!(text, l, "row {} of vi's screen is garbled:\n{dump}", r + 1),
            None => assert_eq!(text, "~", "row {} past the end of the file:\n{dump}", r + 1),
        }
    }
    assert!(
        shown.iter().any(|l| l == want),
        "vi does not show {want}:\n{dump}"
    );
}

/// A file longer than the window: `G` scrolls to its end and `gg` back to
/// the top, each time with every row on the screen the right line of the
/// file (a model of the terminal follows vi's output); edits at both ends
/// land in the right lines and nothing else changes.
#[test]
fn vi_scrolls_a_file_longer_than_the_window() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let modes = ok(g, "stty -g");
    // 120 lines in a 50-row window.
    ok(
        g,
        "i=1; while [ $i -le 120 ]; do echo row-$i-end; i=$((i+1)); done > /root/long.txt",
    );
    let mut lines: Vec<String> = (1..=120).map(|i| format!("row-{i}-end")).collect();
    let sum_before = ok(g, "sed -n '2,119p' /root/long.txt | md5sum");
    let start = g.mark();
    vi_open(g, "/root/long.txt");
    let mut screen = Screen::new(50, 1000);
    screen.feed(&g.transcript()[start..]);
    assert_vi_shows(&screen, &lines, "row-1-end");
    assert!(
        !(0..50).any(|r| screen.line(r) == "row-120-end"),
        "vi drew the last line of a 120-line file in a 50-row window"
    );
    let at = g.mark();
    vi_keys(g, "G");
    g.expect(b"120/120", at, CMD_TIMEOUT).unwrap();
    screen.feed(&g.transcript()[at..]);
    assert_vi_shows(&screen, &lines, "row-120-end");
    // Delete the last line, then go to the top.
    let at = g.mark();
    vi_keys(g, "dd");
    g.expect(b"Delete 1 lines", at, CMD_TIMEOUT).unwrap();
    vi_keys(g, "gg");
    g.expect(b"1/119", at, CMD_TIMEOUT).unwrap();
    screen.feed(&g.transcript()[at..]);
    lines.pop();
    assert_vi_shows(&screen, &lines, "row-1-end");
    // And the first character of the first line.
    vi_keys(g, "x");
    vi_quit(g, ":wq\r");
    same(g, "wc -l < /root/long.txt", "119");
    same(g, "head -n 1 /root/long.txt", "ow-1-end");
    same(g, "tail -n 1 /root/long.txt", "row-119-end");
    // Lines 2..119 untouched (no stray keys, no garbled write-back).
    let sum_after = ok(g, "sed -n '2,119p' /root/long.txt | md5sum");
    assert_eq!(sum_before, sum_after, "vi changed the middle of the file");
    assert_terminal_restored(g, &modes);
    assert_no_panic(g);
}

/// Resizing the terminal (TIOCSWINSZ on the pty master, as a terminal
/// window does) reaches the guest: `stty size` prints the new size, and a
/// running `vi` gets SIGWINCH and redraws for the new size (its status
/// line moves to the new last row).
#[test]
fn terminal_resize_reaches_the_guest() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    same(g, "stty size", "50 1000");
    g.set_window_size(40, 132).unwrap();
    same(g, "stty size", "40 132");
    let modes = ok(g, "stty -g");

    ok(
        g,
        "i=1; while [ $i -le 100 ]; do echo line-$i; i=$((i+1)); done > /root/r.txt",
    );
    vi_open(g, "/root/r.txt");
    let at = g.mark();
    g.set_window_size(20, 100).unwrap();
    // vi puts its status line on the last row: ESC [ 20 ; 1 H.
    g.expect(b"\x1b[20;1H", at, CMD_TIMEOUT).unwrap();
    vi_quit(g, ":q\r");
    same(g, "stty size", "20 100");
    // A size the guest sets itself stays until the host's changes again.
    ok(g, "stty rows 33 cols 111");
    same(g, "stty size", "33 111");
    g.set_window_size(50, 1000).unwrap();
    same(g, "stty size", "50 1000");
    assert_terminal_restored(g, &modes);
    assert_no_panic(g);
}

/// Ctrl-Z stops the foreground job (SIGTSTP to its process group), `jobs`
/// shows it stopped, `fg` gives it the terminal again and Ctrl-C ends it.
#[test]
fn ctrl_z_stops_the_foreground_job_and_fg_resumes_it() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    let at = g.mark();
    g.send("sh -c 'echo started; exec sleep 100'\n").unwrap();
    let (_, line) = g.expect(b"\nstarted", at, CMD_TIMEOUT).unwrap();
    // As for Ctrl-C: let the job's exec and the shell's wait settle.
    std::thread::sleep(Duration::from_millis(300));
    g.send("\x1a").unwrap();
    let (_, stopped) = g.expect(b"Stopped", line, CMD_TIMEOUT).unwrap();
    g.expect(SHELL_PROMPT, stopped, CMD_TIMEOUT).unwrap();
    assert!(g.alive(), "Ctrl-Z ended umlrun");

    let jobs = ok(g, "jobs");
    assert!(
        jobs.contains("[1]") && jobs.contains("Stopped") && jobs.contains("sleep 100"),
        "jobs after Ctrl-Z: {jobs}"
    );
    // The process is there and stopped (state T), not gone.
    let pid = ok(g, "pidof sleep");
    let pid = pid.trim();
    assert!(pid.parse::<u32>().is_ok(), "pidof sleep: {pid:?}");
    let state = ok(g, &format!("cut -d' ' -f3 /proc/{pid}/stat"));
    assert_eq!(state.trim(), "T", "the stopped job's state");

    let at = g.mark();
    g.send("fg\n").unwrap();
    let (_, typed) = g.expect(b"fg", at, CMD_TIMEOUT).unwrap();
    // ash names the job before it hands over the terminal and continues it.
    let (_, named) = g.expect(b"sleep 100", typed, CMD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    g.send("\x03").unwrap();
    g.expect(SHELL_PROMPT, named, CMD_TIMEOUT).unwrap();
    assert!(g.alive(), "Ctrl-C after fg ended umlrun");
    // Raw, not run(): its marker command would reset $?.
    expect_last_status(g, 130);
    let jobs = ok(g, "jobs");
    assert!(!jobs.contains("sleep"), "the job outlived Ctrl-C: {jobs}");
    let (status, ps) = g.run("pidof sleep", CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "sleep survived fg and Ctrl-C: {ps}");
    assert_no_panic(g);
}

/// How umlrun is ended in `host_terminal_restored`.
enum Stop {
    Poweroff,
    /// A host signal asking umlrun to end: SIGTERM, SIGHUP or SIGINT.
    Signal(i32),
}

/// umlrun on a cooked terminal (as a user's is) puts it in raw mode while
/// it runs and gives back exactly the settings it found when it ends.
fn host_terminal_restored(stop: Stop) {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    fleet.host_raw = false;
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    let before = g.termios_at_start.clone();
    let flags = |t: &nix::sys::termios::Termios| {
        use nix::sys::termios::LocalFlags as L;
        (
            t.local_flags.contains(L::ICANON),
            t.local_flags.contains(L::ECHO),
            t.local_flags.contains(L::ISIG),
        )
    };
    assert_eq!(flags(&before), (true, true, true), "the pty starts cooked");
    g.wait_login(BOOT_TIMEOUT).unwrap();
    let running = g.host_termios().unwrap();
    assert_eq!(
        flags(&running),
        (false, false, false),
        "while umlrun runs its terminal is not raw: {running:?}"
    );
    g.login(CMD_TIMEOUT).unwrap();
    same(g, "echo through a raw terminal", "through a raw terminal");
    match stop {
        Stop::Poweroff => {
            g.send("poweroff\n").unwrap();
            expect_exit_0(g, "poweroff");
        }
        Stop::Signal(sig) => {
            g.signal(sig);
            expect_exit_0(g, &format!("signal {sig}"));
        }
    }
    let after = g.host_termios().unwrap();
    assert_eq!(after, before, "umlrun left its terminal changed");
}

#[test]
fn host_terminal_restored_after_poweroff() {
    host_terminal_restored(Stop::Poweroff);
}

#[test]
fn host_terminal_restored_after_sigterm() {
    host_terminal_restored(Stop::Signal(libc::SIGTERM));
}

#[test]
fn host_terminal_restored_after_sighup() {
    host_terminal_restored(Stop::Signal(libc::SIGHUP));
}

#[test]
fn host_terminal_restored_after_sigint_to_umlrun() {
    host_terminal_restored(Stop::Signal(libc::SIGINT));
}

// --- pipelines with much data, here-documents, job states --------------------

#[test]
fn big_pipelines_and_here_documents() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    // The image's busybox is the host's (disk-images/build copies it).
    let host_busybox = std::env::var("BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
    let size = std::fs::metadata(&host_busybox).unwrap().len();
    same(g, "cat /bin/busybox | wc -c", &size.to_string());
    same(
        g,
        "dd if=/dev/zero bs=1M count=64 2>/dev/null | wc -c",
        "67108864",
    );
    // Through more pipes and a file, with redirections on both ends.
    same(
        g,
        "dd if=/dev/zero bs=64k count=256 2>/dev/null | cat | cat > /tmp/z; wc -c < /tmp/z",
        "16777216",
    );
    same(g, "tr '\\0' a < /tmp/z | tr -d a | wc -c", "0");

    // A here-document, typed line by line at the shell's `> ` prompts.
    // Typed raw: run() appends its marker to the last line, which would
    // break the terminator. Only the output is upper case.
    let at = g.mark();
    g.send("cat <<EOF | tr a-z A-Z; echo heredoc-rc=$?\nhello $((6*7))\nthe $HOME end\nEOF\n")
        .unwrap();
    let (_, done) = g.expect(b"\nheredoc-rc=0", at, CMD_TIMEOUT).unwrap();
    g.expect(SHELL_PROMPT, done, CMD_TIMEOUT).unwrap();
    let out = console_text(g, at);
    assert!(
        out.contains("\nHELLO 42\n") && out.contains("\nTHE /ROOT END\n"),
        "the here-document came out wrong:\n{out}"
    );
    // A quoted delimiter: no expansion.
    let at = g.mark();
    g.send("cat <<'EOF' > /tmp/hd; echo quoted-rc=$?\n$HOME $((1+1))\nEOF\n")
        .unwrap();
    let (_, done) = g.expect(b"\nquoted-rc=0", at, CMD_TIMEOUT).unwrap();
    g.expect(SHELL_PROMPT, done, CMD_TIMEOUT).unwrap();
    same(g, "cat /tmp/hd", "$HOME $((1+1))");
    assert_no_panic(g);
}

#[test]
fn background_job_states_stop_and_continue() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "sleep 100 &");
    let pid = ok(g, "echo $!").trim().to_string();
    assert!(pid.parse::<u32>().is_ok(), "$! is not a pid: {pid}");
    let state = |g: &mut Instance| ok(g, &format!("cut -d' ' -f3 /proc/{pid}/stat"));
    // ps: the sleep with its state, S (sleeping).
    let ps = ok(g, "ps -o pid,stat,args");
    let line = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some(pid.as_str()))
        .unwrap_or_else(|| panic!("ps does not show sleep (pid {pid}):\n{ps}"));
    assert!(line.contains("sleep 100"), "ps, pid {pid}: {line}");
    assert_eq!(
        line.split_whitespace().nth(1).map(|s| &s[..1]),
        Some("S"),
        "ps state of a sleeping job: {line}"
    );
    let top = ok(g, "top -n1");
    assert!(
        top.lines()
            .any(|l| l.trim_start().starts_with(&pid) && l.contains("sleep 100")),
        "top -n1 does not show the sleep:\n{top}"
    );

    ok(g, "kill -STOP %1");
    // The shell learns of the stop through SIGCHLD/wait; give it a moment.
    let jobs = ok(g, "sleep 1; jobs");
    assert!(
        jobs.contains("[1]") && jobs.contains("Stopped") && jobs.contains("sleep 100"),
        "jobs after kill -STOP: {jobs}"
    );
    assert_eq!(state(g).trim(), "T", "state after kill -STOP");

    ok(g, "kill -CONT %1");
    // ash does not see a continue it did not send (natively too: it waits
    // without WCONTINUED), so only the process shows it.
    assert_eq!(state(g).trim(), "S", "state after kill -CONT");
    // Stopped again, then continued by the shell itself: `jobs` follows.
    ok(g, "kill -STOP %1");
    assert_eq!(state(g).trim(), "T", "state after a second kill -STOP");
    ok(g, "bg %1");
    let jobs = ok(g, "jobs");
    assert!(
        jobs.contains("Running") && jobs.contains("sleep 100"),
        "jobs after bg: {jobs}"
    );
    assert_eq!(state(g).trim(), "S", "state after bg");

    ok(g, "kill %1");
    ok(g, "sleep 1; jobs");
    let ps = ok(g, "ps");
    assert!(
        !ps.contains("sleep 100"),
        "kill %1 left sleep:
{ps}"
    );
    assert_no_panic(g);
}

// --- job control: background groups and the terminal (SIGTTIN/SIGTTOU) ------

/// Runs `jobs` (a second apart) until it shows `want`; the stop of a
/// background job is reported asynchronously. Returns the last listing.
fn jobs_until(g: &mut Instance, want: &str) -> String {
    let mut jobs = String::new();
    for _ in 0..30 {
        jobs = ok(g, "jobs");
        if jobs.contains(want) {
            return jobs;
        }
        ok(g, "sleep 1");
    }
    panic!("`jobs` never showed {want:?}; last:\n{jobs}");
}

/// `cat &` reads the terminal from the background: SIGTTIN stops it
/// ("Stopped (tty input)", as natively); `fg` gives it the terminal, its
/// read is restarted and gets the typed line, ^D ends it.
#[test]
fn background_read_stops_for_tty_input_and_fg_resumes_it() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "cat &");
    let jobs = jobs_until(g, "Stopped (tty input)");
    assert!(jobs.contains("[1]") && jobs.contains("cat"), "jobs: {jobs}");
    let pid = ok(g, "pidof cat");
    let state = ok(g, &format!("cut -d' ' -f3 /proc/{}/stat", pid.trim()));
    assert_eq!(state.trim(), "T", "state of the stopped reader");

    let at = g.mark();
    g.send("fg\n").unwrap();
    let (_, typed) = g.expect(b"fg", at, CMD_TIMEOUT).unwrap();
    // ash names the job, hands it the terminal and continues it.
    let (_, named) = g.expect(b"cat", typed, CMD_TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    g.send("typed-line\n").unwrap();
    // The terminal's echo, then cat's copy of the line.
    let (_, echoed) = g.expect(b"typed-line", named, CMD_TIMEOUT).unwrap();
    g.expect(b"typed-line", echoed, CMD_TIMEOUT).unwrap();
    g.send("\x04").unwrap();
    g.expect(SHELL_PROMPT, echoed, CMD_TIMEOUT).unwrap();
    expect_last_status(g, 0);
    let jobs = ok(g, "jobs");
    assert!(!jobs.contains("cat"), "cat outlived ^D: {jobs}");
    assert_no_panic(g);
}

/// With TOSTOP a background write stops the job with SIGTTOU ("Stopped
/// (tty output)"), and so does a background termios change; without
/// TOSTOP background output just appears.
#[test]
fn background_output_stops_with_tostop_only() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    // The output (hi-42) differs from the typed line (hi-$((6*7))).
    ok(g, "stty tostop; echo hi-$((6*7)) &");
    let jobs = jobs_until(g, "Stopped (tty output)");
    assert!(jobs.contains("echo hi-"), "jobs: {jobs}");
    let seen = console_text(g, 0);
    assert!(!seen.contains("hi-42"), "a stopped job wrote:\n{seen}");
    // In the foreground it may write.
    let at = g.mark();
    g.send("stty -tostop; fg\n").unwrap();
    g.expect(b"\nhi-42", at, CMD_TIMEOUT).unwrap();
    g.expect(SHELL_PROMPT, at, CMD_TIMEOUT).unwrap();

    // Without TOSTOP the background job writes and ends.
    let at = g.mark();
    ok(g, "echo out-$((6*7)) &");
    ok(g, "sleep 1");
    let seen = console_text(g, at);
    assert!(
        seen.contains("out-42"),
        "background output missing:\n{seen}"
    );
    assert!(
        !seen.contains("Stopped"),
        "a background write stopped:\n{seen}"
    );

    // Changing the terminal from the background stops the job too.
    ok(g, "stty echo &");
    let jobs = jobs_until(g, "Stopped (tty output)");
    assert!(jobs.contains("stty echo"), "jobs: {jobs}");
    let at = g.mark();
    g.send("fg\n").unwrap();
    g.expect(b"stty echo", at, CMD_TIMEOUT).unwrap();
    g.expect(SHELL_PROMPT, at, CMD_TIMEOUT).unwrap();
    let jobs = ok(g, "jobs");
    assert!(!jobs.contains("Stopped"), "jobs after fg: {jobs}");
    assert_no_panic(g);
}

/// A background sleep stopped and continued by `kill` still finishes by
/// itself (its sleep is resumed, not lost).
#[test]
fn stopped_and_continued_background_sleep_finishes() {
    let mut fleet = boot("mmap");
    let g = &mut fleet.instances[0];
    ok(g, "sleep 2 &");
    ok(g, "kill -STOP %1");
    jobs_until(g, "Stopped");
    let pid = ok(g, "pidof sleep");
    let pid = pid.trim().to_string();
    let state = ok(g, &format!("cut -d' ' -f3 /proc/{pid}/stat"));
    assert_eq!(state.trim(), "T", "state after kill -STOP");
    ok(g, "kill -CONT %1");
    let mut gone = false;
    for _ in 0..30 {
        if g.run(&format!("test -d /proc/{pid}"), CMD_TIMEOUT)
            .unwrap()
            .0
            != 0
        {
            gone = true;
            break;
        }
        ok(g, "sleep 1");
    }
    assert!(gone, "the continued sleep never finished");
    let seen = console_text(g, 0);
    assert!(
        !seen.contains("Terminated") && !seen.contains("Killed"),
        "the sleep did not end normally:\n{seen}"
    );
    assert_no_panic(g);
}
