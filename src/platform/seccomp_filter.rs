//! The seccomp filters of the stubs (classic BPF, built here as bytes; the
//! stubs install them during set-up). They are the wall between guest code
//! and the host.
//!
//! The seccomp platform's guest thread ([`stub_filter`]):
//!
//! - a syscall from anywhere but the handler's own `syscall` instructions,
//!   in any ABI (64-bit, `int 0x80`, x32 numbers), traps: SIGSYS, which
//!   the stub's handler hands to umlrun as a guest syscall. Every mmap,
//!   mprotect and munmap traps, wherever it comes from;
//! - from the handler's instructions only the calls each one needs pass:
//!   futex WAIT/WAKE on the two words of the shared area, rt_sigreturn;
//! - anything else from the handler's instructions kills the stub (guest
//!   code jumping into the stub with chosen registers).
//!
//! The seccomp platform's op thread ([`op_thread_filter`]): only its own
//! calls, with their arguments checked; anything else kills the stub.
//!
//! No open, no write to a file, no exec, no socket call but one
//! non-blocking recvmsg on the fd channel's end (`host::fdpass`: how a
//! hot-added disk's fd reaches a running stub) with one pinned header
//! address: whatever guest code does, it cannot make the host create or
//! change a file.

/// `struct seccomp_data` offsets.
pub(super) const NR: u32 = 0;
pub(super) const ARCH: u32 = 4;
const IP_LO: u32 = 8;
const IP_HI: u32 = 12;
pub(super) fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
pub(super) fn arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

use super::stub_image::{STUB_AREA_END, STUB_BASE};

pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(super) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(super) const RET_TRAP: u32 = 0x0003_0000;
pub(super) const RET_ALLOW: u32 = 0x7fff_0000;

const SYS_MMAP: u32 = 9;
const SYS_MPROTECT: u32 = 10;
const SYS_MUNMAP: u32 = 11;
const SYS_RT_SIGRETURN: u32 = 15;
const SYS_FUTEX: u32 = 202;
const SYS_WRITE: u32 = 1;
const SYS_CLOSE: u32 = 3;
const SYS_DUP2: u32 = 33;
const SYS_RECVMSG: u32 = 47;
const SYS_EXIT_GROUP: u32 = 231;
const SYS_GETTIMEOFDAY: u32 = 96;
const SYS_TIME: u32 = 201;
const SYS_GETCPU: u32 = 309;
/// High half of the legacy vsyscall page's address (0xffffffffff600000).
const VSYSCALL_HI: u32 = 0xffff_ffff;
const MAP_SHARED_FIXED: u32 = 0x11;

/// Where the guest thread's handler makes syscalls (rip after each
/// `syscall`, as seccomp sees it) and what they may touch.
#[derive(Clone, Copy, Debug)]
pub struct StubSites {
    /// futex WAKE / WAIT sites.
    pub futex: [u64; 2],
    /// rt_sigreturn sites.
    pub sigreturn: [u64; 2],
    /// The two futex words (their addresses in the stub).
    pub futex_words: [u64; 2],
}

/// Where the op thread makes syscalls and what they may touch.
#[derive(Clone, Copy, Debug)]
pub struct OpSites {
    /// futex WAIT on `ctl`.
    pub wait: u64,
    /// The op list: mmap, mprotect, munmap; recvmsg on `sock` into
    /// `msg`, dup2, close.
    pub op: u64,
    /// write(`efd`, `one`, 8).
    pub done: u64,
    /// futex WAKE on `cmd`.
    pub wake: u64,
    /// exit_group.
    pub exit: u64,
    pub ctl: u64,
    pub cmd: u64,
    pub one: u64,
    pub efd: u32,
    /// The fd channel's end (`host::fdpass`): the one socket the op list
    /// may receive from ...
    pub sock: u32,
    /// ... with this message header (in the shared area), flags
    /// `host::fdpass::RECV_FLAGS`.
    pub msg: u64,
}

#[derive(Clone, Copy)]
pub(super) enum Ins {
    Ld(u32),
    /// if A == k goto t else goto f (labels)
    Jeq(u32, usize, usize),
    /// if A & k goto t else goto f
    Jset(u32, usize, usize),
    /// if A > k goto t else goto f
    Jgt(u32, usize, usize),
    /// if A >= X goto t else goto f
    JgeX(usize, usize),
    /// M[k] = A
    St(u32),
    /// A = M[k]
    LdMem(u32),
    /// X = A
    Tax,
    /// A += X
    AddX,
    /// A += k
    AddK(u32),
    Ret(u32),
    /// goto label (any distance forward)
    Ja(usize),
    Label(usize),
}

