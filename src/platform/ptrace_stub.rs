//! [`PtraceStub`]: a guest process as a host stub under ptrace (UML SKAS0).
//!
//! Guest code runs under PTRACE_SYSEMU, so its syscalls stop here and never
//! reach the host. Mapping changes are written as an op list into the stub's
//! data page and run by the stub's batch loop under PTRACE_CONT, one round
//! trip per [`MAX_BATCH`] ops. The guest registers are cached here between
//! stops and written back only when something changed them.

use std::ops::Range;
use std::os::fd::RawFd;
use std::sync::OnceLock;

use super::insn::{self, Access};
use super::stub_image::{
    encode_batch, stub_elf, xstate_init_area, BATCH_SYSCALL_END, MAX_BATCH, OP_RECORD,
    STUB_AREA_END, STUB_BASE, STUB_BATCH, STUB_BATCH_TRAP, STUB_DATA, STUB_END, STUB_RESET,
    STUB_SCRATCH, STUB_SYSCALL, STUB_SYSCALL_TRAP, STUB_XSTATE,
};
use super::FpSwBytes;
use super::{AddressSpaceOps, Context, Fault, FpRegs, MapOp, PageSpan, PlatformError, Regs, Stop};
use super::{SEGV_MAPERR, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP, TASK_SIZE};
use crate::errno::Errno;
use crate::host::fdpass;
use crate::host::preempt::Preempt;
use crate::host::ptrace::{self as hp, HostStop, Resume};
use crate::host::stub::StubExe;
use crate::host::xstate as xs;

const SYS_MMAP: u64 = 9;
const SYS_MPROTECT: u64 = 10;
const SYS_MUNMAP: u64 = 11;
const MAP_SHARED_FIXED: u64 = 0x01 | 0x10;

/// How to start a stub.
#[derive(Clone, Copy, Debug, Default)]
pub struct StubOptions<'a> {
    /// Host fds the stub keeps (same numbers): the physmem memfd, image files.
    pub keep_fds: &'a [RawFd],
    /// Pin the stub to this CPU (normally umlrun's own).
    pub cpu: Option<usize>,
}

/// A stub set up under ptrace and let go ([`PtraceStub::detach`]).
#[derive(Debug)]
pub struct Detached {
    pub pid: i32,
    pub initial: Regs,
    pub reserved: Vec<Range<u64>>,
    pub vdso: Option<Range<u64>>,
}

/// One guest process on the ptrace platform.
pub struct PtraceStub {
    pid: i32,
    regs: Regs,
    /// `regs` differs from what the stub holds (kernel edit or injection).
    regs_dirty: bool,
    reserved: Vec<Range<u64>>,
    vdso: Option<Range<u64>>,
    alive: bool,
    /// The registers of the fresh stub (its post-exec stop), restored by
    /// [`PtraceStub::recycle`].
    initial: Regs,
    /// Host CPU ticks (user, system) spent before the current guest got the
    /// stub: [`PtraceStub::cpu_ticks`] counts from here.
    cpu_base: (u64, u64),
    /// The host's CPU-time clock of the stub (ns) when the current guest
    /// got it: [`PtraceStub::cpu_time_ns`] counts from here.
    cpu_ns_base: u64,
    /// The host's raw CPU ticks as read by the last `cpu_ticks` since the
    /// guest last ran: the kernel reads them as the process exits, just
    /// before recycling, which can then skip reading /proc again.
    cpu_at_stop: std::cell::Cell<Option<(u64, u64)>>,
    /// Told when guest code starts and stops running (None: never
    /// preempted, as in the platform tests).
    preempt: Option<Preempt>,
    /// The stub's `/proc/PID/mem`, for the op list and XSAVE pages: opened
    /// at spawn, closed when the stub dies ([`PtraceStub::gone`]).
    mem: Option<hp::StubMem>,
}

/// The fd number of the sealed stub executable (made on first use): the
/// one file umlrun's own seccomp filter lets it exec.
pub fn stub_exe_fd() -> Result<std::os::fd::RawFd, PlatformError> {
    Ok(stub_exe()?.fd())
}

