//! The host's own figures for memory: the memory cgroup umlrun runs in
//! (its limit and usage, cgroup v2 or v1) and the private memory of
//! umlrun and its stubs from /proc. Read-only; kernel/budget.rs decides
//! what to do with them.
//!
//! cgroup v2: `memory.max` and `memory.high` (the lower one that is not
//! `max`), usage `memory.current`. cgroup v1: `memory.limit_in_bytes`
//! (values of 2^62 and above mean no limit), usage
//! `memory.usage_in_bytes`. The cgroup is found through /proc/self/cgroup
//! and the mounts under /sys/fs/cgroup (the v1 `memory` hierarchy, or the
//! unified one if its controllers include memory).

use std::path::{Path, PathBuf};

/// The memory cgroup umlrun is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// Its directory under /sys/fs/cgroup.
    pub dir: PathBuf,
    pub v2: bool,
}

/// A limit and where it came from (e.g. "cgroup v2 memory.high").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLimit {
    pub bytes: u64,
    pub source: &'static str,
}

/// v1's "no limit" is PAGE_COUNTER_MAX pages, just below 2^63.
const V1_UNLIMITED: u64 = 1 << 62;

impl Cgroup {
    /// The memory cgroup of this process, if the host has one mounted.
    pub fn own() -> Option<Cgroup> {
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        Self::from_proc(&text, Path::new("/sys/fs/cgroup"))
    }

    /// Finds the cgroup directory from /proc/self/cgroup's text, under
    /// `root` (v1: `root/memory/<path>`; v2: `root/<path>` or
    /// `root/unified/<path>`, whichever has memory.max).
    pub fn from_proc(text: &str, root: &Path) -> Option<Cgroup> {
        let mut v2_path = None;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = path.trim_start_matches('/');
            if ctrls.split(',').any(|c| c == "memory") {
                let dir = root.join("memory").join(rel);
                if dir.join("memory.limit_in_bytes").exists() {
                    return Some(Cgroup { dir, v2: false });
                }
            } else if ctrls.is_empty() {
                v2_path = Some(rel.to_string());
            }
        }
        let rel = v2_path?;
        [root.join(&rel), root.join("unified").join(&rel)]
            .into_iter()
            .find(|d| d.join("memory.max").exists())
            .map(|dir| Cgroup { dir, v2: true })
    }

    fn read_u64(&self, file: &str) -> Option<u64> {
        let t = std::fs::read_to_string(self.dir.join(file)).ok()?;
        let t = t.trim();
        if t == "max" {
            return Some(u64::MAX);
        }
        t.parse().ok()
    }

    /// The limit the cgroup puts on its processes now; None: no limit.
    pub fn limit(&self) -> Option<CgroupLimit> {
        if self.v2 {
            let max = self.read_u64("memory.max").unwrap_or(u64::MAX);
            let high = self.read_u64("memory.high").unwrap_or(u64::MAX);
            let (bytes, source) = if high < max {
                (high, "cgroup v2 memory.high")
            } else {
                (max, "cgroup v2 memory.max")
            };
            (bytes != u64::MAX).then_some(CgroupLimit { bytes, source })
        } else {
            let bytes = self.read_u64("memory.limit_in_bytes")?;
            (bytes < V1_UNLIMITED).then_some(CgroupLimit {
                bytes,
                source: "cgroup v1 memory.limit_in_bytes",
            })
        }
    }

    /// The cgroup's file cache the host can reclaim by itself (active and
    /// inactive file pages; shmem such as the guest memfd is not in them).
    pub fn file_cache(&self) -> Option<u64> {
        let t = std::fs::read_to_string(self.dir.join("memory.stat")).ok()?;
        let keys: [&str; 2] = if self.v2 {
            ["active_file", "inactive_file"]
        } else {
            ["total_active_file", "total_inactive_file"]
        };
        let mut sum = 0u64;
        for l in t.lines() {
            let mut it = l.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                if keys.contains(&k) {
                    sum = sum.saturating_add(v.parse().unwrap_or(0));
                }
            }
        }
        Some(sum)
    }

    /// The part of the cgroup's file cache its reclaim can drop at once:
    /// inactive file pages less the dirty ones and those under writeback
    /// (active ones are in use, such as image pages the stubs map:
    /// dropping them refaults; dirty ones, a guest's swap writes among
    /// them, wait for writeback). What the host budget counts as room.
    pub fn reclaimable_cache(&self) -> Option<u64> {
        let t = std::fs::read_to_string(self.dir.join("memory.stat")).ok()?;
        let (file, busy): (&str, [&str; 2]) = if self.v2 {
            ("inactive_file", ["file_dirty", "file_writeback"])
        } else {
            ("total_inactive_file", ["total_dirty", "total_writeback"])
        };
        let (mut inactive, mut busy_bytes) = (0u64, 0u64);
        for l in t.lines() {
            let mut it = l.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next()) {
                let v: u64 = v.parse().unwrap_or(0);
                if k == file {
                    inactive = v;
                } else if busy.contains(&k) {
                    busy_bytes = busy_bytes.saturating_add(v);
                }
            }
        }
        Some(inactive.saturating_sub(busy_bytes))
    }

    /// What the cgroup charges now (all its processes, page cache included).
    pub fn usage(&self) -> Option<u64> {
        self.read_u64(if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        })
    }
}

