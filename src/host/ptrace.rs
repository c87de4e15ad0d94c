//! Tracing stub processes: spawn one under ptrace, resume it, decode its
//! stops, move registers in and out, and peek/poke its memory (tests only).

use std::os::fd::RawFd;

use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::platform::Regs;

pub type HostResult<T> = Result<T, nix::Error>;

/// What a traced stub did, from waitpid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostStop {
    /// A syscall stop (SIGTRAP|0x80 with TRACESYSGOOD).
    Syscall,
    /// A signal-delivery stop; the signal is not delivered unless passed on.
    Signal(i32),
    Exited(i32),
    Killed(i32),
}

/// How to resume a stopped stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Run guest code: every syscall stops before it runs and is skipped.
    Sysemu,
    /// Run stub code: syscalls execute on the host.
    Cont,
}

/// Fork and exec `exe_fd` (an ELF memfd) as a traced child.
///
/// The child: PTRACE_TRACEME, dies with its parent thread (PDEATHSIG), leaves
/// umlrun's session (so terminal signals miss it), disables ASLR (every stub
/// gets the same vDSO address, which fork in the guest needs), optionally pins
/// itself to `cpu`, keeps only `keep_fds` (same numbers), and execs. Returns
/// the pid once it sits in its post-exec SIGTRAP stop, with EXITKILL and
/// TRACESYSGOOD set.
pub fn spawn_traced(exe_fd: RawFd, keep_fds: &[RawFd], cpu: Option<usize>) -> HostResult<i32> {
    // Everything the child touches is prepared here: after fork only
    // async-signal-safe calls, no allocation.
    let mut cpuset = nix::sched::CpuSet::new();
    if let Some(c) = cpu {
        cpuset.set(c)?;
    }
    let name = c"umlrun-stub";
    let argv: [*const libc::c_char; 2] = [name.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let empty = c"";

    // SAFETY: the child branch only makes raw syscalls on memory prepared
    // above and ends in execveat or _exit; it never returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(nix::Error::last());
    }
    if pid == 0 {
        // SAFETY: async-signal-safe syscalls on valid pointers (see above).
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::setsid();
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
            if cpu.is_some() {
                let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &cpuset);
            }
            libc::syscall(
                libc::SYS_close_range,
                0u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            for &fd in keep_fds {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            libc::syscall(
                libc::SYS_execveat,
                exe_fd,
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::_exit(127);
        }
    }
    let child = Pid::from_raw(pid);
    match waitpid(child, None)? {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        other => {
            log::warn!("stub {pid} did not reach its exec stop: {other:?}");
            kill(pid);
            return Err(nix::Error::ECHILD);
        }
    }
    let opts = ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD;
    if let Err(e) = ptrace::setoptions(child, opts) {
        kill(pid);
        return Err(e);
    }
    Ok(pid)
}

/// Resume a stopped stub, suppressing any pending signal.
pub fn resume(pid: i32, how: Resume) -> HostResult<()> {
    let pid = Pid::from_raw(pid);
    match how {
        Resume::Sysemu => ptrace::sysemu(pid, None),
        Resume::Cont => ptrace::cont(pid, None),
    }
}

/// Wait for the stub's next stop or death.
pub fn wait(pid: i32) -> HostResult<HostStop> {
    loop {
        return match waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::__WALL),
        )? {
            WaitStatus::Exited(_, code) => Ok(HostStop::Exited(code)),
            WaitStatus::Signaled(_, sig, _) => Ok(HostStop::Killed(sig as i32)),
            WaitStatus::PtraceSyscall(_) => Ok(HostStop::Syscall),
            WaitStatus::Stopped(_, sig) => Ok(HostStop::Signal(sig as i32)),
            WaitStatus::PtraceEvent(_, sig, _) => Ok(HostStop::Signal(sig as i32)),
            WaitStatus::Continued(_) | WaitStatus::StillAlive => continue,
        };
    }
}

