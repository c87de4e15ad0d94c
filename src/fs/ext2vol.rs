//! An ext2 file system on a ubd device, as the VFS sees it: the
//! `FileSystem` glue over `ext2::Ext2`, and the page mapping that lets the
//! page cache substitute image pages under `ubd=mmap`.

use std::fs::File;
use std::sync::Arc;

use super::ext2::{self, Ext2};
use super::{BlockIo, DirEntry, FileSystem, Ino, SetAttr, Stat, StatFs, Timespec};
use crate::block::Ubd;
use crate::errno::{Errno, KResult};

/// A ubd device as ext2's block I/O.
pub struct UbdBlockIo(pub Arc<Ubd>);

impl BlockIo for UbdBlockIo {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_at(offset, buf).map_err(std::io::Error::other)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write_at(offset, data).map_err(std::io::Error::other)
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush().map_err(std::io::Error::other)
    }
}

pub struct Ext2Volume {
    fs: Ext2,
    ubd: Arc<Ubd>,
}

impl Ext2Volume {
    /// Mounts the ext2 file system on `ubd`; read-only if asked or if the
    /// device is (the `r` flag).
    pub fn mount(ubd: Arc<Ubd>, read_only: bool) -> KResult<Ext2Volume> {
        let ro = read_only || ubd.read_only();
        let fs = Ext2::mount(Arc::new(UbdBlockIo(ubd.clone())), ro)?;
        Ok(Ext2Volume { fs, ubd })
    }

    /// The device it is mounted from.
    pub fn ubd(&self) -> &Arc<Ubd> {
        &self.ubd
    }
}

fn ino32(ino: Ino) -> KResult<ext2::Ino> {
    u32::try_from(ino).map_err(|_| Errno::ENOENT)
}

fn ts(sec: i64) -> Timespec {
    Timespec { sec, nsec: 0 }
}

fn stat_of(s: ext2::Stat) -> Stat {
    Stat {
        ino: s.ino as Ino,
        mode: s.mode,
        nlink: s.nlink,
        uid: s.uid,
        gid: s.gid,
        size: s.size,
        blocks: s.blocks,
        blksize: s.blksize,
        rdev: s.rdev,
        atime: ts(s.atime),
        mtime: ts(s.mtime),
        ctime: ts(s.ctime),
    }
}

impl FileSystem for Ext2Volume {
    fn caches_reads(&self) -> bool {
        true
    }

