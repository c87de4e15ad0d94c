//! ubd read speed: 4 KiB random reads per second from a 64 MiB COW file over
//! a backing image (half the pages written into the COW file), in copy mode
//! (`read_at`), mmap mode (`page_mapping`, then copying the page out of a
//! mapping of that file), and plain `pread` of the raw image. Prints a
//! Markdown table of medians. Run: `cargo bench --bench ubd`.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use memmap2::{Mmap, MmapOptions};
use umlrun::block::{cow, Ubd};
use umlrun::config::{UbdFlags, UbdMode, UbdSpec};

const SIZE: u64 = 64 << 20;
const PAGES: u64 = SIZE / 4096;
const READS: usize = 50_000;
const RUNS: usize = 7;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn spec(file: &Path, mode: UbdMode) -> UbdSpec {
    UbdSpec {
        index: 0,
        flags: UbdFlags {
            read_only: true,
            shared: true,
            ..UbdFlags::default()
        },
        file: file.to_path_buf(),
        backing: None,
        mode,
    }
}

/// Median reads per second of `RUNS` runs of `READS` random page reads.
fn measure(pages: &[u64], mut read: impl FnMut(u64, &mut [u8])) -> f64 {
    let mut buf = vec![0u8; 4096];
    let mut sink = 0u64;
    for &p in pages.iter().take(READS / 5) {
        read(p, &mut buf); // warm up
    }
    let mut rates: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for &p in pages {
                read(p, &mut buf);
                sink = sink.wrapping_add(buf[(p % 4096) as usize] as u64);
            }
            pages.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    std::hint::black_box(sink);
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[RUNS / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let back = dir.path().join("back.img");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<u8> = (0..SIZE).map(|_| rng.next() as u8).collect();
    std::fs::write(&back, &data).unwrap();
    let c = dir.path().join("bench.cow");
    cow::create(&c, &back).unwrap();
    {
        let w = Ubd::open(&UbdSpec {
            flags: UbdFlags::default(),
            ..spec(&c, UbdMode::Copy)
        })
        .unwrap();
        for p in (0..PAGES).filter(|p| p % 2 == 0) {
            w.write_at(p * 4096, &[p as u8; 4096]).unwrap();
        }
        w.flush().unwrap();
    }
    let raw = dir.path().join("raw.img");
    std::fs::write(&raw, &data).unwrap();
    let pages: Vec<u64> = (0..READS).map(|_| rng.next() % PAGES).collect();

    let copy = Ubd::open(&spec(&c, UbdMode::Copy)).unwrap();
    let copy_rate = measure(&pages, |p, buf| copy.read_at(p * 4096, buf).unwrap());

    let mm = Ubd::open(&spec(&c, UbdMode::Mmap)).unwrap();
    let mut maps: HashMap<*const File, Mmap> = HashMap::new();
    let mmap_rate = measure(&pages, |p, buf| match mm.page_mapping(p) {
        Some(m) => {
            let map = maps
                .entry(std::sync::Arc::as_ptr(&m.file))
                .or_insert_with(|| {
                    // SAFETY: the bench's files are not truncated while mapped.
                    unsafe { Mmap::map(&*m.file).unwrap() }
                });
            buf.copy_from_slice(&map[m.offset as usize..m.offset as usize + 4096]);
        }
        None => mm.read_at(p * 4096, buf).unwrap(),
    });
    let mapped = (0..PAGES).filter(|&p| mm.page_mapping(p).is_some()).count();

    let mmap_each_rate = measure(&pages, |p, buf| {
        let m = mm.page_mapping(p).unwrap();
        // SAFETY: as above; the mapping lives only inside this closure call.
        let map = unsafe {
            MmapOptions::new()
                .offset(m.offset)
                .len(4096)
                .map(&*m.file)
                .unwrap()
        };
        buf.copy_from_slice(&map[..]);
    });

    let rawf = File::open(&raw).unwrap();
    let raw_rate = measure(&pages, |p, buf| rawf.read_exact_at(buf, p * 4096).unwrap());

    println!(
        "ubd: 4 KiB random reads, 64 MiB disk, half its pages in the COW file, page cache warm"
    );
    println!(
        "({READS} reads per run, median of {RUNS} runs; {mapped} of {PAGES} pages mappable)\n"
    );
    println!("| mode | reads/s | µs/read | vs raw pread |");
    println!("|---|---:|---:|---:|");
    for (name, r) in [
        ("copy (`read_at`)", copy_rate),
        (
            "mmap (`page_mapping` + copy from a standing mapping)",
            mmap_rate,
        ),
        ("mmap, one mmap+munmap per read", mmap_each_rate),
        ("raw image `pread`", raw_rate),
    ] {
        println!(
            "| {name} | {r:.0} | {:.2} | {:.2}x |",
            1e6 / r,
            r / raw_rate
        );
    }
}
