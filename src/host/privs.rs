//! Least privilege for umlrun itself (issue 10):
//!
//! - no_new_privs, set before the first stub starts, so neither umlrun nor
//!   any stub (nor anything a bug could make them exec) can gain
//!   privileges through a set-uid or file-capable binary;
//! - `uid=`/`gid=`: umlrun started as root opens its files, then becomes
//!   that user for good (no supplementary groups, no capabilities left),
//!   before the first stub exists, as Firecracker's jailer does;
//! - seccomp filters on umlrun's own threads (`platform::host_filter`
//!   builds them): a refused call raises SIGSYS, whose handler here names
//!   the syscall on stderr and ends umlrun (exit 1; the stubs die with it).
//!
//! The stubs' pid, mount and network namespaces: `namespaces.rs`.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// prctl(PR_SET_NO_NEW_PRIVS, 1): for this process and everything it
/// starts from now on. Irreversible.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether no_new_privs is set for this process.
pub fn no_new_privs() -> bool {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

/// The real, effective and saved user ids are all 0.
pub fn is_root() -> bool {
    // SAFETY: getuid/geteuid take no arguments and cannot fail.
    unsafe { libc::getuid() == 0 && libc::geteuid() == 0 }
}

/// The (real uid, real gid) of this process.
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid take no arguments and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Hands `path` (a file or directory umlrun made, e.g. the instance
/// directory and what is in it) to `uid`:`gid`, without following a
/// symbolic link.
pub fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Becomes `uid`:`gid` for good: no supplementary groups, real, effective
/// and saved ids all changed (so every capability goes, and no way back),
/// then checks that it held. Needs root (CAP_SETUID and CAP_SETGID).
pub fn drop_to(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: setgroups with a zero count reads no memory; setresgid and
    // setresuid take integers. Groups first: after setresuid we may not.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid out pointers.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    // Going back to root must now fail (it does unless uid is 0).
    // SAFETY: setuid with an integer argument.
    let back = uid != 0 && unsafe { libc::setuid(0) } == 0;
    if (r, e, s) != (uid, uid, uid) || back {
        return Err(io::Error::other("the ids did not change"));
    }
    Ok(())
}

static FILTERED: AtomicBool = AtomicBool::new(false);

/// Whether umlrun's own filter is on (threads started later add their
/// own narrower one).
pub fn filter_active() -> bool {
    FILTERED.load(Ordering::SeqCst)
}

/// Installs the classic-BPF program `prog` (8-byte `sock_filter` records)
/// on the calling thread and every thread and process it starts later.
/// Needs no_new_privs. Irreversible.
pub fn install_thread_filter(prog: &[u8]) -> io::Result<()> {
    if prog.is_empty() || !prog.len().is_multiple_of(8) || prog.len() / 8 > u16::MAX as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let fprog = libc::sock_fprog {
        len: (prog.len() / 8) as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies
    // the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs the SIGSYS report, then `prog` on the calling thread, and
/// notes that the filter is on.
pub fn install_process_filter(prog: &[u8]) -> io::Result<()> {
    install_sigsys_report()?;
    install_thread_filter(prog)?;
    FILTERED.store(true, Ordering::SeqCst);
    Ok(())
}

/// The SIGSYS handler: one line on stderr naming the refused syscall,
/// then exit 1 (the stubs die with umlrun: PDEATHSIG, PTRACE_O_EXITKILL).
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // struct siginfo for SIGSYS: si_call_addr at 16, si_syscall (int) at 24.
    // SAFETY: the kernel passes a full siginfo_t (128 bytes).
    let nr = unsafe { *(info as *const u8).add(24).cast::<i32>() };
    let mut buf = [0u8; 160];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        for &c in b {
            if n < buf.len() {
                buf[n] = c;
                n += 1;
            }
        }
    };
    put(b"umlrun: host syscall ");
    let mut digits = [0u8; 12];
    let mut d = digits.len();
    let mut v = nr.unsigned_abs();
    loop {
        d -= 1;
        digits[d] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || d == 0 {
            break;
        }
    }
    put(&digits[d..]);
    put(b" refused by umlrun's own seccomp filter (host_seccomp=off turns it off); stopping\n");
    // SAFETY: write(2) and _exit(2) are async-signal-safe; buf is ours.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::_exit(1);
    }
}

fn install_sigsys_report() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a handler of the SA_SIGINFO shape.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::host_filter::kernel_filter;

    /// Runs `body` in a forked child with the kernel thread's filter on
    /// (pinned to `exe_fd`) and returns its wait status. The child makes
    /// raw syscalls only (the test process has other threads).
    fn in_filtered_child(exe_fd: Option<i32>, body: impl FnOnce() -> i32) -> i32 {
        let prog = kernel_filter(exe_fd);
        // SAFETY: the child only makes raw syscalls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                let fprog = libc::sock_fprog {
                    len: (prog.len() / 8) as u16,
                    filter: prog.as_ptr() as *mut libc::sock_filter,
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_seccomp, 1u32, 0u32, &fprog) != 0
                {
                    libc::_exit(99);
                }
                libc::_exit(body());
            }
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        st
    }

    fn killed_by_sigsys(st: i32) -> bool {
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS
    }

    #[test]
    fn the_kernel_thread_filter_refuses_execve_and_fork() {
        let path = c"/bin/true";
        let argv = [path.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        // Unfiltered, /bin/true runs and exits 0 (the test can fail).
        let st = {
            // SAFETY: the child execs or _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: as above.
                unsafe {
                    libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                    libc::_exit(98);
                }
            }
            let mut st = 0;
            // SAFETY: our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            st
        };
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st:#x}");
        // Filtered: execve is a SIGSYS, not a run.
        let st = in_filtered_child(None, || {
            // SAFETY: raw execve on static strings.
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            97
        });
        assert!(killed_by_sigsys(st), "execve: status {st:#x}");
        // fork (clone without CLONE_VM) too.
        let st = in_filtered_child(None, || {
            // SAFETY: a raw clone that would return twice; it is refused.
            unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as u64, 0u64) as i32 }
        });
        assert!(killed_by_sigsys(st), "fork: status {st:#x}");
        // clone3 answers ENOSYS; getpid works.
        let st = in_filtered_child(None, || {
            // SAFETY: clone3 with no arguments is refused before reading any.
            let r = unsafe { libc::syscall(libc::SYS_clone3, 0u64, 0u64) };
            let e = io::Error::last_os_error().raw_os_error();
            // SAFETY: getpid takes nothing.
            let me = unsafe { libc::syscall(libc::SYS_getpid) };
            i32::from(!(r == -1 && e == Some(libc::ENOSYS) && me > 0))
        });
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st:#x}");
    }

    #[test]
    fn only_the_pinned_fd_may_be_execed() {
        let file = std::fs::File::open("/bin/true").unwrap();
        let other = std::fs::File::open("/bin/true").unwrap();
        use std::os::fd::AsRawFd;
        let (fd, other_fd) = (file.as_raw_fd(), other.as_raw_fd());
        let empty = c"";
        let name = c"true";
        let argv = [name.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        let exec = move |fd: i32| {
            // SAFETY: raw execveat on static strings.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    empty.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            };
            97
        };
        let st = in_filtered_child(Some(fd), move || exec(fd));
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st:#x}");
        let st = in_filtered_child(Some(fd), move || exec(other_fd));
        assert!(killed_by_sigsys(st), "other fd: status {st:#x}");
    }
}
