//! Pseudo-terminals: /dev/ptmx makes a pair, the slave is /dev/pts/N
//! (fs/devpts.rs shows the unlocked ones). The slave side is a `Tty` (the
//! same line discipline, window size and job-control state as the
//! console); what the master writes is the slave's input, what the slave
//! writes (after OPOST) and its echo wait in `to_master`. The open-file
//! kinds are kernel/files/pty.rs.
//!
//! Hang-up: when the master closes, the slave's foreground group gets
//! SIGHUP and SIGCONT, slave reads see EOF and writes EIO; when every
//! slave fd closes after one was opened, master reads see EIO once the
//! buffer is drained. A pair goes away when both sides are closed.

use std::collections::{BTreeMap, VecDeque};

use super::core::Kernel;
use super::signal::{SIGCONT, SIGHUP};
use super::task::Pid;
use super::waitq::{WaitQueue, WaitQueueRef, ALL_EVENTS};
use crate::errno::{Errno, KResult};
use crate::fs::devpts::{PtsEntry, PtsView};
use crate::fs::tty::{ReadResult, Tty};

/// Most ptys at once (Linux's kernel.pty.max is 4096).
pub const PTY_MAX: u32 = 1024;
/// Bytes the slave may have written that the master has not read.
pub const TO_MASTER_CAP: usize = 64 << 10;

/// Which terminal an ioctl or job-control check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyId {
    Console,
    Pty(u32),
}

pub struct Pty {
    pub tty: Tty,
    pub to_master: VecDeque<u8>,
    /// TIOCSPTLCK: the slave cannot be opened while locked (new pairs are).
    pub locked: bool,
    pub master_open: bool,
    pub slave_opens: u32,
    /// A slave was opened and all slave fds closed since.
    pub slave_hung_up: bool,
    pub waitq: WaitQueueRef,
}

#[derive(Default)]
pub struct PtyTable {
    pub ptys: BTreeMap<u32, Pty>,
    /// What devpts shows (the unlocked slaves), shared with its mounts.
    pub view: PtsView,
}

impl Kernel {
    /// The terminal `id` names.
    pub fn tty_mut(&mut self, id: TtyId) -> KResult<&mut Tty> {
        match id {
            TtyId::Console => Ok(&mut self.console.tty),
            TtyId::Pty(n) => self
                .ptys
                .ptys
                .get_mut(&n)
                .map(|p| &mut p.tty)
                .ok_or(Errno::EIO),
        }
    }

    pub fn tty_ref(&self, id: TtyId) -> KResult<&Tty> {
        match id {
            TtyId::Console => Ok(&self.console.tty),
            TtyId::Pty(n) => self.ptys.ptys.get(&n).map(|p| &p.tty).ok_or(Errno::EIO),
        }
    }

    pub fn pty(&mut self, n: u32) -> KResult<&mut Pty> {
        self.ptys.ptys.get_mut(&n).ok_or(Errno::EIO)
    }

    /// Wakes everyone waiting on either side of pty `n` (and pollers).
    pub fn pty_changed(&mut self, n: u32) {
        if let Some(q) = self.ptys.ptys.get(&n).map(|p| p.waitq.clone()) {
            self.wake_queue(&q, ALL_EVENTS);
        }
    }

    /// Opening /dev/ptmx: a new pair, locked, owned by `tid`.
    pub fn pty_create(&mut self, tid: Pid) -> KResult<u32> {
        let n = (0..PTY_MAX)
            .find(|i| !self.ptys.ptys.contains_key(i))
            .ok_or(Errno::ENOSPC)?;
        let (uid, gid) = {
            let c = &self.task(tid)?.cred;
            (c.euid, c.egid)
        };
        self.ptys.ptys.insert(
            n,
            Pty {
                tty: Tty::new(),
                to_master: VecDeque::new(),
                locked: true,
                master_open: true,
                slave_opens: 0,
                slave_hung_up: false,
                waitq: WaitQueue::new(),
            },
        );
        // Linux's devpts: mode 0620, group tty (5) when it exists; ours is
        // the opener's group until grantpt changes it.
        self.ptys.view.borrow_mut().insert(
            n,
            PtsEntry {
                uid,
                gid,
                mode: 0o620,
                ctime: crate::syscalls::now_ts(),
            },
        );
        Ok(n)
    }

