//! System V IPC: shared memory, semaphores and message queues, one
//! namespace for the guest (Linux's `ipc_namespace`).
//!
//! | file     | owns |
//! |----------|------|
//! | `mod.rs` | ids and keys (`Registry`), `ipc_perm` and its permission rules, the limits |
//! | `shm.rs` | segments: frames held by the segment, attaches as VMAs, IPC_RMID with nattch |
//! | `sem.rs` | semaphore sets: atomic semop, sleeping on the set's queue, SEM_UNDO at exit |
//! | `msg.rs` | message queues: types, MSG_NOERROR/MSG_EXCEPT, sleeping senders and receivers |
//!
//! The syscalls (argument decoding, the user structures) are
//! `syscalls/ipc.rs`; /proc/sysvipc/* and the /proc/sys/kernel limits are
//! formatted here (`sysvipc_text`).

pub mod msg;
pub mod sem;
pub mod shm;

use std::collections::{BTreeMap, HashSet};

use super::task::Pid;
use crate::errno::{Errno, KResult};
use crate::fs::procfs::IpcLimits;
use crate::vfs::Cred;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: u32 = 0o1000;
pub const IPC_EXCL: u32 = 0o2000;
pub const IPC_NOWAIT: u32 = 0o4000;
pub const IPC_RMID: u32 = 0;
pub const IPC_SET: u32 = 1;
pub const IPC_STAT: u32 = 2;
pub const IPC_INFO: u32 = 3;

/// Linux's IPCMNI_SHIFT: an id is seq << 15 | index.
const IDX_BITS: u32 = 15;
const IDX_MAX: u32 = 1 << IDX_BITS;

/// `struct ipc64_perm`, as the kernel keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcPerm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// The low 9 bits are the permissions; shm keeps SHM_DEST and
    /// SHM_LOCKED above them.
    pub mode: u32,
    pub seq: u16,
}

/// Read (S_IRUGO) or write (S_IWUGO) access, as `ipcperms` takes it.
pub const MAY_READ: u32 = 0o444;
pub const MAY_WRITE: u32 = 0o222;

impl IpcPerm {
    /// Linux's ipcperms: the owner's, group's or others' bits grant
    /// `flag` (root may do anything).
    pub fn allows(&self, cred: &Cred, flag: u32) -> bool {
        if cred.euid == 0 {
            return true;
        }
        let requested = (flag >> 6) | (flag >> 3) | flag;
        let mut granted = self.mode;
        if cred.euid == self.cuid || cred.euid == self.uid {
            granted >>= 6;
        } else if cred.in_group(self.cgid) || cred.in_group(self.gid) {
            granted >>= 3;
        }
        requested & !granted & 0o7 == 0
    }

    pub fn check(&self, cred: &Cred, flag: u32) -> KResult<()> {
        if self.allows(cred, flag) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// IPC_SET and IPC_RMID: the owner, the creator, or root.
    pub fn may_change(&self, cred: &Cred) -> KResult<()> {
        if cred.euid == 0 || cred.euid == self.uid || cred.euid == self.cuid {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// IPC_SET: new owner and permission bits.
    pub fn set(&mut self, uid: u32, gid: u32, mode: u32) {
        self.uid = uid;
        self.gid = gid;
        self.mode = (self.mode & !0o777) | (mode & 0o777);
    }
}

/// The objects of one IPC family by id, and their keys.
pub struct Registry<T> {
    items: BTreeMap<u32, (IpcPerm, T)>,
    seq: u16,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            items: BTreeMap::new(),
            seq: 0,
        }
    }
}

/// What `Registry::get` found or made.
pub enum Got {
    Existing(i32),
    New(i32),
}

impl<T> Registry<T> {
    fn id_of(idx: u32, seq: u16) -> i32 {
        ((seq as u32) << IDX_BITS | idx) as i32
    }

