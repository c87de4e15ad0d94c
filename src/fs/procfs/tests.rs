//! procfs tree tests with a fake `ProcSource`.

use super::*;

struct Fake;

impl ProcSource for Fake {
    fn meminfo(&self) -> MemInfo {
        MemInfo {
            total: 65536,
            free: 60000,
            available: 61000,
            ..Default::default()
        }
    }
    fn pids(&self) -> Vec<u32> {
        vec![42, 1]
    }
    fn task(&self, pid: u32) -> Option<TaskInfo> {
        match pid {
            1 => Some(TaskInfo {
                exe: b"/sbin/init".to_vec(),
                exe_node: Some((0, 77)),
                cwd: b"/".to_vec(),
                root: b"/srv/jail".to_vec(),
                ..Default::default()
            }),
            42 => Some(TaskInfo {
                pid: 42,
                ppid: 1,
                comm: b"sh".to_vec(),
                uid: 1000,
                euid: 1000,
                gid: 100,
                egid: 100,
                ..Default::default()
            }),
            _ => None,
        }
    }
    fn current_pid(&self) -> u32 {
        42
    }
    fn mounts(&self, _pid: u32) -> Vec<MountInfo> {
        vec![MountInfo {
            device: b"proc".to_vec(),
            mount_point: b"/proc".to_vec(),
            fs_type: "proc".into(),
            options: "rw".into(),
            ..Default::default()
        }]
    }
    fn uptime(&self) -> (f64, f64) {
        (12.5, 3.25)
    }
    fn kernel_cmdline(&self) -> Vec<u8> {
        b"mem=64M ubd0=d.cow init=/bin/sh".to_vec()
    }
    fn loadavg(&self) -> LoadAvg {
        LoadAvg {
            running: 1,
            total: 2,
            last_pid: 42,
            ..Default::default()
        }
    }
    fn cpu_count(&self) -> u32 {
        1
    }
    fn kernel_version(&self) -> String {
        "6.1.0-umlrun".into()
    }
    fn filesystems(&self) -> Vec<(&'static str, bool)> {
        vec![("ext2", false), ("proc", true)]
    }
    fn partitions(&self) -> Vec<PartitionInfo> {
        vec![
            PartitionInfo {
                major: 98,
                minor: 0,
                kib: 65536,
                name: "ubda".into(),
            },
            PartitionInfo {
                major: 98,
                minor: 16,
                kib: 1024,
                name: "ubdb".into(),
            },
        ]
    }
    fn fds(&self, pid: u32) -> Vec<(u32, Vec<u8>)> {
        if pid == 42 {
            vec![
                (0, b"/dev/console".to_vec()),
                (1, b"/dev/console".to_vec()),
                (10, b"pipe:[7]".to_vec()),
            ]
        } else {
            vec![]
        }
    }
    fn fd_node(&self, pid: u32, fd: u32) -> Option<(usize, u64)> {
        (pid == 42 && fd == 1).then_some((0, 5))
    }
    fn maps(&self, _pid: u32) -> Vec<MapInfo> {
        vec![]
    }
    fn cmdline(&self, pid: u32) -> Vec<u8> {
        if pid == 42 {
            b"-sh\0-c\0ls\0".to_vec()
        } else {
            b"init\0".to_vec()
        }
    }
    fn sys_stat(&self) -> SysStat {
        SysStat {
            cpus: vec![CpuTimes::default()],
            btime: 1000,
            ..Default::default()
        }
    }
}

fn proc() -> ProcFs {
    ProcFs::new(Rc::new(Fake))
}

fn walk(fs: &ProcFs, path: &str) -> KResult<Ino> {
    let mut i = fs.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        i = fs.lookup(i, part.as_bytes())?;
    }
    Ok(i)
}

