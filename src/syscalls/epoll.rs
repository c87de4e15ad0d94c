//! epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
//! epoll_pwait2: decode, check in Linux's order, call the epoll file.

use std::rc::Rc;
use std::time::Duration;

use super::poll::{
    apply_call_mask, finish_call_mask, interrupted, timespec_timeout, wait_for, Waits,
};
use super::{fd_arg, ok, Outcome, SysResult};
use crate::errno::{Errno, KResult};
use crate::fs::{S_IFDIR, S_IFMT, S_IFREG};
use crate::kernel::files::epoll::{file_id, poll_watched, EpollFile};
use crate::kernel::task::Pid;
use crate::kernel::waitq::ALL_EVENTS;
use crate::kernel::Kernel;
use crate::net::epoll::{
    Event, EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EVENT_SIZE, MAX_EVENTS,
};
use crate::vfs::file::ops_of;
use crate::vfs::OpenFileRef;

fn file(k: &Kernel, tid: Pid, fd: i32) -> KResult<OpenFileRef> {
    k.task(tid)?.files.borrow().file(fd)
}

fn create(k: &mut Kernel, tid: Pid, cloexec: bool) -> SysResult {
    // fs.file-max: ENFILE before anything is made.
    k.check_file_max(tid)?;
    // Watches count against the creator's real uid (Linux's ep->user).
    let uid = k.cred(tid)?.uid;
    let f = EpollFile::open(k.ucaps.epoll_watches.clone(), uid);
    let fd = k.task(tid)?.files.borrow_mut().install(f, cloexec, 0)?;
    ok(fd as i64)
}

pub fn sys_epoll_create(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if (a[0] as i32) <= 0 {
        return Err(Errno::EINVAL);
    }
    create(k, tid, false)
}

pub fn sys_epoll_create1(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let flags = a[0] as u32;
    if flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    create(k, tid, flags != 0)
}

pub fn sys_epoll_ctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (epfd, op, fd) = (fd_arg(a[0]), a[1] as i32, fd_arg(a[2]));
    let ev = if op != EPOLL_CTL_DEL {
        Event::from(k.read_struct::<crate::abi::layout::EpollEvent>(tid, a[3])?)
    } else {
        Event { events: 0, data: 0 }
    };
    let epf = file(k, tid, epfd)?;
    let tf = file(k, tid, fd)?;
    let tops = ops_of(&tf);
    // Files without a poll operation (regular files, directories): EPERM.
    let (st, _) = tops.stat(k)?;
    if tops.as_epoll().is_none()
        && tops.as_socket().is_none()
        && !tops.epoll_able()
        && matches!(st.mode & S_IFMT, S_IFREG | S_IFDIR)
    {
        return Err(Errno::EPERM);
    }
    let eops = ops_of(&epf);
    let Some(ep) = eops.as_epoll() else {
        return Err(Errno::EINVAL);
    };
    if Rc::ptr_eq(&epf, &tf) {
        return Err(Errno::EINVAL);
    }
    let target_is_epoll = tops.as_epoll().is_some();
    if op == EPOLL_CTL_ADD && target_is_epoll && EpollFile::would_loop(&epf, &tf) {
        return Err(Errno::ELOOP);
    }
    ep.set.borrow_mut().ctl(
        op,
        fd,
        file_id(&tf),
        Rc::downgrade(&tf),
        ev,
        target_is_epoll,
    )?;
    // A waiter on this epoll may now have something to report.
    let q = ep.ctl_q.clone();
    k.wake_queue(&q, ALL_EVENTS);
    ok(0)
}

fn do_wait(
    k: &mut Kernel,
    tid: Pid,
    epfd: i32,
    events: u64,
    max: u64,
    timeout: Option<Duration>,
) -> SysResult {
    let max = max as i32;
    if max <= 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let epf = file(k, tid, epfd)?;
    let ops = ops_of(&epf);
    let Some(ep) = ops.as_epoll() else {
        return Err(Errno::EINVAL);
    };
    let got = ep
        .set
        .borrow_mut()
        .collect(max as usize, &mut |w| poll_watched(k, w));
    if !got.is_empty() {
        let mut out = Vec::with_capacity(got.len() * EVENT_SIZE);
        for e in &got {
            out.extend_from_slice(&e.to_bytes());
        }
        k.write_user(tid, events, &out)?;
        return ok(got.len() as i64);
    }
    if timeout != Some(Duration::ZERO) {
        interrupted(k, tid)?;
    }
    let mut waits = Waits::default();
    ep.wait_queues(k, &mut waits.queues);
    match wait_for(k, tid, timeout, waits)? {
        Some(Outcome::Return(_)) | None => ok(0),
        Some(o) => Ok(o),
    }
}

fn ms_timeout(ms: u64) -> Option<Duration> {
    let ms = ms as i32;
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

pub fn sys_epoll_wait(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    do_wait(k, tid, fd_arg(a[0]), a[1], a[2], ms_timeout(a[3]))
}

pub fn sys_epoll_pwait(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let masked = apply_call_mask(k, tid, a[4], a[5])?;
    let r = do_wait(k, tid, fd_arg(a[0]), a[1], a[2], ms_timeout(a[3]));
    finish_call_mask(k, tid, masked, r)
}

pub fn sys_epoll_pwait2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let timeout = timespec_timeout(k, tid, a[3])?;
    let masked = apply_call_mask(k, tid, a[4], a[5])?;
    let r = do_wait(k, tid, fd_arg(a[0]), a[1], a[2], timeout);
    finish_call_mask(k, tid, masked, r)
}
