//! The text of each /proc file, byte for byte as Linux prints it
//! (fs/proc/meminfo.c, array.c, task_mmu.c, proc_namespace.c, ...).

use std::fmt::Write;

use super::source::*;

/// RLIM_INFINITY as stat's rsslim prints it.
const RLIM_INFINITY: u64 = u64::MAX;
/// SIGCHLD, the exit_signal of ordinary processes.
const SIGCHLD: u32 = crate::abi::sig::SIGCHLD as u32;

/// Bytes, shown lossily where Linux would print them raw into text.
fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Linux's task comm: at most 15 bytes.
fn comm(t: &TaskInfo) -> String {
    s(&t.comm[..t.comm.len().min(15)])
}

pub fn meminfo(m: &MemInfo) -> String {
    let mut o = String::new();
    let kb = |o: &mut String, name: &str, v: u64| {
        let _ = writeln!(o, "{:<16}{:>8} kB", format!("{name}:"), v);
    };
    kb(&mut o, "MemTotal", m.total);
    kb(&mut o, "MemFree", m.free);
    kb(&mut o, "MemAvailable", m.available);
    kb(&mut o, "Buffers", m.buffers);
    kb(&mut o, "Cached", m.cached);
    kb(&mut o, "SwapCached", m.swap_cached);
    kb(&mut o, "Active", m.active);
    kb(&mut o, "Inactive", m.inactive);
    kb(&mut o, "Active(anon)", m.active_anon);
    kb(&mut o, "Inactive(anon)", m.inactive_anon);
    kb(&mut o, "Active(file)", m.active_file);
    kb(&mut o, "Inactive(file)", m.inactive_file);
    kb(&mut o, "Unevictable", 0);
    kb(&mut o, "Mlocked", 0);
    kb(&mut o, "SwapTotal", m.swap_total);
    kb(&mut o, "SwapFree", m.swap_free);
    kb(&mut o, "Dirty", m.dirty);
    kb(&mut o, "Writeback", m.writeback);
    kb(&mut o, "AnonPages", m.anon_pages);
    kb(&mut o, "Mapped", m.mapped);
    kb(&mut o, "Shmem", m.shmem);
    kb(&mut o, "KReclaimable", m.s_reclaimable);
    kb(&mut o, "Slab", m.slab);
    kb(&mut o, "SReclaimable", m.s_reclaimable);
    kb(&mut o, "SUnreclaim", m.s_unreclaim);
    kb(&mut o, "KernelStack", m.kernel_stack);
    kb(&mut o, "PageTables", m.page_tables);
    kb(&mut o, "NFS_Unstable", 0);
    kb(&mut o, "Bounce", 0);
    kb(&mut o, "WritebackTmp", 0);
    kb(&mut o, "CommitLimit", m.commit_limit);
    kb(&mut o, "Committed_AS", m.committed_as);
    kb(&mut o, "VmallocTotal", 34359738367);
    kb(&mut o, "VmallocUsed", 0);
    kb(&mut o, "VmallocChunk", 0);
    kb(&mut o, "Percpu", 0);
    o.push_str("HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\nHugePages_Surp:        0\n");
    kb(&mut o, "Hugepagesize", 2048);
    kb(&mut o, "Hugetlb", 0);
    o
}

/// /proc/<pid>/stat: 52 fields, comm in parentheses.
pub fn task_stat(t: &TaskInfo) -> String {
    let prio = 20 + t.nice as i64;
    format!(
        "{} ({}) {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
        t.pid, comm(t), t.state, t.ppid, t.pgrp, t.session, t.tty_nr, t.tpgid,
        0x0040_0100u32, // flags: what an ordinary Linux process shows (4194560)
        t.minflt, 0, t.majflt, 0,
        t.utime, t.stime, t.cutime, t.cstime,
        prio, t.nice, t.threads, 0, t.start_time,
        t.vsize_bytes, t.rss_pages, RLIM_INFINITY,
        0, 0, 0, 0, 0, // startcode endcode startstack kstkesp kstkeip
        t.sig_pending, t.sig_blocked, t.sig_ignored, t.sig_caught,
        0, 0, 0, SIGCHLD, 0, 0, 0, // wchan nswap cnswap exit_signal processor rt_priority policy
        0, 0, 0, // delayacct_blkio_ticks guest_time cguest_time
        0, 0, 0, 0, 0, 0, 0, 0, // start_data end_data start_brk arg_start arg_end env_start env_end exit_code
    )
}

