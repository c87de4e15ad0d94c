//! Property test: the running mapped total (`AddressSpace::total_vm`)
//! equals the walk over every VMA after any sequence of the operations
//! that change VMAs (mmap, munmap, brk, mremap's move and growth,
//! mprotect and mlock splits and merges, fork, exec's clear).

use std::sync::Arc;

use proptest::prelude::*;

use super::aspace::AddressSpace;
use super::frames::FrameRefs;
use super::types::*;
use super::vma::{Backing, Lock, Vma};
use crate::physmem::PhysMem;

/// Addresses are pages [BASE/PAGE, BASE/PAGE + SPAN) so that operations
/// often meet each other's VMAs.
const BASE: u64 = 0x10_0000_0000;
const SPAN: u64 = 64;

#[derive(Debug, Clone)]
enum Op {
    Map {
        at: u64,
        len: u64,
        prot: u32,
    },
    Unmap {
        at: u64,
        len: u64,
    },
    Brk {
        to: u64,
    },
    Move {
        at: u64,
        len: u64,
        to: u64,
        new_len: u64,
    },
    Grow {
        at: u64,
        len: u64,
        extra: u64,
    },
    Protect {
        at: u64,
        len: u64,
        prot: u32,
    },
    Lock {
        at: u64,
        len: u64,
        on: bool,
    },
    Fork,
    Clear,
}

fn va(page: u64) -> GuestVirt {
    GuestVirt(BASE + page * PAGE)
}

fn op() -> impl Strategy<Value = Op> {
    let page = 0..SPAN;
    let len = 1..16u64;
    let prot = prop_oneof![
        Just(PROT_READ),
        Just(PROT_READ | PROT_WRITE),
        Just(PROT_NONE)
    ];
    prop_oneof![
        4 => (page.clone(), len.clone(), prot.clone()).prop_map(|(at, len, prot)| Op::Map { at, len, prot }),
        2 => (page.clone(), len.clone()).prop_map(|(at, len)| Op::Unmap { at, len }),
        1 => (0..SPAN + 8).prop_map(|to| Op::Brk { to }),
        1 => (page.clone(), len.clone(), page.clone(), len.clone())
            .prop_map(|(at, len, to, new_len)| Op::Move { at, len, to, new_len }),
        1 => (page.clone(), len.clone(), len.clone()).prop_map(|(at, len, extra)| Op::Grow { at, len, extra }),
        1 => (page.clone(), len.clone(), prot).prop_map(|(at, len, prot)| Op::Protect { at, len, prot }),
        1 => (page, len, any::<bool>()).prop_map(|(at, len, on)| Op::Lock { at, len, on }),
        1 => Just(Op::Fork),
        1 => Just(Op::Clear),
    ]
}

fn walk(a: &AddressSpace) -> u64 {
    a.vmas().map(|v| v.len()).sum()
}

fn anon_vma(start: GuestVirt, end: GuestVirt, prot: u32) -> Vma {
    Vma {
        start,
        end,
        prot,
        shared: false,
        may_write: true,
        backing: Backing::Anon,
        label: None,
        lock: Lock::None,
        write_ref: None,
    }
}

fn apply(a: &mut AddressSpace, op: &Op, anon: &mut FrameRefs, pm: &PhysMem) {
    match *op {
        Op::Map { at, len, prot } => a.insert_vma(anon_vma(va(at), va(at + len), prot), anon),
        Op::Unmap { at, len } => a.unmap_range(va(at), va(at + len), anon),
        Op::Brk { to } => {
            a.set_brk(va(SPAN).get() + to * PAGE, anon);
        }
        Op::Move {
            at,
            len,
            to,
            new_len,
        } => {
            // Errors (a hole, a busy target) change nothing.
            let _ = a.move_range(va(at), len * PAGE, va(to), new_len * PAGE, anon);
        }
        Op::Grow { at, len, extra } => {
            a.grow_in_place(va(at), va(at + len), extra * PAGE);
        }
        Op::Protect { at, len, prot } => {
            let _ = a.protect(va(at), va(at + len), prot, pm);
        }
        Op::Lock { at, len, on } => {
            let lock = if on { Lock::OnFault } else { Lock::None };
            let _ = a.set_lock(va(at), va(at + len), lock);
        }
        Op::Fork => {
            let child = a.fork(anon, pm);
            assert_eq!(child.total_vm(), walk(&child), "forked child");
        }
        Op::Clear => a.clear(anon),
    }
}

proptest! {
    #[test]
    fn total_vm_matches_the_walk(ops in proptest::collection::vec(op(), 1..60)) {
        let pm = Arc::new(PhysMem::new(64 * PAGE).unwrap());
        let mut anon = FrameRefs::new(pm.clone());
        let mut a = AddressSpace::new();
        a.brk_start = va(SPAN).get();
        a.brk = a.brk_start;
        for (i, op) in ops.iter().enumerate() {
            apply(&mut a, op, &mut anon, &pm);
            prop_assert_eq!(a.total_vm(), walk(&a), "after op {} ({:?})", i, op);
        }
    }
}
