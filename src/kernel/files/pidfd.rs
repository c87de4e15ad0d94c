//! pidfd: a process as a file (pidfd_open(2)). Pollers see POLLIN once
//! the process has ended (every thread exited: a zombie or reaped), and
//! POLLHUP too once it is reaped; `pidfd_send_signal` signals it and
//! `waitid(P_PIDFD)` waits for it. The kernel wakes `EventHub::exits`
//! whenever a process ends.
//!
//! Pids are handed out in order and only wrap after 4 million, so a
//! pidfd names its process by pid; a reaped process's pid reused by a
//! later one within one pidfd's life is not detected (Linux holds a
//! `struct pid`).

use std::rc::Rc;

use super::{kind, POLLHUP, POLLIN, POLLRDNORM};
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::kernel::signal::{SigInfo, NSIG};
use crate::kernel::task::{Pid, TaskState};
use crate::kernel::waitq::WaitQueueRef;
use crate::kernel::Kernel;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{ops_of, FileDescription, O_NONBLOCK, O_RDWR};
use crate::vfs::OpenFile;

/// PIDFD_NONBLOCK is O_NONBLOCK.
pub const PIDFD_NONBLOCK: u32 = O_NONBLOCK;

/// pidfd_send_signal's scope flags (Linux 6.9): the thread, its thread
/// group (a pidfd names a leader here, so both reach the process), or its
/// process group.
pub const PIDFD_SIGNAL_THREAD: u64 = 1;
pub const PIDFD_SIGNAL_THREAD_GROUP: u64 = 2;
pub const PIDFD_SIGNAL_PROCESS_GROUP: u64 = 4;

pub struct PidFd {
    pub pid: Pid,
}

impl FileDescription for PidFd {
    fn poll(&self, k: &mut Kernel) -> u32 {
        match k.tasks.get(&self.pid) {
            Some(t) if t.state == TaskState::Zombie => POLLIN | POLLRDNORM,
            Some(t) if t.state != TaskState::Dead => {
                let alive = k
                    .threads(self.pid)
                    .iter()
                    .any(|th| k.tasks.get(th).is_some_and(|t| t.is_alive()));
                if alive {
                    0
                } else {
                    POLLIN | POLLRDNORM
                }
            }
            _ => POLLIN | POLLRDNORM | POLLHUP,
        }
    }

    fn wait_queue(&self, k: &Kernel) -> Option<WaitQueueRef> {
        Some(k.evhub.exits.clone())
    }

    fn stat(&self, _k: &mut Kernel) -> KResult<(Stat, u64)> {
        Ok(super::anon_inode_stat())
    }

    /// As Linux's `pidfd_show_fdinfo` (-1 once the process is reaped).
    fn fdinfo(&self, k: &mut Kernel) -> String {
        let pid = if k.tasks.contains_key(&self.pid) {
            self.pid
        } else {
            -1
        };
        format!("Pid:\t{pid}\nNSpid:\t{pid}\n")
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The pid a pidfd names and whether the pidfd is non-blocking: EBADF
/// for no open fd or another kind of file.
pub fn pid_of_fd(k: &Kernel, tid: Pid, fd: i32) -> KResult<(Pid, bool)> {
    let f = k.task(tid)?.files.borrow().file(fd)?;
    let ops = ops_of(&f);
    let pid = kind::<PidFd>(&ops).map(|p| p.pid).ok_or(Errno::EBADF)?;
    let nonblocking = f.borrow().nonblocking();
    Ok((pid, nonblocking))
}

/// pidfd_open(pid, flags).
pub fn sys_pidfd_open(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    let pid = a[0] as u32 as i32;
    let flags = u32::try_from(a[1]).map_err(|_| Errno::EINVAL)?;
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let t = k
        .tasks
        .get(&pid)
        .filter(|t| t.state != TaskState::Dead)
        .ok_or(Errno::ESRCH)?;
    if t.tgid != pid {
        // A thread that leads no process.
        return Err(Errno::ENOENT);
    }
    let file = OpenFile::new(
        Rc::new(PidFd { pid }),
        O_RDWR | (flags & O_NONBLOCK),
        b"anon_inode:[pidfd]".to_vec(),
    );
    let fd = k.task(tid)?.files.borrow_mut().install(file, true, 0)?;
    ok(fd as i64)
}

/// A close-on-exec pidfd for `pid` in `tid`'s fd table (CLONE_PIDFD).
pub fn install_pidfd(k: &mut Kernel, tid: Pid, pid: Pid) -> KResult<i32> {
    k.check_file_max(tid)?;
    let file = OpenFile::new(
        Rc::new(PidFd { pid }),
        O_RDWR,
        b"anon_inode:[pidfd]".to_vec(),
    );
    k.task(tid)?.files.borrow_mut().install(file, true, 0)
}

/// pidfd_send_signal(pidfd, sig, info, flags).
pub fn sys_pidfd_send_signal(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let sig = a[1] as u32 as i32;
    let flags = a[3];
    if flags & !(PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP) != 0
        || flags.count_ones() > 1
    {
        return Err(Errno::EINVAL);
    }
    let f = k.task(tid)?.files.borrow().file(a[0] as u32 as i32)?;
    let ops = ops_of(&f);
    let pid = match kind::<PidFd>(&ops) {
        Some(p) => p.pid,
        None => proc_dir_pid(k, &ops).ok_or(Errno::EBADF)?,
    };
    if !(0..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let alive = |k: &Kernel| {
        k.tasks
            .get(&pid)
            .filter(|t| t.state != TaskState::Dead)
            .map(|t| t.tgid)
            .ok_or(Errno::ESRCH)
    };
    if flags == PIDFD_SIGNAL_PROCESS_GROUP {
        if a[2] != 0 {
            return Err(Errno::EINVAL);
        }
        let pgid = k.task(alive(k)?)?.pgid;
        k.kill(tid, -pgid, sig)?;
        return ok(0);
    }
    if a[2] == 0 {
        let target = alive(k)?;
        k.kill(tid, target, sig)?;
        return ok(0);
    }
    let b = k.read_user_vec(tid, a[2], 128)?;
    let g32 = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
    if g32(0) != sig {
        return Err(Errno::EINVAL);
    }
    let code = g32(8);
    let me = k.task(tid)?.tgid;
    // Only a process itself may claim a kernel-made code (as Linux, which
    // checks this before whether the process still exists).
    if me != pid && (code >= 0 || code == -6) {
        return Err(Errno::EPERM);
    }
    let target = alive(k)?;
    if sig != 0 {
        let info = SigInfo {
            signo: sig,
            code,
            pid: g32(16),
            uid: g32(20) as u32,
            value: u64::from_le_bytes(b[24..32].try_into().expect("8")),
            ..Default::default()
        };
        k.send_to_process(target, info);
    }
    ok(0)
}

/// As Linux's tgid_pidfd_to_pid: an open /proc/<pid> directory stands for
/// that process in pidfd_send_signal.
fn proc_dir_pid(k: &Kernel, ops: &Rc<dyn FileDescription>) -> Option<Pid> {
    let node = ops.node()?;
    if k.mounts.get(node.mnt).ok()?.kind != "proc" {
        return None;
    }
    let pid = crate::fs::procfs::pid_dir_of(node.ino)?;
    Pid::try_from(pid).ok()
}
