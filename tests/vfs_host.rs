//! Host-side tests of the guest's file stack (issue 3, "Proof"): the mount
//! table, path walk, ext2 over a ubd on a fresh COW, and the page cache in
//! physmem frames, driven directly — no guest, no ptrace. Images are built
//! with `mke2fs -d` from a host tree in a tempdir (with a copy of the host
//! busybox), so every byte read can be compared with its source.

mod vfs_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use umlrun::config::UbdMode;
use umlrun::fs::{FileSystem, SetAttr, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use umlrun::mm::pagecache::PageCache;
use vfs_support::*;

const MEM: u64 = 64 << 20;
/// Pages of data/sparse.bin (3 MiB) that are holes: all but the two at 1 MiB.
const SPARSE_HOLE_PAGES: u64 = 768 - 2;

fn mode_name(mode: UbdMode) -> &'static str {
    match mode {
        UbdMode::Copy => "copy",
        UbdMode::Mmap => "mmap",
    }
}

/// What a walk read.
#[derive(Default)]
struct Walked {
    files: u64,
    dirs: u64,
    links: u64,
    bytes: u64,
}

/// Walks the image under `path` through the mount table and compares every
/// entry with the host tree at `host`: names, types, symlink targets, and
/// regular files' bytes read through the page cache.
fn walk(rig: &mut Rig, path: &str, host: &Path, w: &mut Walked) {
    let dir = rig.resolve(path, false);
    assert_eq!(dir.stat.mode & S_IFMT, S_IFDIR, "{path} is a directory");
    let fs = rig.mounts.fs(dir.node.mnt).unwrap();
    let mut names: Vec<String> = Vec::new();
    for e in fs.readdir(dir.node.ino).unwrap() {
        let name = String::from_utf8(e.name.clone()).unwrap();
        if name == "." || name == ".." || (path == "/" && name == "lost+found") {
            continue;
        }
        names.push(name.clone());
        let child = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        let hp = host.join(&name);
        let hm = std::fs::symlink_metadata(&hp)
            .unwrap_or_else(|_| panic!("{child} is in the image but not in the host tree"));
        let r = rig.resolve(&child, false);
        assert_eq!(r.path, child.as_bytes(), "canonical path of {child}");
        assert_eq!(r.node.ino, e.ino, "readdir and lookup agree on {child}");
        assert_eq!(r.stat.mode & 0o7777, hm.mode() & 0o7777, "mode of {child}");
        match r.stat.mode & S_IFMT {
            S_IFDIR => {
                assert!(hm.is_dir(), "{child}: a directory only in the image");
                w.dirs += 1;
                walk(rig, &child, &hp, w);
            }
            S_IFLNK => {
                assert!(hm.file_type().is_symlink(), "{child}: type");
                let target = fs.readlink(r.node.ino).unwrap();
                let host_target = std::fs::read_link(&hp).unwrap();
                assert_eq!(
                    target,
                    host_target.as_os_str().as_encoded_bytes(),
                    "{child}"
                );
                w.links += 1;
            }
            S_IFREG => {
                assert!(hm.is_file(), "{child}: type");
                assert_eq!(r.stat.size, hm.len(), "size of {child}");
                let got = rig.read_cached(r.node.ino);
                let want = std::fs::read(&hp).unwrap();
                assert!(got == want, "{child}: bytes through the page cache differ");
                w.files += 1;
                w.bytes += got.len() as u64;
            }
            S_IFIFO => {
                use std::os::unix::fs::FileTypeExt;
                assert!(hm.file_type().is_fifo(), "{child}: type");
            }
            t => panic!("{child}: unexpected type {t:o}"),
        }
    }
    let mut host_names: Vec<String> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    host_names.sort();
    assert_eq!(names, host_names, "entries of {path}");
}