    /// Opening the slave: EIO while locked or after the master closed.
    pub fn pty_open_slave(&mut self, n: u32) -> KResult<()> {
        let p = self.pty(n)?;
        if p.locked || !p.master_open {
            return Err(Errno::EIO);
        }
        p.slave_opens += 1;
        p.slave_hung_up = false;
        Ok(())
    }

    pub fn pty_master_read(&mut self, n: u32, buf: &mut [u8]) -> KResult<usize> {
        let p = self.pty(n)?;
        if p.to_master.is_empty() {
            return Err(if p.slave_hung_up {
                Errno::EIO
            } else {
                Errno::EAGAIN
            });
        }
        let k = buf.len().min(p.to_master.len());
        for (d, s) in buf.iter_mut().zip(p.to_master.drain(..k)) {
            *d = s;
        }
        self.pty_changed(n);
        Ok(k)
    }

    pub fn pty_master_write(&mut self, n: u32, data: &[u8]) -> KResult<usize> {
        let p = self.pty(n)?;
        let r = p.tty.ldisc.input(data);
        if p.to_master.len() < TO_MASTER_CAP {
            p.to_master.extend(r.echo.iter());
        }
        let fg = p.tty.fg_pgrp;
        if let Some(pg) = fg {
            for sig in r.signals {
                self.signal_group(pg as i32, sig);
            }
        }
        self.pty_changed(n);
        Ok(data.len())
    }

    pub fn pty_slave_read(&mut self, n: u32, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        let p = self.pty(n)?;
        if !p.master_open && !p.tty.ldisc.readable() {
            return Ok(0);
        }
        let r = if nonblock {
            p.tty.ldisc.read_nonblocking(buf)
        } else {
            p.tty.ldisc.read(buf)
        };
        match r {
            ReadResult::Data(k) => {
                self.pty_changed(n);
                Ok(k)
            }
            ReadResult::Eof => Ok(0),
            ReadResult::WouldBlock | ReadResult::WouldBlockWithTimeout(_) => Err(Errno::EAGAIN),
        }
    }

    pub fn pty_slave_write(&mut self, n: u32, data: &[u8]) -> KResult<usize> {
        let p = self.pty(n)?;
        if !p.master_open {
            return Err(Errno::EIO);
        }
        let room = TO_MASTER_CAP.saturating_sub(p.to_master.len());
        if room == 0 {
            return Err(Errno::EAGAIN);
        }
        // OPOST may grow the bytes (\n → \r\n): take what fits before it.
        let take = data.len().min(room / 2).max(1);
        let out = p.tty.ldisc.output(&data[..take]);
        p.to_master.extend(out);
        self.pty_changed(n);
        Ok(take)
    }

    /// The last fd of the master closed: the slave side hangs up.
    pub fn pty_master_closed(&mut self, n: u32) {
        let Ok(p) = self.pty(n) else {
            return;
        };
        p.master_open = false;
        let fg = p.tty.fg_pgrp;
        let gone = p.slave_opens == 0;
        if let Some(pg) = fg {
            self.signal_group(pg as i32, SIGHUP);
            self.signal_group(pg as i32, SIGCONT);
        }
        self.pty_changed(n);
        if gone {
            self.pty_remove(n);
        }
    }

    /// One slave open file description went away.
    pub fn pty_slave_closed(&mut self, n: u32) {
        let Ok(p) = self.pty(n) else {
            return;
        };
        p.slave_opens = p.slave_opens.saturating_sub(1);
        if p.slave_opens == 0 {
            p.slave_hung_up = true;
        }
        let gone = p.slave_opens == 0 && !p.master_open;
        self.pty_changed(n);
        if gone {
            self.pty_remove(n);
        }
    }

    fn pty_remove(&mut self, n: u32) {
        self.ptys.ptys.remove(&n);
        self.ptys.view.borrow_mut().remove(&n);
    }

    /// Whether session `sid` has a controlling terminal (the console or
    /// a pty).
    pub fn session_has_tty(&self, sid: u32) -> bool {
        self.console.tty.session == Some(sid)
            || self.ptys.ptys.values().any(|p| p.tty.session == Some(sid))
    }

    /// A session leader exited: the ptys it controlled are released (the
    /// console does this in `Console::session_leader_exited`).
    pub fn pty_session_ended(&mut self, sid: i32) {
        for p in self.ptys.ptys.values_mut() {
            let _ = p.tty.release(sid as u32);
        }
    }
}
