//! Directories as linear lists of entries in their blocks. Directories with
//! an htree index (`dir_index`) are read the same way: the index blocks
//! look like empty entries. Changing such a directory clears its index
//! flag, so e2fsck sees a valid linear directory. Every entry is checked
//! (rec_len, name length, inode number) before use; a bad one is EIO.

use super::disklayout::*;
use super::inode::Inode;
use super::{corrupt, now, DirEntry, Fs, Ino};
use crate::errno::{Errno, KResult};

/// Where a found entry lives.
pub(crate) struct Slot {
    pub block: u32,
    pub offset: usize,
    /// The previous entry in the same block, if any (for merging on removal).
    pub prev: Option<usize>,
    pub ino: Ino,
}

pub(crate) fn check_name(name: &[u8]) -> KResult<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl Fs {
    /// Load `ino` and require a directory.
    pub fn load_dir(&self, ino: Ino) -> KResult<Inode> {
        let d = self.load_inode(ino)?;
        if !d.raw.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(d)
    }

    fn dir_block_count(&self, d: &Inode) -> u64 {
        d.raw.size().div_ceil(self.geo.block_size as u64)
    }

    /// Visit every entry of every block (in order) until `f` returns Some.
    /// `f` gets the block number, the block bytes, the entry and the
    /// previous entry's offset in that block.
    fn scan<R>(
        &self,
        d: &Inode,
        mut f: impl FnMut(u32, &[u8], &RawDirent, Option<usize>) -> Option<R>,
    ) -> KResult<Option<R>> {
        for n in 0..self.dir_block_count(d) {
            let Some(b) = self.bmap(d, n)? else {
                return Err(corrupt(format_args!(
                    "directory {} has a hole at block {n}",
                    d.ino
                )));
            };
            let data = self.read_block(b)?;
            let mut off = 0;
            let mut prev = None;
            while off < data.len() {
                let e = parse_dirent(&data, off, self.geo.filetype).map_err(|why| {
                    corrupt(format_args!(
                        "directory {} block {b} offset {off}: {why:?}",
                        d.ino
                    ))
                })?;
                if e.inode > self.geo.inodes_count {
                    return Err(corrupt(format_args!(
                        "directory {} entry names inode {} out of range",
                        d.ino, e.inode
                    )));
                }
                if let Some(r) = f(b, &data, &e, prev) {
                    return Ok(Some(r));
                }
                prev = Some(off);
                off += e.rec_len;
            }
        }
        Ok(None)
    }

    pub fn find_entry(&self, d: &Inode, name: &[u8]) -> KResult<Option<Slot>> {
        self.scan(d, |block, data, e, prev| {
            let n = &data[e.offset + DIRENT_HEADER..e.offset + DIRENT_HEADER + e.name_len];
            (e.inode != 0 && n == name).then_some(Slot {
                block,
                offset: e.offset,
                prev,
                ino: e.inode,
            })
        })
    }

    pub fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        let d = self.load_dir(dir)?;
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if name.is_empty() {
            return Err(Errno::ENOENT);
        }
        match self.find_entry(&d, name)? {
            Some(s) if s.ino != 0 => Ok(s.ino),
            _ => Err(Errno::ENOENT),
        }
    }

    pub fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        let d = self.load_dir(dir)?;
        let mut out = Vec::new();
        self.scan(&d, |_, data, e, _| {
            if e.inode != 0 {
                out.push((
                    e.inode,
                    data[e.offset + DIRENT_HEADER..e.offset + DIRENT_HEADER + e.name_len].to_vec(),
                    e.file_type,
                ));
            }
            None::<()>
        })?;
        Ok(out
            .into_iter()
            .map(|(ino, name, ft)| {
                let file_type = if self.geo.filetype {
                    ft_to_dt(ft)
                } else {
                    // no type in the entry: ask the inode (unknown if unreadable)
                    self.read_raw_inode(ino)
                        .map(|i| mode_to_dt(i.raw.mode() as u32))
                        .unwrap_or(DT_UNKNOWN)
                };
                DirEntry {
                    ino,
                    name,
                    file_type,
                }
            })
            .collect())
    }

    /// Only `.` and `..` remain.
    pub fn dir_is_empty(&self, d: &Inode) -> KResult<bool> {
        let other = self.scan(d, |_, data, e, _| {
            let n = &data[e.offset + DIRENT_HEADER..e.offset + DIRENT_HEADER + e.name_len];
            (e.inode != 0 && n != b"." && n != b"..").then_some(())
        })?;
        Ok(other.is_none())
    }

    /// After a change: new mtime/ctime, index flag dropped, inode stored.
    fn touch_dir(&self, d: &mut Inode) -> KResult<()> {
        let t = now();
        d.raw.set_mtime(t);
        d.raw.set_ctime(t);
        d.raw.set_flags(d.raw.flags() & !INDEX_FL);
        self.write_inode(d)
    }

    /// Add `name -> ino`; the caller has checked the name is not present.
    pub fn add_entry(&mut self, d: &mut Inode, name: &[u8], ino: Ino, ft: u8) -> KResult<()> {
        check_name(name)?;
        let need = dirent_len(name.len());
        let filetype = self.geo.filetype;
        let spot = self.scan(d, |block, data, e, _| {
            let used = if e.inode != 0 {
                dirent_len(e.name_len)
            } else {
                0
            };
            (e.rec_len >= used + need).then(|| (block, data.to_vec(), e.clone(), used))
        })?;
        if let Some((block, mut data, e, used)) = spot {
            if e.inode == 0 {
                write_dirent(&mut data, e.offset, ino, e.rec_len, name, ft, filetype);
            } else {
                set_dirent_rec_len(&mut data, e.offset, used);
                write_dirent(
                    &mut data,
                    e.offset + used,
                    ino,
                    e.rec_len - used,
                    name,
                    ft,
                    filetype,
                );
            }
            self.write_block(block, &data)?;
            return self.touch_dir(d);
        }
        // No room: append a block holding just this entry.
        let bs = self.geo.block_size as usize;
        let n = self.dir_block_count(d);
        let size = (n + 1) * bs as u64;
        if size > self.geo.max_file_size || size > u32::MAX as u64 {
            return Err(Errno::ENOSPC);
        }
        let r = self.bmap_alloc(d, n, false);
        let (b, _) = match r {
            Ok(v) => v,
            Err(e) => {
                self.write_inode(d)?;
                return Err(e);
            }
        };
        let mut data = vec![0u8; bs];
        write_dirent(&mut data, 0, ino, bs, name, ft, filetype);
        self.write_block(b, &data)?;
        d.raw.set_size(size);
        self.touch_dir(d)
    }

    /// Remove the entry at `slot` (merged into its predecessor, or marked
    /// unused when it starts its block).
    pub fn remove_entry(&mut self, d: &mut Inode, slot: &Slot) -> KResult<()> {
        let mut data = self.read_block(slot.block)?;
        match slot.prev {
            Some(p) => {
                let pe = parse_dirent(&data, p, self.geo.filetype)
                    .map_err(|_| corrupt(format_args!("directory {} changed under us", d.ino)))?;
                let e = parse_dirent(&data, slot.offset, self.geo.filetype)
                    .map_err(|_| corrupt(format_args!("directory {} changed under us", d.ino)))?;
                set_dirent_rec_len(&mut data, p, pe.rec_len + e.rec_len);
            }
            None => set_dirent_inode(&mut data, slot.offset, 0),
        }
        self.write_block(slot.block, &data)?;
        self.touch_dir(d)
    }

    /// Point an existing entry at another inode (rename over a name, `..`).
    pub fn retarget_entry(&mut self, d: &mut Inode, slot: &Slot, ino: Ino, ft: u8) -> KResult<()> {
        let mut data = self.read_block(slot.block)?;
        set_dirent_inode(&mut data, slot.offset, ino);
        set_dirent_file_type(&mut data, slot.offset, ft, self.geo.filetype);
        self.write_block(slot.block, &data)?;
        self.touch_dir(d)
    }

    /// The first block of a new directory: `.` and `..`.
    pub fn new_dir_block(&self, ino: Ino, parent: Ino) -> Vec<u8> {
        let bs = self.geo.block_size as usize;
        let mut data = vec![0u8; bs];
        let ft = self.geo.filetype;
        write_dirent(&mut data, 0, ino, 12, b".", FT_DIR, ft);
        write_dirent(&mut data, 12, parent, bs - 12, b"..", FT_DIR, ft);
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_checked() {
        assert_eq!(check_name(b""), Err(Errno::ENOENT));
        assert_eq!(check_name(&[b'a'; 256]), Err(Errno::ENAMETOOLONG));
        assert_eq!(check_name(b"a/b"), Err(Errno::EINVAL));
        assert_eq!(check_name(b"a\0b"), Err(Errno::EINVAL));
        assert!(check_name(&[b'a'; 255]).is_ok());
    }
}
