//! tmpfs: a file system in memory, its file pages in a `PageStore`.
//!
//! | file       | owns |
//! |------------|------|
//! | `pages.rs` | the `PageStore` trait, `VecPageStore`, a file's sparse page map |
//! | `node.rs`  | inodes, the inode table, name checks |
//! | `mod.rs`   | `Tmpfs` and its `FileSystem` implementation |
//!
//! A file's pages are freed when its last link goes and no `hold` is left
//! (the kernel holds every inode it has open, so open-unlinked files live
//! until closed). `readdir` lists "." and ".." first, like ext2.
#![deny(unsafe_code)]

pub mod node;
pub mod pages;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::errno::{Errno, KResult};
use crate::fs::*;
use node::{check_name, is_dot, Kind, Node, Table};
pub use pages::{FilePages, PageStore, VecPageStore, PAGE_SIZE};

/// Linux TMPFS_MAGIC.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Largest file size (MAX_LFS_FILESIZE is larger; this keeps offsets sane).
pub const MAX_FILE_SIZE: u64 = 1 << 44;

/// Mount options (`size=`, `nr_inodes=`, root `mode=`).
#[derive(Debug, Clone)]
pub struct TmpfsOptions {
    /// Page limit for statfs and ENOSPC; None = unlimited (statfs shows used+free of the store).
    pub max_pages: Option<u64>,
    pub max_inodes: u64,
    pub root_mode: u32,
    pub root_uid: u32,
    pub root_gid: u32,
}

impl Default for TmpfsOptions {
    fn default() -> Self {
        TmpfsOptions {
            max_pages: None,
            max_inodes: 1 << 20,
            root_mode: 0o1777,
            root_uid: 0,
            root_gid: 0,
        }
    }
}

/// The clock tmpfs stamps times with (the kernel passes its realtime clock).
pub type Clock = Rc<dyn Fn() -> Timespec>;

pub struct Tmpfs {
    table: RefCell<Table>,
    store: Rc<dyn PageStore>,
    clock: Clock,
    opts: TmpfsOptions,
    pages_used: RefCell<u64>,
}

const ROOT: Ino = 1;
/// setxattr flags.
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;
/// Bytes of xattr names and values one inode may hold.
const XATTR_SPACE: usize = 128 << 10;

/// The attributes a new inode starts with.
#[derive(Clone, Copy)]
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
}

impl Tmpfs {
    pub fn new(store: Rc<dyn PageStore>, clock: Clock, opts: TmpfsOptions) -> Tmpfs {
        let now = clock();
        let mut table = Table::default();
        let root = Node {
            mode: S_IFDIR | (opts.root_mode & 0o7777),
            nlink: 2,
            uid: opts.root_uid,
            gid: opts.root_gid,
            rdev: 0,
            atime: now,
            mtime: now,
            ctime: now,
            kind: Kind::Dir {
                entries: BTreeMap::new(),
                parent: ROOT,
            },
            holds: 0,
            xattrs: Default::default(),
        };
        let ino = table.insert(root);
        debug_assert_eq!(ino, ROOT);
        Tmpfs {
            table: RefCell::new(table),
            store,
            clock,
            opts,
            pages_used: RefCell::new(0),
        }
    }

    /// Number of data pages allocated (for meminfo's Shmem).
    pub fn pages_used(&self) -> u64 {
        *self.pages_used.borrow()
    }

    /// The kernel opened `ino`: keep its data after the last unlink.
    pub fn hold(&self, ino: Ino) -> KResult<()> {
        self.table.borrow_mut().get_mut(ino)?.holds += 1;
        Ok(())
    }

