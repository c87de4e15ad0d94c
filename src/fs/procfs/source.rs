//! What procfs shows, as plain data: the `ProcSource` trait the kernel
//! implements over its task table, memory counters and mount table.

/// /proc/meminfo figures, all in KiB. Fields the kernel does not track stay 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_cached: u64,
    pub active: u64,
    pub inactive: u64,
    pub active_anon: u64,
    pub inactive_anon: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub dirty: u64,
    pub writeback: u64,
    pub anon_pages: u64,
    pub mapped: u64,
    pub shmem: u64,
    pub slab: u64,
    pub s_reclaimable: u64,
    pub s_unreclaim: u64,
    pub kernel_stack: u64,
    pub page_tables: u64,
    pub commit_limit: u64,
    pub committed_as: u64,
}

/// One task, as /proc/<pid>/stat and status show it. Times are in clock
/// ticks (USER_HZ = 100), sizes as named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Controlling tty as a `new_encode_dev` number, 0 for none.
    pub tty_nr: u32,
    /// Foreground pgrp of that tty, -1 for none.
    pub tpgid: i32,
    /// R, S, D, T, t, Z, X, I.
    pub state: char,
    /// Up to 15 bytes are shown.
    pub comm: Vec<u8>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub umask: u32,
    pub threads: u32,
    pub vsize_bytes: u64,
    /// Bytes in mlocked VMAs (VmLck).
    pub locked_bytes: u64,
    pub rss_pages: u64,
    /// Of `rss_pages`: file pages and shared memory (the rest is anon).
    pub rss_file_pages: u64,
    pub rss_shmem_pages: u64,
    /// Pages swapped out (VmSwap).
    pub swap_pages: u64,
    /// Peaks: resident pages (VmHWM) and mapped bytes (VmPeak).
    pub hwm_pages: u64,
    pub peak_bytes: u64,
    /// VmData, VmStk, VmExe + VmLib and VmPTE sources.
    pub vm: crate::mm::usage::VmSizes,
    /// Bytes of executable mappings of the program itself (VmExe; the
    /// rest of `vm.exec` is VmLib).
    pub exe_bytes: u64,
    /// Ticks after boot when the task started.
    pub start_time: u64,
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    pub nice: i32,
    pub minflt: u64,
    pub majflt: u64,
    pub sig_pending: u64,
    pub sig_blocked: u64,
    pub sig_ignored: u64,
    pub sig_caught: u64,
    /// Path of the executable (/proc/<pid>/exe), empty if unknown.
    pub exe: Vec<u8>,
    /// The executable as (mount id, inode), what a walk through
    /// /proc/<pid>/exe reaches.
    pub exe_node: Option<(usize, u64)>,
    /// Current directory (/proc/<pid>/cwd), empty if unknown.
    pub cwd: Vec<u8>,
    /// Root directory (/proc/<pid>/root, chroot), empty if unknown.
    pub root: Vec<u8>,
    /// Thread-group id (0: the same as `pid`, a leader).
    pub tgid: u32,
    /// The ids of the process's threads, leader first (a leader's entry;
    /// empty: the task alone).
    pub tids: Vec<u32>,
    /// oom_score_adj and the floor an unprivileged writer may not go under.
    pub oom_score_adj: i16,
    pub oom_score_adj_min: i16,
    /// /proc/<pid>/oom_score, already scaled (0..=2000).
    pub oom_score: i64,
}

impl TaskInfo {
    /// The thread-group id.
    pub fn tgid(&self) -> u32 {
        if self.tgid == 0 {
            self.pid
        } else {
            self.tgid
        }
    }
}

