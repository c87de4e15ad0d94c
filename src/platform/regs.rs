//! The guest's registers: a named mirror of the x86-64 `user_regs_struct`, and the
//! x87/SSE/AVX state as an XSAVE image with its signal-frame markers.

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

/// Signal-frame marker at byte 464 of an XSAVE image (`_fpx_sw_bytes.magic1`).
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// Marker right after the xstate in a signal frame.
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// XSAVE state component bits (XSTATE_BV, XCR0).
pub const XFEATURE_FP: u64 = 1 << 0;
pub const XFEATURE_SSE: u64 = 1 << 1;

/// `struct _fpx_sw_bytes`, which Linux keeps in the FXSAVE area's unused
/// bytes 464..512 of a signal frame: it says an xstate follows and how big
/// it is. The platform fills it in every image it fetches, so the frame
/// builder copies images as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpSwBytes {
    /// `xstate_size` + 4 (the MAGIC2 word).
    pub extended_size: u32,
    /// The components the frame carries (its restore mask).
    pub xfeatures: u64,
    /// Bytes of XSAVE image (FXSAVE + header + components) in the frame.
    pub xstate_size: u32,
}

/// The guest's x87/SSE/AVX/AVX-512 state as an XSAVE standard-format image:
/// the 512-byte FXSAVE area, the 64-byte XSAVE header (XSTATE_BV at 512),
/// then the components at the offsets CPUID leaf 0xD gives. A 512-byte
/// image is FXSAVE only (a host without XSAVE, or a signal frame without
/// xstate): loading it puts the other components in their init state.
#[derive(Clone, PartialEq, Eq)]
pub struct FpRegs(Vec<u8>);

impl FpRegs {
    /// The legacy FXSAVE area.
    pub const FXSAVE_SIZE: usize = 512;
    /// FXSAVE area plus the XSAVE header: the smallest XSAVE image.
    pub const XSAVE_MIN: usize = 576;
    const SW_OFF: usize = 464;
    const BV_OFF: usize = 512;
    const MXCSR_OFF: usize = 24;

