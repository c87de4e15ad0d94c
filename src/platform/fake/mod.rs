//! A fake platform for unit tests: guests are [`Program`]s interpreted in
//! this process, so a `Kernel` can be built, and its syscalls, signals,
//! forks and waits driven, without a host process or ptrace.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`FakePlatform`], [`FakeGuest`] (registers, host mappings as a page table) and the [`Trace`] |
//! | `program.rs` | the instructions and [`Program`] builder |
//!
//! Every guest runs the same program (as every process of a real system
//! may run the same binary): fork copies registers, so the child goes on
//! after its `clone` with rax 0. Guest memory is the kernel's own (physmem
//! frames, written by the kernel's copy-out); the fake keeps only what the
//! kernel mapped where ([`MapOp`]s), to fault [`Insn::Touch`]es as the host
//! MMU would.
//!
//! What the guests did is in the [`Trace`]: each syscall result as the
//! guest sees it when it resumes after the `syscall` instruction, and each
//! signal handler entered (an [`Insn::Handler`] run).

pub mod program;

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

pub use program::{Insn, Program, Val, CODE_BASE, R};

use super::{
    AddressSpaceOps, Context, Fault, FpRegs, Guest, MapOp, Platform, PlatformError, Prot, Regs,
    Stop, SEGV_ACCERR, SEGV_MAPERR, SIGSEGV,
};

use crate::abi::PAGE;
/// Instructions a guest runs without a stop before it is "preempted" (a
/// host tick signal stop, as the ptrace platform's ticker would give): a
/// spinning program does not hang the kernel.
const SLICE_INSNS: u32 = 1000;
/// The signal the fake's preemption stop reports (SIGVTALRM, the ticker's).
pub const TICK: i32 = 26;
const ENOSYS: u64 = (-38i64) as u64;

/// Something a guest did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The syscall at instruction `at` returned `ret` to guest `guest`.
    Returned {
        guest: u64,
        at: usize,
        nr: u64,
        ret: i64,
    },
    /// Guest `guest` entered the signal handler at instruction `at` for
    /// signal `sig`.
    Handler { guest: u64, at: usize, sig: i32 },
}

/// What the guests of one platform did, in order; shared with the test.
#[derive(Clone, Default)]
pub struct Trace(Rc<RefCell<Vec<Event>>>);

impl Trace {
    pub fn events(&self) -> Vec<Event> {
        self.0.borrow().clone()
    }

    /// Results of the syscall at instruction `at`, in order, by guest.
    pub fn returns(&self, at: usize) -> Vec<(u64, i64)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| match *e {
                Event::Returned {
                    guest, at: a, ret, ..
                } if a == at => Some((guest, ret)),
                _ => None,
            })
            .collect()
    }

    /// The one result of the syscall at `at` (panics unless exactly one).
    pub fn ret(&self, at: usize) -> i64 {
        let r = self.returns(at);
        assert_eq!(r.len(), 1, "syscall at {at}: results {r:?}");
        r[0].1
    }

    fn push(&self, e: Event) {
        self.0.borrow_mut().push(e);
    }
}

/// The fake platform: hands out [`FakeGuest`]s running `program`.
pub struct FakePlatform {
    program: Rc<Program>,
    trace: Trace,
    next_id: u64,
    /// Guests handed out and not yet retired.
    pub live: Rc<RefCell<u64>>,
    /// Switches of all guests so far, and the count at the last idle turn.
    switches: Rc<std::cell::Cell<u64>>,
    switches_seen: u64,
    idle_turns: u32,
    /// The kernel went idle this many times in a row with no guest run in
    /// between (each up to half a second): a test that waits for what
    /// never comes fails instead of hanging.
    pub max_idle_turns: u32,
    shut_down: bool,
}

impl FakePlatform {
    pub fn new(program: Program) -> FakePlatform {
        FakePlatform {
            program: Rc::new(program),
            trace: Trace::default(),
            next_id: 1,
            live: Rc::new(RefCell::new(0)),
            switches: Rc::default(),
            switches_seen: 0,
            idle_turns: 0,
            max_idle_turns: 20,
            shut_down: false,
        }
    }

    pub fn trace(&self) -> Trace {
        self.trace.clone()
    }
}

impl Platform for FakePlatform {
    fn new_guest(&mut self) -> Result<Box<dyn Guest>, PlatformError> {
        if self.shut_down {
            return Err(PlatformError::StubGone);
        }
        let id = self.next_id;
        self.next_id += 1;
        *self.live.borrow_mut() += 1;
        Ok(Box::new(FakeGuest {
            id,
            program: self.program.clone(),
            trace: self.trace.clone(),
            switches: self.switches.clone(),
            regs: Regs::new_user(0, 0),
            fp: FpRegs::initial(),
            pages: BTreeMap::new(),
            alive: true,
        }))
    }

