//! tmpfs unit tests and a model-based proptest.

use std::cell::Cell;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::*;

fn fs_with(store: Rc<VecPageStore>, opts: TmpfsOptions) -> Tmpfs {
    let t = Rc::new(Cell::new(0i64));
    let clock: Clock = Rc::new(move || {
        t.set(t.get() + 1);
        Timespec {
            sec: t.get(),
            nsec: 0,
        }
    });
    Tmpfs::new(store, clock, opts)
}

fn fs() -> (Tmpfs, Rc<VecPageStore>) {
    let s = Rc::new(VecPageStore::new());
    (fs_with(s.clone(), TmpfsOptions::default()), s)
}

fn names(fs: &Tmpfs, dir: Ino) -> Vec<Vec<u8>> {
    fs.readdir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

#[test]
fn create_write_read_stat() {
    let (fs, s) = fs();
    let r = fs.root();
    let f = fs.create(r, b"f", S_IFREG | 0o640, 5, 6, 0).unwrap();
    assert_eq!(
        fs.create(r, b"f", S_IFREG | 0o640, 0, 0, 0),
        Err(Errno::EEXIST)
    );
    assert_eq!(fs.write(f, 0, b"hello"), Ok(5));
    let mut b = [0u8; 10];
    assert_eq!(fs.read(f, 0, &mut b), Ok(5));
    assert_eq!(&b[..5], b"hello");
    assert_eq!(fs.read(f, 5, &mut b), Ok(0));
    let st = fs.stat(f).unwrap();
    assert_eq!(
        (st.mode, st.uid, st.gid, st.size, st.nlink, st.blocks),
        (S_IFREG | 0o640, 5, 6, 5, 1, 8)
    );
    assert_eq!(s.live(), 1);
    assert_eq!(fs.lookup(r, b"f"), Ok(f));
    assert_eq!(fs.lookup(r, b"g"), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(f, b"x"), Err(Errno::ENOTDIR));
    assert_eq!(
        names(&fs, r),
        vec![b".".to_vec(), b"..".to_vec(), b"f".to_vec()]
    );
    let root = fs.stat(r).unwrap();
    assert_eq!(root.mode, S_IFDIR | 0o1777);
}

#[test]
fn sparse_files_and_truncate_free_pages() {
    let (fs, s) = fs();
    let f = fs.create(fs.root(), b"sparse", 0o644, 0, 0, 0).unwrap();
    fs.write(f, 10 * 4096, b"end").unwrap();
    assert_eq!(s.live(), 1);
    assert_eq!(fs.stat(f).unwrap().size, 10 * 4096 + 3);
    assert_eq!(fs.stat(f).unwrap().blocks, 8);
    let mut b = vec![7u8; 4096];
    assert_eq!(fs.read(f, 4096, &mut b), Ok(4096));
    assert!(b.iter().all(|&x| x == 0));
    fs.write(f, 0, &[1u8; 8192]).unwrap();
    assert_eq!(s.live(), 3);
    fs.truncate(f, 100).unwrap();
    assert_eq!(s.live(), 1);
    assert_eq!(fs.pages_used(), 1);
    fs.truncate(f, 8192).unwrap();
    let mut b = vec![7u8; 200];
    fs.read(f, 0, &mut b).unwrap();
    assert!(b[..100].iter().all(|&x| x == 1) && b[100..].iter().all(|&x| x == 0));
    fs.unlink(fs.root(), b"sparse").unwrap();
    assert_eq!(s.live(), 0);
    assert_eq!(fs.stat(f), Err(Errno::ENOENT));
}

#[test]
fn dirs_and_link_counts() {
    let (fs, _) = fs();
    let r = fs.root();
    let a = fs.mkdir(r, b"a", 0o755, 0, 0).unwrap();
    let b = fs.mkdir(a, b"b", 0o755, 0, 0).unwrap();
    assert_eq!(fs.stat(r).unwrap().nlink, 3);
    assert_eq!(fs.stat(a).unwrap().nlink, 3);
    assert_eq!(fs.stat(b).unwrap().nlink, 2);
    assert_eq!(fs.lookup(b, b".."), Ok(a));
    assert_eq!(fs.lookup(b, b"."), Ok(b));
    assert_eq!(fs.lookup(r, b".."), Ok(r));
    assert_eq!(fs.rmdir(r, b"a"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.unlink(r, b"a"), Err(Errno::EISDIR));
    assert_eq!(fs.rmdir(a, b"."), Err(Errno::EINVAL));
    fs.create(a, b"f", 0o644, 0, 0, 0).unwrap();
    assert_eq!(fs.rmdir(a, b"f"), Err(Errno::ENOTDIR));
    fs.unlink(a, b"f").unwrap();
    fs.rmdir(a, b"b").unwrap();
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    fs.rmdir(r, b"a").unwrap();
    assert_eq!(fs.stat(r).unwrap().nlink, 2);
    assert_eq!(fs.mkdir(r, b"..", 0o755, 0, 0), Err(Errno::EEXIST));
    assert_eq!(fs.mkdir(r, b"x/y", 0o755, 0, 0), Err(Errno::EINVAL));
    assert_eq!(
        fs.mkdir(r, &[b'n'; 300], 0o755, 0, 0),
        Err(Errno::ENAMETOOLONG)
    );
}

#[test]
fn hard_links() {
    let (fs, s) = fs();
    let r = fs.root();
    let d = fs.mkdir(r, b"d", 0o755, 0, 0).unwrap();
    let f = fs.create(r, b"f", 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, b"data").unwrap();
    fs.link(f, d, b"g").unwrap();
    assert_eq!(fs.stat(f).unwrap().nlink, 2);
    assert_eq!(fs.link(d, r, b"dd"), Err(Errno::EPERM));
    assert_eq!(fs.link(f, r, b"f"), Err(Errno::EEXIST));
    fs.unlink(r, b"f").unwrap();
    assert_eq!(s.live(), 1);
    let mut b = [0u8; 4];
    fs.read(fs.lookup(d, b"g").unwrap(), 0, &mut b).unwrap();
    assert_eq!(&b, b"data");
    fs.unlink(d, b"g").unwrap();
    assert_eq!(s.live(), 0);
}

#[test]
fn held_files_outlive_unlink() {
    let (fs, s) = fs();
    let f = fs.create(fs.root(), b"f", 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, b"x").unwrap();
    fs.hold(f).unwrap();
    fs.unlink(fs.root(), b"f").unwrap();
    assert_eq!(fs.stat(f).unwrap().nlink, 0);
    assert_eq!(fs.link(f, fs.root(), b"back"), Err(Errno::ENOENT));
    assert_eq!(s.live(), 1);
    fs.release(f).unwrap();
    assert_eq!(s.live(), 0);
    assert_eq!(fs.stat(f), Err(Errno::ENOENT));
}

#[test]
fn rename_cases() {
    let (fs, s) = fs();
    let r = fs.root();
    let a = fs.mkdir(r, b"a", 0o755, 0, 0).unwrap();
    let b = fs.mkdir(r, b"b", 0o755, 0, 0).unwrap();
    let f = fs.create(a, b"f", 0o644, 0, 0, 0).unwrap();
    let g = fs.create(b, b"g", 0o644, 0, 0, 0).unwrap();
    fs.write(g, 0, b"old").unwrap();
    // Over an existing file, across directories: the victim's pages go.
    fs.rename(a, b"f", b, b"g").unwrap();
    assert_eq!(fs.lookup(b, b"g"), Ok(f));
    assert_eq!(fs.lookup(a, b"f"), Err(Errno::ENOENT));
    assert_eq!(fs.stat(g), Err(Errno::ENOENT));
    assert_eq!(s.live(), 0);
    // Same name: no-op; hard link onto itself: no-op.
    fs.rename(b, b"g", b, b"g").unwrap();
    fs.link(f, b, b"h").unwrap();
    fs.rename(b, b"g", b, b"h").unwrap();
    assert_eq!(fs.lookup(b, b"g"), Ok(f));
    // Directory moves update parents and link counts.
    let c = fs.mkdir(a, b"c", 0o755, 0, 0).unwrap();
    fs.rename(a, b"c", b, b"c").unwrap();
    assert_eq!(fs.lookup(c, b".."), Ok(b));
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    assert_eq!(fs.stat(b).unwrap().nlink, 3);
    // Into its own subtree: EINVAL.
    assert_eq!(fs.rename(r, b"b", c, b"x"), Err(Errno::EINVAL));
    // Type mismatches and non-empty targets.
    assert_eq!(fs.rename(b, b"g", b, b"c"), Err(Errno::EISDIR));
    assert_eq!(fs.rename(b, b"c", b, b"g"), Err(Errno::ENOTDIR));
    fs.create(c, b"z", 0o644, 0, 0, 0).unwrap();
    assert_eq!(fs.rename(r, b"a", b, b"c"), Err(Errno::ENOTEMPTY));
    // Dir over an empty dir.
    let e = fs.mkdir(r, b"e", 0o755, 0, 0).unwrap();
    fs.rename(b, b"c", r, b"e").unwrap();
    assert_eq!(fs.lookup(r, b"e"), Ok(c));
    assert_eq!(fs.stat(e), Err(Errno::ENOENT));
    assert_eq!(fs.stat(r).unwrap().nlink, 5); // a, b, e(=c) + 2
    assert_eq!(fs.stat(b).unwrap().nlink, 2);
    assert_eq!(fs.rename(r, b"nope", r, b"x"), Err(Errno::ENOENT));
}

#[test]
fn symlinks_and_special_files() {
    let (fs, _) = fs();
    let r = fs.root();
    let l = fs.symlink(r, b"l", b"/proc/self/fd", 0, 0).unwrap();
    assert_eq!(fs.readlink(l).unwrap(), b"/proc/self/fd");
    let st = fs.stat(l).unwrap();
    assert_eq!((st.mode, st.size), (S_IFLNK | 0o777, 13));
    let c = fs.create(r, b"null", S_IFCHR | 0o666, 0, 0, 0x103).unwrap();
    let st = fs.stat(c).unwrap();
    assert_eq!((st.mode, st.rdev), (S_IFCHR | 0o666, 0x103));
    let p = fs.create(r, b"fifo", S_IFIFO | 0o600, 0, 0, 99).unwrap();
    assert_eq!(fs.stat(p).unwrap().rdev, 0);
    assert_eq!(fs.readlink(p), Err(Errno::EINVAL));
    assert_eq!(fs.read(p, 0, &mut [0u8; 4]), Err(Errno::EINVAL));
    assert_eq!(fs.write(r, 0, b"x"), Err(Errno::EISDIR));
    assert_eq!(
        fs.create(r, b"bad", S_IFDIR | 0o755, 0, 0, 0),
        Err(Errno::EINVAL)
    );
    let types: Vec<u8> = fs.readdir(r).unwrap().iter().map(|e| e.file_type).collect();
    assert_eq!(types, vec![DT_DIR, DT_DIR, DT_FIFO, DT_LNK, DT_CHR]);
}

#[test]
fn setattr_and_times() {
    let (fs, s) = fs();
    let f = fs.create(fs.root(), b"f", 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &[1u8; 5000]).unwrap();
    let before = fs.stat(f).unwrap();
    let attr = SetAttr {
        mode: Some(0o4755 | S_IFDIR), // type bits are ignored
        uid: Some(7),
        gid: Some(8),
        size: Some(10),
        atime: Some(Timespec { sec: 100, nsec: 5 }),
        mtime: Some(Timespec { sec: 200, nsec: 6 }),
    };
    fs.setattr(f, &attr).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!(
        (st.mode, st.uid, st.gid, st.size),
        (S_IFREG | 0o4755, 7, 8, 10)
    );
    assert_eq!(st.atime, Timespec { sec: 100, nsec: 5 });
    assert_eq!(st.mtime, Timespec { sec: 200, nsec: 6 });
    assert!(st.ctime > before.ctime);
    assert_eq!(s.live(), 1);
    assert_eq!(
        fs.setattr(
            fs.root(),
            &SetAttr {
                size: Some(0),
                ..Default::default()
            }
        ),
        Err(Errno::EISDIR)
    );
    assert_eq!(fs.truncate(f, MAX_FILE_SIZE + 1), Err(Errno::EFBIG));
    assert_eq!(fs.write(f, u64::MAX - 1, b"xx"), Err(Errno::EFBIG));
}

#[test]
fn size_limit_and_statfs() {
    let s = Rc::new(VecPageStore::new());
    let fs = fs_with(
        s.clone(),
        TmpfsOptions {
            max_pages: Some(2),
            max_inodes: 4,
            ..Default::default()
        },
    );
    let f = fs.create(fs.root(), b"f", 0o644, 0, 0, 0).unwrap();
    assert_eq!(fs.write(f, 100, &[1u8; 3 * 4096]), Ok(2 * 4096 - 100));
    assert_eq!(fs.write(f, 5 * 4096, b"x"), Err(Errno::ENOSPC));
    assert_eq!(fs.write(f, 0, b"in an existing page"), Ok(19));
    let st = fs.statfs().unwrap();
    assert_eq!(
        (st.fs_type, st.block_size, st.blocks, st.blocks_free),
        (0x01021994, 4096, 2, 0)
    );
    assert_eq!((st.files, st.files_free), (4, 2));
    fs.create(fs.root(), b"g", 0o644, 0, 0, 0).unwrap();
    fs.create(fs.root(), b"h", 0o644, 0, 0, 0).unwrap();
    assert_eq!(
        fs.create(fs.root(), b"i", 0o644, 0, 0, 0),
        Err(Errno::ENOSPC)
    );
    assert_eq!(fs.fs_type(), "tmpfs");
}

// ---- model-based proptest ----

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8),
    Write(u8, u8, u16, u16),
    Truncate(u8, u8, u16),
    Rename(u8, u8, u8, u8),
    Link(u8, u8, u8, u8),
    Unlink(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0u8..2;
    let n = 0u8..4;
    prop_oneof![
        (d.clone(), n.clone()).prop_map(|(a, b)| Op::Create(a, b)),
        (d.clone(), n.clone(), 0u16..20000, 0u16..9000)
            .prop_map(|(a, b, o, l)| Op::Write(a, b, o, l)),
        (d.clone(), n.clone(), 0u16..20000).prop_map(|(a, b, s)| Op::Truncate(a, b, s)),
        (d.clone(), n.clone(), d.clone(), n.clone())
            .prop_map(|(a, b, c, e)| Op::Rename(a, b, c, e)),
        (d.clone(), n.clone(), d.clone(), n.clone()).prop_map(|(a, b, c, e)| Op::Link(a, b, c, e)),
        (d, n).prop_map(|(a, b)| Op::Unlink(a, b)),
    ]
}

proptest! {
    #[test]
    fn matches_a_model(ops in proptest::collection::vec(op(), 1..60)) {
        let (fs, store) = fs();
        let dirs = [fs.root(), fs.mkdir(fs.root(), b"sub", 0o755, 0, 0).unwrap()];
        // Model: (dir, name) -> file id; file id -> contents.
        let mut names: BTreeMap<(u8, u8), usize> = BTreeMap::new();
        let mut data: HashMap<usize, Vec<u8>> = HashMap::new();
        let mut next_id = 0;
        let nm = |n: u8| vec![b'f', b'0' + n];
        let ino_of = |d: u8, n: u8| fs.lookup(dirs[d as usize], &nm(n));
        for o in ops {
            match o {
                Op::Create(d, n) => {
                    let got = fs.create(dirs[d as usize], &nm(n), 0o644, 0, 0, 0);
                    match names.entry((d, n)) {
                        Entry::Occupied(_) => prop_assert_eq!(got, Err(Errno::EEXIST)),
                        Entry::Vacant(v) => {
                            prop_assert!(got.is_ok());
                            v.insert(next_id);
                            data.insert(next_id, Vec::new());
                            next_id += 1;
                        }
                    }
                }
                Op::Write(d, n, off, len) => {
                    let Some(&id) = names.get(&(d, n)) else { continue };
                    let buf: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(off as u8) | 1).collect();
                    prop_assert_eq!(fs.write(ino_of(d, n).unwrap(), off as u64, &buf), Ok(len as usize));
                    if len > 0 {
                        let m = data.get_mut(&id).unwrap();
                        let end = off as usize + len as usize;
                        if m.len() < end { m.resize(end, 0); }
                        m[off as usize..end].copy_from_slice(&buf);
                    }
                }
                Op::Truncate(d, n, size) => {
                    let Some(&id) = names.get(&(d, n)) else { continue };
                    fs.truncate(ino_of(d, n).unwrap(), size as u64).unwrap();
                    data.get_mut(&id).unwrap().resize(size as usize, 0);
                }
                Op::Rename(d1, n1, d2, n2) => {
                    let got = fs.rename(dirs[d1 as usize], &nm(n1), dirs[d2 as usize], &nm(n2));
                    match names.get(&(d1, n1)).copied() {
                        None => prop_assert_eq!(got, Err(Errno::ENOENT)),
                        Some(id) => {
                            prop_assert_eq!(got, Ok(()));
                            if names.get(&(d2, n2)) != Some(&id) {
                                names.remove(&(d1, n1));
                                names.insert((d2, n2), id);
                            }
                        }
                    }
                }
                Op::Link(d1, n1, d2, n2) => {
                    let Some(&id) = names.get(&(d1, n1)) else { continue };
                    let got = fs.link(ino_of(d1, n1).unwrap(), dirs[d2 as usize], &nm(n2));
                    match names.entry((d2, n2)) {
                        Entry::Occupied(_) => prop_assert_eq!(got, Err(Errno::EEXIST)),
                        Entry::Vacant(v) => {
                            prop_assert_eq!(got, Ok(()));
                            v.insert(id);
                        }
                    }
                }
                Op::Unlink(d, n) => {
                    let got = fs.unlink(dirs[d as usize], &nm(n));
                    prop_assert_eq!(got.is_ok(), names.remove(&(d, n)).is_some());
                }
            }
            data.retain(|id, _| names.values().any(|v| v == id));
        }
        // Contents, sizes and link counts agree; only live files hold pages.
        let mut expect_pages = 0;
        for (&(d, n), id) in &names {
            let ino = ino_of(d, n).unwrap();
            let want = &data[id];
            let st = fs.stat(ino).unwrap();
            prop_assert_eq!(st.size, want.len() as u64);
            prop_assert_eq!(st.nlink as usize, names.values().filter(|v| *v == id).count());
            let mut got = vec![0u8; want.len()];
            prop_assert_eq!(fs.read(ino, 0, &mut got), Ok(want.len()));
            prop_assert_eq!(&got, want);
        }
        let mut seen = std::collections::HashSet::new();
        for &(d, n) in names.keys() {
            let ino = ino_of(d, n).unwrap();
            if seen.insert(ino) { expect_pages += fs.stat(ino).unwrap().blocks / 8; }
        }
        prop_assert_eq!(store.live() as u64, expect_pages);
        prop_assert_eq!(fs.pages_used(), expect_pages);
        for (d, n) in names.keys().copied().collect::<Vec<_>>() {
            fs.unlink(dirs[d as usize], &nm(n)).unwrap();
        }
        prop_assert_eq!(store.live(), 0);
    }
}
