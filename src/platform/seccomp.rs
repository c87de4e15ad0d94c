//! The seccomp platform (gVisor's systrap, UML's seccomp mode): guest code
//! runs in a stub that is not traced; a seccomp filter turns every syscall
//! guest code makes into SIGSYS, and every stop (SIGSYS, a fault, the
//! preemption tick) runs the stub's handler, which leaves the host's signal
//! frame in a memory area shared with umlrun, wakes umlrun through a futex
//! and sleeps until umlrun has edited the frame. Then it runs the queued
//! mapping changes (one pass, [`AddressSpaceOps::apply`] only queues them)
//! and resumes guest code with `rt_sigreturn` from the edited frame: a
//! syscall round trip is two futex handoffs, no ptrace call.
//!
//! Set-up uses ptrace once: the stub is spawned traced as on the ptrace
//! platform, made to map its shared area, install its handlers, signal
//! stack and seccomp filter ([`super::seccomp_filter`]), and let go to its
//! park loop. The stub code is `host::seccomp_stub`.
//!
//! Preemption: umlrun waits for a stop with a timeout of one slice; when a
//! guest has run a whole slice it sends the stub the tick signal, whose
//! handler makes it stop like any other. The same timeout notices a stub
//! that died.
//!
//! Registers: the frame holds the general registers and the whole XSAVE
//! state; the handler adds fs/gs base (rdfsbase/rdgsbase). A page fault's
//! error code in the frame says whether it was a write.
//!
//! Two host threads per stub (see `host::seccomp_stub`): the guest thread
//! runs guest code and its handler; the op thread, cloned without the fd
//! table, alone holds the guest memory file and the disk images and runs
//! the op lists. Mapping ops go to the op thread (CTL in the op page, a
//! futex wake); with guest code to resume it wakes the guest thread itself
//! once the ops ran, so a fault is still one handoff each way plus the op
//! thread's turn.
//!
//! What guest code can do to it: it can write the shared area's control
//! words and the signal stack while it runs (they are in its address
//! space, and the handler writes them). Everything umlrun reads there is
//! bounds-checked and treated as guest data; a forged stop is at worst a
//! syscall the guest could have made. It cannot make a host syscall (the
//! filter traps every call but the handler's own futex and rt_sigreturn),
//! has no fd to map (its fd table is empty) and can change no mapping
//! (every mmap, mprotect and munmap traps, from any address). The op page
//! is read-only in the stub and the op thread reads nothing else; umlrun
//! counts op completions on the op thread's eventfd, never in guest-
//! writable memory, and waits for them before `switch` returns: a forged
//! stop cannot make the kernel reuse a frame the stub still maps.

use std::any::Any;
use std::ops::Range;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::ptrace_stub::{encode_op, gap_unmaps};
use super::seccomp_filter::{op_thread_filter, stub_filter, OpSites, StubSites};
use super::seccomp_frame as frame;
use super::stub_image::{encode_batch, sc_addr, OP_RECORD};
use super::{
    AddressSpaceOps, Context, Fault, FpRegs, FpSwBytes, Guest, MapOp, Platform, PlatformError,
    PtraceStub, Regs, Stop, StubOptions,
};
use super::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
use crate::host::fdpass;
use crate::host::preempt::TICK_SIGNAL;
use crate::host::ptrace::HostStop;
use crate::host::seccomp_stub::{self as hs, OpEvents, StubShm, SHM_BASE, SHM_LEN};
use crate::host::xstate::XstateLayout;

const SIGSYS: i32 = 31;
const ENOSYS: i64 = 38;
/// Guest code runs at most this long before the kernel gets a turn.
const SLICE: Duration = Duration::from_millis(10);
/// How often a wait for a stub that is not running guest code checks it
/// is alive.
const LIVENESS: Duration = Duration::from_millis(100);
/// A stub that runs this much CPU after the preemption tick without
/// stopping has blocked the tick (a forged signal mask): it is killed. A
/// stub that got the tick stops within microseconds of running.
const TICK_IGNORED_CPU: Duration = Duration::from_millis(200);
/// The same, in wall time: a stub can also block the tick and then sleep
/// in the handler's futex wait with registers of its own.
const TICK_IGNORED_WALL: Duration = Duration::from_secs(30);
/// Most stubs kept for reuse.
const MAX_SPARE_STUBS: usize = 4;
/// Spares kept while the kernel is idle (none once the guest settled:
/// see `PtracePlatform`'s pool).
const IDLE_SPARES: usize = 1;
/// Ops per pass of the op thread (the list area, one terminator).
const MAX_OPS: usize = (hs::OFF_OPS_END - hs::OFF_OPS) / OP_RECORD - 1;
/// Where a fresh frame (a new or wiped guest) is built, and the XSAVE
/// image umlrun writes (both in the signal stack, below where the host
/// puts real frames).
const FRESH_UC: usize = 0x5008;
const FP_AREA: usize = 0x6000;
/// Real frames must leave FP_AREA's room alone: the host puts them at the
/// top of the signal stack.
const FP_ROOM: usize = 0x4000;

