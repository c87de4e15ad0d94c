//! The ubd switch flags as the host sees them: `r` opens O_RDONLY, `s`
//! opens O_SYNC, `d` ignores a COW header; and UML's create-on-open.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use umlrun::block::{cow, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

fn spec(file: &Path, flags: UbdFlags) -> UbdSpec {
    UbdSpec {
        index: 0,
        flags,
        file: file.to_path_buf(),
        backing: None,
        mode: UbdMode::Mmap,
    }
}

fn pair(dir: &Path) -> (PathBuf, PathBuf) {
    let back = dir.join("back.img");
    std::fs::write(&back, vec![0x42u8; 16384]).unwrap();
    let c = dir.join("d.cow");
    cow::create(&c, &back).unwrap();
    (back, c)
}

/// The open flags of one of our fds, from /proc/self/fdinfo (octal).
fn fd_flags(fd: i32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let line = info.lines().find(|l| l.starts_with("flags:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

/// Writes page 0 so that it maps from the COW file, and returns that fd's flags.
fn cow_fd_flags(u: &Ubd) -> u32 {
    let m = u.page_mapping(0).expect("page 0 maps");
    fd_flags(m.file.as_raw_fd())
}

#[test]
fn r_opens_read_only_s_opens_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    {
        let u = Ubd::open(&spec(&c, UbdFlags::default())).unwrap();
        u.write_at(0, &[1; 4096]).unwrap();
        let fl = cow_fd_flags(&u);
        assert_eq!(fl & libc::O_ACCMODE as u32, libc::O_RDWR as u32);
        assert_eq!(fl & libc::O_SYNC as u32, 0);
    }
    {
        let u = Ubd::open(&spec(
            &c,
            UbdFlags {
                sync: true,
                ..UbdFlags::default()
            },
        ))
        .unwrap();
        let fl = cow_fd_flags(&u);
        assert_eq!(fl & libc::O_SYNC as u32, libc::O_SYNC as u32);
        u.write_at(4096, &[2; 512]).unwrap();
    }
    let u = Ubd::open(&spec(
        &c,
        UbdFlags {
            read_only: true,
            ..UbdFlags::default()
        },
    ))
    .unwrap();
    assert_eq!(
        cow_fd_flags(&u) & libc::O_ACCMODE as u32,
        libc::O_RDONLY as u32
    );
    let mut b = [0u8; 2];
    u.read_at(4096 + 511, &mut b).unwrap();
    assert_eq!(b, [2, 0x42]);
}

#[test]
fn d_treats_a_cow_file_as_a_plain_image() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    let u = Ubd::open(&spec(
        &c,
        UbdFlags {
            no_cow: true,
            ..UbdFlags::default()
        },
    ))
    .unwrap();
    assert!(u.cow_header().is_none());
    assert_eq!(u.size(), std::fs::metadata(&c).unwrap().len() / 512 * 512);
    let mut magic = [0u8; 4];
    u.read_at(0, &mut magic).unwrap();
    assert_eq!(&magic, b"OOOM");
}

#[test]
fn missing_cow_with_backing_is_created_like_uml() {
    let dir = tempfile::tempdir().unwrap();
    let back = dir.path().join("back.img");
    std::fs::write(&back, vec![7u8; 8192]).unwrap();
    let c = dir.path().join("new.cow");
    let mut s = spec(&c, UbdFlags::default());
    s.backing = Some(back.clone());
    let u = Ubd::open(&s).unwrap();
    assert_eq!(u.size(), 8192);
    assert_eq!(u.backing_path(), Some(back.as_path()));
    assert!(c.exists());
    // Read-only: nothing is created.
    let c2 = dir.path().join("ro.cow");
    let mut s = spec(
        &c2,
        UbdFlags {
            read_only: true,
            ..UbdFlags::default()
        },
    );
    s.backing = Some(back);
    assert!(Ubd::open(&s).is_err());
    assert!(!c2.exists());
}

#[test]
fn ubd_is_send_and_sync_and_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Ubd>();
    let dir = tempfile::tempdir().unwrap();
    let (_b, c) = pair(dir.path());
    let u = std::sync::Arc::new(Ubd::open(&spec(&c, UbdFlags::default())).unwrap());
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let u = u.clone();
            // Each thread writes single sectors that share bitmap bytes.
            std::thread::spawn(move || {
                for s in (t as u64..32).step_by(4) {
                    u.write_at(s * 512, &[t + 1; 512]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(u);
    let u = Ubd::open(&spec(&c, UbdFlags::default())).unwrap();
    assert_eq!(u.cow_sectors(), 32, "every bit reached the on-disk bitmap");
    for s in 0..32u64 {
        let mut b = [0u8; 1];
        u.read_at(s * 512 + 100, &mut b).unwrap();
        assert_eq!(b[0], (s % 4) as u8 + 1);
    }
}
