//! A cgroup v2 with the memory controller for one test: a child of this
//! process's own v2 group with `memory.max` set, or why this host cannot
//! give one (no cgroup2 mount; the memory controller bound to a v1
//! hierarchy, as /proc/cgroups shows, which no mount of ours can change;
//! no delegation to us). Removed on drop once its processes are
//! gone (the caller stops them first).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Cgroup2 {
    pub dir: PathBuf,
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Where cgroup2 is mounted, and the memory controller's v1 mount if any.
fn mounts() -> (Option<PathBuf>, Option<PathBuf>) {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let (mut v2, mut v1_memory) = (None, None);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        if f[2] == "cgroup2" && v2.is_none() {
            v2 = Some(PathBuf::from(f[1]));
        }
        if f[2] == "cgroup" && f[3].split(',').any(|o| o == "memory") {
            v1_memory = Some(PathBuf::from(f[1]));
        }
    }
    (v2, v1_memory)
}

/// The memory controller's line of /proc/cgroups: (hierarchy id, number
/// of groups). Hierarchy 0 is cgroup2 (or none); any other is a v1 one.
fn memory_hierarchy() -> Option<(u32, u64)> {
    std::fs::read_to_string("/proc/cgroups")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"memory") && f.len() >= 3)
                .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
                .flatten()
        })
}

/// Why `systemd-run --user --scope` cannot give a delegated cgroup here
/// (None: it can).
fn systemd_run_refusal() -> Option<String> {
    match std::process::Command::new("systemd-run")
        .args(["--user", "--scope", "-q", "-p", "MemoryMax=64M", "true"])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Err(e) => Some(format!("systemd-run: {e}")),
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "systemd-run --user --scope: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

impl Cgroup2 {
    /// A child `name` of this process's v2 group with memory.max =
    /// `max` (and memory.swap.max = 0 where there is one), or why not.
    pub fn new(name: &str, max: u64) -> Result<Cgroup2, String> {
        let (v2, v1_memory) = mounts();
        let Some(root) = v2 else {
            return Err("no cgroup2 file system is mounted".into());
        };
        let own = read(Path::new("/proc/self/cgroup"))?
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .ok_or("this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")?;
        let parent = root.join(own.trim_start_matches('/'));
        let controllers = read(&parent.join("cgroup.controllers"))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            let bound = match (memory_hierarchy(), v1_memory) {
                (Some((h, n)), Some(m)) if h != 0 => format!(
                    "; /proc/cgroups: the memory controller is bound to cgroup v1 \
                     hierarchy {h} ({n} groups, mounted at {}). The kernel gives a \
                     controller to one hierarchy at a time and moves it to cgroup2 \
                     only once that v1 hierarchy is unmounted with no groups left (or \
                     at boot, cgroup_no_v1=memory), so no cgroup2 mount of ours, in \
                     this mount namespace or a private one, can offer it; the same \
                     daemon code runs on this host's v1 memory cgroup in \
                     in_a_cgroup_v1_the_balancer_reads_its_room_and_pressure",
                    m.display()
                ),
                _ => String::new(),
            };
            let sd = systemd_run_refusal().map_or(String::new(), |why| format!("; {why}"));
            return Err(format!(
                "{} offers no memory controller (controllers: {:?}){bound}{sd}",
                parent.display(),
                controllers.trim()
            ));
        }
        let subtree = parent.join("cgroup.subtree_control");
        if !read(&subtree)?.split_whitespace().any(|c| c == "memory") {
            std::fs::write(&subtree, "+memory").map_err(|e| {
                format!(
                    "{}: +memory: {e} (not delegated to us, or the group holds processes)",
                    subtree.display()
                )
            })?;
        }
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cg = Cgroup2 { dir };
        std::fs::write(cg.dir.join("memory.max"), max.to_string())
            .map_err(|e| format!("memory.max: {e}"))?;
        let swap = cg.dir.join("memory.swap.max");
        if swap.exists() {
            std::fs::write(&swap, "0").map_err(|e| format!("memory.swap.max: {e}"))?;
        }
        Ok(cg)
    }

    /// A wrapper script in `dir` that moves itself into the cgroup and
    /// execs `binary` with its arguments (the pid stays).
    pub fn wrapper(&self, dir: &Path, binary: &Path) -> PathBuf {
        let w = dir.join("in-cgroup2");
        std::fs::write(
            &w,
            format!(
                "#!/bin/sh\necho $$ > {}/cgroup.procs || exit 1\nexec {} \"$@\"\n",
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

    /// A `key value` line of one of its files (memory.events, memory.stat).
    pub fn keyed(&self, file: &str, key: &str) -> u64 {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0)
    }

    /// memory.current in bytes.
    pub fn current(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("memory.current"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Cgroup2 {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}
