//! The kernel's state: tasks, address spaces, mounts, page cache, pipes,
//! console. Single-threaded, like UML's: one host thread runs every guest
//! task in turn, so nothing here needs a lock.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::console::Console;
use super::pipes::PipeTable;
use super::task::{MmId, Pid, Task, TaskState};
use crate::abi::layout::GuestStruct;
use crate::block::DiskTable;
use crate::errno::{Errno, KResult};
use crate::host::event_loop::EventLoop;
use crate::mm::pagecache::PageCache;
use crate::mm::GuestVirt;
use crate::mm::{AddressSpace, FrameRefs};
use crate::physmem::PhysMem;
use crate::platform::{Guest, Platform};
use crate::vfs::MountTable;

/// One address space and the platform guest that holds it (on ptrace: a
/// host stub process).
pub struct Mm {
    pub aspace: AddressSpace,
    pub guest: Box<dyn Guest>,
    /// Which task's registers the guest context holds now.
    pub loaded: Option<Pid>,
    /// Tasks using this address space.
    pub users: usize,
    /// The denial of write access to the program this runs (Linux's
    /// `mm->exe_file`): open for writing and truncate of it are ETXTBSY
    /// while any address space running it lives. None for a memfd
    /// program and init's first address space.
    pub exe_deny: Option<crate::vfs::writecount::DenyRef>,
    /// The guest's host CPU time (`Guest::cpu_time_ns`) when a slice on
    /// it last ended: the next slice's start, without asking the host
    /// again (a stub between slices is stopped; see `Kernel::run_task`).
    pub cpu_seen: Option<u64>,
}

/// How the instance should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    PowerOff,
    Halt,
    Restart,
    /// init exited: a kernel panic in Linux terms.
    InitDied(i32),
    /// umlrun got SIGTERM/SIGHUP/SIGINT.
    Terminated,
}

pub struct KernelConfig {
    pub hostname: Vec<u8>,
    pub cpu: Option<usize>,
    /// Host fds every stub keeps (physmem memfd, image files).
    pub keep_fds: Vec<i32>,
    pub pagecache_max_pages: Option<u64>,
    pub mem_bytes: u64,
    /// The boot disks: (index, switch text), for `config ubd<N>`.
    pub disks: Vec<(u8, String)>,
    /// The index of the disk mounted as root.
    pub root_disk: Option<u8>,
    /// The instance's `ubd=` mode, for disks hot-added later too.
    pub ubd_mode: crate::config::UbdMode,
    /// `cow_backing=`, for disks hot-added later too.
    pub cow_backing: crate::block::cow::confine::BackingPolicy,
    /// max_map_count=, mapped_file_max= and their refusals (memlimits.rs).
    pub limits: super::memlimits::MemLimits,
    /// What /proc/cmdline reads (umlrun's arguments).
    pub cmdline: Vec<u8>,
    /// `oom_wait=`: how long a fault waits for a plug (memwait.rs).
    pub oom_wait: std::time::Duration,
}

/// Kernel-wide activity counters (the mconsole `stats`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Guest page faults served.
    pub faults: u64,
    /// Guest syscalls served.
    pub syscalls: u64,
    /// Syscall handlers that panicked and were contained (the caller was
    /// killed): each one a kernel bug.
    pub contained_panics: u64,
}

