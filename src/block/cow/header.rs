//! The on-disk COW header: parse every version UML ever wrote, write v3.
//!
//! Layouts (packed), as in the kernel's `cow_user.c`:
//!
//! | version | layout | byte order |
//! |---|---|---|
//! | 1 | magic, version, path\[256\], mtime u32, size u64, sectorsize | host (x86: little) |
//! | 2 | magic, version, path\[4096\], mtime u32, size u64, sectorsize | big-endian |
//! | 3 | magic, version, mtime u32, size u64, sectorsize, alignment, cow_format, path\[4096\] | big-endian |
//! | 3 "broken" | as v3 but mtime is 8 bytes (all later fields shift by 4) | big-endian |
//!
//! The magic may be in either byte order; it only decides how `version`
//! is read (the kernel reads v2/v3 fields big-endian regardless).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// "MOOO".
pub const COW_MAGIC: u32 = 0x4F4F4F4D;
/// The version this crate writes.
pub const COW_VERSION: u32 = 3;
/// Bytes of the v3 header.
pub const V3_HEADER_LEN: usize = 4128;
/// Bytes of the broken 64-bit-mtime v3 header.
pub const V3_BROKEN_HEADER_LEN: usize = 4132;
/// Bytes of the v2 header.
pub const V2_HEADER_LEN: usize = 4120;
/// Bytes of the v1 header.
pub const V1_HEADER_LEN: usize = 280;
/// Enough bytes to parse any version.
pub const MAX_HEADER_LEN: usize = V3_BROKEN_HEADER_LEN;
/// Room for the backing path in v2/v3 headers (including its NUL).
pub const PATH_LEN_V3: usize = 4096;
const PATH_LEN_V1: usize = 256;
/// The only sector size ubd uses.
pub const SECTOR_SIZE: u32 = 512;
/// The alignment new COW files get: one host page.
pub const DEFAULT_ALIGNMENT: u32 = 4096;

/// Why some bytes are not a usable COW header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CowFormatError {
    #[error("not a COW file (magic {found:#010x}, want {COW_MAGIC:#010x})")]
    NotCow { found: u32 },
    #[error("not a COW file (only {have} bytes, a header starts with 8)")]
    TooShortForMagic { have: usize },
    #[error("truncated COW v{version} header: {have} bytes, need {need}")]
    Truncated {
        version: u32,
        have: usize,
        need: usize,
    },
    #[error("unsupported COW version {0} (know 1, 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("invalid COW header: alignment is 0")]
    ZeroAlignment,
    #[error("unsupported sector size {0} in COW header (only 512)")]
    BadSectorSize(u32),
    #[error("unsupported COW format {0} (only 0, the bitmap)")]
    UnsupportedFormat(u32),
    #[error("backing file path in COW header is not NUL-terminated")]
    PathNotTerminated,
    #[error("backing file path in COW header is empty")]
    EmptyPath,
    #[error("backing file path too long for a COW header ({0} bytes, max 4095)")]
    PathTooLong(usize),
    #[error("COW v{version} bitmap is {have} bytes, a disk of {sectors} sectors needs {need}")]
    BitmapShorterThanDisk {
        version: u32,
        have: u64,
        need: u64,
        sectors: u64,
    },
    #[error("COW header sizes overflow (disk size {0} bytes)")]
    Overflow(u64),
}

/// A parsed COW header with the derived layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowHeader {
    pub version: u32,
    /// The header was the pre-2006 64-bit-mtime v3 layout.
    pub broken_v3: bool,
    /// The magic was stored in host (little-endian) order.
    pub host_order_magic: bool,
    pub backing_path: PathBuf,
    /// Backing file mtime, seconds (32 bits on disk).
    pub mtime: u32,
    /// Backing file size = virtual disk size, bytes.
    pub size: u64,
    pub sectorsize: u32,
    pub alignment: u32,
    pub cow_format: u32,
    /// Where the bitmap starts in the COW file.
    pub bitmap_offset: u64,
    /// Bitmap bytes, computed the way this version's kernel code did.
    pub bitmap_len: u64,
    /// Where sector 0's data lives in the COW file.
    pub data_offset: u64,
}

fn round_up(x: u64, align: u64) -> Option<u64> {
    x.checked_add(align - 1).map(|v| v / align * align)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn c_path(b: &[u8]) -> Result<PathBuf, CowFormatError> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or(CowFormatError::PathNotTerminated)?;
    if end == 0 {
        return Err(CowFormatError::EmptyPath);
    }
    Ok(PathBuf::from(OsStr::from_bytes(&b[..end])))
}