impl Default for TaskInfo {
    fn default() -> Self {
        TaskInfo {
            pid: 1,
            ppid: 0,
            pgrp: 1,
            session: 1,
            tty_nr: 0,
            tpgid: -1,
            state: 'S',
            comm: b"init".to_vec(),
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            umask: 0o022,
            threads: 1,
            vsize_bytes: 0,
            locked_bytes: 0,
            rss_pages: 0,
            rss_file_pages: 0,
            rss_shmem_pages: 0,
            swap_pages: 0,
            hwm_pages: 0,
            peak_bytes: 0,
            vm: Default::default(),
            exe_bytes: 0,
            start_time: 0,
            utime: 0,
            stime: 0,
            cutime: 0,
            cstime: 0,
            nice: 0,
            minflt: 0,
            majflt: 0,
            sig_pending: 0,
            sig_blocked: 0,
            sig_ignored: 0,
            sig_caught: 0,
            exe: Vec::new(),
            exe_node: None,
            cwd: Vec::new(),
            root: Vec::new(),
            tgid: 0,
            tids: Vec::new(),
            oom_score_adj: 0,
            oom_score_adj_min: 0,
            oom_score: 0,
        }
    }
}

/// The /proc/sys per-user caps root may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysKnob {
    PipeUserPagesSoft,
    PipeUserPagesHard,
    EpollMaxUserWatches,
    InotifyMaxUserInstances,
    /// fs/file-max.
    FileMax,
}

/// The /proc/sys values the kernel decides (the rest are constants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysCtl {
    /// fs/pipe-user-pages-soft and -hard.
    pub pipe_user_pages_soft: u64,
    pub pipe_user_pages_hard: u64,
    /// fs/epoll/max_user_watches.
    pub epoll_max_user_watches: u64,
    /// fs/inotify/max_user_instances.
    pub inotify_max_user_instances: u64,
    pub pid_max: u64,
    /// fs/file-max, and the open files counted against it (fs/file-nr).
    pub file_max: u64,
    pub nr_files: u64,
    pub nr_open: u64,
    pub pipe_max_size: u64,
    pub max_map_count: u64,
    pub overcommit_memory: u32,
    /// kernel/threads-max (Linux: memory / (8 * THREAD_SIZE)).
    pub threads_max: u64,
    /// The SysV IPC limits (kernel/shm*, sem, msg*).
    pub ipc: IpcLimits,
    /// kernel/random/boot_id: one UUID for the whole boot.
    pub boot_id: String,
    /// kernel/random/uuid: a fresh UUID each time it is read.
    pub uuid: String,
}

impl Default for SysCtl {
    /// Linux's defaults.
    fn default() -> Self {
        SysCtl {
            pipe_user_pages_soft: 16384,
            pipe_user_pages_hard: 0,
            epoll_max_user_watches: crate::kernel::ucounts::default_max_user_watches(256 << 20),
            inotify_max_user_instances: 128,
            pid_max: 4_194_304,
            file_max: 8192,
            nr_files: 0,
            nr_open: 1 << 20,
            pipe_max_size: 1 << 20,
            max_map_count: 65530,
            overcommit_memory: 0,
            threads_max: 2048,
            ipc: IpcLimits::default(),
            boot_id: "00000000-0000-4000-8000-000000000000".into(),
            uuid: "00000000-0000-4000-8000-000000000000".into(),
        }
    }
}

/// Which /proc/sysvipc file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcFile {
    Shm,
    Sem,
    Msg,
}

/// The SysV IPC limits, as /proc/sys/kernel shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcLimits {
    pub shmmax: u64,
    pub shmall: u64,
    pub shmmni: u64,
    pub semmsl: u64,
    pub semmns: u64,
    pub semopm: u64,
    pub semmni: u64,
    pub msgmax: u64,
    pub msgmnb: u64,
    pub msgmni: u64,
}

impl Default for IpcLimits {
    /// Linux's defaults (include/uapi/linux/{shm,sem,msg}.h).
    fn default() -> Self {
        IpcLimits {
            shmmax: u64::MAX - (1 << 24),
            shmall: u64::MAX - (1 << 24),
            shmmni: 4096,
            semmsl: 32000,
            semmns: 1_024_000_000,
            semopm: 500,
            semmni: 32000,
            msgmax: 8192,
            msgmnb: 16384,
            msgmni: 32000,
        }
    }
}

