//! mount(2), umount2(2) and remount, and making the file systems the
//! guest can mount: procfs, tmpfs (pages in physmem, punched when freed),
//! the /dev tmpfs (character nodes and one block node per disk), and ext2
//! from any ubd disk.
//!
//! Disk mounts follow Linux: a mount claims its disk (a second mount, or
//! an `open(O_EXCL)` of the device, gets EBUSY), a read-write mount of a
//! read-only disk gets EACCES (busybox and util-linux then retry
//! read-only), umount is EBUSY while a file on it is open or mapped or a
//! cwd is inside, and unmounting or remounting read-only writes dirty
//! pages and metadata back and marks the file system clean. Unlike Linux,
//! a disk already mounted cannot be mounted a second time at another place
//! (Linux shares the superblock; our page cache is keyed by mount).

use std::rc::Rc;

use super::core::Kernel;
use super::procsrc::{KernelProcSource, ProcSnapshot};
use super::task::Pid;
use crate::block::disks::{disk_dev, disk_name};
use crate::block::Holder;
use crate::errno::{Errno, KResult};
use crate::fs::devices::{encode_dev, populate_dev, BlockNode};
use crate::fs::ext2vol::Ext2Volume;
use crate::fs::procfs::ProcFs;
use crate::fs::tmpfs::{Tmpfs, TmpfsOptions};
use crate::fs::{FileSystem, S_IFBLK, S_IFMT};
use crate::mm::Backing;
use crate::vfs::mount::is_under;
use crate::vfs::{MountId, Resolved};

pub const MS_RDONLY: u64 = 1;
pub const MS_REMOUNT: u64 = 32;
pub const MS_BIND: u64 = 4096;
/// The old magic some callers still put in the top 16 bits of the flags.
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xC0ED_0000;

pub const MNT_FORCE: u64 = 1;
pub const MNT_DETACH: u64 = 2;
pub const MNT_EXPIRE: u64 = 4;
pub const UMOUNT_NOFOLLOW: u64 = 8;

/// The name /proc/mounts gives a mount of type `fstype` (one that
/// `fs_by_type` or `is_disk_fs` accepts).
fn kind_name(fstype: &[u8]) -> &'static str {
    match fstype {
        b"ext2" => "ext2",
        b"proc" => "proc",
        b"ramfs" => "ramfs",
        b"devtmpfs" => "devtmpfs",
        b"sysfs" => "sysfs",
        b"devpts" => "devpts",
        b"cgroup2" => "cgroup2",
        _ => "tmpfs",
    }
}

/// statfs(2)'s f_type of a mount: the file system's own, but a type that
/// shares another's implementation keeps its Linux magic (systemd tells
/// sysfs by SYSFS_MAGIC; devtmpfs is TMPFS_MAGIC on Linux too).
pub fn statfs_magic(kind: &str, own: u64) -> u64 {
    match kind {
        "sysfs" => 0x6265_6572,
        "ramfs" => 0x8584_58f6,
        _ => own,
    }
}

/// File system types that live on a block device.
fn is_disk_fs(fstype: &[u8]) -> bool {
    fstype == b"ext2"
}

impl Kernel {
    pub fn new_tmpfs(&self, mode: u32) -> Rc<dyn FileSystem> {
        let clock: crate::fs::tmpfs::Clock = Rc::new(crate::syscalls::now_ts);
        Rc::new(Tmpfs::new(
            Rc::new(crate::mm::shmem::ShmemStore::new(
                self.physmem.clone(),
                self.frames.swap.clone(),
            )),
            clock,
            TmpfsOptions {
                max_pages: Some(self.physmem.frames_plugged() / 2),
                max_inodes: 65536,
                root_mode: mode,
                root_uid: 0,
                root_gid: 0,
            },
        ))
    }

    pub fn new_devfs(&self) -> KResult<Rc<dyn FileSystem>> {
        let fs = self.new_tmpfs(0o755);
        populate_dev(fs.as_ref(), &self.disk_nodes())?;
        Ok(fs)
    }

    /// The /dev nodes of the configured disks.
    pub fn disk_nodes(&self) -> Vec<BlockNode> {
        self.disks
            .iter()
            .map(|d| {
                let (major, minor) = disk_dev(d.index);
                BlockNode {
                    name: disk_name(d.index),
                    major,
                    minor,
                }
            })
            .collect()
    }

    pub fn new_procfs(&mut self) -> Rc<dyn FileSystem> {
        let snap = self
            .proc_snapshot
            .get_or_insert_with(|| Rc::new(std::cell::RefCell::new(ProcSnapshot::default())))
            .clone();
        snap.borrow_mut().mconsole_notify = self.mconsole.has_notify();
        snap.borrow_mut().cgroups = Some(self.cgroups.clone());
        Rc::new(ProcFs::new(Rc::new(KernelProcSource(snap))))
    }