/// Bitmap length and data offset, like the kernel's `cow_sizes`. Versions
/// before 3 used a formula that can come out one byte short; [`CowHeader::parse`]
/// rejects such headers rather than let bits overlap the data.
pub fn cow_sizes(
    version: u32,
    size: u64,
    sectorsize: u32,
    align: u32,
    bitmap_offset: u64,
) -> Option<(u64, u64)> {
    let ss = sectorsize as u64;
    if version < 3 {
        let len = size.checked_add(ss - 1)? / (8 * ss);
        let data = round_up(bitmap_offset.checked_add(len)?, ss)?;
        Some((len, data))
    } else {
        let len = size.div_ceil(ss).div_ceil(8);
        let data = round_up(bitmap_offset.checked_add(len)?, align as u64)?;
        Some((len, data))
    }
}

impl CowHeader {
    /// Number of sectors of the virtual disk (the last may be partial).
    pub fn sectors(&self) -> u64 {
        self.size.div_ceil(self.sectorsize as u64)
    }

    /// Parses the start of a file. `NotCow`/`TooShortForMagic` mean "no COW
    /// header here" (a raw image); every other error is a damaged header.
    pub fn parse(b: &[u8]) -> Result<CowHeader, CowFormatError> {
        if b.len() < 8 {
            if b.len() >= 4 && (be32(b, 0) == COW_MAGIC || le32(b, 0) == COW_MAGIC) {
                return Err(CowFormatError::Truncated {
                    version: 0,
                    have: b.len(),
                    need: 8,
                });
            }
            return Err(CowFormatError::TooShortForMagic { have: b.len() });
        }
        let (version, host_order_magic) = if be32(b, 0) == COW_MAGIC {
            (be32(b, 4), false)
        } else if le32(b, 0) == COW_MAGIC {
            (le32(b, 4), true)
        } else {
            return Err(CowFormatError::NotCow { found: be32(b, 0) });
        };
        let need = |n: usize| {
            if b.len() < n {
                Err(CowFormatError::Truncated {
                    version,
                    have: b.len(),
                    need: n,
                })
            } else {
                Ok(())
            }
        };
        let (path, mtime, size, sectorsize, alignment, cow_format, header_len, broken) =
            match version {
                1 => {
                    need(V1_HEADER_LEN)?;
                    let path = c_path(&b[8..8 + PATH_LEN_V1])?;
                    let o = 8 + PATH_LEN_V1;
                    let ss = le32(b, o + 12);
                    (
                        path,
                        le32(b, o),
                        le64(b, o + 4),
                        ss,
                        ss,
                        0,
                        V1_HEADER_LEN,
                        false,
                    )
                }
                2 => {
                    need(V2_HEADER_LEN)?;
                    let path = c_path(&b[8..8 + PATH_LEN_V3])?;
                    let o = 8 + PATH_LEN_V3;
                    let ss = be32(b, o + 12);
                    (
                        path,
                        be32(b, o),
                        be64(b, o + 4),
                        ss,
                        ss,
                        0,
                        V2_HEADER_LEN,
                        false,
                    )
                }
                3 if be32(b.get(32..36).unwrap_or(&[1, 1, 1, 1]), 0) != 0 => {
                    need(V3_HEADER_LEN)?;
                    let path = c_path(&b[32..32 + PATH_LEN_V3])?;
                    let (ss, al, fmt) = (be32(b, 20), be32(b, 24), be32(b, 28));
                    (
                        path,
                        be32(b, 8),
                        be64(b, 12),
                        ss,
                        al,
                        fmt,
                        V3_HEADER_LEN,
                        false,
                    )
                }
                3 => {
                    // The broken layout: its cow_format (0) sits where v3's
                    // path starts. The kernel reads the 64-bit mtime with
                    // be32toh of its first half, bug for bug.
                    need(V3_BROKEN_HEADER_LEN)?;
                    let path = c_path(&b[36..36 + PATH_LEN_V3])?;
                    let (ss, al, fmt) = (be32(b, 24), be32(b, 28), be32(b, 32));
                    let header = V3_BROKEN_HEADER_LEN;
                    (path, be32(b, 8), be64(b, 16), ss, al, fmt, header, true)
                }
                v => return Err(CowFormatError::UnsupportedVersion(v)),
            };
        if alignment == 0 {
            return Err(CowFormatError::ZeroAlignment);
        }
        if sectorsize != SECTOR_SIZE {
            return Err(CowFormatError::BadSectorSize(sectorsize));
        }
        if cow_format != 0 {
            return Err(CowFormatError::UnsupportedFormat(cow_format));
        }
        let bitmap_offset = if version < 3 {
            header_len as u64
        } else {
            round_up(header_len as u64, alignment as u64).ok_or(CowFormatError::Overflow(size))?
        };
        let (bitmap_len, data_offset) =
            cow_sizes(version, size, sectorsize, alignment, bitmap_offset)
                .ok_or(CowFormatError::Overflow(size))?;
        let h = CowHeader {
            version,
            broken_v3: broken,
            host_order_magic,
            backing_path: path,
            mtime,
            size,
            sectorsize,
            alignment,
            cow_format,
            bitmap_offset,
            bitmap_len,
            data_offset,
        };
        let need_bits = h.sectors().div_ceil(8);
        if bitmap_len < need_bits {
            return Err(CowFormatError::BitmapShorterThanDisk {
                version,
                have: bitmap_len,
                need: need_bits,
                sectors: h.sectors(),
            });
        }
        data_offset
            .checked_add(size)
            .ok_or(CowFormatError::Overflow(size))?;
        Ok(h)
    }

