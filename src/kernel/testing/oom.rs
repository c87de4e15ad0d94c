//! The OOM killer on the fake platform: the victim is chosen by badness,
//! init is never chosen, oom_score_adj -1000 exempts, the kill is in the
//! kernel log, and with nothing left to kill only the caller goes (or,
//! for init alone, the instance ends as Linux panics).

use super::*;
use crate::physmem::Frame;
use crate::syscalls::Outcome;

/// Init (with `init_kb` touched) and one forked child (with `child_kb`
/// touched), stopped; returns the kernel and the child's pid.
fn two_processes(init_kb: usize, child_kb: usize) -> (Kernel, Pid) {
    let mut p = Program::new();
    let (_, j) = p.fork();
    p.stop();
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    p.sys(PAUSE, &[]);
    let (mut k, _trace) = boot(p);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    k.shutdown = None;
    let child = k
        .tasks
        .values()
        .find(|t| t.tgid != 1)
        .map(|t| t.tgid)
        .expect("child");
    k.write_user(1, DATA, &vec![1u8; init_kb * 1024]).unwrap();
    k.write_user(child, DATA, &vec![2u8; child_kb * 1024])
        .unwrap();
    (k, child)
}

/// Takes every free frame, as a burst would, after giving back the
/// untouched window pages (which the OOM path would give back first,
/// retrying without a kill).
fn exhaust(k: &mut Kernel) -> Vec<Frame> {
    k.release_untouched();
    let mut held = Vec::new();
    while let Ok(f) = k.frames.alloc() {
        held.push(f);
    }
    held
}

#[test]
fn the_biggest_process_goes_but_never_init() {
    // Init is far bigger than the child: the child is still the victim.
    let (mut k, child) = two_processes(512, 16);
    let cands = k.oom_candidates();
    assert_eq!(cands.len(), 1, "init is a candidate: {cands:?}");
    let _held = exhaust(&mut k);
    assert!(k.out_of_memory(1, false), "init should retry");
    assert!(
        !k.tasks.get(&child).is_some_and(|t| t.is_alive()),
        "the child was not killed"
    );
    assert!(k.tasks.get(&1).is_some_and(|t| t.is_alive()), "init died");
    let log = String::from_utf8(k.kmsg.contents()).unwrap();
    assert!(
        log.contains(&format!("Out of memory: Killed process {child} (")),
        "{log}"
    );
    assert!(log.contains("invoked oom-killer"), "{log}");
    assert_eq!(k.oom.kills, 1);
    assert_eq!(k.oom.last_victim, Some(child));
    // Its frames came back: the retry finds one.
    assert!(k.frames.alloc().is_ok());
}

#[test]
fn oom_score_adj_minus_1000_exempts_and_init_alone_panics() {
    let (mut k, child) = two_processes(16, 64);
    k.task_mut(child).unwrap().oom_score_adj = -1000;
    assert!(k.oom_select().is_none());
    let _held = exhaust(&mut k);
    // The exempt child allocating: nothing else to kill, it goes itself.
    assert!(!k.out_of_memory(child, false));
    assert!(!k.tasks.get(&child).is_some_and(|t| t.is_alive()));
    assert!(k.shutdown.is_none());
    // Init alone, out of memory, with every frame still taken: Linux's
    // panic.
    let _more = exhaust(&mut k);
    assert!(!k.out_of_memory(1, false));
    assert!(matches!(k.shutdown, Some(Shutdown::InitDied(_))));
    let log = String::from_utf8(k.kmsg.contents()).unwrap();
    assert!(log.contains("System is deadlocked on memory"), "{log}");
}

