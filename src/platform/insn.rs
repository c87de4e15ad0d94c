//! Which x86-64 instructions write the memory they fault on: a small,
//! conservative decoder for the ptrace platform.
//!
//! ptrace's siginfo for a SIGSEGV has no page-fault error code, so a fault
//! on an unmapped page does not say whether it was a write. The kernel then
//! maps a private page read-only and the write faults a second time (two
//! round trips more per copy-on-write page, e.g. every glibc data page a
//! forked child writes). Looking at the faulting instruction answers it for
//! the common stores and read-modify-writes.
//!
//! Only "this instruction writes" is ever claimed, and only for opcodes
//! whose memory accesses are all writes of the faulting operand (or, for
//! push/call and movs, writes at an address the caller checks). The kernel
//! takes the claim as a hint only (a read where the mapping is not
//! writable), so a wrong claim costs at most an unneeded private copy; a
//! write taken for a read costs the round trip it always did.

/// What the instruction at the fault does to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Its only memory operand (ModRM) is written (stores, read-modify-writes).
    Operand,
    /// It writes the stack below rsp (push, call): a write if the fault is
    /// on the page of rsp - 8.
    Push,
    /// movs: a write if the fault is on rdi's page (it reads at rsi).
    StringDest,
    /// Anything else, or not sure.
    Unknown,
}

/// Longest x86 instruction.
pub const MAX_LEN: usize = 15;

/// Classifies the instruction at the start of `code` (up to [`MAX_LEN`]
/// bytes; fewer if the rest was not readable).
pub fn classify(code: &[u8]) -> Access {
    let mut i = 0;
    // Legacy prefixes, then at most one REX right before the opcode.
    while let Some(&b) = code.get(i) {
        match b {
            0x66 | 0x67 | 0xF0 | 0xF2 | 0xF3 | 0x2E | 0x36 | 0x3E | 0x26 | 0x64 | 0x65 => i += 1,
            _ => break,
        }
        if i >= MAX_LEN {
            return Access::Unknown;
        }
    }
    if matches!(code.get(i), Some(0x40..=0x4F)) {
        i += 1;
    }
    let Some(&op) = code.get(i) else {
        return Access::Unknown;
    };
    let modrm = code.get(i + 1).copied();
    // The ModRM names memory (mod != 3); its reg field.
    let mem_reg = |m: Option<u8>| m.filter(|m| m >> 6 != 3).map(|m| (m >> 3) & 7);
    match op {
        // add/or/adc/sbb/and/sub/xor r/m, reg (cmp is 0x38/0x39: a read).
        0x00 | 0x01 | 0x08 | 0x09 | 0x10 | 0x11 | 0x18 | 0x19 | 0x20 | 0x21 | 0x28 | 0x29
        | 0x30 | 0x31
        // xchg, mov r/m, reg.
        | 0x86 | 0x87 | 0x88 | 0x89 => operand(mem_reg(modrm).is_some()),
        // Group 1 r/m, imm: all but /7 (cmp) write.
        0x80 | 0x81 | 0x83 => operand(mem_reg(modrm).is_some_and(|r| r != 7)),
        // Shifts and rotates r/m: all write.
        0xC0 | 0xC1 | 0xD0..=0xD3 => operand(mem_reg(modrm).is_some()),
        // mov r/m, imm (/0 only).
        0xC6 | 0xC7 => operand(mem_reg(modrm) == Some(0)),
        // not, neg (/2, /3); test, mul, div read.
        0xF6 | 0xF7 => operand(mem_reg(modrm).is_some_and(|r| r == 2 || r == 3)),
        // inc, dec (/0, /1) write their operand; push r/m (/6) and call
        // r/m (/2) read it and write the stack.
        0xFE | 0xFF => match mem_reg(modrm) {
            Some(0 | 1) => Access::Operand,
            Some(2 | 6) if op == 0xFF => Access::Push,
            _ => Access::Unknown,
        },
        0x50..=0x57 | 0x68 | 0x6A | 0xE8 => Access::Push,
        // stos: [rdi] is its only memory operand. movs also reads [rsi].
        0xAA | 0xAB => Access::Operand,
        0xA4 | 0xA5 => Access::StringDest,
        0x0F => legacy_0f(code.get(i + 1..).unwrap_or(&[])),
        0xC5 => {
            // 2-byte VEX: map 0F implied; C5 xx opcode modrm.
            vector_store(1, code.get(i + 2).copied(), code.get(i + 3).copied())
        }
        0xC4 => {
            // 3-byte VEX: C4 RXBmmmmm WvvvvLpp opcode modrm.
            let map = code.get(i + 1).map(|b| b & 0x1F).unwrap_or(0);
            vector_store(map, code.get(i + 3).copied(), code.get(i + 4).copied())
        }
        0x62 => {
            // EVEX: 62 P0 P1 P2 opcode modrm; P0 low bits = map, P1 bit 2 = 1.
            let (Some(p0), Some(p1)) = (code.get(i + 1), code.get(i + 2)) else {
                return Access::Unknown;
            };
            if p1 & 0x04 == 0 {
                return Access::Unknown;
            }
            vector_store(p0 & 0x07, code.get(i + 4).copied(), code.get(i + 5).copied())
        }
        _ => Access::Unknown,
    }
}