/// Every full page of `path` shows the host file page (mmap) or is a private
/// memfd copy (copy); the partial last page is always a copy.
fn check_substitution(rig: &mut Rig, path: &str, mode: UbdMode) {
    let r = rig.resolve(path, true);
    let fs = rig.mounts.fs(r.node.mnt).unwrap();
    let size = r.stat.size;
    for idx in 0..size.div_ceil(PAGE) {
        let f = rig
            .cache
            .get(fs.as_ref(), rig.key(r.node.ino), idx, &mut rig.frames)
            .unwrap();
        let full = (idx + 1) * PAGE <= size;
        let want = full && mode == UbdMode::Mmap;
        assert_eq!(
            rig.physmem.is_substituted(f),
            want,
            "{path} page {idx} ({} mode)",
            mode_name(mode)
        );
    }
}

fn walk_image(mode: UbdMode) {
    let dir = tempfile::tempdir().unwrap();
    let (tree, img) = tree_and_image(dir.path());
    let cow = fresh_cow(&img, &dir.path().join("disk.cow"));
    let mut rig = Rig::new(&cow, mode, MEM, PageCache::new());
    let before = rig.physmem.stats().host_resident_bytes;
    let mut w = Walked::default();
    walk(&mut rig, "/", &tree, &mut w);
    assert!(
        w.files >= 9 && w.dirs >= 9 && w.links >= 2,
        "walked too little"
    );

    // The busybox named in the issue, byte for byte against the host file.
    let bb = rig.resolve("/bin/sh", true);
    assert_eq!(bb.path, b"/bin/busybox", "/bin/sh -> busybox");
    let host_bb = std::fs::read(HOST_BUSYBOX).unwrap();
    assert!(rig.read_cached(bb.node.ino) == host_bb, "/bin/busybox");
    // Walks with `.`, `..` and a hard link.
    let leaf = rig.resolve("/deep/a/b/../b/./c/d/leaf.txt", true);
    assert_eq!(leaf.path, b"/deep/a/b/c/d/leaf.txt");
    let motd = rig.resolve("/etc/motd", true);
    let link = rig.resolve("/data/motd.link", true);
    assert_eq!((motd.node, motd.stat.nlink), (link.node, 2), "hard link");

    let cs = rig.cache.stats();
    let ps = rig.physmem.stats();
    let resident = ps.host_resident_bytes - before;
    let copied_pages = cs.cached - cs.substituted;
    eprintln!(
        "{} mode: read {} bytes in {} files; cache {:?}; physmem resident {} bytes",
        mode_name(mode),
        w.bytes,
        w.files,
        cs,
        resident
    );
    assert_eq!(cs.misses, cs.cached, "every page read once, none evicted");
    assert!(
        cs.cached * PAGE >= w.bytes,
        "every byte came through a page"
    );
    assert_eq!(
        ps.frames_substituted, cs.substituted,
        "cache and physmem agree"
    );
    match mode {
        UbdMode::Mmap => {
            // busybox and pages.bin alone are ~1480 full pages.
            assert!(cs.substituted >= 1400, "substituted {}", cs.substituted);
            assert!(
                resident <= copied_pages * PAGE,
                "resident {resident} > {copied_pages} copied pages"
            );
            // Private pages: each file's partial tail, and (today) the hole
            // pages of sparse.bin, which the cache fills with written zeros.
            let beyond_holes = resident.saturating_sub(SPARSE_HOLE_PAGES * PAGE);
            assert!(
                beyond_holes <= (w.files + 1) * PAGE,
                "mmap mode holds {resident} host bytes for {} bytes read",
                w.bytes
            );
        }
        UbdMode::Copy => {
            assert_eq!(cs.substituted, 0);
            assert!(
                resident >= w.bytes && resident <= cs.cached * PAGE,
                "copy mode: resident {resident}, read {}, cached {} pages",
                w.bytes,
                cs.cached
            );
        }
    }
    for p in [
        "/bin/busybox",
        "/data/pages.bin",
        "/etc/motd",
        "/usr/share/doc/exact",
    ] {
        check_substitution(&mut rig, p, mode);
    }
}

