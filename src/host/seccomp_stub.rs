//! The host side of the seccomp platform: the stub's signal-handler code
//! (assembled here, copied into the stub ELF by `platform::stub_image`),
//! the page area each stub shares with umlrun, the futex handoff on it,
//! and the few process calls the platform needs (detach, non-blocking
//! wait, a signal to one stub).
//!
//! The stub code runs in the stub process, never in umlrun: it is only
//! assembled into umlrun's text so that no external assembler is needed;
//! umlrun reads its bytes between two labels. It is position-dependent
//! only on [`SHM_BASE`] (an absolute constant) and jumps within itself.
//!
//! Two host threads share the stub's address space (gVisor systrap's
//! sysmsg and syscall threads, arch/um's stub with the fd table split):
//!
//! - the **guest thread** runs guest code. Its seccomp filter traps every
//!   syscall but the handler's own futex calls and `rt_sigreturn`, and its
//!   fd table is empty: guest code that jumps anywhere in the stub with
//!   chosen registers can map nothing (no fd) and change no mapping (every
//!   mmap, mprotect and munmap traps, from any address).
//! - the **op thread** (a `CLONE_VM|CLONE_THREAD` clone *without*
//!   `CLONE_FILES`) alone holds the guest memory file and the disk images.
//!   It runs the op list umlrun writes, using registers only (no stack, no
//!   return addresses), reading only the op page, which is read-only in the
//!   stub; every signal is blocked in it, and its own filter (installed by
//!   itself, first thing) allows only its own calls: the op list's mmap,
//!   mprotect and munmap outside the stub area, a non-blocking recvmsg on
//!   the fd channel's end (`host::fdpass`) with the one message header at
//!   [`OFF_MSG`], dup2 and close (taking a hot-added disk's fd from umlrun
//!   with SCM_RIGHTS), a futex wait on its command word, a futex wake of
//!   the guest thread, an 8-byte write of the op page's constant 1 to its
//!   completion eventfd, and exit_group. Guest code can make it do
//!   nothing: it reads nothing the guest can write (the recvmsg header is
//!   read by the host kernel, written by umlrun just before, while the
//!   guest thread waits in its handler; the numbers the dup2 and close
//!   take are in the op page). An op that fails ends the stub (exit_group
//!   with the errno as status), unless it is marked `OPF_MAY_FAIL`: then
//!   the batch ends there.
//!
//! Completion of an op batch is the eventfd write, which guest code cannot
//! make (it holds no fd): umlrun counts completions there, never in memory
//! the guest can write, so a forged "done" cannot make it believe a mapping
//! is gone while it is still there.
//!
//! Shared area layout (offsets from [`SHM_BASE`], see `platform::seccomp`).
//! What an idle stub holds is what it touched, so the words every stop
//! uses share the page the host's signal frames land in, and the op
//! thread's filter shares the op list's first page: an active stub
//! touches four pages of sixteen, a spare two; a settled one keeps only
//! the frames' page (`Guest::settle` punches the op page and the fresh
//! frame's and FP image's pages; umlrun writes the op page's constants
//! again before the next batch).
//!
//! | offset | what |
//! |---|---|
//! | `0x0000` | a passed fd's recvmsg header and buffers ([`OFF_MSG`]; untouched in a stub that never took one) |
//! | `0x1000` u32 | CTL: the op thread's command word, `seq << 1 \| resume` (read-only in the stub) |
//! | `0x1008` | the op thread's completion eventfd (fd number) |
//! | `0x1010` | the constant 1 it writes there |
//! | `0x1018` | its filter's `struct sock_fprog` |
//! | `0x1040` | the op list (records of 8 u64: nr, 6 args, flags `OPF_*`; nr 0 ends) |
//! | `0x1840` | during set-up only: the op thread's filter program (the kernel copies it; op lists overwrite it later) |
//! | `0x2f80` | unused |
//! | `0x4000..0xff80` | the guest thread's signal stack: the frames the kernel edits |
//! | `0xff80` u32 | CMD: 1 once umlrun (or the op thread) says resume — the handler's futex |
//! | `0xff84` u32 | DONE: 1 once the handler reported a stop — umlrun's futex |
//! | `0xff88` | the ucontext of the current frame (stub address) |
//! | `0xff90` | signal number of the last stop |
//! | `0xff98` | its siginfo (stub address) |
//! | `0xffa0`, `0xffa8` | fs base and gs base (rdfsbase/rdgsbase at a stop, wrfsbase/wrgsbase at resume) |
//! | `0xffc0` u32 | how many times the handler polls CMD before sleeping |
//!
//! Everything at `0x0000` and `0x4000..` is writable by guest code and
//! read by umlrun only as untrusted guest data (bounds-checked frame and
//! siginfo offsets, registers the guest could have set itself); the op
//! page (`0x1000..0x4000`) is read-only in the stub.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::memfd::MemFd;

