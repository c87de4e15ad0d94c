//! One AF_UNIX socket and its state machine, as Linux's af_unix.c:
//!
//! - stream and seqpacket: unconnected → listening (bound, a backlog of
//!   pending connections) or connected. `connect` makes the server's end
//!   at once and queues it on the listener (the client is connected and
//!   may write before `accept`); more than `backlog` pending connections
//!   is "would block" (EAGAIN). Shutdown is per direction and mirrored on
//!   the peer; reads give queued data, then a pending error (ECONNRESET
//!   when the peer closed with unread data), then EOF; writes to a peer
//!   that cannot read are EPIPE (the caller raises SIGPIPE).
//! - datagram: optionally connected to a peer; a receiver not connected
//!   back to the sender takes at most `MAX_DGRAM_QLEN` + 1 messages; a
//!   closed peer is ECONNREFUSED once, then ENOTCONN.
//!
//! Every queued message is charged to its sender (`sockbuf`): a sender
//! over SO_SNDBUF would block, and the kernel-wide cap is ENOBUFS.
//! Descriptors in flight are opaque `R`s (open files in the kernel);
//! `release` hands back the ones still queued so the caller can drop
//! them with no socket borrowed.
//!
//! Borrow rule: no function holds two sockets borrowed at once, so a
//! datagram socket sending to itself cannot trip a RefCell.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use super::namespace::{InodeKey, Namespace};
use super::queue::{Got, Msg, RecvQueue};
use crate::errno::{Errno, KResult};
use crate::kernel::waitq::{WaitQueue, WaitQueueRef};
use crate::net::sockaddr::UnixAddr;
use crate::net::sockbuf::{Charge, Meter, DEFAULT_BUF, MSG_OVERHEAD};
use crate::net::wakes::{Wakes, EV_ALL, EV_IN, EV_OUT};
use crate::net::{Ucred, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM};

/// net.core.somaxconn: listen's backlog is clamped to this.
pub const SOMAXCONN: u32 = 4096;
/// net.unix.max_dgram_qlen.
pub const MAX_DGRAM_QLEN: usize = 10;
/// AF_UNIX sockets one kernel may hold (more is ENFILE), so a guest
/// cannot grow umlrun without bound.
pub const MAX_SOCKETS: usize = 8192;
/// What each descriptor in flight is charged (it pins an open file).
pub const RIGHT_CHARGE: usize = 64;

pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = 3;

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDNORM: u32 = 0x40;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLWRBAND: u32 = 0x200;
pub const EPOLLRDHUP: u32 = 0x2000;

pub type SockRef<R> = Rc<RefCell<UnixSocket<R>>>;

/// Where a receive puts the bytes: a buffer, or pieces taken out of the
/// queue (at most this many bytes).
enum Dest<'a> {
    Buf(&'a mut [u8]),
    Take(usize, &'a mut Vec<(Vec<u8>, usize)>),
}

impl Dest<'_> {
    fn len(&self) -> usize {
        match self {
            Dest::Buf(b) => b.len(),
            Dest::Take(max, _) => *max,
        }
    }
}
type SockWeak<R> = Weak<RefCell<UnixSocket<R>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    SeqPacket,
}

impl SockType {
    /// socket(2)'s type (flags already removed). SOCK_RAW is a datagram
    /// socket for AF_UNIX, as Linux.
    pub fn from_raw(t: u32) -> KResult<SockType> {
        match t {
            SOCK_STREAM => Ok(SockType::Stream),
            SOCK_DGRAM | 3 => Ok(SockType::Dgram),
            SOCK_SEQPACKET => Ok(SockType::SeqPacket),
            _ => Err(Errno::ESOCKTNOSUPPORT),
        }
    }

    pub fn raw(self) -> u32 {
        match self {
            SockType::Stream => SOCK_STREAM,
            SockType::Dgram => SOCK_DGRAM,
            SockType::SeqPacket => SOCK_SEQPACKET,
        }
    }

    fn connection(self) -> bool {
        self != SockType::Dgram
    }
}

/// What all AF_UNIX sockets of one kernel share: the names, the
/// kernel-wide buffer meter and the socket count.
pub struct UnixNet<R> {
    pub names: RefCell<Namespace<RefCell<UnixSocket<R>>>>,
    pub meter: Meter,
    /// Wake-ups owed by socket operations (the kernel layer wakes them).
    pub wakes: Rc<Wakes>,
    count: Cell<usize>,
    next_ino: Cell<u64>,
    /// Sockets whose queues got descriptors (SCM_RIGHTS): where the
    /// in-flight collector starts; pruned as they empty or go.
    holders: RefCell<Vec<SockWeak<R>>>,
    /// The collector is running (a release it causes does not start
    /// another; the running one looks again after each release).
    pub gc_busy: Cell<bool>,
}

impl<R> UnixNet<R> {
    pub fn new() -> Rc<Self> {
        Rc::new(UnixNet {
            names: RefCell::new(Namespace::default()),
            meter: Meter::new(),
            wakes: Wakes::new(),
            count: Cell::new(0),
            next_ino: Cell::new(0),
            holders: RefCell::new(Vec::new()),
            gc_busy: Cell::new(false),
        })
    }

    /// `new`, with all socket buffers together capped at `bytes`.
    pub fn with_buf_limit(bytes: usize) -> Rc<Self> {
        let net = Self::new();
        net.meter.set_limit(bytes);
        net
    }

    /// A fresh inode number for a socket's fstat (sockfs numbering).
    pub fn new_ino(&self) -> u64 {
        let n = self.next_ino.get() + 1;
        self.next_ino.set(n);
        n
    }

    /// Sockets alive.
    pub fn sockets(&self) -> usize {
        self.count.get()
    }

    /// Whether some socket may hold descriptors in flight (cheap: the
    /// collector has nothing to do otherwise).
    pub fn has_holders(&self) -> bool {
        !self.holders.borrow().is_empty()
    }

    /// The sockets holding descriptors in flight now (the list is pruned
    /// of those that went or emptied).
    pub fn holders(&self) -> Vec<SockRef<R>> {
        let mut out = Vec::new();
        self.holders.borrow_mut().retain(|w| {
            let Some(s) = w.upgrade() else {
                return false;
            };
            let keep = match s.try_borrow_mut() {
                Ok(mut me) => {
                    me.holder = !me.dead && me.queue.has_rights();
                    me.holder
                }
                Err(_) => true,
            };
            if keep {
                out.push(s);
            }
            keep
        });
        out
    }

