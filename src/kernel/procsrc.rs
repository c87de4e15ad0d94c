//! What /proc shows: a snapshot of kernel state taken just before a guest
//! touches procfs, served to `ProcFs` through the `ProcSource` trait (the
//! kernel is not shared with file systems, so procfs reads a copy).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::core::Kernel;
use super::signal::{SigHandlers, SIG_DFL, SIG_IGN};
use super::task::{Pid, TaskState};
use crate::errno::KResult;
use crate::fs::procfs::{
    uuid_text, IpcFile, LoadAvg, MapInfo, MemInfo, MountInfo, PartitionInfo, Pressure, ProcSource,
    SwapInfo, SysCtl, SysKnob, SysStat, TaskInfo,
};
use crate::mm::usage::{map_counts, PageFacts, Usage};
use crate::mm::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::vfs::dentry::shown_from;

#[derive(Default)]
pub struct ProcSnapshot {
    /// The cgroup2 hierarchy (/proc/<pid>/cgroup reads it directly).
    pub cgroups: Option<crate::fs::cgroupfs::SharedTree>,
    pub meminfo: MemInfo,
    pub tasks: BTreeMap<u32, TaskInfo>,
    pub fds: BTreeMap<u32, Vec<(u32, Vec<u8>)>>,
    /// (pid, fd) → (mount id, inode) of the fds that refer to files.
    pub fd_nodes: BTreeMap<(u32, u32), (usize, u64)>,
    /// (pid, fd) → /proc/<pid>/fdinfo/<fd> text.
    pub fdinfo: BTreeMap<(u32, u32), Vec<u8>>,
    /// /proc/net/unix text.
    pub net_unix: Vec<u8>,
    /// /proc/net's inet files (dev, tcp, udp, route, ...), by name.
    pub net_inet: Vec<(&'static str, Vec<u8>)>,
    pub sysctl: SysCtl,
    /// A hostname written to /proc/sys/kernel/hostname, for the kernel to
    /// take (`apply_proc_writes`).
    pub new_hostname: Option<Vec<u8>>,
    /// Whether /proc/mconsole exists (a notify socket was given).
    pub mconsole_notify: bool,
    /// Writes to /proc/mconsole, for the kernel to send as "user" notify
    /// messages (`apply_proc_writes`).
    pub user_notes: Vec<Vec<u8>>,
    /// Likewise for kernel/domainname.
    pub new_domainname: Option<Vec<u8>>,
    /// The per-user caps, which /proc/sys writes change in place.
    pub ucaps: Option<super::ucounts::UserCaps>,
    pub domainname: String,
    pub maps: BTreeMap<u32, Vec<MapInfo>>,
    pub cmdline: BTreeMap<u32, Vec<u8>>,
    pub current: u32,
    pub mounts: Vec<MountInfo>,
    /// Each task's root (chroot), canonical, by tid: what its mounts and
    /// mountinfo are seen from.
    pub roots: BTreeMap<u32, Vec<u8>>,
    pub partitions: Vec<PartitionInfo>,
    pub swaps: Vec<SwapInfo>,
    pub memory_pressure: Pressure,
    pub vmstat: Vec<(&'static str, u64)>,
    pub uptime: f64,
    /// The wall-clock second the guest booted at (/proc/stat btime).
    pub btime: u64,
    /// /proc/cmdline, without its newline.
    pub kernel_cmdline: Vec<u8>,
    pub hostname: String,
    pub forks: u64,
    pub running: u32,
    /// /proc/locks and /proc/sysvipc/{shm,sem,msg}, formatted.
    pub locks: String,
    pub sysvipc: [String; 3],
    /// Threads other than leaders, by tid (/proc/<pid>/task/<tid>).
    pub threads: BTreeMap<u32, TaskInfo>,
    /// Whether the task looking at /proc is root (CAP_SYS_RESOURCE).
    pub privileged: bool,
    /// Writes to comm, for the kernel to take: (tid, name).
    pub new_comms: Vec<(u32, Vec<u8>)>,
    /// Writes to oom_score_adj / oom_adj: (tgid, value, new floor).
    pub oom_writes: Vec<(u32, i16, Option<i16>)>,
}

impl ProcSnapshot {
    /// The process a pid or tid belongs to (what fds, maps and cmdline
    /// are kept under).
    fn tg(&self, pid: u32) -> u32 {
        self.threads.get(&pid).map(|t| t.tgid()).unwrap_or(pid)
    }
}

pub struct KernelProcSource(pub Rc<RefCell<ProcSnapshot>>);

impl ProcSource for KernelProcSource {
    fn meminfo(&self) -> MemInfo {
        self.0.borrow().meminfo.clone()
    }
    fn pids(&self) -> Vec<u32> {
        self.0.borrow().tasks.keys().copied().collect()
    }
    fn task(&self, pid: u32) -> Option<TaskInfo> {
        let s = self.0.borrow();
        s.tasks.get(&pid).or_else(|| s.threads.get(&pid)).cloned()
    }
    fn current_pid(&self) -> u32 {
        self.0.borrow().current
    }
    fn mounts(&self, pid: u32) -> Vec<MountInfo> {
        let s = self.0.borrow();
        let Some(root) = s.roots.get(&pid) else {
            return s.mounts.clone();
        };
        s.mounts
            .iter()
            .filter_map(|m| {
                let at = crate::vfs::dentry::seen_from(root, &m.mount_point)?;
                Some(MountInfo {
                    mount_point: at,
                    ..m.clone()
                })
            })
            .collect()
    }
    fn uptime(&self) -> (f64, f64) {
        let u = self.0.borrow().uptime;
        (u, u)
    }
    fn loadavg(&self) -> LoadAvg {
        let s = self.0.borrow();
        LoadAvg {
            running: s.running,
            total: s.tasks.len() as u32,
            last_pid: s.tasks.keys().max().copied().unwrap_or(1),
            ..Default::default()
        }
    }
    fn cpu_count(&self) -> u32 {
        1
    }
    fn cgroup_path(&self, tgid: u32) -> Option<String> {
        let s = self.0.borrow();
        let tree = s.cgroups.as_ref()?.borrow();
        tree.path_of(tgid)
    }
    fn cpu_flags(&self) -> String {
        crate::host::cpu::host_flags()
            .unwrap_or(crate::fs::procfs::format::BASELINE_CPU_FLAGS)
            .to_string()
    }
    fn kernel_version(&self) -> String {
        format!(
            "Linux version 6.1.0-umlrun ({}) #1 {}",
            env!("CARGO_PKG_VERSION"),
            "SMP"
        )
    }
    fn filesystems(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("ext2", false),
            ("proc", true),
            ("tmpfs", true),
            ("devtmpfs", true),
            ("sysfs", true),
            ("devpts", true),
            ("cgroup2", true),
        ]
    }
    fn partitions(&self) -> Vec<PartitionInfo> {
        self.0.borrow().partitions.clone()
    }
    fn swaps(&self) -> Vec<SwapInfo> {
        self.0.borrow().swaps.clone()
    }
    fn memory_pressure(&self) -> Pressure {
        self.0.borrow().memory_pressure
    }
    fn vmstat(&self) -> Vec<(&'static str, u64)> {
        self.0.borrow().vmstat.clone()
    }
    fn fds(&self, pid: u32) -> Vec<(u32, Vec<u8>)> {
        let s = self.0.borrow();
        s.fds.get(&s.tg(pid)).cloned().unwrap_or_default()
    }
    fn fdinfo(&self, pid: u32, fd: u32) -> Option<Vec<u8>> {
        let s = self.0.borrow();
        s.fdinfo.get(&(s.tg(pid), fd)).cloned()
    }
    fn net_unix(&self) -> Vec<u8> {
        self.0.borrow().net_unix.clone()
    }
    fn net_file(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.0.borrow();
        s.net_inet.iter().find(|e| e.0 == name).map(|e| e.1.clone())
    }
    fn fd_node(&self, pid: u32, fd: u32) -> Option<(usize, u64)> {
        let s = self.0.borrow();
        s.fd_nodes.get(&(s.tg(pid), fd)).copied()
    }
    fn maps(&self, pid: u32) -> Vec<MapInfo> {
        let s = self.0.borrow();
        s.maps.get(&s.tg(pid)).cloned().unwrap_or_default()
    }
    fn cmdline(&self, pid: u32) -> Vec<u8> {
        let s = self.0.borrow();
        s.cmdline.get(&s.tg(pid)).cloned().unwrap_or_default()
    }
    fn sys_stat(&self) -> SysStat {
        let s = self.0.borrow();
        SysStat {
            cpus: vec![Default::default()],
            processes: s.forks,
            procs_running: s.running,
            btime: s.btime,
            ..Default::default()
        }
    }
    fn hostname(&self) -> String {
        self.0.borrow().hostname.clone()
    }
    fn kernel_cmdline(&self) -> Vec<u8> {
        self.0.borrow().kernel_cmdline.clone()
    }
    fn sysctl(&self) -> SysCtl {
        self.0.borrow().sysctl.clone()
    }
    fn locks(&self) -> String {
        self.0.borrow().locks.clone()
    }
    fn sysvipc(&self, which: IpcFile) -> String {
        self.0.borrow().sysvipc[which as usize].clone()
    }
    fn domainname(&self) -> String {
        self.0.borrow().domainname.clone()
    }
    fn set_domainname(&self, name: &[u8]) -> KResult<()> {
        let mut s = self.0.borrow_mut();
        s.domainname = String::from_utf8_lossy(name).into_owned();
        s.new_domainname = Some(name.to_vec());
        Ok(())
    }
    fn set_sysctl(&self, knob: SysKnob, value: u64) -> KResult<()> {
        let s = self.0.borrow();
        let caps = s.ucaps.as_ref().ok_or(crate::errno::Errno::EACCES)?;
        match knob {
            SysKnob::PipeUserPagesSoft => caps.pipe_pages.set_max(value),
            SysKnob::PipeUserPagesHard => caps.pipe_pages_hard.set(value),
            SysKnob::EpollMaxUserWatches => caps.epoll_watches.set_max(value),
            SysKnob::InotifyMaxUserInstances => caps.inotify_instances.set_max(value),
            SysKnob::FileMax => caps.file_max.set(value),
        }
        Ok(())
    }
    fn set_hostname(&self, name: &[u8]) -> KResult<()> {
        let mut s = self.0.borrow_mut();
        s.hostname = String::from_utf8_lossy(name).into_owned();
        s.new_hostname = Some(name.to_vec());
        Ok(())
    }
    fn caller_privileged(&self) -> bool {
        self.0.borrow().privileged
    }
    fn set_oom_score_adj(&self, pid: u32, adj: i16, min: Option<i16>) -> KResult<()> {
        let mut guard = self.0.borrow_mut();
        let s = &mut *guard;
        for t in s.tasks.values_mut().chain(s.threads.values_mut()) {
            if t.tgid() == pid {
                t.oom_score_adj = adj;
                if let Some(m) = min {
                    t.oom_score_adj_min = m;
                }
            }
        }
        s.oom_writes.push((pid, adj, min));
        Ok(())
    }
    fn set_comm(&self, tid: u32, name: &[u8]) -> KResult<()> {
        let mut s = self.0.borrow_mut();
        if let Some(t) = s.tasks.get_mut(&tid) {
            t.comm = name.to_vec();
        } else if let Some(t) = s.threads.get_mut(&tid) {
            t.comm = name.to_vec();
        }
        s.new_comms.push((tid, name.to_vec()));
        Ok(())
    }
    fn mconsole_notify(&self) -> bool {
        self.0.borrow().mconsole_notify
    }
    fn user_notify(&self, data: &[u8]) -> KResult<()> {
        let mut s = self.0.borrow_mut();
        if !s.mconsole_notify {
            return Err(crate::errno::Errno::ENOENT);
        }
        // One datagram's worth (UML cuts at 512 bytes too); a guest
        // writing in a loop is bounded by the write syscalls themselves,
        // each applied before the next.
        s.user_notes.push(data[..data.len().min(512)].to_vec());
        Ok(())
    }
}

/// mountinfo's id of the mount table's first entry (the root): Linux's
/// ids in a fresh namespace start near there.
const MOUNT_ID_BASE: u32 = 21;

impl Kernel {
    /// Takes what writes to /proc changed (kernel/hostname).
    pub fn apply_proc_writes(&mut self) {
        let Some(snap) = self.proc_snapshot.clone() else {
            return;
        };
        let written = snap.borrow_mut().new_hostname.take();
        if let Some(h) = written {
            self.config.hostname = h;
        }
        let notes = std::mem::take(&mut snap.borrow_mut().user_notes);
        for n in notes {
            self.mconsole
                .notify_raw(crate::mconsole::protocol::NotifyType::User, &n);
        }
        let written = snap.borrow_mut().new_domainname.take();
        if let Some(d) = written {
            self.domainname = d;
        }
        let comms = std::mem::take(&mut snap.borrow_mut().new_comms);
        for (tid, name) in comms {
            if let Some(t) = self.tasks.get_mut(&(tid as Pid)) {
                t.comm = name;
            }
        }
        let ooms = std::mem::take(&mut snap.borrow_mut().oom_writes);
        for (tgid, adj, min) in ooms {
            // oom_score_adj is the process's (Linux: signal_struct): every
            // thread gets it.
            for t in self.tasks.values_mut().filter(|t| t.tgid == tgid as Pid) {
                t.oom_score_adj = adj;
                if let Some(m) = min {
                    t.oom_score_adj_min = m;
                }
            }
        }
    }

