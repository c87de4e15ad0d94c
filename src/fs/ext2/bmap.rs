//! Block maps: file block -> disk block through the 12 direct pointers and
//! the single, double and triple indirect trees; holes read as zeros;
//! allocation of missing blocks; freeing everything from a file block on.
//! Every pointer is range-checked before it is followed; the fixed tree
//! depth means a hostile map can never make a walk loop.

use super::disklayout::*;
use super::inode::Inode;
use super::Fs;
use crate::errno::{Errno, KResult};

/// Where a file block lives: an `i_block` slot and the indexes inside the
/// indirect blocks below it (empty for direct blocks).
struct MapPath {
    slot: usize,
    idx: Vec<u64>,
}

impl Fs {
    fn map_path(&self, fb: u64) -> KResult<MapPath> {
        let p = self.geo.ptrs_per_block;
        let mut n = fb;
        if n < N_DIRECT as u64 {
            return Ok(MapPath {
                slot: n as usize,
                idx: vec![],
            });
        }
        n -= N_DIRECT as u64;
        if n < p {
            return Ok(MapPath {
                slot: IND_BLOCK,
                idx: vec![n],
            });
        }
        n -= p;
        if n < p * p {
            return Ok(MapPath {
                slot: DIND_BLOCK,
                idx: vec![n / p, n % p],
            });
        }
        n -= p * p;
        if n < p * p * p {
            return Ok(MapPath {
                slot: TIND_BLOCK,
                idx: vec![n / (p * p), (n / p) % p, n % p],
            });
        }
        Err(Errno::EFBIG)
    }

    fn sectors_per_block(&self) -> u32 {
        self.geo.block_size / 512
    }

