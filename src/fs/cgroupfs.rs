//! cgroup2 (`mount -t cgroup2 none /sys/fs/cgroup`): the unified control
//! group hierarchy with no controllers. Every mount shows the one
//! hierarchy the kernel keeps (`CgroupTree`, shared with it): a directory
//! per group, made by mkdir and removed by rmdir (EBUSY while it holds a
//! process or a child group), and in each the core files —
//! `cgroup.procs` (the processes in the group; writing a pid, or 0 for the
//! writer, moves that process here), `cgroup.threads`,
//! `cgroup.controllers` (none), `cgroup.subtree_control` (nothing can be
//! enabled: "+memory" is ENOENT, as for a controller not offered; an
//! unknown name EINVAL),
//! `cgroup.events` (populated), `cgroup.type`, `cgroup.stat`,
//! `cgroup.max.depth` and `cgroup.max.descendants` (limits that mkdir
//! obeys). Each process is in exactly one group: init starts in the root,
//! a forked child in its parent's, and an exited process leaves
//! (`fork`, `exit`); /proc/<pid>/cgroup shows "0::<path>".
//!
//! Not there: controllers (cpu, memory, io, pids) and their files,
//! cgroup.kill and cgroup.freeze, threaded groups, renaming a group,
//! cgroup namespaces; a thread id written to cgroup.procs is ESRCH
//! unless it is a process's (thread group leader's) id.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::*;
use crate::errno::{Errno, KResult};

/// Linux CGROUP2_SUPER_MAGIC.
pub const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// The root group's id.
pub const ROOT_GROUP: u64 = 1;

/// The files of a group: (name, index in the inode, writable, root has it).
const FILES: &[(&str, u64, bool, bool)] = &[
    ("cgroup.controllers", 1, false, true),
    ("cgroup.events", 2, false, false),
    ("cgroup.max.depth", 3, true, true),
    ("cgroup.max.descendants", 4, true, true),
    ("cgroup.procs", 5, true, true),
    ("cgroup.stat", 6, false, true),
    ("cgroup.subtree_control", 7, true, true),
    ("cgroup.threads", 8, true, true),
    ("cgroup.type", 9, false, false),
];
const FILE_BITS: u32 = 4;
const P_PROCS: u64 = 5;
const P_THREADS: u64 = 8;
const P_MAX_DEPTH: u64 = 3;
const P_MAX_DESC: u64 = 4;
const P_SUBTREE: u64 = 7;

/// One group.
#[derive(Debug, Clone)]
struct Group {
    parent: u64,
    name: Vec<u8>,
    children: BTreeMap<Vec<u8>, u64>,
    /// The directory's owner and permission bits (files: 0644 or 0444,
    /// owned alike; chown of a delegated group changes both).
    uid: u32,
    gid: u32,
    mode: u32,
    ctime: Timespec,
    /// cgroup.max.depth / max.descendants (None: "max").
    max_depth: Option<u64>,
    max_descendants: Option<u64>,
}

/// The hierarchy and which group each process is in.
#[derive(Debug)]
pub struct CgroupTree {
    groups: BTreeMap<u64, Group>,
    next: u64,
    /// Process (thread group id) → group.
    member: BTreeMap<u32, u64>,
    /// The process writing now (set by the kernel before a write: "0"
    /// in cgroup.procs means it).
    pub writer: u32,
}

pub type SharedTree = Rc<RefCell<CgroupTree>>;

impl CgroupTree {
    pub fn new(now: Timespec) -> CgroupTree {
        let root = Group {
            parent: ROOT_GROUP,
            name: Vec::new(),
            children: BTreeMap::new(),
            uid: 0,
            gid: 0,
            mode: 0o755,
            ctime: now,
            max_depth: None,
            max_descendants: None,
        };
        CgroupTree {
            groups: BTreeMap::from([(ROOT_GROUP, root)]),
            next: ROOT_GROUP + 1,
            member: BTreeMap::new(),
            writer: 0,
        }
    }

    /// A new process: in its parent's group (the root for init).
    pub fn fork(&mut self, parent: Option<u32>, child: u32) {
        let g = parent
            .and_then(|p| self.member.get(&p).copied())
            .unwrap_or(ROOT_GROUP);
        self.member.insert(child, g);
    }

