//! The parser fuzz targets (fuzz/targets.rs) over deterministic mutations
//! of valid inputs: the CI slice of input fuzzing (cargo-fuzz runs the same
//! targets for as long as you like: scripts/fuzz-parsers). Each target
//! gets MUTANTS inputs made from a few valid seeds by bit flips, boundary
//! bytes and words, copied and zeroed runs, truncation and growth; a panic
//! fails the test naming the target and mutant (re-made from its number),
//! an input taking over a second counts as a hang.

mod ext2_common;
#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;
use std::time::{Duration, Instant};

use umlrun::block::cow::CowHeader;

/// Mutants per target (5 targets: 50 000 inputs in all).
const MUTANTS: u64 = 10_000;
const SLOW: Duration = Duration::from_secs(1);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const WORDS: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    4096,
    4095,
    1024,
    512,
    0xfff_ffff_ffff_f000,
];

/// One mutant of `seed`: 1 to 8 edits, most of them in the first `hot`
/// bytes (where the headers are).
fn mutate(seed: &[u8], n: u64, hot: usize) -> Vec<u8> {
    let mut r = Rng(n.wrapping_mul(0x1000_0000_01b3) ^ 0xcbf2_9ce4_8422_2325);
    let mut d = seed.to_vec();
    for _ in 0..1 + r.below(8) {
        if d.is_empty() {
            d.push(r.next() as u8);
        }
        let span = if r.below(4) == 0 {
            d.len()
        } else {
            hot.min(d.len())
        };
        let at = r.below(span);
        match r.below(10) {
            0 | 1 => d[at] ^= 1 << r.below(8),
            2 => d[at] = r.next() as u8,
            3 | 4 => {
                let w = WORDS[r.below(WORDS.len())].to_le_bytes();
                let width = [1, 2, 4, 8][r.below(4)];
                let at = at & !(width - 1);
                for (i, b) in w.iter().take(width).enumerate() {
                    if let Some(x) = d.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            5 => {
                let len = 1 + r.below(64);
                let from = r.below(d.len());
                let chunk: Vec<u8> = d[from..(from + len).min(d.len())].to_vec();
                for (i, b) in chunk.iter().enumerate() {
                    if let Some(x) = d.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            6 => {
                let end = (at + 1 + r.below(256)).min(d.len());
                d[at..end].fill(if r.below(2) == 0 { 0 } else { 0xff });
            }
            7 => d.truncate(r.below(d.len() + 1)),
            8 => d.extend((0..r.below(128)).map(|_| r.next() as u8)),
            _ => {
                let b = d[at];
                d.insert(at, b);
            }
        }
    }
    d
}

/// Runs `target` over MUTANTS mutants of `seeds`; panics name the mutant.
/// At least a tenth of the mutants must get past the first parse (else the
/// mutations are too blunt to reach the deep paths).
fn run(name: &str, target: fn(&[u8]) -> bool, seeds: &[Vec<u8>], hot: usize) {
    let mut slow = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        assert!(target(seed), "{name}: seed {i} is not valid");
    }
    let mut deep = 0u64;
    for n in 0..MUTANTS {
        let seed = &seeds[(n as usize) % seeds.len()];
        let input = mutate(seed, n, hot);
        let t = Instant::now();
        match std::panic::catch_unwind(|| target(&input)) {
            Ok(parsed) => deep += parsed as u64,
            Err(_) => panic!(
                "{name}: mutant {n} (of seed {}) panicked",
                n as usize % seeds.len()
            ),
        }
        if t.elapsed() > SLOW {
            slow.push((n, t.elapsed()));
        }
    }
    assert!(slow.is_empty(), "{name}: mutants over {SLOW:?}: {slow:?}");
    assert!(
        deep * 10 >= MUTANTS,
        "{name}: only {deep} of {MUTANTS} mutants parsed"
    );
    eprintln!("{name}: {MUTANTS} mutants, {deep} parsed, no panic, none over {SLOW:?}");
}

#[test]
fn cow_headers() {
    let mut seeds = Vec::new();
    for size in [0u64, 4096, 1 << 30, (1 << 40) + 512] {
        let h = CowHeader::new_v3(Path::new("/some/backing.img"), 1_700_000_000, size).unwrap();
        seeds.push(h.serialize_v3().unwrap());
    }
    // v2 and v1 (big-endian, as UML wrote them): magic, version, path.
    for version in [1u32, 2] {
        let mut b = Vec::new();
        b.extend(0x4f4f_4f4du32.to_be_bytes());
        b.extend(version.to_be_bytes());
        let mut path = b"/backing.img".to_vec();
        path.resize(if version == 1 { 256 } else { 1024 }, 0);
        b.extend(path);
        b.extend(1_700_000_000u32.to_be_bytes());
        b.extend((1u64 << 30).to_be_bytes());
        b.extend(512u32.to_be_bytes());
        if version == 2 {
            b.extend(512u32.to_be_bytes());
            b.extend(0u32.to_be_bytes());
        }
        b.resize(b.len() + 64, 0);
        // Only as a seed if this sketch of the old layouts parses.
        if targets::cow_header(&b) {
            seeds.push(b);
        }
    }
    run("cow_header", targets::cow_header, &seeds, 1200);
}

#[test]
fn ext2_images() {
    let t = ext2_common::tempdir();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("file"), ext2_common::pattern(1, 20 * 1024)).unwrap();
    std::fs::write(src.join("d/inner"), b"inner").unwrap();
    std::os::unix::fs::symlink("file", src.join("link")).unwrap();
    let img = ext2_common::image_path(&t, "img");
    ext2_common::mkfs(
        &img,
        Some(&src),
        1024,
        false,
        &["-I", "128", "-N", "32"],
        128,
    );
    let seeds = vec![std::fs::read(&img).unwrap()];
    // Superblock, group descriptors, bitmaps, inode table, first dirs.
    run("ext2_image", targets::ext2_image, &seeds, 16 * 1024);
}

#[test]
fn elf_headers() {
    let mut seeds = Vec::new();
    for prog in ["/bin/busybox", "/bin/sh", "/usr/bin/env"] {
        if let Ok(b) = std::fs::read(prog) {
            seeds.push(b[..b.len().min(4096)].to_vec());
        }
    }
    seeds.push(b"#!/bin/sh -e\necho\n".to_vec());
    seeds.push(b"#! /usr/bin/env  python3  -u\n".to_vec());
    run("elf", targets::elf, &seeds, 1024);
}

#[test]
fn sigreturn_frames() {
    use umlrun::kernel::signal::UCONTEXT_SIZE;
    // A ucontext of zeros, then an FXSAVE area, then XSAVE with the
    // software-reserved bytes announcing an xstate (MAGIC1) and MAGIC2.
    let mut f = vec![0u8; UCONTEXT_SIZE + 1024];
    let fx = UCONTEXT_SIZE;
    f[fx + 24..fx + 28].copy_from_slice(&0x1f80u32.to_le_bytes()); // mxcsr
    f[fx + 464..fx + 468].copy_from_slice(&0x4650_5853u32.to_le_bytes()); // FP_XSTATE_MAGIC1
    f[fx + 468..fx + 472].copy_from_slice(&(1024u32 + 4).to_le_bytes()); // extended_size
    f[fx + 472..fx + 480].copy_from_slice(&7u64.to_le_bytes()); // xfeatures
    f[fx + 480..fx + 484].copy_from_slice(&1024u32.to_le_bytes()); // xstate_size
    f[fx + 512..fx + 520].copy_from_slice(&7u64.to_le_bytes()); // xstate_bv
    f.extend(0x4650_5845u32.to_le_bytes()); // FP_XSTATE_MAGIC2
    run(
        "sigreturn",
        targets::sigreturn,
        &[f, vec![0u8; UCONTEXT_SIZE]],
        UCONTEXT_SIZE + 600,
    );
}

#[test]
fn mconsole_datagrams() {
    use umlrun::mconsole::protocol::{encode_reply, encode_request};
    let mut seeds = Vec::new();
    for c in [
        "version",
        "config mem=+16M",
        "sysrq s",
        "proc meminfo",
        "log hello",
        "stats",
    ] {
        seeds.push(encode_request(c).unwrap());
    }
    seeds.extend(encode_reply(&[b'x'; 700], false));
    run("mconsole", targets::mconsole, &seeds, 600);
}
