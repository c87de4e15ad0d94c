//! UML's mconsole wire format, byte for byte (Linux `arch/um/include/shared/
//! mconsole.h`): all integers in host byte order.
//!
//! ```text
//! request: u32 magic 0xcafebabe, u32 version 2, u32 len, char data[512]
//! reply:   u32 err, u32 more, u32 len, char data[512]
//! notify:  u32 magic, u32 version, u32 type, u32 len, char data[512]
//! ```
//!
//! A request's `len` counts the command bytes (Debian's `uml_mconsole` sends
//! the whole 524-byte struct with the text NUL-padded). A reply carries at
//! most 511 bytes of text plus a NUL, `len` counting the NUL, and only the
//! used part of `data` is sent; a longer answer is several replies, all but
//! the last with `more = 1`, and only the first may carry `err`.
//!
//! Pure functions: nothing here touches a socket.

use thiserror::Error;

pub const MAGIC: u32 = 0xcafe_babe;
pub const VERSION: u32 = 2;
/// Size of the `data` arrays.
pub const MAX_DATA: usize = 512;
/// magic/err, version/more, len.
pub const HEADER: usize = 12;
/// The largest datagram a request can be.
pub const REQUEST_SIZE: usize = HEADER + MAX_DATA;

/// Why a datagram is not a request we serve; the text is UML's where UML
/// has one, and is what the client is sent back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("Request too short ({0} bytes; the header alone is 12)")]
    Short(usize),
    /// UML answers a magic-less ("version 0") request in plain text.
    #[error("ERROR: Version 0 mconsole clients are not supported by this driver")]
    BadMagic,
    #[error("This driver only supports version 2 clients")]
    Version(u32),
    #[error("Request too large")]
    TooLarge(u32),
    #[error("Request truncated ({got} of {len} data bytes)")]
    Truncated { len: u32, got: usize },
    #[error("Request is not text")]
    NotText,
}

