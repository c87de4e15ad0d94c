//! Regular files. Every read and write goes through the page cache: a
//! read takes cached pages (a shared mapping's writes are there first) and
//! fills misses from the file system, through the cache when the file
//! system asks for it (`FileSystem::caches_reads`: disk-backed ones), or
//! straight from it (tmpfs, whose pages already are memory); a write goes
//! to the file system and into every cached page it touches.

use std::rc::Rc;

use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::Kernel;
use crate::mm::pagecache::FilePages;
use crate::mm::vma::Backing;
use crate::mm::PAGE;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io, O_APPEND};
use crate::vfs::Node;

const FIONREAD: u32 = 0x541b;
const PROT_WRITE: u32 = 2;

pub struct RegularFile {
    pub node: Node,
}

impl RegularFile {
    pub fn new(node: Node) -> Rc<Self> {
        Rc::new(RegularFile { node })
    }
}

/// RLIMIT_FSIZE.
const RLIMIT_FSIZE: usize = 1;
const SIGXFSZ: i32 = 25;

impl Kernel {
    /// RLIMIT_FSIZE for a write of `len` bytes at `off` by `tid`: how many
    /// may be written; none at all (at or past the limit) is EFBIG with
    /// SIGXFSZ to the writer, as Linux's generic_write_check_limits.
    pub fn fsize_room(
        &mut self,
        tid: crate::kernel::task::Pid,
        off: u64,
        len: usize,
    ) -> KResult<usize> {
        let limit = self.task(tid)?.rlimits[RLIMIT_FSIZE].0;
        if limit == u64::MAX || len == 0 {
            return Ok(len);
        }
        if off >= limit {
            self.send_to_thread(
                tid,
                crate::kernel::signal::SigInfo {
                    signo: SIGXFSZ,
                    ..Default::default()
                },
            );
            return Err(Errno::EFBIG);
        }
        Ok(len.min((limit - off).min(usize::MAX as u64) as usize))
    }

    /// Reads file bytes at `off` through the page cache (see the module
    /// doc): the one read path of regular-file data.
    pub fn read_file_data(&mut self, node: Node, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let fs = self.mounts.fs(node.mnt)?;
        let key = (node.mnt, node.ino);
        if !fs.caches_reads() {
            let n = fs.read(node.ino, off, buf)?;
            self.pagecache
                .borrow()
                .overlay(key, off, &mut buf[..n], &self.frames);
            return Ok(n);
        }
        let size = fs.stat(node.ino)?.size;
        if off >= size {
            return Ok(0);
        }
        let end = size.min(off.saturating_add(buf.len() as u64));
        let mut at = off;
        while at < end {
            let idx = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let n = ((PAGE - at % PAGE).min(end - at)) as usize;
            let frame = self
                .pagecache
                .borrow_mut()
                .get(fs.as_ref(), key, idx, &mut self.frames)
                .map_err(|_| Errno::EIO)?;
            let dst = &mut buf[(at - off) as usize..(at - off) as usize + n];
            self.physmem.read(frame, in_page, dst);
            at += n as u64;
        }
        Ok((end - off) as usize)
    }

    /// Writes file bytes at `off`: to the file system, and into the
    /// cached pages so mappings and later reads see them.
    pub fn write_file_data(&mut self, node: Node, off: u64, data: &[u8]) -> KResult<usize> {
        let fs = self.mounts.fs(node.mnt)?;
        let n = fs.write(node.ino, off, data)?;
        self.pagecache
            .borrow_mut()
            .update((node.mnt, node.ino), off, &data[..n], &self.frames);
        Ok(n)
    }

    /// stat of an inode and the device it is on, nlink as the guest sees
    /// it (hidden links of open-unlinked files not counted).
    pub fn stat_inode(&mut self, n: Node) -> KResult<(Stat, u64)> {
        let dev = self.mounts.get(n.mnt)?.dev;
        let mut st = self.mounts.stat_node(n)?;
        st.nlink = self.visible_nlink(n, st.nlink);
        Ok((st, dev))
    }
}