    /// A process ended: it leaves its group.
    pub fn exit(&mut self, tgid: u32) {
        self.member.remove(&tgid);
    }

    /// The path of `tgid`'s group ("/" for the root), as
    /// /proc/<pid>/cgroup shows it.
    pub fn path_of(&self, tgid: u32) -> Option<String> {
        let g = *self.member.get(&tgid)?;
        Some(self.path(g))
    }

    fn path(&self, mut g: u64) -> String {
        let mut names = Vec::new();
        while g != ROOT_GROUP {
            let Some(gr) = self.groups.get(&g) else { break };
            names.push(String::from_utf8_lossy(&gr.name).into_owned());
            g = gr.parent;
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    fn depth(&self, mut g: u64) -> u64 {
        let mut d = 0;
        while g != ROOT_GROUP {
            d += 1;
            g = self.groups.get(&g).map_or(ROOT_GROUP, |x| x.parent);
        }
        d
    }

    fn descendants(&self, g: u64) -> u64 {
        let Some(gr) = self.groups.get(&g) else {
            return 0;
        };
        gr.children.values().map(|&c| 1 + self.descendants(c)).sum()
    }

    fn procs(&self, g: u64) -> BTreeSet<u32> {
        self.member
            .iter()
            .filter(|&(_, &m)| m == g)
            .map(|(&p, _)| p)
            .collect()
    }

    fn populated(&self, g: u64) -> bool {
        self.member.values().any(|&m| {
            let mut x = m;
            loop {
                if x == g {
                    return true;
                }
                if x == ROOT_GROUP {
                    return false;
                }
                x = self.groups.get(&x).map_or(ROOT_GROUP, |y| y.parent);
            }
        })
    }

    /// mkdir: a child group of `parent`, within every ancestor's
    /// max.depth and max.descendants (EAGAIN past them, as Linux).
    fn make(
        &mut self,
        parent: u64,
        name: &[u8],
        uid: u32,
        gid: u32,
        now: Timespec,
    ) -> KResult<u64> {
        let p = self.groups.get(&parent).ok_or(Errno::ENOENT)?;
        if p.children.contains_key(name) || FILES.iter().any(|f| f.0.as_bytes() == name) {
            return Err(Errno::EEXIST);
        }
        if name.contains(&b'\n') {
            return Err(Errno::EINVAL);
        }
        // Each ancestor (the parent included) at depth d allows children
        // to depth d + max_depth below it.
        let new_depth = self.depth(parent) + 1;
        let mut a = parent;
        loop {
            let ga = &self.groups[&a];
            if let Some(m) = ga.max_depth {
                if new_depth - self.depth(a) > m {
                    return Err(Errno::EAGAIN);
                }
            }
            if let Some(m) = ga.max_descendants {
                if self.descendants(a) >= m {
                    return Err(Errno::EAGAIN);
                }
            }
            if a == ROOT_GROUP {
                break;
            }
            a = ga.parent;
        }
        let id = self.next;
        self.next = self.next.checked_add(1).ok_or(Errno::ENOSPC)?;
        if id >= (1u64 << (64 - FILE_BITS)) {
            return Err(Errno::ENOSPC);
        }
        self.groups.insert(
            id,
            Group {
                parent,
                name: name.to_vec(),
                children: BTreeMap::new(),
                uid,
                gid,
                mode: 0o755,
                ctime: now,
                max_depth: None,
                max_descendants: None,
            },
        );
        self.groups
            .get_mut(&parent)
            .expect("parent")
            .children
            .insert(name.to_vec(), id);
        Ok(id)
    }

    /// rmdir: EBUSY while the group has a process or a child group.
    fn remove(&mut self, parent: u64, name: &[u8]) -> KResult<()> {
        let p = self.groups.get(&parent).ok_or(Errno::ENOENT)?;
        let Some(&id) = p.children.get(name) else {
            return Err(if FILES.iter().any(|f| f.0.as_bytes() == name) {
                Errno::ENOTDIR
            } else {
                Errno::ENOENT
            });
        };
        let g = &self.groups[&id];
        if !g.children.is_empty() || self.member.values().any(|&m| m == id) {
            return Err(Errno::EBUSY);
        }
        self.groups.remove(&id);
        self.groups
            .get_mut(&parent)
            .expect("parent")
            .children
            .remove(name);
        Ok(())
    }

    /// A write to `group`'s cgroup.procs: one pid (0: the writer).
    fn move_proc(&mut self, group: u64, text: &[u8]) -> KResult<()> {
        let s = std::str::from_utf8(text).map_err(|_| Errno::EINVAL)?;
        let pid: i64 = s.trim().parse().map_err(|_| Errno::EINVAL)?;
        let pid = match pid {
            0 => self.writer,
            p if p < 0 || p > u32::MAX as i64 => return Err(Errno::ESRCH),
            p => p as u32,
        };
        if !self.groups.contains_key(&group) {
            return Err(Errno::ENODEV);
        }
        let m = self.member.get_mut(&pid).ok_or(Errno::ESRCH)?;
        *m = group;
        Ok(())
    }
}

/// Linux's controller names (cgroup_subsys_name): "+name" for one of
/// them is ENOENT here (not offered), any other name EINVAL.
const CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "io",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// A write to cgroup.subtree_control, checked as Linux does: every word
/// is "+name" or "-name" of a known controller (else EINVAL), then an
/// enable of one this hierarchy does not offer (all, here) is ENOENT.
/// Disabling what is not enabled, and a write of no words, succeed.
fn subtree_control(data: &[u8]) -> KResult<()> {
    let s = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    let mut enable = false;
    for w in s.split_whitespace() {
        let name = w.get(1..).unwrap_or("");
        let sign = w.as_bytes()[0];
        if !(sign == b'+' || sign == b'-') || !CONTROLLERS.contains(&name) {
            return Err(Errno::EINVAL);
        }
        enable |= sign == b'+';
    }
    if enable {
        return Err(Errno::ENOENT);
    }
    Ok(())
}

/// A limit file's value: a number or "max".
fn parse_limit(text: &[u8]) -> KResult<Option<u64>> {
    let s = std::str::from_utf8(text).map_err(|_| Errno::EINVAL)?.trim();
    if s == "max" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| Errno::EINVAL)
}

fn limit_text(v: Option<u64>) -> String {
    v.map_or("max\n".to_string(), |n| format!("{n}\n"))
}

fn split(ino: Ino) -> (u64, u64) {
    (ino >> FILE_BITS, ino & ((1 << FILE_BITS) - 1))
}

fn ino(group: u64, file: u64) -> Ino {
    (group << FILE_BITS) | file
}

/// A mount of the hierarchy.
pub struct CgroupFs {
    tree: SharedTree,
}

impl CgroupFs {
    pub fn new(tree: SharedTree) -> CgroupFs {
        CgroupFs { tree }
    }

