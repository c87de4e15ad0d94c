//! Write trees through Ext2 (every name operation, truncate both ways,
//! setattr, files reaching double indirect blocks), then check the image
//! with the host's `e2fsck -fn` and read it back with `debugfs`.

mod ext2_common;

use ext2_common::*;
use std::process::Command;
use umlrun::errno::Errno;
use umlrun::fs::ext2::{Ext2, SetAttr};

const S_IFREG: u32 = 0o100000;
const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;

/// What the tree should hold afterwards: (path, contents).
struct Expect(Vec<(String, Vec<u8>)>);

fn write_file(fs: &Ext2, dir: u32, name: &str, data: &[u8]) -> u32 {
    let ino = fs
        .create(dir, name.as_bytes(), S_IFREG | 0o644, 1000, 1000, 0)
        .unwrap();
    // uneven chunks cross block boundaries
    let mut off = 0;
    for chunk in data.chunks(3001) {
        assert_eq!(fs.write(ino, off as u64, chunk).unwrap(), chunk.len());
        off += chunk.len();
    }
    ino
}

fn exercise(fs: &Ext2) -> Expect {
    let bs = fs.block_size() as usize;
    let root = fs.root();
    let mut exp = Vec::new();
    let a = fs.mkdir(root, b"a", 0o755, 0, 0).unwrap();
    let b = fs.mkdir(a, b"b", 0o700, 1, 2).unwrap();
    let c = fs.mkdir(root, b"c", 0o755, 0, 0).unwrap();
    assert_eq!(fs.mkdir(root, b"a", 0o755, 0, 0), Err(Errno::EEXIST));

    let f1 = pattern(10, 1234);
    write_file(fs, a, "f1", &f1);
    let p = bs / 4;
    let big = pattern(11, (12 + p + 5) * bs + 7); // needs the double indirect block
    let big_ino = write_file(fs, a, "big", &big);
    assert!(fs.bmap(big_ino, (12 + p + 2) as u64).unwrap().is_some());
    exp.push(("/a/big".to_string(), big.clone()));

    // sparse: one block far out
    let sp = fs
        .create(root, b"sparse", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    fs.write(sp, 40 * bs as u64 + 5, b"far away").unwrap();
    let mut spc = vec![0u8; 40 * bs + 5];
    spc.extend_from_slice(b"far away");
    assert_eq!(fs.bmap(sp, 3).unwrap(), None);
    exp.push(("/sparse".to_string(), spc));

    // links and symlinks
    fs.link(resolve(fs, "a/f1").unwrap(), c, b"f1link").unwrap();
    assert_eq!(fs.stat(resolve(fs, "a/f1").unwrap()).unwrap().nlink, 2);
    exp.push(("/a/f1".to_string(), f1.clone()));
    exp.push(("/c/f1link".to_string(), f1.clone()));
    let fast = fs.symlink(c, b"fast", b"../a/f1", 0, 0).unwrap();
    let long = "x/".repeat(70) + "end";
    let slow = fs.symlink(c, b"slow", long.as_bytes(), 0, 0).unwrap();
    assert_eq!(fs.readlink(fast).unwrap(), b"../a/f1");
    assert_eq!(fs.readlink(slow).unwrap(), long.as_bytes());
    assert_eq!(fs.link(a, c, b"dirlink"), Err(Errno::EPERM));

    // rename over an existing file, across directories
    let f2 = pattern(12, 5000);
    write_file(fs, a, "f2", &f2);
    write_file(fs, c, "victim", &pattern(13, 9000));
    fs.rename(a, b"f2", c, b"victim").unwrap();
    assert_eq!(fs.lookup(a, b"f2"), Err(Errno::ENOENT));
    exp.push(("/c/victim".to_string(), f2.clone()));

    // rename a directory across directories: '..' and link counts follow
    write_file(fs, b, "inner", b"inner data");
    fs.rename(a, b"b", c, b"bmoved").unwrap();
    assert_eq!(fs.lookup(b, b"..").unwrap(), c);
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    assert_eq!(fs.stat(c).unwrap().nlink, 3);
    exp.push(("/c/bmoved/inner".to_string(), b"inner data".to_vec()));
    // a directory over an empty directory
    fs.mkdir(a, b"d1", 0o755, 0, 0).unwrap();
    fs.mkdir(c, b"d2", 0o755, 0, 0).unwrap();
    fs.rename(a, b"d1", c, b"d2").unwrap();
    assert_eq!(fs.stat(c).unwrap().nlink, 4);
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    // not into its own subtree (EINVAL); onto its own ancestor is ENOTEMPTY, as in Linux
    assert_eq!(fs.rename(root, b"c", b, b"oops"), Err(Errno::EINVAL));
    assert_eq!(fs.rename(c, b"d2", root, b"c"), Err(Errno::ENOTEMPTY));
    fs.mkdir(root, b"full", 0o755, 0, 0).unwrap();
    write_file(fs, resolve(fs, "full").unwrap(), "x", b"x");
    assert_eq!(fs.rename(c, b"d2", root, b"full"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(root, b"full"), Err(Errno::ENOTEMPTY));
    exp.push(("/full/x".to_string(), b"x".to_vec()));
    // same-directory rename
    write_file(fs, root, "old", b"renamed");
    fs.rename(root, b"old", root, b"new").unwrap();
    exp.push(("/new".to_string(), b"renamed".to_vec()));

    // unlink and rmdir
    write_file(fs, a, "gone", &pattern(14, 70000));
    fs.unlink(a, b"gone").unwrap();
    assert_eq!(fs.unlink(a, b"gone"), Err(Errno::ENOENT));
    fs.mkdir(a, b"empty", 0o755, 0, 0).unwrap();
    fs.rmdir(a, b"empty").unwrap();
    assert_eq!(fs.unlink(root, b"a"), Err(Errno::EISDIR));
    assert_eq!(fs.rmdir(root, b"new"), Err(Errno::ENOTDIR));

    // truncate: shrink to mid-block, then grow (the tail must read zero)
    let tr = write_file(fs, root, "trunc", &pattern(15, 20 * bs));
    fs.truncate(tr, bs as u64 + 10).unwrap();
    fs.truncate(tr, 3 * bs as u64).unwrap();
    let mut trc = pattern(15, bs + 10);
    trc.resize(3 * bs, 0);
    exp.push(("/trunc".to_string(), trc));
    // shrink the double-indirect file into the direct range
    let bigcut = write_file(fs, root, "bigcut", &big);
    fs.setattr(
        bigcut,
        SetAttr {
            size: Some(5 * bs as u64 + 1),
            ..Default::default()
        },
    )
    .unwrap();
    exp.push(("/bigcut".to_string(), big[..5 * bs + 1].to_vec()));

    // setattr
    fs.setattr(
        resolve(fs, "a/f1").unwrap(),
        SetAttr {
            mode: Some(0o4711),
            uid: Some(70001),
            gid: Some(42),
            atime: Some(1000),
            mtime: Some(2000),
            size: None,
        },
    )
    .unwrap();
    let st = fs.stat(resolve(fs, "a/f1").unwrap()).unwrap();
    assert_eq!(
        (st.mode, st.uid, st.gid, st.atime, st.mtime),
        (S_IFREG | 0o4711, 70001, 42, 1000, 2000)
    );

    // special files
    fs.create(root, b"fifo", S_IFIFO | 0o600, 0, 0, 0).unwrap();
    let dev = fs
        .create(root, b"tty", S_IFCHR | 0o620, 0, 5, (4 << 8) | 1)
        .unwrap();
    assert_eq!(fs.stat(dev).unwrap().rdev, (4 << 8) | 1);

    // a directory growing past one block, then thinned out
    let many = fs.mkdir(root, b"many", 0o755, 0, 0).unwrap();
    for k in 0..300 {
        fs.create(
            many,
            format!("n{k}_{}", "y".repeat(k % 30)).as_bytes(),
            S_IFREG | 0o644,
            0,
            0,
            0,
        )
        .unwrap();
    }
    for k in (0..300).step_by(2) {
        fs.unlink(many, format!("n{k}_{}", "y".repeat(k % 30)).as_bytes())
            .unwrap();
    }
    assert_eq!(fs.readdir(many).unwrap().len(), 152);
    assert!(fs.stat(many).unwrap().size > bs as u64);

    // the file system's own view
    for (path, data) in &exp {
        assert!(
            read_all(fs, resolve(fs, path).unwrap()).unwrap() == *data,
            "{path}"
        );
    }
    Expect(exp)
}

fn check_with_host_tools(img: &std::path::Path, exp: &Expect) {
    assert_fsck_clean(img);
    for (path, data) in &exp.0 {
        let got = debugfs(img, &format!("cat {path}"));
        assert!(
            got == *data,
            "debugfs cat {path}: {} bytes, expected {}",
            got.len(),
            data.len()
        );
    }
    let st = String::from_utf8_lossy(&debugfs(img, "stat /a/f1")).to_string();
    assert!(st.contains("Mode:  04711"), "{st}");
    assert!(st.contains("User: 70001"), "{st}");
    let link = String::from_utf8_lossy(&debugfs(img, "stat /c/slow")).to_string();
    assert!(link.contains("Type: symlink"), "{link}");
}

fn write_test(bs: u32, rev0: bool) {
    let t = tempdir();
    let img = image_path(&t, "img");
    mkfs(&img, None, bs, rev0, &[], 16 * 1024);
    let exp = {
        let fs = mount(&img, false);
        let exp = exercise(&fs);
        fs.sync().unwrap();
        exp
    };
    check_with_host_tools(&img, &exp);
    // and our own read-back after a remount
    let fs = mount(&img, true);
    for (path, data) in &exp.0 {
        assert!(
            read_all(&fs, resolve(&fs, path).unwrap()).unwrap() == *data,
            "{path}"
        );
    }
    assert_eq!(
        fs.write(resolve(&fs, "new").unwrap(), 0, b"x"),
        Err(Errno::EROFS)
    );
}

#[test]
fn write_tree_1k_rev1() {
    write_test(1024, false);
}
#[test]
fn write_tree_2k_rev1() {
    write_test(2048, false);
}
#[test]
fn write_tree_4k_rev1() {
    write_test(4096, false);
}
#[test]
fn write_tree_1k_rev0() {
    write_test(1024, true);
}
#[test]
fn write_tree_4k_rev0() {
    write_test(4096, true);
}

/// Changing an htree directory keeps e2fsck happy (its index flag goes).
#[test]
fn modify_indexed_directory() {
    let t = tempdir();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("big")).unwrap();
    for k in 0..500 {
        std::fs::write(src.join("big").join(format!("file_{k:04}")), b"z").unwrap();
    }
    let img = image_path(&t, "img");
    mkfs(
        &img,
        Some(&src),
        1024,
        false,
        &["-O", "dir_index"],
        8 * 1024,
    );
    let out = Command::new("e2fsck")
        .arg("-fyD")
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.code().unwrap() <= 1);
    assert!(String::from_utf8_lossy(&debugfs(&img, "stat /big")).contains("Flags: 0x1000"));
    {
        let fs = mount(&img, false);
        let big = resolve(&fs, "big").unwrap();
        for k in (0..500).step_by(3) {
            fs.unlink(big, format!("file_{k:04}").as_bytes()).unwrap();
        }
        for k in 0..100 {
            let ino = fs
                .create(
                    big,
                    format!("added_{k}").as_bytes(),
                    S_IFREG | 0o644,
                    0,
                    0,
                    0,
                )
                .unwrap();
            fs.write(ino, 0, b"new").unwrap();
        }
        assert_eq!(fs.readdir(big).unwrap().len(), 2 + 500 - 167 + 100);
        fs.unmount().unwrap();
    }
    assert_fsck_clean(&img);
    assert_eq!(debugfs(&img, "cat /big/added_7"), b"new");
}

