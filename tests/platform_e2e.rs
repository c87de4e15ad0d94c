//! End to end on the ptrace platform: real static binaries loaded by the
//! loader into a memfd, run in a stub under SYSEMU, syscalls served by a toy
//! kernel; output compared with the same program run natively.

mod platform_support;

use platform_support::*;
use umlrun::platform::{AddressSpaceOps, Context, Prot, PtraceStub, Stop, StubOptions};

const RAW_FLAGS: &[&str] = &["-static", "-nostdlib", "-O1", "-fno-stack-protector"];

#[test]
fn raw_hello_matches_native_and_stack_is_demand_paged() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("hello_raw.c", dir.path(), RAW_FLAGS);
    let (want, want_code) = native(&bin, &["world"]);
    let mut g = load(&bin, &["hello_raw", "world"], None);
    let exit = g.run();
    assert_eq!(exit, Exit::Code(want_code));
    assert_eq!(
        String::from_utf8_lossy(&g.out),
        String::from_utf8_lossy(&want)
    );
    // The stack was left unmapped: the first touch faulted in below STACK_TOP.
    assert!(!g.faults.is_empty(), "no demand-paging fault");
    assert!(g
        .faults
        .iter()
        .all(|&a| (STACK_TOP - STACK_PAGES * PAGE..STACK_TOP).contains(&a)));
}

#[test]
fn raw_open_never_reaches_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("rawopen.c", dir.path(), RAW_FLAGS);
    let victim = dir.path().join("created-by-guest");
    let victim_s = victim.to_str().unwrap().to_string();
    let mut g = load(&bin, &["rawopen", &victim_s], None);
    let memfd = g.mem.fd;
    let mut paths = Vec::new();
    let mut stub_fds = Vec::new();
    let exit = g.run_with(&mut |g, nr, a| {
        if nr != 2 {
            return None;
        }
        paths.push(g.mem.read_cstr(a[0]).unwrap());
        // The stub's fd table at this stop: only what we gave it.
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", g.stub.pid()))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        stub_fds.push(fds);
        Some(if paths.len() == 1 { 42 } else { -13 })
    });
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(
        paths,
        vec![b"/etc/hostname".to_vec(), victim_s.as_bytes().to_vec()]
    );
    // The guest saw only the harness's answers.
    assert_eq!(String::from_utf8_lossy(&g.out), "42\n-13\n");
    // Nothing was opened or created on the host.
    assert!(!victim.exists(), "guest O_CREAT reached the host");
    // The stub holds guest memory and its end of the fd channel (how a
    // hot-added disk's fd reaches it), nothing else.
    let channel = umlrun::host::fdpass::channel().unwrap().stub_end();
    let mut want = vec![memfd.to_string(), channel.to_string()];
    want.sort();
    for mut fds in stub_fds {
        fds.sort();
        assert_eq!(fds, want);
    }
}

#[test]
fn glibc_static_hello_matches_native() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("hello_glibc.c", dir.path(), &["-static", "-O1"]);
    let (want, want_code) = native(&bin, &["world"]);
    let mut g = load(&bin, &["hello_glibc", "world"], None);
    let exit = g.run();
    assert_eq!(
        exit,
        Exit::Code(want_code),
        "unknown syscalls: {:?}",
        g.unknown
    );
    assert_eq!(
        String::from_utf8_lossy(&g.out),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn static_pie_hello_runs_at_a_bias() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("hello_glibc.c", dir.path(), &["-static-pie", "-O1"]);
    let (want, want_code) = native(&bin, &["pie"]);
    let mut g = load(&bin, &["hello_glibc", "pie"], None);
    assert_eq!(
        g.run(),
        Exit::Code(want_code),
        "unknown syscalls: {:?}",
        g.unknown
    );
    assert_eq!(g.out, want);
}

