//! Mounting: superblock and group descriptor checks, the derived geometry,
//! and writing the superblock and descriptors back (sync, unmount, statfs).

use super::disklayout::*;
use super::{corrupt, now, Fs, Geometry, StatFs};
use crate::errno::{Errno, KResult};
use crate::fs::blockio::BlockIo;
use std::sync::Arc;

fn refuse(why: std::fmt::Arguments) -> Errno {
    log::warn!("ext2: cannot mount: {why}");
    Errno::EINVAL
}

/// Derive and check the geometry; every error names the bad field.
fn geometry(sb: &Superblock, dev_size: u64) -> KResult<Geometry> {
    if sb.magic() != EXT2_MAGIC {
        return Err(refuse(format_args!("bad magic {:#x}", sb.magic())));
    }
    if sb.rev_level() > 1 {
        return Err(refuse(format_args!(
            "revision {} unsupported",
            sb.rev_level()
        )));
    }
    if sb.log_block_size() > 2 {
        return Err(refuse(format_args!(
            "block size 1024<<{} unsupported",
            sb.log_block_size()
        )));
    }
    let block_size = 1024u32 << sb.log_block_size();
    let inode_size = sb.inode_size();
    if inode_size < GOOD_OLD_INODE_SIZE as u32
        || !inode_size.is_power_of_two()
        || inode_size > block_size
    {
        return Err(refuse(format_args!("inode size {inode_size}")));
    }
    let expected_first = if block_size == 1024 { 1 } else { 0 };
    if sb.first_data_block() != expected_first {
        return Err(refuse(format_args!(
            "first data block {}",
            sb.first_data_block()
        )));
    }
    let bpg = sb.blocks_per_group();
    let ipg = sb.inodes_per_group();
    if bpg == 0 || bpg > 8 * block_size || ipg == 0 || ipg > 8 * block_size {
        return Err(refuse(format_args!("blocks/inodes per group {bpg}/{ipg}")));
    }
    let blocks_count = sb.blocks_count();
    if blocks_count <= sb.first_data_block() + 1 {
        return Err(refuse(format_args!("block count {blocks_count}")));
    }
    if blocks_count as u64 * block_size as u64 > dev_size {
        return Err(refuse(format_args!(
            "block count {blocks_count} exceeds device size {dev_size}"
        )));
    }
    let groups = (blocks_count - sb.first_data_block()).div_ceil(bpg);
    let inodes_count = sb.inodes_count();
    if inodes_count == 0 || inodes_count as u64 > ipg as u64 * groups as u64 {
        return Err(refuse(format_args!("inode count {inodes_count}")));
    }
    let first_ino = sb.first_ino();
    if first_ino <= ROOT_INO || first_ino > inodes_count {
        return Err(refuse(format_args!("first inode {first_ino}")));
    }
    let inodes_per_block = block_size / inode_size;
    let ptrs = block_size as u64 / 4;
    let max_blocks = N_DIRECT as u64 + ptrs + ptrs * ptrs + ptrs * ptrs * ptrs;
    // i_blocks is 32 bits of 512-byte sectors; stay below that too.
    let max_file_size = (max_blocks * block_size as u64)
        .min((1u64 << 32) * 512 - 1)
        .min(i64::MAX as u64);
    Ok(Geometry {
        block_size,
        blocks_count,
        first_data_block: sb.first_data_block(),
        blocks_per_group: bpg,
        inodes_per_group: ipg,
        inodes_count,
        inode_size,
        first_ino,
        groups,
        itb_per_group: ipg.div_ceil(inodes_per_block),
        filetype: sb.feature_incompat() & FEATURE_INCOMPAT_FILETYPE != 0,
        ptrs_per_block: ptrs,
        max_file_size,
    })
}