/// Where the shared area sits in every seccomp stub.
pub const SHM_BASE: u64 = 0x7fff_fc01_0000;
/// Its size.
pub const SHM_LEN: usize = 0x10000;
/// The control words (CMD .. SPIN): the last 128 bytes of the area, in
/// the page the signal stack's frames start in.
pub const OFF_CTRL: usize = SHM_LEN - 0x80;
pub const OFF_CMD: usize = OFF_CTRL;
pub const OFF_DONE: usize = OFF_CTRL + 0x04;
pub const OFF_UC: usize = OFF_CTRL + 0x08;
pub const OFF_SIGNO: usize = OFF_CTRL + 0x10;
pub const OFF_INFO: usize = OFF_CTRL + 0x18;
pub const OFF_FS: usize = OFF_CTRL + 0x20;
pub const OFF_GS: usize = OFF_CTRL + 0x28;
pub const OFF_SPIN: usize = OFF_CTRL + 0x40;
/// The op page: read-only in the stub.
pub const OFF_OPPAGE: usize = 0x1000;
pub const OFF_CTL: usize = 0x1000;
pub const OFF_EFD: usize = 0x1008;
pub const OFF_ONE: usize = 0x1010;
pub const OFF_FPROG: usize = 0x1018;
pub const OFF_OPS: usize = 0x1040;
pub const OFF_OPS_END: usize = 0x2f80;
/// The message header (and its buffers, `host::fdpass::MSGHDR_LEN`
/// bytes) of the op thread's recvmsg of a passed fd: writable in the
/// stub, as the host kernel writes lengths, flags and the control
/// message there; umlrun rewrites it before each use and reads none of it.
pub const OFF_MSG: usize = 0x0000;
/// Set-up only, inside the op list (no list is sent before the op
/// thread has installed it).
pub const OFF_OPFILTER: usize = 0x1840;
pub const OFF_OPPAGE_END: usize = 0x4000;
pub const OFF_ALTSTACK: usize = 0x4000;
/// The signal stack ends where the control words begin.
pub const ALTSTACK_END: usize = OFF_CTRL;

/// Op record flag (the record's last word): if this op fails the batch
/// ends there (its completion is reported as usual) instead of the stub.
pub const OPF_MAY_FAIL: u64 = 4;

/// The command in CMD.
pub const CMD_RUN: u32 = 1;
/// CTL's low bit: wake the guest thread once the ops ran.
pub const CTL_RESUME: u32 = 1;

