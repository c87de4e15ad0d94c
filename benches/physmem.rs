//! Physmem speed: alloc+touch+free rates, punch cost, substitution rate.
//! Prints a Markdown table of medians over several runs.
//! Run: `cargo bench --bench physmem`.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use umlrun::physmem::{Frame, PhysMem, PAGE_SIZE};

const RUNS: usize = 7;

struct Row {
    what: &'static str,
    unit: &'static str,
    samples: Vec<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Frames allocated, touched (one byte written) and freed per second.
fn alloc_touch_free(pm: &PhysMem, batch: usize, total: usize) -> f64 {
    let mut frames = Vec::with_capacity(batch);
    let start = Instant::now();
    for _ in 0..total / batch {
        for _ in 0..batch {
            let f = pm.alloc().expect("bench memory is large enough");
            pm.write(f, 0, &[1]).unwrap();
            frames.push(f);
        }
        if batch == 1 {
            pm.free(frames[0]);
        } else {
            pm.free_many(&frames);
        }
        frames.clear();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Microseconds to punch one MiB of touched frames, batched (`one_by_one`
/// false: adjacent frames in one fallocate) or frame by frame.
fn punch_us_per_mib(pm: &PhysMem, mib: usize, one_by_one: bool) -> f64 {
    let n = mib * 256;
    let frames: Vec<Frame> = (0..n).map(|_| pm.alloc().unwrap()).collect();
    let page = [0x5au8; PAGE_SIZE];
    for &f in &frames {
        pm.write(f, 0, &page).unwrap();
    }
    let mut sorted = frames.clone();
    sorted.sort();
    let start = Instant::now();
    if one_by_one {
        for &f in &sorted {
            pm.free(f);
        }
    } else {
        pm.free_many(&sorted);
    }
    let us = start.elapsed().as_secs_f64() * 1e6;
    assert!(pm.stats().host_resident_bytes <= 2 * PAGE_SIZE as u64);
    us / mib as f64
}

/// substitute + unsubstitute pairs per second.
fn subst_rate(pm: &PhysMem, file: &Arc<File>, pairs: usize) -> f64 {
    let frames: Vec<Frame> = (0..64).map(|_| pm.alloc().unwrap()).collect();
    let start = Instant::now();
    for i in 0..pairs {
        let f = frames[i % frames.len()];
        let off = ((i % 256) * PAGE_SIZE) as u64;
        pm.substitute(f, file.clone(), off, false).unwrap();
        pm.unsubstitute(f, false).unwrap();
    }
    let rate = pairs as f64 / start.elapsed().as_secs_f64();
    pm.free_many(&frames);
    rate
}

/// Nanoseconds to copy `pages` frames out into a buffer: one lock per
/// page (`read` each, how guest copies went before) or one for the whole
/// copy (`read_pieces`, how they go now).
fn copy_out_ns(pm: &PhysMem, frames: &[Frame], pages: usize, batched: bool) -> f64 {
    let mut buf = vec![0u8; pages * PAGE_SIZE];
    let pieces: Vec<_> = frames[..pages].iter().map(|&f| (f, 0, PAGE_SIZE)).collect();
    let reps = (4096 / pages).max(16);
    let start = Instant::now();
    for _ in 0..reps {
        if batched {
            pm.read_pieces(&pieces, &mut buf);
        } else {
            for (i, &f) in frames[..pages].iter().enumerate() {
                pm.read(f, 0, &mut buf[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]);
            }
        }
        std::hint::black_box(&buf);
    }
    start.elapsed().as_nanos() as f64 / reps as f64
}

fn main() {
    let pm = PhysMem::new(256 << 20).expect("256 MiB physmem");
    let mut tmp = tempfile::tempfile().expect("temp file");
    for i in 0..256u32 {
        tmp.write_all(&[i as u8; PAGE_SIZE]).unwrap();
    }
    let file = Arc::new(tmp);

    let mut rows = vec![
        Row {
            what: "alloc+touch+free, batch 1",
            unit: "frames/s",
            samples: vec![],
        },
        Row {
            what: "alloc+touch+free, batch 64",
            unit: "frames/s",
            samples: vec![],
        },
        Row {
            what: "punch 64 MiB, adjacent frames batched",
            unit: "µs/MiB",
            samples: vec![],
        },
        Row {
            what: "punch 64 MiB, frame by frame",
            unit: "µs/MiB",
            samples: vec![],
        },
        Row {
            what: "substitute+unsubstitute",
            unit: "pairs/s",
            samples: vec![],
        },
        Row {
            what: "copy out 4 KiB, lock per page",
            unit: "ns",
            samples: vec![],
        },
        Row {
            what: "copy out 4 KiB, one lock",
            unit: "ns",
            samples: vec![],
        },
        Row {
            what: "copy out 1 MiB, lock per page",
            unit: "ns",
            samples: vec![],
        },
        Row {
            what: "copy out 1 MiB, one lock",
            unit: "ns",
            samples: vec![],
        },
    ];

    // One warm-up pass, then RUNS measured ones.
    for run in 0..=RUNS {
        let s = [
            alloc_touch_free(&pm, 1, 100_000),
            alloc_touch_free(&pm, 64, 100_032),
            punch_us_per_mib(&pm, 64, false),
            punch_us_per_mib(&pm, 64, true),
            subst_rate(&pm, &file, 20_000),
        ];
        if run > 0 {
            for (row, v) in rows.iter_mut().zip(s) {
                row.samples.push(v);
            }
        }
    }
    // Guest copies (frames resident: after the punch runs, which count
    // resident memory).
    let copy_frames: Vec<Frame> = (0..256)
        .map(|i| {
            let f = pm.alloc().unwrap();
            pm.write(f, 0, &[i as u8; PAGE_SIZE]).unwrap();
            f
        })
        .collect();
    for run in 0..=RUNS {
        let s = [
            copy_out_ns(&pm, &copy_frames, 1, false),
            copy_out_ns(&pm, &copy_frames, 1, true),
            copy_out_ns(&pm, &copy_frames, 256, false),
            copy_out_ns(&pm, &copy_frames, 256, true),
        ];
        if run > 0 {
            for (row, v) in rows[5..].iter_mut().zip(s) {
                row.samples.push(v);
            }
        }
    }
    pm.free_many(&copy_frames);

    println!("| what | median | min | max | unit |");
    println!("|---|---:|---:|---:|---|");
    for row in &mut rows {
        let min = row.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = row.samples.iter().copied().fold(0.0, f64::max);
        let med = median(&mut row.samples);
        println!(
            "| {} | {med:.0} | {min:.0} | {max:.0} | {} |",
            row.what, row.unit
        );
    }
    println!("\n{RUNS} runs each after one warm-up; 256 MiB physmem; touch = one byte written.");
}
