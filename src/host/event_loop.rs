//! The host event loop: the one place the kernel thread sleeps. Every host
//! source the guest depends on — the console's input today; the
//! management-console socket, tap devices and host sockets later — is
//! registered in one epoll instance, and the scheduler waits on it with
//! the earliest guest deadline as the timeout (see `kernel/timers.rs`).
//! Nothing wakes the host periodically: an idle instance sleeps in
//! `epoll_wait` until input arrives, a deadline passes or umlrun gets a
//! signal.
//!
//! ## Registering a host source
//!
//! 1. Pick a [`Token`] (a number the owner chooses; the kernel keeps the
//!    table of what each token means, `Kernel::host_sources`, and
//!    `Kernel::register_host_source` picks it).
//! 2. `register(fd, Interest::READ, token)` (or `WRITE`, or both); the
//!    fd stays owned by the caller, who must `deregister` it before
//!    closing it. Readiness is level-triggered: an event repeats until
//!    the owner has read (or written) what there is.
//! 3. [`EventLoop::wait`] returns [`Ready`] records; the kernel dispatches
//!    each to the owner of its token (`Kernel::poll_host`),
//!    which reads without blocking and wakes the guest tasks concerned.
//!
//! Host signals that must wake the loop (termination requests, terminal
//! resizes) write a byte to an internal pipe from their handler
//! ([`notify_from_signal`]), so they end the wait whichever thread the
//! host delivered them to.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// What the owner of a registered fd calls its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

/// Reserved for the loop's own wake-up pipe.
const WAKE_TOKEN: u64 = u64::MAX;

/// The readiness a registration asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };

    fn bits(self) -> u32 {
        let mut b = 0;
        if self.read {
            b |= libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32;
        }
        if self.write {
            b |= libc::EPOLLOUT as u32;
        }
        b
    }
}

/// One source's readiness, as `wait` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
    /// The peer hung up or the fd is in error: the owner should read to
    /// find out (end of file, an error) and deregister.
    pub hangup: bool,
}

/// The write end of the wake pipe, for signal handlers (-1: none yet).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Wakes the loop from a signal handler (async-signal-safe: one write(2)
/// of one byte to a non-blocking pipe; a full pipe already wakes it).
pub fn notify_from_signal() {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) of one byte from a live stack variable.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

pub struct EventLoop {
    epfd: RawFd,
    wake_read: RawFd,
    wake_write: RawFd,
    buf: Vec<libc::epoll_event>,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl EventLoop {
    /// An epoll instance with its wake pipe registered.
    pub fn new() -> io::Result<EventLoop> {
        // SAFETY: epoll_create1 and pipe2 create fds we own from here on.
        let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        let mut p = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two fds into `p`.
        if let Err(e) =
            cvt(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })
        {
            // SAFETY: closing the epoll fd created above.
            unsafe { libc::close(epfd) };
            return Err(e);
        }
        let lp = EventLoop {
            epfd,
            wake_read: p[0],
            wake_write: p[1],
            buf: Vec::with_capacity(16),
        };
        lp.ctl(libc::EPOLL_CTL_ADD, p[0], libc::EPOLLIN as u32, WAKE_TOKEN)?;
        Ok(lp)
    }

    /// Makes this the loop that [`notify_from_signal`] wakes (the
    /// kernel's, once per process).
    pub fn wake_on_signals(&self) {
        WAKE_FD.store(self.wake_write, Ordering::SeqCst);
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: epoll_ctl reads one epoll_event from `ev`.
        cvt(unsafe { libc::epoll_ctl(self.epfd, op, fd, &mut ev) }).map(|_| ())
    }

    /// Watches `fd` for `interest`; events come back with `token`. Fails
    /// (EPERM) for fds epoll cannot watch, such as regular files: those
    /// are always ready and their owner must read them without waiting.
    pub fn register(&mut self, fd: RawFd, interest: Interest, token: Token) -> io::Result<()> {
        assert_ne!(token.0, WAKE_TOKEN, "token reserved for the wake pipe");
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest.bits(), token.0)
    }

    /// Changes what a registered fd is watched for.
    pub fn modify(&mut self, fd: RawFd, interest: Interest, token: Token) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest.bits(), token.0)
    }

    /// Stops watching `fd` (before its owner closes it).
    pub fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout` (None: until something happens) and appends
    /// the ready sources to `out`. Returns early, with nothing, when a
    /// signal arrives. Wake-pipe bytes are drained, never reported.
    pub fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Ready>) {
        let ms = match timeout {
            None => -1,
            // Round up: waking a little early would only spin.
            Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        self.buf.clear();
        let cap = self.buf.capacity().max(16);
        // SAFETY: epoll_wait writes at most `cap` events into the
        // vector's spare capacity; we set the length to what it wrote.
        let n =
            unsafe { libc::epoll_wait(self.epfd, self.buf.as_mut_ptr(), cap as libc::c_int, ms) };
        if n <= 0 {
            return;
        }
        // SAFETY: the kernel initialised the first `n` entries.
        unsafe { self.buf.set_len(n as usize) };
        for ev in &self.buf {
            let (bits, token) = (ev.events, ev.u64);
            if token == WAKE_TOKEN {
                let mut b = [0u8; 64];
                // SAFETY: reading into a stack buffer from our own pipe.
                while unsafe { libc::read(self.wake_read, b.as_mut_ptr().cast(), b.len()) } > 0 {}
                continue;
            }
            out.push(Ready {
                token: Token(token),
                readable: bits & libc::EPOLLIN as u32 != 0,
                writable: bits & libc::EPOLLOUT as u32 != 0,
                hangup: bits & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32 != 0,
            });
        }
    }

    /// Is any registered source ready now (without waiting)? Level
    /// triggering leaves the event for the next `wait`.
    pub fn any_ready(&mut self) -> bool {
        let mut ev = [libc::epoll_event { events: 0, u64: 0 }];
        // SAFETY: epoll_wait writes at most one event into `ev`.
        let n = unsafe { libc::epoll_wait(self.epfd, ev.as_mut_ptr(), 1, 0) };
        n > 0
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let _ = WAKE_FD.compare_exchange(self.wake_write, -1, Ordering::SeqCst, Ordering::SeqCst);
        // SAFETY: closing the fds this loop created and alone owns.
        unsafe {
            libc::close(self.wake_write);
            libc::close(self.wake_read);
            libc::close(self.epfd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_pipe_becomes_ready_and_a_timeout_passes() {
        let mut lp = EventLoop::new().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsRawFd;
        lp.register(r.as_raw_fd(), Interest::READ, Token(7))
            .unwrap();
        let mut out = Vec::new();
        let t = Instant::now();
        lp.wait(Some(Duration::from_millis(30)), &mut out);
        assert!(out.is_empty());
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(!lp.any_ready());
        nix::unistd::write(&w, b"x").unwrap();
        assert!(lp.any_ready());
        lp.wait(None, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].token, Token(7));
        assert!(out[0].readable);
        lp.deregister(r.as_raw_fd()).unwrap();
        out.clear();
        lp.wait(Some(Duration::ZERO), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_signal_handler_notification_ends_the_wait() {
        let mut lp = EventLoop::new().unwrap();
        lp.wake_on_signals();
        let other = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            notify_from_signal();
        });
        let mut out = Vec::new();
        let t = Instant::now();
        lp.wait(Some(Duration::from_secs(10)), &mut out);
        other.join().unwrap();
        assert!(out.is_empty());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
