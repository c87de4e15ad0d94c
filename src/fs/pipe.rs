//! Pipe and fifo buffers with Linux semantics: a 64 KiB ring, PIPE_BUF
//! atomic writes, EOF when the last writer closes, EPIPE when no reader is
//! left. The kernel keeps one `Pipe` per pipe(2) pair or fifo inode, sleeps
//! on EAGAIN for blocking descriptors and sends SIGPIPE on EPIPE.
#![deny(unsafe_code)]

use std::collections::VecDeque;

use crate::errno::{Errno, KResult};

/// Default capacity, as Linux (16 pages).
pub const PIPE_DEF_SIZE: usize = 65536;
/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;
/// Largest F_SETPIPE_SZ an unprivileged process may ask (/proc/sys/fs/pipe-max-size).
pub const PIPE_MAX_SIZE: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Pipe {
    buf: VecDeque<u8>,
    capacity: usize,
    readers: u32,
    writers: u32,
}

impl Default for Pipe {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipe {
    /// An empty pipe with no reader and no writer yet (pipe(2) opens one
    /// of each right away; a fifo counts its opens).
    pub fn new() -> Self {
        Pipe {
            buf: VecDeque::new(),
            capacity: PIPE_DEF_SIZE,
            readers: 0,
            writers: 0,
        }
    }

    pub fn open_reader(&mut self) {
        self.readers += 1;
    }
    pub fn open_writer(&mut self) {
        self.writers += 1;
    }
    pub fn close_reader(&mut self) {
        self.readers = self.readers.saturating_sub(1);
    }
    pub fn close_writer(&mut self) {
        self.writers = self.writers.saturating_sub(1);
    }
    pub fn readers(&self) -> u32 {
        self.readers
    }
    pub fn writers(&self) -> u32 {
        self.writers
    }

    /// Reads up to `buf.len()` bytes. Ok(0) is EOF (no writer left);
    /// Err(EAGAIN) means empty with a writer: sleep or return EAGAIN.
    pub fn read(&mut self, buf: &mut [u8]) -> KResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.buf.is_empty() {
            return if self.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let n = self.buf.len().min(buf.len());
        for (d, s) in buf.iter_mut().zip(self.buf.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }

    /// Copies up to `buf.len()` queued bytes without taking them (tee).
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let n = self.buf.len().min(buf.len());
        for (d, s) in buf.iter_mut().zip(self.buf.iter()) {
            *d = *s;
        }
        n
    }

    /// Writes `data`. Err(EPIPE) with no reader (the kernel sends SIGPIPE);
    /// Err(EAGAIN) when nothing can be written now. Up to PIPE_BUF bytes go
    /// in whole or not at all; bigger writes may be partial (a blocking
    /// writer then sleeps and writes the rest).
    pub fn write(&mut self, data: &[u8]) -> KResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.readers == 0 {
            return Err(Errno::EPIPE);
        }
        let free = self.free();
        if data.len() <= PIPE_BUF {
            if free < data.len() {
                return Err(Errno::EAGAIN);
            }
        } else if free == 0 {
            return Err(Errno::EAGAIN);
        }
        let n = data.len().min(free);
        self.buf.extend(&data[..n]);
        Ok(n)
    }

    fn free(&self) -> usize {
        self.capacity - self.buf.len()
    }

    /// Poll: POLLIN (data) — also true at EOF so readers wake and see 0.
    pub fn readable(&self) -> bool {
        !self.buf.is_empty() || self.writers == 0
    }

    /// Poll: POLLOUT when an atomic write fits, or POLLERR (no reader).
    pub fn writable(&self) -> bool {
        self.free() >= PIPE_BUF || self.readers == 0
    }

    /// POLLHUP on the read end: every writer is gone.
    pub fn hung_up(&self) -> bool {
        self.writers == 0
    }

    /// FIONREAD.
    pub fn fionread(&self) -> usize {
        self.buf.len()
    }

