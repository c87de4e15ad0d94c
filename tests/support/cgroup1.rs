//! A cgroup v1 memory group for one test (a child of this process's own
//! group in the `memory` hierarchy, with memory.limit_in_bytes), and, where
//! a cgroup2 hierarchy is mounted, a v2 group beside it for memory PSI
//! (every v2 group has memory.pressure, whatever its controllers): the
//! hybrid layout of a host whose memory controller is bound to cgroup v1.
//! Both removed on drop once their processes are gone (the caller stops
//! them first).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Cgroup1 {
    /// The v1 memory group.
    pub dir: PathBuf,
    /// The v2 group for memory.pressure, if the host has a cgroup2 mount.
    pub psi: Option<PathBuf>,
}

/// Mount points: the v1 hierarchy holding `memory`, and cgroup2.
fn mounts() -> (Option<PathBuf>, Option<PathBuf>) {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let (mut v1_memory, mut v2) = (None, None);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        if f[2] == "cgroup" && f[3].split(',').any(|o| o == "memory") {
            v1_memory = Some(PathBuf::from(f[1]));
        }
        if f[2] == "cgroup2" && v2.is_none() {
            v2 = Some(PathBuf::from(f[1]));
        }
    }
    (v1_memory, v2)
}

/// This process's path in the hierarchy whose /proc/self/cgroup line
/// `matches` (by its controller list).
fn own_path(matches: impl Fn(&str) -> bool) -> Option<String> {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            matches(ctrls).then(|| path.trim_start_matches('/').to_string())
        })
}

fn remove(dir: &Path) {
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("could not remove {}", dir.display());
}

impl Cgroup1 {
    /// A child `name` of this process's v1 memory group limited to `max`
    /// bytes, or why this host has none.
    pub fn new(name: &str, max: u64) -> Result<Cgroup1, String> {
        let (v1, v2) = mounts();
        let root = v1.ok_or("no cgroup v1 hierarchy with the memory controller is mounted")?;
        let own = own_path(|c| c.split(',').any(|c| c == "memory"))
            .ok_or("this process is in no v1 memory cgroup (/proc/self/cgroup)")?;
        let dir = root.join(own).join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cg = Cgroup1 { dir, psi: None };
        std::fs::write(cg.dir.join("memory.limit_in_bytes"), max.to_string())
            .map_err(|e| format!("memory.limit_in_bytes: {e}"))?;
        if let (Some(v2), Some(own2)) = (v2, own_path(str::is_empty)) {
            let psi = v2.join(own2).join(name);
            if psi
                .parent()
                .is_some_and(|p| p.join("memory.pressure").exists())
                && std::fs::create_dir(&psi).is_ok()
            {
                cg.psi = Some(psi);
            }
        }
        Ok(cg)
    }

    /// A wrapper script in `dir` that moves itself into the memory group
    /// (and the PSI group) and execs `binary` with its arguments.
    pub fn wrapper(&self, dir: &Path, binary: &Path) -> PathBuf {
        let w = dir.join("in-cgroup1");
        let psi = self.psi.as_ref().map_or(String::new(), |p| {
            format!("echo $$ > {}/cgroup.procs || exit 1\n", p.display())
        });
        std::fs::write(
            &w,
            format!(
                "#!/bin/sh\necho $$ > {}/cgroup.procs || exit 1\n{psi}exec {} \"$@\"\n",
                self.dir.display(),
                binary.display()
            ),
        )
        .unwrap();
        let mut perm = std::fs::metadata(&w).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&w, perm).unwrap();
        w
    }

    /// memory.usage_in_bytes.
    pub fn current(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("memory.usage_in_bytes"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Times the host's OOM killer acted in the group (memory.oom_control).
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("memory.oom_control"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0)
    }
}

impl Drop for Cgroup1 {
    fn drop(&mut self) {
        remove(&self.dir);
        if let Some(p) = &self.psi {
            remove(p);
        }
    }
}