impl RequestError {
    /// True when the answer must be plain text (no reply header): the
    /// client does not speak version 2.
    pub fn plain_reply(&self) -> bool {
        matches!(self, RequestError::BadMagic)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The command text of a request datagram (stopped at the first NUL, as
/// UML's string handling does, and trimmed of trailing whitespace).
pub fn parse_request(dgram: &[u8]) -> Result<String, RequestError> {
    if dgram.len() < 4 {
        return Err(RequestError::Short(dgram.len()));
    }
    if u32_at(dgram, 0) != MAGIC {
        return Err(RequestError::BadMagic);
    }
    if dgram.len() < HEADER {
        return Err(RequestError::Short(dgram.len()));
    }
    let len = u32_at(dgram, 8);
    // UML checks the length before the version.
    if len as usize >= MAX_DATA {
        return Err(RequestError::TooLarge(len));
    }
    let version = u32_at(dgram, 4);
    if version != VERSION {
        return Err(RequestError::Version(version));
    }
    let data = &dgram[HEADER..];
    if data.len() < len as usize {
        return Err(RequestError::Truncated {
            len,
            got: data.len(),
        });
    }
    let data = &data[..len as usize];
    let text = match data.iter().position(|&b| b == 0) {
        Some(n) => &data[..n],
        None => data,
    };
    let text = std::str::from_utf8(text).map_err(|_| RequestError::NotText)?;
    Ok(text.trim_end().to_string())
}

/// A request datagram for `command` (the full 524-byte struct, as
/// `uml_mconsole` sends it). Commands longer than 511 bytes are refused.
pub fn encode_request(command: &str) -> Option<Vec<u8>> {
    let bytes = command.as_bytes();
    if bytes.len() >= MAX_DATA {
        return None;
    }
    let mut d = Vec::with_capacity(REQUEST_SIZE);
    d.extend_from_slice(&MAGIC.to_ne_bytes());
    d.extend_from_slice(&VERSION.to_ne_bytes());
    d.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    d.extend_from_slice(bytes);
    d.resize(REQUEST_SIZE, 0);
    Some(d)
}

/// The reply datagrams for one answer: `text` in chunks of at most 511
/// bytes, `err` on the first, `more` on all but the last.
pub fn encode_reply(text: &[u8], err: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut first = true;
    loop {
        let n = rest.len().min(MAX_DATA - 1);
        let (chunk, tail) = rest.split_at(n);
        let mut d = Vec::with_capacity(HEADER + n + 1);
        d.extend_from_slice(&u32::from(first && err).to_ne_bytes());
        d.extend_from_slice(&u32::from(!tail.is_empty()).to_ne_bytes());
        d.extend_from_slice(&(n as u32 + 1).to_ne_bytes());
        d.extend_from_slice(chunk);
        d.push(0);
        out.push(d);
        first = false;
        rest = tail;
        if rest.is_empty() {
            return out;
        }
    }
}

/// One reply datagram as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub err: bool,
    pub more: bool,
    pub data: Vec<u8>,
}

/// Why a reply datagram is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    #[error("reply too short ({0} bytes)")]
    Short(usize),
    #[error("reply length {len} beyond its {got} data bytes")]
    BadLength { len: u32, got: usize },
}

/// Decodes a reply datagram; the text stops at its NUL.
pub fn parse_reply(dgram: &[u8]) -> Result<Reply, ReplyError> {
    if dgram.len() < HEADER {
        return Err(ReplyError::Short(dgram.len()));
    }
    let len = u32_at(dgram, 8);
    let data = &dgram[HEADER..];
    if len as usize > data.len() || len as usize > MAX_DATA {
        return Err(ReplyError::BadLength {
            len,
            got: data.len(),
        });
    }
    let data = &data[..len as usize];
    let data = match data.iter().position(|&b| b == 0) {
        Some(n) => &data[..n],
        None => data,
    };
    Ok(Reply {
        err: u32_at(dgram, 0) != 0,
        more: u32_at(dgram, 4) != 0,
        data: data.to_vec(),
    })
}

/// What a notify message says (UML's `enum mconsole_notify` type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyType {
    /// The instance's mconsole socket path (sent at start).
    Socket = 0,
    Panic = 1,
    Hang = 2,
    User = 3,
}

/// A notify datagram of a text and its NUL (how UML sends the socket name
/// and a panic message: strlen + 1 bytes, cut to 512 like any notify).
pub fn encode_notify(kind: NotifyType, text: &[u8]) -> Vec<u8> {
    let n = text.len().min(MAX_DATA);
    let mut t = Vec::with_capacity(n + 1);
    t.extend_from_slice(&text[..n]);
    t.push(0);
    encode_notify_raw(kind, &t)
}