#[test]
fn a_syscall_out_of_frames_runs_the_oom_path_and_is_run_again() {
    // The child is the bigger one: the OOM killer's victim.
    let (mut k, child) = two_processes(16, 512);
    k.write_user(1, DATA, b"/f\0").unwrap();
    let fd = match k.dispatch_under_pressure(1, OPEN, [DATA, 0o101, 0o644, 0, 0, 0]) {
        Outcome::Return(fd) if fd >= 0 => fd as u64,
        o => panic!("open: {o:?}"),
    };
    let _held = exhaust(&mut k);
    // A tmpfs write needs two frames and none is free: without the
    // pressure path it fails with ENOSPC; with it the child is killed
    // and the write is run again.
    let out = k.dispatch_under_pressure(1, WRITE, [fd, DATA, 8192, 0, 0, 0]);
    assert!(matches!(out, Outcome::Return(8192)), "write: {out:?}");
    assert!(k.oom.syscall_retries >= 1);
    assert!(!k.tasks.get(&child).is_some_and(|t| t.is_alive()));
    let size = k
        .mounts
        .resolve(b"/", b"/", b"/f", true, &crate::vfs::Cred::root());
    assert_eq!(size.map(|r| r.stat.size), Ok(8192));
    assert_eq!(file_bytes(&k, b"/f").unwrap()[..3], *b"/f\0");
    // ENOMEM with no frame refused (an mmap larger than the address
    // space) is not memory pressure: returned at once, nobody killed.
    let (retries, kills) = (k.oom.syscall_retries, k.oom.kills);
    let (mmap, map_private_anon) = (9, 0x22);
    let out = k.dispatch_under_pressure(1, mmap, [0, 1 << 50, 1, map_private_anon, u64::MAX, 0]);
    assert!(matches!(out, Outcome::Return(-12)), "{out:?}");
    assert_eq!((k.oom.syscall_retries, k.oom.kills), (retries, kills));
}

/// `oom_wait=`: below maxmem=, a fault out of frames sleeps for a plug
/// (no kill, the task blocked for a short while), and the OOM killer acts
/// only once the wait is over; at maxmem= there is nothing to wait for.
#[test]
fn a_fault_below_maxmem_waits_for_a_plug_before_the_killer() {
    use crate::kernel::task::{TaskState, Wait};
    let (mut k, child) = two_processes(16, 64);
    k.config.oom_wait = std::time::Duration::from_millis(80);
    // At maxmem= (all plugged): the killer acts at once, as without the switch.
    let held = exhaust(&mut k);
    assert!(!k.out_of_memory(child, false));
    assert_eq!((k.oom.kills, k.oom.waits), (1, 0));
    drop(held);

    let (mut k, child) = two_processes(16, 64);
    k.config.oom_wait = std::time::Duration::from_millis(80);
    assert_eq!(k.oom_wait_keep_free(), 0, "at maxmem=: no plug can come");
    assert!(k.mem_unplug(512) > 0, "headroom to wait for");
    // A user fault leaves frames for syscalls while it may wait.
    let keep = crate::kernel::memwait::KEEP_FREE_FRAMES;
    assert_eq!(k.oom_wait_keep_free(), keep);
    k.frames.keep_free = keep;
    let mut taken = Vec::new();
    while let Ok(f) = k.frames.alloc() {
        taken.push(f);
    }
    assert_eq!(k.physmem.stats().frames_free, keep);
    k.frames.keep_free = 0;
    assert!(k.frames.alloc().is_ok(), "a syscall still finds a frame");
    drop(taken);
    let held = exhaust(&mut k);
    assert!(!k.out_of_memory(child, false), "a wait is not a retry now");
    let state = k.task(child).unwrap().state;
    assert!(
        matches!(state, TaskState::Blocked(Wait::Until(_))),
        "{state:?}"
    );
    assert!(!k.runq.contains(&child));
    assert_eq!((k.oom.kills, k.oom.waits), (0, 1));
    // Faulting again within the wait: still no kill, the same wait.
    std::thread::sleep(crate::kernel::memwait::RETRY);
    assert!(!k.out_of_memory(child, false));
    assert_eq!((k.oom.kills, k.oom.waits), (0, 1));
    assert!(k.tasks.get(&child).is_some_and(|t| t.is_alive()));
    // A plug came (the balancer): the fault is served, the wait is over
    // and a later shortage waits afresh.
    k.oom_wait_done(child);
    assert!(k.mem_waits.is_empty());
    assert!(!k.out_of_memory(child, false));
    assert_eq!((k.oom.kills, k.oom.waits), (0, 2));
    // No plug within oom_wait=: the killer acts (the child is the biggest).
    std::thread::sleep(std::time::Duration::from_millis(90));
    assert!(!k.out_of_memory(child, false));
    assert_eq!(k.oom.kills, 1);
    assert!(!k.tasks.get(&child).is_some_and(|t| t.is_alive()));
    assert!(k.mem_waits.is_empty());
    // A syscall (in_syscall) never waits: straight to the killer.
    let (mut k, child) = two_processes(16, 64);
    k.config.oom_wait = std::time::Duration::from_millis(80);
    assert!(k.mem_unplug(512) > 0);
    let _more = exhaust(&mut k);
    k.out_of_memory(child, true);
    assert_eq!((k.oom.kills, k.oom.waits), (1, 0));
    drop(held);
}
