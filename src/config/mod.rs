//! The umlrun command line, in UML's syntax (`mem=256M ubd0=cow,backing`).
//!
//! The types here are shared with `block` (which opens `UbdSpec`s) and the
//! boot code; the parser fills them in and every error names its switch.

use std::path::PathBuf;

/// How a ubd device brings disk pages into the guest's page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UbdMode {
    /// `pread`/`pwrite` into page-cache frames (UML's default).
    #[default]
    Copy,
    /// 4 KiB pages that lie aligned in one host file are mapped from it.
    Mmap,
}

/// The flags after `ubd<N>`: `r`, `s`, `d`, `c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UbdFlags {
    /// `r`: the device is read-only.
    pub read_only: bool,
    /// `s`: writes are O_SYNC.
    pub sync: bool,
    /// `d`: the file is a plain image, never a COW file.
    pub no_cow: bool,
    /// `c`: shared; do not take the exclusive lock.
    pub shared: bool,
}

/// One `ubd<N><flags>=<file>[,<backing>]` switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbdSpec {
    /// Device index: 0 for ubd0/ubda.
    pub index: u8,
    pub flags: UbdFlags,
    /// The COW file, or the raw image.
    pub file: PathBuf,
    /// The backing file named on the command line; it wins over the header.
    pub backing: Option<PathBuf>,
    pub mode: UbdMode,
}
