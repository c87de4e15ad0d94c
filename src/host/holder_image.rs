//! The namespace holder's own executable (`namespaces.rs`): a one-page
//! static ELF, built here as bytes, that the holder execs once its
//! namespaces are set up.
//!
//! Why: the holder used to sleep as what it was made as, a fork of
//! umlrun, holding a copy of umlrun's page tables and, as umlrun went on
//! writing its memory, the old copies of every page umlrun had before the
//! fork (about 70 kB of anonymous memory and 36 kB of page tables per idle
//! instance). After the exec it holds one shared code page, a stack page
//! and its page tables.
//!
//! The program (assembled here like `seccomp_stub`'s code and copied out
//! between two labels; position-independent) expects fd 0 and 1 to be a
//! pipe only it holds and fd 2 the report pipe to umlrun. It names itself
//! `umlrun-nsholder`, writes the "ready" report (`0xff` and four zero
//! bytes, as the set-up steps before it report failures), closes fd 2,
//! enters strict seccomp (read, write, exit, sigreturn) and reads its own
//! pipe for good. A failed prctl ends it (exit status 1): umlrun then
//! sees the holder gone.

/// Where the image is loaded: in the 2 MiB the host stack of a process
/// without address randomization ends in (the holder execs with
/// `ADDR_NO_RANDOMIZE`; the stack's first pages sit just below
/// 0x7ffffffff000), so one page-table page of each level serves both (the
/// page tables are most of what the holder costs: 12 kB instead of 24 kB
/// with the code at a low address). Nothing is randomized here that would
/// hide anything: the program is this page, and takes no input.
pub const BASE: u64 = 0x7fff_ffe0_0000;
/// Where the code starts in the file (after the ELF and program header).
const CODE_OFF: usize = 0x80;

std::arch::global_asm!(
    ".pushsection .text.umlrun_holder,\"ax\",@progbits",
    ".globl umlrun_holder_start",
    ".globl umlrun_holder_end",
    "umlrun_holder_start:",
    // prctl(PR_SET_NAME, name)
    "mov eax, 157",
    "mov edi, 15",
    "lea rsi, [rip + umlrun_holder_name]",
    "syscall",
    "test rax, rax",
    "jnz 3f",
    // write(2, ready, 5); close(2)
    "mov eax, 1",
    "mov edi, 2",
    "lea rsi, [rip + umlrun_holder_ready]",
    "mov edx, 5",
    "syscall",
    "mov eax, 3",
    "mov edi, 2",
    "syscall",
    // prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)
    "mov eax, 157",
    "mov edi, 22",
    "mov esi, 1",
    "syscall",
    "test rax, rax",
    "jnz 3f",
    // for (;;) read(0, the stack's red zone, 1)
    "2:",
    "xor eax, eax",
    "xor edi, edi",
    "lea rsi, [rsp - 64]",
    "mov edx, 1",
    "syscall",
    "jmp 2b",
    // exit(1)
    "3:",
    "mov eax, 60",
    "mov edi, 1",
    "syscall",
    "jmp 3b",
    "umlrun_holder_name:",
    ".asciz \"umlrun-nsholder\"",
    "umlrun_holder_ready:",
    ".byte 0xff, 0, 0, 0, 0",
    "umlrun_holder_end:",
    ".popsection",
);

extern "C" {
    static umlrun_holder_start: u8;
    static umlrun_holder_end: u8;
}

fn code() -> &'static [u8] {
    let start = &raw const umlrun_holder_start as usize;
    let end = &raw const umlrun_holder_end as usize;
    // SAFETY: both labels sit in the one section emitted above, start
    // before end; the bytes between them are read-only data of this
    // binary, alive for the whole program.
    unsafe { std::slice::from_raw_parts(start as *const u8, end - start) }
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The holder ELF file's bytes: one PT_LOAD (read + execute) of the whole
/// file at [`BASE`], entry at the code.
pub fn holder_elf() -> Vec<u8> {
    let code = code();
    let size = CODE_OFF + code.len();
    let mut f = vec![0u8; size];
    put(&mut f, 0, &[0x7F, b'E', b'L', b'F', 2, 1, 1, 0]);
    put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut f, 20, &1u32.to_le_bytes()); // EV_CURRENT
    put(&mut f, 24, &(BASE + CODE_OFF as u64).to_le_bytes());
    put(&mut f, 32, &64u64.to_le_bytes()); // e_phoff
    put(&mut f, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut f, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut f, 56, &1u16.to_le_bytes()); // e_phnum
    let mut p = 64;
    for v in [1u32, 5] {
        // PT_LOAD, PF_R | PF_X
        put(&mut f, p, &v.to_le_bytes());
        p += 4;
    }
    for v in [0, BASE, BASE, size as u64, size as u64, 0x1000] {
        // offset, vaddr, paddr, filesz, memsz, align
        put(&mut f, p, &v.to_le_bytes());
        p += 8;
    }
    put(&mut f, CODE_OFF, code);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_with_its_name_and_report() {
        let f = holder_elf();
        assert!(f.len() <= 0x1000, "{} bytes", f.len());
        assert_eq!(&f[..4], b"\x7fELF");
        let has = |needle: &[u8]| f.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"umlrun-nsholder\0"));
        assert!(has(&[0xff, 0, 0, 0, 0]));
        // The entry is inside the loaded bytes.
        let entry = u64::from_le_bytes(f[24..32].try_into().unwrap());
        assert!(entry >= BASE + CODE_OFF as u64 && entry < BASE + f.len() as u64);
    }
}