/// `platform=seccomp-spin`: stubs on another CPU, and both sides poll
/// (~25 ns a poll) before sleeping: a futex wake-up across CPUs costs tens
/// of µs on a nested-virtualised host, a poll loop sees the other side's
/// answer in a µs or two. The stub waits for umlrun's answer (usually µs)
/// with a fixed budget. umlrun waits for guest code, which may compute for
/// long: it polls the full budget unless the last wait showed a guest that
/// ran for long ([`LONG_RUN`]), then only [`KERNEL_SPIN_MIN`] polls, until a
/// stop comes quickly again. Plain `platform=seccomp` keeps the stubs on
/// umlrun's CPU and never polls: each handoff is a futex wake-up and a
/// switch on one CPU, which a busy host does not delay. Measured (the
/// commits that set them, getppid): quiet host (chrt -f) spin 2.8-3.9 µs,
/// same CPU 9.5-10.4 µs, across CPUs without polling 29-42 µs; at load 15
/// on 2 vCPUs spin wins getppid and faults but fork+exec+wait takes
/// 9-45 ms against 1.7-1.9 ms on one CPU (the other CPU is busy).
const KERNEL_SPIN_MAX: u32 = 2000;
const KERNEL_SPIN_MIN: u32 = 32;
const STUB_SPINS: u32 = 1000;
/// A wait this long means guest code computed (or a host signal came): no
/// spinning next time.
const LONG_RUN: Duration = Duration::from_micros(500);

/// Host facts every stub of the platform shares.
#[derive(Clone, Copy, Debug)]
struct HostFacts {
    /// None: the host has no XSAVE (FXSAVE-only frames).
    xstate: Option<XstateLayout>,
}

/// The seccomp platform of one kernel instance.
pub struct SeccompPlatform {
    keep_fds: Vec<RawFd>,
    /// Where stubs run: umlrun's CPU, or with `spin` another one.
    stub_cpu: Option<usize>,
    /// Both sides poll for the other's answer before sleeping.
    spin: bool,
    spares: Vec<SeccompStub>,
    facts: Option<HostFacts>,
    shut_down: bool,
}

impl SeccompPlatform {
    /// Whether this host can run it (Linux with seccomp filters and user
    /// FSGSBASE).
    pub fn supported() -> bool {
        hs::has_fsgsbase()
    }

    /// The platform if it works on this host: user FSGSBASE, and a first
    /// stub (kept as a spare) sets up, which checks everything else it
    /// needs (seccomp filters, close_range, ptrace for the set-up). Else
    /// why not, for the fallback to ptrace.
    pub fn probe(
        keep_fds: Vec<RawFd>,
        stub_cpu: Option<usize>,
        spin: bool,
    ) -> Result<SeccompPlatform, String> {
        if !Self::supported() {
            return Err("no user FSGSBASE (Linux 5.9+ on a CPU with it)".into());
        }
        let mut p = SeccompPlatform::new(keep_fds, stub_cpu, spin);
        let first = p
            .spawn()
            .map_err(|e| format!("a stub did not set up: {e}"))?;
        p.spares.push(first);
        Ok(p)
    }

    /// The CPU for the stubs of an instance pinned to `cpu`: the next one
    /// of `cpus` (those umlrun may use), or `cpu` when it is the only one.
    pub fn stub_cpu(cpu: usize, cpus: &[usize]) -> usize {
        cpus.iter()
            .copied()
            .find(|&o| o > cpu)
            .or_else(|| cpus.iter().copied().find(|&o| o != cpu))
            .unwrap_or(cpu)
    }

    /// Stubs keep the host fds `keep_fds` and run pinned to `stub_cpu`
    /// (umlrun's own CPU; with `spin`, see [`SeccompPlatform::stub_cpu`]).
    pub fn new(keep_fds: Vec<RawFd>, stub_cpu: Option<usize>, spin: bool) -> SeccompPlatform {
        SeccompPlatform {
            keep_fds,
            stub_cpu,
            spin,
            spares: Vec::new(),
            facts: None,
            shut_down: false,
        }
    }

    fn spawn(&mut self) -> Result<SeccompStub, PlatformError> {
        let s = SeccompStub::spawn(&self.keep_fds, self.stub_cpu, self.spin, &mut self.facts)?;
        Ok(s)
    }
}

impl Platform for SeccompPlatform {
    fn new_guest(&mut self) -> Result<Box<dyn Guest>, PlatformError> {
        let s = match self.spares.pop() {
            Some(s) => s,
            None => self.spawn()?,
        };
        Ok(Box::new(s))
    }

    fn retire(&mut self, guest: Box<dyn Guest>) {
        let Ok(mut stub) = guest.into_any().downcast::<SeccompStub>() else {
            return;
        };
        if !self.shut_down && self.spares.len() < MAX_SPARE_STUBS {
            match stub.recycle() {
                Ok(()) => {
                    self.spares.push(*stub);
                    return;
                }
                Err(e) => log::debug!("stub {} not reusable: {e}", stub.pid),
            }
        }
        stub.kill();
    }

    fn idle(&mut self, settled: bool) {
        if self.shut_down {
            return;
        }
        if settled {
            // Dropping a stub kills it.
            self.spares.clear();
            return;
        }
        self.spares.truncate(IDLE_SPARES);
        if self.spares.len() < IDLE_SPARES {
            match self.spawn() {
                Ok(s) => self.spares.push(s),
                Err(e) => log::debug!("no spare stub: {e}"),
            }
        }
    }

    fn shut_down(&mut self) {
        self.shut_down = true;
        for mut s in self.spares.drain(..) {
            s.kill();
        }
    }

    fn share_fd(&mut self, fd: RawFd) {
        if !self.keep_fds.contains(&fd) {
            self.keep_fds.push(fd);
        }
        // Spares take it as running guests do; one that cannot is dropped
        // (the next ones are spawned with it).
        for mut s in std::mem::take(&mut self.spares) {
            match s.adopt_fd(fd) {
                Ok(()) => self.spares.push(s),
                Err(e) => {
                    log::debug!("spare stub {} dropped: {e}", s.pid);
                    s.kill();
                }
            }
        }
    }

    fn unshare_fd(&mut self, fd: RawFd) {
        self.keep_fds.retain(|&k| k != fd);
    }
}

