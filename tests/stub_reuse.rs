//! Reusing a stub (`PtraceStub::recycle`): a recycled stub holds no guest
//! mapping, has fresh registers and FPU state, and runs a new program
//! exactly like a fresh stub.

mod platform_support;

use platform_support::*;
use umlrun::platform::{AddressSpaceOps, Context, FpRegs, Prot, PtraceStub, StubOptions};

/// /proc/PID/maps lines below the host's kernel half, without the inode
/// columns that differ between processes.
fn user_maps(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("[vsyscall]"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", c[0], c[1], c.get(5).unwrap_or(&""))
        })
        .collect()
}

#[test]
fn recycled_stub_has_no_guest_mappings_and_fresh_state() {
    let fd = memfd();
    let opts = StubOptions {
        keep_fds: &[fd],
        cpu: None,
    };
    let mut fresh = PtraceStub::spawn(opts).unwrap();
    let mut stub = PtraceStub::spawn(opts).unwrap();
    let want_maps = user_maps(fresh.pid());
    let want_fp = fresh.fpregs().unwrap();
    let want_regs = *stub.regs();

    // Dirty it: guest mappings of a memfd, anonymous host-side state in
    // the FPU/SSE registers, and changed registers.
    stub.map(span(0x1000_0000, 0x3000), Prot::RW, fd, off(0))
        .unwrap();
    stub.map(span(0x5555_0000_0000, 0x1000), Prot::RX, fd, off(0))
        .unwrap();
    stub.map(span(0x7fff_e000_0000, 0x1000), Prot::R, fd, off(0))
        .unwrap();
    let mut fp = stub.fpregs().unwrap();
    fp.bytes_mut()[160..416].fill(0xa5); // xmm0..xmm15
    fp.bytes_mut()[0..2].copy_from_slice(&0x027fu16.to_le_bytes()); // FCW
    if fp.is_xsave() && fp.len() >= 832 {
        // The upper halves of ymm0..ymm15 (standard XSAVE layout).
        fp.bytes_mut()[576..832].fill(0x5a);
        fp.set_xstate_bv(fp.xstate_bv() | 0b111);
    }
    stub.set_fpregs(&fp).unwrap();
    assert_eq!(stub.fpregs().unwrap(), fp);
    stub.regs_mut().fs_base = 0x1234_5000;
    stub.regs_mut().r12 = 99;
    assert_ne!(user_maps(stub.pid()), want_maps);

    stub.recycle().unwrap();
    assert_eq!(user_maps(stub.pid()), want_maps, "guest mappings left");
    assert_eq!(
        fp_values(&stub.fpregs().unwrap()),
        fp_values(&want_fp),
        "FPU state left"
    );
    assert_eq!(*stub.regs(), want_regs);
    assert_eq!(stub.reserved(), fresh.reserved());
    assert_eq!(stub.cpu_ticks(), (0, 0));
    // Still usable for mappings.
    stub.map(span(0x1000_0000, 0x1000), Prot::R, fd, off(0))
        .unwrap();
    fresh.kill();
    stub.kill();
    // SAFETY: closing the memfd this test created.
    unsafe { libc::close(fd) };
}

/// The register values an FP image stands for: x87 control word, MXCSR,
/// xmm0-15 and the ymm upper halves. A component whose XSTATE_BV bit is
/// clear holds its init value whatever its bytes say; the CPU may also
/// report a component in its init state as in use (XSAVE's init
/// optimisation is allowed, not promised), so the bits are not compared.
fn fp_values(fp: &FpRegs) -> (u16, u32, Vec<u8>, Vec<u8>) {
    let b = fp.bytes();
    let bv = if fp.is_xsave() { fp.xstate_bv() } else { 0b11 };
    let fcw = if bv & 1 != 0 {
        u16::from_le_bytes([b[0], b[1]])
    } else {
        0x037f
    };
    let xmm = if bv & 2 != 0 {
        b[160..416].to_vec()
    } else {
        vec![0; 256]
    };
    let ymm = if bv & 4 != 0 && b.len() >= 832 {
        b[576..832].to_vec()
    } else {
        vec![0; 256]
    };
    (fcw, fp.mxcsr(), xmm, ymm)
}

fn memfd() -> i32 {
    // SAFETY: plain libc calls; results checked.
    unsafe {
        let fd = libc::memfd_create(c"stub-reuse".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 0x10000), 0);
        fd
    }
}

#[test]
fn recycled_stub_runs_a_new_program_like_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("hello_glibc.c", dir.path(), &["-static", "-O1"]);
    let (want, want_code) = native(&bin, &["again"]);
    let mut g = load(&bin, &["hello_glibc", "first"], None);
    g.keep_stub = true;
    let first = g.run();
    assert_eq!(first, Exit::Code(want_code));
    // Reuse the same stub for a second run of the program.
    let (mut stub, mem) = g.into_parts();
    stub.recycle().unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", stub.pid())).unwrap();
    assert!(
        !maps.contains("test-physmem"),
        "guest mappings left:\n{maps}"
    );
    let mut g2 = load_in(&bin, &["hello_glibc", "again"], stub, mem);
    assert_eq!(g2.run(), Exit::Code(want_code));
    assert_eq!(
        String::from_utf8_lossy(&g2.out),
        String::from_utf8_lossy(&want)
    );
}
