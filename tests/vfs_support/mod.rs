//! Helpers for the host-side VFS tests: a host tree and the ext2 image made
//! from it, a fresh COW over the image, and a "rig" (physmem + frame refs +
//! page cache + mount table + an `Ext2Volume` over a `Ubd`) to drive the
//! kernel's file stack without a guest.
#![allow(dead_code)]

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;

use umlrun::block::{cow, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};
use umlrun::fs::ext2vol::Ext2Volume;
use umlrun::fs::{FileSystem, Ino};
use umlrun::mm::pagecache::{FileKey, PageCache};
use umlrun::mm::FrameRefs;
use umlrun::physmem::PhysMem;
use umlrun::vfs::{Cred, MountId, MountTable, Resolved};

pub const PAGE: u64 = 4096;
/// The host busybox the tree copies (Debian's busybox-static).
pub const HOST_BUSYBOX: &str = "/bin/busybox";
/// Pages of `data/pages.bin`: more than any capped cache in these tests.
pub const BIG_PAGES: u64 = 1000;

/// Deterministic pseudo-random bytes (xorshift), different per seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the host tree the test images are made from: a copy of the host
/// busybox, small files with partial last pages, a 1000-page file, a sparse
/// file, nested directories, fast and slow symlinks, a hard link, an empty
/// file and a fifo.
pub fn build_tree(root: &Path) {
    assert!(
        Path::new(HOST_BUSYBOX).is_file(),
        "{HOST_BUSYBOX} missing: install busybox-static"
    );
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    for d in [
        "bin",
        "etc",
        "data",
        "deep/a/b/c/d",
        "usr/share/doc",
        "empty_dir",
    ] {
        mk(d);
    }
    std::fs::copy(HOST_BUSYBOX, root.join("bin/busybox")).unwrap();
    symlink("busybox", root.join("bin/sh")).unwrap();
    let long_target = format!("../usr/share/doc/{}", "x".repeat(90));
    symlink(&long_target, root.join("bin/slowlink")).unwrap();
    std::fs::write(root.join("etc/hostname"), "vfs-host\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/motd"), pattern(1, 5000)).unwrap();
    std::fs::write(root.join("etc/empty"), b"").unwrap();
    std::fs::write(root.join("deep/a/b/c/d/leaf.txt"), b"deep leaf\n").unwrap();
    std::fs::write(
        root.join("usr/share/doc/exact"),
        pattern(2, 3 * PAGE as usize),
    )
    .unwrap();
    std::fs::write(
        root.join("data/pages.bin"),
        pattern(3, (BIG_PAGES * PAGE - 100) as usize),
    )
    .unwrap();
    std::fs::hard_link(root.join("etc/motd"), root.join("data/motd.link")).unwrap();
    // A sparse file: a hole, 8 KiB of data at 1 MiB, a hole to 3 MiB.
    let f = std::fs::File::create(root.join("data/sparse.bin")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&pattern(4, 8192), 1 << 20).unwrap();
    f.set_len(3 << 20).unwrap();
    run(Command::new("mkfifo").arg(root.join("data/fifo")));
}

/// `mke2fs -t ext2 -b 4096 -d tree img 32M`.
pub fn make_image(tree: &Path, img: &Path) {
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(tree)
        .arg(img)
        .arg("32M"));
}

/// A tree and an image made from it, in `dir`: (tree, image).
pub fn tree_and_image(dir: &Path) -> (PathBuf, PathBuf) {
    let tree = dir.join("tree");
    build_tree(&tree);
    let img = dir.join("disk.img");
    make_image(&tree, &img);
    (tree, img)
}

/// A fresh COW over `backing` (umlcow's library, like `umlcow create`).
/// The header names a link beside the COW (`<cow>.backing`) that leads to
/// `backing`, so umlrun's default `cow_backing=beside` opens it.
pub fn fresh_cow(backing: &Path, cow_path: &Path) -> PathBuf {
    let mut name = cow_path
        .file_name()
        .expect("a COW file name")
        .to_os_string();
    name.push(".backing");
    let link = cow_path.with_file_name(name);
    let target = backing.canonicalize().expect("backing image");
    std::os::unix::fs::symlink(target, &link).expect("link to the backing image");
    cow::create(cow_path, &link).expect("create COW");
    cow_path.to_path_buf()
}

