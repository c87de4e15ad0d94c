//! `struct sockaddr_un` as Linux reads and writes it.
//!
//! In: the syscall layer copies at most `SOCKADDR_MAX` bytes (a longer or
//! negative length is EINVAL before anything is read, as
//! `move_addr_to_kernel`), then `UnixAddr::parse` applies af_unix's rules:
//! exactly the family (2 bytes) asks bind to autobind; otherwise the
//! length must exceed the family and not exceed `sizeof(sockaddr_un)`
//! (110), and the family must be AF_UNIX. A path ends at its first NUL
//! (or at the length); a name starting with NUL is abstract and is all
//! the remaining bytes, NULs included.
//!
//! Out: `encode` gives the bytes and the full length the kernel reports;
//! `copy_out_len` is how many of them fit the caller's buffer (the full
//! length is still reported, as `move_addr_to_user`).

use super::{AF_UNIX, AF_UNSPEC};
use crate::errno::{Errno, KResult};

/// offsetof(struct sockaddr_un, sun_path).
pub const SUN_PATH_OFFSET: usize = 2;
/// sizeof(struct sockaddr_un).
pub const SOCKADDR_UN_SIZE: usize = 110;
/// sizeof(struct sockaddr_storage): the most any socket call copies in.
pub const SOCKADDR_MAX: usize = 128;
/// Length of an autobind name: a NUL and five hex digits.
pub const AUTOBIND_LEN: usize = 5;

/// A bound or peer name of an AF_UNIX socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum UnixAddr {
    /// Not bound (getsockname gives just the family).
    #[default]
    Unnamed,
    /// A file system path, without its terminating NUL.
    Path(Vec<u8>),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

/// What a bind/connect/sendto address asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrRequest {
    /// bind with only the family: pick an abstract name.
    Autobind,
    /// connect (datagram) with AF_UNSPEC: dissolve the association.
    Unspec,
    Addr(UnixAddr),
}

/// The length argument as the guest gave it (an int): EINVAL when
/// negative or longer than a sockaddr_storage.
pub fn check_in_len(len: u64) -> KResult<usize> {
    let len = len as u32 as i32;
    if len < 0 || len as usize > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    Ok(len as usize)
}

