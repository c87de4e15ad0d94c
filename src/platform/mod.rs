//! The platform: how guest code runs and how its host mappings change.
//!
//! Like gVisor's Sentry platform, this is an interface the kernel reaches
//! guests through and nothing else: it holds a `Box<dyn Platform>` and one
//! `Box<dyn Guest>` per address space, never a concrete stub. A guest
//! process is a [`Guest`]: a [`Context`] (run it until it makes a syscall,
//! faults, gets a signal or dies) and an [`AddressSpaceOps`] (map host fd
//! ranges into it). [`PtracePlatform`] implements it with UML's SKAS0
//! design: [`PtraceStub`] host processes under ptrace, guest code under
//! PTRACE_SYSEMU, mapping changes injected as syscalls run by the stub;
//! the pool of spare stubs and the preemption ticker live behind it. The
//! fake platform (tests only) interprets scripted guest programs in
//! process. [`SeccompPlatform`] (gVisor's systrap, UML's seccomp mode)
//! runs guest code untraced behind a seccomp filter: a syscall is a SIGSYS
//! whose frame the stub hands to umlrun through shared memory and futexes.
//!
//! Dispatch cost: the kernel calls guests through `dyn` (one indirect
//! call per switch or mapping batch, next to a ~9 µs ptrace round trip);
//! making `Kernel` generic over the platform would spread a type parameter
//! over every kernel and syscall file for no measurable gain (see the
//! getppid figures in the commit that introduced the trait).
//!
//! | file | owns |
//! |---|---|
//! | `regs.rs` | [`Regs`] (named `user_regs_struct`) and [`FpRegs`] (the XSAVE image) |
//! | `stub_image.rs` | the stub ELF bytes, its fixed addresses, the op-list format |
//! | `mod.rs` | the interface: [`Platform`], [`Guest`] ([`Context`] + [`AddressSpaceOps`]), [`MapOp`], [`Stop`] |
//! | `span.rs` | what a [`MapOp`] is made of, checked when made: [`PageSpan`] (guest pages) and [`HostOffset`] |
//! | `ptrace.rs` | [`PtracePlatform`]: the stub pool (spare and recycled stubs) and the preemption ticker |
//! | `ptrace_stub.rs` | [`PtraceStub`]: spawn, inject mappings, switch, kill, recycle |
//! | `seccomp.rs` | [`SeccompPlatform`]: stubs that trap guest syscalls with seccomp (SIGSYS) and hand their signal frame to umlrun through a shared area and futexes |
//! | `seccomp_filter.rs` | the seccomp-platform stub's filter (BPF): the wall between guest code and host syscalls |
//! | `host_filter.rs` | the seccomp filters on umlrun's own threads (kernel thread, ticker): allow-lists as BPF |
//! | `seccomp_frame.rs` | the host signal frame (ucontext, sigcontext, siginfo) as a register file |
//! | `fake/` | (tests only) `FakePlatform`: guest programs interpreted in process, so a `Kernel` exists without host processes |
//! | `insn.rs` | whether a faulting instruction writes (ptrace does not say) |
//!
//! Threading: ptrace ties a tracee to the host thread that spawned it, so all
//! calls on one stub must come from that thread.
#![deny(unsafe_code)]

#[cfg(test)]
pub mod fake;
pub mod host_filter;
mod insn;
mod ptrace;
mod ptrace_stub;
mod regs;
mod seccomp;
mod seccomp_filter;
mod seccomp_frame;
mod span;
pub mod stub_image;

use std::any::Any;
use std::ops::Range;
use std::os::fd::RawFd;

/// Highest user address + 1 on x86-64 (4-level paging), Linux's TASK_SIZE:
/// the end of every address space (the host's munmap refuses more).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

pub use ptrace::PtracePlatform;
pub use ptrace_stub::{stub_exe_fd, Detached, PtraceStub, StubOptions};
pub use regs::{
    FpRegs, FpSwBytes, Regs, FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2, USER_CS, USER_EFLAGS, USER_SS,
    XFEATURE_FP, XFEATURE_SSE,
};
pub use seccomp::SeccompPlatform;
pub use span::{HostOffset, PageSpan};

use crate::errno::Errno;

/// Page protection of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };
    pub const R: Prot = Prot {
        read: true,
        write: false,
        exec: false,
    };
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };
    pub const RX: Prot = Prot {
        read: true,
        write: false,
        exec: true,
    };
    pub const RWX: Prot = Prot {
        read: true,
        write: true,
        exec: true,
    };

    /// Linux PROT_* bits (READ=1, WRITE=2, EXEC=4).
    pub fn bits(self) -> u64 {
        (self.read as u64) | (self.write as u64) << 1 | (self.exec as u64) << 2
    }

    /// From Linux PROT_* bits; other bits are ignored.
    pub fn from_bits(bits: u64) -> Prot {
        Prot {
            read: bits & 1 != 0,
            write: bits & 2 != 0,
            exec: bits & 4 != 0,
        }
    }
}