/// `umlcow merge <cow> <out>` with the built binary.
///
/// The COW's lock is an open-file-description lock taken by this test
/// process; a child another test thread is spawning at the moment the
/// COW is closed shares that description until its exec closes it, so
/// the lock can outlive the close by a moment: retry only that refusal,
/// briefly.
pub fn umlcow_merge(cow_path: &Path, out: &Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_umlcow"));
    cmd.arg("merge").arg(cow_path).arg(out);
    for attempt in 0.. {
        let o = cmd.output().expect("run umlcow");
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            return;
        }
        assert!(
            attempt < 50 && err.contains("is in use by another"),
            "{cmd:?} failed ({}):\n{err}",
            o.status
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `e2fsck -fn`: panics with its report unless it is clean.
pub fn assert_fsck_clean(img: &Path) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .expect("run e2fsck");
    assert_eq!(
        out.status.code(),
        Some(0),
        "e2fsck -fn {} reports problems:\n{}{}",
        img.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `debugfs -R <cmd> img` stdout.
pub fn debugfs(img: &Path, cmd: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(cmd)
        .arg(img)
        .output()
        .expect("run debugfs");
    assert!(out.status.success(), "debugfs -R {cmd:?} failed");
    out.stdout
}

/// The kernel's file stack over one ubd device, driven from the host.
pub struct Rig {
    pub physmem: Arc<PhysMem>,
    pub frames: FrameRefs,
    pub cache: PageCache,
    pub mounts: MountTable,
    pub vol: Rc<Ext2Volume>,
    pub root_mnt: MountId,
}

impl Rig {
    /// Opens `cow_path` as ubd0 in `mode`, mounts ext2 on it as the root, with
    /// `mem` bytes of physmem and `cache` as the page cache.
    pub fn new(cow_path: &Path, mode: UbdMode, mem: u64, cache: PageCache) -> Rig {
        let ubd = Ubd::open(&UbdSpec {
            index: 0,
            flags: UbdFlags::default(),
            file: cow_path.to_path_buf(),
            backing: None,
            mode,
        })
        .expect("open ubd");
        let vol = Rc::new(Ext2Volume::mount(Arc::new(ubd), false).expect("mount ext2"));
        let mut mounts = MountTable::new();
        let root_mnt = mounts
            .mount(
                vol.clone() as Rc<dyn FileSystem>,
                None,
                b"/".to_vec(),
                "/dev/ubda".into(),
                false,
            )
            .expect("mount root");
        let physmem = Arc::new(PhysMem::new(mem).expect("physmem"));
        Rig {
            frames: FrameRefs::new(physmem.clone()),
            physmem,
            cache,
            mounts,
            vol,
            root_mnt,
        }
    }

    pub fn resolve(&self, path: &str, follow: bool) -> Resolved {
        self.mounts
            .resolve(b"/", b"/", path.as_bytes(), follow, &Cred::root())
            .unwrap_or_else(|e| panic!("resolve {path}: {e:?}"))
    }

    pub fn key(&self, ino: Ino) -> FileKey {
        (self.root_mnt, ino)
    }

    /// A whole regular file read through the page cache: `PageCache::get`
    /// page by page, bytes copied out of the frames with `PhysMem::read`.
    pub fn read_cached(&mut self, ino: Ino) -> Vec<u8> {
        let fs = self.mounts.fs(self.root_mnt).unwrap();
        let size = fs.stat(ino).unwrap().size;
        let mut out = vec![0u8; size as usize];
        for (idx, chunk) in out.chunks_mut(PAGE as usize).enumerate() {
            let frame = self
                .cache
                .get(fs.as_ref(), self.key(ino), idx as u64, &mut self.frames)
                .unwrap_or_else(|e| panic!("page {idx} of inode {ino}: {e:?}"));
            self.physmem.read(frame, 0, chunk);
        }
        out
    }

    /// A whole file read straight through the file system (no cache).
    pub fn read_fs(&self, ino: Ino) -> Vec<u8> {
        let size = self.vol.stat(ino).unwrap().size as usize;
        let mut out = vec![0u8; size];
        let mut done = 0;
        while done < size {
            let n = self.vol.read(ino, done as u64, &mut out[done..]).unwrap();
            assert!(n > 0, "short read at {done} of {size}");
            done += n;
        }
        out
    }
}

/// (dev, ino) of the host file behind an fd of this process.
pub fn fd_identity(fd: i32) -> (u64, u64) {
    let m = std::fs::metadata(format!("/proc/self/fd/{fd}")).expect("stat fd");
    (m.dev(), m.ino())
}
