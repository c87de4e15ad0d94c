//! Classic BPF socket filters (SO_ATTACH_FILTER): Linux's checks at
//! attach time (1..=4096 instructions, known opcodes, jumps inside the
//! program, scratch memory 0..16, no division by a constant zero, a
//! return last) and the interpreter that runs a program on a packet.
//! Every access is checked: a load past the packet's end ends the
//! program with 0 (drop), as Linux's does.

use crate::errno::{Errno, KResult};

pub const BPF_MAXINSNS: usize = 4096;
const MEMWORDS: usize = 16;
/// Negative offsets: Linux's ancillary data and the link/network layers.
const SKF_AD_OFF: i32 = -0x1000;
const SKF_NET_OFF: i32 = -0x10_0000;
const SKF_LL_OFF: i32 = -0x20_0000;
const SKF_AD_PROTOCOL: i32 = 0;
const SKF_AD_PKTTYPE: i32 = 4;
const SKF_AD_IFINDEX: i32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A checked program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program(Vec<Insn>);

/// What a program runs on: the bytes as the socket sees them, the whole
/// frame (link layer) and where its network header starts, and the
/// ancillary values.
pub struct Packet<'a> {
    pub data: &'a [u8],
    pub frame: &'a [u8],
    pub net_off: usize,
    pub protocol: u16,
    pub pkttype: u8,
    pub ifindex: i32,
}

const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;

const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;

impl Program {
    /// Parses `sock_filter`s (8 bytes each) with Linux's attach checks.
    pub fn parse(raw: &[u8]) -> KResult<Program> {
        if raw.is_empty() || !raw.len().is_multiple_of(8) || raw.len() / 8 > BPF_MAXINSNS {
            return Err(Errno::EINVAL);
        }
        let insns: Vec<Insn> = raw
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let n = insns.len();
        for (pc, i) in insns.iter().enumerate() {
            let rest = n - pc - 1;
            let ok = match i.code & 7 {
                LD | LDX => {
                    let mode = i.code & 0xe0;
                    let size = i.code & 0x18;
                    match (i.code & 7, mode) {
                        (_, IMM) => size == W,
                        (LD, ABS | IND) => size != 0x18 && ancillary_ok(i.k),
                        (_, MEM) => size == W && (i.k as usize) < MEMWORDS,
                        (_, LEN) => size == W,
                        (LDX, MSH) => size == B,
                        _ => false,
                    }
                }
                ST | STX => i.code & !7 == 0 && (i.k as usize) < MEMWORDS,
                ALU => {
                    let op = i.code & 0xf0;
                    let known = op <= 0xa0;
                    let div0 = matches!(op, 0x30 | 0x90) && i.code & X == 0 && i.k == 0;
                    known && !div0
                }
                JMP => match i.code & 0xf0 {
                    0x00 => (i.k as usize) < rest,
                    0x10..=0x40 => usize::from(i.jt) < rest && usize::from(i.jf) < rest,
                    _ => false,
                },
                RET => matches!(i.code & 0x18, K | A),
                _ => matches!(i.code & 0xf8, 0x00 | 0x80), // TAX, TXA
            };
            if !ok {
                return Err(Errno::EINVAL);
            }
        }
        if insns[n - 1].code & 7 != RET {
            return Err(Errno::EINVAL);
        }
        Ok(Program(insns))
    }

    /// Runs the program: the number of bytes to keep (0: drop).
    pub fn run(&self, p: &Packet) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEMWORDS];
        let mut pc = 0usize;
        while let Some(&i) = self.0.get(pc) {
            pc += 1;
            match i.code & 7 {
                LD | LDX => {
                    let v = match i.code & 0xe0 {
                        IMM => Some(i.k),
                        ABS => load(p, i.k as i32, i.code & 0x18),
                        IND => load(p, (i.k as i32).wrapping_add(x as i32), i.code & 0x18),
                        MEM => Some(mem[i.k as usize % MEMWORDS]),
                        LEN => Some(p.data.len() as u32),
                        _ => p.data.get(i.k as usize).map(|b| u32::from(b & 0xf) * 4),
                    };
                    let Some(v) = v else { return 0 };
                    if i.code & 7 == LD {
                        a = v;
                    } else {
                        x = v;
                    }
                }
                ST => mem[i.k as usize % MEMWORDS] = a,
                STX => mem[i.k as usize % MEMWORDS] = x,
                ALU => {
                    let v = if i.code & X != 0 { x } else { i.k };
                    a = match i.code & 0xf0 {
                        0x00 => a.wrapping_add(v),
                        0x10 => a.wrapping_sub(v),
                        0x20 => a.wrapping_mul(v),
                        0x30 => match a.checked_div(v) {
                            Some(r) => r,
                            None => return 0,
                        },
                        0x40 => a | v,
                        0x50 => a & v,
                        0x60 => a.checked_shl(v).unwrap_or(0),
                        0x70 => a.checked_shr(v).unwrap_or(0),
                        0x80 => a.wrapping_neg(),
                        0x90 => match a.checked_rem(v) {
                            Some(r) => r,
                            None => return 0,
                        },
                        0xa0 => a ^ v,
                        _ => return 0,
                    };
                }
                JMP => {
                    let v = if i.code & X != 0 { x } else { i.k };
                    let taken = match i.code & 0xf0 {
                        0x00 => {
                            pc = pc.saturating_add(i.k as usize);
                            continue;
                        }
                        0x10 => a == v,
                        0x20 => a > v,
                        0x30 => a >= v,
                        _ => a & v != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET => return if i.code & 0x18 == A { a } else { i.k },
                MISC => {
                    if i.code & 0xf8 == 0 {
                        x = a;
                    } else {
                        a = x;
                    }
                }
                _ => return 0,
            }
        }
        0
    }
}

