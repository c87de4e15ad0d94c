//! Extended attributes on ext2, end to end: tests/guest/t_xattr_ext2.c runs
//! as init on a fresh COW of tests.img (every semantic check inside it),
//! then on the host `umlcow merge` flattens the COW, `e2fsck -fn` must find
//! the image clean (xattr blocks well formed, hashes right, freed blocks back
//! in the bitmap, i_blocks right) and `debugfs ea_list` must show the
//! attributes the guest left, as Linux's ext2 would have stored them.

mod support;

use std::process::Command;

use support::tools::{debugfs, merge_and_fsck};
use support::*;

#[test]
fn ext2_xattrs_reach_the_disk_in_linuxs_format() {
    let image = tests_image();
    let cow = fresh_cow(&image);
    let uml_dir = cow.dir.path().join("uml");
    std::fs::create_dir_all(&uml_dir).unwrap();
    let opts = GuestOptions::default();
    let mut cmd = Command::new(umlrun_bin());
    cmd.args(guest_args(
        &cow.path,
        &uml_dir,
        "/tests/t_xattr_ext2",
        &opts,
    ))
    .current_dir(cow.dir.path());
    let run = run_command(cmd, opts.timeout);
    assert!(
        run.stdout.contains("== t_xattr_ext2: ") && !run.stdout.contains(": FAIL"),
        "t_xattr_ext2 in the guest (status {:?}):\n{}",
        run.status,
        run.tail(60)
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.tail(30));

    let merged = cow.dir.path().join("merged.img");
    merge_and_fsck(&umlcow_bin(), &cow.path, None, &merged);

    let kept = debugfs(&merged, "ea_list /xattr-kept");
    for want in [
        "user.color (4) = \"blue\"",
        "trusted.t (2) = \"tv\"",
        "security.s (2) = \"sv\"",
        "user.empty (0)",
    ] {
        assert!(
            kept.contains(want),
            "ea_list /xattr-kept lacks {want}:\n{kept}"
        );
    }
    let dir = debugfs(&merged, "ea_list /xattr-dir");
    assert!(
        dir.contains("user.d (9) = \"dir-value\""),
        "ea_list /xattr-dir:\n{dir}"
    );
    assert_eq!(debugfs(&merged, "cat /xattr-kept"), "data\n");
    // The feature flag e2fsck and Linux read before trusting i_file_acl.
    let features = debugfs(&merged, "features");
    assert!(features.contains("ext_attr"), "{features}");
}
