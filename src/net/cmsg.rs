//! Control messages (`msg_control`) of sendmsg/recvmsg on x86-64:
//! `struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }`
//! (16 bytes) followed by data, each header at an 8-byte aligned offset.
//!
//! `parse` walks a sender's buffer with Linux's rules (`__scm_send`):
//! a header whose length is under 16 or runs past the buffer is EINVAL;
//! levels other than SOL_SOCKET are skipped; SCM_RIGHTS adds up to 253
//! fds in all (more is EINVAL); SCM_CREDENTIALS must be exactly one
//! `struct ucred`; any other SOL_SOCKET type is EINVAL.
//!
//! `CmsgWriter` fills a receiver's buffer as `put_cmsg` and
//! `scm_detach_fds` do: what does not fit is cut and MSG_CTRUNC set.
//! All arithmetic on guest lengths is checked.

use super::{Ucred, MSG_CTRUNC, SCM_CREDENTIALS, SCM_RIGHTS, SOL_SOCKET};
use crate::errno::{Errno, KResult};

/// sizeof(struct cmsghdr).
pub const CMSG_HDR: usize = 16;
/// Most fds one message may carry (SCM_MAX_FD).
pub const SCM_MAX_FD: usize = 253;
/// Largest msg_controllen sendmsg accepts (net.core.optmem_max); more is
/// ENOBUFS, as sock_kmalloc fails.
pub const OPTMEM_MAX: usize = 131072;

/// CMSG_ALIGN: round up to 8 (None on overflow).
pub fn align(len: usize) -> Option<usize> {
    len.checked_add(7).map(|l| l & !7)
}

/// CMSG_LEN(n).
pub const fn cmsg_len(n: usize) -> usize {
    CMSG_HDR + n
}

/// CMSG_SPACE(n).
pub const fn cmsg_space(n: usize) -> usize {
    CMSG_HDR + ((n + 7) & !7)
}

/// What a sender attached.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// Descriptor numbers from SCM_RIGHTS, in order.
    pub fds: Vec<i32>,
    /// SCM_CREDENTIALS, as given (the caller checks them).
    pub creds: Option<Ucred>,
}