// Fixed labels.
const TRAP: usize = 0;
const KILL: usize = 1;
const ALLOW: usize = 2;

pub(super) struct Asm {
    pub(super) ins: Vec<Ins>,
    pub(super) next_label: usize,
}

impl Asm {
    pub(super) fn label(&mut self) -> usize {
        self.next_label += 1;
        self.next_label
    }
    pub(super) fn push(&mut self, i: Ins) {
        self.ins.push(i);
    }

    /// Resolves labels into `struct sock_filter` records.
    pub(super) fn assemble(self) -> Vec<u8> {
        let mut at = std::collections::HashMap::new();
        let mut n = 0usize;
        for i in &self.ins {
            match i {
                Ins::Label(l) => {
                    at.insert(*l, n);
                }
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n * 8);
        let mut pc = 0usize;
        let rel = |pc: usize, l: &usize| -> u8 {
            let target = at[l];
            let off = target
                .checked_sub(pc + 1)
                .expect("seccomp filter jumps forward only");
            u8::try_from(off).expect("seccomp filter jump fits a byte")
        };
        let mut put = |code: u16, jt: u8, jf: u8, k: u32| {
            out.extend_from_slice(&code.to_le_bytes());
            out.push(jt);
            out.push(jf);
            out.extend_from_slice(&k.to_le_bytes());
        };
        for i in &self.ins {
            match i {
                Ins::Label(_) => continue,
                Ins::Ld(off) => put(0x20, 0, 0, *off),
                Ins::Jeq(k, t, f) => put(0x15, rel(pc, t), rel(pc, f), *k),
                Ins::Jset(k, t, f) => put(0x45, rel(pc, t), rel(pc, f), *k),
                Ins::Jgt(k, t, f) => put(0x25, rel(pc, t), rel(pc, f), *k),
                Ins::JgeX(t, f) => put(0x3d, rel(pc, t), rel(pc, f), 0),
                Ins::St(k) => put(0x02, 0, 0, *k),
                Ins::LdMem(k) => put(0x60, 0, 0, *k),
                Ins::Tax => put(0x07, 0, 0, 0),
                Ins::AddX => put(0x0c, 0, 0, 0),
                Ins::AddK(k) => put(0x04, 0, 0, *k),
                Ins::Ret(v) => put(0x06, 0, 0, *v),
                Ins::Ja(l) => {
                    let off = at[l]
                        .checked_sub(pc + 1)
                        .expect("seccomp filter jumps forward only");
                    put(0x05, 0, 0, u32::try_from(off).expect("filter size"))
                }
            }
            pc += 1;
        }
        out
    }
}

/// The filter program: `struct sock_filter` records, 8 bytes each.
pub fn stub_filter(s: &StubSites) -> Vec<u8> {
    use Ins::*;
    let mut a = Asm {
        ins: Vec::new(),
        next_label: ALLOW,
    };
    let code_hi = (s.futex[0] >> 32) as u32;
    let (l_futex, l_sigret) = (a.label(), a.label());
    let c1 = a.label();
    a.push(Ld(ARCH));
    a.push(Jeq(AUDIT_ARCH_X86_64, c1, TRAP));
    a.push(Label(c1));
    let c2 = a.label();
    a.push(Ld(IP_HI));
    a.push(Jeq(code_hi, c2, TRAP));
    a.push(Label(c2));
    a.push(Ld(IP_LO));
    let sites: [(u64, usize); 4] = [
        (s.futex[0], l_futex),
        (s.futex[1], l_futex),
        (s.sigreturn[0], l_sigret),
        (s.sigreturn[1], l_sigret),
    ];
    for (ip, l) in sites {
        debug_assert_eq!((ip >> 32) as u32, code_hi);
        let next = a.label();
        a.push(Jeq(ip as u32, l, next));
        a.push(Label(next));
    }
    a.push(Jeq(0, TRAP, TRAP)); // no site: a guest syscall

    // futex(word, WAIT|WAKE, ...) on one of the two words.
    a.push(Label(l_futex));
    let (f1, f2, f3, f4) = (a.label(), a.label(), a.label(), a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_FUTEX, f1, KILL));
    a.push(Label(f1));
    a.push(Ld(arg_lo(1)));
    a.push(Jeq(0, f3, f2)); // FUTEX_WAIT
    a.push(Label(f2));
    a.push(Jeq(1, f3, KILL)); // FUTEX_WAKE
    a.push(Label(f3));
    a.push(Ld(arg_hi(1)));
    let f5 = a.label();
    a.push(Jeq(0, f5, KILL));
    a.push(Label(f5));
    a.push(Ld(arg_hi(0)));
    a.push(Jeq((s.futex_words[0] >> 32) as u32, f4, KILL));
    a.push(Label(f4));
    a.push(Ld(arg_lo(0)));
    let f6 = a.label();
    a.push(Jeq(s.futex_words[0] as u32, ALLOW, f6));
    a.push(Label(f6));
    a.push(Jeq(s.futex_words[1] as u32, ALLOW, KILL));