pub struct Kernel {
    pub physmem: Arc<PhysMem>,
    pub frames: FrameRefs,
    pub mounts: MountTable,
    /// The configured disks (/dev/ubd*), and who holds each.
    pub disks: DiskTable,
    pub pagecache: Rc<RefCell<PageCache>>,
    pub tasks: BTreeMap<Pid, Task>,
    pub mms: HashMap<MmId, Mm>,
    pub runq: VecDeque<Pid>,
    /// The fair scheduler's queue-wide state (kernel/fair.rs).
    pub fair: super::fair::FairQueue,
    /// The real-time classes' state: throttle, pre-emption (kernel/rt.rs).
    pub rt: super::rt::RtState,
    /// The cgroup2 hierarchy and each process's group (fs/cgroupfs.rs).
    pub cgroups: crate::fs::cgroupfs::SharedTree,
    pub console: Console,
    pub pipes: PipeTable,
    /// Every live directory reference (cwds, open directories).
    pub dentries: crate::vfs::DentryTable,
    /// AF_UNIX sockets: names, the kernel-wide buffer meter, the count.
    pub unix: std::rc::Rc<crate::net::unix::UnixNet<crate::vfs::OpenFileRef>>,
    /// The live inet socket files: after each stack run, those whose
    /// state changed have their own wait queue woken (`kernel/inet.rs`).
    pub inet_files: Vec<std::rc::Weak<super::files::inet::InetFile>>,
    /// Guest frames charged for socket buffers (`kernel/sockmem.rs`).
    pub sockmem: super::sockmem::SockMem,
    /// The guest's TCP/IP stack (`kernel/inet.rs`), made on first use.
    pub inet: Option<Box<crate::net::inet::NetStack>>,
    /// The AF_PACKET sockets, which see eth0's frames
    /// (`kernel/files/packet.rs`).
    pub packet_socks: Vec<std::rc::Weak<super::files::packet::PacketFile>>,
    /// The netlink port ids in use (`kernel/files/netlink.rs`).
    pub netlink_ports: super::files::netlink::Ports,
    /// The user-mode NAT's host sockets (`kernel/netfwd.rs`).
    pub net_host: super::netfwd::NetHost,
    pub config: KernelConfig,
    pub boot: Instant,
    pub shutdown: Option<Shutdown>,
    next_pid: Pid,
    next_mm: MmId,
    /// Syscalls already logged as unimplemented (logged once each).
    pub enosys_logged: std::collections::HashSet<u64>,
    pub rng: super::random::Rng,
    pub forks: u64,
    /// The running task asked to yield (sched_yield).
    pub yield_now: bool,
    pub proc_snapshot: Option<Rc<RefCell<super::procsrc::ProcSnapshot>>>,
    /// Unlinked files still open or mapped: (mount, inode) → the hidden
    /// name (directory, name) that keeps them alive until the last close.
    pub orphans: HashMap<(usize, u64), (u64, Vec<u8>)>,
    /// O_TMPFILE orphans opened without O_EXCL: linkat may name them.
    pub linkable_tmpfiles: std::collections::HashSet<(usize, u64)>,
    /// Counter for O_TMPFILE hidden names.
    pub tmpfiles_made: u64,
    /// Pseudo-terminal pairs (kernel/pty.rs) and what devpts shows.
    pub ptys: super::pty::PtyTable,
    /// What guest code runs on (ptrace stubs, or the unit tests' fake).
    pub platform: Box<dyn Platform>,
    /// A task whose syscall ran out of guest memory while copying out: it
    /// is killed once the syscall returns (the OOM killer's choice).
    pub oom_victim: Option<Pid>,
    /// `activity()` and the time when umlrun's freed heap was last handed back
    /// to the host (see `Kernel::trim_heap_when_idle`).
    pub heap_trimmed: (u64, std::time::Instant),
    /// When a busy scheduler next looks at host input between turns
    /// (`sched.rs`, `HOST_LOOK_EVERY`; an idle one waits there).
    pub host_look_at: std::time::Instant,
    /// The kernel thread's CPU time when the turns not charged yet
    /// began (`cpuacct.rs`): from there it runs for them (None after an
    /// idle wait).
    pub cpu_mark: Option<u64>,
    /// The turns whose CPU time is not charged yet (`cpuacct.rs`).
    pub cpu_notes: super::cpuacct::CpuNotes,
    /// `activity()` when the guest was last seen working, since when it
    /// has not changed, and whether the platform was told the instance
    /// settled (see `Kernel::idle_platform`).
    pub idle_since: (u64, std::time::Instant, bool),
    /// The management console (socket, `stop` state); see `mconsole.rs`.
    pub mconsole: super::mconsole::Mconsole,
    pub counters: Counters,
    /// Tasks in FUTEX_WAIT, by what backs their futex word.
    pub futexes: super::futex::FutexTable,
    /// Every advisory lock (record locks, flock, leases).
    pub locks: super::locks::LockTable,
    /// SysV IPC objects.
    pub ipc: super::ipc::Ipc,
    /// The NIS domain name (setdomainname, kernel/domainname, uname).
    pub domainname: Vec<u8>,
    /// Deadlines: timeouts of blocked tasks, real-time timers.
    pub timers: super::timers::DeadlineQueue,
    /// What timerfd, signalfd and pidfd need from the kernel.
    pub evhub: super::files::hub::EventHub,
    /// Per-user caps: inotify instances, epoll watches, pipe pages.
    pub ucaps: super::ucounts::UserCaps,
    /// Write access per inode (vfs/writecount.rs): ETXTBSY both ways
    /// between writers and running programs.
    pub writecounts: crate::vfs::writecount::WriteCountsRef,
    /// The host event loop the scheduler waits on when idle, and what
    /// each registered token is (see `hostsrc.rs`).
    pub host_loop: EventLoop,
    pub host_sources: HashMap<u64, (super::hostsrc::HostSource, std::os::fd::RawFd)>,
    pub next_host_token: u64,
    /// The console input's registration; or, for an input epoll cannot
    /// watch (a regular file), true: it is read on every turn.
    pub console_token: Option<crate::host::event_loop::Token>,
    pub console_always_ready: bool,
    /// Scratch space for the events of one wait.
    pub host_ready: Vec<crate::host::event_loop::Ready>,
    /// The kernel log (`dmesg`); see `kmsg.rs`.
    pub kmsg: super::kmsg::Kmsg,
    /// What the OOM path did; see `oom.rs`.
    pub oom: super::oom::OomStats,
    /// The host memory budget; see `budget.rs`.
    pub budget: super::budget::Budget,
    /// The swap clock's hand; see `swap.rs`.
    pub swapctl: super::swap::SwapCtl,
    /// Memory stall accounting (/proc/pressure/memory); see `psi.rs`.
    pub psi: super::psi::Psi,
    /// Memory events sent to the notify socket; see `memevents.rs`.
    pub memevents: super::memevents::MemEvents,
    /// Faulting tasks waiting for a plug (`oom_wait=`); see `memwait.rs`.
    pub mem_waits: HashMap<Pid, super::memwait::MemWait>,
}