    fn retire(&mut self, guest: Box<dyn Guest>) {
        if guest.into_any().downcast::<FakeGuest>().is_ok() {
            *self.live.borrow_mut() -= 1;
        }
    }

    fn idle(&mut self, _settled: bool) {
        let now = self.switches.get();
        if now != self.switches_seen {
            self.switches_seen = now;
            self.idle_turns = 0;
        }
        self.idle_turns += 1;
        assert!(
            self.idle_turns <= self.max_idle_turns,
            "the kernel stayed idle for {} turns: a guest waits for what never comes; \
             the guests did {:?}",
            self.idle_turns,
            self.trace.events()
        );
    }

    fn share_fd(&mut self, _fd: std::os::fd::RawFd) {}

    fn unshare_fd(&mut self, _fd: std::os::fd::RawFd) {}

    fn shut_down(&mut self) {
        self.shut_down = true;
    }
}

/// One fake guest process.
pub struct FakeGuest {
    id: u64,
    program: Rc<Program>,
    trace: Trace,
    switches: Rc<std::cell::Cell<u64>>,
    regs: Regs,
    fp: FpRegs,
    /// The host mappings the kernel made, by page.
    pages: BTreeMap<u64, Prot>,
    alive: bool,
}

impl FakeGuest {
    fn reg(&mut self, r: R) -> &mut u64 {
        match r {
            R::Rax => &mut self.regs.rax,
            R::R12 => &mut self.regs.r12,
            R::R13 => &mut self.regs.r13,
            R::R14 => &mut self.regs.r14,
            R::R15 => &mut self.regs.r15,
        }
    }

    fn val(&mut self, v: Val) -> u64 {
        match v {
            Val::Imm(x) => x,
            Val::Reg(r) => *self.reg(r),
        }
    }

    /// Notes what the guest sees as it resumes: a syscall's result (rip
    /// right after a `syscall`) or a signal handler's entry.
    fn observe(&self) {
        let Some(i) = self.program.index(self.regs.rip) else {
            return;
        };
        if i > 0 && self.program.insns[i - 1] == Insn::Syscall {
            self.trace.push(Event::Returned {
                guest: self.id,
                at: i - 1,
                nr: self.regs.orig_rax,
                ret: self.regs.rax as i64,
            });
        }
    }

    fn page_fault(&self, addr: u64, write: bool) -> Option<Fault> {
        let code = match self.pages.get(&(addr & !(PAGE - 1))) {
            None => SEGV_MAPERR,
            Some(p) if (write && !p.write) || (!write && !p.read) => SEGV_ACCERR,
            Some(_) => return None,
        };
        Some(Fault {
            addr,
            signo: SIGSEGV,
            code,
            write: Some(write),
        })
    }
}

