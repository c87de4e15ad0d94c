//! Reading, writing and polling open files of every kind, and the final
//! close of an open file description.

use std::rc::Rc;

use super::core::Kernel;
use super::signal::{SigInfo, SIGPIPE};
use super::task::Pid;
use crate::errno::{Errno, KResult};
use crate::fs::tty::ReadResult;
use crate::vfs::file::O_APPEND;
use crate::vfs::{FileKind, OpenFileRef};

pub const POLLIN: u32 = 0x1;
pub const POLLPRI: u32 = 0x2;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLHUP: u32 = 0x10;
pub const POLLNVAL: u32 = 0x20;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLWRNORM: u32 = 0x100;

impl Kernel {
    /// read(2) on an open file at its offset (`pos`: pread's offset).
    /// EAGAIN means "would block"; the syscall layer decides to sleep.
    pub fn file_read(
        &mut self,
        _tid: Pid,
        f: &OpenFileRef,
        buf: &mut [u8],
        pos: Option<u64>,
    ) -> KResult<usize> {
        let mut of = f.borrow_mut();
        if !of.readable() {
            return Err(Errno::EBADF);
        }
        let nonblock = of.nonblocking();
        match &of.kind {
            FileKind::Regular(node) => {
                let node = *node;
                let off = pos.unwrap_or(of.offset);
                let fs = self.mounts.fs(node.mnt)?;
                let n = if fs.fs_type() == "ext2" {
                    self.read_through_cache(fs.as_ref(), node, off, buf)?
                } else {
                    let n = fs.read(node.ino, off, buf)?;
                    // Shared mappings may have newer data than the file system.
                    self.pagecache.borrow().overlay(
                        (node.mnt, node.ino),
                        off,
                        &mut buf[..n],
                        &self.frames,
                    );
                    n
                };
                if pos.is_none() {
                    of.offset = off + n as u64;
                }
                Ok(n)
            }
            FileKind::Directory { .. } => Err(Errno::EISDIR),
            FileKind::Pipe { id, .. } => {
                let id = *id;
                let r = self.pipes.get(id).ok_or(Errno::EBADF)?.read(buf);
                if matches!(r, Ok(n) if n > 0) {
                    self.wake_all();
                }
                r
            }
            FileKind::Console => match self.console.read(buf, nonblock) {
                ReadResult::Data(n) => Ok(n),
                ReadResult::Eof => Ok(0),
                ReadResult::WouldBlock | ReadResult::WouldBlockWithTimeout(_) => Err(Errno::EAGAIN),
            },
            FileKind::Device(d) => {
                let d = *d;
                let rng = &mut self.rng;
                d.read(buf, &mut |b| rng.fill(b))
            }
        }
    }

    /// write(2). EPIPE also raises SIGPIPE, as Linux does.
    pub fn file_write(
        &mut self,
        tid: Pid,
        f: &OpenFileRef,
        data: &[u8],
        pos: Option<u64>,
    ) -> KResult<usize> {
        let mut of = f.borrow_mut();
        if !of.writable() {
            return Err(Errno::EBADF);
        }
        match &of.kind {
            FileKind::Regular(node) => {
                let node = *node;
                let fs = self.mounts.fs(node.mnt)?;
                if self.mounts.get(node.mnt)?.read_only {
                    return Err(Errno::EROFS);
                }
                // O_APPEND writes at the end, pwrite's offset too (Linux
                // ignores it); only write(2) moves the file offset.
                let off = match pos {
                    _ if of.flags & O_APPEND != 0 => fs.stat(node.ino)?.size,
                    Some(p) => p,
                    None => of.offset,
                };
                let n = fs.write(node.ino, off, data)?;
                self.pagecache.borrow_mut().update(
                    (node.mnt, node.ino),
                    off,
                    &data[..n],
                    &self.frames,
                );
                if pos.is_none() {
                    of.offset = off + n as u64;
                }
                Ok(n)
            }
            FileKind::Directory { .. } => Err(Errno::EISDIR),
            FileKind::Pipe { id, .. } => {
                let id = *id;
                let r = self.pipes.get(id).ok_or(Errno::EBADF)?.write(data);
                match r {
                    Err(Errno::EPIPE) => {
                        drop(of);
                        self.send_to_thread(
                            tid,
                            SigInfo {
                                signo: SIGPIPE,
                                ..Default::default()
                            },
                        );
                    }
                    Ok(n) if n > 0 => self.wake_all(),
                    _ => {}
                }
                r
            }
            FileKind::Console => {
                self.console.write(data);
                Ok(data.len())
            }
            FileKind::Device(d) => d.write(data),
        }
    }

    /// poll(2) readiness bits of an open file.
    pub fn file_poll(&mut self, f: &OpenFileRef) -> u32 {
        let of = f.borrow();
        match &of.kind {
            FileKind::Pipe { id, write } => {
                let Some(p) = self.pipes.get(*id) else {
                    return POLLERR;
                };
                if *write {
                    let mut r = if p.writable() {
                        POLLOUT | POLLWRNORM
                    } else {
                        0
                    };
                    if p.readers() == 0 {
                        r |= POLLERR;
                    }
                    r
                } else {
                    let mut r = if p.readable() { POLLIN | POLLRDNORM } else { 0 };
                    if p.writers() == 0 {
                        r |= POLLHUP;
                    }
                    r
                }
            }
            FileKind::Console => {
                let mut r = POLLOUT | POLLWRNORM;
                if self.console.tty.ldisc.readable() {
                    r |= POLLIN | POLLRDNORM;
                }
                r
            }
            _ => POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM,
        }
    }

    /// An fd referring to `f` was closed. The last reference ends the open
    /// file description (pipe ends close, waking the other side).
    pub fn release_file(&mut self, f: OpenFileRef) {
        if Rc::strong_count(&f) > 1 {
            return;
        }
        let of = f.borrow();
        if let FileKind::Regular(_) = of.kind {
            drop(of);
            drop(f);
            self.reap_orphans();
            return;
        }
        if let FileKind::Pipe { id, write } = of.kind {
            if let Some(p) = self.pipes.get(id) {
                if write {
                    p.close_writer();
                } else {
                    p.close_reader();
                }
            }
            self.pipes.gc(id);
            self.wake_all();
        }
    }
}

impl Kernel {
    /// read() of a disk-backed file through the page cache: pages are
    /// read in (copy mode) or substituted from the image (mmap mode) once,
    /// and later reads are hits.
    fn read_through_cache(
        &mut self,
        fs: &dyn crate::fs::FileSystem,
        node: crate::vfs::Node,
        off: u64,
        buf: &mut [u8],
    ) -> KResult<usize> {
        const PAGE: u64 = crate::mm::PAGE;
        let size = fs.stat(node.ino)?.size;
        if off >= size {
            return Ok(0);
        }
        let end = size.min(off + buf.len() as u64);
        let mut at = off;
        while at < end {
            let idx = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let n = ((PAGE - at % PAGE).min(end - at)) as usize;
            let frame = self
                .pagecache
                .borrow_mut()
                .get(fs, (node.mnt, node.ino), idx, &mut self.frames)
                .map_err(|_| Errno::EIO)?;
            let dst = &mut buf[(at - off) as usize..(at - off) as usize + n];
            self.physmem.read(frame, in_page, dst);
            at += n as u64;
        }
        Ok((end - off) as usize)
    }
}