fn state_name(c: char) -> &'static str {
    match c {
        'R' => "R (running)",
        'S' => "S (sleeping)",
        'D' => "D (disk sleep)",
        'T' => "T (stopped)",
        't' => "t (tracing stop)",
        'X' => "X (dead)",
        'Z' => "Z (zombie)",
        'P' => "P (parked)",
        'I' => "I (idle)",
        _ => "S (sleeping)",
    }
}

/// /proc/<pid>/status.
pub fn task_status(t: &TaskInfo) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Name:\t{}", comm(t));
    let _ = writeln!(o, "Umask:\t{:04o}", t.umask);
    let _ = writeln!(o, "State:\t{}", state_name(t.state));
    let _ = writeln!(
        o,
        "Tgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0",
        t.tgid(),
        t.pid,
        t.ppid
    );
    let _ = writeln!(o, "Uid:\t{}\t{}\t{}\t{}", t.uid, t.euid, t.euid, t.euid);
    let _ = writeln!(o, "Gid:\t{}\t{}\t{}\t{}", t.gid, t.egid, t.egid, t.egid);
    let _ = writeln!(o, "FDSize:\t64\nGroups:\t");
    let _ = writeln!(
        o,
        "NStgid:\t{}\nNSpid:\t{}\nNSpgid:\t{}\nNSsid:\t{}",
        t.pid, t.pid, t.pgrp, t.session
    );
    if t.state != 'Z' && t.vsize_bytes != 0 {
        let vm = |o: &mut String, name: &str, kb: u64| {
            let _ = writeln!(o, "{name}:\t{kb:>8} kB");
        };
        let size = t.vsize_bytes / 1024;
        let rss = t.rss_pages * 4;
        vm(&mut o, "VmPeak", (t.peak_bytes / 1024).max(size));
        vm(&mut o, "VmSize", size);
        vm(&mut o, "VmLck", t.locked_bytes / 1024);
        vm(&mut o, "VmPin", 0);
        vm(&mut o, "VmHWM", (t.hwm_pages * 4).max(rss));
        vm(&mut o, "VmRSS", rss);
        let (file, shmem) = (t.rss_file_pages * 4, t.rss_shmem_pages * 4);
        vm(&mut o, "RssAnon", rss.saturating_sub(file + shmem));
        vm(&mut o, "RssFile", file);
        vm(&mut o, "RssShmem", shmem);
        vm(&mut o, "VmData", t.vm.data / 1024);
        vm(&mut o, "VmStk", t.vm.stack / 1024);
        vm(&mut o, "VmExe", t.exe_bytes / 1024);
        vm(
            &mut o,
            "VmLib",
            t.vm.exec.saturating_sub(t.exe_bytes) / 1024,
        );
        vm(&mut o, "VmPTE", t.vm.page_tables / 1024);
        vm(&mut o, "VmSwap", t.swap_pages * 4);
    }
    let _ = writeln!(o, "Threads:\t{}", t.threads);
    let _ = writeln!(o, "SigQ:\t0/7823");
    let _ = writeln!(o, "SigPnd:\t{:016x}\nShdPnd:\t{:016x}", t.sig_pending, 0);
    let _ = writeln!(
        o,
        "SigBlk:\t{:016x}\nSigIgn:\t{:016x}\nSigCgt:\t{:016x}",
        t.sig_blocked, t.sig_ignored, t.sig_caught
    );
    let caps = if t.euid == 0 { 0x1ff_ffff_ffffu64 } else { 0 };
    let _ = writeln!(
        o,
        "CapInh:\t{:016x}\nCapPrm:\t{caps:016x}\nCapEff:\t{caps:016x}",
        0
    );
    let _ = writeln!(
        o,
        "CapBnd:\t{:016x}\nCapAmb:\t{:016x}",
        0x1ff_ffff_ffffu64, 0
    );
    let _ = writeln!(o, "NoNewPrivs:\t0\nSeccomp:\t0");
    let _ = writeln!(
        o,
        "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0"
    );
    o
}

