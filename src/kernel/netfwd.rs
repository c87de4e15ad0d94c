//! The user-mode NAT's host side (`ethN=user,hostfwd=...`): each port
//! forward is a host listener on the host event loop; each connection it
//! accepts is paired with a NAT-side TCP connection to the guest's port
//! on that ethN (`NetStack::nat_connect`), and bytes are pumped between the
//! two without blocking: host → guest while the NAT socket has room,
//! guest → host while the host socket takes them; each side's end of
//! stream is passed on as a half-close. The host fds are watched for
//! reading only while there is room to put what they bring, and for
//! writing only while guest data waits, so level-triggered readiness
//! never spins.
//!
//! Outbound: a guest SYN leaving on an ethN for an address and port with
//! no NAT connection yet is held by the stack; `net_outbound` starts the
//! host connection (the NAT's gateway, 10.0.2.2 on eth0, means the
//! host's 127.0.0.1) without waiting
//! for it: the host socket is watched for writing, and once it is open
//! the SYN reaches a NAT socket listening on that destination, which is
//! pumped like a forward; if the host's connect fails, the guest's
//! connect fails with the host's errno (ECONNREFUSED, ETIMEDOUT,
//! EHOSTUNREACH, ENETUNREACH: `guest_errno`). The kernel thread never
//! waits on a host connect.

use smoltcp::socket::tcp::State;

use super::core::Kernel;
use super::hostsrc::HostSource;
use crate::config::eth::{EthSpec, EthTransport};
use crate::errno::Errno;
use crate::host::event_loop::{Interest, Token};
use crate::host::netsock::{HostListener, HostStream};
use crate::net::inet::stack::NatHandle;

/// Most bytes moved per host read (into the NAT socket's send ring).
const CHUNK: usize = 64 << 10;
/// How long opening an outbound connection on the host may take before
/// the guest's connect fails with ETIMEDOUT: a backstop, the host's own
/// SYN retries give up first (127 s with Linux's tcp_syn_retries 6), and
/// the guest's socket has its own limit (`TCP_SYNCNT`, socket.rs).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(130);

/// The guest's errno for a host connect that failed: what the host said
/// when Linux would say the same to the guest, else ECONNREFUSED (the
/// NAT's reset).
fn guest_errno(e: &std::io::Error) -> Errno {
    const PASSED: [Errno; 6] = [
        Errno::ECONNREFUSED,
        Errno::ETIMEDOUT,
        Errno::EHOSTUNREACH,
        Errno::ENETUNREACH,
        Errno::EACCES,
        Errno::EPERM,
    ];
    e.raw_os_error()
        .and_then(|n| PASSED.into_iter().find(|p| p.0 == n))
        .unwrap_or(Errno::ECONNREFUSED)
}

struct Forward {
    listener: HostListener,
    /// The interface (ethN) and the guest's port there.
    n: u8,
    guest_port: u16,
}

struct Conn {
    stream: HostStream,
    h: NatHandle,
    token: Token,
    interest: Interest,
    host_eof: bool,
    guest_eof_sent: bool,
    /// The host socket had nothing more to read at the last try: not
    /// read again until the event loop says it is readable
    /// (`net_conns_ready`), rather than a failed read per stack run.
    host_dry: bool,
}

/// An outbound host connection still opening.
struct Opening {
    stream: HostStream,
    id: u64,
    token: Token,
    since: std::time::Instant,
}

#[derive(Default)]
pub struct NetHost {
    forwards: Vec<Forward>,
    conns: Vec<Conn>,
    opening: Vec<Opening>,
    /// UDP flows and the DNS forwarder (`netudp.rs`).
    pub udp: super::netudp::UdpNat,
    /// The tap devices of `ethN=tuntap` and the switch ports of
    /// `ethN=daemon` (`nettap.rs`).
    pub taps: Vec<super::nettap::TapDev>,
    /// Each attached ethN's configuration, as given.
    pub specs: Vec<EthSpec>,
}

