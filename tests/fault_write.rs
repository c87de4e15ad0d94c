//! The ptrace platform tells writes from reads on SEGV_MAPERR faults by
//! looking at the faulting instruction (ptrace's siginfo does not say).

mod platform_support;

use platform_support::*;
use umlrun::platform::{AddressSpaceOps, Context, Prot, Stop};

const RAW_FLAGS: &[&str] = &["-static", "-nostdlib", "-O1", "-fno-stack-protector"];
const CODE: u64 = 0x1234_5000;

fn fault_of(g: &mut Guest, rip: u64) -> umlrun::platform::Fault {
    g.stub.regs_mut().rip = rip;
    match g.stub.switch().unwrap() {
        Stop::Fault(f) => f,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn maperr_faults_say_write_only_for_stores() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("hello_raw.c", dir.path(), RAW_FLAGS);
    let mut g = load(&bin, &["hello_raw"], None);
    // A code page: mov %eax,(%rax); mov (%rbx),%eax; addq $4,(%rcx);
    // cmpl $0,(%rdx); push %rbp.
    let off = g.mem.page(CODE, Prot::RX);
    let code = [
        0x89, 0x00, 0x8B, 0x03, 0x48, 0x83, 0x01, 0x04, 0x83, 0x3A, 0x00, 0x55,
    ];
    assert!(g.mem.write(CODE, &code));
    g.stub
        .map(span(CODE, PAGE), Prot::RX, g.mem.fd, self::off(off))
        .unwrap();
    let r = g.stub.regs_mut();
    r.rax = 0x2000_0000;
    r.rbx = 0x2000_1000;
    r.rcx = 0x2000_2008;
    r.rdx = 0x2000_3010;
    r.rsp = 0x2000_4000;

    let f = fault_of(&mut g, CODE);
    assert!(f.is_maperr(), "{f:?}");
    assert_eq!((f.addr, f.write), (0x2000_0000, Some(true)));
    let f = fault_of(&mut g, CODE + 2);
    assert_eq!((f.addr, f.write), (0x2000_1000, None));
    let f = fault_of(&mut g, CODE + 4);
    assert_eq!((f.addr, f.write), (0x2000_2008, Some(true)));
    let f = fault_of(&mut g, CODE + 8);
    assert_eq!((f.addr, f.write), (0x2000_3010, None));
    let f = fault_of(&mut g, CODE + 11);
    assert_eq!((f.addr, f.write), (0x2000_3ff8, Some(true)));
    // An instruction fetch from an unmapped page is not a write.
    let f = fault_of(&mut g, 0x3000_0000);
    assert_eq!((f.addr, f.write), (0x3000_0000, None));
    g.stub.kill();
}
