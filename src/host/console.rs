//! The host side of the guest console: umlrun's stdin/stdout (UML's
//! `con0=fd:0,fd:1`). When stdin is a terminal it is put in raw mode so
//! the guest's line discipline sees every key, and restored on drop.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{BorrowedFd, RawFd};

pub struct HostConsole {
    input: Option<RawFd>,
    output: Option<RawFd>,
    saved: Option<Termios>,
    eof: bool,
}

fn fd(raw: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the console fds (0 and 1, or the ones con0= names) stay open
    // for umlrun's whole life; nothing closes them.
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

    /// The input fd to wait on (None: no input, or it reached its end).
    pub fn input_fd(&self) -> Option<RawFd> {
        self.input.filter(|_| !self.eof)
    }

    /// True when umlrun hears of the host terminal's resizes by SIGWINCH:
    /// its input is a terminal and the controlling terminal of umlrun's
    /// session (tcgetpgrp works only there). A terminal that is not (a
    /// pty a test harness holds) must be looked at from time to time.
    pub fn resizes_signalled(&self) -> bool {
        match self.input {
            Some(i) if self.is_terminal() => {
                termios::tcgetattr(fd(i)).is_ok() && nix::unistd::tcgetpgrp(fd(i)).is_ok()
            }
            _ => false,
        }
    }

    /// Reads what input is there without waiting (empty if none). End of
    /// file or an error (the other side of a pty gone) ends the input.
    pub fn read_available(&mut self) -> Vec<u8> {
        let Some(i) = self.input_fd() else {
            return Vec::new();
        };
        let mut fds = [PollFd::new(fd(i), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            _ => return Vec::new(),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(i, &mut buf) {
            Ok(0) => {
                self.eof = true;
                Vec::new()
            }
            Ok(n) => buf[..n].to_vec(),
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => Vec::new(),
            Err(e) => {
                log::debug!("console input ends: {e}");
                self.eof = true;
                Vec::new()
            }
        }
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
