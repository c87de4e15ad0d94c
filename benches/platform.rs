//! Platform benchmark: SYSEMU round trip (a guest getppid loop served with a
//! constant) pinned and unpinned, mapping injection round trips, and native
//! getppid. Prints a Markdown table of medians.

#[path = "../tests/platform_support/mod.rs"]
mod platform_support;

use std::time::Instant;

use platform_support::*;
use umlrun::host::cpu;
use umlrun::platform::{AddressSpaceOps, Context, MapOp, Prot, PtraceStub, Stop, StubOptions};

const RUNS: usize = 11;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn native_getppid() -> f64 {
    let n = 200_000;
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    // SAFETY: getppid has no preconditions.
                    std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
                }
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            })
            .collect(),
    )
}

/// µs per getppid round trip, timed from the first getppid stop to exit.
fn sysemu_getppid(bin: &std::path::Path, cpu: Option<usize>, n: u64) -> f64 {
    let arg = n.to_string();
    median(
        (0..RUNS)
            .map(|_| {
                let mut g = load(bin, &["getppid_loop", &arg], cpu);
                let mut start = None;
                loop {
                    match g.stub.switch().unwrap() {
                        Stop::Syscall { nr: 110, .. } => {
                            start.get_or_insert_with(Instant::now);
                            g.stub.regs_mut().set_syscall_return(1);
                        }
                        Stop::Syscall { nr: 231, .. } => break,
                        Stop::Fault(f) => {
                            let page = f.addr & !(PAGE - 1);
                            let (off, prot, _) = g.mem.pages[&page];
                            g.stub
                                .map(span(page, PAGE), prot, g.mem.fd, self::off(off))
                                .unwrap();
                            g.mem.pages.get_mut(&page).unwrap().2 = true;
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                let us = start.unwrap().elapsed().as_secs_f64() * 1e6 / n as f64;
                g.stub.kill();
                us
            })
            .collect(),
    )
}

/// µs per injection round trip carrying `batch` mmap ops.
fn injection(cpu: Option<usize>, batch: usize) -> f64 {
    // SAFETY: plain memfd creation for the bench; closed below.
    let fd = unsafe { libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: sizing the memfd we just made.
    assert_eq!(unsafe { libc::ftruncate(fd, 1 << 20) }, 0);
    let mut stub = PtraceStub::spawn(StubOptions {
        keep_fds: &[fd],
        cpu,
    })
    .unwrap();
    let ops: Vec<MapOp> = (0..batch as u64)
        .map(|i| MapOp::Map {
            span: span(0x4000_0000 + i * PAGE, PAGE),
            prot: Prot::RW,
            fd,
            offset: off(i * PAGE),
        })
        .collect();
    let n = 2000;
    let r = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    stub.apply(&ops).unwrap();
                }
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            })
            .collect(),
    );
    stub.kill();
    // SAFETY: closing our memfd.
    unsafe { libc::close(fd) };
    r
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_guest(
        "getppid_loop.c",
        dir.path(),
        &["-static", "-nostdlib", "-O1", "-fno-stack-protector"],
    );
    let n = 20_000;
    let cpus = cpu::allowed_cpus(0).unwrap();
    let native = native_getppid();
    let unpinned = sysemu_getppid(&bin, None, n);
    let inj1 = injection(None, 1);
    // Pin this thread (the tracer) and the stubs to one CPU.
    let pin = *cpus.last().unwrap();
    cpu::pin_to_cpu(0, pin).unwrap();
    let pinned = sysemu_getppid(&bin, Some(pin), n);
    let inj1_p = injection(Some(pin), 1);
    let inj32_p = injection(Some(pin), 32);
    cpu::allow_cpus(0, &cpus).unwrap();

    println!("| what | median |");
    println!("|---|---|");
    println!("| native getppid | {native:.3} µs |");
    println!("| SYSEMU getppid round trip, unpinned | {unpinned:.2} µs |");
    println!("| SYSEMU getppid round trip, pinned to CPU {pin} | {pinned:.2} µs |");
    println!("| mmap injection, 1 op per round trip, unpinned | {inj1:.2} µs |");
    println!("| mmap injection, 1 op per round trip, pinned | {inj1_p:.2} µs |");
    println!(
        "| mmap injection, 32 ops per round trip, pinned | {inj32_p:.2} µs ({:.2} µs/op) |",
        inj32_p / 32.0
    );
    println!(
        "\n({} CPUs allowed; {RUNS} runs each; guest loop of {n} getppid)",
        cpus.len()
    );
}
