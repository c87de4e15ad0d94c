//! Data disks end to end: the real `umlrun` on a pty with a second disk
//! (`ubd1=`), driven like a UML user would — /dev/ubdb and
//! /proc/partitions, busybox `mount` of a pre-made ext2 image read-only
//! and read-write, remount both ways, EBUSY while a file is open, a cwd is
//! inside or the disk is mounted already, a read-only disk (`ubd1r=`)
//! mounted read-only by busybox's fallback, and, afterwards on the host,
//! `e2fsck -fn` finding the disk clean and `debugfs` reading what the
//! guest wrote.
//!
//! Every instance is stopped by pid when a test fails (the harness's Drop).

mod support;
mod support_many;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support_many::{tool, Fleet, Instance, Runner};

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

/// One instance over a fresh COW of busybox.img with `extra` switches,
/// booted and logged in as root.
fn boot_with(extra: &[String]) -> Fleet {
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &backing(), "64M").unwrap();
    fleet.extra_args = extra.to_vec();
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    fleet
}

/// Run `cmd`, expect exit status 0, return its output.
fn ok(g: &mut Instance, cmd: &str) -> String {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(status, 0, "`{cmd}` exited {status}; output:\n{out}");
    out
}

/// Run `cmd` and expect exactly `want` as its output (trailing newline
/// trimmed).
fn same(g: &mut Instance, cmd: &str, want: &str) {
    let out = ok(g, cmd);
    assert_eq!(out.trim_end(), want, "`{cmd}` printed:\n{out}");
}

/// Run `cmd`, expect it to fail, and its output to contain `why`.
fn fails(g: &mut Instance, cmd: &str, why: &str) {
    let (status, out) = g.run(cmd, CMD_TIMEOUT).unwrap();
    assert_ne!(status, 0, "`{cmd}` succeeded; output:\n{out}");
    assert!(out.contains(why), "`{cmd}` failed without {why:?}:\n{out}");
}

fn poweroff(g: &mut Instance) {
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

/// An ext2 image of `size_mib` MiB holding /hello.txt.
fn premade_image(dir: &Path, size_mib: u32) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("hello.txt"), "data-disk-file\n").unwrap();
    let img = dir.join("data.img");
    let out = Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg(format!("{size_mib}M"))
        .output()
        .unwrap();
    assert!(out.status.success(), "mke2fs: {out:?}");
    img
}