fn stub_exe() -> Result<&'static StubExe, PlatformError> {
    static EXE: OnceLock<StubExe> = OnceLock::new();
    if let Some(e) = EXE.get() {
        return Ok(e);
    }
    let exe = StubExe::create(&stub_elf()).map_err(PlatformError::StubExe)?;
    Ok(EXE.get_or_init(|| exe))
}

impl PtraceStub {
    /// Start a stub. It holds only the stub pages, the vDSO and vvar (the
    /// host stack is unmapped before this returns); [`PtraceStub::reserved`]
    /// lists them. Its registers start as a valid user frame at the stub
    /// entry: set rip and rsp before the first switch.
    pub fn spawn(opts: StubOptions<'_>) -> Result<PtraceStub, PlatformError> {
        let exe = stub_exe()?;
        // Every stub holds the fd channel's end from birth: fds made later
        // (a hot-added disk's) come that way (see `adopt_fd`).
        let ch = fdpass::channel().map_err(PlatformError::host("socketpair"))?;
        let mut keep = opts.keep_fds.to_vec();
        if !keep.contains(&ch.stub_end()) {
            keep.push(ch.stub_end());
        }
        let pid =
            hp::spawn_traced(exe.fd(), &keep, opts.cpu).map_err(PlatformError::host("spawn"))?;
        let mut stub = PtraceStub {
            pid,
            regs: Regs::default(),
            regs_dirty: false,
            reserved: Vec::new(),
            vdso: None,
            alive: true,
            initial: Regs::default(),
            cpu_base: (0, 0),
            cpu_ns_base: 0,
            cpu_at_stop: std::cell::Cell::new(None),
            preempt: None,
            mem: None,
        };
        // spawn_traced returns at the post-exec stop: this is the address
        // space the stub keeps for life.
        stub.mem = Some(hp::StubMem::open(pid).map_err(PlatformError::host("open /proc/PID/mem"))?);
        stub.reserved.push(STUB_BASE..STUB_END);
        stub.regs = hp::get_regs(pid).map_err(PlatformError::host("getregs"))?;
        stub.initial = stub.regs;
        let maps = hp::read_maps(pid).map_err(PlatformError::Maps)?;
        let mut stack = Vec::new();
        for m in maps.iter().filter(|m| m.end <= 0x8000_0000_0000) {
            match m.name.as_str() {
                "[stack]" => stack
                    .extend(PageSpan::from_range(m.start..m.end).map(|span| MapOp::Unmap { span })),
                "[vdso]" => {
                    stub.vdso = Some(m.start..m.end);
                    stub.reserved.push(m.start..m.end);
                }
                _ if m.start >= STUB_BASE && m.end <= STUB_END => {}
                _ => stub.reserved.push(m.start..m.end),
            }
        }
        // The op list and XSAVE pages read-only (the ELF loader maps a
        // bss writable whatever its flags say): guest code may not write
        // them, umlrun writes them through /proc/PID/mem. The scratch page
        // writable (a passed fd's recvmsg writes there). Done before any
        // filter: the filters refuse ops on the stub area.
        stack.push(MapOp::Protect {
            span: PageSpan::from_range(STUB_DATA..STUB_SCRATCH).expect("stub pages in user space"),
            prot: super::Prot::R,
        });
        stack.push(MapOp::Protect {
            span: PageSpan::from_range(STUB_SCRATCH..STUB_END).expect("stub pages in user space"),
            prot: super::Prot::RW,
        });
        stub.inject(&stack)?;
        stub.reserved.sort_by_key(|r| r.start);
        log::debug!("stub {pid} spawned; reserved {:x?}", stub.reserved);
        Ok(stub)
    }

    /// Lets the stub go with registers `r` (it runs on from them, no longer
    /// traced), for a platform that only used ptrace to set it up. Returns
    /// what it learned: (pid, the fresh registers, reserved ranges, vDSO).
    pub fn detach(mut self, r: &Regs) -> Result<Detached, PlatformError> {
        self.check_alive()?;
        let mut r = *r;
        r.orig_rax = u64::MAX;
        hp::set_regs(self.pid, &r).map_err(PlatformError::host("setregs"))?;
        crate::host::seccomp_stub::detach(self.pid).map_err(PlatformError::host("detach"))?;
        self.gone(); // ours to kill from now on, not Drop's
        Ok(Detached {
            pid: self.pid,
            initial: self.initial,
            reserved: std::mem::take(&mut self.reserved),
            vdso: self.vdso.clone(),
        })
    }

