//! splice, tee and vmsplice, in Linux's order of checks (`fs/splice.c`)
//! but by copying: the bytes go through a kernel buffer rather than
//! moving page references. What a pipe holds is taken only once the other
//! side accepted it, so a failed or partial write loses nothing.

use super::{block_on, fd_arg, ok, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::files::pipe::PipeEnd;
use crate::kernel::files::{POLLIN, POLLOUT};
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::task::Pid;
use crate::kernel::Kernel;
use crate::vfs::file::{ops_of, OpenFileRef, O_APPEND};

const SPLICE_F_NONBLOCK: u64 = 2;
const SPLICE_F_ALL: u64 = 0xf;
/// The most one call moves (as read/write: bounds the kernel's buffer).
const IO_MAX: usize = 1 << 20;

/// The pipe table id behind a pipe or fifo end.
fn pipe_of(f: &OpenFileRef) -> Option<usize> {
    let ops = ops_of(f);
    let id = ops.as_any()?.downcast_ref::<PipeEnd>()?.id;
    Some(id)
}

/// A sleep on `f` for `events`, or EAGAIN for a non-blocking call.
fn wait(k: &mut Kernel, tid: Pid, f: &OpenFileRef, events: u32, nonblock: bool) -> SysResult {
    if nonblock {
        return Err(Errno::EAGAIN);
    }
    block_on(k, tid, f, events, Err(Errno::EAGAIN))
}

/// Bytes queued in pipe `id` (read end `f`), or the call's answer when
/// there are none: 0 at EOF (no writer), else a wait for data.
fn pipe_bytes(
    k: &mut Kernel,
    tid: Pid,
    id: usize,
    f: &OpenFileRef,
    nonblock: bool,
) -> Result<usize, SysResult> {
    let (have, writers) = match k.pipes.get(id) {
        Some(p) => (p.fionread(), p.writers()),
        None => (0, 0),
    };
    match (have, writers) {
        (0, 0) => Err(ok(0)),
        (0, _) => Err(wait(k, tid, f, POLLIN, nonblock)),
        (n, _) => Ok(n),
    }
}

/// Room in the pipe behind write end `f`, or the call's answer when there
/// is none: EPIPE with no reader, else a wait for room.
fn pipe_room(
    k: &mut Kernel,
    tid: Pid,
    f: &OpenFileRef,
    nonblock: bool,
) -> Result<usize, SysResult> {
    match ops_of(f).write_room(k) {
        None => Err(broken_pipe(k, tid)),
        Some(0) => Err(wait(k, tid, f, POLLOUT, nonblock)),
        Some(r) => Ok(r),
    }
}

/// The value of a readiness helper, or return its answer from the syscall.
macro_rules! ready {
    ($e:expr) => {
        match $e {
            Ok(n) => n,
            Err(answer) => return answer,
        }
    };
}

/// A pipe end with no reader: EPIPE and SIGPIPE, as a write.
fn broken_pipe(k: &mut Kernel, tid: Pid) -> SysResult {
    k.send_to_thread(
        tid,
        SigInfo {
            signo: SIGPIPE,
            ..Default::default()
        },
    );
    Err(Errno::EPIPE)
}

/// Moves a positional side's offset past `w` bytes: the caller's
/// offset word when it gave one (`off_p != 0`), else the file's.
fn advance(
    k: &mut Kernel,
    tid: Pid,
    f: &OpenFileRef,
    pos: Option<u64>,
    off_p: u64,
    w: usize,
) -> KResult<()> {
    let Some(p) = pos else { return Ok(()) };
    let end = p.checked_add(w as u64).ok_or(Errno::EOVERFLOW)?;
    if off_p != 0 {
        k.write_u64(tid, off_p, end)
    } else {
        f.borrow_mut().offset = end;
        Ok(())
    }
}

fn read_off(k: &mut Kernel, tid: Pid, p: u64) -> KResult<Option<u64>> {
    if p == 0 {
        return Ok(None);
    }
    Ok(Some(k.read_u64(tid, p)?))
}

/// rw_verify_area: a negative offset or one that would overflow.
fn verify(pos: u64, count: usize) -> KResult<()> {
    match pos.checked_add(count as u64) {
        Some(end) if pos <= i64::MAX as u64 && end <= i64::MAX as u64 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// splice(fd_in, off_in, fd_out, off_out, len, flags).
pub fn sys_splice(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (off_in_p, off_out_p, len, flags) = (a[1], a[3], a[4], a[5]);
    if len == 0 {
        return ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let inp = k.fd_file(tid, fd_arg(a[0]))?;
    let out = k.fd_file(tid, fd_arg(a[2]))?;
    let (ipipe, opipe) = (pipe_of(&inp), pipe_of(&out));
    if ipipe.is_some() && off_in_p != 0 || opipe.is_some() && off_out_p != 0 {
        return Err(Errno::ESPIPE);
    }
    let off_out = read_off(k, tid, off_out_p)?;
    let off_in = read_off(k, tid, off_in_p)?;
    if !inp.borrow().readable() || !out.borrow().writable() {
        return Err(Errno::EBADF);
    }
    let mut nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(IO_MAX);
    match (ipipe, opipe) {
        (Some(i), Some(o)) => {
            if i == o {
                return Err(Errno::EINVAL);
            }
            nonblock |= inp.borrow().nonblocking() || out.borrow().nonblocking();
            let have = ready!(pipe_bytes(k, tid, i, &inp, nonblock));
            let room = ready!(pipe_room(k, tid, &out, nonblock));
            let mut buf = vec![0u8; len.min(have).min(room)];
            let n = k.file_read(tid, &inp, &mut buf, None)?;
            let w = k.file_write(tid, &out, &buf[..n], None)?;
            ok(w as i64)
        }
        (Some(i), None) => {
            // Pipe to a file or socket.
            if out.borrow().flags & O_APPEND != 0 {
                return Err(Errno::EINVAL);
            }
            let positional = ops_of(&out).positional();
            if off_out.is_some() && !positional {
                return Err(Errno::EINVAL);
            }
            let pos = positional.then(|| off_out.unwrap_or_else(|| out.borrow().offset));
            if let Some(p) = pos {
                verify(p, len)?;
            }
            nonblock |= inp.borrow().nonblocking();
            let have = ready!(pipe_bytes(k, tid, i, &inp, nonblock));
            let mut buf = vec![0u8; len.min(have)];
            let n = k.pipes.get(i).map(|p| p.peek(&mut buf)).unwrap_or(0);
            let w = match k.file_write(tid, &out, &buf[..n], pos) {
                Ok(w) => w,
                Err(Errno::EAGAIN) => return wait(k, tid, &out, POLLOUT, nonblock),
                Err(e) => return Err(e),
            };
            // Take what was written.
            let mut sink = vec![0u8; w];
            k.file_read(tid, &inp, &mut sink, None)?;
            advance(k, tid, &out, pos, off_out_p, w)?;
            ok(w as i64)
        }
        (None, Some(_)) => {
            // A file or socket into a pipe.
            let positional = ops_of(&inp).positional();
            if off_in.is_some() && !positional {
                return Err(Errno::EINVAL);
            }
            let pos = positional.then(|| off_in.unwrap_or_else(|| inp.borrow().offset));
            if let Some(p) = pos {
                verify(p, len)?;
            }
            nonblock |= out.borrow().nonblocking();
            let room = ready!(pipe_room(k, tid, &out, nonblock));
            let mut buf = vec![0u8; len.min(room)];
            let n = match k.file_read(tid, &inp, &mut buf, pos) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return wait(k, tid, &inp, POLLIN, nonblock),
                Err(e) => return Err(e),
            };
            if n == 0 {
                return ok(0);
            }
            let w = k.file_write(tid, &out, &buf[..n], None)?;
            advance(k, tid, &inp, pos, off_in_p, w)?;
            ok(w as i64)
        }
        (None, None) => Err(Errno::EINVAL),
    }
}

/// tee(fd_in, fd_out, len, flags): copies from one pipe into another,
/// leaving the input as it was.
pub fn sys_tee(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (len, flags) = (a[2], a[3]);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return ok(0);
    }
    let inp = k.fd_file(tid, fd_arg(a[0]))?;
    let out = k.fd_file(tid, fd_arg(a[1]))?;
    if !inp.borrow().readable() || !out.borrow().writable() {
        return Err(Errno::EBADF);
    }
    let (Some(i), Some(o)) = (pipe_of(&inp), pipe_of(&out)) else {
        return Err(Errno::EINVAL);
    };
    if i == o {
        return Err(Errno::EINVAL);
    }
    let nonblock =
        flags & SPLICE_F_NONBLOCK != 0 || inp.borrow().nonblocking() || out.borrow().nonblocking();
    let have = ready!(pipe_bytes(k, tid, i, &inp, nonblock));
    let room = ready!(pipe_room(k, tid, &out, nonblock));
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(IO_MAX);
    let mut buf = vec![0u8; len.min(have).min(room)];
    let n = k.pipes.get(i).map(|p| p.peek(&mut buf)).unwrap_or(0);
    let w = k.file_write(tid, &out, &buf[..n], None)?;
    ok(w as i64)
}

/// vmsplice(fd, iov, nr_segs, flags): user memory into a pipe's write
/// end, or out of its read end into user memory.
pub fn sys_vmsplice(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let flags = a[3];
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = k.fd_file(tid, fd_arg(a[0]))?;
    let (readable, writable) = (f.borrow().readable(), f.borrow().writable());
    if !readable && !writable {
        return Err(Errno::EBADF);
    }
    let iov = k.gather(tid, a[1], a[2])?;
    let total = iov
        .iter()
        .fold(0usize, |s, v| s.saturating_add(v.1))
        .min(IO_MAX);
    if total == 0 {
        return ok(0);
    }
    let Some(id) = pipe_of(&f) else {
        return Err(Errno::EBADF);
    };
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || f.borrow().nonblocking();
    if writable {
        let room = ready!(pipe_room(k, tid, &f, nonblock));
        let want = total.min(room);
        let mut data = Vec::with_capacity(want);
        for (base, len) in iov {
            let m = len.min(want - data.len());
            if m == 0 {
                break;
            }
            data.extend(k.read_user_vec(tid, base, m)?);
        }
        let w = k.file_write(tid, &f, &data, None)?;
        return ok(w as i64);
    }
    let have = ready!(pipe_bytes(k, tid, id, &f, nonblock));
    let mut buf = vec![0u8; total.min(have)];
    let n = k.pipes.get(id).map(|p| p.peek(&mut buf)).unwrap_or(0);
    // Copy out first: a bad buffer leaves the pipe as it was.
    let mut done = 0;
    for (base, len) in iov {
        if done >= n {
            break;
        }
        let m = len.min(n - done);
        k.write_user(tid, base, &buf[done..done + m])?;
        done += m;
    }
    let mut sink = vec![0u8; n];
    k.file_read(tid, &f, &mut sink, None)?;
    ok(n as i64)
}
