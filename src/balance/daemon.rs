//! One balancer round: find the instances, read every guest's `stats` at
//! once (each with its own timeout, so a guest that died or stops
//! answering is skipped and reported, never holds up the others), read the
//! host, decide (policy, squeeze, arbiter), act through `config mem=±N`
//! (unplugs first, and no plug past the pool as really left), log.
//!
//! A round changes a guest only through one `config mem=` request, which
//! the guest's kernel does whole: a balancer killed at any point leaves
//! every guest usable at whatever size it had.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::{Config, PolicyChoice};
use super::metrics::{self, GuestMetrics, HostMetrics};
use super::serve::Exporter;
use super::view::{self, Activity, Stats};
use super::{arbitrate, squeeze, Change, GuestView, HostView, Policy};
use crate::config::read_pid;
use crate::config::size::format_size;
use crate::host::memacct::Cgroup;
use crate::host::misc::pid_alive;
use crate::mconsole::client::request;

/// One instance found under a uml_dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub umid: String,
    pub socket: PathBuf,
}

/// The live instances under `dirs` (a pid file naming a live process and
/// a socket); the first of two with one umid wins.
pub fn discover(dirs: &[PathBuf]) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for umid in names {
            let dir = d.join(&umid);
            let socket = dir.join("mconsole");
            if !read_pid(&dir.join("pid")).is_some_and(pid_alive) || !socket.exists() {
                continue;
            }
            if out.iter().any(|f| f.umid == umid) {
                log::warn!("{umid}: also under {}; balancing the first", d.display());
                continue;
            }
            out.push(Found { umid, socket });
        }
    }
    out
}

/// The host as seen now: MemAvailable (less, if a cgroup is given, the
/// cgroup's own room: limit - usage + half its reclaimable file cache)
/// and memory PSI: `psi_cgroup`'s memory.pressure, else the cgroup's
/// (cgroup v2 keeps one in every group, whatever its controllers), else
/// the host's.
pub fn host_view(cgroup: Option<&Path>, psi_cgroup: Option<&Path>) -> HostView {
    let mi = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mut avail = view::meminfo_field(&mi, "MemAvailable").unwrap_or(0);
    if let Some(dir) = cgroup {
        let cg = Cgroup {
            dir: dir.to_path_buf(),
            v2: dir.join("memory.max").exists(),
        };
        if let (Some(limit), Some(usage)) = (cg.limit(), cg.usage()) {
            let room = limit
                .bytes
                .saturating_sub(usage)
                .saturating_add(cg.file_cache().unwrap_or(0) / 2);
            avail = avail.min(room);
        }
    }
    let pressure = std::fs::read_to_string(psi_file(cgroup, psi_cgroup))
        .ok()
        .and_then(|t| view::psi_some_avg10(&t))
        .unwrap_or(0.0);
    HostView {
        mem_available: avail,
        pressure,
    }
}

/// Where memory PSI comes from: `psi_cgroup`'s memory.pressure, else the
/// cgroup's (where it has one: cgroup v2), else the host's.
pub fn psi_file(cgroup: Option<&Path>, psi_cgroup: Option<&Path>) -> PathBuf {
    if let Some(dir) = psi_cgroup {
        return dir.join("memory.pressure");
    }
    match cgroup.map(|d| d.join("memory.pressure")) {
        Some(f) if f.exists() => f,
        _ => PathBuf::from("/proc/pressure/memory"),
    }
}

/// The host figures' sources, for the log at start.
pub fn host_sources(cgroup: Option<&Path>, psi_cgroup: Option<&Path>) -> String {
    let room = match cgroup {
        Some(d) if d.join("memory.max").exists() => {
            format!(
                "MemAvailable and cgroup v2 {} (memory.max, memory.current)",
                d.display()
            )
        }
        Some(d) => format!(
            "MemAvailable and cgroup v1 {} (memory.limit_in_bytes, memory.usage_in_bytes)",
            d.display()
        ),
        None => "MemAvailable".to_string(),
    };
    format!(
        "host figures: {room}; memory PSI: {}",
        psi_file(cgroup, psi_cgroup).display()
    )
}

