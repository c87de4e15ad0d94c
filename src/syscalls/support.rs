//! How fully each syscall is supported, as data beside the table: every
//! call in `table.rs` is full (Linux's behaviour, errors included) unless
//! listed here as partial with a note; the named unimplemented ones answer
//! ENOSYS. `umlrun --syscalls` prints the list (`report`).

use super::table;

/// A call's support level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Full,
    /// Implemented, but some of Linux's behaviour is missing: the note says what.
    Partial(&'static str),
    Unsupported,
}

/// The implemented calls that do less than Linux.
const PARTIAL: &[(u64, &str)] = &[
    (
        126,
        "accepted and ignored: capabilities are not modelled (root has all, others none)",
    ),
    (
        157,
        "secure bits and the capability bounding set are kept, inherited and changed by Linux's rules, not enforced (capabilities are not modelled)",
    ),
    (
        164,
        "argument checks, then EPERM: the guest shares the host's clock",
    ),
    (
        203,
        "one CPU: any non-empty mask is taken (sched_getcpu shows host CPU numbers)",
    ),
    (
        227,
        "argument checks, then EPERM: the guest shares the host's clock",
    ),
];

/// The level of syscall `nr`.
pub fn level(nr: u64) -> Level {
    if let Some(&(_, note)) = PARTIAL.iter().find(|e| e.0 == nr) {
        return Level::Partial(note);
    }
    if table::lookup(nr).is_some() {
        Level::Full
    } else {
        Level::Unsupported
    }
}

/// One line per named syscall, by number: `nr name level[: note]`.
pub fn report() -> String {
    let mut rows: Vec<(u64, &str)> = table::named().collect();
    rows.sort_unstable();
    rows.dedup_by_key(|r| r.0);
    let mut out = String::new();
    for (nr, name) in rows {
        let what = match level(nr) {
            Level::Full => "full".to_string(),
            Level::Partial(note) => format!("partial: {note}"),
            Level::Unsupported => "unsupported (ENOSYS)".to_string(),
        };
        out.push_str(&format!("{nr:>3} {name:<24} {what}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_calls_are_implemented_and_the_rest_classified() {
        for &(nr, _) in PARTIAL {
            assert!(
                table::lookup(nr).is_some(),
                "partial {nr} is not in the table"
            );
        }
        assert_eq!(level(0), Level::Full);
        assert_eq!(level(161), Level::Full, "chroot changes the root");
        assert!(matches!(level(164), Level::Partial(n) if n.contains("clock")));
        assert_eq!(level(334), Level::Unsupported);
        let r = report();
        assert!(r.contains("  0 read"), "{r}");
        assert!(r.contains("161 chroot                   full\n"), "{r}");
        assert!(r.contains("164 settimeofday             partial: "), "{r}");
        assert!(
            r.contains("334 rseq                     unsupported (ENOSYS)"),
            "{r}"
        );
        assert_eq!(r.lines().count(), table::named().count());
    }
}
