//! Load plans: where each segment of an ELF file goes, with the load bias
//! applied, and the addresses the auxiliary vector reports.

use super::elf::{ElfFile, ElfKind};
use super::{page_down, page_up, PAGE_SIZE, TASK_SIZE};
use crate::errno::Errno;
use crate::platform::Prot;

/// One PT_LOAD with the bias applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
    pub prot: Prot,
}

impl LoadSegment {
    /// First page of the segment.
    pub fn map_start(&self) -> u64 {
        page_down(self.vaddr)
    }
    /// File offset mapped at [`LoadSegment::map_start`].
    pub fn map_offset(&self) -> u64 {
        page_down(self.offset)
    }
    /// End of the pages that hold file bytes; bytes from `vaddr + filesz` up
    /// to here must read as zero (the partial bss page).
    pub fn file_end(&self) -> u64 {
        page_up(self.vaddr + self.filesz).unwrap_or(TASK_SIZE)
    }
    /// End of the segment's pages; `[file_end, mem_end)` is anonymous zeros.
    pub fn mem_end(&self) -> u64 {
        page_up(self.vaddr + self.memsz).unwrap_or(TASK_SIZE)
    }
    /// Start of the zero tail inside the last file page.
    pub fn bss_start(&self) -> u64 {
        self.vaddr + self.filesz
    }
}

/// Everything exec needs to map one ELF image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Added to every link address (0 for ET_EXEC).
    pub bias: u64,
    pub segments: Vec<LoadSegment>,
    /// Biased entry point.
    pub entry: u64,
    /// Biased address of the program headers (AT_PHDR).
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// PT_INTERP path, to load as a second plan (its bias is AT_BASE).
    pub interp: Option<Vec<u8>>,
    /// Initial program break: the page after the highest segment.
    pub brk: u64,
    pub exec_stack: bool,
}

impl LoadPlan {
    /// Plan `elf`. An ET_DYN image's lowest page goes at `load_base` (page
    /// aligned); ET_EXEC ignores it.
    pub fn new(elf: &ElfFile, load_base: u64) -> Result<LoadPlan, Errno> {
        let (lo, hi) = elf.span()?;
        let bias = match elf.kind {
            ElfKind::Exec => 0,
            ElfKind::Dyn => {
                if !load_base.is_multiple_of(PAGE_SIZE) {
                    return Err(Errno::EINVAL);
                }
                load_base.checked_sub(lo).ok_or(Errno::ENOEXEC)?
            }
        };
        let top = hi.checked_add(bias).ok_or(Errno::ENOEXEC)?;
        if top > TASK_SIZE {
            return Err(Errno::ENOEXEC);
        }
        let segments: Vec<LoadSegment> = elf
            .loads
            .iter()
            .map(|s| LoadSegment {
                vaddr: s.vaddr + bias,
                memsz: s.memsz,
                filesz: s.filesz,
                offset: s.offset,
                prot: s.prot,
            })
            .collect();
        let phdr = match elf.phdr_vaddr {
            Some(v) => v,
            None => {
                // The PT_LOAD that holds the header table in the file.
                let s = elf
                    .loads
                    .iter()
                    .find(|s| s.offset <= elf.phoff && elf.phoff < s.offset + s.filesz)
                    .unwrap_or(&elf.loads[0]);
                (s.vaddr.wrapping_sub(s.offset)).wrapping_add(elf.phoff)
            }
        };
        let entry = elf.entry.checked_add(bias).ok_or(Errno::ENOEXEC)?;
        if entry >= TASK_SIZE {
            return Err(Errno::ENOEXEC);
        }
        Ok(LoadPlan {
            bias,
            segments,
            entry,
            phdr: phdr.wrapping_add(bias),
            phnum: elf.phnum as u64,
            phent: elf.phentsize as u64,
            interp: elf.interp.clone(),
            brk: top,
            exec_stack: elf.exec_stack,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(path: &str, base: u64) -> Option<LoadPlan> {
        let f = std::fs::read(path).ok()?;
        let e = ElfFile::parse(&f, f.len() as u64).unwrap();
        Some(LoadPlan::new(&e, base).unwrap())
    }

    #[test]
    fn static_exec_keeps_link_addresses() {
        let Some(p) = plan_of("/bin/busybox", 0x5555_0000_0000) else {
            return;
        };
        assert_eq!(p.bias, 0);
        assert!(p.interp.is_none());
        let first = p.segments[0];
        // AT_PHDR falls inside the first segment for a normal static link.
        assert!(p.phdr >= first.vaddr && p.phdr < first.vaddr + first.filesz);
        assert!(p.brk >= p.segments.last().unwrap().mem_end());
        let bss = p.segments.iter().find(|s| s.memsz > s.filesz).unwrap();
        assert!(bss.bss_start() <= bss.file_end() && bss.file_end() <= bss.mem_end());
    }

    #[test]
    fn pie_gets_bias() {
        let base = 0x5555_5555_4000;
        let Some(p) = plan_of("/bin/ls", base) else {
            return;
        };
        assert_eq!(p.bias, base);
        assert_eq!(p.segments[0].map_start(), base);
        assert!(p.entry > base);
        assert_eq!(
            p.interp.as_deref(),
            Some(&b"/lib64/ld-linux-x86-64.so.2"[..])
        );
        assert_eq!(p.phent, 56);
    }

    #[test]
    fn static_pie_from_gcc() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("p.c");
        let out = dir.path().join("p");
        std::fs::write(&src, "int main(void){return 0;}\n").unwrap();
        let ok = std::process::Command::new("gcc")
            .args(["-static-pie", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("gcc -static-pie unavailable, skipped");
            return;
        }
        let f = std::fs::read(&out).unwrap();
        let e = ElfFile::parse(&f, f.len() as u64).unwrap();
        assert_eq!(e.kind, ElfKind::Dyn);
        assert!(e.interp.is_none(), "static-pie has no interpreter");
        let p = LoadPlan::new(&e, 0x7000_0000_0000).unwrap();
        assert_eq!(p.bias, 0x7000_0000_0000);
    }

    #[test]
    fn unaligned_or_too_high_base_refused() {
        let Some(f) = std::fs::read("/bin/ls").ok() else {
            return;
        };
        let e = ElfFile::parse(&f, f.len() as u64).unwrap();
        assert_eq!(LoadPlan::new(&e, 0x1001), Err(Errno::EINVAL));
        assert_eq!(
            LoadPlan::new(&e, TASK_SIZE - PAGE_SIZE),
            Err(Errno::ENOEXEC)
        );
    }
}
