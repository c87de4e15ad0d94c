//! Swap files and priorities end to end: the real `umlrun` on a pty,
//! `mem=256M` in a 96 MiB host budget, an ext2 data disk for the swap
//! file, a swap disk, and tests/guest/memhog.c and tests/guest/swapctl.c
//! (swapon(2) with a priority, which busybox's swapon cannot give) on a
//! read-only disk.
//!
//! - A mkswap'd regular file in ext2 is a swap area: /proc/swaps says
//!   "file" with its size and priority; a file with holes, a file on tmpfs,
//!   a file already in use and a non-swap file get Linux's errors (EINVAL,
//!   EINVAL, EBUSY, EINVAL); unlink and rename of an active swap file are
//!   EPERM (Linux's may_delete); write, O_TRUNC open, truncate,
//!   ftruncate, fallocate, copy_file_range and a shared writable mmap of
//!   it ETXTBSY (shared read-only and private mappings work), umount of
//!   its file system EBUSY; once swapped off it can be written again.
//! - Two areas: the higher priority fills first, the lower takes the rest,
//!   and a program bigger than the budget reads every page back right.
//! - swapoff of the file brings everything in, the file can be removed,
//!   and the data disk's file system checks clean (e2fsck) afterwards: swap
//!   I/O went only to the file's blocks.
//!
//! Every instance is stopped by pid when a test fails (the harness's Drop).

mod support;
mod support_many;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support_many::shell::{busybox_image as backing, fails, ok, same};
use support_many::tools::{mke2fs, programs_disk};
use support_many::{tool, Fleet, Runner};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
const HOG_TIMEOUT: Duration = Duration::from_secs(240);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// An ext2 image holding /memhog and /swapctl.
fn tools_disk(dir: &Path) -> PathBuf {
    programs_disk(dir, "tools", &["memhog", "swapctl"], "8M")
}

/// (size, used, prio) of the /proc/swaps row for `name`.
fn swap_row(swaps: &str, name: &str) -> Option<(String, u64, u64, i64)> {
    swaps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 5 && f[0] == name).then(|| {
            (
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
    })
}

