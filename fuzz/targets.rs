//! The parser fuzz targets, shared: cargo-fuzz runs each over libFuzzer's
//! inputs (fuzz/fuzz_targets/, the long run: scripts/fuzz-parsers), and
//! tests/parser_mutation.rs over deterministic mutations of valid inputs
//! (the CI slice). Each takes any bytes and must return without panicking
//! or hanging; errors are the expected answer to most inputs. Each says
//! whether the input got past its first parse (the mutation test checks
//! that enough do, so the deep paths are reached).

#![allow(dead_code)]

use std::sync::Arc;

use umlrun::block::cow::CowHeader;
use umlrun::fs::ext2::Ext2;
use umlrun::fs::MemBlockIo;
use umlrun::kernel::signal::{fpstate_from_frame, fpstate_len, parse_sigreturn, UCONTEXT_SIZE};
use umlrun::loader::{parse_shebang, ElfFile, LoadPlan};
use umlrun::mconsole::{commands, protocol};
use umlrun::platform::Regs;

/// The COW header (v1, v2, v3, either byte order).
pub fn cow_header(data: &[u8]) -> bool {
    let Ok(h) = CowHeader::parse(data) else {
        return false;
    };
    let _ = h.sectors();
    let _ = h.serialize_v3();
    true
}

/// An ext2 image: mount it read-only and read-write, walk every directory
/// (bounded: a corrupt image may loop), stat, read files and links,
/// statfs; then create, write and remove a file on the read-write mount.
pub fn ext2_image(data: &[u8]) -> bool {
    for read_only in [true, false] {
        let dev = Arc::new(MemBlockIo::new(data.to_vec()));
        let Ok(fs) = Ext2::mount(dev, read_only) else {
            return !read_only;
        };
        let _ = fs.statfs();
        let mut todo = vec![fs.root()];
        let mut seen = 0;
        let mut buf = vec![0u8; 8192];
        while let Some(dir) = todo.pop() {
            seen += 1;
            if seen > 64 {
                break;
            }
            let Ok(entries) = fs.readdir(dir) else {
                continue;
            };
            for e in entries.iter().take(64) {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                let _ = fs.lookup(dir, &e.name);
                let Ok(st) = fs.stat(e.ino) else { continue };
                match st.mode & 0o170000 {
                    0o040000 => todo.push(e.ino),
                    0o120000 => {
                        let _ = fs.readlink(e.ino);
                    }
                    _ => {
                        let _ = fs.read(e.ino, 0, &mut buf);
                        let _ = fs.read(e.ino, st.size.saturating_sub(100), &mut buf[..200]);
                        let _ = fs.bmap(e.ino, 1 << 20);
                    }
                }
            }
        }
        if !read_only {
            let root = fs.root();
            if let Ok(ino) = fs.create(root, b"fz", 0o100644, 0, 0, 0) {
                let _ = fs.write(ino, 5000, b"fuzz");
                let _ = fs.truncate(ino, 1);
                let _ = fs.unlink(root, b"fz");
            }
            let _ = fs.mkdir(root, b"fzd", 0o755, 0, 0);
            let _ = fs.rmdir(root, b"fzd");
            let _ = fs.sync();
        }
    }
    true
}

/// ELF headers and `#!` lines, and the load plan the kernel makes.
pub fn elf(data: &[u8]) -> bool {
    let script = matches!(parse_shebang(data), Some(Ok(_)));
    let size = data.len() as u64;
    let mut parsed = false;
    for file_size in [size, size.saturating_mul(1000), u64::MAX] {
        if let Ok(e) = ElfFile::parse(data, file_size) {
            parsed = true;
            let _ = e.span();
            for base in [0, 0x5555_5555_4000, !0xfff] {
                let _ = LoadPlan::new(&e, base);
            }
        }
    }
    script || parsed
}

/// rt_sigreturn's frame: the ucontext and the FP state that follows.
pub fn sigreturn(data: &[u8]) -> bool {
    let mut uc = data.to_vec();
    uc.resize(UCONTEXT_SIZE.max(uc.len()), 0);
    let _ = parse_sigreturn(&uc[..UCONTEXT_SIZE], &Regs::default());
    let fp = &data[data.len().min(UCONTEXT_SIZE)..];
    let mut fp = fp.to_vec();
    if fp.len() < 512 {
        fp.resize(512, 0);
    }
    for max in [0, 576, 1024, 2696, 4096] {
        let n = fpstate_len(&fp, max);
        let mut frame = fp.clone();
        frame.resize(n, 0);
        let _ = fpstate_from_frame(&frame);
    }
    true
}

/// mconsole datagrams, both directions, and the command text.
pub fn mconsole(data: &[u8]) -> bool {
    let request = protocol::parse_request(data);
    if let Ok(text) = &request {
        let _ = commands::parse(text);
    }
    let reply = protocol::parse_reply(data);
    let text = String::from_utf8_lossy(data);
    let _ = commands::parse(&text);
    let _ = commands::parse_mem_change(&text);
    request.is_ok() || reply.is_ok()
}
