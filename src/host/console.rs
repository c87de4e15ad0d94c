//! The host side of the guest console: umlrun's stdin/stdout (UML's
//! `con0=fd:0,fd:1`). When stdin is a terminal it is put in raw mode so
//! the guest's line discipline sees every key, and restored on drop.

use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

pub struct HostConsole {
    input: Option<RawFd>,
    output: Option<RawFd>,
    saved: Option<Termios>,
    eof: bool,
}

fn fd(raw: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the console fds (0 and 1, or the ones con0= names) stay open
    // for umlrun's whole life; nothing closes them. The mconsole socket
    // passed to `read_also` is open for the duration of the call.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

impl HostConsole {
    /// A console on the given fds (None: `con0=null`).
    pub fn new(input: Option<RawFd>, output: Option<RawFd>) -> HostConsole {
        let mut saved = None;
        if let Some(i) = input {
            if let Ok(t) = termios::tcgetattr(fd(i)) {
                let mut raw = t.clone();
                termios::cfmakeraw(&mut raw);
                // Keep output post-processing off too: the guest's ONLCR
                // already turned \n into \r\n.
                if termios::tcsetattr(fd(i), SetArg::TCSANOW, &raw).is_ok() {
                    saved = Some(t);
                }
            }
        }
        HostConsole {
            input,
            output,
            saved,
            eof: false,
        }
    }

    /// True when stdin is a terminal in raw mode.
    pub fn is_terminal(&self) -> bool {
        self.saved.is_some()
    }

    /// Terminal size of the host console, if it is a terminal.
    pub fn winsize(&self) -> Option<(u16, u16)> {
        let i = self.input?;
        let mut ws: libc::winsize = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one struct winsize into `ws`.
        let r = unsafe { libc::ioctl(i, libc::TIOCGWINSZ, &mut ws) };
        (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
    }

    /// Waits up to `timeout` (None: forever) for input and reads what is
    /// there. Returns the bytes (empty on timeout or EOF).
    pub fn read(&mut self, timeout: Option<Duration>) -> Vec<u8> {
        self.read_also(timeout, None).0
    }

    /// [`HostConsole::read`], also waking when `also` (another host fd,
    /// the mconsole socket) is readable, which the second value says.
    pub fn read_also(&mut self, timeout: Option<Duration>, also: Option<RawFd>) -> (Vec<u8>, bool) {
        let input = self.input.filter(|_| !self.eof);
        if input.is_none() && also.is_none() {
            if let Some(t) = timeout {
                std::thread::sleep(t.min(Duration::from_millis(500)));
            } else {
                std::thread::sleep(Duration::from_millis(500));
            }
            return (Vec::new(), false);
        }
        let ms = match timeout {
            // Without console input, wake now and then as before.
            None if input.is_none() => PollTimeout::from(500u16),
            None => PollTimeout::NONE,
            Some(t) => {
                PollTimeout::try_from(t.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds: Vec<PollFd> = input
            .iter()
            .chain(also.iter())
            .map(|&f| PollFd::new(fd(f), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => {}
            _ => return (Vec::new(), false),
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let also_ready = also.is_some() && fds.last().is_some_and(ready);
        let Some(i) = input.filter(|_| fds.first().is_some_and(ready)) else {
            return (Vec::new(), also_ready);
        };
        let mut buf = [0u8; 4096];
        let got = match nix::unistd::read(i, &mut buf) {
            Ok(0) => {
                self.eof = true;
                Vec::new()
            }
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(),
        };
        (got, also_ready)
    }

    /// Is input waiting (without blocking)?
    pub fn input_ready(&self) -> bool {
        let Some(i) = self.input.filter(|_| !self.eof) else {
            return false;
        };
        let mut fds = [PollFd::new(fd(i), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// True once the host input reached end of file.
    pub fn input_closed(&self) -> bool {
        self.eof
    }

    /// Writes all of `data` to the host output.
    pub fn write(&mut self, mut data: &[u8]) {
        let Some(o) = self.output else { return };
        while !data.is_empty() {
            match nix::unistd::write(fd(o), data) {
                Ok(n) => data = &data[n..],
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                Err(_) => return,
            }
        }
    }

    /// Puts the host terminal back as it was.
    pub fn restore(&mut self) {
        if let (Some(i), Some(t)) = (self.input, self.saved.take()) {
            let _ = termios::tcsetattr(fd(i), SetArg::TCSANOW, &t);
        }
    }
}

impl Drop for HostConsole {
    fn drop(&mut self) {
        self.restore();
    }
}
