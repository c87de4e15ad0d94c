//! The scheduler on the fake platform: a guest that never makes a syscall
//! is preempted, sched_yield alternates, a blocked reader wakes when its
//! pipe gets data.

use super::*;

#[test]
fn a_spinning_guest_does_not_starve_the_others() {
    // (The parent yields rather than sleeps: a sleeper next to a spinning
    // task is the scheduler's deadline check, owned by the event-loop
    // work; this test is about preemption.)
    let mut p = Program::new();
    let (_, j) = p.fork();
    p.sys(SCHED_YIELD, &[]);
    let g = p.sys(GETPID, &[]);
    let kl = p.sys(KILL, &[Val::Reg(R::R12), Val::Imm(9)]);
    let w = p.sys(WAIT4, &[Val::Reg(R::R12), Val::Imm(DATA), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.push(Insn::Jmp(child)); // computes forever
    let (mut k, trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(g), 1);
    assert_eq!(trace.ret(kl), 0);
    assert!(trace.ret(w) > 1);
}

#[test]
fn yielding_processes_take_turns() {
    let mut p = Program::new();
    let (_, j) = p.fork();
    let child = p.here();
    p.set_target(j, child);
    // Parent and child run the same three yields.
    let ys: Vec<usize> = (0..3).map(|_| p.sys(SCHED_YIELD, &[])).collect();
    p.exit(0);
    let (mut k, trace) = boot(p);
    run(&mut k);
    // Each yield hands over: the two guests' results interleave.
    let order: Vec<u64> = trace
        .events()
        .iter()
        .filter_map(|e| match e {
            crate::platform::fake::Event::Returned { guest, at, .. } if ys.contains(at) => {
                Some(*guest)
            }
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 5, "{order:?}"); // init's last yield may be cut by its exit
    assert!(
        order.windows(2).all(|w| w[0] != w[1]),
        "yields did not alternate: {order:?}"
    );
}

#[test]
fn a_reader_blocked_on_an_empty_pipe_wakes_when_data_comes() {
    const FDS: u64 = DATA + 0x200;
    let mut p = Program::new();
    let pi = p.sys(PIPE, &[Val::Imm(FDS)]);
    let (_, j) = p.fork();
    let stop = p.stop(); // the test reads the fds here
    let rd = p.sys(
        READ,
        &[Val::Reg(R::R13), Val::Imm(DATA + 0x100), Val::Imm(64)],
    );
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.sleep_ms(DATA + 64);
    let wr = p.sys(
        WRITE,
        &[Val::Reg(R::R14), Val::Imm(DATA + 0x80), Val::Imm(5)],
    );
    p.exit(0);
    let (mut k, trace) = boot(p);
    put_timespec(&mut k, 1, DATA + 64, 20);
    k.write_user(1, DATA + 0x80, b"hello").unwrap();
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    assert_eq!(trace.ret(pi), 0);
    let (rfd, wfd) = (peek_u32(&mut k, 1, FDS), peek_u32(&mut k, 1, FDS + 4));
    // Both processes read their fd numbers from registers: set them.
    for t in k.tasks.keys().copied().collect::<Vec<_>>() {
        let mut r = k.regs(t);
        (r.r13, r.r14) = (rfd as u64, wfd as u64);
        k.set_regs(t, r);
    }
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.returns(stop).len(), 1);
    assert_eq!(trace.ret(wr), 5);
    assert_eq!(trace.ret(rd), 5);
    assert_eq!(
        k.read_user_vec(1, DATA + 0x100, 5).ok(),
        None,
        "init is gone"
    );
}