    fn index(id: i32) -> Option<(u32, u16)> {
        if id < 0 {
            return None;
        }
        let id = id as u32;
        Some((id & (IDX_MAX - 1), (id >> IDX_BITS) as u16))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The object with id `id` (EINVAL if there is none).
    pub fn get_mut(&mut self, id: i32) -> KResult<(&mut IpcPerm, &mut T)> {
        let (idx, seq) = Self::index(id).ok_or(Errno::EINVAL)?;
        match self.items.get_mut(&idx) {
            Some((p, t)) if p.seq == seq => Ok((p, t)),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn get(&self, id: i32) -> KResult<(&IpcPerm, &T)> {
        let (idx, seq) = Self::index(id).ok_or(Errno::EINVAL)?;
        match self.items.get(&idx) {
            Some((p, t)) if p.seq == seq => Ok((p, t)),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn remove(&mut self, id: i32) -> Option<(IpcPerm, T)> {
        let (idx, seq) = Self::index(id)?;
        match self.items.get(&idx) {
            Some((p, _)) if p.seq == seq => self.items.remove(&idx),
            _ => None,
        }
    }

    /// Every object: (id, perm, object), by index.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &IpcPerm, &T)> {
        self.items
            .iter()
            .map(|(&i, (p, t))| (Self::id_of(i, p.seq), p, t))
    }

    /// The id at position `index` (SHM_STAT and friends take an index).
    pub fn id_at_index(&self, index: i32) -> KResult<i32> {
        let idx = u32::try_from(index).map_err(|_| Errno::EINVAL)?;
        let (p, _) = self.items.get(&idx).ok_or(Errno::EINVAL)?;
        Ok(Self::id_of(idx, p.seq))
    }

    /// The highest index in use (IPC_INFO's answer), or 0.
    pub fn max_index(&self) -> i32 {
        self.items.keys().next_back().copied().unwrap_or(0) as i32
    }

    /// shmget/semget/msgget: finds the object with `key` (checking its
    /// permissions with `check`), or makes one with `make` when IPC_CREAT
    /// (or IPC_PRIVATE) asks for it. ENOENT, EEXIST, EACCES, ENOSPC as
    /// Linux answers.
    pub fn get_or_make(
        &mut self,
        key: i32,
        flags: u32,
        cred: &Cred,
        max: u64,
        check: impl FnOnce(&IpcPerm, &T) -> KResult<()>,
        make: impl FnOnce() -> KResult<T>,
    ) -> KResult<Got> {
        if key != IPC_PRIVATE {
            let found = self
                .items
                .iter()
                .find(|(_, (p, _))| p.key == key)
                .map(|(&i, _)| i);
            if let Some(idx) = found {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                let (p, t) = &self.items[&idx];
                p.check(cred, flags & 0o777)?;
                check(p, t)?;
                return Ok(Got::Existing(Self::id_of(idx, p.seq)));
            }
            if flags & IPC_CREAT == 0 {
                return Err(Errno::ENOENT);
            }
        }
        if self.items.len() as u64 >= max.min(IDX_MAX as u64) {
            return Err(Errno::ENOSPC);
        }
        let idx = (0..IDX_MAX)
            .find(|i| !self.items.contains_key(i))
            .ok_or(Errno::ENOSPC)?;
        let obj = make()?;
        self.seq = self.seq.wrapping_add(1);
        let perm = IpcPerm {
            key,
            uid: cred.euid,
            gid: cred.egid,
            cuid: cred.euid,
            cgid: cred.egid,
            mode: flags & 0o777,
            seq: self.seq,
        };
        self.items.insert(idx, (perm, obj));
        Ok(Got::New(Self::id_of(idx, self.seq)))
    }
}

impl Got {
    pub fn id(&self) -> i32 {
        match *self {
            Got::Existing(i) | Got::New(i) => i,
        }
    }
}

/// The guest's IPC namespace.
#[derive(Default)]
pub struct Ipc {
    pub limits: IpcLimits,
    pub shm: Registry<shm::Segment>,
    pub sem: Registry<sem::SemSet>,
    pub msg: Registry<msg::MsgQueue>,
    /// Segments removed while attached: freed once the last attach goes.
    pub shm_doomed: Vec<shm::Segment>,
    /// SEM_UNDO adjustments: (process, set id) → one adjustment per semaphore.
    pub sem_undo: BTreeMap<(Pid, i32), Vec<i32>>,
    /// Tasks asleep on a set or queue that IPC_RMID removed: (task, id);
    /// their retry answers EIDRM.
    pub removed_under: HashSet<(Pid, i32)>,
}

/// Seconds since the epoch, for the IPC time stamps.
pub fn now_secs() -> i64 {
    crate::syscalls::now_ts().sec
}

impl super::Kernel {
    /// /proc/sysvipc/{shm, sem, msg}, in Linux's formats.
    pub fn sysvipc_text(&self) -> [String; 3] {
        let mut shm = String::from(
            "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
        );
        for (id, p, s) in self.ipc.shm.iter() {
            let swapped = {
                let sw = self.frames.swap.borrow();
                s.pages
                    .frame_list()
                    .into_iter()
                    .filter(|&f| sw.is_swapped(f))
                    .count() as u64
            };
            shm.push_str(&format!(
                "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}\n",
                p.key,
                id,
                p.mode,
                s.size,
                s.cpid,
                s.lpid,
                s.nattch(),
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                s.atime,
                s.dtime,
                s.ctime,
                (s.pages.resident() - swapped) * crate::mm::PAGE,
                swapped * crate::mm::PAGE
            ));
        }
        let mut sem = String::from(
            "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
        );
        for (id, p, s) in self.ipc.sem.iter() {
            sem.push_str(&format!(
                "{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}\n",
                p.key,
                id,
                p.mode,
                s.nsems(),
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                s.otime,
                s.ctime
            ));
        }
        let mut msg = String::from(
            "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
        );
        for (id, p, q) in self.ipc.msg.iter() {
            msg.push_str(&format!(
                "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}\n",
                p.key,
                id,
                p.mode,
                q.cbytes,
                q.msgs.len(),
                q.lspid,
                q.lrpid,
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                q.stime,
                q.rtime,
                q.ctime
            ));
        }
        [shm, sem, msg]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32) -> Cred {
        Cred {
            uid,
            euid: uid,
            suid: uid,
            gid,
            egid: gid,
            sgid: gid,
            groups: vec![],
        }
    }

    #[test]
    fn keys_find_create_and_refuse_as_linux() {
        let mut r: Registry<u32> = Registry::default();
        let root = user(0, 0);
        let ok = |_: &IpcPerm, _: &u32| Ok(());
        let a = r.get_or_make(7, IPC_CREAT | 0o600, &root, 10, ok, || Ok(1));
        let a = a.unwrap().id();
        assert!(
            matches!(r.get_or_make(7, 0, &root, 10, ok, || Ok(2)), Ok(Got::Existing(i)) if i == a)
        );
        assert_eq!(
            r.get_or_make(7, IPC_CREAT | IPC_EXCL, &root, 10, ok, || Ok(2))
                .err(),
            Some(Errno::EEXIST)
        );
        assert_eq!(
            r.get_or_make(8, 0, &root, 10, ok, || Ok(2)).err(),
            Some(Errno::ENOENT)
        );
        // IPC_PRIVATE always makes a new one; ids differ.
        let b = r
            .get_or_make(IPC_PRIVATE, 0o600, &root, 10, ok, || Ok(3))
            .unwrap()
            .id();
        assert_ne!(a, b);
        assert_eq!(
            r.get_or_make(IPC_PRIVATE, 0, &root, 2, ok, || Ok(4)).err(),
            Some(Errno::ENOSPC)
        );
        // Another user without the bits: EACCES; a stale id: EINVAL.
        assert_eq!(
            r.get_or_make(7, 0o600, &user(5, 5), 10, ok, || Ok(2)).err(),
            Some(Errno::EACCES)
        );
        r.remove(a).unwrap();
        assert_eq!(r.get(a).err(), Some(Errno::EINVAL));
        let c = r
            .get_or_make(7, IPC_CREAT | 0o600, &root, 10, ok, || Ok(5))
            .unwrap()
            .id();
        assert_ne!(c, a, "a new object in the old slot has another id");
        assert_eq!(r.get(-1).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn permission_bits_follow_owner_group_other() {
        let p = IpcPerm {
            key: 1,
            uid: 10,
            gid: 20,
            cuid: 10,
            cgid: 20,
            mode: 0o640,
            seq: 0,
        };
        assert!(p.allows(&user(10, 0), MAY_READ | MAY_WRITE));
        assert!(p.allows(&user(11, 20), MAY_READ));
        assert!(!p.allows(&user(11, 20), MAY_WRITE));
        assert!(!p.allows(&user(12, 30), MAY_READ));
        assert!(p.allows(&user(0, 0), MAY_WRITE));
        assert_eq!(p.may_change(&user(11, 20)), Err(Errno::EPERM));
        assert_eq!(p.may_change(&user(10, 0)), Ok(()));
    }
}
