//! procfs: /proc generated at read time from a `ProcSource`.
//!
//! | file        | owns |
//! |-------------|------|
//! | `source.rs` | the `ProcSource` trait and the data it returns |
//! | `format.rs` | the text of each file, in Linux's exact formats |
//! | `smaps.rs`  | /proc/<pid>/smaps and smaps_rollup |
//! | `pidwrite.rs` | parsing and permission rules of writes to comm, oom_score_adj, oom_adj |
//! | `mod.rs`    | the tree (inode numbers encode pid, file and fd) and the `FileSystem` impl |
//!
//! Inode = pid << 32 | file << 24 | fd; pid 0 holds the global files.
//! Everything under /proc/<pid> is owned by the task's uid/gid (busybox ps
//! reads a process's user from the owner of /proc/<pid>). File sizes are
//! 0 as on Linux; readers read to EOF. Writes answer EACCES, except
//! /proc/sys/kernel/hostname's and domainname's (the kernel takes them:
//! `set_hostname`, `set_domainname`), and /proc/<pid>/comm (own threads
//! only), oom_score_adj and the legacy oom_adj (`pidwrite.rs`; the kernel
//! takes them in `apply_proc_writes`). oom_score is read-only.
//! /proc/sys has the basics programs read: kernel/{hostname, osrelease,
//! ostype, pid_max, random/boot_id, random/uuid}, fs/{file-max, file-nr, nr_open,
//! pipe-max-size}, vm/{max_map_count, overcommit_memory} (read-only; mmap
//! and mprotect enforce the map count).
//! /proc/locks and /proc/sysvipc/{shm,sem,msg} are text the kernel formats
//! (`ProcSource::locks`, `sysvipc`); kernel/{shmmax, shmall, shmmni, sem,
//! msgmax, msgmnb, msgmni} show the SysV IPC limits.
//! /proc/vmstat (page counts from meminfo), /proc/<pid>/mountinfo and
//! /proc/<pid>/task/ (every thread: task/<tid> is the thread's own nodes,
//! ino(tid, ..), so its stat, status and comm are the thread's).
//! /proc/<pid>/cgroup is "0::<path>" from the cgroup2 hierarchy
//! (fs/cgroupfs.rs).
//! /proc/<pid>/fdinfo/<n> and /proc/net/unix are text the kernel makes
//! (kernel/files/fdinfo.rs), as are /proc/net/{dev, tcp, tcp6, udp, udp6,
//! route, if_inet6} (kernel/netproc.rs, net/inet/procnet.rs).
//! /proc/<pid>/exe and fd/<n> are magic links: besides their text they
//! name the file itself (`magic_link`), which a path walk goes to.
//! Path texts (cwd, root, exe, fd/<n>, maps) are as the reader names
//! them from its root (chroot): the kernel's snapshot is taken for it.
#![deny(unsafe_code)]

pub mod format;
pub mod pidwrite;
pub mod smaps;
pub mod source;

use std::rc::Rc;

use crate::errno::{Errno, KResult};
use crate::fs::*;
pub use source::*;

/// Linux PROC_SUPER_MAGIC.
pub const PROC_SUPER_MAGIC: u64 = 0x9fa0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Dir,
    File,
    Link,
}

// Global file ids (pid 0).
const G_ROOT: u64 = 1;
const G_MEMINFO: u64 = 2;
const G_MOUNTS: u64 = 3;
const G_UPTIME: u64 = 4;
const G_LOADAVG: u64 = 5;
const G_FILESYSTEMS: u64 = 6;
const G_CPUINFO: u64 = 7;
const G_VERSION: u64 = 8;
const G_STAT: u64 = 9;
const G_SELF: u64 = 10;
const G_SYS: u64 = 11;
const G_SYS_KERNEL: u64 = 12;
const G_HOSTNAME: u64 = 13;
const G_OSRELEASE: u64 = 14;
const G_OSTYPE: u64 = 15;
const G_PARTITIONS: u64 = 16;
const G_SYS_FS: u64 = 17;
const G_SYS_VM: u64 = 18;
const G_SYS_RANDOM: u64 = 19;
const G_PID_MAX: u64 = 20;
const G_BOOT_ID: u64 = 21;
const G_UUID: u64 = 22;
const G_FILE_MAX: u64 = 23;
const G_NR_OPEN: u64 = 24;
const G_PIPE_MAX_SIZE: u64 = 25;
const G_MAX_MAP_COUNT: u64 = 26;
const G_OVERCOMMIT: u64 = 27;
const G_LOCKS: u64 = 40;
const G_SYSVIPC: u64 = 41;
const G_SYSVIPC_SHM: u64 = 42;
const G_SYSVIPC_SEM: u64 = 43;
const G_SYSVIPC_MSG: u64 = 44;
const G_SHMMAX: u64 = 45;
const G_SHMALL: u64 = 46;
const G_SHMMNI: u64 = 47;
const G_SEM: u64 = 48;
const G_MSGMAX: u64 = 49;
const G_MSGMNB: u64 = 50;
const G_MSGMNI: u64 = 51;
const G_NET: u64 = 28;
const G_NET_UNIX: u64 = 29;
const G_SWAPS: u64 = 52;
const G_VMSTAT: u64 = 53;
/// /proc/mconsole (UML's, only with a notify socket): writes become
/// "user" notify messages.
const G_MCONSOLE: u64 = 54;
// fs/pipe-user-pages-{soft,hard}, fs/epoll/, fs/inotify/ (per-user caps,
// kernel/ucounts.rs); inotify/max_user_instances is ino(0, G_SYS_INOTIFY, 1).
const G_PIPE_USER_PAGES_SOFT: u64 = 55;
const G_PIPE_USER_PAGES_HARD: u64 = 56;
const G_SYS_EPOLL: u64 = 57;
const G_EPOLL_MAX_USER_WATCHES: u64 = 58;
const G_SYS_INOTIFY: u64 = 59;
/// The sub-index of fs/inotify/max_user_instances under G_SYS_INOTIFY.
const SUB_INOTIFY_MAX_USER_INSTANCES: u32 = 1;
const G_DOMAINNAME: u64 = 60;
const G_THREADS_MAX: u64 = 61;
const G_TAINTED: u64 = 62;
const G_CORE_PATTERN: u64 = 63;
const G_LEASE_BREAK_TIME: u64 = 64;
const G_PRESSURE: u64 = 65;
const G_PRESSURE_MEMORY: u64 = 66;
// /proc/net's inet files (`ProcSource::net_file`).
const G_NET_DEV: u64 = 70;
const G_NET_IF_INET6: u64 = 71;
const G_NET_ROUTE: u64 = 72;
const G_NET_TCP: u64 = 73;
const G_NET_TCP6: u64 = 74;
const G_NET_UDP: u64 = 75;
const G_NET_UDP6: u64 = 76;
const G_CMDLINE: u64 = 86;
/// fs/file-nr: open files, 0 free, fs/file-max (Linux's format).
const G_FILE_NR: u64 = 67;

