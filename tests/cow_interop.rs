//! Interop with Debian's uml-utilities (`uml_mkcow`, `uml_moo`): our COW
//! files, written through `Ubd`, merge with their tool and vice versa.

use std::path::{Path, PathBuf};
use std::process::Command;

use umlrun::block::cow::confine::BackingPolicy;
use umlrun::block::{cow, merge, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

const MKCOW: &str = "/usr/bin/uml_mkcow";
const MOO: &str = "/usr/bin/uml_moo";

fn need_tools() {
    assert!(
        Path::new(MKCOW).exists() && Path::new(MOO).exists(),
        "uml-utilities missing: apt-get install uml-utilities"
    );
}

fn run(cmd: &str, args: &[&Path]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec(file: &Path) -> UbdSpec {
    UbdSpec {
        index: 0,
        flags: UbdFlags::default(),
        file: file.to_path_buf(),
        backing: None,
        mode: UbdMode::Copy,
    }
}

/// A backing image of pseudo-random bytes whose size is not a multiple of 4096.
fn backing(dir: &Path, name: &str, size: usize) -> (PathBuf, Vec<u8>) {
    let mut x: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

/// Writes a fixed pattern of aligned, unaligned and boundary writes.
/// `model` is cut to the disk size: whole sectors, as UML and uml_moo see it.
fn scribble(u: &Ubd, model: &mut Vec<u8>) {
    model.truncate(u.size() as usize);
    let size = model.len() as u64;
    let writes: Vec<(u64, usize, u8)> = vec![
        (0, 512, 0xa1),
        (4096, 4096, 0xb2),
        (700, 3, 0xc3),
        (10_000, 20_000, 0xd4),
        (size - 17, 17, 0xe5),
        (123_457, 1, 0xf6),
    ];
    for (off, len, byte) in writes {
        let data = vec![byte; len];
        u.write_at(off, &data).unwrap();
        model[off as usize..off as usize + len].copy_from_slice(&data);
    }
}

#[test]
fn our_cow_written_by_ubd_merges_with_uml_moo() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    let (back, mut model) = backing(dir.path(), "back.img", 300_001);
    let c = dir.path().join("ours.cow");
    cow::create(&c, &back).unwrap();
    {
        let u = Ubd::open(&spec(&c)).unwrap();
        scribble(&u, &mut model);
        u.flush().unwrap();
    }
    let moo_out = dir.path().join("moo.img");
    run(MOO, &[&c, &moo_out]);
    assert!(
        std::fs::read(&moo_out).unwrap() == model,
        "uml_moo merge differs from what we wrote"
    );

    // Our merge gives the same bytes as uml_moo's.
    let our_out = dir.path().join("our.img");
    merge::merge_to(&c, None, &our_out, BackingPolicy::Beside).unwrap();
    let st = Command::new("cmp")
        .arg(&moo_out)
        .arg(&our_out)
        .status()
        .unwrap();
    assert!(st.success(), "our merge differs from uml_moo's");
}

#[test]
fn uml_mkcow_file_opens_reads_and_merges() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    let (back, mut model) = backing(dir.path(), "back.img", 70_000);
    let c = dir.path().join("theirs.cow");
    run(MKCOW, &[&c, &back]);

    let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("info")
        .arg(&c)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("version:        3"), "{text}");
    assert!(
        text.contains(&format!("backing file:   {}", back.display())),
        "{text}"
    );
    assert!(
        text.contains("size:           70000 bytes (137 sectors)"),
        "{text}"
    );
    assert!(text.contains("alignment:      4096"), "{text}");
    assert!(text.contains("bitmap offset:  8192"), "{text}");
    assert!(text.contains("data offset:    12288"), "{text}");
    assert!(text.contains("in COW:         0 of 137 sectors"), "{text}");
    assert!(text.contains("backing check:  ok"), "{text}");

    let u = Ubd::open(&spec(&c)).unwrap();
    assert_eq!(
        u.size(),
        136 * 512,
        "a partial last sector is not part of the disk"
    );
    model.truncate(136 * 512);
    let mut got = vec![0u8; 136 * 512];
    u.read_at(0, &mut got).unwrap();
    assert!(got == model);
    u.write_at(5000, &[0x55; 1000]).unwrap();
    model[5000..6000].fill(0x55);
    drop(u);

    let moo_out = dir.path().join("moo.img");
    run(MOO, &[&c, &moo_out]);
    assert!(std::fs::read(&moo_out).unwrap() == model);
}

#[test]
fn header_bytes_equal_uml_mkcow() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    for size in [0usize, 1, 511, 4096, 1_000_000, 3 * 1024 * 1024 + 5] {
        let (back, _) = backing(dir.path(), &format!("b{size}.img"), size);
        let theirs = dir.path().join(format!("t{size}.cow"));
        let ours = dir.path().join(format!("o{size}.cow"));
        run(MKCOW, &[&theirs, &back]);
        cow::create(&ours, &back).unwrap();
        let (t, o) = (
            std::fs::read(&theirs).unwrap(),
            std::fs::read(&ours).unwrap(),
        );
        assert_eq!(t.len(), o.len(), "file length for backing of {size} bytes");
        assert!(t == o, "COW bytes differ for backing of {size} bytes");
    }
}

#[test]
fn in_place_merge_equals_uml_moo_d() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for who in ["moo", "ours"] {
        let sub = dir.path().join(who);
        std::fs::create_dir(&sub).unwrap();
        let (back, mut model) = backing(&sub, "back.img", 200_000);
        let c = sub.join("d.cow");
        cow::create(&c, &back).unwrap();
        {
            let u = Ubd::open(&spec(&c)).unwrap();
            scribble(&u, &mut model);
        }
        if who == "moo" {
            let out = Command::new(MOO).arg("-d").arg(&c).output().unwrap();
            assert!(out.status.success());
        } else {
            let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
                .arg("merge")
                .arg(&c)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let merged = std::fs::read(&back).unwrap();
        assert_eq!(
            merged.len(),
            200_000,
            "in place keeps the partial tail sector"
        );
        assert!(
            merged[..model.len()] == model[..],
            "{who}: in-place merge differs from what we wrote"
        );
        results.push(merged);
    }
    assert!(results[0] == results[1]);
}

#[test]
fn umlcow_merge_to_file_via_cli_equals_uml_moo() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    let (back, mut model) = backing(dir.path(), "back.img", 123_456 + 4096);
    let c = dir.path().join("c.cow");
    let st = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("create")
        .arg(&c)
        .arg(&back)
        .status()
        .unwrap();
    assert!(st.success());
    {
        let u = Ubd::open(&spec(&c)).unwrap();
        scribble(&u, &mut model);
    }
    let ours = dir.path().join("ours.img");
    let out = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("merge")
        .arg(&c)
        .arg(&ours)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = dir.path().join("theirs.img");
    run(MOO, &[&c, &theirs]);
    assert!(std::fs::read(&ours).unwrap() == model);
    assert!(Command::new("cmp")
        .arg(&ours)
        .arg(&theirs)
        .status()
        .unwrap()
        .success());
}