    // rt_sigreturn.
    a.push(Label(l_sigret));
    a.push(Ld(NR));
    a.push(Jeq(SYS_RT_SIGRETURN, ALLOW, KILL));

    a.push(Label(TRAP));
    a.push(Ret(RET_TRAP));
    a.push(Label(KILL));
    a.push(Ret(RET_KILL_PROCESS));
    a.push(Label(ALLOW));
    a.push(Ret(RET_ALLOW));
    a.assemble()
}

/// Jumps to `ok` when the 64-bit argument `i` equals `v`; kills otherwise.
fn arg_is(a: &mut Asm, i: u32, v: u64, ok: usize) {
    use Ins::*;
    let next = a.label();
    a.push(Ld(arg_hi(i)));
    a.push(Jeq((v >> 32) as u32, next, KILL));
    a.push(Label(next));
    a.push(Ld(arg_lo(i)));
    a.push(Jeq(v as u32, ok, KILL));
}

/// The filter the seccomp platform's op thread installs on itself: from
/// its five sites only its own calls, with their arguments checked (see
/// [`OpSites`]); anything else, from anywhere, kills the stub. The op
/// thread reads only memory guest code cannot write, so this bounds a bug
/// in it, not guest code.
pub fn op_thread_filter(s: &OpSites) -> Vec<u8> {
    use Ins::*;
    let mut a = Asm {
        ins: Vec::new(),
        next_label: ALLOW,
    };
    let code_hi = (s.op >> 32) as u32;
    let [c1, c2, l_wait, l_op, l_done, l_wake, l_exit] = [(); 7].map(|_| a.label());
    a.push(Ld(ARCH));
    a.push(Jeq(AUDIT_ARCH_X86_64, c1, KILL));
    a.push(Label(c1));
    a.push(Ld(IP_HI));
    a.push(Jeq(code_hi, c2, KILL));
    a.push(Label(c2));
    a.push(Ld(IP_LO));
    for (ip, l) in [
        (s.wait, l_wait),
        (s.op, l_op),
        (s.done, l_done),
        (s.wake, l_wake),
        (s.exit, l_exit),
    ] {
        debug_assert_eq!((ip >> 32) as u32, code_hi);
        let next = a.label();
        a.push(Jeq(ip as u32, l, next));
        a.push(Label(next));
    }
    a.push(Jeq(0, KILL, KILL));

    // futex(ctl, FUTEX_WAIT, ...)
    a.push(Label(l_wait));
    let [w1, w2] = [(); 2].map(|_| a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_FUTEX, w1, KILL));
    a.push(Label(w1));
    arg_is(&mut a, 1, 0, w2);
    a.push(Label(w2));
    arg_is(&mut a, 0, s.ctl, ALLOW);

    // The op list: mapping calls, and taking a hot-added disk's fd:
    // recvmsg(sock, msg, RECV_FLAGS), dup2, close.
    a.push(Label(l_op));
    let [p1, p2, l_maps, l_recv] = [(); 4].map(|_| a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_RECVMSG, l_recv, p1));
    a.push(Label(p1));
    a.push(Jeq(SYS_DUP2, ALLOW, p2));
    a.push(Label(p2));
    a.push(Jeq(SYS_CLOSE, ALLOW, l_maps));
    a.push(Label(l_maps));
    op_checks(&mut a);
    a.push(Label(l_recv));
    recv_checks(&mut a, s.sock, s.msg);

    // write(efd, one, 8)
    a.push(Label(l_done));
    let [d1, d2, d3] = [(); 3].map(|_| a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_WRITE, d1, KILL));
    a.push(Label(d1));
    arg_is(&mut a, 0, s.efd as u64, d2);
    a.push(Label(d2));
    arg_is(&mut a, 1, s.one, d3);
    a.push(Label(d3));
    arg_is(&mut a, 2, 8, ALLOW);

    // futex(cmd, FUTEX_WAKE, ...)
    a.push(Label(l_wake));
    let [k1, k2] = [(); 2].map(|_| a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_FUTEX, k1, KILL));
    a.push(Label(k1));
    arg_is(&mut a, 1, 1, k2);
    a.push(Label(k2));
    arg_is(&mut a, 0, s.cmd, ALLOW);

    a.push(Label(l_exit));
    a.push(Ld(NR));
    a.push(Jeq(SYS_EXIT_GROUP, ALLOW, KILL));

    a.push(Label(TRAP));
    a.push(Ret(RET_TRAP));
    a.push(Label(KILL));
    a.push(Ret(RET_KILL_PROCESS));
    a.push(Label(ALLOW));
    a.push(Ret(RET_ALLOW));
    a.assemble()
}