/// An op batch with flags (`hs::OPF_*`) in each record's last word.
fn encode_flagged_batch(ops: &[(u64, [u64; 6], u64)]) -> Vec<u8> {
    let plain: Vec<(u64, [u64; 6])> = ops.iter().map(|&(nr, a, _)| (nr, a)).collect();
    let mut out = encode_batch(&plain);
    for (i, &(_, _, flags)) in ops.iter().enumerate() {
        let at = i * OP_RECORD + OP_RECORD - 8;
        out[at..at + 8].copy_from_slice(&flags.to_le_bytes());
    }
    out
}

/// One guest process on the seccomp platform.
pub struct SeccompStub {
    pid: i32,
    /// The op thread (its own fd table: /proc/<pid>/task/<op_tid>/fd).
    op_tid: i32,
    shm: StubShm,
    /// The op thread's completions.
    events: OpEvents,
    /// The last op batch's sequence number (CTL = seq << 1 | resume).
    seq: u32,
    /// Batches handed to the op thread and not yet confirmed.
    unconfirmed: u64,
    facts: HostFacts,
    regs: Regs,
    regs_dirty: bool,
    /// The sigcontext of the current frame, as read at the last stop (or
    /// built for a fresh one).
    sc: Vec<u8>,
    /// Offset of the current frame's ucontext in the shared area; None:
    /// no frame yet (new or wiped guest): the next switch builds one.
    uc_off: Option<usize>,
    /// An FP image to load at the next switch.
    pending_fp: Option<FpRegs>,
    /// A fresh frame or an FP image was written below the real frames
    /// ([`FRESH_UC`], [`FP_AREA`]) since the last [`Guest::settle`].
    low_written: bool,
    /// The op page was given back at a settle: its constants (the
    /// completion eventfd's number, the 1 written there) must be written
    /// again before the op thread next runs a batch.
    op_page_out: bool,
    /// Mapping changes to run before the guest next runs.
    ops: Vec<MapOp>,
    reserved: Vec<Range<u64>>,
    vdso: Option<Range<u64>>,
    initial: Regs,
    alive: bool,
    cpu_base: (u64, u64),
    cpu_ns_base: u64,
    /// Poll before sleeping (`platform=seccomp-spin`).
    spin: bool,
    /// umlrun's current poll budget (see [`KERNEL_SPIN_MAX`]).
    kspins: u32,
}

fn sites() -> StubSites {
    let c = hs::stub_code();
    StubSites {
        futex: [sc_addr(c.ip_wake), sc_addr(c.ip_wait)],
        sigreturn: [sc_addr(c.ip_sigreturn), sc_addr(c.ip_restorer)],
        futex_words: [
            SHM_BASE + hs::OFF_CMD as u64,
            SHM_BASE + hs::OFF_DONE as u64,
        ],
    }
}

fn op_sites(efd: RawFd, sock: RawFd) -> OpSites {
    let c = hs::stub_code();
    OpSites {
        wait: sc_addr(c.ip_opwait),
        op: sc_addr(c.ip_op),
        done: sc_addr(c.ip_opdone),
        wake: sc_addr(c.ip_opwake),
        exit: sc_addr(c.ip_opexit),
        ctl: SHM_BASE + hs::OFF_CTL as u64,
        cmd: SHM_BASE + hs::OFF_CMD as u64,
        one: SHM_BASE + hs::OFF_ONE as u64,
        efd: efd as u32,
        sock: sock as u32,
        msg: SHM_BASE + hs::OFF_MSG as u64,
    }
}

impl SeccompStub {
    /// Spawns a stub under ptrace, sets it up, lets it go to its park loop.
    fn spawn(
        keep_fds: &[RawFd],
        cpu: Option<usize>,
        spin: bool,
        facts: &mut Option<HostFacts>,
    ) -> Result<SeccompStub, PlatformError> {
        let shm = StubShm::create().map_err(PlatformError::StubExe)?;
        let events = OpEvents::create().map_err(PlatformError::StubExe)?;
        let mut keep = keep_fds.to_vec();
        keep.push(shm.fd());
        keep.push(events.fd());
        let mut pt = PtraceStub::spawn(StubOptions {
            keep_fds: &keep,
            cpu,
        })?;
        let f = match facts {
            Some(f) => *f,
            None => {
                let xstate = crate::host::xstate::layout(pt.pid())
                    .map_err(PlatformError::host("getregset"))?;
                *facts.insert(HostFacts { xstate })
            }
        };
        let op_tid = setup(&mut pt, &shm, &events, spin)?;
        let mut park = *pt.regs();
        park.rip = sc_addr(hs::stub_code().park);
        park.rsp = SHM_BASE + hs::ALTSTACK_END as u64 - 64;
        let d = pt.detach(&park)?;
        let mut reserved = d.reserved;
        reserved.push(SHM_BASE..SHM_BASE + SHM_LEN as u64);
        reserved.sort_by_key(|r| r.start);
        let pid = d.pid;
        // clone answered the op thread's tid in the stub's pid namespace.
        let op_tid = hs::host_tid(pid, op_tid);
        log::debug!("seccomp stub {pid} ready");
        Ok(SeccompStub {
            pid,
            op_tid,
            shm,
            events,
            seq: 0,
            unconfirmed: 0,
            facts: f,
            regs: d.initial,
            regs_dirty: true,
            sc: vec![0u8; frame::SC_LEN],
            uc_off: None,
            pending_fp: None,
            low_written: false,
            op_page_out: false,
            ops: Vec::new(),
            reserved,
            vdso: d.vdso,
            initial: d.initial,
            alive: true,
            cpu_base: (0, 0),
            cpu_ns_base: crate::host::clock::process_cpu_time_ns(pid).unwrap_or(0),
            spin,
            kspins: KERNEL_SPIN_MAX,
        })
    }