    /// A memory file system for mount(2) by type name.
    pub fn fs_by_type(&mut self, fstype: &[u8]) -> KResult<Rc<dyn FileSystem>> {
        match fstype {
            b"proc" => Ok(self.new_procfs()),
            b"tmpfs" | b"ramfs" => Ok(self.new_tmpfs(0o1777)),
            b"devtmpfs" => self.new_devfs(),
            b"sysfs" => self.new_sysfs(),
            // One devpts instance: every mount shows the same ptys.
            b"devpts" => Ok(Rc::new(crate::fs::devpts::DevPts::new(
                self.ptys.view.clone(),
                crate::syscalls::now_ts(),
            ))),
            // One hierarchy: every mount shows the same groups.
            b"cgroup2" => Ok(Rc::new(crate::fs::cgroupfs::CgroupFs::new(
                self.cgroups.clone(),
            ))),
            _ => Err(Errno::ENODEV),
        }
    }

    /// A disk file system from the block device node `source`: the file
    /// system and the disk's index.
    fn disk_fs(
        &mut self,
        tid: Pid,
        source: &[u8],
        read_only: bool,
    ) -> KResult<(Rc<dyn FileSystem>, usize)> {
        if source.is_empty() {
            return Err(Errno::ENOENT);
        }
        let r = self.lookup_at(tid, crate::syscalls::AT_FDCWD, source, true)?;
        if r.stat.mode & S_IFMT != S_IFBLK {
            return Err(Errno::ENOTBLK);
        }
        let disk = self.disks.by_rdev(r.stat.rdev).ok_or(Errno::ENXIO)?;
        if disk.holder().is_some() {
            return Err(Errno::EBUSY);
        }
        if !read_only && disk.ubd.read_only() {
            return Err(Errno::EACCES);
        }
        let vol = Ext2Volume::mount(disk.ubd.clone(), read_only)?;
        Ok((Rc::new(vol), disk.index))
    }

    /// mount(2), once the strings are read: `source` and `fstype` are
    /// None for a NULL pointer.
    pub fn do_mount(
        &mut self,
        tid: Pid,
        source: Option<Vec<u8>>,
        target: &[u8],
        fstype: Option<Vec<u8>>,
        flags: u64,
    ) -> KResult<()> {
        let flags = if flags & MS_MGC_MSK == MS_MGC_VAL {
            flags & !MS_MGC_MSK
        } else {
            flags
        };
        let r = self.lookup_at(tid, crate::syscalls::AT_FDCWD, target, true)?;
        if flags & MS_REMOUNT != 0 {
            self.remount(&r, flags)?;
            self.mounts_changed();
            return Ok(());
        }
        if flags & MS_BIND != 0 {
            return Err(Errno::EINVAL);
        }
        let fstype = fstype.ok_or(Errno::EINVAL)?;
        if !crate::vfs::walk::is_dir(&r.stat) {
            return Err(Errno::ENOTDIR);
        }
        let read_only = flags & MS_RDONLY != 0;
        let (fs, disk, source) = if is_disk_fs(&fstype) {
            let source = source.ok_or(Errno::EINVAL)?;
            let (fs, disk) = self.disk_fs(tid, &source, read_only)?;
            (fs, Some(disk), source)
        } else {
            let fs = self.fs_by_type(&fstype)?;
            (fs, None, source.unwrap_or_else(|| fstype.clone()))
        };
        let id = self.mounts.mount(
            fs,
            Some(r.node),
            r.path,
            String::from_utf8_lossy(&source).into_owned(),
            read_only,
        )?;
        let dev = disk.map(|d| {
            let (major, minor) = disk_dev(d);
            encode_dev(major, minor)
        });
        self.mounts.set_identity(id, dev, kind_name(&fstype))?;
        if let Some(d) = disk {
            self.disks.claim(d, Holder::Mount(id))?;
        }
        self.mounts_changed();
        Ok(())
    }

    /// Pollers of the mount table files look again (procfile.rs).
    pub fn mounts_changed(&mut self) {
        let q = self.evhub.mounts.clone();
        self.wake_queue(&q, crate::kernel::waitq::ALL_EVENTS);
    }

    /// mount -o remount[,ro|rw] of the mount whose root `r` is. With
    /// MS_BIND only the mount's own flag changes; otherwise the file system
    /// too: going read-only is EBUSY while Linux would refuse it
    /// (`has_writers`), and writes everything back first.
    fn remount(&mut self, r: &Resolved, flags: u64) -> KResult<()> {
        let mnt = r.node.mnt;
        let fs = self.mounts.fs(mnt)?;
        if r.node.ino != fs.root() {
            return Err(Errno::EINVAL);
        }
        let read_only = flags & MS_RDONLY != 0;
        if flags & MS_BIND != 0 {
            return self.mounts.set_read_only(mnt, read_only);
        }
        if read_only && !self.mounts.get(mnt)?.read_only {
            if self.has_writers(mnt) {
                return Err(Errno::EBUSY);
            }
            self.writeback_mount(mnt, fs.as_ref());
        }
        fs.remount(read_only)?;
        self.mounts.set_read_only(mnt, read_only)
    }

