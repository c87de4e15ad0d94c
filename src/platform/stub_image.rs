//! The stub executable: a tiny static ELF, built here as bytes, that every
//! guest process starts from.
//!
//! Why an exec'd ELF and not a fork of umlrun: the new process starts with a
//! clean address space (this page, the data pages, a host stack we unmap at
//! once, the vDSO and vvar), so nothing of umlrun is left to find and unmap,
//! and the spawn (a vfork-style clone, see `host::ptrace::spawn_traced`)
//! copies none of umlrun's page tables and runs only raw syscalls before the
//! exec, which keeps spawning sound in a threaded umlrun.
//!
//! Page layout at [`STUB_BASE`]:
//!
//! | address | what |
//! |---|---|
//! | `STUB_BASE + ENTRY_OFF` | `int3; jmp .-1`: the ELF entry, never run on purpose |
//! | [`STUB_SYSCALL`] | `syscall; int3`: one injected syscall |
//! | [`STUB_BATCH`] | loop over the op list at [`STUB_DATA`] (below), then `int3` |
//! | [`STUB_RESET`] | `xrstor` the init state of every user FPU/vector component, then the batch loop |
//! | `STUB_BASE + SC_OFF` | the seccomp platform's signal handler and park loop (`host::seccomp_stub`; unused by ptrace stubs) |
//! | [`STUB_DATA`] | the op list: records of 8 u64 (nr, 6 args, unused), nr 0 ends |
//! | [`STUB_XSTATE`] | an XSAVE area for the reset gadget (3 pages) |
//! | [`STUB_SCRATCH`] | the one stub page its own calls may write: the `recvmsg` header and buffers of a passed fd (`host::fdpass`) |
//!
//! The batch loop runs `rbx = STUB_DATA` onwards; it stops at the first
//! failing syscall (rax in -4095..-1), so at the trap `rbx` points at the
//! record that ended the loop and `rax` holds its result.
//!
//! The reset gadget (for reusing a stub, see `PtraceStub::recycle`) reads
//! XCR0 with `xgetbv` and runs `xrstor64 [rsi]` on an XSAVE header whose
//! XSTATE_BV is 0, which puts every enabled component (x87, SSE, AVX,
//! AVX-512, ...) in its init state, as execve does; PKRU and the AMX tile
//! components are left out of the mask (PKRU keeps its value, tiles need a
//! permission the stub never asks for). It then falls into the batch loop.

/// Where the stub's code page sits in every stub. Chosen above the host's
/// non-randomized mmap base (0x7ffff7fff000, where the vDSO goes) and well
/// below the initial host stack, so exec never collides with either.
pub const STUB_BASE: u64 = 0x7fff_fc00_0000;
const ENTRY_OFF: u64 = 0x100;
const SYSCALL_OFF: u64 = 0x110;
const BATCH_OFF: u64 = 0x120;
const RESET_OFF: u64 = 0x160;
/// Where the seccomp platform's code (`host::seccomp_stub::stub_code`)
/// starts in the code page.
pub const SC_OFF: u64 = 0x400;
/// The stub address of the seccomp code's byte at `off`.
pub fn sc_addr(off: usize) -> u64 {
    STUB_BASE + SC_OFF + off as u64
}
/// A `syscall; int3` gadget.
pub const STUB_SYSCALL: u64 = STUB_BASE + SYSCALL_OFF;
/// The batch loop entry.
pub const STUB_BATCH: u64 = STUB_BASE + BATCH_OFF;
/// The reset gadget entry: `rsi` = an XSAVE area ([`xstate_init_area`]),
/// `rbx` = an op list; traps at [`STUB_BATCH_TRAP`].
pub const STUB_RESET: u64 = STUB_BASE + RESET_OFF;
/// The data page the batch loop reads (the ELF's bss).
pub const STUB_DATA: u64 = STUB_BASE + 0x1000;
/// Where [`STUB_RESET`] callers put the XSAVE area: its own pages after the
/// op list page, room for the whole XSAVE area of any host (xrstor may read
/// the area of every component in its mask even when it is in init state;
/// with AVX-512 that is 2.7 KiB, with AMX 11 KiB).
pub const STUB_XSTATE: u64 = STUB_DATA + 0x1000;
const XSTATE_ROOM: u64 = 0x3000;
/// A page the stub may write (guest code too: nothing umlrun trusts is
/// there): a ptrace stub's `recvmsg` of a passed fd writes its header's
/// lengths, the data byte and the control message here. umlrun writes
/// the header (through /proc/PID/mem) right before each use and reads
/// nothing back.
pub const STUB_SCRATCH: u64 = STUB_XSTATE + XSTATE_ROOM;
/// End of the stub's own pages.
pub const STUB_END: u64 = STUB_SCRATCH + 0x1000;
/// End of the stub area every stub keeps to itself: the code and data
/// pages above, then (seccomp stubs) the shared area at
/// `host::seccomp_stub::SHM_BASE`. Guest ranges may not overlap
/// [`STUB_BASE`]..`STUB_AREA_END`: the kernel refuses them, and the stubs'
/// seccomp filters kill a stub whose op loop is made to map, protect or
/// unmap any of it (guest code jumping into the loop with chosen
/// registers).
pub const STUB_AREA_END: u64 = 0x7fff_fc02_0000;
/// Bytes per op record in the data page.
pub const OP_RECORD: usize = 64;
/// Ops per batch (one record is the terminator).
pub const MAX_BATCH: usize = 4096 / OP_RECORD - 1;