#[test]
fn faults_report_maperr_and_accerr() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest("hello_raw.c", dir.path(), RAW_FLAGS);
    let mut g = load(&bin, &["hello_raw"], None);
    // Jump to an unmapped address: SIGSEGV MAPERR at that address.
    g.stub.regs_mut().rip = 0x1234_5000;
    match g.stub.switch().unwrap() {
        Stop::Fault(f) => {
            assert!(f.is_maperr(), "{f:?}");
            assert_eq!(f.addr, 0x1234_5000);
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    // Map a read-only page of zeros there: "add [rax],al" (00 00) with rax
    // pointing at the same page writes to it: SEGV_ACCERR.
    let off = g.mem.page(0x1234_5000, Prot::RX);
    g.stub
        .map(span(0x1234_5000, PAGE), Prot::RX, g.mem.fd, self::off(off))
        .unwrap();
    g.stub.regs_mut().rax = 0x1234_5800;
    match g.stub.switch().unwrap() {
        Stop::Fault(f) => {
            assert!(f.is_accerr(), "{f:?}");
            assert_eq!(f.addr, 0x1234_5800);
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    // Make it writable and resume: the instruction re-runs and goes on to
    // the next zero bytes, so the guest keeps running (no more faults from
    // that page until it runs off its end).
    g.stub.protect(span(0x1234_5000, PAGE), Prot::RWX).unwrap();
    match g.stub.switch().unwrap() {
        Stop::Fault(f) => assert_eq!(f.addr & !(PAGE - 1), 0x1234_6000, "{f:?}"),
        other => panic!("expected to run off the page, got {other:?}"),
    }
}

#[test]
fn batched_injection_reports_the_failing_op() {
    let mut stub = PtraceStub::spawn(StubOptions::default()).unwrap();
    // 100 protects of unmapped pages: the first fails with ENOMEM at index 0.
    let ops: Vec<_> = (0..100)
        .map(|i| umlrun::platform::MapOp::Protect {
            span: span(0x1000_0000 + i * PAGE, PAGE),
            prot: Prot::R,
        })
        .collect();
    match stub.apply(&ops) {
        Err(umlrun::platform::PlatformError::Inject { index, errno }) => {
            assert_eq!(index, 0);
            assert_eq!(errno, umlrun::errno::Errno::ENOMEM);
        }
        other => panic!("expected an injection error, got {other:?}"),
    }
    // A valid batch over two round trips (100 > MAX_BATCH) then a bad fd at 70.
    let mut ops: Vec<_> = (0..100)
        .map(|i| umlrun::platform::MapOp::Unmap {
            span: span(0x2000_0000 + i * PAGE, PAGE),
        })
        .collect();
    stub.apply(&ops).unwrap();
    ops[70] = umlrun::platform::MapOp::Map {
        span: span(0x2000_0000, PAGE),
        prot: Prot::R,
        fd: 999,
        offset: off(0),
    };
    match stub.apply(&ops) {
        Err(umlrun::platform::PlatformError::Inject { index, errno }) => {
            assert_eq!(index, 70);
            assert_eq!(errno, umlrun::errno::Errno::EBADF);
        }
        other => panic!("expected EBADF at 70, got {other:?}"),
    }
    // The stub's own pages and the vDSO are refused.
    let vdso = stub.vdso().expect("stub keeps the vDSO");
    assert!(matches!(
        stub.unmap(span(vdso.start, PAGE)),
        Err(umlrun::platform::PlatformError::Reserved(_))
    ));
    let stub_page = umlrun::platform::stub_image::STUB_BASE;
    assert!(matches!(
        stub.unmap(span(stub_page, PAGE)),
        Err(umlrun::platform::PlatformError::Reserved(_))
    ));
}

#[test]
fn stub_holds_only_its_pages_and_dies_with_kill() {
    let mut stub = PtraceStub::spawn(StubOptions::default()).unwrap();
    let pid = stub.pid();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        !maps.contains("[stack]"),
        "host stack not unmapped:\n{maps}"
    );
    assert!(maps.contains("[vdso]"));
    let user_lines = maps.lines().filter(|l| !l.contains("[v")).count();
    // Its code, its op list and XSAVE pages, and the scratch page its fd
    // channel's message header is written in.
    assert_eq!(
        user_lines, 3,
        "only the stub code, data and scratch pages:\n{maps}"
    );
    // Registers and FP state round-trip.
    let fp = stub.fpregs().unwrap();
    stub.set_fpregs(&fp).unwrap();
    assert_eq!(stub.fpregs().unwrap(), fp);
    assert_eq!(stub.host_syscall(39, [0; 6]).unwrap(), pid as i64); // getpid runs on the host
    stub.kill();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(matches!(
        stub.switch(),
        Err(umlrun::platform::PlatformError::StubGone)
    ));
}

/// Set-up that fails fails the test (it once returned early, green).
#[test]
#[should_panic(expected = "no_such_program.c failed")]
fn a_guest_program_that_does_not_build_fails_the_test() {
    let dir = tempfile::tempdir().unwrap();
    build_guest("no_such_program.c", dir.path(), RAW_FLAGS);
}
