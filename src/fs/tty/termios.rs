//! The Linux `struct termios` / `termios2` / `winsize` as the TCGETS,
//! TCGETS2 and TIOCGWINSZ ioctls copy them (x86-64 layout, little-endian),
//! the flag bits, the `c_cc` indices, and a fresh console's defaults.

use crate::errno::{Errno, KResult};

/// Number of control characters in the kernel's termios (x86-64).
pub const NCCS: usize = 19;
/// Bytes of `struct termios` (TCGETS/TCSETS*).
pub const TERMIOS_SIZE: usize = 36;
/// Bytes of `struct termios2` (TCGETS2/TCSETS2): termios + ispeed + ospeed.
pub const TERMIOS2_SIZE: usize = 44;
/// Bytes of `struct winsize`.
pub const WINSIZE_SIZE: usize = 8;

// c_cc indices.
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSWTC: usize = 7;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VDISCARD: usize = 13;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

// c_iflag.
pub const IGNBRK: u32 = 0o1;
pub const BRKINT: u32 = 0o2;
pub const IGNPAR: u32 = 0o4;
pub const PARMRK: u32 = 0o10;
pub const INPCK: u32 = 0o20;
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IUCLC: u32 = 0o1000;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IXOFF: u32 = 0o10000;
pub const IMAXBEL: u32 = 0o20000;
pub const IUTF8: u32 = 0o40000;

// c_oflag.
pub const OPOST: u32 = 0o1;
pub const OLCUC: u32 = 0o2;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;

// c_cflag.
pub const CBAUD: u32 = 0o10017;
pub const B38400: u32 = 0o17;
pub const CSIZE: u32 = 0o60;
pub const CS8: u32 = 0o60;
pub const CSTOPB: u32 = 0o100;
pub const CREAD: u32 = 0o200;
pub const PARENB: u32 = 0o400;
pub const HUPCL: u32 = 0o2000;
pub const CLOCAL: u32 = 0o4000;

// c_lflag.
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOPRT: u32 = 0o2000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;

/// A `c_cc` slot holding this value is disabled (`_POSIX_VDISABLE`).
pub const VDISABLE: u8 = 0;

/// The kernel's `struct termios` plus the two speeds of `termios2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; NCCS],
    pub c_ispeed: u32,
    pub c_ospeed: u32,
}