// The handler: entered by the host kernel with rdi = signo, rsi = &siginfo,
// rdx = &ucontext, on the signal stack, every signal blocked. Guest
// registers are all in the frame, so it may clobber any register. Its r12
// is the control words ([`OFF_CTRL`]).
//
// The op thread: entered from the clone gadget (rax = 0 in the child).
// Registers only: r12 the shared area, r13 the last CTL taken, rbx the
// current op record. It never touches its
// stack.
std::arch::global_asm!(
    ".pushsection .text.umlrun_sc,\"ax\",@progbits",
    ".globl umlrun_sc_start",
    ".globl umlrun_sc_handler",
    ".globl umlrun_sc_park",
    ".globl umlrun_sc_restorer",
    ".globl umlrun_sc_ip_wake",
    ".globl umlrun_sc_ip_wait",
    ".globl umlrun_sc_ip_sigreturn",
    ".globl umlrun_sc_ip_restorer",
    ".globl umlrun_sc_clone",
    ".globl umlrun_sc_clone_trap",
    ".globl umlrun_sc_ip_opfilter",
    ".globl umlrun_sc_ip_opwait",
    ".globl umlrun_sc_ip_op",
    ".globl umlrun_sc_ip_opdone",
    ".globl umlrun_sc_ip_opwake",
    ".globl umlrun_sc_ip_opexit",
    ".globl umlrun_sc_end",
    "umlrun_sc_start:",
    "umlrun_sc_handler:",
    "movabs r12, {ctrl}",
    "mov [r12 + 0x08], rdx",
    "mov [r12 + 0x10], rdi",
    "mov [r12 + 0x18], rsi",
    "rdfsbase rax",
    "mov [r12 + 0x20], rax",
    "rdgsbase rax",
    "mov [r12 + 0x28], rax",
    // report
    "mov dword ptr [r12 + 0x04], 1",
    "lea rdi, [r12 + 0x04]",
    "mov esi, 1", // FUTEX_WAKE (shared: two processes)
    "mov edx, 1",
    "mov eax, 202",
    "syscall",
    "umlrun_sc_ip_wake:",
    "3:", // wait for the command to resume
    "movabs r12, {ctrl}",
    "mov ecx, [r12 + 0x40]",
    "4:",
    "mov eax, [r12]",
    "test eax, eax",
    "jnz 6f",
    "test ecx, ecx",
    "jz 5f",
    "dec ecx",
    "pause",
    "jmp 4b",
    "5:",
    "lea rdi, [r12]",
    "xor esi, esi", // FUTEX_WAIT
    "xor edx, edx", // while CMD == 0
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    "umlrun_sc_ip_wait:",
    "jmp 3b",
    "6:", // take it and resume from the (edited) frame
    "mov dword ptr [r12], 0",
    "mov rax, [r12 + 0x20]",
    "wrfsbase rax",
    "mov rax, [r12 + 0x28]",
    "wrgsbase rax",
    "mov rsp, [r12 + 0x08]",
    "mov eax, 15", // rt_sigreturn
    "syscall",
    "umlrun_sc_ip_sigreturn:",
    "ud2",
    "umlrun_sc_restorer:", // SA_RESTORER (x86-64 needs one; never used)
    "mov eax, 15",
    "syscall",
    "umlrun_sc_ip_restorer:",
    "ud2",
    "umlrun_sc_park:", // first entry after set-up: wait for the first command
    "jmp 3b",
    // The clone gadget, run once by umlrun through ptrace in the guest
    // thread (rax = clone, rdi = flags, rsi = 0: the op thread never
    // uses a stack): the parent traps, the child becomes the op thread.
    "umlrun_sc_clone:",
    "syscall",
    "test rax, rax",
    "jz 20f",
    "int3",
    "umlrun_sc_clone_trap:",
    "ud2",
    "20:", // the op thread: first its own filter
    "movabs r12, {shm}",
    "mov eax, 317", // seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog)
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [r12 + 0x1018]",
    "syscall",
    "umlrun_sc_ip_opfilter:",
    "test rax, rax",
    "jnz 29f",
    "xor r13d, r13d",
    "jmp 25f", // tell umlrun it is ready (a completion)
    "21:", // wait for a CTL other than the last one taken
    "mov edx, [r12 + 0x1000]",
    "cmp edx, r13d",
    "jne 22f",
    "lea rdi, [r12 + 0x1000]",
    "xor esi, esi", // FUTEX_WAIT while CTL == r13d
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    "umlrun_sc_ip_opwait:",
    "jmp 21b",
    "22:",
    "mov r13d, edx",
    "lea rbx, [r12 + 0x1040]",
    "23:",
    "mov rax, [rbx]",
    "test rax, rax",
    "jz 25f",
    "mov rdi, [rbx + 8]",
    "mov rsi, [rbx + 16]",
    "mov rdx, [rbx + 24]",
    "mov r10, [rbx + 32]",
    "mov r8, [rbx + 40]",
    "mov r9, [rbx + 48]",
    "syscall",
    "umlrun_sc_ip_op:",
    "cmp rax, -4095",
    "jae 27f",
    "add rbx, 64",
    "jmp 23b",
    "27:", // an op failed: the end of the batch if it may, else of the stub
    "test byte ptr [rbx + 56], 4", // OPF_MAY_FAIL
    "jnz 25f",
    "jmp 29f",
    "25:", // completion: write(efd, &ONE, 8)
    "mov edi, [r12 + 0x1008]",
    "lea rsi, [r12 + 0x1010]",
    "mov edx, 8",
    "mov eax, 1",
    "syscall",
    "umlrun_sc_ip_opdone:",
    "test r13d, 1",
    "jz 21b",
    "mov dword ptr [r12 + {cmd}], 1", // CMD: the guest thread may resume
    "lea rdi, [r12 + {cmd}]",
    "mov esi, 1", // FUTEX_WAKE
    "mov edx, 1",
    "mov eax, 202",
    "syscall",
    "umlrun_sc_ip_opwake:",
    "jmp 21b",
    "29:", // an op (or the filter) failed: the stub ends, errno as status
    "mov rdi, rax",
    "neg rdi",
    "mov eax, 231",
    "syscall",
    "umlrun_sc_ip_opexit:",
    "ud2",
    "umlrun_sc_end:",
    ".popsection",
    shm = const SHM_BASE,
    ctrl = const SHM_BASE + OFF_CTRL as u64,
    cmd = const OFF_CMD,
);