    /// The kernel closed `ino`: frees it if it was unlinked meanwhile.
    pub fn release(&self, ino: Ino) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        let n = t.get_mut(ino)?;
        n.holds = n.holds.saturating_sub(1);
        self.maybe_free(&mut t, ino);
        Ok(())
    }

    fn maybe_free(&self, t: &mut Table, ino: Ino) {
        let gone = t
            .nodes
            .get(&ino)
            .is_some_and(|n| n.nlink == 0 && n.holds == 0);
        if gone {
            if let Some(mut n) = t.nodes.remove(&ino) {
                if let Kind::File { pages, .. } = &mut n.kind {
                    *self.pages_used.borrow_mut() -= pages.count();
                    pages.free_all(&*self.store);
                }
            }
        }
    }

    fn new_node(&self, t: &mut Table, a: Attrs, kind: Kind) -> KResult<Ino> {
        let Attrs {
            mode,
            uid,
            gid,
            rdev,
        } = a;
        if t.nodes.len() as u64 >= self.opts.max_inodes {
            return Err(Errno::ENOSPC);
        }
        let now = (self.clock)();
        let nlink = if matches!(kind, Kind::Dir { .. }) {
            2
        } else {
            1
        };
        Ok(t.insert(Node {
            mode,
            nlink,
            uid,
            gid,
            rdev,
            atime: now,
            mtime: now,
            ctime: now,
            kind,
            holds: 0,
            xattrs: Default::default(),
        }))
    }

    /// Checks that `name` may be added to `dir`.
    fn check_new(t: &Table, dir: Ino, name: &[u8]) -> KResult<()> {
        check_name(name)?;
        let entries = t.entries(dir)?;
        if is_dot(name) || entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        Ok(())
    }

    /// Adds an entry and stamps the directory.
    fn add_entry(&self, t: &mut Table, dir: Ino, name: &[u8], ino: Ino) -> KResult<()> {
        t.entries_mut(dir)?.insert(name.to_vec(), ino);
        self.touch_dir(t, dir);
        Ok(())
    }

    fn touch_dir(&self, t: &mut Table, dir: Ino) {
        let now = (self.clock)();
        if let Ok(d) = t.get_mut(dir) {
            d.mtime = now;
            d.ctime = now;
        }
    }

    fn make(&self, dir: Ino, name: &[u8], a: Attrs, kind: Kind) -> KResult<Ino> {
        let mut t = self.table.borrow_mut();
        Self::check_new(&t, dir, name)?;
        let is_dir = matches!(kind, Kind::Dir { .. });
        let ino = self.new_node(&mut t, a, kind)?;
        self.add_entry(&mut t, dir, name, ino)?;
        if is_dir {
            t.get_mut(dir)?.nlink += 1;
        }
        Ok(ino)
    }

    fn set_size(&self, t: &mut Table, ino: Ino, new: u64) -> KResult<()> {
        if new > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let now = (self.clock)();
        let n = t.get_mut(ino)?;
        let Kind::File { size, pages } = &mut n.kind else {
            return Err(if n.is_dir() {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        if new < *size {
            let before = pages.count();
            pages.truncate(&*self.store, new);
            *self.pages_used.borrow_mut() -= before - pages.count();
        }
        *size = new;
        n.mtime = now;
        n.ctime = now;
        Ok(())
    }

    /// Drops one link of `ino` (its entry already removed).
    fn drop_link(&self, t: &mut Table, ino: Ino) {
        let now = (self.clock)();
        if let Ok(n) = t.get_mut(ino) {
            n.nlink = if n.is_dir() {
                0
            } else {
                n.nlink.saturating_sub(1)
            };
            n.ctime = now;
        }
        self.maybe_free(t, ino);
    }
}

/// How many bytes of a write over [offset, end) fit when at most `room`
/// new pages may be allocated.
fn fit_in_room(pages: &FilePages, offset: u64, end: u64, room: u64) -> usize {
    let ps = PAGE_SIZE as u64;
    let mut taken = 0;
    let mut upto = offset;
    for i in offset / ps..=(end - 1) / ps {
        if !pages.map.contains_key(&i) {
            if taken == room {
                break;
            }
            taken += 1;
        }
        upto = ((i + 1) * ps).min(end);
    }
    (upto - offset) as usize
}

impl FileSystem for Tmpfs {
    fn fs_type(&self) -> &'static str {
        "tmpfs"
    }

    fn root(&self) -> Ino {
        ROOT
    }

    fn stat(&self, ino: Ino) -> KResult<Stat> {
        let t = self.table.borrow();
        let n = t.get(ino)?;
        Ok(Stat {
            ino,
            mode: n.mode,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            size: n.size(),
            blocks: n.pages() * (PAGE_SIZE as u64 / 512),
            blksize: PAGE_SIZE as u32,
            rdev: n.rdev,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
        })
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        let t = self.table.borrow();
        match name {
            b"." => t.entries(dir).map(|_| dir),
            b".." => t.parent(dir),
            _ => {
                check_name(name)?;
                t.entries(dir)?.get(name).copied().ok_or(Errno::ENOENT)
            }
        }
    }

    fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        let t = self.table.borrow();
        let entries = t.entries(dir)?;
        let mut out = vec![
            DirEntry {
                ino: dir,
                name: b".".to_vec(),
                file_type: DT_DIR,
            },
            DirEntry {
                ino: t.parent(dir)?,
                name: b"..".to_vec(),
                file_type: DT_DIR,
            },
        ];
        for (name, &ino) in entries {
            let file_type = t.get(ino).map(|n| n.dt()).unwrap_or(DT_UNKNOWN);
            out.push(DirEntry {
                ino,
                name: name.clone(),
                file_type,
            });
        }
        Ok(out)
    }

    fn next_page(&self, ino: Ino, from: u64, data: bool) -> Option<Option<u64>> {
        let t = self.table.borrow();
        let Kind::File { pages, .. } = &t.get(ino).ok()?.kind else {
            return None;
        };
        Some(pages.next_page(from, data))
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let mut t = self.table.borrow_mut();
        let now = (self.clock)();
        let n = t.get_mut(ino)?;
        let Kind::File { size, pages } = &n.kind else {
            return Err(if n.is_dir() {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        if offset >= *size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(*size - offset) as usize;
        pages.read(&*self.store, offset, &mut buf[..len]);
        n.atime = now;
        Ok(len)
    }

    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        let mut t = self.table.borrow_mut();
        let now = (self.clock)();
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let n = t.get_mut(ino)?;
        let Kind::File { size, pages } = &mut n.kind else {
            return Err(if n.is_dir() {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        if data.is_empty() {
            return Ok(0);
        }
        let mut data = data;
        if let Some(max) = self.opts.max_pages {
            let room = max.saturating_sub(*self.pages_used.borrow());
            let allowed = fit_in_room(pages, offset, end, room);
            if allowed == 0 {
                return Err(Errno::ENOSPC);
            }
            data = &data[..allowed];
        }
        let before = pages.count();
        let written = pages.write(&*self.store, offset, data)?;
        *self.pages_used.borrow_mut() += pages.count() - before;
        *size = (*size).max(offset + written as u64);
        n.mtime = now;
        n.ctime = now;
        Ok(written)
    }

    fn truncate(&self, ino: Ino, size: u64) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        self.set_size(&mut t, ino, size)
    }

    fn create(
        &self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
    ) -> KResult<Ino> {
        let kind = match mode & S_IFMT {
            S_IFREG | 0 => Kind::File {
                size: 0,
                pages: FilePages::default(),
            },
            S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => Kind::Special,
            _ => return Err(Errno::EINVAL),
        };
        let typ = if mode & S_IFMT == 0 {
            S_IFREG
        } else {
            mode & S_IFMT
        };
        let keep_rdev = if matches!(typ, S_IFCHR | S_IFBLK) {
            rdev
        } else {
            0
        };
        let mode = typ | (mode & 0o7777);
        self.make(
            dir,
            name,
            Attrs {
                mode,
                uid,
                gid,
                rdev: keep_rdev,
            },
            kind,
        )
    }

    fn mkdir(&self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> KResult<Ino> {
        let kind = Kind::Dir {
            entries: BTreeMap::new(),
            parent: dir,
        };
        let mode = S_IFDIR | (mode & 0o7777);
        self.make(
            dir,
            name,
            Attrs {
                mode,
                uid,
                gid,
                rdev: 0,
            },
            kind,
        )
    }

    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> KResult<Ino> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PAGE_SIZE {
            return Err(Errno::ENAMETOOLONG);
        }
        let mode = S_IFLNK | 0o777;
        self.make(
            dir,
            name,
            Attrs {
                mode,
                uid,
                gid,
                rdev: 0,
            },
            Kind::Symlink(target.to_vec()),
        )
    }

    fn readlink(&self, ino: Ino) -> KResult<Vec<u8>> {
        match &self.table.borrow().get(ino)?.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        let n = t.get(ino)?;
        if n.is_dir() {
            return Err(Errno::EPERM);
        }
        if n.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        Self::check_new(&t, dir, name)?;
        self.add_entry(&mut t, dir, name, ino)?;
        let now = (self.clock)();
        let n = t.get_mut(ino)?;
        n.nlink += 1;
        n.ctime = now;
        Ok(())
    }

    fn unlink(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        check_name(name)?;
        if is_dot(name) {
            return Err(Errno::EISDIR);
        }
        let ino = *t.entries(dir)?.get(name).ok_or(Errno::ENOENT)?;
        if t.get(ino)?.is_dir() {
            return Err(Errno::EISDIR);
        }
        t.entries_mut(dir)?.remove(name);
        self.touch_dir(&mut t, dir);
        self.drop_link(&mut t, ino);
        Ok(())
    }

    fn rmdir(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        check_name(name)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let ino = *t.entries(dir)?.get(name).ok_or(Errno::ENOENT)?;
        if !t.entries(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        t.entries_mut(dir)?.remove(name);
        self.touch_dir(&mut t, dir);
        t.get_mut(dir)?.nlink -= 1;
        self.drop_link(&mut t, ino);
        Ok(())
    }

    fn rename(&self, old_dir: Ino, old_name: &[u8], new_dir: Ino, new_name: &[u8]) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        check_name(old_name)?;
        check_name(new_name)?;
        if is_dot(old_name) || is_dot(new_name) {
            return Err(Errno::EBUSY);
        }
        t.entries(new_dir)?;
        let ino = *t.entries(old_dir)?.get(old_name).ok_or(Errno::ENOENT)?;
        let is_dir = t.get(ino)?.is_dir();
        let target = t.entries(new_dir)?.get(new_name).copied();
        if target == Some(ino) {
            return Ok(()); // same file (or hard links to it): nothing happens
        }
        if is_dir && t.is_ancestor(ino, new_dir) {
            return Err(Errno::EINVAL);
        }
        if let Some(victim) = target {
            let v = t.get(victim)?;
            match (is_dir, v.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !t.entries(victim)?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        // Commit: nothing below can fail.
        t.entries_mut(old_dir)?.remove(old_name);
        t.entries_mut(new_dir)?.insert(new_name.to_vec(), ino);
        if let Some(victim) = target {
            if is_dir {
                t.get_mut(new_dir)?.nlink -= 1;
            }
            self.drop_link(&mut t, victim);
        }
        if is_dir && old_dir != new_dir {
            t.get_mut(old_dir)?.nlink -= 1;
            t.get_mut(new_dir)?.nlink += 1;
            if let Kind::Dir { parent, .. } = &mut t.get_mut(ino)?.kind {
                *parent = new_dir;
            }
        }
        self.touch_dir(&mut t, old_dir);
        self.touch_dir(&mut t, new_dir);
        let now = (self.clock)();
        t.get_mut(ino)?.ctime = now;
        Ok(())
    }

    fn exchange(
        &self,
        old_dir: Ino,
        old_name: &[u8],
        new_dir: Ino,
        new_name: &[u8],
    ) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        check_name(old_name)?;
        check_name(new_name)?;
        if is_dot(old_name) || is_dot(new_name) {
            return Err(Errno::EBUSY);
        }
        let a = *t.entries(old_dir)?.get(old_name).ok_or(Errno::ENOENT)?;
        let b = *t.entries(new_dir)?.get(new_name).ok_or(Errno::ENOENT)?;
        if a == b {
            return Ok(());
        }
        let (a_dir, b_dir) = (t.get(a)?.is_dir(), t.get(b)?.is_dir());
        // Neither may end up inside itself (Linux: EINVAL for both ways).
        if (a_dir && t.is_ancestor(a, new_dir)) || (b_dir && t.is_ancestor(b, old_dir)) {
            return Err(Errno::EINVAL);
        }
        // Commit: nothing below can fail.
        t.entries_mut(old_dir)?.insert(old_name.to_vec(), b);
        t.entries_mut(new_dir)?.insert(new_name.to_vec(), a);
        if old_dir != new_dir {
            // A directory's ".." moves with it, and so does the link it
            // gives its parent.
            for (ino, is_dir, from, to) in
                [(a, a_dir, old_dir, new_dir), (b, b_dir, new_dir, old_dir)]
            {
                if is_dir {
                    t.get_mut(from)?.nlink -= 1;
                    t.get_mut(to)?.nlink += 1;
                    if let Kind::Dir { parent, .. } = &mut t.get_mut(ino)?.kind {
                        *parent = to;
                    }
                }
            }
        }
        self.touch_dir(&mut t, old_dir);
        self.touch_dir(&mut t, new_dir);
        let now = (self.clock)();
        t.get_mut(a)?.ctime = now;
        t.get_mut(b)?.ctime = now;
        Ok(())
    }

    fn supports_whiteout(&self) -> bool {
        true
    }

    fn xattr_get(&self, ino: Ino, name: &[u8]) -> KResult<Vec<u8>> {
        let t = self.table.borrow();
        t.get(ino)?.xattrs.get(name).cloned().ok_or(Errno::ENODATA)
    }

    fn xattr_set(&self, ino: Ino, name: &[u8], value: Option<&[u8]>, flags: u32) -> KResult<()> {
        let now = (self.clock)();
        let mut t = self.table.borrow_mut();
        let n = t.get_mut(ino)?;
        let exists = n.xattrs.contains_key(name);
        match value {
            None if !exists => return Err(Errno::ENODATA),
            None => {
                n.xattrs.remove(name);
            }
            Some(_) if exists && flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST),
            Some(_) if !exists && flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA),
            Some(v) => {
                // Host memory per inode is bounded (Linux bounds tmpfs's
                // user xattrs per inode too).
                let others: usize = n
                    .xattrs
                    .iter()
                    .filter(|(k, _)| k.as_slice() != name)
                    .map(|(k, v)| k.len() + v.len())
                    .sum();
                if others + name.len() + v.len() > XATTR_SPACE {
                    return Err(Errno::ENOSPC);
                }
                n.xattrs.insert(name.to_vec(), v.to_vec());
            }
        }
        n.ctime = now;
        Ok(())
    }

    fn xattr_list(&self, ino: Ino) -> KResult<Vec<Vec<u8>>> {
        let t = self.table.borrow();
        Ok(t.get(ino)?.xattrs.keys().cloned().collect())
    }

    fn setattr(&self, ino: Ino, attr: &SetAttr) -> KResult<()> {
        let mut t = self.table.borrow_mut();
        t.get(ino)?;
        if let Some(size) = attr.size {
            self.set_size(&mut t, ino, size)?;
        }
        let now = (self.clock)();
        let n = t.get_mut(ino)?;
        if let Some(m) = attr.mode {
            n.mode = (n.mode & S_IFMT) | (m & 0o7777);
        }
        if let Some(u) = attr.uid {
            n.uid = u;
        }
        if let Some(g) = attr.gid {
            n.gid = g;
        }
        if let Some(a) = attr.atime {
            n.atime = a;
        }
        if let Some(m) = attr.mtime {
            n.mtime = m;
        }
        n.ctime = now;
        Ok(())
    }

    fn statfs(&self) -> KResult<StatFs> {
        let t = self.table.borrow();
        let used = self.pages_used();
        // Unlimited: report the used pages plus as many again as free, never 0.
        let total = self.opts.max_pages.unwrap_or(used.max(1) * 2);
        let free = total.saturating_sub(used);
        Ok(StatFs {
            fs_type: TMPFS_MAGIC,
            block_size: PAGE_SIZE as u64,
            blocks: total,
            blocks_free: free,
            blocks_avail: free,
            files: self.opts.max_inodes,
            files_free: self.opts.max_inodes.saturating_sub(t.nodes.len() as u64),
            name_max: node::NAME_MAX as u64,
        })
    }

    fn sync(&self) -> KResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
