//! Page arithmetic, protection bits and the host-mapping operations.

pub use crate::abi::PAGE;

pub const PROT_NONE: u32 = 0;
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// Lowest address a guest may map (Linux's default mmap_min_addr).
pub const MMAP_MIN_ADDR: u64 = 0x10000;
/// Top of the guest's user address space (47-bit, minus a guard page).
pub const USER_TOP: u64 = crate::platform::TASK_SIZE;
/// Where top-down mmap allocation starts (below the stack region).
pub const MMAP_BASE: u64 = 0x7f00_0000_0000;
/// The stack region: top and the most it may grow to.
pub const STACK_TOP: u64 = 0x7fff_ff00_0000;
pub const STACK_MAX: u64 = 8 << 20;

/// A guest virtual address: a value that came from the guest (a pointer
/// argument, a fault address, a stack pointer), not yet known to be
/// mapped or even in user space. The guest-memory API of the mm layer
/// (`AddressSpace::read_user`, `write_user`, `read_cstr`, `handle_fault`)
/// takes one, so a length, an offset or a host address cannot be passed
/// where a guest address belongs; the kernel wraps raw syscall values at
/// its boundary (`Kernel::read_user` & co.). Arithmetic on it is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestVirt(pub u64);

impl GuestVirt {
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + n`, or None if it wraps.
    pub fn checked_add(self, n: u64) -> Option<GuestVirt> {
        self.0.checked_add(n).map(GuestVirt)
    }

    /// The page it is in.
    pub fn page(self) -> u64 {
        page_down(self.0)
    }

    /// Its offset in that page.
    pub fn page_offset(self) -> usize {
        (self.0 & (PAGE - 1)) as usize
    }
}

impl From<u64> for GuestVirt {
    fn from(a: u64) -> GuestVirt {
        GuestVirt(a)
    }
}

impl std::fmt::LowerHex for GuestVirt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE - 1).map(page_down)
}

pub fn is_page_aligned(a: u64) -> bool {
    a & (PAGE - 1) == 0
}

/// `user_end` on a guest address: the end of [start, start + len), or
/// None when it wraps or passes the top of user space.
pub fn user_end_virt(start: GuestVirt, len: u64) -> Option<GuestVirt> {
    user_end(start.get(), len).map(GuestVirt)
}

/// The end of the guest range [start, start + len), or None when it wraps
/// around or passes the top of user space: every guest (address, length)
/// pair goes through this before any arithmetic on the end.
pub fn user_end(start: u64, len: u64) -> Option<u64> {
    start.checked_add(len).filter(|&e| e <= USER_TOP)
}

/// One change to a stub's host mappings: the platform's type, the one
/// map operation of the whole kernel (mm builds them, the platform
/// applies them in a batch).
pub use crate::platform::MapOp;

/// Why a fault could not be resolved: the guest gets this signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// No mapping, or the access is not allowed: SIGSEGV (code MAPERR/ACCERR).
    Segv { accerr: bool },
    /// Beyond the end of a mapped file: SIGBUS.
    Bus,
    /// Out of guest memory: the OOM path kills the task.
    Oom,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(page_down(0x1fff), 0x1000);
        assert_eq!(page_up(0x1001), Some(0x2000));
        assert_eq!(page_up(u64::MAX), None);
        assert!(is_page_aligned(0x3000));
        assert!(!is_page_aligned(0x3001));
        assert_eq!(user_end(0x1000, 0x1000), Some(0x2000));
        assert_eq!(user_end(0x1000, 0xffff_ffff_ffff_f000), None);
        assert_eq!(user_end(USER_TOP, 1), None);
    }
}