// Per-process file ids.
const P_DIR: u64 = 1;
const P_STAT: u64 = 2;
const P_STATUS: u64 = 3;
const P_CMDLINE: u64 = 4;
const P_MAPS: u64 = 5;
const P_FD: u64 = 6;
const P_FD_LINK: u64 = 7;
const P_EXE: u64 = 8;
const P_COMM: u64 = 9;
const P_MOUNTS: u64 = 10;
const P_ENVIRON: u64 = 11;
const P_CWD: u64 = 12;
const P_FDINFO: u64 = 13;
const P_FDINFO_FILE: u64 = 14;
const P_MOUNTINFO: u64 = 15;
const P_TASK: u64 = 16;
/// /proc/<pid>/task/<tid>: the thread's directory (no task/ inside).
const P_TID_DIR: u64 = 17;
const P_OOM_SCORE_ADJ: u64 = 20;
const P_OOM_ADJ: u64 = 21;
const P_OOM_SCORE: u64 = 22;
const P_SMAPS: u64 = 35;
/// /proc/<pid>/cgroup: "0::<path>" (fs/cgroupfs.rs).
const P_CGROUP: u64 = 40;
const P_SMAPS_ROLLUP: u64 = 36;
/// /proc/<pid>/root: the process's root directory (chroot).
const P_ROOT: u64 = 41;

