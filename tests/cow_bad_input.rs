//! Damaged COW files and unusable backing files: each is a clear error
//! naming what is wrong, never a panic.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use umlrun::block::{cow, BlockError, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

fn spec(file: &Path, flags: UbdFlags) -> UbdSpec {
    UbdSpec {
        index: 0,
        flags,
        file: file.to_path_buf(),
        backing: None,
        mode: UbdMode::Copy,
    }
}

fn rw() -> UbdFlags {
    UbdFlags::default()
}

/// A 64 KiB backing file and a fresh COW over it.
fn pair(dir: &Path) -> (PathBuf, PathBuf) {
    let back = dir.join("back.img");
    std::fs::write(&back, vec![0x42u8; 65536]).unwrap();
    let c = dir.join("d.cow");
    cow::create(&c, &back).unwrap();
    (back, c)
}

fn open_err(s: &UbdSpec) -> BlockError {
    match Ubd::open(s) {
        Ok(_) => panic!("open of {} should fail", s.file.display()),
        Err(e) => e,
    }
}

/// `umlcow info` on the file: exit 1 and exactly one `umlcow: ` line.
fn info_fails(p: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("info")
        .arg(p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("umlcow: "), "{err}");
    err
}

fn patch(p: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .write_all_at(bytes, at)
        .unwrap();
}

#[test]
fn truncated_header() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&c)
        .unwrap()
        .set_len(100)
        .unwrap();
    let e = open_err(&spec(&c, rw()));
    assert!(
        e.to_string()
            .contains("truncated COW v3 header: 100 bytes, need 4128"),
        "{e}"
    );
    assert!(info_fails(&c).contains("truncated"));
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = pair(dir.path());
    patch(&c, 0, b"XOOM");
    assert!(info_fails(&c).contains("not a COW file (magic 0x584f4f4d"));
    // With a backing file on the switch, a file without magic is an error...
    let mut s = spec(&c, rw());
    s.backing = Some(back);
    let e = open_err(&s);
    assert!(matches!(e, BlockError::NotCowButBacking { .. }), "{e}");
    // ...without one, it is a raw image, as in UML.
    let u = Ubd::open(&spec(&c, rw())).unwrap();
    assert!(u.cow_header().is_none());
}

#[test]
fn zero_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    patch(&c, 24, &[0, 0, 0, 0]);
    let e = open_err(&spec(&c, rw()));
    assert!(e.to_string().contains("alignment is 0"), "{e}");
    assert!(info_fails(&c).contains("alignment is 0"));
}

#[test]
fn bitmap_shorter_than_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    // 64 KiB = 128 sectors = 16 bitmap bytes at 8192; keep only 10 of them.
    OpenOptions::new()
        .write(true)
        .open(&c)
        .unwrap()
        .set_len(8192 + 10)
        .unwrap();
    let e = open_err(&spec(&c, rw()));
    assert!(
        matches!(
            e,
            BlockError::BitmapTruncated {
                have: 8202,
                need: 8208,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("bitmap shorter than the disk"));
    assert!(info_fails(&c).contains("bitmap shorter than the disk"));
}

#[test]
fn header_size_larger_than_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    patch(&c, 12, &(1u64 << 40).to_be_bytes()); // claims a 1 TiB disk
    let e = open_err(&spec(&c, rw()));
    // The backing file check comes first (as in UML) and names both sizes.
    assert!(e.to_string().contains("1099511627776 vs 65536"), "{e}");
    assert!(info_fails(&c).contains("bitmap shorter than the disk"));
}

#[test]
fn backing_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = pair(dir.path());
    std::fs::remove_file(&back).unwrap();
    let e = open_err(&spec(&c, rw()));
    assert!(matches!(e, BlockError::BackingMissing { .. }), "{e}");
    assert!(e.to_string().contains(&back.display().to_string()));
}

#[test]
fn backing_changed_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = pair(dir.path());
    let h = cow::read_header_required(&File::open(&c).unwrap(), &c).unwrap();
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(h.mtime as u64 + 1000);
    File::options()
        .write(true)
        .open(&back)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let e = open_err(&spec(&c, rw()));
    let want = format!("mtime mismatch ({} vs {})", h.mtime, h.mtime as u64 + 1000);
    assert!(e.to_string().contains(&want), "{e}");
}

