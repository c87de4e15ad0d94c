//! Block and inode allocation: the per-group bitmaps and the group free
//! counters (the superblock summary is summed from these on write-back).
//! A bitmap that disagrees with its counter is reported and skipped.

use super::{corrupt, Fs, Ino};
use crate::errno::{Errno, KResult};

/// First clear bit at or after `start` and below `limit`.
fn find_clear(bitmap: &[u8], start: u32, limit: u32) -> Option<u32> {
    let limit = limit.min(bitmap.len() as u32 * 8);
    let mut bit = start;
    while bit < limit {
        let byte = bitmap[(bit / 8) as usize];
        if byte == 0xff && bit.is_multiple_of(8) {
            bit += 8;
            continue;
        }
        if byte & (1 << (bit % 8)) == 0 {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

fn test_bit(bitmap: &[u8], bit: u32) -> bool {
    bitmap[(bit / 8) as usize] & (1 << (bit % 8)) != 0
}

fn flip_bit(bitmap: &mut [u8], bit: u32) {
    bitmap[(bit / 8) as usize] ^= 1 << (bit % 8);
}

impl Fs {
    /// Blocks in group `g` (the last group may be short).
    fn blocks_in_group(&self, g: u32) -> u32 {
        let start = self.geo.first_data_block + g * self.geo.blocks_per_group;
        (self.geo.blocks_count - start).min(self.geo.blocks_per_group)
    }

    fn group_of_block(&self, b: u32) -> (u32, u32) {
        let rel = b - self.geo.first_data_block;
        (
            rel / self.geo.blocks_per_group,
            rel % self.geo.blocks_per_group,
        )
    }

    /// Allocate one block, preferring `goal` and its group. Not zeroed.
    pub fn alloc_block(&mut self, goal: u32) -> KResult<u32> {
        self.check_rw()?;
        let goal = if goal >= self.geo.first_data_block && goal < self.geo.blocks_count {
            goal
        } else {
            self.geo.first_data_block
        };
        let (goal_group, goal_bit) = self.group_of_block(goal);
        for n in 0..=self.geo.groups {
            let g = (goal_group + n) % self.geo.groups;
            if self.gds[g as usize].free_blocks_count() == 0 {
                continue;
            }
            let bitmap_block =
                self.check_block(self.gds[g as usize].block_bitmap(), "block bitmap")?;
            let mut bitmap = self.read_block(bitmap_block)?;
            let limit = self.blocks_in_group(g);
            let start = if n == 0 { goal_bit } else { 0 };
            let found = find_clear(&bitmap, start, limit)
                .or_else(|| find_clear(&bitmap, 0, start.min(limit)));
            let Some(bit) = found else {
                let _ = corrupt(format_args!(
                    "group {g} counts free blocks but its bitmap is full"
                ));
                continue;
            };
            flip_bit(&mut bitmap, bit);
            self.write_block(bitmap_block, &bitmap)?;
            let gd = &mut self.gds[g as usize];
            gd.set_free_blocks_count(gd.free_blocks_count() - 1);
            self.write_gd(g)?;
            self.sb_dirty = true;
            return Ok(self.geo.first_data_block + g * self.geo.blocks_per_group + bit);
        }
        Err(Errno::ENOSPC)
    }

    /// Free one block. A block already free is reported, not counted twice.
    pub fn free_block(&mut self, b: u32) -> KResult<()> {
        let b = self.check_block(b, "freeing")?;
        let (g, bit) = self.group_of_block(b);
        let bitmap_block = self.check_block(self.gd(g)?.block_bitmap(), "block bitmap")?;
        let mut bitmap = self.read_block(bitmap_block)?;
        if !test_bit(&bitmap, bit) {
            return Err(corrupt(format_args!("freeing free block {b}")));
        }
        flip_bit(&mut bitmap, bit);
        self.write_block(bitmap_block, &bitmap)?;
        let gd = &mut self.gds[g as usize];
        gd.set_free_blocks_count(gd.free_blocks_count().saturating_add(1));
        self.write_gd(g)?;
        self.sb_dirty = true;
        Ok(())
    }

    /// Pick a group for a new inode: directories go to the group with the
    /// most free inodes among those at least average; files near the parent.
    fn inode_group_order(&self, parent_group: u32, is_dir: bool) -> Vec<u32> {
        let n = self.geo.groups;
        let mut order: Vec<u32> = (0..n).map(|k| (parent_group + k) % n).collect();
        if is_dir {
            let avg = self
                .gds
                .iter()
                .map(|g| g.free_inodes_count() as u64)
                .sum::<u64>()
                / n as u64;
            if let Some(best) = order
                .iter()
                .copied()
                .filter(|&g| self.gds[g as usize].free_inodes_count() as u64 >= avg)
                .min_by_key(|&g| {
                    (
                        self.gds[g as usize].used_dirs_count(),
                        u16::MAX - self.gds[g as usize].free_blocks_count(),
                    )
                })
            {
                order.retain(|&g| g != best);
                order.insert(0, best);
            }
        }
        order
    }

    /// Allocate an inode number (bitmap and counters updated).
    pub fn alloc_inode(&mut self, parent: Ino, is_dir: bool) -> KResult<Ino> {
        self.check_rw()?;
        let ipg = self.geo.inodes_per_group;
        let parent_group = (parent.saturating_sub(1) / ipg).min(self.geo.groups - 1);
        for g in self.inode_group_order(parent_group, is_dir) {
            if self.gds[g as usize].free_inodes_count() == 0 {
                continue;
            }
            let bitmap_block =
                self.check_block(self.gds[g as usize].inode_bitmap(), "inode bitmap")?;
            let mut bitmap = self.read_block(bitmap_block)?;
            let first = g * ipg + 1;
            let start = self.geo.first_ino.saturating_sub(first).min(ipg);
            let limit = ipg.min(self.geo.inodes_count.saturating_sub(g * ipg));
            let Some(bit) = find_clear(&bitmap, start, limit) else {
                let _ = corrupt(format_args!(
                    "group {g} counts free inodes but its bitmap is full"
                ));
                continue;
            };
            flip_bit(&mut bitmap, bit);
            self.write_block(bitmap_block, &bitmap)?;
            let gd = &mut self.gds[g as usize];
            gd.set_free_inodes_count(gd.free_inodes_count() - 1);
            if is_dir {
                gd.set_used_dirs_count(gd.used_dirs_count().saturating_add(1));
            }
            self.write_gd(g)?;
            self.sb_dirty = true;
            return Ok(first + bit);
        }
        Err(Errno::ENOSPC)
    }

    pub fn free_inode_bit(&mut self, ino: Ino, is_dir: bool) -> KResult<()> {
        let ipg = self.geo.inodes_per_group;
        let g = (ino - 1) / ipg;
        let bit = (ino - 1) % ipg;
        let bitmap_block = self.check_block(self.gd(g)?.inode_bitmap(), "inode bitmap")?;
        let mut bitmap = self.read_block(bitmap_block)?;
        if !test_bit(&bitmap, bit) {
            return Err(corrupt(format_args!("freeing free inode {ino}")));
        }
        flip_bit(&mut bitmap, bit);
        self.write_block(bitmap_block, &bitmap)?;
        let gd = &mut self.gds[g as usize];
        gd.set_free_inodes_count(gd.free_inodes_count().saturating_add(1));
        if is_dir {
            gd.set_used_dirs_count(gd.used_dirs_count().saturating_sub(1));
        }
        self.write_gd(g)?;
        self.sb_dirty = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_clear_bits() {
        let mut bm = vec![0xffu8, 0xff, 0b0000_0101, 0];
        assert_eq!(find_clear(&bm, 0, 32), Some(17));
        assert_eq!(find_clear(&bm, 0, 17), None);
        flip_bit(&mut bm, 17);
        assert!(test_bit(&bm, 17));
        assert_eq!(find_clear(&bm, 0, 32), Some(19));
        assert_eq!(find_clear(&bm, 30, 100), Some(30));
    }
}