    /// The refresh a /proc file or directory with inode `ino` needs.
    pub fn proc_scope_of(ino: crate::fs::Ino) -> ProcScope {
        match crate::fs::procfs::owner_of(ino) {
            0 => ProcScope::All,
            p => ProcScope::Process {
                pid: p as Pid,
                pss: crate::fs::procfs::shows_pss(ino),
            },
        }
    }

    /// The refresh a lookup of `path` (relative to `base`) needs: a path
    /// into a pid's directory (also `self`, `thread-self`) gathers what
    /// lookups need there; any other path under /proc, everything.
    pub fn proc_lookup_scope(&self, tid: Pid, base: &[u8], path: &[u8]) -> ProcScope {
        match proc_path_owner(base, path) {
            PathOwner::Pid(p) => ProcScope::Lookup(p),
            PathOwner::Caller => ProcScope::Lookup(self.tasks.get(&tid).map_or(tid, |t| t.tgid)),
            PathOwner::CallerThread => ProcScope::Lookup(tid),
            PathOwner::None => ProcScope::All,
        }
    }

    /// Refreshes what /proc shows, from `tid`'s point of view.
    pub fn refresh_proc(&mut self, tid: Pid) {
        self.refresh_proc_for(tid, ProcScope::All);
    }

    /// Refreshes what /proc shows for a look at `scope`. The list of
    /// processes and their cheap figures are always fresh; what costs a
    /// walk of an address space or a host read — memory usage, maps, CPU
    /// time, fds — is gathered for the one process a scope names, and a
    /// path lookup (`ProcScope::Lookup`) gathers no usage and no
    /// guest-wide figures at all (the read that follows refreshes what it
    /// shows). So `ls /proc` or `ps` among hundreds of processes costs one
    /// process's work per file, not every process's: under a fork bomb
    /// root's `ls /proc` took 12 s.
    pub fn refresh_proc_for(&mut self, tid: Pid, scope: ProcScope) {
        let Some(snap) = self.proc_snapshot.clone() else {
            return;
        };
        // CPU times as of now (`cpuacct.rs`).
        self.settle_cpu();
        let (only, light, pss) = match scope {
            ProcScope::All => (None, false, true),
            ProcScope::Process { pid, pss } => (Some(pid), false, pss),
            ProcScope::Lookup(p) => (Some(p), true, false),
        };
        // A thread's files are its process's.
        let only = only.map(|p| self.tasks.get(&p).map_or(p, |t| t.tgid));
        let wanted = |tgid: Pid| only.is_none_or(|p| p == tgid);
        let fdinfo = self.fdinfo_all(only);
        let net = (!light).then(|| (self.net_unix_text(), self.net_proc_texts()));
        let mut s = snap.borrow_mut();
        if let Some((net_unix, net_inet)) = net {
            s.net_unix = net_unix;
            s.net_inet = net_inet;
        }
        // Guest-wide figures no file of a single process shows.
        let all = only.is_none();
        if all {
            s.meminfo = self.meminfo();
        }
        s.fdinfo = fdinfo;
        s.current = self.tasks.get(&tid).map(|t| t.tgid as u32).unwrap_or(1);
        // Paths are shown as the reader names them from its root (chroot).
        let root = self
            .tasks
            .get(&tid)
            .map_or_else(|| b"/".to_vec(), |t| t.fs.borrow().root.path());
        let root = root.as_slice();
        s.privileged = self.tasks.get(&tid).is_some_and(|t| t.cred.euid == 0);
        let oom_total = self.oom_total_pages();
        // Window pages the guest never touched are not resident.
        let untouched = self.physmem.untouched();
        let up = self.uptime();
        s.uptime = up.as_secs_f64();
        // Linux's btime: the wall clock now less the time since boot.
        let (wall, _) = crate::host::clock::now(0);
        s.btime = u64::try_from(wall)
            .unwrap_or(0)
            .saturating_sub(up.as_secs());
        if s.kernel_cmdline.is_empty() {
            s.kernel_cmdline = self.config.cmdline.clone();
        }
        s.hostname = String::from_utf8_lossy(&self.config.hostname).into_owned();
        s.mconsole_notify = self.mconsole.has_notify();
        s.domainname = String::from_utf8_lossy(&self.domainname).into_owned();
        // Linux's set_max_threads: memory / (8 * THREAD_SIZE), at least 20.
        s.sysctl.threads_max = (self.config.mem_bytes / (8 * 16384)).clamp(20, 0x3fff_ffff);
        let mut id = [0u8; 16];
        if s.sysctl.boot_id == SysCtl::default().boot_id {
            self.rng.fill(&mut id);
            s.sysctl.boot_id = uuid_text(id);
        }
        self.rng.fill(&mut id);
        s.sysctl.uuid = uuid_text(id);
        s.sysctl.file_max = self.ucaps.file_max.get();
        s.sysctl.nr_files = crate::vfs::file::nr_files();
        s.sysctl.nr_open = super::fdtable::NR_OPEN as u64;
        s.sysctl.pipe_max_size = crate::fs::pipe::PIPE_MAX_SIZE as u64;
        s.sysctl.pipe_user_pages_soft = self.ucaps.pipe_pages.max();
        s.sysctl.pipe_user_pages_hard = self.ucaps.pipe_pages_hard.get();
        s.sysctl.epoll_max_user_watches = self.ucaps.epoll_watches.max();
        s.sysctl.inotify_max_user_instances = self.ucaps.inotify_instances.max();
        s.ucaps = Some(self.ucaps.clone());
        s.sysctl.max_map_count = self.config.limits.max_map_count;
        s.forks = self.forks;
        if all {
            s.locks = self.locks_text();
            s.sysvipc = self.sysvipc_text();
        }
        s.sysctl.ipc = self.ipc.limits;
        s.tasks.clear();
        s.fds.clear();
        s.fd_nodes.clear();
        s.maps.clear();
        s.cmdline.clear();
        s.threads.clear();
        s.roots.clear();
        s.running = 0;
        let fg = self.console.tty.fg_pgrp.map(|p| p as i32).unwrap_or(-1);
        let ctty_sid = self.console.tty.session;
        let mut tids_of: std::collections::HashMap<Pid, Vec<Pid>> = Default::default();
        for t in self.tasks.values().filter(|t| t.state != TaskState::Dead) {
            tids_of.entry(t.tgid).or_default().push(t.tid);
        }
        let usage = if light {
            Default::default()
        } else {
            self.vma_usages(only, pss)
        };
        for t in self
            .tasks
            .values()
            .filter(|t| t.is_leader() || t.state != TaskState::Dead)
        {
            let state = match t.state {
                TaskState::Runnable => 'R',
                TaskState::Blocked(_) => 'S',
                TaskState::Stopped => 'T',
                TaskState::Zombie => 'Z',
                TaskState::Dead => 'X',
            };
            if state == 'R' && t.is_leader() {
                s.running += 1;
            }
            let full = wanted(t.tgid);
            let pid = t.tid as u32;
            s.roots.insert(pid, t.fs.borrow().root.path());
            let tids = tids_of.get(&t.tgid).map(Vec::as_slice).unwrap_or_default();
            // /proc/<pid>/task lists a leader's threads.
            let leader_tids: Vec<u32> = if t.is_leader() {
                tids.iter().map(|&x| x as u32).collect()
            } else {
                Vec::new()
            };
            // Who it is: all another process than the one looked at gets
            // (its files refresh it in full when read).
            let ids = TaskInfo {
                pid,
                tgid: t.tgid as u32,
                ppid: t.ppid.max(0) as u32,
                pgrp: t.pgid as u32,
                session: t.sid as u32,
                state,
                comm: t.comm.clone(),
                uid: t.cred.uid,
                euid: t.cred.euid,
                gid: t.cred.gid,
                egid: t.cred.egid,
                threads: tids.len() as u32,
                tids: leader_tids,
                ..Default::default()
            };
            if !full {
                let info = ids;
                if t.is_leader() {
                    s.tasks.insert(pid, info);
                } else {
                    s.threads.insert(pid, info);
                }
                continue;
            }
            let mm = self.mms.get(&t.mm);
            // /proc/<pid>/oom_score: Linux's badness over rss; init and
            // oom_score_adj -1000 are exempt (0).
            let oom_score = {
                let rss = mm.map(|m| m.aspace.rss_split(&untouched)).unwrap_or((0, 0));
                let points = if t.tgid == 1 {
                    None
                } else {
                    super::oom::badness(rss.0 + rss.1, 0, t.oom_score_adj, oom_total)
                };
                super::oom::oom_score(points, oom_total)
            };
            // (user, system) ticks: the host's accounting of the stub plus
            // the kernel's time serving it, as times() reports them.
            let cpu = self.cpu_ticks_settled(t.tgid);
            let (vma_usage, total) = usage.get(&t.mm).cloned().unwrap_or_default();
            let exe_bytes = mm.map(|m| exe_bytes(&m.aspace, t.exe_node)).unwrap_or(0);
            let info = TaskInfo {
                tty_nr: if ctty_sid == Some(t.sid as u32) {
                    (5 << 8) | 1
                } else {
                    0
                },
                tpgid: if ctty_sid == Some(t.sid as u32) {
                    fg
                } else {
                    -1
                },
                umask: t.fs.borrow().umask,
                vsize_bytes: mm.map(|m| m.aspace.total_vm()).unwrap_or(0),
                locked_bytes: mm.map(|m| m.aspace.locked_bytes()).unwrap_or(0),
                rss_pages: total.resident / crate::abi::PAGE,
                rss_file_pages: total.resident_file / crate::abi::PAGE,
                rss_shmem_pages: total.resident_shmem / crate::abi::PAGE,
                swap_pages: total.swap / crate::abi::PAGE,
                hwm_pages: mm
                    .map(|m| m.aspace.hiwater_rss(total.resident / crate::abi::PAGE))
                    .unwrap_or(0),
                peak_bytes: mm.map(|m| m.aspace.hiwater_vm()).unwrap_or(0),
                vm: mm.map(|m| m.aspace.vm_sizes()).unwrap_or_default(),
                exe_bytes,
                start_time: t.start.duration_since(self.boot).as_millis() as u64 / 10,
                sig_pending: t
                    .pending
                    .iter()
                    .fold(0u64, |a, i| a | (1u64 << (i.signo - 1))),
                sig_blocked: t.sigmask.0,
                sig_ignored: handler_mask(&t.sighand.borrow(), |h| h == SIG_IGN),
                sig_caught: handler_mask(&t.sighand.borrow(), |h| h != SIG_IGN && h != SIG_DFL),
                exe: shown_from(root, &t.exe),
                exe_node: t.exe_node.map(|n| (n.mnt, n.ino)),
                nice: t.sched.nice,
                utime: cpu.0,
                stime: cpu.1,
                cutime: t.child_cpu.0,
                cstime: t.child_cpu.1,
                cwd: shown_path(root, &t.fs.borrow().cwd),
                root: shown_path(root, &t.fs.borrow().root),
                oom_score_adj: t.oom_score_adj,
                oom_score_adj_min: t.oom_score_adj_min,
                oom_score,
                ..ids
            };
            if !t.is_leader() {
                s.threads.insert(pid, info);
                continue;
            }
            s.tasks.insert(pid, info);
            let fds = t
                .files
                .borrow()
                .iter()
                .map(|(fd, e)| {
                    let of = e.file.borrow();
                    match of.ops.directory() {
                        Some(d) => (fd, shown_path(root, &d)),
                        None => (fd, shown_from(root, &of.path)),
                    }
                })
                .collect();
            s.fds.insert(pid, fds);
            for (fd, e) in t.files.borrow().iter() {
                if let Some(n) = e.file.borrow().node() {
                    s.fd_nodes.insert((pid, fd), (n.mnt, n.ino));
                }
            }
            s.cmdline.insert(pid, t.cmdline.clone());
            if let Some(m) = mm {
                let maps = m
                    .aspace
                    .vmas()
                    .zip(
                        vma_usage
                            .iter()
                            .copied()
                            .chain(std::iter::repeat(Default::default())),
                    )
                    .map(|(v, usage)| {
                        let (name, inode, offset) = match &v.backing {
                            Backing::File { source, pgoff } => {
                                let name = shown_from(root, &source.name());
                                (name, source.ident().1, pgoff * crate::abi::PAGE)
                            }
                            Backing::Anon => (
                                v.label.map(|l| l.as_bytes().to_vec()).unwrap_or_default(),
                                0,
                                0,
                            ),
                        };
                        MapInfo {
                            start: v.start.get(),
                            end: v.end.get(),
                            read: v.prot & PROT_READ != 0,
                            write: v.prot & PROT_WRITE != 0,
                            exec: v.prot & PROT_EXEC != 0,
                            shared: v.shared,
                            offset,
                            dev_major: if inode != 0 { 98 } else { 0 },
                            dev_minor: 0,
                            inode,
                            name,
                            usage,
                            vm_flags: vm_flags(v),
                        }
                    })
                    .collect();
                s.maps.insert(pid, maps);
            }
        }
        if light {
            return;
        }
        if all {
            s.partitions = self
                .disks
                .partitions()
                .into_iter()
                .map(|p| PartitionInfo {
                    major: p.major,
                    minor: p.minor,
                    kib: p.kib,
                    name: p.name,
                })
                .collect();
            s.swaps = self.swap_infos();
            s.memory_pressure = self.psi.shown(std::time::Instant::now());
            s.vmstat = self.vmstat();
        }
        s.mounts = self
            .mounts
            .iter()
            .filter(|(_, m)| !m.is_internal())
            .map(|(id, m)| MountInfo {
                id: MOUNT_ID_BASE + id as u32,
                parent: match m.mountpoint {
                    Some(at) => MOUNT_ID_BASE + at.mnt as u32,
                    None => 1,
                },
                dev: crate::fs::devices::decode_dev(m.dev),
                device: m.source.as_bytes().to_vec(),
                mount_point: m.path.clone(),
                fs_type: m.kind.to_string(),
                options: if m.read_only {
                    "ro".into()
                } else {
                    "rw".into()
                },
            })
            .collect();
    }