    /// `s`'s queue just got descriptors.
    fn note_holder(&self, s: &SockRef<R>, me: &mut UnixSocket<R>) {
        if !me.holder {
            me.holder = true;
            self.holders.borrow_mut().push(Rc::downgrade(s));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unconnected,
    Listening,
    Connected,
}

pub struct UnixSocket<R> {
    pub kind: SockType,
    state: State,
    peer: Option<SockWeak<R>>,
    /// The peer's name, kept for getpeername after the peer closed.
    peer_addr: UnixAddr,
    backlog: u32,
    pending: VecDeque<SockRef<R>>,
    shutdown: u8,
    err: Option<Errno>,
    dead: bool,
    addr: UnixAddr,
    /// The socket inode of a path bind, and whether this socket owns the
    /// name (an accepted socket shows its listener's name but does not).
    inode: Option<InodeKey>,
    owns_name: bool,
    queue: RecvQueue<R>,
    wmem: Meter,
    pub sndbuf: usize,
    pub rcvbuf: usize,
    pub passcred: bool,
    /// SO_TIMESTAMP: messages queued here are stamped, and recvmsg gives
    /// the stamp as SCM_TIMESTAMP.
    pub timestamp: bool,
    peercred: Option<Ucred>,
    gen: u64,
    /// Listed in `UnixNet::holders`.
    holder: bool,
    /// This socket's waiters: readers, writers, acceptors, pollers.
    wq: WaitQueueRef,
    /// Sockets to wake when this one has room again (Linux's
    /// `peer_wait`): datagram senders that found its queue full,
    /// connectors that found its backlog full.
    peer_waiters: Vec<SockWeak<R>>,
    net: Rc<UnixNet<R>>,
}

impl<R> Drop for UnixSocket<R> {
    fn drop(&mut self) {
        self.net.count.set(self.net.count.get().saturating_sub(1));
    }
}

fn same<R>(a: &SockRef<R>, b: &SockRef<R>) -> bool {
    Rc::ptr_eq(a, b)
}

impl<R: Clone> UnixSocket<R> {
    /// socket(AF_UNIX, kind). ENFILE past MAX_SOCKETS.
    pub fn new(net: &Rc<UnixNet<R>>, kind: SockType) -> KResult<SockRef<R>> {
        if net.count.get() >= MAX_SOCKETS {
            return Err(Errno::ENFILE);
        }
        net.count.set(net.count.get() + 1);
        let wq = WaitQueue::new();
        let wmem = Meter::new();
        wmem.set_waker(wq.clone(), net.wakes.clone());
        Ok(Rc::new(RefCell::new(UnixSocket {
            kind,
            state: State::Unconnected,
            peer: None,
            peer_addr: UnixAddr::Unnamed,
            backlog: 0,
            pending: VecDeque::new(),
            shutdown: 0,
            err: None,
            dead: false,
            addr: UnixAddr::Unnamed,
            inode: None,
            owns_name: false,
            queue: RecvQueue::default(),
            wmem,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            passcred: false,
            timestamp: false,
            peercred: None,
            gen: 0,
            holder: false,
            wq,
            peer_waiters: Vec::new(),
            net: net.clone(),
        })))
    }

    /// socketpair(2): two sockets connected to each other, each seeing
    /// `cred` as its peer's.
    pub fn pair(
        net: &Rc<UnixNet<R>>,
        kind: SockType,
        cred: Ucred,
    ) -> KResult<(SockRef<R>, SockRef<R>)> {
        let a = Self::new(net, kind)?;
        let b = Self::new(net, kind)?;
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut s = x.borrow_mut();
            s.state = State::Connected;
            s.peer = Some(Rc::downgrade(y));
            s.peercred = Some(cred);
        }
        Ok((a, b))
    }

    /// Something happened on this socket: its readiness may have
    /// changed (the edge trigger's generation) and its waiters for
    /// `events` are owed a wake-up.
    fn bump(&mut self, events: u32) {
        self.gen = self.gen.wrapping_add(1);
        self.net.wakes.push(&self.wq, events);
    }

    /// This socket's wait queue (poll, epoll and blocked calls sleep here).
    pub fn wait_queue(&self) -> WaitQueueRef {
        self.wq.clone()
    }

    /// `who` waits for room on this socket (a full datagram queue or
    /// backlog): woken by `wake_peer_waiters`.
    fn add_peer_waiter(&mut self, who: &SockRef<R>) {
        self.peer_waiters.retain(|w| w.strong_count() > 0);
        if !self
            .peer_waiters
            .iter()
            .any(|w| w.as_ptr() == Rc::as_ptr(who))
        {
            self.peer_waiters.push(Rc::downgrade(who));
        }
    }

    /// Room freed (or the socket went away): the sockets waiting for it
    /// are owed `events`.
    fn wake_peer_waiters(&mut self, events: u32) {
        for w in std::mem::take(&mut self.peer_waiters) {
            let Some(p) = w.upgrade() else { continue };
            let borrowed = match p.try_borrow_mut() {
                Ok(mut p) => {
                    p.bump(events);
                    false
                }
                Err(_) => true,
            };
            if borrowed {
                // By the borrow rule, only this very socket is borrowed.
                self.bump(events);
            }
        }
    }

    /// Changes whenever this socket's readiness may have changed (data
    /// in, space freed, shutdown, errors): epoll's edge trigger.
    pub fn generation(&self) -> u64 {
        self.gen.wrapping_add(self.wmem.returns())
    }

    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }

    pub fn is_bound(&self) -> bool {
        !self.addr.is_unnamed()
    }

    pub fn listening(&self) -> bool {
        self.state == State::Listening
    }

    pub fn connected(&self) -> bool {
        self.state == State::Connected
    }

    /// SO_ERROR: the pending error, cleared by reading it.
    pub fn take_error(&mut self) -> Option<Errno> {
        self.err.take()
    }

    /// SO_PEERCRED (None: no peer — the caller reports pid 0, ids -1).
    pub fn peercred(&self) -> Option<Ucred> {
        self.peercred
    }

    /// FIONREAD / SIOCINQ.
    pub fn inq(&self) -> KResult<usize> {
        if self.state == State::Listening {
            return Err(Errno::EINVAL);
        }
        Ok(match self.kind {
            SockType::Dgram => self.queue.first_len(),
            _ => self.queue.bytes(),
        })
    }

    /// The most one read can return now (at least 1): a buffer this
    /// long gets the same bytes, truncation and descriptors as any longer
    /// one (a stream read stops at the queued bytes, a record read at its
    /// record; a record of 0 bytes or descriptors with no bytes still
    /// need a read of 1; with nothing queued a read copies nothing: it
    /// fails, waits or is end of file).
    pub fn read_size(&self) -> usize {
        self.inq().unwrap_or(0).max(1)
    }

    /// SIOCOUTQ: bytes this socket has queued and nobody has read.
    pub fn outq(&self) -> usize {
        self.wmem.used()
    }

    fn writable(&self) -> bool {
        self.state != State::Listening && self.wmem.used().saturating_mul(4) <= self.sndbuf
    }

    /// Marks a path bind: the socket inode `key` now names this socket.
    /// EINVAL if it is bound already (check `is_bound` before making the
    /// inode).
    pub fn bind_path(s: &SockRef<R>, path: &[u8], key: InodeKey) -> KResult<()> {
        let net = {
            let mut me = s.borrow_mut();
            if me.is_bound() {
                return Err(Errno::EINVAL);
            }
            me.addr = UnixAddr::Path(path.to_vec());
            me.inode = Some(key);
            me.owns_name = true;
            me.net.clone()
        };
        net.names.borrow_mut().bind_path(key, s);
        Ok(())
    }

