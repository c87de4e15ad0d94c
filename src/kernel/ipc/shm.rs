//! SysV shared memory segments. A segment's pages are physmem frames the
//! segment holds (allocated zeroed on first touch, so an untouched segment
//! costs nothing); an attach is a shared VMA whose page source is the
//! segment, so every process that attaches it maps the same frames, and
//! futexes in it are keyed by (segment, offset). The number of attaches
//! (shm_nattch) is the number of VMAs holding the segment, as on Linux
//! (fork and splits count). IPC_RMID on an attached segment marks it
//! SHM_DEST with the private key; it goes, and its frames are freed
//! (punched), once the last attach does (`shm_reap`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{now_secs, Got, IpcPerm, IPC_PRIVATE, MAY_READ, MAY_WRITE};
use crate::errno::{Errno, KResult};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::mm::vma::{Backing, PageSource, Vma};
use crate::mm::{user_end_virt, FaultError, FrameRefs, GuestVirt, PAGE};
use crate::physmem::Frame;

pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;
pub const SHM_RDONLY: u32 = 0o10000;
pub const SHM_RND: u32 = 0o20000;
pub const SHM_REMAP: u32 = 0o40000;
pub const SHM_EXEC: u32 = 0o100000;
/// The device SysV segments show in /proc/<pid>/maps (Linux: 00:01).
pub const SHM_DEV: u64 = 1;

/// The pages of one segment: what its attaches map.
pub struct ShmPages {
    frames: RefCell<Vec<Option<Frame>>>,
    id: Cell<i32>,
    key: i32,
}

impl ShmPages {
    fn frame(&self, index: u64, refs: &mut FrameRefs) -> Result<Frame, FaultError> {
        let mut v = self.frames.borrow_mut();
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| v.get_mut(i))
            .ok_or(FaultError::Bus)?;
        if let Some(f) = *slot {
            return Ok(f);
        }
        let f = refs.alloc().map_err(|_| FaultError::Oom)?;
        *slot = Some(f);
        Ok(f)
    }

    /// The frames the segment holds (some may be in swap).
    pub fn frame_list(&self) -> Vec<Frame> {
        self.frames.borrow().iter().flatten().copied().collect()
    }

    /// Pages that hold a frame (rss).
    pub fn resident(&self) -> u64 {
        self.frames.borrow().iter().filter(|f| f.is_some()).count() as u64
    }

    fn free(&self, refs: &mut FrameRefs) {
        for f in self.frames.borrow_mut().iter_mut() {
            if let Some(f) = f.take() {
                refs.put(f);
            }
        }
    }
}

impl PageSource for ShmPages {
    fn page(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError> {
        self.frame(index, frames)
    }

    fn page_for_write(&self, index: u64, frames: &mut FrameRefs) -> Result<Frame, FaultError> {
        self.frame(index, frames)
    }

    fn ident(&self) -> (u64, u64) {
        (SHM_DEV, self.id.get() as u64)
    }

    fn name(&self) -> Vec<u8> {
        format!("/SYSV{:08x} (deleted)", self.key as u32).into_bytes()
    }

    fn shmem(&self) -> bool {
        true
    }
}

/// One segment (`struct shmid_kernel`).
pub struct Segment {
    pub size: u64,
    pub pages: Rc<ShmPages>,
    pub cpid: Pid,
    pub lpid: Pid,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
}

impl Segment {
    /// How many VMAs attach it.
    pub fn nattch(&self) -> u64 {
        Rc::strong_count(&self.pages) as u64 - 1
    }
}

/// What IPC_STAT reports.
pub struct ShmStat {
    pub perm: IpcPerm,
    pub size: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: Pid,
    pub lpid: Pid,
    pub nattch: u64,
}

impl Kernel {
    /// shmget(2).
    pub fn shmget(&mut self, tid: Pid, key: i32, size: u64, flags: u32) -> KResult<i32> {
        self.shm_reap();
        let cred = self.task(tid)?.cred.clone();
        let pid = self.task(tid)?.tgid;
        let limits = self.ipc.limits;
        let used: u64 = self
            .ipc
            .shm
            .iter()
            .map(|(_, _, s)| s.size.div_ceil(PAGE))
            .sum();
        let mem_pages = self.config.mem_bytes / PAGE + 1;
        let got = self.ipc.shm.get_or_make(
            key,
            flags,
            &cred,
            limits.shmmni,
            |_, s| {
                if s.size < size {
                    Err(Errno::EINVAL)
                } else {
                    Ok(())
                }
            },
            || {
                if size < 1 || size > limits.shmmax {
                    return Err(Errno::EINVAL);
                }
                let pages = size.div_ceil(PAGE);
                if used.saturating_add(pages) > limits.shmall {
                    return Err(Errno::ENOSPC);
                }
                let n = usize::try_from(pages).map_err(|_| Errno::ENOMEM)?;
                // The page vector itself is kernel memory: bound it by
                // the guest's memory.
                if pages > mem_pages {
                    return Err(Errno::ENOMEM);
                }
                Ok(Segment {
                    size,
                    pages: Rc::new(ShmPages {
                        frames: RefCell::new(vec![None; n]),
                        id: Cell::new(0),
                        key,
                    }),
                    cpid: pid,
                    lpid: 0,
                    atime: 0,
                    dtime: 0,
                    ctime: now_secs(),
                })
            },
        )?;
        if let Got::New(id) = got {
            if let Ok((_, s)) = self.ipc.shm.get_mut(id) {
                s.pages.id.set(id);
            }
        }
        Ok(got.id())
    }

