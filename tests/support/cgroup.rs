//! A memory cgroup for one test, with its limit set: a child of this
//! process's own cgroup v2 group ([`MemCgroup::new_v2`]: `memory.max`, the
//! memory controller enabled for children where it is delegated to us),
//! or, where the memory controller is bound to a v1 hierarchy,
//! ([`MemCgroup::new`]) a child of our v1 memory group
//! (`memory.limit_in_bytes`; [`MemCgroup::new_v1`]), with a v2 group
//! beside it for memory PSI where a cgroup2 hierarchy is mounted (every v2
//! group has memory.pressure, whatever its controllers: the hybrid layout);
//! else why this host cannot give one. Removed on drop once its processes
//! are gone (the caller stops them first). The one place tests make
//! cgroups (balance, overcommit).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct MemCgroup {
    pub dir: PathBuf,
    /// cgroup v2 (else v1's memory controller).
    pub v2: bool,
    /// v1 only: the v2 group beside `dir` its processes also join, for
    /// memory.pressure (`umlbalance --psi-cgroup`).
    pub psi: Option<PathBuf>,
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

/// This process's path in the hierarchy whose /proc/self/cgroup line
/// `matches` (by its controller list; v2's is empty).
fn own_path(matches: impl Fn(&str) -> bool) -> Option<String> {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            matches(ctrls).then(|| path.to_string())
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

impl MemCgroup {
    /// A child `name` of this process's memory cgroup limited to `max`:
    /// v2 as [`MemCgroup::new_v2`] where it can be, else under the v1
    /// memory hierarchy; or why neither.
    pub fn new(name: &str, max: u64) -> Result<MemCgroup, String> {
        MemCgroup::new_v2(name, max).or_else(|why_v2| {
            MemCgroup::new_v1(name, max).map_err(|why| format!("{why_v2}; {why}"))
        })
    }

    /// A child `name` of this process's v1 memory group limited to `max`,
    /// with a PSI group beside it where the host has a cgroup2 mount; or
    /// why not.
    pub fn new_v1(name: &str, max: u64) -> Result<MemCgroup, String> {
        let own = own_path(|ctrls| ctrls.split(',').any(|c| c == "memory"))
            .ok_or("no v1 memory cgroup (/proc/self/cgroup)")?;
        let (v2, v1_memory) = mounts();
        let root = v1_memory.ok_or("no v1 memory hierarchy mounted")?;
        let dir = root.join(own.trim_start_matches('/')).join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("v1: {}: {e}", dir.display()))?;
        let mut cg = MemCgroup {
            dir,
            v2: false,
            psi: None,
        };
        std::fs::write(cg.dir.join("memory.limit_in_bytes"), max.to_string())
            .map_err(|e| format!("memory.limit_in_bytes: {e}"))?;
        if let (Some(v2), Some(own2)) = (v2, own_path(str::is_empty)) {
            let psi = v2.join(own2.trim_start_matches('/')).join(name);
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

    /// A child `name` of this process's v2 group with memory.max =
    /// `max` (and memory.swap.max = 0 where there is one), or why not.
    pub fn new_v2(name: &str, max: u64) -> Result<MemCgroup, String> {
        let (v2, v1_memory) = mounts();
        let Some(root) = v2 else {
            return Err("no cgroup2 file system is mounted".into());
        };
        let own = own_path(str::is_empty)
            .ok_or("this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")?;
        let parent = root.join(own.trim_start_matches('/'));
        let controllers = read(&parent.join("cgroup.controllers"))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            let bound = v1_memory.map_or(String::new(), |m| {
                format!(
                    "; the memory controller is bound to the cgroup v1 hierarchy at {}",
                    m.display()
                )
            });
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
        let cg = MemCgroup {
            dir,
            v2: true,
            psi: None,
        };
        std::fs::write(cg.dir.join("memory.max"), max.to_string())
            .map_err(|e| format!("memory.max: {e}"))?;
        let swap = cg.dir.join("memory.swap.max");
        if swap.exists() {
            std::fs::write(&swap, "0").map_err(|e| format!("memory.swap.max: {e}"))?;
        }
        Ok(cg)
    }

    /// A wrapper script in `dir` that moves itself into the cgroup (and
    /// the PSI group) and execs `binary` with its arguments (the pid stays).
    pub fn wrapper(&self, dir: &Path, binary: &Path) -> PathBuf {
        let w = dir.join("in-cgroup");
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

    /// The v2 group for memory PSI when it is not `dir` (`--psi-cgroup`).
    pub fn psi_cgroup(&self) -> Option<&Path> {
        self.psi.as_deref()
    }

    /// How umlbalance names its figures' source at start.
    pub fn source(&self) -> &'static str {
        if self.v2 {
            "cgroup v2"
        } else {
            "cgroup v1"
        }
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

    /// Times the host's OOM killer acted in it (v2 memory.events, v1
    /// memory.oom_control).
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.keyed(file, "oom_kill")
    }

    /// The memory charged to it now, in bytes (v2 memory.current, v1
    /// memory.usage_in_bytes).
    pub fn current(&self) -> u64 {
        let file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        remove(&self.dir);
        if let Some(p) = &self.psi {
            remove(p);
        }
    }
}