/// /proc/<pid>/maps: the name starts at column 73 (after padding), as
/// Linux's seq_pad does on 64-bit; anonymous lines end with a space.
pub fn maps(list: &[MapInfo]) -> String {
    let mut o = String::new();
    for m in list {
        o.push_str(&map_line(m));
        o.push('\n');
    }
    o
}

/// One line of maps (and the head of each smaps entry), without its newline.
pub fn map_line(m: &MapInfo) -> String {
    let mut line = format!(
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        m.start,
        m.end,
        if m.read { 'r' } else { '-' },
        if m.write { 'w' } else { '-' },
        if m.exec { 'x' } else { '-' },
        if m.shared { 's' } else { 'p' },
        m.offset,
        m.dev_major,
        m.dev_minor,
        m.inode
    );
    if !m.name.is_empty() {
        pad_name(&mut line);
        line.push_str(&s(&m.name));
    }
    line
}

/// Pads a maps line to column 73, where the name goes.
pub fn pad_name(line: &mut String) {
    while line.len() < 72 {
        line.push(' ');
    }
    line.push(' ');
}

/// Escapes space, tab, newline and backslash as \ooo, as /proc/mounts does.
pub fn mangle(b: &[u8]) -> String {
    let mut o = String::new();
    for &c in b {
        match c {
            b' ' | b'\t' | b'\n' | b'\\' => {
                let _ = write!(o, "\\{c:03o}");
            }
            _ => o.push_str(&s(&[c])),
        }
    }
    o
}

pub fn mounts(list: &[MountInfo]) -> String {
    let mut o = String::new();
    for m in list {
        let _ = writeln!(
            o,
            "{} {} {} {} 0 0",
            mangle(&m.device),
            mangle(&m.mount_point),
            m.fs_type,
            m.options
        );
    }
    o
}

/// /proc/<pid>/mountinfo: id, parent, major:minor (what stat gives as
/// st_dev on that mount), root, mount point, options, "-", type, source,
/// super options.
pub fn mountinfo(list: &[MountInfo]) -> String {
    let mut o = String::new();
    for m in list {
        let _ = writeln!(
            o,
            "{} {} {}:{} / {} {},relatime - {} {} {}",
            m.id,
            m.parent,
            m.dev.0,
            m.dev.1,
            mangle(&m.mount_point),
            m.options,
            m.fs_type,
            mangle(&m.device),
            m.options
        );
    }
    o
}

