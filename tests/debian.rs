//! The Debian guest (disk-images/build-debian): the smoke job
//! (/usr/local/sbin/umlrun-smoke: bash, perl, python3 json/hashlib/
//! subprocess/shutil.copy2/copytree, os.openpty, ps, df, mountinfo,
//! task, vmstat, sysfs, tar with a symlink) runs as
//! init under umlrun and natively in a chroot of the same tree, and the
//! outputs must match; so must the jobs in tests/debian_jobs/ (SysV IPC
//! through ipcs, Python multiprocessing); and the image boots with its own
//! init to a console login, runs a few commands and powers off (umlrun
//! exits 0).
//!
//! The image is found or built as scripts/conformance does: by running
//! disk-images/build-debian, which returns at once when the image is up to
//! date (the first build needs root and the network, a few minutes).
//! scripts/test builds it in a step of its own before `cargo test`.

mod support;
mod support_many;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use support::*;
use support_many::{Fleet, Runner};

/// The image and the tree, made (or found up to date) by
/// disk-images/build-debian once per test run.
fn debian() -> (std::path::PathBuf, std::path::PathBuf) {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = BUILT.get_or_init(|| {
        let out = Command::new(repo.join("disk-images/build-debian"))
            .output()
            .map_err(|e| format!("disk-images/build-debian: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "disk-images/build-debian failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let img = repo.join("disk-images/debian.img");
    let root = repo.join("target/debian/root");
    assert!(
        img.is_file() && root.join("usr/local/sbin/umlrun-job").is_file(),
        "disk-images/build-debian succeeded but left no debian.img or tree"
    );
    (img, root)
}

/// Runs `job` (a shell command) in the guest: the job file is the second
/// disk, read by umlrun-job as init.
fn guest(img: &Path, job: &str, timeout: Duration) -> GuestRun {
    let dir = tempfile::tempdir().unwrap();
    let jobf = dir.path().join("job.txt");
    let mut bytes = job.as_bytes().to_vec();
    assert!(bytes.len() < 4096, "a job must fit the 4 KiB job disk");
    bytes.resize(4096, 0);
    std::fs::write(&jobf, bytes).unwrap();
    let opts = GuestOptions {
        mem: "512M".into(),
        extra: vec!["ubd=mmap".into(), format!("ubd1r={}", jobf.display())],
        timeout,
    };
    run_guest_with(img, "/usr/local/sbin/umlrun-job", &opts)
}

fn native(root: &Path, job: &str) -> GuestRun {
    let mut cmd = Command::new("unshare");
    // A network namespace of its own: the job's servers (PostgreSQL on
    // localhost) cannot meet the host's or another test's ports.
    cmd.args(["-m", "-n", "chroot"])
        .arg(root)
        .args(["/usr/local/sbin/umlrun-job", job]);
    run_command(cmd, Duration::from_secs(120))
}

#[test]
fn smoke_same_as_native() {
    same_as_native("umlrun-smoke", Duration::from_secs(120));
}

/// Boots the image with its own init (sysvinit, rcS and rc 2) to the
/// console's `login:`, logs in as root (no password), runs what the issue
/// names (python3 -c, bash, ps aux, df, vmstat 1 2, script) and a few
/// everyday commands (apt-get --version, ls -l /), then `poweroff`: init
/// runs its shutdown scripts and umlrun exits 0.
#[test]
fn console_login() {
    let (img, _) = debian();
    let mut fleet = Fleet::new(Runner::umlrun("mmap"), &img, "512M").unwrap();
    fleet.start(1).unwrap();
    let g = &mut fleet.instances[0];
    g.wait_login(Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("no login: prompt: {e}\n{}", g.tail(30)));
    g.login(Duration::from_secs(60)).unwrap();
    let t = Duration::from_secs(60);
    let mut run = |cmd: &str| {
        let (st, out) = g.run(cmd, t).unwrap();
        assert_eq!(st, 0, "`{cmd}` exited {st}:\n{out}");
        out
    };
    assert_eq!(run("python3 -c 'print(6 * 7)'").trim(), "42");
    assert_eq!(run("bash -c 'echo $((2 ** 10))'").trim(), "1024");
    let apt = run("apt-get --version");
    assert!(apt.starts_with("apt "), "{apt}");
    let ls = run("ls -l /");
    for entry in [" bin -> usr/bin", " etc\n", " usr\n", " proc\n"] {
        assert!(ls.contains(entry), "`ls -l /` lacks {entry:?}:\n{ls}");
    }
    // ls -l reads xattrs (ACLs, SELinux labels): no "Function not implemented".
    assert!(!ls.contains("not implemented"), "{ls}");
    let ps = run("ps aux");
    assert!(ps.contains("/sbin/init") && ps.contains("ps aux"), "{ps}");
    // ps's START is btime + start time: this year, not 1970.
    assert!(!run("ps -o lstart= -p 1").contains("1970"));
    assert!(run("df /").contains("/dev/ubda"));
    assert_eq!(run("vmstat 1 2").lines().count(), 4);
    run("script -qc true /dev/null");
    assert!(!run("cat /proc/cmdline").trim().is_empty());
    g.send("poweroff\n").unwrap();
    let status = g
        .wait_exited(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("umlrun still runs 120 s after poweroff:\n{}", g.tail(30)));
    assert!(
        status.success(),
        "umlrun exited with {status} after poweroff:\n{}",
        g.tail(30)
    );
    let console = String::from_utf8_lossy(&g.transcript()).into_owned();
    assert!(
        console.contains("Will now halt") || console.contains("Will now power off"),
        "init did not run its halt script:\n{}",
        g.tail(30)
    );
}

/// `job` exits 0 natively and prints the same under umlrun, with the same
/// status (the guest's console turns newlines into CRLF).
fn same_as_native(job: &str, timeout: Duration) {
    let (img, root) = debian();
    let n = native(&root, job);
    let ns = n.expect_finished("the job natively");
    assert_eq!(ns, 0, "the job fails natively:\n{}", n.tail(30));
    let g = guest(&img, job, timeout);
    let gs = g.expect_finished("the job under umlrun");
    let gout = g.stdout.replace('\r', "");
    assert!(
        gout == n.stdout && gs == ns,
        "the guest differs from native (status {gs} vs {ns})\n{}\n--- umlrun stderr\n{}",
        diff(&n.stdout, &gout),
        g.tail(20)
    );
}

/// SysV IPC through util-linux's tools (issue 18): ipcmk makes a shm
/// segment, a semaphore set and a message queue; ipcs lists and details
/// them (owner, mode, size; nattch, semval, cbytes and qnum after Python
/// attaches, semops and sends through ctypes) and shows the limits from
/// /proc/sys/kernel; ipcrm removes them.
#[test]
fn sysv_ipcs_same_as_native() {
    same_as_native(
        include_str!("debian_jobs/ipcs.sh"),
        Duration::from_secs(180),
    );
}

/// Python's multiprocessing with each start method (fork, spawn,
/// forkserver): a Pool, a Queue, a shared Value under a Lock and a
/// Semaphore (POSIX semaphores in /dev/shm, futexes across processes);
/// shared_memory segments in /dev/shm and a Manager process (issue 18).
#[test]
fn python_multiprocessing_same_as_native() {
    same_as_native(
        include_str!("debian_jobs/multiprocessing.sh"),
        Duration::from_secs(400),
    );
}

/// PostgreSQL as a user runs it (issue 18's "so PostgreSQL works"): as the
/// postgres user, initdb, pg_ctl start (SysV and POSIX shared memory,
/// fsync, a unix socket, signals to its children), createdb, psql with a
/// 10 000-row table, an index scan, a join, a rollback, a refused duplicate
/// key, a savepoint and a checkpoint; pgbench -i -s 1 then -c 4 -t 200,
/// which must process all 800 transactions with 0 failed and keep its
/// balances consistent; stop, restart (the rows survive), stop. The same
/// output as natively in a chroot of the same tree.
#[test]
fn postgresql_same_as_native() {
    same_as_native(
        include_str!("debian_jobs/postgresql.sh"),
        Duration::from_secs(600),
    );
}
