//! Old COW layouts (v1 host order, v2, the broken 64-bit-mtime v3), built
//! byte by byte here, read through `Ubd` and merged both by us and by
//! Debian's `uml_moo` (which knows all three).

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use umlrun::block::cow::confine::BackingPolicy;
use umlrun::block::{merge, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

const SECTORS: u64 = 64;
const SIZE: u64 = SECTORS * 512;
const IN_COW: [u64; 4] = [0, 9, 10, 63];

/// Header bytes and (bitmap_offset, data_offset) for one layout.
fn header(version: &str, path: &Path, mtime: u32) -> (Vec<u8>, u64, u64) {
    let p = path.as_os_str().as_encoded_bytes();
    let mut b;
    match version {
        "v1" => {
            b = vec![0u8; 280];
            b[0..4].copy_from_slice(&0x4F4F4F4Du32.to_le_bytes());
            b[4..8].copy_from_slice(&1u32.to_le_bytes());
            b[8..8 + p.len()].copy_from_slice(p);
            b[264..268].copy_from_slice(&mtime.to_le_bytes());
            b[268..276].copy_from_slice(&SIZE.to_le_bytes());
            b[276..280].copy_from_slice(&512u32.to_le_bytes());
            (b, 280, 512) // bitmap 8 bytes, data rounded to the sector
        }
        "v2" => {
            b = vec![0u8; 4120];
            b[0..4].copy_from_slice(&0x4F4F4F4Du32.to_be_bytes());
            b[4..8].copy_from_slice(&2u32.to_be_bytes());
            b[8..8 + p.len()].copy_from_slice(p);
            b[4104..4108].copy_from_slice(&mtime.to_be_bytes());
            b[4108..4116].copy_from_slice(&SIZE.to_be_bytes());
            b[4116..4120].copy_from_slice(&512u32.to_be_bytes());
            (b, 4120, 4608)
        }
        "v3broken" => {
            b = vec![0u8; 4132];
            b[0..4].copy_from_slice(&0x4F4F4F4Du32.to_be_bytes());
            b[4..8].copy_from_slice(&3u32.to_be_bytes());
            // The old writer stored htonl(mtime) in a 64-bit field.
            b[8..12].copy_from_slice(&mtime.to_be_bytes());
            b[16..24].copy_from_slice(&SIZE.to_be_bytes());
            b[24..28].copy_from_slice(&512u32.to_be_bytes());
            b[28..32].copy_from_slice(&4096u32.to_be_bytes());
            b[36..36 + p.len()].copy_from_slice(p);
            (b, 8192, 12288)
        }
        _ => unreachable!(),
    }
}

fn check(version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let back = dir.path().join("back.img");
    let mut model: Vec<u8> = (0..SIZE).map(|i| (i / 512) as u8).collect();
    std::fs::write(&back, &model).unwrap();
    let mtime = std::fs::metadata(&back).unwrap().mtime() as u32;
    let (hdr, bitmap_offset, data_offset) = header(version, &back, mtime);
    let c = dir.path().join("old.cow");
    let f = std::fs::File::create(&c).unwrap();
    f.write_all_at(&hdr, 0).unwrap();
    let mut bitmap = [0u8; 8];
    for s in IN_COW {
        bitmap[(s / 8) as usize] |= 1 << (s % 8);
        let data = vec![0xc0 | s as u8; 512];
        f.write_all_at(&data, data_offset + s * 512).unwrap();
        model[(s * 512) as usize..(s * 512 + 512) as usize].copy_from_slice(&data);
    }
    f.write_all_at(&bitmap, bitmap_offset).unwrap();
    f.set_len(data_offset + SIZE).unwrap();
    drop(f);

    let spec = UbdSpec {
        index: 0,
        flags: UbdFlags {
            read_only: true,
            ..UbdFlags::default()
        },
        file: c.clone(),
        backing: None,
        mode: UbdMode::Copy,
    };
    let u = Ubd::open(&spec).unwrap();
    let h = u.cow_header().unwrap();
    assert_eq!(
        (h.bitmap_offset, h.data_offset, h.mtime),
        (bitmap_offset, data_offset, mtime)
    );
    assert_eq!(u.cow_sectors(), IN_COW.len() as u64);
    let mut got = vec![0u8; SIZE as usize];
    u.read_at(0, &mut got).unwrap();
    assert!(got == model, "{version}: read back differs");
    drop(u);

    let ours = dir.path().join("ours.img");
    merge::merge_to(&c, None, &ours, BackingPolicy::Beside).unwrap();
    assert!(std::fs::read(&ours).unwrap() == model);
    let theirs = dir.path().join("theirs.img");
    let out = Command::new("/usr/bin/uml_moo")
        .arg(&c)
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&theirs).unwrap() == model,
        "{version}: uml_moo reads it differently"
    );

    let info = Command::new(env!("CARGO_BIN_EXE_umlcow"))
        .arg("info")
        .arg(&c)
        .output()
        .unwrap();
    assert!(info.status.success());
    let text = String::from_utf8(info.stdout).unwrap();
    assert!(text.contains("in COW:         4 of 64 sectors"), "{text}");
    assert!(text.contains("backing check:  ok"), "{text}");
}

#[test]
fn v1_host_order() {
    check("v1");
}

#[test]
fn v2() {
    check("v2");
}

#[test]
fn v3_broken_64bit_mtime() {
    check("v3broken");
}
