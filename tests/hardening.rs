//! Hardening tests that need the guest alone (no native run to compare
//! with): init's protection from signals, and the random-syscall fuzzer's
//! CI slice (tests/guest/fuzz_syscalls.c; the long run is
//! scripts/fuzz-syscalls).

mod support;

use support::*;

/// Runs guest-only program `name` as init; it checks itself.
fn run_self_checking(name: &str) {
    let image = tests_image();
    native_bin(name);
    let run = run_guest(&image, &format!("/tests/{name}"), timeout());
    let status = run.expect_finished(&format!("{name} under umlrun"));
    assert!(
        status == 0
            && !run.stdout.contains(": FAIL")
            && run.stdout.contains(&format!("== {name}: ")),
        "{name}: status {status}\n{}\n--- stderr\n{}",
        run.tail(40),
        run.stderr
    );
}

/// init ignores every signal it has no handler for, from anyone.
#[test]
fn t_init_signals() {
    run_self_checking("t_init_signals");
}
