//! Page-cache reclaim under memory pressure (`PageCache::reclaim_unmapped`,
//! the first step of the OOM path): only clean pages that no mapping holds
//! go, least recently used first, and their frames really come free.

mod vfs_support;

use umlrun::config::UbdMode;
use umlrun::mm::pagecache::PageCache;
use vfs_support::*;

const MEM: u64 = 64 << 20;

#[test]
fn reclaim_takes_unmapped_clean_pages_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (_tree, img) = tree_and_image(dir.path());
    for mode in [UbdMode::Copy, UbdMode::Mmap] {
        let cow = fresh_cow(&img, &dir.path().join(format!("{mode:?}.cow")));
        let mut rig = Rig::new(&cow, mode, MEM, PageCache::new());
        let ino = rig.resolve("/data/pages.bin", true).node.ino;
        let fs = rig.mounts.fs(rig.root_mnt).unwrap();
        let mut frames = Vec::new();
        for idx in 0..100u64 {
            let f = rig
                .cache
                .get(fs.as_ref(), rig.key(ino), idx, &mut rig.frames)
                .unwrap();
            frames.push(f);
        }
        // Pages 0..10 are mapped by someone (a page table's reference).
        for &f in &frames[..10] {
            rig.frames.get(f);
        }
        let free0 = rig.physmem.stats().frames_free;
        assert_eq!(rig.cache.reclaim_unmapped(50, &mut rig.frames, false), 50);
        assert_eq!(rig.physmem.stats().frames_free, free0 + 50, "{mode:?}");
        // The 50 oldest unmapped ones (10..60) went; 60..100 are hits.
        let hits = rig.cache.stats().hits;
        for idx in 60..100u64 {
            rig.cache
                .get(fs.as_ref(), rig.key(ino), idx, &mut rig.frames)
                .unwrap();
        }
        assert_eq!(rig.cache.stats().hits, hits + 40, "{mode:?}");
        // Everything unmapped goes; the mapped ten stay cached.
        assert_eq!(rig.cache.reclaim_unmapped(1000, &mut rig.frames, false), 40);
        assert_eq!(rig.cache.stats().cached, 10, "{mode:?}");
        assert_eq!(rig.cache.reclaim_unmapped(1000, &mut rig.frames, false), 0);
    }
}