/// The batch loop, hand-assembled (offsets relative to its start):
const BATCH_CODE: [u8; 49] = [
    0x48, 0x8B, 0x03, // 0:  mov rax, [rbx]
    0x48, 0x85, 0xC0, // 3:  test rax, rax
    0x74, 0x28, //       6:  jz done (48)
    0x48, 0x8B, 0x7B, 0x08, // 8:  mov rdi, [rbx+8]
    0x48, 0x8B, 0x73, 0x10, // 12: mov rsi, [rbx+16]
    0x48, 0x8B, 0x53, 0x18, // 16: mov rdx, [rbx+24]
    0x4C, 0x8B, 0x53, 0x20, // 20: mov r10, [rbx+32]
    0x4C, 0x8B, 0x43, 0x28, // 24: mov r8,  [rbx+40]
    0x4C, 0x8B, 0x4B, 0x30, // 28: mov r9,  [rbx+48]
    0x0F, 0x05, //             32: syscall
    0x48, 0x3D, 0x01, 0xF0, 0xFF, 0xFF, // 34: cmp rax, -4095
    0x73, 0x06, //             40: jae done (48)
    0x48, 0x83, 0xC3, 0x40, // 42: add rbx, 64
    0xEB, 0xD0, //             46: jmp 0
    0xCC, //                   48: done: int3
];

/// The reset gadget (see the module header), hand-assembled:
const RESET_CODE: [u8; 16] = [
    0x31, 0xC9, //                   0:  xor ecx, ecx
    0x0F, 0x01, 0xD0, //             2:  xgetbv (edx:eax = XCR0)
    0x25, 0xFF, 0xFD, 0xF9, 0xFF, // 5:  and eax, ~(PKRU | XTILECFG | XTILEDATA)
    0x48, 0x0F, 0xAE, 0x2E, //       10: xrstor64 [rsi]
    0xEB, 0xB0, //                   14: jmp STUB_BATCH
];

/// Size of the XSAVE area the reset gadget reads: legacy region + header.
pub const XSTATE_INIT_LEN: usize = 512 + 64;

