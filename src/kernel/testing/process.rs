//! fork, exit, wait4, zombies and reparenting on the fake platform.

use super::*;
use crate::kernel::task::TaskState;

#[test]
fn fork_exit_and_wait4_report_the_childs_status() {
    let mut p = Program::new();
    let (f, j) = p.fork();
    let w = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(DATA), Val::Imm(0)]);
    p.stop();
    let again = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    let cg = p.sys(GETPPID, &[]);
    p.exit(7);
    let (mut k, trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    let forks = trace.returns(f);
    assert_eq!(forks.len(), 2, "{forks:?}");
    let child_pid = forks.iter().find(|r| r.1 != 0).expect("parent's result").1;
    assert!(forks.iter().any(|r| r.1 == 0), "the child did not see 0");
    assert!(child_pid > 1);
    assert_eq!(trace.ret(cg), 1);
    assert_eq!(trace.ret(w), child_pid);
    assert_eq!(peek_u32(&mut k, 1, DATA), 7 << 8);
    assert!(
        !k.tasks.contains_key(&(child_pid as Pid)),
        "reaped child still listed"
    );
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(again), ECHILD);
}

#[test]
fn an_exited_child_stays_a_zombie_until_waited_for() {
    let mut p = Program::new();
    let (_, j) = p.fork();
    p.sleep_ms(DATA + 64);
    p.stop();
    let w = p.sys(
        WAIT4,
        &[Val::Reg(R::R12), Val::Imm(DATA), Val::Imm(1 /* WNOHANG */)],
    );
    let none = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(1)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.exit(5);
    let (mut k, trace) = boot(p);
    put_timespec(&mut k, 1, DATA + 64, 20);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    let zombies: Vec<Pid> = k
        .tasks
        .values()
        .filter(|t| t.state == TaskState::Zombie)
        .map(|t| t.tid)
        .collect();
    assert_eq!(zombies.len(), 1, "one zombie child expected");
    assert_eq!(
        k.mms.len(),
        1,
        "the zombie's address space was not released"
    );
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(w), zombies[0] as i64);
    assert_eq!(trace.ret(none), ECHILD);
}

#[test]
fn orphans_are_reparented_to_init_which_reaps_them() {
    // init forks A; A forks B and exits; B, after A is gone, sees
    // getppid() == 1 and exits; init reaps both.
    let mut p = Program::new();
    let (_, ja) = p.fork();
    let w1 = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    let w2 = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(DATA), Val::Imm(0)]);
    let w3 = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let a = p.here();
    p.set_target(ja, a);
    let (_, jb) = p.fork();
    p.exit(1);
    let b = p.here();
    p.set_target(jb, b);
    let before = p.sys(GETPPID, &[]);
    p.sleep_ms(DATA + 64);
    let after = p.sys(GETPPID, &[]);
    p.exit(2);
    let (mut k, trace) = boot(p);
    put_timespec(&mut k, 1, DATA + 64, 30);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    let a_pid = trace.ret(w1);
    assert!(trace.ret(before) == a_pid || trace.ret(before) == 1);
    assert_eq!(trace.ret(after), 1, "B was not reparented to init");
    assert!(trace.ret(w2) > a_pid);
    assert_eq!(trace.ret(w3), ECHILD);
}

/// A child made by clone with another exit signal (here SIGHUP) is a
/// "clone child" its parent's plain wait4 skips; orphaned, it signals
/// SIGCHLD to its new parent (Linux's reparent_leader), so init's plain
/// wait4 reaps it. Without that, a zombie left by such a child stayed
/// forever under busybox init (found by the stress test's fuzzer).
#[test]
fn an_orphaned_clone_child_is_reaped_by_inits_plain_wait4() {
    // init forks A; A clones B with exit signal SIGHUP; B exits at once;
    // A sleeps (B stays a zombie: A never waits) and exits.
    let mut p = Program::new();
    let (_, ja) = p.fork();
    let w1 = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    let w2 = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(DATA), Val::Imm(0)]);
    let w3 = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let a = p.here();
    p.set_target(ja, a);
    let c = p.sys(56 /* clone */, &[Val::Imm(1 /* SIGHUP */)]);
    let jb = p.push(Insn::Jz(0));
    p.sleep_ms(DATA + 64);
    p.exit(1);
    let b = p.here();
    p.set_target(jb, b);
    p.exit(2);
    let (mut k, trace) = boot(p);
    put_timespec(&mut k, 1, DATA + 64, 30);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    let b_pid = trace
        .returns(c)
        .iter()
        .find(|r| r.1 > 0)
        .expect("A's clone result")
        .1;
    let a_pid = trace.ret(w1);
    assert!(a_pid > 1 && a_pid != b_pid);
    assert_eq!(
        trace.ret(w2),
        b_pid,
        "init's wait4 did not reap the orphaned clone child"
    );
    assert_eq!(trace.ret(w3), ECHILD);
}

#[test]
fn wait4_sleeps_on_its_child_queue_until_a_child_exits() {
    let mut p = Program::new();
    let (_, j) = p.fork();
    let w = p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(DATA), Val::Imm(0)]);
    p.stop();
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.stop(); // init is asleep in wait4 by now
    p.exit(9);
    let (mut k, trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    let blocked = TaskState::Blocked(crate::kernel::task::Wait::Queue(None));
    assert_eq!(k.tasks[&1].state, blocked);
    assert_eq!(
        k.tasks[&1].child_q.len(),
        1,
        "init waits on its child queue"
    );
    // Other objects' wake-ups leave it asleep (no "wake everyone").
    let q = k.console.waitq.clone();
    k.wake_queue(&q, crate::kernel::waitq::ALL_EVENTS);
    assert_eq!(k.tasks[&1].state, blocked);
    assert!(!k.runq.contains(&1));
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    assert_eq!(peek_u32(&mut k, 1, DATA), 9 << 8);
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert!(trace.ret(w) > 1);
}
