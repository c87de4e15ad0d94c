//! The kernel side of the management console: serving requests from the
//! instance's mconsole socket, freezing the guest (`stop`/`go`), and memory
//! hot-plug (`config mem=±N`).
//!
//! Requests are read without blocking whenever the scheduler looks at host
//! input ([`Kernel::mconsole_service`]); while the guest is stopped, the
//! scheduler waits on this socket alone ([`Kernel::mconsole_wait_frozen`])
//! and runs no task, as UML's `mconsole_stop` loops on its socket.
//!
//! Replies never block: a client that has gone or stops reading loses the
//! rest of its answer, the guest goes on.

use std::path::PathBuf;
use std::time::Duration;

use super::core::{Kernel, Shutdown};
use super::signal::{SigInfo, SIGINT, SIGKILL, SIGTERM};
use super::task::{Pid, TaskState, Wait};
use crate::abi::PAGE;
use crate::config::size::format_size;
use crate::host::mcsock::{self, DgramServer, Peer};
use crate::mconsole::commands::{self, parse_mem_change, Command, Device, MemChange};
use crate::mconsole::protocol::{self, NotifyType, REQUEST_SIZE};
use crate::mm::Backing;

/// `si_code` SI_KERNEL: a signal the kernel itself sends.
const SI_KERNEL: i32 = 0x80;
/// Free memory an unplug always leaves the guest, so it can go on running
/// (never an OOM kill to satisfy an unplug).
pub const UNPLUG_RESERVE_FRAMES: u64 = (4 << 20) / PAGE;
/// Most requests served in one turn, so a flood cannot starve the guest.
const BURST: usize = 64;

/// The console's state, kept across reboots of the instance.
#[derive(Default)]
pub struct Mconsole {
    server: Option<DgramServer>,
    notify: Option<PathBuf>,
    /// `stop` is in force: no task runs until `go`.
    pub frozen: bool,
    /// /dev/watchdog (its hang goes out as a notify message).
    pub watchdog: super::files::watchdog::Watchdog,
}

impl Mconsole {
    /// Binds `<dir>/mconsole`; a failure is logged and the instance runs
    /// without a console (as UML does), telling the user once on stderr.
    pub fn open(dir: &std::path::Path, notify: Option<PathBuf>) -> Mconsole {
        let path = dir.join("mconsole");
        let server = match DgramServer::bind(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!(
                    "umlrun: mconsole: {}: {e}; running without a management console",
                    path.display()
                );
                None
            }
        };
        let m = Mconsole {
            server,
            notify,
            frozen: false,
            watchdog: Default::default(),
        };
        if let Some(s) = &m.server {
            m.notify(NotifyType::Socket, s.path().as_os_str().as_encoded_bytes());
        }
        m
    }

    /// The socket's fd, for the scheduler's idle wait.
    pub fn fd(&self) -> Option<i32> {
        self.server.as_ref().map(|s| s.raw_fd())
    }

    /// Whether notify messages go anywhere (`mconsole=notify:<socket>`).
    pub fn has_notify(&self) -> bool {
        self.notify.is_some()
    }

    /// Sends a notify message with exactly `data` (UML's user notify: the
    /// bytes written to /proc/mconsole, no NUL added), if asked for.
    pub fn notify_raw(&self, kind: NotifyType, data: &[u8]) {
        if let Some(p) = &self.notify {
            if let Err(e) = mcsock::send_oneway(p, &protocol::encode_notify_raw(kind, data)) {
                log::warn!("mconsole notify to {}: {e}", p.display());
            }
        }
    }

    /// Sends a notify message (socket, panic, hang, user), if asked for.
    pub fn notify(&self, kind: NotifyType, text: &[u8]) {
        if let Some(p) = &self.notify {
            if let Err(e) = mcsock::send_oneway(p, &protocol::encode_notify(kind, text)) {
                log::warn!("mconsole notify to {}: {e}", p.display());
            }
        }
    }

    fn reply(&self, peer: &Peer, text: &[u8], err: bool) {
        let Some(s) = &self.server else { return };
        for d in protocol::encode_reply(text, err) {
            if let Err(e) = s.send(peer, &d) {
                log::debug!("mconsole: reply dropped: {e}");
                return;
            }
        }
    }

    fn reply_plain(&self, peer: &Peer, text: &str) {
        let Some(s) = &self.server else { return };
        let mut d = text.as_bytes().to_vec();
        d.push(0);
        let _ = s.send(peer, &d);
    }
}