#[test]
fn walk_and_read_every_file_copy_mode() {
    walk_image(UbdMode::Copy);
}

#[test]
fn walk_and_read_every_file_mmap_mode() {
    walk_image(UbdMode::Mmap);
}

/// Two kernels (two physmems, two page caches) over two COWs of one image:
/// in mmap mode both show the same host page of the backing image, and
/// neither holds memfd memory for it; in copy mode each holds its own copy.
#[test]
fn two_caches_share_backing_pages_in_mmap_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (_tree, img) = tree_and_image(dir.path());
    let img_id = {
        let m = std::fs::metadata(&img).unwrap();
        (m.dev(), m.ino())
    };
    let host_bb = std::fs::read(HOST_BUSYBOX).unwrap();
    let full_pages = host_bb.len() as u64 / PAGE;
    for mode in [UbdMode::Mmap, UbdMode::Copy] {
        let name = mode_name(mode);
        let mut rigs: Vec<Rig> = (0..2)
            .map(|i| {
                let cow = fresh_cow(&img, &dir.path().join(format!("{name}{i}.cow")));
                Rig::new(&cow, mode, MEM, PageCache::new())
            })
            .collect();
        let mut frames = Vec::new();
        for rig in rigs.iter_mut() {
            let r = rig.resolve("/bin/busybox", true);
            assert!(rig.read_cached(r.node.ino) == host_bb, "{name}: busybox");
            let fs = rig.mounts.fs(r.node.mnt).unwrap();
            let f: Vec<_> = (0..full_pages)
                .map(|i| {
                    let f = rig
                        .cache
                        .get(fs.as_ref(), rig.key(r.node.ino), i, &mut rig.frames)
                        .unwrap();
                    rig.physmem.backing(f)
                })
                .collect();
            frames.push(f);
        }
        let resident: Vec<u64> = rigs
            .iter()
            .map(|r| r.physmem.stats().host_resident_bytes)
            .collect();
        eprintln!("{name}: physmem resident per kernel {resident:?}");
        match mode {
            UbdMode::Mmap => {
                for (i, (a, b)) in frames[0].iter().zip(&frames[1]).enumerate() {
                    assert_eq!(fd_identity(a.fd), img_id, "page {i} maps the image");
                    assert_eq!(fd_identity(b.fd), img_id, "page {i} maps the image");
                    assert_eq!(a.offset, b.offset, "page {i}: same image page");
                    assert!(!a.writable && !b.writable, "backing pages are read-only");
                }
                for r in &resident {
                    assert!(*r <= PAGE, "mmap: only the tail page is private ({r})");
                }
            }
            UbdMode::Copy => {
                for r in &resident {
                    assert!(*r >= host_bb.len() as u64, "copy: private copy ({r})");
                }
            }
        }
    }
}

fn write_all(rig: &mut Rig, ino: u64, offset: u64, data: &[u8]) {
    let n = rig.vol.write(ino, offset, data).unwrap();
    assert_eq!(n, data.len(), "short write");
    let key = rig.key(ino);
    rig.cache.update(key, offset, data, &rig.frames);
}

fn debugfs_cat(img: &Path, path: &str) -> Vec<u8> {
    debugfs(img, &format!("cat {path}"))
}