unsafe extern "C" {
    static umlrun_sc_start: u8;
    static umlrun_sc_handler: u8;
    static umlrun_sc_park: u8;
    static umlrun_sc_restorer: u8;
    static umlrun_sc_ip_wake: u8;
    static umlrun_sc_ip_wait: u8;
    static umlrun_sc_ip_sigreturn: u8;
    static umlrun_sc_ip_restorer: u8;
    static umlrun_sc_clone: u8;
    static umlrun_sc_clone_trap: u8;
    static umlrun_sc_ip_opfilter: u8;
    static umlrun_sc_ip_opwait: u8;
    static umlrun_sc_ip_op: u8;
    static umlrun_sc_ip_opdone: u8;
    static umlrun_sc_ip_opwake: u8;
    static umlrun_sc_ip_opexit: u8;
    static umlrun_sc_end: u8;
}

/// The stub code's bytes and its entry points, as offsets into them.
#[derive(Clone, Copy, Debug)]
pub struct StubCode {
    pub bytes: &'static [u8],
    pub handler: usize,
    pub park: usize,
    pub restorer: usize,
    /// rip after each `syscall` instruction (what seccomp sees): the
    /// guest thread's handler ...
    pub ip_wake: usize,
    pub ip_wait: usize,
    pub ip_sigreturn: usize,
    pub ip_restorer: usize,
    /// ... the clone gadget (its `syscall`, and rip at its parent's trap) ...
    pub clone: usize,
    pub clone_trap: usize,
    /// ... and the op thread.
    pub ip_opfilter: usize,
    pub ip_opwait: usize,
    pub ip_op: usize,
    pub ip_opdone: usize,
    pub ip_opwake: usize,
    pub ip_opexit: usize,
}

/// The assembled stub code.
pub fn stub_code() -> StubCode {
    let start = &raw const umlrun_sc_start as usize;
    let off = |p: *const u8| p as usize - start;
    let end = &raw const umlrun_sc_end as usize;
    // SAFETY: both labels sit in the one section emitted above, start
    // before end; the bytes between them are read-only code of this binary,
    // alive for the whole program.
    let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
    StubCode {
        bytes,
        handler: off(&raw const umlrun_sc_handler),
        park: off(&raw const umlrun_sc_park),
        restorer: off(&raw const umlrun_sc_restorer),
        ip_wake: off(&raw const umlrun_sc_ip_wake),
        ip_wait: off(&raw const umlrun_sc_ip_wait),
        ip_sigreturn: off(&raw const umlrun_sc_ip_sigreturn),
        ip_restorer: off(&raw const umlrun_sc_ip_restorer),
        clone: off(&raw const umlrun_sc_clone),
        clone_trap: off(&raw const umlrun_sc_clone_trap),
        ip_opfilter: off(&raw const umlrun_sc_ip_opfilter),
        ip_opwait: off(&raw const umlrun_sc_ip_opwait),
        ip_op: off(&raw const umlrun_sc_ip_op),
        ip_opdone: off(&raw const umlrun_sc_ip_opdone),
        ip_opwake: off(&raw const umlrun_sc_ip_opwake),
        ip_opexit: off(&raw const umlrun_sc_ip_opexit),
    }
}

/// Whether user code may use rdfsbase/wrfsbase (Linux 5.9+ on a CPU with
/// FSGSBASE): the stub code needs them.
pub fn has_fsgsbase() -> bool {
    const HWCAP2_FSGSBASE: u64 = 1 << 1;
    // SAFETY: getauxval only reads the auxiliary vector.
    let v = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    v & HWCAP2_FSGSBASE != 0
}

