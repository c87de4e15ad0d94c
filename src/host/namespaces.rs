//! Namespaces for umlrun's stubs (issue 10 item 4, `namespaces=`).
//!
//! Made once, after set-up and before the first stub, while umlrun is
//! still one thread:
//!
//! - umlrun not root (also after `uid=`): it first enters a user
//!   namespace of its own that maps only its own uid and gid to
//!   themselves (files, sockets and signals work as before), where it may
//!   make a pid namespace; it drops every capability it has there at the
//!   end, whatever happened.
//! - A *holder* process, umlrun's child, in a new user (only umlrun's uid
//!   and gid mapped, as themselves; root staying root too: the stubs then
//!   hold capabilities only inside it, none over the host), pid, mount
//!   and network namespace: pid 1 of the stubs' pid namespace (it must
//!   outlive them all: when pid 1 of a namespace ends, nothing more can
//!   start there), asleep with every signal blocked, no fd but its own
//!   pipe, in strict seccomp, as its own one-page program (`holder_image`:
//!   after the set-up it execs that, so it keeps no copy of umlrun's
//!   memory); it dies with umlrun (PDEATHSIG), and every stub with it. Its
//!   mount namespace has only an empty tmpfs as `/`, read-only, with
//!   nothing in it: stubs open no file (a disk hot-added later reaches
//!   running stubs as an fd passed over a socket, `host::fdpass`). Its
//!   network namespace has only a loopback, down.
//! - umlrun itself stays in the host's network namespace (the NAT's
//!   host sockets, tap devices and uml_switch's abstract data sockets,
//!   also for interfaces hot-added later through the mconsole) and in
//!   its own pid namespace (a thread whose children go to another pid
//!   namespace may not start threads).
//! - Each stub is started by a short-lived child of umlrun that joins the
//!   holder's user, mount, network and pid namespaces ([`join_fds`]) and
//!   clones the stub as umlrun's child (`ptrace::spawn_traced`): as the
//!   owner of that user namespace umlrun's user may, with no capability.
//!   The exec then clears the capabilities the stub had there (a non-zero
//!   uid; as root, the stubs keep root only inside that user namespace).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

/// The fds of the holder's user, mount and network namespaces, for the
/// stubs to join (set once, when the namespaces were made).
static JOIN: OnceLock<[RawFd; 4]> = OnceLock::new();

/// The namespace types of [`join_fds`], in order.
pub const JOIN_TYPES: [i32; 4] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWPID,
];

/// The (user, mount, network, pid) namespace fds every new stub joins
/// before its exec, once [`make`] succeeded.
pub fn join_fds() -> Option<[RawFd; 4]> {
    JOIN.get().copied()
}

/// What [`make`] did.
#[derive(Debug)]
pub struct Made {
    /// The holder's pid (umlrun's child, pid 1 of the stubs' namespace).
    pub holder: i32,
    /// Whether umlrun entered a user namespace of its own (not root).
    pub own_userns: bool,
}

/// Makes the stubs' namespaces (see the module doc). `dir`: an existing
/// directory umlrun owns (the instance directory), where the holder mounts
/// the stubs' root in its own mount namespace (never seen from the host).
/// `will_be`: run as root, the (uid, gid) umlrun becomes right after this
/// (`uid=`/`gid=`): the stubs' user namespace is made as that user, so
/// that umlrun may still let stubs join it once it is that user. The
/// error says which step failed; umlrun is then as it was, except that
/// when not root it sits in its own user namespace without capabilities.
pub fn make(dir: &Path, will_be: Option<(u32, u32)>) -> Result<Made, String> {
    if JOIN.get().is_some() {
        return Err("already made".into());
    }
    let threads = thread_count().map_err(|e| format!("cannot count umlrun's threads: {e}"))?;
    if threads != 1 {
        return Err(format!("umlrun already runs {threads} threads"));
    }
    let root = super::privs::is_root();
    let own_userns = !root;
    if own_userns {
        enter_own_userns().map_err(|e| format!("cannot make a user namespace: {e}"))?;
    }
    let ids = match will_be {
        Some(ids) if root => ids,
        _ => super::privs::ids(),
    };
    let r = make_holder(dir, ids, root && ids != (0, 0));
    if own_userns {
        if let Err(e) = drop_all_caps() {
            // Cannot happen (lowering is always allowed); stop rather than
            // run on with capabilities.
            return Err(format!("cannot drop capabilities: {e}"));
        }
    }
    let (holder, fds) = r?;
    let _ = JOIN.set(fds);
    Ok(Made { holder, own_userns })
}

/// The number of threads of this process.
fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Writes the one-line maps of `pid` (a process in a new user namespace
/// whose parent namespace is ours): our own uid and gid, as themselves.
fn write_maps(pid: &str, uid: u32, gid: u32) -> io::Result<()> {
    let put = |name: &str, text: &str| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/{name}"))?;
        f.write_all(text.as_bytes())
    };
    // setgroups must be denied before an unprivileged gid_map.
    put("setgroups", "deny")?;
    put("uid_map", &format!("{uid} {uid} 1\n"))?;
    put("gid_map", &format!("{gid} {gid} 1\n"))
}