/// What a command answers.
struct Answer {
    err: bool,
    text: String,
}

fn ok(text: impl Into<String>) -> Answer {
    Answer {
        err: false,
        text: text.into(),
    }
}

fn fail(text: impl Into<String>) -> Answer {
    Answer {
        err: true,
        text: text.into(),
    }
}

impl Kernel {
    /// A kernel panic with the text Linux's panic() would get: the notify
    /// socket hears it (UML's notify_panic: the text and its NUL), and the
    /// instance ends as `how` says. Not when a shutdown is already under
    /// way (init ending in a power-off is no panic).
    pub fn panic(&mut self, text: &str, how: Shutdown) {
        if self.shutdown.is_none() {
            log::info!("Kernel panic - not syncing: {text}");
            self.mconsole.notify(NotifyType::Panic, text.as_bytes());
            self.shutdown = Some(how);
        }
    }

    /// Takes the console for this boot and registers its socket with the
    /// host event loop.
    pub fn mconsole_attach(&mut self, m: Mconsole) {
        self.mconsole = m;
        if let Some(fd) = self.mconsole.fd() {
            if let Err(e) = self.register_host_source(
                fd,
                crate::host::event_loop::Interest::READ,
                super::hostsrc::HostSource::Mconsole,
            ) {
                log::warn!("mconsole socket not watched: {e}");
            }
        }
    }

    /// Serves every request waiting on the socket (at most a burst).
    pub fn mconsole_service(&mut self) {
        for _ in 0..BURST {
            let Some(server) = self.mconsole.server.as_ref() else {
                return;
            };
            let Some((dgram, full, peer)) = server.recv(REQUEST_SIZE) else {
                return;
            };
            let text = if full > REQUEST_SIZE {
                Err(protocol::RequestError::TooLarge(full as u32))
            } else {
                protocol::parse_request(&dgram)
            };
            let text = match text {
                Ok(t) => t,
                Err(e) if e.plain_reply() => {
                    self.mconsole.reply_plain(&peer, &e.to_string());
                    continue;
                }
                Err(e) => {
                    log::debug!("mconsole: bad request: {e}");
                    self.mconsole.reply(&peer, e.to_string().as_bytes(), true);
                    continue;
                }
            };
            log::info!("mconsole: {text}");
            let a = match commands::parse(&text) {
                Ok(cmd) => self.mconsole_run(cmd),
                Err(msg) => fail(msg),
            };
            self.mconsole.reply(&peer, a.text.as_bytes(), a.err);
        }
    }

    /// While stopped: waits for requests on the socket alone (at most
    /// `max`, so termination signals are still seen) and serves them.
    pub fn mconsole_wait_frozen(&mut self, max: Duration) {
        match self.mconsole.fd() {
            Some(fd) => {
                if mcsock::wait_readable(fd, Some(max)) {
                    self.mconsole_service();
                }
            }
            // No socket to say `go` on: nothing can have frozen us.
            None => self.mconsole.frozen = false,
        }
    }

