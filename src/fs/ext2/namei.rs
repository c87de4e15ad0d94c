//! Name operations: create (regular, fifo, devices, sockets), mkdir,
//! symlink (fast and slow), readlink, link, unlink, rmdir, rename, setattr.
//! Inodes are reloaded before each change so two names for one directory
//! never hold stale copies.

use super::dir::check_name;
use super::disklayout::*;
use super::inode::Inode;
use super::{corrupt, now, Fs, Ino, SetAttr};
use crate::errno::{Errno, KResult};
use std::collections::HashSet;

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl Fs {
    /// Undo an inode allocation whose directory entry could not be made.
    fn abandon(&mut self, i: &mut Inode) {
        if let Err(e) = self.free_inode(i) {
            log::warn!(
                "ext2: could not release inode {} after a failed create: {e}",
                i.ino
            );
        }
    }

    /// Check `dir` is a directory without `name`.
    fn prepare_new_name(&self, dir: Ino, name: &[u8]) -> KResult<Inode> {
        self.check_rw()?;
        check_name(name)?;
        let d = self.load_dir(dir)?;
        if self.find_entry(&d, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(d)
    }

    pub fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u32,
    ) -> KResult<Ino> {
        let ft = mode & S_IFMT;
        if ![S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK].contains(&ft) {
            return Err(Errno::EINVAL);
        }
        let mut d = self.prepare_new_name(dir, name)?;
        let ino = self.alloc_inode(dir, false)?;
        let mut i = self.new_inode(ino, ft | (mode & 0o7777), uid, gid);
        if ft == S_IFCHR || ft == S_IFBLK {
            i.raw.set_rdev(rdev);
        }
        self.write_new_inode(&i)?;
        if let Err(e) = self.add_entry(&mut d, name, ino, mode_to_ft(ft)) {
            self.abandon(&mut i);
            return Err(e);
        }
        Ok(ino)
    }

    pub fn mkdir(&mut self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> KResult<Ino> {
        let d = self.prepare_new_name(dir, name)?;
        if d.raw.links_count() >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        let ino = self.alloc_inode(dir, true)?;
        let mut i = self.new_inode(ino, S_IFDIR | (mode & 0o7777), uid, gid);
        i.raw.set_links_count(2);
        self.write_new_inode(&i)?;
        let made = self.bmap_alloc(&mut i, 0, false).and_then(|(b, _)| {
            let data = self.new_dir_block(ino, dir);
            self.write_block(b, &data)
        });
        i.raw.set_size(self.geo.block_size as u64);
        if let Err(e) = made.and_then(|_| self.write_inode(&i)) {
            self.abandon(&mut i);
            return Err(e);
        }
        let mut d = self.load_dir(dir)?;
        if let Err(e) = self.add_entry(&mut d, name, ino, FT_DIR) {
            self.abandon(&mut i);
            return Err(e);
        }
        let mut d = self.load_dir(dir)?;
        d.raw.set_links_count(d.raw.links_count() + 1);
        self.write_inode(&d)?;
        Ok(ino)
    }

    pub fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> KResult<Ino> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= self.geo.block_size.min(4096) as usize {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut d = self.prepare_new_name(dir, name)?;
        let ino = self.alloc_inode(dir, false)?;
        let mut i = self.new_inode(ino, S_IFLNK | 0o777, uid, gid);
        i.raw.set_size(target.len() as u64);
        let fast = target.len() < 60;
        if fast {
            i.raw.block_bytes_mut()[..target.len()].copy_from_slice(target);
        }
        self.write_new_inode(&i)?;
        if !fast {
            // Allocated by hand: with no blocks yet it still looks fast to bmap.
            let goal = self.geo.first_data_block
                + (ino - 1) / self.geo.inodes_per_group * self.geo.blocks_per_group;
            let made = self.alloc_block(goal).and_then(|b| {
                i.raw.set_block(0, b);
                i.raw.set_blocks(self.geo.block_size / 512);
                let mut data = vec![0u8; self.geo.block_size as usize];
                data[..target.len()].copy_from_slice(target);
                self.write_block(b, &data)
            });
            if let Err(e) = made.and_then(|_| self.write_inode(&i)) {
                self.abandon(&mut i);
                return Err(e);
            }
        }
        if let Err(e) = self.add_entry(&mut d, name, ino, FT_SYMLINK) {
            self.abandon(&mut i);
            return Err(e);
        }
        Ok(ino)
    }

    pub fn readlink(&self, ino: Ino) -> KResult<Vec<u8>> {
        let i = self.load_inode(ino)?;
        if !i.raw.is_symlink() {
            return Err(Errno::EINVAL);
        }
        let len = i.raw.size() as usize; // load_inode bounded it below a block
        if self.is_fast_symlink(&i) {
            if len > 60 {
                return Err(corrupt(format_args!("fast symlink {ino} length {len}")));
            }
            return Ok(i.raw.block_bytes()[..len].to_vec());
        }
        let Some(b) = self.bmap(&i, 0)? else {
            return Err(corrupt(format_args!("slow symlink {ino} has no block")));
        };
        let mut data = self.read_block(b)?;
        data.truncate(len);
        Ok(data)
    }

    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> KResult<()> {
        let mut d = self.prepare_new_name(dir, name)?;
        let i = self.load_inode(ino)?;
        if i.raw.is_dir() {
            return Err(Errno::EPERM);
        }
        if i.raw.links_count() >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        self.add_entry(&mut d, name, ino, mode_to_ft(i.raw.mode() as u32))?;
        let mut i = self.load_inode(ino)?;
        i.raw.set_links_count(i.raw.links_count() + 1);
        i.raw.set_ctime(now());
        self.write_inode(&i)
    }

    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> KResult<()> {
        self.check_rw()?;
        let mut d = self.load_dir(dir)?;
        if is_dot(name) {
            return Err(Errno::EISDIR);
        }
        let slot = self.find_entry(&d, name)?.ok_or(Errno::ENOENT)?;
        let mut i = self.load_inode(slot.ino)?;
        if i.raw.is_dir() {
            return Err(Errno::EISDIR);
        }
        self.remove_entry(&mut d, &slot)?;
        self.drop_link(&mut i)
    }

    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> KResult<()> {
        self.check_rw()?;
        let mut d = self.load_dir(dir)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let slot = self.find_entry(&d, name)?.ok_or(Errno::ENOENT)?;
        let mut i = self.load_inode(slot.ino)?;
        if !i.raw.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !self.dir_is_empty(&i)? {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove_entry(&mut d, &slot)?;
        let mut d = self.load_dir(dir)?;
        d.raw
            .set_links_count(d.raw.links_count().saturating_sub(1).max(1));
        self.write_inode(&d)?;
        self.free_inode(&mut i)
    }

    /// Whether directory `ino` is `ancestor` or below it, following `..`.
    fn is_within(&self, ino: Ino, ancestor: Ino) -> KResult<bool> {
        let mut cur = ino;
        let mut seen = HashSet::new();
        loop {
            if cur == ancestor {
                return Ok(true);
            }
            if cur == ROOT_INO {
                return Ok(false);
            }
            if !seen.insert(cur) {
                return Err(corrupt(format_args!("directory loop through inode {cur}")));
            }
            let d = self.load_dir(cur)?;
            cur = match self.find_entry(&d, b"..")? {
                Some(s) => s.ino,
                None => return Err(corrupt(format_args!("directory {cur} has no '..'"))),
            };
        }
    }

    fn adjust_links(&mut self, dir: Ino, delta: i32) -> KResult<()> {
        let mut d = self.load_dir(dir)?;
        let n = (d.raw.links_count() as i32 + delta).clamp(1, LINK_MAX as i32);
        d.raw.set_links_count(n as u16);
        d.raw.set_ctime(now());
        self.write_inode(&d)
    }

    pub fn rename(&mut self, odir: Ino, oname: &[u8], ndir: Ino, nname: &[u8]) -> KResult<()> {
        self.check_rw()?;
        if is_dot(oname) || is_dot(nname) {
            return Err(Errno::EINVAL);
        }
        check_name(nname)?;
        let od = self.load_dir(odir)?;
        let src_ino = self.find_entry(&od, oname)?.ok_or(Errno::ENOENT)?.ino;
        let src = self.load_inode(src_ino)?;
        let nd = self.load_dir(ndir)?;
        let src_is_dir = src.raw.is_dir();
        if src_is_dir && self.is_within(ndir, src_ino)? {
            return Err(Errno::EINVAL);
        }
        let ft = mode_to_ft(src.raw.mode() as u32);
        let mut nlink_ndir = 0;
        match self.find_entry(&nd, nname)? {
            Some(t) if t.ino == src_ino => return Ok(()),
            Some(t) => {
                let mut tgt = self.load_inode(t.ino)?;
                if src_is_dir && !tgt.raw.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if !src_is_dir && tgt.raw.is_dir() {
                    return Err(Errno::EISDIR);
                }
                if tgt.raw.is_dir() && !self.dir_is_empty(&tgt)? {
                    return Err(Errno::ENOTEMPTY);
                }
                let mut nd = nd;
                self.retarget_entry(&mut nd, &t, src_ino, ft)?;
                if tgt.raw.is_dir() {
                    nlink_ndir -= 1;
                    self.free_inode(&mut tgt)?;
                } else {
                    self.drop_link(&mut tgt)?;
                }
            }
            None => {
                if src_is_dir && odir != ndir && nd.raw.links_count() >= LINK_MAX {
                    return Err(Errno::EMLINK);
                }
                let mut nd = nd;
                self.add_entry(&mut nd, nname, src_ino, ft)?;
            }
        }
        let mut od = self.load_dir(odir)?;
        let slot = self
            .find_entry(&od, oname)?
            .ok_or_else(|| corrupt(format_args!("rename source vanished")))?;
        self.remove_entry(&mut od, &slot)?;
        if src_is_dir && odir != ndir {
            let mut s = self.load_dir(src_ino)?;
            if let Some(dd) = self.find_entry(&s, b"..")? {
                self.retarget_entry(&mut s, &dd, ndir, FT_DIR)?;
            }
            self.adjust_links(odir, -1)?;
            nlink_ndir += 1;
        }
        if nlink_ndir != 0 {
            self.adjust_links(ndir, nlink_ndir)?;
        }
        let mut s = self.load_inode(src_ino)?;
        s.raw.set_ctime(now());
        self.write_inode(&s)
    }

    pub fn setattr(&mut self, ino: Ino, a: &SetAttr) -> KResult<()> {
        self.check_rw()?;
        let mut i = self.load_inode(ino)?;
        if let Some(size) = a.size {
            match i.raw.file_type() {
                S_IFREG => self.truncate_inode(&mut i, size)?,
                S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
        }
        if let Some(m) = a.mode {
            i.raw
                .set_mode(((i.raw.mode() as u32 & S_IFMT) | (m & 0o7777)) as u16);
        }
        if let Some(u) = a.uid {
            i.raw.set_uid(u);
        }
        if let Some(g) = a.gid {
            i.raw.set_gid(g);
        }
        let clamp = |t: i64| t.clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32;
        if let Some(t) = a.atime {
            i.raw.set_atime(clamp(t));
        }
        if let Some(t) = a.mtime {
            i.raw.set_mtime(clamp(t));
        }
        i.raw.set_ctime(now());
        self.write_inode(&i)
    }
}
