//! memfd_create: an unnamed memory file (memfd_create(2)). Its inode
//! lives in a tmpfs of the kernel's own, mounted nowhere (`MEMFD_MOUNT`),
//! so its pages are physmem frames like any tmpfs file's: shared mmap
//! between processes (fork, SCM_RIGHTS) goes through the page cache, and
//! the frames are punched when the file goes. The inode has a hidden
//! name there while an open file holds it; when the last one is released
//! it becomes an orphan (`Kernel::orphans`), removed once nothing maps it
//! either. /proc/<pid>/fd shows `/memfd:<name> (deleted)` as Linux does.
//!
//! Seals (MFD_ALLOW_SEALING, F_ADD_SEALS/F_GET_SEALS) are kept per inode
//! in `EventHub::seals` and enforced on write, ftruncate and shared
//! writable mmap. Not done: mprotect of an existing read-only shared
//! mapping to writable after F_SEAL_WRITE is not refused (Linux clears
//! VM_MAYWRITE), and fallocate is not checked.

use std::cell::Cell;
use std::rc::Rc;

use super::kind;
use super::regular::RegularFile;
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::mm::vma::Backing;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{ops_of, FileDescription, Io, O_RDWR};
use crate::vfs::{Node, OpenFile, OpenFileRef};

pub const MFD_CLOEXEC: u32 = 1;
pub const MFD_ALLOW_SEALING: u32 = 2;
pub const MFD_HUGETLB: u32 = 4;
pub const MFD_NOEXEC_SEAL: u32 = 8;
pub const MFD_EXEC: u32 = 0x10;

pub const F_SEAL_SEAL: u32 = 1;
pub const F_SEAL_SHRINK: u32 = 2;
pub const F_SEAL_GROW: u32 = 4;
pub const F_SEAL_WRITE: u32 = 8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
const ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

pub const F_ADD_SEALS: u64 = 1033;
pub const F_GET_SEALS: u64 = 1034;

/// Longest name (Linux: NAME_MAX minus "memfd:").
const NAME_MAX: usize = 249;
const PROT_WRITE: u32 = 2;

pub struct MemFd {
    file: Rc<RegularFile>,
    /// The hidden name in the memfd tmpfs's root.
    hidden: Vec<u8>,
    /// Released once (the orphan is registered then).
    released: Cell<bool>,
}

impl MemFd {
    fn node(&self) -> Node {
        self.file.node
    }
}

impl Kernel {
    /// The kernel's memfd tmpfs, mounted on first use.
    fn memfd_mount(&mut self) -> KResult<usize> {
        if let Some(m) = self.evhub.memfd_mount {
            return Ok(m);
        }
        let fs = self.new_tmpfs(0o1777);
        let m = self.mounts.mount_internal(fs, "memfd".into());
        self.evhub.memfd_mount = Some(m);
        Ok(m)
    }

    /// The seals on `node` (0 for a file that is no memfd).
    pub fn seals_of(&self, node: Node) -> u32 {
        self.evhub
            .seals
            .get(&(node.mnt, node.ino))
            .copied()
            .unwrap_or(0)
    }