/// The (signo, si_code, si_addr) of the signal the stub is stopped with.
pub fn siginfo(pid: i32) -> HostResult<(i32, i32, u64)> {
    let si = ptrace::getsiginfo(Pid::from_raw(pid))?;
    // SAFETY: si_addr is valid to read for the fault signals we ask about;
    // for others it reads whatever the union holds, which is just a number.
    let addr = unsafe { si.si_addr() } as u64;
    Ok((si.si_signo, si.si_code, addr))
}

pub fn get_regs(pid: i32) -> HostResult<Regs> {
    let r = ptrace::getregs(Pid::from_raw(pid))?;
    Ok(Regs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        orig_rax: r.orig_rax,
        rip: r.rip,
        cs: r.cs,
        eflags: r.eflags,
        rsp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    })
}

pub fn set_regs(pid: i32, r: &Regs) -> HostResult<()> {
    let u = libc::user_regs_struct {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        orig_rax: r.orig_rax,
        rip: r.rip,
        cs: r.cs,
        eflags: r.eflags,
        rsp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    };
    ptrace::setregs(Pid::from_raw(pid), u)
}

/// The legacy FXSAVE area's size (`user_fpregs_struct`).
pub const FXSAVE_SIZE: usize = 512;
const _: () = assert!(std::mem::size_of::<libc::user_fpregs_struct>() == FXSAVE_SIZE);

/// The FXSAVE area (hosts without XSAVE; see `xstate` otherwise).
pub fn get_fpregs(pid: i32) -> HostResult<[u8; FXSAVE_SIZE]> {
    let mut fp = [0u8; FXSAVE_SIZE];
    // SAFETY: PTRACE_GETFPREGS writes one user_fpregs_struct (512 bytes, checked
    // above) to `data`, which points at a 512-byte buffer.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETFPREGS, pid, 0, fp.as_mut_ptr()) };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(fp)
}

pub fn set_fpregs(pid: i32, fp: &[u8; FXSAVE_SIZE]) -> HostResult<()> {
    // SAFETY: PTRACE_SETFPREGS reads 512 bytes from `data`, a 512-byte buffer.
    let r = unsafe { libc::ptrace(libc::PTRACE_SETFPREGS, pid, 0, fp.as_ptr()) };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// Read the stub's memory (tests and debugging; the kernel uses physmem).
pub fn read_mem(pid: i32, addr: u64, buf: &mut [u8]) -> HostResult<usize> {
    let len = buf.len();
    let remote = [RemoteIoVec {
        base: addr as usize,
        len,
    }];
    process_vm_readv(
        Pid::from_raw(pid),
        &mut [std::io::IoSliceMut::new(buf)],
        &remote,
    )
}

/// Write the stub's memory (the op list; tests and debugging).
pub fn write_mem(pid: i32, addr: u64, buf: &[u8]) -> HostResult<usize> {
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: buf.len(),
    }];
    process_vm_writev(Pid::from_raw(pid), &[std::io::IoSlice::new(buf)], &remote)
}

/// SIGKILL a stub and reap it. Only for pids this process spawned.
pub fn kill(pid: i32) {
    let p = Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, Signal::SIGKILL);
    let _ = waitpid(p, Some(nix::sys::wait::WaitPidFlag::__WALL));
}

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    pub start: u64,
    pub end: u64,
    pub name: String,
}

pub fn read_maps(pid: i32) -> std::io::Result<Vec<MapsEntry>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(parse_maps(&text))
}

fn parse_maps(text: &str) -> Vec<MapsEntry> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let (s, e) = cols.next()?.split_once('-')?;
            let name = cols.nth(4).map(str::to_string).unwrap_or_default();
            Some(MapsEntry {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse() {
        let text = "7fff00000000-7fff00001000 r-xp 00000000 00:01 5   /memfd:x (deleted)\n\
                    7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0   [vvar]\n\
                    7ffff7fc9000-7ffff7fca000 rw-p 00000000 00:00 0 \n";
        let m = parse_maps(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].start, 0x7fff00000000);
        assert_eq!(m[0].name, "/memfd:x");
        assert_eq!(m[1].name, "[vvar]");
        assert_eq!(m[2].name, "");
    }
}