    /// The wall: no new privileges, and a seccomp filter that lets only the
    /// stub's op loop make host syscalls (mmap, mprotect, munmap; see
    /// `seccomp_filter::ptrace_stub_filter`). Guest syscalls never reach it
    /// (PTRACE_SYSEMU stops them first): it bounds what the stub itself can
    /// be made to do. After this, [`PtraceStub::host_syscall`] may only make
    /// the calls of [`PtraceStub::adopt_fd`]; any other kills the stub.
    pub fn install_wall(&mut self) -> Result<(), PlatformError> {
        const PR_SET_NO_NEW_PRIVS: u64 = 38;
        const SYS_PRCTL: u64 = 157;
        const SYS_SECCOMP: u64 = 317;
        const SECCOMP_SET_MODE_FILTER: u64 = 1;
        let ch = fdpass::channel().map_err(PlatformError::host("socketpair"))?;
        let prog = super::seccomp_filter::ptrace_stub_filter(
            STUB_BATCH + BATCH_SYSCALL_END,
            STUB_SYSCALL + 2,
            ch.stub_end() as u32,
            STUB_SCRATCH,
        );
        let mut data = vec![0u8; 16];
        data[0..2].copy_from_slice(&((prog.len() / 8) as u16).to_le_bytes());
        data[8..16].copy_from_slice(&(STUB_DATA + 16).to_le_bytes());
        data.extend_from_slice(&prog);
        self.mem()?
            .write(STUB_DATA, &data)
            .map_err(PlatformError::host("write /proc/PID/mem"))?;
        for (what, nr, args) in [
            ("prctl", SYS_PRCTL, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0]),
            (
                "seccomp",
                SYS_SECCOMP,
                [SECCOMP_SET_MODE_FILTER, 0, STUB_DATA, 0, 0, 0],
            ),
        ] {
            let r = self.host_syscall(nr, args)?;
            if r != 0 {
                return Err(PlatformError::UnexpectedStop(format!(
                    "stub wall: {what} returned {r}"
                )));
            }
        }
        Ok(())
    }

    /// Have guest code preempted by `p`'s ticker.
    pub fn set_preempt(&mut self, p: Preempt) {
        self.preempt = Some(p);
    }

    /// The host pid (for tests and /proc lookups).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Host ranges the guest must not map over: stub pages, vDSO, vvar.
    pub fn reserved(&self) -> &[Range<u64>] {
        &self.reserved
    }

    /// The host vDSO, identical in every stub (ASLR is off in stubs); the
    /// loader can pass its start as AT_SYSINFO_EHDR.
    pub fn vdso(&self) -> Option<Range<u64>> {
        self.vdso.clone()
    }

    /// Run one syscall in the stub on the host and return its raw result.
    /// For the kernel's own housekeeping (e.g. closing an inherited fd).
    pub fn host_syscall(&mut self, nr: u64, args: [u64; 6]) -> Result<i64, PlatformError> {
        self.host_syscall_at(STUB_SYSCALL, STUB_SYSCALL_TRAP, nr, args)
    }

    /// Like [`PtraceStub::host_syscall`], through another gadget: a
    /// `syscall` at `rip` whose path ends in an `int3` leaving rip at
    /// `trap` (the seccomp platform's clone gadget).
    pub fn host_syscall_at(
        &mut self,
        rip: u64,
        trap: u64,
        nr: u64,
        args: [u64; 6],
    ) -> Result<i64, PlatformError> {
        let mut r = self.regs;
        r.rip = rip;
        r.rax = nr;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        let out = self.run_stub(&r, trap)?;
        Ok(out.rax as i64)
    }

    /// Gives the stub the kernel's host fd `fd` at the same number (a disk
    /// hot-added in ubd=mmap mode: mappings of its pages name that fd),
    /// passed over the fd channel the stub holds from birth
    /// (`host::fdpass`): umlrun queues `fd` (SCM_RIGHTS); the stub runs
    /// `recvmsg` on its end with the header umlrun just wrote in its
    /// scratch page, which puts the fd at the lowest free number `n` of
    /// its table (read from /proc first); then `dup2(n, fd)` and
    /// `close(n)` unless `n` is `fd`. Its filter allows just these at the
    /// injection site (recvmsg only on that fd, with that header and
    /// flags). Checked at the end by device and inode. Works whatever
    /// namespaces the stub is in: nothing is opened by path.
    pub fn adopt_fd(&mut self, fd: RawFd) -> Result<(), PlatformError> {
        const SYS_CLOSE: u64 = 3;
        const SYS_DUP2: u64 = 33;
        const SYS_RECVMSG: u64 = 47;
        self.check_alive()?;
        let ch = fdpass::channel().map_err(PlatformError::host("socketpair"))?;
        let n = fdpass::lowest_free_fd(self.pid, self.pid)
            .map_err(PlatformError::host("read /proc/PID/fd"))?;
        self.mem()?
            .write(STUB_SCRATCH, &fdpass::write_msghdr(STUB_SCRATCH))
            .map_err(PlatformError::host("write /proc/PID/mem"))?;
        ch.send(fd)
            .map_err(PlatformError::host("sendmsg (SCM_RIGHTS)"))?;
        let errno = |r: i64| {
            Errno(
                r.checked_neg()
                    .and_then(|e| i32::try_from(e).ok())
                    .unwrap_or(0),
            )
        };
        let got = self.host_syscall(
            SYS_RECVMSG,
            [
                ch.stub_end() as u64,
                STUB_SCRATCH,
                fdpass::RECV_FLAGS,
                0,
                0,
                0,
            ],
        )?;
        if got != 1 {
            return Err(PlatformError::Inject {
                index: 0,
                errno: errno(got),
            });
        }
        if n != fd {
            let d = self.host_syscall(SYS_DUP2, [n as u64, fd as u64, 0, 0, 0, 0])?;
            self.host_syscall(SYS_CLOSE, [n as u64, 0, 0, 0, 0, 0])?;
            if d < 0 {
                return Err(PlatformError::Inject {
                    index: 1,
                    errno: errno(d),
                });
            }
        }
        if fdpass::thread_fd_is(self.pid, self.pid, fd) {
            Ok(())
        } else {
            Err(PlatformError::Host {
                op: "adopt_fd (the passed fd is not in place)",
                source: nix::Error::EBADF,
            })
        }
    }

    /// Read guest memory through the host (tests and debugging only).
    pub fn peek(&self, addr: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        hp::read_mem(self.pid, addr, buf).map_err(PlatformError::host("process_vm_readv"))
    }

    /// Write guest memory through the host (tests and debugging only).
    pub fn poke(&self, addr: u64, buf: &[u8]) -> Result<usize, PlatformError> {
        hp::write_mem(self.pid, addr, buf).map_err(PlatformError::host("process_vm_writev"))
    }

    /// Make a stub whose guest is gone as good as a fresh one, so the next
    /// guest address space can take it without a host fork+exec: [`wipe`]
    /// it, and [`PtraceStub::cpu_ticks`] starts again from zero. On error
    /// the stub should be killed.
    ///
    /// [`wipe`]: PtraceStub::wipe
    pub fn recycle(&mut self) -> Result<(), PlatformError> {
        self.wipe()?;
        // Only stub code ran since a reading taken at the guest's exit: its
        // few microseconds may go to the next guest, a /proc read is dearer.
        self.cpu_base = match self.cpu_at_stop.take() {
            Some(t) => t,
            None => crate::host::clock::process_cpu_ticks(self.pid),
        };
        self.cpu_ns_base = crate::host::clock::process_cpu_time_ns(self.pid).unwrap_or(0);
        log::trace!("stub {}: recycled", self.pid);
        Ok(())
    }

    /// Clear the guest out of the stub, as execve would: every mapping
    /// outside [`PtraceStub::reserved`] is unmapped, the FPU and vector
    /// registers go back to their init state (x87, SSE, AVX, AVX-512 via
    /// xrstor; FXSAVE state only on hosts without XSAVE), and the
    /// registers to the fresh stub's (fs base 0). One round trip. The CPU
    /// time count goes on (an exec in the same process).
    ///
    /// What a stub carries besides these: its host fds (the same `keep_fds`
    /// for every stub), signal handlers and mask (never changed: guest
    /// signal syscalls are emulated), a stale op list in its data page
    /// (rewritten before every use) and PKRU (not touched by guests that
    /// use no protection keys).
    pub fn wipe(&mut self) -> Result<(), PlatformError> {
        self.check_alive()?;
        let ops = gap_unmaps(&self.reserved);
        if ops.len() > MAX_BATCH {
            return Err(PlatformError::UnexpectedStop(format!(
                "{} reserved ranges, too many to wipe in one batch",
                self.reserved.len()
            )));
        }
        let calls: Vec<(u64, [u64; 6])> = ops.iter().map(encode_op).collect();
        let mut data = encode_batch(&calls);
        let xsave = std::arch::is_x86_feature_detected!("xsave");
        if xsave {
            data.resize((STUB_XSTATE - STUB_DATA) as usize, 0);
            data.extend_from_slice(&xstate_init_area());
        }
        self.mem()?
            .write(STUB_DATA, &data)
            .map_err(PlatformError::host("write /proc/PID/mem"))?;
        let mut r = self.initial;
        r.rip = if xsave { STUB_RESET } else { STUB_BATCH };
        r.rbx = STUB_DATA;
        r.rsi = STUB_XSTATE;
        let out = self.run_stub(&r, STUB_BATCH_TRAP)?;
        let done = out.rbx.wrapping_sub(STUB_DATA) as usize / OP_RECORD;
        if done < ops.len() {
            return Err(PlatformError::Inject {
                index: done,
                errno: Errno(-(out.rax as i64) as i32),
            });
        }
        if !xsave {
            let init = FpRegs::initial();
            let fx: &[u8; 512] = init.fxsave().try_into().expect("512 bytes");
            hp::set_fpregs(self.pid, fx).map_err(PlatformError::host("setfpregs"))?;
        }
        self.regs = self.initial;
        self.regs_dirty = true;
        Ok(())
    }

    /// Host CPU ticks (user, system) the stub spent since it was spawned or
    /// last recycled: the CPU time of the guest process it holds.
    pub fn cpu_ticks(&self) -> (u64, u64) {
        let (u, s) = crate::host::clock::process_cpu_ticks(self.pid);
        self.cpu_at_stop.set(Some((u, s)));
        (
            u.saturating_sub(self.cpu_base.0),
            s.saturating_sub(self.cpu_base.1),
        )
    }

    /// CPU time (ns) the stub spent since it was spawned or last recycled,
    /// from the host's per-process CPU clock: the guest process's
    /// CLOCK_PROCESS_CPUTIME_ID.
    pub fn cpu_time_ns(&self) -> u64 {
        crate::host::clock::process_cpu_time_ns(self.pid)
            .unwrap_or(0)
            .saturating_sub(self.cpu_ns_base)
    }

    /// Kill the stub (idempotent).
    pub fn kill(&mut self) {
        if self.alive {
            hp::kill(self.pid);
            self.gone();
        }
    }

    /// The stub is dead (or no longer ours): nothing more to do with it,
    /// its `/proc/PID/mem` fd closes.
    fn gone(&mut self) {
        self.alive = false;
        self.mem = None;
    }

    /// The stub's memory file, while it lives.
    fn mem(&self) -> Result<&hp::StubMem, PlatformError> {
        match &self.mem {
            Some(m) if self.alive => Ok(m),
            _ => Err(PlatformError::StubGone),
        }
    }

    fn check_alive(&self) -> Result<(), PlatformError> {
        if self.alive {
            Ok(())
        } else {
            Err(PlatformError::StubGone)
        }
    }

    /// Whether the guest's faulting instruction writes `addr`: Some(true)
    /// when [`insn::classify`] is sure, None otherwise (never Some(false)).
    /// Saves the second fault of a read-then-write on a copy-on-write page.
    fn writes_at(&self, addr: u64) -> Option<bool> {
        let page = |a: u64| a & !0xfff;
        let rip = self.regs.rip;
        // A fault on the instruction's own bytes is a fetch.
        if (page(rip)..=page(rip.wrapping_add(insn::MAX_LEN as u64 - 1))).contains(&page(addr)) {
            return None;
        }
        let mut code = [0u8; insn::MAX_LEN];
        let n = hp::read_mem(self.pid, rip, &mut code).ok()?;
        let writes = match insn::classify(&code[..n]) {
            Access::Operand => true,
            Access::Push => page(addr) == page(self.regs.rsp.wrapping_sub(8)),
            Access::StringDest => page(addr) == page(self.regs.rdi),
            Access::Unknown => false,
        };
        writes.then_some(true)
    }

    /// Run stub code from `r` under PTRACE_CONT until the int3 whose trap
    /// leaves rip at `trap`; returns the registers there.
    fn run_stub(&mut self, r: &Regs, trap: u64) -> Result<Regs, PlatformError> {
        self.check_alive()?;
        let mut r = *r;
        r.orig_rax = u64::MAX; // no syscall restart on the way out
        r.eflags &= !0x100; // no single-step
        hp::set_regs(self.pid, &r).map_err(PlatformError::host("setregs"))?;
        self.regs_dirty = true;
        hp::resume(self.pid, Resume::Cont).map_err(PlatformError::host("ptrace_cont"))?;
        // Asynchronous host signals (the kernel's preemption tick) may
        // arrive while stub code runs: suppress them and go on.
        let mut suppressed = 0;
        loop {
            match hp::wait(self.pid).map_err(PlatformError::host("waitpid"))? {
                HostStop::Signal(SIGTRAP) => break,
                HostStop::Exited(_) | HostStop::Killed(_) => {
                    self.gone();
                    return Err(PlatformError::StubGone);
                }
                HostStop::Signal(sig) if sig != SIGSEGV && sig != SIGBUS && suppressed < 64 => {
                    suppressed += 1;
                    log::trace!(
                        "stub {}: host signal {sig} during stub code suppressed",
                        self.pid
                    );
                    hp::resume(self.pid, Resume::Cont)
                        .map_err(PlatformError::host("ptrace_cont"))?;
                }
                other => {
                    let rip = hp::get_regs(self.pid).map(|r| r.rip).unwrap_or(0);
                    let si = hp::siginfo(self.pid).ok();
                    return Err(PlatformError::UnexpectedStop(format!(
                        "{other:?} while running stub code (rip {rip:#x}, siginfo {si:x?})"
                    )));
                }
            }
        }
        let out = hp::get_regs(self.pid).map_err(PlatformError::host("getregs"))?;
        if out.rip != trap {
            return Err(PlatformError::UnexpectedStop(format!(
                "trap at {:#x}, expected {trap:#x}",
                out.rip
            )));
        }
        Ok(out)
    }

    /// Run ops through the batch loop without the reserved-range check.
    fn inject(&mut self, ops: &[MapOp]) -> Result<(), PlatformError> {
        for (chunk_no, chunk) in ops.chunks(MAX_BATCH).enumerate() {
            log::trace!("stub {}: {} ops", self.pid, chunk.len());
            let calls: Vec<(u64, [u64; 6])> = chunk.iter().map(encode_op).collect();
            let bytes = encode_batch(&calls);
            self.check_alive()?;
            self.mem()?
                .write(STUB_DATA, &bytes)
                .map_err(PlatformError::host("write /proc/PID/mem"))?;
            let mut r = self.regs;
            r.rip = STUB_BATCH;
            r.rbx = STUB_DATA;
            let out = self.run_stub(&r, STUB_BATCH_TRAP)?;
            let done = out.rbx.wrapping_sub(STUB_DATA) as usize / OP_RECORD;
            if done < chunk.len() {
                let errno = Errno(-(out.rax as i64) as i32);
                return Err(PlatformError::Inject {
                    index: chunk_no * MAX_BATCH + done,
                    errno,
                });
            }
        }
        Ok(())
    }
}