/// lseek arithmetic for a file of `size` bytes (SEEK_DATA: everything is
/// data; SEEK_HOLE: the end).
const SEEK_DATA: u64 = 3;
const SEEK_HOLE: u64 = 4;

pub fn seek_in(size: u64, cur: u64, off: i64, whence: u64) -> KResult<u64> {
    let size = i64::try_from(size).map_err(|_| Errno::EOVERFLOW)?;
    let cur = i64::try_from(cur).map_err(|_| Errno::EOVERFLOW)?;
    let new = match whence {
        0 => Some(off),
        1 => cur.checked_add(off),
        2 => size.checked_add(off),
        // At or past the end, or negative: ENXIO (generic_file_llseek).
        3 if (0..size).contains(&off) => Some(off),
        4 if (0..size).contains(&off) => Some(size),
        3 | 4 => return Err(Errno::ENXIO),
        _ => return Err(Errno::EINVAL),
    };
    match new {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(_) => Err(Errno::EINVAL),
        None => Err(Errno::EINVAL),
    }
}

impl FileDescription for RegularFile {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        let off = io.offset();
        let n = k.read_file_data(self.node, off, buf)?;
        io.advance(off + n as u64);
        Ok(n)
    }

    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        if k.mounts.get(self.node.mnt)?.read_only {
            return Err(Errno::EROFS);
        }
        k.deny_write_to_swapfile(self.node)?;
        // O_APPEND writes at the end, pwrite's offset too (Linux ignores
        // it); only write(2) moves the file offset.
        let append = io.file.borrow().flags & O_APPEND != 0;
        let off = match io.pos {
            _ if append => k.mounts.stat_node(self.node)?.size,
            Some(p) => p,
            None => io.file.borrow().offset,
        };
        let room = k.fsize_room(io.tid, off, data.len())?;
        let n = k.write_file_data(self.node, off, &data[..room])?;
        io.advance(off + n as u64);
        Ok(n)
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        if req != FIONREAD {
            return Err(Errno::ENOTTY);
        }
        let size = k.mounts.stat_node(self.node)?.size;
        let left = size.saturating_sub(io.file.borrow().offset);
        k.write_u32(io.tid, arg, left.min(i32::MAX as u64) as u32)?;
        ok(0)
    }

    fn mmap(&self, k: &mut Kernel, io: &Io, shared: bool, prot: u32) -> KResult<Backing> {
        let (readable, writable, path) = {
            let of = io.file.borrow();
            (of.readable(), of.writable(), of.path.clone())
        };
        if shared && prot & PROT_WRITE != 0 {
            if !writable {
                return Err(Errno::EACCES);
            }
            // Linux's do_mmap: a shared writable mapping of an active
            // swap file is ETXTBSY (its writeback would land on slots).
            if k.is_swapfile(self.node.mnt, self.node.ino) {
                return Err(Errno::ETXTBSY);
            }
        }
        if !readable {
            return Err(Errno::EACCES);
        }
        let n = self.node;
        let m = k.mounts.get(n.mnt)?;
        Ok(Backing::File {
            source: Rc::new(FilePages {
                cache: k.pagecache.clone(),
                fs: m.fs.clone(),
                key: (n.mnt, n.ino),
                dev: m.dev,
                path,
            }),
            pgoff: 0,
        })
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        k.stat_inode(self.node)
    }

    fn seek(&self, k: &mut Kernel, cur: u64, off: i64, whence: u64) -> KResult<u64> {
        if whence == SEEK_DATA || whence == SEEK_HOLE {
            return k.seek_data_hole(self.node, off, whence == SEEK_DATA);
        }
        let size = k.mounts.stat_node(self.node)?.size;
        seek_in(size, cur, off, whence)
    }

    fn positional(&self) -> bool {
        true
    }

    fn fills_request(&self) -> bool {
        true
    }

    fn node(&self) -> Option<Node> {
        Some(self.node)
    }

    fn release(&self, k: &mut Kernel) {
        k.reap_orphans();
    }
}