fn cat(fs: &ProcFs, path: &str) -> String {
    let i = walk(fs, path).unwrap();
    // Read in small pieces, as a reader with a short buffer would.
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = fs.read(i, out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn root_listing() {
    let fs = proc();
    let names: Vec<String> = fs
        .readdir(fs.root())
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect();
    assert_eq!(&names[..2], &[".", ".."]);
    assert!(names.contains(&"meminfo".to_string()) && names.contains(&"self".to_string()));
    assert_eq!(&names[names.len() - 2..], &["1", "42"]);
    assert_eq!(fs.fs_type(), "proc");
    assert_eq!(fs.statfs().unwrap().fs_type, 0x9fa0);
}

#[test]
fn global_files() {
    let fs = proc();
    assert!(cat(&fs, "meminfo").starts_with("MemTotal:          65536 kB\n"));
    assert_eq!(cat(&fs, "uptime"), "12.50 3.25\n");
    assert_eq!(cat(&fs, "loadavg"), "0.00 0.00 0.00 1/2 42\n");
    assert_eq!(cat(&fs, "filesystems"), "\text2\nnodev\tproc\n");
    assert_eq!(cat(&fs, "mounts"), "proc /proc proc rw 0 0\n");
    // Linux's "%4d  %7d %10llu %pg" under a header and a blank line.
    assert_eq!(
        cat(&fs, "partitions"),
        "major minor  #blocks  name\n\n  98        0      65536 ubda\n  98       16       1024 ubdb\n"
    );
    assert_eq!(cat(&fs, "sys/kernel/hostname"), "umlrun\n");
    assert_eq!(cat(&fs, "sys/kernel/osrelease"), "6.1.0-umlrun\n");
    assert!(cat(&fs, "stat").contains("btime 1000\n"));
    assert!(cat(&fs, "version").starts_with("Linux version 6.1.0-umlrun"));
    assert!(cat(&fs, "cpuinfo").starts_with("processor\t: 0\n"));
    assert_eq!(cat(&fs, "cmdline"), "mem=64M ubd0=d.cow init=/bin/sh\n");
}

#[test]
fn self_and_pid_dirs() {
    let fs = proc();
    let me = walk(&fs, "self").unwrap();
    assert_eq!(fs.readlink(me).unwrap(), b"42");
    assert_eq!(fs.stat(me).unwrap().mode, S_IFLNK | 0o777);
    let d = walk(&fs, "42").unwrap();
    let st = fs.stat(d).unwrap();
    assert_eq!((st.mode, st.uid, st.gid), (S_IFDIR | 0o555, 1000, 100));
    assert_eq!(fs.lookup(d, b".."), Ok(fs.root()));
    assert!(cat(&fs, "42/stat").starts_with("42 (sh) S 1 "));
    assert!(cat(&fs, "42/status").contains("\nUid:\t1000\t1000\t1000\t1000\n"));
    assert_eq!(cat(&fs, "42/cmdline"), "-sh\0-c\0ls\0");
    assert_eq!(cat(&fs, "42/comm"), "sh\n");
    assert_eq!(cat(&fs, "42/mounts"), "proc /proc proc rw 0 0\n");
    assert_eq!(walk(&fs, "7"), Err(Errno::ENOENT));
    assert_eq!(walk(&fs, "042"), Err(Errno::ENOENT));
    assert_eq!(walk(&fs, "0"), Err(Errno::ENOENT));
    assert_eq!(walk(&fs, "42/nope"), Err(Errno::ENOENT));
    assert_eq!(
        fs.readlink(walk(&fs, "1/exe").unwrap()).unwrap(),
        b"/sbin/init"
    );
    assert_eq!(
        fs.readlink(walk(&fs, "42/exe").unwrap()),
        Err(Errno::ENOENT)
    );
    assert_eq!(fs.readlink(walk(&fs, "1/cwd").unwrap()).unwrap(), b"/");
    assert_eq!(
        fs.readlink(walk(&fs, "1/root").unwrap()).unwrap(),
        b"/srv/jail"
    );
    assert_eq!(
        fs.readlink(walk(&fs, "42/root").unwrap()),
        Err(Errno::ENOENT),
        "no root known"
    );
}

#[test]
fn fd_directory() {
    let fs = proc();
    let fd = walk(&fs, "42/fd").unwrap();
    assert_eq!(fs.stat(fd).unwrap().mode, S_IFDIR | 0o500);
    let names: Vec<Vec<u8>> = fs
        .readdir(fd)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        vec![
            b".".to_vec(),
            b"..".to_vec(),
            b"0".to_vec(),
            b"1".to_vec(),
            b"10".to_vec()
        ]
    );
    let ten = fs.lookup(fd, b"10").unwrap();
    assert_eq!(fs.readlink(ten).unwrap(), b"pipe:[7]");
    assert_eq!(fs.stat(ten).unwrap().mode, S_IFLNK | 0o700);
    assert_eq!(fs.lookup(fd, b"2"), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(fd, b".."), walk(&fs, "42"));
    assert!(fs.readdir(walk(&fs, "1/fd").unwrap()).unwrap().len() == 2);
}

#[test]
fn magic_links_name_the_file_itself() {
    let fs = proc();
    assert_eq!(fs.magic_link(walk(&fs, "1/exe").unwrap()), Some((0, 77)));
    assert_eq!(fs.magic_link(walk(&fs, "42/exe").unwrap()), None);
    assert_eq!(fs.magic_link(walk(&fs, "42/fd/1").unwrap()), Some((0, 5)));
    // A pipe has no file to go to: its link is only text.
    assert_eq!(fs.magic_link(walk(&fs, "42/fd/10").unwrap()), None);
    assert_eq!(fs.magic_link(walk(&fs, "1/cwd").unwrap()), None);
    assert_eq!(fs.magic_link(walk(&fs, "self").unwrap()), None);
    assert_eq!(fs.magic_link(walk(&fs, "42").unwrap()), None);
}

#[test]
fn errors_and_bad_inodes() {
    let fs = proc();
    let m = walk(&fs, "meminfo").unwrap();
    assert_eq!(fs.write(m, 0, b"x"), Err(Errno::EACCES));
    assert_eq!(
        fs.create(fs.root(), b"x", S_IFREG, 0, 0, 0),
        Err(Errno::EACCES)
    );
    assert_eq!(fs.readdir(m), Err(Errno::ENOTDIR));
    assert_eq!(fs.read(fs.root(), 0, &mut [0u8; 4]), Err(Errno::EISDIR));
    assert_eq!(fs.readlink(m), Err(Errno::EINVAL));
    assert_eq!(fs.lookup(m, b"x"), Err(Errno::ENOTDIR));
    for bad in [
        0u64,
        99 << 24,
        (7u64 << 32) | (1 << 24),
        (42u64 << 32) | (99 << 24),
        (42u64 << 32) | (7 << 24) | 5,
        1 << 24 | 3,
    ] {
        assert_eq!(fs.stat(bad), Err(Errno::ENOENT), "ino {bad:#x}");
    }
    // Reads past the end are empty.
    assert_eq!(fs.read(m, 1 << 40, &mut [0u8; 4]), Ok(0));
}

#[test]
fn sysctl_tree() {
    let fs = proc();
    let names = |p: &str| -> Vec<Vec<u8>> {
        fs.readdir(walk(&fs, p).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n != b"." && n != b"..")
            .collect()
    };
    assert_eq!(
        names("sys"),
        vec![b"fs".to_vec(), b"kernel".to_vec(), b"vm".to_vec()]
    );
    assert_eq!(
        names("sys/kernel/random"),
        vec![b"boot_id".to_vec(), b"uuid".to_vec()]
    );
    assert_eq!(cat(&fs, "sys/kernel/pid_max"), "4194304\n");
    assert_eq!(cat(&fs, "sys/fs/nr_open"), "1048576\n");
    assert_eq!(cat(&fs, "sys/fs/file-max"), "8192\n");
    assert_eq!(cat(&fs, "sys/fs/file-nr"), "0\t0\t8192\n");
    assert_eq!(cat(&fs, "sys/fs/pipe-max-size"), "1048576\n");
    assert_eq!(cat(&fs, "sys/fs/pipe-user-pages-soft"), "16384\n");
    assert_eq!(cat(&fs, "sys/fs/pipe-user-pages-hard"), "0\n");
    assert_eq!(names("sys/fs/epoll"), vec![b"max_user_watches".to_vec()]);
    assert_eq!(cat(&fs, "sys/fs/epoll/max_user_watches"), "53687\n");
    assert_eq!(
        names("sys/fs/inotify"),
        vec![b"max_user_instances".to_vec()]
    );
    assert_eq!(cat(&fs, "sys/fs/inotify/max_user_instances"), "128\n");
    // Writable by root (mode 0644); this source takes no write: EACCES.
    let soft = walk(&fs, "sys/fs/pipe-user-pages-soft").unwrap();
    assert_eq!(fs.stat(soft).unwrap().mode & 0o777, 0o644);
    assert_eq!(fs.write(soft, 0, b"12\n"), Err(Errno::EACCES));
    assert_eq!(fs.write(soft, 0, b"-1\n"), Err(Errno::EINVAL));
    assert_eq!(fs.write(soft, 0, b"x"), Err(Errno::EINVAL));
    let inst = walk(&fs, "sys/fs/inotify/max_user_instances").unwrap();
    assert_eq!(fs.write(inst, 0, b"2147483648"), Err(Errno::EINVAL));
    assert_eq!(fs.write(inst, 3, b"1"), Err(Errno::EINVAL));
    assert_eq!(cat(&fs, "sys/vm/max_map_count"), "65530\n");
    assert_eq!(cat(&fs, "sys/vm/overcommit_memory"), "0\n");
    assert_eq!(cat(&fs, "sys/kernel/random/uuid").len(), 37);
    let random = walk(&fs, "sys/kernel/random").unwrap();
    assert_eq!(fs.lookup(random, b".."), walk(&fs, "sys/kernel"));
    // Only hostname takes writes, and only where the source takes them.
    let host = walk(&fs, "sys/kernel/hostname").unwrap();
    assert_eq!(fs.stat(host).unwrap().mode & 0o777, 0o644);
    assert_eq!(fs.write(host, 0, b"x\n"), Err(Errno::EACCES));
    let pid_max = walk(&fs, "sys/kernel/pid_max").unwrap();
    assert_eq!(fs.write(pid_max, 0, b"5\n"), Err(Errno::EACCES));
    assert_eq!(fs.stat(pid_max).unwrap().mode & 0o777, 0o444);
}

#[test]
fn uuids_are_version_4() {
    let u = uuid_text([0xff; 16]);
    assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    assert_eq!(uuid_text([0; 16]), "00000000-0000-4000-8000-000000000000");
}

#[test]
fn task_dirs_hold_no_task_dir_and_lead_back_up() {
    let fs = proc();
    let t = walk(&fs, "/42/task/42").unwrap();
    assert_ne!(
        t,
        walk(&fs, "/42").unwrap(),
        "task/<tid> is not /proc/<pid> (find would loop)"
    );
    let names: Vec<Vec<u8>> = fs.readdir(t).unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.iter().any(|n| n == b"status"));
    assert!(!names.iter().any(|n| n == b"task"));
    assert_eq!(fs.lookup(t, b"..").unwrap(), walk(&fs, "/42/task").unwrap());
    assert_eq!(walk(&fs, "/42/task/1"), Err(Errno::ENOENT));
    assert!(cat(&fs, "/42/task/42/status").contains("sh"));
    assert!(cat(&fs, "/vmstat").starts_with("nr_free_pages "));
    assert!(cat(&fs, "/42/mountinfo").is_empty() || cat(&fs, "/42/mountinfo").contains(" - "));
}