    /// A fresh v3 header for a backing file of `size` bytes and `mtime`.
    pub fn new_v3(backing_path: &Path, mtime: u32, size: u64) -> Result<Self, CowFormatError> {
        let plen = backing_path.as_os_str().len();
        if plen >= PATH_LEN_V3 {
            return Err(CowFormatError::PathTooLong(plen));
        }
        if plen == 0 {
            return Err(CowFormatError::EmptyPath);
        }
        let bitmap_offset = round_up(V3_HEADER_LEN as u64, DEFAULT_ALIGNMENT as u64)
            .ok_or(CowFormatError::Overflow(size))?;
        let (bitmap_len, data_offset) =
            cow_sizes(3, size, SECTOR_SIZE, DEFAULT_ALIGNMENT, bitmap_offset)
                .ok_or(CowFormatError::Overflow(size))?;
        data_offset
            .checked_add(size)
            .ok_or(CowFormatError::Overflow(size))?;
        Ok(CowHeader {
            version: 3,
            broken_v3: false,
            host_order_magic: false,
            backing_path: backing_path.to_path_buf(),
            mtime,
            size,
            sectorsize: SECTOR_SIZE,
            alignment: DEFAULT_ALIGNMENT,
            cow_format: 0,
            bitmap_offset,
            bitmap_len,
            data_offset,
        })
    }