#[test]
fn a_swap_file_in_ext2_with_priorities_beside_a_swap_disk() {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "256M").unwrap();
    let dir = fleet.dir().to_path_buf();
    let tools = tools_disk(&dir);
    let data = dir.join("data.img");
    mke2fs(&data, "64M", None);
    let swapdisk = dir.join("swap.img");
    std::fs::File::create(&swapdisk)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    fleet.extra_args = vec![
        "host_mem_max=96M".into(),
        format!("ubd1={}", tools.display()),
        format!("ubd2={}", data.display()),
        format!("ubd3={}", swapdisk.display()),
    ];
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(
        g,
        "mount -o ro /dev/ubdb /mnt && mkdir -p /data && mount /dev/ubdc /data",
    );

    // Bad swap files: not a swap area, holes, tmpfs.
    ok(g, "dd if=/dev/zero of=/data/sw bs=1M count=32 2>/dev/null");
    fails(g, "/mnt/swapctl on /data/sw", "Invalid argument");
    ok(
        g,
        "dd if=/dev/zero of=/data/holes bs=4096 seek=2047 count=1 2>/dev/null",
    );
    ok(g, "mkswap /data/holes");
    fails(g, "/mnt/swapctl on /data/holes", "Invalid argument");
    ok(
        g,
        "dd if=/dev/zero of=/tmp/sw bs=1M count=4 2>/dev/null && mkswap /tmp/sw",
    );
    fails(g, "/mnt/swapctl on /tmp/sw", "Invalid argument");
    fails(g, "swapon /tmp/sw", "Invalid argument");

    // The file, priority 10; the disk, priority 5.
    ok(g, "mkswap /data/sw");
    same(g, "/mnt/swapctl on /data/sw 10", "ok");
    // An active swap file is not to be modified (Linux: ETXTBSY, though
    // opening it for writing succeeds), nor its file system unmounted.
    for op in [
        "write",
        "otrunc",
        "truncate",
        "ftruncate",
        "fallocate",
        "copy",
        "mmap",
    ] {
        same(
            g,
            &format!("/mnt/swapctl {op} /data/sw; echo $?"),
            &format!("swapctl {op} /data/sw: Text file busy\n1"),
        );
    }
    // Reading it through a shared mapping, and a private writable copy,
    // are allowed (Linux's do_mmap refuses only MAP_SHARED PROT_WRITE).
    same(g, "/mnt/swapctl mmapok /data/sw", "ok");
    same(g, "stat -c %s /data/sw", "33554432");
    fails(g, "umount /data", "Device or resource busy");
    fails(g, "/mnt/swapctl on /data/sw 3", "Device or resource busy");
    fails(g, "rm -f /data/sw", "Operation not permitted");
    fails(g, "mv /data/sw /data/sw2", "Operation not permitted");
    ok(g, "mkswap /dev/ubdd");
    same(g, "/mnt/swapctl on /dev/ubdd 5", "ok");
    let swaps = ok(g, "cat /proc/swaps");
    assert!(swaps.starts_with("Filename"), "/proc/swaps:\n{swaps}");
    let (kind, size, used, prio) = swap_row(&swaps, "/data/sw").expect("/data/sw listed");
    assert_eq!((kind.as_str(), size, prio), ("file", 32764, 10), "{swaps}");
    assert!(used < 1024, "{swaps}");
    let (kind, size, _, prio) = swap_row(&swaps, "/dev/ubdd").expect("/dev/ubdd listed");
    assert_eq!(
        (kind.as_str(), size, prio),
        ("partition", 131068, 5),
        "{swaps}"
    );
    same(
        g,
        "awk '/SwapTotal/ {print $2}' /proc/meminfo",
        &(32764 + 131068).to_string(),
    );

    // 160 MiB in a 96 MiB budget, held after the check: the file (higher
    // priority) is full, the disk holds the rest.
    ok(
        g,
        "/mnt/memhog 160 7 600 > /tmp/h.out 2>&1 & echo $! > /tmp/h.pid",
    );
    let start = Instant::now();
    loop {
        let (st, out) = g.run("cat /tmp/h.out", CMD_TIMEOUT).unwrap();
        assert_eq!(st, 0);
        if out.contains("memhog: 160 MiB ok") {
            break;
        }
        assert!(
            !out.contains("bad") && start.elapsed() < HOG_TIMEOUT,
            "memhog did not check out:\n{out}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let swaps = ok(g, "cat /proc/swaps");
    let (_, fsize, fused, _) = swap_row(&swaps, "/data/sw").unwrap();
    let (_, _, dused, _) = swap_row(&swaps, "/dev/ubdd").unwrap();
    assert!(
        fused + 64 * 4 >= fsize && dused > 8 << 10,
        "the higher priority is not filled first:\n{swaps}"
    );
    let vm = ok(g, "grep pswp /proc/vmstat");
    eprintln!("swap file run: {swaps}{vm}");

    // swapoff of the file brings its pages in (the hog still holds them),
    // the rest stays on the disk; the hog still checks out afterwards.
    ok(g, "swapoff /data/sw");
    let swaps = ok(g, "cat /proc/swaps");
    assert!(swap_row(&swaps, "/data/sw").is_none(), "{swaps}");
    same(g, "awk '/SwapTotal/ {print $2}' /proc/meminfo", "131068");
    same(g, "/mnt/swapctl write /data/sw", "ok");
    ok(g, "kill $(cat /tmp/h.pid); wait 2>/dev/null; true");
    ok(
        g,
        "rm /data/sw /data/holes && echo kept > /data/after && sync",
    );
    same(g, "cat /data/after", "kept");
    ok(g, "swapoff /dev/ubdd");
    same(g, "tail -n +2 /proc/swaps | wc -l", "0");
    ok(g, "umount /data");
    g.send("poweroff\n").unwrap();
    match g.wait_exited(EXIT_TIMEOUT) {
        Some(st) => assert_eq!(st.code(), Some(0), "umlrun ended {st}\n{}", g.tail(20)),
        None => panic!("umlrun still runs after poweroff\n{}", g.tail(20)),
    }
    // Swap I/O went to the file's blocks only: the file system is clean.
    let out = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck on the data disk: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