    fn fs_type(&self) -> &'static str {
        "ext2"
    }
    fn root(&self) -> Ino {
        self.fs.root() as Ino
    }
    fn stat(&self, ino: Ino) -> KResult<Stat> {
        self.fs.stat(ino32(ino)?).map(stat_of)
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        self.fs.lookup(ino32(dir)?, name).map(|i| i as Ino)
    }
    fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        Ok(self
            .fs
            .readdir(ino32(dir)?)?
            .into_iter()
            .map(|e| DirEntry {
                ino: e.ino as Ino,
                name: e.name,
                file_type: e.file_type,
            })
            .collect())
    }
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        self.fs.read(ino32(ino)?, offset, buf)
    }
    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        self.fs.write(ino32(ino)?, offset, data)
    }
    fn truncate(&self, ino: Ino, size: u64) -> KResult<()> {
        self.fs.truncate(ino32(ino)?, size)
    }
    fn prepare_page_write(&self, ino: Ino, index: u64) -> KResult<()> {
        self.fs.allocate_page(ino32(ino)?, index)
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
        let rdev = u32::try_from(rdev).map_err(|_| Errno::EINVAL)?;
        self.fs
            .create(ino32(dir)?, name, mode, uid, gid, rdev)
            .map(|i| i as Ino)
    }
    fn mkdir(&self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> KResult<Ino> {
        self.fs
            .mkdir(ino32(dir)?, name, mode, uid, gid)
            .map(|i| i as Ino)
    }
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> KResult<Ino> {
        self.fs
            .symlink(ino32(dir)?, name, target, uid, gid)
            .map(|i| i as Ino)
    }
    fn readlink(&self, ino: Ino) -> KResult<Vec<u8>> {
        self.fs.readlink(ino32(ino)?)
    }
    fn xattr_get(&self, ino: Ino, name: &[u8]) -> KResult<Vec<u8>> {
        self.fs.xattr_get(ino32(ino)?, name)
    }
    fn xattr_set(&self, ino: Ino, name: &[u8], value: Option<&[u8]>, flags: u32) -> KResult<()> {
        self.fs.xattr_set(ino32(ino)?, name, value, flags)
    }
    fn xattr_list(&self, ino: Ino) -> KResult<Vec<Vec<u8>>> {
        self.fs.xattr_list(ino32(ino)?)
    }
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> KResult<()> {
        self.fs.link(ino32(ino)?, ino32(dir)?, name)
    }
    fn unlink(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        self.fs.unlink(ino32(dir)?, name)
    }
    fn rmdir(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        self.fs.rmdir(ino32(dir)?, name)
    }
    fn rename(&self, od: Ino, on: &[u8], nd: Ino, nn: &[u8]) -> KResult<()> {
        self.fs.rename(ino32(od)?, on, ino32(nd)?, nn)
    }
    fn setattr(&self, ino: Ino, a: &SetAttr) -> KResult<()> {
        self.fs.setattr(
            ino32(ino)?,
            ext2::SetAttr {
                mode: a.mode,
                uid: a.uid,
                gid: a.gid,
                atime: a.atime.map(|t| t.sec),
                mtime: a.mtime.map(|t| t.sec),
                size: a.size,
            },
        )
    }
    fn statfs(&self) -> KResult<StatFs> {
        let s = self.fs.statfs();
        Ok(StatFs {
            fs_type: 0xEF53,
            block_size: s.block_size as u64,
            blocks: s.blocks,
            blocks_free: s.free_blocks,
            blocks_avail: s.avail_blocks,
            files: s.files,
            files_free: s.free_files,
            name_max: s.name_max as u64,
        })
    }
    fn sync(&self) -> KResult<()> {
        self.fs.sync()?;
        self.ubd.flush().map_err(|_| Errno::EIO)
    }
    fn remount(&self, read_only: bool) -> KResult<()> {
        if !read_only && self.ubd.read_only() {
            return Err(Errno::EACCES);
        }
        self.fs.remount(read_only)
    }
    /// Syncs and marks the file system clean (umount, shutdown).
    fn unmount(&self) -> KResult<()> {
        self.fs.unmount()?;
        self.ubd.flush().map_err(|_| Errno::EIO)
    }
    fn swap_extents(&self, ino: Ino) -> KResult<(Arc<Ubd>, Vec<u64>)> {
        let i = ino32(ino)?;
        let st = self.fs.stat(i)?;
        if st.mode & super::S_IFMT != super::S_IFREG {
            return Err(Errno::EINVAL);
        }
        let bs = u64::from(self.fs.block_size());
        let page = crate::physmem::PAGE_SIZE as u64;
        if bs == 0 || bs > page || !page.is_multiple_of(bs) {
            return Err(Errno::EINVAL);
        }
        let per_page = page / bs;
        let blocks = st.size / bs;
        let mut pages = Vec::new();
        let mut fb = 0u64;
        while fb + per_page <= blocks {
            let first = self.fs.bmap(i, fb)?.ok_or(Errno::EINVAL)?;
            // A page's blocks: aligned on the device and contiguous, or
            // the page is skipped (probed again one block on).
            if first % per_page != 0 {
                fb += 1;
                continue;
            }
            let mut contiguous = true;
            for k in 1..per_page {
                let b = self.fs.bmap(i, fb + k)?.ok_or(Errno::EINVAL)?;
                if b != first + k {
                    contiguous = false;
                    break;
                }
            }
            if !contiguous {
                fb += 1;
                continue;
            }
            let at = first.checked_mul(bs).ok_or(Errno::EINVAL)?;
            if at.checked_add(page).is_none_or(|end| end > self.ubd.size()) {
                return Err(Errno::EINVAL);
            }
            pages.push(at);
            fb += per_page;
        }
        Ok((self.ubd.clone(), pages))
    }
    fn page_mapping(&self, ino: Ino, index: u64) -> Option<(Arc<File>, u64, bool)> {
        if self.fs.block_size() != 4096 {
            return None;
        }
        let block = self.fs.bmap(ino32(ino).ok()?, index).ok()??;
        let m = self.ubd.page_mapping(block)?;
        Some((m.file, m.offset, m.writable))
    }
}