/// One change to a guest's host mappings. Its guest range is a checked
/// [`PageSpan`] (page-aligned, inside user space) and a map's file offset
/// a checked [`HostOffset`]; `fd` is a host fd the stub inherited
/// (physmem memfd, image). Maps are always MAP_SHARED|MAP_FIXED: the
/// kernel does copy-on-write itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOp {
    Map {
        span: PageSpan,
        prot: Prot,
        fd: RawFd,
        offset: HostOffset,
    },
    Unmap {
        span: PageSpan,
    },
    Protect {
        span: PageSpan,
        prot: Prot,
    },
}

impl MapOp {
    /// The guest pages the op touches.
    pub fn span(&self) -> PageSpan {
        match *self {
            MapOp::Map { span, .. } | MapOp::Unmap { span } | MapOp::Protect { span, .. } => span,
        }
    }

    /// The guest range the op touches, as addresses.
    pub fn range(&self) -> Range<u64> {
        self.span().range()
    }

    /// The one op doing `self` then `next`, when they are of one kind on
    /// adjacent ranges (and, for maps, adjacent file offsets of one fd
    /// with one protection): 16 pages of a file mapped in a row become
    /// one mmap; or a protection change over exactly the span the op
    /// before mapped or protected (the later protection is the result).
    pub fn merge(&self, next: &MapOp) -> Option<MapOp> {
        match (*self, *next) {
            (
                MapOp::Map {
                    span,
                    prot,
                    fd,
                    offset,
                },
                MapOp::Map {
                    span: s2,
                    prot: p2,
                    fd: f2,
                    offset: o2,
                },
            ) if prot == p2 && fd == f2 && offset.checked_add(span.len()) == Some(o2) => {
                Some(MapOp::Map {
                    span: span.join(s2)?,
                    prot,
                    fd,
                    offset,
                })
            }
            (MapOp::Unmap { span }, MapOp::Unmap { span: s2 }) => Some(MapOp::Unmap {
                span: span.join(s2)?,
            }),
            // A protection change over exactly the span the op before
            // made: the later one is the result (fork makes the parent's
            // stack page read-only, then its write fault, resolved at once,
            // makes it writable again: one mprotect, not two).
            (MapOp::Protect { span, .. }, MapOp::Protect { span: s2, prot }) if span == s2 => {
                Some(MapOp::Protect { span, prot })
            }
            (
                MapOp::Map {
                    span, fd, offset, ..
                },
                MapOp::Protect { span: s2, prot },
            ) if span == s2 => Some(MapOp::Map {
                span,
                prot,
                fd,
                offset,
            }),
            (MapOp::Protect { span, prot }, MapOp::Protect { span: s2, prot: p2 })
                if prot == p2 =>
            {
                Some(MapOp::Protect {
                    span: span.join(s2)?,
                    prot,
                })
            }
            _ => None,
        }
    }
}

/// A memory fault (or trap) the guest took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// si_addr: the faulting address (for SIGSEGV/SIGBUS) or instruction.
    pub addr: u64,
    /// SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP.
    pub signo: i32,
    /// si_code, e.g. [`SEGV_MAPERR`] or [`SEGV_ACCERR`].
    pub code: i32,
    /// Whether the access was a write, when the platform can tell. Plain
    /// ptrace cannot (the page-fault error code is not in siginfo), so it
    /// reports `None`: the kernel maps private pages read-only first and
    /// treats a later SEGV_ACCERR on a page it mapped readable as a write.
    pub write: Option<bool>,
}

pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;

impl Fault {
    /// Nothing mapped at the address.
    pub fn is_maperr(&self) -> bool {
        self.signo == SIGSEGV && self.code == SEGV_MAPERR
    }
    /// Mapped, but the protection refused the access.
    pub fn is_accerr(&self) -> bool {
        self.signo == SIGSEGV && self.code == SEGV_ACCERR
    }
}

pub use crate::abi::sig::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};

