//! The N_TTY line discipline: input processing (ICRNL, canonical line
//! editing, echo, ISIG), reads with canonical and VMIN/VTIME semantics, and
//! output post-processing (OPOST). Pure state: the kernel feeds bytes in,
//! writes the echo to the device, sends the signals, and runs the timers.

use std::collections::VecDeque;

use super::termios::*;

/// Longest canonical line (Linux N_TTY_BUF_SIZE - 1); extra bytes are dropped.
pub const MAX_CANON: usize = 4095;
/// Cap on unread raw-mode input, like Linux's 4 KiB read buffer.
pub const MAX_INPUT: usize = 4096;

pub use crate::abi::sig::{SIGINT, SIGQUIT, SIGTSTP};

/// What feeding input produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InputResult {
    /// Bytes to write to the terminal, already OPOST-processed.
    pub echo: Vec<u8>,
    /// Signals for the foreground process group, in order.
    pub signals: Vec<i32>,
}

/// What a read got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResult {
    /// `n` bytes were copied (0 only for VMIN=0,VTIME=0 with no input).
    Data(usize),
    /// Nothing to return yet: sleep until input arrives.
    WouldBlock,
    /// Sleep until input arrives or this many deciseconds pass, then call
    /// [`LineDiscipline::read_expired`] if no input came.
    WouldBlockWithTimeout(u8),
    /// End of file (^D at the start of a line): read returns 0.
    Eof,
}

#[derive(Debug, Clone)]
pub struct LineDiscipline {
    termios: Termios,
    /// Canonical: completed lines; an empty line is an EOF marker.
    lines: VecDeque<Vec<u8>>,
    /// Canonical: the line being edited.
    edit: Vec<u8>,
    /// Non-canonical input.
    raw: VecDeque<u8>,
    /// The previous byte was VLNEXT: take this one literally.
    lnext: bool,
    /// Output stopped by VSTOP (IXON); the kernel holds writes while set.
    pub output_stopped: bool,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        Self::new(Termios::default())
    }
}

fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl LineDiscipline {
    pub fn new(termios: Termios) -> Self {
        LineDiscipline {
            termios,
            lines: VecDeque::new(),
            edit: Vec::new(),
            raw: VecDeque::new(),
            lnext: false,
            output_stopped: false,
        }
    }

    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    /// TCSETS*: switching canonical off makes pending input readable;
    /// switching it on turns pending raw input into one line.
    pub fn set_termios(&mut self, t: Termios) {
        let was = self.termios.lflag(ICANON);
        let now = t.lflag(ICANON);
        if was && !now {
            for l in self.lines.drain(..) {
                self.raw.extend(l);
            }
            self.raw.extend(self.edit.drain(..));
        } else if !was && now && !self.raw.is_empty() {
            self.lines.push_back(self.raw.drain(..).collect());
        }
        if !t.iflag(IXON) {
            self.output_stopped = false;
        }
        self.termios = t;
    }

    /// TCFLSH(TCIFLUSH), TCSETSF, and signal characters without NOFLSH.
    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.edit.clear();
        self.raw.clear();
        self.lnext = false;
    }

    /// Feeds bytes typed at the terminal.
    pub fn input(&mut self, bytes: &[u8]) -> InputResult {
        let mut echo = Vec::new();
        let mut signals = Vec::new();
        for &b in bytes {
            self.input_byte(b, &mut echo, &mut signals);
        }
        InputResult {
            echo: self.output(&echo),
            signals,
        }
    }

    fn input_byte(&mut self, mut c: u8, echo: &mut Vec<u8>, signals: &mut Vec<i32>) {
        let t = self.termios;
        if t.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.put(c, echo);
            return;
        }
        if c == b'\r' {
            if t.iflag(IGNCR) {
                return;
            }
            if t.iflag(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.iflag(INLCR) {
            c = b'\r';
        }
        if t.iflag(IXON) {
            if t.is_cc(VSTOP, c) {
                self.output_stopped = true;
                return;
            }
            if t.is_cc(VSTART, c) {
                self.output_stopped = false;
                return;
            }
            if t.iflag(IXANY) {
                self.output_stopped = false;
            }
        }
        if t.lflag(ISIG) {
            let sig = [(VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)]
                .iter()
                .find(|(i, _)| t.is_cc(*i, c))
                .map(|&(_, s)| s);
            if let Some(sig) = sig {
                if !t.lflag(NOFLSH) {
                    self.flush_input();
                }
                self.output_stopped = false;
                signals.push(sig);
                if t.lflag(ECHO) {
                    self.echo_char(c, echo);
                }
                return;
            }
        }
        if !t.lflag(ICANON) {
            if self.raw.len() < MAX_INPUT {
                self.raw.push_back(c);
                if t.lflag(ECHO) {
                    self.echo_char(c, echo);
                } else if c == b'\n' && t.lflag(ECHONL) {
                    echo.push(b'\n');
                }
            }
            return;
        }
        if t.is_cc(VERASE, c) {
            self.erase_one(echo, true);
            if !t.lflag(ECHOE) && t.lflag(ECHO) {
                self.echo_char(c, echo);
            }
            return;
        }
        if t.lflag(IEXTEN) && t.is_cc(VWERASE, c) {
            while self.edit.last().is_some_and(|b| b.is_ascii_whitespace()) {
                self.erase_one(echo, true);
            }
            while self.edit.last().is_some_and(|b| !b.is_ascii_whitespace()) {
                self.erase_one(echo, true);
            }
            return;
        }
        if t.is_cc(VKILL, c) {
            if t.lflag(ECHO) && t.lflag(ECHOKE) && t.lflag(ECHOE) {
                while !self.edit.is_empty() {
                    self.erase_one(echo, true);
                }
            } else {
                self.edit.clear();
                if t.lflag(ECHO) {
                    self.echo_char(c, echo);
                    if t.lflag(ECHOK) {
                        echo.push(b'\n');
                    }
                }
            }
            return;
        }
        if t.lflag(IEXTEN) && t.is_cc(VLNEXT, c) {
            self.lnext = true;
            if t.lflag(ECHO) && t.lflag(ECHOCTL) {
                echo.extend_from_slice(b"^\x08");
            }
            return;
        }
        if t.lflag(IEXTEN) && t.is_cc(VREPRINT, c) {
            if t.lflag(ECHO) {
                self.echo_char(c, echo);
                echo.push(b'\n');
                for b in self.edit.clone() {
                    self.echo_char(b, echo);
                }
            }
            return;
        }
        if t.is_cc(VEOF, c) {
            // The line so far becomes readable; at a line start it is EOF.
            self.lines.push_back(std::mem::take(&mut self.edit));
            return;
        }
        if c == b'\n' || t.is_cc(VEOL, c) || t.is_cc(VEOL2, c) {
            if t.lflag(ECHO) || (c == b'\n' && t.lflag(ECHONL)) {
                if c == b'\n' {
                    echo.push(b'\n');
                } else {
                    self.echo_char(c, echo);
                }
            }
            self.edit.push(c);
            self.lines.push_back(std::mem::take(&mut self.edit));
            return;
        }
        self.put(c, echo);
    }

    /// Stores an ordinary character (canonical or raw) and echoes it.
    fn put(&mut self, c: u8, echo: &mut Vec<u8>) {
        if self.termios.lflag(ICANON) {
            if self.edit.len() >= MAX_CANON {
                return;
            }
            self.edit.push(c);
        } else {
            if self.raw.len() >= MAX_INPUT {
                return;
            }
            self.raw.push_back(c);
        }
        if self.termios.lflag(ECHO) {
            self.echo_char(c, echo);
        }
    }

    /// Echo of one character: control characters as `^X` under ECHOCTL.
    fn echo_char(&self, c: u8, echo: &mut Vec<u8>) {
        if self.termios.lflag(ECHOCTL) && is_ctl(c) && c != b'\t' && c != b'\n' {
            echo.push(b'^');
            echo.push(c ^ 0x40);
        } else {
            echo.push(c);
        }
    }

    /// Display width of the edit buffer's characters, from column 0.
    fn columns(&self, upto: usize) -> usize {
        let mut col = 0;
        for &b in &self.edit[..upto] {
            col = match b {
                b'\t' => (col / 8 + 1) * 8,
                b if is_ctl(b) && self.termios.lflag(ECHOCTL) => col + 2,
                b if is_ctl(b) => col,
                _ => col + 1,
            };
        }
        col
    }

    /// Removes the last edited character, echoing "\b \b" under ECHOE.
    fn erase_one(&mut self, echo: &mut Vec<u8>, visual: bool) {
        let n = self.edit.len();
        if n == 0 {
            return;
        }
        let width = self.columns(n) - self.columns(n - 1);
        self.edit.pop();
        let t = self.termios;
        if visual && t.lflag(ECHO) && t.lflag(ECHOE) {
            for _ in 0..width {
                echo.extend_from_slice(b"\x08 \x08");
            }
        }
    }

    fn canon(&self) -> bool {
        self.termios.lflag(ICANON)
    }

    /// Reads like a blocking `read(2)` would decide (the kernel sleeps on
    /// the `WouldBlock*` answers and retries when input arrives).
    pub fn read(&mut self, buf: &mut [u8]) -> ReadResult {
        if buf.is_empty() {
            return ReadResult::Data(0);
        }
        if self.canon() {
            return self.read_line(buf);
        }
        let vmin = self.termios.c_cc[VMIN] as usize;
        let vtime = self.termios.c_cc[VTIME];
        let avail = self.raw.len();
        match (vmin, vtime) {
            (0, 0) => ReadResult::Data(self.take_raw(buf)),
            (0, t) => {
                if avail > 0 {
                    ReadResult::Data(self.take_raw(buf))
                } else {
                    ReadResult::WouldBlockWithTimeout(t)
                }
            }
            (m, t) => {
                if avail >= m.min(buf.len()) {
                    ReadResult::Data(self.take_raw(buf))
                } else if avail > 0 && t > 0 {
                    // The inter-byte timer runs once a byte has arrived.
                    ReadResult::WouldBlockWithTimeout(t)
                } else {
                    ReadResult::WouldBlock
                }
            }
        }
    }

    /// The VTIME timer ran out: return whatever input there is (maybe 0).
    pub fn read_expired(&mut self, buf: &mut [u8]) -> usize {
        if self.canon() {
            return match self.read_line(buf) {
                ReadResult::Data(n) => n,
                _ => 0,
            };
        }
        self.take_raw(buf)
    }

    /// An O_NONBLOCK read: available input now, or WouldBlock (EAGAIN).
    pub fn read_nonblocking(&mut self, buf: &mut [u8]) -> ReadResult {
        if self.canon() || buf.is_empty() {
            return self.read(buf);
        }
        if self.raw.is_empty() {
            ReadResult::WouldBlock
        } else {
            ReadResult::Data(self.take_raw(buf))
        }
    }

    fn read_line(&mut self, buf: &mut [u8]) -> ReadResult {
        let Some(line) = self.lines.front_mut() else {
            return ReadResult::WouldBlock;
        };
        if line.is_empty() {
            self.lines.pop_front();
            return ReadResult::Eof;
        }
        let n = line.len().min(buf.len());
        buf[..n].copy_from_slice(&line[..n]);
        line.drain(..n);
        if line.is_empty() {
            self.lines.pop_front();
        }
        ReadResult::Data(n)
    }

    fn take_raw(&mut self, buf: &mut [u8]) -> usize {
        let n = self.raw.len().min(buf.len());
        for (dst, src) in buf.iter_mut().zip(self.raw.drain(..n)) {
            *dst = src;
        }
        n
    }

    /// For poll: would a read return without sleeping?
    pub fn readable(&self) -> bool {
        if self.canon() {
            return !self.lines.is_empty();
        }
        let (vmin, vtime) = (self.termios.c_cc[VMIN] as usize, self.termios.c_cc[VTIME]);
        let need = if vtime == 0 && vmin > 0 { vmin } else { 1 };
        self.raw.len() >= need
    }

    /// FIONREAD: bytes a read could return (completed lines only when canonical).
    pub fn fionread(&self) -> usize {
        if self.canon() {
            self.lines.iter().map(|l| l.len()).sum()
        } else {
            self.raw.len()
        }
    }

    /// Output post-processing (OPOST, OLCUC, ONLCR, OCRNL, ONLRET).
    /// ONOCR and tab expansion need a column and are not done.
    pub fn output(&self, data: &[u8]) -> Vec<u8> {
        let t = &self.termios;
        if !t.oflag(OPOST) {
            return data.to_vec();
        }
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        for &c in data {
            match c {
                b'\n' if t.oflag(ONLCR) => out.extend_from_slice(b"\r\n"),
                b'\r' if t.oflag(OCRNL) => out.push(b'\n'),
                b'a'..=b'z' if t.oflag(OLCUC) => out.push(c.to_ascii_uppercase()),
                _ => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(l: &mut LineDiscipline) -> (ReadResult, Vec<u8>) {
        let mut buf = [0u8; 256];
        let r = l.read(&mut buf);
        let n = if let ReadResult::Data(n) = r { n } else { 0 };
        (r, buf[..n].to_vec())
    }

    fn raw(vmin: u8, vtime: u8) -> LineDiscipline {
        let mut t = Termios::default();
        t.c_lflag &= !(ICANON | ECHO);
        t.c_cc[VMIN] = vmin;
        t.c_cc[VTIME] = vtime;
        LineDiscipline::new(t)
    }

    #[test]
    fn canonical_line_with_cr_and_echo() {
        let mut l = LineDiscipline::default();
        let r = l.input(b"ls\r");
        assert_eq!(r.echo, b"ls\r\n");
        assert!(r.signals.is_empty());
        assert!(l.readable());
        assert_eq!(l.fionread(), 3);
        assert_eq!(read_all(&mut l), (ReadResult::Data(3), b"ls\n".to_vec()));
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
    }

    #[test]
    fn partial_line_is_not_readable() {
        let mut l = LineDiscipline::default();
        l.input(b"abc");
        assert!(!l.readable());
        assert_eq!(l.fionread(), 0);
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
    }

    #[test]
    fn one_line_per_read_and_short_buffers() {
        let mut l = LineDiscipline::default();
        l.input(b"one\ntwo\n");
        let mut b = [0u8; 2];
        assert_eq!(l.read(&mut b), ReadResult::Data(2));
        assert_eq!(&b, b"on");
        assert_eq!(read_all(&mut l).1, b"e\n");
        assert_eq!(read_all(&mut l).1, b"two\n");
    }

    #[test]
    fn erase_and_echoe() {
        let mut l = LineDiscipline::default();
        let r = l.input(b"ab\x7f\x7f\x7fc\n");
        assert_eq!(r.echo, b"ab\x08 \x08\x08 \x08c\r\n");
        assert_eq!(read_all(&mut l).1, b"c\n");
    }

    #[test]
    fn erase_without_echoe_echoes_the_char() {
        let mut t = Termios::default();
        t.c_lflag &= !ECHOE;
        let mut l = LineDiscipline::new(t);
        assert_eq!(l.input(b"a\x7f").echo, b"a^?");
    }

    #[test]
    fn erase_of_control_char_takes_two_columns() {
        let mut l = LineDiscipline::default();
        // ^V^A inserts a literal ^A shown as "^A".
        let r = l.input(b"\x16\x01\x7f");
        assert_eq!(r.echo, b"^\x08^A\x08 \x08\x08 \x08");
        l.input(b"\n");
        assert_eq!(read_all(&mut l).1, b"\n");
    }

    #[test]
    fn kill_line_echoke_and_echok() {
        let mut l = LineDiscipline::default();
        let r = l.input(b"xy\x15z\n");
        assert_eq!(r.echo, b"xy\x08 \x08\x08 \x08z\r\n");
        assert_eq!(read_all(&mut l).1, b"z\n");

        let mut t = Termios::default();
        t.c_lflag &= !ECHOKE;
        let mut l = LineDiscipline::new(t);
        assert_eq!(l.input(b"xy\x15").echo, b"xy^U\r\n");
    }

    #[test]
    fn word_erase() {
        let mut l = LineDiscipline::default();
        l.input(b"echo hello  \x17world\n");
        assert_eq!(read_all(&mut l).1, b"echo world\n");
    }

    #[test]
    fn eof_at_line_start_and_mid_line() {
        let mut l = LineDiscipline::default();
        let r = l.input(b"\x04");
        assert!(r.echo.is_empty());
        assert!(l.readable());
        assert_eq!(read_all(&mut l).0, ReadResult::Eof);
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
        l.input(b"ab\x04");
        assert_eq!(read_all(&mut l), (ReadResult::Data(2), b"ab".to_vec()));
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
    }

    #[test]
    fn eol_chars_end_lines() {
        let mut t = Termios::default();
        t.c_cc[VEOL] = b';';
        let mut l = LineDiscipline::new(t);
        assert_eq!(l.input(b"a;").echo, b"a;");
        assert_eq!(read_all(&mut l).1, b"a;");
    }

    #[test]
    fn signals_echo_and_flush() {
        let mut l = LineDiscipline::default();
        let r = l.input(b"partial\x03");
        assert_eq!(r.signals, vec![SIGINT]);
        assert!(r.echo.ends_with(b"^C"));
        l.input(b"\n");
        assert_eq!(read_all(&mut l).1, b"\n", "^C flushed the partial line");
        assert_eq!(l.input(b"\x1c").signals, vec![SIGQUIT]);
        let r = l.input(b"\x1a");
        assert_eq!(r.signals, vec![SIGTSTP]);
        assert_eq!(r.echo, b"^Z");
    }

    #[test]
    fn noflsh_keeps_input_and_no_isig_passes_chars() {
        let mut t = Termios::default();
        t.c_lflag |= NOFLSH;
        let mut l = LineDiscipline::new(t);
        l.input(b"ab\x03\n");
        assert_eq!(read_all(&mut l).1, b"ab\n");

        let mut t = Termios::default();
        t.c_lflag &= !ISIG;
        let mut l = LineDiscipline::new(t);
        let r = l.input(b"\x03\n");
        assert!(r.signals.is_empty());
        assert_eq!(read_all(&mut l).1, b"\x03\n");
    }

    #[test]
    fn icrnl_inlcr_igncr() {
        let t = Termios {
            c_iflag: IGNCR,
            ..Default::default()
        };
        let mut l = LineDiscipline::new(t);
        l.input(b"a\r\n");
        assert_eq!(read_all(&mut l).1, b"a\n");

        let mut t = raw(1, 0).termios;
        t.c_iflag = INLCR;
        let mut l = LineDiscipline::new(t);
        l.input(b"\n\r");
        assert_eq!(read_all(&mut l).1, b"\r\r");

        let mut t = raw(1, 0).termios;
        t.c_iflag = 0;
        let mut l = LineDiscipline::new(t);
        l.input(b"\r");
        assert_eq!(read_all(&mut l).1, b"\r");
    }

    #[test]
    fn lnext_quotes_special_chars() {
        let mut l = LineDiscipline::default();
        let r = l.input(b"\x16\x03\n");
        assert!(r.signals.is_empty());
        assert_eq!(read_all(&mut l).1, b"\x03\n");
    }

    #[test]
    fn reprint() {
        let mut l = LineDiscipline::default();
        assert_eq!(l.input(b"ab\x12").echo, b"ab^R\r\nab");
    }

    #[test]
    fn ixon_stop_start() {
        let mut l = LineDiscipline::default();
        l.input(b"\x13");
        assert!(l.output_stopped);
        l.input(b"\x11");
        assert!(!l.output_stopped);
        l.input(b"\n");
        assert_eq!(read_all(&mut l).1, b"\n", "^S/^Q are not input");
    }

    #[test]
    fn no_echo() {
        let mut t = Termios::default();
        t.c_lflag &= !ECHO;
        let mut l = LineDiscipline::new(t);
        assert!(l.input(b"secret\n").echo.is_empty());
        t.c_lflag |= ECHONL;
        let mut l = LineDiscipline::new(t);
        assert_eq!(l.input(b"secret\n").echo, b"\r\n");
    }

    #[test]
    fn long_lines_are_capped() {
        let mut l = LineDiscipline::default();
        l.input(&vec![b'x'; MAX_CANON + 10]);
        l.input(b"\n");
        assert_eq!(l.fionread(), MAX_CANON + 1);
    }

    #[test]
    fn raw_vmin1_vtime0() {
        let mut l = raw(1, 0);
        assert!(l.input(b"q").echo.is_empty());
        assert!(l.readable());
        assert_eq!(read_all(&mut l), (ReadResult::Data(1), b"q".to_vec()));
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
        // Special chars are data (except ISIG ones, still on).
        l.input(b"\x7f\x04\x15");
        assert_eq!(read_all(&mut l).1, b"\x7f\x04\x15");
    }

    #[test]
    fn raw_vmin_waits_for_min_bytes() {
        let mut l = raw(3, 0);
        l.input(b"ab");
        assert!(!l.readable());
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
        // A smaller buffer is satisfied sooner.
        let mut b = [0u8; 2];
        assert_eq!(l.read(&mut b), ReadResult::Data(2));
        l.input(b"cde");
        assert!(l.readable());
        assert_eq!(read_all(&mut l).1, b"cde");
    }

    #[test]
    fn raw_vmin_vtime_interbyte_timer() {
        let mut l = raw(4, 2);
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlock);
        l.input(b"a");
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlockWithTimeout(2));
        let mut b = [0u8; 8];
        assert_eq!(l.read_expired(&mut b), 1);
        assert_eq!(b[0], b'a');
    }

    #[test]
    fn raw_vmin0() {
        let mut l = raw(0, 0);
        assert_eq!(read_all(&mut l).0, ReadResult::Data(0));
        l.input(b"x");
        assert_eq!(read_all(&mut l).1, b"x");

        let mut l = raw(0, 5);
        assert_eq!(read_all(&mut l).0, ReadResult::WouldBlockWithTimeout(5));
        assert_eq!(l.read_expired(&mut [0u8; 4]), 0);
        l.input(b"y");
        assert_eq!(read_all(&mut l).1, b"y");
    }

    #[test]
    fn nonblocking_raw_returns_what_is_there() {
        let mut l = raw(5, 0);
        let mut b = [0u8; 8];
        assert_eq!(l.read_nonblocking(&mut b), ReadResult::WouldBlock);
        l.input(b"ab");
        assert_eq!(l.read_nonblocking(&mut b), ReadResult::Data(2));
    }

    #[test]
    fn raw_echo_uses_echoctl() {
        let mut l = raw(1, 0);
        let mut t = *l.termios();
        t.c_lflag |= ECHO;
        l.set_termios(t);
        assert_eq!(l.input(b"a\x01\n").echo, b"a^A\r\n");
    }

    #[test]
    fn mode_switch_keeps_pending_input() {
        let mut l = LineDiscipline::default();
        l.input(b"ab\ncd");
        let mut t = *l.termios();
        t.c_lflag &= !ICANON;
        l.set_termios(t);
        assert_eq!(l.fionread(), 5);
        assert_eq!(read_all(&mut l).1, b"ab\ncd");
        l.input(b"xy");
        t.c_lflag |= ICANON;
        l.set_termios(t);
        assert_eq!(read_all(&mut l).1, b"xy");
    }

    #[test]
    fn output_processing() {
        let l = LineDiscipline::default();
        assert_eq!(l.output(b"a\nb"), b"a\r\nb");
        let mut t = Termios {
            c_oflag: OPOST | OCRNL | OLCUC,
            ..Default::default()
        };
        assert_eq!(LineDiscipline::new(t).output(b"a\r"), b"A\n");
        t.c_oflag = ONLCR; // no OPOST: nothing happens
        assert_eq!(LineDiscipline::new(t).output(b"a\n"), b"a\n");
    }
}
