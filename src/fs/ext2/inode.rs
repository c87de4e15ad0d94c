//! Inodes: locating, loading with checks, storing, initialising fresh ones,
//! freeing the last link, and the `Stat` view.

use super::disklayout::*;
use super::{corrupt, now, Fs, Ino, Stat};
use crate::errno::KResult;

/// An inode in memory: its number and its first 128 bytes.
#[derive(Clone)]
pub(crate) struct Inode {
    pub ino: Ino,
    pub raw: RawInode,
}

impl Fs {
    /// Byte offset of inode `ino` on the device (range-checked).
    fn inode_offset(&self, ino: Ino) -> KResult<u64> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(corrupt(format_args!("inode number {ino} out of range")));
        }
        let g = (ino - 1) / self.geo.inodes_per_group;
        let idx = (ino - 1) % self.geo.inodes_per_group;
        let table = self.gd(g)?.inode_table();
        Ok(table as u64 * self.geo.block_size as u64 + idx as u64 * self.geo.inode_size as u64)
    }

    /// Read an inode without judging its contents (allocation, freeing).
    pub fn read_raw_inode(&self, ino: Ino) -> KResult<Inode> {
        let off = self.inode_offset(ino)?;
        let mut buf = [0u8; GOOD_OLD_INODE_SIZE];
        self.read_bytes(off, &mut buf)?;
        Ok(Inode {
            ino,
            raw: RawInode(buf),
        })
    }

    /// Load an inode that a name or the root refers to: it must be a
    /// reachable, live inode with sane size for its type.
    pub fn load_inode(&self, ino: Ino) -> KResult<Inode> {
        if ino != ROOT_INO && ino < self.geo.first_ino {
            return Err(corrupt(format_args!("reference to reserved inode {ino}")));
        }
        let i = self.read_raw_inode(ino)?;
        let raw = &i.raw;
        if raw.links_count() == 0 || raw.mode() == 0 {
            return Err(corrupt(format_args!("reference to deleted inode {ino}")));
        }
        let ft = raw.file_type();
        if ![
            S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK,
        ]
        .contains(&ft)
        {
            return Err(corrupt(format_args!(
                "inode {ino} has bad mode {:o}",
                raw.mode()
            )));
        }
        if raw.size() > self.geo.max_file_size {
            return Err(corrupt(format_args!(
                "inode {ino} size {} too large",
                raw.size()
            )));
        }
        if raw.is_dir() && raw.size() == 0 {
            return Err(corrupt(format_args!("directory inode {ino} has size 0")));
        }
        if raw.is_symlink()
            && (raw.size() == 0 || raw.size() >= self.geo.block_size.min(4096) as u64)
        {
            return Err(corrupt(format_args!("symlink {ino} length {}", raw.size())));
        }
        Ok(i)
    }

    pub fn write_inode(&self, i: &Inode) -> KResult<()> {
        let off = self.inode_offset(i.ino)?;
        self.write_bytes(off, &i.raw.0)
    }

    /// Write a fresh inode record: zeroed, with `i_extra_isize` set when the
    /// record is large (as mke2fs and Linux do).
    pub fn write_new_inode(&self, i: &Inode) -> KResult<()> {
        let off = self.inode_offset(i.ino)?;
        let mut rec = vec![0u8; self.geo.inode_size as usize];
        rec[..GOOD_OLD_INODE_SIZE].copy_from_slice(&i.raw.0);
        if rec.len() >= GOOD_OLD_INODE_SIZE + 32 {
            rec[GOOD_OLD_INODE_SIZE..GOOD_OLD_INODE_SIZE + 2].copy_from_slice(&32u16.to_le_bytes());
        }
        self.write_bytes(off, &rec)
    }

    /// A fresh in-memory inode (not yet written).
    pub fn new_inode(&mut self, ino: Ino, mode: u32, uid: u32, gid: u32) -> Inode {
        let mut raw = RawInode::zeroed();
        let t = now();
        raw.set_mode(mode as u16);
        raw.set_uid(uid);
        raw.set_gid(gid);
        raw.set_atime(t);
        raw.set_ctime(t);
        raw.set_mtime(t);
        raw.set_links_count(1);
        self.generation = self.generation.wrapping_add(1);
        raw.set_generation(self.generation);
        Inode { ino, raw }
    }

    /// Whether `i_block` holds block pointers (not a fast symlink target or
    /// a device number).
    pub fn has_block_map(&self, i: &Inode) -> bool {
        match i.raw.file_type() {
            S_IFREG | S_IFDIR => true,
            S_IFLNK => !self.is_fast_symlink(i),
            _ => false,
        }
    }

    /// Linux's rule: a symlink with no data blocks (an xattr block aside).
    pub fn is_fast_symlink(&self, i: &Inode) -> bool {
        let ea = if i.raw.file_acl() != 0 {
            self.geo.block_size / 512
        } else {
            0
        };
        i.raw.is_symlink() && i.raw.blocks().saturating_sub(ea) == 0
    }

    /// Drop one link; at zero free the blocks and the inode.
    pub fn drop_link(&mut self, i: &mut Inode) -> KResult<()> {
        let links = i.raw.links_count().saturating_sub(1);
        i.raw.set_links_count(links);
        i.raw.set_ctime(now());
        if links == 0 {
            self.free_inode(i)
        } else {
            self.write_inode(i)
        }
    }

    /// Release everything an unlinked inode holds.
    pub fn free_inode(&mut self, i: &mut Inode) -> KResult<()> {
        if self.has_block_map(i) {
            self.free_blocks_from(i, 0)?;
        }
        self.release_xattr_block(i)?;
        let is_dir = i.raw.is_dir();
        i.raw.set_links_count(0);
        i.raw.set_dtime(now().max(1));
        i.raw.set_size(0);
        if !self.has_block_map(i) && !i.raw.is_symlink() {
            // device numbers live in i_block; clear them with the rest.
            for b in 0..N_BLOCKS {
                i.raw.set_block(b, 0);
            }
        }
        self.write_inode(i)?;
        self.free_inode_bit(i.ino, is_dir)
    }

    /// Drop this inode's reference to its extended attribute block.
    pub fn release_xattr_block(&mut self, i: &mut Inode) -> KResult<()> {
        let b = i.raw.file_acl();
        if b == 0 {
            return Ok(());
        }
        i.raw.set_file_acl(0);
        let spb = self.geo.block_size / 512;
        i.raw.set_blocks(i.raw.blocks().saturating_sub(spb));
        let b = match self.check_block(b, "xattr block") {
            Ok(b) => b,
            Err(_) => return Ok(()),
        };
        let mut blk = self.read_block(b)?;
        if read_u32(&blk, 0) != 0xEA02_0000 {
            log::warn!(
                "ext2: inode {} xattr block {b} has no magic; left alone",
                i.ino
            );
            return Ok(());
        }
        let refs = read_u32(&blk, 4);
        if refs > 1 {
            write_u32(&mut blk, 4, refs - 1);
            self.write_block(b, &blk)
        } else {
            self.free_block(b)
        }
    }

    pub fn stat_of(&self, i: &Inode) -> Stat {
        let r = &i.raw;
        let ft = r.file_type();
        let rdev = if ft == S_IFCHR || ft == S_IFBLK {
            r.rdev() as u64
        } else {
            0
        };
        Stat {
            ino: i.ino,
            mode: r.mode() as u32,
            nlink: r.links_count() as u32,
            uid: r.uid(),
            gid: r.gid(),
            size: r.size(),
            blocks: r.blocks() as u64,
            atime: r.atime() as i32 as i64,
            mtime: r.mtime() as i32 as i64,
            ctime: r.ctime() as i32 as i64,
            rdev,
            blksize: self.geo.block_size,
        }
    }
}