/// An XSAVE area (standard form) that `xrstor` turns into the init state
/// of every component: XSTATE_BV = 0 and MXCSR at its reset value (xrstor
/// loads MXCSR from memory whenever SSE or AVX is in the mask).
pub fn xstate_init_area() -> [u8; XSTATE_INIT_LEN] {
    let mut a = [0u8; XSTATE_INIT_LEN];
    a[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW, for readers
    a[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
    a
}

/// Offset in the batch loop just after its `syscall` (rip as seccomp
/// sees it).
pub const BATCH_SYSCALL_END: u64 = 34;

/// Address just after the batch loop's final `int3`: rip at its trap.
pub const STUB_BATCH_TRAP: u64 = STUB_BATCH + BATCH_CODE.len() as u64;
/// rip at the trap of the single-syscall gadget.
pub const STUB_SYSCALL_TRAP: u64 = STUB_SYSCALL + 3;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn phdr(p_type: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(56);
    p.extend_from_slice(&p_type.to_le_bytes());
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&offset.to_le_bytes());
    p.extend_from_slice(&vaddr.to_le_bytes());
    p.extend_from_slice(&vaddr.to_le_bytes()); // paddr
    p.extend_from_slice(&filesz.to_le_bytes());
    p.extend_from_slice(&memsz.to_le_bytes());
    p.extend_from_slice(&0x1000u64.to_le_bytes());
    p
}

/// The stub ELF file's bytes.
pub fn stub_elf() -> Vec<u8> {
    let sc = crate::host::seccomp_stub::stub_code().bytes;
    let size = SC_OFF as usize + sc.len();
    let mut f = vec![0u8; size];
    // ELF header.
    put(&mut f, 0, &[0x7F, b'E', b'L', b'F', 2, 1, 1, 0]);
    put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut f, 20, &1u32.to_le_bytes()); // EV_CURRENT
    put(&mut f, 24, &(STUB_BASE + ENTRY_OFF).to_le_bytes());
    put(&mut f, 32, &64u64.to_le_bytes()); // e_phoff
    put(&mut f, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut f, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut f, 56, &2u16.to_le_bytes()); // e_phnum
                                          // Code: R+X, the whole file. Data: a read-only bss (the
                                          // op list and XSAVE pages): guest code may not write
                                          // them; umlrun writes them through /proc/PID/mem. The
                                          // spawn sets each page's protection (the scratch page
                                          // writable) whatever the loader did.
    const PT_LOAD: u32 = 1;
    let code = phdr(PT_LOAD, 5, 0, STUB_BASE, size as u64, size as u64);
    let data = phdr(PT_LOAD, 4, 0, STUB_DATA, 0, STUB_END - STUB_DATA);
    put(&mut f, 64, &code);
    put(&mut f, 120, &data);
    put(&mut f, ENTRY_OFF as usize, &[0xCC, 0xEB, 0xFD]);
    put(&mut f, SYSCALL_OFF as usize, &[0x0F, 0x05, 0xCC]);
    put(&mut f, BATCH_OFF as usize, &BATCH_CODE);
    put(&mut f, RESET_OFF as usize, &RESET_CODE);
    put(&mut f, SC_OFF as usize, sc);
    f
}

/// Encode one batch of `(nr, args)` into the data page's record format,
/// terminator included.
pub fn encode_batch(ops: &[(u64, [u64; 6])]) -> Vec<u8> {
    let mut out = vec![0u8; (ops.len() + 1) * OP_RECORD];
    for (i, (nr, args)) in ops.iter().enumerate() {
        let rec = &mut out[i * OP_RECORD..(i + 1) * OP_RECORD];
        rec[0..8].copy_from_slice(&nr.to_le_bytes());
        for (j, a) in args.iter().enumerate() {
            rec[8 + j * 8..16 + j * 8].copy_from_slice(&a.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_jumps_land_on_the_trap_and_loop_start() {
        // jz at 6 (next 8) + 0x28 = 48; jae at 40 (next 42) + 6 = 48;
        // jmp at 46 (next 48) - 48 = 0.
        assert_eq!(8 + BATCH_CODE[7] as usize, 48);
        assert_eq!(42 + BATCH_CODE[41] as usize, 48);
        assert_eq!(48 + (BATCH_CODE[47] as i8) as isize, 0);
        assert_eq!(BATCH_CODE[48], 0xCC);
        let sc = BATCH_SYSCALL_END as usize;
        assert_eq!(&BATCH_CODE[sc - 2..sc], &[0x0F, 0x05]);
    }

    #[test]
    fn reset_falls_into_the_batch_loop() {
        // jmp at 14 (next 16) lands on BATCH_OFF.
        let next = RESET_OFF as i64 + 16;
        assert_eq!(next + (RESET_CODE[15] as i8) as i64, BATCH_OFF as i64);
        assert_eq!(RESET_CODE[14], 0xEB);
        assert!(BATCH_OFF as usize + BATCH_CODE.len() <= RESET_OFF as usize);
        assert_eq!(STUB_XSTATE % 64, 0);
        let elf = stub_elf();
        assert_eq!(
            &elf[RESET_OFF as usize..RESET_OFF as usize + RESET_CODE.len()],
            &RESET_CODE
        );
        assert!(RESET_OFF as usize + RESET_CODE.len() <= SC_OFF as usize);
    }

    #[test]
    fn xstate_area_is_all_init() {
        let a = xstate_init_area();
        // XSTATE_BV and XCOMP_BV (header at 512) are zero: every component init.
        assert!(a[512..].iter().all(|&b| b == 0));
        assert_eq!(&a[24..28], &0x1f80u32.to_le_bytes());
    }

    #[test]
    fn batch_encoding_has_terminator() {
        let b = encode_batch(&[(9, [1, 2, 3, 4, 5, 6])]);
        assert_eq!(b.len(), 2 * OP_RECORD);
        assert_eq!(&b[0..8], &9u64.to_le_bytes());
        assert_eq!(&b[48..56], &6u64.to_le_bytes());
        assert!(b[OP_RECORD..].iter().all(|&x| x == 0));
    }
}
