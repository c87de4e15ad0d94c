//! Mount images that the host's mke2fs built from a known tree (block sizes
//! 1, 2, 4 KiB; revisions 0 and 1; an htree directory) and compare every
//! file byte for byte and every stat field with the host tree.

mod ext2_common;

use ext2_common::*;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use umlrun::fs::ext2::Ext2;

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().expect(cmd);
    assert!(st.success(), "{cmd} {args:?} failed");
}

/// A tree with files needing direct, indirect, double and (for 1 KiB
/// blocks) triple indirect blocks, sparse files, fast and slow symlinks,
/// a fifo, device nodes, hard links and a 600-entry directory.
fn build_tree(root: &Path) {
    let w = |name: &str, data: &[u8]| fs::write(root.join(name), data).unwrap();
    w("empty", b"");
    w("small.txt", &pattern(1, 100));
    w("direct.bin", &pattern(2, 5 * 4096 + 17));
    w("ind.bin", &pattern(3, 112 * 4096 + 3));
    w("dind.bin", &pattern(4, (12 + 1024 + 20) * 4096 + 5));
    // sparse: holes before, between and after data
    let mut f = fs::File::create(root.join("sparse")).unwrap();
    f.seek(SeekFrom::Start(1 << 20)).unwrap();
    f.write_all(&pattern(5, 5000)).unwrap();
    f.set_len(3 << 20).unwrap();
    // data in the triple-indirect range of a 1 KiB-block file system
    let mut f = fs::File::create(root.join("sparse_far")).unwrap();
    f.seek(SeekFrom::Start(67_500_000)).unwrap();
    f.write_all(&pattern(6, 3000)).unwrap();
    drop(f);
    std::os::unix::fs::symlink("small.txt", root.join("fastlink")).unwrap();
    let long: String = "dir/".repeat(30) + "target";
    std::os::unix::fs::symlink(&long, root.join("slowlink")).unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    run("mkfifo", &[root.join("fifo").to_str().unwrap()]);
    run(
        "mknod",
        &[root.join("null").to_str().unwrap(), "c", "1", "3"],
    );
    run(
        "mknod",
        &[root.join("sda1").to_str().unwrap(), "b", "8", "1"],
    );
    run(
        "mknod",
        &[root.join("bigdev").to_str().unwrap(), "c", "300", "70000"],
    );
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    w("sub/deeper/leaf", b"leaf\n");
    fs::hard_link(root.join("small.txt"), root.join("sub/hardlink")).unwrap();
    fs::create_dir(root.join("bigdir")).unwrap();
    for k in 0..600 {
        let name = format!("entry_{k}_{}", "x".repeat(k % 40));
        fs::write(root.join("bigdir").join(name), format!("{k}")).unwrap();
    }
    std::os::unix::fs::chown(root.join("small.txt"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(root.join("sub/deeper/leaf"), Some(70000), Some(80000)).unwrap();
    fs::set_permissions(root.join("direct.bin"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(root.join("sub"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(root.join("ind.bin"), fs::Permissions::from_mode(0o600)).unwrap();
}

/// Walk both trees in step, comparing names, stats, contents and targets.
fn compare(fs: &Ext2, ino: u32, host: &Path, seen: &mut HashSet<u32>, top: bool) -> usize {
    let mut count = 0;
    let entries = fs.readdir(ino).expect("readdir");
    let names: BTreeSet<Vec<u8>> = entries
        .iter()
        .map(|e| e.name.clone())
        .filter(|n| n != b"." && n != b".." && !(top && n == b"lost+found"))
        .collect();
    let host_names: BTreeSet<Vec<u8>> = fs::read_dir(host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_encoded_bytes())
        .collect();
    assert_eq!(names, host_names, "names in {host:?}");
    for e in entries {
        if !names.contains(&e.name) {
            continue;
        }
        let hp = host.join(std::str::from_utf8(&e.name).unwrap());
        let md = fs::symlink_metadata(&hp).unwrap();
        let st = fs.stat(e.ino).unwrap();
        assert_eq!(fs.lookup(ino, &e.name).unwrap(), e.ino);
        assert_eq!(st.mode, md.mode(), "mode of {hp:?}");
        assert_eq!(st.nlink, md.nlink() as u32, "nlink of {hp:?}");
        assert_eq!((st.uid, st.gid), (md.uid(), md.gid()), "owner of {hp:?}");
        assert_eq!(st.mtime, md.mtime(), "mtime of {hp:?}");
        let ft = md.file_type();
        let dt = match st.mode & 0o170000 {
            0o100000 => 8,
            0o040000 => 4,
            0o120000 => 10,
            0o010000 => 1,
            0o020000 => 2,
            0o060000 => 6,
            _ => 0,
        };
        assert_eq!(e.file_type, dt, "dirent type of {hp:?}");
        count += 1;
        if ft.is_dir() {
            assert!(seen.insert(e.ino), "directory visited twice");
            count += compare(fs, e.ino, &hp, seen, false);
        } else if ft.is_file() {
            assert_eq!(st.size, md.len(), "size of {hp:?}");
            let data = read_all(fs, e.ino).unwrap();
            assert!(data == fs::read(&hp).unwrap(), "contents of {hp:?}");
        } else if ft.is_symlink() {
            let t = fs.readlink(e.ino).unwrap();
            assert_eq!(
                t,
                fs::read_link(&hp)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            );
            assert_eq!(st.size, t.len() as u64);
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() || ft.is_block_device() {
                assert_eq!(st.rdev, host_rdev(&md), "rdev of {hp:?}");
            }
        }
    }
    count
}

fn check_image(bs: u32, rev0: bool) {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    build_tree(&src);
    let img = image_path(&t, "img");
    let extra: &[&str] = if rev0 { &[] } else { &["-O", "dir_index"] };
    mkfs(&img, Some(&src), bs, rev0, extra, 24 * 1024);
    if !rev0 {
        // index big directories, then make sure bigdir really is an htree
        let st = Command::new("e2fsck")
            .args(["-fyD"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(st.status.code().unwrap() <= 1);
        let s = String::from_utf8_lossy(&debugfs(&img, "stat /bigdir")).to_string();
        assert!(s.contains("Flags: 0x1000"), "bigdir not indexed: {s}");
    }
    let fs = mount(&img, true);
    assert_eq!(fs.block_size(), bs);
    let mut seen = HashSet::new();
    let n = compare(&fs, fs.root(), &src, &mut seen, true);
    assert_eq!(n, 619, "entries walked");
    // sparse files really have holes
    let sp = resolve(&fs, "sparse").unwrap();
    assert_eq!(fs.bmap(sp, 0).unwrap(), None);
    assert!(fs.bmap(sp, (1 << 20) / bs as u64).unwrap().is_some());
    assert!(fs.stat(sp).unwrap().blocks * 512 < 64 * 1024);
    let far = resolve(&fs, "sparse_far").unwrap();
    assert!(fs.stat(far).unwrap().blocks < 64);
    let sf = fs.statfs();
    assert_eq!(sf.block_size, bs);
    assert!(sf.free_blocks > 0 && sf.free_blocks < sf.blocks);
    drop(fs);
    // a read-only mount leaves the image untouched and clean
    assert_fsck_clean(&img);
}

#[test]
fn host_image_1k_rev1() {
    check_image(1024, false);
}
#[test]
fn host_image_2k_rev1() {
    check_image(2048, false);
}
#[test]
fn host_image_4k_rev1() {
    check_image(4096, false);
}
#[test]
fn host_image_1k_rev0() {
    check_image(1024, true);
}
#[test]
fn host_image_2k_rev0() {
    check_image(2048, true);
}
#[test]
fn host_image_4k_rev0() {
    check_image(4096, true);
}