    /// shmat(2): maps the segment; returns the address.
    pub fn shmat(&mut self, tid: Pid, id: i32, addr: u64, flags: u32) -> KResult<u64> {
        let cred = self.task(tid)?.cred.clone();
        let pid = self.task(tid)?.tgid;
        let (perm, seg) = self.ipc.shm.get(id)?;
        let want = if flags & SHM_RDONLY != 0 {
            MAY_READ
        } else {
            MAY_READ | MAY_WRITE
        };
        perm.check(&cred, want)?;
        let len = seg.size.div_ceil(PAGE) * PAGE;
        let source: Rc<dyn PageSource> = seg.pages.clone();
        let mut at = addr;
        if at != 0 {
            if flags & SHM_RND != 0 {
                at &= !(PAGE - 1);
            }
            if !at.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            self.check_user_range(tid, at, len)
                .map_err(|_| Errno::EINVAL)?;
            let end = at.checked_add(len).ok_or(Errno::EINVAL)?;
            if flags & SHM_REMAP == 0
                && !self
                    .mm_of(tid)?
                    .aspace
                    .is_free(GuestVirt(at), GuestVirt(end))
            {
                return Err(Errno::EINVAL);
            }
        } else {
            if flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
            at = self
                .mm_of(tid)?
                .aspace
                .find_free(GuestVirt(0), len)
                .ok_or(Errno::ENOMEM)?
                .get();
        }
        let mut prot = crate::mm::PROT_READ;
        if flags & SHM_RDONLY == 0 {
            prot |= crate::mm::PROT_WRITE;
        }
        if flags & SHM_EXEC != 0 {
            prot |= crate::mm::PROT_EXEC;
        }
        let vma = Vma {
            start: GuestVirt(at),
            end: user_end_virt(GuestVirt(at), len).ok_or(Errno::ENOMEM)?,
            prot,
            shared: true,
            may_write: flags & SHM_RDONLY == 0,
            backing: Backing::File { source, pgoff: 0 },
            label: None,
            lock: crate::mm::vma::Lock::None,
            write_ref: None,
        };
        let mmid = self.task(tid)?.mm;
        let Kernel { mms, frames, .. } = self;
        mms.get_mut(&mmid)
            .ok_or(Errno::EFAULT)?
            .aspace
            .insert_vma(vma, frames);
        if let Ok((_, s)) = self.ipc.shm.get_mut(id) {
            s.lpid = pid;
            s.atime = now_secs();
        }
        self.shm_reap();
        Ok(at)
    }