/// The filter of a ptrace-platform stub: guest code never reaches it
/// (PTRACE_SYSEMU stops every guest syscall before seccomp runs), so it
/// only bounds what the stub's own op loop (`op_site`) may do under
/// PTRACE_CONT: mmap (shared, fixed, plain protections), mprotect, munmap.
/// The host's vsyscall emulation (a guest calling the legacy vsyscall page)
/// is not stopped by PTRACE_SYSEMU: its three read-only calls pass, as
/// before there was a filter. The injection site (`inject_site`: the end
/// of the `syscall` where umlrun runs one host call in a stopped stub, as
/// seccomp reports the instruction pointer) may only take a host fd
/// for a disk hot-added in ubd=mmap mode: recvmsg on the fd channel's end
/// `sock` with the header at `msg` (the scratch page), dup2, close.
/// Anything else, from anywhere, kills the stub.
pub fn ptrace_stub_filter(op_site: u64, inject_site: u64, sock: u32, msg: u64) -> Vec<u8> {
    use Ins::*;
    let mut a = Asm {
        ins: Vec::new(),
        next_label: ALLOW,
    };
    let (c1, c2, c3, l_op, l_vsys) = (a.label(), a.label(), a.label(), a.label(), a.label());
    let (c4, l_inj) = (a.label(), a.label());
    // The two sites share their high half (both in the stub page).
    debug_assert_eq!(op_site >> 32, inject_site >> 32);
    a.push(Ld(ARCH));
    a.push(Jeq(AUDIT_ARCH_X86_64, c1, KILL));
    a.push(Label(c1));
    a.push(Ld(IP_HI));
    a.push(Jeq(VSYSCALL_HI, l_vsys, c3));
    a.push(Label(c3));
    a.push(Jeq((op_site >> 32) as u32, c2, KILL));
    a.push(Label(c2));
    a.push(Ld(IP_LO));
    a.push(Jeq(op_site as u32, l_op, c4));
    a.push(Label(c4));
    a.push(Jeq(inject_site as u32, l_inj, KILL));
    a.push(Label(l_op));
    op_checks(&mut a);
    a.push(Label(l_inj));
    inject_checks(&mut a, sock, msg);
    a.push(Label(l_vsys));
    let (v1, v2) = (a.label(), a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_GETTIMEOFDAY, ALLOW, v1));
    a.push(Label(v1));
    a.push(Jeq(SYS_TIME, ALLOW, v2));
    a.push(Label(v2));
    a.push(Jeq(SYS_GETCPU, ALLOW, KILL));
    a.push(Label(TRAP));
    a.push(Ret(RET_TRAP));
    a.push(Label(KILL));
    a.push(Ret(RET_KILL_PROCESS));
    a.push(Label(ALLOW));
    a.push(Ret(RET_ALLOW));
    a.assemble()
}

/// mmap (MAP_SHARED|MAP_FIXED, PROT_* bits only), mprotect (PROT_* only),
/// munmap, each of a range (arg 0, arg 1) below 2^47 that does not touch
/// the stub area: allowed; anything else killed.
fn op_checks(a: &mut Asm) {
    use Ins::*;
    let (o1, o2, o3, o_mmap, o_prot) = (a.label(), a.label(), a.label(), a.label(), a.label());
    let (r_mmap, r_prot, r_unmap) = (a.label(), a.label(), a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_MMAP, r_mmap, o1));
    a.push(Label(o1));
    a.push(Jeq(SYS_MPROTECT, r_prot, o2));
    a.push(Label(o2));
    a.push(Jeq(SYS_MUNMAP, r_unmap, KILL));
    a.push(Label(r_mmap));
    outside_stub_area(a, o_mmap);
    a.push(Label(r_prot));
    outside_stub_area(a, o_prot);
    a.push(Label(r_unmap));
    outside_stub_area(a, ALLOW);
    a.push(Label(o_mmap));
    a.push(Ld(arg_lo(3)));
    a.push(Jeq(MAP_SHARED_FIXED, o3, KILL));
    a.push(Label(o3));
    a.push(Label(o_prot));
    a.push(Ld(arg_lo(2)));
    a.push(Jset(!7, KILL, ALLOW));
}