impl UnixAddr {
    /// Parses `raw` (exactly the guest's `addrlen` bytes, at most
    /// SOCKADDR_MAX) the way af_unix does for bind, connect and sendto.
    pub fn parse(raw: &[u8]) -> KResult<AddrRequest> {
        let family = if raw.len() >= 2 {
            u16::from_le_bytes([raw[0], raw[1]])
        } else {
            return Err(Errno::EINVAL);
        };
        if raw.len() == SUN_PATH_OFFSET && family == AF_UNIX {
            return Ok(AddrRequest::Autobind);
        }
        if family == AF_UNSPEC {
            return Ok(AddrRequest::Unspec);
        }
        if raw.len() <= SUN_PATH_OFFSET || raw.len() > SOCKADDR_UN_SIZE || family != AF_UNIX {
            return Err(Errno::EINVAL);
        }
        let path = &raw[SUN_PATH_OFFSET..];
        if path[0] == 0 {
            return Ok(AddrRequest::Addr(UnixAddr::Abstract(path[1..].to_vec())));
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        Ok(AddrRequest::Addr(UnixAddr::Path(path[..end].to_vec())))
    }

    /// Like `parse`, for calls where only a real name will do (stream
    /// connect, sendto): autobind and AF_UNSPEC forms are EINVAL.
    pub fn parse_name(raw: &[u8]) -> KResult<UnixAddr> {
        match Self::parse(raw)? {
            AddrRequest::Addr(a) => Ok(a),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The bytes getsockname/getpeername/recvfrom report; their length is
    /// the address length (a path counts its NUL).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = AF_UNIX.to_le_bytes().to_vec();
        match self {
            UnixAddr::Unnamed => {}
            UnixAddr::Path(p) => {
                v.extend_from_slice(p);
                v.push(0);
            }
            UnixAddr::Abstract(n) => {
                v.push(0);
                v.extend_from_slice(n);
            }
        }
        v
    }

    /// The autobind name for sequence number `n` (five hex digits, as
    /// Linux: "\0" + "%05x").
    pub fn autobind(n: u32) -> UnixAddr {
        UnixAddr::Abstract(format!("{:05x}", n & 0xfffff).into_bytes())
    }

    pub fn is_unnamed(&self) -> bool {
        matches!(self, UnixAddr::Unnamed)
    }
}

/// How many bytes of an encoded address go to a buffer of `user_len`
/// bytes (the guest's in/out length, an int). EINVAL when negative.
pub fn copy_out_len(encoded: usize, user_len: u64) -> KResult<usize> {
    let l = user_len as u32 as i32;
    if l < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(encoded.min(l as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sun(path: &[u8]) -> Vec<u8> {
        let mut v = vec![1u8, 0];
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn paths_end_at_the_first_nul() {
        assert_eq!(
            UnixAddr::parse(&sun(b"/tmp/s\0junk")).unwrap(),
            AddrRequest::Addr(UnixAddr::Path(b"/tmp/s".to_vec()))
        );
        // No NUL: the length ends it; 108 bytes are allowed.
        let long = vec![b'a'; 108];
        assert_eq!(
            UnixAddr::parse_name(&sun(&long)).unwrap(),
            UnixAddr::Path(long.clone())
        );
        assert_eq!(UnixAddr::Path(long).encode().len(), 111);
    }

    #[test]
    fn abstract_names_keep_every_byte() {
        assert_eq!(
            UnixAddr::parse_name(&sun(b"\0ab\0c")).unwrap(),
            UnixAddr::Abstract(b"ab\0c".to_vec())
        );
        let a = UnixAddr::Abstract(b"x".to_vec());
        assert_eq!(a.encode(), vec![1, 0, 0, b'x']);
        // The empty abstract name (length 3) is a name too.
        assert_eq!(
            UnixAddr::parse_name(&sun(b"\0")).unwrap(),
            UnixAddr::Abstract(vec![])
        );
    }

    #[test]
    fn linux_length_rules() {
        assert_eq!(UnixAddr::parse(&[1, 0]).unwrap(), AddrRequest::Autobind);
        assert_eq!(UnixAddr::parse(&[0, 0]).unwrap(), AddrRequest::Unspec);
        assert_eq!(UnixAddr::parse(&[1]), Err(Errno::EINVAL));
        assert_eq!(UnixAddr::parse(&[]), Err(Errno::EINVAL));
        assert_eq!(UnixAddr::parse_name(&[1, 0]), Err(Errno::EINVAL));
        assert_eq!(UnixAddr::parse(&sun(&[b'a'; 109])), Err(Errno::EINVAL));
        assert_eq!(UnixAddr::parse(&[2, 0, b'a']), Err(Errno::EINVAL));
        assert_eq!(check_in_len(129), Err(Errno::EINVAL));
        assert_eq!(check_in_len(u32::MAX as u64), Err(Errno::EINVAL));
        assert_eq!(check_in_len(0xffff_ffff_0000_0010), Ok(16));
        assert_eq!(check_in_len(128), Ok(128));
    }

    #[test]
    fn encode_and_truncate() {
        assert_eq!(UnixAddr::Unnamed.encode(), vec![1, 0]);
        assert_eq!(UnixAddr::Path(b"/s".to_vec()).encode(), b"\x01\x00/s\0");
        assert_eq!(UnixAddr::autobind(0x1a).encode(), b"\x01\x00\x000001a");
        assert_eq!(copy_out_len(5, 3), Ok(3));
        assert_eq!(copy_out_len(5, 100), Ok(5));
        assert_eq!(copy_out_len(5, u32::MAX as u64), Err(Errno::EINVAL));
    }
}
