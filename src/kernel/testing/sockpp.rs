//! AF_UNIX ping-pong between two processes on the fake platform: every
//! byte goes and comes back, the reader of each round blocked first (the
//! path `scripts/bench`'s b_unix times). The `#[ignore]`d pair below runs
//! the same rounds and four times as many getppid calls, long enough to
//! be measured with a deterministic instruction count, which a shared
//! host's timings are not:
//!
//! ```text
//! cargo test --release --lib --no-run
//! valgrind --tool=callgrind target/release/deps/umlrun-* --ignored --exact \
//!     kernel::testing::sockpp::cost_of_ping_pong_rounds
//! ```
//!
//! (then `cost_of_getppid_calls`; the difference of the two totals over
//! `COST_ROUNDS` is what a round costs the kernel beyond its four
//! syscalls, the fake platform's switches being cheap and alike).

use super::*;

const SOCKETPAIR: u64 = 53;
const AF_UNIX: u64 = 1;
const SOCK_STREAM: u64 = 1;
const FDS: u64 = DATA + 0x200;
const PING: u64 = DATA + 0x300;
const PONG: u64 = DATA + 0x400;
const ECHO: u64 = DATA + 0x500;
const SLEEP: u64 = DATA + 0x600;
/// Rounds of the cost pair.
const COST_ROUNDS: usize = 20_000;

/// A socketpair, a fork, and `rounds` 1-byte rounds from the parent that
/// the child echoes until end of stream. Returns the program and the
/// parent's (write, read) syscalls of each round.
fn ping_pong(rounds: usize) -> (Program, Vec<(usize, usize)>) {
    let mut p = Program::new();
    p.sys(
        SOCKETPAIR,
        &[
            Val::Imm(AF_UNIX),
            Val::Imm(SOCK_STREAM),
            Val::Imm(0),
            Val::Imm(FDS),
        ],
    );
    let (_, j) = p.fork();
    p.stop(); // the test reads the fds here
    let mut at = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let w = p.sys(WRITE, &[Val::Reg(R::R13), Val::Imm(PING), Val::Imm(1)]);
        let r = p.sys(READ, &[Val::Reg(R::R13), Val::Imm(PONG), Val::Imm(1)]);
        at.push((w, r));
    }
    p.sys(CLOSE, &[Val::Reg(R::R13)]);
    p.sys(WAIT4, &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0)]);
    p.exit(0);
    let child = p.here();
    p.set_target(j, child);
    // Until the test has set the registers; then the child drops its
    // copy of the parent's end, so the parent's close is end of stream.
    p.sleep_ms(SLEEP);
    p.sys(CLOSE, &[Val::Reg(R::R13)]);
    let rd = p.sys(READ, &[Val::Reg(R::R14), Val::Imm(ECHO), Val::Imm(1)]);
    let done = p.push(Insn::Jz(0));
    p.sys(WRITE, &[Val::Reg(R::R14), Val::Imm(ECHO), Val::Imm(1)]);
    p.push(Insn::Jmp(rd - 1));
    let out = p.here();
    p.set_target(done, out);
    p.exit(0);
    (p, at)
}

/// Boots `p` (a `ping_pong`), gives both processes the socket fds
/// (parent r13, child r14) and runs it to the end.
fn run_ping_pong(p: Program) -> (Kernel, crate::platform::fake::Trace) {
    let (mut k, trace) = boot(p);
    k.write_user(1, PING, b"x").unwrap();
    put_timespec(&mut k, 1, SLEEP, 20);
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    let (a, b) = (peek_u32(&mut k, 1, FDS), peek_u32(&mut k, 1, FDS + 4));
    for t in k.tasks.keys().copied().collect::<Vec<_>>() {
        let mut r = k.regs(t);
        (r.r13, r.r14) = (a as u64, b as u64);
        k.set_regs(t, r);
    }
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    (k, trace)
}

#[test]
fn every_ping_comes_back_and_the_echo_ends_at_end_of_stream() {
    let (p, at) = ping_pong(50);
    let (_k, trace) = run_ping_pong(p);
    for (w, r) in at {
        assert_eq!(trace.ret(w), 1, "write of round at {w}");
        assert_eq!(trace.ret(r), 1, "read of round at {r}");
    }
}

#[test]
#[ignore = "a measurement: run under callgrind (module doc)"]
fn cost_of_ping_pong_rounds() {
    let (p, at) = ping_pong(COST_ROUNDS);
    let (_k, trace) = run_ping_pong(p);
    assert_eq!(trace.ret(at[COST_ROUNDS - 1].1), 1);
}

#[test]
#[ignore = "a measurement: run under callgrind (module doc)"]
fn cost_of_getppid_calls() {
    // The same boot, socketpair and fork, so only the rounds differ.
    let (mut p, _) = ping_pong(0);
    let mut q = Program::new();
    let n = p.insns.len();
    // Calls go before the parent's close: splice them in after the stop.
    let stop = p
        .insns
        .iter()
        .position(|i| matches!(i, Insn::Load(REBOOT, _)))
        .expect("stop");
    let calls = 4 * COST_ROUNDS;
    for (i, insn) in p.insns.drain(..).enumerate() {
        let shifted = |t: usize| if t > stop + 1 { t + 2 * calls } else { t };
        q.push(match insn {
            Insn::Jz(t) => Insn::Jz(shifted(t)),
            Insn::Jmp(t) => Insn::Jmp(shifted(t)),
            other => other,
        });
        if i == stop + 1 {
            for _ in 0..calls {
                q.sys(GETPPID, &[]);
            }
        }
    }
    assert_eq!(q.insns.len(), n + 2 * calls);
    let (_k, trace) = run_ping_pong(q);
    assert_eq!(
        trace.ret(stop + 1 + 2 * calls),
        0,
        "the last getppid (init's parent)"
    );
}
