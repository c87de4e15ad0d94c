//! The host's x86-64 signal frame as the seccomp platform's register file:
//! the `struct ucontext` (with its `struct sigcontext`) the host kernel
//! wrote on the stub's signal stack at a stop, edited by umlrun and
//! restored by the stub's `rt_sigreturn`; and the `siginfo` next to it.
//! Pure byte layout, no host calls.

use super::Regs;

/// `struct ucontext` offsets.
pub const UC_FLAGS: usize = 0;
pub const UC_STACK: usize = 16;
/// `uc_mcontext` (`struct sigcontext`).
pub const UC_MCONTEXT: usize = 40;
pub const UC_SIGMASK: usize = UC_MCONTEXT + SC_LEN;
/// Bytes of ucontext rt_sigreturn reads (kernel sigset of 8 bytes).
pub const UC_LEN: usize = UC_SIGMASK + 8;
/// `struct sigcontext` size.
pub const SC_LEN: usize = 256;

/// uc_flags bits.
pub const UC_FP_XSTATE: u64 = 1;
pub const UC_SIGCONTEXT_SS: u64 = 2;
pub const UC_STRICT_RESTORE_SS: u64 = 4;

// struct sigcontext offsets.
const SC_GPRS: [usize; 18] = [
    0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136,
];
const SC_CS: usize = 144;
const SC_SS: usize = 150;
pub const SC_ERR: usize = 152;
pub const SC_TRAPNO: usize = 160;
pub const SC_FPSTATE: usize = 184;

/// The x86 trap number of a page fault.
pub const TRAP_PF: u64 = 14;
/// Page-fault error code bit: the access was a write.
pub const PF_WRITE: u64 = 2;

fn get(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn set(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn u16_at(b: &[u8], off: usize) -> u64 {
    u16::from_le_bytes([b[off], b[off + 1]]) as u64
}

/// The general registers in sigcontext order (r8..r15, rdi, rsi, rbp, rbx,
/// rdx, rax, rcx, rsp, rip, eflags).
fn gpr_fields(r: &mut Regs) -> [&mut u64; 18] {
    [
        &mut r.r8,
        &mut r.r9,
        &mut r.r10,
        &mut r.r11,
        &mut r.r12,
        &mut r.r13,
        &mut r.r14,
        &mut r.r15,
        &mut r.rdi,
        &mut r.rsi,
        &mut r.rbp,
        &mut r.rbx,
        &mut r.rdx,
        &mut r.rax,
        &mut r.rcx,
        &mut r.rsp,
        &mut r.rip,
        &mut r.eflags,
    ]
}

/// Registers from a sigcontext; the fields a frame lacks (orig_rax, the
/// data segments, fs/gs base) come from `base`.
pub fn regs_from_sc(sc: &[u8], base: &Regs) -> Regs {
    let mut r = *base;
    for (f, off) in gpr_fields(&mut r).into_iter().zip(SC_GPRS) {
        *f = get(sc, off);
    }
    r.cs = u16_at(sc, SC_CS);
    r.ss = u16_at(sc, SC_SS);
    r
}

/// Writes `r` into a sigcontext (segments forced to the user ones: the
/// host would refuse others anyway), leaving err, trapno, cr2 and the
/// fpstate pointer as they are.
pub fn regs_to_sc(r: &Regs, sc: &mut [u8]) {
    let mut r = *r;
    for (f, off) in gpr_fields(&mut r).into_iter().zip(SC_GPRS) {
        set(sc, off, *f);
    }
    sc[SC_CS..SC_CS + 2].copy_from_slice(&(super::USER_CS as u16).to_le_bytes());
    sc[SC_CS + 2..SC_SS].fill(0); // gs, fs selectors: not restored on x86-64
    sc[SC_SS..SC_SS + 2].copy_from_slice(&(super::USER_SS as u16).to_le_bytes());
}

pub fn fpstate_ptr(sc: &[u8]) -> u64 {
    get(sc, SC_FPSTATE)
}

pub fn set_fpstate_ptr(sc: &mut [u8], p: u64) {
    set(sc, SC_FPSTATE, p)
}

/// Whether the fault behind the frame was a write: Some only for a page
/// fault (where the error code says).
pub fn fault_write(sc: &[u8]) -> Option<bool> {
    (get(sc, SC_TRAPNO) == TRAP_PF).then(|| get(sc, SC_ERR) & PF_WRITE != 0)
}

/// A fresh ucontext around `sc`: flags, the signal stack, no signal
/// blocked once restored.
pub fn fresh_uc(sc: &[u8], has_fp: bool, altstack: (u64, u64)) -> Vec<u8> {
    let mut uc = vec![0u8; UC_LEN];
    let flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | if has_fp { UC_FP_XSTATE } else { 0 };
    set(&mut uc, UC_FLAGS, flags);
    set(&mut uc, UC_STACK, altstack.0);
    set(&mut uc, UC_STACK + 16, altstack.1);
    uc[UC_MCONTEXT..UC_MCONTEXT + SC_LEN].copy_from_slice(sc);
    uc
}

/// (signo, code, addr) of a `siginfo`; for SIGSYS `addr` is si_call_addr.
pub fn siginfo(info: &[u8]) -> (i32, i32, u64) {
    let i = |off: usize| i32::from_le_bytes(info[off..off + 4].try_into().expect("4"));
    (i(0), i(8), get(info, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_round_trip_through_a_sigcontext() {
        let mut r = Regs::new_user(0x401000, 0x7ffd_0000);
        r.rax = 1;
        r.r15 = 15;
        r.rdi = 0xd1;
        r.eflags = 0x246;
        r.fs_base = 0xf5;
        let mut sc = vec![0u8; SC_LEN];
        set(&mut sc, SC_FPSTATE, 0x1234);
        regs_to_sc(&r, &mut sc);
        assert_eq!(get(&sc, 104), 1); // rax
        assert_eq!(get(&sc, 128), 0x401000); // rip
        assert_eq!(fpstate_ptr(&sc), 0x1234);
        let back = regs_from_sc(&sc, &r);
        assert_eq!(back, r);
    }

    #[test]
    fn page_fault_error_code_says_write() {
        let mut sc = vec![0u8; SC_LEN];
        assert_eq!(fault_write(&sc), None);
        set(&mut sc, SC_TRAPNO, TRAP_PF);
        set(&mut sc, SC_ERR, 6);
        assert_eq!(fault_write(&sc), Some(true));
        set(&mut sc, SC_ERR, 4);
        assert_eq!(fault_write(&sc), Some(false));
    }

    #[test]
    fn fresh_uc_holds_the_sigcontext() {
        let sc = vec![7u8; SC_LEN];
        let uc = fresh_uc(&sc, false, (0x1000, 0x2000));
        assert_eq!(uc.len(), UC_LEN);
        assert_eq!(get(&uc, UC_FLAGS), 6);
        assert_eq!(&uc[UC_MCONTEXT..UC_MCONTEXT + SC_LEN], &sc[..]);
        assert_eq!(get(&uc, UC_SIGMASK), 0);
    }
}
