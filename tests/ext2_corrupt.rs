//! A corpus of images damaged in known ways (made here from a valid
//! mke2fs image, located with debugfs) plus random byte flips: mount, a
//! full walk, reads and some writes must give errors, never panic, and
//! always terminate.

mod ext2_common;

use ext2_common::*;
use std::collections::HashSet;
use std::fs;
use std::path::Path;
use umlrun::errno::Errno;
use umlrun::fs::ext2::Ext2;
use umlrun::fs::MemBlockIo;

const BS: u64 = 1024;

fn build_src(root: &Path) {
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("file"), pattern(1, 300 * 1024)).unwrap(); // indirect blocks
    fs::write(root.join("small"), b"small file").unwrap();
    fs::write(root.join("d/inner"), b"inner").unwrap();
    fs::write(root.join("d/sub/deep"), b"deep").unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    std::os::unix::fs::symlink("x".repeat(100), root.join("slow")).unwrap();
}

struct Base {
    _t: tempfile::TempDir,
    img: std::path::PathBuf,
    bytes: Vec<u8>,
}

fn base() -> Base {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    build_src(&src);
    let img = image_path(&t, "img");
    mkfs(&img, Some(&src), BS as u32, false, &["-I", "128"], 2048);
    let bytes = fs::read(&img).unwrap();
    Base { _t: t, img, bytes }
}

