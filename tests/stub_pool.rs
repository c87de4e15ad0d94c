//! Guest forks reuse stub processes: an address space that dies hands its
//! stub (wiped) to the next one, so a program that forks again and again
//! spawns only a few host processes. Counted from umlrun's own debug log.

mod support;

use std::process::Command;

use support::*;

const CLONE_VM: u64 = 0x100;

/// Flags of a traced `clone(0x…, …)` syscall line, if it is one.
fn clone_flags(line: &str) -> Option<u64> {
    let rest = line.split("] clone(0x").nth(1)?;
    u64::from_str_radix(rest.split(',').next()?, 16).ok()
}

#[test]
fn forks_reuse_stub_processes() {
    let image = tests_image();
    let cow = fresh_cow(&image);
    let uml_dir = cow.dir.path().join("uml");
    std::fs::create_dir_all(&uml_dir).unwrap();
    let mut cmd = Command::new(umlrun_bin());
    cmd.args(guest_args(
        &cow.path,
        &uml_dir,
        "/tests/t_process",
        &GuestOptions::default(),
    ))
    .current_dir(cow.dir.path())
    .env(
        "RUST_LOG",
        "umlrun::platform::ptrace_stub=debug,umlrun::syscalls=trace",
    );
    let run = run_command(cmd, timeout());
    assert_eq!(run.expect_finished("t_process"), 0, "{}", run.tail(20));
    let forks = run
        .stderr
        .lines()
        .filter_map(clone_flags)
        .filter(|f| f & CLONE_VM == 0)
        .count();
    let spawns = run
        .stderr
        .lines()
        .filter(|l| l.contains(" spawned; reserved "))
        .count();
    assert!(forks >= 10, "t_process forked only {forks} times");
    assert!(spawns >= 1, "no stub spawn logged: {}", run.tail(20));
    assert!(
        spawns * 2 < forks,
        "{spawns} stubs spawned for {forks} forks: stubs are not reused"
    );
}

#[test]
fn clone_lines_parse() {
    let l = "[TRACE umlrun::syscalls] [1] clone(0x1200011, 0x0, 0x0, 0x4b0650)";
    assert_eq!(clone_flags(l), Some(0x1200011));
    assert_eq!(
        clone_flags("[TRACE umlrun::syscalls] [1] clone -> Return(22)"),
        None
    );
}