/// `e2fsck -fn` on the host must find `img` clean.
fn assert_fsck_clean(img: &Path) {
    let out = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn {}:\n{}{}",
        img.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file's bytes in an ext2 image, through debugfs.
fn debugfs_bytes(img: &Path, path: &str) -> Vec<u8> {
    Command::new(tool("debugfs"))
        .args(["-R", &format!("cat {path}")])
        .arg(img)
        .output()
        .unwrap()
        .stdout
}

/// A file's contents in an ext2 image, as text.
fn debugfs_cat(img: &Path, path: &str) -> String {
    String::from_utf8_lossy(&debugfs_bytes(img, path)).into_owned()
}

/// A pre-made ext2 disk: the device node and /proc/partitions, mount
/// read-only, remount read-write, every EBUSY case, umount, a plain busybox
/// `mount /dev/ubdb /mnt/d` (type from /proc/filesystems) left mounted at
/// poweroff: the host finds the disk clean with everything written.
#[test]
fn premade_disk_mount_remount_and_busy() {
    let dir = tempfile::tempdir().unwrap();
    let img = premade_image(dir.path(), 16);
    let mut fleet = boot_with(&[format!("ubd1={}", img.display())]);
    let g = &mut fleet.instances[0];

    // The nodes: UML's names, major 98, minor 16 per disk (hex in stat).
    same(g, "stat -c '%F %t %T' /dev/ubda", "block special file 62 0");
    same(
        g,
        "stat -c '%F %t %T' /dev/ubdb",
        "block special file 62 10",
    );
    fails(g, "ls /dev/ubdc", "No such file");
    same(
        g,
        "cat /proc/partitions",
        "major minor  #blocks  name\n\n  98        0      65536 ubda\n  98       16      16384 ubdb",
    );

    ok(g, "mkdir -p /mnt/d /mnt/e");
    ok(g, "mount -t ext2 -o ro /dev/ubdb /mnt/d");
    same(g, "cat /mnt/d/hello.txt", "data-disk-file");
    same(g, "grep ubdb /proc/mounts", "/dev/ubdb /mnt/d ext2 ro 0 0");
    fails(g, "echo x > /mnt/d/new", "Read-only file system");
    // One mount per disk.
    fails(g, "mount -t ext2 /dev/ubdb /mnt/e", "busy");
    fails(g, "mount -t ext2 -o ro /dev/ubdb /mnt/e", "busy");
    // Not a block device; no such disk.
    fails(g, "mount -t ext2 /dev/null /mnt/e", "Block device required");
    fails(
        g,
        "mknod /tmp/ubdc b 98 32 && mount -t ext2 /tmp/ubdc /mnt/e",
        "No such device",
    );

    ok(g, "mount -o remount,rw /mnt/d");
    same(g, "grep ubdb /proc/mounts", "/dev/ubdb /mnt/d ext2 rw 0 0");
    ok(g, "echo written > /mnt/d/new");
    same(g, "mount | grep ubdb", "/dev/ubdb on /mnt/d type ext2 (rw)");

    // Busy: a cwd inside, an open file, a writer for remount,ro.
    fails(g, "cd /mnt/d && umount /mnt/d", "busy");
    ok(g, "cd /");
    ok(g, "exec 3</mnt/d/hello.txt");
    fails(g, "umount /mnt/d", "busy");
    ok(g, "exec 3<&-");
    ok(g, "exec 4>>/mnt/d/new");
    fails(g, "mount -o remount,ro /mnt/d", "busy");
    ok(g, "exec 4>&-");
    ok(g, "mount -o remount,ro /mnt/d");
    fails(g, "echo y >> /mnt/d/new", "Read-only file system");
    ok(g, "umount /mnt/d");
    same(g, "grep ubdb /proc/mounts | wc -l", "0");
    fails(g, "umount /mnt/d", "Invalid argument");

    // What busybox users type: the type comes from /proc/filesystems.
    ok(g, "mount /dev/ubdb /mnt/d");
    same(g, "cat /mnt/d/new", "written");
    ok(g, "mkdir /mnt/d/sub && echo again > /mnt/d/sub/again");
    // Left mounted, unsynced: the shutdown writes it back and marks it clean.
    poweroff(g);
    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/new"), "written\n");
    assert_eq!(debugfs_cat(&img, "/sub/again"), "again\n");
    assert_eq!(debugfs_cat(&img, "/hello.txt"), "data-disk-file\n");
}

/// A disk given read-only (`ubd1r=`): a read-write mount is refused with
/// EACCES, busybox falls back to read-only as on Linux, and remounting
/// read-write is refused; the image is untouched.
#[test]
fn read_only_disk_mounts_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let img = premade_image(dir.path(), 8);
    let before = std::fs::read(&img).unwrap();
    let mut fleet = boot_with(&[format!("ubd1r={}", img.display())]);
    let g = &mut fleet.instances[0];
    ok(g, "mkdir -p /mnt/d");
    // mount(2) read-write is EACCES (`-w`: no fallback)...
    fails(g, "mount -w -t ext2 /dev/ubdb /mnt/d", "Permission denied");
    // ...on which busybox retries read-only.
    ok(g, "mount /dev/ubdb /mnt/d");
    same(g, "grep ubdb /proc/mounts", "/dev/ubdb /mnt/d ext2 ro 0 0");
    same(g, "cat /mnt/d/hello.txt", "data-disk-file");
    fails(g, "mount -o remount,rw /mnt/d", "Permission denied");
    fails(g, "touch /mnt/d/x", "Read-only file system");
    ok(g, "umount /mnt/d");
    poweroff(g);
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only disk changed"
    );
}

