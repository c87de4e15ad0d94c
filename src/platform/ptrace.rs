//! [`PtracePlatform`]: guests as [`PtraceStub`]s, with the two things they
//! share: a pool of ready stubs (so fork does not wait for a host
//! fork+exec) and the preemption ticker.
//!
//! The pool: a retired guest's stub is recycled (wiped, one round trip)
//! and kept, up to [`MAX_SPARE_STUBS`], so a fork loop spawns no host
//! process at all. When the kernel goes idle the pool shrinks to one
//! spare (an idle instance should hold no host processes it does not
//! use) and is refilled to one, ready for the next fork; once the guest
//! has settled (the kernel's `idle(settled)`: a second without a syscall
//! or fault) the last spare goes too, and the next fork spawns its stub.

use std::any::Any;
use std::ops::Range;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Guest, Platform, PlatformError, PtraceStub, StubOptions};
use crate::host::preempt::Ticker;

/// Most stubs kept for reuse; the rest of the retired ones are killed.
pub const MAX_SPARE_STUBS: usize = 4;
/// Spares kept while the kernel is idle (none once the guest settled).
const IDLE_SPARES: usize = 1;
/// Guest code runs at most this long before the kernel gets a turn.
const SLICE: Duration = Duration::from_millis(10);

/// The ptrace platform of one kernel instance.
pub struct PtracePlatform {
    keep_fds: Vec<RawFd>,
    cpu: Option<usize>,
    spares: Vec<PtraceStub>,
    ticker: Ticker,
    shut_down: bool,
}

impl PtracePlatform {
    /// Stubs keep the host fds `keep_fds` (physmem memfd, disk images) and
    /// run pinned to `cpu` (normally umlrun's own).
    pub fn new(keep_fds: Vec<RawFd>, cpu: Option<usize>) -> PtracePlatform {
        PtracePlatform {
            keep_fds,
            cpu,
            spares: Vec::new(),
            ticker: Ticker::start(SLICE),
            shut_down: false,
        }
    }

    fn spawn(&self) -> Result<PtraceStub, PlatformError> {
        let mut s = PtraceStub::spawn(StubOptions {
            keep_fds: &self.keep_fds,
            cpu: self.cpu,
        })?;
        s.set_preempt(self.ticker.handle());
        s.install_wall()?;
        Ok(s)
    }
}

impl Platform for PtracePlatform {
    fn new_guest(&mut self) -> Result<Box<dyn Guest>, PlatformError> {
        let s = match self.spares.pop() {
            Some(s) => s,
            None => self.spawn()?,
        };
        Ok(Box::new(s))
    }

    fn retire(&mut self, guest: Box<dyn Guest>) {
        let Ok(mut stub) = guest.into_any().downcast::<PtraceStub>() else {
            return; // not ours: dropping it is all we can do
        };
        if !self.shut_down && self.spares.len() < MAX_SPARE_STUBS {
            match stub.recycle() {
                Ok(()) => {
                    self.spares.push(*stub);
                    return;
                }
                Err(e) => log::debug!("stub {} not reusable: {e}", stub.pid()),
            }
        }
        stub.kill();
    }

    fn idle(&mut self, settled: bool) {
        if self.shut_down {
            return;
        }
        if settled {
            // Dropping a stub kills it.
            self.spares.clear();
            return;
        }
        self.spares.truncate(IDLE_SPARES); // dropping a stub kills it
        if self.spares.len() < IDLE_SPARES {
            match self.spawn() {
                Ok(s) => self.spares.push(s),
                Err(e) => log::debug!("no spare stub: {e}"),
            }
        }
    }

    fn shut_down(&mut self) {
        self.shut_down = true;
        for mut s in self.spares.drain(..) {
            s.kill();
        }
    }

    fn unshare_fd(&mut self, fd: RawFd) {
        self.keep_fds.retain(|&k| k != fd);
    }

    fn share_fd(&mut self, fd: RawFd) {
        if !self.keep_fds.contains(&fd) {
            self.keep_fds.push(fd);
        }
        for mut s in std::mem::take(&mut self.spares) {
            match s.adopt_fd(fd) {
                Ok(()) => self.spares.push(s),
                Err(e) => {
                    log::debug!("spare stub {} dropped: {e}", s.pid());
                    s.kill();
                }
            }
        }
    }
}

impl Guest for PtraceStub {
    fn reserved(&self) -> &[Range<u64>] {
        PtraceStub::reserved(self)
    }
    fn vdso(&self) -> Option<Range<u64>> {
        PtraceStub::vdso(self)
    }
    fn wipe(&mut self) -> Result<(), PlatformError> {
        PtraceStub::wipe(self)
    }
    fn cpu_ticks(&self) -> (u64, u64) {
        PtraceStub::cpu_ticks(self)
    }
    fn cpu_time_ns(&self) -> u64 {
        PtraceStub::cpu_time_ns(self)
    }
    fn kill(&mut self) {
        PtraceStub::kill(self)
    }
    fn adopt_fd(&mut self, fd: RawFd) -> Result<(), PlatformError> {
        PtraceStub::adopt_fd(self, fd)
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}
