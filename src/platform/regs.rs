//! The guest's general registers: a named mirror of the x86-64 `user_regs_struct`.

/// x86-64 general registers in `user_regs_struct` order, so the host layer can
/// copy them field by field. A syscall stop reports the number in `orig_rax`
/// and the arguments in rdi, rsi, rdx, r10, r8, r9; the result goes in `rax`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// 64-bit user code segment selector on Linux x86-64.
pub const USER_CS: u64 = 0x33;
/// User data/stack segment selector on Linux x86-64.
pub const USER_SS: u64 = 0x2b;
/// Interrupts enabled plus the always-one bit 1.
pub const USER_EFLAGS: u64 = 0x202;

impl Regs {
    /// A fresh user frame, as execve leaves it: everything zero except the
    /// segments, flags, rip and rsp.
    pub fn new_user(rip: u64, rsp: u64) -> Regs {
        Regs {
            rip,
            rsp,
            cs: USER_CS,
            ss: USER_SS,
            eflags: USER_EFLAGS,
            orig_rax: u64::MAX,
            ..Regs::default()
        }
    }

    /// The syscall number at a syscall stop.
    pub fn syscall_nr(&self) -> u64 {
        self.orig_rax
    }

    /// The six syscall arguments in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }

    /// Store a syscall result (a value or `-errno`) where the guest reads it.
    pub fn set_syscall_return(&mut self, value: i64) {
        self.rax = value as u64;
    }
}

/// The legacy FXSAVE area (x87, MXCSR, XMM0-15), as PTRACE_GETFPREGS returns
/// it; kept as bytes because only signal frames need it, and they copy it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct FpRegs(pub [u8; FpRegs::SIZE]);

impl FpRegs {
    pub const SIZE: usize = 512;

    /// MXCSR lives at byte 24 of the FXSAVE area.
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes([self.0[24], self.0[25], self.0[26], self.0[27]])
    }
}

impl std::fmt::Debug for FpRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FpRegs {{ mxcsr: {:#x}, .. }}", self.mxcsr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_user_regs_struct() {
        // 27 u64 fields, orig_rax at index 15, rip at 16, fs_base at 21.
        assert_eq!(std::mem::size_of::<Regs>(), 27 * 8);
        assert_eq!(std::mem::offset_of!(Regs, orig_rax), 15 * 8);
        assert_eq!(std::mem::offset_of!(Regs, rip), 16 * 8);
        assert_eq!(std::mem::offset_of!(Regs, fs_base), 21 * 8);
    }

    #[test]
    fn syscall_args_in_abi_order() {
        let r = Regs {
            orig_rax: 1,
            rdi: 10,
            rsi: 11,
            rdx: 12,
            r10: 13,
            r8: 14,
            r9: 15,
            ..Regs::default()
        };
        assert_eq!(r.syscall_nr(), 1);
        assert_eq!(r.syscall_args(), [10, 11, 12, 13, 14, 15]);
        let mut r = r;
        r.set_syscall_return(-38);
        assert_eq!(r.rax as i64, -38);
    }
}