/// Children of /proc (besides the pid directories), in listing order.
const ROOT_ENTRIES: &[(&str, u64, Kind)] = &[
    ("cmdline", G_CMDLINE, Kind::File),
    ("cpuinfo", G_CPUINFO, Kind::File),
    ("filesystems", G_FILESYSTEMS, Kind::File),
    ("loadavg", G_LOADAVG, Kind::File),
    ("locks", G_LOCKS, Kind::File),
    ("meminfo", G_MEMINFO, Kind::File),
    ("mounts", G_MOUNTS, Kind::File),
    ("net", G_NET, Kind::Dir),
    ("partitions", G_PARTITIONS, Kind::File),
    ("pressure", G_PRESSURE, Kind::Dir),
    ("self", G_SELF, Kind::Link),
    ("stat", G_STAT, Kind::File),
    ("swaps", G_SWAPS, Kind::File),
    ("sys", G_SYS, Kind::Dir),
    ("sysvipc", G_SYSVIPC, Kind::Dir),
    ("uptime", G_UPTIME, Kind::File),
    ("version", G_VERSION, Kind::File),
    ("vmstat", G_VMSTAT, Kind::File),
];
const NET_ENTRIES: &[(&str, u64, Kind)] = &[
    ("dev", G_NET_DEV, Kind::File),
    ("if_inet6", G_NET_IF_INET6, Kind::File),
    ("route", G_NET_ROUTE, Kind::File),
    ("tcp", G_NET_TCP, Kind::File),
    ("tcp6", G_NET_TCP6, Kind::File),
    ("udp", G_NET_UDP, Kind::File),
    ("udp6", G_NET_UDP6, Kind::File),
    ("unix", G_NET_UNIX, Kind::File),
];
const PRESSURE_ENTRIES: &[(&str, u64, Kind)] = &[("memory", G_PRESSURE_MEMORY, Kind::File)];
const SYS_ENTRIES: &[(&str, u64, Kind)] = &[
    ("fs", G_SYS_FS, Kind::Dir),
    ("kernel", G_SYS_KERNEL, Kind::Dir),
    ("vm", G_SYS_VM, Kind::Dir),
];
const SYS_KERNEL_ENTRIES: &[(&str, u64, Kind)] = &[
    ("core_pattern", G_CORE_PATTERN, Kind::File),
    ("domainname", G_DOMAINNAME, Kind::File),
    ("hostname", G_HOSTNAME, Kind::File),
    ("msgmax", G_MSGMAX, Kind::File),
    ("msgmnb", G_MSGMNB, Kind::File),
    ("msgmni", G_MSGMNI, Kind::File),
    ("osrelease", G_OSRELEASE, Kind::File),
    ("ostype", G_OSTYPE, Kind::File),
    ("pid_max", G_PID_MAX, Kind::File),
    ("random", G_SYS_RANDOM, Kind::Dir),
    ("sem", G_SEM, Kind::File),
    ("shmall", G_SHMALL, Kind::File),
    ("shmmax", G_SHMMAX, Kind::File),
    ("shmmni", G_SHMMNI, Kind::File),
    ("tainted", G_TAINTED, Kind::File),
    ("threads-max", G_THREADS_MAX, Kind::File),
];
const SYSVIPC_ENTRIES: &[(&str, u64, Kind)] = &[
    ("msg", G_SYSVIPC_MSG, Kind::File),
    ("sem", G_SYSVIPC_SEM, Kind::File),
    ("shm", G_SYSVIPC_SHM, Kind::File),
];
const SYS_RANDOM_ENTRIES: &[(&str, u64, Kind)] = &[
    ("boot_id", G_BOOT_ID, Kind::File),
    ("uuid", G_UUID, Kind::File),
];
const SYS_FS_ENTRIES: &[(&str, u64, Kind)] = &[
    ("epoll", G_SYS_EPOLL, Kind::Dir),
    ("file-max", G_FILE_MAX, Kind::File),
    ("file-nr", G_FILE_NR, Kind::File),
    ("inotify", G_SYS_INOTIFY, Kind::Dir),
    ("lease-break-time", G_LEASE_BREAK_TIME, Kind::File),
    ("nr_open", G_NR_OPEN, Kind::File),
    ("pipe-max-size", G_PIPE_MAX_SIZE, Kind::File),
    ("pipe-user-pages-hard", G_PIPE_USER_PAGES_HARD, Kind::File),
    ("pipe-user-pages-soft", G_PIPE_USER_PAGES_SOFT, Kind::File),
];
const SYS_EPOLL_ENTRIES: &[(&str, u64, Kind)] =
    &[("max_user_watches", G_EPOLL_MAX_USER_WATCHES, Kind::File)];

/// The per-user caps a root write may change: (file id, sub-index).
fn sysctl_knob(file: u64, sub: u32) -> Option<SysKnob> {
    match (file, sub) {
        (G_PIPE_USER_PAGES_SOFT, 0) => Some(SysKnob::PipeUserPagesSoft),
        (G_PIPE_USER_PAGES_HARD, 0) => Some(SysKnob::PipeUserPagesHard),
        (G_EPOLL_MAX_USER_WATCHES, 0) => Some(SysKnob::EpollMaxUserWatches),
        (G_SYS_INOTIFY, SUB_INOTIFY_MAX_USER_INSTANCES) => Some(SysKnob::InotifyMaxUserInstances),
        (G_FILE_MAX, 0) => Some(SysKnob::FileMax),
        _ => None,
    }
}
const SYS_VM_ENTRIES: &[(&str, u64, Kind)] = &[
    ("max_map_count", G_MAX_MAP_COUNT, Kind::File),
    ("overcommit_memory", G_OVERCOMMIT, Kind::File),
];
const PID_ENTRIES: &[(&str, u64, Kind)] = &[
    ("cgroup", P_CGROUP, Kind::File),
    ("cmdline", P_CMDLINE, Kind::File),
    ("comm", P_COMM, Kind::File),
    ("cwd", P_CWD, Kind::Link),
    ("environ", P_ENVIRON, Kind::File),
    ("exe", P_EXE, Kind::Link),
    ("fd", P_FD, Kind::Dir),
    ("fdinfo", P_FDINFO, Kind::Dir),
    ("maps", P_MAPS, Kind::File),
    ("mountinfo", P_MOUNTINFO, Kind::File),
    ("mounts", P_MOUNTS, Kind::File),
    ("oom_adj", P_OOM_ADJ, Kind::File),
    ("oom_score", P_OOM_SCORE, Kind::File),
    ("oom_score_adj", P_OOM_SCORE_ADJ, Kind::File),
    ("root", P_ROOT, Kind::Link),
    ("smaps", P_SMAPS, Kind::File),
    ("smaps_rollup", P_SMAPS_ROLLUP, Kind::File),
    ("stat", P_STAT, Kind::File),
    ("status", P_STATUS, Kind::File),
    ("task", P_TASK, Kind::Dir),
];

fn ino(pid: u32, file: u64, sub: u32) -> Ino {
    ((pid as u64) << 32) | (file << 24) | (sub as u64 & 0xff_ffff)
}

fn split(i: Ino) -> (u32, u64, u32) {
    ((i >> 32) as u32, (i >> 24) & 0xff, (i & 0xff_ffff) as u32)
}

/// The pid or tid whose directory inode `i` is in (0: a guest-wide file or
/// directory): what a /proc refresh for it must gather.
pub fn owner_of(i: Ino) -> u32 {
    split(i).0
}

/// Whether the file with inode `i` shows Pss (which needs every sharer of
/// every page counted, guest-wide).
pub fn shows_pss(i: Ino) -> bool {
    matches!(split(i).1, P_SMAPS | P_SMAPS_ROLLUP)
}

