//! The Debian guest (disk-images/build-debian): the smoke job
//! (/usr/local/sbin/umlrun-smoke: bash, perl, python3 json/hashlib/
//! subprocess/shutil.copy2/copytree, os.openpty, ps, df, mountinfo,
//! task, vmstat, sysfs, tar with a symlink) runs as
//! init under umlrun and natively in a chroot of the same tree, and the
//! outputs must match.
//!
//! Not in the default `cargo test`: it needs the Debian image, which needs
//! the network the first time and root. Run it with
//!
//! ```sh
//! disk-images/build-debian && cargo test --release --test debian -- --ignored
//! ```

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

fn debian() -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let img = repo.join("disk-images/debian.img");
    let root = repo.join("target/debian/root");
    assert!(
        img.is_file() && root.join("usr/local/sbin/umlrun-job").is_file(),
        "run disk-images/build-debian first"
    );
    (img, root)
}

/// Runs `job` (a shell command) in the guest: the job file is the second
/// disk, read by umlrun-job as init.
fn guest(img: &Path, job: &str) -> GuestRun {
    let dir = tempfile::tempdir().unwrap();
    let jobf = dir.path().join("job.txt");
    let mut bytes = job.as_bytes().to_vec();
    bytes.resize(4096, 0);
    std::fs::write(&jobf, bytes).unwrap();
    let opts = GuestOptions {
        mem: "512M".into(),
        extra: vec!["ubd=mmap".into(), format!("ubd1r={}", jobf.display())],
        timeout: Duration::from_secs(120),
    };
    run_guest_with(img, "/usr/local/sbin/umlrun-job", &opts)
}

fn native(root: &Path, job: &str) -> GuestRun {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "chroot"])
        .arg(root)
        .args(["/usr/local/sbin/umlrun-job", job]);
    run_command(cmd, Duration::from_secs(120))
}

#[test]
#[ignore = "needs disk-images/build-debian (network, root): cargo test --release --test debian -- --ignored"]
fn smoke_same_as_native() {
    let (img, root) = debian();
    let n = native(&root, "umlrun-smoke");
    let ns = n.expect_finished("smoke natively");
    assert_eq!(ns, 0, "the smoke job fails natively:\n{}", n.tail(30));
    let g = guest(&img, "umlrun-smoke");
    let gs = g.expect_finished("smoke under umlrun");
    let gout = g.stdout.replace('\r', "");
    assert!(
        gout == n.stdout && gs == ns,
        "the guest differs from native (status {gs} vs {ns})\n{}\n--- umlrun stderr\n{}",
        diff(&n.stdout, &gout),
        g.tail(20)
    );
}