    fn check_alive(&self) -> Result<(), PlatformError> {
        if self.alive {
            Ok(())
        } else {
            Err(PlatformError::StubGone)
        }
    }

    /// How the stub ended, once it has (reaped: the pid is gone).
    fn reaped(&mut self) -> Option<Stop> {
        let st = hs::try_reap(self.pid)?;
        self.alive = false;
        Some(match st {
            HostStop::Exited(c) => {
                // The op thread ends the stub with the errno of an op that
                // failed as its status.
                log::debug!("seccomp stub {} exited {c}", self.pid);
                Stop::Exited(c)
            }
            HostStop::Killed(s) => Stop::Killed(s),
            _ => Stop::Killed(9),
        })
    }

    /// Hands `ops` (at most MAX_OPS) to the op thread; with `resume` it
    /// wakes the guest thread once they ran. The previous batch must be
    /// confirmed (the op list is rewritten here).
    fn send_ops(&mut self, ops: &[MapOp], resume: bool) {
        debug_assert!(ops.len() <= MAX_OPS && self.unconfirmed == 0);
        self.restore_op_page();
        let calls: Vec<(u64, [u64; 6])> = ops.iter().map(encode_op).collect();
        self.shm.write(hs::OFF_OPS, &encode_batch(&calls));
        self.seq = self.seq.wrapping_add(1);
        let ctl = (self.seq << 1) | if resume { hs::CTL_RESUME } else { 0 };
        self.shm.store(hs::OFF_CTL, ctl);
        self.shm.wake(hs::OFF_CTL);
        self.unconfirmed += 1;
    }

    /// Waits until the op thread confirmed every batch handed to it, on
    /// its eventfd: the only completion guest code cannot forge. Some:
    /// the stub died meanwhile.
    fn confirm_ops(&mut self) -> Option<Stop> {
        while self.unconfirmed > 0 {
            let n = self.events.take();
            if n > 0 {
                self.unconfirmed = self.unconfirmed.saturating_sub(n);
                continue;
            }
            if let Some(st) = self.reaped() {
                return Some(st);
            }
            self.events.wait(LIVENESS);
        }
        None
    }

    /// Resumes guest code (after the op thread ran `ops`, at most
    /// MAX_OPS, if any) and waits for the stub's next stop, preempting
    /// guest code after a slice. Some: the stub died.
    fn run_guest(&mut self, ops: &[MapOp]) -> Option<Stop> {
        self.shm.store(hs::OFF_DONE, 0);
        if ops.is_empty() {
            self.shm.store(hs::OFF_CMD, hs::CMD_RUN);
            self.shm.wake(hs::OFF_CMD);
        } else {
            self.send_ops(ops, true);
        }
        let started = Instant::now();
        let mut ticked = false;
        let mut tick_cpu = 0u64;
        let mut ticked_at = started;
        loop {
            let timeout = if ticked { LIVENESS } else { SLICE };
            let spins = if self.spin { self.kspins } else { 0 };
            match self.shm.wait_while(hs::OFF_DONE, 0, spins, timeout) {
                hs::Waited::Spinning => {
                    self.kspins = KERNEL_SPIN_MAX;
                    break;
                }
                hs::Waited::Sleeping => {
                    self.kspins = if started.elapsed() < LONG_RUN {
                        KERNEL_SPIN_MAX
                    } else {
                        KERNEL_SPIN_MIN
                    };
                    break;
                }
                hs::Waited::No => {}
            }
            if let Some(st) = self.reaped() {
                return Some(st);
            }
            if !ticked && started.elapsed() >= SLICE {
                hs::signal(self.pid, TICK_SIGNAL);
                ticked = true;
                ticked_at = Instant::now();
                tick_cpu = crate::host::clock::process_cpu_time_ns(self.pid).unwrap_or(0);
            } else if ticked && self.ignores_tick(tick_cpu, ticked_at) {
                // Guest code can block host signals with a forged
                // rt_sigreturn frame at the handler's own site: it would
                // never stop again and the kernel would wait for ever.
                crate::log_limited!(
                    log::Level::Warn,
                    "seccomp stub {}: ran on without stopping after the preemption tick: killed",
                    self.pid
                );
                self.kill();
                return Some(Stop::Killed(9));
            }
        }
        // DONE is in memory guest code can write: the stop may be forged
        // by guest code that is still running. Whatever the kernel does
        // next may rely on the ops having run (a frame unmapped here may
        // go to another process): wait for the op thread's own word.
        self.confirm_ops()
    }

    /// Whether guest code has run on since the tick at `at` (the stub's CPU
    /// clock read `cpu` then) longer than a stub that got it could: more
    /// than [`TICK_IGNORED_CPU`] of CPU, or [`TICK_IGNORED_WALL`] at all.
    fn ignores_tick(&self, cpu: u64, at: Instant) -> bool {
        let now = crate::host::clock::process_cpu_time_ns(self.pid).unwrap_or(cpu);
        now.saturating_sub(cpu) > TICK_IGNORED_CPU.as_nanos() as u64
            || at.elapsed() > TICK_IGNORED_WALL
    }

    /// Runs queued ops now, in passes of MAX_OPS, guest code not resumed.
    fn flush_ops(&mut self) -> Result<(), PlatformError> {
        let ops = std::mem::take(&mut self.ops);
        for chunk in ops.chunks(MAX_OPS) {
            self.send_ops(chunk, false);
            if let Some(st) = self.confirm_ops() {
                log::debug!("seccomp stub {} gone during ops: {st:?}", self.pid);
                return Err(PlatformError::StubGone);
            }
        }
        Ok(())
    }