    /// An image from its bytes: exactly 512 (FXSAVE only) or at least 576.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<FpRegs> {
        (bytes.len() == Self::FXSAVE_SIZE || bytes.len() >= Self::XSAVE_MIN)
            .then_some(FpRegs(bytes))
    }

    /// A freshly reset FPU, as execve leaves it: x87 control word 0x37f,
    /// all exceptions masked in MXCSR (0x1f80), every vector register zero.
    pub fn initial() -> FpRegs {
        let mut b = vec![0u8; Self::XSAVE_MIN];
        b[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        b[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        b[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
        let mut fp = FpRegs(b);
        fp.set_xstate_bv(XFEATURE_FP | XFEATURE_SSE);
        fp
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the image has an XSAVE header (and so maybe AVX state).
    pub fn is_xsave(&self) -> bool {
        self.0.len() >= Self::XSAVE_MIN
    }

    /// The legacy FXSAVE part.
    pub fn fxsave(&self) -> &[u8] {
        &self.0[..Self::FXSAVE_SIZE]
    }

    /// MXCSR lives at byte 24 of the FXSAVE area.
    pub fn mxcsr(&self) -> u32 {
        self.u32_at(Self::MXCSR_OFF)
    }

    /// Components whose state the image holds (others are in init state);
    /// an FXSAVE-only image holds x87 and SSE.
    pub fn xstate_bv(&self) -> u64 {
        if self.is_xsave() {
            u64::from_le_bytes(
                self.0[Self::BV_OFF..Self::BV_OFF + 8]
                    .try_into()
                    .expect("8"),
            )
        } else {
            XFEATURE_FP | XFEATURE_SSE
        }
    }

    /// Sets XSTATE_BV (no-op on an FXSAVE-only image).
    pub fn set_xstate_bv(&mut self, bv: u64) {
        if self.is_xsave() {
            self.0[Self::BV_OFF..Self::BV_OFF + 8].copy_from_slice(&bv.to_le_bytes());
        }
    }

    /// The signal-frame description in bytes 464..512, if MAGIC1 marks one.
    pub fn sw_bytes(&self) -> Option<FpSwBytes> {
        (self.u32_at(Self::SW_OFF) == FP_XSTATE_MAGIC1).then(|| FpSwBytes {
            extended_size: self.u32_at(Self::SW_OFF + 4),
            xfeatures: u64::from_le_bytes(
                self.0[Self::SW_OFF + 8..Self::SW_OFF + 16]
                    .try_into()
                    .expect("8"),
            ),
            xstate_size: self.u32_at(Self::SW_OFF + 16),
        })
    }

    /// Writes (Some) or clears (None) the signal-frame description.
    pub fn set_sw_bytes(&mut self, sw: Option<FpSwBytes>) {
        let b = &mut self.0[Self::SW_OFF..Self::FXSAVE_SIZE];
        b.fill(0);
        if let Some(sw) = sw {
            b[0..4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            b[4..8].copy_from_slice(&sw.extended_size.to_le_bytes());
            b[8..16].copy_from_slice(&sw.xfeatures.to_le_bytes());
            b[16..20].copy_from_slice(&sw.xstate_size.to_le_bytes());
        }
    }

    /// The image a host with a `size`-byte XSAVE regset accepts: padded or
    /// cut to `size`, XSTATE_BV limited to `features` (an FXSAVE-only image
    /// gets x87|SSE, so the rest resets), the header's compaction and
    /// reserved words zeroed, MXCSR's reserved bits cleared. A guest's
    /// signal frame may hold anything: the host must never refuse it.
    pub fn to_host_image(&self, size: usize, features: u64, mxcsr_mask: u32) -> Vec<u8> {
        let bv = self.xstate_bv() & features;
        let mut out = self.0.clone();
        out.resize(size.max(Self::XSAVE_MIN), 0);
        out[Self::SW_OFF..Self::FXSAVE_SIZE].fill(0);
        out[Self::BV_OFF..Self::XSAVE_MIN].fill(0);
        out[Self::BV_OFF..Self::BV_OFF + 8].copy_from_slice(&bv.to_le_bytes());
        let mxcsr = self.mxcsr() & mxcsr_mask;
        out[Self::MXCSR_OFF..Self::MXCSR_OFF + 4].copy_from_slice(&mxcsr.to_le_bytes());
        out.truncate(size.max(Self::XSAVE_MIN));
        out
    }

    fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0[off..off + 4].try_into().expect("4"))
    }
}

impl std::fmt::Debug for FpRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FpRegs {{ len: {}, mxcsr: {:#x}, xstate_bv: {:#x}, .. }}",
            self.0.len(),
            self.mxcsr(),
            self.xstate_bv()
        )
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

    #[test]
    fn fp_images_need_a_whole_area() {
        assert!(FpRegs::from_bytes(vec![0; 511]).is_none());
        assert!(FpRegs::from_bytes(vec![0; 540]).is_none());
        let fx = FpRegs::from_bytes(vec![0; 512]).unwrap();
        assert!(!fx.is_xsave());
        assert_eq!(fx.xstate_bv(), XFEATURE_FP | XFEATURE_SSE);
        assert!(FpRegs::from_bytes(vec![0; 2432]).unwrap().is_xsave());
    }

    #[test]
    fn initial_fpu_is_reset_state() {
        let fp = FpRegs::initial();
        assert_eq!(fp.mxcsr(), 0x1f80);
        assert_eq!(&fp.bytes()[0..2], &[0x7f, 0x03]);
        assert_eq!(fp.xstate_bv(), XFEATURE_FP | XFEATURE_SSE);
        assert!(fp.sw_bytes().is_none());
    }

    #[test]
    fn sw_bytes_round_trip_and_clear() {
        let mut fp = FpRegs::from_bytes(vec![0; 2432]).unwrap();
        let sw = FpSwBytes {
            extended_size: 2436,
            xfeatures: 0xe7,
            xstate_size: 2432,
        };
        fp.set_sw_bytes(Some(sw));
        assert_eq!(&fp.bytes()[464..468], &FP_XSTATE_MAGIC1.to_le_bytes());
        assert_eq!(fp.sw_bytes(), Some(sw));
        fp.set_sw_bytes(None);
        assert_eq!(fp.sw_bytes(), None);
        assert!(fp.bytes()[464..512].iter().all(|&b| b == 0));
    }

    #[test]
    fn host_image_is_sanitised() {
        // A hostile frame: stray XSTATE_BV bits, compaction bit, reserved
        // header bytes, reserved MXCSR bits, sw bytes, short length.
        let mut b = vec![0xffu8; 1000];
        b[24..28].copy_from_slice(&0xdead_1f80u32.to_le_bytes());
        let fp = FpRegs::from_bytes(b).unwrap();
        let img = fp.to_host_image(2432, 0xe7, 0xffff);
        assert_eq!(img.len(), 2432);
        let bv = u64::from_le_bytes(img[512..520].try_into().unwrap());
        assert_eq!(bv, 0xe7);
        assert!(img[520..576].iter().all(|&x| x == 0));
        assert!(img[464..512].iter().all(|&x| x == 0));
        assert!(img[1000..].iter().all(|&x| x == 0));
        assert_eq!(&img[24..28], &0x1f80u32.to_le_bytes());
        // FXSAVE only: the extended components reset.
        let fx = FpRegs::from_bytes(vec![0; 512]).unwrap();
        let img = fx.to_host_image(2432, 0xe7, 0xffff);
        assert_eq!(u64::from_le_bytes(img[512..520].try_into().unwrap()), 3);
        // Longer than the host's area: cut.
        let big = FpRegs::from_bytes(vec![0; 4096]).unwrap();
        assert_eq!(big.to_host_image(2432, 0xe7, 0xffff).len(), 2432);
    }
}
