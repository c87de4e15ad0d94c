//! Random create/write/truncate/rename/link/unlink sequences against ext2
//! and an in-memory model; afterwards contents and names must agree and
//! `e2fsck -fn` must be clean.

mod ext2_common;

use ext2_common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use umlrun::errno::Errno;
use umlrun::fs::ext2::Ext2;

const S_IFREG: u32 = 0o100000;
const NAMES: usize = 6;

#[derive(Clone, Debug)]
enum Op {
    Create(usize, usize),
    Write(usize, usize, u64, usize, u64),
    Truncate(usize, usize, u64),
    Rename(usize, usize, usize, usize),
    Link(usize, usize, usize, usize),
    Unlink(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..2usize;
    let n = 0..NAMES;
    prop_oneof![
        (d.clone(), n.clone()).prop_map(|(d, n)| Op::Create(d, n)),
        // offsets reach the double indirect range of a 1 KiB-block fs
        (
            d.clone(),
            n.clone(),
            prop_oneof![0..5000u64, 0..400_000u64],
            1..5000usize,
            any::<u64>()
        )
            .prop_map(|(d, n, o, l, s)| Op::Write(d, n, o, l, s)),
        (d.clone(), n.clone(), prop_oneof![0..3000u64, 0..300_000u64])
            .prop_map(|(d, n, s)| Op::Truncate(d, n, s)),
        (d.clone(), n.clone(), d.clone(), n.clone())
            .prop_map(|(a, b, c, e)| Op::Rename(a, b, c, e)),
        (d.clone(), n.clone(), d.clone(), n.clone()).prop_map(|(a, b, c, e)| Op::Link(a, b, c, e)),
        (d, n).prop_map(|(d, n)| Op::Unlink(d, n)),
    ]
}

#[derive(Default)]
struct Model {
    names: BTreeMap<(usize, usize), u32>,
    data: BTreeMap<u32, Vec<u8>>,
    next: u32,
}

fn name(n: usize) -> Vec<u8> {
    format!("file{n}").into_bytes()
}

fn apply(fs: &Ext2, dirs: [u32; 2], m: &mut Model, op: &Op) {
    match *op {
        Op::Create(d, n) => {
            let r = fs.create(dirs[d], &name(n), S_IFREG | 0o644, 0, 0, 0);
            if m.names.contains_key(&(d, n)) {
                assert_eq!(r, Err(Errno::EEXIST));
            } else {
                r.unwrap();
                m.next += 1;
                m.names.insert((d, n), m.next);
                m.data.insert(m.next, Vec::new());
            }
        }
        Op::Write(d, n, off, len, seed) => {
            let Some(&id) = m.names.get(&(d, n)) else {
                return;
            };
            let ino = fs.lookup(dirs[d], &name(n)).unwrap();
            let buf = pattern(seed, len);
            assert_eq!(fs.write(ino, off, &buf).unwrap(), len);
            let v = m.data.get_mut(&id).unwrap();
            let end = off as usize + len;
            if v.len() < end {
                v.resize(end, 0);
            }
            v[off as usize..end].copy_from_slice(&buf);
        }
        Op::Truncate(d, n, size) => {
            let Some(&id) = m.names.get(&(d, n)) else {
                return;
            };
            let ino = fs.lookup(dirs[d], &name(n)).unwrap();
            fs.truncate(ino, size).unwrap();
            m.data.get_mut(&id).unwrap().resize(size as usize, 0);
        }
        Op::Rename(sd, sn, dd, dn) => {
            let r = fs.rename(dirs[sd], &name(sn), dirs[dd], &name(dn));
            let Some(&id) = m.names.get(&(sd, sn)) else {
                assert_eq!(r, Err(Errno::ENOENT));
                return;
            };
            r.unwrap();
            if m.names.get(&(dd, dn)) == Some(&id) {
                return; // same inode: a no-op, both names stay
            }
            m.names.remove(&(sd, sn));
            if let Some(old) = m.names.insert((dd, dn), id) {
                drop_if_unlinked(m, old);
            }
        }
        Op::Link(sd, sn, dd, dn) => {
            let Some(&id) = m.names.get(&(sd, sn)) else {
                return;
            };
            let ino = fs.lookup(dirs[sd], &name(sn)).unwrap();
            let r = fs.link(ino, dirs[dd], &name(dn));
            match m.names.entry((dd, dn)) {
                std::collections::btree_map::Entry::Occupied(_) => {
                    assert_eq!(r, Err(Errno::EEXIST))
                }
                std::collections::btree_map::Entry::Vacant(v) => {
                    r.unwrap();
                    v.insert(id);
                }
            }
        }
        Op::Unlink(d, n) => {
            let r = fs.unlink(dirs[d], &name(n));
            match m.names.remove(&(d, n)) {
                None => assert_eq!(r, Err(Errno::ENOENT)),
                Some(id) => {
                    r.unwrap();
                    drop_if_unlinked(m, id);
                }
            }
        }
    }
}

fn drop_if_unlinked(m: &mut Model, id: u32) {
    if !m.names.values().any(|&v| v == id) {
        m.data.remove(&id);
    }
}

fn check(fs: &Ext2, dirs: [u32; 2], m: &Model) {
    for (d, &dir) in dirs.iter().enumerate() {
        let got: BTreeSet<Vec<u8>> = fs
            .readdir(dir)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n != b"." && n != b".." && n != b"sub" && n != b"lost+found")
            .collect();
        let want: BTreeSet<Vec<u8>> = m
            .names
            .keys()
            .filter(|k| k.0 == d)
            .map(|k| name(k.1))
            .collect();
        assert_eq!(got, want);
    }
    for (&(d, n), id) in &m.names {
        let ino = fs.lookup(dirs[d], &name(n)).unwrap();
        let links = m.names.values().filter(|v| *v == id).count() as u32;
        assert_eq!(fs.stat(ino).unwrap().nlink, links);
        assert!(
            read_all(fs, ino).unwrap() == m.data[id],
            "contents of {d}/{n}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_match_model(ops in proptest::collection::vec(op(), 1..60)) {
        let t = tempdir();
        let img = image_path(&t, "img");
        mkfs(&img, None, 1024, false, &[], 4096);
        let mut m = Model::default();
        {
            let fs = mount(&img, false);
            let sub = fs.mkdir(fs.root(), b"sub", 0o755, 0, 0).unwrap();
            let dirs = [fs.root(), sub];
            for o in &ops {
                apply(&fs, dirs, &mut m, o);
            }
            check(&fs, dirs, &m);
            fs.unmount().unwrap();
        }
        assert_fsck_clean(&img);
        let fs = mount(&img, true);
        let dirs = [fs.root(), resolve(&fs, "sub").unwrap()];
        check(&fs, dirs, &m);
    }
}
