//! Signal state and the x86-64 signal frame.
//!
//! `SigSet` is the 64-bit mask of signals 1..=64 (bit n-1). A handler runs
//! on an `rt_sigframe` built on the guest stack exactly as Linux lays it
//! out (pretcode, ucontext with sigcontext and mask, siginfo, then the FP
//! state 64-byte aligned), so `rt_sigreturn` and debuggers that walk the
//! frame find what they expect.
//!
//! The FP state is the XSAVE image (AVX, AVX-512: glibc's string functions
//! use them, so a handler clobbers them) in Linux's format: the FXSAVE
//! area whose bytes 464..512 hold `_fpx_sw_bytes` (FP_XSTATE_MAGIC1, sizes,
//! the restore mask), the XSAVE header and components, then
//! FP_XSTATE_MAGIC2; uc_flags has UC_FP_XSTATE. Without those markers
//! rt_sigreturn restores the FXSAVE part only and resets the rest.

use crate::abi::layout::{GuestStruct, SiginfoFault, SiginfoPoll, SiginfoProc};
use crate::platform::{FpRegs, Regs, FP_XSTATE_MAGIC2, XFEATURE_FP, XFEATURE_SSE};

/// The signal numbers (defined once, in `crate::abi`).
pub use crate::abi::sig::*;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;

pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    pub fn bit(sig: i32) -> u64 {
        1u64 << (sig - 1)
    }
    pub fn has(self, sig: i32) -> bool {
        (1..=NSIG).contains(&sig) && self.0 & Self::bit(sig) != 0
    }
    pub fn add(&mut self, sig: i32) {
        if (1..=NSIG).contains(&sig) {
            self.0 |= Self::bit(sig);
        }
    }
    pub fn del(&mut self, sig: i32) {
        if (1..=NSIG).contains(&sig) {
            self.0 &= !Self::bit(sig);
        }
    }
    /// SIGKILL and SIGSTOP can never be blocked.
    pub fn sanitized(self) -> SigSet {
        SigSet(self.0 & !(Self::bit(SIGKILL) | Self::bit(SIGSTOP)))
    }
    /// The lowest signal in the set (standard signals first, like Linux).
    pub fn first(self) -> Option<i32> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0.trailing_zeros() as i32 + 1)
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: SigSet,
}

/// What a signal does when its disposition is SIG_DFL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::CoreDump,
        _ => DefaultAction::Terminate,
    }
}

/// The handlers of a thread group (shared by CLONE_SIGHAND).
#[derive(Debug, Clone)]
pub struct SigHandlers {
    pub actions: [SigAction; NSIG as usize],
}

impl Default for SigHandlers {
    fn default() -> Self {
        SigHandlers {
            actions: [SigAction::default(); NSIG as usize],
        }
    }
}

impl SigHandlers {
    pub fn get(&self, sig: i32) -> SigAction {
        self.actions[(sig - 1) as usize]
    }
    pub fn set(&mut self, sig: i32, a: SigAction) {
        self.actions[(sig - 1) as usize] = a;
    }
    /// execve: caught signals go back to SIG_DFL; ignored stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
    /// True if delivering `sig` now would do nothing at all.
    pub fn is_ignored(&self, sig: i32) -> bool {
        let a = self.get(sig);
        a.handler == SIG_IGN
            || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }
}

/// A queued signal with its siginfo fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// kill: sender pid and uid; SIGCHLD: child pid, uid, status.
    pub pid: i32,
    pub uid: u32,
    pub status: i32,
    /// SIGSEGV/SIGBUS: fault address.
    pub addr: u64,
    /// sigqueue's value (si_value), for SI_QUEUE and timers.
    pub value: u64,
    /// A synchronous signal from the task's own fault (`force_signal`):
    /// the one kind init is not protected from.
    pub forced: bool,
    /// A POSIX timer's signal: its arming generation (0: not a timer's).
    pub timer: u32,
    /// A file's signal (SIGIO or its F_SETSIG signal: dnotify, leases):
    /// si_band and si_fd.
    pub poll: Option<(i64, i32)>,
}

