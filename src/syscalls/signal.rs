//! Signal syscalls: rt_sigaction, rt_sigprocmask, rt_sigpending,
//! rt_sigsuspend, rt_sigreturn, sigaltstack, kill, tkill, tgkill, pause.

use super::{ok, Outcome, SysResult};
use crate::abi::layout::KSigaction;
use crate::errno::Errno;
use crate::kernel::signal::*;
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;

pub fn sys_rt_sigaction(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (sig, act, old, size) = (a[0] as i32, a[1], a[2], a[3]);
    if size != 8 || !(1..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    if act != 0 && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let h = k.task(tid)?.sighand.clone();
    let prev = h.borrow().get(sig);
    if act != 0 {
        let sa: KSigaction = k.read_struct(tid, act)?;
        let new = SigAction {
            handler: sa.handler,
            flags: sa.flags,
            restorer: sa.restorer,
            mask: SigSet(sa.mask).sanitized(),
        };
        h.borrow_mut().set(sig, new);
        // Setting SIG_IGN (or a default-ignore SIG_DFL) discards pending ones.
        if h.borrow().is_ignored(sig) {
            let tgid = k.task(tid)?.tgid;
            for th in k.threads(tgid) {
                if let Ok(t) = k.task_mut(th) {
                    t.pending.retain(|i| i.signo != sig);
                }
            }
        }
    }
    if old != 0 {
        let sa = KSigaction {
            handler: prev.handler,
            flags: prev.flags,
            restorer: prev.restorer,
            mask: prev.mask.0,
        };
        k.write_struct(tid, old, &sa)?;
    }
    ok(0)
}

pub fn sys_rt_sigprocmask(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (how, set, old, size) = (a[0], a[1], a[2], a[3]);
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let cur = k.task(tid)?.sigmask;
    if set != 0 {
        let s = SigSet(k.read_u64(tid, set)?);
        let new = match how {
            0 => SigSet(cur.0 | s.0),
            1 => SigSet(cur.0 & !s.0),
            2 => s,
            _ => return Err(Errno::EINVAL),
        };
        k.task_mut(tid)?.sigmask = new.sanitized();
    }
    if old != 0 {
        k.write_u64(tid, old, cur.0)?;
    }
    ok(0)
}

pub fn sys_rt_sigpending(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let t = k.task(tid)?;
    let set = t
        .pending
        .iter()
        .fold(0u64, |acc, i| acc | SigSet::bit(i.signo))
        & t.sigmask.0;
    k.write_u64(tid, a[0], set)?;
    ok(0)
}

pub fn sys_rt_sigsuspend(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = SigSet(k.read_u64(tid, a[0])?).sanitized();
    let t = k.task_mut(tid)?;
    if t.saved_mask.is_none() {
        t.saved_mask = Some(t.sigmask);
    }
    t.sigmask = mask;
    // Wakes (and returns EINTR via the interrupt path) when a signal comes.
    if k.has_deliverable_signal(tid) {
        return Err(Errno::EINTR);
    }
    Ok(Outcome::Block(Wait::Signal))
}

pub fn sys_pause(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    if k.has_deliverable_signal(tid) {
        return Err(Errno::EINTR);
    }
    Ok(Outcome::Block(Wait::Signal))
}

pub fn sys_rt_sigreturn(k: &mut Kernel, tid: Pid, _a: [u64; 6]) -> SysResult {
    if k.sigreturn(tid).is_err() {
        k.force_signal(
            tid,
            SigInfo {
                signo: SIGSEGV,
                ..Default::default()
            },
        );
    }
    Ok(Outcome::NoReturn)
}

pub fn sys_sigaltstack(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (ss, old) = (a[0], a[1]);
    let cur = k.task(tid)?.altstack;
    let sp = k.regs(tid).rsp;
    if old != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&cur.sp.to_le_bytes());
        let flags = if !cur.enabled() {
            SS_DISABLE
        } else if cur.contains(sp) {
            SS_ONSTACK
        } else {
            0
        };
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&cur.size.to_le_bytes());
        k.write_user(tid, old, &b)?;
    }
    if ss != 0 {
        if cur.contains(sp) {
            return Err(Errno::EPERM);
        }
        let b = k.read_user_vec(tid, ss, 24)?;
        let nsp = u64::from_le_bytes(b[0..8].try_into().expect("8"));
        let flags = u32::from_le_bytes(b[8..12].try_into().expect("4"));
        let size = u64::from_le_bytes(b[16..24].try_into().expect("8"));
        if flags & !(SS_DISABLE | 0x8000_0000) != 0 {
            return Err(Errno::EINVAL);
        }
        let new = if flags & SS_DISABLE != 0 {
            AltStack {
                sp: 0,
                flags: SS_DISABLE,
                size: 0,
            }
        } else {
            if size < 2048 {
                return Err(Errno::ENOMEM);
            }
            AltStack {
                sp: nsp,
                flags: 0,
                size,
            }
        };
        k.task_mut(tid)?.altstack = new;
    }
    ok(0)
}

