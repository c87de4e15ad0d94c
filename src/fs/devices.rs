//! The character devices of /dev: the device-number encoding, the nodes a
//! fresh /dev holds (made in any `FileSystem`, normally a tmpfs: the
//! character devices and one block node per disk), and the read/write
//! semantics of the memory devices (null, zero, full, random).
//!
//! Device numbers use Linux's `new_encode_dev`, what `stat` puts in
//! `st_rdev` and `mknod` takes: `minor & 0xff | major << 8 | (minor & !0xff) << 12`
//! (so (1,3) is 0x103). glibc's 64-bit `makedev` agrees with it for
//! majors below 4096, i.e. for every number here.
#![deny(unsafe_code)]

use crate::errno::{Errno, KResult};
use crate::fs::{FileSystem, Ino, S_IFBLK, S_IFCHR};

/// Linux `new_encode_dev(MKDEV(major, minor))`.
pub fn encode_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (major as u64 & 0xfff, minor as u64 & 0xfffff);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// Linux `new_decode_dev`: (major, minor).
pub fn decode_dev(dev: u64) -> (u32, u32) {
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major as u32, minor as u32)
}

/// The character devices umlrun implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharDevice {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    /// /dev/console (5,1) and /dev/tty0 (4,0): the instance's console.
    Console,
    /// /dev/tty (5,0): the opener's controlling terminal (ENXIO if none);
    /// the kernel resolves it at open.
    Tty,
    /// /dev/watchdog (10,130): UML's harddog (kernel/files/watchdog.rs).
    Watchdog,
}

impl CharDevice {
    pub fn from_rdev(rdev: u64) -> Option<CharDevice> {
        Some(match decode_dev(rdev) {
            (1, 3) => CharDevice::Null,
            (1, 5) => CharDevice::Zero,
            (1, 7) => CharDevice::Full,
            (1, 8) => CharDevice::Random,
            (1, 9) => CharDevice::Urandom,
            (5, 1) | (4, 0) => CharDevice::Console,
            (5, 0) => CharDevice::Tty,
            (10, 130) => CharDevice::Watchdog,
            _ => return None,
        })
    }

    pub fn rdev(self) -> u64 {
        match self {
            CharDevice::Null => encode_dev(1, 3),
            CharDevice::Zero => encode_dev(1, 5),
            CharDevice::Full => encode_dev(1, 7),
            CharDevice::Random => encode_dev(1, 8),
            CharDevice::Urandom => encode_dev(1, 9),
            CharDevice::Console => encode_dev(5, 1),
            CharDevice::Tty => encode_dev(5, 0),
            CharDevice::Watchdog => encode_dev(10, 130),
        }
    }

    /// Terminals go through the tty layer, not `read`/`write` here.
    pub fn is_terminal(self) -> bool {
        matches!(self, CharDevice::Console | CharDevice::Tty)
    }

    /// A read of a memory device; `fill_random` supplies random bytes.
    /// Terminals answer ENXIO (the kernel routes them to the tty first).
    pub fn read(self, buf: &mut [u8], fill_random: &mut dyn FnMut(&mut [u8])) -> KResult<usize> {
        match self {
            CharDevice::Null => Ok(0),
            CharDevice::Zero | CharDevice::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            CharDevice::Random | CharDevice::Urandom => {
                fill_random(buf);
                Ok(buf.len())
            }
            CharDevice::Console | CharDevice::Tty | CharDevice::Watchdog => Err(Errno::ENXIO),
        }
    }

    /// A write to a memory device: swallowed, except /dev/full (ENOSPC).
    pub fn write(self, data: &[u8]) -> KResult<usize> {
        match self {
            CharDevice::Full => Err(Errno::ENOSPC),
            CharDevice::Console | CharDevice::Tty | CharDevice::Watchdog => Err(Errno::ENXIO),
            _ => Ok(data.len()),
        }
    }
}

/// Character nodes of a fresh /dev: name, major, minor, permissions.
pub const DEV_NODES: &[(&str, u32, u32, u32)] = &[
    ("console", 5, 1, 0o600),
    ("tty", 5, 0, 0o666),
    ("tty0", 4, 0, 0o620),
    ("ptmx", 5, 2, 0o666),
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("watchdog", 10, 130, 0o600),
];