impl Fs {
    pub fn mount(dev: Arc<dyn BlockIo>, mut read_only: bool) -> KResult<Fs> {
        let dev_size = dev.size();
        let mut buf = vec![0u8; SUPERBLOCK_SIZE];
        if dev_size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
            return Err(refuse(format_args!(
                "device of {dev_size} bytes is too small"
            )));
        }
        dev.read_at(SUPERBLOCK_OFFSET, &mut buf)
            .map_err(|e| super::io_error("superblock read", e))?;
        let sb = Superblock::parse(&buf).ok_or(Errno::EINVAL)?;
        let geo = geometry(&sb, dev_size)?;
        let incompat = sb.feature_incompat() & !SUPPORTED_INCOMPAT;
        if incompat != 0 {
            return Err(refuse(format_args!(
                "unsupported incompat features {incompat:#x}"
            )));
        }
        let ro_compat = sb.feature_ro_compat() & !SUPPORTED_RO_COMPAT;
        if ro_compat != 0 && !read_only {
            log::warn!("ext2: unsupported ro-compat features {ro_compat:#x}: mounting read-only");
            read_only = true;
        }
        if sb.state() & STATE_VALID == 0 {
            log::warn!("ext2: mounting a file system that was not cleanly unmounted");
        }
        let gdt_start = geo.first_data_block + 1;
        let gdt_len = geo.groups as usize * GROUP_DESC_SIZE;
        let mut gdt = vec![0u8; gdt_len];
        let gdt_off = gdt_start as u64 * geo.block_size as u64;
        if gdt_off + gdt_len as u64 > geo.blocks_count as u64 * geo.block_size as u64 {
            return Err(refuse(format_args!("group descriptors past the end")));
        }
        dev.read_at(gdt_off, &mut gdt)
            .map_err(|e| super::io_error("group descriptor read", e))?;
        let mut gds = Vec::with_capacity(geo.groups as usize);
        for (g, chunk) in gdt.chunks_exact(GROUP_DESC_SIZE).enumerate() {
            let gd = GroupDesc::parse(chunk).ok_or(Errno::EINVAL)?;
            let lo = geo.first_data_block;
            let hi = geo.blocks_count;
            let in_range = |b: u32| b >= lo && b < hi;
            if !in_range(gd.block_bitmap())
                || !in_range(gd.inode_bitmap())
                || !in_range(gd.inode_table())
                || gd.inode_table() as u64 + geo.itb_per_group as u64 > hi as u64
                || gd.free_blocks_count() as u32 > geo.blocks_per_group
                || gd.free_inodes_count() as u32 > geo.inodes_per_group
            {
                return Err(refuse(format_args!("group descriptor {g} is corrupt")));
            }
            gds.push(gd);
        }
        let mut fs = Fs {
            dev,
            read_only,
            geo,
            sb,
            gds,
            gdt_start,
            sb_dirty: false,
            unmounted: false,
            generation: now(),
        };
        let root = fs.load_inode(ROOT_INO)?;
        if !root.raw.is_dir() {
            return Err(refuse(format_args!("root inode is not a directory")));
        }
        if !fs.read_only {
            let state = fs.sb.state();
            fs.sb.set_state(state & !STATE_VALID);
            fs.sb.set_mnt_count(fs.sb.mnt_count().wrapping_add(1));
            fs.sb.set_mtime(now());
            fs.write_super()?;
        }
        Ok(fs)
    }

    /// Group descriptor `g`, or EIO if `g` is out of range.
    pub fn gd(&self, g: u32) -> KResult<&GroupDesc> {
        self.gds
            .get(g as usize)
            .ok_or_else(|| corrupt(format_args!("group {g} out of range")))
    }

    pub fn write_gd(&self, g: u32) -> KResult<()> {
        let off =
            self.gdt_start as u64 * self.geo.block_size as u64 + g as u64 * GROUP_DESC_SIZE as u64;
        self.write_bytes(off, &self.gds[g as usize].0)
    }

    /// Write the superblock with free counts summed from the descriptors.
    pub fn write_super(&mut self) -> KResult<()> {
        let fb: u64 = self.gds.iter().map(|g| g.free_blocks_count() as u64).sum();
        let fi: u64 = self.gds.iter().map(|g| g.free_inodes_count() as u64).sum();
        self.sb
            .set_free_blocks_count(fb.min(self.geo.blocks_count as u64) as u32);
        self.sb
            .set_free_inodes_count(fi.min(self.geo.inodes_count as u64) as u32);
        self.sb.set_wtime(now());
        let data = self.sb.0;
        self.write_bytes(SUPERBLOCK_OFFSET, &data)?;
        self.sb_dirty = false;
        Ok(())
    }

    pub fn sync(&mut self) -> KResult<()> {
        if self.read_only {
            return Ok(());
        }
        if self.sb_dirty {
            self.write_super()?;
        }
        self.dev.flush().map_err(|e| super::io_error("flush", e))
    }

    /// `mount -o remount,ro` / `remount,rw`: read-only marks the file
    /// system clean and flushes (as unmount does, but it stays mounted);
    /// read-write marks it in use again. Unsupported ro-compat features
    /// refuse read-write with EROFS, as Linux's ext2_remount does.
    pub fn remount(&mut self, read_only: bool) -> KResult<()> {
        if self.unmounted {
            return Err(Errno::EINVAL);
        }
        if read_only == self.read_only {
            return Ok(());
        }
        if read_only {
            let state = self.sb.state();
            self.sb.set_state(state | STATE_VALID);
            self.sb_dirty = true;
            self.sync()?;
            self.read_only = true;
            return Ok(());
        }
        let ro_compat = self.sb.feature_ro_compat() & !SUPPORTED_RO_COMPAT;
        if ro_compat != 0 {
            log::warn!("ext2: unsupported ro-compat features {ro_compat:#x}: staying read-only");
            return Err(Errno::EROFS);
        }
        self.read_only = false;
        let state = self.sb.state();
        self.sb.set_state(state & !STATE_VALID);
        self.sb.set_mnt_count(self.sb.mnt_count().wrapping_add(1));
        self.sb.set_mtime(now());
        if let Err(e) = self.write_super() {
            self.read_only = true;
            return Err(e);
        }
        Ok(())
    }

    pub fn unmount(&mut self) -> KResult<()> {
        if self.unmounted {
            return Ok(());
        }
        if !self.read_only {
            let state = self.sb.state();
            self.sb.set_state(state | STATE_VALID);
            self.sb_dirty = true;
            self.sync()?;
        }
        self.unmounted = true;
        self.read_only = true;
        Ok(())
    }

    pub fn statfs(&self) -> StatFs {
        let free: u64 = self.gds.iter().map(|g| g.free_blocks_count() as u64).sum();
        let free_files: u64 = self.gds.iter().map(|g| g.free_inodes_count() as u64).sum();
        StatFs {
            block_size: self.geo.block_size,
            blocks: self.geo.blocks_count as u64,
            free_blocks: free,
            avail_blocks: free.saturating_sub(self.sb.r_blocks_count() as u64),
            files: self.geo.inodes_count as u64,
            free_files,
            name_max: NAME_MAX as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plausible 1 KiB-block superblock for an 8 MiB device.
    fn sb() -> Superblock {
        let mut sb = Superblock([0; SUPERBLOCK_SIZE]);
        sb.set_magic(EXT2_MAGIC);
        sb.set_rev_level(1);
        sb.set_log_block_size(0);
        sb.set_first_data_block(1);
        sb.set_blocks_count(8192);
        sb.set_blocks_per_group(8192);
        sb.set_inodes_per_group(2048);
        sb.set_inodes_count(2048);
        sb.set_first_ino_raw(11);
        sb.set_inode_size_raw(128);
        sb
    }

    #[test]
    fn geometry_of_a_good_superblock() {
        let g = geometry(&sb(), 8 << 20).unwrap();
        assert_eq!((g.block_size, g.groups, g.itb_per_group), (1024, 1, 256));
        assert_eq!(
            g.max_file_size,
            (12 + 256 + 256 * 256 + 256 * 256 * 256) * 1024
        );
    }

    #[test]
    fn geometry_rejects_bad_fields() {
        type Damage = Box<dyn Fn(&mut Superblock)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("magic", Box::new(|s| s.set_magic(0))),
            ("revision", Box::new(|s| s.set_rev_level(2))),
            ("block size", Box::new(|s| s.set_log_block_size(7))),
            ("inode size", Box::new(|s| s.set_inode_size_raw(100))),
            ("first data block", Box::new(|s| s.set_first_data_block(0))),
            ("blocks per group", Box::new(|s| s.set_blocks_per_group(0))),
            (
                "inodes per group",
                Box::new(|s| s.set_inodes_per_group(1 << 20)),
            ),
            ("past device", Box::new(|s| s.set_blocks_count(9000))),
            ("inode count", Box::new(|s| s.set_inodes_count(5000))),
            ("first ino", Box::new(|s| s.set_first_ino_raw(2))),
        ];
        for (what, f) in cases {
            let mut s = sb();
            f(&mut s);
            assert_eq!(geometry(&s, 8 << 20).err(), Some(Errno::EINVAL), "{what}");
        }
    }
}