/// Unmaps of every gap between the sorted `reserved` ranges, from 0 up to
/// TASK_SIZE: everything a guest may have mapped. The whole stub area
/// ([`STUB_BASE`]..[`STUB_AREA_END`]) is left alone: the stubs' filters
/// refuse an op that touches it.
pub(super) fn gap_unmaps(reserved: &[Range<u64>]) -> Vec<MapOp> {
    let mut keep: Vec<Range<u64>> = reserved.to_vec();
    keep.push(STUB_BASE..STUB_AREA_END);
    keep.sort_by_key(|r| r.start);
    let mut ops = Vec::new();
    let mut at = 0;
    for r in keep.iter().filter(|r| r.start < TASK_SIZE) {
        if r.start > at {
            ops.extend(PageSpan::from_range(at..r.start).map(|span| MapOp::Unmap { span }));
        }
        at = at.max(r.end);
    }
    if at < TASK_SIZE {
        ops.extend(PageSpan::from_range(at..TASK_SIZE).map(|span| MapOp::Unmap { span }));
    }
    ops
}

pub(super) fn encode_op(op: &MapOp) -> (u64, [u64; 6]) {
    let (addr, len) = (op.span().start().get(), op.span().len());
    match *op {
        MapOp::Map {
            prot, fd, offset, ..
        } => (
            SYS_MMAP,
            [
                addr,
                len,
                prot.bits(),
                MAP_SHARED_FIXED,
                fd as u64,
                offset.get(),
            ],
        ),
        MapOp::Unmap { .. } => (SYS_MUNMAP, [addr, len, 0, 0, 0, 0]),
        MapOp::Protect { prot, .. } => (SYS_MPROTECT, [addr, len, prot.bits(), 0, 0, 0]),
    }
}