/// Symlinks of a fresh /dev.
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Permissions of a disk's node: devtmpfs's default for a block device
/// (0600 root:root; a udev would relax it to the `disk` group).
pub const DISK_NODE_MODE: u32 = 0o600;

/// A block device node for /dev: its name and (major, minor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockNode {
    pub name: String,
    pub major: u32,
    pub minor: u32,
}

/// Fills the root of `fs` (to be mounted on /dev) with the standard nodes,
/// one block node per disk, the pts/ and shm/ directories and the fd
/// symlinks, all owned by root.
pub fn populate_dev(fs: &dyn FileSystem, disks: &[BlockNode]) -> KResult<()> {
    let root: Ino = fs.root();
    for &(name, major, minor, perm) in DEV_NODES {
        fs.create(
            root,
            name.as_bytes(),
            S_IFCHR | perm,
            0,
            0,
            encode_dev(major, minor),
        )?;
    }
    for d in disks {
        add_block_node(fs, d)?;
    }
    fs.mkdir(root, b"pts", 0o755, 0, 0)?;
    fs.mkdir(root, b"shm", 0o1777, 0, 0)?;
    for &(name, target) in DEV_LINKS {
        fs.symlink(root, name.as_bytes(), target.as_bytes(), 0, 0)?;
    }
    Ok(())
}

/// Creates the node of one disk in a /dev (boot, or a hot-added disk).
pub fn add_block_node(fs: &dyn FileSystem, d: &BlockNode) -> KResult<Ino> {
    fs.create(
        fs.root(),
        d.name.as_bytes(),
        S_IFBLK | DISK_NODE_MODE,
        0,
        0,
        encode_dev(d.major, d.minor),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_encoding_matches_linux() {
        assert_eq!(encode_dev(1, 3), 0x103);
        assert_eq!(encode_dev(5, 1), 0x501);
        assert_eq!(encode_dev(4, 0), 0x400);
        // Big minors spill above bit 20, as new_encode_dev does.
        assert_eq!(encode_dev(8, 0x123), 0x10_0823);
        assert_eq!(encode_dev(259, 0), 0x10300);
        for &(maj, min) in &[(0, 0), (1, 3), (136, 0), (4095, 0xfffff), (8, 300)] {
            assert_eq!(decode_dev(encode_dev(maj, min)), (maj, min));
        }
    }

    #[test]
    fn from_rdev_round_trips() {
        use CharDevice::*;
        for d in [Null, Zero, Full, Random, Urandom, Console, Tty] {
            assert_eq!(CharDevice::from_rdev(d.rdev()), Some(d));
        }
        assert_eq!(CharDevice::from_rdev(encode_dev(4, 0)), Some(Console));
        assert_eq!(CharDevice::from_rdev(encode_dev(8, 0)), None);
        assert!(Console.is_terminal() && !Null.is_terminal());
    }

    #[test]
    fn memory_device_semantics() {
        use CharDevice::*;
        let mut rng = |b: &mut [u8]| b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8 + 1);
        let mut buf = [9u8; 4];
        assert_eq!(Null.read(&mut buf, &mut rng), Ok(0));
        assert_eq!(Null.write(b"abc"), Ok(3));
        assert_eq!(Zero.read(&mut buf, &mut rng), Ok(4));
        assert_eq!(buf, [0; 4]);
        assert_eq!(Zero.write(b"abc"), Ok(3));
        buf = [9; 4];
        assert_eq!(Full.read(&mut buf, &mut rng), Ok(4));
        assert_eq!(buf, [0; 4]);
        assert_eq!(Full.write(b"abc"), Err(Errno::ENOSPC));
        assert_eq!(Urandom.read(&mut buf, &mut rng), Ok(4));
        assert_eq!(buf, [1, 2, 3, 4]);
        assert_eq!(Random.write(b"seed"), Ok(4));
        assert_eq!(Console.read(&mut buf, &mut rng), Err(Errno::ENXIO));
        assert_eq!(Tty.write(b"x"), Err(Errno::ENXIO));
    }
}
