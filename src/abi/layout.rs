//! The guest ABI structures the kernel reads and writes, as `#[repr(C)]`
//! types whose size and field offsets are checked at compile time against
//! the x86-64 Linux headers, and one way in and out of guest memory:
//! `Kernel::read_struct` / `Kernel::write_struct` copy `T::SIZE` bytes
//! through the checked user-copy path (EFAULT on any bad byte, no
//! arithmetic on the guest address here).
//!
//! No `unsafe`: each structure is encoded field by field at its
//! `offset_of!` (little-endian), which the compiler turns into plain
//! copies. A structure has no implicit padding (asserted: the fields' sizes
//! add up to its size), so nothing uninitialised can reach the guest;
//! Linux's padding is spelled out as `_pad` fields, written as zeros.
//!
//! | type | Linux |
//! |------|-------|
//! | [`Timespec`], [`Timeval`] | struct timespec, struct timeval (16 bytes) |
//! | [`Stat`] | struct stat (144 bytes) |
//! | [`Statfs`] | struct statfs (120 bytes) |
//! | [`Iovec`] | struct iovec (16 bytes) |
//! | [`Rlimit`] | struct rlimit / rlimit64 (16 bytes) |
//! | [`EpollEvent`] | struct epoll_event (12 bytes, packed on x86-64) |
//! | [`KSigaction`] | the kernel's struct sigaction (32 bytes, 64-bit mask) |
//! | [`MsgHdr`] | struct msghdr (56 bytes) |
//! | [`Itimerval`] | struct itimerval (32 bytes) |
//! | [`Tms`] | struct tms (32 bytes) |
//! | [`Statx`], [`StatxTimestamp`] | struct statx (256 bytes) |
//! | [`Dirent64Head`] | linux_dirent64 before its name (19 bytes, packed) |
//! | [`SiginfoFault`], [`SiginfoProc`], [`SiginfoPoll`] | siginfo_t (128 bytes): the fault, sender/child/timer and SIGIO (band, fd) views of its union |

#![deny(unsafe_code)]

/// A guest ABI structure: a fixed little-endian byte layout of `SIZE`.
pub trait GuestStruct: Sized + Copy {
    const SIZE: usize;
    /// Encodes into `out` (exactly `SIZE` bytes).
    fn write_to(&self, out: &mut [u8]);
    /// Decodes from `b` (exactly `SIZE` bytes).
    fn read_from(b: &[u8]) -> Self;
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; Self::SIZE];
        self.write_to(&mut v);
        v
    }
}

/// One field's encoding.
pub trait Field: Sized + Copy {
    fn put(self, out: &mut [u8]);
    fn get(b: &[u8]) -> Self;
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn put(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
int_field!(u8, u16, u32, u64, i32, i64);

impl<T: Field, const N: usize> Field for [T; N] {
    fn put(self, out: &mut [u8]) {
        let w = std::mem::size_of::<T>();
        for (i, x) in self.into_iter().enumerate() {
            x.put(&mut out[i * w..(i + 1) * w]);
        }
    }
    fn get(b: &[u8]) -> Self {
        let w = std::mem::size_of::<T>();
        std::array::from_fn(|i| T::get(&b[i * w..(i + 1) * w]))
    }
}

/// Declares a guest structure: `field: type = offset` for each field, the
/// total size after the name. Compile-time checks: each offset as
/// written, the size, and no implicit padding.
macro_rules! guest_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident [$size:literal] $(repr($($r:ident),*))? {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty = $off:literal ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[repr(C $($(, $r)*)?)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t ),*
        }
        const _: () = assert!(std::mem::size_of::<$name>() == $size);
        const _: () = assert!(0 $(+ std::mem::size_of::<$t>())* == $size, "implicit padding");
        $( const _: () = assert!(std::mem::offset_of!($name, $f) == $off); )*
        impl GuestStruct for $name {
            const SIZE: usize = $size;
            fn write_to(&self, out: &mut [u8]) {
                $(
                    let v = self.$f;
                    Field::put(v, &mut out[$off..$off + std::mem::size_of::<$t>()]);
                )*
            }
            fn read_from(b: &[u8]) -> Self {
                Self {
                    $( $f: Field::get(&b[$off..$off + std::mem::size_of::<$t>()]) ),*
                }
            }
        }
    };
}

guest_struct! {
    /// struct timespec.
    pub struct Timespec [16] {
        pub tv_sec: i64 = 0,
        pub tv_nsec: i64 = 8,
    }
}

guest_struct! {
    /// struct timeval.
    pub struct Timeval [16] {
        pub tv_sec: i64 = 0,
        pub tv_usec: i64 = 8,
    }
}