    /// The group and file index of `ino`, checked to exist.
    fn node(&self, ino: Ino) -> KResult<(u64, u64)> {
        let (g, f) = split(ino);
        let t = self.tree.borrow();
        if !t.groups.contains_key(&g) {
            return Err(Errno::ENOENT);
        }
        if f == 0 {
            return Ok((g, 0));
        }
        match FILES.iter().find(|x| x.1 == f) {
            Some(x) if x.3 || g != ROOT_GROUP => Ok((g, f)),
            _ => Err(Errno::ENOENT),
        }
    }

    fn text(&self, g: u64, f: u64) -> String {
        let t = self.tree.borrow();
        let gr = &t.groups[&g];
        match f {
            1 | P_SUBTREE => "\n".to_string(),
            2 => format!("populated {}\nfrozen 0\n", u8::from(t.populated(g))),
            P_MAX_DEPTH => limit_text(gr.max_depth),
            P_MAX_DESC => limit_text(gr.max_descendants),
            P_PROCS | P_THREADS => t.procs(g).iter().map(|p| format!("{p}\n")).collect(),
            6 => format!(
                "nr_descendants {}\nnr_dying_descendants 0\n",
                t.descendants(g)
            ),
            _ => "domain\n".to_string(),
        }
    }
}

impl FileSystem for CgroupFs {
    fn fs_type(&self) -> &'static str {
        "cgroup2"
    }

