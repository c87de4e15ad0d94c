//! ELF64 x86-64 header and program header parsing. Every offset and size is
//! checked; anything malformed is ENOEXEC.

use super::{PAGE_SIZE, TASK_SIZE};
use crate::errno::Errno;
use crate::platform::Prot;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PHDR_SIZE: usize = 56;
/// Linux refuses program header tables above 64 KiB.
const MAX_PHDR_BYTES: usize = 65536;
/// PATH_MAX.
const MAX_INTERP: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfKind {
    /// ET_EXEC: loaded at its link addresses.
    Exec,
    /// ET_DYN: position independent (PIE, static-pie, ld.so); needs a bias.
    Dyn,
}

/// One PT_LOAD, unbiased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfSegment {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
    pub prot: Prot,
}

/// What the loader needs from an ELF file's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfFile {
    pub kind: ElfKind,
    /// Entry point, unbiased.
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
    pub phentsize: u16,
    /// PT_LOAD segments in file order (ascending vaddr, checked).
    pub loads: Vec<ElfSegment>,
    /// PT_INTERP path without its NUL.
    pub interp: Option<Vec<u8>>,
    /// PT_PHDR's vaddr, unbiased, if present.
    pub phdr_vaddr: Option<u64>,
    /// PT_GNU_STACK asks for an executable stack.
    pub exec_stack: bool,
}

