//! The real-time classes on the fake platform (`kernel/rt.rs`): a woken
//! FIFO task pre-empts a normal writer before its write returns, raising
//! a queued task's priority runs it before sched_setparam returns, and a
//! spinning FIFO task holds a normal one off until the throttle lets it
//! run.

use super::*;
use crate::kernel::schedattr::{SCHED_FIFO, SCHED_OTHER};
use crate::platform::fake::Event;

const SCHED_SETPARAM: u64 = 142;
const SCHED_SETSCHEDULER: u64 = 144;
const FDS: u64 = DATA + 0x200;
/// A struct sched_param holding priority 10, and one holding 30.
const PARAM10: u64 = DATA + 0x300;
const PARAM30: u64 = DATA + 0x308;

/// The order in which the syscalls at `ats` returned (their positions).
fn order(trace: &crate::platform::fake::Trace, ats: &[usize]) -> Vec<usize> {
    trace
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Returned { at, .. } if ats.contains(at) => Some(*at),
            _ => None,
        })
        .collect()
}

fn params(k: &mut Kernel) {
    k.write_user(1, PARAM10, &10u32.to_le_bytes()).unwrap();
    k.write_user(1, PARAM30, &30u32.to_le_bytes()).unwrap();
}

/// Sets r13/r14 of every task to the pipe's fds (read at the stop).
fn give_fds(k: &mut Kernel) {
    let (rfd, wfd) = (peek_u32(k, 1, FDS), peek_u32(k, 1, FDS + 4));
    for t in k.tasks.keys().copied().collect::<Vec<_>>() {
        let mut r = k.regs(t);
        (r.r13, r.r14) = (rfd as u64, wfd as u64);
        k.set_regs(t, r);
    }
}

#[test]
fn a_woken_fifo_reader_pre_empts_a_normal_writer() {
    let mut p = Program::new();
    p.sys(PIPE, &[Val::Imm(FDS)]);
    let (_, j) = p.fork();
    p.stop(); // the test hands out the fds
    p.sleep_ms(DATA + 64); // the child blocks on the pipe meanwhile
    let wr = p.sys(
        WRITE,
        &[Val::Reg(R::R14), Val::Imm(DATA + 0x80), Val::Imm(1)],
    );
    let after = p.sys(GETPID, &[]);
    p.sys(WAIT4, &[Val::Reg(R::R12), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    let set = p.sys(
        SCHED_SETSCHEDULER,
        &[Val::Imm(0), Val::Imm(SCHED_FIFO as u64), Val::Imm(PARAM10)],
    );
    let rd = p.sys(
        READ,
        &[Val::Reg(R::R13), Val::Imm(DATA + 0x100), Val::Imm(8)],
    );
    let seen = p.sys(GETPID, &[]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    params(&mut k);
    put_timespec(&mut k, 1, DATA + 64, 20);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    give_fds(&mut k);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(set), 0);
    assert_eq!(trace.ret(rd), 1);
    // The reader ran (read returned, then its getpid) before the
    // writer's write returned.
    assert_eq!(order(&trace, &[wr, after, rd, seen]), [rd, seen, wr, after]);
}

#[test]
fn raising_a_queued_task_runs_it_before_the_call_returns() {
    let mut p = Program::new();
    let (_, j) = p.fork();
    // The parent (FIFO 20) lowers the child to 10, then raises it to 30.
    let low = p.sys(
        SCHED_SETSCHEDULER,
        &[
            Val::Reg(R::R12),
            Val::Imm(SCHED_FIFO as u64),
            Val::Imm(PARAM10),
        ],
    );
    let mid = p.sys(GETPID, &[]);
    let high = p.sys(SCHED_SETPARAM, &[Val::Reg(R::R12), Val::Imm(PARAM30)]);
    p.sys(WAIT4, &[Val::Reg(R::R12), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    let ran = p.sys(GETPID, &[]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    params(&mut k);
    k.task_mut(1).unwrap().sched.policy = SCHED_FIFO;
    k.task_mut(1).unwrap().sched.rt_priority = 20;
    k.rt.ever_rt = true;
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(low), 0);
    assert_eq!(trace.ret(high), 0);
    // The child (queued since the fork, never run) ran first when
    // raised above the parent, not when lowered.
    assert_eq!(order(&trace, &[low, mid, high, ran]), [low, mid, ran, high]);
}

#[test]
fn a_spinning_fifo_task_lets_a_normal_one_run_only_when_throttled() {
    let mut p = Program::new();
    let (_, j) = p.fork();
    // Both normal: the yield hands over to the child, which makes itself
    // FIFO and computes forever.
    p.sys(SCHED_YIELD, &[]);
    let after = p.sys(GETPID, &[]);
    p.sys(KILL, &[Val::Reg(R::R12), Val::Imm(9)]);
    p.sys(WAIT4, &[Val::Reg(R::R12), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    let set = p.sys(
        SCHED_SETSCHEDULER,
        &[Val::Imm(0), Val::Imm(SCHED_FIFO as u64), Val::Imm(PARAM10)],
    );
    // (Not straight after the syscall: each resume there would count as
    // its return in the trace.)
    p.push(Insn::Mov(R::R15, Val::Imm(0)));
    let spin = p.here();
    p.push(Insn::Jmp(spin));
    let (mut k, trace) = boot(p);
    params(&mut k);
    assert_eq!(k.task(1).unwrap().sched.policy, SCHED_OTHER);
    // A short period keeps the test quick: 30 ms of each 100.
    k.rt.bandwidth.runtime_ns = Some(30_000_000);
    k.rt.bandwidth.period_ns = 100_000_000;
    let start = std::time::Instant::now();
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(set), 0);
    assert_eq!(trace.returns(after).len(), 1);
    assert_eq!(order(&trace, &[set, after]), [set, after]);
    // Init's getpid came only once the FIFO child had used its runtime.
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(30),
        "the normal task ran before the throttle: {:?}",
        start.elapsed()
    );
}