impl Kernel {
    pub fn new(
        physmem: Arc<PhysMem>,
        mounts: MountTable,
        console: Console,
        host_loop: EventLoop,
        config: KernelConfig,
        platform: Box<dyn Platform>,
    ) -> Kernel {
        // The cap follows hot-plug (see `Kernel::mem_unplug`).
        let plugged = physmem.frames_plugged();
        let mut k = Kernel {
            frames: FrameRefs::new(physmem.clone()),
            physmem,
            mounts,
            disks: DiskTable::new(),
            // No cap beyond mem= unless pagecache_max= says so.
            pagecache: Rc::new(RefCell::new(PageCache::with_limit(
                config
                    .pagecache_max_pages
                    .map_or(plugged, |m| m.min(plugged)),
            ))),
            tasks: BTreeMap::new(),
            mms: HashMap::new(),
            runq: VecDeque::new(),
            fair: Default::default(),
            rt: Default::default(),
            cgroups: Rc::new(RefCell::new(crate::fs::cgroupfs::CgroupTree::new(
                crate::syscalls::now_ts(),
            ))),
            console,
            pipes: PipeTable::default(),
            dentries: Default::default(),
            unix: crate::net::unix::UnixNet::with_buf_limit(crate::net::sockbuf::kernel_buf_limit(
                plugged.saturating_mul(4096),
            )),
            inet_files: Vec::new(),
            sockmem: Default::default(),
            inet: None,
            packet_socks: Vec::new(),
            netlink_ports: Default::default(),
            net_host: Default::default(),
            config,
            boot: Instant::now(),
            shutdown: None,
            next_pid: 1,
            next_mm: 1,
            enosys_logged: Default::default(),
            rng: super::random::Rng::from_host(),
            forks: 0,
            yield_now: false,
            proc_snapshot: None,
            orphans: HashMap::new(),
            linkable_tmpfiles: Default::default(),
            tmpfiles_made: 0,
            ptys: Default::default(),
            platform,
            oom_victim: None,
            heap_trimmed: (0, std::time::Instant::now()),
            host_look_at: std::time::Instant::now(),
            cpu_mark: None,
            cpu_notes: Default::default(),
            idle_since: (0, std::time::Instant::now(), false),
            mconsole: Default::default(),
            counters: Counters::default(),
            futexes: Default::default(),
            locks: Default::default(),
            ipc: Default::default(),
            domainname: b"(none)".to_vec(),
            timers: Default::default(),
            evhub: Default::default(),
            ucaps: Default::default(),
            writecounts: crate::vfs::writecount::WriteCounts::new(),
            host_loop,
            host_sources: HashMap::new(),
            next_host_token: 0,
            console_token: None,
            console_always_ready: false,
            host_ready: Vec::new(),
            kmsg: Default::default(),
            oom: Default::default(),
            budget: Default::default(),
            swapctl: Default::default(),
            psi: Default::default(),
            memevents: Default::default(),
            mem_waits: HashMap::new(),
        };
        k.ucaps = super::ucounts::UserCaps::new(plugged.saturating_mul(crate::abi::PAGE));
        k.pipes.caps = k.ucaps.clone();
        k.register_console();
        k
    }

