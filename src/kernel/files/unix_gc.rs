//! The collector of AF_UNIX sockets in flight (Linux's `unix_gc`).
//!
//! A socket file sent with SCM_RIGHTS lives in the receiving socket's
//! queue. If that queue is the socket's own (or a ring of sockets each
//! queued in the next) and every descriptor is closed, the files keep
//! each other alive and nothing can ever read them. This finds them:
//!
//! 1. candidates: the socket files in flight (in the queue of some
//!    socket listed in `UnixNet::holders`, or of its pending connections);
//! 2. a candidate is a root when it has references beyond those from the
//!    queues of candidates (an fd, a queue of a socket not in flight);
//! 3. what a root's queue holds is alive, transitively;
//! 4. the rest is garbage: their queues are purged and the descriptors
//!    released, which releases the sockets themselves.
//!
//! It runs when a socket's descriptor goes while the file lives on
//! (`Kernel::release_file`), only if some queue holds descriptors. A
//! release it causes does not start another run; the running one looks
//! again after each release.

use std::collections::HashMap;
use std::rc::Rc;

use super::socket::{release_rights, unix_wake, GuestSock};
use crate::kernel::Kernel;
use crate::net::unix::UnixSocket;
use crate::vfs::OpenFileRef;

/// The socket behind an open file, if it is an AF_UNIX socket.
fn sock_of(f: &OpenFileRef) -> Option<GuestSock> {
    let of = f.try_borrow().ok()?;
    of.ops.as_socket().map(|sf| sf.sock.clone())
}

fn key(f: &OpenFileRef) -> usize {
    Rc::as_ptr(f) as *const u8 as usize
}

struct Candidate {
    sock: GuestSock,
    /// All references to the file.
    refs: usize,
    /// Those from the queues of candidates.
    inner: usize,
    alive: bool,
}

/// Finds the unreachable sockets in flight and purges their queues:
/// the descriptors they held, to release.
fn purge_garbage(k: &Kernel) -> Vec<OpenFileRef> {
    let holders = k.unix.holders();
    let mut cands: HashMap<usize, Candidate> = HashMap::new();
    for h in &holders {
        UnixSocket::visit_rights(h, |f| {
            if let Some(sock) = sock_of(f) {
                cands.entry(key(f)).or_insert(Candidate {
                    sock,
                    refs: Rc::strong_count(f),
                    inner: 0,
                    alive: false,
                });
            }
        });
    }
    drop(holders);
    if cands.is_empty() {
        return Vec::new();
    }
    let socks: Vec<GuestSock> = cands.values().map(|c| c.sock.clone()).collect();
    for s in &socks {
        let mut hits = Vec::new();
        UnixSocket::visit_rights(s, |f| hits.push(key(f)));
        for h in hits {
            if let Some(c) = cands.get_mut(&h) {
                c.inner += 1;
            }
        }
    }
    let mut stack: Vec<usize> = Vec::new();
    for (k, c) in cands.iter_mut() {
        if c.refs > c.inner {
            c.alive = true;
            stack.push(*k);
        }
    }
    while let Some(p) = stack.pop() {
        let s = cands[&p].sock.clone();
        let mut next = Vec::new();
        UnixSocket::visit_rights(&s, |f| next.push(key(f)));
        for n in next {
            if let Some(c) = cands.get_mut(&n) {
                if !c.alive {
                    c.alive = true;
                    stack.push(n);
                }
            }
        }
    }
    let garbage: Vec<GuestSock> = cands
        .into_values()
        .filter(|c| !c.alive)
        .map(|c| c.sock)
        .collect();
    garbage.iter().flat_map(UnixSocket::purge).collect()
}

/// Collects the unreachable sockets in flight (see the module header).
pub fn collect(k: &mut Kernel) {
    if !k.unix.has_holders() || k.unix.gc_busy.get() {
        return;
    }
    k.unix.gc_busy.set(true);
    loop {
        let rights = purge_garbage(k);
        if rights.is_empty() {
            break;
        }
        log::debug!("unix gc: {} descriptors in flight released", rights.len());
        release_rights(k, rights);
        unix_wake(k);
    }
    k.unix.gc_busy.set(false);
}
