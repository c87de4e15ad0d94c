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
