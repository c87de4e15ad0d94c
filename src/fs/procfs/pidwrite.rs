//! Writes to /proc/<pid> files: oom_score_adj, the legacy oom_adj, and
//! comm, with Linux's parsing and permission rules (fs/proc/base.c).

use crate::errno::{Errno, KResult};

/// OOM_SCORE_ADJ_MIN / MAX and the legacy OOM_DISABLE / OOM_ADJUST_MAX.
pub const OOM_SCORE_ADJ_MIN: i32 = -1000;
pub const OOM_SCORE_ADJ_MAX: i32 = 1000;
pub const OOM_DISABLE: i32 = -17;
pub const OOM_ADJUST_MAX: i32 = 15;

/// Linux's `kstrtoint(strstrip(buf), 0)` over what a proc number write
/// copies: at most 12 bytes (PROC_NUMBUF - 1), up to a NUL.
/// Base 0: "0x" is hex, a leading 0 octal. EINVAL if not a number,
/// ERANGE if it does not fit an int.
pub fn parse_int(data: &[u8]) -> KResult<i32> {
    let data = &data[..data.len().min(12)];
    let data = &data[..data.iter().position(|&b| b == 0).unwrap_or(data.len())];
    let s = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?.trim();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(Errno::EINVAL);
    }
    let v = u64::from_str_radix(digits, radix).map_err(|_| Errno::ERANGE)?;
    let v = if neg {
        0i64.checked_sub_unsigned(v).ok_or(Errno::ERANGE)?
    } else {
        i64::try_from(v).map_err(|_| Errno::ERANGE)?
    };
    i32::try_from(v).map_err(|_| Errno::ERANGE)
}

/// The value a write to oom_score_adj asks for (EINVAL outside -1000..=1000).
pub fn oom_score_adj_of(data: &[u8]) -> KResult<i16> {
    let v = parse_int(data)?;
    if !(OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX).contains(&v) {
        return Err(Errno::EINVAL);
    }
    Ok(v as i16)
}

/// The oom_score_adj a write to the legacy oom_adj asks for: -17..=15,
/// 15 meaning 1000, the rest scaled by 1000/17 (truncating, as C).
pub fn oom_adj_of(data: &[u8]) -> KResult<i16> {
    let v = parse_int(data)?;
    if !(OOM_DISABLE..=OOM_ADJUST_MAX).contains(&v) {
        return Err(Errno::EINVAL);
    }
    Ok(if v == OOM_ADJUST_MAX {
        OOM_SCORE_ADJ_MAX as i16
    } else {
        (v * OOM_SCORE_ADJ_MAX / -OOM_DISABLE) as i16
    })
}

/// What the legacy oom_adj reads as, from oom_score_adj.
pub fn oom_adj_shown(score_adj: i16) -> i32 {
    let a = i32::from(score_adj);
    if a == OOM_SCORE_ADJ_MAX {
        OOM_ADJUST_MAX
    } else {
        a * -OOM_DISABLE / OOM_SCORE_ADJ_MAX
    }
}

/// Linux's __set_oom_adj permission rule. Without privilege an
/// oom_score_adj write may not go below the floor (`min`), a legacy
/// oom_adj write not below the current value: EACCES. Returns the new
/// floor: a privileged oom_score_adj write sets it to the value.
pub fn check_oom(
    cur: i16,
    min: i16,
    new: i16,
    privileged: bool,
    legacy: bool,
) -> KResult<Option<i16>> {
    let floor = if legacy { cur } else { min };
    if new < floor && !privileged {
        return Err(Errno::EACCES);
    }
    Ok((!legacy && privileged).then_some(new))
}

/// The name a comm write sets: the bytes up to a NUL, at most 15
/// (TASK_COMM_LEN - 1; a newline is kept, as Linux does).
pub fn comm_of(data: &[u8]) -> Vec<u8> {
    let d = &data[..data.len().min(15)];
    d[..d.iter().position(|&b| b == 0).unwrap_or(d.len())].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_kstrtoint() {
        assert_eq!(parse_int(b"500\n"), Ok(500));
        assert_eq!(parse_int(b"  -1000 \n"), Ok(-1000));
        assert_eq!(parse_int(b"+7"), Ok(7));
        assert_eq!(parse_int(b"0x10"), Ok(16));
        assert_eq!(parse_int(b"010"), Ok(8));
        assert_eq!(parse_int(b"0"), Ok(0));
        assert_eq!(parse_int(b""), Err(Errno::EINVAL));
        assert_eq!(parse_int(b"abc"), Err(Errno::EINVAL));
        assert_eq!(parse_int(b"12x"), Err(Errno::EINVAL));
        assert_eq!(parse_int(b"-"), Err(Errno::EINVAL));
        assert_eq!(parse_int(b"99999999999"), Err(Errno::ERANGE));
        // Only 12 bytes are copied: the rest is not seen.
        assert_eq!(parse_int(b"100000000000000"), Err(Errno::ERANGE));
        assert_eq!(parse_int(b"5\0garbage"), Ok(5));
    }

    #[test]
    fn oom_ranges_and_legacy_scaling() {
        assert_eq!(oom_score_adj_of(b"1000"), Ok(1000));
        assert_eq!(oom_score_adj_of(b"1001"), Err(Errno::EINVAL));
        assert_eq!(oom_score_adj_of(b"-1001"), Err(Errno::EINVAL));
        assert_eq!(oom_adj_of(b"15"), Ok(1000));
        assert_eq!(oom_adj_of(b"-17"), Ok(-1000));
        assert_eq!(oom_adj_of(b"1"), Ok(58));
        assert_eq!(oom_adj_of(b"-5"), Ok(-294));
        assert_eq!(oom_adj_of(b"16"), Err(Errno::EINVAL));
        assert_eq!(oom_adj_of(b"-18"), Err(Errno::EINVAL));
        assert_eq!(oom_adj_shown(1000), 15);
        assert_eq!(oom_adj_shown(-1000), -17);
        assert_eq!(oom_adj_shown(58), 0);
        assert_eq!(oom_adj_shown(500), 8);
        assert_eq!(oom_adj_shown(-294), -4);
    }

    #[test]
    fn unprivileged_may_not_go_below_the_floor() {
        assert_eq!(check_oom(500, 0, 0, false, false), Ok(None));
        assert_eq!(check_oom(0, 0, -1, false, false), Err(Errno::EACCES));
        assert_eq!(check_oom(0, 0, -1, true, false), Ok(Some(-1)));
        // Legacy: the current value is the floor.
        assert_eq!(check_oom(500, 0, 58, false, true), Err(Errno::EACCES));
        assert_eq!(check_oom(500, 0, 58, true, true), Ok(None));
    }

    #[test]
    fn comm_is_cut_at_15_bytes_and_nul() {
        assert_eq!(comm_of(b"0123456789abcdefgh"), b"0123456789abcde");
        assert_eq!(comm_of(b"ab\0cd"), b"ab");
        assert_eq!(comm_of(b"x\n"), b"x\n");
    }
}