    /// umount2(2) of the file system mounted at `target`.
    pub fn do_umount(&mut self, tid: Pid, target: &[u8], flags: u64) -> KResult<()> {
        if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0
            || (flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0)
        {
            return Err(Errno::EINVAL);
        }
        let follow = flags & UMOUNT_NOFOLLOW == 0;
        let r = self.lookup_at(tid, crate::syscalls::AT_FDCWD, target, follow)?;
        let mnt = r.node.mnt;
        self.mounts.check_umount(r.node)?;
        // Files unlinked while open and since closed go first.
        self.reap_orphans();
        let path = self.mounts.get(mnt)?.path.clone();
        if self.mount_busy(mnt, &path) {
            return Err(Errno::EBUSY);
        }
        self.notify_unmount(mnt);
        let fs = self.mounts.fs(mnt)?;
        self.writeback_mount(mnt, fs.as_ref());
        drop(fs);
        self.pagecache
            .borrow_mut()
            .drop_mount(mnt, &mut self.frames);
        self.mounts.umount(r.node)?;
        self.disks.release(Holder::Mount(mnt));
        self.mounts_changed();
        Ok(())
    }

    /// Writes back mount `mnt`'s dirty page-cache pages (errors logged:
    /// the data is lost either way, as on Linux).
    fn writeback_mount(&mut self, mnt: MountId, fs: &dyn FileSystem) {
        let r = self
            .pagecache
            .borrow_mut()
            .writeback_mount(fs, mnt, &self.frames);
        if let Err(e) = r {
            crate::log_limited!(log::Level::Error, "writing back pages of mount {mnt}: {e}");
        }
    }

    /// Is anything using mount `mnt` (at `path`): a file open on it, a
    /// page of it mapped, a cwd or a root (chroot) inside it?
    fn mount_busy(&self, mnt: MountId, path: &[u8]) -> bool {
        let open_or_cwd = self.tasks.values().any(|t| {
            t.files
                .borrow()
                .iter()
                .any(|(_, e)| e.file.borrow().node().is_some_and(|n| n.mnt == mnt))
                || is_under(&t.fs.borrow().cwd.path(), path)
                || is_under(&t.fs.borrow().root.path(), path)
        });
        // An active swap file holds its file system (Linux: EBUSY).
        let swap = self
            .frames
            .swap
            .borrow()
            .areas
            .iter()
            .any(|a| a.file.is_some_and(|(m, _)| m == mnt));
        open_or_cwd || swap || self.maps_of(mnt, false)
    }

    /// Would Linux refuse to make mount `mnt` read-only
    /// (sb_prepare_remount_readonly)? A regular file or directory on it
    /// open for writing, a shared mapping that may write (its file opened
    /// for writing), or a file unlinked while still in use. FIFOs, device
    /// nodes and sockets opened for writing do not count (no write access
    /// to the file system is taken for them): sysvinit keeps /run/initctl
    /// open O_RDWR through Debian's umountroot.
    fn has_writers(&mut self, mnt: MountId) -> bool {
        let mut nodes = Vec::new();
        for t in self.tasks.values() {
            for (_, e) in t.files.borrow().iter() {
                let f = e.file.borrow();
                if let Some(n) = f.node().filter(|n| n.mnt == mnt && f.writable()) {
                    nodes.push(n);
                }
            }
        }
        let special = |mode: u32| {
            matches!(
                mode & S_IFMT,
                crate::fs::S_IFIFO | crate::fs::S_IFCHR | S_IFBLK | crate::fs::S_IFSOCK
            )
        };
        let open = nodes.iter().any(|&n| {
            self.mounts
                .stat_node(n)
                .map_or(true, |st| !special(st.mode))
        });
        self.reap_orphans();
        let orphans = self.orphans.keys().any(|&(m, _)| m == mnt);
        open || orphans || self.maps_of(mnt, true)
    }

    /// Does any address space map a file of mount `mnt` (only shared
    /// mappings that may write, of a file opened for writing, if
    /// `writable`)?
    fn maps_of(&self, mnt: MountId, writable: bool) -> bool {
        self.mms.values().any(|mm| {
            mm.aspace.vmas().any(|v| match &v.backing {
                Backing::File { source, .. } => {
                    source.key().is_some_and(|k| k.0 == mnt)
                        && (!writable || (v.shared && v.may_write))
                }
                Backing::Anon => false,
            })
        })
    }
}