/// Goes on to `ok` if the range [arg 0, arg 0 + arg 1) lies below 2^47 and
/// outside [`STUB_BASE`]..[`STUB_AREA_END`]; kills otherwise. The end is
/// computed in two 32-bit halves with the carry (classic BPF has no 64-bit
/// arithmetic); both halves of the start and of the length are first
/// bounded by 2^47, so the high half cannot overflow.
fn outside_stub_area(a: &mut Asm, ok: usize) {
    use Ins::*;
    const USER_HI_MAX: u32 = 0x7fff;
    let (g0_hi, g0_lo) = ((STUB_BASE >> 32) as u32, STUB_BASE as u32);
    let (g1_hi, g1_lo) = ((STUB_AREA_END >> 32) as u32, STUB_AREA_END as u32);
    let [b1, b2, b3, b4, b5, end] = [(); 6].map(|_| a.label());
    let [carry, nocarry, addhi, hi_eq, lo_cmp] = [(); 5].map(|_| a.label());
    a.push(Ld(arg_hi(0)));
    a.push(Jgt(USER_HI_MAX, KILL, b1));
    a.push(Label(b1));
    a.push(Ld(arg_hi(1)));
    a.push(Jgt(USER_HI_MAX, KILL, b2));
    a.push(Label(b2));
    // start >= STUB_AREA_END: above the area.
    a.push(Ld(arg_hi(0)));
    a.push(Jgt(g1_hi, ok, b3));
    a.push(Label(b3));
    a.push(Jeq(g1_hi, b4, end));
    a.push(Label(b4));
    a.push(Ld(arg_lo(0)));
    a.push(Jgt(g1_lo.wrapping_sub(1), ok, end)); // lo >= g1_lo (g1_lo > 0)
                                                 // end = start + len; end <= STUB_BASE: below the area.
    a.push(Label(end));
    a.push(Ld(arg_lo(0)));
    a.push(Tax);
    a.push(Ld(arg_lo(1)));
    a.push(AddX);
    a.push(St(0)); // low half of the end
    a.push(JgeX(nocarry, carry));
    a.push(Label(carry));
    a.push(Ld(arg_hi(0)));
    a.push(AddK(1));
    a.push(Jeq(0, addhi, addhi));
    a.push(Label(nocarry));
    a.push(Ld(arg_hi(0)));
    a.push(Label(addhi));
    a.push(St(1));
    a.push(Ld(arg_hi(1)));
    a.push(Tax);
    a.push(LdMem(1));
    a.push(AddX); // high half of the end
    a.push(Jgt(g0_hi, KILL, b5));
    a.push(Label(b5));
    a.push(Jeq(g0_hi, hi_eq, ok));
    a.push(Label(hi_eq));
    a.push(LdMem(0));
    a.push(Jgt(g0_lo, KILL, lo_cmp));
    a.push(Label(lo_cmp));
    a.push(Jeq(0, ok, ok));
}

/// At the injection site: recvmsg as [`recv_checks`] allows, dup2,
/// close; anything else killed.
fn inject_checks(a: &mut Asm, sock: u32, msg: u64) {
    use Ins::*;
    let (i1, i2, i_recv) = (a.label(), a.label(), a.label());
    a.push(Ld(NR));
    a.push(Jeq(SYS_RECVMSG, i_recv, i1));
    a.push(Label(i1));
    a.push(Jeq(SYS_DUP2, ALLOW, i2));
    a.push(Label(i2));
    a.push(Jeq(SYS_CLOSE, ALLOW, KILL));
    a.push(Label(i_recv));
    recv_checks(a, sock, msg);
}

/// recvmsg(`sock`, `msg`, `host::fdpass::RECV_FLAGS`), every argument in
/// full (both halves): allowed; any other socket, header or flags
/// killed. What the header points at seccomp cannot see: umlrun writes
/// it right before the call, in a page only the stub itself shares.
fn recv_checks(a: &mut Asm, sock: u32, msg: u64) {
    let (r1, r2) = (a.label(), a.label());
    arg_is(a, 0, sock as u64, r1);
    a.push(Ins::Label(r1));
    arg_is(a, 1, msg, r2);
    a.push(Ins::Label(r2));
    arg_is(a, 2, crate::host::fdpass::RECV_FLAGS, ALLOW);
}