    /// /proc/meminfo figures in KiB, from physmem and the page cache.
    pub fn meminfo(&self) -> MemInfo {
        // Untouched window frames are free as far as the host is concerned.
        self.physmem.settle();
        let st = self.physmem.stats();
        let pc = self.pagecache.borrow().stats();
        log::debug!(
            "meminfo: physmem {st:?} pagecache {pc:?} refs {}",
            self.frames.count()
        );
        let kib = |pages: u64| pages * 4;
        let total = kib(self.physmem.frames_plugged());
        let free = kib(st.frames_free + st.frames_untouched);
        let cached = kib(pc.cached);
        // Socket buffers: kernel memory, unreclaimable, as sk_buffs.
        let sock = kib(self.sockmem.frames() as u64);
        MemInfo {
            total,
            free,
            available: free + cached - kib(pc.dirty).min(cached),
            cached,
            dirty: kib(pc.dirty),
            anon_pages: kib(st
                .frames_allocated
                .saturating_sub(pc.cached)
                .saturating_sub(st.frames_untouched))
            .saturating_sub(sock),
            slab: sock,
            s_unreclaim: sock,
            mapped: kib(crate::mm::usage::mapped_file_pages(
                self.mms.values().map(|m| &m.aspace),
            )),
            active_file: cached,
            inactive: 0,
            commit_limit: total,
            swap_cached: kib(self.frames.swap.borrow().cached_pages()),
            swap_total: kib(self.frames.swap.borrow().total_pages()),
            swap_free: kib(self
                .frames
                .swap
                .borrow()
                .total_pages()
                .saturating_sub(self.frames.swap.borrow().used_pages())),
            ..Default::default()
        }
    }
}

impl Kernel {
    /// smaps's figures for every VMA of every address space, and their
    /// sums, from one walk (map counts are guest-wide).
    fn vma_usages(
        &self,
        only: Option<Pid>,
        pss: bool,
    ) -> std::collections::HashMap<super::task::MmId, (Vec<Usage>, Usage)> {
        let only_mm = only.and_then(|p| self.tasks.get(&p)).map(|t| t.mm);
        // Pss counts every sharer, so the map counts are guest-wide: only
        // walked for a file that shows Pss (the other figures ignore them).
        let pagecache = self.pagecache.borrow();
        let counts = if pss {
            map_counts(self.mms.values().map(|m| &m.aspace), &self.frames)
        } else {
            Default::default()
        };
        let untouched = self.physmem.untouched();
        let facts = PageFacts {
            untouched: &untouched,
            frames: &self.frames,
            pagecache: &pagecache,
            map_counts: &counts,
        };
        self.mms
            .iter()
            .filter(|(id, _)| only_mm.is_none_or(|o| o == **id))
            .map(|(id, m)| {
                let per: Vec<Usage> = m
                    .aspace
                    .vmas()
                    .map(|v| m.aspace.vma_usage(v, &facts))
                    .collect();
                let mut total = Usage::default();
                per.iter().for_each(|u| total.add(u));
                (*id, (per, total))
            })
            .collect()
    }
}

/// VmExe: the executable mappings of the program file itself.
fn exe_bytes(a: &crate::mm::AddressSpace, exe: Option<crate::vfs::Node>) -> u64 {
    let Some(exe) = exe else { return 0 };
    a.vmas()
        .filter(|v| v.prot & PROT_EXEC != 0 && v.prot & PROT_WRITE == 0)
        .filter(|v| match &v.backing {
            Backing::File { source, .. } => source.key() == Some((exe.mnt, exe.ino)),
            Backing::Anon => false,
        })
        .map(|v| v.len())
        .sum()
}

/// smaps's VmFlags, in Linux's order (show_smap_vma_flags).
fn vm_flags(v: &crate::mm::Vma) -> Vec<&'static str> {
    let mut f = Vec::new();
    let write = v.prot & PROT_WRITE != 0;
    let stack = v.label == Some("[stack]");
    for (on, name) in [
        (v.prot & PROT_READ != 0, "rd"),
        (write, "wr"),
        (v.prot & PROT_EXEC != 0, "ex"),
        (v.shared, "sh"),
        (true, "mr"),
        (v.may_write, "mw"),
        (true, "me"),
        (v.shared, "ms"),
        (stack, "gd"),
        (v.lock != crate::mm::vma::Lock::None, "lo"),
        (!v.shared && write, "ac"),
    ] {
        if on {
            f.push(name);
        }
    }
    f
}

