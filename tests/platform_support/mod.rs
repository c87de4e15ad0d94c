//! A toy kernel for platform tests and the bench: loads a static ELF with
//! the loader into a memfd "physmem", maps it into a ptrace stub, and serves
//! a handful of syscalls. Guest memory is read through its own memfd view.
#![allow(dead_code)]

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use umlrun::loader::{build_stack, AuxInfo, ElfFile, LoadPlan, StackSpec};
use umlrun::mm::GuestVirt;
use umlrun::platform::{
    AddressSpaceOps, Context, HostOffset, MapOp, PageSpan, Prot, PtraceStub, Stop, StubOptions,
};

pub const PAGE: u64 = 4096;
pub const STACK_TOP: u64 = 0x7fff_e000_0000;
pub const STACK_PAGES: u64 = 64;
const MEM_SIZE: usize = 256 << 20;
const MMAP_TOP: u64 = 0x7f00_0000_0000;

/// The checked span [addr, addr + len) (panics on a bad one: test set-up).
pub fn span(addr: u64, len: u64) -> PageSpan {
    PageSpan::new(GuestVirt(addr), len).expect("page-aligned user range")
}

/// The checked host file offset `off`.
pub fn off(off: u64) -> HostOffset {
    HostOffset::new(off).expect("page-aligned offset")
}

/// Compile a guest C file. Panics when gcc is missing or fails: a test
/// whose set-up fails must fail, not pass without running.
pub fn build_guest(src_name: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guest")
        .join(src_name);
    let out = dir.join(src_name.trim_end_matches(".c"));
    let res = std::process::Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("gcc (needed to build {src_name}): {e}"));
    assert!(
        res.status.success(),
        "gcc {flags:?} {src_name} failed ({}):\n{}",
        res.status,
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

/// Guest "physical memory": a memfd mapped into the test, plus a page table.
pub struct Mem {
    pub fd: RawFd,
    base: *mut u8,
    next: u64,
    /// guest page -> (memfd offset, prot, mapped in the stub yet)
    pub pages: HashMap<u64, (u64, Prot, bool)>,
}

impl Mem {
    pub fn new() -> Mem {
        // SAFETY: plain libc calls; results checked.
        unsafe {
            let fd = libc::memfd_create(c"test-physmem".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, MEM_SIZE as i64), 0);
            let base = libc::mmap(
                std::ptr::null_mut(),
                MEM_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            Mem {
                fd,
                base: base as *mut u8,
                next: 0,
                pages: HashMap::new(),
            }
        }
    }

    /// Back guest page `vpage` with a frame (reusing one already there).
    pub fn page(&mut self, vpage: u64, prot: Prot) -> u64 {
        let next = &mut self.next;
        let e = self.pages.entry(vpage).or_insert_with(|| {
            let off = *next;
            *next += PAGE;
            assert!((*next as usize) <= MEM_SIZE);
            (off, Prot::NONE, false)
        });
        e.1 = Prot {
            read: e.1.read | prot.read,
            write: e.1.write | prot.write,
            exec: e.1.exec | prot.exec,
        };
        e.0
    }

    fn byte_ptr(&self, addr: u64) -> Option<*mut u8> {
        let (off, _, _) = self.pages.get(&(addr & !(PAGE - 1)))?;
        // SAFETY: off + in-page offset < MEM_SIZE, inside our mapping.
        Some(unsafe { self.base.add((off + (addr & (PAGE - 1))) as usize) })
    }

    pub fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        for (i, b) in data.iter().enumerate() {
            match self.byte_ptr(addr + i as u64) {
                // SAFETY: pointer inside our memfd mapping.
                Some(p) => unsafe { *p = *b },
                None => return false,
            }
        }
        true
    }

    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        // SAFETY: pointer inside our memfd mapping.
        (0..len as u64)
            .map(|i| self.byte_ptr(addr + i).map(|p| unsafe { *p }))
            .collect()
    }

    pub fn read_cstr(&self, addr: u64) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        loop {
            let b = self.read(addr + v.len() as u64, 1)?[0];
            if b == 0 {
                return Some(v);
            }
            v.push(b);
        }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmapping and closing what Mem::new created.
        unsafe {
            libc::munmap(self.base as *mut _, MEM_SIZE);
            libc::close(self.fd);
        }
    }
}

