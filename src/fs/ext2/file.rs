//! Regular file data: read (holes read as zeros), write (allocating),
//! truncate (shrink frees blocks, grow leaves a hole). Invariant kept: the
//! bytes of the last block past the end of file are zero (shrinking zeroes
//! them, new blocks are zeroed, mke2fs writes them zero).

use super::disklayout::*;
use super::inode::Inode;
use super::{now, Fs, Ino};
use crate::errno::{Errno, KResult};

impl Fs {
    fn load_reg(&self, ino: Ino) -> KResult<Inode> {
        let i = self.load_inode(ino)?;
        match i.raw.file_type() {
            S_IFREG => Ok(i),
            S_IFDIR => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let i = self.load_reg(ino)?;
        let size = i.raw.size();
        if offset >= size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - offset) as usize;
        let bs = self.geo.block_size as u64;
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let fb = pos / bs;
            let in_block = (pos % bs) as usize;
            // Extend over physically contiguous blocks to make one device read.
            let first = self.bmap(&i, fb)?;
            let mut chunk = (bs as usize - in_block).min(len - done);
            if let Some(b) = first {
                let mut next = fb + 1;
                while done + chunk < len && chunk < (1 << 20) {
                    match self.bmap(&i, next)? {
                        Some(nb) if nb as u64 == b as u64 + (next - fb) => {
                            chunk = (chunk + bs as usize).min(len - done);
                            next += 1;
                        }
                        _ => break,
                    }
                }
                let off = self.block_offset(b) + in_block as u64;
                self.read_bytes(off, &mut buf[done..done + chunk])?;
            } else {
                buf[done..done + chunk].fill(0);
            }
            done += chunk;
        }
        Ok(len)
    }

    /// Zero the bytes from `from` to the end of its block, if it is mapped.
    fn zero_tail(&self, i: &Inode, from: u64) -> KResult<()> {
        let bs = self.geo.block_size as u64;
        let in_block = from % bs;
        if in_block == 0 {
            return Ok(());
        }
        if let Some(b) = self.bmap(i, from / bs)? {
            let zeros = vec![0u8; (bs - in_block) as usize];
            self.write_bytes(self.block_offset(b) + in_block, &zeros)?;
        }
        Ok(())
    }

    fn write_blocks(&mut self, i: &mut Inode, offset: u64, data: &[u8]) -> KResult<usize> {
        let bs = self.geo.block_size as u64;
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let in_block = (pos % bs) as usize;
            let chunk = (bs as usize - in_block).min(data.len() - done);
            let whole = chunk == bs as usize;
            let r = self.bmap_alloc(i, pos / bs, !whole).and_then(|(b, _)| {
                self.write_bytes(
                    self.block_offset(b) + in_block as u64,
                    &data[done..done + chunk],
                )
            });
            match r {
                Ok(()) => done += chunk,
                // a short write reports what got there (ENOSPC part way)
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        self.check_rw()?;
        let mut i = self.load_reg(ino)?;
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > self.max_size() {
            return Err(Errno::EFBIG);
        }
        let old_size = i.raw.size();
        if offset > old_size {
            self.zero_tail(&i, old_size)?;
        }
        let r = self.write_blocks(&mut i, offset, data);
        // Keep what got written even if a later block failed (ENOSPC).
        let written = match &r {
            Ok(n) => *n,
            Err(_) => 0,
        };
        let new_end = offset + written as u64;
        if new_end > old_size {
            self.set_size_raw(&mut i, new_end);
        }
        let t = now();
        i.raw.set_mtime(t);
        i.raw.set_ctime(t);
        self.write_inode(&i)?;
        r
    }

    /// The file blocks under 4 KiB page `page`, up to the file's size.
    fn page_blocks(&self, i: &Inode, page: u64) -> KResult<std::ops::Range<u64>> {
        let bs = self.geo.block_size as u64;
        let start = page.checked_mul(crate::abi::PAGE).ok_or(Errno::EFBIG)?;
        let end = start.saturating_add(crate::abi::PAGE).min(i.raw.size());
        if start >= end {
            return Ok(0..0);
        }
        Ok(start / bs..(end - 1) / bs + 1)
    }

    /// Whether every block under page `page` of `ino` is on disk.
    pub fn page_allocated(&self, ino: Ino, page: u64) -> KResult<bool> {
        let i = self.load_reg(ino)?;
        for fb in self.page_blocks(&i, page)? {
            if self.bmap(&i, fb)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Allocates (zeroed) the holes under page `page` of `ino`; the inode
    /// is written even when a block fails part way (ENOSPC), so what was
    /// allocated is never leaked.
    pub fn allocate_page(&mut self, ino: Ino, page: u64) -> KResult<()> {
        let mut i = self.load_reg(ino)?;
        let blocks = self.page_blocks(&i, page)?;
        if blocks.is_empty() {
            return Ok(());
        }
        self.check_rw()?;
        let mut r = Ok(());
        for fb in blocks {
            if let Err(e) = self.bmap_alloc(&mut i, fb, true) {
                r = Err(e);
                break;
            }
        }
        self.write_inode(&i)?;
        r
    }

    /// Revision 0 has no LARGE_FILE feature: files stay below 2 GiB there.
    fn max_size(&self) -> u64 {
        if self.sb.rev_level() == 0 {
            self.geo.max_file_size.min(i32::MAX as u64)
        } else {
            self.geo.max_file_size
        }
    }

    /// Set a regular file's size, flagging LARGE_FILE when it needs 64 bits.
    fn set_size_raw(&mut self, i: &mut Inode, size: u64) {
        if size > i32::MAX as u64 && self.sb.rev_level() >= 1 {
            let ro = self.sb.feature_ro_compat_raw();
            if ro & FEATURE_RO_COMPAT_LARGE_FILE == 0 {
                self.sb
                    .set_feature_ro_compat_raw(ro | FEATURE_RO_COMPAT_LARGE_FILE);
                self.sb_dirty = true;
            }
        }
        i.raw.set_size(size);
    }

    pub fn truncate(&mut self, ino: Ino, size: u64) -> KResult<()> {
        self.check_rw()?;
        let mut i = self.load_reg(ino)?;
        self.truncate_inode(&mut i, size)
    }

    pub fn truncate_inode(&mut self, i: &mut Inode, size: u64) -> KResult<()> {
        if size > self.max_size() {
            return Err(Errno::EFBIG);
        }
        let old = i.raw.size();
        let bs = self.geo.block_size as u64;
        // Growing touches no data: the page cache may already have written
        // blocks past the old end (bmap_alloc) before it sets the size.
        let r = if size < old {
            self.zero_tail(i, size)
                .and_then(|_| self.free_blocks_from(i, size.div_ceil(bs)))
        } else {
            Ok(())
        };
        self.set_size_raw(i, size);
        let t = now();
        i.raw.set_mtime(t);
        i.raw.set_ctime(t);
        self.write_inode(i)?;
        r
    }
}