    /// The 4128 bytes of a v3 header, big-endian (what `uml_mkcow` writes).
    pub fn serialize_v3(&self) -> Result<Vec<u8>, CowFormatError> {
        let path = self.backing_path.as_os_str().as_bytes();
        if path.len() >= PATH_LEN_V3 {
            return Err(CowFormatError::PathTooLong(path.len()));
        }
        let mut b = Vec::with_capacity(V3_HEADER_LEN);
        b.extend_from_slice(&COW_MAGIC.to_be_bytes());
        b.extend_from_slice(&COW_VERSION.to_be_bytes());
        b.extend_from_slice(&self.mtime.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.sectorsize.to_be_bytes());
        b.extend_from_slice(&self.alignment.to_be_bytes());
        b.extend_from_slice(&self.cow_format.to_be_bytes());
        b.extend_from_slice(path);
        b.resize(V3_HEADER_LEN, 0);
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3(size: u64) -> CowHeader {
        CowHeader::new_v3(Path::new("/img/back.img"), 0x6b03d1f7, size).unwrap()
    }

    #[test]
    fn v3_round_trip_and_layout() {
        let h = v3(1_000_000);
        let b = h.serialize_v3().unwrap();
        assert_eq!(b.len(), V3_HEADER_LEN);
        assert_eq!(&b[0..8], &[0x4f, 0x4f, 0x4f, 0x4d, 0, 0, 0, 3]);
        assert_eq!(&b[8..12], &[0x6b, 0x03, 0xd1, 0xf7]);
        assert_eq!(&b[16..20], &[0x00, 0x0f, 0x42, 0x40]);
        assert_eq!(CowHeader::parse(&b).unwrap(), h);
        assert_eq!(h.bitmap_offset, 8192);
        assert_eq!(h.bitmap_len, 245); // ceil(1954 / 8)
        assert_eq!(h.data_offset, 12288);
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut b = v3(4096).serialize_v3().unwrap();
        assert!(matches!(
            CowHeader::parse(&b[..100]),
            Err(CowFormatError::Truncated { version: 3, .. })
        ));
        assert!(matches!(
            CowHeader::parse(&b[..6]),
            Err(CowFormatError::Truncated { .. })
        ));
        b[24..28].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(CowHeader::parse(&b), Err(CowFormatError::ZeroAlignment));
        b[0] = b'X';
        assert!(matches!(
            CowHeader::parse(&b),
            Err(CowFormatError::NotCow { .. })
        ));
        let mut c = v3(4096).serialize_v3().unwrap();
        c[7] = 9;
        assert_eq!(
            CowHeader::parse(&c),
            Err(CowFormatError::UnsupportedVersion(9))
        );
        let mut d = v3(4096).serialize_v3().unwrap();
        d[32..].fill(b'a');
        assert_eq!(CowHeader::parse(&d), Err(CowFormatError::PathNotTerminated));
    }

    #[test]
    fn huge_size_does_not_overflow() {
        let mut b = v3(4096).serialize_v3().unwrap();
        b[12..20].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(CowHeader::parse(&b).is_err());
    }

    #[test]
    fn broken_v3_is_recognised() {
        let mut b = vec![0u8; V3_BROKEN_HEADER_LEN];
        b[0..4].copy_from_slice(&COW_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[8..12].copy_from_slice(&1234u32.to_be_bytes()); // htonl(mtime) in an s64
        b[16..24].copy_from_slice(&8192u64.to_be_bytes());
        b[24..28].copy_from_slice(&512u32.to_be_bytes());
        b[28..32].copy_from_slice(&4096u32.to_be_bytes());
        b[36..40].copy_from_slice(b"/x/y");
        let h = CowHeader::parse(&b).unwrap();
        assert!(h.broken_v3);
        assert_eq!(h.mtime, 1234);
        assert_eq!(h.size, 8192);
        assert_eq!(h.backing_path, Path::new("/x/y"));
        assert_eq!(h.bitmap_offset, 8192);
        assert_eq!(h.data_offset, 12288);
    }

    #[test]
    fn v1_host_order_and_v2() {
        let mut b = vec![0u8; V1_HEADER_LEN];
        b[0..4].copy_from_slice(&COW_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..12].copy_from_slice(b"/a/b");
        b[264..268].copy_from_slice(&77u32.to_le_bytes());
        b[268..276].copy_from_slice(&(512u64 * 64).to_le_bytes());
        b[276..280].copy_from_slice(&512u32.to_le_bytes());
        let h = CowHeader::parse(&b).unwrap();
        assert!(h.host_order_magic);
        assert_eq!(
            (h.version, h.mtime, h.size, h.alignment),
            (1, 77, 32768, 512)
        );
        assert_eq!(h.bitmap_offset, 280);
        assert_eq!(h.data_offset, 512);

        let mut c = vec![0u8; V2_HEADER_LEN];
        c[0..4].copy_from_slice(&COW_MAGIC.to_be_bytes());
        c[4..8].copy_from_slice(&2u32.to_be_bytes());
        c[8..12].copy_from_slice(b"/a/c");
        c[4104..4108].copy_from_slice(&5u32.to_be_bytes());
        c[4108..4116].copy_from_slice(&(512u64 * 64).to_be_bytes());
        c[4116..4120].copy_from_slice(&512u32.to_be_bytes());
        let h = CowHeader::parse(&c).unwrap();
        assert_eq!((h.version, h.mtime, h.size), (2, 5, 32768));
        assert_eq!(
            (h.bitmap_offset, h.bitmap_len, h.data_offset),
            (4120, 8, 4608)
        );
    }

    #[test]
    fn old_formula_short_bitmap_is_rejected() {
        // 9 sectors: the v1/v2 formula gives 1 bitmap byte for 9 bits.
        let mut c = vec![0u8; V2_HEADER_LEN];
        c[0..4].copy_from_slice(&COW_MAGIC.to_be_bytes());
        c[4..8].copy_from_slice(&2u32.to_be_bytes());
        c[8..10].copy_from_slice(b"/a");
        c[4108..4116].copy_from_slice(&(512u64 * 9).to_be_bytes());
        c[4116..4120].copy_from_slice(&512u32.to_be_bytes());
        assert!(matches!(
            CowHeader::parse(&c),
            Err(CowFormatError::BitmapShorterThanDisk {
                need: 2,
                have: 1,
                ..
            })
        ));
    }
}
