//! Open files: the kernel's side of the `FileDescription` trait
//! (`crate::vfs::file`): one file per kind, and the calls the syscall
//! layer makes on any open file (access checks, then the kind's method).
//!
//! | file          | kind |
//! |---------------|------|
//! | `regular.rs`  | regular files: all data through the page cache |
//! | `procfile.rs` | files of a generated file system (/proc, cgroup2): read afresh; mountinfo and swaps poll |
//! | `dir.rs`      | directories: listing, seeking |
//! | `pipe.rs`     | pipe and fifo ends |
//! | `tty.rs`      | the console terminal |
//! | `pty.rs`      | pseudo-terminal master (/dev/ptmx) and slave (/dev/pts/N) ends |
//! | `blockdev.rs` | block devices (/dev/ubdX): data straight to the disk, block ioctls, O_EXCL claims |
//! | `chardev.rs`  | memory character devices (null, zero, full, random) |
//! | `eventfd.rs`  | eventfd: a counter as a file, and its syscalls |
//! | `socket.rs`   | AF_UNIX sockets (the state machine is `crate::net::unix`) |
//! | `unix_gc.rs`  | the collector of AF_UNIX sockets in flight in unreachable cycles (SCM_RIGHTS) |
//! | `inet.rs`     | AF_INET/AF_INET6 sockets (the stack is `crate::net::inet`) |
//! | `packet.rs`   | AF_PACKET sockets: eth0's frames (the socket is `crate::net::packet`) |
//! | `netlink.rs`  | AF_NETLINK NETLINK_ROUTE sockets: port ids, requests answered from the interfaces (the protocol is `crate::net::netlink`) |
//! | `rawip.rs`    | AF_INET SOCK_RAW IPPROTO_RAW: send-only raw IPv4, the interface ioctls |
//! | `epoll.rs`    | epoll instances (the interest list is `crate::net::epoll`) |
//! | `timerfd.rs`  | timerfd: expirations of a timer as a file, and its syscalls |
//! | `signalfd.rs` | signalfd: the caller's pending signals as a file, and its syscalls |
//! | `pidfd.rs`    | pidfd: a process as a file (pidfd_open, pidfd_send_signal) |
//! | `inotify.rs`  | inotify: watches, the event queue, the hooks the VFS syscalls call |
//! | `dnotify.rs`  | dnotify (fcntl F_NOTIFY): directory watches fed by inotify's hooks, the file's signal (send_sigio) |
//! | `memfd.rs`    | memfd_create: an unnamed tmpfs file, with seals |
//! | `fdinfo.rs`   | /proc/<pid>/fdinfo/<fd> and /proc/net/unix text |
//! | `hub.rs`      | what those need from the kernel: timerfd ids, signal, exit, mount-table and swap wait queues |
//! | `watchdog.rs` | /dev/watchdog (UML's harddog): a hang is a mconsole "hang" notify |
//!
//! A new kind is one new file implementing `FileDescription` plus the
//! place that creates it: its syscalls' rows in `syscalls/table.rs`
//! (eventfd: `eventfd.rs` holds both the kind and its syscalls), or a
//! case in `do_open` for an inode type. A kind that can make a reader or
//! poller wait owns a `WaitQueue` and returns it from `wait_queue`; the
//! syscall layer then sleeps on it (`syscalls::block_on`, poll/select).

pub mod blockdev;
pub mod chardev;
pub mod dir;
pub mod dnotify;
pub mod epoll;
pub mod eventfd;
pub mod fdinfo;
pub mod hub;
pub mod inet;
pub mod inotify;
pub mod memfd;
pub mod netlink;
pub mod packet;
pub mod pidfd;
pub mod pipe;
pub mod procfile;
pub mod pty;
pub mod rawip;
pub mod regular;
pub mod signalfd;
pub mod socket;
pub mod timerfd;
pub mod tty;
pub mod unix_gc;
pub mod watchdog;

use std::rc::Rc;

