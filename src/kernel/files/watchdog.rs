//! /dev/watchdog: UML's harddog. While it is open the guest must pet it
//! (any write, or WDIOC_KEEPALIVE) within the timeout (60 s, as UML's
//! `uml_watchdog` helper; WDIOC_SETTIMEOUT changes it); when it does not,
//! the guest is taken as hung: with `mconsole=notify:<socket>` a "hang"
//! notify message goes there (what `uml_watchdog -mconsole` sends, no
//! data: in UML the helper, not the kernel, sends MCONSOLE_HANG when its
//! alarm(60) expires, then exits), else the instance ends (what
//! `uml_watchdog -pid` does to UML).
//! Closing it stops the timer (UML's harddog_release, no magic close);
//! one opener at a time (EBUSY).

use std::rc::Rc;
use std::time::Duration;

use crate::errno::{Errno, KResult};
use crate::fs::devices::CharDevice;
use crate::fs::{Stat, S_IFCHR};
use crate::kernel::core::Shutdown;
use crate::kernel::timers::TimerKey;
use crate::kernel::Kernel;
use crate::mconsole::protocol::NotifyType;
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::{FileDescription, Io};
use crate::vfs::Node;

/// uml_watchdog's alarm(60).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest timeout WDIOC_SETTIMEOUT takes.
const MAX_TIMEOUT_SECS: i32 = 3600;

const WDIOC_GETSUPPORT: u32 = 0x8028_5700;
const WDIOC_GETSTATUS: u32 = 0x8004_5701;
const WDIOC_GETBOOTSTATUS: u32 = 0x8004_5702;
const WDIOC_SETOPTIONS: u32 = 0x8004_5704;
const WDIOC_KEEPALIVE: u32 = 0x8004_5705;
const WDIOC_SETTIMEOUT: u32 = 0xc004_5706;
const WDIOC_GETTIMEOUT: u32 = 0x8004_5707;
const WDIOS_DISABLECARD: u32 = 1;
const WDIOS_ENABLECARD: u32 = 2;
const WDIOF_SETTIMEOUT: u32 = 0x0080;
const WDIOF_KEEPALIVEPING: u32 = 0x8000;

/// The watchdog's state in the kernel (`Kernel::watchdog`).
#[derive(Debug, Default)]
pub struct Watchdog {
    /// Someone has /dev/watchdog open.
    pub open: bool,
    /// The timer runs (open and enabled).
    pub armed: bool,
    pub timeout: Option<Duration>,
    /// Hangs reported so far.
    pub fired: u64,
}

impl Watchdog {
    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

pub struct WatchdogFile {
    node: Option<Node>,
}

impl WatchdogFile {
    /// Opens the watchdog and starts its timer (EBUSY if it is open).
    pub fn open(k: &mut Kernel, node: Option<Node>) -> KResult<Rc<Self>> {
        if k.mconsole.watchdog.open {
            return Err(Errno::EBUSY);
        }
        k.mconsole.watchdog.open = true;
        k.mconsole.watchdog.armed = true;
        k.watchdog_pet();
        Ok(Rc::new(WatchdogFile { node }))
    }
}

impl Kernel {
    /// The guest is alive: the timeout starts again.
    pub fn watchdog_pet(&mut self) {
        let w = &self.mconsole.watchdog;
        if w.armed {
            let at = crate::kernel::deadline::after(w.timeout());
            self.timers.set(TimerKey::Watchdog, at);
        }
    }

    fn watchdog_stop(&mut self) {
        self.mconsole.watchdog.armed = false;
        self.timers.cancel(TimerKey::Watchdog);
    }

    /// The timeout passed without a pet: the guest hangs.
    pub fn watchdog_expired(&mut self) {
        if !self.mconsole.watchdog.armed {
            return;
        }
        // One report per expiry; a later pet arms it again.
        self.mconsole.watchdog.armed = false;
        self.mconsole.watchdog.fired += 1;
        let secs = self.mconsole.watchdog.timeout().as_secs();
        if self.mconsole.has_notify() {
            log::warn!("watchdog: not petted for {secs} s: hang notify sent");
            self.mconsole.notify_raw(NotifyType::Hang, &[]);
        } else {
            log::error!("watchdog: not petted for {secs} s: the guest hangs, stopping it");
            self.shutdown.get_or_insert(Shutdown::Terminated);
        }
    }
}

impl FileDescription for WatchdogFile {
    fn read(&self, _k: &mut Kernel, _io: &Io, _buf: &mut [u8]) -> KResult<usize> {
        Err(Errno::EINVAL)
    }

    /// Any write of at least one byte pets it (UML's harddog_write; an
    /// empty write does nothing, as there and in Linux's watchdog core).
    fn write(&self, k: &mut Kernel, _io: &Io, data: &[u8]) -> KResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        k.mconsole.watchdog.armed = true;
        k.watchdog_pet();
        Ok(data.len())
    }

    fn ioctl(&self, k: &mut Kernel, io: &Io, req: u32, arg: u64) -> SysResult {
        match req {
            WDIOC_GETSUPPORT => {
                let mut info = [0u8; 40];
                info[..4].copy_from_slice(&(WDIOF_SETTIMEOUT | WDIOF_KEEPALIVEPING).to_le_bytes());
                info[8..20].copy_from_slice(b"UML Watchdog");
                k.write_user(io.tid, arg, &info)?;
            }
            WDIOC_GETSTATUS | WDIOC_GETBOOTSTATUS => k.write_u32(io.tid, arg, 0)?,
            WDIOC_KEEPALIVE => {
                k.mconsole.watchdog.armed = true;
                k.watchdog_pet();
            }
            WDIOC_SETOPTIONS => match k.read_u32(io.tid, arg)? {
                WDIOS_DISABLECARD => k.watchdog_stop(),
                WDIOS_ENABLECARD => {
                    k.mconsole.watchdog.armed = true;
                    k.watchdog_pet();
                }
                _ => return Err(Errno::EINVAL),
            },
            WDIOC_SETTIMEOUT => {
                let secs = k.read_u32(io.tid, arg)? as i32;
                if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                    return Err(Errno::EINVAL);
                }
                k.mconsole.watchdog.timeout = Some(Duration::from_secs(secs as u64));
                k.watchdog_pet();
                k.write_u32(io.tid, arg, secs as u32)?;
            }
            WDIOC_GETTIMEOUT => {
                let secs = k.mconsole.watchdog.timeout().as_secs() as u32;
                k.write_u32(io.tid, arg, secs)?;
            }
            _ => return Err(Errno::ENOTTY),
        }
        ok(0)
    }

    fn stat(&self, k: &mut Kernel) -> KResult<(Stat, u64)> {
        if let Some(n) = self.node {
            return k.stat_inode(n);
        }
        let st = Stat {
            mode: S_IFCHR | 0o600,
            nlink: 1,
            rdev: CharDevice::Watchdog.rdev(),
            ..Default::default()
        };
        Ok((st, 0xb))
    }

    fn node(&self) -> Option<Node> {
        self.node
    }

    /// Closing stops the timer (UML's harddog_release).
    fn release(&self, k: &mut Kernel) {
        k.watchdog_stop();
        k.mconsole.watchdog.open = false;
    }
}