guest_struct! {
    /// struct stat (x86-64).
    pub struct Stat [144] {
        pub st_dev: u64 = 0,
        pub st_ino: u64 = 8,
        pub st_nlink: u64 = 16,
        pub st_mode: u32 = 24,
        pub st_uid: u32 = 28,
        pub st_gid: u32 = 32,
        pub _pad0: u32 = 36,
        pub st_rdev: u64 = 40,
        pub st_size: i64 = 48,
        pub st_blksize: i64 = 56,
        pub st_blocks: i64 = 64,
        pub st_atime: Timespec = 72,
        pub st_mtime: Timespec = 88,
        pub st_ctime: Timespec = 104,
        pub _unused: [i64; 3] = 120,
    }
}

guest_struct! {
    /// struct statfs (x86-64).
    pub struct Statfs [120] {
        pub f_type: i64 = 0,
        pub f_bsize: i64 = 8,
        pub f_blocks: u64 = 16,
        pub f_bfree: u64 = 24,
        pub f_bavail: u64 = 32,
        pub f_files: u64 = 40,
        pub f_ffree: u64 = 48,
        pub f_fsid: [i32; 2] = 56,
        pub f_namelen: i64 = 64,
        pub f_frsize: i64 = 72,
        pub f_flags: i64 = 80,
        pub f_spare: [i64; 4] = 88,
    }
}

guest_struct! {
    /// struct iovec.
    pub struct Iovec [16] {
        pub iov_base: u64 = 0,
        pub iov_len: u64 = 8,
    }
}

guest_struct! {
    /// struct rlimit (and rlimit64: the same on x86-64).
    pub struct Rlimit [16] {
        pub rlim_cur: u64 = 0,
        pub rlim_max: u64 = 8,
    }
}

guest_struct! {
    /// struct epoll_event: packed on x86-64 (data at offset 4).
    pub struct EpollEvent [12] repr(packed) {
        pub events: u32 = 0,
        pub data: u64 = 4,
    }
}

guest_struct! {
    /// The kernel's struct sigaction as rt_sigaction takes it.
    pub struct KSigaction [32] {
        pub handler: u64 = 0,
        pub flags: u64 = 8,
        pub restorer: u64 = 16,
        pub mask: u64 = 24,
    }
}

guest_struct! {
    /// struct msghdr.
    pub struct MsgHdr [56] {
        pub msg_name: u64 = 0,
        pub msg_namelen: u32 = 8,
        pub _pad0: u32 = 12,
        pub msg_iov: u64 = 16,
        pub msg_iovlen: u64 = 24,
        pub msg_control: u64 = 32,
        pub msg_controllen: u64 = 40,
        pub msg_flags: i32 = 48,
        pub _pad1: u32 = 52,
    }
}

guest_struct! {
    /// struct itimerval.
    pub struct Itimerval [32] {
        pub it_interval: Timeval = 0,
        pub it_value: Timeval = 16,
    }
}

guest_struct! {
    /// struct tms (clock ticks).
    pub struct Tms [32] {
        pub tms_utime: i64 = 0,
        pub tms_stime: i64 = 8,
        pub tms_cutime: i64 = 16,
        pub tms_cstime: i64 = 24,
    }
}

guest_struct! {
    /// struct statx_timestamp.
    pub struct StatxTimestamp [16] {
        pub tv_sec: i64 = 0,
        pub tv_nsec: u32 = 8,
        pub _reserved: i32 = 12,
    }
}

guest_struct! {
    /// struct statx (Linux 6.x; the tail is spare).
    pub struct Statx [256] {
        pub stx_mask: u32 = 0,
        pub stx_blksize: u32 = 4,
        pub stx_attributes: u64 = 8,
        pub stx_nlink: u32 = 16,
        pub stx_uid: u32 = 20,
        pub stx_gid: u32 = 24,
        pub stx_mode: u16 = 28,
        pub _spare0: u16 = 30,
        pub stx_ino: u64 = 32,
        pub stx_size: u64 = 40,
        pub stx_blocks: u64 = 48,
        pub stx_attributes_mask: u64 = 56,
        pub stx_atime: StatxTimestamp = 64,
        pub stx_btime: StatxTimestamp = 80,
        pub stx_ctime: StatxTimestamp = 96,
        pub stx_mtime: StatxTimestamp = 112,
        pub stx_rdev_major: u32 = 128,
        pub stx_rdev_minor: u32 = 132,
        pub stx_dev_major: u32 = 136,
        pub stx_dev_minor: u32 = 140,
        pub stx_mnt_id: u64 = 144,
        pub stx_dio_mem_align: u32 = 152,
        pub stx_dio_offset_align: u32 = 156,
        pub _spare3: [u64; 12] = 160,
    }
}