    /// bind to an abstract name.
    pub fn bind_abstract(s: &SockRef<R>, name: &[u8]) -> KResult<()> {
        let net = {
            let me = s.borrow();
            if me.is_bound() {
                return Err(Errno::EINVAL);
            }
            me.net.clone()
        };
        net.names.borrow_mut().bind_abstract(name, s)?;
        let mut me = s.borrow_mut();
        me.addr = UnixAddr::Abstract(name.to_vec());
        me.owns_name = true;
        Ok(())
    }

    /// bind with only the family, or an implicit bind (SO_PASSCRED).
    /// Binding a bound socket is EINVAL; an implicit one skips it.
    pub fn autobind(s: &SockRef<R>) -> KResult<()> {
        let net = {
            let me = s.borrow();
            if me.is_bound() {
                return Err(Errno::EINVAL);
            }
            me.net.clone()
        };
        let addr = net.names.borrow_mut().autobind(s)?;
        let mut me = s.borrow_mut();
        me.addr = addr;
        me.owns_name = true;
        Ok(())
    }

    fn autobind_if_passcred(s: &SockRef<R>) -> KResult<()> {
        let want = {
            let me = s.borrow();
            me.passcred && !me.is_bound()
        };
        if want {
            Self::autobind(s)?;
        }
        Ok(())
    }

    /// listen(2). `backlog` is the guest's int.
    pub fn listen(s: &SockRef<R>, backlog: i32, cred: Ucred) -> KResult<()> {
        let mut me = s.borrow_mut();
        if me.kind == SockType::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        if !me.is_bound() || !matches!(me.state, State::Unconnected | State::Listening) {
            return Err(Errno::EINVAL);
        }
        me.backlog = (backlog as u32).min(SOMAXCONN);
        me.state = State::Listening;
        me.peercred = Some(cred);
        me.bump(EV_ALL);
        Ok(())
    }

    /// connect(2) of a stream or seqpacket socket to the socket `target`
    /// found at the address. EAGAIN: the backlog is full (sleep, or
    /// EAGAIN for a non-blocking socket, as Linux).
    pub fn connect_stream(s: &SockRef<R>, target: &SockRef<R>, cred: Ucred) -> KResult<()> {
        {
            let me = s.borrow();
            if !same(s, target) && target.borrow().kind != me.kind {
                return Err(Errno::EPROTOTYPE);
            }
        }
        Self::autobind_if_passcred(s)?;
        let (listener_addr, listener_cred, passcred, net) = {
            if same(s, target) {
                // Only a listener can be connected to, and a listener
                // cannot connect.
                let me = s.borrow();
                return Err(
                    if me.state == State::Listening && me.shutdown & RCV_SHUTDOWN == 0 {
                        Errno::EINVAL
                    } else {
                        Errno::ECONNREFUSED
                    },
                );
            }
            let t = target.borrow();
            if t.state != State::Listening || t.shutdown & RCV_SHUTDOWN != 0 || t.dead {
                return Err(Errno::ECONNREFUSED);
            }
            if t.pending.len() > t.backlog as usize {
                drop(t);
                target.borrow_mut().add_peer_waiter(s);
                return Err(Errno::EAGAIN);
            }
            (t.addr.clone(), t.peercred, t.passcred, t.net.clone())
        };
        let (kind, client_addr) = {
            let me = s.borrow();
            match me.state {
                State::Unconnected => {}
                State::Connected => return Err(Errno::EISCONN),
                State::Listening => return Err(Errno::EINVAL),
            }
            (me.kind, me.addr.clone())
        };
        let server = Self::new(&net, kind)?;
        {
            let mut e = server.borrow_mut();
            e.state = State::Connected;
            e.peer = Some(Rc::downgrade(s));
            e.peer_addr = client_addr;
            e.addr = listener_addr.clone();
            e.peercred = Some(cred);
            e.passcred = passcred;
        }
        {
            let mut me = s.borrow_mut();
            me.state = State::Connected;
            me.peer = Some(Rc::downgrade(&server));
            me.peer_addr = listener_addr;
            me.peercred = listener_cred;
            me.bump(EV_ALL);
        }
        let mut t = target.borrow_mut();
        t.pending.push_back(server);
        t.bump(EV_IN);
        Ok(())
    }

    /// connect(2) of a datagram socket: `Some(target)` sets the default
    /// peer (and the only sender it accepts from), None (AF_UNSPEC)
    /// dissolves it.
    pub fn connect_dgram(s: &SockRef<R>, target: Option<&SockRef<R>>) -> KResult<()> {
        let Some(t) = target else {
            let mut me = s.borrow_mut();
            me.peer = None;
            me.state = State::Unconnected;
            me.bump(EV_ALL);
            return Ok(());
        };
        if !same(s, t) {
            let tb = t.borrow();
            if tb.kind != SockType::Dgram {
                return Err(Errno::EPROTOTYPE);
            }
            if !Self::may_send(&tb, s) {
                return Err(Errno::EPERM);
            }
        }
        Self::autobind_if_passcred(s)?;
        let taddr = t.borrow().addr.clone();
        let mut me = s.borrow_mut();
        me.peer = Some(Rc::downgrade(t));
        me.peer_addr = taddr;
        me.state = State::Connected;
        me.bump(EV_ALL);
        Ok(())
    }

    /// unix_may_send: a datagram socket connected elsewhere takes nothing
    /// from `sender`.
    fn may_send(target: &UnixSocket<R>, sender: &SockRef<R>) -> bool {
        match &target.peer {
            None => true,
            Some(w) => w.upgrade().is_none_or(|p| same(&p, sender)),
        }
    }

    /// accept(2): the oldest pending connection. EAGAIN when none.
    pub fn accept(s: &SockRef<R>) -> KResult<SockRef<R>> {
        let mut me = s.borrow_mut();
        if me.kind == SockType::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        if me.state != State::Listening {
            return Err(Errno::EINVAL);
        }
        let c = me.pending.pop_front().ok_or(Errno::EAGAIN)?;
        me.gen = me.gen.wrapping_add(1);
        me.wake_peer_waiters(EV_OUT);
        Ok(c)
    }

    fn peer_ref(&self) -> Option<SockRef<R>> {
        self.peer.as_ref().and_then(Weak::upgrade)
    }

    /// getpeername's name. ENOTCONN without a peer.
    pub fn peer_addr(&self) -> KResult<UnixAddr> {
        if self.peer.is_none() {
            return Err(Errno::ENOTCONN);
        }
        Ok(match self.peer_ref() {
            Some(p) if !p.borrow().dead => p.borrow().addr.clone(),
            _ => self.peer_addr.clone(),
        })
    }

    fn charge_for(&self, data: &[u8], rights: usize) -> KResult<Charge> {
        let n = data
            .len()
            .checked_add(MSG_OVERHEAD)
            .and_then(|n| n.checked_add(rights.checked_mul(RIGHT_CHARGE)?))
            .ok_or(Errno::ENOBUFS)?;
        Charge::take(&self.wmem, &self.net.meter, n)
    }

