//! A minimal sysfs (`mount -t sysfs`): the tree programs read first,
//! built at mount time on a tmpfs instance — /sys/kernel, /sys/class,
//! /sys/dev, /sys/fs/cgroup (empty: cgroup2 mounts there, fs/cgroupfs.rs),
//! /sys/devices/system/cpu (one CPU:
//! online, possible, present, cpu0) and /sys/block/ubdX with `dev`, `size`
//! (512-byte sectors) and `ro`. A snapshot: a disk hot-added later shows
//! in a new mount. Not there: uevents, attributes that can be written,
//! /sys/class/net (no network devices yet).

use std::rc::Rc;

use super::core::Kernel;
use crate::block::disks::{disk_dev, disk_name};
use crate::errno::KResult;
use crate::fs::{FileSystem, Ino, S_IFREG};

fn dir(fs: &dyn FileSystem, parent: Ino, name: &str) -> KResult<Ino> {
    fs.mkdir(parent, name.as_bytes(), 0o755, 0, 0)
}

fn file(fs: &dyn FileSystem, parent: Ino, name: &str, text: &str) -> KResult<()> {
    let ino = fs.create(parent, name.as_bytes(), S_IFREG | 0o444, 0, 0, 0)?;
    fs.write(ino, 0, text.as_bytes())?;
    Ok(())
}

impl Kernel {
    pub fn new_sysfs(&self) -> KResult<Rc<dyn FileSystem>> {
        let fs = self.new_tmpfs(0o555);
        let f = fs.as_ref();
        let root = f.root();
        for d in [
            "kernel", "class", "dev", "bus", "firmware", "module", "power",
        ] {
            dir(f, root, d)?;
        }
        let fsdir = dir(f, root, "fs")?;
        dir(f, fsdir, "cgroup")?;
        let devices = dir(f, root, "devices")?;
        let system = dir(f, devices, "system")?;
        let cpu = dir(f, system, "cpu")?;
        for name in ["online", "possible", "present"] {
            file(f, cpu, name, "0\n")?;
        }
        let cpu0 = dir(f, cpu, "cpu0")?;
        file(f, cpu0, "online", "1\n")?;
        let block = dir(f, root, "block")?;
        for d in self.disks.iter() {
            let b = dir(f, block, &disk_name(d.index))?;
            let (major, minor) = disk_dev(d.index);
            file(f, b, "dev", &format!("{major}:{minor}\n"))?;
            file(f, b, "size", &format!("{}\n", d.ubd.size() / 512))?;
            file(f, b, "ro", &format!("{}\n", d.ubd.read_only() as u8))?;
        }
        Ok(fs)
    }
}
