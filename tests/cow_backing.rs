//! `cow_backing=`: which backing file a COW header may make umlrun open
//! (issue 10). Drives the real binary over zero-filled disks: a disk that
//! opened gets as far as the root mount ("not an ext2 file system"), a
//! refused one stops at a one-line error about the disk. A forged header
//! naming a file elsewhere is refused by default, and the refusal says
//! nothing about that file (its size and mtime stay unknown).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use umlrun::block::cow;

/// What umlrun says when the disk opened but holds no file system.
const OPENED: &str = "not an ext2 file system";

struct Run {
    code: Option<i32>,
    lines: Vec<String>,
}

fn umlrun(args: &[String]) -> Run {
    let uml = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_umlrun"))
        .args(args)
        .arg(format!("uml_dir={}", uml.path().display()))
        .arg("mem=64M")
        .arg("con0=fd:0,fd:1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run umlrun");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("panicked"),
        "umlrun {args:?} panicked:\n{err}"
    );
    Run {
        code: o.status.code(),
        lines: err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    }
}

fn opened(args: &[String]) {
    let r = umlrun(args);
    assert!(
        r.lines.last().is_some_and(|l| l.contains(OPENED)),
        "umlrun {args:?}: the disk should have opened: {:?}",
        r.lines
    );
}

/// Refused at the disk with one line naming the policy; returns it.
fn refused(args: &[String], policy: &str) -> String {
    let r = umlrun(args);
    assert_ne!(r.code, Some(0), "{args:?}");
    assert_eq!(r.lines.len(), 1, "umlrun {args:?}: one line: {:?}", r.lines);
    let l = r.lines[0].clone();
    assert!(
        l.contains(&format!("cow_backing={policy}")) && l.contains("ubd0=") && !l.contains(OPENED),
        "umlrun {args:?}: {l}"
    );
    l
}

fn image(path: &Path, len: usize) -> PathBuf {
    fs::write(path, vec![0u8; len]).unwrap();
    path.to_path_buf()
}

/// Rewrites the backing path of a v3 COW header (offset 32, 1024 bytes in
/// UML's v3 layout are enough for ours) as a hostile file would.
fn forge_backing(cow_path: &Path, backing: &Path) {
    let mut bytes = fs::read(cow_path).unwrap();
    let name = backing.as_os_str().as_encoded_bytes();
    bytes[32..32 + 1024].fill(0);
    bytes[32..32 + name.len()].copy_from_slice(name);
    fs::write(cow_path, bytes).unwrap();
}

fn ubd0(cow: &Path, backing: Option<&Path>) -> String {
    match backing {
        Some(b) => format!("ubd0={},{}", cow.display(), b.display()),
        None => format!("ubd0={}", cow.display()),
    }
}

#[test]
fn a_backing_file_beside_the_cow_opens_by_default() {
    let d = tempfile::tempdir().unwrap();
    let base = image(&d.path().join("base.img"), 1 << 20);
    let c = d.path().join("a.cow");
    cow::create(&c, &base).unwrap();
    opened(&[ubd0(&c, None)]);
    // Named on the command line as well: the same.
    opened(&[ubd0(&c, Some(&base))]);
}

#[test]
fn a_header_naming_a_file_elsewhere_is_refused_and_reveals_nothing() {
    let d = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let base = image(&d.path().join("base.img"), 1 << 20);
    let c = d.path().join("a.cow");
    cow::create(&c, &base).unwrap();
    // "Another tenant's image": 3 MiB, not what the header records.
    let secret = image(&other.path().join("secret.img"), 3 << 20);
    forge_backing(&c, &secret);
    let line = refused(&[ubd0(&c, None)], "beside");
    assert!(
        !line.contains("3145728") && !line.contains("mismatch"),
        "the refusal describes the file: {line}"
    );
    // The same with `..` through the COW's own directory.
    fs::create_dir(d.path().join("sub")).unwrap();
    let dotdot = d
        .path()
        .join("sub/../..")
        .join(other.path().file_name().unwrap())
        .join("secret.img");
    forge_backing(&c, &dotdot);
    refused(&[ubd0(&c, None)], "beside");
    // A file that does not exist gives the same answer as one that does.
    forge_backing(&c, &other.path().join("missing.img"));
    refused(&[ubd0(&c, None)], "beside");
    // cow_backing=any opens what the header names, as UML does: here the
    // size check then refuses it (and only now says its size).
    forge_backing(&c, &secret);
    let r = umlrun(&[ubd0(&c, None), "cow_backing=any".into()]);
    assert!(
        r.lines.len() == 1 && r.lines[0].contains("3145728"),
        "{:?}",
        r.lines
    );
}