/// A directory's path as /proc shows it: " (deleted)" once removed.
/// A directory reference's path as a reader whose root is `root` sees it.
fn shown_path(root: &[u8], d: &crate::vfs::Dentry) -> Vec<u8> {
    let mut p = shown_from(root, &d.path());
    if d.is_dead() {
        p.extend_from_slice(b" (deleted)");
    }
    p
}

/// The signals whose handler passes `pick`, as /proc/PID/status's SigIgn
/// and SigCgt masks (bit n-1 for signal n).
fn handler_mask(h: &SigHandlers, pick: impl Fn(u64) -> bool) -> u64 {
    h.actions
        .iter()
        .enumerate()
        .filter(|(_, a)| pick(a.handler))
        .fold(0, |m, (i, _)| m | 1u64.checked_shl(i as u32).unwrap_or(0))
}

/// What a /proc refresh is for (`Kernel::refresh_proc_for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcScope {
    /// Everything: guest-wide files and listings.
    All,
    /// A file of this process (or thread) is read: its figures in full
    /// (Pss only for a file that shows it).
    Process { pid: Pid, pss: bool },
    /// A path into this process's directory (or, for a path not under a
    /// pid, the caller's) is looked up: what lookups need only.
    Lookup(Pid),
}

/// Whose /proc directory a path (relative to `base`) leads into.
#[derive(Debug, PartialEq, Eq)]
enum PathOwner {
    Pid(Pid),
    /// /proc/self
    Caller,
    /// /proc/thread-self
    CallerThread,
    /// Not a pid's directory (or not under /proc).
    None,
}