/// Private memory of one process: anonymous resident pages plus its page
/// tables (`RssAnon + VmPTE` of /proc/<pid>/status), in bytes.
pub fn private_bytes(pid: Option<i32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    Some(parse_private(&text))
}

fn parse_private(status: &str) -> u64 {
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (kb("RssAnon:") + kb("VmPTE:")) * 1024
}

/// The pids of umlrun's child processes (its stubs), from every thread's
/// /proc/self/task/<tid>/children.
pub fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        if let Ok(t) = std::fs::read_to_string(e.path().join("children")) {
            out.extend(t.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_and_v2_cgroups() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("memory/a/b");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "100663296\n").unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "4096\n").unwrap();
        let text = "4:memory:/a/b\n0::/\n";
        let cg = Cgroup::from_proc(text, root.path()).unwrap();
        assert!(!cg.v2);
        assert_eq!(cg.limit().unwrap().bytes, 96 << 20);
        assert_eq!(cg.usage(), Some(4096));
        std::fs::write(
            v1.join("memory.stat"),
            "cache 10\ntotal_active_file 4096\ntotal_inactive_file 8192\nactive_file 1\n",
        )
        .unwrap();
        assert_eq!(cg.file_cache(), Some(12288));
        assert_eq!(cg.reclaimable_cache(), Some(8192));
        // Dirty pages and those under writeback are not reclaimable at once.
        std::fs::write(
            v1.join("memory.stat"),
            "total_active_file 4096\ntotal_inactive_file 8192\ndirty 1\ntotal_dirty 4096\n\
             total_writeback 1024\n",
        )
        .unwrap();
        assert_eq!(cg.reclaimable_cache(), Some(3072));
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cg.limit(), None);

        let v2 = root.path().join("unified/x");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        std::fs::write(v2.join("memory.high"), "max\n").unwrap();
        let cg = Cgroup::from_proc("0::/x\n", root.path()).unwrap();
        assert!(cg.v2);
        assert_eq!(cg.limit(), None);
        std::fs::write(v2.join("memory.max"), "200000000\n").unwrap();
        assert_eq!(cg.limit().unwrap().source, "cgroup v2 memory.max");
        std::fs::write(v2.join("memory.high"), "100000000\n").unwrap();
        let l = cg.limit().unwrap();
        assert_eq!((l.bytes, l.source), (100_000_000, "cgroup v2 memory.high"));
        assert_eq!(Cgroup::from_proc("0::/nope\n", root.path()), None);
    }

    #[test]
    fn private_memory_of_self() {
        assert_eq!(
            parse_private("RssAnon:\t  112 kB\nRssFile: 9 kB\nVmPTE:\t 44 kB\n"),
            156 * 1024
        );
        assert!(private_bytes(None).unwrap() > 0);
    }
}