impl NetHost {
    /// Forwarded connections open now (tests).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Outbound host connections still opening (tests).
    pub fn opening(&self) -> usize {
        self.opening.len()
    }
}

/// Why an ethN could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Fwd(#[from] FwdError),
    #[error(transparent)]
    Tap(#[from] super::nettap::TapError),
}

/// Why a port forward could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("eth{n}: hostfwd=tcp:{addr}-:{port}: {source}")]
pub struct FwdError {
    pub n: u8,
    pub addr: std::net::SocketAddrV4,
    pub port: u16,
    #[source]
    pub source: std::io::Error,
}

impl Kernel {
    /// `config eth<N>=<spec>` from the mconsole: ethN added at run time,
    /// as on the command line (a tap or switch port starts down with no
    /// address, a user-mode NAT up with its own). Err is the reply.
    pub fn net_hot_add(&mut self, n: u8, spec: &str) -> Result<(), String> {
        let parsed = crate::config::eth::parse(&n.to_string(), spec)
            .map_err(|why| format!("eth{n}={spec}: {why}"))?;
        if self.net_host.specs.iter().any(|s| s.index == n) || self.net().eth_exists(n) {
            return Err(format!("eth{n} is already configured"));
        }
        self.net_attach(std::slice::from_ref(&parsed))
            .map_err(|e| e.to_string())?;
        // Guests waiting on the new interface (its DHCP, its routes) see
        // it on their next look; the stack runs once now.
        self.net_settle();
        log::info!("eth{n}={spec}: added through the mconsole");
        Ok(())
    }

    /// `config eth<N>`: ethN's configuration as given ("" if none).
    pub fn net_describe(&self, n: u8) -> String {
        self.net_host
            .specs
            .iter()
            .find(|s| s.index == n)
            .map(crate::config::eth::describe)
            .unwrap_or_default()
    }

    /// Brings up the `eth<N>=` devices, in the order of their numbers
    /// (the first configured one gets the default route): each on its
    /// user-mode NAT, with its port forwards' host listeners.
    pub fn net_attach(&mut self, specs: &[EthSpec]) -> Result<(), NetError> {
        let mut specs: Vec<&EthSpec> = specs.iter().collect();
        specs.sort_by_key(|s| s.index);
        for spec in specs {
            let n = spec.index;
            let (fwds, resolver, configured) = match &spec.transport {
                EthTransport::User {
                    fwds,
                    resolver,
                    configured,
                } => (fwds, resolver, configured),
                EthTransport::Tuntap { dev, mac } => {
                    let mac = mac.unwrap_or_else(|| crate::net::packet::eth_mac(n));
                    self.tap_attach(n, dev, mac)?;
                    self.net_host.specs.push(spec.clone());
                    continue;
                }
                EthTransport::Daemon { mac, ctl } => {
                    let mac = mac.unwrap_or_else(|| crate::net::packet::eth_mac(n));
                    self.switch_attach(n, ctl, mac)?;
                    self.net_host.specs.push(spec.clone());
                    continue;
                }
            };
            // Every host listener first: a port in use fails the whole
            // interface before anything of it exists (a hot-add leaves
            // nothing behind).
            let mut listeners = Vec::with_capacity(fwds.len());
            for f in fwds {
                let err = |source| FwdError {
                    n,
                    addr: f.host,
                    port: f.guest_port,
                    source,
                };
                listeners.push((HostListener::bind(f.host).map_err(err)?, f));
            }
            let seed = self.rng.next_u64();
            self.net().attach_user_nat(n, seed, *configured);
            if let Some(r) = self.net_host.udp.resolvers.get_mut(usize::from(n)) {
                *r = resolver.or_else(crate::host::netsock::host_resolver);
            }
            self.net_host.specs.push(spec.clone());
            for (listener, f) in listeners {
                let i = self.net_host.forwards.len();
                self.register_host_source(
                    listener.raw_fd(),
                    Interest::READ,
                    HostSource::NetForward(i),
                )
                .map_err(|source| FwdError {
                    n,
                    addr: f.host,
                    port: f.guest_port,
                    source,
                })?;
                self.net_host.forwards.push(Forward {
                    listener,
                    n,
                    guest_port: f.guest_port,
                });
            }
        }
        Ok(())
    }