#[test]
fn a_backing_file_named_on_the_command_line_always_opens() {
    let d = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let base = image(&other.path().join("base.img"), 1 << 20);
    let c = d.path().join("a.cow");
    cow::create(&c, &base).unwrap();
    refused(&[ubd0(&c, None)], "beside");
    opened(&[ubd0(&c, Some(&base))]);
    opened(&[ubd0(&c, None), "cow_backing=any".into()]);
    // named: only the command line's.
    refused(&[ubd0(&c, None), "cow_backing=named".into()], "named");
    opened(&[ubd0(&c, Some(&base)), "cow_backing=named".into()]);
    let beside = image(&d.path().join("b.img"), 1 << 20);
    let c2 = d.path().join("b.cow");
    cow::create(&c2, &beside).unwrap();
    refused(&[ubd0(&c2, None), "cow_backing=named".into()], "named");
}

#[test]
fn an_unknown_policy_is_a_one_line_error() {
    let d = tempfile::tempdir().unwrap();
    let img = image(&d.path().join("x.img"), 1 << 20);
    let r = umlrun(&[format!("ubd0={}", img.display()), "cow_backing=some".into()]);
    assert_eq!(r.code, Some(2), "{:?}", r.lines);
    assert!(
        r.lines.len() == 1 && r.lines[0].contains("cow_backing=some"),
        "{:?}",
        r.lines
    );
}

// --- umlcow merge follows the same rule ----------------------------------

struct Cow {
    code: Option<i32>,
    out: String,
    lines: Vec<String>,
}

fn umlcow(args: &[&str]) -> Cow {
    let o = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .args(args)
        .output()
        .expect("run umlcow");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("panicked"),
        "umlcow {args:?} panicked:\n{err}"
    );
    Cow {
        code: o.status.code(),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        lines: err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    }
}

/// A COW file made over `victim` (another directory's image: the header
/// names it with its true size and mtime, as a hostile one would) that
/// holds sectors of 0xee in its first 8 KiB.
fn hostile_cow(dir: &Path, victim: &Path) -> PathBuf {
    use umlrun::config::{UbdFlags, UbdMode, UbdSpec};
    let c = dir.join("hostile.cow");
    cow::create(&c, victim).unwrap();
    let u = umlrun::block::Ubd::open(&UbdSpec {
        index: 0,
        flags: UbdFlags::default(),
        file: c.clone(),
        backing: Some(victim.to_path_buf()),
        mode: UbdMode::Copy,
    })
    .unwrap();
    u.write_at(0, &[0xee; 8192]).unwrap();
    drop(u);
    c
}

fn merge_refused(args: &[&str], policy: &str) {
    let r = umlcow(args);
    assert_eq!(r.code, Some(3), "umlcow {args:?}: {:?}", r.lines);
    assert_eq!(r.lines.len(), 1, "umlcow {args:?}: one line: {:?}", r.lines);
    assert!(
        r.lines[0].contains(&format!("cow_backing={policy}")) && r.lines[0].contains("-b "),
        "umlcow {args:?}: {}",
        r.lines[0]
    );
}