    /// F_GETPIPE_SZ.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// F_SETPIPE_SZ: rounds up to a power-of-two number of pages; EBUSY if
    /// the data already queued would not fit, EPERM over the max.
    pub fn set_capacity(&mut self, size: usize) -> KResult<usize> {
        if size > PIPE_MAX_SIZE {
            return Err(Errno::EPERM);
        }
        let pages = size.div_ceil(4096).max(1).next_power_of_two();
        let cap = pages * 4096;
        if cap < self.buf.len() {
            return Err(Errno::EBUSY);
        }
        self.capacity = cap;
        Ok(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair() -> Pipe {
        let mut p = Pipe::new();
        p.open_reader();
        p.open_writer();
        p
    }

    #[test]
    fn peek_copies_without_taking() {
        let mut p = pair();
        p.write(b"hello").unwrap();
        let mut b = [0u8; 3];
        assert_eq!(p.peek(&mut b), 3);
        assert_eq!(&b, b"hel");
        let mut all = [0u8; 16];
        assert_eq!(p.peek(&mut all), 5);
        assert_eq!(p.read(&mut all).unwrap(), 5);
        assert_eq!(&all[..5], b"hello");
        assert_eq!(p.peek(&mut all), 0);
    }

    #[test]
    fn read_write_and_eof() {
        let mut p = pair();
        let mut b = [0u8; 10];
        assert_eq!(p.read(&mut b), Err(Errno::EAGAIN));
        assert!(!p.readable());
        assert_eq!(p.write(b"hello"), Ok(5));
        assert_eq!(p.fionread(), 5);
        assert!(p.readable());
        assert_eq!(p.read(&mut b[..3]), Ok(3));
        assert_eq!(&b[..3], b"hel");
        p.close_writer();
        assert_eq!(p.read(&mut b), Ok(2));
        assert_eq!(p.read(&mut b), Ok(0));
        assert!(p.readable() && p.hung_up());
    }

    #[test]
    fn epipe_without_readers() {
        let mut p = pair();
        p.close_reader();
        assert_eq!(p.write(b"x"), Err(Errno::EPIPE));
        assert_eq!(p.write(b""), Ok(0));
        assert!(p.writable(), "POLLERR wakes writers");
    }

    #[test]
    fn small_writes_are_atomic() {
        let mut p = pair();
        assert_eq!(
            p.write(&vec![0u8; PIPE_DEF_SIZE - 100]),
            Ok(PIPE_DEF_SIZE - 100)
        );
        assert!(!p.writable());
        assert_eq!(p.write(&[1u8; 200]), Err(Errno::EAGAIN));
        assert_eq!(p.write(&[1u8; 100]), Ok(100));
        assert_eq!(p.write(&[1u8; 1]), Err(Errno::EAGAIN));
    }

    #[test]
    fn big_writes_are_partial() {
        let mut p = pair();
        p.write(&vec![0u8; PIPE_DEF_SIZE - 1000]).unwrap();
        assert_eq!(p.write(&vec![1u8; 5000]), Ok(1000));
        assert_eq!(p.write(&vec![1u8; 5000]), Err(Errno::EAGAIN));
        let mut b = vec![0u8; PIPE_BUF];
        p.read(&mut b).unwrap();
        assert!(p.writable());
    }

    #[test]
    fn set_capacity() {
        let mut p = pair();
        assert_eq!(p.set_capacity(5000), Ok(8192));
        assert_eq!(p.capacity(), 8192);
        assert_eq!(p.set_capacity(0), Ok(4096));
        p.write(&[0u8; 4000]).unwrap();
        p.set_capacity(65536).unwrap();
        p.write(&[0u8; 4000]).unwrap();
        assert_eq!(p.set_capacity(4096), Err(Errno::EBUSY));
        assert_eq!(p.set_capacity(PIPE_MAX_SIZE + 1), Err(Errno::EPERM));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        Read(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..10000).prop_map(Op::Write),
            (0usize..10000).prop_map(Op::Read),
            (0usize..PIPE_BUF + 1).prop_map(Op::Write),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_byte_queue(ops in proptest::collection::vec(op(), 1..200)) {
            let mut p = pair();
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut next = 0u8;
            for o in ops {
                match o {
                    Op::Write(n) => {
                        // Bytes carry their stream position so reordering or loss shows.
                        let data: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                        let free = PIPE_DEF_SIZE - model.len();
                        let expect = if n == 0 { Ok(0) }
                            else if (n <= PIPE_BUF && free < n) || free == 0 { Err(Errno::EAGAIN) }
                            else { Ok(n.min(free)) };
                        let got = p.write(&data);
                        prop_assert_eq!(got, expect);
                        if let Ok(k) = got {
                            model.extend(&data[..k]);
                            next = next.wrapping_add(k as u8);
                        }
                    }
                    Op::Read(n) => {
                        let mut b = vec![0u8; n];
                        let got = p.read(&mut b);
                        if n == 0 { prop_assert_eq!(got, Ok(0)); continue; }
                        if model.is_empty() { prop_assert_eq!(got, Err(Errno::EAGAIN)); continue; }
                        let k = n.min(model.len());
                        prop_assert_eq!(got, Ok(k));
                        let want: Vec<u8> = model.drain(..k).collect();
                        prop_assert_eq!(&b[..k], &want[..]);
                    }
                }
                prop_assert_eq!(p.fionread(), model.len());
                prop_assert_eq!(p.readable(), !model.is_empty());
            }
        }
    }
}
