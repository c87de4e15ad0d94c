//! One inet socket (AF_INET or AF_INET6; TCP or UDP) over the stack:
//! Linux's socket states on smoltcp's sockets. A listening socket keeps
//! `backlog` listening smoltcp sockets on its port; each that completes a
//! handshake is an accept()able connection and is replaced by a fresh
//! one. No guest memory or task here: the caller (`kernel/files/inet.rs`
//! and `syscalls/inet.rs`) decodes, polls the stack and wakes waiters.
//!
//! `Err(EAGAIN)` always means "would block": the caller sleeps or
//! returns it, as the file's O_NONBLOCK and MSG_DONTWAIT say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::socket::{icmp, udp};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::addr::{AddrReq, Family};
use super::opts::{Effect, InetOpts};
use super::stack::{NetStack, Proto};
use crate::errno::{Errno, KResult};
use crate::kernel::files::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};

const POLLRDHUP: u32 = 0x2000;
/// Most connections one listener holds unaccepted (each is a smoltcp
/// socket with its buffers).
pub const BACKLOG_MAX: usize = 32;
/// smoltcp buffers: at least this, at most `BUF_MAX`, else SO_*BUF's value.
pub const BUF_MIN: usize = 64 << 10;
const BUF_MAX: usize = 4 << 20;
/// A UDP socket's receive queue, in datagrams.
const UDP_PACKETS: usize = 64;
/// The largest UDP payload over IPv4 (65535 less the headers).
pub const UDP_MAX: usize = 65507;

#[derive(Debug)]
enum Conn {
    /// Neither listening nor connected (maybe bound).
    Idle,
    Listening {
        slots: Vec<SocketHandle>,
        backlog: usize,
    },
    Tcp {
        h: SocketHandle,
        connecting: bool,
    },
    Udp {
        h: SocketHandle,
    },
    /// A ping socket (SOCK_DGRAM, IPPROTO_ICMP): echo requests out,
    /// replies to its identifier in.
    Icmp {
        h: SocketHandle,
    },
}

/// A socket's readiness, counts and state at one moment
/// (`InetSocket::signature`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub mask: u32,
    /// Bytes (or connections, on a listener) that ever arrived: taken
    /// by the guest plus still queued.
    pub arrived: u64,
    /// Bytes sent that left the send queue.
    pub acked: u64,
    pub state: u8,
}

/// What a receive gave.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied.
    pub n: usize,
    /// The datagram's whole length (MSG_TRUNC).
    pub full: usize,
    pub from: Option<SocketAddr>,
}

#[derive(Debug)]
pub struct InetSocket {
    pub family: Family,
    pub proto: Proto,
    /// Owner id of this socket's port bindings.
    pub owner: u64,
    pub opts: InetOpts,
    bound: Option<SocketAddr>,
    conn: Conn,
    error: Option<Errno>,
    shut_rd: bool,
    shut_wr: bool,
    /// The stack closed the connection under us (refused or reset) and
    /// the error was noted.
    closed_seen: bool,
    /// A UDP socket's connected peer.
    peer: Option<SocketAddr>,
    /// The source address its connect chose, for a UDP or ping socket
    /// bound to the wildcard (getsockname shows it, as Linux's).
    src: Option<IpAddr>,
    /// When a connect still in its handshake gives up (ETIMEDOUT): the
    /// SYN retries of TCP_SYNCNT, as Linux times them.
    connect_deadline: Option<smoltcp::time::Instant>,
    /// A ping socket's reply taken by MSG_PEEK (smoltcp cannot peek).
    peeked: Option<(Vec<u8>, IpAddr)>,
    /// SOCK_RAW (ICMP only, root's): sends go out as the program made
    /// them, reads get the IP header too; it hears the echo replies to
    /// the identifier of its first echo request (not every ICMP packet,
    /// as Linux's would).
    pub raw: bool,
    /// Bytes (UDP: datagram payload; a listener: connections) the guest
    /// took from this socket, and put into it: with the queue lengths,
    /// counts that only grow (`signature`).
    taken: u64,
    given: u64,
    /// A send found no room: freed room is an event (Linux's
    /// SOCK_NOSPACE).
    nospace: bool,
}

fn to_sa(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(e.addr), e.port)
}

fn listen_ep(a: SocketAddr) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!a.ip().is_unspecified()).then(|| a.ip().into()),
        port: a.port(),
    }
}

fn buf_size(opt: usize) -> usize {
    opt.clamp(BUF_MIN, BUF_MAX)
}

impl InetSocket {
    pub fn new(st: &mut NetStack, family: Family, proto: Proto) -> InetSocket {
        InetSocket {
            family,
            proto,
            owner: st.new_owner(),
            opts: InetOpts::new(proto),
            bound: None,
            conn: Conn::Idle,
            error: None,
            shut_rd: false,
            shut_wr: false,
            closed_seen: false,
            peer: None,
            connect_deadline: None,
            src: None,
            peeked: None,
            raw: false,
            taken: 0,
            given: 0,
            nospace: false,
        }
    }