impl AddressSpaceOps for PtraceStub {
    fn apply(&mut self, ops: &[MapOp]) -> Result<(), PlatformError> {
        for op in ops {
            if self.reserved.iter().any(|res| op.span().overlaps(res)) {
                return Err(PlatformError::Reserved(*op));
            }
        }
        self.inject(ops)
    }
}

impl Context for PtraceStub {
    fn switch(&mut self) -> Result<Stop, PlatformError> {
        self.check_alive()?;
        if self.regs_dirty {
            hp::set_regs(self.pid, &self.regs).map_err(PlatformError::host("setregs"))?;
            self.regs_dirty = false;
        }
        self.cpu_at_stop.set(None);
        if let Some(p) = &self.preempt {
            p.running(self.pid);
        }
        let stop = hp::resume(self.pid, Resume::Sysemu)
            .map_err(PlatformError::host("ptrace_sysemu"))
            .and_then(|()| hp::wait(self.pid).map_err(PlatformError::host("waitpid")));
        if let Some(p) = &self.preempt {
            p.stopped();
        }
        let stop = stop?;
        log::trace!("stub {}: stop {stop:?}", self.pid);
        match stop {
            HostStop::Exited(code) => {
                self.gone();
                return Ok(Stop::Exited(code));
            }
            HostStop::Killed(sig) => {
                self.gone();
                return Ok(Stop::Killed(sig));
            }
            _ => {}
        }
        self.regs = hp::get_regs(self.pid).map_err(PlatformError::host("getregs"))?;
        Ok(match stop {
            HostStop::Syscall => Stop::Syscall {
                nr: self.regs.syscall_nr(),
                args: self.regs.syscall_args(),
            },
            HostStop::Signal(sig @ (SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP)) => {
                let (signo, code, addr) =
                    hp::siginfo(self.pid).map_err(PlatformError::host("getsiginfo"))?;
                log::trace!(
                    "stub {}: fault {signo} code {code} at {addr:#x} (rip {:#x})",
                    self.pid,
                    self.regs.rip
                );
                if signo != sig {
                    return Err(PlatformError::UnexpectedStop(format!(
                        "stopped by {sig}, siginfo says {signo}"
                    )));
                }
                let write = if signo == SIGSEGV && code == SEGV_MAPERR {
                    self.writes_at(addr)
                } else {
                    None
                };
                Stop::Fault(Fault {
                    addr,
                    signo,
                    code,
                    write,
                })
            }
            HostStop::Signal(sig) => Stop::Signal(sig),
            HostStop::Exited(_) | HostStop::Killed(_) => unreachable!("handled above"),
        })
    }