/// The pid whose /proc/<pid> directory inode `i` is (None for any other
/// proc inode): pidfd_send_signal takes such a directory's fd as a pidfd.
pub fn pid_dir_of(i: Ino) -> Option<u32> {
    match split(i) {
        (pid, P_DIR, 0) if pid > 0 => Some(pid),
        _ => None,
    }
}

fn dt(k: Kind) -> u8 {
    match k {
        Kind::Dir => DT_DIR,
        Kind::File => DT_REG,
        Kind::Link => DT_LNK,
    }
}

pub struct ProcFs {
    src: Rc<dyn ProcSource>,
}

impl ProcFs {
    pub fn new(src: Rc<dyn ProcSource>) -> ProcFs {
        ProcFs { src }
    }

    /// Checks that `i` names something that exists now; returns its kind
    /// and the owning task (for per-process nodes).
    fn resolve(&self, i: Ino) -> KResult<(Kind, Option<TaskInfo>)> {
        let (pid, file, sub) = split(i);
        if pid == 0 {
            let kind = match file {
                G_ROOT | G_SYS | G_SYS_KERNEL | G_SYS_FS | G_SYS_VM | G_SYS_RANDOM | G_SYSVIPC
                | G_NET | G_PRESSURE | G_SYS_EPOLL | G_SYS_INOTIFY => Kind::Dir,
                G_PIPE_USER_PAGES_SOFT | G_PIPE_USER_PAGES_HARD | G_EPOLL_MAX_USER_WATCHES => {
                    Kind::File
                }
                G_NET_UNIX | G_NET_DEV..=G_NET_UDP6 => Kind::File,
                G_SELF => Kind::Link,
                G_MEMINFO..=G_STAT
                | G_HOSTNAME..=G_OSTYPE
                | G_PARTITIONS
                | G_PID_MAX..=G_OVERCOMMIT
                | G_LOCKS
                | G_SYSVIPC_SHM..=G_MSGMNI
                | G_SWAPS
                | G_VMSTAT
                | G_DOMAINNAME..=G_LEASE_BREAK_TIME
                | G_PRESSURE_MEMORY
                | G_CMDLINE
                | G_FILE_NR => Kind::File,
                G_MCONSOLE if self.src.mconsole_notify() => Kind::File,
                _ => return Err(Errno::ENOENT),
            };
            return match (file, sub) {
                (_, 0) => Ok((kind, None)),
                (G_SYS_INOTIFY, SUB_INOTIFY_MAX_USER_INSTANCES) => Ok((Kind::File, None)),
                _ => Err(Errno::ENOENT),
            };
        }
        let task = self.src.task(pid).ok_or(Errno::ENOENT)?;
        let kind = match file {
            P_DIR | P_TID_DIR => Kind::Dir,
            P_FD_LINK => {
                if !self.src.fds(pid).iter().any(|(fd, _)| *fd == sub) {
                    return Err(Errno::ENOENT);
                }
                return Ok((Kind::Link, Some(task)));
            }
            P_FDINFO_FILE => {
                if !self.src.fds(pid).iter().any(|(fd, _)| *fd == sub) {
                    return Err(Errno::ENOENT);
                }
                return Ok((Kind::File, Some(task)));
            }
            _ => PID_ENTRIES
                .iter()
                .find(|e| e.1 == file)
                .map(|e| e.2)
                .ok_or(Errno::ENOENT)?,
        };
        if sub != 0 {
            return Err(Errno::ENOENT);
        }
        Ok((kind, Some(task)))
    }