/// `umlcow merge` of a COW whose header names a file elsewhere writes
/// nothing there (in place) and reads nothing from it (to a new image),
/// by default and with cow_backing=named; with `-b` naming it, or
/// cow_backing=any, it does what uml_moo does.
#[test]
fn umlcow_merge_of_a_hostile_cow_touches_no_file_elsewhere() {
    let d = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let victim = other.path().join("tenant.img");
    fs::write(&victim, vec![0x11u8; 1 << 20]).unwrap();
    let c = hostile_cow(d.path(), &victim);
    let cs = c.to_str().unwrap();
    let before = (
        fs::read(&victim).unwrap(),
        fs::metadata(&victim).unwrap().modified().unwrap(),
    );
    let out = d.path().join("merged.img");
    let outs = out.to_str().unwrap();
    merge_refused(&["merge", cs], "beside");
    merge_refused(&["merge", cs, outs], "beside");
    merge_refused(&["merge", "cow_backing=named", cs], "named");
    merge_refused(&["merge", "cow_backing=named", cs, outs], "named");
    assert!(!out.exists(), "a refused merge made {}", out.display());
    let after = (
        fs::read(&victim).unwrap(),
        fs::metadata(&victim).unwrap().modified().unwrap(),
    );
    assert!(before == after, "the file elsewhere changed");
    // Named by the caller: used, into a new image (the victim is read).
    let vs = victim.to_str().unwrap();
    let r = umlcow(&["merge", "-b", vs, cs, outs]);
    assert_eq!(r.code, Some(0), "{:?}", r.lines);
    let merged = fs::read(&out).unwrap();
    assert!(merged[..8192].iter().all(|&b| b == 0xee) && merged[8192..].iter().all(|&b| b == 0x11));
    fs::remove_file(&out).unwrap();
    // cow_backing=any is uml_moo's trust: in place, it writes the victim
    // (what the default prevents).
    let r = umlcow(&["merge", "cow_backing=any", cs]);
    assert_eq!(r.code, Some(0), "{:?}", r.lines);
    assert!(r.out.contains(vs), "{}", r.out);
    let v = fs::read(&victim).unwrap();
    assert!(
        v[..8192].iter().all(|&b| b == 0xee),
        "cow_backing=any did not merge"
    );
}

/// A COW beside its backing file merges by default, in place and to a new
/// image; cow_backing=named wants `-b`; a bad policy is a usage error.
#[test]
fn umlcow_merge_of_a_cow_beside_its_backing_works_by_default() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("base.img");
    fs::write(&base, vec![0x22u8; 1 << 20]).unwrap();
    let c = hostile_cow(d.path(), &base);
    let (cs, bs) = (c.to_str().unwrap(), base.to_str().unwrap());
    let out = d.path().join("out.img");
    let r = umlcow(&["merge", cs, out.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{:?}", r.lines);
    assert_eq!(fs::read(&out).unwrap()[..8192], [0xee; 8192]);
    merge_refused(&["merge", "cow_backing=named", cs], "named");
    let r = umlcow(&["merge", "cow_backing=named", "-b", bs, cs]);
    assert_eq!(r.code, Some(0), "{:?}", r.lines);
    assert_eq!(fs::read(&base).unwrap()[..8192], [0xee; 8192]);
    let r = umlcow(&["merge", "cow_backing=some", cs]);
    assert_eq!(r.code, Some(2), "{:?}", r.lines);
    assert!(
        r.lines.len() == 1 && r.lines[0].contains("cow_backing=some"),
        "{:?}",
        r.lines
    );
}

/// `umlcow info` does not describe a file elsewhere that the header names
/// (its size and mtime checks would answer for any file).
#[test]
fn umlcow_info_checks_only_a_backing_file_beside() {
    let d = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let victim = image(&other.path().join("tenant.img"), 1 << 20);
    let c = d.path().join("a.cow");
    cow::create(&c, &victim).unwrap();
    fs::write(&victim, vec![1u8; 3 << 20]).unwrap();
    let r = umlcow(&["info", c.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{:?}", r.lines);
    assert!(
        r.out.contains("backing check:  not done") && !r.out.contains("3145728"),
        "{}",
        r.out
    );
}