/// Parses a sender's control buffer.
pub fn parse(buf: &[u8]) -> KResult<Control> {
    let mut out = Control::default();
    let mut off = 0usize;
    // CMSG_FIRSTHDR / CMSG_NXTHDR: a header must fit whole.
    while off.checked_add(CMSG_HDR).is_some_and(|e| e <= buf.len()) {
        let word = |at: usize, n: usize| &buf[off + at..off + at + n];
        let len = u64::from_le_bytes(word(0, 8).try_into().expect("8"));
        let level = i32::from_le_bytes(word(8, 4).try_into().expect("4"));
        let typ = i32::from_le_bytes(word(12, 4).try_into().expect("4"));
        let room = (buf.len() - off) as u64;
        if len < CMSG_HDR as u64 || len > room {
            return Err(Errno::EINVAL);
        }
        let len = len as usize;
        if level == SOL_SOCKET {
            let data = &buf[off + CMSG_HDR..off + len];
            match typ {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if n > SCM_MAX_FD || out.fds.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    out.fds.extend(
                        data.chunks_exact(4)
                            .map(|c| i32::from_le_bytes(c.try_into().expect("4"))),
                    );
                }
                SCM_CREDENTIALS => {
                    if len != cmsg_len(12) {
                        return Err(Errno::EINVAL);
                    }
                    out.creds = Some(Ucred::from_bytes(data.try_into().expect("12")));
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        match align(len).and_then(|a| off.checked_add(a)) {
            Some(next) => off = next,
            None => break,
        }
    }
    Ok(out)
}

/// Builds the control data recvmsg hands back, within the receiver's
/// `msg_controllen`.
#[derive(Debug)]
pub struct CmsgWriter {
    cap: usize,
    buf: Vec<u8>,
    /// MSG_CTRUNC when something was cut.
    pub flags: u32,
}

impl CmsgWriter {
    /// `cap`: the receiver's msg_controllen (0 when msg_control is NULL).
    pub fn new(cap: usize) -> Self {
        CmsgWriter {
            cap,
            buf: Vec::new(),
            flags: 0,
        }
    }

    fn room(&self) -> usize {
        self.cap - self.buf.len()
    }

    fn header(&mut self, len: usize, typ: i32) {
        self.buf.extend_from_slice(&(len as u64).to_le_bytes());
        self.buf.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        self.buf.extend_from_slice(&typ.to_le_bytes());
    }

    /// put_cmsg: a whole message, or as much as fits (then MSG_CTRUNC and
    /// a cmsg_len saying how much came).
    pub fn put(&mut self, typ: i32, data: &[u8]) {
        if self.room() < CMSG_HDR {
            self.flags |= MSG_CTRUNC;
            return;
        }
        let mut len = cmsg_len(data.len());
        if self.room() < len {
            self.flags |= MSG_CTRUNC;
            len = self.room();
        }
        self.header(len, typ);
        self.buf.extend_from_slice(&data[..len - CMSG_HDR]);
        let space = cmsg_space(data.len()).min(self.room() + len);
        // Pad to the aligned space (the kernel skips it; we zero it).
        let pad = space - len;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    pub fn put_creds(&mut self, c: Ucred) {
        self.put(SCM_CREDENTIALS, &c.to_bytes());
    }

    /// How many of `offered` descriptors fit (scm_max_fds). When fewer
    /// than offered fit, MSG_CTRUNC is set here; the caller installs that
    /// many and drops the rest.
    pub fn fds_that_fit(&mut self, offered: usize) -> usize {
        let max = if self.room() <= CMSG_HDR {
            0
        } else {
            (self.room() - CMSG_HDR) / 4
        };
        let n = max.min(offered);
        if n < offered {
            self.flags |= MSG_CTRUNC;
        }
        n
    }

    /// The SCM_RIGHTS message for the descriptors actually installed
    /// (at most `fds_that_fit`). Installing fewer than fit (EMFILE)
    /// truncates too.
    pub fn put_rights(&mut self, fds: &[i32], offered: usize) {
        if fds.len() < offered {
            self.flags |= MSG_CTRUNC;
        }
        if fds.is_empty() {
            return;
        }
        let len = cmsg_len(fds.len() * 4);
        debug_assert!(len <= self.room());
        self.header(len, SCM_RIGHTS);
        for fd in fds {
            self.buf.extend_from_slice(&fd.to_le_bytes());
        }
        let space = cmsg_space(fds.len() * 4).min(self.room() + len);
        self.buf.resize(self.buf.len() + (space - len), 0);
    }

    /// The bytes to copy to msg_control; their length is the new
    /// msg_controllen.
    pub fn finish(self) -> (Vec<u8>, u32) {
        (self.buf, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u64, level: i32, typ: i32) -> Vec<u8> {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(&level.to_le_bytes());
        v.extend_from_slice(&typ.to_le_bytes());
        v
    }

    fn rights(fds: &[i32]) -> Vec<u8> {
        let mut v = hdr(cmsg_len(fds.len() * 4) as u64, SOL_SOCKET, SCM_RIGHTS);
        for f in fds {
            v.extend_from_slice(&f.to_le_bytes());
        }
        v.resize(cmsg_space(fds.len() * 4), 0);
        v
    }

    #[test]
    fn sizes_match_glibc() {
        assert_eq!(cmsg_len(4), 20);
        assert_eq!(cmsg_space(4), 24);
        assert_eq!(cmsg_space(12), 32);
        assert_eq!(align(usize::MAX), None);
    }

    #[test]
    fn parses_rights_and_creds() {
        let mut b = rights(&[3, 4]);
        let c = Ucred {
            pid: 7,
            uid: 0,
            gid: 0,
        };
        b.extend(hdr(28, SOL_SOCKET, SCM_CREDENTIALS));
        b.extend(c.to_bytes());
        b.resize(b.len() + 4, 0);
        let ctl = parse(&b).unwrap();
        assert_eq!(ctl.fds, vec![3, 4]);
        assert_eq!(ctl.creds, Some(c));
        // A trailing fragment shorter than a header is ignored.
        let mut b2 = rights(&[5]);
        b2.extend([0u8; 15]);
        assert_eq!(parse(&b2).unwrap().fds, vec![5]);
        assert_eq!(parse(&[]).unwrap(), Control::default());
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(parse(&hdr(8, SOL_SOCKET, SCM_RIGHTS)), Err(Errno::EINVAL));
        assert_eq!(parse(&hdr(17, SOL_SOCKET, SCM_RIGHTS)), Err(Errno::EINVAL));
        assert_eq!(
            parse(&hdr(u64::MAX, SOL_SOCKET, SCM_RIGHTS)),
            Err(Errno::EINVAL)
        );
        assert_eq!(parse(&hdr(16, SOL_SOCKET, 99)), Err(Errno::EINVAL));
        assert_eq!(
            parse(&hdr(20, SOL_SOCKET, SCM_CREDENTIALS)[..16]),
            Err(Errno::EINVAL)
        );
        // Other levels are skipped.
        assert_eq!(parse(&hdr(16, 6, 99)).unwrap(), Control::default());
        let too_many: Vec<i32> = (0..254).collect();
        assert_eq!(parse(&rights(&too_many)), Err(Errno::EINVAL));
        let mut two = rights(&(0..200).collect::<Vec<_>>());
        two.extend(rights(&(0..60).collect::<Vec<_>>()));
        assert_eq!(parse(&two), Err(Errno::EINVAL));
    }

    #[test]
    fn writer_truncates_like_linux() {
        let mut w = CmsgWriter::new(cmsg_space(8));
        assert_eq!(w.fds_that_fit(3), 2);
        w.put_rights(&[10, 11], 3);
        let (b, f) = w.finish();
        assert_eq!(f, MSG_CTRUNC);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..8], &24u64.to_le_bytes());

        let mut w = CmsgWriter::new(0);
        assert_eq!(w.fds_that_fit(1), 0);
        w.put_creds(Ucred::NONE);
        assert_eq!(w.finish(), (vec![], MSG_CTRUNC));

        // Credentials cut short: cmsg_len says what came.
        let mut w = CmsgWriter::new(20);
        w.put_creds(Ucred::NONE);
        let (b, f) = w.finish();
        assert_eq!((b.len(), f), (20, MSG_CTRUNC));
        assert_eq!(&b[0..8], &20u64.to_le_bytes());

        // Both fit: credentials first, then rights.
        let mut w = CmsgWriter::new(64);
        w.put_creds(Ucred::NONE);
        let n = w.fds_that_fit(1);
        w.put_rights(&[9][..n], 1);
        let (b, f) = w.finish();
        assert_eq!((b.len(), f), (32 + 24, 0));
    }
}