impl SigInfo {
    /// The 128-byte `siginfo_t`.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        if let Some((band, fd)) = self.poll {
            SiginfoPoll {
                si_signo: self.signo,
                si_errno: self.errno,
                si_code: self.code,
                si_band: band,
                si_fd: fd,
                ..SiginfoPoll::default()
            }
            .write_to(&mut b);
            return b;
        }
        match self.signo {
            SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP if self.code > 0 => SiginfoFault {
                si_signo: self.signo,
                si_errno: self.errno,
                si_code: self.code,
                si_addr: self.addr,
                ..SiginfoFault::default()
            }
            .write_to(&mut b),
            _ => {
                // SI_TIMER: si_timerid, si_overrun, si_value.
                let chld = self.signo == SIGCHLD && self.code != super::posix_timers::SI_TIMER;
                SiginfoProc {
                    si_signo: self.signo,
                    si_errno: self.errno,
                    si_code: self.code,
                    si_pid: self.pid,
                    si_uid: self.uid,
                    si_word: if chld {
                        u64::from(self.status as u32)
                    } else {
                        self.value
                    },
                    ..SiginfoProc::default()
                }
                .write_to(&mut b)
            }
        }
        b
    }
}

/// sigaltstack state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

impl AltStack {
    pub fn enabled(&self) -> bool {
        self.flags & SS_DISABLE == 0 && self.size > 0
    }
    pub fn contains(&self, sp: u64) -> bool {
        self.enabled() && sp > self.sp && sp - self.sp <= self.size
    }
}

// rt_sigframe layout (x86-64).
const UC_OFF: usize = 8; // after pretcode
const UC_STACK_OFF: usize = UC_OFF + 16;
const MCTX_OFF: usize = UC_OFF + 40;
const UC_SIGMASK_OFF: usize = MCTX_OFF + 256;
const INFO_OFF: usize = UC_SIGMASK_OFF + 8;
pub const FRAME_SIZE: usize = INFO_OFF + 128;
const FPSTATE_OFF_IN_MCTX: usize = 184;

/// uc_flags: the frame's FP state has the xstate markers.
pub const UC_FP_XSTATE: u64 = 0x1;
/// uc_flags: sigcontext.ss is valid (always, on x86-64 Linux).
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
/// uc_flags: sigreturn restores ss as saved.
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// A signal frame ready to be written to the guest stack.
pub struct SignalFrame {
    /// Where the frame starts (the handler's rsp).
    pub addr: u64,
    pub bytes: Vec<u8>,
    /// Where the FP state goes (64-byte aligned), and its bytes.
    pub fp_addr: u64,
    pub fp_bytes: Vec<u8>,
    /// The registers the handler starts with.
    pub regs: Regs,
}

/// The FP state as it goes into a frame, and whether it carries the
/// xstate: an image with sw bytes becomes its first `xstate_size` bytes
/// (XSTATE_BV limited to the frame's features) plus MAGIC2; anything else
/// is the FXSAVE area alone, with no markers.
pub fn fpstate_image(fp: &FpRegs) -> (Vec<u8>, bool) {
    match fp.sw_bytes() {
        Some(sw)
            if fp.is_xsave()
                && (FpRegs::XSAVE_MIN..=fp.len()).contains(&(sw.xstate_size as usize)) =>
        {
            let mut img = fp.clone();
            // FP and SSE are always marked present (as Linux's
            // save_xstate_epilog does), so a handler's edits of the x87
            // control word, MXCSR or XMM registers in the frame take
            // effect even when those were in their init state.
            img.set_xstate_bv((img.xstate_bv() & sw.xfeatures) | XFEATURE_FP | XFEATURE_SSE);
            let mut b = img.bytes()[..sw.xstate_size as usize].to_vec();
            b.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
            (b, true)
        }
        _ => {
            let mut b = fp.fxsave().to_vec();
            b[464..512].fill(0);
            (b, false)
        }
    }
}

/// How many bytes of a frame's FP state rt_sigreturn reads, judged from
/// its first 512 (`head`): the xstate and MAGIC2 when MAGIC1 announces one
/// no bigger than the host's frame xstate (`max_xstate`), else the FXSAVE
/// area (Linux: check_xstate_in_sigframe).
pub fn fpstate_len(head: &[u8], max_xstate: usize) -> usize {
    match FpRegs::from_bytes(head[..FpRegs::FXSAVE_SIZE].to_vec()).and_then(|f| f.sw_bytes()) {
        Some(sw)
            if (FpRegs::XSAVE_MIN..=max_xstate).contains(&(sw.xstate_size as usize))
                && sw.xstate_size <= sw.extended_size =>
        {
            sw.xstate_size as usize + 4
        }
        _ => FpRegs::FXSAVE_SIZE,
    }
}