/// The page cache's write path: map (allocating) blocks, write the image
/// directly, then set the size. Growing must not zero what was written.
#[test]
fn page_cache_style_write() {
    let t = tempdir();
    let img = image_path(&t, "img");
    mkfs(&img, None, 4096, false, &[], 8 * 1024);
    let data = pattern(77, 3 * 4096 + 100);
    {
        let dev = open_dev(&img, true);
        let fs = Ext2::mount(dev.clone(), false).unwrap();
        let ino = fs
            .create(fs.root(), b"pc", S_IFREG | 0o644, 0, 0, 0)
            .unwrap();
        fs.write(ino, 0, &data[..50]).unwrap(); // old end inside block 0
        for (k, chunk) in data.chunks(4096).enumerate() {
            let b = fs.bmap_alloc(ino, k as u64).unwrap();
            assert_eq!(fs.bmap(ino, k as u64).unwrap(), Some(b));
            dev.write_at(b * 4096, chunk).unwrap();
        }
        fs.setattr(
            ino,
            SetAttr {
                size: Some(data.len() as u64),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(read_all(&fs, ino).unwrap() == data);
        assert_eq!(fs.stat(ino).unwrap().blocks, 4 * 8);
    }
    assert_fsck_clean(&img);
    assert!(debugfs(&img, "cat /pc") == data);
}

/// Filling the disk: a short write or ENOSPC, exact free counts, and all
/// space back after the unlink.
#[test]
fn enospc_short_write_and_recovery() {
    let t = tempdir();
    let img = image_path(&t, "img");
    mkfs(&img, None, 1024, false, &[], 1024);
    {
        let fs = mount(&img, false);
        let before = fs.statfs().free_blocks;
        let ino = fs
            .create(fs.root(), b"fill", S_IFREG | 0o644, 0, 0, 0)
            .unwrap();
        let data = pattern(9, 2 << 20);
        let n = fs.write(ino, 0, &data).unwrap();
        assert!(n > 0 && n < data.len());
        assert_eq!(fs.statfs().free_blocks, 0);
        assert_eq!(fs.write(ino, n as u64, b"more"), Err(Errno::ENOSPC));
        assert_eq!(fs.mkdir(fs.root(), b"d", 0o755, 0, 0), Err(Errno::ENOSPC));
        assert!(read_all(&fs, ino).unwrap() == data[..n]);
        fs.unmount().unwrap();
        assert_fsck_clean(&img);
        let fs = mount(&img, false);
        fs.unlink(fs.root(), b"fill").unwrap();
        assert_eq!(fs.statfs().free_blocks, before);
    }
    assert_fsck_clean(&img);
}

/// A shared mapping's page gets its blocks at the write fault
/// (`allocate_page`, page_mkwrite's job): holes under the page are
/// allocated zeroed, only up to the file's size, an allocated page costs
/// nothing more, and a full disk answers ENOSPC with what was allocated
/// kept (e2fsck finds no leaked block).
#[test]
fn allocate_page_fills_holes_until_the_disk_is_full() {
    let t = tempdir();
    let img = image_path(&t, "img");
    mkfs(&img, None, 1024, false, &[], 1024);
    {
        let fs = mount(&img, false);
        let ino = fs
            .create(fs.root(), b"sparse", S_IFREG | 0o644, 0, 0, 0)
            .unwrap();
        fs.truncate(ino, 64 << 20).unwrap();
        assert_eq!(fs.bmap(ino, 0).unwrap(), None);
        let free = fs.statfs().free_blocks;
        fs.allocate_page(ino, 0).unwrap();
        // Four 1 KiB blocks, zeroed.
        assert_eq!(fs.statfs().free_blocks, free - 4);
        assert!((0..4).all(|b| fs.bmap(ino, b).unwrap().is_some()));
        assert_eq!(fs.bmap(ino, 4).unwrap(), None);
        assert!(read_all(&fs, ino).unwrap()[..4096].iter().all(|&b| b == 0));
        fs.allocate_page(ino, 0).unwrap();
        assert_eq!(fs.statfs().free_blocks, free - 4);
        // Past the end of the file: nothing to allocate.
        fs.allocate_page(ino, 1 << 20).unwrap();
        assert_eq!(fs.statfs().free_blocks, free - 4);
        let mut page = 1;
        let err = loop {
            match fs.allocate_page(ino, page) {
                Ok(()) => page += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Errno::ENOSPC);
        assert_eq!(fs.statfs().free_blocks, 0);
        fs.unmount().unwrap();
    }
    assert_fsck_clean(&img);
}

/// mount -o remount: read-write → read-only leaves a clean image (e2fsck
/// while still mounted) and refuses writes; read-only → read-write marks
/// it in use again, and unmount leaves it clean.
#[test]
fn remount_read_only_and_back() {
    let t = tempdir();
    let img = image_path(&t, "img");
    mkfs(&img, None, 1024, false, &[], 2048);
    let fs = mount(&img, false);
    let ino = fs
        .create(fs.root(), b"a", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    fs.write(ino, 0, b"first").unwrap();
    fs.remount(true).unwrap();
    assert!(fs.is_read_only());
    assert_fsck_clean(&img);
    assert_eq!(fs.write(ino, 0, b"x"), Err(Errno::EROFS));
    assert_eq!(
        fs.create(fs.root(), b"b", S_IFREG | 0o644, 0, 0, 0),
        Err(Errno::EROFS)
    );
    fs.remount(true).unwrap(); // already read-only: nothing to do
    assert_eq!(fs_state(&img), "clean");
    fs.remount(false).unwrap();
    // In use again: the superblock no longer says "cleanly unmounted".
    assert_eq!(fs_state(&img), "not clean");
    fs.write(ino, 5, b" second").unwrap();
    fs.unmount().unwrap();
    assert_eq!(fs.remount(false), Err(Errno::EINVAL), "after unmount");
    drop(fs);
    assert_fsck_clean(&img);
    assert_eq!(debugfs(&img, "cat /a"), b"first second");
}

/// "Filesystem state:" of `dumpe2fs -h`.
fn fs_state(img: &std::path::Path) -> String {
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem state:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
