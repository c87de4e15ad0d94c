//! A DNS server on 127.0.0.1 for the network tests: every A query is
//! answered with one address, every other query with no records; it
//! counts the queries it answered and stops (by its thread) on drop.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct DnsServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The answer to one query, or None if it is not one.
pub fn answer(q: &[u8], addr: [u8; 4]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut i = 12;
    while *q.get(i)? != 0 {
        i = i.checked_add(1 + usize::from(q[i]))?;
    }
    let qend = i.checked_add(5)?;
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    q.get(..qend)?;
    let an: u16 = (qtype == 1).into();
    let mut r = q[..2].to_vec();
    for v in [0x8180u16, 1, an, 0, 0] {
        r.extend(v.to_be_bytes());
    }
    r.extend(&q[12..qend]);
    if an == 1 {
        r.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend(addr);
    }
    Some(r)
}

impl DnsServer {
    /// Listens on a free port of 127.0.0.1, answering A queries with `addr`.
    pub fn start(addr: [u8; 4]) -> DnsServer {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind the DNS server");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = s.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (stop2, q2) = (stop.clone(), queries.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(r) = answer(&buf[..n], addr) {
                    q2.fetch_add(1, Ordering::Relaxed);
                    let _ = s.send_to(&r, from);
                }
            }
        });
        DnsServer {
            port,
            stop,
            queries,
            thread: Some(thread),
        }
    }

    /// Queries answered so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