impl Default for Termios {
    /// Linux's `tty_std_termios`: what a fresh console reports.
    fn default() -> Self {
        let mut c_cc = [0u8; NCCS];
        // INIT_C_CC: ^C ^\ DEL ^U ^D time=0 min=1 swtc=0 ^Q ^S ^Z eol=0 ^R ^O ^W ^V eol2=0
        c_cc[..17].copy_from_slice(&[
            3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0,
        ]);
        Termios {
            c_iflag: ICRNL | IXON,
            c_oflag: OPOST | ONLCR,
            c_cflag: B38400 | CS8 | CREAD | HUPCL,
            c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            c_line: 0,
            c_cc,
            c_ispeed: 38400,
            c_ospeed: 38400,
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

impl Termios {
    /// The 36 bytes TCGETS copies out.
    pub fn to_bytes(&self) -> [u8; TERMIOS_SIZE] {
        let mut b = [0u8; TERMIOS_SIZE];
        b[0..4].copy_from_slice(&self.c_iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.c_oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.c_cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.c_lflag.to_le_bytes());
        b[16] = self.c_line;
        b[17..36].copy_from_slice(&self.c_cc);
        b
    }

    /// Parses what TCSETS* copies in; the speeds are kept from `self`
    /// (as Linux derives them from CBAUD).
    pub fn from_bytes(&self, b: &[u8]) -> KResult<Termios> {
        if b.len() < TERMIOS_SIZE {
            return Err(Errno::EFAULT);
        }
        let mut c_cc = [0u8; NCCS];
        c_cc.copy_from_slice(&b[17..36]);
        Ok(Termios {
            c_iflag: u32_at(b, 0),
            c_oflag: u32_at(b, 4),
            c_cflag: u32_at(b, 8),
            c_lflag: u32_at(b, 12),
            c_line: b[16],
            c_cc,
            c_ispeed: self.c_ispeed,
            c_ospeed: self.c_ospeed,
        })
    }

    /// The 44 bytes TCGETS2 copies out.
    pub fn to_bytes2(&self) -> [u8; TERMIOS2_SIZE] {
        let mut b = [0u8; TERMIOS2_SIZE];
        b[..TERMIOS_SIZE].copy_from_slice(&self.to_bytes());
        b[36..40].copy_from_slice(&self.c_ispeed.to_le_bytes());
        b[40..44].copy_from_slice(&self.c_ospeed.to_le_bytes());
        b
    }

    /// Parses what TCSETS2 copies in.
    pub fn from_bytes2(b: &[u8]) -> KResult<Termios> {
        if b.len() < TERMIOS2_SIZE {
            return Err(Errno::EFAULT);
        }
        let mut t = Termios::default().from_bytes(b)?;
        t.c_ispeed = u32_at(b, 36);
        t.c_ospeed = u32_at(b, 40);
        Ok(t)
    }

    pub fn lflag(&self, f: u32) -> bool {
        self.c_lflag & f != 0
    }
    pub fn iflag(&self, f: u32) -> bool {
        self.c_iflag & f != 0
    }
    pub fn oflag(&self, f: u32) -> bool {
        self.c_oflag & f != 0
    }

    /// True if `c` is the (enabled) special character at `idx`.
    pub fn is_cc(&self, idx: usize, c: u8) -> bool {
        self.c_cc[idx] != VDISABLE && self.c_cc[idx] == c
    }
}

/// `struct winsize` (TIOCGWINSZ/TIOCSWINSZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl Winsize {
    pub fn to_bytes(&self) -> [u8; WINSIZE_SIZE] {
        let mut b = [0u8; WINSIZE_SIZE];
        for (i, v) in [self.rows, self.cols, self.xpixel, self.ypixel]
            .iter()
            .enumerate()
        {
            b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8]) -> KResult<Winsize> {
        if b.len() < WINSIZE_SIZE {
            return Err(Errno::EFAULT);
        }
        let h = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Ok(Winsize {
            rows: h(0),
            cols: h(2),
            xpixel: h(4),
            ypixel: h(6),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_a_fresh_linux_console() {
        let t = Termios::default();
        let b = t.to_bytes();
        // Values as `stty -g` / a TCGETS dump on Linux shows them.
        assert_eq!(u32_at(&b, 0), 0o2400); // ICRNL|IXON = 0x500
        assert_eq!(u32_at(&b, 0), 0x500);
        assert_eq!(u32_at(&b, 4), 0x5);
        assert_eq!(u32_at(&b, 8), 0x4bf);
        assert_eq!(u32_at(&b, 12), 0x8a3b);
        assert_eq!(b[16], 0);
        assert_eq!(
            &b[17..34],
            &[3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0]
        );
    }

    #[test]
    fn termios_round_trips() {
        let mut t = Termios::default();
        t.c_lflag &= !(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 5;
        let back = Termios::default().from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back, t);
        let mut t2 = t;
        t2.c_ispeed = 115200;
        t2.c_ospeed = 9600;
        assert_eq!(Termios::from_bytes2(&t2.to_bytes2()).unwrap(), t2);
        assert_eq!(t.from_bytes(&[0u8; 35]), Err(Errno::EFAULT));
        assert_eq!(Termios::from_bytes2(&[0u8; 43]), Err(Errno::EFAULT));
    }

    #[test]
    fn winsize_round_trips() {
        let w = Winsize {
            rows: 24,
            cols: 80,
            xpixel: 1,
            ypixel: 2,
        };
        let b = w.to_bytes();
        assert_eq!(b, [24, 0, 80, 0, 1, 0, 2, 0]);
        assert_eq!(Winsize::from_bytes(&b).unwrap(), w);
        assert!(Winsize::from_bytes(&b[..7]).is_err());
    }
}