/// A test's own syscall handler, consulted before the toy table.
pub type SyscallHook<'a> = dyn FnMut(&mut Guest, u64, [u64; 6]) -> Option<i64> + 'a;

/// How a guest run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Died(Stop),
}

pub struct Guest {
    pub stub: PtraceStub,
    pub mem: Mem,
    pub out: Vec<u8>,
    pub brk: u64,
    pub mmap_next: u64,
    /// Addresses of SIGSEGV faults served by mapping a known page.
    pub faults: Vec<u64>,
    pub unknown: Vec<u64>,
    pub syscalls: Vec<u64>,
    /// Leave the stub alive (stopped at exit_group) when the guest exits.
    pub keep_stub: bool,
}

/// Load `path` (a static or static-pie ELF) into a fresh stub. Segments are
/// mapped eagerly; the stack is written to physmem but left unmapped, so the
/// first stack touch faults in (demand paging).
pub fn load(path: &Path, argv: &[&str], cpu: Option<usize>) -> Guest {
    let mem = Mem::new();
    let stub = PtraceStub::spawn(StubOptions {
        keep_fds: &[mem.fd],
        cpu,
    })
    .unwrap();
    load_in(path, argv, stub, mem)
}

/// Like [`load`], into a given stub that already holds `mem.fd` (e.g. a
/// recycled one); `mem`'s old guest pages are forgotten.
pub fn load_in(path: &Path, argv: &[&str], stub: PtraceStub, mut mem: Mem) -> Guest {
    mem.pages.clear();
    let file = std::fs::read(path).unwrap();
    let elf = ElfFile::parse(&file, file.len() as u64).unwrap();
    let plan = LoadPlan::new(&elf, 0x5555_5555_0000).unwrap();
    assert!(
        plan.interp.is_none(),
        "toy kernel runs static programs only"
    );
    for s in &plan.segments {
        let mut page = s.map_start();
        while page < s.mem_end() {
            mem.page(page, s.prot);
            page += PAGE;
        }
        let bytes = &file[s.offset as usize..(s.offset + s.filesz) as usize];
        assert!(mem.write(s.vaddr, bytes));
    }

    let mut ops = Vec::new();
    let mut pages: Vec<_> = mem.pages.iter().map(|(&v, &(o, p, _))| (v, o, p)).collect();
    pages.sort_by_key(|p| p.0);
    for (v, off, prot) in pages {
        ops.push(MapOp::Map {
            span: span(v, PAGE),
            prot,
            fd: mem.fd,
            offset: self::off(off),
        });
        mem.pages.get_mut(&v).unwrap().2 = true;
    }
    for i in 1..=STACK_PAGES {
        mem.page(STACK_TOP - i * PAGE, Prot::RW);
    }
    let argv_b: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
    let envp: Vec<&[u8]> = vec![b"PATH=/bin", b"LANG=C"];
    let aux = AuxInfo {
        phdr: plan.phdr,
        phent: plan.phent,
        phnum: plan.phnum,
        entry: plan.entry,
        clktck: 100,
        random: *b"umlrun-random-16",
        platform: b"x86_64".to_vec(),
        sysinfo_ehdr: stub.vdso().map(|r| r.start),
        ..AuxInfo::default()
    };
    let spec = StackSpec {
        argv: &argv_b,
        envp: &envp,
        execfn: argv_b[0],
        aux: &aux,
        stack_top: STACK_TOP,
    };
    let img = build_stack(&spec).unwrap();
    assert!(mem.write(img.rsp, &img.bytes));

    let mut g = Guest {
        stub,
        mem,
        out: Vec::new(),
        brk: plan.brk,
        mmap_next: MMAP_TOP,
        faults: Vec::new(),
        unknown: Vec::new(),
        syscalls: Vec::new(),
        keep_stub: false,
    };
    g.stub.apply(&ops).unwrap();
    let r = g.stub.regs_mut();
    r.rip = plan.entry;
    r.rsp = img.rsp;
    g
}