/// /proc/vmstat: the page counts procps' vmstat and free read, from the
/// meminfo figures (KiB to pages); event counters not kept are 0.
pub fn vmstat(m: &MemInfo, counters: &[(&'static str, u64)]) -> String {
    let p = |kib: u64| kib / 4;
    let rows: [(&str, u64); 14] = [
        ("nr_free_pages", p(m.free)),
        ("nr_inactive_anon", p(m.inactive_anon)),
        ("nr_active_anon", p(m.active_anon)),
        ("nr_inactive_file", p(m.inactive_file)),
        ("nr_active_file", p(m.active_file)),
        ("nr_anon_pages", p(m.anon_pages)),
        ("nr_mapped", p(m.mapped)),
        ("nr_file_pages", p(m.cached)),
        ("nr_dirty", p(m.dirty)),
        ("nr_writeback", p(m.writeback)),
        ("nr_shmem", p(m.shmem)),
        ("nr_page_table_pages", p(m.page_tables)),
        ("pgpgin", 0),
        ("pgpgout", 0),
    ];
    let mut o = String::new();
    for (k, v) in rows {
        let _ = writeln!(o, "{k} {v}");
    }
    // The kernel's own counters (swap, faults, OOM kills); a page count
    // it also gives is already there from meminfo.
    for (k, v) in counters {
        if !rows.iter().any(|(r, _)| r == k) {
            let _ = writeln!(o, "{k} {v}");
        }
    }
    o
}

/// "%lu.%02lu" as Linux prints fixed-point seconds and loads.
fn hundredths(v: f64) -> String {
    let c = (v.max(0.0) * 100.0).round() as u64;
    format!("{}.{:02}", c / 100, c % 100)
}

pub fn uptime((up, idle): (f64, f64)) -> String {
    format!("{} {}\n", hundredths(up), hundredths(idle))
}

pub fn loadavg(l: &LoadAvg) -> String {
    format!(
        "{} {} {} {}/{} {}\n",
        hundredths(l.one),
        hundredths(l.five),
        hundredths(l.fifteen),
        l.running,
        l.total,
        l.last_pid
    )
}

pub fn filesystems(list: &[(&'static str, bool)]) -> String {
    let mut o = String::new();
    for (name, nodev) in list {
        let _ = writeln!(o, "{}\t{}", if *nodev { "nodev" } else { "" }, name);
    }
    o
}

/// /proc/swaps, as Linux's swap_show prints it.
pub fn swaps(list: &[SwapInfo]) -> String {
    let mut o = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    for s in list {
        let name = String::from_utf8_lossy(&s.name);
        let pad = 40usize.saturating_sub(name.len()).max(1);
        let tab = |v: u64| if v < 10_000_000 { "\t" } else { "" };
        let _ = writeln!(
            o,
            "{name}{:pad$}{}\t{}\t{}{}\t{}{}",
            "",
            if s.partition { "partition" } else { "file" },
            s.size_kib,
            tab(s.size_kib),
            s.used_kib,
            tab(s.used_kib),
            s.prio
        );
    }
    o
}

/// /proc/pressure/<resource>, as Linux's psi_show prints it.
pub fn pressure(p: &Pressure) -> String {
    let line = |name: &str, l: &PressureLine| {
        format!(
            "{name} avg10={:.2} avg60={:.2} avg300={:.2} total={}\n",
            l.avg10, l.avg60, l.avg300, l.total_us
        )
    };
    line("some", &p.some) + &line("full", &p.full)
}

/// /proc/partitions, as Linux's show_partition prints it.
pub fn partitions(list: &[PartitionInfo]) -> String {
    let mut o = String::from("major minor  #blocks  name\n\n");
    for p in list {
        let _ = writeln!(o, "{:4}  {:7} {:10} {}", p.major, p.minor, p.kib, p.name);
    }
    o
}

/// The flags shown when the host's are not known: an x86-64 baseline.
pub const BASELINE_CPU_FLAGS: &str = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 syscall nx lm";

/// /proc/cpuinfo for `cpus` CPUs with the feature `flags` (the host's).
pub fn cpuinfo(cpus: u32, flags: &str) -> String {
    let mut o = String::new();
    for i in 0..cpus.max(1) {
        let _ = write!(
            o,
            "processor\t: {i}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
             model name\t: umlrun virtual CPU\nstepping\t: 7\nmicrocode\t: 0x1\ncpu MHz\t\t: 2000.000\n\
             cache size\t: 16384 KB\nphysical id\t: 0\nsiblings\t: {cpus}\ncore id\t\t: {i}\n\
             cpu cores\t: {cpus}\napicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\n\
             fpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\n\
             flags\t\t: {flags}\n\
             bogomips\t: 4000.00\nclflush size\t: 64\ncache_alignment\t: 64\n\
             address sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n"
        );
    }
    o
}

pub fn version(release: &str) -> String {
    format!("Linux version {release} (umlrun@umlrun) (rustc) #1 SMP PREEMPT_DYNAMIC\n")
}

fn cpu_line(name: &str, c: &CpuTimes) -> String {
    format!(
        "{name} {} {} {} {} {} {} {} {} 0 0\n",
        c.user, c.nice, c.system, c.idle, c.iowait, c.irq, c.softirq, c.steal
    )
}

/// /proc/stat: "cpu  ..." (two spaces) is the sum of the "cpuN" lines.
pub fn sys_stat(st: &SysStat) -> String {
    let mut total = CpuTimes::default();
    for c in &st.cpus {
        total.user += c.user;
        total.nice += c.nice;
        total.system += c.system;
        total.idle += c.idle;
        total.iowait += c.iowait;
        total.irq += c.irq;
        total.softirq += c.softirq;
        total.steal += c.steal;
    }
    let mut o = cpu_line("cpu ", &total);
    for (i, c) in st.cpus.iter().enumerate() {
        o.push_str(&cpu_line(&format!("cpu{i}"), c));
    }
    let _ = write!(
        o,
        "intr 0\nctxt {}\nbtime {}\nprocesses {}\nprocs_running {}\nprocs_blocked {}\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        st.ctxt, st.btime, st.processes, st.procs_running, st.procs_blocked
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines_are_linux_shaped() {
        let m = MemInfo {
            total: 262144,
            free: 200000,
            available: 230000,
            cached: 1234,
            ..Default::default()
        };
        let t = meminfo(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "MemTotal:         262144 kB");
        assert_eq!(lines[1], "MemFree:          200000 kB");
        assert_eq!(lines[2], "MemAvailable:     230000 kB");
        assert_eq!(lines[4], "Cached:             1234 kB");
        assert_eq!(lines[8], "Active(anon):          0 kB");
        assert!(t.contains("\nHugePages_Total:       0\n"));
        assert!(t.contains("\nHugepagesize:       2048 kB\n"));
        // Every line parses as "Name: value [kB]".
        for l in lines {
            let mut w = l.split_whitespace();
            assert!(w.next().unwrap().ends_with(':'));
            w.next().unwrap().parse::<u64>().unwrap();
        }
    }

    #[test]
    fn stat_has_52_fields() {
        let t = TaskInfo {
            pid: 42,
            ppid: 1,
            pgrp: 42,
            session: 42,
            tty_nr: 0x501,
            tpgid: 42,
            state: 'R',
            comm: b"a very long command name".to_vec(),
            nice: -5,
            vsize_bytes: 4 << 20,
            rss_pages: 100,
            start_time: 777,
            utime: 3,
            stime: 4,
            ..Default::default()
        };
        let st = task_stat(&t);
        assert!(st.starts_with("42 (a very long com) R 1 42 42 1281 42 "));
        assert!(st.ends_with('\n'));
        let rest = &st[st.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(f.len() + 2, 52);
        // Field numbers as proc(5) gives them (1-based; rest starts at 3).
        let field = |n: usize| f[n - 3];
        assert_eq!(field(14), "3");
        assert_eq!(field(15), "4");
        assert_eq!(field(18), "15");
        assert_eq!(field(19), "-5");
        assert_eq!(field(20), "1");
        assert_eq!(field(22), "777");
        assert_eq!(field(23), "4194304");
        assert_eq!(field(24), "100");
        assert_eq!(field(38), "17");
    }

    #[test]
    fn status_fields() {
        let t = TaskInfo {
            pid: 7,
            ppid: 1,
            uid: 1000,
            euid: 1000,
            gid: 100,
            egid: 100,
            vsize_bytes: 8 << 20,
            rss_pages: 10,
            rss_file_pages: 3,
            rss_shmem_pages: 2,
            ..Default::default()
        };
        let st = task_status(&t);
        assert!(st.contains(
            "\nVmRSS:\t      40 kB\nRssAnon:\t      20 kB\nRssFile:\t      12 kB\nRssShmem:\t       8 kB\n"
        ));
        assert!(st.starts_with("Name:\tinit\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nNgid:\t0\nPid:\t7\nPPid:\t1\n"));
        assert!(st.contains("\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"));
        assert!(st.contains("\nVmSize:\t    8192 kB\n"));
        assert!(st.contains("\nVmRSS:\t      40 kB\n"));
        assert!(st.contains("\nThreads:\t1\n"));
        let z = task_status(&TaskInfo {
            state: 'Z',
            vsize_bytes: 4096,
            ..Default::default()
        });
        assert!(z.contains("State:\tZ (zombie)") && !z.contains("VmSize"));
    }

    #[test]
    fn maps_lines() {
        let m = vec![
            MapInfo {
                start: 0x400000,
                end: 0x401000,
                read: true,
                exec: true,
                offset: 0,
                dev_major: 0x62,
                dev_minor: 0,
                inode: 12,
                name: b"/bin/busybox".to_vec(),
                ..Default::default()
            },
            MapInfo {
                start: 0x7ffd_0000_0000,
                end: 0x7ffd_0002_1000,
                read: true,
                write: true,
                name: b"[stack]".to_vec(),
                ..Default::default()
            },
            MapInfo {
                start: 0x1000,
                end: 0x2000,
                ..Default::default()
            },
        ];
        let t = maps(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "00400000-00401000 r-xp 00000000 62:00 12{}/bin/busybox",
                " ".repeat(73 - 40)
            )
        );
        assert_eq!(
            &lines[1][..49],
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0  "
        );
        assert_eq!(lines[1].find('['), Some(73));
        assert_eq!(lines[2], "00001000-00002000 ---p 00000000 00:00 0 ");
    }

    #[test]
    fn mounts_escape() {
        let m = vec![
            MountInfo {
                device: b"/dev/ubda".to_vec(),
                mount_point: b"/".to_vec(),
                fs_type: "ext2".into(),
                options: "rw,relatime".into(),
                ..Default::default()
            },
            MountInfo {
                device: b"tmpfs".to_vec(),
                mount_point: b"/my dir".to_vec(),
                fs_type: "tmpfs".into(),
                options: "rw".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            mounts(&m),
            "/dev/ubda / ext2 rw,relatime 0 0\ntmpfs /my\\040dir tmpfs rw 0 0\n"
        );
    }

    #[test]
    fn small_files() {
        assert_eq!(uptime((350735.466, 234388.9)), "350735.47 234388.90\n");
        let l = LoadAvg {
            one: 0.0,
            five: 0.015,
            fifteen: 1.5,
            running: 1,
            total: 80,
            last_pid: 1234,
        };
        assert_eq!(loadavg(&l), "0.00 0.02 1.50 1/80 1234\n");
        assert_eq!(
            filesystems(&[("proc", true), ("ext2", false)]),
            "nodev\tproc\n\text2\n"
        );
        assert!(version("6.1.0-umlrun").starts_with("Linux version 6.1.0-umlrun "));
        let c = cpuinfo(2, "fpu sse2");
        assert!(c.contains("\nflags\t\t: fpu sse2\n"));
        assert_eq!(c.matches("processor\t: ").count(), 2);
        assert!(c.contains("processor\t: 1\n"));
    }

    #[test]
    fn proc_stat() {
        let st = SysStat {
            cpus: vec![
                CpuTimes {
                    user: 1,
                    idle: 10,
                    ..Default::default()
                },
                CpuTimes {
                    user: 2,
                    system: 3,
                    idle: 20,
                    ..Default::default()
                },
            ],
            ctxt: 5,
            btime: 1700000000,
            processes: 9,
            procs_running: 1,
            procs_blocked: 0,
        };
        let t = sys_stat(&st);
        assert!(t.starts_with(
            "cpu  3 0 3 30 0 0 0 0 0 0\ncpu0 1 0 0 10 0 0 0 0 0 0\ncpu1 2 0 3 20 0 0 0 0 0 0\n"
        ));
        assert!(t.contains("\nbtime 1700000000\nprocesses 9\nprocs_running 1\nprocs_blocked 0\n"));
    }
}

#[cfg(test)]
mod mountinfo_tests {
    use super::*;

    #[test]
    fn mountinfo_has_the_separator_and_device_numbers() {
        let m = |id, parent, dev, d: &str, p: &str, t: &str| MountInfo {
            id,
            parent,
            dev,
            device: d.as_bytes().to_vec(),
            mount_point: p.as_bytes().to_vec(),
            fs_type: t.into(),
            options: "rw".into(),
        };
        let text = mountinfo(&[
            m(21, 1, (98, 0), "/dev/ubda", "/", "ext2"),
            m(22, 21, (0, 31), "proc", "/proc", "proc"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "21 1 98:0 / / rw,relatime - ext2 /dev/ubda rw");
        assert_eq!(lines[1], "22 21 0:31 / /proc rw,relatime - proc proc rw");
        let v = vmstat(
            &MemInfo {
                free: 4096,
                ..Default::default()
            },
            &[("nr_free_pages", 7), ("pswpin", 0), ("pswpout", 0)],
        );
        assert!(v.starts_with("nr_free_pages 1024\n"));
        assert!(v.contains("\npswpout 0\n"));
    }
}