/// The FP state rt_sigreturn restores from a frame's FP bytes (as many as
/// [`fpstate_len`] asked for): the xstate, limited to the frame's restore
/// mask, when MAGIC1 and MAGIC2 both check out, as Linux does; else the
/// FXSAVE area alone (AVX and beyond reset).
pub fn fpstate_from_frame(bytes: &[u8]) -> FpRegs {
    let fxsave_only = || {
        let mut b = bytes[..FpRegs::FXSAVE_SIZE].to_vec();
        b[464..512].fill(0);
        FpRegs::from_bytes(b).expect("512 bytes")
    };
    if bytes.len() < FpRegs::XSAVE_MIN + 4 || fpstate_len(bytes, bytes.len() - 4) != bytes.len() {
        return fxsave_only();
    }
    let size = bytes.len() - 4;
    if u32::from_le_bytes(bytes[size..].try_into().expect("4")) != FP_XSTATE_MAGIC2 {
        return fxsave_only();
    }
    let Some(mut fp) = FpRegs::from_bytes(bytes[..size].to_vec()) else {
        return fxsave_only();
    };
    let mask = fp
        .sw_bytes()
        .map_or(XFEATURE_FP | XFEATURE_SSE, |sw| sw.xfeatures);
    fp.set_xstate_bv(fp.xstate_bv() & mask);
    fp.set_sw_bytes(None);
    fp
}

/// `sizeof(struct sigframe_ia32)` and `sizeof(struct fregs_state)`: a
/// Linux with IA32 emulation (every distribution's x86-64 kernel) sizes
/// AT_MINSIGSTKSZ for its largest frame type, the 32-bit one with an fsave
/// header, and 64-bit programs see that figure too.
const IA32_SIGFRAME_SIZE: usize = 736;
const FREGS_STATE_SIZE: usize = 112;

/// AT_MINSIGSTKSZ for an FP image of `xstate_size` bytes (0: FXSAVE only),
/// computed as Linux's `init_sigframe_size` does: the largest frame, its
/// 16-byte alignment, the FP state (plus FP_XSTATE_MAGIC2 with XSAVE, plus
/// the fsave header), its 64-byte alignment, rounded up to 16. It is at
/// least what one of our frames takes.
pub fn min_sigstack_size(xstate_size: usize) -> u64 {
    let fp = if xstate_size == 0 {
        FpRegs::FXSAVE_SIZE
    } else {
        xstate_size + 4
    };
    let frame = IA32_SIGFRAME_SIZE.max(FRAME_SIZE);
    ((frame + 15 + fp + FREGS_STATE_SIZE + 63 + 15) & !15) as u64
}