/// Test helpers shared with `host_filter`'s tests.
#[cfg(test)]
pub(super) mod bpf {
    /// A classic-BPF interpreter for the few instructions the filters use.
    pub fn run(prog: &[u8], data: &[u8; 64]) -> u32 {
        let word =
            |off: u32| u32::from_le_bytes(data[off as usize..off as usize + 4].try_into().unwrap());
        let mut pc = 0usize;
        let mut acc = 0u32;
        let mut x = 0u32;
        let mut mem = [0u32; 16];
        loop {
            let r = &prog[pc * 8..pc * 8 + 8];
            let code = u16::from_le_bytes([r[0], r[1]]);
            let (jt, jf) = (r[2] as usize, r[3] as usize);
            let k = u32::from_le_bytes(r[4..8].try_into().unwrap());
            pc += 1;
            match code {
                0x20 => acc = word(k),
                0x15 => pc += if acc == k { jt } else { jf },
                0x45 => pc += if acc & k != 0 { jt } else { jf },
                0x25 => pc += if acc > k { jt } else { jf },
                0x3d => pc += if acc >= x { jt } else { jf },
                0x02 => mem[k as usize] = acc,
                0x60 => acc = mem[k as usize],
                0x07 => x = acc,
                0x0c => acc = acc.wrapping_add(x),
                0x04 => acc = acc.wrapping_add(k),
                0x06 => return k,
                0x05 => pc += k as usize,
                _ => panic!("unknown op {code:#x}"),
            }
        }
    }

