//! Guest programs for the fake platform: a few instructions, enough to make
//! syscalls with chosen arguments, branch on results (fork's 0 in the
//! child), touch memory (page faults), spin (preemption) and return from
//! signal handlers.
//!
//! Instruction `i` sits at guest address `CODE_BASE + 2 * i`: the
//! `syscall` instruction is two bytes long on x86-64, and the kernel
//! restarts a syscall by moving rip back by 2, so a restarted [`Insn::Syscall`]
//! runs again with the registers the kernel left, as on a real CPU.

/// Where instruction 0 sits in the guest's address space.
pub const CODE_BASE: u64 = 0x1000_0000;

/// A register the programs use: `rax` (results) and the callee-saved
/// r12-r15 (kept across syscalls, for values like a fd or a pid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum R {
    Rax,
    R12,
    R13,
    R14,
    R15,
}

/// An operand: a constant or a register's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    Imm(u64),
    Reg(R),
}

impl From<u64> for Val {
    fn from(v: u64) -> Val {
        Val::Imm(v)
    }
}

impl From<R> for Val {
    fn from(r: R) -> Val {
        Val::Reg(r)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// rax = nr and the six argument registers; runs on without a stop.
    Load(u64, [Val; 6]),
    /// `syscall`: stops with the number in rax (orig_rax) and the argument
    /// registers; resumes after it with the result in rax.
    Syscall,
    /// A register gets a value.
    Mov(R, Val),
    /// Jump to the instruction if rax is 0.
    Jz(usize),
    /// Jump to the instruction if rax, as a signed value, is negative.
    Jneg(usize),
    Jmp(usize),
    /// A memory access: faults unless the page is mapped so.
    Touch {
        addr: u64,
        write: bool,
    },
    /// Marks a signal handler's first instruction: the trace notes the
    /// entry with the signal number (rdi). Otherwise does nothing.
    Handler,
    /// `ret` at the end of a signal handler whose return address (pushed
    /// by the kernel, the sa_restorer given) is this instruction: rsp goes
    /// up by 8 and execution goes on there.
    RetTo(usize),
}

/// A program: instructions, built in order.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub insns: Vec<Insn>,
}

impl Program {
    pub fn new() -> Program {
        Program::default()
    }

    /// Where instruction `i` sits.
    pub fn addr(i: usize) -> u64 {
        CODE_BASE + 2 * i as u64
    }

    /// Which instruction sits at `rip`, if one does.
    pub fn index(&self, rip: u64) -> Option<usize> {
        let off = rip.checked_sub(CODE_BASE)?;
        let i = usize::try_from(off / 2).ok()?;
        (off % 2 == 0 && i < self.insns.len()).then_some(i)
    }

    /// The index the next instruction will get (a label).
    pub fn here(&self) -> usize {
        self.insns.len()
    }

    pub fn push(&mut self, i: Insn) -> usize {
        self.insns.push(i);
        self.insns.len() - 1
    }

    /// A syscall with up to six arguments (the rest 0). Returns the index
    /// of its [`Insn::Syscall`], the one the trace names.
    pub fn sys(&mut self, nr: u64, args: &[Val]) -> usize {
        let mut a = [Val::Imm(0); 6];
        a[..args.len()].copy_from_slice(args);
        self.push(Insn::Load(nr, a));
        self.push(Insn::Syscall)
    }

    /// Points the jump at `at` to `target`.
    pub fn set_target(&mut self, at: usize, target: usize) {
        match &mut self.insns[at] {
            Insn::Jz(t) | Insn::Jneg(t) | Insn::Jmp(t) | Insn::RetTo(t) => *t = target,
            other => panic!("instruction {at} ({other:?}) is not a jump"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_indices_agree() {
        let mut p = Program::new();
        let s = p.sys(39, &[]);
        assert_eq!(s, 1);
        assert_eq!(p.index(Program::addr(s)), Some(1));
        assert_eq!(p.index(Program::addr(s) + 1), None);
        assert_eq!(p.index(Program::addr(2)), None);
        assert_eq!(p.index(0), None);
    }
}