    /// Shared-area offset of a stub address, when `len` bytes there lie in
    /// the signal stack.
    fn stack_off(addr: u64, len: usize) -> Option<usize> {
        let off = addr.checked_sub(SHM_BASE)? as usize;
        (off >= hs::OFF_ALTSTACK && off.checked_add(len)? <= hs::ALTSTACK_END).then_some(off)
    }

    /// Writes the frame the stub resumes from: registers, FP image, fs/gs.
    fn write_frame(&mut self) -> Result<(), PlatformError> {
        let fresh = self.uc_off.is_none();
        self.low_written |= fresh || self.pending_fp.is_some();
        if let Some(fp) = self.pending_fp.take() {
            let at = self.write_fp(&fp);
            frame::set_fpstate_ptr(&mut self.sc, SHM_BASE + at as u64);
            self.regs_dirty = true;
        } else if fresh {
            frame::set_fpstate_ptr(&mut self.sc, 0); // FPU to its init state
        }
        if fresh {
            frame::regs_to_sc(&self.regs, &mut self.sc);
            let has_fp = frame::fpstate_ptr(&self.sc) != 0;
            let altstack = (
                SHM_BASE + hs::OFF_ALTSTACK as u64,
                (hs::ALTSTACK_END - hs::OFF_ALTSTACK) as u64,
            );
            let uc = frame::fresh_uc(&self.sc, has_fp, altstack);
            self.shm.write(FRESH_UC, &uc);
            self.uc_off = Some(FRESH_UC);
        } else if self.regs_dirty {
            frame::regs_to_sc(&self.regs, &mut self.sc);
            let uc = self.uc_off.expect("frame");
            self.shm.write(uc + frame::UC_MCONTEXT, &self.sc);
        }
        let uc = self.uc_off.expect("frame");
        self.shm.write_u64(hs::OFF_UC, SHM_BASE + uc as u64);
        self.shm.write_u64(hs::OFF_FS, self.regs.fs_base);
        self.shm.write_u64(hs::OFF_GS, self.regs.gs_base);
        self.regs_dirty = false;
        Ok(())
    }

    /// Writes `fp` as a signal-frame XSAVE image at FP_AREA; returns it.
    fn write_fp(&self, fp: &FpRegs) -> usize {
        match self.facts.xstate {
            Some(l) => {
                let mut img = fp.to_host_image(l.frame_size, l.frame_features, l.mxcsr_mask);
                let mut with_sw =
                    FpRegs::from_bytes(std::mem::take(&mut img)).expect("xsave image");
                with_sw.set_sw_bytes(Some(FpSwBytes {
                    extended_size: l.frame_size as u32 + 4,
                    xfeatures: l.frame_features,
                    xstate_size: l.frame_size as u32,
                }));
                let bytes = with_sw.bytes();
                self.shm.write(FP_AREA, &bytes[..l.frame_size]);
                self.shm.write(
                    FP_AREA + l.frame_size,
                    &super::FP_XSTATE_MAGIC2.to_le_bytes(),
                );
            }
            None => {
                let mut b = fp.fxsave().to_vec();
                b[464..512].fill(0);
                self.shm.write(FP_AREA, &b);
            }
        }
        FP_AREA
    }

    /// Reads the stop the stub reported.
    fn read_stop(&mut self) -> Result<Stop, PlatformError> {
        let bad = |what: &str| PlatformError::UnexpectedStop(format!("seccomp stub: bad {what}"));
        let uc = Self::stack_off(self.shm.read_u64(hs::OFF_UC), frame::UC_LEN)
            .ok_or_else(|| bad("frame"))?;
        // Real frames sit above the area umlrun writes its FP image in.
        if uc < FP_AREA + FP_ROOM {
            return Err(bad("frame position"));
        }
        let info_at =
            Self::stack_off(self.shm.read_u64(hs::OFF_INFO), 32).ok_or_else(|| bad("siginfo"))?;
        let signo = self.shm.read_u64(hs::OFF_SIGNO) as i32;
        let mut sc = vec![0u8; frame::SC_LEN];
        self.shm.read(uc + frame::UC_MCONTEXT, &mut sc);
        let mut info = [0u8; 32];
        self.shm.read(info_at, &mut info);
        let mut regs = frame::regs_from_sc(&sc, &self.initial);
        regs.fs_base = self.shm.read_u64(hs::OFF_FS);
        regs.gs_base = self.shm.read_u64(hs::OFF_GS);
        regs.orig_rax = u64::MAX;
        let write = frame::fault_write(&sc);
        self.sc = sc;
        self.uc_off = Some(uc);
        let (si_signo, code, addr) = frame::siginfo(&info);
        let stop = match signo {
            SIGSYS => {
                // Like a PTRACE_SYSEMU stop: orig_rax the number, rax -ENOSYS.
                let nr = regs.rax;
                regs.orig_rax = nr;
                regs.rax = (-ENOSYS) as u64;
                Stop::Syscall {
                    nr,
                    args: regs.syscall_args(),
                }
            }
            SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP => {
                if si_signo != signo {
                    return Err(bad("siginfo signal"));
                }
                Stop::Fault(Fault {
                    addr,
                    signo,
                    code,
                    // As on ptrace, only a hint for a fault on an unmapped
                    // page (the kernel takes a refused access to a page it
                    // mapped readable as a write itself).
                    write: if signo == SIGSEGV && code == super::SEGV_MAPERR {
                        write.filter(|&w| w)
                    } else {
                        None
                    },
                })
            }
            s => Stop::Signal(s),
        };
        self.regs = regs;
        self.regs_dirty = false;
        Ok(stop)
    }