    fn regs(&self) -> &Regs {
        &self.regs
    }

    fn regs_mut(&mut self) -> &mut Regs {
        self.regs_dirty = true;
        &mut self.regs
    }

    fn fpregs(&mut self) -> Result<FpRegs, PlatformError> {
        self.check_alive()?;
        let Some(l) = xs::layout(self.pid).map_err(PlatformError::host("getregset"))? else {
            let fx = hp::get_fpregs(self.pid).map_err(PlatformError::host("getfpregs"))?;
            return Ok(FpRegs::from_bytes(fx.to_vec()).expect("512 bytes"));
        };
        let mut buf = vec![0u8; l.regset_size];
        let len = xs::get_xstate(self.pid, &mut buf).map_err(PlatformError::host("getregset"))?;
        buf.truncate(len);
        let mut fp = FpRegs::from_bytes(buf).ok_or_else(|| {
            PlatformError::UnexpectedStop(format!("xstate regset of {len} bytes"))
        })?;
        // Describe the frame-sized part, as Linux does in signal frames.
        fp.set_sw_bytes(Some(FpSwBytes {
            extended_size: l.frame_size as u32 + 4,
            xfeatures: l.frame_features,
            xstate_size: l.frame_size as u32,
        }));
        Ok(fp)
    }

    fn set_fpregs(&mut self, fp: &FpRegs) -> Result<(), PlatformError> {
        self.check_alive()?;
        match xs::layout(self.pid).map_err(PlatformError::host("getregset"))? {
            Some(l) => {
                let img = fp.to_host_image(l.regset_size, l.frame_features, l.mxcsr_mask);
                xs::set_xstate(self.pid, &img).map_err(PlatformError::host("setregset"))
            }
            None => {
                let fx: &[u8; 512] = fp.fxsave().try_into().expect("512 bytes");
                hp::set_fpregs(self.pid, fx).map_err(PlatformError::host("setfpregs"))
            }
        }
    }