    /// A host listener is readable: take its connections.
    pub(super) fn net_forward_ready(&mut self, i: usize) {
        loop {
            let Some(fwd) = self.net_host.forwards.get(i) else {
                return;
            };
            let (n, port) = (fwd.n, fwd.guest_port);
            let stream = match fwd.listener.accept() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) => {
                    log::debug!("hostfwd accept: {e}");
                    break;
                }
            };
            let Some(h) = self.net().nat_connect(n, port) else {
                continue;
            };
            let token = match self.register_host_source(
                stream.raw_fd(),
                Interest::READ,
                HostSource::NetConn,
            ) {
                Ok(t) => t,
                Err(e) => {
                    log::debug!("hostfwd: cannot watch a connection: {e}");
                    self.net().nat_remove(h);
                    continue;
                }
            };
            self.net_host.conns.push(Conn {
                stream,
                h,
                token,
                interest: Interest::READ,
                host_eof: false,
                guest_eof_sent: false,
                host_dry: false,
            });
        }
        self.net_settle();
    }

    /// Starts on the host the connections the guest started out through
    /// the NAT (10.0.2.2 is the host's 127.0.0.1), and hands those that
    /// opened or failed since to the stack; true if anything changed.
    pub(super) fn net_outbound(&mut self) -> bool {
        let Some(st) = self.inet.as_mut() else {
            return false;
        };
        let reqs = st.take_outbound();
        let mut changed = !reqs.is_empty();
        for r in reqs {
            let resolver = self.resolver_of(r.n);
            let dst = match super::netudp::host_dst(&r.net, r.dst, resolver) {
                Some(std::net::SocketAddr::V4(a)) => a,
                // Nowhere on the host: refused at once.
                _ => {
                    self.net().outbound_done(r.id, Err(Errno::ECONNREFUSED));
                    continue;
                }
            };
            let started = HostStream::connect_start(dst).and_then(|stream| {
                let t = self.register_host_source(
                    stream.raw_fd(),
                    Interest::WRITE,
                    HostSource::NetConn,
                )?;
                Ok((stream, t))
            });
            match started {
                Ok((stream, token)) => self.net_host.opening.push(Opening {
                    stream,
                    id: r.id,
                    token,
                    since: std::time::Instant::now(),
                }),
                Err(e) => {
                    log::debug!("outbound {dst}: {e}");
                    self.net().outbound_done(r.id, Err(guest_errno(&e)));
                }
            }
        }
        let opening = std::mem::take(&mut self.net_host.opening);
        for o in opening {
            let res = match o.stream.connected() {
                Ok(false) if o.since.elapsed() < CONNECT_TIMEOUT => {
                    self.net_host.opening.push(o);
                    continue;
                }
                Ok(false) => {
                    log::debug!("outbound: no answer in {CONNECT_TIMEOUT:?}");
                    Err(Errno::ETIMEDOUT)
                }
                Ok(true) => Ok(()),
                Err(e) => {
                    log::debug!("outbound: {e}");
                    Err(guest_errno(&e))
                }
            };
            changed = true;
            let h = self.net().outbound_done(o.id, res);
            match h.filter(|_| res.is_ok()) {
                Some(h) => {
                    if let Err(e) =
                        self.host_loop
                            .modify(o.stream.raw_fd(), Interest::READ, o.token)
                    {
                        log::debug!("outbound: cannot watch a connection: {e}");
                        self.deregister_host_source(o.token);
                        self.net().nat_remove(h);
                        continue;
                    }
                    self.net_host.conns.push(Conn {
                        stream: o.stream,
                        h,
                        token: o.token,
                        interest: Interest::READ,
                        host_eof: false,
                        guest_eof_sent: false,
                        host_dry: false,
                    });
                }
                None => self.deregister_host_source(o.token),
            }
        }
        changed
    }

    /// The event loop saw a forwarded connection's host socket ready:
    /// each is read again at the next pump.
    pub(super) fn net_conns_ready(&mut self) {
        for c in &mut self.net_host.conns {
            c.host_dry = false;
        }
    }

    /// Moves bytes between every forwarded connection's two sides;
    /// true if anything moved or ended.
    pub(super) fn net_pump(&mut self) -> bool {
        if self.net_host.conns.is_empty() {
            return false;
        }
        let mut conns = std::mem::take(&mut self.net_host.conns);
        let mut moved = false;
        conns.retain_mut(|c| {
            let (keep, m) = self.pump_one(c);
            moved |= m;
            if !keep {
                self.deregister_host_source(c.token);
                self.net().nat_remove(c.h);
                moved = true;
            }
            keep
        });
        self.net_host.conns = conns;
        moved
    }

    /// One connection: (keep it, anything moved).
    fn pump_one(&mut self, c: &mut Conn) -> (bool, bool) {
        let Some(st) = self.inet.as_mut() else {
            return (false, false);
        };
        let Some(s) = st.nat_tcp(c.h) else {
            return (false, false);
        };
        let mut moved = false;
        let state = s.state();
        let open = !matches!(state, State::Listen | State::SynSent | State::SynReceived);
        // host -> guest
        // Read straight into the socket's send ring (its free run up to
        // the ring's end, then the run from its start): no bounce buffer.
        for _ in 0..2 {
            let room = s.send_capacity() - s.send_queue();
            if !open || c.host_eof || c.host_dry || !s.may_send() || room == 0 {
                break;
            }
            let stream = &mut c.stream;
            let r = s.send(|free| {
                let n = free.len().min(CHUNK);
                if n == 0 {
                    return (0, (0, Ok(None)));
                }
                match stream.read(&mut free[..n]) {
                    Ok(Some(k)) => (k, (n, Ok(Some(k)))),
                    other => (0, (n, other)),
                }
            });
            match r {
                Ok((_, Ok(Some(0)))) => {
                    c.host_eof = true;
                    s.close();
                    moved = true;
                    break;
                }
                // The run was filled: the host may have more.
                Ok((asked, Ok(Some(k)))) if k == asked => moved = true,
                // A short read: the host socket is empty for now.
                Ok((_, Ok(Some(_)))) => {
                    moved = true;
                    c.host_dry = true;
                    break;
                }
                Ok((n, Ok(None))) => {
                    c.host_dry = n > 0;
                    break;
                }
                Err(_) => break,
                Ok((_, Err(_))) => return (false, true),
            }
        }
        // guest -> host
        let mut want_write = false;
        while s.can_recv() {
            let stream = &mut c.stream;
            let r = s.recv(|data| match stream.write(data) {
                Ok(n) => (n, Ok(n)),
                Err(e) => (0, Err(e)),
            });
            match r {
                Ok(Ok(0)) => {
                    want_write = true;
                    break;
                }
                Ok(Ok(_)) => moved = true,
                _ => return (false, true),
            }
        }
        if open && !s.may_recv() && !s.can_recv() && !c.guest_eof_sent {
            c.stream.shutdown_write();
            c.guest_eof_sent = true;
            moved = true;
        }
        let state = s.state();
        if matches!(state, State::Closed | State::TimeWait) && !s.can_recv() {
            // Done, or the guest refused or reset it.
            return (false, true);
        }
        let room = s.send_capacity() - s.send_queue();
        let want = Interest {
            read: !c.host_eof && room > 0,
            write: want_write,
        };
        if want != c.interest {
            if let Err(e) = self.host_loop.modify(c.stream.raw_fd(), want, c.token) {
                log::debug!("hostfwd: {e}");
            }
            c.interest = want;
        }
        (true, moved)
    }
}
