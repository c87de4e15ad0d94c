//! Signals on the fake platform: sigaction, delivery to a handler and the
//! return through rt_sigreturn, masks, SIG_IGN and SIG_DFL, and a blocked
//! syscall cut short with EINTR.

use super::*;
use crate::platform::fake::Event;

const SIGUSR1: u64 = 10;
const SA_RESTORER: u64 = 0x0400_0000;
const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
/// Where the tests keep their `struct sigaction` and signal sets.
const ACT: u64 = DATA + 0x100;
const SET: u64 = DATA + 0x200;

/// Writes a `struct sigaction` (handler, flags, restorer, mask) at ACT.
fn put_sigaction(k: &mut Kernel, handler: u64, restorer: u64) {
    let mut b = Vec::new();
    for v in [handler, SA_RESTORER, restorer, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    k.write_user(1, ACT, &b).unwrap();
    k.write_user(1, SET, &(1u64 << (SIGUSR1 - 1)).to_le_bytes())
        .unwrap();
}

/// A handler (marked for the trace) returning to a restorer that calls
/// rt_sigreturn. Returns (handler, restorer) instruction indices.
fn handler(p: &mut Program) -> (usize, usize) {
    let h = p.push(Insn::Handler);
    let ret = p.push(Insn::RetTo(0));
    let r = p.here();
    p.sys(RT_SIGRETURN, &[]);
    p.set_target(ret, r);
    (h, r)
}

fn sigaction(p: &mut Program) -> usize {
    p.sys(
        RT_SIGACTION,
        &[Val::Imm(SIGUSR1), Val::Imm(ACT), Val::Imm(0), Val::Imm(8)],
    )
}

fn kill_self(p: &mut Program) -> usize {
    p.sys(GETPID, &[]);
    p.sys(KILL, &[Val::Reg(R::Rax), Val::Imm(SIGUSR1)])
}

fn handlers(trace: &Trace) -> Vec<i32> {
    trace
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Handler { sig, .. } => Some(*sig),
            _ => None,
        })
        .collect()
}

#[test]
fn a_handler_runs_and_sigreturn_resumes_after_the_kill() {
    let mut p = Program::new();
    let start = p.push(Insn::Jmp(0));
    let (h, r) = handler(&mut p);
    p.set_target(start, p.here());
    let sa = sigaction(&mut p);
    p.push(Insn::Mov(R::R13, Val::Imm(0x5eed)));
    let kl = kill_self(&mut p);
    let after = p.sys(GETPID, &[Val::Reg(R::R13)]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    put_sigaction(&mut k, Program::addr(h), Program::addr(r));
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(sa), 0);
    assert_eq!(trace.ret(kl), 0, "kill's own result survives the handler");
    assert_eq!(handlers(&trace), vec![SIGUSR1 as i32]);
    assert_eq!(trace.ret(after), 1);
    let ev = trace.events();
    let hpos = ev.iter().position(|e| matches!(e, Event::Handler { .. }));
    let kpos = ev
        .iter()
        .position(|e| matches!(e, Event::Returned { at, .. } if *at == kl));
    assert!(hpos < kpos, "the handler ran before kill returned: {ev:?}");
}

#[test]
fn a_blocked_signal_waits_for_the_unblock() {
    let mut p = Program::new();
    let start = p.push(Insn::Jmp(0));
    let (h, r) = handler(&mut p);
    p.set_target(start, p.here());
    sigaction(&mut p);
    let blk = p.sys(
        RT_SIGPROCMASK,
        &[Val::Imm(SIG_BLOCK), Val::Imm(SET), Val::Imm(0), Val::Imm(8)],
    );
    kill_self(&mut p);
    let mid = p.stop();
    let unblk = p.sys(
        RT_SIGPROCMASK,
        &[
            Val::Imm(SIG_UNBLOCK),
            Val::Imm(SET),
            Val::Imm(0),
            Val::Imm(8),
        ],
    );
    p.exit(0);
    let (mut k, trace) = boot(p);
    put_sigaction(&mut k, Program::addr(h), Program::addr(r));
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    assert_eq!(trace.ret(blk), 0);
    assert!(
        handlers(&trace).is_empty(),
        "a blocked signal was delivered"
    );
    assert_eq!(k.task(1).unwrap().pending.len(), 1);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(mid), 0);
    assert_eq!(handlers(&trace), vec![SIGUSR1 as i32]);
    assert_eq!(trace.ret(unblk), 0);
}

#[test]
fn ignored_signals_vanish_and_default_ones_kill() {
    let mut p = Program::new();
    let ign = p.sys(
        RT_SIGACTION,
        &[Val::Imm(SIGUSR1), Val::Imm(ACT), Val::Imm(0), Val::Imm(8)],
    );
    let kl = kill_self(&mut p);
    let (_, j) = p.fork();
    let w = p.sys(WAIT4, &[Val::Reg(R::R12), Val::Imm(DATA), Val::Imm(0)]);
    p.stop();
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    // The child restores SIG_DFL and kills itself.
    p.sys(
        RT_SIGACTION,
        &[
            Val::Imm(SIGUSR1),
            Val::Imm(ACT + 64),
            Val::Imm(0),
            Val::Imm(8),
        ],
    );
    kill_self(&mut p);
    let survived = p.sys(GETPID, &[]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    put_sigaction(&mut k, 1 /* SIG_IGN */, 0);
    k.write_user(1, ACT + 64, &[0u8; 32]).unwrap(); // SIG_DFL
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    assert_eq!(trace.ret(ign), 0);
    assert_eq!(trace.returns(kl).len(), 1, "init did not survive SIG_IGN");
    assert!(trace.ret(w) > 1);
    assert_eq!(peek_u32(&mut k, 1, DATA), SIGUSR1 as u32, "wait status");
    assert!(trace.returns(survived).is_empty());
}

#[test]
fn a_signal_cuts_a_pause_short_with_eintr() {
    let mut p = Program::new();
    let start = p.push(Insn::Jmp(0));
    let (h, r) = handler(&mut p);
    p.set_target(start, p.here());
    sigaction(&mut p);
    let (_, j) = p.fork();
    let ps = p.sys(PAUSE, &[]);
    p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.sleep_ms(DATA + 64);
    p.sys(GETPPID, &[]);
    p.sys(KILL, &[Val::Reg(R::Rax), Val::Imm(SIGUSR1)]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    put_sigaction(&mut k, Program::addr(h), Program::addr(r));
    put_timespec(&mut k, 1, DATA + 64, 20);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(ps), EINTR);
    assert_eq!(handlers(&trace), vec![SIGUSR1 as i32]);
}
