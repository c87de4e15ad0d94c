//! Sizes as UML's `memparse` writes them: a decimal number of bytes with an
//! optional binary suffix `K`, `M` or `G` (either case).

/// Why a size did not parse; the caller names the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// Not digits plus one of K, M, G.
    Syntax,
    /// Does not fit in 64 bits.
    TooBig,
}

/// Parse `256M`, `64k`, `1G`, `4096`.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::Syntax);
    }
    let n: u64 = digits.parse().map_err(|_| SizeError::TooBig)?;
    n.checked_mul(1u64 << shift).ok_or(SizeError::TooBig)
}

/// The shortest exact spelling: `268435456` → `256M`, `1000` → `1000`.
pub fn format_size(bytes: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{}", bytes >> shift, suffix);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_both_cases() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "", "M", "12Q", "1.5G", "-1M", "+1M", " 1M", "1M ", "1MB", "0x10", "1KM",
        ] {
            assert_eq!(parse_size(bad), Err(SizeError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), Err(SizeError::TooBig));
        assert_eq!(parse_size("17179869184G"), Err(SizeError::TooBig));
    }

    #[test]
    fn format_round_trips() {
        for n in [0, 1000, 4096, 256 << 20, 3 << 30, (1 << 20) + 4096] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(format_size(256 << 20), "256M");
        assert_eq!(format_size(1 << 30), "1G");
        assert_eq!(format_size(1000), "1000");
    }
}
