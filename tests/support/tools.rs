//! Host tools for integration tests (std only, so both `support` and
//! `support_many` include it): finding e2fsprogs, building ext2 images of
//! guest programs, reading files back with debugfs, merging a COW and
//! checking it with e2fsck, a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A host tool by name, looked for in the sbin directories too (e2fsprogs
/// live there and root's PATH may lack them).
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// `mke2fs -t ext2 -b 4096` of `size` into `img`, filled from `tree`.
pub fn mke2fs(img: &Path, size: &str, tree: Option<&Path>) {
    let mut c = Command::new(tool("mke2fs"));
    c.args(["-q", "-F", "-t", "ext2", "-b", "4096"]);
    if let Some(t) = tree {
        c.arg("-d").arg(t);
    }
    let out = c.arg(img).arg(size).output().unwrap();
    assert!(out.status.success(), "mke2fs: {out:?}");
}

/// `gcc -static` of each tests/guest/<prog>.c into `tree`/<prog>.
pub fn gcc_static(progs: &[&str], tree: &Path) {
    std::fs::create_dir_all(tree).unwrap();
    for prog in progs {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/guest/{prog}.c"));
        let st = Command::new("gcc")
            .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
            .arg(tree.join(prog))
            .arg(&src)
            .status()
            .expect("gcc");
        assert!(st.success(), "gcc failed on {}", src.display());
    }
}

/// An ext2 image `dir`/<name>.img of `size` holding the guest programs
/// `progs` (in `dir`/<name>/, where a caller may have put more files).
pub fn programs_disk(dir: &Path, name: &str, progs: &[&str], size: &str) -> PathBuf {
    let tree = dir.join(name);
    gcc_static(progs, &tree);
    let img = dir.join(format!("{name}.img"));
    mke2fs(&img, size, Some(&tree));
    img
}

/// What `debugfs -R <req>` prints about `img`.
pub fn debugfs(img: &Path, req: &str) -> String {
    let out = Command::new(tool("debugfs"))
        .args(["-R", req])
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `umlcow merge [-b <backing>] <cow> <merged>`, then `e2fsck -fn` on it
/// must pass. `backing`: the image the instance was started with, for a
/// COW that names it in another directory (cow_backing=beside refuses to
/// follow the header there).
pub fn merge_and_fsck(umlcow: &Path, cow: &Path, backing: Option<&Path>, merged: &Path) {
    let mut cmd = Command::new(umlcow);
    cmd.arg("merge");
    if let Some(b) = backing {
        cmd.arg("-b").arg(b);
    }
    let out = cmd.arg(cow).arg(merged).output().unwrap();
    assert!(
        out.status.success(),
        "umlcow merge {}: {}",
        cow.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let fsck = Command::new(tool("e2fsck"))
        .arg("-fn")
        .arg(merged)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck -fn on the merged COW:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The md5 of `data` in hex, by the host's md5sum (what a guest's
/// busybox md5sum prints first).
pub fn md5_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}