    /// ftruncate's check: EPERM where a seal forbids the new size.
    pub fn check_seals_truncate(&mut self, node: Node, len: u64) -> KResult<()> {
        let seals = self.seals_of(node);
        if seals & (F_SEAL_SHRINK | F_SEAL_GROW) == 0 {
            return Ok(());
        }
        let size = self.mounts.stat_node(node)?.size;
        if (len < size && seals & F_SEAL_SHRINK != 0) || (len > size && seals & F_SEAL_GROW != 0) {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// Whether some process maps `node` shared and writable.
    fn mapped_writable(&self, node: Node) -> bool {
        self.mms.values().any(|mm| {
            mm.aspace.vmas().any(|v| {
                v.shared
                    && v.prot & PROT_WRITE != 0
                    && matches!(&v.backing, Backing::File { source, .. }
                        if source.key() == Some((node.mnt, node.ino)))
            })
        })
    }
}

impl FileDescription for MemFd {
    fn read(&self, k: &mut Kernel, io: &Io, buf: &mut [u8]) -> KResult<usize> {
        self.file.read(k, io, buf)
    }

    fn write(&self, k: &mut Kernel, io: &Io, data: &[u8]) -> KResult<usize> {
        let seals = k.seals_of(self.node());
        if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_GROW != 0 {
            let size = k.mounts.stat_node(self.node())?.size;
            let off = match io.pos {
                Some(p) => p,
                None => io.file.borrow().offset,
            };
            let end = off.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
            if end > size {
                return Err(Errno::EPERM);
            }
        }
        self.file.write(k, io, data)
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        self.file.ioctl(k, io, req, arg)
    }

    fn mmap(&self, k: &mut Kernel, io: &Io, shared: bool, prot: u32) -> KResult<Backing> {
        let seals = k.seals_of(self.node());
        if shared && prot & PROT_WRITE != 0 && seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        self.file.mmap(k, io, shared, prot)
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        let (mut st, dev) = self.file.stat(k)?;
        // The hidden name is no link the guest can see.
        st.nlink = 1;
        Ok((st, dev))
    }

    fn seek(&self, k: &mut Kernel, cur: u64, off: i64, whence: u64) -> KResult<u64> {
        self.file.seek(k, cur, off, whence)
    }

    fn positional(&self) -> bool {
        true
    }

    fn fills_request(&self) -> bool {
        true
    }

    fn node(&self) -> Option<Node> {
        Some(self.node())
    }

    /// The last open file went: the inode becomes an orphan, removed now
    /// or when the last mapping goes.
    fn release(&self, k: &mut Kernel) {
        if self.released.replace(true) {
            return;
        }
        let n = self.node();
        let Ok(root) = k.mounts.fs(n.mnt).map(|fs| fs.root()) else {
            return;
        };
        k.orphans
            .insert((n.mnt, n.ino), (root, self.hidden.clone()));
        k.evhub.seals.remove(&(n.mnt, n.ino));
        k.reap_orphans();
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// memfd_create(name, flags).
pub fn sys_memfd_create(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    let name = k.read_path(tid, a[0]).map_err(|e| match e {
        Errno::ENAMETOOLONG => Errno::EINVAL,
        e => e,
    })?;
    if name.len() > NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let flags = u32::try_from(a[1]).map_err(|_| Errno::EINVAL)?;
    let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC;
    if flags & !known != 0 || flags & MFD_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_NOEXEC_SEAL != 0 && flags & MFD_EXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let mnt = k.memfd_mount()?;
    let fs = k.mounts.fs(mnt)?;
    let (uid, gid) = {
        let c = k.cred(tid)?;
        (c.euid, c.egid)
    };
    let id = k.evhub.timer_id();
    let hidden = format!("memfd.{id}").into_bytes();
    let mode = if flags & MFD_NOEXEC_SEAL != 0 {
        0o100666
    } else {
        0o100777
    };
    let ino = fs.create(fs.root(), &hidden, mode, uid, gid, 0)?;
    let node = Node { mnt, ino };
    let mut seals = if flags & MFD_ALLOW_SEALING != 0 {
        0
    } else {
        F_SEAL_SEAL
    };
    if flags & MFD_NOEXEC_SEAL != 0 {
        seals |= F_SEAL_EXEC;
    }
    k.evhub.seals.insert((mnt, ino), seals);
    let mut path = b"/memfd:".to_vec();
    path.extend_from_slice(&name);
    path.extend_from_slice(b" (deleted)");
    let ops = Rc::new(MemFd {
        file: RegularFile::new(node),
        hidden,
        released: Cell::new(false),
    });
    let file = OpenFile::new(ops, O_RDWR, path);
    let fd = k
        .task(tid)?
        .files
        .borrow_mut()
        .install(file, flags & MFD_CLOEXEC != 0, 0);
    match fd {
        Ok(fd) => ok(fd as i64),
        Err(e) => Err(e),
    }
}

/// fcntl F_ADD_SEALS / F_GET_SEALS on `f` (EINVAL for a file that is no
/// memfd, as for any file without seal support).
pub fn fcntl_seals(k: &mut Kernel, f: &OpenFileRef, cmd: u64, arg: u64) -> SysResult {
    let ops = ops_of(f);
    let m = kind::<MemFd>(&ops).ok_or(Errno::EINVAL)?;
    let key = (m.node().mnt, m.node().ino);
    let seals = k.seals_of(m.node());
    if cmd == F_GET_SEALS {
        return ok(seals as i64);
    }
    let add = u32::try_from(arg).map_err(|_| Errno::EINVAL)?;
    if add & !ALL_SEALS != 0 {
        return Err(Errno::EINVAL);
    }
    if !f.borrow().writable() {
        return Err(Errno::EPERM);
    }
    if seals & F_SEAL_SEAL != 0 {
        return Err(Errno::EPERM);
    }
    if add & F_SEAL_WRITE != 0 && seals & F_SEAL_WRITE == 0 && k.mapped_writable(m.node()) {
        return Err(Errno::EBUSY);
    }
    k.evhub.seals.insert(key, seals | add);
    ok(0)
}
