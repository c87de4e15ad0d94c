//! The guest's disks as block devices: their names and device numbers
//! (UML's: `ubda`, `ubdb`, … on major 98, minor 16·n), and who holds each
//! one exclusively.
//!
//! A disk is *claimed* by a mounted file system, by an `open(O_EXCL)` of
//! its device node (what mke2fs and e2fsck do) and, later, by `swapon`:
//! Linux's `bd_holder`. A second claim gets EBUSY; plain opens never
//! claim and are always allowed (Linux lets root write a mounted disk).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Ubd;
use crate::errno::{Errno, KResult};

/// UML's ubd major number.
pub const UBD_MAJOR: u32 = 98;
/// Minors per disk (UML's `UBD_SHIFT` = 4: room for 15 partitions).
pub const UBD_MINORS: u32 = 16;
/// UML's `MAX_DEV`: ubd0 … ubd15.
pub const MAX_DISKS: usize = 16;

/// The guest name of disk `index`: `ubda` for 0, `ubdb` for 1, …
pub fn disk_name(index: usize) -> String {
    let c = (b'a' + (index % 26) as u8) as char;
    format!("ubd{c}")
}

/// (major, minor) of disk `index`.
pub fn disk_dev(index: usize) -> (u32, u32) {
    (UBD_MAJOR, index as u32 * UBD_MINORS)
}

/// Who holds a disk exclusively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A mounted file system (the mount's id).
    Mount(usize),
    /// An open file description made with O_EXCL (a kernel-wide id).
    File(u64),
    /// An active swap area.
    Swap,
}

pub struct Disk {
    pub index: usize,
    pub ubd: Arc<Ubd>,
    holder: Option<Holder>,
}

impl Disk {
    pub fn name(&self) -> String {
        disk_name(self.index)
    }

    pub fn holder(&self) -> Option<Holder> {
        self.holder
    }
}

/// One row of /proc/partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub major: u32,
    pub minor: u32,
    /// Size in 1 KiB blocks.
    pub kib: u64,
    pub name: String,
}

/// Every configured disk, by index.
#[derive(Default)]
pub struct DiskTable {
    disks: BTreeMap<usize, Disk>,
}