/// Writes a tree through the VFS, shuts down, merges the COW and checks the
/// result with the host's e2fsck and debugfs.
fn write_tree(mode: UbdMode) {
    let dir = tempfile::tempdir().unwrap();
    let (tree, img) = tree_and_image(dir.path());
    let img_before = std::fs::read(&img).unwrap();
    let cow = fresh_cow(&img, &dir.path().join("disk.cow"));
    let mut rig = Rig::new(&cow, mode, MEM, PageCache::new());
    let fs = rig.vol.clone();
    let root = fs.root();

    // Pages already cached must follow writes and truncates.
    let motd = rig.resolve("/etc/motd", true).node.ino;
    let exact = rig.resolve("/usr/share/doc/exact", true).node.ino;
    let mut motd_want = std::fs::read(tree.join("etc/motd")).unwrap();
    let mut exact_want = std::fs::read(tree.join("usr/share/doc/exact")).unwrap();
    assert!(rig.read_cached(motd) == motd_want);
    assert!(rig.read_cached(exact) == exact_want);

    let newdir = fs.mkdir(root, b"newdir", 0o755, 0, 0).unwrap();
    let sub = fs.mkdir(newdir, b"sub", 0o700, 1000, 1000).unwrap();
    let file = fs
        .create(newdir, b"file.txt", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    let file_want = pattern(10, 10_000);
    write_all(&mut rig, file, 0, &file_want);
    // 300 KiB: past the 12 direct blocks, through the indirect block.
    let big = fs.create(sub, b"big", S_IFREG | 0o600, 0, 0, 0).unwrap();
    let big_want = pattern(11, 300 << 10);
    for (i, chunk) in big_want.chunks(7000).enumerate() {
        write_all(&mut rig, big, i as u64 * 7000, chunk);
    }
    let patch = pattern(12, 300);
    write_all(&mut rig, motd, 4000, &patch);
    motd_want[4000..4300].copy_from_slice(&patch);
    fs.symlink(newdir, b"link", b"file.txt", 0, 0).unwrap();
    assert_eq!(rig.resolve("/newdir/link", true).node.ino, file);

    fs.rename(
        newdir,
        b"file.txt",
        rig.resolve("/deep/a", true).node.ino,
        b"moved.txt",
    )
    .unwrap();
    let etc = rig.resolve("/etc", true).node.ino;
    fs.rename(etc, b"hostname", etc, b"passwd").unwrap();
    fs.unlink(rig.resolve("/bin", true).node.ino, b"slowlink")
        .unwrap();
    fs.unlink(rig.resolve("/data", true).node.ino, b"motd.link")
        .unwrap();
    fs.rmdir(root, b"empty_dir").unwrap();
    // Shrink then grow: the cached tail must read as zeros.
    fs.truncate(exact, 5000).unwrap();
    rig.cache.truncate(rig.key(exact), 5000, &mut rig.frames);
    fs.setattr(
        exact,
        &SetAttr {
            size: Some(20_000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    exact_want.truncate(5000);
    exact_want.resize(20_000, 0);

    // Through the page cache and straight from the file system.
    assert!(rig.read_cached(motd) == motd_want, "motd through the cache");
    assert!(rig.read_fs(motd) == motd_want, "motd from ext2");
    assert!(
        rig.read_cached(exact) == exact_want,
        "exact through the cache"
    );
    assert!(rig.read_fs(exact) == exact_want, "exact from ext2");
    let moved = rig.resolve("/deep/a/moved.txt", true).node.ino;
    assert_eq!(moved, file);
    assert!(rig.read_cached(moved) == file_want);
    assert!(rig.read_cached(big) == big_want);
    assert_eq!(rig.resolve("/etc/motd", true).stat.nlink, 1);
    for gone in [
        "/bin/slowlink",
        "/data/motd.link",
        "/empty_dir",
        "/newdir/file.txt",
    ] {
        assert!(
            rig.mounts
                .resolve(
                    b"/",
                    b"/",
                    gone.as_bytes(),
                    false,
                    &umlrun::vfs::Cred::root()
                )
                .is_err(),
            "{gone} still resolves"
        );
    }

    rig.mounts.sync_all().unwrap();
    rig.vol.unmount().unwrap();
    drop(fs);
    drop(rig); // closes the ubd and its lock before umlcow opens the COW

    assert!(
        std::fs::read(&img).unwrap() == img_before,
        "the backing image changed"
    );
    let merged = dir.path().join("merged.img");
    umlcow_merge(&cow, &merged);
    assert_fsck_clean(&merged);
    assert!(
        debugfs_cat(&merged, "/etc/motd") == motd_want,
        "debugfs motd"
    );
    assert!(debugfs_cat(&merged, "/usr/share/doc/exact") == exact_want);
    assert!(debugfs_cat(&merged, "/deep/a/moved.txt") == file_want);
    assert!(debugfs_cat(&merged, "/newdir/sub/big") == big_want);
    assert_eq!(debugfs_cat(&merged, "/etc/passwd"), b"vfs-host\n");
    assert!(debugfs_cat(&merged, "/bin/busybox") == std::fs::read(HOST_BUSYBOX).unwrap());
    let stat = String::from_utf8_lossy(&debugfs(&merged, "stat /newdir/link")).into_owned();
    assert!(stat.contains("file.txt"), "symlink target: {stat}");
    let stat = String::from_utf8_lossy(&debugfs(&merged, "stat /newdir/sub")).into_owned();
    assert!(stat.contains("User:  1000"), "owner of /newdir/sub: {stat}");
    let ls = String::from_utf8_lossy(&debugfs(&merged, "ls -l /")).into_owned();
    assert!(ls.contains("newdir") && !ls.contains("empty_dir"), "{ls}");
    for (d, gone) in [
        ("/bin", "slowlink"),
        ("/data", "motd.link"),
        ("/etc", "hostname"),
    ] {
        let ls = String::from_utf8_lossy(&debugfs(&merged, &format!("ls {d}"))).into_owned();
        assert!(!ls.contains(gone), "{d}/{gone} still listed: {ls}");
    }
}

#[test]
fn write_tree_merge_fsck_debugfs_copy_mode() {
    write_tree(UbdMode::Copy);
}

#[test]
fn write_tree_merge_fsck_debugfs_mmap_mode() {
    write_tree(UbdMode::Mmap);
}

/// `pagecache_max`: a 64-page cache reading a 1000-page file evicts the
/// least recently used pages, stays within its cap, frees their frames
/// (and their host memory), and still returns the right bytes.
#[test]
fn capped_cache_evicts_and_frees_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (tree, img) = tree_and_image(dir.path());
    let want = std::fs::read(tree.join("data/pages.bin")).unwrap();
    for mode in [UbdMode::Copy, UbdMode::Mmap] {
        let name = mode_name(mode);
        let cow = fresh_cow(&img, &dir.path().join(format!("{name}.cow")));
        let mut rig = Rig::new(&cow, mode, MEM, PageCache::with_limit(64));
        assert_eq!(rig.cache.max_pages(), 64);
        let ino = rig.resolve("/data/pages.bin", true).node.ino;
        let fs = rig.mounts.fs(rig.root_mnt).unwrap();
        let mut max_cached = 0;
        let mut got = vec![0u8; want.len()];
        for (idx, chunk) in got.chunks_mut(PAGE as usize).enumerate() {
            let f = rig
                .cache
                .get(fs.as_ref(), rig.key(ino), idx as u64, &mut rig.frames)
                .unwrap();
            rig.physmem.read(f, 0, chunk);
            max_cached = max_cached.max(rig.cache.stats().cached);
        }
        assert!(got == want, "{name}: bytes through a capped cache");
        let cs = rig.cache.stats();
        let ps = rig.physmem.stats();
        eprintln!("{name}: cache {cs:?}; physmem {ps:?}");
        assert!(max_cached <= 64, "{name}: cached {max_cached} > 64");
        assert_eq!(cs.misses, BIG_PAGES);
        assert!(
            cs.evicted >= BIG_PAGES - 64,
            "{name}: evicted {}",
            cs.evicted
        );
        assert_eq!(cs.evicted + cs.cached, BIG_PAGES, "{name}: pages accounted");
        assert!(ps.frames_allocated <= 64, "{name}: {ps:?}");
        assert_eq!(rig.frames.count() as u64, ps.frames_allocated);
        assert!(ps.frames_substituted <= 64, "{name}: {ps:?}");
        assert!(ps.host_resident_bytes <= 64 * PAGE, "{name}: {ps:?}");
        // The last page read is still cached: reading it again is a hit.
        let hits = cs.hits;
        rig.cache
            .get(fs.as_ref(), rig.key(ino), BIG_PAGES - 1, &mut rig.frames)
            .unwrap();
        assert_eq!(
            rig.cache.stats().hits,
            hits + 1,
            "{name}: LRU kept the newest"
        );
    }
}

/// A page written through a shared-writable mapping (`get_for_write`, then
/// bytes stored straight into the frame) reaches the disk on writeback; a
/// write beyond the end of file in the last page does not grow the file.
fn shared_write(mode: UbdMode) {
    let dir = tempfile::tempdir().unwrap();
    let (tree, img) = tree_and_image(dir.path());
    let cow = fresh_cow(&img, &dir.path().join("disk.cow"));
    let mut rig = Rig::new(&cow, mode, MEM, PageCache::new());
    let fs = rig.mounts.fs(rig.root_mnt).unwrap();
    let exact = rig.resolve("/usr/share/doc/exact", true).node.ino;
    let motd = rig.resolve("/etc/motd", true).node.ino;
    let mut exact_want = std::fs::read(tree.join("usr/share/doc/exact")).unwrap();
    let mut motd_want = std::fs::read(tree.join("etc/motd")).unwrap();

    // Cached (substituted in mmap mode) before the write, like a file page
    // first mapped read-only then written.
    assert!(rig.read_cached(exact) == exact_want);
    let f = rig
        .cache
        .get_for_write(fs.as_ref(), rig.key(exact), 1, &mut rig.frames)
        .unwrap();
    assert!(!rig.physmem.is_substituted(f), "a written page is private");
    let msg = b"written through a shared mapping";
    rig.physmem.write(f, 100, msg).unwrap();
    exact_want[4096 + 100..4096 + 100 + msg.len()].copy_from_slice(msg);
    // The tail page of motd (5000 bytes): one byte inside, one beyond EOF.
    let t = rig
        .cache
        .get_for_write(fs.as_ref(), rig.key(motd), 1, &mut rig.frames)
        .unwrap();
    rig.physmem.write(t, 10, b"T").unwrap();
    rig.physmem.write(t, 2000, b"beyond eof").unwrap();
    motd_want[4096 + 10] = b'T';

    let s = rig.cache.stats();
    assert_eq!(s.dirty, 2, "{s:?}");
    assert!(
        rig.read_fs(exact) != exact_want,
        "not on disk before writeback"
    );
    rig.cache
        .writeback(fs.as_ref(), rig.key(exact), &rig.frames)
        .unwrap();
    rig.cache
        .writeback(fs.as_ref(), rig.key(motd), &rig.frames)
        .unwrap();
    let s = rig.cache.stats();
    assert_eq!((s.dirty, s.written_back), (0, 2), "{s:?}");
    assert!(rig.read_fs(exact) == exact_want, "bytes reached the fs");
    assert!(rig.read_fs(motd) == motd_want, "tail page written back");
    assert_eq!(fs.stat(motd).unwrap().size, 5000, "EOF did not move");

    rig.mounts.sync_all().unwrap();
    rig.vol.unmount().unwrap();
    drop(fs);
    drop(rig);
    let merged = dir.path().join("merged.img");
    umlcow_merge(&cow, &merged);
    assert_fsck_clean(&merged);
    assert!(
        debugfs_cat(&merged, "/usr/share/doc/exact") == exact_want,
        "on disk"
    );
    assert!(debugfs_cat(&merged, "/etc/motd") == motd_want, "on disk");
}

#[test]
fn shared_writable_page_reaches_disk_copy_mode() {
    shared_write(UbdMode::Copy);
}

#[test]
fn shared_writable_page_reaches_disk_mmap_mode() {
    shared_write(UbdMode::Mmap);
}