fn operand(writes: bool) -> Access {
    if writes {
        Access::Operand
    } else {
        Access::Unknown
    }
}

/// Stores in map 0F whose memory operand is the destination whatever the
/// mandatory prefix: movups/movupd/movss/movsd (11), movlps/movhps (13,
/// 17), movaps/movapd (29), movntps (2B), movq/movdqa/movdqu (7F), movq
/// xmm (D6), movntq/movntdq (E7).
fn is_0f_store(op: u8) -> bool {
    matches!(op, 0x11 | 0x13 | 0x17 | 0x29 | 0x2B | 0x7F | 0xD6 | 0xE7)
}

/// Two-byte opcodes (`rest` starts after 0F).
fn legacy_0f(rest: &[u8]) -> Access {
    let (Some(&op), modrm) = (rest.first(), rest.get(1).copied()) else {
        return Access::Unknown;
    };
    let mem = modrm.is_some_and(|m| m >> 6 != 3);
    match op {
        // cmpxchg and xadd always write their memory operand; movnti;
        // setcc r/m8.
        0xB0 | 0xB1 | 0xC0 | 0xC1 | 0xC3 | 0x90..=0x9F => operand(mem),
        op if is_0f_store(op) => operand(mem),
        _ => Access::Unknown,
    }
}