/// Builds the frame for delivering `info` to `action` with the interrupted
/// state `regs`/`fp` and the mask to restore on return.
pub fn build_frame(
    regs: &Regs,
    fp: &FpRegs,
    info: &SigInfo,
    action: &SigAction,
    old_mask: SigSet,
    altstack: &AltStack,
) -> Option<SignalFrame> {
    let on_alt =
        action.flags & SA_ONSTACK != 0 && altstack.enabled() && !altstack.contains(regs.rsp);
    let top = if on_alt {
        altstack.sp.checked_add(altstack.size)?
    } else {
        regs.rsp.checked_sub(128)? // the red zone
    };
    let (fp_bytes, xstate) = fpstate_image(fp);
    let fp_addr = top.checked_sub(fp_bytes.len() as u64)? & !63;
    let frame = (fp_addr.checked_sub(FRAME_SIZE as u64)? & !15).checked_sub(8)?;
    // A frame that does not fit on the alternate stack is not written below
    // it (Linux: get_sigframe): the task gets SIGSEGV instead.
    if on_alt && frame < altstack.sp {
        return None;
    }

    let mut b = vec![0u8; FRAME_SIZE];
    let put =
        |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut b, 0, action.restorer);
    let fp_flag = if xstate { UC_FP_XSTATE } else { 0 };
    put(
        &mut b,
        UC_OFF,
        UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | fp_flag,
    );
    // uc_link stays 0; uc_stack describes the alternate stack.
    put(&mut b, UC_STACK_OFF, altstack.sp);
    b[UC_STACK_OFF + 8..UC_STACK_OFF + 12].copy_from_slice(
        &(if altstack.enabled() {
            if on_alt || altstack.contains(regs.rsp) {
                SS_ONSTACK
            } else {
                0
            }
        } else {
            SS_DISABLE
        })
        .to_le_bytes(),
    );
    put(&mut b, UC_STACK_OFF + 16, altstack.size);
    let m = MCTX_OFF;
    let gp = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ];
    for (i, v) in gp.iter().enumerate() {
        put(&mut b, m + i * 8, *v);
    }
    b[m + 144..m + 146].copy_from_slice(&(regs.cs as u16).to_le_bytes());
    b[m + 150..m + 152].copy_from_slice(&(regs.ss as u16).to_le_bytes());
    put(&mut b, m + 176, old_mask.0); // oldmask
    put(&mut b, m + 168, info.addr); // cr2
    put(&mut b, m + FPSTATE_OFF_IN_MCTX, fp_addr);
    put(&mut b, UC_SIGMASK_OFF, old_mask.0);
    b[INFO_OFF..INFO_OFF + 128].copy_from_slice(&info.to_bytes());

    let mut nregs = *regs;
    nregs.rsp = frame;
    nregs.rip = action.handler;
    nregs.rdi = info.signo as u64;
    nregs.rsi = frame + INFO_OFF as u64;
    nregs.rdx = frame + UC_OFF as u64;
    nregs.rax = 0;
    // The direction flag and TF are cleared for the handler.
    nregs.eflags &= !(0x400 | 0x100);
    Some(SignalFrame {
        addr: frame,
        bytes: b,
        fp_addr,
        fp_bytes,
        regs: nregs,
    })
}

/// What `rt_sigreturn` restores, parsed from the ucontext bytes at the
/// guest's rsp (the handler's `ret` popped pretcode).
pub struct Restored {
    pub regs: Regs,
    pub mask: SigSet,
    /// Where the FP state is (0: none); read it with [`fpstate_len`] and
    /// [`fpstate_from_frame`].
    pub fp_addr: u64,
}

/// Size of the ucontext prefix `parse_sigreturn` needs.
pub const UCONTEXT_SIZE: usize = UC_SIGMASK_OFF + 8 - UC_OFF;

