//! Terminals: the line discipline and the controlling-terminal state of one tty.
//!
//! | file        | owns |
//! |-------------|------|
//! | `termios.rs`| `struct termios`/`termios2`/`winsize` byte layouts, flags, defaults |
//! | `ldisc.rs`  | N_TTY: input editing, echo, ISIG, VMIN/VTIME reads, OPOST output |
//! | `mod.rs`    | `Tty` = line discipline + window size + session/foreground pgrp; job-control checks; ioctl numbers |
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

/// What a process does to its terminal, for the job-control check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyAccess {
    /// read(2): SIGTTIN from the background.
    Read,
    /// write(2): SIGTTOU from the background, only while TOSTOP is set.
    Write,
    /// termios/pgrp/flush ioctls: SIGTTOU from the background.
    Change,
}

impl TtyAccess {
    /// The signal a background process group gets for this access.
    pub fn signal(self) -> i32 {
        match self {
            TtyAccess::Read => SIGTTIN,
            TtyAccess::Write | TtyAccess::Change => SIGTTOU,
        }
    }
}

/// The verdict of [`Tty::job_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCheck {
    /// Go on with the access.
    Allow,
    /// Fail it with EIO.
    Eio,
    /// Send this signal to the caller's process group and restart the
    /// call once it may go on (ERESTARTSYS).
    Signal(i32),
}

pub use crate::abi::sig::{SIGTTIN, SIGTTOU};

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

    /// Linux's `__tty_check_change()` (and n_tty's `job_control()`): may
    /// a process of session `sid`, group `pgrp` do `access` now? `ignored`:
    /// the caller blocks or ignores the signal this access would raise;
    /// `orphaned`: its process group is orphaned.
    pub fn job_check(
        &self,
        sid: u32,
        pgrp: u32,
        access: TtyAccess,
        ignored: bool,
        orphaned: bool,
    ) -> JobCheck {
        if access == TtyAccess::Write && !self.ldisc.termios().lflag(termios::TOSTOP) {
            return JobCheck::Allow;
        }
        // Only the controlling terminal of the caller's session polices it.
        if self.session != Some(sid) || !self.is_background(pgrp) {
            return JobCheck::Allow;
        }
        let sig = access.signal();
        if ignored {
            // A reader that cannot be stopped gets EIO; writers go on.
            return if access == TtyAccess::Read {
                JobCheck::Eio
            } else {
                JobCheck::Allow
            };
        }
        if orphaned {
            return JobCheck::Eio;
        }
        JobCheck::Signal(sig)
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

    fn background_tty() -> Tty {
        let mut t = Tty::new();
        t.set_controlling(10, 10, false).unwrap();
        t
    }

    #[test]
    fn foreground_and_other_sessions_are_never_stopped() {
        let t = background_tty();
        for a in [TtyAccess::Read, TtyAccess::Write, TtyAccess::Change] {
            assert_eq!(t.job_check(10, 10, a, false, false), JobCheck::Allow);
            // Not this process's controlling terminal.
            assert_eq!(t.job_check(20, 21, a, false, false), JobCheck::Allow);
        }
        // No session at all.
        let t = Tty::new();
        assert_eq!(
            t.job_check(10, 11, TtyAccess::Read, false, false),
            JobCheck::Allow
        );
    }

    #[test]
    fn background_read_gets_sigttin_or_eio() {
        let t = background_tty();
        let r = |ign, orph| t.job_check(10, 11, TtyAccess::Read, ign, orph);
        assert_eq!(r(false, false), JobCheck::Signal(SIGTTIN));
        assert_eq!(r(true, false), JobCheck::Eio);
        assert_eq!(r(false, true), JobCheck::Eio);
        assert_eq!(r(true, true), JobCheck::Eio);
    }

    #[test]
    fn background_write_stops_only_with_tostop() {
        let mut t = background_tty();
        let w = |t: &Tty, ign, orph| t.job_check(10, 11, TtyAccess::Write, ign, orph);
        assert_eq!(w(&t, false, false), JobCheck::Allow);
        let mut tio = *t.ldisc.termios();
        tio.c_lflag |= termios::TOSTOP;
        t.ldisc.set_termios(tio);
        assert_eq!(w(&t, false, false), JobCheck::Signal(SIGTTOU));
        assert_eq!(w(&t, true, false), JobCheck::Allow);
        assert_eq!(w(&t, false, true), JobCheck::Eio);
    }

    #[test]
    fn background_terminal_changes_get_sigttou() {
        let t = background_tty();
        let c = |ign, orph| t.job_check(10, 11, TtyAccess::Change, ign, orph);
        assert_eq!(c(false, false), JobCheck::Signal(SIGTTOU));
        assert_eq!(c(true, false), JobCheck::Allow);
        assert_eq!(c(false, true), JobCheck::Eio);
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