    fn mconsole_run(&mut self, cmd: Command) -> Answer {
        match cmd {
            Command::Version => ok(format!(
                "Linux {} 6.1.0-umlrun #1 umlrun {} x86_64",
                String::from_utf8_lossy(&self.config.hostname),
                env!("CARGO_PKG_VERSION")
            )),
            Command::Help => ok(commands::HELP),
            Command::Halt => {
                self.mconsole.frozen = false;
                self.shutdown = Some(Shutdown::Halt);
                ok("")
            }
            Command::Reboot => {
                self.mconsole.frozen = false;
                self.shutdown = Some(Shutdown::Restart);
                ok("")
            }
            Command::Cad => {
                // Linux's ctrl_alt_del with C-A-D off: SIGINT to init,
                // whose inittab says what to do.
                self.send_to_process(
                    1,
                    SigInfo {
                        signo: SIGINT,
                        code: SI_KERNEL,
                        ..Default::default()
                    },
                );
                ok("")
            }
            Command::Stop if self.mconsole.frozen => fail("Already stopped"),
            Command::Stop => {
                self.mconsole.frozen = true;
                ok("stopped")
            }
            Command::Go if !self.mconsole.frozen => fail("Not stopped"),
            Command::Go => {
                self.mconsole.frozen = false;
                ok("")
            }
            Command::Sysrq(key) => self.sysrq(key),
            Command::Proc(file) => self.mconsole_proc(&file),
            Command::Log(text) => {
                let mut line = text.into_bytes();
                line.extend_from_slice(b"\r\n");
                self.console.write_raw(&line);
                ok("")
            }
            Command::ConfigGet(Device::Mem) => {
                ok((self.physmem.frames_plugged() * PAGE).to_string())
            }
            Command::ConfigSet(Device::Mem, spec) => match parse_mem_change(&spec) {
                Ok(change) => self.mem_change(change),
                Err(msg) => fail(msg),
            },
            Command::Remove(Device::Mem) => fail("Memory doesn't support the remove operation"),
            Command::ConfigGet(Device::HostMemMax) => ok(match self.budget.bytes {
                Some(b) => format!("{} ({})", format_size(b), self.budget.source),
                None => "none".into(),
            }),
            Command::ConfigSet(Device::HostMemMax, spec) => {
                match commands::parse_host_mem_max(&spec) {
                    Ok(v) => {
                        self.budget_set(v);
                        ok("")
                    }
                    Err(msg) => fail(msg),
                }
            }
            Command::Remove(Device::HostMemMax) => {
                fail("host_mem_max doesn't support the remove operation")
            }
            Command::ConfigGet(Device::Limit(l)) => ok(self.limit_get(l)),
            Command::ConfigSet(Device::Limit(l), spec) => {
                match crate::config::limits::parse_limit(l, &spec) {
                    Ok(v) => {
                        self.limit_set(l, v);
                        ok("")
                    }
                    Err(msg) => fail(msg),
                }
            }
            Command::Remove(Device::Limit(l)) => {
                fail(format!("{} doesn't support the remove operation", l.name()))
            }
            Command::ConfigGet(Device::Ubd(n)) => {
                match self.config.disks.iter().find(|(i, _)| *i == n) {
                    Some((_, spec)) => ok(spec.clone()),
                    None => ok(""),
                }
            }
            Command::ConfigSet(Device::Ubd(n), rest) => self.ubd_hot_add(n, &rest),
            Command::Remove(Device::Ubd(n)) => self.ubd_hot_remove(n),
            Command::ConfigGet(Device::Eth(n)) => ok(self.net_describe(n)),
            Command::ConfigSet(Device::Eth(n), spec) => match self.net_hot_add(n, &spec) {
                Ok(()) => ok(""),
                Err(msg) => fail(msg),
            },
            Command::Remove(Device::Eth(n)) => {
                fail(format!("eth{n}: network interfaces cannot be removed yet"))
            }
            Command::Stack(pid) => self.mconsole_stack(pid),
            Command::Stats => ok(self.stats_json().to_string()),
        }
    }

    /// `config ubd<N>[flags]=<file>[,<backing>]`: opens the disk in the
    /// instance's `ubd=` mode, adds it to the disk table and makes its
    /// node in every devtmpfs, so the guest can mount it at once. In mmap
    /// mode every stub gets the disk's host fds first (running guests'
    /// through the platform, later ones inherit them); if one cannot, the
    /// disk is opened in copy mode instead (logged), as a disk whose pages
    /// some guest could not map must not be substituted.
    fn ubd_hot_add(&mut self, n: u8, rest: &str) -> Answer {
        let arg = format!("ubd{n}{rest}");
        let defaults = crate::config::Defaults {
            home: None,
            umid: "hotplug".into(),
            cpus: Vec::new(),
            platform: Default::default(),
        };
        let spec = match crate::config::parse_args(&[arg.as_str()], &defaults) {
            Ok(crate::config::Command::Run(cfg)) => match cfg.ubds.into_iter().next() {
                Some(s) => s,
                None => return fail("Bad configuration option"),
            },
            Ok(_) => return fail("Bad configuration option"),
            Err(e) => return fail(e.to_string()),
        };
        let index = spec.index as usize;
        if index >= crate::block::disks::MAX_DISKS {
            return fail(format!("{arg}: only ubd0 to ubd15"));
        }
        if self.disks.get(index).is_some() {
            return fail(format!("ubd{n} is already configured"));
        }
        let mut spec = spec;
        spec.mode = self.config.ubd_mode;
        let mut ubd = match crate::block::Ubd::open_confined(&spec, self.config.cow_backing) {
            Ok(u) => std::sync::Arc::new(u),
            Err(e) => return fail(format!("{arg}: {e}")),
        };
        if spec.mode == crate::config::UbdMode::Mmap && !self.share_disk_fds(&ubd.host_fds()) {
            log::warn!("{arg}: a guest cannot map the disk's pages: copy mode for it");
            drop(ubd);
            spec.mode = crate::config::UbdMode::Copy;
            ubd = match crate::block::Ubd::open_confined(&spec, self.config.cow_backing) {
                Ok(u) => std::sync::Arc::new(u),
                Err(e) => return fail(format!("{arg}: {e}")),
            };
        }
        if let Err(e) = self.disks.insert(index, ubd) {
            return fail(format!("{arg}: {e}"));
        }
        let (major, minor) = crate::block::disks::disk_dev(index);
        let node = crate::fs::devices::BlockNode {
            name: crate::block::disks::disk_name(index),
            major,
            minor,
        };
        for fs in self.devtmpfs_mounts() {
            if let Err(e) = crate::fs::devices::add_block_node(fs.as_ref(), &node) {
                log::warn!("/dev/{}: {e}", node.name);
            }
        }
        self.config.disks.push((spec.index, spec.switch_text()));
        log::info!("mconsole: hot-added {}", spec.switch_text());
        ok("")
    }

