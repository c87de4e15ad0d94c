//! The per-guest limits that `config <name>=` changes at run time and the
//! switches of the same names set at boot: their names and values.

use super::size::parse_size;
use crate::abi::PAGE;

/// Which limit a `config <name>` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    PagecacheMax,
    MaxMapCount,
    MappedFileMax,
}

impl LimitName {
    pub const ALL: [(&'static str, LimitName); 3] = [
        ("pagecache_max", LimitName::PagecacheMax),
        ("max_map_count", LimitName::MaxMapCount),
        ("mapped_file_max", LimitName::MappedFileMax),
    ];

    pub fn name(self) -> &'static str {
        match self {
            LimitName::PagecacheMax => "pagecache_max",
            LimitName::MaxMapCount => "max_map_count",
            LimitName::MappedFileMax => "mapped_file_max",
        }
    }
}

/// A new value for a limit: Some(n), or None for "no cap".
pub type LimitValue = Option<u64>;

/// Parses `config <name>=<spec>`: a size (pagecache_max at least 4K),
/// a count (max_map_count, 1 to 2^31 - 1, as Linux's sysctl takes), or
/// `none` for the sizes. Errors are the reply text.
pub fn parse_limit(name: LimitName, spec: &str) -> Result<LimitValue, String> {
    let n = name.name();
    match name {
        LimitName::MaxMapCount => match spec.parse::<u64>() {
            Ok(v) if (1..=i32::MAX as u64).contains(&v) => Ok(Some(v)),
            _ => Err(format!("{n}={spec}: expected a count from 1 to 2147483647")),
        },
        LimitName::PagecacheMax | LimitName::MappedFileMax => {
            if spec == "none" {
                return Ok(None);
            }
            let b = parse_size(spec)
                .map_err(|_| format!("{n}={spec}: bad size (use a number with K, M or G)"))?;
            if b < PAGE {
                return Err(format!("{n}={spec}: too small (at least 4K)"));
            }
            Ok(Some(b / PAGE * PAGE))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_the_switches_do() {
        use LimitName::*;
        assert_eq!(parse_limit(PagecacheMax, "16M"), Ok(Some(16 << 20)));
        assert_eq!(parse_limit(PagecacheMax, "none"), Ok(None));
        assert_eq!(parse_limit(MappedFileMax, "5000"), Ok(Some(4096)));
        assert_eq!(
            parse_limit(MappedFileMax, "100"),
            Err("mapped_file_max=100: too small (at least 4K)".into())
        );
        assert_eq!(
            parse_limit(PagecacheMax, "lots"),
            Err("pagecache_max=lots: bad size (use a number with K, M or G)".into())
        );
        assert_eq!(parse_limit(MaxMapCount, "1000"), Ok(Some(1000)));
        for bad in ["0", "-1", "none", "2147483648", "1k"] {
            assert!(parse_limit(MaxMapCount, bad).is_err(), "{bad}");
        }
    }
}
