//! Panic containment: a syscall handler that panics kills its caller
//! (SIGKILL), not the instance; the others go on.

use super::*;
use crate::syscalls::run_contained;

#[test]
fn a_panicking_handler_kills_only_its_caller() {
    let mut p = Program::new();
    let (f, j) = p.fork();
    p.stop();
    let w = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(DATA), Val::Imm(0)]);
    p.stop();
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.sys(PAUSE, &[]);
    p.exit(7);
    let (mut k, trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    let child_pid = trace
        .returns(f)
        .iter()
        .find(|r| r.1 != 0)
        .expect("fork returned in the parent")
        .1 as Pid;
    let out = run_contained(&mut k, child_pid, 999, "boom", [0; 6], |_, _, _| {
        panic!("a kernel bug")
    });
    assert_eq!(out, crate::syscalls::Outcome::NoReturn);
    assert_eq!(k.counters.contained_panics, 1);
    k.shutdown = None;
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    assert_eq!(trace.ret(w), child_pid as i64);
    // Killed by SIGKILL.
    assert_eq!(peek_u32(&mut k, 1, DATA), 9);
    k.shutdown = None;
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
}
