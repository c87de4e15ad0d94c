//! The guest console: /dev/console as a terminal whose line discipline
//! runs in the kernel, with umlrun's stdin/stdout as the device end, and
//! the job control that keeps background process groups off it.

use std::time::{Duration, Instant};

use super::core::Kernel;
use super::signal::{SIGWINCH, SIG_IGN};
use super::task::Pid;
use super::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::errno::{Errno, KResult};
use crate::fs::tty::{JobCheck, ReadResult, Tty, TtyAccess, Winsize};
use crate::host::console::HostConsole;

pub struct Console {
    pub tty: Tty,
    host: HostConsole,
    /// Host bytes read but not yet fed to the line discipline.
    pending: Vec<u8>,
    /// The host terminal's size (rows, cols) as last seen, and when.
    host_size: Option<(u16, u16)>,
    size_checked: Instant,
    /// The host terminal was resized: SIGWINCH not yet sent.
    resized: bool,
    /// umlrun gets SIGWINCH for the host terminal: no need to poll it.
    resizes_signalled: bool,
    /// Readers of the terminal and its pollers.
    pub waitq: WaitQueueRef,
}

/// How often an otherwise quiet console looks at the host terminal's size
/// (umlrun gets no SIGWINCH; a key press always looks at once).
const SIZE_CHECK: Duration = Duration::from_millis(250);
/// The same for an idle kernel, which wakes up for nothing else.
const IDLE_SIZE_CHECK: Duration = Duration::from_millis(500);

impl Console {
    pub fn new(host: HostConsole) -> Console {
        let mut tty = Tty::new();
        let host_size = host.winsize();
        let resizes_signalled = host.resizes_signalled();
        if resizes_signalled {
            crate::host::signals::install_resize_handler();
        }
        let (rows, cols) = host_size.unwrap_or((24, 80));
        tty.winsize = Winsize {
            rows,
            cols,
            ..Default::default()
        };
        Console {
            tty,
            host,
            pending: Vec::new(),
            host_size,
            size_checked: Instant::now(),
            resized: false,
            resizes_signalled,
            waitq: WaitQueue::new(),
        }
    }

    /// Reads the host input that is there (`readable`: the event loop
    /// said so) and follows host terminal resizes (`resize_signal`: umlrun
    /// got SIGWINCH; otherwise the size is looked at every `SIZE_CHECK`
    /// when it cannot be signalled). Nonzero means
    /// [`Kernel::console_input_arrived`] has work.
    pub fn take_host_input(&mut self, readable: bool, resize_signal: bool) -> usize {
        let got = if readable {
            self.host.read_available()
        } else {
            Vec::new()
        };
        let n = got.len();
        self.pending.extend_from_slice(&got);
        let look = n > 0 || resize_signal || !self.resizes_signalled;
        if look && self.check_host_size(n > 0 || resize_signal) {
            self.resized = true;
        }
        n + self.resized as usize
    }

    /// The host input fd for the event loop (None: none, or it ended).
    pub fn host_input_fd(&self) -> Option<std::os::fd::RawFd> {
        self.host.input_fd()
    }

    /// When an idle kernel must next look at the host terminal's size
    /// (None: resizes come as SIGWINCH, or there is no terminal).
    pub fn next_size_check(&self) -> Option<Instant> {
        (self.host_size.is_some() && !self.resizes_signalled)
            .then(|| self.size_checked + IDLE_SIZE_CHECK)
    }

    /// Follows a resize of the host terminal (before `input` is fed, so
    /// a command typed after the resize sees the new size): true when the
    /// guest terminal's size changed. A size the guest set itself
    /// (TIOCSWINSZ) stays until the host's changes.
    fn check_host_size(&mut self, input: bool) -> bool {
        if !input && self.size_checked.elapsed() < SIZE_CHECK {
            return false;
        }
        self.size_checked = Instant::now();
        let now = self.host.winsize();
        if now.is_none() || now == self.host_size {
            return false;
        }
        self.host_size = now;
        let (rows, cols) = now.unwrap_or_default();
        log::debug!("host terminal resized to {rows}x{cols}");
        self.tty.set_winsize(Winsize {
            rows,
            cols,
            ..Default::default()
        })
    }

