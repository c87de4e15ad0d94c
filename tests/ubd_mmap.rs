//! ubd mmap mode: which pages map straight from a file, and copy-up.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use umlrun::block::{cow, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

fn spec(file: &Path, mode: UbdMode, flags: UbdFlags) -> UbdSpec {
    UbdSpec {
        index: 0,
        flags,
        file: file.to_path_buf(),
        backing: None,
        mode,
    }
}

/// 16 pages of backing, page p filled with byte p+1, and a COW over it.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let back = dir.join("back.img");
    let data: Vec<u8> = (0..16u8).flat_map(|p| vec![p + 1; 4096]).collect();
    std::fs::write(&back, data).unwrap();
    let c = dir.join("d.cow");
    cow::create(&c, &back).unwrap();
    (back, c)
}

fn page_at(m: &umlrun::block::PageMapping) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    m.file.read_exact_at(&mut b, m.offset).unwrap();
    b
}

fn same_file(a: &std::fs::File, p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (x, y) = (a.metadata().unwrap(), std::fs::metadata(p).unwrap());
    (x.dev(), x.ino()) == (y.dev(), y.ino())
}

#[test]
fn untouched_pages_map_the_backing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = setup(dir.path());
    let u = Ubd::open(&spec(&c, UbdMode::Mmap, UbdFlags::default())).unwrap();
    for page in [0u64, 5, 15] {
        let m = u.page_mapping(page).unwrap();
        assert!(same_file(&m.file, &back));
        assert_eq!(m.offset, page * 4096);
        assert!(!m.writable);
        assert_eq!(page_at(&m), vec![page as u8 + 1; 4096]);
    }
    assert!(u.page_mapping(16).is_none(), "past the end");
    let copy = Ubd::open(&spec(
        &c,
        UbdMode::Copy,
        UbdFlags {
            shared: true,
            ..UbdFlags::default()
        },
    ))
    .unwrap();
    assert!(copy.page_mapping(0).is_none(), "copy mode never maps");
}

#[test]
fn written_page_maps_the_cow_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_back, c) = setup(dir.path());
    let u = Ubd::open(&spec(&c, UbdMode::Mmap, UbdFlags::default())).unwrap();
    let data_offset = u.cow_header().unwrap().data_offset;
    assert_eq!(data_offset % 4096, 0);
    u.write_at(3 * 4096, &[0xee; 4096]).unwrap();
    let m = u.page_mapping(3).unwrap();
    assert!(same_file(&m.file, &c));
    assert_eq!(m.offset, data_offset + 3 * 4096);
    assert!(m.writable);
    assert_eq!(page_at(&m), vec![0xee; 4096]);
}

#[test]
fn partly_written_page_falls_back_until_copied_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_back, c) = setup(dir.path());
    let u = Ubd::open(&spec(&c, UbdMode::Mmap, UbdFlags::default())).unwrap();
    u.write_at(7 * 4096 + 1024, &[0xaa; 512]).unwrap(); // one sector of page 7
    assert!(u.page_mapping(7).is_none(), "mixed page must be copied");
    let m = u.prepare_write(7).unwrap().expect("copied-up page maps");
    assert!(same_file(&m.file, &c));
    assert!(m.writable);
    let mut want = vec![8u8; 4096];
    want[1024..1536].fill(0xaa);
    assert_eq!(
        page_at(&m),
        want,
        "copy-up keeps old data and the sector written"
    );
    assert_eq!(u.page_mapping(7).unwrap().offset, m.offset);
    // A write through the mapping is what the device reads back.
    m.file.write_all_at(&[0x11; 8], m.offset + 100).unwrap();
    let mut b = [0u8; 8];
    u.read_at(7 * 4096 + 100, &mut b).unwrap();
    assert_eq!(b, [0x11; 8]);
}

#[test]
fn prepare_write_on_backing_page_preserves_data() {
    let dir = tempfile::tempdir().unwrap();
    let (back, c) = setup(dir.path());
    let before = std::fs::read(&back).unwrap();
    {
        let u = Ubd::open(&spec(&c, UbdMode::Mmap, UbdFlags::default())).unwrap();
        assert!(!u.page_mapping(9).unwrap().writable);
        let m = u.prepare_write(9).unwrap().unwrap();
        assert!(m.writable && same_file(&m.file, &c));
        assert_eq!(page_at(&m), vec![10u8; 4096]);
        assert_eq!(u.cow_sectors(), 8);
        // Idempotent: a second call copies nothing and maps the same page.
        assert_eq!(u.prepare_write(9).unwrap().unwrap().offset, m.offset);
    }
    assert_eq!(
        std::fs::read(&back).unwrap(),
        before,
        "backing file untouched"
    );
    // The copy-up is on disk: a fresh open sees the page in the COW file.
    let u = Ubd::open(&spec(&c, UbdMode::Mmap, UbdFlags::default())).unwrap();
    assert!(same_file(&u.page_mapping(9).unwrap().file, &c));
}

#[test]
fn read_only_cow_pages_are_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let (_back, c) = setup(dir.path());
    {
        let u = Ubd::open(&spec(&c, UbdMode::Mmap, UbdFlags::default())).unwrap();
        u.write_at(0, &[1; 4096]).unwrap();
    }
    let ro = UbdFlags {
        read_only: true,
        ..UbdFlags::default()
    };
    let u = Ubd::open(&spec(&c, UbdMode::Mmap, ro)).unwrap();
    let m = u.page_mapping(0).unwrap();
    assert!(same_file(&m.file, &c) && !m.writable);
}

#[test]
fn raw_image_pages_map_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.img");
    std::fs::write(&raw, vec![9u8; 3 * 4096 + 512]).unwrap();
    let u = Ubd::open(&spec(&raw, UbdMode::Mmap, UbdFlags::default())).unwrap();
    let m = u.page_mapping(2).unwrap();
    assert_eq!((m.offset, m.writable), (8192, true));
    assert!(u.page_mapping(3).is_none(), "partial last page is copied");
    assert!(u.prepare_write(3).unwrap().is_none());
}