/// VEX/EVEX-encoded stores (map 1 = 0F only).
fn vector_store(map: u8, op: Option<u8>, modrm: Option<u8>) -> Access {
    match (map, op, modrm) {
        (1, Some(op), Some(m)) if m >> 6 != 3 && is_0f_store(op) => Access::Operand,
        _ => Access::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_stores_and_rmw_write() {
        // movq $0x0, 0x70142(%rip)
        let c = [0x48, 0xC7, 0x05, 0x42, 0x01, 0x07, 0x00, 0, 0, 0, 0];
        assert_eq!(classify(&c), Access::Operand);
        // addq $0x4, 0x76fe0(%rip)
        assert_eq!(
            classify(&[0x48, 0x83, 0x05, 0xE0, 0x6F, 0x07, 0x00, 0x04]),
            Access::Operand
        );
        // mov %eax, (%rdi); mov %al, 8(%rsp); lock cmpxchg %ecx, (%rdx)
        assert_eq!(classify(&[0x89, 0x07]), Access::Operand);
        assert_eq!(classify(&[0x88, 0x44, 0x24, 0x08]), Access::Operand);
        assert_eq!(classify(&[0xF0, 0x0F, 0xB1, 0x0A]), Access::Operand);
        // incl (%rax); lock xadd %eax, (%rdx)
        assert_eq!(classify(&[0xFF, 0x00]), Access::Operand);
        assert_eq!(classify(&[0xF0, 0x0F, 0xC1, 0x02]), Access::Operand);
        // fs-relative store: mov %rax, %fs:0x10
        assert_eq!(
            classify(&[0x64, 0x48, 0x89, 0x04, 0x25, 0x10, 0, 0, 0]),
            Access::Operand
        );
    }

    #[test]
    fn vector_stores_write() {
        // movups %xmm0, (%rdi); movdqu %xmm1, 16(%rdi) (F3 0F 7F)
        assert_eq!(classify(&[0x0F, 0x11, 0x07]), Access::Operand);
        assert_eq!(classify(&[0xF3, 0x0F, 0x7F, 0x4F, 0x10]), Access::Operand);
        // vmovdqu %ymm0, (%rdi): C5 FE 7F 07
        assert_eq!(classify(&[0xC5, 0xFE, 0x7F, 0x07]), Access::Operand);
        // vmovdqu64 %zmm16, (%rdi): 62 E1 FE 48 7F 07
        assert_eq!(
            classify(&[0x62, 0xE1, 0xFE, 0x48, 0x7F, 0x07]),
            Access::Operand
        );
        // vmovups %ymm0, (%rdi) as 3-byte VEX: C4 E1 7C 11 07
        assert_eq!(classify(&[0xC4, 0xE1, 0x7C, 0x11, 0x07]), Access::Operand);
    }

    #[test]
    fn reads_are_never_called_writes() {
        let reads: &[&[u8]] = &[
            &[0x48, 0x8B, 0x05, 0x11, 0xED, 0x06, 0x00], // mov 0x6ed11(%rip), %rax
            &[0x39, 0x07],                               // cmp %eax, (%rdi)
            &[0x83, 0x3D, 0, 0, 0, 0, 0],                // cmpl $0, x(%rip)
            &[0x85, 0x07],                               // test %eax, (%rdi)
            &[0xF7, 0x27],                               // mull (%rdi)
            &[0xF3, 0x0F, 0x7E, 0x07],                   // movq (%rdi), %xmm0
            &[0x0F, 0x10, 0x07],                         // movups (%rdi), %xmm0
            &[0xC5, 0xFE, 0x6F, 0x07],                   // vmovdqu (%rdi), %ymm0
            &[0x62, 0xE1, 0xFE, 0x48, 0x6F, 0x07],       // vmovdqu64 (%rdi), %zmm16
            &[0xC4, 0xE2, 0x7D, 0x11, 0x07],             // map 0F38: not ours
            &[0xFF, 0x27],                               // jmp *(%rdi)
            &[0x0F, 0xB6, 0x07],                         // movzbl (%rdi), %eax
            &[0x89, 0xC7],                               // mov %eax, %edi (no memory)
            &[0xC7, 0xC0, 1, 0, 0, 0],                   // mov $1, %eax
            &[0x48, 0x0F, 0x11],                         // cut short: no ModRM
            &[0x66; 20],                                 // prefixes only
            &[],
        ];
        for r in reads {
            assert_eq!(classify(r), Access::Unknown, "{r:02x?}");
        }
    }

    #[test]
    fn stack_and_string_writes_are_left_to_the_caller() {
        assert_eq!(classify(&[0x55]), Access::Push); // push %rbp
        assert_eq!(classify(&[0x41, 0x57]), Access::Push); // push %r15
        assert_eq!(classify(&[0xE8, 0, 0, 0, 0]), Access::Push); // call
        assert_eq!(classify(&[0xFF, 0x15, 0, 0, 0, 0]), Access::Push); // call *x(%rip)
        assert_eq!(classify(&[0xF3, 0xAA]), Access::Operand); // rep stosb
        assert_eq!(classify(&[0xF3, 0x48, 0xA5]), Access::StringDest); // rep movsq
    }
}
