//! Many guests at once from one backing image: 16 instances boot
//! concurrently on their own ptys, log in and run a check script; what one
//! writes the others do not see; the backing image is never written; every
//! COW file merges into an image that `e2fsck -fn` passes. A 200-instance
//! stress run is `#[ignore]`d: `cargo test --release --test many -- --ignored`.
//! The runner is umlrun (`MANY_RUNNER=uml` runs the same flow on linux.uml).

mod support_many;

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support_many::{describe, tools, Fleet, Runner};

const CMD_TIMEOUT: Duration = Duration::from_secs(60);

fn backing() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("disk-images/busybox.img");
    assert!(
        p.is_file(),
        "{} is missing: run disk-images/build first (./scripts/test does)",
        p.display()
    );
    p
}

fn checksum(path: &Path) -> u64 {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h.finish();
        }
        h.write(&buf[..n]);
    }
}

/// Boot `n`, log all in; panics naming the instances that failed.
fn boot(n: usize, timeout: Duration) -> Fleet {
    let mut fleet = Fleet::new(Runner::from_env(), &backing(), "64M").unwrap();
    fleet.start(n).unwrap();
    if let Err(errors) = fleet.wait_all_prompts(timeout) {
        let unclean = fleet.stop_all();
        panic!(
            "{} of {n} did not boot (unclean stops: {unclean:?}):\n{}",
            errors.len(),
            describe(&errors)
        );
    }
    fleet.login_all(CMD_TIMEOUT).unwrap();
    fleet
}

/// Run `cmd` in instance `i`, expecting exit status 0; returns the output.
fn run_ok(fleet: &mut Fleet, i: usize, cmd: &str) -> String {
    let (status, out) = fleet.instances[i].run(cmd, CMD_TIMEOUT).unwrap();
    assert_eq!(
        status, 0,
        "instance {i}: `{cmd}` exited {status}; output:\n{out}"
    );
    out
}

#[test]
fn sixteen_guests_are_isolated_and_their_cows_merge_clean() {
    let n = 16;
    let image = backing();
    let before = checksum(&image);
    let mut fleet = boot(n, Duration::from_secs(180));
    for inst in &fleet.instances {
        let pidfile = fleet.uml_dir().join(&inst.umid).join("pid");
        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        assert_eq!(
            pid.trim(),
            inst.pid().to_string(),
            "{} does not hold the instance's pid",
            pidfile.display()
        );
    }

    // Every guest writes its own mark, then (all marks written) checks it
    // sees its own and no one else's.
    for i in 0..n {
        run_ok(
            &mut fleet,
            i,
            &format!("echo guest-{i} > /root/mark-{i} && sync"),
        );
    }
    for i in 0..n {
        let out = run_ok(&mut fleet, i, "cat /root/mark-*");
        assert_eq!(
            out.trim(),
            format!("guest-{i}"),
            "instance {i} sees other marks"
        );
        let out = run_ok(&mut fleet, i, "ls /root | grep -c mark-");
        assert_eq!(out.trim(), "1", "instance {i}: /root holds marks of others");
        // The check script: the basics of a booted guest.
        run_ok(
            &mut fleet,
            i,
            "test -f /proc/meminfo && test -d /proc/self && test -c /dev/null",
        );
        run_ok(&mut fleet, i, "mount | grep -q ' / '");
        assert_eq!(run_ok(&mut fleet, i, "hostname").trim(), "umlrun");
        let (status, _) = fleet.instances[i].run("false", CMD_TIMEOUT).unwrap();
        assert_eq!(status, 1, "instance {i}: exit statuses do not come back");
    }

    let unclean = fleet.stop_all();
    assert!(
        unclean.is_empty(),
        "instances {unclean:?} did not power off cleanly"
    );
    assert_eq!(checksum(&image), before, "the backing image changed");

    // Every COW, merged with its backing file, is a clean ext2 with its mark.
    let merged = fleet.dir().join("merged.img");
    for i in 0..n {
        let cow = fleet.instances[i].cow.clone();
        tools::merge_and_fsck(
            Path::new(env!("CARGO_BIN_EXE_umlcow")),
            &cow,
            Some(&fleet.backing),
            &merged,
        );
        assert_eq!(
            tools::debugfs(&merged, &format!("cat /root/mark-{i}")).trim(),
            format!("guest-{i}"),
            "instance {i}'s write is not in its COW"
        );
        std::fs::remove_file(&merged).unwrap();
    }
}

#[test]
#[ignore = "stress: 200 guests; run with cargo test --release --test many -- --ignored"]
fn two_hundred_guests_boot_run_and_power_off() {
    let n = 200;
    let image = backing();
    let before = checksum(&image);
    let mut fleet = boot(n, Duration::from_secs(1200));
    for i in 0..n {
        let out = run_ok(
            &mut fleet,
            i,
            &format!("echo {i} > /root/me && cat /root/me"),
        );
        assert_eq!(out.trim(), i.to_string(), "instance {i}");
    }
    let unclean = fleet.stop_all();
    assert!(
        unclean.is_empty(),
        "instances {unclean:?} did not power off cleanly"
    );
    assert_eq!(checksum(&image), before, "the backing image changed");
}
