//! Boots many guests for integration tests: each instance gets its own COW
//! file over one backing image, its own umid and its own console on a pty;
//! waits for the `login:` prompts, logs in, runs commands, keeps the console
//! transcripts, and stops everything by pid (poweroff, then SIGTERM, then
//! SIGKILL) — also when a test fails, through `Drop`.
//!
//! The runner is umlrun by default; `MANY_RUNNER=uml` runs the same flow
//! against Debian's `linux.uml` as a reference, `MANY_MODE=copy|mmap` picks
//! umlrun's ubd mode. The Python twin is scripts/umlharness.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};

/// Ending processes by pid (tests/support/procs.rs, shared the same way).
#[allow(clippy::duplicate_mod)]
#[path = "../support/procs.rs"]
pub mod procs;
pub mod shell;
/// The host tools (tests/support/tools.rs, shared with `support`: a test
/// that has both loads the file twice, which is harmless).
#[allow(clippy::duplicate_mod)]
#[path = "../support/tools.rs"]
pub mod tools;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
#[allow(unused_imports)]
pub use tools::tool;

pub const LOGIN_PROMPT: &[u8] = b"login: ";
pub const SHELL_PROMPT: &[u8] = b"# ";

/// What went wrong with which instance; the message ends with the tail of
/// its console.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{tool} failed: {stderr}")]
    Tool { tool: String, stderr: String },
    #[error("instance {index} (umid {umid}): {what}\n--- last lines of its console ---\n{tail}")]
    Instance {
        index: usize,
        umid: String,
        what: String,
        tail: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// Which kernel boots the guests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerKind {
    /// umlrun with `ubd=<mode>` ("mmap" or "copy").
    Umlrun { mode: String },
    /// Debian's `linux.uml`, COW files from `uml_mkcow`.
    Uml,
}

#[derive(Clone, Debug)]
pub struct Runner {
    pub kind: RunnerKind,
    pub binary: PathBuf,
}

impl Runner {
    pub fn umlrun(mode: &str) -> Runner {
        Runner {
            kind: RunnerKind::Umlrun { mode: mode.into() },
            binary: PathBuf::from(env!("CARGO_BIN_EXE_umlrun")),
        }
    }

    pub fn uml() -> Runner {
        Runner {
            kind: RunnerKind::Uml,
            binary: PathBuf::from("linux.uml"),
        }
    }

    /// umlrun (mode from `MANY_MODE`, default mmap) unless `MANY_RUNNER=uml`.
    pub fn from_env() -> Runner {
        match std::env::var("MANY_RUNNER").as_deref() {
            Ok("uml") => Runner::uml(),
            _ => Runner::umlrun(&std::env::var("MANY_MODE").unwrap_or_else(|_| "mmap".into())),
        }
    }

    /// The command line of one instance.
    pub fn argv(
        &self,
        cow: &Path,
        backing: &Path,
        umid: &str,
        uml_dir: &Path,
        mem: &str,
    ) -> Vec<String> {
        let disk = format!("ubd0={},{}", cow.display(), backing.display());
        let (umid, dir) = (
            format!("umid={umid}"),
            format!("uml_dir={}", uml_dir.display()),
        );
        let mut v = vec![self.binary.display().to_string()];
        match &self.kind {
            RunnerKind::Umlrun { mode } => {
                v.extend([format!("mem={mem}"), format!("ubd={mode}"), disk, umid, dir]);
                v.push("con0=fd:0,fd:1".into());
            }
            RunnerKind::Uml => {
                v.extend([disk, format!("mem={mem}"), umid, dir]);
                v.extend(["con0=fd:0,fd:1", "con=null", "ssl=null"].map(String::from));
            }
        }
        v
    }

    /// Make a fresh COW file over `backing` (umlcow, or uml_mkcow for UML).
    pub fn make_cow(&self, cow: &Path, backing: &Path) -> Result<(), HarnessError> {
        let mut cmd = match self.kind {
            RunnerKind::Umlrun { .. } => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_umlcow"));
                c.arg("create");
                c
            }
            RunnerKind::Uml => {
                let mut c = Command::new("uml_mkcow");
                c.arg("-f");
                c
            }
        };
        let out = cmd
            .arg(cow)
            .arg(backing)
            .output()
            .map_err(io_err("run the COW tool"))?;
        if !out.status.success() {
            return Err(HarnessError::Tool {
                tool: format!("{cmd:?}"),
                stderr: String::from_utf8_lossy(&out.stderr).into(),
            });
        }
        Ok(())
    }
}

