//! Helpers shared by the ext2 integration tests: building images with the
//! host's mke2fs, checking them with e2fsck and debugfs, mounting them.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use umlrun::fs::ext2::Ext2;
use umlrun::fs::{BlockIo, FileBlockIo};

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

/// `mke2fs -q -t ext2 -b bs [-r 0] [extra] -d src img size_kib`.
pub fn mkfs(img: &Path, src: Option<&Path>, bs: u32, rev0: bool, extra: &[&str], size_kib: u64) {
    let mut c = Command::new("mke2fs");
    c.args(["-q", "-F", "-t", "ext2", "-b", &bs.to_string()]);
    if rev0 {
        c.args(["-r", "0"]);
    }
    c.args(extra);
    if let Some(s) = src {
        c.arg("-d").arg(s);
    }
    c.arg(img).arg(format!("{size_kib}k"));
    let out = c.output().expect("run mke2fs");
    assert!(
        out.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `e2fsck -fn`: (exit code, output).
pub fn e2fsck(img: &Path) -> (i32, String) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .expect("run e2fsck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

pub fn assert_fsck_clean(img: &Path) {
    let (code, text) = e2fsck(img);
    assert_eq!(code, 0, "e2fsck -fn reports problems:\n{text}");
}

/// `debugfs -R <cmd> img` stdout.
pub fn debugfs(img: &Path, cmd: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(cmd)
        .arg(img)
        .output()
        .expect("run debugfs");
    out.stdout
}

pub fn open_dev(img: &Path, writable: bool) -> Arc<dyn BlockIo> {
    Arc::new(FileBlockIo::open(img, writable).expect("open image"))
}

pub fn mount(img: &Path, read_only: bool) -> Ext2 {
    Ext2::mount(open_dev(img, !read_only), read_only).expect("mount")
}

/// Resolve a slash-separated path from the root (no symlinks followed).
pub fn resolve(fs: &Ext2, path: &str) -> umlrun::errno::KResult<u32> {
    let mut ino = fs.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs.lookup(ino, part.as_bytes())?;
    }
    Ok(ino)
}

/// Read a whole regular file through Ext2 in odd-sized chunks.
pub fn read_all(fs: &Ext2, ino: u32) -> umlrun::errno::KResult<Vec<u8>> {
    let size = fs.stat(ino)?.size;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 7777];
    loop {
        let n = fs.read(ino, out.len() as u64, &mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        assert!(out.len() as u64 <= size, "read past size");
    }
    Ok(out)
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn image_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Host `st_rdev` in the glibc makedev form, truncated to Linux's 32-bit encoding.
pub fn host_rdev(md: &std::fs::Metadata) -> u64 {
    let r = md.rdev();
    let major = ((r >> 32) & 0xffff_f000) | ((r >> 8) & 0xfff);
    let minor = ((r >> 12) & 0xffff_ff00) | (r & 0xff);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}