    fn new_tcp(&self, st: &mut NetStack) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0u8; buf_size(self.opts.rcvbuf)]);
        let want = buf_size(self.opts.sndbuf);
        let tx_len = if self.opts.sndbuf_locked {
            want
        } else {
            st.autotuned_send_buf(want)
        };
        let tx = tcp::SocketBuffer::new(vec![0u8; tx_len]);
        let mut s = tcp::Socket::new(rx, tx);
        // lo answers at once: a delayed ACK would only add latency.
        s.set_ack_delay(None);
        s.set_nagle_enabled(!self.opts.nodelay);
        if self.opts.keepalive {
            s.set_keep_alive(Some(smoltcp::time::Duration::from_secs(7200)));
        }
        st.sockets.add(s)
    }

    fn new_udp(&self, st: &mut NetStack) -> SocketHandle {
        let cap = buf_size(self.opts.rcvbuf).max(2 * UDP_MAX);
        let rx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0u8; cap],
        );
        let tx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0u8; cap],
        );
        st.sockets.add(udp::Socket::new(rx, tx))
    }

    fn new_icmp(&self, st: &mut NetStack) -> SocketHandle {
        let cap = buf_size(self.opts.rcvbuf);
        let rx = icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0u8; cap],
        );
        let tx = icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0u8; cap],
        );
        st.sockets.add(icmp::Socket::new(rx, tx))
    }

    /// Applies what a setsockopt changed to a live connection.
    pub fn apply(&mut self, st: &mut NetStack, e: Effect) {
        let Conn::Tcp { h, .. } = self.conn else {
            return;
        };
        match e {
            Effect::Nagle(on) => st.tcp(h).set_nagle_enabled(on),
            Effect::KeepAlive(on) => st
                .tcp(h)
                .set_keep_alive(on.then(|| smoltcp::time::Duration::from_secs(7200))),
            Effect::None => {}
        }
    }

    /// `ip` as this socket's family shows it (v4-mapped in an AF_INET6
    /// socket).
    fn in_family(&self, ip: IpAddr) -> IpAddr {
        match (ip, self.family) {
            (IpAddr::V4(v), Family::V6) => IpAddr::V6(v.to_ipv6_mapped()),
            _ => ip,
        }
    }

    /// The wildcard address of this socket's family, port 0.
    fn any(&self) -> SocketAddr {
        SocketAddr::new(self.family.any(), 0)
    }

    pub fn bind(&mut self, st: &mut NetStack, a: SocketAddr, privileged: bool) -> KResult<()> {
        if self.bound.is_some() || !matches!(self.conn, Conn::Idle) {
            return Err(Errno::EINVAL);
        }
        if self.family == Family::V6 && a.is_ipv4() && self.opts.v6only {
            return Err(Errno::EINVAL);
        }
        let ip = a.ip();
        if !ip.is_unspecified() && !st.is_local(ip) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        // A ping socket's "port" is its echo identifier: any may be taken.
        if a.port() != 0 && a.port() < 1024 && !privileged && self.proto != Proto::Icmp {
            return Err(Errno::EACCES);
        }
        let addr = (!ip.is_unspecified()).then_some(ip);
        let port = st.bind_port(self.owner, self.proto, addr, a.port(), self.opts.reuseaddr)?;
        let local = SocketAddr::new(ip, port);
        self.bound = Some(local);
        if self.proto == Proto::Udp {
            let h = self.new_udp(st);
            if st.udp(h).bind(listen_ep(local)).is_err() {
                st.sockets.remove(h);
                st.unbind(self.owner);
                self.bound = None;
                return Err(Errno::EINVAL);
            }
            self.conn = Conn::Udp { h };
        }
        if self.proto == Proto::Icmp {
            let h = self.new_icmp(st);
            if st.icmp(h).bind(icmp::Endpoint::Ident(port)).is_err() {
                st.sockets.remove(h);
                st.unbind(self.owner);
                self.bound = None;
                return Err(Errno::EINVAL);
            }
            self.conn = Conn::Icmp { h };
        }
        Ok(())
    }

    fn autobind(&mut self, st: &mut NetStack) -> KResult<SocketAddr> {
        if self.bound.is_none() {
            self.bind(st, self.any(), true)?;
        }
        Ok(self.bound.expect("bound"))
    }

    pub fn listen(&mut self, st: &mut NetStack, backlog: i32) -> KResult<()> {
        if self.proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        let want = (backlog.max(0) as usize).saturating_add(1).min(BACKLOG_MAX);
        match &mut self.conn {
            Conn::Tcp { .. } | Conn::Udp { .. } | Conn::Icmp { .. } => return Err(Errno::EINVAL),
            Conn::Listening { backlog, .. } => *backlog = want,
            Conn::Idle => {
                let local = self.autobind(st)?;
                st.listen_port(self.owner, Proto::Tcp)?;
                let _ = local;
                self.conn = Conn::Listening {
                    slots: Vec::new(),
                    backlog: want,
                };
            }
        }
        self.refill(st);
        Ok(())
    }

    /// Keeps `backlog` slots listening (a slot reset before accept
    /// listens again).
    fn refill(&mut self, st: &mut NetStack) {
        let Some(local) = self.bound else { return };
        let Conn::Listening { slots, backlog } = &self.conn else {
            return;
        };
        let (mut slots, backlog) = (slots.clone(), *backlog);
        for &h in &slots {
            if st.tcp(h).state() == State::Closed {
                let _ = st.tcp(h).listen(listen_ep(local));
            }
        }
        while slots.len() < backlog {
            let h = self.new_tcp(st);
            if st.tcp(h).listen(listen_ep(local)).is_err() {
                st.sockets.remove(h);
                break;
            }
            slots.push(h);
        }
        self.conn = Conn::Listening { slots, backlog };
    }

    fn ready_slot(&self, st: &mut NetStack) -> Option<usize> {
        let Conn::Listening { slots, .. } = &self.conn else {
            return None;
        };
        slots.iter().position(|&h| {
            !matches!(
                st.tcp(h).state(),
                State::Listen | State::SynReceived | State::Closed
            )
        })
    }

    /// Bytes (datagram payload for UDP) waiting to be read, and
    /// waiting to be sent or acknowledged.
    fn queues(&self, st: &mut NetStack) -> (usize, usize) {
        match self.conn {
            Conn::Tcp { h, .. } => {
                let s = st.tcp(h);
                (s.recv_queue(), s.send_queue())
            }
            Conn::Udp { h } => {
                let s = st.udp(h);
                (s.recv_queue(), s.send_queue())
            }
            Conn::Icmp { h } => {
                let s = st.icmp(h);
                (s.recv_queue(), s.send_queue())
            }
            Conn::Idle | Conn::Listening { .. } => (0, 0),
        }
    }

    /// A connected TCP socket's free send room now (None: not one).
    pub fn send_room(&self, st: &mut NetStack) -> Option<usize> {
        match self.conn {
            Conn::Tcp { h, .. } => {
                let s = st.tcp(h);
                Some(s.send_capacity().saturating_sub(s.send_queue()))
            }
            _ => None,
        }
    }

    /// A connected TCP socket's received bytes waiting now (None: not one).
    pub fn recv_waiting(&self, st: &mut NetStack) -> Option<usize> {
        match self.conn {
            Conn::Tcp { h, .. } => Some(st.tcp(h).recv_queue()),
            _ => None,
        }
    }

    /// Bytes queued both ways (the guest memory they are charged as).
    pub fn queued(&self, st: &mut NetStack) -> usize {
        let (rx, tx) = self.queues(st);
        rx.saturating_add(tx)
    }

    /// The socket's readiness, counts and state now, and whether that is
    /// an event for its waiters since `old` (None: always), as Linux's
    /// socket callbacks see one: new bytes or a connection arrived, a
    /// readiness bit came up, the state changed, or room was freed for a
    /// sender that had found none. Its own reads and writes are not
    /// events (an edge-triggered epoll reports a socket again only on
    /// one of these). The counts only grow, so a read between two calls
    /// can never hide an arrival.
    pub fn signature(&mut self, st: &mut NetStack, old: Option<Signature>) -> (Signature, bool) {
        let mask = self.poll(st);
        let (rx, tx) = self.queues(st);
        let state = match &self.conn {
            Conn::Idle => 0,
            Conn::Listening { .. } => 1,
            Conn::Tcp { h, connecting } => {
                2 + st.tcp(*h).state() as u8 + 16 * u8::from(*connecting)
            }
            Conn::Udp { .. } => 40,
            Conn::Icmp { .. } => 41,
        };
        let arrived = match &self.conn {
            Conn::Listening { slots, .. } => {
                let ready = slots
                    .iter()
                    .filter(|&&h| {
                        !matches!(
                            st.tcp(h).state(),
                            State::Listen | State::SynReceived | State::Closed
                        )
                    })
                    .count();
                self.taken.wrapping_add(ready as u64)
            }
            _ => self.taken.wrapping_add(rx as u64),
        };
        let now = Signature {
            mask,
            arrived,
            acked: self.given.wrapping_sub(tx as u64),
            state,
        };
        let event = match old {
            None => true,
            Some(o) => {
                let room = self.nospace && now.acked != o.acked;
                if room {
                    self.nospace = false;
                }
                now.mask & !o.mask != 0 || now.arrived != o.arrived || now.state != o.state || room
            }
        };
        (now, event)
    }

    /// A connection that completed its handshake, as a new socket.
    pub fn accept(&mut self, st: &mut NetStack) -> KResult<InetSocket> {
        if !matches!(self.conn, Conn::Listening { .. }) {
            return Err(Errno::EINVAL);
        }
        let Some(i) = self.ready_slot(st) else {
            self.refill(st);
            return Err(Errno::EAGAIN);
        };
        let Conn::Listening { slots, .. } = &mut self.conn else {
            unreachable!("checked above");
        };
        let h = slots.remove(i);
        self.taken = self.taken.wrapping_add(1);
        self.refill(st);
        let local = st.tcp(h).local_endpoint().map(to_sa);
        let mut child = InetSocket::new(st, self.family, Proto::Tcp);
        child.opts = self.opts.clone();
        child.bound = local;
        child.conn = Conn::Tcp {
            h,
            connecting: false,
        };
        Ok(child)
    }

    /// Starts a connection (TCP) or sets the default peer (UDP). A TCP
    /// start is finished by `connect_check` after the stack ran.
    /// `wait`: the caller sleeps until the handshake ends (blocking).
    pub fn connect(&mut self, st: &mut NetStack, req: AddrReq, wait: bool) -> KResult<()> {
        if self.proto != Proto::Tcp {
            match req {
                AddrReq::Unspec => {
                    self.peer = None;
                    self.src = None;
                }
                AddrReq::Addr(a) => {
                    let bound = self.autobind(st)?;
                    let peer = unspec_to_lo(a);
                    self.peer = Some(peer);
                    self.src = None;
                    if bound.ip().is_unspecified() {
                        self.src = st.source_of(peer.ip()).map(|ip| self.in_family(ip));
                    }
                }
            }
            return Ok(());
        }
        let a = match req {
            AddrReq::Unspec => {
                if let Conn::Tcp { h, .. } = self.conn {
                    st.tcp(h).abort();
                    st.orphan(h);
                    self.conn = Conn::Idle;
                }
                return Ok(());
            }
            AddrReq::Addr(a) => unspec_to_lo(a),
        };
        match self.conn {
            Conn::Listening { .. } => return Err(Errno::EISCONN),
            Conn::Tcp {
                connecting: true, ..
            } => return self.connect_check(st, wait),
            Conn::Tcp { .. } => return Err(Errno::EISCONN),
            Conn::Udp { .. } | Conn::Icmp { .. } => unreachable!("TCP socket"),
            Conn::Idle => {}
        }
        if self.family == Family::V6 && a.is_ipv4() && self.opts.v6only {
            return Err(Errno::ENETUNREACH);
        }
        if a.port() == 0 {
            return Err(Errno::ECONNREFUSED);
        }
        if !st.is_local(a.ip()) && !st.routes(a.ip()) {
            return Err(Errno::ENETUNREACH);
        }
        let local = self.autobind(st)?;
        let h = self.new_tcp(st);
        if let Err(e) = st.tcp_connect(h, a.into(), listen_ep(local)) {
            st.sockets.remove(h);
            return Err(e);
        }
        let give_up = syn_timeout(self.opts.syn_retries());
        st.tcp(h).set_timeout(Some(give_up));
        self.connect_deadline = Some(st.now() + give_up);
        self.conn = Conn::Tcp {
            h,
            connecting: true,
        };
        self.error = None;
        self.closed_seen = false;
        Err(Errno::EINPROGRESS)
    }

    /// Where a started connection stands: Ok once established,
    /// EAGAIN while the handshake runs (EALREADY for a caller that does
    /// not wait), its error if it failed.
    pub fn connect_check(&mut self, st: &mut NetStack, wait: bool) -> KResult<()> {
        self.sync(st);
        let Conn::Tcp { h, connecting } = self.conn else {
            return Err(Errno::ENOTCONN);
        };
        if !connecting {
            return Err(Errno::EISCONN);
        }
        match st.tcp(h).state() {
            State::SynSent | State::SynReceived => {
                if wait {
                    Err(Errno::EAGAIN)
                } else {
                    Err(Errno::EALREADY)
                }
            }
            State::Closed => {
                st.sockets.remove(h);
                self.conn = Conn::Idle;
                let e = self.error.take().unwrap_or(Errno::ECONNABORTED);
                Err(e)
            }
            _ => {
                self.conn = Conn::Tcp {
                    h,
                    connecting: false,
                };
                Ok(())
            }
        }
    }

    /// Notes what the stack did to this socket: a refused connection or
    /// a reset becomes the pending error (SO_ERROR).
    pub fn sync(&mut self, st: &mut NetStack) {
        // A connected UDP socket hears the hard ICMP errors about its
        // datagrams (port unreachable: ECONNREFUSED), as on Linux.
        if let (Conn::Udp { h }, Some(peer)) = (&self.conn, self.peer) {
            if let Some(e) = st.take_udp_error(*h, peer) {
                self.error = Some(e);
            }
        }
        if let Conn::Tcp { h, connecting } = self.conn {
            let state = st.tcp(h).state();
            if self.connect_deadline.is_some()
                && !matches!(state, State::SynSent | State::SynReceived | State::Closed)
            {
                // Open: the handshake's time limit is not an idle limit.
                st.tcp(h).set_timeout(None);
                self.connect_deadline = None;
            }
            if !self.closed_seen && !self.shut_wr && state == State::Closed {
                self.closed_seen = true;
                if connecting {
                    // The NAT's word (the host's errno), else a handshake
                    // out of time, else a reset.
                    let timed_out = self.connect_deadline.is_some_and(|d| st.now() >= d);
                    let e = st.take_conn_error(h).unwrap_or(if timed_out {
                        Errno::ETIMEDOUT
                    } else {
                        Errno::ECONNREFUSED
                    });
                    self.connect_deadline = None;
                    self.error = Some(e);
                } else {
                    self.error = Some(Errno::ECONNRESET);
                    self.shut_rd = true;
                    self.shut_wr = true;
                }
            }
        }
    }

    /// SO_ERROR: the pending error, cleared.
    pub fn take_error(&mut self, st: &mut NetStack) -> Option<Errno> {
        self.sync(st);
        self.error.take()
    }

    /// Sends `data`. `all` (a blocking caller): a TCP send waits until
    /// the whole of it fits the send buffer (or, larger than the buffer,
    /// a buffer's worth), as Linux's blocking send returns only when all
    /// is queued.
    pub fn send_all(
        &mut self,
        st: &mut NetStack,
        data: &[u8],
        to: Option<SocketAddr>,
        all: bool,
    ) -> KResult<usize> {
        if all && self.proto == Proto::Tcp {
            if let Conn::Tcp { h, .. } = self.conn {
                let s = st.tcp(h);
                let room = s.send_capacity() - s.send_queue();
                if s.may_send() && room < data.len().min(s.send_capacity()) {
                    // Waiting for room: freed room is an event.
                    self.nospace = true;
                    return Err(Errno::EAGAIN);
                }
            }
        }
        self.send(st, data, to)
    }

    /// MSG_WAITALL: are `n` bytes there (or as many as the buffer
    /// holds), or will no more come?
    pub fn has_all(&self, st: &mut NetStack, n: usize) -> bool {
        match self.conn {
            Conn::Tcp { h, .. } => {
                let s = st.tcp(h);
                self.shut_rd || !s.may_recv() || s.recv_queue() >= n.min(s.recv_capacity())
            }
            _ => true,
        }
    }

    pub fn send(
        &mut self,
        st: &mut NetStack,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> KResult<usize> {
        let before = self.queues(st).1;
        let r = self.send_inner(st, data, to);
        let given = self.queues(st).1.saturating_sub(before);
        self.given = self.given.wrapping_add(given as u64);
        match r {
            Err(Errno::EAGAIN) => self.nospace = true,
            Ok(n) if n < data.len() => self.nospace = true,
            _ => {}
        }
        r
    }

    fn send_inner(
        &mut self,
        st: &mut NetStack,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> KResult<usize> {
        self.sync(st);
        match self.proto {
            Proto::Tcp => {
                let h = match self.conn {
                    Conn::Tcp { h, .. } if handshaking(st, h) => return Err(Errno::EAGAIN),
                    Conn::Tcp { h, .. } => h,
                    // Linux: sending on an unconnected TCP socket is EPIPE.
                    _ => return Err(Errno::EPIPE),
                };
                if let Some(e) = self.error.take() {
                    return Err(e);
                }
                if self.shut_wr || !st.tcp(h).may_send() {
                    return Err(Errno::EPIPE);
                }
                match st.tcp(h).send_slice(data) {
                    Ok(0) if !data.is_empty() => Err(Errno::EAGAIN),
                    Ok(n) => Ok(n),
                    Err(_) => Err(Errno::EPIPE),
                }
            }
            Proto::Udp => {
                if let Some(e) = self.error.take() {
                    return Err(e);
                }
                if self.shut_wr {
                    return Err(Errno::EPIPE);
                }
                let dest = match to.or(self.peer) {
                    Some(d) => unspec_to_lo(d),
                    None => return Err(Errno::EDESTADDRREQ),
                };
                if dest.port() == 0 {
                    return Err(Errno::EINVAL);
                }
                if data.len() > UDP_MAX {
                    return Err(Errno::EMSGSIZE);
                }
                if !st.is_local(dest.ip()) && !st.routes(dest.ip()) {
                    return Err(Errno::ENETUNREACH);
                }
                self.autobind(st)?;
                let Conn::Udp { h } = self.conn else {
                    return Err(Errno::EINVAL);
                };
                let ep: IpEndpoint = dest.into();
                // The source of the route's interface, as Linux picks it
                // for a socket bound to the wildcard.
                let wildcard = self.bound.is_none_or(|b| b.ip().is_unspecified());
                let local = match (ep.addr, wildcard.then(|| st.source_of(dest.ip())).flatten()) {
                    (smoltcp::wire::IpAddress::Ipv4(_), Some(IpAddr::V4(v))) => Some(v.into()),
                    _ => None,
                };
                let meta = udp::UdpMetadata {
                    endpoint: ep,
                    local_address: local,
                    meta: Default::default(),
                };
                match st.udp(h).send_slice(data, meta) {
                    Ok(()) => Ok(data.len()),
                    Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
                    Err(udp::SendError::Unaddressable) => Err(Errno::EINVAL),
                }
            }
            Proto::Icmp => self.send_ping(st, data, to),
        }
    }

    /// A ping socket's send: an ICMP echo request (header and data) whose
    /// identifier and checksum the kernel sets, as Linux's ping_sendmsg.
    fn send_ping(
        &mut self,
        st: &mut NetStack,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> KResult<usize> {
        if self.shut_wr {
            return Err(Errno::EPIPE);
        }
        let dest = match to.or(self.peer) {
            Some(d) => unspec_to_lo(d),
            None => return Err(Errno::EDESTADDRREQ),
        };
        if data.len() > UDP_MAX {
            return Err(Errno::EMSGSIZE);
        }
        let echo = data.len() >= 8 && data[0] == 8 && data[1] == 0;
        let raw_ok = self.raw && data.len() >= 8;
        if !(echo || raw_ok) {
            return Err(Errno::EINVAL);
        }
        if !st.is_local(dest.ip()) && !st.routes(dest.ip()) {
            return Err(Errno::ENETUNREACH);
        }
        let mut pkt = data.to_vec();
        if self.raw {
            if matches!(self.conn, Conn::Idle) {
                let h = self.new_icmp(st);
                let ident = u16::from_be_bytes([data[4], data[5]]);
                let _ = st.icmp(h).bind(icmp::Endpoint::Ident(ident));
                self.conn = Conn::Icmp { h };
            }
        } else {
            let ident = self.autobind(st)?.port();
            pkt[4..6].copy_from_slice(&ident.to_be_bytes());
            pkt[2..4].fill(0);
            let c = super::natpkt::checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let Conn::Icmp { h } = self.conn else {
            return Err(Errno::EINVAL);
        };
        match st.icmp(h).send_slice(&pkt, dest.ip().into()) {
            Ok(()) => Ok(data.len()),
            Err(icmp::SendError::BufferFull) => Err(Errno::EAGAIN),
            Err(icmp::SendError::Unaddressable) => Err(Errno::EINVAL),
        }
    }

    /// A ping socket's receive: an echo reply's ICMP header and data.
    fn recv_ping(&mut self, st: &mut NetStack, buf: &mut [u8], peek: bool) -> KResult<Received> {
        let Conn::Icmp { h } = self.conn else {
            return Err(Errno::EAGAIN);
        };
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.peeked.is_none() {
            if let Ok((d, a)) = st.icmp(h).recv() {
                self.peeked = Some((d.to_vec(), IpAddr::from(a)));
            }
        }
        let got = if peek {
            self.peeked.clone()
        } else {
            self.peeked.take()
        };
        // A raw socket reads the IP header too.
        let got = match (got, self.raw) {
            (Some((d, IpAddr::V4(src))), true) => {
                // The address the packet came to: lo's, or that of the
                // interface the sender is reached by.
                let dst = if src.is_loopback() {
                    Ipv4Addr::LOCALHOST
                } else {
                    st.src_for(src).unwrap_or(super::stack::ETH0_IP)
                };
                super::natpkt::icmp_in_ipv4(src, dst, &d).map(|p| (p, IpAddr::V4(src)))
            }
            (got, _) => got,
        };
        let Some((d, a)) = got else {
            if self.shut_rd {
                return Ok(Received {
                    n: 0,
                    full: 0,
                    from: None,
                });
            }
            return Err(Errno::EAGAIN);
        };
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(Received {
            n,
            full: d.len(),
            from: Some(SocketAddr::new(a, 0)),
        })
    }

    pub fn recv(&mut self, st: &mut NetStack, buf: &mut [u8], peek: bool) -> KResult<Received> {
        let before = self.queues(st).0;
        let r = self.recv_inner(st, buf, peek);
        let taken = before.saturating_sub(self.queues(st).0);
        self.taken = self.taken.wrapping_add(taken as u64);
        r
    }

    fn recv_inner(&mut self, st: &mut NetStack, buf: &mut [u8], peek: bool) -> KResult<Received> {
        self.sync(st);
        match self.proto {
            Proto::Tcp => {
                let h = match self.conn {
                    Conn::Tcp { h, .. } if handshaking(st, h) => return Err(Errno::EAGAIN),
                    Conn::Tcp { h, .. } => h,
                    _ => return Err(Errno::ENOTCONN),
                };
                if let Some(e) = self.error.take() {
                    return Err(e);
                }
                let s = st.tcp(h);
                if s.can_recv() && !buf.is_empty() {
                    let n = if peek {
                        s.peek_slice(buf)
                    } else {
                        s.recv_slice(buf)
                    }
                    .map_err(|_| Errno::ENOTCONN)?;
                    return Ok(Received {
                        n,
                        full: n,
                        from: None,
                    });
                }
                if self.shut_rd || !s.may_recv() || buf.is_empty() {
                    return Ok(Received {
                        n: 0,
                        full: 0,
                        from: None,
                    });
                }
                Err(Errno::EAGAIN)
            }
            Proto::Icmp => self.recv_ping(st, buf, peek),
            Proto::Udp => {
                let Conn::Udp { h } = self.conn else {
                    return Err(Errno::EAGAIN);
                };
                if let Some(e) = self.error.take() {
                    return Err(e);
                }
                let s = st.udp(h);
                // A connected socket takes only its peer's datagrams.
                while let (Some(p), Ok((_, meta))) = (self.peer, s.peek()) {
                    if to_sa(meta.endpoint) == p {
                        break;
                    }
                    let _ = s.recv();
                }
                let r = if peek {
                    s.peek().map(|(d, m)| (d, *m))
                } else {
                    s.recv()
                };
                match r {
                    Ok((d, meta)) => {
                        let n = d.len().min(buf.len());
                        buf[..n].copy_from_slice(&d[..n]);
                        Ok(Received {
                            n,
                            full: d.len(),
                            from: Some(to_sa(meta.endpoint)),
                        })
                    }
                    Err(_) if self.shut_rd => Ok(Received {
                        n: 0,
                        full: 0,
                        from: None,
                    }),
                    Err(_) => Err(Errno::EAGAIN),
                }
            }
        }
    }

    pub fn shutdown(&mut self, st: &mut NetStack, how: u32) -> KResult<()> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        let (rd, wr) = (how != 1, how != 0);
        match self.conn {
            Conn::Tcp { h, connecting } => {
                if connecting && st.tcp(h).state() == State::SynSent {
                    return Err(Errno::ENOTCONN);
                }
                if wr && !self.shut_wr {
                    st.tcp(h).close();
                }
            }
            Conn::Listening { .. } => {
                if rd {
                    self.stop_listening(st);
                }
                return Ok(());
            }
            Conn::Udp { .. } | Conn::Icmp { .. } if self.peer.is_some() => {}
            _ => return Err(Errno::ENOTCONN),
        }
        self.shut_rd |= rd;
        self.shut_wr |= wr;
        Ok(())
    }

    fn stop_listening(&mut self, st: &mut NetStack) {
        if let Conn::Listening { slots, .. } = std::mem::replace(&mut self.conn, Conn::Idle) {
            for h in slots {
                st.tcp(h).abort();
                st.sockets.remove(h);
            }
        }
    }

    /// poll(2)'s answer, as Linux's tcp_poll and udp_poll give it.
    pub fn poll(&mut self, st: &mut NetStack) -> u32 {
        self.sync(st);
        let mut m = 0;
        match self.conn {
            Conn::Idle => {
                if self.proto == Proto::Udp {
                    m |= POLLOUT | POLLWRNORM;
                } else {
                    m |= POLLOUT | POLLWRNORM | POLLHUP;
                }
            }
            Conn::Listening { .. } => {
                if self.ready_slot(st).is_some() {
                    m |= POLLIN | POLLRDNORM;
                }
            }
            Conn::Tcp { h, .. } => {
                let s = st.tcp(h);
                let state = s.state();
                if state == State::Closed || (self.shut_rd && self.shut_wr) {
                    m |= POLLHUP;
                }
                let peer_done =
                    !s.may_recv() && state != State::SynSent && state != State::SynReceived;
                if self.shut_rd || peer_done {
                    m |= POLLIN | POLLRDNORM | POLLRDHUP;
                }
                if !matches!(state, State::SynSent | State::SynReceived) {
                    if s.can_recv() {
                        m |= POLLIN | POLLRDNORM;
                    }
                    if self.shut_wr || !s.may_send() || s.can_send() {
                        m |= POLLOUT | POLLWRNORM;
                    }
                }
            }
            Conn::Udp { h } => {
                let s = st.udp(h);
                if s.can_recv() || self.shut_rd {
                    m |= POLLIN | POLLRDNORM;
                }
                if s.can_send() {
                    m |= POLLOUT | POLLWRNORM;
                }
            }
            Conn::Icmp { h } => {
                let s = st.icmp(h);
                if s.can_recv() || self.peeked.is_some() || self.shut_rd {
                    m |= POLLIN | POLLRDNORM;
                }
                if s.can_send() {
                    m |= POLLOUT | POLLWRNORM;
                }
            }
        }
        if self.error.is_some() {
            m |= POLLERR;
        }
        m
    }

    /// The close of the last descriptor.
    pub fn release(&mut self, st: &mut NetStack) {
        st.unbind(self.owner);
        match std::mem::replace(&mut self.conn, Conn::Idle) {
            Conn::Idle => {}
            c @ Conn::Listening { .. } => {
                self.conn = c;
                self.stop_listening(st);
            }
            Conn::Tcp { h, .. } => {
                let s = st.tcp(h);
                // Unread data or SO_LINGER 0: a reset, as on Linux.
                if self.opts.abortive_close() || s.recv_queue() > 0 {
                    s.abort();
                } else {
                    s.close();
                }
                st.orphan(h);
            }
            Conn::Udp { h } | Conn::Icmp { h } => {
                st.forget_udp(h);
                st.sockets.remove(h);
            }
        }
    }

    pub fn local_name(&self, st: &mut NetStack) -> SocketAddr {
        if let Conn::Tcp { h, .. } = self.conn {
            if let Some(e) = st.tcp(h).local_endpoint() {
                return to_sa(e);
            }
        }
        match (self.src, self.bound) {
            (Some(src), Some(b)) => SocketAddr::new(src, b.port()),
            _ => self.bound.unwrap_or_else(|| self.any()),
        }
    }

    pub fn peer_name(&self, st: &mut NetStack) -> KResult<SocketAddr> {
        match self.conn {
            Conn::Tcp { h, .. } if !handshaking(st, h) => st
                .tcp(h)
                .remote_endpoint()
                .map(to_sa)
                .ok_or(Errno::ENOTCONN),
            Conn::Udp { .. } | Conn::Icmp { .. } => self.peer.ok_or(Errno::ENOTCONN),
            _ => Err(Errno::ENOTCONN),
        }
    }

    pub fn listening(&self) -> bool {
        matches!(self.conn, Conn::Listening { .. })
    }

    /// FIONREAD: bytes to read (UDP: the next datagram's length).
    pub fn inq(&self, st: &mut NetStack) -> KResult<usize> {
        match self.conn {
            Conn::Tcp { h, .. } => Ok(st.tcp(h).recv_queue()),
            Conn::Udp { h } => Ok(st.udp(h).peek().map_or(0, |(d, _)| d.len())),
            // The next reply's length when it was peeked at, else 0.
            Conn::Icmp { .. } => Ok(self.peeked.as_ref().map_or(0, |p| p.0.len())),
            Conn::Listening { .. } => Err(Errno::EINVAL),
            Conn::Idle => Ok(0),
        }
    }

    /// SIOCOUTQ: bytes sent and not yet acknowledged or not yet sent.
    pub fn outq(&self, st: &mut NetStack) -> usize {
        match self.conn {
            Conn::Tcp { h, .. } => st.tcp(h).send_queue(),
            Conn::Udp { h } => st.udp(h).send_queue(),
            Conn::Icmp { .. } => 0,
            _ => 0,
        }
    }

    /// The TCP state as /proc/net/tcp numbers it (1 ESTABLISHED ... 10
    /// LISTEN), with local and remote addresses; None for UDP.
    pub fn tcp_row(&self, st: &mut NetStack) -> Option<(u8, SocketAddr, SocketAddr)> {
        let local = self.local_name(st);
        let zero = SocketAddr::new(self.family.any(), 0);
        match self.conn {
            Conn::Listening { .. } => Some((10, local, zero)),
            Conn::Tcp { h, .. } => {
                let s = st.tcp(h);
                let n = match s.state() {
                    State::Established => 1,
                    State::SynSent => 2,
                    State::SynReceived => 3,
                    State::FinWait1 => 4,
                    State::FinWait2 => 5,
                    State::TimeWait => 6,
                    State::Closed => 7,
                    State::CloseWait => 8,
                    State::LastAck => 9,
                    State::Listen => 10,
                    State::Closing => 11,
                };
                let peer = s.remote_endpoint().map(to_sa).unwrap_or(zero);
                Some((n, local, peer))
            }
            _ => None,
        }
    }
}

/// How long a connect's handshake may take with `retries` SYN
/// retransmissions: Linux's initial RTO of 1 s, doubled after each try
/// up to TCP_RTO_MAX (120 s), summed (127 s for the default 6).
pub fn syn_timeout(retries: u32) -> smoltcp::time::Duration {
    let secs: u64 = (0..=retries.min(127))
        .map(|i| 1u64.checked_shl(i).unwrap_or(u64::MAX).min(120))
        .sum();
    smoltcp::time::Duration::from_secs(secs)
}

/// A UDP socket as /proc/net/udp shows it: (state: 07 unconnected, 01
/// connected; local; remote). None for TCP or an unbound socket.
impl InetSocket {
    pub fn udp_row(&self) -> Option<(u8, SocketAddr, SocketAddr)> {
        if self.proto != Proto::Udp {
            return None;
        }
        let b = self.bound?;
        let local = self.src.map_or(b, |src| SocketAddr::new(src, b.port()));
        let zero = SocketAddr::new(self.family.any(), 0);
        Some(match self.peer {
            Some(p) => (1, local, p),
            None => (7, local, zero),
        })
    }
}

/// Is the connection on `h` still in its handshake? (A non-blocking
/// connect's socket may send once the handshake is over, before the
/// guest calls connect again to hear so.)
fn handshaking(st: &mut NetStack, h: SocketHandle) -> bool {
    matches!(st.tcp(h).state(), State::SynSent | State::SynReceived)
}

/// Linux connects to 0.0.0.0 / :: as to the loopback address.
fn unspec_to_lo(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(v) if v.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port())
        }
        IpAddr::V6(v) if v.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port())
        }
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_timeouts_are_linuxs() {
        assert_eq!(syn_timeout(6), smoltcp::time::Duration::from_secs(127));
        assert_eq!(syn_timeout(1), smoltcp::time::Duration::from_secs(3));
        // From 2^7 on each try waits TCP_RTO_MAX.
        assert_eq!(
            syn_timeout(8),
            smoltcp::time::Duration::from_secs(127 + 120 + 120)
        );
        let _ = syn_timeout(u32::MAX);
    }

    /// A connect out through the NAT ends with the errno the host's
    /// connect gave.
    fn connect_fails_with(e: Errno) {
        let mut st = NetStack::new(7);
        st.attach_user_nat(0, 8, true);
        let mut s = InetSocket::new(&mut st, Family::V4, Proto::Tcp);
        let dst: SocketAddr = "10.0.2.2:9".parse().unwrap();
        assert_eq!(
            s.connect(&mut st, AddrReq::Addr(dst), true),
            Err(Errno::EINPROGRESS)
        );
        st.poll();
        let reqs = st.take_outbound();
        assert_eq!(reqs.len(), 1);
        assert_eq!(s.connect_check(&mut st, true), Err(Errno::EAGAIN));
        assert_eq!(st.outbound_done(reqs[0].id, Err(e)), None);
        st.poll();
        assert_eq!(s.poll(&mut st) & POLLERR, POLLERR);
        assert_eq!(s.connect_check(&mut st, true), Err(e));
        s.release(&mut st);
    }

    const ETH0: Ipv4Addr = super::super::stack::ETH0_IP;

    /// Two interfaces: a connection to eth1's network leaves by eth1
    /// (from eth1's address, to eth1's NAT), one elsewhere by the default
    /// route's eth0; each interface counts its own packets.
    #[test]
    fn connects_leave_by_the_routed_interface() {
        let mut st = NetStack::new(7);
        st.attach_user_nat(0, 8, true);
        st.attach_user_nat(1, 9, true);
        let eths = st.eths();
        assert_eq!(eths.iter().map(|e| e.n).collect::<Vec<_>>(), [0, 1]);
        assert!(eths[0].cfg.routes.iter().any(|r| r.prefix == 0));
        assert!(!eths[1].cfg.routes.iter().any(|r| r.prefix == 0));
        let mut a = InetSocket::new(&mut st, Family::V4, Proto::Tcp);
        let to1: SocketAddr = "10.0.3.2:80".parse().unwrap();
        assert_eq!(
            a.connect(&mut st, AddrReq::Addr(to1), true),
            Err(Errno::EINPROGRESS)
        );
        let mut b = InetSocket::new(&mut st, Family::V4, Proto::Tcp);
        let far: SocketAddr = "192.0.2.1:80".parse().unwrap();
        assert_eq!(
            b.connect(&mut st, AddrReq::Addr(far), true),
            Err(Errno::EINPROGRESS)
        );
        st.poll();
        let mut reqs = st.take_outbound();
        reqs.sort_by_key(|r| r.n);
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            (reqs[0].n, reqs[0].dst),
            (0, "192.0.2.1:80".parse().unwrap())
        );
        assert_eq!(
            (reqs[1].n, reqs[1].dst),
            (1, "10.0.3.2:80".parse().unwrap())
        );
        assert_eq!(reqs[1].net.gateway, std::net::Ipv4Addr::new(10, 0, 3, 2));
        assert_eq!(
            a.local_name(&mut st).ip(),
            "10.0.3.15".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            b.local_name(&mut st).ip(),
            "10.0.2.15".parse::<IpAddr>().unwrap()
        );
        let eths = st.eths();
        assert_eq!((eths[0].stats.tx_packets, eths[1].stats.tx_packets), (1, 1));
        // A UDP socket connected into eth1's network takes eth1's address.
        let mut u = InetSocket::new(&mut st, Family::V4, Proto::Udp);
        let peer: SocketAddr = "10.0.3.9:53".parse().unwrap();
        u.connect(&mut st, AddrReq::Addr(peer), false).unwrap();
        assert_eq!(
            u.local_name(&mut st).ip(),
            "10.0.3.15".parse::<IpAddr>().unwrap()
        );
        // Taking eth1 down: its network goes by the default route.
        st.configure(|ifs| {
            ifs[1].cfg.set_up(false);
            Ok(())
        })
        .unwrap();
        assert_eq!(st.src_for("10.0.3.2".parse().unwrap()), Some(ETH0));
        u.release(&mut st);
        a.release(&mut st);
        b.release(&mut st);
    }

    #[test]
    fn nat_connect_errors_reach_the_guest() {
        for e in [
            Errno::ECONNREFUSED,
            Errno::ETIMEDOUT,
            Errno::EHOSTUNREACH,
            Errno::ENETUNREACH,
        ] {
            connect_fails_with(e);
        }
    }

    #[test]
    fn ping_socket_gets_the_nats_echo_reply() {
        let mut st = NetStack::new(7);
        st.attach_user_nat(0, 8, true);
        let mut s = InetSocket::new(&mut st, Family::V4, Proto::Icmp);
        let gw: SocketAddr = "10.0.2.2:0".parse().unwrap();
        // Not an echo request.
        assert_eq!(
            s.send(&mut st, &[0, 0, 0, 0, 0, 0, 0, 0], Some(gw)),
            Err(Errno::EINVAL)
        );
        let req = [8, 0, 0, 0, 0xaa, 0xbb, 0, 1, b'x', b'y'];
        assert_eq!(s.send(&mut st, &req, Some(gw)), Ok(10));
        st.poll();
        let ident = s.local_name(&mut st).port();
        let mut buf = [0u8; 64];
        let peeked = s.recv(&mut st, &mut buf, true).unwrap();
        let got = s.recv(&mut st, &mut buf, false).unwrap();
        assert_eq!(peeked, got);
        assert_eq!((got.n, got.from), (10, Some(gw)));
        // A reply, with the socket's identifier and the sequence and data sent.
        assert_eq!(buf[0], 0);
        assert_eq!(&buf[4..6], &ident.to_be_bytes());
        assert_eq!(&buf[6..10], &[0, 1, b'x', b'y']);
        assert_eq!(super::super::natpkt::checksum(&buf[..10]), 0);
        assert_eq!(s.recv(&mut st, &mut buf, false), Err(Errno::EAGAIN));
        // Nobody answers for other addresses.
        let far: SocketAddr = "192.0.2.1:0".parse().unwrap();
        assert_eq!(s.send(&mut st, &req, Some(far)), Ok(10));
        st.poll();
        assert_eq!(s.recv(&mut st, &mut buf, false), Err(Errno::EAGAIN));
        s.release(&mut st);
    }

    #[test]
    fn syncnt_is_checked_and_read_back() {
        let mut o = InetOpts::new(Proto::Tcp);
        assert_eq!(o.syn_retries(), 6);
        let ipproto_tcp = super::super::opts::IPPROTO_TCP;
        assert_eq!(
            o.set(Proto::Tcp, ipproto_tcp, 7, &0i32.to_le_bytes()),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            o.set(Proto::Tcp, ipproto_tcp, 7, &128i32.to_le_bytes()),
            Err(Errno::EINVAL)
        );
        o.set(Proto::Tcp, ipproto_tcp, 7, &2i32.to_le_bytes())
            .unwrap();
        assert_eq!(o.syn_retries(), 2);
    }
}