    /// Gives every stub, running or to come, the host fds of a hot-added
    /// disk (ubd=mmap maps its pages by fd). False if a running guest
    /// could not take them.
    fn share_disk_fds(&mut self, fds: &[std::os::fd::RawFd]) -> bool {
        for &fd in fds {
            for (id, mm) in self.mms.iter_mut() {
                if let Err(e) = mm.guest.adopt_fd(fd) {
                    log::warn!("address space {id}: cannot take host fd {fd}: {e}");
                    return false;
                }
            }
        }
        for &fd in fds {
            self.platform.share_fd(fd);
            if !self.config.keep_fds.contains(&fd) {
                self.config.keep_fds.push(fd);
            }
        }
        true
    }

    /// `remove ubd<N>`: refused while the disk is mounted or held
    /// (UML's rule), else flushed and taken out of the guest.
    fn ubd_hot_remove(&mut self, n: u8) -> Answer {
        let index = n as usize;
        if index >= crate::block::disks::MAX_DISKS {
            return fail("Invalid device number - must be between 0 and 15");
        }
        let ubd = match self.disks.remove(index) {
            Ok(u) => u,
            Err(crate::errno::Errno::EBUSY) => return fail("Device is currently open"),
            Err(_) => return fail("Device doesn't exist"),
        };
        if let Err(e) = ubd.flush() {
            log::error!("flushing ubd{n}: {e}");
        }
        // Its fds close with it: stubs spawned later must not keep
        // whatever reuses those numbers.
        for fd in ubd.host_fds() {
            if self.config.keep_fds.contains(&fd) {
                self.config.keep_fds.retain(|&k| k != fd);
                self.platform.unshare_fd(fd);
            }
        }
        let name = crate::block::disks::disk_name(index);
        for fs in self.devtmpfs_mounts() {
            let _ = fs.unlink(fs.root(), name.as_bytes());
        }
        self.config.disks.retain(|(i, _)| *i != n);
        ok("")
    }

    fn devtmpfs_mounts(&self) -> Vec<std::rc::Rc<dyn crate::fs::FileSystem>> {
        self.mounts
            .iter()
            .filter(|(_, m)| m.source == "devtmpfs")
            .map(|(_, m)| m.fs.clone())
            .collect()
    }