    /// The text of a file node.
    fn content(&self, i: Ino) -> KResult<Vec<u8>> {
        let (kind, task) = self.resolve(i)?;
        match kind {
            Kind::Dir => return Err(Errno::EISDIR),
            Kind::Link => return Err(Errno::EINVAL),
            Kind::File => {}
        }
        let (pid, file, sub) = split(i);
        let s = &self.src;
        let text = match (task, file) {
            (None, G_NET_UNIX) => return Ok(s.net_unix()),
            (None, G_NET_DEV..=G_NET_UDP6) => {
                let name = NET_ENTRIES.iter().find(|e| e.1 == file).map_or("", |e| e.0);
                return Ok(s.net_file(name).unwrap_or_default());
            }
            (None, G_CMDLINE) => {
                let mut t = s.kernel_cmdline();
                t.push(b'\n');
                return Ok(t);
            }
            (Some(_), P_FDINFO_FILE) => return s.fdinfo(pid, sub).ok_or(Errno::ENOENT),
            (None, G_MEMINFO) => format::meminfo(&s.meminfo()),
            (None, G_MOUNTS) => format::mounts(&s.mounts(s.current_pid())),
            (None, G_UPTIME) => format::uptime(s.uptime()),
            (None, G_LOADAVG) => format::loadavg(&s.loadavg()),
            (None, G_FILESYSTEMS) => format::filesystems(&s.filesystems()),
            (None, G_PARTITIONS) => format::partitions(&s.partitions()),
            (None, G_SWAPS) => format::swaps(&s.swaps()),
            (None, G_VMSTAT) => format::vmstat(&s.meminfo(), &s.vmstat()),
            (None, G_PRESSURE_MEMORY) => format::pressure(&s.memory_pressure()),
            (None, G_CPUINFO) => format::cpuinfo(s.cpu_count(), &s.cpu_flags()),
            (None, G_VERSION) => format::version(&s.kernel_version()),
            (None, G_STAT) => format::sys_stat(&s.sys_stat()),
            (None, G_HOSTNAME) => format!("{}\n", s.hostname()),
            (None, G_OSRELEASE) => format!("{}\n", s.release()),
            (None, G_OSTYPE) => "Linux\n".to_string(),
            (None, G_PID_MAX) => format!("{}\n", s.sysctl().pid_max),
            (None, G_BOOT_ID) => format!("{}\n", s.sysctl().boot_id),
            (None, G_UUID) => format!("{}\n", s.sysctl().uuid),
            (None, G_FILE_MAX) => format!("{}\n", s.sysctl().file_max),
            (None, G_FILE_NR) => {
                let c = s.sysctl();
                format!("{}\t0\t{}\n", c.nr_files, c.file_max)
            }
            (None, G_NR_OPEN) => format!("{}\n", s.sysctl().nr_open),
            (None, G_PIPE_MAX_SIZE) => format!("{}\n", s.sysctl().pipe_max_size),
            (None, G_PIPE_USER_PAGES_SOFT) => format!("{}\n", s.sysctl().pipe_user_pages_soft),
            (None, G_PIPE_USER_PAGES_HARD) => format!("{}\n", s.sysctl().pipe_user_pages_hard),
            (None, G_EPOLL_MAX_USER_WATCHES) => {
                format!("{}\n", s.sysctl().epoll_max_user_watches)
            }
            (None, G_SYS_INOTIFY) if sub == SUB_INOTIFY_MAX_USER_INSTANCES => {
                format!("{}\n", s.sysctl().inotify_max_user_instances)
            }
            (None, G_MAX_MAP_COUNT) => format!("{}\n", s.sysctl().max_map_count),
            (None, G_OVERCOMMIT) => format!("{}\n", s.sysctl().overcommit_memory),
            (None, G_LOCKS) => s.locks(),
            (None, G_DOMAINNAME) => format!("{}\n", s.domainname()),
            (None, G_THREADS_MAX) => format!("{}\n", s.sysctl().threads_max),
            (None, G_TAINTED) => "0\n".to_string(),
            (None, G_CORE_PATTERN) => "core\n".to_string(),
            (None, G_LEASE_BREAK_TIME) => format!("{}\n", crate::kernel::locks::LEASE_BREAK_SECS),
            (None, G_SYSVIPC_SHM) => s.sysvipc(IpcFile::Shm),
            (None, G_SYSVIPC_SEM) => s.sysvipc(IpcFile::Sem),
            (None, G_SYSVIPC_MSG) => s.sysvipc(IpcFile::Msg),
            (None, G_SHMMAX) => format!("{}\n", s.sysctl().ipc.shmmax),
            (None, G_SHMALL) => format!("{}\n", s.sysctl().ipc.shmall),
            (None, G_SHMMNI) => format!("{}\n", s.sysctl().ipc.shmmni),
            (None, G_SEM) => {
                let c = s.sysctl().ipc;
                format!("{}\t{}\t{}\t{}\n", c.semmsl, c.semmns, c.semopm, c.semmni)
            }
            (None, G_MSGMAX) => format!("{}\n", s.sysctl().ipc.msgmax),
            (None, G_MSGMNB) => format!("{}\n", s.sysctl().ipc.msgmnb),
            (None, G_MSGMNI) => format!("{}\n", s.sysctl().ipc.msgmni),
            // Write-only (UML registers no read operation: EIO).
            (None, G_MCONSOLE) => return Err(Errno::EIO),
            (Some(_), P_MOUNTINFO) => format::mountinfo(&s.mounts(pid)),
            (Some(t), P_CGROUP) => format!(
                "0::{}\n",
                s.cgroup_path(t.tgid()).unwrap_or_else(|| "/".into())
            ),
            (Some(t), P_STAT) => format::task_stat(&t),
            (Some(t), P_STATUS) => format::task_status(&t),
            (Some(_), P_CMDLINE) => return Ok(s.cmdline(pid)),
            (Some(_), P_ENVIRON) => return Ok(s.environ(pid)),
            (Some(t), P_COMM) => {
                let mut c = t.comm[..t.comm.len().min(15)].to_vec();
                c.push(b'\n');
                return Ok(c);
            }
            (Some(t), P_OOM_SCORE_ADJ) => format!("{}\n", t.oom_score_adj),
            (Some(t), P_OOM_ADJ) => format!("{}\n", pidwrite::oom_adj_shown(t.oom_score_adj)),
            (Some(t), P_OOM_SCORE) => format!("{}\n", t.oom_score),
            (Some(_), P_MAPS) => format::maps(&s.maps(pid)),
            (Some(_), P_SMAPS) => smaps::smaps(&s.maps(pid)),
            (Some(_), P_SMAPS_ROLLUP) => smaps::smaps_rollup(&s.maps(pid)).unwrap_or_default(),
            (Some(_), P_MOUNTS) => format::mounts(&s.mounts(pid)),
            _ => return Err(Errno::ENOENT),
        };
        Ok(text.into_bytes())
    }

