//! Terminals: the line discipline and the controlling-terminal state of one tty.
//!
//! | file        | owns |
//! |-------------|------|
//! | `termios.rs`| `struct termios`/`termios2`/`winsize` byte layouts, flags, defaults |
//! | `ldisc.rs`  | N_TTY: input editing, echo, ISIG, VMIN/VTIME reads, OPOST output |
//! | `mod.rs`    | `Tty` = line discipline + window size + session/foreground pgrp; ioctl numbers |
//!
//! The kernel owns the device end (host stdin/stdout), sleeping, timers and
//! signal delivery; this module only decides.
#![deny(unsafe_code)]

pub mod ldisc;
pub mod termios;

pub use ldisc::{InputResult, LineDiscipline, ReadResult};
pub use termios::{Termios, Winsize};

use crate::errno::{Errno, KResult};

// ioctl request numbers (x86-64 Linux).
pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TCFLSH: u32 = 0x540B;
pub const TIOCSCTTY: u32 = 0x540E;
pub const TIOCGPGRP: u32 = 0x540F;
pub const TIOCSPGRP: u32 = 0x5410;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const TIOCSWINSZ: u32 = 0x5414;
pub const FIONREAD: u32 = 0x541B;
pub const TIOCNOTTY: u32 = 0x5422;
pub const TIOCGSID: u32 = 0x5429;
pub const TCGETS2: u32 = 0x802C_542A;
pub const TCSETS2: u32 = 0x402C_542B;
pub const TCSETSW2: u32 = 0x402C_542C;
pub const TCSETSF2: u32 = 0x402C_542D;

/// One terminal: its line discipline, window size and job-control state.
#[derive(Debug, Clone, Default)]
pub struct Tty {
    pub ldisc: LineDiscipline,
    pub winsize: Winsize,
    /// The session this is the controlling terminal of.
    pub session: Option<u32>,
    /// The foreground process group.
    pub fg_pgrp: Option<u32>,
}

impl Tty {
    pub fn new() -> Self {
        Self::default()
    }

    /// TIOCSCTTY by a session leader (`sid` = its pid, `pgrp` its group).
    /// A tty already controlling another session is refused unless `force`
    /// (the kernel checks CAP_SYS_ADMIN for `force`).
    pub fn set_controlling(&mut self, sid: u32, pgrp: u32, force: bool) -> KResult<()> {
        match self.session {
            Some(s) if s == sid => return Ok(()),
            Some(_) if !force => return Err(Errno::EPERM),
            _ => {}
        }
        self.session = Some(sid);
        self.fg_pgrp = Some(pgrp);
        Ok(())
    }

    /// TIOCNOTTY, or the session leader exiting. Returns the foreground
    /// group that Linux sends SIGHUP+SIGCONT when the leader gives it up.
    pub fn release(&mut self, sid: u32) -> KResult<Option<u32>> {
        if self.session != Some(sid) {
            return Err(Errno::ENOTTY);
        }
        self.session = None;
        Ok(self.fg_pgrp.take())
    }

    /// TIOCGPGRP by a process of session `sid`.
    pub fn get_fg_pgrp(&self, sid: u32) -> KResult<u32> {
        if self.session != Some(sid) {
            return Err(Errno::ENOTTY);
        }
        // Linux reports a nonexistent pgrp (0x7fffffff-ish) if none; 0 is fine.
        Ok(self.fg_pgrp.unwrap_or(0))
    }

    /// TIOCSPGRP by a process of session `sid`; the kernel has checked that
    /// `pgrp` exists in that session (else EPERM).
    pub fn set_fg_pgrp(&mut self, sid: u32, pgrp: u32) -> KResult<()> {
        if self.session != Some(sid) {
            return Err(Errno::ENOTTY);
        }
        if pgrp == 0 || pgrp > i32::MAX as u32 {
            return Err(Errno::EINVAL);
        }
        self.fg_pgrp = Some(pgrp);
        Ok(())
    }

    /// TIOCGSID.
    pub fn get_sid(&self, sid: u32) -> KResult<u32> {
        match self.session {
            Some(s) if s == sid => Ok(s),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// Is a process of group `pgrp` in the background (reads get SIGTTIN,
    /// writes SIGTTOU when TOSTOP)?
    pub fn is_background(&self, pgrp: u32) -> bool {
        self.session.is_some() && self.fg_pgrp.is_some_and(|fg| fg != pgrp)
    }

    /// TIOCSWINSZ: true if it changed (the kernel then sends SIGWINCH to
    /// the foreground group).
    pub fn set_winsize(&mut self, w: Winsize) -> bool {
        let changed = self.winsize != w;
        self.winsize = w;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controlling_terminal_lifecycle() {
        let mut t = Tty::new();
        assert_eq!(t.get_fg_pgrp(1), Err(Errno::ENOTTY));
        t.set_controlling(10, 10, false).unwrap();
        assert_eq!(t.set_controlling(20, 20, false), Err(Errno::EPERM));
        assert_eq!(t.get_fg_pgrp(10), Ok(10));
        assert_eq!(t.get_sid(10), Ok(10));
        assert_eq!(t.get_sid(11), Err(Errno::ENOTTY));
        t.set_fg_pgrp(10, 12).unwrap();
        assert_eq!(t.set_fg_pgrp(20, 12), Err(Errno::ENOTTY));
        assert_eq!(t.set_fg_pgrp(10, 0), Err(Errno::EINVAL));
        assert!(t.is_background(10));
        assert!(!t.is_background(12));
        assert_eq!(t.release(20), Err(Errno::ENOTTY));
        assert_eq!(t.release(10), Ok(Some(12)));
        assert!(!t.is_background(10));
        t.set_controlling(20, 21, false).unwrap();
        t.set_controlling(30, 30, true).unwrap();
        assert_eq!(t.get_fg_pgrp(30), Ok(30));
    }

    #[test]
    fn winsize_change_is_reported() {
        let mut t = Tty::new();
        let w = Winsize {
            rows: 24,
            cols: 80,
            ..Default::default()
        };
        assert!(t.set_winsize(w));
        assert!(!t.set_winsize(w));
    }
}
