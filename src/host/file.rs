//! Host files for disk images: positional I/O, whole-file fcntl locks,
//! O_SYNC opens, metadata (size, mtime) and read-only file-system checks.
//!
//! Locks are Linux open-file-description locks (`F_OFD_SETLK`): they belong
//! to the open file, not the process, so two opens inside one umlrun
//! conflict too, and closing some other fd of the same file does not drop
//! them (the POSIX `F_SETLK` trap). They also conflict with the classic
//! `F_SETLK` locks a `linux.uml` takes on the same file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg};

/// Opens a disk file: read-only (`O_RDONLY`) or read-write, optionally `O_SYNC`.
pub fn open_disk(path: &Path, writable: bool, sync: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(writable);
    if sync {
        opts.custom_flags(libc::O_SYNC);
    }
    opts.open(path)
}

/// Creates a new file read-write; fails if it exists (`O_CREAT|O_EXCL`).
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// Reads exactly `buf.len()` bytes at `offset`; EOF first is `UnexpectedEof`.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Reads up to `buf.len()` bytes at `offset`, stopping only at EOF.
pub fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes all of `data` at `offset`.
pub fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(data, offset)
}

/// `fdatasync`: the data written so far reaches the disk.
pub fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Frees `len` bytes at `offset` of `file` (`fallocate` PUNCH_HOLE,
/// size kept): they read back as zeros. `Unsupported` where the host file
/// system cannot punch.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    if n == 0 {
        return Ok(());
    }
    fallocate(
        file.as_raw_fd(),
        FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
        off,
        n,
    )
    .map_err(|e| match e {
        nix::errno::Errno::EOPNOTSUPP => io::Error::from(io::ErrorKind::Unsupported),
        e => io::Error::from_raw_os_error(e as i32),
    })
}

/// The two facts a COW header records about its backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// `stat` of a path (follows symlinks).
pub fn stat_path(path: &Path) -> io::Result<FileStat> {
    let m = std::fs::metadata(path)?;
    Ok(FileStat {
        size: m.len(),
        mtime: m.mtime(),
    })
}

/// `fstat` of an open file.
pub fn stat_file(file: &File) -> io::Result<FileStat> {
    let m = file.metadata()?;
    Ok(FileStat {
        size: m.len(),
        mtime: m.mtime(),
    })
}

/// Which whole-file lock to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `F_RDLCK`: many readers, no writer.
    Shared,
    /// `F_WRLCK`: one writer, nobody else.
    Exclusive,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Someone holds a conflicting lock; the pid when the holder is a
    /// process-owned (POSIX) lock, `None` for another open file description.
    Held { pid: Option<i32> },
    /// fcntl failed for another reason.
    Io(io::Error),
}

fn whole_file_flock(kind: i16) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Takes a whole-file lock without waiting, held until the file is closed.
pub fn try_lock(file: &File, kind: LockKind) -> Result<(), LockError> {
    let ty = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    } as i16;
    let fl = whole_file_flock(ty);
    match fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl)) {
        Ok(_) => Ok(()),
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EACCES) => {
            let mut probe = whole_file_flock(ty);
            let pid = match fcntl(file.as_raw_fd(), FcntlArg::F_OFD_GETLK(&mut probe)) {
                Ok(_) if probe.l_type != libc::F_UNLCK as i16 && probe.l_pid > 0 => {
                    Some(probe.l_pid)
                }
                _ => None,
            };
            Err(LockError::Held { pid })
        }
        Err(e) => Err(LockError::Io(io::Error::from(e))),
    }
}

/// True if the error is EROFS (write open on a read-only file system).
pub fn is_erofs(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EROFS)
}

/// True if `path` lies on a file system mounted read-only (statvfs ST_RDONLY).
pub fn is_read_only_fs(path: &Path) -> io::Result<bool> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// An absolute path the way UML's `absolutize` makes one: the directory
/// resolved (symlinks and `..` gone), the last component kept as given.
pub fn absolute_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(std::fs::canonicalize(dir)?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_io_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = create_new(&p).unwrap();
        write_all_at(&f, b"hello", 10).unwrap();
        let mut buf = [0u8; 5];
        read_exact_at(&f, &mut buf, 10).unwrap();
        assert_eq!(&buf, b"hello");
        let mut big = [0u8; 32];
        assert_eq!(read_up_to(&f, &mut big, 8).unwrap(), 7);
        assert_eq!(
            read_exact_at(&f, &mut big, 8).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(stat_file(&f).unwrap().size, 15);
        assert!(create_new(&p).is_err());
    }

    #[test]
    fn ofd_locks_conflict_within_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let a = open_disk(&p, true, false).unwrap();
        let b = open_disk(&p, true, false).unwrap();
        try_lock(&a, LockKind::Exclusive).unwrap();
        assert!(matches!(
            try_lock(&b, LockKind::Shared),
            Err(LockError::Held { .. })
        ));
        drop(a);
        try_lock(&b, LockKind::Exclusive).unwrap();
        let c = open_disk(&p, false, false).unwrap();
        assert!(matches!(
            try_lock(&c, LockKind::Shared),
            Err(LockError::Held { .. })
        ));
    }

    #[test]
    fn shared_locks_coexist() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let a = open_disk(&p, false, false).unwrap();
        let b = open_disk(&p, false, false).unwrap();
        try_lock(&a, LockKind::Shared).unwrap();
        try_lock(&b, LockKind::Shared).unwrap();
    }

    #[test]
    fn absolute_path_keeps_name() {
        let dir = tempfile::tempdir().unwrap();
        let abs = absolute_path(&dir.path().join("x.img")).unwrap();
        assert!(abs.is_absolute());
        assert!(abs.ends_with("x.img"));
        assert!(!is_read_only_fs(dir.path()).unwrap());
    }
}