use super::core::Kernel;
use super::task::Pid;
use crate::errno::{Errno, KResult};
use crate::fs::Stat;
use crate::vfs::file::{ops_of, Io};
use crate::vfs::OpenFileRef;

pub const POLLIN: u32 = 0x1;
pub const POLLPRI: u32 = 0x2;
pub const POLLOUT: u32 = 0x4;
pub const POLLERR: u32 = 0x8;
pub const POLLHUP: u32 = 0x10;
pub const POLLNVAL: u32 = 0x20;
pub const POLLRDNORM: u32 = 0x40;
pub const POLLWRNORM: u32 = 0x100;

impl Kernel {
    /// read(2) on an open file at its offset (`pos`: pread's offset).
    /// EAGAIN means "would block"; the syscall layer decides to sleep.
    pub fn file_read(
        &mut self,
        tid: Pid,
        f: &OpenFileRef,
        buf: &mut [u8],
        pos: Option<u64>,
    ) -> KResult<usize> {
        if !f.borrow().readable() {
            return Err(Errno::EBADF);
        }
        let ops = ops_of(f);
        let n = ops.read(self, &Io { tid, file: f, pos }, buf)?;
        if n > 0 && self.evhub.fs_watched() {
            if let Some(node) = ops.node() {
                let path = f.borrow().path.clone();
                self.notify_file(tid, &path, node, inotify::IN_ACCESS);
            }
        }
        Ok(n)
    }

    /// write(2).
    pub fn file_write(
        &mut self,
        tid: Pid,
        f: &OpenFileRef,
        data: &[u8],
        pos: Option<u64>,
    ) -> KResult<usize> {
        if !f.borrow().writable() {
            return Err(Errno::EBADF);
        }
        let ops = ops_of(f);
        let n = ops.write(self, &Io { tid, file: f, pos }, data)?;
        if n > 0 && self.evhub.fs_watched() {
            if let Some(node) = ops.node() {
                let path = f.borrow().path.clone();
                self.notify_path(tid, &path, node, inotify::IN_MODIFY);
            }
        }
        Ok(n)
    }

    /// poll(2) readiness bits of an open file.
    pub fn file_poll(&mut self, f: &OpenFileRef) -> u32 {
        let ops = ops_of(f);
        ops.poll(self)
    }

    /// An fd referring to `f` was closed. The last reference ends the open
    /// file description (its kind's `release`: pipe ends close, waking the
    /// other side; unlinked files may go).
    pub fn release_file(&mut self, f: OpenFileRef) {
        if Rc::strong_count(&f) > 1 {
            // A socket's descriptor went but its file lives on (in flight,
            // perhaps only in its own queue): collect such cycles.
            let sock = ops_of(&f).as_socket().is_some();
            drop(f);
            if sock {
                unix_gc::collect(self);
            }
            return;
        }
        self.notify_close(&f);
        let ops = ops_of(&f);
        let (key, id) = (Self::lock_key(&f), f.borrow().id);
        drop(f);
        self.locks_file_released(key, id);
        ops.release(self);
    }

    /// An fd of fd table `table` referring to `f` was closed: the table's
    /// POSIX locks on the file go, then the reference (`release_file`).
    pub fn close_entry(&mut self, table: u64, f: OpenFileRef) {
        self.locks_fd_closed(table, &f);
        self.dnotify_flush(table, &f);
        self.release_file(f);
    }
}

/// What fstat shows of a file on Linux's anonymous inode (eventfd, epoll):
/// no type bits, mode 0600, and the anon_inode file system's device.
pub fn anon_inode_stat() -> (Stat, u64) {
    let st = Stat {
        mode: 0o600,
        nlink: 1,
        blksize: 4096,
        ..Default::default()
    };
    (st, 0xd)
}

/// The kind `T` behind open-file operations, if that is what they are.
pub fn kind<T: 'static>(ops: &Rc<dyn crate::vfs::file::FileDescription>) -> Option<&T> {
    ops.as_any().and_then(|a| a.downcast_ref::<T>())
}