impl Guest {
    /// Back [start, end) with fresh frames and map them now.
    fn map_anon(&mut self, start: u64, end: u64) {
        let mut ops = Vec::new();
        let mut p = start;
        while p < end {
            let off = self.mem.page(p, Prot::RW);
            self.mem.pages.get_mut(&p).unwrap().2 = true;
            ops.push(MapOp::Map {
                span: span(p, PAGE),
                prot: Prot::RW,
                fd: self.mem.fd,
                offset: self::off(off),
            });
            p += PAGE;
        }
        self.stub.apply(&ops).unwrap();
    }

    /// The toy syscall table.
    pub fn serve(&mut self, nr: u64, a: [u64; 6]) -> i64 {
        const ENOSYS: i64 = -38;
        match nr {
            1 => match self.mem.read(a[1], a[2] as usize) {
                Some(b) if a[0] == 1 || a[0] == 2 => {
                    self.out.extend_from_slice(&b);
                    b.len() as i64
                }
                Some(_) => -9,
                None => -14,
            },
            12 => {
                let want = a[0];
                if want > self.brk {
                    let start = (self.brk + PAGE - 1) & !(PAGE - 1);
                    let end = (want + PAGE - 1) & !(PAGE - 1);
                    self.map_anon(start, end);
                    self.brk = want;
                }
                self.brk as i64
            }
            9 if a[3] & 0x20 != 0 && a[0] == 0 => {
                // Anonymous, kernel-chosen address: map eagerly, top down.
                let len = (a[1] + PAGE - 1) & !(PAGE - 1);
                self.mmap_next -= len;
                let at = self.mmap_next;
                self.map_anon(at, at + len);
                at as i64
            }
            158 if a[0] == 0x1002 => {
                self.stub.regs_mut().fs_base = a[1];
                0
            }
            218 => 1000, // set_tid_address
            273 => 0,    // set_robust_list
            10 => 0,     // mprotect (RELRO): leave RW
            63 => {
                let mut u = vec![0u8; 65 * 6];
                for (i, f) in ["Linux", "umlrun", "6.1.0", "#1", "x86_64", "(none)"]
                    .iter()
                    .enumerate()
                {
                    u[i * 65..i * 65 + f.len()].copy_from_slice(f.as_bytes());
                }
                if self.mem.write(a[0], &u) {
                    0
                } else {
                    -14
                }
            }
            _ => {
                self.unknown.push(nr);
                ENOSYS
            }
        }
    }

    /// Run until exit_group, with `hook` consulted before the toy table.
    pub fn run_with(&mut self, hook: &mut SyscallHook) -> Exit {
        loop {
            match self.stub.switch().unwrap() {
                Stop::Syscall { nr, args } => {
                    self.syscalls.push(nr);
                    if nr == 231 || nr == 60 {
                        if !self.keep_stub {
                            self.stub.kill();
                        }
                        return Exit::Code(args[0] as i32);
                    }
                    let ret = match hook(self, nr, args) {
                        Some(r) => r,
                        None => self.serve(nr, args),
                    };
                    self.stub.regs_mut().set_syscall_return(ret);
                }
                Stop::Fault(f) if f.is_maperr() => {
                    let page = f.addr & !(PAGE - 1);
                    match self.mem.pages.get(&page).copied() {
                        Some((off, prot, false)) => {
                            self.stub
                                .map(span(page, PAGE), prot, self.mem.fd, self::off(off))
                                .unwrap();
                            self.mem.pages.get_mut(&page).unwrap().2 = true;
                            self.faults.push(f.addr);
                        }
                        _ => return Exit::Died(Stop::Fault(f)),
                    }
                }
                other => return Exit::Died(other),
            }
        }
    }

    pub fn run(&mut self) -> Exit {
        self.run_with(&mut |_, _, _| None)
    }

    /// The stub and the memory, for another run.
    pub fn into_parts(self) -> (PtraceStub, Mem) {
        (self.stub, self.mem)
    }
}

/// Run a program natively: (stdout, exit code).
pub fn native(path: &Path, args: &[&str]) -> (Vec<u8>, i32) {
    let o = std::process::Command::new(path)
        .args(args)
        .output()
        .unwrap();
    (o.stdout, o.status.code().unwrap_or(-1))
}