    fn read_ptr(&self, block: u32, idx: u64) -> KResult<u32> {
        let mut b = [0u8; 4];
        self.read_bytes(self.block_offset(block) + idx * 4, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn write_ptr(&self, block: u32, idx: u64, v: u32) -> KResult<()> {
        self.write_bytes(self.block_offset(block) + idx * 4, &v.to_le_bytes())
    }

    /// The disk block of file block `fb`, or None for a hole.
    pub fn bmap(&self, i: &Inode, fb: u64) -> KResult<Option<u32>> {
        if !self.has_block_map(i) {
            return Err(Errno::EINVAL);
        }
        let path = self.map_path(fb)?;
        let mut b = i.raw.block(path.slot);
        for &idx in &path.idx {
            if b == 0 {
                return Ok(None);
            }
            let ind = self.check_block(b, "indirect block")?;
            b = self.read_ptr(ind, idx)?;
        }
        if b == 0 {
            return Ok(None);
        }
        Ok(Some(self.check_block(b, "data block")?))
    }

    /// Allocate a block and account it to the inode.
    fn alloc_for(&mut self, i: &mut Inode, goal: u32, zero: bool) -> KResult<u32> {
        let spb = self.sectors_per_block();
        let blocks = i.raw.blocks().checked_add(spb).ok_or(Errno::EFBIG)?;
        let b = self.alloc_block(goal)?;
        if zero {
            if let Err(e) = self.zero_block(b) {
                let _ = self.free_block(b);
                return Err(e);
            }
        }
        i.raw.set_blocks(blocks);
        Ok(b)
    }

    /// Map file block `fb`, allocating it (and indirect blocks) if it is a
    /// hole. Returns the block and whether it is new. New data blocks are
    /// zeroed when `zero`. The caller writes the inode back, also on error.
    pub fn bmap_alloc(&mut self, i: &mut Inode, fb: u64, zero: bool) -> KResult<(u32, bool)> {
        if !self.has_block_map(i) {
            return Err(Errno::EINVAL);
        }
        if let Some(b) = self.bmap(i, fb)? {
            return Ok((b, false));
        }
        self.check_rw()?;
        let goal = match fb.checked_sub(1).map(|p| self.bmap(i, p)) {
            Some(Ok(Some(prev))) => prev + 1,
            _ => {
                let g = (i.ino - 1) / self.geo.inodes_per_group;
                self.geo.first_data_block + g * self.geo.blocks_per_group
            }
        };
        let path = self.map_path(fb)?;
        let mut cur = i.raw.block(path.slot);
        let mut fresh = false;
        if cur == 0 {
            let leaf = path.idx.is_empty();
            cur = self.alloc_for(i, goal, !leaf || zero)?;
            i.raw.set_block(path.slot, cur);
            fresh = true;
        }
        for (level, &idx) in path.idx.iter().enumerate() {
            let ind = self.check_block(cur, "indirect block")?;
            let mut next = self.read_ptr(ind, idx)?;
            if next == 0 {
                let leaf = level + 1 == path.idx.len();
                next = self.alloc_for(i, cur + 1, !leaf || zero)?;
                self.write_ptr(ind, idx, next)?;
                fresh = true;
            }
            cur = next;
        }
        Ok((self.check_block(cur, "data block")?, fresh))
    }

    /// Free a block the map pointed at; bad or doubly-freed pointers are
    /// reported and dropped, never followed.
    fn release(&mut self, i: &mut Inode, b: u32) -> KResult<()> {
        if self.check_block(b, "freeing").is_ok() {
            match self.free_block(b) {
                Ok(()) | Err(Errno::EIO) => {}
                Err(e) => return Err(e),
            }
        }
        let spb = self.sectors_per_block();
        i.raw.set_blocks(i.raw.blocks().saturating_sub(spb));
        Ok(())
    }

    /// Free the part of an indirect tree at `block` (depth `level`, first
    /// file block `base`) that maps file blocks >= `from`. Returns whether
    /// the tree block is now empty.
    fn free_tree(
        &mut self,
        i: &mut Inode,
        block: u32,
        level: u32,
        base: u64,
        from: u64,
    ) -> KResult<bool> {
        let mut data = self.read_block(block)?;
        let p = self.geo.ptrs_per_block;
        let child_span = p.pow(level - 1);
        let mut changed = false;
        for k in 0..p {
            let child_base = base + k * child_span;
            let ptr = read_u32(&data, (k * 4) as usize);
            if ptr == 0 || child_base + child_span <= from {
                continue;
            }
            let empty = if level == 1 || self.check_block(ptr, "indirect block").is_err() {
                true
            } else {
                self.free_tree(i, ptr, level - 1, child_base, from)?
            };
            if empty {
                self.release(i, ptr)?;
                write_u32(&mut data, (k * 4) as usize, 0);
                changed = true;
            }
        }
        if changed {
            self.write_block(block, &data)?;
        }
        Ok(data.iter().all(|&b| b == 0))
    }

    /// Free every block mapping file block `from` or later (truncate).
    /// The caller writes the inode back.
    pub fn free_blocks_from(&mut self, i: &mut Inode, from: u64) -> KResult<()> {
        self.check_rw()?;
        for s in (from.min(N_DIRECT as u64) as usize)..N_DIRECT {
            let b = i.raw.block(s);
            if b != 0 {
                self.release(i, b)?;
                i.raw.set_block(s, 0);
            }
        }
        let p = self.geo.ptrs_per_block;
        let mut base = N_DIRECT as u64;
        for (level, slot) in [(1u32, IND_BLOCK), (2, DIND_BLOCK), (3, TIND_BLOCK)] {
            let span = p.pow(level);
            let b = i.raw.block(slot);
            if b != 0 && from < base + span {
                let empty = if self.check_block(b, "indirect block").is_err() {
                    true
                } else {
                    self.free_tree(i, b, level, base, from)?
                };
                if empty {
                    self.release(i, b)?;
                    i.raw.set_block(slot, 0);
                }
            }
            base += span;
        }
        Ok(())
    }
}