    fn entries_of(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        let (kind, task) = self.resolve(dir)?;
        if kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let (pid, file, _) = split(dir);
        let fixed = |list: &[(&str, u64, Kind)], pid: u32| -> Vec<DirEntry> {
            list.iter()
                .map(|&(n, f, k)| DirEntry {
                    ino: ino(pid, f, 0),
                    name: n.as_bytes().to_vec(),
                    file_type: dt(k),
                })
                .collect()
        };
        Ok(match (task, file) {
            (None, G_ROOT) => {
                let mut v = fixed(ROOT_ENTRIES, 0);
                if self.src.mconsole_notify() {
                    v.push(DirEntry {
                        ino: ino(0, G_MCONSOLE, 0),
                        name: b"mconsole".to_vec(),
                        file_type: DT_REG,
                    });
                }
                let mut pids = self.src.pids();
                pids.sort_unstable();
                for p in pids {
                    v.push(DirEntry {
                        ino: ino(p, P_DIR, 0),
                        name: p.to_string().into_bytes(),
                        file_type: DT_DIR,
                    });
                }
                v
            }
            (None, G_SYS) => fixed(SYS_ENTRIES, 0),
            (None, G_NET) => fixed(NET_ENTRIES, 0),
            (None, G_SYS_KERNEL) => fixed(SYS_KERNEL_ENTRIES, 0),
            (None, G_SYS_RANDOM) => fixed(SYS_RANDOM_ENTRIES, 0),
            (None, G_SYS_FS) => fixed(SYS_FS_ENTRIES, 0),
            (None, G_SYS_EPOLL) => fixed(SYS_EPOLL_ENTRIES, 0),
            (None, G_SYS_INOTIFY) => vec![DirEntry {
                ino: ino(0, G_SYS_INOTIFY, SUB_INOTIFY_MAX_USER_INSTANCES),
                name: b"max_user_instances".to_vec(),
                file_type: DT_REG,
            }],
            (None, G_SYS_VM) => fixed(SYS_VM_ENTRIES, 0),
            (None, G_SYSVIPC) => fixed(SYSVIPC_ENTRIES, 0),
            (None, G_PRESSURE) => fixed(PRESSURE_ENTRIES, 0),
            (Some(_), P_DIR) => fixed(PID_ENTRIES, pid),
            (Some(_), P_TID_DIR) => {
                let mut v = fixed(PID_ENTRIES, pid);
                v.retain(|e| e.name != b"task");
                v
            }
            // The task's threads, each a directory like /proc/<pid>'s
            // without task/ (no loop for find), named by the thread's id
            // (its nodes are the thread's: ino(tid, ..)).
            (Some(t), P_TASK) => {
                let tids = if t.tids.is_empty() {
                    vec![pid]
                } else {
                    t.tids.clone()
                };
                tids.into_iter()
                    .map(|tid| DirEntry {
                        ino: ino(tid, P_TID_DIR, 0),
                        name: tid.to_string().into_bytes(),
                        file_type: DT_DIR,
                    })
                    .collect()
            }
            (Some(_), P_FD) => self
                .src
                .fds(pid)
                .into_iter()
                .map(|(fd, _)| DirEntry {
                    ino: ino(pid, P_FD_LINK, fd),
                    name: fd.to_string().into_bytes(),
                    file_type: DT_LNK,
                })
                .collect(),
            (Some(_), P_FDINFO) => self
                .src
                .fds(pid)
                .into_iter()
                .map(|(fd, _)| DirEntry {
                    ino: ino(pid, P_FDINFO_FILE, fd),
                    name: fd.to_string().into_bytes(),
                    file_type: DT_REG,
                })
                .collect(),
            _ => return Err(Errno::ENOTDIR),
        })
    }

    /// A write to /proc/<pid>/{comm, oom_score_adj, oom_adj} (or a
    /// thread's comm): Linux's rules (`pidwrite`). Any other per-process
    /// A write to a per-user cap (root only, by the file's 0644 mode):
    /// one decimal number, as Linux's proc_doulongvec_minmax reads it
    /// (blanks around it; anything else, a sign or no digit: EINVAL).
    fn write_sysctl(&self, knob: SysKnob, offset: u64, data: &[u8]) -> KResult<usize> {
        if offset != 0 {
            return Err(Errno::EINVAL);
        }
        let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
        let v: u64 = text.trim().parse().map_err(|_| Errno::EINVAL)?;
        let max = match knob {
            SysKnob::InotifyMaxUserInstances => i32::MAX as u64,
            _ => i64::MAX as u64,
        };
        if v > max {
            return Err(Errno::EINVAL);
        }
        self.src.set_sysctl(knob, v)?;
        Ok(data.len())
    }

    /// file: EACCES. Returns the whole length, as Linux does.
    fn write_pid_file(&self, t: &TaskInfo, file: u64, data: &[u8]) -> KResult<usize> {
        let s = &self.src;
        match file {
            P_COMM => {
                // Only a thread of the writer's own process (else EINVAL).
                if t.tgid() != s.current_pid() {
                    return Err(Errno::EINVAL);
                }
                s.set_comm(t.pid, &pidwrite::comm_of(data))?;
            }
            P_OOM_SCORE_ADJ | P_OOM_ADJ => {
                let legacy = file == P_OOM_ADJ;
                let new = if legacy {
                    pidwrite::oom_adj_of(data)?
                } else {
                    pidwrite::oom_score_adj_of(data)?
                };
                let min = pidwrite::check_oom(
                    t.oom_score_adj,
                    t.oom_score_adj_min,
                    new,
                    s.caller_privileged(),
                    legacy,
                )?;
                s.set_oom_score_adj(t.tgid(), new, min)?;
            }
            _ => return Err(Errno::EACCES),
        }
        Ok(data.len())
    }

