//! Unit tests of the kernel on the fake platform (`platform::fake`): a
//! real `Kernel` (tmpfs root, a console with no host end, 32 MiB of
//! physmem) whose guests are scripted [`Program`]s, so the scheduler,
//! signals, process life and file syscalls are tested without a host
//! process.
//!
//! | file | tests |
//! |---|---|
//! | `mod.rs` | the harness: [`boot`], the syscall numbers, [`Asm`] helpers |
//! | `sched.rs` | preemption of a spinning guest, yield, blocking and waking |
//! | `rt.rs` | the real-time classes: wake-up and priority pre-emption, the throttle |
//! | `signals.rs` | sigaction, delivery to handlers, masks, SIG_IGN/SIG_DFL, EINTR |
//! | `process.rs` | fork, exit, wait4, zombies, reparenting to init |
//! | `fs.rs` | open/read/write/lseek/close/unlink on tmpfs |
//! | `oom.rs` | the OOM killer: badness, init exempt, oom_score_adj, the log line |
//! | `pressure.rs` | the OOM path at the host budget's cap: room made under the cap, swap before image pages |
//! | `sockpp.rs` | an AF_UNIX ping-pong between two processes; its cost beside getppid's (ignored, for callgrind) |
//! | `contain.rs` | a panicking syscall handler kills its caller, not the instance |
//!
//! A program stops the kernel where the test wants to look with
//! [`Asm::stop`] (reboot(POWER_OFF): `Kernel::run` returns with every task
//! as it is); the test inspects, then may clear `shutdown` and run on.

mod contain;
mod fs;
mod oom;
mod pressure;
mod process;
mod rt;
mod sched;
mod signals;
mod sockpp;

use std::sync::Arc;

use super::console::Console;
use super::core::{Kernel, KernelConfig, Shutdown};
use super::task::{Pid, TaskState};
use crate::host::console::HostConsole;
use crate::host::event_loop::EventLoop;
use crate::mm::{Backing, GuestVirt, Vma, PROT_READ, PROT_WRITE};
use crate::physmem::PhysMem;
use crate::platform::fake::{FakePlatform, Program, Trace, Val, CODE_BASE, R};
use crate::platform::Regs;
use crate::vfs::{Cred, MountTable};

pub use crate::platform::fake::Insn;

/// The initial stack (grows down from here) and a data area for the
/// tests' strings, structs and buffers; both anonymous read-write.
pub const STACK_TOP: u64 = 0x7000_0000;
pub const DATA: u64 = 0x2000_0000;
pub const DATA_LEN: u64 = 1 << 20;

pub const READ: u64 = 0;
pub const WRITE: u64 = 1;
pub const OPEN: u64 = 2;
pub const CLOSE: u64 = 3;
pub const LSEEK: u64 = 8;
pub const RT_SIGACTION: u64 = 13;
pub const RT_SIGPROCMASK: u64 = 14;
pub const RT_SIGRETURN: u64 = 15;
pub const PIPE: u64 = 22;
pub const SCHED_YIELD: u64 = 24;
pub const PAUSE: u64 = 34;
pub const NANOSLEEP: u64 = 35;
pub const GETPID: u64 = 39;
pub const FORK: u64 = 57;
pub const WAIT4: u64 = 61;
pub const KILL: u64 = 62;
pub const UNLINK: u64 = 87;
pub const GETPPID: u64 = 110;
pub const REBOOT: u64 = 169;
pub const EXIT_GROUP: u64 = 231;

pub const EBADF: i64 = -9;
pub const ECHILD: i64 = -10;
pub const ENOENT: i64 = -2;
pub const EINTR: i64 = -4;

/// A kernel on the fake platform running `program` as pid 1 from
/// instruction 0; the trace shows what its guests saw.
pub fn boot(program: Program) -> (Kernel, Trace) {
    let physmem = Arc::new(PhysMem::new(32 << 20).expect("physmem"));
    let platform = FakePlatform::new(program);
    let trace = platform.trace();
    let mut k = Kernel::new(
        physmem,
        MountTable::new(),
        Console::new(HostConsole::new(None, None)),
        EventLoop::new().expect("event loop"),
        KernelConfig {
            hostname: b"fake".to_vec(),
            cpu: None,
            keep_fds: Vec::new(),
            pagecache_max_pages: None,
            mem_bytes: 32 << 20,
            disks: Vec::new(),
            root_disk: None,
            ubd_mode: Default::default(),
            cow_backing: Default::default(),
            limits: Default::default(),
            cmdline: b"init=/init".to_vec(),
            oom_wait: Default::default(),
        },
        Box::new(platform),
    );
    let root = k.new_tmpfs(0o755);
    k.mounts
        .mount(root, None, b"/".to_vec(), "tmpfs".into(), false)
        .expect("root");
    let pid = k.create_init_task().expect("init");
    let Kernel { mms, frames, .. } = &mut k;
    let mm = mms.values_mut().next().expect("init's mm");
    for (start, end, label) in [
        (STACK_TOP - (1 << 20), STACK_TOP, Some("[stack]")),
        (DATA, DATA + DATA_LEN, None),
    ] {
        mm.aspace.insert_vma(
            Vma {
                start: GuestVirt(start),
                end: GuestVirt(end),
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                may_write: true,
                backing: Backing::Anon,
                label,
                lock: crate::mm::vma::Lock::None,
                write_ref: None,
            },
            frames,
        );
    }
    k.task_mut(pid).expect("init").regs = Regs::new_user(CODE_BASE, STACK_TOP - 64);
    k.runq.push_back(pid);
    (k, trace)
}