#[test]
fn oom_files_and_writable_comm() {
    let fs = proc();
    assert_eq!(cat(&fs, "/42/oom_score_adj"), "0\n");
    assert_eq!(cat(&fs, "/42/oom_adj"), "0\n");
    assert_eq!(cat(&fs, "/42/oom_score"), "0\n");
    let mode = |p: &str| fs.stat(walk(&fs, p).unwrap()).unwrap().mode & 0o7777;
    assert_eq!(mode("/42/oom_score_adj"), 0o644);
    assert_eq!(mode("/42/oom_adj"), 0o644);
    assert_eq!(mode("/42/comm"), 0o644);
    assert_eq!(mode("/42/oom_score"), 0o444);
    let w = |p: &str, d: &[u8]| fs.write(walk(&fs, p).unwrap(), 0, d);
    // Out of range or not a number: EINVAL before anything is asked of
    // the source; another process's comm: EINVAL.
    assert_eq!(w("/42/oom_score_adj", b"1001"), Err(Errno::EINVAL));
    assert_eq!(w("/42/oom_adj", b"-18"), Err(Errno::EINVAL));
    assert_eq!(w("/42/oom_score_adj", b"x"), Err(Errno::EINVAL));
    assert_eq!(w("/1/comm", b"x"), Err(Errno::EINVAL));
    // Unprivileged, below the floor (0): EACCES.
    assert_eq!(w("/42/oom_score_adj", b"-1"), Err(Errno::EACCES));
    assert_eq!(w("/42/oom_score", b"1"), Err(Errno::EACCES));
    assert_eq!(w("/42/stat", b"1"), Err(Errno::EACCES));
    // task/ lists the process alone when it has no other thread; another
    // id there is ENOENT.
    let names: Vec<Vec<u8>> = fs
        .readdir(walk(&fs, "/42/task").unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b".".to_vec(), b"..".to_vec(), b"42".to_vec()]);
    assert_eq!(walk(&fs, "/42/task/1"), Err(Errno::ENOENT));
}