    /// shmdt(2): unmaps the attach that starts at `addr` (all of its VMAs).
    pub fn shmdt(&mut self, tid: Pid, addr: u64) -> KResult<()> {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let pid = self.task(tid)?.tgid;
        let mm = self.mm_of(tid)?;
        let is_shm = |v: &Vma| match &v.backing {
            Backing::File { source, .. } => {
                source.ident().0 == SHM_DEV && source.name().starts_with(b"/SYSV")
            }
            _ => false,
        };
        let first = mm
            .aspace
            .find_vma(GuestVirt(addr))
            .filter(|v| v.start.get() == addr && is_shm(v))
            .ok_or(Errno::EINVAL)?;
        let ident = match &first.backing {
            Backing::File { source, pgoff } if *pgoff == 0 => source.ident(),
            _ => return Err(Errno::EINVAL),
        };
        let shmid = ident.1 as i32;
        let size = self
            .ipc
            .shm
            .get(shmid)
            .map(|(_, s)| s.size.div_ceil(PAGE) * PAGE)
            .unwrap_or(PAGE);
        let end = addr.saturating_add(size);
        let ranges: Vec<(GuestVirt, GuestVirt)> = self
            .mm_of(tid)?
            .aspace
            .vmas()
            .filter(|v| v.start.get() >= addr && v.start.get() < end && is_shm(v))
            .filter(
                |v| matches!(&v.backing, Backing::File { source, .. } if source.ident() == ident),
            )
            .map(|v| (v.start, v.end))
            .collect();
        let mmid = self.task(tid)?.mm;
        let Kernel { mms, frames, .. } = self;
        let mm = mms.get_mut(&mmid).ok_or(Errno::EFAULT)?;
        for (s, e) in ranges {
            mm.aspace.unmap_range(s, e, frames);
        }
        if let Ok((_, s)) = self.ipc.shm.get_mut(shmid) {
            s.lpid = pid;
            s.dtime = now_secs();
        }
        self.shm_reap();
        Ok(())
    }

    /// Frees the removed segments nobody attaches any more.
    pub fn shm_reap(&mut self) {
        let gone: Vec<i32> = self
            .ipc
            .shm
            .iter()
            .filter(|(_, p, s)| p.mode & SHM_DEST != 0 && s.nattch() == 0)
            .map(|(id, _, _)| id)
            .collect();
        for id in gone {
            if let Some((_, s)) = self.ipc.shm.remove(id) {
                s.pages.free(&mut self.frames);
            }
        }
    }

    /// IPC_STAT / SHM_STAT(_ANY): `check` says whether read permission
    /// is needed.
    pub fn shm_stat(&mut self, tid: Pid, id: i32, check: bool) -> KResult<ShmStat> {
        self.shm_reap();
        let cred = self.task(tid)?.cred.clone();
        let (p, s) = self.ipc.shm.get(id)?;
        if check {
            p.check(&cred, MAY_READ)?;
        }
        Ok(ShmStat {
            perm: *p,
            size: s.size,
            atime: s.atime,
            dtime: s.dtime,
            ctime: s.ctime,
            cpid: s.cpid,
            lpid: s.lpid,
            nattch: s.nattch(),
        })
    }

    /// IPC_SET.
    pub fn shm_set(&mut self, tid: Pid, id: i32, uid: u32, gid: u32, mode: u32) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        let (p, s) = self.ipc.shm.get_mut(id)?;
        p.may_change(&cred)?;
        p.set(uid, gid, mode);
        s.ctime = now_secs();
        Ok(())
    }

    /// IPC_RMID: gone now if nobody attaches it, else at the last detach.
    pub fn shm_rmid(&mut self, tid: Pid, id: i32) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        let (p, s) = self.ipc.shm.get_mut(id)?;
        p.may_change(&cred)?;
        p.mode |= SHM_DEST;
        p.key = IPC_PRIVATE;
        s.ctime = now_secs();
        self.shm_reap();
        Ok(())
    }

    /// SHM_LOCK / SHM_UNLOCK (the owner or root): a locked segment's
    /// pages are not swapped out (kernel/swap.rs).
    pub fn shm_lock(&mut self, tid: Pid, id: i32, lock: bool) -> KResult<()> {
        let cred = self.task(tid)?.cred.clone();
        let (p, _) = self.ipc.shm.get_mut(id)?;
        p.may_change(&cred)?;
        if lock {
            p.mode |= SHM_LOCKED;
        } else {
            p.mode &= !SHM_LOCKED;
        }
        Ok(())
    }

    /// (segments, pages held, pages resident) for SHM_INFO.
    pub fn shm_totals(&self) -> (u64, u64, u64) {
        let mut t = (0, 0, 0);
        for (_, _, s) in self.ipc.shm.iter() {
            t.0 += 1;
            t.1 += s.size.div_ceil(PAGE);
            t.2 += s.pages.resident();
        }
        t
    }
}
