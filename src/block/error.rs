//! `BlockError`: everything that can go wrong opening or using a disk,
//! each message naming the file and the values involved.

use std::io;
use std::path::{Path, PathBuf};

use super::cow::CowFormatError;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "{path} is on a read-only file system; use the r flag (ubd<N>r=) to open it read-only"
    )]
    ReadOnlyFs { path: PathBuf },
    #[error("{path} is in use by another instance (locked{}); use the c flag (ubd<N>c=) to share it", pid.map(|p| format!(" by pid {p}")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<i32> },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: PathBuf,
        source: CowFormatError,
    },
    #[error("COW file {cow} names backing file {backing}, which cow_backing={policy} does not open (beside: only files in the COW file's directory); to use it, name it on the command line: ubd<N>={cow},{backing}")]
    BackingNotAllowed {
        cow: PathBuf,
        backing: PathBuf,
        policy: &'static str,
    },
    #[error("backing file {backing} of COW file {cow}: {source}")]
    BackingMissing {
        cow: PathBuf,
        backing: PathBuf,
        source: io::Error,
    },
    #[error("size mismatch ({header} vs {actual}) of COW header vs backing file: {cow} says {header} bytes, {backing} has {actual}")]
    SizeMismatch {
        cow: PathBuf,
        backing: PathBuf,
        header: u64,
        actual: u64,
    },
    #[error("mtime mismatch ({header} vs {actual}) of COW header vs backing file: {cow} records {header}, {backing} was modified at {actual}")]
    MtimeMismatch {
        cow: PathBuf,
        backing: PathBuf,
        header: i64,
        actual: i64,
    },
    #[error("{path} is too short: {have} bytes, but its COW bitmap ends at {need} (bitmap shorter than the disk)")]
    BitmapTruncated { path: PathBuf, have: u64, need: u64 },
    #[error("{path} is not a COW file, yet a backing file ({backing}) was given")]
    NotCowButBacking { path: PathBuf, backing: PathBuf },
    #[error("{path} already exists; not overwriting it")]
    Exists { path: PathBuf },
    #[error("{path} is read-only (r flag)")]
    ReadOnly { path: PathBuf },
    #[error("access past the end of {path}: {len} bytes at {offset}, disk is {size} bytes")]
    OutOfRange {
        path: PathBuf,
        offset: u64,
        len: u64,
        size: u64,
    },
}

impl BlockError {
    /// The errno a guest sees for this failure.
    pub fn errno(&self) -> crate::errno::Errno {
        use crate::errno::Errno;
        match self {
            BlockError::ReadOnly { .. } | BlockError::ReadOnlyFs { .. } => Errno::EROFS,
            BlockError::OutOfRange { .. } => Errno::ENXIO,
            _ => Errno::EIO,
        }
    }
}

/// Maps an io::Error from `op` on `path` to `BlockError::Io`.
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> BlockError + 'a {
    move |source| BlockError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
