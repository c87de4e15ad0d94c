//! Open file descriptions: what an fd points at, shared by dup and fork.

use std::cell::RefCell;
use std::rc::Rc;

use super::mount::Node;
use crate::fs::devices::CharDevice;
use crate::fs::DirEntry;

pub const O_ACCMODE: u32 = 0o3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;

/// What an open file is.
pub enum FileKind {
    /// A regular file (or a procfs file) read and written through its
    /// file system.
    Regular(Node),
    /// A directory; `entries` is the listing taken at the first getdents.
    Directory {
        node: Node,
        entries: Option<Vec<DirEntry>>,
    },
    /// One end of a pipe or fifo (the kernel's pipe table index).
    Pipe { id: usize, write: bool },
    /// The console terminal.
    Console,
    /// /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom.
    Device(CharDevice),
}

pub struct OpenFile {
    pub kind: FileKind,
    /// O_* status flags (access mode, O_APPEND, O_NONBLOCK).
    pub flags: u32,
    pub offset: u64,
    /// The canonical path it was opened by (for /proc/<pid>/fd, fchdir,
    /// openat relative to it).
    pub path: Vec<u8>,
}

pub type OpenFileRef = Rc<RefCell<OpenFile>>;

impl OpenFile {
    pub fn new(kind: FileKind, flags: u32, path: Vec<u8>) -> OpenFileRef {
        Rc::new(RefCell::new(OpenFile {
            kind,
            flags: flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
            offset: 0,
            path,
        }))
    }

    pub fn readable(&self) -> bool {
        self.flags & O_ACCMODE != O_WRONLY && self.flags & O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        self.flags & O_ACCMODE != O_RDONLY && self.flags & O_PATH == 0
    }

    pub fn nonblocking(&self) -> bool {
        self.flags & O_NONBLOCK != 0
    }

    pub fn node(&self) -> Option<Node> {
        match &self.kind {
            FileKind::Regular(n) => Some(*n),
            FileKind::Directory { node, .. } => Some(*node),
            _ => None,
        }
    }
}