/// The console bytes so far, and whether the pty reached end of file.
#[derive(Default)]
struct Console {
    buf: Vec<u8>,
    eof: bool,
}

type Shared = Arc<(Mutex<Console>, Condvar)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Booting,
    Login,
    Shell,
    Stopping,
    Exited,
}

/// One running instance with its console on a pty.
pub struct Instance {
    pub index: usize,
    pub umid: String,
    pub cow: PathBuf,
    pub state: State,
    /// Killed with everything it started, by pid, when the instance goes.
    child: procs::Reaped,
    writer: File,
    console: Shared,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    pub boot_time: Option<Duration>,
    /// The pty's termios just before umlrun started.
    pub termios_at_start: Termios,
}

impl Instance {
    /// Start `argv` with a raw pty as stdin, stdout and stderr, in its own
    /// process group (so leftovers can be killed by group id = its pid).
    pub fn spawn(
        index: usize,
        umid: &str,
        cow: PathBuf,
        argv: &[String],
    ) -> Result<Instance, HarnessError> {
        Instance::spawn_on(index, umid, cow, argv, true)
    }

    /// As `spawn`; `host_raw: false` leaves the pty in its default cooked
    /// mode, like a user's terminal, so umlrun's own raw mode and its
    /// restoring can be seen with `host_termios`.
    pub fn spawn_on(
        index: usize,
        umid: &str,
        cow: PathBuf,
        argv: &[String],
        host_raw: bool,
    ) -> Result<Instance, HarnessError> {
        // Wide: the guest's line editor wraps long command lines at the
        // terminal width, which would split the echoed line `run` looks for.
        let size = Winsize {
            ws_row: 50,
            ws_col: 1000,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).map_err(|e| io_err("openpty")(e.into()))?;
        // Raw host side: the guest's own line discipline echoes and edits.
        let mut t = tcgetattr(&pty.slave).map_err(|e| io_err("tcgetattr")(e.into()))?;
        if host_raw {
            cfmakeraw(&mut t);
            tcsetattr(&pty.slave, SetArg::TCSANOW, &t)
                .map_err(|e| io_err("tcsetattr")(e.into()))?;
        }
        let termios_at_start = tcgetattr(&pty.slave).map_err(|e| io_err("tcgetattr")(e.into()))?;
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(io_err("dup pty"));
        let child = procs::Reaped::spawn(
            Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::from(dup(&pty.slave)?))
                .stdout(Stdio::from(dup(&pty.slave)?))
                .stderr(Stdio::from(dup(&pty.slave)?))
                .process_group(0),
        )
        .map_err(io_err(format!("start {}", argv[0])))?;
        drop(pty.slave);
        let writer = File::from(dup(&pty.master)?);
        let mut reader_file = File::from(pty.master);
        let console: Shared = Arc::default();
        let shared = Arc::clone(&console);
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 65536];
            loop {
                // EIO once every slave end is closed: that is end of file.
                let n = reader_file.read(&mut chunk).unwrap_or(0);
                let (lock, cv) = &*shared;
                let mut c = lock.lock().unwrap();
                if n == 0 {
                    c.eof = true;
                    cv.notify_all();
                    return;
                }
                c.buf.extend_from_slice(&chunk[..n]);
                cv.notify_all();
            }
        });
        Ok(Instance {
            index,
            umid: umid.into(),
            cow,
            state: State::Booting,
            child,
            writer,
            console,
            reader: Some(reader),
            started: Instant::now(),
            boot_time: None,
            termios_at_start,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The termios of umlrun's terminal (the pty slave) now. Linux answers
    /// TCGETS on a pty master with its slave's settings, and they outlive
    /// umlrun's exit while the master is open.
    pub fn host_termios(&self) -> Result<Termios, HarnessError> {
        tcgetattr(&self.writer).map_err(|e| io_err("tcgetattr on the pty master")(e.into()))
    }

    /// Resize the terminal, as a user resizing the window does: TIOCSWINSZ
    /// on the pty master. umlrun is not in the pty's session, so it gets
    /// no SIGWINCH and notices the new size by itself.
    pub fn set_window_size(&self, rows: u16, cols: u16) -> Result<(), HarnessError> {
        use std::os::fd::AsRawFd;
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one struct winsize from `ws`, which
        // lives across the call; the fd is our open pty master.
        let r = unsafe { libc::ioctl(self.writer.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r != 0 {
            return Err(io_err("TIOCSWINSZ on the pty master")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Still running (not yet exited)?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit code once it has exited (None while running or if killed).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }

    pub fn transcript(&self) -> Vec<u8> {
        self.console.0.lock().unwrap().buf.clone()
    }

    /// The console length now: a starting point for `expect`.
    pub fn mark(&self) -> usize {
        self.console.0.lock().unwrap().buf.len()
    }

    pub fn tail(&self, lines: usize) -> String {
        let buf = self.transcript();
        let text =
            String::from_utf8_lossy(&buf[buf.len().saturating_sub(8192)..]).replace('\r', "");
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn fail(&mut self, what: String) -> HarnessError {
        let what = match self.child.try_wait() {
            Ok(Some(s)) => format!("{what} (process exited: {s})"),
            _ => what,
        };
        HarnessError::Instance {
            index: self.index,
            umid: self.umid.clone(),
            what,
            tail: self.tail(15),
        }
    }

    pub fn send(&mut self, text: &str) -> Result<(), HarnessError> {
        self.writer
            .write_all(text.as_bytes())
            .map_err(io_err(format!("write to the console of {}", self.umid)))
    }

    /// Wait for `pat` after console offset `from`; returns (start, end) of it.
    pub fn expect(
        &mut self,
        pat: &[u8],
        from: usize,
        timeout: Duration,
    ) -> Result<(usize, usize), HarnessError> {
        let deadline = Instant::now() + timeout;
        let found = {
            let (lock, cv) = &*self.console;
            let mut c = lock.lock().unwrap();
            loop {
                if let Some(at) = find(&c.buf, pat, from) {
                    break Ok((at, at + pat.len()));
                }
                let now = Instant::now();
                if c.eof || now >= deadline {
                    break Err(c.eof);
                }
                c = cv
                    .wait_timeout(c, (deadline - now).min(Duration::from_millis(500)))
                    .unwrap()
                    .0;
            }
        };
        found.map_err(|eof| {
            let why = if eof {
                "its console closed".to_string()
            } else {
                format!("no {:?} within {timeout:?}", String::from_utf8_lossy(pat))
            };
            self.fail(why)
        })
    }

    pub fn wait_login(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        self.expect(LOGIN_PROMPT, 0, timeout)?;
        self.boot_time = Some(self.started.elapsed());
        self.state = State::Login;
        Ok(())
    }

    /// Log in as root (no password) and wait for the shell prompt.
    pub fn login(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let at = self.mark();
        self.send("root\n")?;
        self.expect(SHELL_PROMPT, at, timeout)?;
        self.state = State::Shell;
        Ok(())
    }

    /// [`Instance::run`] for tests: echoes the line and its output to the
    /// test's log and returns (status, output); a harness failure panics.
    pub fn sh(&mut self, command: &str, timeout: Duration) -> (i32, String) {
        let (st, out) = self.run(command, timeout).unwrap();
        eprintln!("[{}] $ {command}\n{out}[{st}]", self.umid);
        (st, out)
    }

    /// Run one shell line; returns its exit status and output. It is sent
    /// as `echo @@b""eg@@; LINE; echo @@rc$?@@`: the echo of the typed line
    /// (re-wrapped by the guest's line editor past 80 columns) keeps `""` and
    /// `$?` literal, so only the real output matches `@@beg@@` and
    /// `@@rc<digits>@@`, and a `# ` in the output is not the prompt.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<(i32, String), HarnessError> {
        if self.state != State::Shell {
            return Err(self.fail(format!("run {command:?}: not at a shell prompt")));
        }
        let at = self.mark();
        // `cmd &; echo` is a syntax error: a background job ends its list.
        let sep = if command.trim_end().ends_with('&') && !command.trim_end().ends_with("&&") {
            ""
        } else {
            ";"
        };
        // The begin marker is typed as @@b""eg@@ so only the echoed output
        // (not the echo of the typed line) matches @@beg@@.
        self.send(&format!("echo @@b\"\"eg@@; {command}{sep} echo @@rc$?@@\n"))?;
        let (_, begin) = self.expect(b"@@beg@@", at, timeout)?;
        let (_, out_start) = self.expect(b"\n", begin, timeout)?;
        let (start, end) = self.expect(b"@@rc", out_start, timeout)?;
        let (close, after) = self.expect(b"@@", end, timeout)?;
        self.expect(SHELL_PROMPT, after, timeout)?;
        let buf = self.transcript();
        let status = String::from_utf8_lossy(&buf[end..close])
            .parse()
            .unwrap_or(-1);
        let out = String::from_utf8_lossy(&buf[out_start..start]).replace('\r', "");
        Ok((status, out))
    }

    /// Ask the guest to power off; best effort, never fails. `force` sends
    /// `sync; poweroff -f` (reboot(2) at once, no init shutdown actions): the
    /// fallback for a guest whose init ignored a plain `poweroff`.
    pub fn request_poweroff(&mut self, force: bool) {
        if !self.alive() {
            return;
        }
        if self.state == State::Login && self.login(Duration::from_secs(10)).is_err() {
            return;
        }
        let line = if force {
            "sync; poweroff -f\n"
        } else {
            "poweroff\n"
        };
        if matches!(self.state, State::Shell | State::Stopping) && self.send(line).is_ok() {
            self.state = State::Stopping;
        }
    }

    /// `sig` to the instance's pid; SIGKILL to everything it started too
    /// (its descendants, its process group and session, by pid: Debian's
    /// linux.uml leaves helpers that outlive it).
    pub fn signal(&mut self, sig: i32) {
        let alive = self.alive();
        if sig == libc::SIGKILL {
            procs::kill_tree(self.pid(), alive, Duration::from_secs(10));
        } else if alive {
            // SAFETY: kill(2) on the pid of a child we started and have not
            // reaped yet, so the pid cannot have been reused.
            unsafe { libc::kill(self.pid(), sig) };
        }
    }

    /// Wait up to `timeout` for the instance to exit by itself; its exit
    /// status, or None if it still runs (it is not killed here).
    pub fn wait_exited(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.state = State::Exited;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fail naming this instance, with the tail of its console.
    pub fn error(&mut self, what: impl Into<String>) -> HarnessError {
        self.fail(what.into())
    }

    fn wait_exit(&mut self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if !self.alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        !self.alive()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // The child's own Drop kills its whole tree and reaps it.
        // Not joined: the reader ends by itself once every holder of the pty
        // slave is gone, and a stray holder must not hang the test.
        drop(self.reader.take());
    }
}

fn find(hay: &[u8], pat: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// N instances over one backing image, in a temp dir of their own.
pub struct Fleet {
    pub runner: Runner,
    pub backing: PathBuf,
    pub mem: String,
    pub instances: Vec<Instance>,
    /// Put each console pty in raw mode before starting (the default);
    /// false leaves it cooked, as a user's terminal is.
    pub host_raw: bool,
    /// More switches for every instance started from now on.
    pub extra_args: Vec<String>,
    dir: tempfile::TempDir,
    tag: String,
}

impl Fleet {
    /// One instance of `runner` with the `extra` switches, booted and
    /// logged in as root (panics on a harness failure).
    pub fn one_logged_in(
        runner: Runner,
        backing: &Path,
        mem: &str,
        extra: &[String],
        boot: Duration,
        cmd: Duration,
    ) -> Fleet {
        let mut fleet = Fleet::new(runner, backing, mem).unwrap();
        fleet.extra_args.extend(extra.iter().cloned());
        fleet.start(1).unwrap();
        let g = &mut fleet.instances[0];
        g.wait_login(boot).unwrap();
        g.login(cmd).unwrap();
        fleet
    }

    pub fn new(runner: Runner, backing: &Path, mem: &str) -> Result<Fleet, HarnessError> {
        let dir = tempfile::tempdir().map_err(io_err("make a temp dir"))?;
        Ok(Fleet {
            runner,
            backing: backing
                .canonicalize()
                .map_err(io_err(format!("{}", backing.display())))?,
            mem: mem.into(),
            instances: Vec::new(),
            host_raw: true,
            extra_args: Vec::new(),
            dir,
            tag: format!("many{}", std::process::id()),
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn uml_dir(&self) -> PathBuf {
        self.dir.path().join("uml")
    }

    /// Make COW files for and start `n` more instances (not waiting).
    pub fn start(&mut self, n: usize) -> Result<(), HarnessError> {
        for _ in 0..n {
            let index = self.instances.len();
            let umid = format!("{}-{index:03}", self.tag);
            let cow = self.dir.path().join(format!("{umid}.cow"));
            self.runner.make_cow(&cow, &self.backing)?;
            let mut argv = self
                .runner
                .argv(&cow, &self.backing, &umid, &self.uml_dir(), &self.mem);
            argv.extend(self.extra_args.iter().cloned());
            self.instances
                .push(Instance::spawn_on(index, &umid, cow, &argv, self.host_raw)?);
        }
        Ok(())
    }

    /// Wait for every login prompt, printing "booted k/N" as they come.
    /// Returns every failure, each naming its instance.
    pub fn wait_all_prompts(&mut self, timeout: Duration) -> Result<(), Vec<HarnessError>> {
        let deadline = Instant::now() + timeout;
        let total = self.instances.len();
        let mut errors = Vec::new();
        // The reader threads run in parallel; waiting in turn costs nothing.
        for i in 0..total {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.instances[i].wait_login(left.max(Duration::from_millis(1))) {
                Ok(()) => {}
                Err(e) => errors.push(e),
            }
            let booted = self
                .instances
                .iter()
                .filter(|x| x.state == State::Login)
                .count();
            eprint!("\rbooted {booted}/{total}");
        }
        eprintln!();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Log every instance at its prompt in as root.
    pub fn login_all(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        for inst in &mut self.instances {
            inst.login(timeout)?;
        }
        Ok(())
    }

    /// Save every console transcript as `<dir>/<umid>.log`.
    pub fn save_transcripts(&self, dir: &Path) -> Result<(), HarnessError> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("mkdir {}", dir.display())))?;
        for inst in &self.instances {
            let p = dir.join(format!("{}.log", inst.umid));
            std::fs::write(&p, inst.transcript())
                .map_err(io_err(format!("write {}", p.display())))?;
        }
        Ok(())
    }

    /// poweroff, then SIGTERM, then SIGKILL, each by pid. Returns the indexes
    /// of instances that did not power off cleanly (exit code 0).
    pub fn stop_all(&mut self) -> Vec<usize> {
        let grace =
            Duration::from_secs(15) + Duration::from_millis(200) * self.instances.len() as u32;
        for force in [false, true] {
            for inst in &mut self.instances {
                if !force || (inst.state == State::Stopping && inst.alive()) {
                    inst.request_poweroff(force);
                }
            }
            // A plain poweroff goes through init; give it a few seconds
            // before forcing.
            let wait = if force { grace } else { Duration::from_secs(5) };
            let deadline = Instant::now() + wait;
            for inst in &mut self.instances {
                if inst.state == State::Stopping {
                    inst.wait_exit(deadline);
                }
            }
        }
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            let mut any = false;
            for inst in &mut self.instances {
                if inst.alive() {
                    inst.signal(sig);
                    any = true;
                }
            }
            if any {
                let deadline = Instant::now() + Duration::from_secs(5);
                for inst in &mut self.instances {
                    inst.wait_exit(deadline);
                }
            }
        }
        let mut unclean = Vec::new();
        for inst in &mut self.instances {
            if inst.exit_code() != Some(0) {
                unclean.push(inst.index);
            }
            inst.signal(libc::SIGKILL); // leftovers in its group
            inst.state = State::Exited;
        }
        unclean
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if self.instances.iter_mut().any(|i| i.alive()) {
            self.stop_all();
        }
        // Each instance's tree dies with it; then whatever still names
        // this fleet's directory (an orphaned helper in a session of its
        // own) goes too.
        self.instances.clear();
        let mut marker = self.dir().as_os_str().as_encoded_bytes().to_vec();
        marker.push(b'/');
        procs::kill_marked(&marker, Duration::from_secs(10));
    }
}

/// A Fleet's failures as one message.
pub fn describe(errors: &[HarnessError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The 16 counters of `dev`'s line in /proc/net/dev's text (rx bytes,
/// packets, errs, drop, fifo, frame, compressed, multicast, then tx bytes,
/// packets, errs, drop, fifo, colls, carrier, compressed).
pub fn net_dev_counters(proc_net_dev: &str, dev: &str) -> Vec<u64> {
    let line = proc_net_dev
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{dev}:")))
        .unwrap_or_else(|| panic!("no {dev} in {proc_net_dev}"));
    line.split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

/// Answers one HTTP/1.0 request on `server` with `body`, on a thread; the
/// request's text comes back through the join handle.
pub fn serve_http_once(
    server: std::net::TcpListener,
    body: Vec<u8>,
) -> std::thread::JoinHandle<String> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let (mut c, _) = server.accept().expect("accept the guest");
        let mut req = [0u8; 1024];
        let n = c.read(&mut req).expect("request");
        write!(
            c,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        c.write_all(&body).unwrap();
        String::from_utf8_lossy(&req[..n]).to_string()
    })
}
