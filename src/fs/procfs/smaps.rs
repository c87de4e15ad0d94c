//! /proc/<pid>/smaps and smaps_rollup, as Linux 6.1's task_mmu.c prints
//! them: each figure in kB, right-aligned in 8 columns after its label.

use std::fmt::Write;

use super::format::{map_line, pad_name};
use super::source::MapInfo;
use crate::mm::usage::{Usage, PSS_SHIFT};

/// One "Label:   value kB" line; `label` carries its own padding.
fn kb(o: &mut String, label: &str, bytes: u64) {
    let _ = writeln!(o, "{label}{:>8} kB", bytes >> 10);
}

/// The figures both files print (Linux's __show_smap); the rollup adds
/// the Pss split by kind.
fn figures(o: &mut String, u: &Usage, rollup: bool) {
    kb(o, "Rss:            ", u.resident);
    kb(o, "Pss:            ", u.pss >> PSS_SHIFT);
    kb(o, "Pss_Dirty:      ", u.pss_dirty >> PSS_SHIFT);
    if rollup {
        kb(o, "Pss_Anon:       ", u.pss_anon >> PSS_SHIFT);
        kb(o, "Pss_File:       ", u.pss_file >> PSS_SHIFT);
        kb(o, "Pss_Shmem:      ", u.pss_shmem >> PSS_SHIFT);
    }
    kb(o, "Shared_Clean:   ", u.shared_clean);
    kb(o, "Shared_Dirty:   ", u.shared_dirty);
    kb(o, "Private_Clean:  ", u.private_clean);
    kb(o, "Private_Dirty:  ", u.private_dirty);
    kb(o, "Referenced:     ", u.referenced);
    kb(o, "Anonymous:      ", u.anonymous);
    kb(o, "LazyFree:       ", 0);
    kb(o, "AnonHugePages:  ", 0);
    kb(o, "ShmemPmdMapped: ", 0);
    kb(o, "FilePmdMapped:  ", 0);
    kb(o, "Shared_Hugetlb: ", 0);
    let _ = writeln!(o, "Private_Hugetlb: {:>7} kB", 0);
    kb(o, "Swap:           ", u.swap);
    kb(o, "SwapPss:        ", u.swap_pss >> PSS_SHIFT);
    kb(o, "Locked:         ", u.pss_locked >> PSS_SHIFT);
}

/// /proc/<pid>/smaps.
pub fn smaps(list: &[MapInfo]) -> String {
    let mut o = String::new();
    for m in list {
        o.push_str(&map_line(m));
        o.push('\n');
        kb(&mut o, "Size:           ", m.end - m.start);
        kb(&mut o, "KernelPageSize: ", crate::abi::PAGE);
        kb(&mut o, "MMUPageSize:    ", crate::abi::PAGE);
        figures(&mut o, &m.usage, false);
        o.push_str("THPeligible:    0\n");
        let _ = writeln!(o, "VmFlags: {} ", m.vm_flags.join(" "));
    }
    o
}

/// /proc/<pid>/smaps_rollup: one header spanning every VMA, then the sums.
/// A process with no mappings (a kernel thread, a zombie) has no rollup.
pub fn smaps_rollup(list: &[MapInfo]) -> Option<String> {
    let (first, last) = (list.first()?, list.last()?);
    let mut total = Usage::default();
    for m in list {
        total.add(&m.usage);
    }
    let mut o = format!(
        "{:08x}-{:08x} ---p 00000000 00:00 0 ",
        first.start, last.end
    );
    pad_name(&mut o);
    o.push_str("[rollup]\n");
    figures(&mut o, &total, true);
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(start: u64, end: u64, usage: Usage) -> MapInfo {
        MapInfo {
            start,
            end,
            read: true,
            write: true,
            usage,
            vm_flags: vec!["rd", "wr", "mr", "mw", "me", "ac"],
            ..Default::default()
        }
    }

    #[test]
    fn smaps_entry_is_linux_format() {
        let u = Usage {
            resident: 8192,
            pss: 8192 << PSS_SHIFT,
            pss_dirty: 8192 << PSS_SHIFT,
            private_dirty: 8192,
            referenced: 8192,
            anonymous: 8192,
            ..Default::default()
        };
        let text = smaps(&[map(0x1000, 0x5000, u)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "00001000-00005000 rw-p 00000000 00:00 0 ");
        assert_eq!(lines[1], "Size:                 16 kB");
        assert_eq!(lines[4], "Rss:                   8 kB");
        assert_eq!(lines[5], "Pss:                   8 kB");
        assert!(lines.contains(&"Private_Dirty:         8 kB"));
        assert!(lines.contains(&"Private_Hugetlb:       0 kB"));
        assert_eq!(*lines.last().unwrap(), "VmFlags: rd wr mr mw me ac ");
    }

    #[test]
    fn rollup_sums_and_spans_every_vma() {
        let half = Usage {
            resident: 4096,
            pss: 2048 << PSS_SHIFT,
            shared_clean: 4096,
            pss_file: 2048 << PSS_SHIFT,
            ..Default::default()
        };
        let text = smaps_rollup(&[map(0x1000, 0x2000, half), map(0x9000, 0xa000, half)]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("00001000-0000a000 ---p 00000000 00:00 0 "));
        assert!(lines[0].ends_with(" [rollup]") && lines[0].len() == 73 + 8);
        assert!(lines.contains(&"Rss:                   8 kB"));
        assert!(lines.contains(&"Pss:                   4 kB"));
        assert!(lines.contains(&"Pss_File:              4 kB"));
        assert!(lines.contains(&"Shared_Clean:          8 kB"));
        assert_eq!(smaps_rollup(&[]), None);
    }
}
