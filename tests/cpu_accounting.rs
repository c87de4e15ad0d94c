//! CPU-time accounting of a guest that only makes syscalls: the time the
//! kernel spends serving them is the guest's system time, as on Linux.
//! tests/guest/t_cpu_account.c reports its CPU time (times() and
//! CLOCK_PROCESS_CPUTIME_ID) as a share of its wall time; natively that is
//! close to 100 %. The guest's share must be most of the native one (a
//! ratio, so a loaded host that slows both runs does not decide it). Its own
//! test binary, so no other guest competes for the CPU meanwhile.

mod support;

use support::*;

/// "name N%" lines of the program's output.
fn percent(out: &str, name: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
}

#[test]
fn syscall_service_time_is_the_guests_cpu_time() {
    let native = run_native(&native_bin("t_cpu_account"), &[], timeout());
    assert_eq!(native.expect_finished("t_cpu_account (native)"), 0);
    let guest = run_guest_with(
        &tests_image(),
        "/tests/t_cpu_account",
        &GuestOptions::default(),
    );
    assert_eq!(
        guest.expect_finished("t_cpu_account under umlrun"),
        0,
        "{}",
        guest.tail(20)
    );
    for name in ["times", "cputime"] {
        let (n, g) = (percent(&native.stdout, name), percent(&guest.stdout, name));
        assert!(
            g * 10 >= n * 6,
            "{name}: the guest counted {g}% of its wall time as CPU time, natively {n}%"
        );
    }
}
