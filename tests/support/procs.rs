//! Ending what a test started, by pid, on every path: [`Reaped`] holds a
//! child process and on drop (a test that returns, fails or panics) kills
//! it and everything it started — its descendants, found through /proc
//! while they are still linked to it, and whatever is left in the process
//! group or session it leads (orphans whose parent died first) — then
//! reaps it. A child spawned through [`Reaped::spawn`] also dies when the
//! test does not get to run its Drop (the test binary killed by a timeout
//! or ^C: our children sit in process groups of their own, which the
//! terminal's SIGINT misses, and a halted linux.uml or a umlrun would
//! run on for ever). std and libc only, so both `support` and
//! `support_many` include it.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// (pid, ppid, pgid, sid) of every process in /proc now.
fn processes() -> Vec<(i32, i32, i32, i32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp session ...": comm may hold spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<i32> = rest
            .split_whitespace()
            .skip(1)
            .take(3)
            .filter_map(|s| s.parse().ok())
            .collect();
        if let [ppid, pgid, sid] = f[..] {
            out.push((pid, ppid, pgid, sid));
        }
    }
    out
}

/// Every process in the process group or session whose id is `root`,
/// `root` itself with `with_root` (only while it is our unreaped child:
/// once reaped its pid may name someone else), and all their descendants.
pub fn tree_of(root: i32, with_root: bool) -> BTreeSet<i32> {
    let all = processes();
    let mut found: BTreeSet<i32> = all
        .iter()
        .filter(|&&(p, _, pg, s)| (with_root && p == root) || pg == root || s == root)
        .map(|&(p, ..)| p)
        .collect();
    loop {
        let more: Vec<i32> = all
            .iter()
            .filter(|&&(p, pp, ..)| !found.contains(&p) && found.contains(&pp))
            .map(|&(p, ..)| p)
            .collect();
        if more.is_empty() {
            return found;
        }
        found.extend(more);
    }
}

/// SIGKILL to `root`'s whole tree (see [`tree_of`]), by pid, until none
/// is left or `limit` passed. With `with_root`, `root` must be our
/// unreaped child; a group or session id stays ours while any member
/// lives (Linux frees the number only when no process uses it).
pub fn kill_tree(root: i32, with_root: bool, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        // Zombies (our unreaped child among them) cannot be killed again
        // and do not count.
        let live: Vec<i32> = tree_of(root, with_root)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')')
                            .and_then(|(_, r)| r.split_whitespace().next().map(|c| c != "Z"))
                    })
                    .unwrap_or(false)
            })
            .collect();
        if live.is_empty() || Instant::now() >= deadline {
            return;
        }
        for p in live {
            // SAFETY: kill(2) of one pid of the tree just read; `root` is
            // held unreaped, so the group and session ids stay ours.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL, by pid, to every process whose command line holds `marker`
/// (a test's own temp dir: no other process names it), until none is
/// left or `limit` passed. For what [`kill_tree`] cannot link to its
/// root any more: a helper that made itself a session leader and whose
/// parent exited (Debian's linux.uml leaves one after a panic).
pub fn kill_marked(marker: &[u8], limit: Duration) {
    let deadline = Instant::now() + limit;
    let me = std::process::id() as i32;
    loop {
        let live: Vec<i32> = processes()
            .into_iter()
            .map(|(p, ..)| p)
            .filter(|&p| p != me)
            .filter(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                let zombie = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .is_some_and(|c| c == "Z");
                !zombie
                    && std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker))
            })
            .collect();
        if live.is_empty() || marker.is_empty() || Instant::now() >= deadline {
            return;
        }
        for p in live {
            // SAFETY: kill(2) of one pid just found naming our marker.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child whose whole tree is killed and which is reaped when this goes.
pub struct Reaped(pub Child);

impl Reaped {
    /// Spawns `cmd` with SIGKILL as its parent-death signal (Linux sends
    /// it when the spawning thread ends: the test's own thread, which
    /// outlives the guard).
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Reaped> {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and
        // makes one async-signal-safe call (prctl) on that process only.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().map(Reaped)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        // Exited and reaped already (a try_wait that saw it end): its pid
        // is free, only its group and session are still ours.
        let unreaped = matches!(self.0.try_wait(), Ok(None));
        kill_tree(self.0.id() as i32, unreaped, Duration::from_secs(10));
        let _ = self.0.wait();
    }
}

/// The host memory of `root` (our unreaped child) and its tree (see
/// [`tree_of`]): the sum of their Pss from /proc/PID/smaps_rollup in KiB
/// (pages mapped by many processes, like a memfd every stub maps, count
/// once), and how many processes that is. scripts/forkbomb-figures
/// measures the same.
pub fn tree_pss_kb(root: i32) -> (u64, usize) {
    let pids = tree_of(root, true);
    let kb = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum();
    (kb, pids.len())
}
