//! The kernel log: Linux's printk ring buffer in small. Lines go to the
//! console (as a Linux console at the default log level shows KERN_ERR and
//! above) and into a ring of at most `KMSG_MAX` bytes that `syslog(2)`
//! (busybox `dmesg`) reads.
//!
//! Only the kernel writes here, on events a guest can cause at most once per
//! victim or per state change (an OOM kill, swapon), so the console cannot
//! be flooded through it; the ring drops its oldest lines when full.

use std::collections::VecDeque;

use super::core::Kernel;
use super::task::Pid;
use crate::errno::Errno;
use crate::syscalls::{ok, SysResult};

/// Bytes the ring keeps (Linux's default log_buf_len is 128 KiB).
pub const KMSG_MAX: usize = 64 << 10;

/// Log levels (the `<n>` prefix of a syslog record).
pub const KERN_ERR: u8 = 3;
pub const KERN_WARNING: u8 = 4;
pub const KERN_INFO: u8 = 6;

/// The ring of records, each `<level>[seconds.micros] text\n`.
#[derive(Default)]
pub struct Kmsg {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Records written in total (a test can wait for one more).
    pub seq: u64,
}

impl Kmsg {
    /// Appends one record, dropping the oldest ones past `KMSG_MAX`.
    pub fn push(&mut self, level: u8, secs: f64, text: &str) {
        let rec = format!("<{level}>[{secs:12.6}] {text}\n").into_bytes();
        self.bytes += rec.len();
        self.lines.push_back(rec);
        self.seq += 1;
        while self.bytes > KMSG_MAX {
            match self.lines.pop_front() {
                Some(l) => self.bytes -= l.len(),
                None => break,
            }
        }
    }

    /// Every record, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.lines.iter().flatten().copied().collect()
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

impl Kernel {
    /// printk: a line in the ring and, at KERN_WARNING or worse, on the
    /// console as Linux prints it (`[    1.234567] text`).
    pub fn printk(&mut self, level: u8, text: &str) {
        let secs = self.uptime().as_secs_f64();
        self.kmsg.push(level, secs, text);
        log::info!("kernel: {text}");
        if level <= KERN_WARNING {
            let line = format!("[{secs:12.6}] {text}\r\n");
            self.console.write_raw(line.as_bytes());
        }
    }
}

// syslog(2) actions.
const SYSLOG_ACTION_CLOSE: u64 = 0;
const SYSLOG_ACTION_OPEN: u64 = 1;
const SYSLOG_ACTION_READ: u64 = 2;
const SYSLOG_ACTION_READ_ALL: u64 = 3;
const SYSLOG_ACTION_READ_CLEAR: u64 = 4;
const SYSLOG_ACTION_CLEAR: u64 = 5;
const SYSLOG_ACTION_CONSOLE_OFF: u64 = 6;
const SYSLOG_ACTION_CONSOLE_ON: u64 = 7;
const SYSLOG_ACTION_CONSOLE_LEVEL: u64 = 8;
const SYSLOG_ACTION_SIZE_UNREAD: u64 = 9;
const SYSLOG_ACTION_SIZE_BUFFER: u64 = 10;

/// syslog(type, buf, len): reading the ring (busybox `dmesg`). Reading all
/// and the sizes are open to everyone (dmesg_restrict=0); the rest needs
/// root. READ (2) does not block: it returns what is there.
pub fn sys_syslog(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let (action, buf, len) = (a[0], a[1], a[2] as i32);
    let root = k.task(tid)?.cred.euid == 0;
    let open_to_all = matches!(action, SYSLOG_ACTION_READ_ALL | SYSLOG_ACTION_SIZE_BUFFER);
    if !open_to_all && !root {
        return Err(Errno::EPERM);
    }
    match action {
        SYSLOG_ACTION_CLOSE | SYSLOG_ACTION_OPEN => ok(0),
        SYSLOG_ACTION_READ | SYSLOG_ACTION_READ_ALL | SYSLOG_ACTION_READ_CLEAR => {
            if len < 0 {
                return Err(Errno::EINVAL);
            }
            if len == 0 {
                return ok(0);
            }
            let all = k.kmsg.contents();
            // The newest `len` bytes, as Linux's READ_ALL gives.
            let from = all.len().saturating_sub(len as usize);
            let data = &all[from..];
            k.write_user(tid, buf, data)?;
            if action == SYSLOG_ACTION_READ_CLEAR || action == SYSLOG_ACTION_READ {
                k.kmsg.clear();
            }
            ok(data.len() as i64)
        }
        SYSLOG_ACTION_CLEAR => {
            k.kmsg.clear();
            ok(0)
        }
        SYSLOG_ACTION_CONSOLE_OFF | SYSLOG_ACTION_CONSOLE_ON => ok(0),
        SYSLOG_ACTION_CONSOLE_LEVEL => {
            if !(1..=8).contains(&len) {
                return Err(Errno::EINVAL);
            }
            ok(0)
        }
        SYSLOG_ACTION_SIZE_UNREAD => ok(k.kmsg.len() as i64),
        SYSLOG_ACTION_SIZE_BUFFER => ok(KMSG_MAX as i64),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_drops_oldest() {
        let mut m = Kmsg::default();
        m.push(KERN_ERR, 1.5, "first");
        assert!(String::from_utf8(m.contents())
            .unwrap()
            .starts_with("<3>[    1.500000] first\n"));
        let long = "x".repeat(1000);
        for _ in 0..100 {
            m.push(KERN_INFO, 2.0, &long);
        }
        assert!(m.len() <= KMSG_MAX);
        assert!(!String::from_utf8(m.contents()).unwrap().contains("first"));
        assert_eq!(m.seq, 101);
        m.clear();
        assert!(m.is_empty());
    }
}