    /// Points the pid cursor at `pid` (alloc_pid tries it first);
    /// returns where it was. clone3's set_tid.
    pub fn swap_pid_cursor(&mut self, pid: Pid) -> Pid {
        std::mem::replace(&mut self.next_pid, pid)
    }

    pub fn alloc_pid(&mut self) -> Pid {
        loop {
            let p = self.next_pid;
            self.next_pid = if self.next_pid >= 4_194_304 {
                2
            } else {
                self.next_pid + 1
            };
            if !self.tasks.contains_key(&p)
                && !self.tasks.values().any(|t| t.pgid == p || t.sid == p)
            {
                return p;
            }
        }
    }

    pub fn alloc_mm_id(&mut self) -> MmId {
        self.next_mm += 1;
        self.next_mm
    }

    pub fn task(&self, tid: Pid) -> KResult<&Task> {
        self.tasks.get(&tid).ok_or(Errno::ESRCH)
    }

    pub fn task_mut(&mut self, tid: Pid) -> KResult<&mut Task> {
        self.tasks.get_mut(&tid).ok_or(Errno::ESRCH)
    }

    /// The thread group leader's task of `tid`'s process.
    pub fn leader(&self, tid: Pid) -> KResult<&Task> {
        let tgid = self.task(tid)?.tgid;
        self.task(tgid)
    }

    /// Threads of a process, leader first.
    pub fn threads(&self, tgid: Pid) -> Vec<Pid> {
        self.tasks
            .values()
            .filter(|t| t.tgid == tgid && t.state != TaskState::Dead)
            .map(|t| t.tid)
            .collect()
    }

    pub fn mm_of(&mut self, tid: Pid) -> KResult<&mut Mm> {
        let id = self.task(tid)?.mm;
        self.mms.get_mut(&id).ok_or(Errno::EFAULT)
    }

    /// copy_from_user.
    /// Out of guest memory (a swapped-out page with no room to come back),
    /// the OOM path runs and the copy is retried, as in `write_user`.
    pub fn read_user(&mut self, tid: Pid, addr: u64, buf: &mut [u8]) -> KResult<()> {
        loop {
            let id = self.task(tid)?.mm;
            let mm = self.mms.get_mut(&id).ok_or(Errno::EFAULT)?;
            match mm.aspace.read_user(GuestVirt(addr), buf, &mut self.frames) {
                Err(Errno::ENOMEM) => {
                    if !self.out_of_memory(tid, true) {
                        return Err(Errno::EFAULT);
                    }
                }
                r => return r,
            }
        }
    }

    /// copy_to_user.
    /// Copies `data` into `tid`'s memory. Out of guest memory, the OOM
    /// path runs (reclaim, then the OOM killer) and the copy is retried;
    /// if the caller itself is chosen, the copy fails with EFAULT and the
    /// process is killed once the syscall returns (see `oom_victim`).
    pub fn write_user(&mut self, tid: Pid, addr: u64, data: &[u8]) -> KResult<()> {
        loop {
            let id = self.task(tid)?.mm;
            let mm = self.mms.get_mut(&id).ok_or(Errno::EFAULT)?;
            match mm
                .aspace
                .write_user(GuestVirt(addr), data, &mut self.frames)
            {
                Err(Errno::ENOMEM) => {
                    if !self.out_of_memory(tid, true) {
                        return Err(Errno::EFAULT);
                    }
                }
                r => return r,
            }
        }
    }