/// Runs until the guests stop the kernel ([`Asm::stop`]) or init ends.
/// (A syscall's result shows in the trace once its guest resumes: the
/// stop's own only after the next `run`.)
pub fn run(k: &mut Kernel) -> Shutdown {
    k.shutdown = None;
    // The task that stopped the kernel was not queued again.
    let runnable: Vec<Pid> = k
        .tasks
        .values()
        .filter(|t| t.state == TaskState::Runnable)
        .map(|t| t.tid)
        .collect();
    for t in runnable {
        k.make_runnable(t);
    }
    k.run()
}

/// The bytes of tmpfs file `path` (the test's view of what guests wrote).
pub fn file_bytes(k: &Kernel, path: &[u8]) -> Option<Vec<u8>> {
    let r = k
        .mounts
        .resolve(b"/", b"/", path, true, &Cred::root())
        .ok()?;
    let fs = k.mounts.fs(r.node.mnt).ok()?;
    let mut b = vec![0u8; 4096];
    let n = fs.read(r.node.ino, 0, &mut b).ok()?;
    b.truncate(n);
    Some(b)
}

/// Program-building shorthands.
pub trait Asm {
    /// Stops the kernel (`Kernel::run` returns PowerOff).
    fn stop(&mut self) -> usize;
    fn exit(&mut self, code: u64) -> usize;
    /// A fork whose child jumps to the returned fixup's target: fill it
    /// with `set_target(jz, child_label)`. Returns (the fork syscall, the
    /// jump); the parent goes on after the jump with the pid in r12.
    fn fork(&mut self) -> (usize, usize);
    /// nanosleep for `ms` milliseconds, its timespec at `at`.
    fn sleep_ms(&mut self, at: u64) -> usize;
}

impl Asm for Program {
    fn stop(&mut self) -> usize {
        self.sys(
            REBOOT,
            &[
                Val::Imm(0xfee1_dead),
                Val::Imm(672_274_793),
                Val::Imm(0x4321_fedc),
            ],
        )
    }

    fn exit(&mut self, code: u64) -> usize {
        self.sys(EXIT_GROUP, &[Val::Imm(code)])
    }

    fn fork(&mut self) -> (usize, usize) {
        let f = self.sys(FORK, &[]);
        let j = self.push(Insn::Jz(0));
        self.push(Insn::Mov(R::R12, Val::Reg(R::Rax)));
        (f, j)
    }

    fn sleep_ms(&mut self, at: u64) -> usize {
        self.sys(NANOSLEEP, &[Val::Imm(at), Val::Imm(0)])
    }
}

/// Writes a timespec of `ms` milliseconds at `addr` in `pid`'s memory.
pub fn put_timespec(k: &mut Kernel, pid: Pid, addr: u64, ms: u64) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ms / 1000).to_le_bytes());
    b[8..].copy_from_slice(&((ms % 1000) * 1_000_000).to_le_bytes());
    k.write_user(pid, addr, &b).expect("timespec");
}

/// `pid`'s 32-bit word at `addr`.
pub fn peek_u32(k: &mut Kernel, pid: Pid, addr: u64) -> u32 {
    k.read_u32(pid, addr).expect("peek")
}

#[test]
fn a_kernel_boots_and_init_exits_with_its_code() {
    let mut p = Program::new();
    let g = p.sys(GETPID, &[]);
    let pp = p.sys(GETPPID, &[]);
    p.exit(3);
    let (mut k, trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::InitDied(3 << 8));
    assert_eq!(trace.ret(g), 1);
    assert_eq!(trace.ret(pp), 0);
    assert!(k.mms.is_empty(), "init's address space outlived it");
}

#[test]
fn a_stop_leaves_init_inspectable_and_running_on_works() {
    let mut p = Program::new();
    p.push(Insn::Touch {
        addr: DATA + 8,
        write: true,
    });
    let s = p.stop();
    let g = p.sys(GETPID, &[]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    k.write_user(1, DATA, b"guest data").unwrap();
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    // A result shows in the trace when the guest resumes after it.
    assert!(trace.returns(s).is_empty());
    assert!(trace.returns(g).is_empty());
    assert_eq!(k.read_user_vec(1, DATA, 10).unwrap(), b"guest data");
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(s), 0);
    assert_eq!(trace.ret(g), 1);
}