/// A random (version 4) UUID in its text form, from 16 random bytes.
pub fn uuid_text(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// One line of /proc/mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountInfo {
    /// mountinfo's mount id and its parent's (the root's parent is 1,
    /// outside the namespace, as in a container).
    pub id: u32,
    pub parent: u32,
    /// st_dev of its files: (major, minor).
    pub dev: (u32, u32),
    /// The source ("/dev/ubda", "proc", "tmpfs").
    pub device: Vec<u8>,
    pub mount_point: Vec<u8>,
    pub fs_type: String,
    /// Comma-separated options, e.g. "rw,relatime".
    pub options: String,
}

/// One PSI line: the share of wall time stalled over 10, 60 and 300
/// seconds (percent) and the total stall in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

/// /proc/pressure/memory: "some" and "full" stall.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    pub some: PressureLine,
    pub full: PressureLine,
}

/// One line of /proc/swaps: an active swap area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapInfo {
    pub name: Vec<u8>,
    /// A whole block device ("partition") or a file.
    pub partition: bool,
    pub size_kib: u64,
    pub used_kib: u64,
    pub prio: i16,
}

/// One line of /proc/partitions: a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub major: u32,
    pub minor: u32,
    /// Size in 1 KiB blocks.
    pub kib: u64,
    pub name: String,
}

/// One line of /proc/<pid>/maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapInfo {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// Path, or "[heap]", "[stack]", "[vdso]"; empty for anonymous memory.
    pub name: Vec<u8>,
    /// What smaps counts for it.
    pub usage: crate::mm::usage::Usage,
    /// smaps's VmFlags mnemonics ("rd", "wr", "mr", ...), in Linux's order.
    pub vm_flags: Vec<&'static str>,
}

/// /proc/loadavg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub running: u32,
    pub total: u32,
    pub last_pid: u32,
}

/// Ticks one CPU spent in each state (the "cpu" lines of /proc/stat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

/// /proc/stat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysStat {
    /// One entry per CPU; the "cpu" line is their sum.
    pub cpus: Vec<CpuTimes>,
    pub ctxt: u64,
    /// Boot time, seconds since the epoch.
    pub btime: u64,
    /// Forks since boot.
    pub processes: u64,
    pub procs_running: u32,
    pub procs_blocked: u32,
}