    pub fn read_user_vec(&mut self, tid: Pid, addr: u64, len: usize) -> KResult<Vec<u8>> {
        let mut v = Vec::new();
        self.read_user_append(tid, addr, len, &mut v)?;
        Ok(v)
    }

    /// copy_from_user appending `len` bytes at `addr` to `out` (no zeroed
    /// buffer first; gathering iovecs builds one vector). On an error
    /// `out` is as it was.
    pub fn read_user_append(
        &mut self,
        tid: Pid,
        addr: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> KResult<()> {
        if len > 64 << 20 {
            return Err(Errno::EINVAL);
        }
        let start = out.len();
        loop {
            let id = self.task(tid)?.mm;
            let mm = self.mms.get_mut(&id).ok_or(Errno::EFAULT)?;
            let r = mm
                .aspace
                .read_user_append(GuestVirt(addr), len, out, &mut self.frames);
            if r.is_err() {
                out.truncate(start);
            }
            match r {
                Err(Errno::ENOMEM) => {
                    if !self.out_of_memory(tid, true) {
                        return Err(Errno::EFAULT);
                    }
                }
                r => return r,
            }
        }
    }

    pub fn read_u64(&mut self, tid: Pid, addr: u64) -> KResult<u64> {
        let mut b = [0u8; 8];
        self.read_user(tid, addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&mut self, tid: Pid, addr: u64) -> KResult<u32> {
        let mut b = [0u8; 4];
        self.read_user(tid, addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// A guest ABI structure at `addr` (`abi::layout`): `T::SIZE` bytes
    /// through the checked copy, EFAULT on any bad byte.
    pub fn read_struct<T: GuestStruct>(&mut self, tid: Pid, addr: u64) -> KResult<T> {
        const { assert!(T::SIZE <= 256) };
        let mut b = [0u8; 256];
        let b = &mut b[..T::SIZE];
        self.read_user(tid, addr, b)?;
        Ok(T::read_from(b))
    }

    /// Writes a guest ABI structure at `addr` (`abi::layout`).
    pub fn write_struct<T: GuestStruct>(&mut self, tid: Pid, addr: u64, v: &T) -> KResult<()> {
        const { assert!(T::SIZE <= 256) };
        let mut b = [0u8; 256];
        let b = &mut b[..T::SIZE];
        v.write_to(b);
        self.write_user(tid, addr, b)
    }

    pub fn write_u64(&mut self, tid: Pid, addr: u64, v: u64) -> KResult<()> {
        self.write_user(tid, addr, &v.to_le_bytes())
    }

    pub fn write_u32(&mut self, tid: Pid, addr: u64, v: u32) -> KResult<()> {
        self.write_user(tid, addr, &v.to_le_bytes())
    }

    /// A NUL-terminated path from guest memory (PATH_MAX bound).
    pub fn read_path(&mut self, tid: Pid, addr: u64) -> KResult<Vec<u8>> {
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        let id = self.task(tid)?.mm;
        let mm = self.mms.get_mut(&id).ok_or(Errno::EFAULT)?;
        mm.aspace.read_cstr(GuestVirt(addr), 4096, &mut self.frames)
    }

    /// A NULL-terminated array of string pointers (argv, envp).
    pub fn read_str_array(&mut self, tid: Pid, addr: u64) -> KResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        let mut total = 0usize;
        for i in 0u64.. {
            // A guest pointer: an array running off the top is EFAULT.
            let at = i
                .checked_mul(8)
                .and_then(|off| addr.checked_add(off))
                .ok_or(Errno::EFAULT)?;
            let p = self.read_u64(tid, at)?;
            if p == 0 {
                break;
            }
            let id = self.task(tid)?.mm;
            let mm = self.mms.get_mut(&id).ok_or(Errno::EFAULT)?;
            let s = mm
                .aspace
                .read_cstr(GuestVirt(p), 128 * 1024, &mut self.frames)?;
            total += s.len() + 1 + 8;
            if total > 2 << 20 {
                return Err(Errno::E2BIG);
            }
            out.push(s);
        }
        Ok(out)
    }

    /// Guest work done so far (syscalls and faults served): the idle
    /// heap trim runs only after some.
    pub fn activity(&self) -> u64 {
        self.counters.syscalls.wrapping_add(self.counters.faults)
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.boot.elapsed()
    }
}
