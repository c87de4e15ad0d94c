//! Read throughput of a 64 MiB file through Ext2 over a FileBlockIo
//! (host page cache warm: the image was just written), sequential 128 KiB
//! reads and random 4 KiB reads, for 4 KiB and 1 KiB block sizes.
//! Run: `cargo bench --bench ext2`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use umlrun::fs::ext2::Ext2;
use umlrun::fs::FileBlockIo;

const SIZE: usize = 64 << 20;

fn main() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 + i / 4096) as u8).collect();
    std::fs::write(src.join("big"), &data).unwrap();
    println!("| block size | sequential 128 KiB reads | random 4 KiB reads |");
    println!("|---|---|---|");
    for bs in [4096u32, 1024] {
        let img = t.path().join(format!("img{bs}"));
        let st = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2", "-b", &bs.to_string(), "-d"])
            .arg(&src)
            .arg(&img)
            .arg("80M")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let dev = Arc::new(FileBlockIo::open(&img, false).unwrap());
        let fs = Ext2::mount(dev, true).unwrap();
        let ino = fs.lookup(fs.root(), b"big").unwrap();

        let mut buf = vec![0u8; 128 << 10];
        let mut best_seq = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            let mut off = 0;
            while off < SIZE {
                let n = fs.read(ino, off as u64, &mut buf).unwrap();
                assert_eq!(buf[..n], data[off..off + n]);
                off += n;
            }
            best_seq = best_seq.min(start.elapsed().as_secs_f64());
        }

        let mut x: u64 = 88172645463325252;
        let reads = 16384;
        let mut small = vec![0u8; 4096];
        let start = Instant::now();
        for _ in 0..reads {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x as usize % (SIZE / 4096)) * 4096;
            fs.read(ino, off as u64, &mut small).unwrap();
        }
        let rnd = start.elapsed().as_secs_f64();
        println!(
            "| {bs} | {:.0} MiB/s | {:.0} MiB/s ({:.1} µs/read) |",
            64.0 / best_seq,
            reads as f64 * 4.0 / 1024.0 / rnd,
            rnd * 1e6 / reads as f64
        );
    }
}
