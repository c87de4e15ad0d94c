//! Booting: physical memory, disks, the root file system, /dev and the
//! console, then init as pid 1; and the orderly end (sync, unmount).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use super::console::Console;
use super::core::{Kernel, KernelConfig, Mm, Shutdown};
use super::fdtable::FdTable;
use super::mconsole::Mconsole;
use super::task::{FsContext, Pid, Task, TaskState};
use crate::block::{BlockError, Holder, Ubd};
use crate::config::{self, Config, UbdSpec};
use crate::errno::Errno;
use crate::fs::ext2vol::Ext2Volume;
use crate::host::console::HostConsole;
use crate::host::event_loop::EventLoop;
use crate::mm::AddressSpace;
use crate::physmem::{PhysMem, PhysMemError};
use crate::platform::{Platform, PtracePlatform, Regs, SeccompPlatform};
use crate::vfs::file::O_RDWR;
use crate::vfs::{Cred, MountTable, OpenFile};

#[derive(Debug, Error)]
pub enum BootError {
    #[error("mem={0}: cannot create guest memory: {1}")]
    Memory(u64, #[source] PhysMemError),
    #[error("{switch}: {source}")]
    Disk {
        switch: String,
        #[source]
        source: BlockError,
    },
    #[error("root={0}: no such disk (give ubd0=<image>)")]
    NoRoot(String),
    #[error("root={root}: not an ext2 file system the kernel can mount ({errno})")]
    RootFs { root: String, errno: Errno },
    #[error("cannot start init ({0}): tried {1}")]
    NoInit(Errno, String),
    #[error("cannot start the first guest process: {0}")]
    Stub(Errno),
    #[error("cannot create the host event loop: {0}")]
    EventLoop(#[source] std::io::Error),
    #[error("{0}")]
    Net(#[from] super::netfwd::NetError),
    /// Least privilege could not be set up (`uid=`/`gid=`, the filter).
    #[error("{0}")]
    Privs(String),
}

/// How an instance ended, for umlrun's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    PowerOff,
    Halt,
    /// init exited with this wait status (a Linux kernel would panic).
    InitExited(i32),
    /// umlrun was asked to stop (SIGTERM); the guest was synced.
    Terminated,
}

impl Ended {
    /// The exit code umlrun reports: 0 for a clean power-off or halt;
    /// init's own exit code (or 128+signal) when init exits.
    pub fn exit_code(self) -> u8 {
        match self {
            Ended::PowerOff | Ended::Halt | Ended::Terminated => 0,
            Ended::InitExited(st) if st & 0x7f == 0 => ((st >> 8) & 0xff) as u8,
            Ended::InitExited(st) => 128 + (st & 0x7f) as u8,
        }
    }
}

/// The guest device index of `root=` ("/dev/ubda" → 0, "/dev/ubdb" → 1).
fn root_index(root: &str) -> Option<u8> {
    let dev = root.strip_prefix("/dev/").unwrap_or(root);
    let rest = dev.strip_prefix("ubd")?;
    let c = rest.bytes().next()?;
    match c {
        b'a'..=b'z' if rest.len() == 1 => Some(c - b'a'),
        b'0'..=b'9' if rest.len() == 1 => Some(c - b'0'),
        _ => None,
    }
}

/// Boots the instance described by `cfg` and runs it until it ends. A
/// guest `reboot` boots it again from the same disks.
pub fn boot(cfg: &Config) -> Result<Ended, BootError> {
    crate::host::signals::install_termination_handlers();
    let cpu = cfg.cpu.or_else(auto_cpu);
    // The seccomp platform's stubs go to another CPU (both sides poll).
    let cpus = crate::host::cpu::allowed_cpus(0).unwrap_or_default();
    let stub_cpu = cpu.map(|c| SeccompPlatform::stub_cpu(c, &cpus));
    if let Some(c) = cpu {
        if let Err(e) = crate::host::cpu::pin_to_cpu(0, c) {
            log::warn!("cannot pin to CPU {c}: {e}");
        }
    }
    // The management console outlives reboots, as UML's socket does, and
    // so do the disks: all are opened before umlrun gives up privileges.
    let mut mconsole = Mconsole::open(&cfg.instance_dir(), cfg.mconsole_notify.clone());
    let disks = open_disks(cfg)?;
    // The host CPU's flags for the guest's /proc/cpuinfo, read while the
    // host's /proc is surely readable.
    crate::host::cpu::host_flags();
    least_privilege(cfg)?;
    loop {
        let ended = boot_once(cfg, cpu, stub_cpu, &mut mconsole, &disks)?;
        match ended {
            Some(e) => return Ok(e),
            None => log::info!("rebooting"),
        }
    }
}

/// What Linux's panic() hands its notifiers (UML's notify_panic sends it
/// to the notify socket) when init exits: kernel/exit.c's format with the
/// wait status, without the "Kernel panic - not syncing: " that only the
/// console line carries, and without the trailing newline panic() strips.
pub(crate) fn init_panic_message(wait_status: i32) -> String {
    format!(
        "Attempted to kill init! exitcode={:#010x}",
        wait_status as u32
    )
}

/// After set-up, before the first stub: become `uid=`/`gid=` (handing
/// them the instance directory, so the pid file and the mconsole socket
/// can be removed at the end), then put umlrun's own seccomp filter on
/// this, the kernel thread (`host_seccomp=off` leaves it off).
fn least_privilege(cfg: &Config) -> Result<(), BootError> {
    use crate::host::privs;
    let ns = stub_namespaces(cfg)?;
    if let Some((uid, gid)) = cfg.run_as {
        if (uid, gid) != privs::ids() || privs::is_root() {
            let dir = cfg.instance_dir();
            let mut paths = vec![dir.clone()];
            if let Ok(rd) = std::fs::read_dir(&dir) {
                paths.extend(rd.flatten().map(|e| e.path()));
            }
            for p in paths {
                privs::chown(&p, uid, gid).map_err(|e| {
                    BootError::Privs(format!(
                        "uid={uid} gid={gid}: cannot hand over {}: {e}",
                        p.display()
                    ))
                })?;
            }
            privs::drop_to(uid, gid).map_err(|e| {
                BootError::Privs(format!("uid={uid} gid={gid}: cannot become that user: {e}"))
            })?;
            log::info!("running as uid {uid} gid {gid}");
        }
    }
    if cfg.host_seccomp {
        let fd = crate::platform::stub_exe_fd()
            .map_err(|e| BootError::Privs(format!("host_seccomp: no stub executable: {e}")))?;
        let ns_fds = ns.then(crate::host::namespaces::join_fds).flatten();
        let prog = crate::platform::host_filter::kernel_filter_ns(Some(fd), ns_fds);
        privs::install_process_filter(&prog).map_err(|e| {
            BootError::Privs(format!(
                "host_seccomp: cannot install umlrun's filter: {e} (host_seccomp=off runs without)"
            ))
        })?;
    }
    Ok(())
}

/// `namespaces=`: the stubs' own user, pid, mount and network namespaces
/// (host::namespaces), made before `uid=` takes effect. umlrun stays in
/// the host's network namespace: the NAT, taps and uml_switch ports, also
/// those hot-added later, need it.
/// Whether they were made; `auto` goes on without when the host refuses,
/// `on` stops with one line saying what failed.
fn stub_namespaces(cfg: &Config) -> Result<bool, BootError> {
    use crate::config::Namespaces;
    if cfg.namespaces == Namespaces::Off {
        return Ok(false);
    }
    match crate::host::namespaces::make(&cfg.instance_dir(), cfg.run_as) {
        Ok(made) => {
            log::info!("stubs in their own namespaces (holder pid {})", made.holder);
            Ok(true)
        }
        Err(e) if cfg.namespaces == Namespaces::On => Err(BootError::Privs(format!(
            "namespaces=on: cannot make the stubs' namespaces: {e} (namespaces=off runs without)"
        ))),
        Err(e) => {
            log::info!("namespaces=auto: running without: {e}");
            Ok(false)
        }
    }
}

/// One CPU per instance, spread by pid over the CPUs umlrun may use.
fn auto_cpu() -> Option<usize> {
    let cpus = crate::host::cpu::allowed_cpus(0).ok()?;
    if cpus.is_empty() {
        return None;
    }
    Some(cpus[std::process::id() as usize % cpus.len()])
}

fn open_disks(cfg: &Config) -> Result<Vec<(UbdSpec, Arc<Ubd>)>, BootError> {
    let mut disks = Vec::new();
    for spec in &cfg.ubds {
        let mut s = spec.clone();
        s.mode = cfg.ubd_mode;
        let ubd = Ubd::open_confined(&s, cfg.cow_backing).map_err(|source| BootError::Disk {
            switch: spec.switch_text(),
            source,
        })?;
        disks.push((s, Arc::new(ubd)));
    }
    Ok(disks)
}

fn boot_once(
    cfg: &Config,
    cpu: Option<usize>,
    stub_cpu: Option<usize>,
    mconsole: &mut Mconsole,
    disks: &[(UbdSpec, Arc<Ubd>)],
) -> Result<Option<Ended>, BootError> {
    let physmem = Arc::new(
        PhysMem::with_max(cfg.mem_bytes, cfg.maxmem())
            .map_err(|e| BootError::Memory(cfg.mem_bytes, e))?,
    );
    physmem
        .set_inheritable(true)
        .map_err(|e| BootError::Memory(cfg.mem_bytes, e))?;
    let idx = root_index(&cfg.root).ok_or_else(|| BootError::NoRoot(cfg.root.clone()))?;
    let (_, root_ubd) = disks
        .iter()
        .find(|(s, _)| s.index == idx)
        .ok_or_else(|| BootError::NoRoot(cfg.root.clone()))?;
    let root_vol =
        Rc::new(
            Ext2Volume::mount(root_ubd.clone(), false).map_err(|errno| BootError::RootFs {
                root: cfg.root.clone(),
                errno,
            })?,
        );
    let mut mounts = MountTable::new();
    let root_mnt = mounts
        .mount(
            root_vol,
            None,
            b"/".to_vec(),
            cfg.root.clone(),
            root_ubd.read_only(),
        )
        .map_err(|errno| BootError::RootFs {
            root: cfg.root.clone(),
            errno,
        })?;
    // st_dev of / is the disk's, as e2fsck and df match it to /dev/ubdX.
    let (major, minor) = crate::block::disks::disk_dev(idx as usize);
    mounts
        .set_identity(
            root_mnt,
            Some(crate::fs::devices::encode_dev(major, minor)),
            "ext2",
        )
        .map_err(|errno| BootError::RootFs {
            root: cfg.root.clone(),
            errno,
        })?;

    let mut keep_fds = vec![physmem.memfd_raw()];
    for (_, d) in disks {
        keep_fds.extend(d.host_fds());
    }
    let host = match cfg.console {
        config::Console::Fd { input, output } => HostConsole::new(Some(input), Some(output)),
        config::Console::Null => HostConsole::new(None, None),
    };
    let hostname = read_hostname(&mounts);
    let platform: Box<dyn Platform> = match cfg.platform {
        config::PlatformKind::Ptrace => Box::new(PtracePlatform::new(keep_fds.clone(), cpu)),
        kind => {
            let spin = kind == config::PlatformKind::SeccompSpin;
            let on = if spin { stub_cpu } else { cpu };
            match SeccompPlatform::probe(keep_fds.clone(), on, spin) {
                Ok(p) => {
                    log::debug!("platform: seccomp ({kind})");
                    Box::new(p)
                }
                Err(why) => {
                    if kind == config::PlatformKind::Auto {
                        log::info!("platform: ptrace (seccomp cannot run here: {why})");
                    } else {
                        log::warn!("platform={kind}: {why}: using ptrace");
                    }
                    Box::new(PtracePlatform::new(keep_fds.clone(), cpu))
                }
            }
        }
    };
    let host_loop = EventLoop::new().map_err(BootError::EventLoop)?;
    host_loop.wake_on_signals();
    let mut k = Kernel::new(
        physmem,
        mounts,
        Console::new(host),
        host_loop,
        KernelConfig {
            hostname,
            cpu,
            keep_fds,
            pagecache_max_pages: cfg.pagecache_max.map(|b| b / crate::abi::PAGE),
            mem_bytes: cfg.mem_bytes,
            disks: disks
                .iter()
                .map(|(s, _)| (s.index, s.switch_text()))
                .collect(),
            root_disk: Some(idx),
            ubd_mode: cfg.ubd_mode,
            cow_backing: cfg.cow_backing,
            limits: crate::kernel::memlimits::MemLimits {
                max_map_count: cfg
                    .max_map_count
                    .unwrap_or(crate::kernel::memlimits::DEFAULT_MAX_MAP_COUNT),
                mapped_file_max: cfg.mapped_file_max,
                ..Default::default()
            },
            cmdline: cfg.cmdline.clone().into_bytes(),
            oom_wait: std::time::Duration::from_millis(cfg.oom_wait_ms),
        },
        platform,
    );
    k.mconsole_attach(std::mem::take(mconsole));
    k.budget_init(cfg.host_mem_max);
    for (s, d) in disks {
        if let Err(e) = k.disks.insert(s.index as usize, d.clone()) {
            log::warn!("ubd{}: not made a guest device: {e}", s.index);
        }
    }
    if let Err(e) = k.disks.claim(idx as usize, Holder::Mount(root_mnt)) {
        log::warn!("root disk not claimed by its mount: {e}");
    }
    k.mount_devfs();
    if let Err(e) = k.net_attach(&cfg.eth) {
        *mconsole = std::mem::take(&mut k.mconsole);
        return Err(e.into());
    }
    let started = Instant::now();
    if let Err(e) = k.start_init(&cfg.init) {
        *mconsole = std::mem::take(&mut k.mconsole);
        return Err(e);
    }
    log::info!("init started in {:?}", started.elapsed());
    let how = k.run();
    let ended = k.shut_down(how);
    *mconsole = std::mem::take(&mut k.mconsole);
    mconsole.frozen = false;
    // A reboot starts with the watchdog closed (its file died with k).
    mconsole.watchdog = Default::default();
    drop(k);
    for (_, d) in disks {
        if let Err(e) = d.flush() {
            log::error!("flushing {} failed: {e}", d.path().display());
        }
    }
    Ok(ended)
}

/// The hostname in the image's /etc/hostname, like an init script sets it.
fn read_hostname(m: &MountTable) -> Vec<u8> {
    let name = m
        .resolve(b"/", b"/", b"/etc/hostname", true, &Cred::root())
        .ok()
        .and_then(|r| {
            let mut b = vec![0u8; 64];
            let n = m.fs(r.node.mnt).ok()?.read(r.node.ino, 0, &mut b).ok()?;
            b.truncate(n);
            Some(b)
        })
        .unwrap_or_default();
    let name: Vec<u8> = name.split(|&c| c == b'\n').next().unwrap_or(b"").to_vec();
    if name.is_empty() {
        b"umlrun".to_vec()
    } else {
        name
    }
}

impl Kernel {
    /// Mounts a devtmpfs at /dev, as CONFIG_DEVTMPFS_MOUNT does.
    fn mount_devfs(&mut self) {
        let Ok(r) = self
            .mounts
            .resolve(b"/", b"/", b"/dev", true, &Cred::root())
        else {
            log::warn!("no /dev directory in the root file system; not mounting devtmpfs");
            return;
        };
        match self.new_devfs() {
            Ok(fs) => {
                if let Err(e) =
                    self.mounts
                        .mount(fs, Some(r.node), b"/dev".to_vec(), "devtmpfs".into(), false)
                {
                    log::warn!("mounting devtmpfs: {e}");
                }
            }
            Err(e) => log::warn!("creating devtmpfs: {e}"),
        }
    }

    /// Creates pid 1 with the console on fds 0-2 and execs init (falling
    /// back to the programs Linux tries).
    fn start_init(&mut self, init: &str) -> Result<(), BootError> {
        let pid = self.create_init_task()?;
        let env: Vec<Vec<u8>> = vec![
            b"HOME=/".to_vec(),
            b"TERM=linux".to_vec(),
            b"PATH=/sbin:/bin:/usr/sbin:/usr/bin".to_vec(),
        ];
        let mut tried = Vec::new();
        let mut last = Errno::ENOENT;
        for path in [init, "/sbin/init", "/etc/init", "/bin/init", "/bin/sh"] {
            if tried.contains(&path) {
                continue;
            }
            tried.push(path);
            match self.execve(
                pid,
                path.as_bytes(),
                vec![path.as_bytes().to_vec()],
                env.clone(),
            ) {
                Ok(()) => {
                    if path != init {
                        log::warn!("init={init} failed ({last}); running {path}");
                    }
                    self.runq.push_back(pid);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(BootError::NoInit(last, tried.join(", ")))
    }

    /// Pid 1 in an empty address space, with the console on fds 0-2, not
    /// yet runnable: exec gives it a program.
    pub(crate) fn create_init_task(&mut self) -> Result<Pid, BootError> {
        let guest = self.new_guest().map_err(BootError::Stub)?;
        // Its stub's CPU time counts from here (`cpuacct.rs`).
        let cpu_seen = Some(guest.cpu_time_ns());
        let mm = self.alloc_mm_id();
        self.mms.insert(
            mm,
            Mm {
                aspace: AddressSpace::new(),
                guest,
                loaded: None,
                users: 1,
                exe_deny: None,
                cpu_seen,
            },
        );
        let mut files = FdTable::new();
        let console = OpenFile::new(
            crate::kernel::files::tty::ConsoleFile::new(None),
            O_RDWR,
            b"/dev/console".to_vec(),
        );
        for _ in 0..3 {
            let _ = files.install(console.clone(), false, 0);
        }
        let root_node = self
            .mounts
            .resolve(b"/", b"/", b"/", true, &Cred::root())
            .map_err(BootError::Stub)?
            .node;
        let root = self.dentries.get(root_node, b"/".to_vec());
        let pid = self.alloc_pid();
        debug_assert_eq!(pid, 1);
        self.cgroups.borrow_mut().fork(None, pid as u32);
        self.tasks.insert(
            pid,
            Task {
                tid: pid,
                tgid: pid,
                ppid: 0,
                pgid: 0,
                sid: 0,
                mm,
                files: Rc::new(RefCell::new(files)),
                fs: Rc::new(RefCell::new(FsContext {
                    cwd: root.clone(),
                    root,
                    umask: 0o022,
                })),
                sighand: Default::default(),
                sigmask: Default::default(),
                saved_mask: None,
                pending: Vec::new(),
                altstack: Default::default(),
                cred: Cred::root(),
                regs: Regs::default(),
                fp: None,
                state: TaskState::Runnable,
                syscall: None,
                exit_status: 0,
                exit_signal: 0,
                clear_child_tid: 0,
                robust_list: 0,
                comm: b"swapper".to_vec(),
                cmdline: Vec::new(),
                exe: Vec::new(),
                exe_node: None,
                vfork_parent: None,
                start: Instant::now(),
                stop_report: None,
                cont_report: false,
                itimer: None,
                cpu_itimers: Default::default(),
                posix_timers: Default::default(),
                syscalls: 0,
                block_deadline: None,
                sock_sleep: Default::default(),
                waiting_on: Vec::new(),
                child_q: super::waitq::WaitQueue::new(),
                signal_q: super::waitq::WaitQueue::new(),
                restart: None,
                rlimits: {
                    let mut r = crate::syscalls::default_rlimits();
                    let n = super::clonecheck::default_nproc(self.physmem.frames_total() * 4096);
                    r[6] = (n, n); // RLIMIT_NPROC
                    r
                },
                pdeathsig: 0,
                sched: Default::default(),
                vruntime: 0,
                rr_left_ns: super::schedattr::RR_TIMESLICE_NS,
                no_new_privs: false,
                securebits: 0,
                cap_bset: super::task::CAP_FULL_SET,
                oom_score_adj: 0,
                oom_score_adj_min: 0,
                child_subreaper: false,
                timer_slack: super::task::DEFAULT_TIMER_SLACK_NS,
                personality: 0,
                cpu_exit: (0, 0),
                kernel_ns: 0,
                child_cpu: (0, 0),
            },
        );
        Ok(pid)
    }

    /// Writes back the page cache and syncs every file system.
    pub fn sync_all(&mut self) {
        self.writeback_pagecache();
        if let Err(e) = self.mounts.sync_all() {
            crate::log_limited!(log::Level::Error, "sync failed: {e}");
        }
    }

    pub fn writeback_pagecache(&mut self) {
        let mounts = &self.mounts;
        let r = self
            .pagecache
            .borrow_mut()
            .writeback_all(&|m| mounts.fs(m).ok(), &self.frames);
        if let Err(e) = r {
            crate::log_limited!(log::Level::Error, "page cache writeback failed: {e}");
        }
    }

    /// Ends every guest process and syncs. Returns None for a reboot.
    fn shut_down(&mut self, how: Shutdown) -> Option<Ended> {
        // Guests retired from here on are killed, not kept.
        self.platform.shut_down();
        let pids: Vec<_> = self.tasks.keys().copied().collect();
        for p in pids {
            if let Some(t) = self.tasks.get(&p) {
                let mm = t.mm;
                self.release_mm(p, mm);
            }
        }
        self.tasks.clear();
        self.reap_orphans();
        self.sync_all();
        self.mounts.unmount_all();
        self.console.restore_host();
        match how {
            Shutdown::PowerOff => Some(Ended::PowerOff),
            Shutdown::Halt => Some(Ended::Halt),
            Shutdown::Restart => None,
            Shutdown::Terminated => Some(Ended::Terminated),
            Shutdown::InitDied(st) => Some(Ended::InitExited(st)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_names() {
        assert_eq!(root_index("/dev/ubda"), Some(0));
        assert_eq!(root_index("/dev/ubdb"), Some(1));
        assert_eq!(root_index("ubd0"), Some(0));
        assert_eq!(root_index("/dev/sda"), None);
        assert_eq!(root_index("/dev/ubdaa"), None);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Ended::PowerOff.exit_code(), 0);
        assert_eq!(Ended::InitExited(3 << 8).exit_code(), 3);
        assert_eq!(Ended::InitExited(9).exit_code(), 137);
        // Debian's linux.uml 6.1 with init=/bin/false sent exactly this.
        assert_eq!(
            init_panic_message(1 << 8),
            "Attempted to kill init! exitcode=0x00000100"
        );
        assert_eq!(
            init_panic_message(9),
            "Attempted to kill init! exitcode=0x00000009"
        );
    }
}
