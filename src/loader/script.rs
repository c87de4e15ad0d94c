//! `#!` scripts: the interpreter path and its one optional argument, read
//! from the first line like Linux's binfmt_script.

use crate::errno::Errno;

/// Linux reads this much of a file to find the `#!` line.
pub const SHEBANG_MAX: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang {
    pub interp: Vec<u8>,
    /// Everything after the interpreter, trimmed, as one argument.
    pub arg: Option<Vec<u8>>,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `None` when `head` is not a script; otherwise the parsed line, or ENOEXEC
/// when it names no interpreter or the name does not fit the buffer.
pub fn parse_shebang(head: &[u8]) -> Option<Result<Shebang, Errno>> {
    let rest = head.strip_prefix(b"#!")?;
    Some(parse_line(rest, head.len() >= SHEBANG_MAX))
}

fn parse_line(rest: &[u8], may_be_truncated: bool) -> Result<Shebang, Errno> {
    let window = &rest[..rest.len().min(SHEBANG_MAX - 2)];
    let (line, complete) = match window.iter().position(|&b| b == b'\n' || b == 0) {
        Some(n) => (&window[..n], true),
        None => (window, !may_be_truncated),
    };
    let start = line
        .iter()
        .position(|&b| !is_blank(b))
        .ok_or(Errno::ENOEXEC)?;
    let line = &line[start..];
    let name_len = line.iter().position(|&b| is_blank(b)).unwrap_or(line.len());
    if name_len == line.len() && !complete {
        return Err(Errno::ENOEXEC); // interpreter name cut by the buffer
    }
    let interp = line[..name_len].to_vec();
    let arg = line[name_len..].trim_ascii();
    Ok(Shebang {
        interp,
        arg: (!arg.is_empty()).then(|| arg.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(s: &[u8]) -> Option<Result<Shebang, Errno>> {
        parse_shebang(s)
    }

    #[test]
    fn plain_and_with_arg() {
        assert_eq!(
            sb(b"#!/bin/sh\necho"),
            Some(Ok(Shebang {
                interp: b"/bin/sh".to_vec(),
                arg: None
            }))
        );
        assert_eq!(
            sb(b"#! /usr/bin/env  python3 -u \nx"),
            Some(Ok(Shebang {
                interp: b"/usr/bin/env".to_vec(),
                arg: Some(b"python3 -u".to_vec())
            }))
        );
        assert_eq!(
            sb(b"#!/bin/sh"),
            Some(Ok(Shebang {
                interp: b"/bin/sh".to_vec(),
                arg: None
            }))
        );
    }

    #[test]
    fn not_a_script_or_empty() {
        assert_eq!(sb(b"\x7fELF"), None);
        assert_eq!(sb(b"#!\n"), Some(Err(Errno::ENOEXEC)));
        assert_eq!(sb(b"#!   \t\n"), Some(Err(Errno::ENOEXEC)));
    }

    #[test]
    fn long_lines() {
        let mut long = b"#!/bin/".to_vec();
        long.extend(std::iter::repeat_n(b'x', 400));
        assert_eq!(sb(&long), Some(Err(Errno::ENOEXEC)));
        let mut arg_cut = b"#!/bin/sh ".to_vec();
        arg_cut.extend(std::iter::repeat_n(b'a', 400));
        let s = sb(&arg_cut).unwrap().unwrap();
        assert_eq!(s.interp, b"/bin/sh");
        assert_eq!(s.arg.unwrap().len(), SHEBANG_MAX - 2 - 8);
    }
}