    /// `config mem=±N`.
    fn mem_change(&mut self, change: MemChange) -> Answer {
        match change {
            MemChange::Unplug(bytes) => {
                let plugged = self.physmem.frames_plugged() * PAGE;
                if bytes > plugged {
                    return fail(format!(
                        "Cannot unplug {}: the guest has only {} plugged",
                        format_size(bytes),
                        format_size(plugged)
                    ));
                }
                let taken = self.mem_unplug(bytes / PAGE) * PAGE;
                if taken < bytes {
                    ok(format!(
                        "unplugged {} of {} asked (the rest is in use); memory now {}",
                        format_size(taken),
                        format_size(bytes),
                        format_size(self.physmem.frames_plugged() * PAGE)
                    ))
                } else {
                    ok("")
                }
            }
            MemChange::Plug(bytes) => {
                let want = bytes / PAGE;
                let given = self.physmem.plug(want);
                self.mem_size_changed();
                let max = self.physmem.frames_total() * PAGE;
                if given == 0 && want > 0 {
                    fail(format!(
                        "Cannot plug {}: already at maxmem={}",
                        format_size(bytes),
                        format_size(max)
                    ))
                } else if given < want {
                    ok(format!(
                        "plugged {} of {} asked (maxmem={}); memory now {}",
                        format_size(given * PAGE),
                        format_size(bytes),
                        format_size(max),
                        format_size(self.physmem.frames_plugged() * PAGE)
                    ))
                } else {
                    ok("")
                }
            }
        }
    }

    /// Takes up to `frames` out of the guest: clean page cache is evicted
    /// first, then free frames are unplugged (punched). Never below the
    /// reserve; never kills. Returns how many frames were taken.
    pub fn mem_unplug(&mut self, frames: u64) -> u64 {
        let need = frames.saturating_add(UNPLUG_RESERVE_FRAMES);
        // Clean page cache goes first, least recently used first. A page
        // still mapped by a process keeps its frame, so evict until enough
        // frames are really free or nothing more can go.
        loop {
            let free = self.physmem.stats().frames_free;
            if free >= need {
                break;
            }
            let mut pc = self.pagecache.borrow_mut();
            let cached = pc.stats().cached;
            pc.shrink_to(cached.saturating_sub(need - free), &mut self.frames);
            if pc.stats().cached == cached {
                break;
            }
        }
        let free = self.physmem.stats().frames_free;
        let can = free.saturating_sub(UNPLUG_RESERVE_FRAMES).min(frames);
        let got = self.physmem.unplug(can);
        self.mem_size_changed();
        got
    }

    /// Plugs up to `frames` back; returns how many.
    pub fn mem_plug(&mut self, frames: u64) -> u64 {
        let n = self.physmem.plug(frames);
        self.mem_size_changed();
        n
    }

    /// What follows the guest's memory size: the page cache's cap.
    pub(crate) fn mem_size_changed(&mut self) {
        let plugged = self.physmem.frames_plugged();
        let cap = self
            .config
            .pagecache_max_pages
            .map_or(plugged, |m| m.min(plugged));
        self.pagecache.borrow_mut().set_limit(cap, &mut self.frames);
    }

    /// `sysrq <key>`: the action, answered with what Linux would print.
    fn sysrq(&mut self, key: Option<char>) -> Answer {
        let mut out = String::new();
        match key {
            Some('s') => {
                out.push_str("SysRq : Emergency Sync\n");
                self.sync_all();
                out.push_str("Emergency Sync complete\n");
            }
            Some('u') => {
                out.push_str("SysRq : Emergency Remount R/O\n");
                self.sync_all();
                let ids: Vec<_> = self.mounts.iter().map(|(id, _)| id).collect();
                for id in ids {
                    let _ = self.mounts.set_read_only(id, true);
                }
                self.mounts_changed();
                out.push_str("Emergency Remount complete\n");
            }
            Some('b') => {
                out.push_str("SysRq : Resetting\n");
                self.mconsole.frozen = false;
                self.shutdown = Some(Shutdown::Restart);
            }
            Some('o') => {
                out.push_str("SysRq : Power Off\n");
                self.mconsole.frozen = false;
                self.shutdown = Some(Shutdown::PowerOff);
            }
            Some(c @ ('e' | 'i')) => {
                let (sig, what) = if c == 'e' {
                    (SIGTERM, "Terminate All Tasks")
                } else {
                    (SIGKILL, "Kill All Tasks")
                };
                out.push_str(&format!("SysRq : {what}\n"));
                let pids: Vec<Pid> = self
                    .tasks
                    .values()
                    .filter(|t| t.is_leader() && t.is_alive() && t.tgid != 1)
                    .map(|t| t.tgid)
                    .collect();
                for p in pids {
                    if sig == SIGKILL {
                        self.kill_process(p, SIGKILL);
                    } else {
                        self.send_to_process(
                            p,
                            SigInfo {
                                signo: sig,
                                code: SI_KERNEL,
                                ..Default::default()
                            },
                        );
                    }
                }
            }
            Some('m') => {
                out.push_str("SysRq : Show Memory\n");
                let m = self.meminfo();
                let st = self.physmem.stats();
                out.push_str(&format!(
                    "Mem-Info:\n{} pages RAM ({} kB), {} free, {} page cache ({} dirty), {} unplugged, maxmem {} pages\nhost holds {} kB\n",
                    self.physmem.frames_plugged(),
                    m.total,
                    st.frames_free,
                    m.cached / 4,
                    m.dirty / 4,
                    st.frames_unplugged,
                    st.frames_total,
                    st.host_resident_bytes / 1024
                ));
            }
            Some('t') | Some('w') => {
                let blocked_only = key == Some('w');
                out.push_str(if blocked_only {
                    "SysRq : Show Blocked State\n"
                } else {
                    "SysRq : Show State\n"
                });
                out.push_str("  task                PID  PPID state\n");
                for t in self.tasks.values() {
                    let (st, why) = task_state(t.state);
                    if blocked_only && st != 'S' && st != 'D' {
                        continue;
                    }
                    out.push_str(&format!(
                        "  {:<16} {:>5} {:>5} {st} {why}\n",
                        String::from_utf8_lossy(&t.comm),
                        t.tid,
                        t.ppid
                    ));
                }
            }
            _ => out.push_str(
                "SysRq : HELP : reboot(b) terminate-all-tasks(e) kill-all-tasks(i) show-memory-usage(m) poweroff(o) sync(s) show-task-states(t) unmount(u) show-blocked-tasks(w)\n",
            ),
        }
        ok(out)
    }

