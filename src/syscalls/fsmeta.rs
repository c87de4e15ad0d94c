//! The byte layouts of the x86-64 structures the file syscalls fill:
//! struct stat, struct statx, struct statfs, linux_dirent64.

use crate::abi::layout::{self, GuestStruct};
use crate::fs::{DirEntry, Stat, StatFs};

/// struct stat (144 bytes), as `abi::layout::Stat`.
pub fn stat_bytes(st: &Stat, dev: u64) -> [u8; 144] {
    let ts = |t: crate::fs::Timespec| layout::Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec as i64,
    };
    let s = layout::Stat {
        st_dev: dev,
        st_ino: st.ino,
        st_nlink: st.nlink as u64,
        st_mode: st.mode,
        st_uid: st.uid,
        st_gid: st.gid,
        st_rdev: st.rdev,
        st_size: st.size as i64,
        st_blksize: if st.blksize == 0 {
            4096
        } else {
            st.blksize as i64
        },
        st_blocks: st.blocks as i64,
        st_atime: ts(st.atime),
        st_mtime: ts(st.mtime),
        st_ctime: ts(st.ctime),
        ..layout::Stat::default()
    };
    let mut b = [0u8; 144];
    s.write_to(&mut b);
    b
}

/// struct statx (256 bytes), as `abi::layout::Statx`, with the basic
/// fields.
pub fn statx_bytes(st: &Stat, dev: u64) -> [u8; 256] {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    let ts = |t: crate::fs::Timespec| layout::StatxTimestamp {
        tv_sec: t.sec,
        tv_nsec: t.nsec,
        _reserved: 0,
    };
    let (rmaj, rmin) = crate::fs::devices::decode_dev(st.rdev);
    let (dmaj, dmin) = crate::fs::devices::decode_dev(dev);
    let x = layout::Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: if st.blksize == 0 { 4096 } else { st.blksize },
        stx_nlink: st.nlink,
        stx_uid: st.uid,
        stx_gid: st.gid,
        stx_mode: st.mode as u16,
        stx_ino: st.ino,
        stx_size: st.size,
        stx_blocks: st.blocks,
        stx_atime: ts(st.atime),
        stx_ctime: ts(st.ctime),
        stx_mtime: ts(st.mtime),
        stx_rdev_major: rmaj,
        stx_rdev_minor: rmin,
        stx_dev_major: dmaj,
        stx_dev_minor: dmin,
        ..layout::Statx::default()
    };
    let mut b = [0u8; 256];
    x.write_to(&mut b);
    b
}

/// ST_VALID: f_flags holds the mount flags (Linux 2.6.36 on).
const ST_VALID: i64 = 0x20;
/// ST_RDONLY: the mount is read-only.
const ST_RDONLY: i64 = 1;

/// struct statfs (120 bytes), as `abi::layout::Statfs`; f_flags from the
/// mount (`read_only`), so statvfs(3) needs no /proc/mounts.
pub fn statfs_bytes(s: &StatFs, read_only: bool) -> [u8; 120] {
    let f = layout::Statfs {
        f_type: s.fs_type as i64,
        f_bsize: s.block_size as i64,
        f_blocks: s.blocks,
        f_bfree: s.blocks_free,
        f_bavail: s.blocks_avail,
        f_files: s.files,
        f_ffree: s.files_free,
        f_namelen: s.name_max as i64,
        f_frsize: s.block_size as i64,
        f_flags: ST_VALID | if read_only { ST_RDONLY } else { 0 },
        ..layout::Statfs::default()
    };
    let mut b = [0u8; 120];
    f.write_to(&mut b);
    b
}

/// Packs directory entries from `start` into a getdents64 buffer of
/// `cap` bytes. Returns the bytes and the index of the next entry.
pub fn dirents64(entries: &[DirEntry], start: usize, cap: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut i = start;
    while i < entries.len() {
        let e = &entries[i];
        let reclen = (19 + e.name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > cap {
            break;
        }
        let at = out.len();
        out.resize(at + reclen, 0);
        let head = layout::Dirent64Head {
            d_ino: e.ino,
            d_off: (i + 1) as i64,
            d_reclen: reclen as u16,
            d_type: e.file_type,
        };
        head.write_to(&mut out[at..at + layout::Dirent64Head::SIZE]);
        out[at + 19..at + 19 + e.name.len()].copy_from_slice(&e.name);
        i += 1;
    }
    (out, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirent_records_are_aligned_and_chain() {
        let es = vec![
            DirEntry {
                ino: 2,
                name: b".".to_vec(),
                file_type: 4,
            },
            DirEntry {
                ino: 11,
                name: b"lost+found".to_vec(),
                file_type: 4,
            },
        ];
        let (b, next) = dirents64(&es, 0, 4096);
        assert_eq!(next, 2);
        let r0 = u16::from_le_bytes([b[16], b[17]]) as usize;
        assert_eq!(r0 % 8, 0);
        assert_eq!(&b[r0 + 19..r0 + 29], b"lost+found");
        assert_eq!(b[r0 + 29], 0);
        // A buffer too small for the second entry stops after the first.
        let (b2, next2) = dirents64(&es, 0, r0 + 8);
        assert_eq!((b2.len(), next2), (r0, 1));
    }

    #[test]
    fn stat_layout() {
        let st = Stat {
            ino: 12,
            mode: 0o100644,
            size: 99,
            nlink: 1,
            ..Default::default()
        };
        let b = stat_bytes(&st, 0x801);
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 12);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 0o100644);
        assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 99);
    }
}