fn enter_own_userns() -> io::Result<()> {
    let (uid, gid) = super::privs::ids();
    // SAFETY: prctl with integer arguments only.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    // SAFETY: unshare takes an integer; one thread (checked by the caller).
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Gaining capabilities (in the new namespace) made umlrun undumpable,
    // which would make its /proc files root's (unreadable to its own
    // user, e.g. its memory figures): as it was before.
    if dumpable == 1 {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    write_maps("self", uid, gid)
}

/// Sets the effective uid and gid (root only; the real and saved ids
/// stay, so root's capabilities come back with euid 0).
fn set_effective(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments; -1 leaves an id as it is. The gid first:
    // after euid leaves 0 it may not change.
    unsafe {
        if uid == 0 && libc::setresuid(u32::MAX, 0, u32::MAX) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresgid(u32::MAX, gid, u32::MAX) != 0 {
            return Err(io::Error::last_os_error());
        }
        if uid != 0 && libc::setresuid(u32::MAX, uid, u32::MAX) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The change made umlrun undumpable, and the holder (a copy)
        // with it: its /proc files would be root's, its maps unwritable
        // by that user. Only a process whose real and saved ids are that
        // user too could trace either, and theirs stay root's.
        if uid != 0 {
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
    }
    Ok(())
}

/// Clears the effective, permitted and inheritable capability sets (in
/// umlrun's own user namespace, where it had them all).
fn drop_all_caps() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    let hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [0u32; 6]; // two __user_cap_data_struct, all zero
                          // SAFETY: capset reads the header and two data records, both ours.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The steps the holder reports a failure of (first byte of its report).
const HOLDER_STEPS: [&str; 10] = [
    "waiting for its maps",
    "making / private",
    "mounting the tmpfs root",
    "entering it",
    "pivot_root",
    "detaching the old root",
    "making the root read-only",
    "closing umlrun's fds",
    "making its own pipe",
    "exec of its own program",
];

/// What the holder needs, prepared before the clone (it may not allocate).
struct HolderArgs {
    dir: CString,
    tmpfs: CString,
    tmpfs_opts: CString,
    dot: CString,
    slash: CString,
    /// The holder's program ([`super::holder_image`]), a sealed memfd
    /// (close-on-exec), and its argv.
    exe: RawFd,
    argv0: CString,
}

/// The holder, its namespaces made as `ids` (as root with `as_user`:
/// with those as the effective ids, root's again afterwards).
fn make_holder(dir: &Path, ids: (u32, u32), as_user: bool) -> Result<(i32, [RawFd; 4]), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &str| CString::new(s).expect("no NUL");
    let exe =
        super::stub::StubExe::create_named("umlrun-nsholder", &super::holder_image::holder_elf())
            .map_err(|e| format!("cannot make the holder's program: {e}"))?;
    let args = HolderArgs {
        dir: CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| "the instance directory's path has a NUL".to_string())?,
        tmpfs: c("tmpfs"),
        tmpfs_opts: c("size=16k,nr_inodes=16,mode=0755"),
        dot: c("."),
        slash: c("/"),
        exe: exe.fd(),
        argv0: c("umlrun-nsholder"),
    };
    let (go_r, go_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (rep_r, rep_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (uid, gid) = ids;
    // Always a user namespace of their own, root staying root too: the
    // stubs then hold capabilities only there, none over the host (they
    // open nothing: fds made later are passed to them, `host::fdpass`).
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::SIGCHLD;
    if as_user {
        set_effective(uid, gid).map_err(|e| format!("cannot act as uid {uid} gid {gid}: {e}"))?;
    }
    // SAFETY: a fork-like clone (no CLONE_VM) of a one-thread process: the
    // child runs holder_main on its own copy of everything and never
    // returns (it sleeps until killed, or _exits).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        holder_main(&args, go_r.as_raw_fd(), rep_w.as_raw_fd());
    }
    let err = io::Error::last_os_error();
    let mapped = if pid > 0 {
        write_maps(&pid.to_string(), uid, gid)
    } else {
        Ok(())
    };
    if as_user {
        set_effective(0, 0).map_err(|e| format!("cannot become root again: {e}"))?;
    }
    if pid < 0 {
        return Err(format!(
            "cannot make the user, pid, mount and network namespaces: {err}"
        ));
    }
    let pid = pid as i32;
    drop((go_r, rep_w));
    let fail = |msg: String| -> Result<(i32, [RawFd; 4]), String> {
        kill_and_reap(pid);
        Err(msg)
    };
    if let Err(e) = mapped {
        return fail(format!("cannot map ids in the stubs' user namespace: {e}"));
    }
    let mut go = File::from(go_w);
    if let Err(e) = go.write_all(b"g") {
        return fail(format!("the namespace holder is gone: {e}"));
    }
    let mut report = [0u8; 5];
    let mut rep = File::from(rep_r);
    match rep.read_exact(&mut report) {
        Ok(()) if report[0] == 0xff => {}
        Ok(()) => {
            let step = HOLDER_STEPS.get(report[0] as usize).unwrap_or(&"?");
            let errno = i32::from_le_bytes([report[1], report[2], report[3], report[4]]);
            return fail(format!(
                "the stubs' mount namespace: {step}: {}",
                io::Error::from_raw_os_error(errno)
            ));
        }
        Err(e) => return fail(format!("the namespace holder ended early: {e}")),
    }
    let open_ns = |name: &str| -> io::Result<OwnedFd> {
        Ok(File::open(format!("/proc/{pid}/ns/{name}"))?.into())
    };
    let (user, mnt, net, pidns) = match (
        open_ns("user"),
        open_ns("mnt"),
        open_ns("net"),
        open_ns("pid"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (a, b, c, d) => {
            let e = [a.err(), b.err(), c.err(), d.err()]
                .into_iter()
                .flatten()
                .next();
            return fail(format!("cannot open the holder's namespaces: {e:?}"));
        }
    };
    // Kept open for umlrun's life: every stub joins through them.
    let keep = |f: OwnedFd| {
        let fd = f.as_raw_fd();
        std::mem::forget(f);
        fd
    };
    let fds = [keep(user), keep(mnt), keep(net), keep(pidns)];
    Ok((pid, fds))
}

/// The holder's side: raw syscalls only, then sleep for good.
fn holder_main(a: &HolderArgs, go: RawFd, rep: RawFd) -> ! {
    // SAFETY: this is a fork-like child of a one-thread process: its own
    // copy of memory; every call is a thin syscall wrapper on pointers to
    // `a` or locals. It never returns.
    unsafe {
        let report = |step: u8| -> ! {
            let e = if step == 0xff {
                0
            } else {
                *libc::__errno_location()
            };
            let b = e.to_le_bytes();
            let msg = [step, b[0], b[1], b[2], b[3]];
            libc::write(rep, msg.as_ptr().cast(), msg.len());
            libc::_exit(1)
        };
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"umlrun-nsholder".as_ptr());
        // umlrun's handlers must not run here.
        for sig in 1..=64 {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        let mut byte = 0u8;
        if libc::read(go, (&mut byte as *mut u8).cast(), 1) != 1 {
            report(0);
        }
        let null = std::ptr::null::<libc::c_char>();
        if libc::mount(
            null,
            a.slash.as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            report(1);
        }
        let hard = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(
            a.tmpfs.as_ptr(),
            a.dir.as_ptr(),
            a.tmpfs.as_ptr(),
            hard,
            a.tmpfs_opts.as_ptr().cast(),
        ) != 0
        {
            report(2);
        }
        if libc::chdir(a.dir.as_ptr()) != 0 {
            report(3);
        }
        if libc::syscall(libc::SYS_pivot_root, a.dot.as_ptr(), a.dot.as_ptr()) != 0 {
            report(4);
        }
        if libc::umount2(a.dot.as_ptr(), libc::MNT_DETACH) != 0
            || libc::chdir(a.slash.as_ptr()) != 0
        {
            report(5);
        }
        if libc::mount(
            null,
            a.slash.as_ptr(),
            null,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | hard,
            std::ptr::null(),
        ) != 0
        {
            report(6);
        }
        // Nothing of umlrun's: no disk, socket or terminal. The report
        // pipe and the program go above every fd umlrun has, the rest
        // closes, and the holder's own pipe takes fds 0 and 1 (what it
        // sleeps on: a pipe only it holds; read is one of the four calls
        // strict seccomp leaves), the report pipe fd 2.
        let hi = rep.max(a.exe) + 1;
        if libc::dup2(rep, hi) != hi
            || libc::dup3(a.exe, hi + 1, libc::O_CLOEXEC) != hi + 1
            || libc::syscall(libc::SYS_close_range, 0u32, (hi - 1) as u32, 0u32) != 0
            || libc::syscall(libc::SYS_close_range, (hi + 2) as u32, u32::MAX, 0u32) != 0
        {
            report(7);
        }
        let rep = hi;
        let report = |step: u8| -> ! {
            let b = (*libc::__errno_location()).to_le_bytes();
            let msg = [step, b[0], b[1], b[2], b[3]];
            libc::write(rep, msg.as_ptr().cast(), msg.len());
            libc::_exit(1)
        };
        let mut own = [0; 2];
        if libc::pipe2(own.as_mut_ptr(), 0) != 0 || own != [0, 1] || libc::dup2(rep, 2) != 2 {
            report(8);
        }
        libc::close(rep);
        let rep = 2;
        // It sleeps as its own one-page program, not as this copy of
        // umlrun (see holder_image): that names itself, reports ready on
        // fd 2, closes it and enters strict seccomp.
        // Its code and stack in one 2 MiB (see holder_image::BASE).
        libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
        let argv = [a.argv0.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        libc::syscall(
            libc::SYS_execveat,
            hi + 1,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        let b = (*libc::__errno_location()).to_le_bytes();
        let msg = [9, b[0], b[1], b[2], b[3]];
        libc::write(rep, msg.as_ptr().cast(), msg.len());
        libc::_exit(1)
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn kill_and_reap(pid: i32) {
    // SAFETY: our own child, not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
    }
}