pub fn parse_sigreturn(uc: &[u8], current: &Regs) -> Restored {
    let get = |off: usize| u64::from_le_bytes(uc[off..off + 8].try_into().expect("8 bytes"));
    let m = MCTX_OFF - UC_OFF;
    let mut r = *current;
    r.r8 = get(m);
    r.r9 = get(m + 8);
    r.r10 = get(m + 16);
    r.r11 = get(m + 24);
    r.r12 = get(m + 32);
    r.r13 = get(m + 40);
    r.r14 = get(m + 48);
    r.r15 = get(m + 56);
    r.rdi = get(m + 64);
    r.rsi = get(m + 72);
    r.rbp = get(m + 80);
    r.rbx = get(m + 88);
    r.rdx = get(m + 96);
    r.rax = get(m + 104);
    r.rcx = get(m + 112);
    r.rsp = get(m + 120);
    r.rip = get(m + 128);
    // Only the arithmetic flags, DF, TF... may be changed by the guest.
    const FIX_EFLAGS: u64 = 0x40DD5;
    r.eflags = (current.eflags & !FIX_EFLAGS) | (get(m + 136) & FIX_EFLAGS);
    r.orig_rax = u64::MAX;
    Restored {
        regs: r,
        mask: SigSet(get(UC_SIGMASK_OFF - UC_OFF)).sanitized(),
        fp_addr: get(m + FPSTATE_OFF_IN_MCTX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let mut s = SigSet::default();
        s.add(SIGINT);
        s.add(SIGKILL);
        assert!(s.has(SIGINT));
        assert_eq!(s.first(), Some(SIGINT));
        assert!(!s.sanitized().has(SIGKILL));
        s.del(SIGINT);
        assert_eq!(s.first(), Some(SIGKILL));
        assert!(!s.has(0));
        assert!(!s.has(65));
    }

    #[test]
    fn frame_round_trips_registers() {
        let regs = Regs {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rbp: 7,
            rsp: 0x7fff_0000_1000,
            r8: 8,
            r15: 15,
            rip: 0x401000,
            eflags: 0x246,
            cs: 0x33,
            ss: 0x2b,
            ..Regs::default()
        };
        let act = SigAction {
            handler: 0x402000,
            flags: SA_SIGINFO | SA_RESTORER,
            restorer: 0x403000,
            mask: SigSet::default(),
        };
        let info = SigInfo {
            signo: SIGUSR1,
            ..Default::default()
        };
        let fr = build_frame(
            &regs,
            &FpRegs::initial(),
            &info,
            &act,
            SigSet(0x55),
            &AltStack::default(),
        )
        .expect("room for the frame");
        // ABI: at handler entry (rsp + 8) is 16-byte aligned.
        assert_eq!((fr.regs.rsp + 8) % 16, 0);
        assert!(fr.addr + FRAME_SIZE as u64 <= fr.fp_addr);
        assert_eq!(fr.fp_addr % 64, 0);
        assert!(fr.fp_addr + 512 <= regs.rsp - 128);
        assert_eq!(fr.regs.rip, 0x402000);
        assert_eq!(fr.regs.rdi, SIGUSR1 as u64);
        // The handler returns into the restorer, which pops pretcode: the
        // guest's rsp at rt_sigreturn is frame + 8 = the ucontext.
        let uc = &fr.bytes[UC_OFF..UC_OFF + UCONTEXT_SIZE];
        let back = parse_sigreturn(uc, &fr.regs);
        assert_eq!(back.regs.rip, regs.rip);
        assert_eq!(back.regs.rsp, regs.rsp);
        assert_eq!(back.regs.rax, 1);
        assert_eq!(back.regs.r15, 15);
        assert_eq!(back.regs.eflags, 0x246);
        assert_eq!(back.mask, SigSet(0x55));
        assert_eq!(back.fp_addr, fr.fp_addr);
        assert_eq!(
            u64::from_le_bytes(fr.bytes[0..8].try_into().unwrap()),
            0x403000
        );
    }

    #[test]
    fn altstack_is_used_when_asked() {
        let regs = Regs {
            rsp: 0x7fff_0000_0000,
            ..Regs::default()
        };
        let act = SigAction {
            handler: 1,
            flags: SA_ONSTACK,
            ..Default::default()
        };
        let alt = AltStack {
            sp: 0x1000_0000,
            flags: 0,
            size: 0x4000,
        };
        let fr = build_frame(
            &regs,
            &FpRegs::initial(),
            &SigInfo::default(),
            &act,
            SigSet(0),
            &alt,
        )
        .expect("room for the frame");
        assert!(fr.addr > alt.sp && fr.addr < alt.sp + alt.size);
    }

    #[test]
    fn siginfo_layout() {
        let i = SigInfo {
            signo: SIGSEGV,
            code: 1,
            addr: 0xdead000,
            ..Default::default()
        };
        let b = i.to_bytes();
        assert_eq!(i32::from_le_bytes(b[0..4].try_into().unwrap()), SIGSEGV);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 0xdead000);
    }

    /// An AVX-512-host-like image with sw bytes, as the platform fetches it.
    fn xsave_image(size: usize, features: u64) -> FpRegs {
        let mut fp = FpRegs::from_bytes(vec![0; size]).unwrap();
        for (i, b) in fp.bytes_mut()[576..].iter_mut().enumerate() {
            *b = (i % 251) as u8 + 1;
        }
        fp.set_xstate_bv(0xff);
        fp.set_sw_bytes(Some(crate::platform::FpSwBytes {
            extended_size: size as u32 + 4,
            xfeatures: features,
            xstate_size: size as u32,
        }));
        fp
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn xstate_frame_has_magics_flags_and_alignment() {
        let regs = Regs {
            rsp: 0x7fff_0000_1234,
            ..Regs::default()
        };
        let act = SigAction {
            handler: 0x402000,
            flags: SA_SIGINFO | SA_RESTORER,
            ..Default::default()
        };
        let fp = xsave_image(2432, 0xe7);
        let fr = build_frame(
            &regs,
            &fp,
            &SigInfo::default(),
            &act,
            SigSet(0),
            &AltStack::default(),
        )
        .expect("room for the frame");
        let b = &fr.fp_bytes;
        assert_eq!(b.len(), 2432 + 4);
        assert_eq!(fr.fp_addr % 64, 0);
        assert!(fr.addr + FRAME_SIZE as u64 <= fr.fp_addr);
        assert!(
            fr.fp_addr + b.len() as u64 <= regs.rsp - 128,
            "red zone kept"
        );
        assert_eq!((fr.regs.rsp + 8) % 16, 0);
        // _fpx_sw_bytes and MAGIC2.
        assert_eq!(u32_at(b, 464), crate::platform::FP_XSTATE_MAGIC1);
        assert_eq!(u32_at(b, 468), 2436);
        assert_eq!(u64::from_le_bytes(b[472..480].try_into().unwrap()), 0xe7);
        assert_eq!(u32_at(b, 480), 2432);
        assert_eq!(u32_at(b, 2432), FP_XSTATE_MAGIC2);
        // XSTATE_BV limited to the frame's features; components copied.
        assert_eq!(u64::from_le_bytes(b[512..520].try_into().unwrap()), 0xe7);
        assert_eq!(&b[576..2432], &fp.bytes()[576..2432]);
        // uc_flags and the fpstate pointer.
        let uc_flags = u64::from_le_bytes(fr.bytes[UC_OFF..UC_OFF + 8].try_into().unwrap());
        assert_eq!(
            uc_flags,
            UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
        );
        let p = MCTX_OFF + FPSTATE_OFF_IN_MCTX;
        assert_eq!(
            u64::from_le_bytes(fr.bytes[p..p + 8].try_into().unwrap()),
            fr.fp_addr
        );
    }

    #[test]
    fn frame_without_sw_bytes_is_fxsave_only() {
        let fr = build_frame(
            &Regs {
                rsp: 0x7fff_0000_0000,
                ..Regs::default()
            },
            &FpRegs::initial(),
            &SigInfo::default(),
            &SigAction::default(),
            SigSet(0),
            &AltStack::default(),
        )
        .expect("room for the frame");
        assert_eq!(fr.fp_bytes.len(), 512);
        assert_eq!(u32_at(&fr.fp_bytes, 464), 0);
        let uc_flags = u64::from_le_bytes(fr.bytes[UC_OFF..UC_OFF + 8].try_into().unwrap());
        assert_eq!(uc_flags & UC_FP_XSTATE, 0);
        assert_eq!(fpstate_len(&fr.fp_bytes, 2432), 512);
    }

    #[test]
    fn xstate_round_trips_through_a_frame() {
        let fp = xsave_image(2432, 0xe7);
        let (bytes, xstate) = fpstate_image(&fp);
        assert!(xstate);
        assert_eq!(fpstate_len(&bytes[..512], 2432), bytes.len());
        let back = fpstate_from_frame(&bytes);
        assert_eq!(back.len(), 2432);
        assert_eq!(back.xstate_bv(), 0xe7);
        assert_eq!(&back.bytes()[576..], &fp.bytes()[576..]);
        assert_eq!(back.sw_bytes(), None);
    }

    #[test]
    fn sigreturn_falls_back_to_fxsave_without_both_magics() {
        let fp = xsave_image(2432, 0xe7);
        let (mut bytes, _) = fpstate_image(&fp);
        // MAGIC2 overwritten (e.g. a handler scribbled): FXSAVE only.
        bytes[2432] ^= 1;
        let back = fpstate_from_frame(&bytes);
        assert!(!back.is_xsave());
        assert_eq!(back.xstate_bv(), 3);
        // MAGIC1 gone: only 512 bytes are read at all.
        let (mut bytes, _) = fpstate_image(&fp);
        bytes[464] = 0;
        assert_eq!(fpstate_len(&bytes[..512], 2432), 512);
        assert!(!fpstate_from_frame(&bytes[..512]).is_xsave());
    }

    #[test]
    fn hostile_sw_bytes_never_panic_or_overread() {
        let fp = xsave_image(2432, 0xe7);
        let (bytes, _) = fpstate_image(&fp);
        for (xsize, ext) in [
            (0u32, 4u32),
            (575, 579),
            (u32::MAX, u32::MAX),
            (4000, 3000),
            (1 << 20, 1 << 20),
        ] {
            let mut head = bytes[..512].to_vec();
            head[468..472].copy_from_slice(&ext.to_le_bytes());
            head[480..484].copy_from_slice(&xsize.to_le_bytes());
            let n = fpstate_len(&head, 2432);
            assert!(n == 512 || (580..=2432 + 4).contains(&n), "{xsize} -> {n}");
            let mut full = head.clone();
            full.resize(n, 0);
            let _ = fpstate_from_frame(&full);
        }
        // The restore mask from the frame limits XSTATE_BV.
        let mut b = bytes.clone();
        b[472..480].copy_from_slice(&7u64.to_le_bytes());
        assert_eq!(fpstate_from_frame(&b).xstate_bv(), 7);
    }

    #[test]
    fn a_frame_never_goes_below_a_too_small_altstack() {
        let fp = xsave_image(2432, 0xe7);
        let act = SigAction {
            flags: SA_ONSTACK,
            ..Default::default()
        };
        let alt = AltStack {
            sp: 0x1000_0000,
            flags: 0,
            // Less than our frame and its FP image take (AT_MINSIGSTKSZ
            // is more: it is sized for the 32-bit frame).
            size: (FRAME_SIZE + 2432 - 64) as u64,
        };
        let info = SigInfo::default();
        let regs = Regs::default();
        assert!(build_frame(&regs, &fp, &info, &act, SigSet(0), &alt).is_none());
        // A stack pointer near 0 or an altstack at the top of the address
        // space cannot wrap around.
        let low = Regs {
            rsp: 1000,
            ..Regs::default()
        };
        let no_alt = SigAction::default();
        assert!(build_frame(&low, &fp, &info, &no_alt, SigSet(0), &AltStack::default()).is_none());
        let top = AltStack {
            sp: u64::MAX - 100,
            flags: 0,
            size: 1 << 20,
        };
        assert!(build_frame(&regs, &fp, &info, &act, SigSet(0), &top).is_none());
    }

    #[test]
    fn frame_marks_fp_and_sse_present() {
        let mut fp = xsave_image(2432, 0xe7);
        fp.set_xstate_bv(0x4); // x87 and SSE in their init state
        let (bytes, xstate) = fpstate_image(&fp);
        assert!(xstate);
        let bv = u64::from_le_bytes(bytes[512..520].try_into().unwrap());
        assert_eq!(bv & 0x7, 0x7);
        // ... so a handler's edit of MXCSR comes back on sigreturn.
        let mut edited = bytes.clone();
        edited[24..28].copy_from_slice(&0x9fc0u32.to_le_bytes());
        let back = fpstate_from_frame(&edited);
        assert_eq!(back.mxcsr(), 0x9fc0);
        assert_eq!(back.xstate_bv() & 0x3, 0x3);
    }

    #[test]
    fn min_sigstack_size_is_linuxs() {
        // "signal: max sigframe size: 1776" on a host with XCR0 = 7.
        assert_eq!(min_sigstack_size(832), 1776);
    }

    #[test]
    fn altstack_frame_fits_min_sigstack_size() {
        let fp = xsave_image(2432, 0xe7);
        let need = min_sigstack_size(2432);
        assert_eq!(need % 16, 0);
        // The worst alignment of the altstack top still fits.
        for top_off in 0..64u64 {
            let alt = AltStack {
                sp: 0x1000_0000,
                flags: 0,
                size: need + top_off,
            };
            let act = SigAction {
                flags: SA_ONSTACK,
                ..Default::default()
            };
            let fr = build_frame(
                &Regs::default(),
                &fp,
                &SigInfo::default(),
                &act,
                SigSet(0),
                &alt,
            )
            .expect("room for the frame");
            assert!(fr.regs.rsp >= alt.sp, "frame below the altstack");
            assert!(fr.fp_addr + fr.fp_bytes.len() as u64 <= alt.sp + alt.size);
        }
        assert!(min_sigstack_size(0) < need);
    }
}