    /// send on a connected stream socket: how many bytes went (some or
    /// all; the caller sleeps and sends the rest when blocking). EPIPE:
    /// raise SIGPIPE unless MSG_NOSIGNAL.
    fn send_stream(
        s: &SockRef<R>,
        mut data: Vec<u8>,
        rights: Vec<R>,
        creds: Option<Ucred>,
    ) -> KResult<usize> {
        let (peer, n, charge, from) = {
            let me = s.borrow();
            let Some(pw) = &me.peer else {
                return Err(Errno::ENOTCONN);
            };
            if me.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            let peer = pw.upgrade().ok_or(Errno::EPIPE)?;
            {
                let p = peer.borrow();
                if p.dead || p.shutdown & RCV_SHUTDOWN != 0 {
                    return Err(Errno::EPIPE);
                }
            }
            if data.is_empty() && rights.is_empty() {
                return Ok(0);
            }
            if me.wmem.used() >= me.sndbuf {
                return Err(Errno::EAGAIN);
            }
            let room = me.sndbuf - me.wmem.used();
            let n = data.len().min(room);
            let charge = me.charge_for(&data[..n], rights.len())?;
            (peer, n, charge, me.addr.clone())
        };
        // The bytes that fit move into the queue as they are (the caller
        // gathers only about what fits: `stream_room`).
        data.truncate(n);
        if data.capacity() > n.saturating_mul(2) {
            data.shrink_to_fit();
        }
        let mut p = peer.borrow_mut();
        if !rights.is_empty() {
            let net = p.net.clone();
            net.note_holder(&peer, &mut p);
        }
        let stamp = p.timestamp.then(crate::syscalls::now_ts);
        p.queue.push(Msg {
            data,
            consumed: 0,
            rights,
            creds,
            stamp,
            from,
            charge: Some(charge),
        });
        p.bump(EV_IN);
        Ok(n)
    }

    /// send on a datagram or seqpacket socket: to `to` (datagram with an
    /// address) or to the peer. Whole messages only.
    fn send_record(
        s: &SockRef<R>,
        data: Vec<u8>,
        rights: Vec<R>,
        creds: Option<Ucred>,
        to: Option<&SockRef<R>>,
    ) -> KResult<usize> {
        let kind = s.borrow().kind;
        if kind == SockType::SeqPacket {
            let mut me = s.borrow_mut();
            if let Some(e) = me.err.take() {
                return Err(e);
            }
            if me.state != State::Connected {
                return Err(Errno::ENOTCONN);
            }
        }
        let target = match (kind, to) {
            (SockType::Dgram, Some(t)) => {
                if t.borrow().kind != SockType::Dgram && !same(s, t) {
                    return Err(Errno::EPROTOTYPE);
                }
                t.clone()
            }
            _ => {
                let me = s.borrow();
                let Some(pw) = &me.peer else {
                    return Err(Errno::ENOTCONN);
                };
                match pw.upgrade() {
                    Some(p) => p,
                    None => {
                        drop(me);
                        return Err(Self::peer_gone(s));
                    }
                }
            }
        };
        if kind == SockType::Dgram {
            Self::autobind_if_passcred(s)?;
        }
        let (charge, from) = {
            let me = s.borrow();
            if data.len() > me.sndbuf.saturating_sub(32) {
                return Err(Errno::EMSGSIZE);
            }
            if me.wmem.used() >= me.sndbuf {
                return Err(Errno::EAGAIN);
            }
            (me.charge_for(&data, rights.len())?, me.addr.clone())
        };
        {
            // A self-send reads the same socket: only shared borrows here.
            let tr = target.borrow();
            if !Self::may_send(&tr, s) {
                return Err(Errno::EPERM);
            }
            let dead = tr.dead;
            let rcv_shut = tr.shutdown & RCV_SHUTDOWN != 0;
            let full = !same(s, &target)
                && !tr.peer_ref().is_some_and(|p| same(&p, s))
                && tr.queue.len() > MAX_DGRAM_QLEN;
            drop(tr);
            if dead {
                return Err(if kind == SockType::SeqPacket {
                    Errno::EPIPE
                } else {
                    Self::peer_gone(s)
                });
            }
            if rcv_shut {
                return Err(Errno::EPIPE);
            }
            if full {
                target.borrow_mut().add_peer_waiter(s);
                return Err(Errno::EAGAIN);
            }
        }
        let mut t = target.borrow_mut();
        if !rights.is_empty() {
            let net = t.net.clone();
            net.note_holder(&target, &mut t);
        }
        let stamp = t.timestamp.then(crate::syscalls::now_ts);
        let n = data.len();
        t.queue.push(Msg {
            data,
            consumed: 0,
            rights,
            creds,
            stamp,
            from,
            charge: Some(charge),
        });
        t.bump(EV_IN);
        Ok(n)
    }

    /// A datagram socket's peer is gone: forget it (ECONNREFUSED this
    /// time, ENOTCONN from now on); a seqpacket's gives EPIPE.
    fn peer_gone(s: &SockRef<R>) -> Errno {
        let mut me = s.borrow_mut();
        if me.kind == SockType::SeqPacket {
            return Errno::EPIPE;
        }
        me.peer = None;
        me.state = State::Unconnected;
        Errno::ECONNREFUSED
    }

    /// sendmsg: `rights` are the descriptors attached, `creds` the
    /// message's credentials (SCM_CREDENTIALS, or the sender's when
    /// either end has SO_PASSCRED — see `creds_for`), `to` the socket
    /// named by msg_name (datagram; the caller resolves it).
    pub fn send(
        s: &SockRef<R>,
        data: &[u8],
        rights: Vec<R>,
        creds: Option<Ucred>,
        to: Option<&SockRef<R>>,
    ) -> KResult<usize> {
        Self::send_owned(s, data.to_vec(), rights, creds, to)
    }

    /// How many bytes a stream send could queue now without waiting
    /// (what is left of SO_SNDBUF); None for other kinds. The syscall
    /// layer copies only that much out of the guest before `send_owned`.
    pub fn stream_room(s: &SockRef<R>) -> Option<usize> {
        let me = s.borrow();
        (me.kind == SockType::Stream).then(|| me.sndbuf.saturating_sub(me.wmem.used()))
    }

    /// `send` of bytes the caller owns: what fits is queued without a
    /// copy.
    pub fn send_owned(
        s: &SockRef<R>,
        data: Vec<u8>,
        rights: Vec<R>,
        creds: Option<Ucred>,
        to: Option<&SockRef<R>>,
    ) -> KResult<usize> {
        let kind = s.borrow().kind;
        match kind {
            SockType::Stream => {
                if to.is_some() {
                    return Err(if s.borrow().state == State::Connected {
                        Errno::EISCONN
                    } else {
                        Errno::EOPNOTSUPP
                    });
                }
                Self::send_stream(s, data, rights, creds)
            }
            _ => Self::send_record(s, data, rights, creds, to),
        }
    }

