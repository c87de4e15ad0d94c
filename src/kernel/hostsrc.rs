//! Host event sources: what the kernel registered with the host event
//! loop (`host/event_loop.rs`), the idle wait, and handing each event to
//! its owner.
//!
//! To add a source (a management socket, a tap device, a host socket):
//! add a [`HostSource`] variant naming the owner, call
//! [`Kernel::register_host_source`] with the fd and the readiness wanted,
//! handle the variant in the dispatch match of `Kernel::poll_host` (read without
//! blocking, then wake the guest tasks that wait for it), and call
//! [`Kernel::deregister_host_source`] before the fd is closed.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use super::core::Kernel;
use crate::host::event_loop::{Interest, Token};

/// The owner of a registered host fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostSource {
    /// umlrun's stdin as the guest console's input.
    Console,
    /// The management console socket (`kernel/mconsole.rs`).
    Mconsole,
    /// A user-mode NAT port forward's host listener (`kernel/netfwd.rs`),
    /// by index.
    NetForward(usize),
    /// A forwarded connection's host socket (`kernel/netfwd.rs`).
    NetConn,
    /// ethN's host tap device (`kernel/nettap.rs`), by N.
    Tap(u8),
}

impl Kernel {
    /// Watches `fd` for `interest` on behalf of `source`; returns the
    /// token its events will carry.
    pub fn register_host_source(
        &mut self,
        fd: RawFd,
        interest: Interest,
        source: HostSource,
    ) -> io::Result<Token> {
        let token = Token(self.next_host_token);
        self.host_loop.register(fd, interest, token)?;
        self.next_host_token += 1;
        self.host_sources.insert(token.0, (source, fd));
        Ok(token)
    }

    /// Stops watching the fd registered under `token`.
    pub fn deregister_host_source(&mut self, token: Token) {
        if let Some((_, fd)) = self.host_sources.remove(&token.0) {
            if let Err(e) = self.host_loop.deregister(fd) {
                log::debug!("deregistering host fd {fd}: {e}");
            }
        }
    }

    /// Registers the console's input. One epoll cannot watch (a regular
    /// file as stdin) is always ready: it is read on every turn instead.
    pub(super) fn register_console(&mut self) {
        let Some(fd) = self.console.host_input_fd() else {
            return;
        };
        match self.register_host_source(fd, Interest::READ, HostSource::Console) {
            Ok(t) => self.console_token = Some(t),
            Err(e) => {
                log::debug!("console input fd {fd} cannot be watched ({e}): read on every turn");
                self.console_always_ready = true;
            }
        }
    }

    /// Waits for host events until `deadline` (None: until one comes; now:
    /// only looks) and hands each to its owner.
    pub(super) fn poll_host(&mut self, deadline: Option<Instant>) {
        let mut timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if self.console_always_ready && self.console.host_input_fd().is_some() {
            timeout = Some(std::time::Duration::ZERO);
        }
        let mut ready = std::mem::take(&mut self.host_ready);
        self.host_loop.wait(timeout, &mut ready);
        let mut console = self.console_always_ready;
        let mut mconsole = false;
        let mut net_conn = false;
        let mut forwards = Vec::new();
        let mut taps = Vec::new();
        // Each event goes to its owner.
        for r in ready.drain(..) {
            match self.host_sources.get(&r.token.0).map(|(s, _)| *s) {
                // Read below, together with the resize check.
                Some(HostSource::Console) => console = true,
                Some(HostSource::Mconsole) => mconsole = true,
                Some(HostSource::NetForward(i)) => forwards.push(i),
                Some(HostSource::NetConn) => net_conn = true,
                Some(HostSource::Tap(n)) => taps.push(n),
                None => log::debug!("host event for a token no longer registered: {r:?}"),
            }
        }
        self.host_ready = ready;
        if mconsole {
            self.mconsole_service();
        }
        for i in forwards {
            self.net_forward_ready(i);
        }
        for n in taps {
            self.net_tap_ready(n);
        }
        if net_conn {
            self.net_conns_ready();
            self.net_settle();
        }
        let resized = crate::host::signals::take_resized();
        if self.console.take_host_input(console, resized) > 0 {
            self.console_input_arrived();
        }
        if console && self.console.host_input_fd().is_none() {
            // End of input: level-triggered readiness would repeat forever.
            if let Some(t) = self.console_token.take() {
                self.deregister_host_source(t);
            }
            self.console_always_ready = false;
        }
    }

    /// Is any host source ready now (a running guest then yields to it)?
    pub(super) fn host_input_pending(&mut self) -> bool {
        self.console_always_ready || self.host_loop.any_ready()
    }
}