#[test]
fn backing_shorter() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = pair(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&back)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = open_err(&spec(&c, rw()));
    assert!(
        e.to_string().contains("size mismatch (65536 vs 4096)"),
        "{e}"
    );
}

#[test]
fn backing_on_switch_wins_over_header() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = pair(dir.path());
    let moved = dir.path().join("moved.img");
    std::fs::rename(&back, &moved).unwrap();
    assert!(matches!(
        open_err(&spec(&c, rw())),
        BlockError::BackingMissing { .. }
    ));
    let mut s = spec(&c, rw());
    s.backing = Some(moved);
    let u = Ubd::open(&s).unwrap();
    let mut b = [0u8; 4];
    u.read_at(100, &mut b).unwrap();
    assert_eq!(b, [0x42; 4]);
}

#[test]
fn second_writer_locked_out_unless_shared() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    let first = Ubd::open(&spec(&c, rw())).unwrap();
    let e = open_err(&spec(&c, rw()));
    assert!(matches!(e, BlockError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("in use by another instance"));
    // A reader is refused too while a writer holds it.
    let ro = UbdFlags {
        read_only: true,
        ..UbdFlags::default()
    };
    assert!(matches!(open_err(&spec(&c, ro)), BlockError::Locked { .. }));
    // `c` skips the lock.
    let shared = UbdFlags {
        shared: true,
        ..UbdFlags::default()
    };
    let second = Ubd::open(&spec(&c, shared)).unwrap();
    second.write_at(0, &[1; 512]).unwrap();
    drop(second);
    drop(first);
    // Other tests in this process fork children (uml_moo, umlcow); a child
    // holds a copy of our fds until its exec closes them, and with them
    // the open file description that owns the lock. Give that a moment.
    let mut reopened = Ubd::open(&spec(&c, rw()));
    for _ in 0..50 {
        if reopened.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        reopened = Ubd::open(&spec(&c, rw()));
    }
    reopened.unwrap();
}

#[test]
fn second_writer_in_another_process_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    let _first = Ubd::open(&spec(&c, rw())).unwrap();
    // uml_moo -d in place must not run under a live writer either.
    let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("merge")
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another instance"));
}

#[test]
fn read_only_device_refuses_writes_and_range_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    let ro = UbdFlags {
        read_only: true,
        ..UbdFlags::default()
    };
    let u = Ubd::open(&spec(&c, ro)).unwrap();
    assert!(u.read_only());
    assert!(matches!(
        u.write_at(0, &[0; 512]),
        Err(BlockError::ReadOnly { .. })
    ));
    assert!(matches!(
        u.prepare_write(0),
        Err(BlockError::ReadOnly { .. })
    ));
    let mut b = [0u8; 2];
    assert!(matches!(
        u.read_at(65535, &mut b),
        Err(BlockError::OutOfRange { .. })
    ));
    assert!(matches!(
        u.read_at(u64::MAX, &mut b),
        Err(BlockError::OutOfRange { .. })
    ));
}

/// Mounts a small tmpfs at a temp dir and unmounts it on drop.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn cow_on_read_only_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs root to mount a tmpfs (run the suite as root)"
    );
    let _m = Mount(mnt.clone());
    let (_b, c) = pair(&mnt);
    let st = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(umlrun::host::file::is_read_only_fs(&mnt).unwrap());
    let e = open_err(&spec(&c, rw()));
    assert!(matches!(e, BlockError::ReadOnlyFs { .. }), "{e}");
    assert!(e.to_string().contains("read-only file system"));
    // The r flag opens O_RDONLY and works.
    let ro = UbdFlags {
        read_only: true,
        ..UbdFlags::default()
    };
    let u = Ubd::open(&spec(&c, ro)).unwrap();
    let mut b = [0u8; 8];
    u.read_at(0, &mut b).unwrap();
    assert_eq!(b, [0x42; 8]);
    // Creating a COW there fails clearly too.
    let e = cow::create(&mnt.join("new.cow"), &mnt.join("back.img")).unwrap_err();
    assert!(matches!(e, BlockError::ReadOnlyFs { .. }), "{e}");
}

#[test]
fn umlcow_usage_errors_exit_2() {
    for args in [
        &[][..],
        &["info"][..],
        &["create", "x"][..],
        &["frob"][..],
        &["merge", "-b"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("umlcow "));
    let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
}