fn ancillary_ok(k: u32) -> bool {
    let k = k as i32;
    if !(SKF_LL_OFF..0).contains(&k) {
        return true;
    }
    if (SKF_AD_OFF..0).contains(&k) {
        return matches!(
            k - SKF_AD_OFF,
            SKF_AD_PROTOCOL | SKF_AD_PKTTYPE | SKF_AD_IFINDEX
        );
    }
    k >= SKF_LL_OFF
}

/// A load of `size` at `off` (negative: ancillary or a layer), big-endian.
fn load(p: &Packet, off: i32, size: u16) -> Option<u32> {
    let (buf, at): (&[u8], i64) = if off >= 0 {
        (p.data, i64::from(off))
    } else if off >= SKF_AD_OFF {
        return match off - SKF_AD_OFF {
            SKF_AD_PROTOCOL => Some(u32::from(p.protocol)),
            SKF_AD_PKTTYPE => Some(u32::from(p.pkttype)),
            SKF_AD_IFINDEX => Some(p.ifindex as u32),
            _ => None,
        };
    } else if off >= SKF_NET_OFF {
        (p.frame, i64::from(off - SKF_NET_OFF) + p.net_off as i64)
    } else {
        (p.frame, i64::from(off.checked_sub(SKF_LL_OFF)?))
    };
    let n = match size {
        W => 4,
        H => 2,
        _ => 1,
    };
    let at = usize::try_from(at).ok()?;
    let b = buf.get(at..at.checked_add(n)?)?;
    Some(b.iter().fold(0u32, |v, &x| (v << 8) | u32::from(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&code.to_le_bytes());
        b[2] = jt;
        b[3] = jf;
        b[4..8].copy_from_slice(&k.to_le_bytes());
        b
    }

    /// busybox udhcpc's filter: UDP, not a fragment, to port 68.
    fn udhcpc() -> Vec<u8> {
        [
            insn(LD | B | ABS, 0, 0, 9),
            insn(JMP | 0x10, 0, 6, 17),
            insn(LD | H | ABS, 0, 0, 6),
            insn(JMP | 0x40, 4, 0, 0x1fff),
            insn(LDX | B | MSH, 0, 0, 0),
            insn(LD | H | IND, 0, 0, 2),
            insn(JMP | 0x10, 0, 1, 68),
            insn(RET | K, 0, 0, 0x7fff_ffff),
            insn(RET | K, 0, 0, 0),
        ]
        .concat()
    }

    fn ip_udp(dport: u16, frag: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = 17;
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    fn run(prog: &Program, data: &[u8]) -> u32 {
        prog.run(&Packet {
            data,
            frame: data,
            net_off: 0,
            protocol: 0x0800,
            pkttype: 0,
            ifindex: 2,
        })
    }

    #[test]
    fn udhcpcs_filter_keeps_dhcp_replies_only() {
        let p = Program::parse(&udhcpc()).unwrap();
        assert_eq!(run(&p, &ip_udp(68, 0)), 0x7fff_ffff);
        assert_eq!(run(&p, &ip_udp(53, 0)), 0);
        assert_eq!(run(&p, &ip_udp(68, 0x0010)), 0, "a fragment");
        let mut tcp = ip_udp(68, 0);
        tcp[9] = 6;
        assert_eq!(run(&p, &tcp), 0);
        assert_eq!(run(&p, &[0x45; 12]), 0, "a load past the end drops");
    }

    #[test]
    fn attach_checks_are_linuxs() {
        assert_eq!(Program::parse(&[]), Err(Errno::EINVAL));
        assert_eq!(Program::parse(&[0; 7]), Err(Errno::EINVAL));
        // Not ending in a return.
        assert_eq!(
            Program::parse(&insn(LD | W | IMM, 0, 0, 1)),
            Err(Errno::EINVAL)
        );
        // A jump out of the program.
        let j = [insn(JMP | 0x10, 5, 0, 1), insn(RET | K, 0, 0, 0)].concat();
        assert_eq!(Program::parse(&j), Err(Errno::EINVAL));
        // Division by a constant zero; scratch memory out of range.
        let d = [insn(ALU | 0x30, 0, 0, 0), insn(RET | A, 0, 0, 0)].concat();
        assert_eq!(Program::parse(&d), Err(Errno::EINVAL));
        let m = [insn(ST, 0, 0, 16), insn(RET | A, 0, 0, 0)].concat();
        assert_eq!(Program::parse(&m), Err(Errno::EINVAL));
        let too_long = insn(RET | K, 0, 0, 0).repeat(BPF_MAXINSNS + 1);
        assert_eq!(Program::parse(&too_long), Err(Errno::EINVAL));
        assert!(Program::parse(&insn(RET | K, 0, 0, 0).repeat(BPF_MAXINSNS)).is_ok());
        // Ancillary protocol: keep IPv4 only.
        let anc = [
            insn(LD | H | ABS, 0, 0, (SKF_AD_OFF + SKF_AD_PROTOCOL) as u32),
            insn(JMP | 0x10, 0, 1, 0x0800),
            insn(RET | K, 0, 0, 100),
            insn(RET | K, 0, 0, 0),
        ]
        .concat();
        assert_eq!(run(&Program::parse(&anc).unwrap(), &[0u8; 4]), 100);
    }

    proptest::proptest! {
        /// Any program that passes the checks runs on any packet to an
        /// end, without a panic.
        #[test]
        fn any_program_any_packet(
            prog in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            if let Ok(p) = Program::parse(&prog) {
                let _ = run(&p, &data);
            }
        }
    }
}