impl DiskTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds disk `index` (boot, or a hot-add). EINVAL past `MAX_DISKS`,
    /// EEXIST if the index is taken.
    pub fn insert(&mut self, index: usize, ubd: Arc<Ubd>) -> KResult<()> {
        if index >= MAX_DISKS {
            return Err(Errno::EINVAL);
        }
        if self.disks.contains_key(&index) {
            return Err(Errno::EEXIST);
        }
        self.disks.insert(
            index,
            Disk {
                index,
                ubd,
                holder: None,
            },
        );
        Ok(())
    }

    /// Removes disk `index` (hot-remove): EBUSY while it is held, ENXIO
    /// if there is none.
    pub fn remove(&mut self, index: usize) -> KResult<Arc<Ubd>> {
        match self.disks.get(&index) {
            None => Err(Errno::ENXIO),
            Some(d) if d.holder.is_some() => Err(Errno::EBUSY),
            Some(_) => Ok(self.disks.remove(&index).expect("checked").ubd),
        }
    }

    pub fn get(&self, index: usize) -> Option<&Disk> {
        self.disks.get(&index)
    }

    /// The disk a device number names (a whole disk; partitions are not
    /// supported, so their minors name nothing).
    pub fn by_rdev(&self, rdev: u64) -> Option<&Disk> {
        let (major, minor) = crate::fs::devices::decode_dev(rdev);
        if major != UBD_MAJOR || minor % UBD_MINORS != 0 {
            return None;
        }
        self.disks.get(&((minor / UBD_MINORS) as usize))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Disk> {
        self.disks.values()
    }

    /// Claims disk `index` for `who`: EBUSY if anyone holds it already.
    pub fn claim(&mut self, index: usize, who: Holder) -> KResult<()> {
        let d = self.disks.get_mut(&index).ok_or(Errno::ENXIO)?;
        if d.holder.is_some() {
            return Err(Errno::EBUSY);
        }
        d.holder = Some(who);
        Ok(())
    }

    /// Gives up `who`'s claim, wherever it is (no-op if it holds nothing).
    pub fn release(&mut self, who: Holder) {
        for d in self.disks.values_mut() {
            if d.holder == Some(who) {
                d.holder = None;
            }
        }
    }

    /// Gives up whatever claim disk `index` has (swapoff: several disks
    /// may be held by `Holder::Swap`).
    pub fn release_disk(&mut self, index: usize) {
        if let Some(d) = self.disks.get_mut(&index) {
            d.holder = None;
        }
    }

    /// The disk mount `mnt` is on, if it is on one.
    pub fn of_mount(&self, mnt: usize) -> Option<&Disk> {
        self.disks
            .values()
            .find(|d| d.holder == Some(Holder::Mount(mnt)))
    }

    /// /proc/partitions rows, in device order.
    pub fn partitions(&self) -> Vec<Partition> {
        self.disks
            .values()
            .map(|d| {
                let (major, minor) = disk_dev(d.index);
                Partition {
                    major,
                    minor,
                    kib: d.ubd.size() / 1024,
                    name: d.name(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{UbdFlags, UbdMode, UbdSpec};
    use crate::fs::devices::encode_dev;

    fn disk(dir: &std::path::Path, name: &str, size: usize) -> Arc<Ubd> {
        let p = dir.join(name);
        std::fs::write(&p, vec![0u8; size]).unwrap();
        let spec = UbdSpec {
            index: 0,
            flags: UbdFlags::default(),
            file: p,
            backing: None,
            mode: UbdMode::Copy,
        };
        Arc::new(Ubd::open(&spec).unwrap())
    }

    #[test]
    fn names_and_numbers_are_umls() {
        assert_eq!(disk_name(0), "ubda");
        assert_eq!(disk_name(1), "ubdb");
        assert_eq!(disk_name(15), "ubdp");
        assert_eq!(disk_dev(0), (98, 0));
        assert_eq!(disk_dev(2), (98, 32));
    }

    #[test]
    fn lookup_by_device_number() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = DiskTable::new();
        t.insert(0, disk(dir.path(), "a", 8192)).unwrap();
        t.insert(2, disk(dir.path(), "c", 4096)).unwrap();
        assert_eq!(
            t.insert(2, disk(dir.path(), "c2", 4096)),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            t.insert(MAX_DISKS, disk(dir.path(), "x", 4096)),
            Err(Errno::EINVAL)
        );
        assert_eq!(t.by_rdev(encode_dev(98, 0)).unwrap().index, 0);
        assert_eq!(t.by_rdev(encode_dev(98, 32)).unwrap().index, 2);
        assert!(t.by_rdev(encode_dev(98, 16)).is_none(), "no disk 1");
        assert!(t.by_rdev(encode_dev(98, 33)).is_none(), "a partition");
        assert!(t.by_rdev(encode_dev(8, 0)).is_none(), "not a ubd");
        let p = t.partitions();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].major, p[1].minor, p[1].kib), (98, 32, 4));
        assert_eq!(p[0].name, "ubda");
    }

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = DiskTable::new();
        t.insert(1, disk(dir.path(), "b", 4096)).unwrap();
        assert_eq!(t.claim(0, Holder::Mount(3)), Err(Errno::ENXIO));
        t.claim(1, Holder::Mount(3)).unwrap();
        assert_eq!(t.claim(1, Holder::Mount(4)), Err(Errno::EBUSY));
        assert_eq!(t.claim(1, Holder::File(7)), Err(Errno::EBUSY));
        assert_eq!(t.of_mount(3).unwrap().index, 1);
        assert_eq!(t.remove(1).err(), Some(Errno::EBUSY));
        t.release(Holder::Mount(4)); // not the holder: nothing changes
        assert_eq!(t.get(1).unwrap().holder(), Some(Holder::Mount(3)));
        t.release(Holder::Mount(3));
        assert!(t.of_mount(3).is_none());
        t.claim(1, Holder::File(7)).unwrap();
        t.release(Holder::File(7));
        assert!(t.remove(1).is_ok());
        assert_eq!(t.remove(1).err(), Some(Errno::ENXIO));
    }
}