/// Why [`Context::switch`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The guest executed `syscall`; nothing ran on the host. Registers hold
    /// the state after the instruction; write the result with
    /// [`Regs::set_syscall_return`] on [`Context::regs_mut`].
    Syscall { nr: u64, args: [u64; 6] },
    /// A synchronous fault; resuming re-runs the instruction.
    Fault(Fault),
    /// Another host signal reached the stub (suppressed, not delivered).
    Signal(i32),
    /// The stub process exited with this code (it should not).
    Exited(i32),
    /// The stub was killed by this host signal.
    Killed(i32),
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("host call {op} failed: {source}")]
    Host {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("could not prepare the stub executable: {0}")]
    StubExe(#[source] std::io::Error),
    #[error("could not read the stub's host mappings: {0}")]
    Maps(#[source] std::io::Error),
    #[error("mapping op {index} failed in the stub with {errno:?}")]
    Inject { index: usize, errno: Errno },
    #[error("mapping op {0:?} touches the stub's reserved pages")]
    Reserved(MapOp),
    #[error("stub stopped unexpectedly: {0}")]
    UnexpectedStop(String),
    #[error("stub process is gone")]
    StubGone,
}

impl PlatformError {
    pub(crate) fn host(op: &'static str) -> impl FnOnce(nix::Error) -> PlatformError {
        move |source| PlatformError::Host { op, source }
    }
}

/// Changing a guest's host mappings.
pub trait AddressSpaceOps {
    /// Apply the ops in order, as few round trips as possible. Stops at the
    /// first failure, reporting its index; earlier ops stay applied.
    fn apply(&mut self, ops: &[MapOp]) -> Result<(), PlatformError>;

    fn map(
        &mut self,
        span: PageSpan,
        prot: Prot,
        fd: RawFd,
        offset: HostOffset,
    ) -> Result<(), PlatformError> {
        self.apply(&[MapOp::Map {
            span,
            prot,
            fd,
            offset,
        }])
    }

    fn unmap(&mut self, span: PageSpan) -> Result<(), PlatformError> {
        self.apply(&[MapOp::Unmap { span }])
    }

    fn protect(&mut self, span: PageSpan, prot: Prot) -> Result<(), PlatformError> {
        self.apply(&[MapOp::Protect { span, prot }])
    }
}

/// One guest process on a platform: an address space and the register
/// context that runs in it. Threads of one process share it; the kernel
/// swaps their registers in and out ([`Context::regs_mut`],
/// [`Context::set_fpregs`]), as UML does.
pub trait Guest: Context + AddressSpaceOps {
    /// Ranges the guest must not map over (the platform's own pages, the
    /// vDSO, vvar). Sorted by start.
    fn reserved(&self) -> &[Range<u64>];
    /// The vDSO the guest may use (AT_SYSINFO_EHDR), if any.
    fn vdso(&self) -> Option<Range<u64>>;
    /// Clears the guest out, as execve does: no mappings outside
    /// [`Guest::reserved`], FPU state and registers as fresh. On error the
    /// guest is unusable (kill it).
    fn wipe(&mut self) -> Result<(), PlatformError>;
    /// CPU ticks (user, system) the guest code has used so far.
    fn cpu_ticks(&self) -> (u64, u64);
    /// CPU time (ns) the guest code has used so far.
    fn cpu_time_ns(&self) -> u64;
    /// Ends the guest at once (idempotent); later switches fail.
    fn kill(&mut self);
    /// Gives the guest's host side the kernel's host fd `fd`, at the same
    /// number: a disk added while guests run (their mappings of its pages
    /// name that fd). On error the guest cannot map that disk's pages.
    fn adopt_fd(&mut self, fd: RawFd) -> Result<(), PlatformError>;
    /// The guest is stopped and the kernel has settled (no syscall, no
    /// fault for a while): give back host memory only a running guest
    /// needs. Its next switch works as before, if a little slower.
    fn settle(&mut self) {}
    /// For the platform that made it, to take it back ([`Platform::retire`]).
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// What the kernel runs guest processes on: it creates and retires
/// [`Guest`]s and owns whatever they share (a pool of host processes,
/// the preemption ticker). The kernel holds it as a `Box<dyn Platform>`
/// and never sees the implementation.
///
/// Implementations: [`PtracePlatform`] (host stubs under ptrace) and, for
/// unit tests, `fake::FakePlatform` (guest programs interpreted in
/// process).
pub trait Platform {
    /// A fresh guest: nothing mapped outside [`Guest::reserved`], registers
    /// a valid user frame (set rip and rsp before the first switch).
    fn new_guest(&mut self) -> Result<Box<dyn Guest>, PlatformError>;
    /// An address space died (or was replaced): the platform may keep the
    /// guest's host resources for the next [`Platform::new_guest`].
    fn retire(&mut self, guest: Box<dyn Guest>);
    /// Nothing is runnable: a moment to prepare for the next fork, or to
    /// give back what busy times left. `settled`: the guest has done
    /// nothing for a while (no syscall, no fault): keep nothing for a fork
    /// that may be far away.
    fn idle(&mut self, settled: bool);
    /// The instance ends: release everything kept, keep nothing more.
    fn shut_down(&mut self);
    /// Guests made from now on have host fd `fd` too (see
    /// [`Guest::adopt_fd`]); kept ones get it now (or are dropped).
    fn share_fd(&mut self, fd: RawFd);
    /// Guests made from now on no longer get `fd` (it is about to close).
    fn unshare_fd(&mut self, fd: RawFd);
}

/// Running guest code.
pub trait Context {
    /// Run the guest from [`Context::regs`] until it stops.
    fn switch(&mut self) -> Result<Stop, PlatformError>;
    /// The guest registers at the last stop (or the initial frame).
    fn regs(&self) -> &Regs;
    /// Change the guest registers; applied at the next switch.
    fn regs_mut(&mut self) -> &mut Regs;
    /// The whole FPU/vector state (XSAVE image: x87, SSE, AVX, AVX-512...),
    /// with its signal-frame description ([`FpRegs::sw_bytes`]) filled in.
    /// Costs a host round trip: only for signal frames, thread switches,
    /// fork.
    fn fpregs(&mut self) -> Result<FpRegs, PlatformError>;
    /// Loads an FP image; components it lacks (or an FXSAVE-only image's
    /// AVX state) go to their init state. Any image is accepted.
    fn set_fpregs(&mut self, fp: &FpRegs) -> Result<(), PlatformError>;
    /// Bytes of XSAVE image a signal frame holds (0: FXSAVE only), for
    /// AT_MINSIGSTKSZ.
    fn fp_frame_size(&mut self) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_bits_round_trip() {
        for bits in 0..8 {
            assert_eq!(Prot::from_bits(bits).bits(), bits);
        }
        assert_eq!(Prot::RX.bits(), 5);
    }

    fn span(start: u64, len: u64) -> PageSpan {
        PageSpan::new(crate::mm::GuestVirt(start), len).unwrap()
    }

    #[test]
    fn ops_merge_only_when_adjacent_and_alike() {
        let map = |start, len, fd, off| MapOp::Map {
            span: span(start, len),
            prot: Prot::R,
            fd,
            offset: HostOffset::new(off).unwrap(),
        };
        assert_eq!(
            map(0x1000, 0x1000, 3, 0).merge(&map(0x2000, 0x1000, 3, 0x1000)),
            Some(map(0x1000, 0x2000, 3, 0))
        );
        // Another fd, a gap in the file or in memory, another kind: no.
        assert_eq!(
            map(0x1000, 0x1000, 3, 0).merge(&map(0x2000, 0x1000, 4, 0x1000)),
            None
        );
        assert_eq!(
            map(0x1000, 0x1000, 3, 0).merge(&map(0x2000, 0x1000, 3, 0x2000)),
            None
        );
        assert_eq!(
            map(0x1000, 0x1000, 3, 0).merge(&map(0x3000, 0x1000, 3, 0x1000)),
            None
        );
        let unmap = |start, len| MapOp::Unmap {
            span: span(start, len),
        };
        assert_eq!(
            map(0x1000, 0x1000, 3, 0).merge(&unmap(0x2000, 0x1000)),
            None
        );
        assert_eq!(
            unmap(0x1000, 0x1000).merge(&unmap(0x2000, 0x3000)),
            Some(unmap(0x1000, 0x4000))
        );
        let protect = |start, prot| MapOp::Protect {
            span: span(start, 0x1000),
            prot,
        };
        assert_eq!(
            protect(0x1000, Prot::R).merge(&protect(0x2000, Prot::R)),
            Some(MapOp::Protect {
                span: span(0x1000, 0x2000),
                prot: Prot::R
            })
        );
        assert_eq!(
            protect(0x1000, Prot::R).merge(&protect(0x2000, Prot::RW)),
            None
        );
        assert_eq!(unmap(0x1000, 0x2000).range(), 0x1000..0x3000);
    }

    #[test]
    fn a_protection_change_of_the_same_span_is_the_result_of_both() {
        let protect = |start, len, prot| MapOp::Protect {
            span: span(start, len),
            prot,
        };
        // fork's read-only, then the write fault's read-write: one op.
        assert_eq!(
            protect(0x1000, 0x1000, Prot::R).merge(&protect(0x1000, 0x1000, Prot::RW)),
            Some(protect(0x1000, 0x1000, Prot::RW))
        );
        let map = |prot| MapOp::Map {
            span: span(0x1000, 0x2000),
            prot,
            fd: 3,
            offset: HostOffset::new(0x4000).unwrap(),
        };
        assert_eq!(
            map(Prot::R).merge(&protect(0x1000, 0x2000, Prot::RW)),
            Some(map(Prot::RW))
        );
        // Part of the span only: both stay.
        assert_eq!(
            protect(0x1000, 0x2000, Prot::R).merge(&protect(0x1000, 0x1000, Prot::RW)),
            None
        );
        assert_eq!(map(Prot::R).merge(&protect(0x2000, 0x1000, Prot::RW)), None);
        // Nothing merges into an unmap.
        let unmap = MapOp::Unmap {
            span: span(0x1000, 0x1000),
        };
        assert_eq!(unmap.merge(&protect(0x1000, 0x1000, Prot::RW)), None);
    }
}