    /// Clears the guest out, as execve: every mapping outside the reserved
    /// ranges, registers and FPU state as fresh. One round trip.
    pub fn wipe(&mut self) -> Result<(), PlatformError> {
        self.check_alive()?;
        self.ops.clear();
        self.ops.extend(gap_unmaps(&self.reserved));
        self.flush_ops()?;
        self.regs = self.initial;
        self.regs_dirty = true;
        self.uc_off = None;
        self.sc = vec![0u8; frame::SC_LEN];
        self.pending_fp = None;
        Ok(())
    }

    /// Writes the op page's constants again after a settle gave the page
    /// back (the op thread reads them only while running a batch; it
    /// sleeps on CTL until then).
    fn restore_op_page(&mut self) {
        if std::mem::take(&mut self.op_page_out) {
            self.shm.write_u64(hs::OFF_EFD, self.events.fd() as u64);
            self.shm.write_u64(hs::OFF_ONE, 1);
        }
    }

    /// Gives the op thread the kernel's host fd `fd` at the same number (a
    /// disk hot-added in ubd=mmap mode: mappings of its pages name that
    /// fd), passed over the fd channel every stub holds from birth
    /// (`host::fdpass`, the op thread's end). umlrun queues `fd`
    /// (SCM_RIGHTS) and writes the message header in the shared area's
    /// first page; one op batch, guest code not resumed: recvmsg on the
    /// channel (the fd lands at the lowest free number `n` of the op
    /// thread's table, read from /proc first), dup2(n, fd), close(n)
    /// (nothing more when `n` is `fd`). Every op may fail (the batch then
    /// ends); the op thread's fd table (/proc, by the op thread's id) then
    /// shows whether `fd` is the disk. The op thread's filter allows
    /// recvmsg only on that socket, with that header and flags.
    pub fn adopt_fd(&mut self, fd: RawFd) -> Result<(), PlatformError> {
        self.restore_op_page();
        self.check_alive()?;
        const SYS_CLOSE: u64 = 3;
        const SYS_DUP2: u64 = 33;
        const SYS_RECVMSG: u64 = 47;
        if fd < 0 {
            return Err(PlatformError::Host {
                op: "adopt_fd",
                source: nix::Error::EBADF,
            });
        }
        let ch = fdpass::channel().map_err(PlatformError::host("socketpair"))?;
        let n = fdpass::lowest_free_fd(self.pid, self.op_tid)
            .map_err(PlatformError::host("read /proc/PID/task/TID/fd"))?;
        let msg = SHM_BASE + hs::OFF_MSG as u64;
        self.shm.write(hs::OFF_MSG, &fdpass::write_msghdr(msg));
        ch.send(fd)
            .map_err(PlatformError::host("sendmsg (SCM_RIGHTS)"))?;
        let may = hs::OPF_MAY_FAIL;
        let mut calls: Vec<(u64, [u64; 6], u64)> = vec![(
            SYS_RECVMSG,
            [ch.stub_end() as u64, msg, fdpass::RECV_FLAGS, 0, 0, 0],
            may,
        )];
        if n != fd {
            calls.push((SYS_DUP2, [n as u64, fd as u64, 0, 0, 0, 0], may));
            calls.push((SYS_CLOSE, [n as u64, 0, 0, 0, 0, 0], may));
        }
        debug_assert_eq!(self.unconfirmed, 0);
        self.shm.write(hs::OFF_OPS, &encode_flagged_batch(&calls));
        self.seq = self.seq.wrapping_add(1);
        self.shm.store(hs::OFF_CTL, self.seq << 1);
        self.shm.wake(hs::OFF_CTL);
        self.unconfirmed += 1;
        if self.confirm_ops().is_some() {
            return Err(PlatformError::StubGone);
        }
        if fdpass::thread_fd_is(self.pid, self.op_tid, fd) {
            Ok(())
        } else {
            Err(PlatformError::Host {
                op: "adopt_fd (the passed fd is not in place in the op thread)",
                source: nix::Error::EBADF,
            })
        }
    }

    fn recycle(&mut self) -> Result<(), PlatformError> {
        self.wipe()?;
        self.cpu_base = crate::host::clock::process_cpu_ticks(self.pid);
        self.cpu_ns_base = crate::host::clock::process_cpu_time_ns(self.pid).unwrap_or(0);
        Ok(())
    }

    fn kill(&mut self) {
        if self.alive {
            crate::host::ptrace::kill(self.pid);
            self.alive = false;
        }
    }
}