    fn parent_of(&self, dir: Ino) -> Ino {
        match split(dir) {
            (0, G_SYS_KERNEL | G_SYS_FS | G_SYS_VM, _) => ino(0, G_SYS, 0),
            (0, G_SYS_RANDOM, _) => ino(0, G_SYS_KERNEL, 0),
            (pid, P_FD | P_FDINFO | P_TASK, _) if pid != 0 => ino(pid, P_DIR, 0),
            (pid, P_TID_DIR, _) if pid != 0 => {
                let tgid = self.src.task(pid).map(|t| t.tgid()).unwrap_or(pid);
                ino(tgid, P_TASK, 0)
            }
            (0, G_NET, _) => ino(0, G_ROOT, 0),
            _ => ino(0, G_ROOT, 0),
        }
    }
}

impl FileSystem for ProcFs {
    fn generated(&self) -> bool {
        true
    }

    fn fs_type(&self) -> &'static str {
        "proc"
    }

    fn root(&self) -> Ino {
        ino(0, G_ROOT, 0)
    }

    fn stat(&self, i: Ino) -> KResult<Stat> {
        let (kind, task) = self.resolve(i)?;
        let (_, file, _) = split(i);
        let perm = match (kind, file) {
            (Kind::Dir, P_FD | P_FDINFO) if task.is_some() => 0o500,
            (Kind::Dir, _) => 0o555,
            (Kind::Link, P_FD_LINK) if task.is_some() => 0o700,
            (Kind::File, P_FDINFO_FILE) if task.is_some() => 0o444,
            (Kind::Link, _) => 0o777,
            (Kind::File, G_HOSTNAME | G_DOMAINNAME) if task.is_none() => 0o644,
            (Kind::File, f) if task.is_none() && sysctl_knob(f, split(i).2).is_some() => 0o644,
            (Kind::File, G_MCONSOLE) if task.is_none() => 0o200,
            (Kind::File, P_ENVIRON) if task.is_some() => 0o400,
            (Kind::File, P_COMM | P_OOM_ADJ | P_OOM_SCORE_ADJ) if task.is_some() => 0o644,
            (Kind::File, _) => 0o444,
        };
        let ty = match kind {
            Kind::Dir => S_IFDIR,
            Kind::File => S_IFREG,
            Kind::Link => S_IFLNK,
        };
        let t = Timespec {
            sec: self.src.sys_stat().btime as i64,
            nsec: 0,
        };
        let (uid, gid) = task.map(|t| (t.euid, t.egid)).unwrap_or((0, 0));
        Ok(Stat {
            ino: i,
            mode: ty | perm,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            uid,
            gid,
            size: 0,
            blocks: 0,
            blksize: 1024,
            rdev: 0,
            atime: t,
            mtime: t,
            ctime: t,
        })
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        match name {
            b"." => {
                self.entries_of(dir)?;
                return Ok(dir);
            }
            b".." => {
                self.entries_of(dir)?;
                return Ok(self.parent_of(dir));
            }
            _ => {}
        }
        // Pid directories and fds are found by number, not by listing.
        let num = std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.starts_with('0') || *n == "0")
            .and_then(|n| n.parse::<u32>().ok());
        let (pid, file, _) = split(dir);
        match (pid, file, num) {
            (0, G_ROOT, Some(p)) if p != 0 => {
                self.resolve(dir)?;
                return self.resolve(ino(p, P_DIR, 0)).map(|_| ino(p, P_DIR, 0));
            }
            (p, P_TASK, Some(t)) if p != 0 => {
                let (_, leader) = self.resolve(dir)?;
                let listed =
                    leader.is_some_and(|l| l.tids.contains(&t) || (l.tids.is_empty() && t == p));
                return if listed {
                    Ok(ino(t, P_TID_DIR, 0))
                } else {
                    Err(Errno::ENOENT)
                };
            }
            (p, P_FD, Some(fd)) if p != 0 && fd <= 0xff_ffff => {
                return self
                    .resolve(ino(p, P_FD_LINK, fd))
                    .map(|_| ino(p, P_FD_LINK, fd));
            }
            (p, P_FDINFO, Some(fd)) if p != 0 && fd <= 0xff_ffff => {
                return self
                    .resolve(ino(p, P_FDINFO_FILE, fd))
                    .map(|_| ino(p, P_FDINFO_FILE, fd));
            }
            _ => {}
        }
        self.entries_of(dir)?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.ino)
            .ok_or(Errno::ENOENT)
    }

    fn poll_event(&self, i: Ino) -> Option<crate::fs::PollEvent> {
        use crate::fs::PollEvent;
        match split(i) {
            (0, G_MOUNTS, _) => Some(PollEvent::Mounts),
            (0, G_SWAPS, _) => Some(PollEvent::Swaps),
            (p, P_MOUNTS | P_MOUNTINFO, _) if p > 0 => Some(PollEvent::Mounts),
            _ => None,
        }
    }

    fn readdir(&self, dir: Ino) -> KResult<Vec<DirEntry>> {
        let mut v = vec![
            DirEntry {
                ino: dir,
                name: b".".to_vec(),
                file_type: DT_DIR,
            },
            DirEntry {
                ino: self.parent_of(dir),
                name: b"..".to_vec(),
                file_type: DT_DIR,
            },
        ];
        v.extend(self.entries_of(dir)?);
        Ok(v)
    }

    fn read(&self, i: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let text = self.content(i)?;
        let start = (offset.min(text.len() as u64)) as usize;
        let n = (text.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&text[start..start + n]);
        Ok(n)
    }

    /// Only kernel/hostname takes writes (the same state as sethostname):
    /// a write at offset 0 sets it to the text up to the first newline or
    /// NUL, cut at 64 bytes (Linux's proc_dostring).
    ///
    /// /proc/mconsole takes any write whole, as UML's: the bytes (at most
    /// 512 go out) become a "user" notify message.
    fn write(&self, i: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        let (_, task) = self.resolve(i)?;
        if task.is_none() && split(i).1 == G_MCONSOLE {
            self.src.user_notify(data)?;
            return Ok(data.len());
        }
        let file = split(i).1;
        if let Some(t) = task {
            return self.write_pid_file(&t, file, data);
        }
        if let Some(knob) = sysctl_knob(file, split(i).2) {
            return self.write_sysctl(knob, offset, data);
        }
        if !matches!(file, G_HOSTNAME | G_DOMAINNAME) {
            return Err(Errno::EACCES);
        }
        if offset != 0 {
            return Err(Errno::EINVAL);
        }
        let end = data
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .unwrap_or(data.len())
            .min(64);
        if file == G_DOMAINNAME {
            self.src.set_domainname(&data[..end])?;
        } else {
            self.src.set_hostname(&data[..end])?;
        }
        Ok(data.len())
    }

    fn truncate(&self, i: Ino, _size: u64) -> KResult<()> {
        self.resolve(i)?;
        // O_TRUNC on kernel/hostname, domainname or mconsole (`echo x >
        // hostname`) is a no-op.
        if matches!(split(i).1, G_HOSTNAME | G_DOMAINNAME | G_MCONSOLE) && split(i).0 == 0 {
            return Ok(());
        }
        if split(i).0 == 0 && sysctl_knob(split(i).1, split(i).2).is_some() {
            return Ok(());
        }
        // And on the writable per-process files.
        if matches!(split(i).1, P_COMM | P_OOM_ADJ | P_OOM_SCORE_ADJ) && split(i).0 != 0 {
            return Ok(());
        }
        Err(Errno::EACCES)
    }

    fn create(
        &self,
        _dir: Ino,
        _name: &[u8],
        _mode: u32,
        _uid: u32,
        _gid: u32,
        _rdev: u64,
    ) -> KResult<Ino> {
        Err(Errno::EACCES)
    }

    fn mkdir(&self, _dir: Ino, _name: &[u8], _mode: u32, _uid: u32, _gid: u32) -> KResult<Ino> {
        Err(Errno::EACCES)
    }

    fn symlink(
        &self,
        _dir: Ino,
        _name: &[u8],
        _target: &[u8],
        _uid: u32,
        _gid: u32,
    ) -> KResult<Ino> {
        Err(Errno::EACCES)
    }

    fn readlink(&self, i: Ino) -> KResult<Vec<u8>> {
        let (kind, task) = self.resolve(i)?;
        if kind != Kind::Link {
            return Err(Errno::EINVAL);
        }
        let (pid, file, sub) = split(i);
        let target = match (task, file) {
            (None, G_SELF) => self.src.current_pid().to_string().into_bytes(),
            (Some(_), P_FD_LINK) => self
                .src
                .fds(pid)
                .into_iter()
                .find(|(fd, _)| *fd == sub)
                .map(|(_, t)| t)
                .ok_or(Errno::ENOENT)?,
            (Some(t), P_EXE) => t.exe,
            (Some(t), P_CWD) => t.cwd,
            (Some(t), P_ROOT) => t.root,
            _ => return Err(Errno::EINVAL),
        };
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        Ok(target)
    }

    fn magic_link(&self, i: Ino) -> Option<(usize, Ino)> {
        let (kind, task) = self.resolve(i).ok()?;
        if kind != Kind::Link {
            return None;
        }
        let (pid, file, sub) = split(i);
        match (task, file) {
            (Some(t), P_EXE) => t.exe_node,
            (Some(_), P_FD_LINK) => self.src.fd_node(pid, sub),
            _ => None,
        }
    }

    fn link(&self, _i: Ino, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EACCES)
    }

    fn unlink(&self, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EACCES)
    }

    fn rmdir(&self, _dir: Ino, _name: &[u8]) -> KResult<()> {
        Err(Errno::EACCES)
    }

    fn rename(&self, _od: Ino, _on: &[u8], _nd: Ino, _nn: &[u8]) -> KResult<()> {
        Err(Errno::EACCES)
    }

    fn setattr(&self, i: Ino, _attr: &SetAttr) -> KResult<()> {
        self.resolve(i)?;
        Err(Errno::EPERM)
    }

    fn statfs(&self) -> KResult<StatFs> {
        Ok(StatFs {
            fs_type: PROC_SUPER_MAGIC,
            block_size: 4096,
            name_max: 255,
            ..Default::default()
        })
    }

    fn sync(&self) -> KResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