    fn fp_frame_size(&mut self) -> usize {
        match xs::layout(self.pid) {
            Ok(Some(l)) => l.frame_size,
            _ => 0,
        }
    }
}

impl Drop for PtraceStub {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_cover_everything_but_reserved() {
        let reserved = [
            0x7fff_f7ff_0000..0x7fff_f7ff_4000,
            0x7fff_f7ff_4000..0x7fff_f7ff_6000,
            STUB_BASE..STUB_END,
        ];
        let ops = gap_unmaps(&reserved);
        let ranges: Vec<Range<u64>> = ops.iter().map(|o| o.range()).collect();
        assert_eq!(
            ranges,
            vec![
                0..0x7fff_f7ff_0000,
                0x7fff_f7ff_6000..STUB_BASE,
                STUB_AREA_END..TASK_SIZE
            ]
        );
        assert!(ops.iter().all(|o| matches!(o, MapOp::Unmap { .. })));
    }

    #[test]
    fn nothing_reserved_unmaps_all_but_the_stub_area() {
        let ops = gap_unmaps(&[]);
        let ranges: Vec<Range<u64>> = ops.iter().map(|o| o.range()).collect();
        assert_eq!(ranges, vec![0..STUB_BASE, STUB_AREA_END..TASK_SIZE]);
        assert!(ops.iter().all(|o| matches!(o, MapOp::Unmap { .. })));
        let (nr, args) = encode_op(&ops[1]);
        assert_eq!(
            (nr, args),
            (
                SYS_MUNMAP,
                [STUB_AREA_END, TASK_SIZE - STUB_AREA_END, 0, 0, 0, 0]
            )
        );
    }

    #[test]
    fn maps_encode_as_shared_fixed_mmaps() {
        let op = MapOp::Map {
            span: PageSpan::new(crate::mm::GuestVirt(0x40_0000), 0x3000).unwrap(),
            prot: super::super::Prot::RX,
            fd: 7,
            offset: super::super::HostOffset::new(0x9000).unwrap(),
        };
        assert_eq!(
            encode_op(&op),
            (
                SYS_MMAP,
                [0x40_0000, 0x3000, 5, MAP_SHARED_FIXED, 7, 0x9000]
            )
        );
    }
}