    pub fn data(nr: u32, arch: u32, ip: u64, args: [u64; 6]) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&nr.to_le_bytes());
        d[4..8].copy_from_slice(&arch.to_le_bytes());
        d[8..16].copy_from_slice(&ip.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::bpf::{data, run};
    use super::*;

    const BASE: u64 = 0x7fff_fc00_0400;
    fn sites() -> StubSites {
        StubSites {
            futex: [BASE + 0x30, BASE + 0x50],
            sigreturn: [BASE + 0xa0, BASE + 0xb0],
            futex_words: [0x7fff_fc01_0000, 0x7fff_fc01_0004],
        }
    }

    fn op_sites() -> OpSites {
        OpSites {
            wait: BASE + 0x120,
            op: BASE + 0x140,
            done: BASE + 0x160,
            wake: BASE + 0x180,
            exit: BASE + 0x1a0,
            ctl: 0x7fff_fc01_1000,
            cmd: 0x7fff_fc01_0000,
            one: 0x7fff_fc01_1010,
            efd: 7,
            sock: 9,
            msg: 0x7fff_fc01_0000,
        }
    }

    #[test]
    fn guest_syscalls_trap_in_every_abi() {
        let p = stub_filter(&sites());
        let x64 = AUDIT_ARCH_X86_64;
        assert_eq!(run(&p, &data(2, x64, 0x40_1000, [0; 6])), RET_TRAP);
        assert_eq!(run(&p, &data(5, 0x4000_0003, 0x40_1000, [0; 6])), RET_TRAP);
        assert_eq!(
            run(&p, &data(0x4000_0002, x64, 0x40_1000, [0; 6])),
            RET_TRAP
        );
        // the stub's own page, but not one of its syscall sites
        assert_eq!(run(&p, &data(2, x64, BASE + 0x10, [0; 6])), RET_TRAP);
        // the same low 32 bits in another 4 GiB
        assert_eq!(
            run(&p, &data(2, x64, (BASE + 0x80) & 0xffff_ffff, [0; 6])),
            RET_TRAP
        );
    }

    #[test]
    fn stub_sites_allow_only_their_calls() {
        let s = sites();
        let p = stub_filter(&s);
        let x64 = AUDIT_ARCH_X86_64;
        let ok = |nr, ip, args| run(&p, &data(nr, x64, ip, args)) == RET_ALLOW;
        let w = s.futex_words;
        assert!(ok(202, s.futex[0], [w[1], 1, 1, 0, 0, 0]));
        assert!(ok(202, s.futex[1], [w[0], 0, 0, 0, 0, 0]));
        assert!(!ok(202, s.futex[1], [w[0] + 8, 0, 0, 0, 0, 0]));
        assert!(!ok(202, s.futex[1], [w[0], 9, 0, 0, 0, 0]));
        assert!(!ok(2, s.futex[0], [0; 6])); // open from a futex site
        assert!(!ok(9, s.futex[0], [0x1000, 0x1000, 3, 0x11, 5, 0]));
        assert!(ok(15, s.sigreturn[0], [0; 6]));
        assert!(ok(15, s.sigreturn[1], [0; 6]));
        assert!(!ok(2, s.sigreturn[0], [0; 6]));
        assert!(!ok(9, s.sigreturn[1], [0x1000, 0x1000, 3, 0x11, 5, 0]));
    }

    /// The guest thread can change no mapping, from anywhere: every mmap,
    /// mprotect and munmap traps (to the guest kernel) from guest code and
    /// from the op thread's sites; from the handler's sites it kills.
    #[test]
    fn guest_thread_maps_nothing() {
        let s = sites();
        let p = stub_filter(&s);
        let o = op_sites();
        let x64 = AUDIT_ARCH_X86_64;
        for (nr, args) in [
            (9, [0x1000, 0x1000, 1, 0x11, 5, 0]),
            (10, [0x1000, 0x1000, 7, 0, 0, 0]),
            (11, [0x1000, 0x1000, 0, 0, 0, 0]),
            (1, [o.efd as u64, o.one, 8, 0, 0, 0]),
            (231, [0; 6]),
        ] {
            for ip in [0x40_1000, o.wait, o.op, o.done, o.wake, o.exit] {
                assert_eq!(
                    run(&p, &data(nr, x64, ip, args)),
                    RET_TRAP,
                    "{nr} at {ip:#x}"
                );
            }
            for ip in [s.futex[0], s.futex[1], s.sigreturn[0], s.sigreturn[1]] {
                assert_eq!(run(&p, &data(nr, x64, ip, args)), RET_KILL_PROCESS);
            }
        }
    }

    /// recvmsg argument sets that must kill: another socket, header or
    /// flags, or a right low half with a wrong high half.
    fn recv_misuses(sock: u64, msg: u64) -> Vec<[u64; 6]> {
        let f = crate::host::fdpass::RECV_FLAGS;
        vec![
            [sock + 1, msg, f, 0, 0, 0],       // another fd
            [sock | 1 << 32, msg, f, 0, 0, 0], // its high half
            [sock, msg + 8, f, 0, 0, 0],       // another header
            [sock, 0x40_0000, f, 0, 0, 0],     // guest memory
            [sock, msg ^ 1 << 40, f, 0, 0, 0],
            [sock, msg, 0, 0, 0, 0],               // blocking
            [sock, msg, f | 0x4000_0000, 0, 0, 0], // MSG_CMSG_CLOEXEC
            [sock, msg, f | 0x2, 0, 0, 0],         // MSG_PEEK
            [sock, msg, f | 1 << 32, 0, 0, 0],     // high half
        ]
    }

    #[test]
    fn op_thread_allows_only_its_calls() {
        let o = op_sites();
        let p = op_thread_filter(&o);
        let x64 = AUDIT_ARCH_X86_64;
        let r = |nr, ip, args| run(&p, &data(nr, x64, ip, args));
        assert_eq!(r(202, o.wait, [o.ctl, 0, 4, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(202, o.wait, [o.ctl, 1, 4, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(202, o.wait, [o.cmd, 0, 4, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(
            r(202, o.wait, [o.ctl ^ (1 << 33), 0, 0, 0, 0, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(r(202, o.wake, [o.cmd, 1, 1, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(202, o.wake, [o.ctl, 1, 1, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(202, o.wake, [o.cmd, 0, 1, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(1, o.done, [o.efd as u64, o.one, 8, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(1, o.done, [1, o.one, 8, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(
            r(1, o.done, [o.efd as u64, 0x1000, 8, 0, 0, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(
            r(1, o.done, [o.efd as u64, o.one, 4096, 0, 0, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(r(231, o.exit, [12, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(60, o.exit, [12, 0, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(9, o.op, [0x1000, 0x1000, 3, 0x11, 5, 0]), RET_ALLOW);
        assert_eq!(
            r(9, o.op, [0x1000, 0x1000, 3, 0x22, 5, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(
            r(9, o.op, [0x1000, 0x1000, 0x10, 0x11, 5, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(r(10, o.op, [0x1000, 0x1000, 5, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(11, o.op, [0x1000, 0x1000, 0, 0, 0, 0]), RET_ALLOW);
        for nr in [0, 1, 2, 56, 57, 59, 257, 322] {
            assert_eq!(r(nr, o.op, [0; 6]), RET_KILL_PROCESS);
        }
        // Taking a hot-added disk's fd: recvmsg on the channel's end with
        // the one header and flags; then dup2 and close.
        let f = crate::host::fdpass::RECV_FLAGS;
        let sock = o.sock as u64;
        assert_eq!(r(47, o.op, [sock, o.msg, f, 0, 0, 0]), RET_ALLOW);
        for bad in recv_misuses(sock, o.msg) {
            assert_eq!(r(47, o.op, bad), RET_KILL_PROCESS, "{bad:x?}");
        }
        assert_eq!(r(47, o.wait, [sock, o.msg, f, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(47, o.done, [sock, o.msg, f, 0, 0, 0]), RET_KILL_PROCESS);
        // No open of any path any more.
        let cwd = -100i64 as u64;
        assert_eq!(r(257, o.op, [cwd, o.msg, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(33, o.op, [9, 12, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(3, o.op, [9, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(33, o.done, [9, 12, 0, 0, 0, 0]), RET_KILL_PROCESS);
        // Anywhere else, any call: killed (no trap to a handler).
        assert_eq!(
            r(9, 0x40_1000, [0x1000, 0x1000, 3, 0x11, 5, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(r(39, o.op + 2, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(
            run(
                &p,
                &data(9, 0x4000_0003, o.op, [0x1000, 0x1000, 3, 0x11, 5, 0])
            ),
            RET_KILL_PROCESS
        );
    }

    /// The op loop may not touch the stub area, on either platform: every
    /// op whose range overlaps STUB_BASE..STUB_AREA_END, or leaves the
    /// 47-bit user range, kills the stub; ranges just below and above pass.
    #[test]
    fn op_loop_cannot_touch_the_stub_area() {
        let s = op_sites();
        let sc = op_thread_filter(&s);
        let pt = ptrace_stub_filter(BASE + 0x42, BASE + 0x10, 9, BASE + 0x5000);
        let x64 = AUDIT_ARCH_X86_64;
        let top = 0x7fff_ffff_f000u64;
        let cases: [(u64, u64, bool); 14] = [
            (0x1000, 0x1000, true),
            (0, STUB_BASE, true),
            (STUB_BASE - 0x1000, 0x1000, true),
            (STUB_AREA_END, top - STUB_AREA_END, true),
            (0x7fff_f7ff_0000, 0x4000, true),
            (STUB_BASE - 0x1000, 0x2000, false),
            (STUB_BASE, 0x1000, false),
            (STUB_BASE + 0x1000, 0x3000, false),
            (STUB_AREA_END - 0x1000, 0x1000, false),
            (0x1000, STUB_BASE, false),
            (0, top, false),
            // a 64-bit wrap-around and the low-half carry
            (0x1000, u64::MAX - 0xfff, false),
            (0x7fff_fbff_f000, 0x1_0000_2000, false),
            (STUB_AREA_END + (1 << 32), 0x1000, false),
        ];
        for (addr, len, allowed) in cases {
            for (nr, args) in [
                (9, [addr, len, 3, 0x11, 5, 0]),
                (10, [addr, len, 7, 0, 0, 0]),
                (11, [addr, len, 0, 0, 0, 0]),
            ] {
                for (p, ip) in [(&sc, s.op), (&pt, BASE + 0x42)] {
                    let want = if allowed { RET_ALLOW } else { RET_KILL_PROCESS };
                    assert_eq!(
                        run(p, &data(nr, x64, ip, args)),
                        want,
                        "nr {nr} {addr:#x}+{len:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn ptrace_stub_filter_allows_only_the_op_loop() {
        let site = BASE + 0x42;
        let inject = BASE + 0x10;
        let (sock, msg) = (11u64, BASE + 0x5000);
        let p = ptrace_stub_filter(site, inject, sock as u32, msg);
        let x64 = AUDIT_ARCH_X86_64;
        let r = |nr, ip, args| run(&p, &data(nr, x64, ip, args));
        assert_eq!(r(9, site, [0x1000, 0x1000, 1, 0x11, 3, 0]), RET_ALLOW);
        assert_eq!(r(11, site, [0x1000, 0x1000, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(10, site, [0x1000, 0x1000, 7, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(2, site, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(r(11, site + 2, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(r(2, 0x40_1000, [0; 6]), RET_KILL_PROCESS);
        // The injection site: recvmsg on the channel with the one header
        // and flags, dup2 and close only.
        let f = crate::host::fdpass::RECV_FLAGS;
        assert_eq!(r(47, inject, [sock, msg, f, 0, 0, 0]), RET_ALLOW);
        for bad in recv_misuses(sock, msg) {
            assert_eq!(r(47, inject, bad), RET_KILL_PROCESS, "{bad:x?}");
        }
        assert_eq!(r(47, site, [sock, msg, f, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(257, inject, [0, 0x1000, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(2, inject, [0x1000, 0, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(r(33, inject, [5, 16, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(r(3, inject, [5, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            r(9, inject, [0x1000, 0x1000, 1, 0x11, 3, 0]),
            RET_KILL_PROCESS
        );
        assert_eq!(r(59, inject, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(
            run(&p, &data(5, 0x4000_0003, site, [0; 6])),
            RET_KILL_PROCESS
        );
    }
}