pub fn sys_kill(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    k.kill(tid, a[0] as i32, a[1] as i32)?;
    ok(0)
}

fn thread_signal(k: &mut Kernel, tid: Pid, tgid: Option<Pid>, target: Pid, sig: i32) -> SysResult {
    if !(0..=NSIG).contains(&sig) || target <= 0 || tgid.is_some_and(|g| g <= 0) {
        return Err(Errno::EINVAL);
    }
    let t = k
        .tasks
        .get(&target)
        .filter(|t| t.is_alive())
        .ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != t.tgid) {
        return Err(Errno::ESRCH);
    }
    if !k.may_signal(tid, target, sig) {
        return Err(Errno::EPERM);
    }
    if sig == 0 {
        return ok(0);
    }
    let (spid, uid) = (k.task(tid)?.tgid, k.task(tid)?.cred.uid);
    k.send_to_thread(
        target,
        SigInfo {
            signo: sig,
            code: -6,
            pid: spid,
            uid,
            ..Default::default()
        },
    );
    ok(0)
}

pub fn sys_tkill(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    thread_signal(k, tid, None, a[0] as i32, a[1] as i32)
}

pub fn sys_tgkill(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    thread_signal(k, tid, Some(a[0] as i32), a[1] as i32, a[2] as i32)
}

pub fn sys_rt_sigtimedwait(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let set = SigSet(k.read_u64(tid, a[0])?).sanitized();
    let t = k.task_mut(tid)?;
    if let Some(i) = t.pending.iter().position(|i| set.has(i.signo)) {
        let mut info = t.pending.remove(i);
        t.block_deadline = None;
        k.ptimer_signal_taken(tid, &mut info);
        if a[1] != 0 {
            k.write_user(tid, a[1], &info.to_bytes())?;
        }
        return ok(info.signo as i64);
    }
    if a[2] == 0 {
        return Ok(Outcome::Block(k.sleep_on_signals(tid, None)?));
    }
    let d = crate::syscalls::time::read_timespec_duration(k, tid, a[2])?;
    let t = k.task_mut(tid)?;
    let deadline = *t
        .block_deadline
        .get_or_insert_with(|| crate::kernel::deadline::after(d));
    if std::time::Instant::now() >= deadline {
        return Err(Errno::EAGAIN);
    }
    Ok(Outcome::Block(k.sleep_on_signals(tid, Some(deadline))?))
}

/// rt_sigqueueinfo / rt_tgsigqueueinfo: a signal with the caller's siginfo.
fn queue_info(
    k: &mut Kernel,
    tid: Pid,
    target: Pid,
    thread: bool,
    sig: i32,
    uinfo: u64,
) -> SysResult {
    if !(1..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let b = k.read_user_vec(tid, uinfo, 128)?;
    let g32 = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
    let code = g32(8);
    // Only kernel-made codes are refused from user space (as Linux does).
    if code >= 0 || code == -6 {
        return Err(Errno::EPERM);
    }
    let info = SigInfo {
        signo: sig,
        code,
        pid: g32(16),
        uid: g32(20) as u32,
        value: u64::from_le_bytes(b[24..32].try_into().expect("8")),
        ..Default::default()
    };
    let t = k
        .tasks
        .get(&target)
        .filter(|t| t.is_alive())
        .ok_or(Errno::ESRCH)?;
    let tgid = t.tgid;
    if !k.may_signal(tid, target, sig) {
        return Err(Errno::EPERM);
    }
    // RLIMIT_SIGPENDING: a queued real-time signal past it is EAGAIN.
    if sig >= 32 && !k.sigpending_room(target) {
        return Err(Errno::EAGAIN);
    }
    if thread {
        k.send_to_thread(target, info);
    } else {
        k.send_to_process(tgid, info);
    }
    ok(0)
}

pub fn sys_rt_sigqueueinfo(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    queue_info(k, tid, a[0] as i32, false, a[1] as i32, a[2])
}

pub fn sys_rt_tgsigqueueinfo(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let target = a[1] as i32;
    if k.tasks.get(&target).map(|t| t.tgid) != Some(a[0] as i32) {
        return Err(Errno::ESRCH);
    }
    queue_info(k, tid, target, true, a[2] as i32, a[3])
}