guest_struct! {
    /// The fixed head of a linux_dirent64 record; the name (NUL-ended)
    /// follows at offset 19 and the record is padded to 8 bytes.
    pub struct Dirent64Head [19] repr(packed) {
        pub d_ino: u64 = 0,
        pub d_off: i64 = 8,
        pub d_reclen: u16 = 16,
        pub d_type: u8 = 18,
    }
}

guest_struct! {
    /// siginfo_t of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP
    /// raised by the CPU): the faulting address.
    pub struct SiginfoFault [128] {
        pub si_signo: i32 = 0,
        pub si_errno: i32 = 4,
        pub si_code: i32 = 8,
        pub _pad0: i32 = 12,
        pub si_addr: u64 = 16,
        pub _rest: [u64; 13] = 24,
    }
}

guest_struct! {
    /// siginfo_t of every other signal: the sender's pid and uid (for a
    /// POSIX timer its id and overrun count), then one word: si_status
    /// for SIGCHLD, si_value for sigqueue and timers.
    pub struct SiginfoProc [128] {
        pub si_signo: i32 = 0,
        pub si_errno: i32 = 4,
        pub si_code: i32 = 8,
        pub _pad0: i32 = 12,
        pub si_pid: i32 = 16,
        pub si_uid: u32 = 20,
        pub si_word: u64 = 24,
        pub _rest: [u64; 12] = 32,
    }
}

guest_struct! {
    /// siginfo_t of a file's signal (SIGIO or its F_SETSIG signal, Linux's
    /// SIL_POLL): the poll band of the event and the fd it is about.
    pub struct SiginfoPoll [128] {
        pub si_signo: i32 = 0,
        pub si_errno: i32 = 4,
        pub si_code: i32 = 8,
        pub _pad0: i32 = 12,
        pub si_band: i64 = 16,
        pub si_fd: i32 = 24,
        pub _pad1: i32 = 28,
        pub _rest: [u64; 12] = 32,
    }
}

/// Structures nested in others encode as themselves.
macro_rules! nested_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn put(self, out: &mut [u8]) {
                self.write_to(out);
            }
            fn get(b: &[u8]) -> Self {
                Self::read_from(b)
            }
        }
    )*};
}
nested_field!(Timespec, Timeval, StatxTimestamp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_round_trips_at_linux_offsets() {
        let s = Stat {
            st_dev: 0x801,
            st_ino: 12,
            st_mode: 0o100644,
            st_size: 4097,
            st_mtime: Timespec {
                tv_sec: 7,
                tv_nsec: 9,
            },
            ..Stat::default()
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 144);
        assert_eq!(&b[0..8], &0x801u64.to_le_bytes());
        assert_eq!(&b[24..28], &0o100644u32.to_le_bytes());
        assert_eq!(&b[48..56], &4097i64.to_le_bytes());
        assert_eq!(&b[88..96], &7i64.to_le_bytes());
        assert_eq!(&b[96..104], &9i64.to_le_bytes());
        assert_eq!(Stat::read_from(&b), s);
    }

    #[test]
    fn statx_and_dirent_sit_at_linux_offsets() {
        let x = Statx {
            stx_mode: 0o40755,
            stx_mtime: StatxTimestamp {
                tv_sec: 5,
                tv_nsec: 6,
                _reserved: 0,
            },
            stx_dev_minor: 3,
            ..Statx::default()
        };
        let b = x.to_bytes();
        assert_eq!(&b[28..30], &0o40755u16.to_le_bytes());
        assert_eq!(&b[112..120], &5i64.to_le_bytes());
        assert_eq!(&b[120..124], &6u32.to_le_bytes());
        assert_eq!(&b[140..144], &3u32.to_le_bytes());
        let d = Dirent64Head {
            d_ino: 9,
            d_off: 2,
            d_reclen: 24,
            d_type: 4,
        }
        .to_bytes();
        assert_eq!(d.len(), 19);
        assert_eq!((d[16], d[17], d[18]), (24, 0, 4));
    }

    #[test]
    fn epoll_event_is_packed() {
        let e = EpollEvent {
            events: 1,
            data: 0x1122_3344_5566_7788,
        };
        let b = e.to_bytes();
        assert_eq!(b.len(), 12);
        assert_eq!(&b[4..12], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(EpollEvent::read_from(&b), e);
    }
}