/// Byte offset of an inode's record, from `debugfs imap`.
fn inode_offset(img: &Path, path: &str) -> u64 {
    let out = String::from_utf8(debugfs(img, &format!("imap {path}"))).unwrap();
    let block: u64 = out
        .split("located at block ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let off = out.split("offset 0x").nth(1).unwrap().trim();
    block * BS + u64::from_str_radix(off, 16).unwrap()
}

fn first_block(img: &Path, path: &str) -> u64 {
    String::from_utf8(debugfs(img, &format!("bmap {path} 0")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn put32(b: &mut [u8], off: u64, v: u32) {
    b[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
}
fn put16(b: &mut [u8], off: u64, v: u16) {
    b[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes());
}

/// Mount over a copy in memory; on success walk everything.
fn try_all(bytes: Vec<u8>) -> Result<Walk, Errno> {
    let fs = Ext2::mount(std::sync::Arc::new(MemBlockIo::new(bytes)), false)?;
    let mut w = Walk::default();
    let mut seen = HashSet::new();
    walk(&fs, fs.root(), &mut seen, &mut w, 0);
    // writes on a damaged file system may fail, but must not panic
    let root = fs.root();
    if let Ok(ino) = fs.create(root, b"newfile", 0o100644, 0, 0, 0) {
        let _ = fs.write(ino, 5000, &[7u8; 3000]);
        let _ = fs.truncate(ino, 10);
    }
    let _ = fs.mkdir(root, b"newdir", 0o755, 0, 0);
    let _ = fs.rename(root, b"newdir", root, b"d");
    let _ = fs.rename(root, b"small", root, b"d");
    if let Ok(d) = fs.lookup(root, b"d") {
        let _ = fs.rename(root, b"newdir", d, b"moved");
    }
    let _ = fs.unlink(root, b"file");
    let _ = fs.unlink(root, b"small");
    let _ = fs.rmdir(root, b"newdir");
    let _ = fs.sync();
    Ok(w)
}

#[derive(Default, Debug)]
struct Walk {
    ok: usize,
    errors: Vec<Errno>,
}

fn walk(fs: &Ext2, dir: u32, seen: &mut HashSet<u32>, w: &mut Walk, depth: usize) {
    if depth > 64 || !seen.insert(dir) {
        return; // the caller, like a VFS, guards against directory loops
    }
    let entries = match fs.readdir(dir) {
        Ok(e) => e,
        Err(e) => return w.errors.push(e),
    };
    for e in entries {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        if let Err(err) = fs.lookup(dir, &e.name) {
            w.errors.push(err);
        }
        let st = match fs.stat(e.ino) {
            Ok(s) => s,
            Err(err) => {
                w.errors.push(err);
                continue;
            }
        };
        let r = match st.mode & 0o170000 {
            0o040000 => {
                walk(fs, e.ino, seen, w, depth + 1);
                Ok(())
            }
            0o100000 => {
                let mut buf = vec![0u8; 64 * 1024];
                let mut off = 0u64;
                // read at most 1 MiB: sizes can be large but still legal
                loop {
                    match fs.read(e.ino, off, &mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) if off < (1 << 20) => off += n as u64,
                        Ok(_) => break Ok(()),
                        Err(err) => break Err(err),
                    }
                }
            }
            0o120000 => fs.readlink(e.ino).map(|_| ()),
            _ => Ok(()),
        };
        match r {
            Ok(()) => w.ok += 1,
            Err(err) => w.errors.push(err),
        }
    }
}

fn expect_walk_error(bytes: Vec<u8>, what: &str) -> Walk {
    let w = try_all(bytes).unwrap_or_else(|e| panic!("{what}: mount failed with {e:?}"));
    assert!(!w.errors.is_empty(), "{what}: no error seen: {w:?}");
    assert!(
        w.errors
            .iter()
            .all(|e| [Errno::EIO, Errno::ENOENT].contains(e)),
        "{what}: {w:?}"
    );
    w
}

#[test]
fn base_image_walks_cleanly() {
    let b = base();
    let w = try_all(b.bytes.clone()).unwrap();
    assert!(w.errors.is_empty(), "{w:?}");
    assert!(w.ok >= 8);
}

#[test]
fn bad_superblock_magic() {
    let mut b = base().bytes;
    put16(&mut b, 1024 + 56, 0x1234);
    assert_eq!(try_all(b).err(), Some(Errno::EINVAL));
}

#[test]
fn unsupported_incompat_feature() {
    let mut b = base().bytes;
    let off = 1024 + 96;
    let v = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
    put32(&mut b, off as u64, v | 0x40); // extents
    assert_eq!(try_all(b).err(), Some(Errno::EINVAL));
}

#[test]
fn group_descriptor_outside_disk() {
    let mut b = base().bytes;
    let gdt = 2 * BS; // 1 KiB blocks: descriptors start at block 2
    put32(&mut b, gdt + 8, 0x00ff_ffff); // inode table
    assert_eq!(try_all(b.clone()).err(), Some(Errno::EINVAL));
    let mut b2 = base().bytes;
    put32(&mut b2, gdt, 5_000_000); // block bitmap
    assert_eq!(try_all(b2).err(), Some(Errno::EINVAL));
}

#[test]
fn block_count_past_device() {
    let mut b = base().bytes;
    put32(&mut b, 1024 + 4, 1 << 30);
    assert_eq!(try_all(b).err(), Some(Errno::EINVAL));
}

#[test]
fn data_block_past_the_end() {
    let base = base();
    let mut b = base.bytes.clone();
    let ino = inode_offset(&base.img, "/small");
    put32(&mut b, ino + 40, 0xffff_ff00);
    expect_walk_error(b, "direct block");
    let mut b = base.bytes.clone();
    let ino = inode_offset(&base.img, "/file");
    put32(&mut b, ino + 40 + 12 * 4, 3_000_000); // indirect block
    expect_walk_error(b, "indirect block");
}

#[test]
fn directory_containing_itself_and_loops() {
    let base = base();
    let dblock = first_block(&base.img, "/d");
    let d_ino: u32 = String::from_utf8(debugfs(&base.img, "stat /d"))
        .unwrap()
        .split("Inode: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // every entry of /d, '.' and '..' included, now names /d itself
    let mut b = base.bytes.clone();
    let mut off = 0u64;
    while off < BS {
        let rec = u16::from_le_bytes([
            b[(dblock * BS + off + 4) as usize],
            b[(dblock * BS + off + 5) as usize],
        ]) as u64;
        put32(&mut b, dblock * BS + off, d_ino);
        off += rec.max(12);
    }
    // the walk terminates (loop guard) and renames that need the parent chain fail
    let fs = Ext2::mount(std::sync::Arc::new(MemBlockIo::new(b.clone())), false).unwrap();
    let mut w = Walk::default();
    walk(&fs, fs.root(), &mut HashSet::new(), &mut w, 0);
    fs.mkdir(fs.root(), b"x", 0o755, 0, 0).unwrap();
    assert_eq!(fs.rename(fs.root(), b"x", d_ino, b"y"), Err(Errno::EIO));
    drop(fs);
    try_all(b).unwrap();
}

#[test]
fn dirent_inode_out_of_range() {
    let base = base();
    let dblock = first_block(&base.img, "/d");
    let mut b = base.bytes.clone();
    put32(&mut b, dblock * BS + 24, 0xffff_fff0); // the entry after '.' and '..'
    let w = expect_walk_error(b, "dirent inode");
    assert!(w.errors.contains(&Errno::EIO));
}

#[test]
fn dirent_with_an_empty_name() {
    let base = base();
    let dblock = first_block(&base.img, "/d");
    let mut b = base.bytes.clone();
    b[(dblock * BS + 24 + 6) as usize] = 0; // name_len of the entry after '.' and '..'
    let w = expect_walk_error(b.clone(), "empty name");
    assert!(w.errors.contains(&Errno::EIO));
    // Never listed: readdir of the directory refuses it as a whole.
    let fs = Ext2::mount(std::sync::Arc::new(MemBlockIo::new(b)), false).unwrap();
    let d = fs.lookup(fs.root(), b"d").unwrap();
    assert_eq!(fs.readdir(d).err(), Some(Errno::EIO));
}

#[test]
fn rec_len_zero_and_past_block() {
    let base = base();
    let dblock = first_block(&base.img, "/d");
    for bad in [0u16, 2, 2048, 13] {
        let mut b = base.bytes.clone();
        put16(&mut b, dblock * BS + 12 + 4, bad); // '..' rec_len
        expect_walk_error(b, &format!("rec_len {bad}"));
    }
}

#[test]
fn zero_length_directory() {
    let base = base();
    let mut b = base.bytes.clone();
    put32(&mut b, inode_offset(&base.img, "/d") + 4, 0);
    expect_walk_error(b, "zero-length dir");
}

#[test]
fn directory_with_a_hole() {
    let base = base();
    let mut b = base.bytes.clone();
    let ino = inode_offset(&base.img, "/d");
    put32(&mut b, ino + 4, 3 * BS as u32); // size says three blocks; two are holes
    expect_walk_error(b, "dir hole");
}

#[test]
fn symlink_bad_lengths() {
    let base = base();
    let mut b = base.bytes.clone();
    put32(&mut b, inode_offset(&base.img, "/slow") + 4, 5000);
    expect_walk_error(b, "slow symlink too long");
    let mut b = base.bytes.clone();
    put32(&mut b, inode_offset(&base.img, "/loop") + 4, 200); // fast link claims 200 bytes
    expect_walk_error(b, "fast symlink too long");
    // a link to itself is just a target; resolving it is the VFS's loop limit
    let fs = Ext2::mount(
        std::sync::Arc::new(MemBlockIo::new(base.bytes.clone())),
        true,
    )
    .unwrap();
    let l = fs.lookup(fs.root(), b"loop").unwrap();
    assert_eq!(fs.readlink(l).unwrap(), b"loop");
}

#[test]
fn huge_size_and_deleted_inode() {
    let base = base();
    let mut b = base.bytes.clone();
    put32(&mut b, inode_offset(&base.img, "/small") + 108, 0xffff_ffff); // i_size_high
    expect_walk_error(b, "huge size");
    let mut b = base.bytes.clone();
    put16(&mut b, inode_offset(&base.img, "/small") + 26, 0); // links_count
    expect_walk_error(b, "deleted inode");
}

#[test]
fn random_metadata_flips_never_panic() {
    let base = base();
    // metadata lives in the first blocks of group 0: sb, gdt, bitmaps, inode table, dirs
    let meta_end = (first_block(&base.img, "/d") + 4) * BS;
    flip_rounds(&base.bytes, meta_end);
}

#[test]
fn random_metadata_flips_4k_never_panic() {
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    build_src(&src);
    let img = image_path(&t, "img");
    mkfs(&img, Some(&src), 4096, false, &[], 4096);
    let dblock: u64 = String::from_utf8(debugfs(&img, "bmap /d 0"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    flip_rounds(&fs::read(&img).unwrap(), (dblock + 2) * 4096);
}

fn flip_rounds(bytes: &[u8], meta_end: u64) {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rounds: usize = std::env::var("EXT2_FLIP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let (mut mounted, mut with_errors) = (0, 0);
    for _ in 0..rounds {
        let mut b = bytes.to_vec();
        for _ in 0..(1 + next() % 24) {
            let off = 1024 + next() % (meta_end - 1024);
            b[off as usize] ^= 1 << (next() % 8);
        }
        if let Ok(w) = try_all(b) {
            mounted += 1;
            with_errors += usize::from(!w.errors.is_empty());
        }
    }
    // most damage is below the superblock: the walks really ran
    assert!(mounted > rounds / 3, "only {mounted} of {rounds} mounted");
    assert!(with_errors > 0);
}

#[test]
fn damaged_file_on_disk_mounts_or_refuses() {
    // the same through a real file: FileBlockIo reads past the end are errors
    let base = base();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&base.img)
        .unwrap();
    f.set_len(100 * BS).unwrap(); // cut the image short
    drop(f);
    let dev = open_dev(&base.img, true);
    assert_eq!(Ext2::mount(dev, false).err(), Some(Errno::EINVAL));
}