/// An empty disk (`ubd1=` a zero-filled file): busybox `blockdev` reads
/// the block ioctls, busybox `mke2fs /dev/ubdb` makes a file system through
/// the block device, it mounts, takes files, unmounts, and the host's
/// `e2fsck -fn` finds it clean and `debugfs` reads the data back.
#[test]
fn mke2fs_in_the_guest_on_an_empty_disk() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("empty.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let mut fleet = boot_with(&[format!("ubd1={}", img.display())]);
    let g = &mut fleet.instances[0];
    same(g, "blockdev --getsize64 /dev/ubdb", "33554432");
    same(g, "blockdev --getsz /dev/ubdb", "65536");
    same(g, "blockdev --getss /dev/ubdb", "512");
    same(g, "blockdev --getbsz /dev/ubdb", "4096");
    same(g, "blockdev --getro /dev/ubdb", "0");
    ok(g, "blockdev --flushbufs /dev/ubdb");
    ok(
        g,
        "mke2fs /dev/ubdb > /tmp/mkfs.log 2>&1 || { cat /tmp/mkfs.log; false; }",
    );
    // The superblock's magic through the raw device (offset 1080).
    same(
        g,
        "dd if=/dev/ubdb bs=8 skip=135 count=1 2>/dev/null | od -An -tx1 | head -c 6",
        " 53 ef",
    );
    ok(g, "mount /dev/ubdb /mnt");
    same(g, "grep ubdb /proc/mounts", "/dev/ubdb /mnt ext2 rw 0 0");
    ok(g, "echo hello > /mnt/file && mkdir /mnt/dir");
    ok(
        g,
        "dd if=/dev/urandom of=/mnt/dir/big bs=64k count=40 2>/dev/null",
    );
    let sum = ok(g, "md5sum < /mnt/dir/big");
    ok(g, "umount /mnt");
    // Mounted again, the data is there.
    ok(g, "mount -o ro /dev/ubdb /mnt");
    assert_eq!(ok(g, "md5sum < /mnt/dir/big"), sum);
    ok(g, "umount /mnt");
    ok(g, "sync");
    poweroff(g);
    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/file"), "hello\n");
    let big = debugfs_bytes(&img, "/dir/big");
    assert_eq!(big.len(), 40 * 65536);
    let host_sum = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&big)?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&host_sum.stdout)
            .split_whitespace()
            .next(),
        sum.split_whitespace().next(),
        "the file read on the host differs from the guest's"
    );
}

/// A shared file mapping that outgrows its disk (`mapfull`, on a 2 MiB
/// ext2 disk: a 16 MiB hole filled page after page through MAP_SHARED).
/// As on Linux, the write that needs a block the disk has no more of is a
/// SIGBUS at the fault, every page written before it reads back in the
/// guest and, after poweroff, on the host, msync and fsync succeed and
/// the disk is clean. (Before, blocks were only allocated at writeback:
/// every write was taken, and writeback failed with ENOSPC, the data
/// dropped.)
fn shared_write_past_a_full_disk(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let img = support::tools::programs_disk(dir.path(), "full", &["mapfull"], "2M");
    let mut fleet = Fleet::new(Runner::umlrun(mode), &backing(), "64M").unwrap();
    fleet.extra_args = vec![format!("ubd1={}", img.display())];
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(BOOT_TIMEOUT).unwrap();
    g.login(CMD_TIMEOUT).unwrap();
    ok(g, "mount /dev/ubdb /mnt");
    let out = ok(g, "/mnt/mapfull /mnt");
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 10, "mapfull printed: {out}");
    let wrote: usize = f[1].parse().unwrap();
    assert!(
        (1..512).contains(&wrote),
        "{wrote} pages written on a 2 MiB disk: {out}"
    );
    assert_eq!(
        &f[2..],
        ["sigbus", "1", "msync", "0", "fsync", "0", "verify", "ok"],
        "{out}"
    );
    ok(g, "umount /mnt");
    poweroff(g);
    assert_fsck_clean(&img);
    let data = debugfs_bytes(&img, "/sparse");
    assert_eq!(data.len(), 4096 * 4096, "the file's size on the host");
    for (i, page) in data.chunks(4096).take(wrote).enumerate() {
        let want = 0x5a ^ (i as u8).wrapping_mul(7);
        assert!(
            page.iter().all(|&b| b == want),
            "page {i} of {wrote} differs on the host"
        );
    }
}

#[test]
fn shared_write_past_a_full_disk_is_sigbus_mmap() {
    shared_write_past_a_full_disk("mmap");
}

#[test]
fn shared_write_past_a_full_disk_is_sigbus_copy() {
    shared_write_past_a_full_disk("copy");
}