/// The stub's set-up, run in it through ptrace: map the shared area, its
/// signal stack and handlers, every signal blocked until the first resume,
/// no new privileges; then the op thread (a clone without the fd table),
/// which installs its own filter and reports ready; last the guest
/// thread closes every fd it has and installs its filter. Returns the op
/// thread's id.
fn setup(
    pt: &mut PtraceStub,
    shm: &StubShm,
    events: &OpEvents,
    spin: bool,
) -> Result<i32, PlatformError> {
    let fail = |what: &str, r: i64| {
        PlatformError::UnexpectedStop(format!("seccomp stub set-up: {what} returned {r}"))
    };
    let call =
        |pt: &mut PtraceStub, what: &str, nr: u64, args: [u64; 6]| -> Result<i64, PlatformError> {
            let r = pt.host_syscall(nr, args)?;
            if (-4095..0).contains(&r) {
                return Err(fail(what, r));
            }
            Ok(r)
        };
    const PROT_R: u64 = 1;
    const PROT_RW: u64 = 3;
    const MAP_SHARED_FIXED: u64 = 0x11;
    let fd = shm.fd() as u64;
    // The op page is read-only in the stub: only umlrun writes it
    // (through its own mapping). The filters refuse any op on the stub
    // area, so nothing in the stub can make it writable. The fd is closed
    // before guest code runs: nothing can map the area again.
    for (off, end, prot) in [
        (0, hs::OFF_OPPAGE, PROT_RW),
        (hs::OFF_OPPAGE, hs::OFF_OPPAGE_END, PROT_R),
        (hs::OFF_OPPAGE_END, SHM_LEN, PROT_RW),
    ] {
        call(
            pt,
            "mmap",
            9,
            [
                SHM_BASE + off as u64,
                (end - off) as u64,
                prot,
                MAP_SHARED_FIXED,
                fd,
                off as u64,
            ],
        )?;
    }
    call(pt, "close", 3, [fd, 0, 0, 0, 0, 0])?;
    // Scratch structures in the op-list area (rewritten before every use).
    let scratch = hs::OFF_OPS;
    let at = |off: usize| SHM_BASE + (scratch + off) as u64;
    // stack_t
    let mut ss = [0u8; 24];
    ss[0..8].copy_from_slice(&(SHM_BASE + hs::OFF_ALTSTACK as u64).to_le_bytes());
    ss[16..24].copy_from_slice(&((hs::ALTSTACK_END - hs::OFF_ALTSTACK) as u64).to_le_bytes());
    shm.write(scratch, &ss);
    call(pt, "sigaltstack", 131, [at(0), 0, 0, 0, 0, 0])?;
    // struct kernel_sigaction { handler, flags, restorer, mask }
    const SA_SIGINFO: u64 = 4;
    const SA_ONSTACK: u64 = 0x0800_0000;
    const SA_RESTORER: u64 = 0x0400_0000;
    let code = hs::stub_code();
    let mut sa = [0u8; 32];
    sa[0..8].copy_from_slice(&sc_addr(code.handler).to_le_bytes());
    sa[8..16].copy_from_slice(&(SA_SIGINFO | SA_ONSTACK | SA_RESTORER).to_le_bytes());
    sa[16..24].copy_from_slice(&sc_addr(code.restorer).to_le_bytes());
    sa[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    shm.write(scratch + 0x100, &sa);
    for sig in [
        SIGSYS,
        SIGSEGV,
        SIGBUS,
        SIGILL,
        SIGFPE,
        SIGTRAP,
        TICK_SIGNAL,
    ] {
        call(pt, "rt_sigaction", 13, [sig as u64, at(0x100), 0, 8, 0, 0])?;
    }
    // Every signal blocked until the first resume, but SIGTRAP: the int3
    // ending each injected call would find it blocked, and a blocked
    // synchronous signal is forced through with its handler reset. The op
    // thread inherits this mask and keeps it (it never traps).
    let mask = !(1u64 << (SIGTRAP - 1));
    shm.write(scratch + 0x200, &mask.to_le_bytes());
    call(pt, "rt_sigprocmask", 14, [2, at(0x200), 0, 8, 0, 0])?; // SIG_SETMASK
    const PR_SET_NO_NEW_PRIVS: u64 = 38;
    call(pt, "prctl", 157, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0])?;

    // The op thread: its filter, completion fd and the constant it writes
    // go in the op page first; it installs the filter itself and reports
    // ready on the eventfd.
    let sock = fdpass::channel()
        .map_err(PlatformError::host("socketpair"))?
        .stub_end();
    let oprog = op_thread_filter(&op_sites(events.fd(), sock));
    if oprog.len() > hs::OFF_OPS_END - hs::OFF_OPFILTER {
        return Err(fail("op thread filter size", oprog.len() as i64));
    }
    shm.write(hs::OFF_OPFILTER, &oprog);
    let mut fprog = [0u8; 16];
    fprog[0..2].copy_from_slice(&((oprog.len() / 8) as u16).to_le_bytes());
    fprog[8..16].copy_from_slice(&(SHM_BASE + hs::OFF_OPFILTER as u64).to_le_bytes());
    shm.write(hs::OFF_FPROG, &fprog);
    shm.write_u64(hs::OFF_EFD, events.fd() as u64);
    shm.write_u64(hs::OFF_ONE, 1);
    shm.store(hs::OFF_CTL, 0);
    const CLONE_VM: u64 = 0x100;
    const CLONE_SIGHAND: u64 = 0x800;
    const CLONE_THREAD: u64 = 0x1_0000;
    let tid = pt.host_syscall_at(
        sc_addr(code.clone),
        sc_addr(code.clone_trap),
        56,
        [CLONE_VM | CLONE_SIGHAND | CLONE_THREAD, 0, 0, 0, 0, 0],
    )?;
    if tid <= 0 {
        return Err(fail("clone of the op thread", tid));
    }
    let ready_by = Instant::now() + Duration::from_secs(5);
    while events.take() == 0 {
        if Instant::now() >= ready_by {
            return Err(fail("op thread start (no word in 5 s)", 0));
        }
        events.wait(Duration::from_millis(100));
    }

    // The guest thread keeps no fd at all: the guest memory file, the disk
    // images and the eventfd stay in the op thread's own table.
    const SYS_CLOSE_RANGE: u64 = 436;
    call(
        pt,
        "close_range",
        SYS_CLOSE_RANGE,
        [0, u32::MAX as u64, 0, 0, 0, 0],
    )?;
    let prog = stub_filter(&sites());
    shm.write(scratch + 0x400, &prog);
    let mut fprog = [0u8; 16];
    fprog[0..2].copy_from_slice(&((prog.len() / 8) as u16).to_le_bytes());
    fprog[8..16].copy_from_slice(&at(0x400).to_le_bytes());
    shm.write(scratch + 0x300, &fprog);
    const SECCOMP_SET_MODE_FILTER: u64 = 1;
    call(
        pt,
        "seccomp",
        317,
        [SECCOMP_SET_MODE_FILTER, 0, at(0x300), 0, 0, 0],
    )?;
    shm.write(scratch, &[0u8; 8]); // an empty op list
    shm.store(hs::OFF_SPIN, if spin { STUB_SPINS } else { 0 });
    Ok(tid as i32)
}