    /// The credentials a message from `s` carries: the explicit ones, or
    /// the sender's own when the sender or the receiver asked for
    /// credentials (Linux's maybe_add_creds), else none.
    pub fn creds_for(
        s: &SockRef<R>,
        to: Option<&SockRef<R>>,
        explicit: Option<Ucred>,
        me: Ucred,
    ) -> Option<Ucred> {
        if explicit.is_some() {
            return explicit;
        }
        let mine = s.borrow().passcred;
        let theirs = match to {
            Some(t) if same(s, t) => mine,
            Some(t) => t.borrow().passcred,
            None => s
                .borrow()
                .peer_ref()
                .is_some_and(|p| !same(&p, s) && p.borrow().passcred),
        };
        (mine || theirs).then_some(me)
    }

    /// recv: `Ok(got)` with `got.n == 0` and nothing else is EOF; EAGAIN
    /// means "would block". `waitall` (blocking MSG_WAITALL on a stream)
    /// reads nothing until the whole request can be met.
    pub fn recv(
        s: &SockRef<R>,
        buf: &mut [u8],
        peek: bool,
        waitall: bool,
        nonblock: bool,
    ) -> KResult<Got<R>> {
        Self::recv_into(s, Dest::Buf(buf), peek, waitall, nonblock)
    }

    /// `recv` of at most `max` bytes taken out of the queue (no peek):
    /// the pieces go on `out` as `RecvQueue::take_stream` gives them (a
    /// record is one piece), for the caller to copy to the reader with
    /// no buffer in between.
    pub fn recv_take(
        s: &SockRef<R>,
        max: usize,
        out: &mut Vec<(Vec<u8>, usize)>,
        waitall: bool,
        nonblock: bool,
    ) -> KResult<Got<R>> {
        Self::recv_into(s, Dest::Take(max, out), false, waitall, nonblock)
    }

    fn recv_into(
        s: &SockRef<R>,
        dest: Dest<'_>,
        peek: bool,
        waitall: bool,
        nonblock: bool,
    ) -> KResult<Got<R>> {
        let (got, peer) = {
            let mut me = s.borrow_mut();
            match me.kind {
                SockType::Stream if me.state != State::Connected => return Err(Errno::EINVAL),
                SockType::SeqPacket if me.state != State::Connected => return Err(Errno::ENOTCONN),
                _ => {}
            }
            if me.queue.is_empty() {
                if let Some(e) = me.err.take() {
                    return Err(e);
                }
                let eof =
                    me.shutdown & RCV_SHUTDOWN != 0 && (me.kind != SockType::Dgram || !nonblock);
                if eof {
                    return Ok(Got {
                        n: 0,
                        full: 0,
                        truncated: false,
                        rights: Vec::new(),
                        creds: None,
                        stamp: None,
                        from: UnixAddr::Unnamed,
                    });
                }
                return Err(Errno::EAGAIN);
            }
            let passcred = me.passcred;
            let got = if me.kind == SockType::Stream {
                if waitall
                    && !nonblock
                    && me.shutdown & RCV_SHUTDOWN == 0
                    && !me.queue.stream_has(dest.len(), passcred)
                {
                    return Err(Errno::EAGAIN);
                }
                match dest {
                    Dest::Buf(buf) => me.queue.read_stream(buf, peek, passcred),
                    Dest::Take(max, out) => me.queue.take_stream(max, passcred, out),
                }
            } else {
                let got = match dest {
                    Dest::Buf(buf) => me.queue.read_record(buf, peek),
                    Dest::Take(max, out) => {
                        let mut buf = vec![0u8; max.min(me.queue.first_len())];
                        let got = me.queue.read_record(&mut buf, peek);
                        out.push((buf, 0));
                        got
                    }
                };
                if !peek {
                    me.wake_peer_waiters(EV_OUT);
                }
                got
            };
            (got.expect("queue not empty"), me.peer_ref())
        };
        if !peek {
            if let Some(p) = peer {
                if !same(&p, s) {
                    p.borrow_mut().bump(EV_OUT);
                }
            }
        }
        Ok(got)
    }

