//! Checks what disk-images/build made, with the host's own e2fsprogs:
//! busybox.img is a clean ext2 with 4 KiB blocks, busybox and its applets,
//! a console login in inittab and a password-less root; busybox.cow is a
//! UML COW v3 over it. ./scripts/test builds the images first, so a missing
//! image is a failure here, not a skip.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The host tools (tests/support/tools.rs, shared with `support`).
#[allow(dead_code)]
#[path = "support/tools.rs"]
mod tools;
use tools::{debugfs, tool};

fn image(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("disk-images")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

#[test]
fn image_is_a_clean_ext2_with_4k_blocks() {
    let img = image("busybox.img");
    let o = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(&img)
        .output()
        .expect("run e2fsck (install e2fsprogs)");
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "e2fsck -fn is not clean:\n{out}");
    let stats = debugfs(&img, "stats");
    assert!(stats.contains("Block size:               4096"), "{stats}");
    let features = stats
        .lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap();
    assert!(!features.contains("has_journal"), "not ext2: {features}");
    assert!(!features.contains("extent"), "not ext2: {features}");
}

#[test]
fn busybox_and_its_applets_are_there() {
    let img = image("busybox.img");
    let stat = debugfs(&img, "stat /bin/busybox");
    assert!(stat.contains("Type: regular"), "{stat}");
    assert!(stat.contains("Mode:  0755"), "{stat}");
    assert!(stat.contains("User:     0   Group:     0"), "{stat}");
    let size: u64 = stat
        .split("Size: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(size > 500_000, "busybox is only {size} bytes");
    for applet in [
        "/sbin/init",
        "/bin/sh",
        "/sbin/getty",
        "/bin/login",
        "/bin/mount",
    ] {
        let s = debugfs(&img, &format!("stat {applet}"));
        assert!(s.contains("Type: symlink"), "{applet}: {s}");
        assert!(s.contains("\"/bin/busybox\""), "{applet}: {s}");
    }
    let console = debugfs(&img, "stat /dev/console");
    assert!(console.contains("Type: character special"), "{console}");
    assert!(
        console.contains("Device major/minor number: 05:01"),
        "{console}"
    );
}

#[test]
fn etc_gives_a_console_login_for_a_passwordless_root() {
    let img = image("busybox.img");
    let inittab = debugfs(&img, "cat /etc/inittab");
    assert!(
        inittab.contains("::sysinit:/bin/mount -t proc proc /proc"),
        "{inittab}"
    );
    assert!(
        inittab.contains("console::respawn:/sbin/getty"),
        "{inittab}"
    );
    assert!(inittab.contains("::ctrlaltdel:/sbin/reboot"), "{inittab}");
    assert!(
        inittab.contains("::shutdown:/bin/umount -a -r"),
        "{inittab}"
    );
    let passwd = debugfs(&img, "cat /etc/passwd");
    assert!(
        passwd.starts_with("root::0:0:root:/root:/bin/sh"),
        "{passwd}"
    );
    assert!(debugfs(&img, "cat /etc/shadow").starts_with("root::"));
    assert_eq!(debugfs(&img, "cat /etc/hostname").trim(), "umlrun");
    assert!(debugfs(&img, "cat /etc/fstab").contains("/dev/ubda"));
    for dir in ["/proc", "/dev", "/tmp", "/root", "/sys", "/etc"] {
        assert!(
            debugfs(&img, &format!("stat {dir}")).contains("Type: directory"),
            "{dir}"
        );
    }
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn cow_is_uml_v3_over_the_image() {
    let img = image("busybox.img");
    let cow = image("busybox.cow");
    let mut header = vec![0u8; 32 + 4096];
    fs::File::open(&cow)
        .unwrap()
        .read_exact(&mut header)
        .unwrap();
    assert_eq!(be32(&header, 0), 0x4F4F_4F4D, "magic");
    assert_eq!(be32(&header, 4), 3, "version");
    let meta = fs::metadata(&img).unwrap();
    assert_eq!(be32(&header, 8) as i64, meta.mtime(), "backing mtime");
    let size = u64::from_be_bytes(header[12..20].try_into().unwrap());
    assert_eq!(size, meta.len(), "backing size");
    assert_eq!(be32(&header, 20), 512, "sectorsize");
    assert_eq!(be32(&header, 24), 4096, "alignment");
    assert_eq!(be32(&header, 28), 0, "cow_format");
    let path_bytes = &header[32..];
    let end = path_bytes.iter().position(|&b| b == 0).unwrap();
    let backing = PathBuf::from(std::str::from_utf8(&path_bytes[..end]).unwrap());
    assert!(backing.is_absolute(), "{}", backing.display());
    assert_eq!(backing.canonicalize().unwrap(), img.canonicalize().unwrap());
    // Sparse layout: bitmap at 8192, data after it, aligned; file ends at the data's end.
    let bitmap_len = size.div_ceil(512).div_ceil(8);
    let data_offset = (8192 + bitmap_len).div_ceil(4096) * 4096;
    assert_eq!(fs::metadata(&cow).unwrap().len(), data_offset + size);
}
