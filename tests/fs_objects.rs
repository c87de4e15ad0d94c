//! Cross-module checks of the kernel-independent file objects: a /dev made
//! in a tmpfs, /proc parsed the way busybox parses it, a fifo node in a
//! tmpfs backed by a pipe, and a tty feeding a pipe.

use std::collections::HashMap;
use std::rc::Rc;

use umlrun::errno::Errno;
use umlrun::fs::devices::{decode_dev, populate_dev, BlockNode, CharDevice};
use umlrun::fs::pipe::Pipe;
use umlrun::fs::procfs::*;
use umlrun::fs::tmpfs::{Tmpfs, TmpfsOptions, VecPageStore};
use umlrun::fs::tty::{ReadResult, Tty};
use umlrun::fs::*;

fn tmpfs() -> Tmpfs {
    Tmpfs::new(
        Rc::new(VecPageStore::new()),
        Rc::new(Timespec::default),
        TmpfsOptions::default(),
    )
}

fn walk(fs: &dyn FileSystem, path: &str) -> Ino {
    let mut i = fs.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        i = fs
            .lookup(i, part.as_bytes())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    i
}

fn cat(fs: &dyn FileSystem, path: &str) -> String {
    let i = walk(fs, path);
    let mut buf = vec![0u8; 1 << 16];
    let n = fs.read(i, 0, &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn dev_in_a_tmpfs() {
    let fs = tmpfs();
    let disks = [
        BlockNode {
            name: "ubda".into(),
            major: 98,
            minor: 0,
        },
        BlockNode {
            name: "ubdc".into(),
            major: 98,
            minor: 32,
        },
    ];
    populate_dev(&fs, &disks).unwrap();
    let expect = [
        ("null", CharDevice::Null, (1, 3)),
        ("zero", CharDevice::Zero, (1, 5)),
        ("full", CharDevice::Full, (1, 7)),
        ("random", CharDevice::Random, (1, 8)),
        ("urandom", CharDevice::Urandom, (1, 9)),
        ("console", CharDevice::Console, (5, 1)),
        ("tty0", CharDevice::Console, (4, 0)),
        ("tty", CharDevice::Tty, (5, 0)),
    ];
    for (name, dev, majmin) in expect {
        let st = fs.stat(walk(&fs, name)).unwrap();
        assert_eq!(st.mode & S_IFMT, S_IFCHR, "{name}");
        assert_eq!(decode_dev(st.rdev), majmin, "{name}");
        assert_eq!(CharDevice::from_rdev(st.rdev), Some(dev), "{name}");
    }
    assert_eq!(fs.stat(walk(&fs, "null")).unwrap().mode, S_IFCHR | 0o666);
    assert_eq!(fs.readlink(walk(&fs, "fd")).unwrap(), b"/proc/self/fd");
    assert_eq!(
        fs.readlink(walk(&fs, "stderr")).unwrap(),
        b"/proc/self/fd/2"
    );
    assert_eq!(fs.stat(walk(&fs, "shm")).unwrap().mode, S_IFDIR | 0o1777);
    assert_eq!(fs.stat(walk(&fs, "pts")).unwrap().mode & S_IFMT, S_IFDIR);
    for (name, majmin) in [("ubda", (98, 0)), ("ubdc", (98, 32))] {
        let st = fs.stat(walk(&fs, name)).unwrap();
        assert_eq!(st.mode, S_IFBLK | 0o600, "{name}");
        assert_eq!(decode_dev(st.rdev), majmin, "{name}");
    }
    assert_eq!(fs.lookup(fs.root(), b"ubdb"), Err(Errno::ENOENT));
    // Populating twice is refused, not duplicated.
    assert_eq!(populate_dev(&fs, &[]), Err(Errno::EEXIST));
}

#[test]
fn fifo_node_keyed_to_a_pipe() {
    let fs = tmpfs();
    let ino = fs
        .create(fs.root(), b"fifo", S_IFIFO | 0o644, 0, 0, 0)
        .unwrap();
    assert_eq!(fs.stat(ino).unwrap().mode & S_IFMT, S_IFIFO);
    let mut pipes: HashMap<Ino, Pipe> = HashMap::new();
    let p = pipes.entry(ino).or_default();
    p.open_reader();
    p.open_writer();
    assert_eq!(p.write(b"through the fifo"), Ok(16));
    let p = pipes
        .get_mut(&fs.lookup(fs.root(), b"fifo").unwrap())
        .unwrap();
    let mut b = [0u8; 32];
    assert_eq!(p.read(&mut b), Ok(16));
    p.close_writer();
    assert_eq!(p.read(&mut b), Ok(0));
}

#[test]
fn tty_line_into_a_pipe() {
    let mut tty = Tty::new();
    tty.set_controlling(1, 1, false).unwrap();
    let r = tty.ldisc.input(b"echo hi\x7f\x7fok\r");
    assert_eq!(r.echo, b"echo hi\x08 \x08\x08 \x08ok\r\n");
    let mut pipe = Pipe::new();
    pipe.open_reader();
    pipe.open_writer();
    let mut line = [0u8; 64];
    let ReadResult::Data(n) = tty.ldisc.read(&mut line) else {
        panic!("no line")
    };
    assert_eq!(pipe.write(&line[..n]), Ok(n));
    let mut out = [0u8; 64];
    assert_eq!(pipe.read(&mut out), Ok(8));
    assert_eq!(&out[..8], b"echo ok\n");
    assert_eq!(tty.ldisc.input(b"\x03").signals, vec![2]);
}

struct Source;

impl ProcSource for Source {
    fn meminfo(&self) -> MemInfo {
        MemInfo {
            total: 262144,
            free: 250000,
            available: 255000,
            buffers: 0,
            cached: 4096,
            s_reclaimable: 10,
            ..Default::default()
        }
    }
    fn pids(&self) -> Vec<u32> {
        vec![1, 17]
    }
    fn task(&self, pid: u32) -> Option<TaskInfo> {
        let base = TaskInfo {
            vsize_bytes: 1 << 20,
            rss_pages: 64,
            utime: 5,
            stime: 6,
            start_time: 100,
            ..Default::default()
        };
        match pid {
            1 => Some(base),
            17 => Some(TaskInfo {
                pid: 17,
                ppid: 1,
                pgrp: 17,
                session: 1,
                comm: b"sleep) x".to_vec(),
                state: 'S',
                ..base
            }),
            _ => None,
        }
    }
    fn current_pid(&self) -> u32 {
        17
    }
    fn mounts(&self, _pid: u32) -> Vec<MountInfo> {
        vec![
            MountInfo {
                id: 21,
                parent: 1,
                dev: (98, 0),
                device: b"/dev/ubda".to_vec(),
                mount_point: b"/".to_vec(),
                fs_type: "ext2".into(),
                options: "rw,relatime".into(),
            },
            MountInfo {
                id: 22,
                parent: 21,
                dev: (0, 33),
                device: b"proc".to_vec(),
                mount_point: b"/proc".to_vec(),
                fs_type: "proc".into(),
                options: "rw,nosuid,nodev,noexec,relatime".into(),
            },
        ]
    }
    fn uptime(&self) -> (f64, f64) {
        (61.0, 60.5)
    }
    fn loadavg(&self) -> LoadAvg {
        LoadAvg {
            one: 0.5,
            five: 0.25,
            fifteen: 0.125,
            running: 1,
            total: 2,
            last_pid: 17,
        }
    }
    fn cpu_count(&self) -> u32 {
        1
    }
    fn kernel_version(&self) -> String {
        "6.1.0-umlrun".into()
    }
    fn filesystems(&self) -> Vec<(&'static str, bool)> {
        vec![("ext2", false), ("proc", true), ("tmpfs", true)]
    }
    fn fds(&self, _pid: u32) -> Vec<(u32, Vec<u8>)> {
        vec![(0, b"/dev/console".to_vec())]
    }
    fn maps(&self, _pid: u32) -> Vec<MapInfo> {
        vec![MapInfo {
            start: 0x400000,
            end: 0x500000,
            read: true,
            exec: true,
            inode: 12,
            dev_major: 0x62,
            name: b"/bin/busybox".to_vec(),
            ..Default::default()
        }]
    }
    fn cmdline(&self, _pid: u32) -> Vec<u8> {
        b"sleep\x00100\x00".to_vec()
    }
    fn sys_stat(&self) -> SysStat {
        SysStat {
            cpus: vec![CpuTimes {
                user: 10,
                system: 5,
                idle: 100,
                ..Default::default()
            }],
            btime: 1_700_000_000,
            processes: 17,
            procs_running: 1,
            ..Default::default()
        }
    }
}

/// libbb/procps.c: split at the last ')', then scan state, ppid, pgid, sid,
/// tty, skip 6, utime, stime, skip 3, nice, skip 2, start_time, vsize, rss
/// (and more on SMP builds); fewer than 11 conversions = bogus entry.
fn busybox_parse_stat(text: &str) -> (String, Vec<i64>) {
    let close = text.rfind(')').unwrap();
    assert_eq!(&text[close + 1..close + 2], " ");
    let comm = text[text.find('(').unwrap() + 1..close].to_string();
    let f: Vec<&str> = text[close + 2..].split_whitespace().collect();
    assert!(f[0].len() == 1);
    let num = |i: usize| f[i].parse::<i64>().unwrap();
    // state ppid pgid sid tty | tpgid flags minflt cminflt majflt cmajflt | utime stime | cutime cstime prio | nice | threads itreal | start vsz rss ... processor
    let picked = vec![
        num(1),
        num(2),
        num(3),
        num(4),
        num(11),
        num(12),
        num(16),
        num(19),
        num(20),
        num(21),
        num(36),
    ];
    (comm, picked)
}

#[test]
fn proc_parsed_like_busybox() {
    let fs = ProcFs::new(Rc::new(Source));
    // ps: /proc/<pid>/stat, with a comm that contains ") ".
    let (comm, v) = busybox_parse_stat(&cat(&fs, "17/stat"));
    assert_eq!(comm, "sleep) x");
    assert_eq!(v, vec![1, 17, 1, 0, 5, 6, 0, 100, 1 << 20, 64, 0]);
    // ps reads the user from the owner of /proc/<pid>, args from cmdline.
    assert_eq!(fs.stat(walk(&fs, "17")).unwrap().uid, 0);
    // (The VFS follows the "self" link; here we follow it by hand.)
    let me = String::from_utf8(fs.readlink(walk(&fs, "self")).unwrap()).unwrap();
    assert_eq!(me, "17");
    assert_eq!(cat(&fs, &format!("{me}/cmdline")), "sleep\x00100\x00");
    // free: "Cached: %lu kB" style lines.
    let mem: HashMap<String, u64> = cat(&fs, "meminfo")
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (
                w.next().unwrap().trim_end_matches(':').to_string(),
                w.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(mem["MemTotal"], 262144);
    assert_eq!(mem["MemAvailable"], 255000);
    assert_eq!(mem["Cached"], 4096);
    assert_eq!(mem["SReclaimable"], 10);
    // top: "cpu  %llu %llu ..." needs at least 4 numbers; btime/processes lines.
    let stat = cat(&fs, "stat");
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .strip_prefix("cpu  ")
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(&cpu[..4], &[10, 0, 5, 100]);
    assert!(stat.lines().any(|l| l == "processes 17"));
    // top's header: /proc/loadavg verbatim; uptime-like readers: /proc/uptime.
    assert_eq!(cat(&fs, "loadavg"), "0.50 0.25 0.13 1/2 17\n");
    assert_eq!(cat(&fs, "uptime"), "61.00 60.50\n");
    // mount/df: getmntent wants 6 space-separated fields per line.
    for l in cat(&fs, "mounts").lines() {
        assert_eq!(l.split(' ').count(), 6, "{l}");
    }
    assert_eq!(cat(&fs, &format!("{me}/mounts")), cat(&fs, "mounts"));
    // maps: start-end perms offset dev inode path.
    let maps = cat(&fs, "1/maps");
    let f: Vec<&str> = maps.split_whitespace().collect();
    assert_eq!(
        f,
        vec![
            "00400000-00500000",
            "r-xp",
            "00000000",
            "62:00",
            "12",
            "/bin/busybox"
        ]
    );
    // /proc/self/fd/0 resolves through the self link.
    assert_eq!(
        fs.readlink(walk(&fs, &format!("{me}/fd/0"))).unwrap(),
        b"/dev/console"
    );
    assert_eq!(
        cat(&fs, "filesystems"),
        "\text2\nnodev\tproc\nnodev\ttmpfs\n"
    );
}
