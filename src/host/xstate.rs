//! The host's XSAVE state (AVX, AVX-512...) of a stub: its layout from CPUID
//! leaf 0xD and the NT_X86_XSTATE regset, read and written with
//! PTRACE_GETREGSET/SETREGSET.

use std::sync::OnceLock;

use super::ptrace::HostResult;

/// ELF note type of the x86 extended state regset.
const NT_X86_XSTATE: libc::c_int = 0x202;
/// Big enough for any XSAVE area (AMX tiles included: ~11 KiB); the kernel
/// answers with the real length.
const PROBE_LEN: usize = 64 * 1024;
/// AMX tile data: Linux leaves it out of signal frames unless a process
/// asked for it (its "dynamic" features); guests cannot ask.
const XFEATURE_MASK_DYNAMIC: u64 = 1 << 18;
/// Where ptrace's image keeps XCR0 (sw_reserved, for debuggers).
const XCR0_OFF: usize = 464;

/// How the host lays out the XSAVE state of its processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XstateLayout {
    /// Bytes of the NT_X86_XSTATE regset; PTRACE_SETREGSET takes exactly this.
    pub regset_size: usize,
    /// XCR0: the user state components the host enabled.
    pub xcr0: u64,
    /// The components a signal frame carries (Linux's default features).
    pub frame_features: u64,
    /// Bytes of XSAVE image holding `frame_features` (Linux's default size).
    pub frame_size: usize,
    /// MXCSR bits the CPU accepts.
    pub mxcsr_mask: u32,
}

/// The host's layout, learned from the first stub asked (the same for every
/// process). `None` when the host has no XSAVE (then only FXSAVE exists).
pub fn layout(pid: i32) -> HostResult<Option<XstateLayout>> {
    static LAYOUT: OnceLock<Option<XstateLayout>> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(*l);
    }
    let mut buf = vec![0u8; PROBE_LEN];
    let l = match get_xstate(pid, &mut buf) {
        Ok(len) if len >= 576 => Some(layout_from(&buf[..len])),
        Ok(_) | Err(nix::Error::ENODEV) | Err(nix::Error::EINVAL) => None,
        Err(e) => return Err(e),
    };
    log::debug!("host xstate layout: {l:x?}");
    Ok(*LAYOUT.get_or_init(|| l))
}

fn layout_from(img: &[u8]) -> XstateLayout {
    let xcr0 = u64::from_le_bytes(img[XCR0_OFF..XCR0_OFF + 8].try_into().expect("8"));
    let frame_features = xcr0 & !XFEATURE_MASK_DYNAMIC;
    let mxcsr_mask = match u32::from_le_bytes(img[28..32].try_into().expect("4")) {
        0 => 0xffbf, // Intel SDM: a zero mask means the default
        m => m,
    };
    XstateLayout {
        regset_size: img.len(),
        xcr0,
        frame_features,
        frame_size: frame_size(frame_features, img.len(), component),
        mxcsr_mask,
    }
}

/// (offset, size) of XSAVE component `i` in the standard format.
fn component(i: u32) -> (usize, usize) {
    let r = std::arch::x86_64::__cpuid_count(0xd, i);
    (r.ebx as usize, r.eax as usize)
}

/// The end of the last of `features` (x87 and SSE live in the first 576
/// bytes), never past the regset.
fn frame_size(
    features: u64,
    regset_size: usize,
    component: impl Fn(u32) -> (usize, usize),
) -> usize {
    let mut end = 576;
    for i in 2..64 {
        if features & (1 << i) != 0 {
            let (off, size) = component(i);
            end = end.max(off + size);
        }
    }
    end.min(regset_size)
}

/// Reads the stub's XSAVE image into `buf` (a multiple of 8 bytes); returns
/// its length.
pub fn get_xstate(pid: i32, buf: &mut [u8]) -> HostResult<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len() & !7,
    };
    // SAFETY: the kernel writes at most iov_len bytes into iov_base, which
    // points at `buf`, and updates iov_len; both outlive the call.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            pid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(iov.iov_len)
}

/// Loads an XSAVE image into the stub; `img` must be the regset's length.
pub fn set_xstate(pid: i32, img: &[u8]) -> HostResult<()> {
    let mut iov = libc::iovec {
        iov_base: img.as_ptr() as *mut libc::c_void,
        iov_len: img.len(),
    };
    // SAFETY: PTRACE_SETREGSET only reads iov_len bytes from iov_base, which
    // points at `img`; nothing writes through the cast pointer.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            pid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_ends_at_the_last_component() {
        // AVX-512 host: YMM at 576+256, opmask 1088+64, ZMM_Hi256 1152+512,
        // Hi16_ZMM 1664+1024; AMX tile data (18) left out.
        let comp = |i: u32| match i {
            2 => (576, 256),
            5 => (1088, 64),
            6 => (1152, 512),
            7 => (1664, 1024),
            18 => (2752, 8192),
            _ => (0, 0),
        };
        assert_eq!(frame_size(0xe7, 2688, comp), 2688);
        assert_eq!(frame_size(0x07, 2688, comp), 832);
        assert_eq!(frame_size(0x03, 2688, comp), 576);
        assert_eq!(frame_size(0xe7 | 1 << 18, 2688, comp), 2688);
    }

    #[test]
    fn layout_reads_xcr0_and_drops_tiles() {
        let mut img = vec![0u8; 2432];
        img[XCR0_OFF..XCR0_OFF + 8].copy_from_slice(&(0xe7u64 | 1 << 18).to_le_bytes());
        let l = layout_from(&img);
        assert_eq!(l.regset_size, 2432);
        assert_eq!(l.frame_features, 0xe7);
        assert_eq!(l.mxcsr_mask, 0xffbf);
        assert!(l.frame_size >= 576 && l.frame_size <= 2432);
    }

    #[test]
    fn probe_a_traced_child() {
        // A real tracee: fork a child that stops itself under ptrace.
        // SAFETY: the child only makes async-signal-safe calls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: plain syscalls in the child, which never returns.
            unsafe {
                libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                libc::raise(libc::SIGSTOP);
                libc::_exit(0);
            }
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let l = layout(pid).unwrap();
        if let Some(l) = l {
            let mut buf = vec![0u8; l.regset_size];
            assert_eq!(get_xstate(pid, &mut buf).unwrap(), l.regset_size);
            assert!(l.xcr0 & 3 == 3, "x87 and SSE are always on");
            // Put a value in ymm0's upper half (component 2 at CPUID's
            // offset) and read it back.
            if l.xcr0 & 4 != 0 {
                let (off, _) = component(2);
                buf[off..off + 16].copy_from_slice(&[0x5a; 16]);
                let bv = u64::from_le_bytes(buf[512..520].try_into().unwrap()) | 4;
                buf[512..520].copy_from_slice(&bv.to_le_bytes());
                set_xstate(pid, &buf).unwrap();
                let mut back = vec![0u8; l.regset_size];
                get_xstate(pid, &mut back).unwrap();
                assert_eq!(&back[off..off + 16], &[0x5a; 16]);
            }
            assert!(set_xstate(pid, &buf[..576]).is_err(), "short image refused");
        }
        // SAFETY: killing and reaping our own child by pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut st, 0);
        }
    }
}