impl Context for SeccompStub {
    fn switch(&mut self) -> Result<Stop, PlatformError> {
        self.check_alive()?;
        while self.ops.len() > MAX_OPS {
            let rest = self.ops.split_off(MAX_OPS);
            self.flush_ops()?;
            self.ops = rest;
        }
        self.write_frame()?;
        let ops = std::mem::take(&mut self.ops);
        if let Some(dead) = self.run_guest(&ops) {
            return Ok(dead);
        }
        let stop = self.read_stop()?;
        log::trace!("stub {}: stop {stop:?}", self.pid);
        Ok(stop)
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
        if let Some(fp) = &self.pending_fp {
            return Ok(fp.clone());
        }
        let sw_of = |l: &XstateLayout| FpSwBytes {
            extended_size: l.frame_size as u32 + 4,
            xfeatures: l.frame_features,
            xstate_size: l.frame_size as u32,
        };
        let ptr = frame::fpstate_ptr(&self.sc);
        let Some(off) = Self::stack_off(ptr, 512).filter(|_| self.uc_off.is_some()) else {
            // No frame yet, or the FPU in its init state.
            let mut fp = FpRegs::initial();
            if let Some(l) = &self.facts.xstate {
                fp.set_sw_bytes(Some(sw_of(l)));
            }
            return Ok(fp);
        };
        let len = match &self.facts.xstate {
            Some(l) if Self::stack_off(ptr, l.frame_size).is_some() => l.frame_size,
            _ => 512,
        };
        let mut buf = vec![0u8; len];
        self.shm.read(off, &mut buf);
        let mut fp = FpRegs::from_bytes(buf).expect("512 or frame size");
        match &self.facts.xstate {
            Some(l) if len == l.frame_size => fp.set_sw_bytes(Some(sw_of(l))),
            _ => fp.set_sw_bytes(None),
        }
        Ok(fp)
    }

    fn set_fpregs(&mut self, fp: &FpRegs) -> Result<(), PlatformError> {
        self.check_alive()?;
        self.pending_fp = Some(fp.clone());
        Ok(())
    }

    fn fp_frame_size(&mut self) -> usize {
        self.facts.xstate.map(|l| l.frame_size).unwrap_or(0)
    }
}

impl AddressSpaceOps for SeccompStub {
    fn apply(&mut self, ops: &[MapOp]) -> Result<(), PlatformError> {
        self.check_alive()?;
        for op in ops {
            if self.reserved.iter().any(|res| op.span().overlaps(res)) {
                return Err(PlatformError::Reserved(*op));
            }
        }
        // Run by the stub on its way back to guest code (one pass).
        self.ops.extend_from_slice(ops);
        Ok(())
    }
}

impl Guest for SeccompStub {
    fn reserved(&self) -> &[Range<u64>] {
        &self.reserved
    }
    fn vdso(&self) -> Option<Range<u64>> {
        self.vdso.clone()
    }
    fn wipe(&mut self) -> Result<(), PlatformError> {
        SeccompStub::wipe(self)
    }
    fn cpu_ticks(&self) -> (u64, u64) {
        let (u, s) = crate::host::clock::process_cpu_ticks(self.pid);
        (
            u.saturating_sub(self.cpu_base.0),
            s.saturating_sub(self.cpu_base.1),
        )
    }
    fn cpu_time_ns(&self) -> u64 {
        crate::host::clock::process_cpu_time_ns(self.pid)
            .unwrap_or(0)
            .saturating_sub(self.cpu_ns_base)
    }
    fn kill(&mut self) {
        SeccompStub::kill(self)
    }
    fn adopt_fd(&mut self, fd: RawFd) -> Result<(), PlatformError> {
        SeccompStub::adopt_fd(self, fd)
    }
    /// The pages a fresh frame and an FP image were written in (below the
    /// real frames) hold nothing a stopped stub needs once it resumed from
    /// them: a stub that ever exec'd or restored FP registers kept two
    /// such pages for good. They go back; the next write faults them in.
    ///
    /// So does the op page: the op thread sleeps on its CTL word until
    /// umlrun writes a new one and wakes it (no one else can: the stub's
    /// filter lets guest code touch only the handler's two futex words),
    /// and reads the page only while running a batch; umlrun writes the
    /// page's constants again before the next ([`Self::restore_op_page`]).
    /// Only while it sleeps there (its /proc syscall line says so): right
    /// after a completion it reads CTL once more before sleeping, and a
    /// CTL punched to 0 would then look like a new command.
    fn settle(&mut self) {
        if !self.alive || self.unconfirmed != 0 {
            return;
        }
        // Asleep on CTL, not between a batch's completion and that wait.
        let asleep = || hs::thread_waits_on(self.pid, self.op_tid, SHM_BASE + hs::OFF_CTL as u64);
        if !self.op_page_out && asleep() {
            match self
                .shm
                .punch(hs::OFF_OPPAGE, hs::OFF_OPPAGE_END - hs::OFF_OPPAGE)
            {
                Ok(()) => self.op_page_out = true,
                Err(e) => log::debug!("seccomp stub {}: op page kept: {e}", self.pid),
            }
        }
        let resumed = self.uc_off.is_some_and(|u| u >= FP_AREA + FP_ROOM);
        if !self.low_written || !resumed || self.pending_fp.is_some() {
            return;
        }
        let from = FRESH_UC & !0xfff;
        match self.shm.punch(from, FP_AREA + FP_ROOM - from) {
            Ok(()) => self.low_written = false,
            Err(e) => log::debug!("seccomp stub {}: shared pages kept: {e}", self.pid),
        }
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Drop for SeccompStub {
    fn drop(&mut self) {
        self.kill();
    }
}