    /// shutdown(2); `how` is SHUT_RD, SHUT_WR or SHUT_RDWR.
    pub fn shutdown(s: &SockRef<R>, how: u32) -> KResult<()> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        let mode = how as u8 + 1;
        let (peer, kind) = {
            let mut me = s.borrow_mut();
            me.shutdown |= mode;
            me.bump(EV_ALL);
            (me.peer_ref(), me.kind)
        };
        if let Some(p) = peer {
            if kind.connection() && !same(&p, s) {
                let mut peer_mode = 0;
                if mode & RCV_SHUTDOWN != 0 {
                    peer_mode |= SEND_SHUTDOWN;
                }
                if mode & SEND_SHUTDOWN != 0 {
                    peer_mode |= RCV_SHUTDOWN;
                }
                let mut p = p.borrow_mut();
                p.shutdown |= peer_mode;
                p.bump(EV_ALL);
            }
        }
        Ok(())
    }

    /// The last reference to the socket's file is gone. Returns the
    /// descriptors that were still queued (drop them with nothing
    /// borrowed: dropping one may release another socket).
    pub fn release(s: &SockRef<R>) -> Vec<R> {
        Self::release_inner(s, false)
    }

    fn release_inner(s: &SockRef<R>, embryo: bool) -> Vec<R> {
        let (peer, pending, msgs, addr, inode, owns, kind, net) = {
            let mut me = s.borrow_mut();
            if me.dead {
                return Vec::new();
            }
            me.dead = true;
            me.shutdown = SHUTDOWN_MASK;
            me.bump(EV_ALL);
            me.wake_peer_waiters(EV_ALL);
            let peer = me.peer_ref();
            me.peer = None;
            let pending: Vec<_> = me.pending.drain(..).collect();
            let msgs = me.queue.drain();
            (
                peer,
                pending,
                msgs,
                me.addr.clone(),
                me.inode,
                me.owns_name,
                me.kind,
                me.net.clone(),
            )
        };
        if owns {
            net.names.borrow_mut().unbind(&addr, inode);
        }
        if let Some(p) = peer {
            if kind.connection() && !same(&p, s) {
                let mut p = p.borrow_mut();
                p.shutdown = SHUTDOWN_MASK;
                if !msgs.is_empty() || embryo {
                    p.err = Some(Errno::ECONNRESET);
                }
                p.peer_addr = addr;
                p.bump(EV_ALL);
            }
        }
        let mut rights: Vec<R> = Vec::new();
        for e in pending {
            rights.extend(Self::release_inner(&e, true));
        }
        for mut m in msgs {
            rights.append(&mut m.rights);
        }
        rights
    }

    /// Calls `f` on each descriptor in flight in `s`'s queue and in the
    /// queues of its pending (not yet accepted) connections: what the
    /// socket keeps alive, for the in-flight collector.
    pub fn visit_rights(s: &SockRef<R>, mut f: impl FnMut(&R)) {
        let me = s.borrow();
        me.queue.rights().for_each(&mut f);
        for e in &me.pending {
            if let Ok(e) = e.try_borrow() {
                e.queue.rights().for_each(&mut f);
            }
        }
    }

    /// The collector found `s` unreachable: its queue and its pending
    /// connections' queues are purged; returns the descriptors they held
    /// (the caller releases them with nothing borrowed).
    pub fn purge(s: &SockRef<R>) -> Vec<R> {
        let (msgs, pending) = {
            let mut me = s.borrow_mut();
            let msgs = me.queue.drain();
            me.bump(EV_ALL);
            (msgs, me.pending.iter().cloned().collect::<Vec<_>>())
        };
        let mut rights = Vec::new();
        for mut m in msgs {
            rights.append(&mut m.rights);
        }
        for e in pending {
            for mut m in e.borrow_mut().queue.drain() {
                rights.append(&mut m.rights);
            }
        }
        rights
    }

    /// poll(2) readiness (EPOLL* bits), as unix_poll / unix_dgram_poll.
    pub fn poll(s: &SockRef<R>) -> u32 {
        let me = s.borrow();
        let mut m = 0;
        if me.err.is_some() {
            m |= EPOLLERR;
        }
        if me.shutdown == SHUTDOWN_MASK {
            m |= EPOLLHUP;
        }
        if me.shutdown & RCV_SHUTDOWN != 0 {
            m |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;
        }
        if !me.queue.is_empty() || !me.pending.is_empty() {
            m |= EPOLLIN | EPOLLRDNORM;
        }
        if me.kind.connection() && me.state == State::Unconnected {
            m |= EPOLLHUP;
        }
        let mut writable = me.writable();
        if writable && me.kind == SockType::Dgram {
            if let Some(p) = me.peer_ref() {
                if !same(&p, s) {
                    let mut p = p.borrow_mut();
                    let back = p.peer_ref().is_some_and(|q| same(&q, s));
                    if !back && p.queue.len() > MAX_DGRAM_QLEN {
                        writable = false;
                        p.add_peer_waiter(s);
                    }
                }
            }
        }
        if writable {
            m |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = UnixSocket<u32>;
    const SHUT_WR_TEST: u32 = 1;
    const ME: Ucred = Ucred {
        pid: 10,
        uid: 0,
        gid: 0,
    };

    fn rd(s: &SockRef<u32>, n: usize) -> KResult<Vec<u8>> {
        let mut b = vec![0u8; n];
        let g = S::recv(s, &mut b, false, false, true)?;
        b.truncate(g.n);
        Ok(b)
    }

    fn listener(net: &Rc<UnixNet<u32>>, name: &[u8], backlog: i32) -> SockRef<u32> {
        let l = S::new(net, SockType::Stream).unwrap();
        S::bind_abstract(&l, name).unwrap();
        S::listen(&l, backlog, ME).unwrap();
        l
    }

    #[test]
    fn socketpair_moves_bytes_both_ways() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        assert_eq!(S::send(&a, b"hello", vec![], None, None), Ok(5));
        assert_eq!(b.borrow().inq(), Ok(5));
        assert!(a.borrow().outq() >= 5);
        assert_eq!(rd(&b, 100).unwrap(), b"hello");
        assert_eq!(a.borrow().outq(), 0);
        assert_eq!(rd(&b, 100), Err(Errno::EAGAIN));
        assert_eq!(S::send(&b, b"x", vec![], None, None), Ok(1));
        assert_eq!(rd(&a, 1).unwrap(), b"x");
        assert_eq!(b.borrow().peercred(), Some(ME));
        assert_eq!(net.sockets(), 2);
        drop((a, b));
        assert_eq!(net.sockets(), 0);
    }

    #[test]
    fn close_gives_data_then_reset_then_eof_and_epipe() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        S::send(&a, b"ab", vec![], None, None).unwrap();
        S::send(&b, b"unread", vec![], None, None).unwrap();
        S::release(&b);
        // b had unread data: a reads its own data, then sees ECONNRESET
        // once, then EOF.
        assert_eq!(
            S::poll(&a) & (EPOLLHUP | EPOLLERR | EPOLLIN),
            EPOLLHUP | EPOLLERR | EPOLLIN
        );
        assert_eq!(rd(&a, 10).unwrap(), b"unread");
        assert_eq!(rd(&a, 10), Err(Errno::ECONNRESET));
        assert_eq!(rd(&a, 10).unwrap(), b"");
        assert_eq!(S::send(&a, b"x", vec![], None, None), Err(Errno::EPIPE));
        let (c, d) = S::pair(&net, SockType::Stream, ME).unwrap();
        S::send(&c, b"bye", vec![], None, None).unwrap();
        S::release(&c);
        assert_eq!(rd(&d, 10).unwrap(), b"bye");
        assert_eq!(rd(&d, 10).unwrap(), b"", "clean close: EOF, no reset");
    }

    #[test]
    fn shutdown_is_per_direction_and_mirrored() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        S::shutdown(&a, 1).unwrap();
        assert_eq!(S::send(&a, b"x", vec![], None, None), Err(Errno::EPIPE));
        assert_eq!(rd(&b, 1).unwrap(), b"", "peer sees EOF");
        assert_eq!(S::poll(&b) & EPOLLRDHUP, EPOLLRDHUP);
        assert_eq!(S::send(&b, b"y", vec![], None, None), Ok(1));
        assert_eq!(rd(&a, 1).unwrap(), b"y");
        S::shutdown(&a, 0).unwrap();
        assert_eq!(S::send(&b, b"z", vec![], None, None), Err(Errno::EPIPE));
        assert_eq!(S::poll(&a) & EPOLLHUP, EPOLLHUP);
        assert_eq!(S::shutdown(&a, 3), Err(Errno::EINVAL));
    }

    #[test]
    fn listen_connect_accept() {
        let net = UnixNet::new();
        let l = listener(&net, b"srv", 1);
        let c1 = S::new(&net, SockType::Stream).unwrap();
        assert_eq!(
            S::poll(&c1),
            EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND | EPOLLHUP
        );
        assert_eq!(rd(&c1, 1), Err(Errno::EINVAL), "unconnected stream read");
        assert_eq!(S::send(&c1, b"x", vec![], None, None), Err(Errno::ENOTCONN));
        S::connect_stream(&c1, &l, ME).unwrap();
        assert_eq!(S::connect_stream(&c1, &l, ME), Err(Errno::EISCONN));
        // The client may write before accept.
        S::send(&c1, b"early", vec![], None, None).unwrap();
        let c2 = S::new(&net, SockType::Stream).unwrap();
        S::connect_stream(&c2, &l, ME).unwrap();
        // backlog 1 takes two; the third waits.
        let c3 = S::new(&net, SockType::Stream).unwrap();
        assert_eq!(S::connect_stream(&c3, &l, ME), Err(Errno::EAGAIN));
        assert_eq!(S::poll(&l) & EPOLLIN, EPOLLIN);
        assert_eq!(S::poll(&l) & EPOLLOUT, 0);
        let s1 = S::accept(&l).unwrap();
        assert_eq!(rd(&s1, 10).unwrap(), b"early");
        assert_eq!(s1.borrow().addr(), &UnixAddr::Abstract(b"srv".to_vec()));
        assert_eq!(s1.borrow().peer_addr(), Ok(UnixAddr::Unnamed));
        assert_eq!(
            c1.borrow().peer_addr(),
            Ok(UnixAddr::Abstract(b"srv".to_vec()))
        );
        S::connect_stream(&c3, &l, ME).unwrap();
        let _s2 = S::accept(&l).unwrap();
        let _s3 = S::accept(&l).unwrap();
        assert_eq!(S::accept(&l).err(), Some(Errno::EAGAIN));
        assert_eq!(S::accept(&c1).err(), Some(Errno::EINVAL));
        assert_eq!(S::listen(&c1, 5, ME), Err(Errno::EINVAL));
    }

    #[test]
    fn connect_errors() {
        let net = UnixNet::new();
        let l = listener(&net, b"srv", 5);
        let d = S::new(&net, SockType::Dgram).unwrap();
        assert_eq!(S::connect_stream(&d, &l, ME), Err(Errno::EPROTOTYPE));
        let bound = S::new(&net, SockType::Stream).unwrap();
        S::bind_abstract(&bound, b"nl").unwrap();
        let c = S::new(&net, SockType::Stream).unwrap();
        assert_eq!(S::connect_stream(&c, &bound, ME), Err(Errno::ECONNREFUSED));
        assert_eq!(S::listen(&c, 5, ME), Err(Errno::EINVAL), "unbound listen");
        assert_eq!(S::listen(&d, 5, ME), Err(Errno::EOPNOTSUPP));
        assert_eq!(S::bind_abstract(&bound, b"other"), Err(Errno::EINVAL));
        let dup = S::new(&net, SockType::Stream).unwrap();
        assert_eq!(S::bind_abstract(&dup, b"srv"), Err(Errno::EADDRINUSE));
    }

    #[test]
    fn closing_a_listener_resets_pending_clients() {
        let net = UnixNet::new();
        let l = listener(&net, b"srv", 5);
        let c = S::new(&net, SockType::Stream).unwrap();
        S::connect_stream(&c, &l, ME).unwrap();
        assert!(S::release(&l).is_empty());
        assert_eq!(rd(&c, 1), Err(Errno::ECONNRESET));
        assert_eq!(rd(&c, 1).unwrap(), b"");
        // The name is free again.
        let l2 = S::new(&net, SockType::Stream).unwrap();
        S::bind_abstract(&l2, b"srv").unwrap();
    }

    #[test]
    fn descriptors_in_flight_come_back_on_release() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        S::send(&a, b"f", vec![7, 8], None, None).unwrap();
        assert_eq!(S::release(&b), vec![7, 8]);
    }

    #[test]
    fn stream_writer_blocks_at_sndbuf() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        a.borrow_mut().sndbuf = 10_000;
        let chunk = vec![1u8; 4000];
        let mut sent = 0;
        loop {
            match S::send(&a, &chunk, vec![], None, None) {
                Ok(n) => sent += n,
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        assert!(sent < 10_000 && sent > 8000, "{sent}");
        assert_eq!(S::poll(&a) & EPOLLOUT, 0);
        let g0 = a.borrow().generation();
        let mut big = vec![0u8; 20_000];
        let got = S::recv(&b, &mut big, false, false, true).unwrap();
        assert_eq!(got.n, sent);
        assert_ne!(a.borrow().generation(), g0, "space freed is an event");
        assert_eq!(S::poll(&a) & EPOLLOUT, EPOLLOUT);
    }

    #[test]
    fn waitall_waits_for_the_whole_request() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        S::send(&a, b"abc", vec![], None, None).unwrap();
        let mut buf = [0u8; 6];
        assert_eq!(
            S::recv(&b, &mut buf, false, true, false).err(),
            Some(Errno::EAGAIN)
        );
        S::send(&a, b"def", vec![], None, None).unwrap();
        assert_eq!(S::recv(&b, &mut buf, false, true, false).unwrap().n, 6);
        assert_eq!(&buf, b"abcdef");
    }

    #[test]
    fn datagrams_keep_boundaries_and_addresses() {
        let net = UnixNet::new();
        let r = S::new(&net, SockType::Dgram).unwrap();
        S::bind_abstract(&r, b"log").unwrap();
        let w = S::new(&net, SockType::Dgram).unwrap();
        assert_eq!(S::send(&w, b"x", vec![], None, None), Err(Errno::ENOTCONN));
        S::send(&w, b"one", vec![], None, Some(&r)).unwrap();
        S::send(&w, b"second", vec![], None, Some(&r)).unwrap();
        assert_eq!(r.borrow().inq(), Ok(3));
        let mut b = [0u8; 4];
        let g = S::recv(&r, &mut b, false, false, true).unwrap();
        assert_eq!(
            (g.n, g.full, g.truncated, g.from),
            (3, 3, false, UnixAddr::Unnamed)
        );
        let g = S::recv(&r, &mut b, false, false, true).unwrap();
        assert_eq!((g.n, g.full, g.truncated), (4, 6, true));
        assert_eq!(rd(&r, 10), Err(Errno::EAGAIN));
        // Eleven messages fit a receiver that is not connected back.
        for i in 0..=MAX_DGRAM_QLEN {
            S::send(&w, &[i as u8], vec![], None, Some(&r)).unwrap();
        }
        assert_eq!(
            S::send(&w, b"x", vec![], None, Some(&r)),
            Err(Errno::EAGAIN)
        );
        S::connect_dgram(&w, Some(&r)).unwrap();
        assert_eq!(S::poll(&w) & EPOLLOUT, 0);
        let big = vec![0u8; DEFAULT_BUF];
        assert_eq!(S::send(&w, &big, vec![], None, None), Err(Errno::EMSGSIZE));
    }

    #[test]
    fn dgram_peer_close_refuses_once_then_notconn() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Dgram, ME).unwrap();
        S::release(&b);
        drop(b);
        assert_eq!(
            S::send(&a, b"x", vec![], None, None),
            Err(Errno::ECONNREFUSED)
        );
        assert_eq!(S::send(&a, b"x", vec![], None, None), Err(Errno::ENOTCONN));
    }

    #[test]
    fn dgram_connected_elsewhere_refuses_strangers() {
        let net = UnixNet::new();
        let a = S::new(&net, SockType::Dgram).unwrap();
        let b = S::new(&net, SockType::Dgram).unwrap();
        let c = S::new(&net, SockType::Dgram).unwrap();
        S::connect_dgram(&a, Some(&b)).unwrap();
        assert_eq!(S::send(&c, b"x", vec![], None, Some(&a)), Err(Errno::EPERM));
        assert_eq!(S::connect_dgram(&c, Some(&a)), Err(Errno::EPERM));
        assert_eq!(S::send(&b, b"x", vec![], None, Some(&a)), Ok(1));
        // Sending to oneself works and borrows nothing twice.
        S::connect_dgram(&c, Some(&c)).unwrap();
        assert_eq!(S::send(&c, b"me", vec![], None, None), Ok(2));
        assert_eq!(rd(&c, 5).unwrap(), b"me");
        S::connect_dgram(&a, None).unwrap();
        assert_eq!(a.borrow().peer_addr(), Err(Errno::ENOTCONN));
    }

    #[test]
    fn seqpacket_is_connected_records() {
        let net = UnixNet::new();
        let s = S::new(&net, SockType::SeqPacket).unwrap();
        assert_eq!(rd(&s, 1), Err(Errno::ENOTCONN));
        assert_eq!(S::send(&s, b"x", vec![], None, None), Err(Errno::ENOTCONN));
        let (a, b) = S::pair(&net, SockType::SeqPacket, ME).unwrap();
        S::send(&a, b"abc", vec![], None, None).unwrap();
        S::send(&a, b"de", vec![], None, None).unwrap();
        assert_eq!(b.borrow().inq(), Ok(5));
        let mut buf = [0u8; 2];
        let g = S::recv(&b, &mut buf, false, false, true).unwrap();
        assert_eq!((g.n, g.truncated), (2, true));
        assert_eq!(rd(&b, 10).unwrap(), b"de");
        S::release(&a);
        assert_eq!(rd(&b, 10).unwrap(), b"", "EOF after the peer closed");
        assert_eq!(S::send(&b, b"x", vec![], None, None), Err(Errno::EPIPE));
    }

    #[test]
    fn passcred_autobinds_and_stamps_messages() {
        let net = UnixNet::new();
        let r = S::new(&net, SockType::Dgram).unwrap();
        S::bind_abstract(&r, b"r").unwrap();
        r.borrow_mut().passcred = true;
        let w = S::new(&net, SockType::Dgram).unwrap();
        let creds = S::creds_for(&w, Some(&r), None, ME);
        assert_eq!(creds, Some(ME));
        S::send(&w, b"hi", vec![], creds, Some(&r)).unwrap();
        let mut b = [0u8; 4];
        let g = S::recv(&r, &mut b, false, false, true).unwrap();
        assert_eq!(g.creds, Some(ME));
        let w2 = S::new(&net, SockType::Dgram).unwrap();
        assert_eq!(S::creds_for(&w2, Some(&w), None, ME), None);
        w2.borrow_mut().passcred = true;
        S::send(&w2, b"x", vec![], None, Some(&r)).unwrap();
        assert!(w2.borrow().is_bound(), "SO_PASSCRED autobinds a sender");
    }

    #[test]
    fn each_socket_is_woken_only_by_its_own_events() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        let (c, _d) = S::pair(&net, SockType::Stream, ME).unwrap();
        let (qa, qb, qc) = (
            a.borrow().wait_queue(),
            b.borrow().wait_queue(),
            c.borrow().wait_queue(),
        );
        net.wakes.take();
        S::send(&a, b"x", vec![], None, None).unwrap();
        assert_eq!(net.wakes.owed(&qb), EV_IN, "data wakes the reader's queue");
        assert_eq!(net.wakes.owed(&qa) | net.wakes.owed(&qc), 0);
        net.wakes.take();
        rd(&b, 1).unwrap();
        assert_eq!(
            net.wakes.owed(&qa) & EV_IN,
            0,
            "a read wakes the writer for room, not its readers"
        );
        assert_eq!(net.wakes.owed(&qa) & EV_OUT, EV_OUT);
        assert_eq!(net.wakes.owed(&qb) | net.wakes.owed(&qc), 0);
        net.wakes.take();
        S::shutdown(&a, SHUT_WR_TEST).unwrap();
        assert_eq!(net.wakes.owed(&qb), EV_ALL);
        assert_eq!(net.wakes.owed(&qc), 0);
    }

    #[test]
    fn full_receivers_and_backlogs_wake_their_waiters_when_drained() {
        let net = UnixNet::new();
        let r = S::new(&net, SockType::Dgram).unwrap();
        S::bind_abstract(&r, b"r").unwrap();
        let w = S::new(&net, SockType::Dgram).unwrap();
        S::connect_dgram(&w, Some(&r)).unwrap();
        while S::send(&w, b"x", vec![], None, None).is_ok() {}
        assert_eq!(S::poll(&w) & EPOLLOUT, 0);
        let qw = w.borrow().wait_queue();
        net.wakes.take();
        rd(&r, 1).unwrap();
        assert_eq!(
            net.wakes.owed(&qw) & EV_OUT,
            EV_OUT,
            "a datagram read wakes the blocked sender"
        );
        // A connect to a full backlog waits for an accept.
        let l = listener(&net, b"l", 0);
        let c1 = S::new(&net, SockType::Stream).unwrap();
        S::connect_stream(&c1, &l, ME).unwrap();
        let c2 = S::new(&net, SockType::Stream).unwrap();
        assert_eq!(S::connect_stream(&c2, &l, ME), Err(Errno::EAGAIN));
        let q2 = c2.borrow().wait_queue();
        net.wakes.take();
        let _s1 = S::accept(&l).unwrap();
        assert_eq!(net.wakes.owed(&q2), EV_OUT);
        S::connect_stream(&c2, &l, ME).unwrap();
    }

    #[test]
    fn holders_list_sockets_with_descriptors_queued() {
        let net = UnixNet::new();
        let (a, b) = S::pair(&net, SockType::Stream, ME).unwrap();
        assert!(!net.has_holders());
        S::send(&a, b"x", vec![], None, None).unwrap();
        assert!(!net.has_holders(), "data alone holds nothing");
        S::send(&a, b"f", vec![7, 8], None, None).unwrap();
        let h = net.holders();
        assert_eq!(h.len(), 1);
        assert!(Rc::ptr_eq(&h[0], &b));
        let mut seen = Vec::new();
        S::visit_rights(&b, |r| seen.push(*r));
        assert_eq!(seen, vec![7, 8]);
        let mut buf = [0u8; 4];
        S::recv(&b, &mut buf, false, false, true).unwrap();
        assert!(net.holders().is_empty(), "read: pruned");
        assert!(!net.has_holders());
        // A pending connection's queue counts as its listener's.
        let l = listener(&net, b"gc", 4);
        let c = S::new(&net, SockType::Stream).unwrap();
        S::connect_stream(&c, &l, ME).unwrap();
        S::send(&c, b"f", vec![9], None, None).unwrap();
        let mut seen = Vec::new();
        S::visit_rights(&l, |r| seen.push(*r));
        assert_eq!(seen, vec![9]);
        assert_eq!(S::purge(&l), vec![9]);
        let mut seen = Vec::new();
        S::visit_rights(&l, |r| seen.push(*r));
        assert!(seen.is_empty());
        assert!(net.holders().is_empty());
    }

    #[test]
    fn socket_count_is_capped() {
        let net = UnixNet::<u32>::new();
        let mut v = Vec::new();
        for _ in 0..MAX_SOCKETS {
            v.push(S::new(&net, SockType::Dgram).unwrap());
        }
        assert_eq!(S::new(&net, SockType::Dgram).err(), Some(Errno::ENFILE));
        v.pop();
        assert!(S::new(&net, SockType::Dgram).is_ok());
    }
}
