//! ioctl: the console's termios and job-control requests, FIONREAD,
//! FIONBIO/FIOCLEX; anything else on a non-terminal is ENOTTY.

use super::{fd_arg, ok, Outcome, SysResult};
use crate::errno::Errno;
use crate::fs::tty::*;
use crate::kernel::pty::TtyId;
use crate::kernel::signal::SIGWINCH;
use crate::kernel::task::{Pid, Wait};
use crate::kernel::Kernel;
use crate::vfs::file::{ops_of, Io, O_NONBLOCK};

const FIONBIO: u32 = 0x5421;
const FIOCLEX: u32 = 0x5451;
const FIONCLEX: u32 = 0x5450;
const TIOCGPTN: u32 = 0x8004_5430;

pub fn sys_ioctl(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0]);
    let req = a[1] as u32;
    let arg = a[2];
    let files = k.task(tid)?.files.clone();
    let f = files.borrow().file(fd)?;
    match req {
        FIOCLEX | FIONCLEX => {
            files.borrow_mut().get_mut(fd)?.cloexec = req == FIOCLEX;
            return ok(0);
        }
        FIONBIO => {
            let on = k.read_u32(tid, arg)? != 0;
            let mut of = f.borrow_mut();
            of.flags = if on {
                of.flags | O_NONBLOCK
            } else {
                of.flags & !O_NONBLOCK
            };
            return ok(0);
        }
        _ => {}
    }
    let io = Io {
        tid,
        file: &f,
        pos: None,
    };
    ops_of(&f).ioctl(k, &io, req, arg)
}

/// The terminal requests of the console (`ConsoleFile::ioctl`).
pub fn tty_ioctl(k: &mut Kernel, tid: Pid, req: u32, arg: u64) -> SysResult {
    tty_ioctl_on(k, tid, TtyId::Console, req, arg, true)
}

/// The terminal requests of terminal `id` (the console, or a pty from
/// either end); `police`: background groups changing it get SIGTTOU
/// (not for a pty master, which no job control applies to).
pub fn tty_ioctl_on(
    k: &mut Kernel,
    tid: Pid,
    id: TtyId,
    req: u32,
    arg: u64,
    police: bool,
) -> SysResult {
    let (sid, pgid, tgid) = {
        let t = k.task(tid)?;
        (t.sid as u32, t.pgid as u32, t.tgid)
    };
    if police && changes_terminal(req) {
        // A background group changing the terminal gets SIGTTOU first.
        match k.tty_job_control_on(id, tid, TtyAccess::Change) {
            Ok(()) => {}
            // Asleep until the signal just sent to its group comes.
            Err(Errno::ERESTARTSYS) => return Ok(Outcome::Block(Wait::Queue(None))),
            // Linux's tiocspgrp() turns the orphaned group's EIO into ENOTTY.
            Err(Errno::EIO) if req == TIOCSPGRP => return Err(Errno::ENOTTY),
            Err(e) => return Err(e),
        }
    }
    match req {
        TCGETS => {
            let b = k.tty_mut(id)?.ldisc.termios().to_bytes();
            k.write_user(tid, arg, &b)?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let b = k.read_user_vec(tid, arg, 36)?;
            let t = k.tty_mut(id)?.ldisc.termios().from_bytes(&b)?;
            if req == TCSETSF {
                k.tty_mut(id)?.ldisc.flush_input();
            }
            k.tty_mut(id)?.ldisc.set_termios(t);
        }
        TCGETS2 => {
            let b = k.tty_mut(id)?.ldisc.termios().to_bytes2();
            k.write_user(tid, arg, &b)?;
        }
        TCSETS2 | TCSETSW2 | TCSETSF2 => {
            let b = k.read_user_vec(tid, arg, 44)?;
            let t = Termios::from_bytes2(&b)?;
            if req == TCSETSF2 {
                k.tty_mut(id)?.ldisc.flush_input();
            }
            k.tty_mut(id)?.ldisc.set_termios(t);
        }
        TCFLSH => {
            if arg == 0 || arg == 2 {
                k.tty_mut(id)?.ldisc.flush_input();
            }
        }
        TIOCGWINSZ => {
            let b = k.tty_mut(id)?.winsize.to_bytes();
            k.write_user(tid, arg, &b)?;
        }
        TIOCSWINSZ => {
            let b = k.read_user_vec(tid, arg, 8)?;
            let w = Winsize::from_bytes(&b)?;
            if k.tty_mut(id)?.set_winsize(w) {
                if let Some(pg) = k.tty_mut(id)?.fg_pgrp {
                    k.signal_group(pg as i32, SIGWINCH);
                }
            }
        }
        TIOCSCTTY => {
            if sid != tgid as u32 {
                return Err(Errno::EPERM);
            }
            let force = arg == 1 && k.task(tid)?.cred.euid == 0;
            k.tty_mut(id)?.set_controlling(sid, pgid, force)?;
        }
        TIOCNOTTY => {
            if let Ok(Some(pg)) = k.tty_mut(id)?.release(sid) {
                if sid == tgid as u32 {
                    k.signal_group(pg as i32, crate::kernel::signal::SIGHUP);
                    k.signal_group(pg as i32, crate::kernel::signal::SIGCONT);
                }
            }
        }
        TIOCGPGRP => {
            let pg = k.tty_mut(id)?.get_fg_pgrp(sid)?;
            k.write_u32(tid, arg, pg)?;
        }
        TIOCSPGRP => {
            let pg = k.read_u32(tid, arg)?;
            let exists = k
                .tasks
                .values()
                .any(|t| t.pgid as u32 == pg && t.sid as u32 == sid && t.is_alive());
            if !exists {
                return Err(Errno::EPERM);
            }
            k.tty_mut(id)?.set_fg_pgrp(sid, pg)?;
        }
        TIOCGSID => {
            let s = k.tty_mut(id)?.get_sid(sid)?;
            k.write_u32(tid, arg, s)?;
        }
        FIONREAD => {
            let n = k.tty_mut(id)?.ldisc.fionread();
            k.write_u32(tid, arg, n as u32)?;
        }
        TIOCGPTN if id == TtyId::Console => return Err(Errno::ENOTTY),
        _ => {
            log::debug!("tty ioctl {req:#x} not supported");
            return Err(Errno::EINVAL);
        }
    }
    ok(0)
}

/// Requests Linux polices with `tty_check_change()` (TIOCSWINSZ is not
/// one: a background process may resize the terminal).
fn changes_terminal(req: u32) -> bool {
    matches!(
        req,
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 | TCFLSH | TIOCSPGRP
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_changing_requests_are_policed() {
        for r in [TCSETS, TCSETSW, TCSETSF, TCSETSF2, TCFLSH, TIOCSPGRP] {
            assert!(changes_terminal(r), "{r:#x}");
        }
        for r in [
            TCGETS, TIOCGPGRP, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCSCTTY,
        ] {
            assert!(!changes_terminal(r), "{r:#x}");
        }
    }
}