/// A notify datagram carrying exactly `data`, cut to 512 bytes, as UML's
/// `mconsole_notify` sends it: the header, then `len` bytes (a hang: none;
/// a user notify: what was written to /proc/mconsole).
pub fn encode_notify_raw(kind: NotifyType, data: &[u8]) -> Vec<u8> {
    let n = data.len().min(MAX_DATA);
    let mut d = Vec::with_capacity(16 + n);
    d.extend_from_slice(&MAGIC.to_ne_bytes());
    d.extend_from_slice(&VERSION.to_ne_bytes());
    d.extend_from_slice(&(kind as u32).to_ne_bytes());
    d.extend_from_slice(&(n as u32).to_ne_bytes());
    d.extend_from_slice(&data[..n]);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(magic: u32, version: u32, len: u32, data: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&magic.to_ne_bytes());
        d.extend_from_slice(&version.to_ne_bytes());
        d.extend_from_slice(&len.to_ne_bytes());
        d.extend_from_slice(data);
        d
    }

    #[test]
    fn uml_mconsole_request_bytes() {
        // What Debian's uml_mconsole sent for `version` (captured).
        let mut d = req(MAGIC, 2, 7, b"version");
        d.resize(524, 0);
        assert_eq!(&d[..12], &[0xbe, 0xba, 0xfe, 0xca, 2, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(parse_request(&d).unwrap(), "version");
        assert_eq!(encode_request("version").unwrap(), d);
        assert_eq!(
            parse_request(&encode_request("proc meminfo").unwrap()).unwrap(),
            "proc meminfo"
        );
    }

    #[test]
    fn bad_requests() {
        assert_eq!(parse_request(b""), Err(RequestError::Short(0)));
        assert_eq!(parse_request(&[0xbe, 0xba]), Err(RequestError::Short(2)));
        assert_eq!(
            parse_request(&MAGIC.to_ne_bytes()),
            Err(RequestError::Short(4))
        );
        assert_eq!(parse_request(b"version\0"), Err(RequestError::BadMagic));
        assert!(RequestError::BadMagic.plain_reply());
        assert_eq!(
            parse_request(&req(MAGIC, 1, 4, b"help")),
            Err(RequestError::Version(1))
        );
        assert_eq!(
            parse_request(&req(MAGIC, 2, 512, &[b'a'; 512])),
            Err(RequestError::TooLarge(512))
        );
        assert_eq!(
            parse_request(&req(MAGIC, 2, u32::MAX, b"")),
            Err(RequestError::TooLarge(u32::MAX))
        );
        assert_eq!(
            parse_request(&req(MAGIC, 2, 10, b"help")),
            Err(RequestError::Truncated { len: 10, got: 4 })
        );
        assert_eq!(
            parse_request(&req(MAGIC, 2, 2, &[0xff, 0xfe])),
            Err(RequestError::NotText)
        );
        assert_eq!(RequestError::TooLarge(600).to_string(), "Request too large");
    }

    #[test]
    fn text_stops_at_nul_and_trailing_space_goes() {
        assert_eq!(
            parse_request(&req(MAGIC, 2, 8, b"go\0junk!")).unwrap(),
            "go"
        );
        assert_eq!(parse_request(&req(MAGIC, 2, 5, b"halt\n")).unwrap(), "halt");
        assert_eq!(parse_request(&req(MAGIC, 2, 0, b"")).unwrap(), "");
    }

    #[test]
    fn short_reply_is_one_datagram() {
        let r = encode_reply(b"OK then", false);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].len(), 12 + 8);
        assert_eq!(&r[0][..12], &[0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0]);
        let p = parse_reply(&r[0]).unwrap();
        assert_eq!(
            (p.err, p.more, p.data.as_slice()),
            (false, false, &b"OK then"[..])
        );
        let e = parse_reply(&encode_reply(b"", true)[0]).unwrap();
        assert!(e.err && !e.more && e.data.is_empty());
    }

    #[test]
    fn long_reply_is_chunked_with_more() {
        let text: Vec<u8> = (0..1200).map(|i| b'a' + (i % 26) as u8).collect();
        let r = encode_reply(&text, true);
        assert_eq!(r.len(), 3);
        let parsed: Vec<Reply> = r.iter().map(|d| parse_reply(d).unwrap()).collect();
        assert_eq!(
            parsed.iter().map(|p| (p.err, p.more)).collect::<Vec<_>>(),
            vec![(true, true), (false, true), (false, false)]
        );
        assert!(r.iter().all(|d| d.len() <= REQUEST_SIZE));
        let joined: Vec<u8> = parsed.into_iter().flat_map(|p| p.data).collect();
        assert_eq!(joined, text);
        // Exactly 511 bytes fits one datagram.
        assert_eq!(encode_reply(&[b'x'; 511], false).len(), 1);
        assert_eq!(encode_reply(&[b'x'; 512], false).len(), 2);
    }

    #[test]
    fn bad_replies() {
        assert_eq!(parse_reply(&[0; 5]), Err(ReplyError::Short(5)));
        let mut d = encode_reply(b"abc", false).remove(0);
        d[8] = 200;
        assert!(matches!(parse_reply(&d), Err(ReplyError::BadLength { .. })));
    }

    #[test]
    fn notify_layout() {
        let d = encode_notify(NotifyType::Socket, b"/tmp/x/mconsole");
        assert_eq!(u32_at(&d, 0), MAGIC);
        assert_eq!(u32_at(&d, 4), 2);
        assert_eq!(u32_at(&d, 8), 0);
        assert_eq!(u32_at(&d, 12) as usize, 16);
        assert_eq!(&d[16..], b"/tmp/x/mconsole\0");
        assert_eq!(
            encode_notify(NotifyType::Panic, &[b'p'; 900]).len(),
            16 + 512
        );
        let u = encode_notify_raw(NotifyType::User, b"hi\n");
        assert_eq!(u32_at(&u, 8), 3);
        assert_eq!(u32_at(&u, 12), 3);
        assert_eq!(&u[16..], b"hi\n");
        let h = encode_notify_raw(NotifyType::Hang, b"");
        assert_eq!((h.len(), u32_at(&h, 8), u32_at(&h, 12)), (16, 2, 0));
        // What Debian's uml_watchdog -mconsole (the helper UML's harddog
        // runs) sent after 60 s without a ping, captured: its own header
        // has an 8-byte magic, so 24 bytes (version read at 4 is 0, len
        // at 12 is 2, 4 bytes of its stack follow). A receiver keys on the
        // magic's first 4 bytes and the type at 8: the same in ours.
        let watchdog: [u8; 24] = [
            0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x1c, 0x7f, 0,
            0,
        ];
        assert_eq!(h[..4], watchdog[..4]);
        assert_eq!(h[8..12], watchdog[8..12]);
        // A long panic message: its first 512 bytes, no NUL (UML cuts
        // strlen + 1 to the data area).
        let p = encode_notify(NotifyType::Panic, &[b'p'; 900]);
        assert_eq!((u32_at(&p, 12), p[16 + 511]), (512, b'p'));
        let p = encode_notify(NotifyType::Panic, &[b'p'; 511]);
        assert_eq!((u32_at(&p, 12), p[16 + 511]), (512, 0));
        assert_eq!(
            encode_notify_raw(NotifyType::User, &[1; 900]).len(),
            16 + 512
        );
    }

    proptest! {
        /// No datagram, however malformed, panics the parser; whatever it
        /// accepts is text without NUL no longer than the data area.
        #[test]
        fn any_datagram_is_safe(d in proptest::collection::vec(any::<u8>(), 0..700)) {
            if let Ok(t) = parse_request(&d) {
                prop_assert!(t.len() < MAX_DATA);
                prop_assert!(!t.contains('\0'));
            }
            let _ = parse_reply(&d);
        }

        /// A well-formed header with random fields and data never panics.
        #[test]
        fn random_headers(magic in prop_oneof![Just(MAGIC), any::<u32>()],
                          version in 0u32..4, len in any::<u32>(),
                          data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_request(&req(magic, version, len, &data));
        }

        /// Replies round-trip through chunking for any text without NUL.
        #[test]
        fn replies_round_trip(text in proptest::collection::vec(1u8..=255, 0..3000), err: bool) {
            let parts = encode_reply(&text, err);
            let mut joined = Vec::new();
            for (i, d) in parts.iter().enumerate() {
                let p = parse_reply(d).unwrap();
                prop_assert_eq!(p.err, err && i == 0);
                prop_assert_eq!(p.more, i + 1 < parts.len());
                joined.extend(p.data);
            }
            prop_assert_eq!(joined, text);
        }

        /// Requests round-trip for any command that fits.
        #[test]
        fn requests_round_trip(cmd in "[ -~]{0,511}") {
            let d = encode_request(&cmd).unwrap();
            prop_assert_eq!(parse_request(&d).unwrap(), cmd.trim_end());
        }
    }
}