    /// `proc <file>`: any file of the guest's /proc, read through a procfs
    /// of our own (the guest need not have mounted one).
    fn mconsole_proc(&mut self, file: &str) -> Answer {
        let fs = self.new_procfs();
        self.refresh_proc(1);
        let mut ino = fs.root();
        for part in file.split('/').filter(|p| !p.is_empty()) {
            match fs.lookup(ino, part.as_bytes()) {
                Ok(i) => ino = i,
                Err(_) => return fail("Failed to open file"),
            }
        }
        let mut data = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            match fs.read(ino, data.len() as u64, &mut buf) {
                Ok(0) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(_) => return fail("Read of file failed"),
            }
            if data.len() > 1 << 20 {
                break;
            }
        }
        // UML begins the contents on their own line.
        let mut text = String::from("\n");
        text.push_str(&String::from_utf8_lossy(&data));
        ok(text)
    }

    /// `stack <pid>`: where a task is, from its saved registers and the
    /// top of its user stack.
    fn mconsole_stack(&mut self, pid: Pid) -> Answer {
        let Some(t) = self.tasks.get(&pid).filter(|_| pid > 0) else {
            return fail("Couldn't find that pid");
        };
        let (st, why) = task_state(t.state);
        let comm = String::from_utf8_lossy(&t.comm).into_owned();
        let sys = t.syscall.map(|(nr, _)| nr);
        let r = self.regs(pid);
        let mut out = format!(
            "Task {pid} ({comm}) state {st} {why}\nRIP: {:#018x} RSP: {:#018x} RBP: {:#018x}\n",
            r.rip, r.rsp, r.rbp
        );
        if let Some(nr) = sys {
            out.push_str(&format!("in syscall {nr}\n"));
        }
        out.push_str("Stack:\n");
        for i in 0..8u64 {
            let Some(at) = r.rsp.checked_add(i * 8) else {
                break;
            };
            match self.read_u64(pid, at) {
                Ok(v) => out.push_str(&format!(" {v:016x}")),
                Err(_) => break,
            }
            if i % 4 == 3 {
                out.push('\n');
            }
        }
        ok(out)
    }

    /// The `stats` answer: exact figures, from the kernel's own books.
    pub fn stats_json(&self) -> serde_json::Value {
        let st = self.physmem.stats();
        let pc = self.pagecache.borrow().stats();
        let page = 4096u64;
        let plugged = st.frames_total - st.frames_unplugged;
        let held = self.frames.count() as u64;
        let anon = held.saturating_sub(pc.cached);
        let sock_frames = self.sockmem.frames() as u64;
        let shmem = st
            .frames_allocated
            .saturating_sub(held)
            .saturating_sub(sock_frames);
        let (mut maps, mut map_bytes) = (0u64, 0u64);
        for mm in self.mms.values() {
            for v in mm.aspace.vmas() {
                if matches!(v.backing, Backing::File { .. }) {
                    maps += 1;
                    map_bytes += v.len();
                }
            }
        }
        let untouched = self.physmem.untouched();
        let mut rss: Vec<(u64, Pid, String)> = self
            .tasks
            .values()
            .filter(|t| t.is_leader() && t.is_alive())
            .map(|t| {
                let pages = self
                    .mms
                    .get(&t.mm)
                    .map_or(0, |m| m.aspace.resident_pages(&untouched) as u64);
                (
                    pages * page,
                    t.tgid,
                    String::from_utf8_lossy(&t.comm).into_owned(),
                )
            })
            .collect();
        rss.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let processes = self
            .tasks
            .values()
            .filter(|t| t.is_leader() && t.is_alive())
            .count();
        let syscalls = self.counters.syscalls;
        let mut psi = self.psi;
        let psi = psi.shown(std::time::Instant::now());
        let swap = self.frames.swap.borrow();
        serde_json::json!({
            "memory": {
                "total_bytes": plugged * page,
                "plugged_bytes": plugged * page,
                "maxmem_bytes": st.frames_total * page,
                "unplugged_bytes": st.frames_unplugged * page,
                "free_bytes": st.frames_free * page,
                "used_bytes": st.frames_allocated * page,
                "anon_bytes": anon * page,
                "page_cache": {
                    "bytes": pc.cached * page,
                    "clean_bytes": (pc.cached - pc.dirty.min(pc.cached)) * page,
                    "dirty_bytes": pc.dirty * page,
                    "image_substituted_bytes": pc.substituted * page,
                    "cap_bytes": self.pagecache.borrow().max_pages().saturating_mul(page),
                },
                "shmem_tmpfs_bytes": shmem * page,
                "socket_buffers": {
                    "bytes": self.sockbuf_bytes(),
                    "charged_bytes": sock_frames * page,
                    "refused_frames": self.sockmem.short,
                },
                "file_mappings": { "count": maps, "bytes": map_bytes },
            },
            "host": {
                "memfd_allocated_bytes": st.host_resident_bytes,
                "punched_bytes": st.punched_bytes,
            },
            "budget": self.budget_json(st.host_resident_bytes),
            "pressure": {
                "events": self.memevents_json(),
                "psi_memory": {
                    "some_total_us": psi.some.total_us,
                    "full_total_us": psi.full.total_us,
                    "some_avg10": psi.some.avg10,
                },
            },
            "swap": {
                "total_bytes": swap.total_pages() * page,
                "used_bytes": swap.used_pages() * page,
                "cached_bytes": swap.cached_pages() * page,
                "pswpin": swap.pswpin,
                "pswpout": swap.pswpout,
            },
            "oom": {
                "events": self.oom.events,
                "reclaimed_pages": self.oom.reclaimed,
                "kills": self.oom.kills,
                "plug_waits": self.oom.waits,
                "last_victim": self.oom.last_victim,
                "syscall_retries": self.oom.syscall_retries,
            },
            "limits": self.limits_json(),
            "faults": self.counters.faults,
            "syscalls": syscalls,
            "processes": processes,
            "tasks": self.tasks.values().filter(|t| t.is_alive()).count(),
            "top_rss": rss.iter().take(10).map(|(b, p, c)| serde_json::json!({
                "pid": p, "comm": c, "rss_bytes": b
            })).collect::<Vec<_>>(),
            "uptime_seconds": self.uptime().as_secs_f64(),
            "stopped": self.mconsole.frozen,
        })
    }
}

fn task_state(s: TaskState) -> (char, &'static str) {
    match s {
        TaskState::Runnable => ('R', "running"),
        TaskState::Blocked(Wait::Until(_)) => ('S', "sleeping"),
        TaskState::Blocked(Wait::Signal) => ('S', "waiting for a signal"),
        TaskState::Blocked(Wait::Futex) | TaskState::Blocked(Wait::FutexUntil(_)) => {
            ('S', "futex wait")
        }
        TaskState::Blocked(Wait::Queue(_)) => ('S', "waiting on a file"),
        TaskState::Blocked(Wait::Vfork) => ('D', "vfork"),
        TaskState::Stopped => ('T', "stopped"),
        TaskState::Zombie => ('Z', "zombie"),
        TaskState::Dead => ('X', "dead"),
    }
}