impl AddressSpaceOps for FakeGuest {
    fn apply(&mut self, ops: &[MapOp]) -> Result<(), PlatformError> {
        if !self.alive {
            return Err(PlatformError::StubGone);
        }
        for op in ops {
            match *op {
                MapOp::Map { span, prot, .. } => {
                    let r = span.range();
                    if span.len() / PAGE > 1 << 20 {
                        return Err(PlatformError::UnexpectedStop("map too big".into()));
                    }
                    for p in r.step_by(PAGE as usize) {
                        self.pages.insert(p, prot);
                    }
                }
                MapOp::Unmap { span } => {
                    let r = span.range();
                    let gone: Vec<u64> = self.pages.range(r).map(|(k, _)| *k).collect();
                    for p in gone {
                        self.pages.remove(&p);
                    }
                }
                MapOp::Protect { span, prot } => {
                    for (_, p) in self.pages.range_mut(span.range()) {
                        *p = prot;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Context for FakeGuest {
    fn switch(&mut self) -> Result<Stop, PlatformError> {
        if !self.alive {
            return Err(PlatformError::StubGone);
        }
        self.switches.set(self.switches.get() + 1);
        self.observe();
        for _ in 0..SLICE_INSNS {
            let Some(i) = self.program.index(self.regs.rip) else {
                // Off the program: as executing unmapped memory.
                return Ok(Stop::Fault(Fault {
                    addr: self.regs.rip,
                    signo: SIGSEGV,
                    code: SEGV_MAPERR,
                    write: None,
                }));
            };
            let next = Program::addr(i + 1);
            match self.program.insns[i] {
                Insn::Load(nr, args) => {
                    let a = args.map(|v| self.val(v));
                    let r = &mut self.regs;
                    r.rax = nr;
                    (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (a[0], a[1], a[2], a[3], a[4], a[5]);
                }
                Insn::Syscall => {
                    let r = &mut self.regs;
                    r.orig_rax = r.rax;
                    r.rax = ENOSYS;
                    r.rip = next;
                    return Ok(Stop::Syscall {
                        nr: r.orig_rax,
                        args: r.syscall_args(),
                    });
                }
                Insn::Mov(dst, v) => {
                    let x = self.val(v);
                    *self.reg(dst) = x;
                }
                Insn::Jz(t) if self.regs.rax == 0 => {
                    self.regs.rip = Program::addr(t);
                    continue;
                }
                Insn::Jneg(t) if (self.regs.rax as i64) < 0 => {
                    self.regs.rip = Program::addr(t);
                    continue;
                }
                Insn::Jmp(t) => {
                    self.regs.rip = Program::addr(t);
                    continue;
                }
                Insn::Jz(_) | Insn::Jneg(_) => {}
                Insn::Touch { addr, write } => {
                    if let Some(f) = self.page_fault(addr, write) {
                        return Ok(Stop::Fault(f));
                    }
                }
                Insn::Handler => self.trace.push(Event::Handler {
                    guest: self.id,
                    at: i,
                    sig: self.regs.rdi as i32,
                }),
                Insn::RetTo(t) => {
                    self.regs.rsp = self.regs.rsp.wrapping_add(8);
                    self.regs.rip = Program::addr(t);
                    continue;
                }
            }
            self.regs.rip = next;
        }
        Ok(Stop::Signal(TICK))
    }

    fn regs(&self) -> &Regs {
        &self.regs
    }

    fn regs_mut(&mut self) -> &mut Regs {
        &mut self.regs
    }

    fn fpregs(&mut self) -> Result<FpRegs, PlatformError> {
        Ok(self.fp.clone())
    }

    fn set_fpregs(&mut self, fp: &FpRegs) -> Result<(), PlatformError> {
        self.fp = fp.clone();
        Ok(())
    }

    fn fp_frame_size(&mut self) -> usize {
        0
    }
}

impl Guest for FakeGuest {
    fn reserved(&self) -> &[Range<u64>] {
        &[]
    }
    fn vdso(&self) -> Option<Range<u64>> {
        None
    }
    fn adopt_fd(&mut self, _fd: std::os::fd::RawFd) -> Result<(), PlatformError> {
        Ok(()) // in process: every fd is there already
    }
    fn wipe(&mut self) -> Result<(), PlatformError> {
        self.pages.clear();
        self.regs = Regs::new_user(0, 0);
        self.fp = FpRegs::initial();
        Ok(())
    }
    fn cpu_ticks(&self) -> (u64, u64) {
        (0, 0)
    }
    fn cpu_time_ns(&self) -> u64 {
        0
    }
    fn kill(&mut self) {
        self.alive = false;
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_fault_until_mapped_and_syscalls_stop() {
        let mut p = Program::new();
        p.push(Insn::Touch {
            addr: 0x5000_0010,
            write: true,
        });
        p.sys(39, &[Val::Imm(7)]);
        let mut plat = FakePlatform::new(p);
        let trace = plat.trace();
        let mut g = plat.new_guest().unwrap();
        g.regs_mut().rip = CODE_BASE;
        let Stop::Fault(f) = g.switch().unwrap() else {
            panic!("no fault")
        };
        assert_eq!(
            (f.addr, f.code, f.write),
            (0x5000_0010, SEGV_MAPERR, Some(true))
        );
        let span = crate::platform::PageSpan::page(crate::mm::GuestVirt(0x5000_0000)).unwrap();
        g.map(span, Prot::R, -1, crate::platform::HostOffset::ZERO)
            .unwrap();
        let Stop::Fault(f) = g.switch().unwrap() else {
            panic!("no fault")
        };
        assert_eq!(f.code, SEGV_ACCERR);
        g.protect(span, Prot::RW).unwrap();
        assert_eq!(
            g.switch().unwrap(),
            Stop::Syscall {
                nr: 39,
                args: [7, 0, 0, 0, 0, 0]
            }
        );
        g.regs_mut().rax = 42;
        g.kill();
        assert!(g.switch().is_err());
        assert!(trace.events().is_empty());
        plat.retire(g);
        assert_eq!(*plat.live.borrow(), 0);
        // A spinning guest is preempted.
        let mut p = Program::new();
        p.push(Insn::Jmp(0));
        let mut plat = FakePlatform::new(p);
        let mut g = plat.new_guest().unwrap();
        g.regs_mut().rip = CODE_BASE;
        assert_eq!(g.switch().unwrap(), Stop::Signal(TICK));
    }
}