fn proc_path_owner(base: &[u8], path: &[u8]) -> PathOwner {
    let full = if path.first() == Some(&b'/') {
        path.to_vec()
    } else {
        [base, b"/", path].concat()
    };
    let Some(rest) = full.strip_prefix(b"/proc/") else {
        return PathOwner::None;
    };
    // A path that climbs back out may end in another pid's directory.
    if rest.split(|&b| b == b'/').any(|c| c == b"..") {
        return PathOwner::None;
    }
    match rest.split(|&b| b == b'/').next().unwrap_or_default() {
        b"self" => PathOwner::Caller,
        b"thread-self" => PathOwner::CallerThread,
        n if !n.is_empty() && n.iter().all(u8::is_ascii_digit) => std::str::from_utf8(n)
            .ok()
            .and_then(|n| n.parse::<Pid>().ok())
            .map_or(PathOwner::None, PathOwner::Pid),
        _ => PathOwner::None,
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn a_path_names_the_process_whose_directory_it_enters() {
        assert_eq!(proc_path_owner(b"/", b"/proc/42/stat"), PathOwner::Pid(42));
        assert_eq!(proc_path_owner(b"/", b"/proc/42"), PathOwner::Pid(42));
        assert_eq!(proc_path_owner(b"/proc", b"7/fd/3"), PathOwner::Pid(7));
        assert_eq!(proc_path_owner(b"/proc/9", b"status"), PathOwner::Pid(9));
        assert_eq!(proc_path_owner(b"/", b"/proc/self/maps"), PathOwner::Caller);
        assert_eq!(
            proc_path_owner(b"/", b"/proc/thread-self/comm"),
            PathOwner::CallerThread
        );
        // Guest-wide files, the root itself, odd names and overflow: all.
        for p in [
            &b"/proc/meminfo"[..],
            b"/proc",
            b"/proc/",
            b"/proc/net/tcp",
            b"/proc/4x",
            b"/proc/99999999999999999999",
            b"/etc/passwd",
            b"/proc/self/../1/exe",
        ] {
            assert_eq!(proc_path_owner(b"/", p), PathOwner::None, "{p:?}");
        }
    }
}