/// One stub's shared area: a memfd mapped read-write here, and by the stub
/// at [`SHM_BASE`]. The stub (guest code included) can write it at any
/// time, so everything read from it is untrusted: reads are copies.
pub struct StubShm {
    memfd: MemFd,
    ptr: NonNull<u8>,
}

impl StubShm {
    pub fn create() -> std::io::Result<StubShm> {
        let memfd =
            MemFd::create("umlrun-stub-shm", SHM_LEN as u64).map_err(std::io::Error::other)?;
        // SAFETY: a fresh shared mapping of a memfd sealed at SHM_LEN bytes;
        // no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SHM_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                memfd.as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(StubShm {
            memfd,
            ptr: NonNull::new(p as *mut u8).expect("mmap never returns null"),
        })
    }

    /// The memfd, for the stub to map (close-on-exec: pass it explicitly).
    pub fn fd(&self) -> RawFd {
        self.memfd.as_fd().as_raw_fd()
    }

    fn check(off: usize, len: usize) {
        assert!(
            off.checked_add(len).is_some_and(|e| e <= SHM_LEN),
            "shared-area access {off:#x}+{len} out of range"
        );
    }

    /// Gives back the pages of `off..off + len` (page-aligned): they read
    /// as zeros again, in umlrun and in the stub, and hold no host memory
    /// until written.
    pub fn punch(&self, off: usize, len: usize) -> std::io::Result<()> {
        Self::check(off, len);
        self.memfd
            .punch_hole(off as u64, len as u64)
            .map_err(std::io::Error::other)
    }

    /// Copy bytes out (panics on a range outside the area: callers check
    /// guest-given offsets first).
    pub fn read(&self, off: usize, buf: &mut [u8]) {
        Self::check(off, buf.len());
        // SAFETY: in range (checked); the mapping lives as long as self. The
        // other side may write concurrently: a byte copy of shared memory
        // sees some mix of old and new bytes, which callers treat as
        // untrusted data.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len())
        }
    }

    pub fn write(&self, off: usize, data: &[u8]) {
        Self::check(off, data.len());
        // SAFETY: as in read; the area is ours to write.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len())
        }
    }

    pub fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn write_u64(&self, off: usize, v: u64) {
        self.write(off, &v.to_le_bytes());
    }

    fn atomic(&self, off: usize) -> &AtomicU32 {
        Self::check(off, 4);
        assert!(off.is_multiple_of(4));
        // SAFETY: in range and 4-aligned (the mapping is page-aligned); an
        // AtomicU32 may alias memory another process writes atomically.
        unsafe { &*(self.ptr.as_ptr().add(off) as *const AtomicU32) }
    }

    pub fn load(&self, off: usize) -> u32 {
        self.atomic(off).load(Ordering::SeqCst)
    }

    pub fn store(&self, off: usize, v: u32) {
        self.atomic(off).store(v, Ordering::SeqCst)
    }

    /// FUTEX_WAKE one waiter on the word at `off`.
    pub fn wake(&self, off: usize) {
        let w = self.atomic(off);
        // SAFETY: futex on a valid, aligned word of a shared mapping.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                w.as_ptr(),
                libc::FUTEX_WAKE,
                1,
                std::ptr::null::<libc::timespec>(),
            )
        };
    }

    /// Waits while the word at `off` is `val`, at most `timeout`; spins
    /// `spins` polls first. Says whether the word changed, and when.
    pub fn wait_while(&self, off: usize, val: u32, spins: u32, timeout: Duration) -> Waited {
        let w = self.atomic(off);
        for _ in 0..spins {
            if w.load(Ordering::SeqCst) != val {
                return Waited::Spinning;
            }
            std::hint::spin_loop();
        }
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: futex on a valid, aligned word; ts lives across the call.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                w.as_ptr(),
                libc::FUTEX_WAIT,
                val,
                &ts as *const libc::timespec,
            )
        };
        if w.load(Ordering::SeqCst) != val {
            Waited::Sleeping
        } else {
            Waited::No
        }
    }
}

/// What [`StubShm::wait_while`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The word changed while polling.
    Spinning,
    /// It changed after the poll budget, while sleeping (or at once).
    Sleeping,
    /// It did not change: timed out or interrupted (look again).
    No,
}

impl Drop for StubShm {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in create; no reference
        // into it outlives self (atomic() borrows self).
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, SHM_LEN) };
    }
}

