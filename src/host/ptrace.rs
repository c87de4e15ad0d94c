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

/// What the spawned child needs, prepared by the parent before clone: the
/// child shares the parent's memory and may only read this.
struct SpawnArgs<'a> {
    exe_fd: RawFd,
    keep_fds: &'a [RawFd],
    cpuset: Option<libc::cpu_set_t>,
    /// The parent thread's signal mask before it blocked everything.
    mask: libc::sigset_t,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
    empty: *const libc::c_char,
    /// The user, mount, network and pid namespaces to join before the
    /// exec (`host::namespaces`): then a joiner child joins them and
    /// clones the stub as umlrun's child (CLONE_PARENT) on this stack.
    ns: Option<[RawFd; 4]>,
    stub_stack_top: usize,
    /// The stub's pid, as the joiner's clone answered it (host pid).
    stub_pid: std::sync::atomic::AtomicI32,
}

/// Stack for the spawned child until it execs (it uses well under 1 KiB).
const SPAWN_STACK: usize = 32 * 1024;

/// The child side of [`spawn_traced`]. Runs on its own stack in the
/// parent's address space (CLONE_VM) while the parent thread waits
/// (CLONE_VFORK): raw syscalls only, no allocation, no locks, no unwinding,
/// and it never returns into Rust code (execveat or exit).
extern "C" fn spawn_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the parent's SpawnArgs, alive and unchanged
    // until the parent resumes, which is after our execveat or exit. Every
    // call below is a glibc syscall wrapper (no allocation, no locks) on
    // pointers into that struct or into this frame; their errno lands in
    // the parent thread's TLS, which the parent reads only when clone
    // itself failed (and then this never ran).
    unsafe {
        let a = &*(arg as *const SpawnArgs);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::setsid();
        libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
        if let Some(set) = &a.cpuset {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
        }
        libc::syscall(
            libc::SYS_close_range,
            0u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        for &fd in a.keep_fds {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
        // umlrun's handlers must not run here (they would write the
        // parent's memory): back to the defaults before unblocking.
        // Without CLONE_SIGHAND this changes only the child's table.
        for sig in 1..=64 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &a.mask, std::ptr::null_mut());
        // Last before exec: a signal between here and execveat would stop
        // us for a tracer that is still waiting for the exec. Only a signal
        // sent to this brand-new pid within microseconds could; nothing in
        // umlrun does.
        libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
        libc::syscall(
            libc::SYS_execveat,
            a.exe_fd,
            a.empty,
            a.argv.as_ptr(),
            a.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        libc::syscall(libc::SYS_exit, 127);
        127
    }
}

/// With the stubs' namespaces: the child umlrun clones joins them (the
/// user one first: it gives the rights to join the others), then clones
/// the stub as umlrun's own child (CLONE_PARENT) into the pid namespace
/// (joining one only places a process's children there: umlrun itself
/// may not, as a thread creating threads must keep its children in its
/// own), waits for its exec (CLONE_VFORK) and exits. Same rules as
/// spawn_child; a stub outside its namespaces would be a hole: none.
extern "C" fn spawn_joiner(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: as spawn_child: `arg` is the parent's SpawnArgs, alive until
    // this exits; raw syscalls only; the stub runs spawn_child on its own
    // stack (stub_stack_top) while this waits for its exec.
    unsafe {
        let a = &*(arg as *const SpawnArgs);
        let Some(ns) = &a.ns else {
            libc::syscall(libc::SYS_exit, 126);
            return 126;
        };
        for (fd, nstype) in ns.iter().zip(crate::host::namespaces::JOIN_TYPES) {
            if *fd >= 0 && libc::setns(*fd, nstype) != 0 {
                libc::syscall(libc::SYS_exit, 126);
            }
        }
        let pid = libc::clone(
            spawn_child,
            a.stub_stack_top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT,
            arg,
        );
        a.stub_pid.store(pid, std::sync::atomic::Ordering::SeqCst);
        libc::syscall(libc::SYS_exit, if pid > 0 { 0 } else { 125 });
        125
    }
}

/// Start `exe_fd` (an ELF memfd) as a traced child.
///
/// The child: dies with its parent thread (PDEATHSIG), leaves umlrun's
/// session (so terminal signals miss it), disables ASLR (every stub gets the
/// same vDSO address, which fork in the guest needs), optionally pins itself
/// to `cpu`, keeps only `keep_fds` (same numbers), joins the stubs'
/// namespaces when they were made, PTRACE_TRACEME, and execs. Like posix_spawn it is cloned with CLONE_VM|CLONE_VFORK on a
/// small stack of its own: no copy of umlrun's page tables (many small
/// mappings with ubd=mmap), which made fork the main cost of a spawn.
/// Returns the pid once it sits in its post-exec SIGTRAP stop, with
/// EXITKILL and TRACESYSGOOD set.
pub fn spawn_traced(exe_fd: RawFd, keep_fds: &[RawFd], cpu: Option<usize>) -> HostResult<i32> {
    let cpuset = match cpu {
        Some(c) if c < libc::CPU_SETSIZE as usize => {
            // SAFETY: cpu_set_t is plain bits; CPU_ZERO/CPU_SET write inside it
            // (c checked against CPU_SETSIZE).
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_ZERO(&mut set);
                libc::CPU_SET(c, &mut set);
                Some(set)
            }
        }
        Some(_) => return Err(nix::Error::EINVAL),
        None => None,
    };
    let name = c"umlrun-stub";
    let empty = c"";
    // SAFETY: sigset_t is plain bits, filled by sigfillset/pthread_sigmask.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers; blocking every signal in this thread
    // keeps umlrun's handlers from running in the child before it resets
    // them (the old mask is restored below, in both).
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut mask);
    }
    let args = SpawnArgs {
        exe_fd,
        keep_fds,
        cpuset,
        mask,
        argv: [name.as_ptr(), std::ptr::null()],
        envp: [std::ptr::null()],
        empty: empty.as_ptr(),
        ns: crate::host::namespaces::join_fds(),
        stub_stack_top: 0,
        stub_pid: std::sync::atomic::AtomicI32::new(0),
    };
    let mut args = args;
    let mut stack = vec![0u8; SPAWN_STACK];
    let mut stub_stack = if args.ns.is_some() {
        vec![0u8; SPAWN_STACK]
    } else {
        Vec::new()
    };
    // Stacks grow down; the top must be 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + SPAWN_STACK) & !15;
    args.stub_stack_top = (stub_stack.as_mut_ptr() as usize + stub_stack.len()) & !15;
    let (first, flags): (extern "C" fn(*mut libc::c_void) -> libc::c_int, _) = if args.ns.is_some()
    {
        (
            spawn_joiner,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        )
    } else {
        (
            spawn_child,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        )
    };
    // SAFETY: the child runs spawn_child on `stack` (alive until clone
    // returns, which CLONE_VFORK delays until the child has exec'd or
    // exited, so it never uses the stack afterwards) and only reads `args`
    // (borrowed for as long). See spawn_child for what it may do.
    let pid = unsafe {
        libc::clone(
            first,
            top as *mut libc::c_void,
            flags,
            &args as *const SpawnArgs as *mut libc::c_void,
        )
    };
    let err = nix::Error::last();
    // SAFETY: restores this thread's own mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(err);
    }
    let pid = if args.ns.is_some() {
        // The joiner has exited (after the stub's exec): reap it.
        let joined = loop {
            match waitpid(Pid::from_raw(pid), None) {
                Err(nix::Error::EINTR) => continue,
                other => break other?,
            }
        };
        let stub = args.stub_pid.load(std::sync::atomic::Ordering::SeqCst);
        if joined != WaitStatus::Exited(Pid::from_raw(pid), 0) || stub <= 0 {
            log::warn!("stub not started in its namespaces: {joined:?}");
            return Err(nix::Error::ECHILD);
        }
        stub
    } else {
        pid
    };
    drop(stack);
    drop(stub_stack);
    let child = Pid::from_raw(pid);
    // umlrun's own signal handlers are not SA_RESTART: a SIGTERM here must
    // not leave the child stopped and unwaited.
    let status = loop {
        match waitpid(child, None) {
            Err(nix::Error::EINTR) => continue,
            other => break other?,
        }
    };
    match status {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        WaitStatus::Stopped(..) => {
            log::warn!("stub {pid} stopped before its exec: {status:?}");
            kill(pid);
            return Err(nix::Error::ECHILD);
        }
        // Exited or killed: already reaped, its pid may be reused; no kill.
        other => {
            log::warn!("stub {pid} did not reach its exec stop: {other:?}");
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

/// A traced stub's memory as `/proc/PID/mem`, opened once per stub and
/// kept until the stub dies (dropping it closes the fd; CLOEXEC, and
/// spawned stubs close every fd they do not keep, so no other stub holds
/// it). Like ptrace's POKE, unlike process_vm_writev, it may write pages
/// the stub maps read-only: the stub's op list and XSAVE pages, read-only
/// so that guest code cannot write them. The fd names the stub's address
/// space as it was at open: open it after the stub's exec (stubs never
/// exec again). Opening per write cost ~1.4 µs per anonymous page fault.
#[derive(Debug)]
pub struct StubMem(std::fs::File);

impl StubMem {
    /// Opens `/proc/<pid>/mem` for writing (the caller traces `pid`).
    pub fn open(pid: i32) -> HostResult<StubMem> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/mem"))
            .map_err(io_errno)?;
        Ok(StubMem(f))
    }

    /// Writes all of `buf` at `addr` in the stub (stopped, still alive).
    pub fn write(&self, addr: u64, buf: &[u8]) -> HostResult<usize> {
        use std::os::unix::fs::FileExt;
        self.0.write_all_at(buf, addr).map_err(io_errno)?;
        Ok(buf.len())
    }
}

fn io_errno(e: std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
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