/// What the daemon remembers of one guest across rounds.
#[derive(Debug, Default, Clone)]
struct Book {
    last: Option<Stats>,
    plugs: u64,
    unplugs: u64,
    plugged_bytes: u64,
    unplugged_bytes: u64,
    /// The last error reported, so a guest that stays down is reported once.
    down: Option<String>,
}

/// The daemon.
pub struct Balancer {
    pub cfg: Config,
    policy: Box<dyn Policy>,
    activity: Activity,
    books: HashMap<String, Book>,
    rounds: u64,
    last_squeeze: Option<Instant>,
    exporter: Option<Exporter>,
    /// Guests admitted to grow in the pool (`admission`), last round.
    admitted: Vec<String>,
}

fn fmt_delta(d: i64) -> String {
    let s = format_size(d.unsigned_abs());
    if d < 0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

impl Balancer {
    pub fn new(cfg: Config) -> Balancer {
        let policy: Box<dyn Policy> = match &cfg.policy {
            PolicyChoice::ConstantFree(p) => Box::new(p.clone()),
            PolicyChoice::HostShouldNotSwap(p) => Box::new(p.clone()),
        };
        Balancer {
            activity: Activity::new(cfg.idle_rate),
            cfg,
            policy,
            books: HashMap::new(),
            rounds: 0,
            last_squeeze: None,
            exporter: None,
            admitted: Vec::new(),
        }
    }

    /// Starts serving the metrics (`metrics_listen`), if asked to.
    pub fn listen(&mut self) -> Result<Option<std::net::SocketAddr>, String> {
        let Some(l) = &self.cfg.metrics_listen else {
            return Ok(None);
        };
        let e = Exporter::start(l)?;
        let at = e.local;
        self.exporter = Some(e);
        Ok(at)
    }

    /// Runs rounds until `rounds` are done (forever without it).
    pub fn run(&mut self, out: &mut dyn Write) {
        log::info!(
            "policy {}, every {:?}, under {}",
            self.policy.name(),
            self.cfg.interval,
            self.cfg
                .uml_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        log::info!(
            "{}",
            host_sources(self.cfg.cgroup.as_deref(), self.cfg.psi_cgroup.as_deref())
        );
        loop {
            let start = Instant::now();
            self.round(out);
            if self.cfg.rounds.is_some_and(|n| self.rounds >= n) {
                return;
            }
            std::thread::sleep(self.cfg.interval.saturating_sub(start.elapsed()));
        }
    }

    /// One round; what it decided (applied unless dry-run).
    pub fn round(&mut self, out: &mut dyn Write) -> Vec<Change> {
        self.rounds += 1;
        let found = discover(&self.cfg.uml_dirs);
        let timeout = self.cfg.timeout;
        let answers: Vec<(Found, Result<Stats, String>)> = std::thread::scope(|s| {
            let hs: Vec<_> = found
                .into_iter()
                .map(|f| {
                    s.spawn(move || {
                        let r = request(&f.socket, "stats", timeout)
                            .map_err(|e| e.to_string())
                            .and_then(|a| {
                                if a.err {
                                    Err(format!("stats refused: {}", a.text.trim()))
                                } else {
                                    view::parse_stats(&a.text)
                                }
                            });
                        (f, r)
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let now = Instant::now();
        let host = host_view(self.cfg.cgroup.as_deref(), self.cfg.psi_cgroup.as_deref());
        let mut guests = Vec::new();
        let mut sockets = HashMap::new();
        let live: Vec<String> = answers.iter().map(|(f, _)| f.umid.clone()).collect();
        self.books.retain(|k, _| live.contains(k));
        self.activity.retain(&live);
        for (f, r) in answers {
            let book = self.books.entry(f.umid.clone()).or_default();
            match r {
                Ok(st) if st.stopped => {
                    // Frozen by `stop`: left as it is until `go`; its size
                    // still counts in the pool.
                    if book.down.is_none() {
                        log::info!("{}: stopped; left alone", f.umid);
                    }
                    book.down = Some("stopped (mconsole stop); left alone".into());
                    book.last = Some(st);
                }
                Ok(st) => {
                    if let Some(was) = book.down.take() {
                        log::info!("{}: answering again (was: {was})", f.umid);
                    }
                    let lim = self.cfg.limits(&f.umid);
                    let idle = self.activity.idle_secs(
                        &f.umid,
                        st.syscalls.saturating_add(st.faults),
                        now,
                    );
                    guests.push(GuestView {
                        umid: f.umid.clone(),
                        plugged: st.plugged,
                        free: st.free,
                        clean_cache: st.clean_cache,
                        maxmem: lim.max.map_or(st.maxmem, |m| m.min(st.maxmem)),
                        min: lim.min,
                        idle_secs: idle,
                        priority: lim.priority,
                        pressure: st.pressure,
                    });
                    book.last = Some(st);
                    sockets.insert(f.umid.clone(), f.socket);
                }
                Err(e) => {
                    if book.down.as_deref() != Some(e.as_str()) {
                        log::warn!("{}: skipped: {e}", f.umid);
                    }
                    book.down = Some(e);
                }
            }
        }
        // The pool counts every live guest: one that did not answer at its
        // last known size.
        let held: u64 = self
            .books
            .values()
            .filter_map(|b| b.last.as_ref().map(|s| s.plugged))
            .sum();
        let room = self.cfg.pool.map(|p| p.saturating_sub(held));
        let mut changes = self.policy.decide(host, &guests);
        if let Some(sq) = &self.cfg.squeeze {
            if self
                .last_squeeze
                .is_none_or(|t| now.duration_since(t) >= sq.every)
            {
                self.last_squeeze = Some(now);
                let trims = squeeze(&guests, sq.idle.as_secs_f64(), sq.keep, self.cfg.reserve);
                for t in trims {
                    if !changes.iter().any(|c| c.umid == t.umid) {
                        changes.push(t);
                    }
                }
            }
        }
        let before = self.admitted.clone();
        let admission = (self.cfg.admission && room.is_some()).then_some(&mut self.admitted);
        let changes = arbitrate(changes, &guests, room, self.cfg.reserve, admission);
        for u in self.admitted.iter().filter(|u| !before.contains(u)) {
            log::info!("{u}: admitted to grow in the pool");
        }
        for u in before.iter().filter(|u| !self.admitted.contains(u)) {
            log::info!("{u}: no longer admitted (its burst ended, or it waits)");
        }
        if self.cfg.dry_run || self.cfg.once {
            self.print(out, host, &guests, held, &changes);
        }
        if !self.cfg.dry_run {
            self.apply(&changes, &sockets);
        }
        self.export(host);
        changes
    }

    fn print(
        &self,
        out: &mut dyn Write,
        host: HostView,
        guests: &[GuestView],
        held: u64,
        changes: &[Change],
    ) {
        let pool = self.cfg.pool.map_or(String::new(), |p| {
            format!(", pool {} ({} held)", format_size(p), format_size(held))
        });
        let _ = writeln!(
            out,
            "round {}: policy {}, host available {}, PSI {:.1} %{pool}",
            self.rounds,
            self.policy.name(),
            format_size(host.mem_available),
            host.pressure
        );
        let _ = writeln!(
            out,
            "  {:<20} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5}",
            "UMID", "SIZE", "FREE", "CLEAN", "MAX", "IDLE", "PRIO"
        );
        for g in guests {
            let _ = writeln!(
                out,
                "  {:<20} {:>8} {:>8} {:>8} {:>8} {:>5.0}s {:>5}",
                g.umid,
                format_size(g.plugged),
                format_size(g.free),
                format_size(g.clean_cache),
                format_size(g.maxmem),
                g.idle_secs,
                g.priority
            );
        }
        for (umid, b) in &self.books {
            if let Some(e) = &b.down {
                let _ = writeln!(out, "  {umid:<20} skipped: {e}");
            }
        }
        if self.cfg.admission && self.cfg.pool.is_some() {
            let _ = writeln!(out, "  admitted to grow: {}", self.admitted.join(", "));
        }
        if changes.is_empty() {
            let _ = writeln!(out, "  no change");
        }
        for c in changes {
            let _ = writeln!(
                out,
                "  {} config mem={}: {}{}",
                c.umid,
                fmt_delta(c.delta),
                c.reason,
                if self.cfg.dry_run { " (dry run)" } else { "" }
            );
        }
        let _ = out.flush();
    }

    /// Sends the changes: unplugs, then plugs capped by what the pool
    /// really has left after them.
    fn apply(&mut self, changes: &[Change], sockets: &HashMap<String, PathBuf>) {
        let timeout = self.cfg.timeout;
        for c in changes {
            let Some(sock) = sockets.get(&c.umid) else {
                continue;
            };
            let mut delta = c.delta;
            if delta > 0 {
                if let Some(pool) = self.cfg.pool {
                    let held: u64 = self
                        .books
                        .values()
                        .filter_map(|b| b.last.as_ref().map(|s| s.plugged))
                        .sum();
                    let left = pool.saturating_sub(held) / 4096 * 4096;
                    delta = delta.min(i64::try_from(left).unwrap_or(i64::MAX));
                    if delta <= 0 {
                        log::info!(
                            "{}: plug of {} skipped: pool full",
                            c.umid,
                            fmt_delta(c.delta)
                        );
                        continue;
                    }
                }
            }
            let cmd = format!(
                "config mem={}{}",
                if delta < 0 { '-' } else { '+' },
                delta.unsigned_abs()
            );
            let res = request(sock, &cmd, timeout);
            let size = request(sock, "config mem", timeout)
                .ok()
                .filter(|a| !a.err)
                .and_then(|a| a.text.trim().parse::<u64>().ok());
            let book = self.books.entry(c.umid.clone()).or_default();
            let before = book.last.as_ref().map_or(0, |s| s.plugged);
            match res {
                Ok(a) if !a.err => {
                    let now = size.unwrap_or(before);
                    let moved = now.abs_diff(before);
                    if delta < 0 {
                        book.unplugs += 1;
                        book.unplugged_bytes += moved;
                    } else {
                        book.plugs += 1;
                        book.plugged_bytes += moved;
                    }
                    log::info!(
                        "{}: config mem={} ({}): {} -> {}{}",
                        c.umid,
                        fmt_delta(delta),
                        c.reason,
                        format_size(before),
                        format_size(now),
                        if a.text.trim().is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", a.text.trim())
                        }
                    );
                }
                Ok(a) => log::warn!("{}: {cmd} refused: {}", c.umid, a.text.trim()),
                Err(e) => log::warn!("{}: {cmd}: {e}", c.umid),
            }
            if let (Some(s), Some(last)) = (size, book.last.as_mut()) {
                last.free = last.free.saturating_add(s).saturating_sub(last.plugged);
                last.plugged = s;
            }
        }
    }

    fn export(&self, host: HostView) {
        if self.cfg.metrics.is_none() && self.exporter.is_none() {
            return;
        }
        let mut gs: Vec<GuestMetrics> = self
            .books
            .iter()
            .map(|(umid, b)| {
                let s = b.last.clone().unwrap_or_default();
                GuestMetrics {
                    umid: umid.clone(),
                    size: s.plugged,
                    used: s.used,
                    free: s.free,
                    page_cache: s.page_cache,
                    anon: s.anon,
                    host_bytes: s.host_bytes,
                    plugs: b.plugs,
                    unplugs: b.unplugs,
                    plugged_bytes: b.plugged_bytes,
                    unplugged_bytes: b.unplugged_bytes,
                    oom_kills: s.oom_kills,
                    up: b.down.is_none() || s.stopped,
                }
            })
            .collect();
        gs.sort_by(|a, b| a.umid.cmp(&b.umid));
        let h = HostMetrics {
            mem_available: host.mem_available,
            pressure: host.pressure,
            rounds: self.rounds,
            pool: self.cfg.pool,
        };
        let text = metrics::render(&h, &gs);
        if let Some(path) = &self.cfg.metrics {
            if let Err(e) = metrics::write_file(path, &text) {
                log::warn!("metrics {}: {e}", path.display());
            }
        }
        if let Some(e) = &self.exporter {
            e.set(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn discovery_skips_stale_and_socketless_instances() {
        let d = tempfile::tempdir().unwrap();
        let mk = |umid: &str, pid: u32, sock: bool| {
            let dir = d.path().join(umid);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("pid"), format!("{pid}\n")).unwrap();
            if sock {
                std::fs::write(dir.join("mconsole"), "").unwrap();
            }
        };
        let me = std::process::id();
        mk("live", me, true);
        mk("nosock", me, false);
        // Beyond pid_max: no such process.
        mk("stale", 4_194_305, true);
        std::fs::write(d.path().join("not-a-dir"), "").unwrap();
        let f = discover(&[d.path().to_path_buf(), d.path().to_path_buf()]);
        assert_eq!(
            f,
            vec![Found {
                umid: "live".into(),
                socket: d.path().join("live/mconsole")
            }]
        );
        assert!(discover(&[PathBuf::from("/nonexistent")]).is_empty());
    }

    #[test]
    fn a_cgroup_gives_the_room_and_the_pressure() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).unwrap();
        w("memory.max", "536870912\n");
        w("memory.current", "402653184\n");
        w(
            "memory.stat",
            "anon 1\nactive_file 20971520\ninactive_file 20971520\n",
        );
        w("memory.pressure", "some avg10=7.25 avg60=1.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        let h = host_view(Some(d.path()), None);
        // 512 - 384 + 40 / 2 = 148 MiB (the machine has more than that).
        assert_eq!(h.mem_available, 148 << 20);
        assert_eq!(h.pressure, 7.25);
        // No limit: the host's MemAvailable.
        w("memory.max", "max\n");
        assert!(host_view(Some(d.path()), None).mem_available > 0);
        // PSI from another (v2) cgroup, the memory figures from this one.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(
            v2.path().join("memory.pressure"),
            "some avg10=42.50 avg60=1.00 avg300=0.00 total=9\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        w("memory.max", "536870912\n");
        let h = host_view(Some(d.path()), Some(v2.path()));
        assert_eq!((h.mem_available, h.pressure), (148 << 20, 42.5));
        let said = host_sources(Some(d.path()), None);
        assert!(
            said.contains("cgroup v2")
                && said.ends_with(&format!("{}/memory.pressure", d.path().display())),
            "{said}"
        );
        assert!(host_sources(None, None).ends_with("/proc/pressure/memory"));
    }

    #[test]
    fn an_instance_that_does_not_answer_is_skipped_and_reported_once() {
        // A socket that nobody reads: its request times out.
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("mute");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pid"), format!("{}\n", std::process::id())).unwrap();
        let _sock = std::os::unix::net::UnixDatagram::bind(dir.join("mconsole")).unwrap();
        let mut cfg = super::super::config::from_args(&[], d.path().to_path_buf()).unwrap();
        cfg.timeout = Duration::from_millis(100);
        cfg.dry_run = true;
        let mut b = Balancer::new(cfg);
        let mut out = Vec::new();
        let t = Instant::now();
        assert!(b.round(&mut out).is_empty());
        assert!(t.elapsed() < Duration::from_secs(5));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("mute"), "{text}");
        assert!(text.contains("skipped: no answer"), "{text}");
    }
}