/// The op thread's completion counter: an eventfd it writes 1 to after
/// every op batch (and once when it is ready). Only the op thread holds
/// it in the stub (the guest thread's fd table is empty), so guest code
/// cannot forge a completion.
pub struct OpEvents {
    fd: std::os::fd::OwnedFd,
}

impl OpEvents {
    pub fn create() -> std::io::Result<OpEvents> {
        // SAFETY: eventfd(2) takes no pointers; a new fd is ours to own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd nothing else owns.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(OpEvents { fd })
    }

    /// Its number (the stub gets it at the same number).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Completions since the last call (0 when none), without blocking.
    pub fn take(&self) -> u64 {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a local u64.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
        if n == 8 {
            v
        } else {
            0
        }
    }

    /// Waits at most `timeout` for a completion to be there (not taken).
    pub fn wait(&self, timeout: Duration) {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd on the stack.
        unsafe { libc::poll(&mut p, 1, ms) };
    }
}

/// Let a traced stub go (it runs on from its current registers).
pub fn detach(pid: i32) -> nix::Result<()> {
    nix::sys::ptrace::detach(nix::unistd::Pid::from_raw(pid), None)
}

/// How a child ended, without blocking: None while it lives.
pub fn try_reap(pid: i32) -> Option<crate::host::ptrace::HostStop> {
    use crate::host::ptrace::HostStop;
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => Some(HostStop::Exited(c)),
        Ok(WaitStatus::Signaled(_, s, _)) => Some(HostStop::Killed(s as i32)),
        Ok(_) => None,
        Err(_) => Some(HostStop::Killed(libc::SIGKILL)),
    }
}

/// Send `sig` to the stub `pid` (a child of ours).
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid we spawned and have not reaped.
    unsafe { libc::kill(pid, sig) };
}

/// The host tid of the thread of stub `pid` whose tid is `tid` in the
/// stub's own pid namespace (`namespaces=`: a tid the stub reports is
/// one of its namespace): found through the `NSpid:` lines of its
/// threads. Without a namespace of its own the two are the same.
pub fn host_tid(pid: i32, tid: i32) -> i32 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return tid;
    };
    for e in rd.flatten() {
        let Some(host) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last())
            .and_then(|v| v.parse::<i32>().ok());
        if inner == Some(tid) {
            return host;
        }
    }
    tid
}

/// Whether thread `tid` of stub `pid` sleeps in a futex wait on the stub
/// address `word` (its /proc syscall line: futex, that address as the
/// first argument). False when it cannot be told.
pub fn thread_waits_on(pid: i32, tid: i32, word: u64) -> bool {
    let Ok(line) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")) else {
        return false;
    };
    let mut f = line.split_whitespace();
    f.next() == Some("202") && f.next() == Some(format!("{word:#x}").as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_has_its_entry_points_in_order() {
        let c = stub_code();
        assert!(c.bytes.len() > 64 && c.bytes.len() < 1024);
        assert_eq!(c.handler, 0);
        for ip in [
            c.ip_wake,
            c.ip_wait,
            c.ip_sigreturn,
            c.ip_restorer,
            c.ip_opfilter,
            c.ip_opwait,
            c.ip_op,
            c.ip_opdone,
            c.ip_opwake,
            c.ip_opexit,
        ] {
            // each follows a `syscall` (0f 05)
            assert_eq!(&c.bytes[ip - 2..ip], &[0x0f, 0x05]);
        }
        assert!(c.park < c.bytes.len());
        assert_eq!(&c.bytes[c.clone..c.clone + 2], &[0x0f, 0x05]);
        // the parent's trap: just after an int3
        assert_eq!(c.bytes[c.clone_trap - 1], 0xcc);
    }

    #[test]
    fn shared_area_round_trips() {
        let s = StubShm::create().unwrap();
        s.write_u64(OFF_UC, 0x1234);
        assert_eq!(s.read_u64(OFF_UC), 0x1234);
        s.store(OFF_DONE, 1);
        assert_eq!(
            s.wait_while(OFF_DONE, 0, 5, Duration::from_millis(1)),
            Waited::Spinning
        );
        assert_eq!(
            s.wait_while(OFF_DONE, 0, 0, Duration::from_millis(1)),
            Waited::Sleeping
        );
        assert_eq!(
            s.wait_while(OFF_DONE, 1, 10, Duration::from_millis(1)),
            Waited::No
        );
    }
}