/// The kernel's answers to what procfs shows. Called at read time.
pub trait ProcSource {
    fn meminfo(&self) -> MemInfo;
    fn pids(&self) -> Vec<u32>;
    fn task(&self, pid: u32) -> Option<TaskInfo>;
    /// The pid /proc/self points at (the caller's thread-group id).
    fn current_pid(&self) -> u32;
    /// The mounts as process or thread `pid` sees them from its root
    /// (chroot): mount points relative to it, the mounts outside it left
    /// out, as Linux's /proc/<pid>/mounts and mountinfo.
    fn mounts(&self, pid: u32) -> Vec<MountInfo>;
    /// (uptime, idle) in seconds.
    fn uptime(&self) -> (f64, f64);
    fn loadavg(&self) -> LoadAvg;
    fn cpu_count(&self) -> u32;
    /// The path of process `tgid`'s cgroup2 group (/proc/<pid>/cgroup).
    fn cgroup_path(&self, _tgid: u32) -> Option<String> {
        None
    }
    /// /proc/cpuinfo's `flags` (the host CPU's: guest code runs on it).
    fn cpu_flags(&self) -> String {
        super::format::BASELINE_CPU_FLAGS.to_string()
    }
    /// The release, as `uname -r` shows it ("6.1.0-umlrun").
    fn kernel_version(&self) -> String;
    /// The release alone (`uname -r`, kernel/osrelease): the third word
    /// of the version.
    fn release(&self) -> String {
        let v = self.kernel_version();
        v.split_whitespace().nth(2).unwrap_or(&v).to_string()
    }
    /// (name, nodev) of every registered file-system type.
    fn filesystems(&self) -> Vec<(&'static str, bool)>;
    /// The block devices, for /proc/partitions.
    fn partitions(&self) -> Vec<PartitionInfo> {
        Vec::new()
    }
    /// The active swap areas, for /proc/swaps.
    fn swaps(&self) -> Vec<SwapInfo> {
        Vec::new()
    }
    /// /proc/pressure/memory.
    fn memory_pressure(&self) -> Pressure {
        Pressure::default()
    }
    /// /proc/vmstat counters, in order.
    fn vmstat(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// Open descriptors of `pid` and what their /proc/<pid>/fd links read.
    fn fds(&self, pid: u32) -> Vec<(u32, Vec<u8>)>;
    /// What fd `fd` of `pid` refers to as (mount id, inode), if a file.
    fn fd_node(&self, _pid: u32, _fd: u32) -> Option<(usize, u64)> {
        None
    }
    fn maps(&self, pid: u32) -> Vec<MapInfo>;
    /// argv, NUL-separated and NUL-terminated.
    fn cmdline(&self, pid: u32) -> Vec<u8>;
    fn sys_stat(&self) -> SysStat;
    /// The kernel's command line (/proc/cmdline, less its newline).
    fn kernel_cmdline(&self) -> Vec<u8> {
        Vec::new()
    }
    /// /proc/<pid>/fdinfo/<fd> (None: no such fd).
    fn fdinfo(&self, _pid: u32, _fd: u32) -> Option<Vec<u8>> {
        None
    }
    /// /proc/net/unix.
    fn net_unix(&self) -> Vec<u8> {
        b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec()
    }
    /// /proc/net's inet files by name (dev, tcp, tcp6, udp, udp6,
    /// route, if_inet6); None: an empty file.
    fn net_file(&self, _name: &str) -> Option<Vec<u8>> {
        None
    }
    fn environ(&self, _pid: u32) -> Vec<u8> {
        Vec::new()
    }
    fn hostname(&self) -> String {
        "umlrun".to_string()
    }
    fn sysctl(&self) -> SysCtl {
        SysCtl::default()
    }
    /// /proc/locks, already in Linux's format.
    fn locks(&self) -> String {
        String::new()
    }
    /// /proc/sysvipc/{shm,sem,msg}, already in Linux's format.
    fn sysvipc(&self, _which: IpcFile) -> String {
        String::new()
    }
    fn domainname(&self) -> String {
        "(none)".to_string()
    }
    /// A write to one of the per-user caps (the value already parsed).
    fn set_sysctl(&self, _knob: SysKnob, _value: u64) -> crate::errno::KResult<()> {
        Err(crate::errno::Errno::EACCES)
    }
    /// A write to kernel/domainname, like `set_hostname`.
    fn set_domainname(&self, _name: &[u8]) -> crate::errno::KResult<()> {
        Err(crate::errno::Errno::EACCES)
    }
    /// A write to kernel/hostname (already cut to at most 64 bytes, the
    /// newline gone). The kernel applies it after the write.
    fn set_hostname(&self, _name: &[u8]) -> crate::errno::KResult<()> {
        Err(crate::errno::Errno::EACCES)
    }
    /// Whether the instance has a notify socket (`mconsole=notify:`): then,
    /// as in UML, /proc/mconsole exists.
    fn mconsole_notify(&self) -> bool {
        false
    }
    /// Whether the task reading/writing /proc may raise resource limits
    /// (CAP_SYS_RESOURCE: root).
    fn caller_privileged(&self) -> bool {
        false
    }
    /// A write to /proc/<pid>/oom_score_adj or oom_adj, already checked:
    /// the new value for the whole thread group of `pid`, and the new
    /// floor if it changes. The kernel applies it after the write.
    fn set_oom_score_adj(
        &self,
        _pid: u32,
        _adj: i16,
        _min: Option<i16>,
    ) -> crate::errno::KResult<()> {
        Err(crate::errno::Errno::EACCES)
    }
    /// A write to /proc/<pid>/comm (or task/<tid>/comm): the new name of
    /// thread `tid`, at most 15 bytes.
    fn set_comm(&self, _tid: u32, _name: &[u8]) -> crate::errno::KResult<()> {
        Err(crate::errno::Errno::EACCES)
    }
    /// A write to /proc/mconsole: sent as a "user" notify message.
    fn user_notify(&self, _data: &[u8]) -> crate::errno::KResult<()> {
        Err(crate::errno::Errno::EACCES)
    }
}
