//! Random writes through `Ubd` against an in-memory disk: reads, a reopen
//! and the merged image must all equal the model.

use std::path::Path;

use proptest::prelude::*;
use umlrun::block::cow::confine::BackingPolicy;
use umlrun::block::{cow, merge, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

const SIZE: usize = 37 * 512; // not a whole number of pages

#[derive(Debug, Clone)]
enum Op {
    Write { offset: usize, len: usize, byte: u8 },
    CopyUp { page: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SIZE, 1..1600usize, any::<u8>()).prop_map(|(offset, len, byte)| Op::Write {
            offset,
            len: len.min(SIZE - offset),
            byte
        }),
        1 => (0..5u64).prop_map(|page| Op::CopyUp { page }),
    ]
}

fn spec(file: &Path, mode: UbdMode) -> UbdSpec {
    UbdSpec {
        index: 0,
        flags: UbdFlags::default(),
        file: file.to_path_buf(),
        backing: None,
        mode,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writes_match_model(ops in proptest::collection::vec(op(), 1..40), mmap in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("back.img");
        let mut model: Vec<u8> = (0..SIZE).map(|i| (i % 253) as u8).collect();
        std::fs::write(&back, &model).unwrap();
        let c = dir.path().join("d.cow");
        cow::create(&c, &back).unwrap();
        let mode = if mmap { UbdMode::Mmap } else { UbdMode::Copy };
        {
            let u = Ubd::open(&spec(&c, mode)).unwrap();
            for op in &ops {
                match *op {
                    Op::Write { offset, len, byte } => {
                        let data: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
                        u.write_at(offset as u64, &data).unwrap();
                        model[offset..offset + len].copy_from_slice(&data);
                    }
                    Op::CopyUp { page } => {
                        // Copy-up never changes what the disk reads.
                        u.prepare_write(page).unwrap();
                    }
                }
                // A page that maps must hold exactly the disk's bytes.
                for page in 0..(SIZE as u64 / 4096) {
                    if let Some(m) = u.page_mapping(page) {
                        use std::os::unix::fs::FileExt;
                        let mut b = vec![0u8; 4096];
                        m.file.read_exact_at(&mut b, m.offset).unwrap();
                        let p = page as usize * 4096;
                        prop_assert!(b[..] == model[p..p + 4096]);
                    }
                }
            }
            let mut got = vec![0u8; SIZE];
            u.read_at(0, &mut got).unwrap();
            prop_assert!(got == model);
        }
        prop_assert!(std::fs::read(&back).unwrap() == (0..SIZE).map(|i| (i % 253) as u8).collect::<Vec<_>>());
        let u = Ubd::open(&spec(&c, UbdMode::Copy)).unwrap();
        let mut got = vec![0u8; SIZE];
        u.read_at(0, &mut got).unwrap();
        prop_assert!(got == model, "after reopen");
        drop(u);
        let out = dir.path().join("merged.img");
        merge::merge_to(&c, None, &out, BackingPolicy::Beside).unwrap();
        prop_assert!(std::fs::read(&out).unwrap() == model, "merged image");
    }
}