    fn root(&self) -> Ino {
        ino(ROOT_GROUP, 0)
    }

    fn stat(&self, i: Ino) -> KResult<Stat> {
        let (g, f) = self.node(i)?;
        let t = self.tree.borrow();
        let gr = &t.groups[&g];
        let base = Stat {
            ino: i,
            uid: gr.uid,
            gid: gr.gid,
            blksize: 4096,
            atime: gr.ctime,
            mtime: gr.ctime,
            ctime: gr.ctime,
            ..Default::default()
        };
        Ok(if f == 0 {
            Stat {
                mode: S_IFDIR | gr.mode,
                nlink: 2 + gr.children.len() as u32,
                ..base
            }
        } else {
            let w = FILES.iter().any(|x| x.1 == f && x.2);
            Stat {
                mode: S_IFREG | if w { 0o644 } else { 0o444 },
                nlink: 1,
                ..base
            }
        })
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        let (g, f) = self.node(dir)?;
        if f != 0 {
            return Err(Errno::ENOTDIR);
        }
        let t = self.tree.borrow();
        let gr = &t.groups[&g];
        match name {
            b"." => Ok(dir),
            b".." => Ok(ino(gr.parent, 0)),
            _ => {
                if let Some(&c) = gr.children.get(name) {
                    return Ok(ino(c, 0));
                }
                FILES
                    .iter()
                    .find(|x| x.0.as_bytes() == name && (x.3 || g != ROOT_GROUP))
                    .map(|x| ino(g, x.1))
                    .ok_or(Errno::ENOENT)
            }
        }
    }

    fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        let (g, f) = self.node(dir)?;
        if f != 0 {
            return Err(Errno::ENOTDIR);
        }
        let t = self.tree.borrow();
        let gr = &t.groups[&g];
        let mut v = vec![
            DirEntry {
                ino: dir,
                name: b".".to_vec(),
                file_type: DT_DIR,
            },
            DirEntry {
                ino: ino(gr.parent, 0),
                name: b"..".to_vec(),
                file_type: DT_DIR,
            },
        ];
        for x in FILES.iter().filter(|x| x.3 || g != ROOT_GROUP) {
            v.push(DirEntry {
                ino: ino(g, x.1),
                name: x.0.as_bytes().to_vec(),
                file_type: DT_REG,
            });
        }
        for (name, &c) in &gr.children {
            v.push(DirEntry {
                ino: ino(c, 0),
                name: name.clone(),
                file_type: DT_DIR,
            });
        }
        Ok(v)
    }

    fn read(&self, i: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let (g, f) = self.node(i)?;
        if f == 0 {
            return Err(Errno::EISDIR);
        }
        let text = self.text(g, f);
        let b = text.as_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
        let n = buf.len().min(b.len() - start);
        buf[..n].copy_from_slice(&b[start..start + n]);
        Ok(n)
    }

    /// Each write is one whole value, whatever the offset (kernfs's).
    fn write(&self, i: Ino, _offset: u64, data: &[u8]) -> KResult<usize> {
        let (g, f) = self.node(i)?;
        let mut t = self.tree.borrow_mut();
        match f {
            P_PROCS | P_THREADS => t.move_proc(g, data)?,
            P_SUBTREE => subtree_control(data)?,
            P_MAX_DEPTH => t.groups.get_mut(&g).expect("group").max_depth = parse_limit(data)?,
            P_MAX_DESC => t.groups.get_mut(&g).expect("group").max_descendants = parse_limit(data)?,
            0 => return Err(Errno::EISDIR),
            _ => return Err(Errno::EACCES),
        }
        Ok(data.len())
    }

    fn truncate(&self, i: Ino, _size: u64) -> KResult<()> {
        // O_TRUNC on a control file (`echo x > cgroup.procs`) is a no-op.
        match self.node(i)? {
            (_, 0) => Err(Errno::EISDIR),
            _ => Ok(()),
        }
    }

    fn create(&self, d: Ino, _n: &[u8], _m: u32, _u: u32, _g: u32, _r: u64) -> KResult<Ino> {
        self.node(d)?;
        Err(Errno::EACCES)
    }

    fn mkdir(&self, dir: Ino, name: &[u8], _mode: u32, uid: u32, gid: u32) -> KResult<Ino> {
        let (g, f) = self.node(dir)?;
        if f != 0 {
            return Err(Errno::ENOTDIR);
        }
        let now = crate::syscalls::now_ts();
        let id = self.tree.borrow_mut().make(g, name, uid, gid, now)?;
        Ok(ino(id, 0))
    }

    fn symlink(&self, _d: Ino, _n: &[u8], _t: &[u8], _u: u32, _g: u32) -> KResult<Ino> {
        Err(Errno::EPERM)
    }

    fn readlink(&self, _ino: Ino) -> KResult<Vec<u8>> {
        Err(Errno::EINVAL)
    }

    fn link(&self, _ino: Ino, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn rmdir(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        let (g, f) = self.node(dir)?;
        if f != 0 {
            return Err(Errno::ENOTDIR);
        }
        self.tree.borrow_mut().remove(g, name)
    }

    fn rename(&self, _od: Ino, _on: &[u8], _nd: Ino, _nn: &[u8]) -> KResult<()> {
        Err(Errno::EPERM)
    }

    /// chmod and chown of a group's directory (delegation: systemd hands
    /// a group to a user); a file's owner follows its directory's.
    fn setattr(&self, i: Ino, attr: &SetAttr) -> KResult<()> {
        let (g, f) = self.node(i)?;
        let mut t = self.tree.borrow_mut();
        let gr = t.groups.get_mut(&g).expect("group");
        if let Some(m) = attr.mode {
            if f != 0 {
                return Err(Errno::EPERM);
            }
            gr.mode = m & 0o7777;
        }
        if let Some(u) = attr.uid {
            gr.uid = u;
        }
        if let Some(gid) = attr.gid {
            gr.gid = gid;
        }
        Ok(())
    }

    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs {
            fs_type: CGROUP2_SUPER_MAGIC,
            block_size: 4096,
            name_max: 255,
            ..Default::default()
        })
    }

    fn sync(&self) -> KResult<()> {
        Ok(())
    }

    fn generated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> (CgroupFs, SharedTree) {
        let tree = Rc::new(RefCell::new(CgroupTree::new(Timespec::default())));
        (CgroupFs::new(tree.clone()), tree)
    }

    fn cat(fs: &CgroupFs, dir: Ino, name: &str) -> String {
        let i = fs.lookup(dir, name.as_bytes()).unwrap();
        let mut b = vec![0u8; 4096];
        let n = fs.read(i, 0, &mut b).unwrap();
        String::from_utf8(b[..n].to_vec()).unwrap()
    }

    fn write(fs: &CgroupFs, dir: Ino, name: &str, text: &str) -> KResult<usize> {
        let i = fs.lookup(dir, name.as_bytes()).unwrap();
        fs.write(i, 0, text.as_bytes())
    }

    #[test]
    fn processes_move_between_groups_and_children_inherit() {
        let (fs, tree) = fs();
        tree.borrow_mut().fork(None, 1);
        tree.borrow_mut().fork(Some(1), 7);
        let root = fs.root();
        assert_eq!(cat(&fs, root, "cgroup.procs"), "1\n7\n");
        assert_eq!(cat(&fs, root, "cgroup.controllers"), "\n");
        assert!(
            fs.lookup(root, b"cgroup.events").is_err(),
            "the root has none"
        );
        let a = fs.mkdir(root, b"a", 0o755, 0, 0).unwrap();
        assert_eq!(fs.mkdir(root, b"a", 0o755, 0, 0), Err(Errno::EEXIST));
        assert_eq!(cat(&fs, a, "cgroup.events"), "populated 0\nfrozen 0\n");
        tree.borrow_mut().writer = 7;
        assert_eq!(write(&fs, a, "cgroup.procs", "0\n"), Ok(2));
        assert_eq!(cat(&fs, a, "cgroup.procs"), "7\n");
        assert_eq!(cat(&fs, root, "cgroup.procs"), "1\n");
        assert_eq!(cat(&fs, a, "cgroup.events"), "populated 1\nfrozen 0\n");
        assert_eq!(tree.borrow().path_of(7).as_deref(), Some("/a"));
        tree.borrow_mut().fork(Some(7), 8);
        assert_eq!(cat(&fs, a, "cgroup.procs"), "7\n8\n");
        let b = fs.mkdir(a, b"b", 0o755, 0, 0).unwrap();
        assert_eq!(write(&fs, b, "cgroup.procs", "8"), Ok(1));
        assert_eq!(tree.borrow().path_of(8).as_deref(), Some("/a/b"));
        assert_eq!(cat(&fs, a, "cgroup.events"), "populated 1\nfrozen 0\n");
        assert_eq!(write(&fs, b, "cgroup.procs", "99"), Err(Errno::ESRCH));
        assert_eq!(write(&fs, b, "cgroup.procs", "x"), Err(Errno::EINVAL));
        assert_eq!(
            cat(&fs, root, "cgroup.stat"),
            "nr_descendants 2\nnr_dying_descendants 0\n"
        );
        // Busy while it holds a process or a group.
        assert_eq!(fs.rmdir(a, b"b"), Err(Errno::EBUSY));
        assert_eq!(fs.rmdir(root, b"a"), Err(Errno::EBUSY));
        tree.borrow_mut().exit(8);
        fs.rmdir(a, b"b").unwrap();
        assert_eq!(fs.lookup(a, b"b"), Err(Errno::ENOENT));
        assert_eq!(fs.rmdir(a, b"cgroup.procs"), Err(Errno::ENOTDIR));
        assert_eq!(write(&fs, root, "cgroup.procs", "7"), Ok(1));
        fs.rmdir(root, b"a").unwrap();
        assert_eq!(fs.stat(a), Err(Errno::ENOENT));
        assert_eq!(fs.statfs().unwrap().fs_type, CGROUP2_SUPER_MAGIC);
    }

    #[test]
    fn no_controller_can_be_enabled_and_limits_hold() {
        let (fs, _) = fs();
        let root = fs.root();
        assert_eq!(write(&fs, root, "cgroup.subtree_control", ""), Ok(0));
        assert_eq!(
            write(&fs, root, "cgroup.subtree_control", "+memory"),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            write(&fs, root, "cgroup.subtree_control", "memory"),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            write(&fs, root, "cgroup.subtree_control", "-pids +nosuch"),
            Err(Errno::EINVAL)
        );
        assert_eq!(write(&fs, root, "cgroup.subtree_control", "-pids\n"), Ok(6));
        assert_eq!(write(&fs, root, "cgroup.max.depth", "1"), Ok(1));
        assert_eq!(cat(&fs, root, "cgroup.max.depth"), "1\n");
        let a = fs.mkdir(root, b"a", 0o755, 0, 0).unwrap();
        assert_eq!(fs.mkdir(a, b"b", 0o755, 0, 0), Err(Errno::EAGAIN));
        assert_eq!(write(&fs, root, "cgroup.max.depth", "max"), Ok(3));
        assert_eq!(write(&fs, root, "cgroup.max.descendants", "2"), Ok(1));
        fs.mkdir(a, b"b", 0o755, 0, 0).unwrap();
        assert_eq!(fs.mkdir(root, b"c", 0o755, 0, 0), Err(Errno::EAGAIN));
        assert_eq!(
            write(&fs, root, "cgroup.max.descendants", "-1"),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            fs.mkdir(root, b"cgroup.procs", 0o755, 0, 0),
            Err(Errno::EEXIST)
        );
        assert_eq!(write(&fs, a, "cgroup.type", "threaded"), Err(Errno::EACCES));
        assert_eq!(fs.create(root, b"f", 0o644, 0, 0, 0), Err(Errno::EACCES));
        fs.setattr(
            a,
            &SetAttr {
                uid: Some(1000),
                ..Default::default()
            },
        )
        .unwrap();
        let procs = fs.lookup(a, b"cgroup.procs").unwrap();
        assert_eq!(fs.stat(procs).unwrap().uid, 1000);
        assert_eq!(fs.stat(procs).unwrap().mode, S_IFREG | 0o644);
    }
}