    /// Output from the guest, through OPOST processing.
    pub fn write(&mut self, data: &[u8]) {
        let out = self.tty.ldisc.output(data);
        self.host.write(&out);
    }

    /// Raw bytes to the host (kernel messages).
    pub fn write_raw(&mut self, data: &[u8]) {
        self.host.write(data);
    }

    pub fn read(&mut self, buf: &mut [u8], nonblock: bool) -> ReadResult {
        if nonblock {
            self.tty.ldisc.read_nonblocking(buf)
        } else {
            self.tty.ldisc.read(buf)
        }
    }

    /// The session leader of the console's session exited: the terminal
    /// loses its session (SIGHUP to the foreground group is the kernel's).
    pub fn session_leader_exited(&mut self, sid: i32) {
        let _ = self.tty.release(sid as u32);
    }

    pub fn restore_host(&mut self) {
        self.host.restore();
    }

    pub fn host_input_closed(&self) -> bool {
        self.host.input_closed()
    }
}

impl Kernel {
    /// Job control for `tid` touching the console (Linux's
    /// `tty_check_change()`): Ok to go on, EIO, or ERESTARTSYS once
    /// SIGTTIN/SIGTTOU went to the caller's process group — the syscall
    /// then sleeps and is restarted (or fails with EINTR) by the signal.
    pub fn tty_job_control(&mut self, tid: Pid, access: TtyAccess) -> KResult<()> {
        self.tty_job_control_on(super::pty::TtyId::Console, tid, access)
    }

    /// The job-control check of `tty_job_control` on terminal `id`.
    pub fn tty_job_control_on(
        &mut self,
        id: super::pty::TtyId,
        tid: Pid,
        access: TtyAccess,
    ) -> KResult<()> {
        let t = self.task(tid)?;
        let (sid, pgid) = (t.sid, t.pgid);
        let sig = access.signal();
        let ignored = t.sigmask.has(sig) || t.sighand.borrow().get(sig).handler == SIG_IGN;
        let tty = self.tty_ref(id)?;
        // The orphan test walks every task: only when it can matter.
        let verdict = tty.job_check(sid as u32, pgid as u32, access, ignored, false);
        let verdict = match verdict {
            JobCheck::Signal(_) if self.is_orphaned_pgrp(pgid) => {
                tty.job_check(sid as u32, pgid as u32, access, ignored, true)
            }
            v => v,
        };
        match verdict {
            JobCheck::Allow => Ok(()),
            JobCheck::Eio => Err(Errno::EIO),
            JobCheck::Signal(sig) => {
                log::debug!("task {tid}: background {access:?} on {id:?}, signal {sig}");
                self.signal_group(pgid, sig);
                Err(Errno::ERESTARTSYS)
            }
        }
    }

    /// Feeds host input to the line discipline: echo, signals, wakeups;
    /// SIGWINCH to the foreground group after a host terminal resize.
    pub fn console_input_arrived(&mut self) {
        if std::mem::take(&mut self.console.resized) {
            if let Some(pg) = self.console.tty.fg_pgrp {
                self.signal_group(pg as i32, SIGWINCH);
            }
        }
        let bytes = std::mem::take(&mut self.console.pending);
        if bytes.is_empty() {
            return;
        }
        let r = self.console.tty.ldisc.input(&bytes);
        if !r.echo.is_empty() {
            self.console.write_raw(&r.echo);
        }
        if let Some(pg) = self.console.tty.fg_pgrp {
            for sig in r.signals {
                self.signal_group(pg as i32, sig);
            }
        }
        self.console_changed();
    }

    /// Input arrived or the terminal's settings changed: its readers and
    /// pollers look again.
    pub fn console_changed(&mut self) {
        let q = self.console.waitq.clone();
        self.wake_queue(&q, ALL_EVENTS);
    }
}