fn bytes<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], Errno> {
    let end = at.checked_add(N).ok_or(Errno::ENOEXEC)?;
    b.get(at..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(Errno::ENOEXEC)
}
fn u16_at(b: &[u8], at: usize) -> Result<u16, Errno> {
    Ok(u16::from_le_bytes(bytes(b, at)?))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, Errno> {
    Ok(u32::from_le_bytes(bytes(b, at)?))
}
fn u64_at(b: &[u8], at: usize) -> Result<u64, Errno> {
    Ok(u64::from_le_bytes(bytes(b, at)?))
}

/// Whether `head` starts like an ELF file (for exec's format dispatch).
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

impl ElfFile {
    /// Parse from `head`, the start of the file (it must contain the ELF
    /// header, the program headers and the PT_INTERP string; the first page
    /// usually does). `file_size` bounds the segments' file ranges.
    pub fn parse(head: &[u8], file_size: u64) -> Result<ElfFile, Errno> {
        if !is_elf(head) || head.len() < 64 {
            return Err(Errno::ENOEXEC);
        }
        // ELFCLASS64, little endian, version 1.
        if head[4] != 2 || head[5] != 1 || head[6] != 1 {
            return Err(Errno::ENOEXEC);
        }
        let kind = match u16_at(head, 16)? {
            2 => ElfKind::Exec,
            3 => ElfKind::Dyn,
            _ => return Err(Errno::ENOEXEC),
        };
        if u16_at(head, 18)? != 62 {
            return Err(Errno::ENOEXEC); // not x86-64
        }
        let entry = u64_at(head, 24)?;
        let phoff = u64_at(head, 32)?;
        let phentsize = u16_at(head, 54)?;
        let phnum = u16_at(head, 56)?;
        if phentsize as usize != PHDR_SIZE || phnum == 0 {
            return Err(Errno::ENOEXEC);
        }
        let table = PHDR_SIZE * phnum as usize;
        if table > MAX_PHDR_BYTES {
            return Err(Errno::ENOEXEC);
        }
        let phoff_us = usize::try_from(phoff).map_err(|_| Errno::ENOEXEC)?;
        let table_end = phoff_us.checked_add(table).ok_or(Errno::ENOEXEC)?;
        if table_end > head.len() || table_end as u64 > file_size {
            return Err(Errno::ENOEXEC);
        }

        let mut elf = ElfFile {
            kind,
            entry,
            phoff,
            phnum,
            phentsize,
            loads: Vec::new(),
            interp: None,
            phdr_vaddr: None,
            exec_stack: false,
        };
        for i in 0..phnum as usize {
            let p = phoff_us + i * PHDR_SIZE;
            let p_type = u32_at(head, p)?;
            let flags = u32_at(head, p + 4)?;
            let offset = u64_at(head, p + 8)?;
            let vaddr = u64_at(head, p + 16)?;
            let filesz = u64_at(head, p + 32)?;
            let memsz = u64_at(head, p + 40)?;
            match p_type {
                PT_LOAD => elf.add_load(flags, offset, vaddr, filesz, memsz, file_size)?,
                PT_INTERP if elf.interp.is_none() => {
                    elf.interp = Some(interp_path(head, offset, filesz)?)
                }
                PT_PHDR => elf.phdr_vaddr = Some(vaddr),
                PT_GNU_STACK => elf.exec_stack = flags & 1 != 0,
                _ => {}
            }
        }
        if elf.loads.is_empty() {
            return Err(Errno::ENOEXEC);
        }
        Ok(elf)
    }

    fn add_load(
        &mut self,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
        file_size: u64,
    ) -> Result<(), Errno> {
        let file_end = offset.checked_add(filesz).ok_or(Errno::ENOEXEC)?;
        let mem_end = vaddr.checked_add(memsz).ok_or(Errno::ENOEXEC)?;
        if filesz > memsz || file_end > file_size || mem_end > TASK_SIZE {
            return Err(Errno::ENOEXEC);
        }
        // mmap can only place file pages where vaddr and offset agree mod page.
        if vaddr % PAGE_SIZE != offset % PAGE_SIZE {
            return Err(Errno::ENOEXEC);
        }
        if let Some(prev) = self.loads.last() {
            if vaddr < prev.vaddr {
                return Err(Errno::ENOEXEC);
            }
        }
        let prot = Prot {
            read: flags & 4 != 0,
            write: flags & 2 != 0,
            exec: flags & 1 != 0,
        };
        self.loads.push(ElfSegment {
            vaddr,
            memsz,
            filesz,
            offset,
            prot,
        });
        Ok(())
    }

    /// Lowest and highest (exclusive, page-rounded) vaddr of the PT_LOADs,
    /// unbiased: the span an ET_DYN image needs.
    pub fn span(&self) -> Result<(u64, u64), Errno> {
        let lo = super::page_down(self.loads.first().ok_or(Errno::ENOEXEC)?.vaddr);
        let hi = self
            .loads
            .iter()
            .map(|s| s.vaddr + s.memsz)
            .max()
            .and_then(super::page_up)
            .ok_or(Errno::ENOEXEC)?;
        Ok((lo, hi))
    }
}

fn interp_path(head: &[u8], offset: u64, filesz: u64) -> Result<Vec<u8>, Errno> {
    if filesz < 2 || filesz as usize > MAX_INTERP {
        return Err(Errno::ENOEXEC);
    }
    let start = usize::try_from(offset).map_err(|_| Errno::ENOEXEC)?;
    let end = start.checked_add(filesz as usize).ok_or(Errno::ENOEXEC)?;
    let s = head.get(start..end).ok_or(Errno::ENOEXEC)?;
    // NUL-terminated, no NUL inside.
    match s.split_last() {
        Some((0, path)) if !path.contains(&0) => Ok(path.to_vec()),
        _ => Err(Errno::ENOEXEC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    /// A minimal valid header + one PT_LOAD, for mutation tests.
    fn tiny() -> Vec<u8> {
        crate::platform::stub_image::stub_elf()
    }

    #[test]
    fn busybox_is_static_exec() {
        let Some(f) = read("/bin/busybox") else {
            return;
        };
        let e = ElfFile::parse(&f, f.len() as u64).unwrap();
        assert_eq!(e.kind, ElfKind::Exec);
        assert!(e.interp.is_none());
        assert!(e.loads.len() >= 2);
        assert!(e.loads.iter().any(|s| s.prot.exec));
        assert!(e.loads.iter().any(|s| s.memsz > s.filesz), "has bss");
    }

    #[test]
    fn ls_is_dynamic_with_interp() {
        let Some(f) = read("/bin/ls") else { return };
        let e = ElfFile::parse(&f[..4096], f.len() as u64).unwrap();
        assert_eq!(e.kind, ElfKind::Dyn);
        assert_eq!(
            e.interp.as_deref(),
            Some(&b"/lib64/ld-linux-x86-64.so.2"[..])
        );
        assert!(e.phdr_vaddr.is_some());
    }

    #[test]
    fn stub_elf_parses() {
        let f = tiny();
        let e = ElfFile::parse(&f, f.len() as u64).unwrap();
        assert_eq!(e.kind, ElfKind::Exec);
        assert_eq!(e.loads.len(), 2);
        assert_eq!(e.loads[0].prot, Prot::RX);
        // The op list and XSAVE pages: read-only, so guest code cannot
        // write what the stub runs (umlrun writes them through /proc).
        assert_eq!(e.loads[1].prot, Prot::R);
    }

    #[test]
    fn hostile_headers_are_enoexec() {
        let good = tiny();
        let len = good.len() as u64;
        let bad = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            let l = b.len() as u64;
            assert_eq!(ElfFile::parse(&b, l.min(len)), Err(Errno::ENOEXEC));
        };
        bad(&|b| b[0] = 0); // magic
        bad(&|b| b[4] = 1); // 32-bit
        bad(&|b| b[18] = 3); // i386
        bad(&|b| b[16] = 1); // ET_REL
        bad(&|b| b[54] = 32); // phentsize
        bad(&|b| b[56..58].copy_from_slice(&0u16.to_le_bytes())); // no phdrs
        bad(&|b| b[56..58].copy_from_slice(&0xffffu16.to_le_bytes())); // table too big
        bad(&|b| b[32..40].copy_from_slice(&u64::MAX.to_le_bytes())); // phoff overflow
        bad(&|b| b[32..40].copy_from_slice(&(len - 8).to_le_bytes())); // table past end
                                                                       // First PT_LOAD: filesz > memsz, huge offset, huge vaddr, misaligned.
        bad(&|b| b[64 + 32..64 + 40].copy_from_slice(&0x10000u64.to_le_bytes()));
        bad(&|b| b[64 + 8..64 + 16].copy_from_slice(&(u64::MAX - 4095).to_le_bytes()));
        bad(&|b| b[64 + 16..64 + 24].copy_from_slice(&(u64::MAX - 4095).to_le_bytes()));
        bad(&|b| b[64 + 16..64 + 24].copy_from_slice(&0x400001u64.to_le_bytes()));
        bad(&|b| b.truncate(100)); // cut inside the phdr table
    }

    #[test]
    fn bad_interp_is_enoexec() {
        // Turn the second phdr into PT_INTERP pointing at various strings.
        let mut f = tiny();
        f[120..124].copy_from_slice(&PT_INTERP.to_le_bytes());
        let set = |f: &mut Vec<u8>, off: u64, sz: u64| {
            f[120 + 8..120 + 16].copy_from_slice(&off.to_le_bytes());
            f[120 + 32..120 + 40].copy_from_slice(&sz.to_le_bytes());
        };
        let l = f.len() as u64;
        set(&mut f, 0x100, 2); // bytes at 0x100 are code: not NUL-terminated
        assert_eq!(ElfFile::parse(&f, l), Err(Errno::ENOEXEC));
        set(&mut f, u64::MAX, 8);
        assert_eq!(ElfFile::parse(&f, l), Err(Errno::ENOEXEC));
        set(&mut f, 0x10, 0x100000);
        assert_eq!(ElfFile::parse(&f, l), Err(Errno::ENOEXEC));
        // "/x\0" placed in the padding at 0xf0.
        f[0xf0..0xf3].copy_from_slice(b"/x\0");
        set(&mut f, 0xf0, 3);
        assert_eq!(
            ElfFile::parse(&f, l).unwrap().interp.as_deref(),
            Some(&b"/x"[..])
        );
    }

    #[test]
    fn truncations_never_panic() {
        let Some(f) = read("/bin/ls") else { return };
        for n in 0..1024 {
            let _ = ElfFile::parse(&f[..n], f.len() as u64);
        }
        // Flip bytes in the header region: must return, never panic.
        for i in 0..256 {
            let mut g = f[..4096].to_vec();
            g[i] ^= 0xff;
            let _ = ElfFile::parse(&g, f.len() as u64);
        }
    }
}
