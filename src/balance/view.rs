//! What the balancer reads, parsed: one guest's `stats` answer (JSON from
//! its kernel), the host's /proc/meminfo and PSI text, and how long each
//! guest has been idle (its syscall and fault counters did not move).

use std::collections::HashMap;
use std::time::Instant;

/// One guest's figures from its `stats` answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    pub plugged: u64,
    pub maxmem: u64,
    pub free: u64,
    pub used: u64,
    pub anon: u64,
    pub page_cache: u64,
    pub clean_cache: u64,
    pub shmem: u64,
    /// Host bytes its memfd holds.
    pub host_bytes: u64,
    pub faults: u64,
    pub syscalls: u64,
    pub oom_kills: u64,
    /// Its memory PSI, some avg10 (%).
    pub pressure: f64,
    pub stopped: bool,
}

/// Parses a `stats` answer; a clear message when a field is missing.
pub fn parse_stats(text: &str) -> Result<Stats, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("stats is not JSON: {e}"))?;
    let num = |path: &str| -> Result<u64, String> {
        v.pointer(path)
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format!("stats has no {path}"))
    };
    Ok(Stats {
        plugged: num("/memory/plugged_bytes")?,
        maxmem: num("/memory/maxmem_bytes")?,
        free: num("/memory/free_bytes")?,
        used: num("/memory/used_bytes")?,
        anon: num("/memory/anon_bytes")?,
        page_cache: num("/memory/page_cache/bytes")?,
        clean_cache: num("/memory/page_cache/clean_bytes")?,
        shmem: num("/memory/shmem_tmpfs_bytes").unwrap_or(0),
        host_bytes: num("/host/memfd_allocated_bytes").unwrap_or(0),
        faults: num("/faults")?,
        syscalls: num("/syscalls")?,
        oom_kills: num("/oom/kills").unwrap_or(0),
        pressure: v
            .pointer("/pressure/psi_memory/some_avg10")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0),
        stopped: v.pointer("/stopped").and_then(|x| x.as_bool()) == Some(true),
    })
}

/// A field of /proc/meminfo in bytes.
pub fn meminfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        kb.checked_mul(1024)
    })
}

/// `some avg10` of a PSI file (/proc/pressure/memory, memory.pressure).
pub fn psi_some_avg10(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("avg10="))?
        .parse()
        .ok()
}

/// When each guest last did work: its syscalls + faults moved by more
/// than `threshold` per second since the previous look.
#[derive(Debug, Default)]
pub struct Activity {
    seen: HashMap<String, (u64, Instant, Instant)>,
    pub threshold: f64,
}

impl Activity {
    pub fn new(threshold: f64) -> Activity {
        Activity {
            seen: HashMap::new(),
            threshold,
        }
    }

    /// Seconds the guest has been idle, after seeing `work` at `now`. A
    /// guest seen the first time counts as busy.
    pub fn idle_secs(&mut self, umid: &str, work: u64, now: Instant) -> f64 {
        let e = self
            .seen
            .entry(umid.to_string())
            .or_insert((work, now, now));
        let (last_work, last_seen, last_active) = *e;
        let dt = now.saturating_duration_since(last_seen).as_secs_f64();
        let rate = if dt > 0.0 {
            work.saturating_sub(last_work) as f64 / dt
        } else {
            0.0
        };
        let active = if rate > self.threshold || work < last_work {
            now
        } else {
            last_active
        };
        *e = (work, now, active);
        now.saturating_duration_since(active).as_secs_f64()
    }

    /// Forgets guests no longer running.
    pub fn retain(&mut self, live: &[String]) {
        self.seen.retain(|k, _| live.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A real `stats` answer (from `umlctl web1 stats --json`), shortened.
    const STATS: &str = r#"{"budget":{"held_bytes":0},"faults":276,
      "host":{"memfd_allocated_bytes":135168,"punched_bytes":33816576},
      "memory":{"anon_bytes":114688,"file_mappings":{"bytes":3985408,"count":10},
        "free_bytes":233308160,"maxmem_bytes":268435456,
        "page_cache":{"bytes":1468416,"cap_bytes":234881024,"clean_bytes":1400000,
          "dirty_bytes":68416,"image_substituted_bytes":1363968},
        "plugged_bytes":234881024,"shmem_tmpfs_bytes":0,"total_bytes":234881024,
        "unplugged_bytes":33554432,"used_bytes":1572864},
      "oom":{"kills":2},"pressure":{"psi_memory":{"some_avg10":1.5}},
      "processes":2,"stopped":false,"syscalls":377,"uptime_seconds":2.0}"#;

    #[test]
    fn parses_a_stats_answer() {
        let s = parse_stats(STATS).unwrap();
        assert_eq!(s.plugged, 234881024);
        assert_eq!(s.maxmem, 268435456);
        assert_eq!(s.free, 233308160);
        assert_eq!(s.clean_cache, 1400000);
        assert_eq!(s.host_bytes, 135168);
        assert_eq!((s.faults, s.syscalls, s.oom_kills), (276, 377, 2));
        assert_eq!(s.pressure, 1.5);
        assert!(!s.stopped);
    }

    #[test]
    fn a_bad_stats_answer_is_a_clear_error() {
        assert!(parse_stats("Unknown command")
            .unwrap_err()
            .contains("not JSON"));
        assert_eq!(
            parse_stats(r#"{"memory":{}}"#).unwrap_err(),
            "stats has no /memory/plugged_bytes"
        );
    }

    #[test]
    fn meminfo_and_psi() {
        let mi = "MemTotal:        8000000 kB\nMemFree:  100 kB\nMemAvailable:    4000000 kB\n";
        assert_eq!(meminfo_field(mi, "MemAvailable"), Some(4_096_000_000));
        assert_eq!(meminfo_field(mi, "MemFree"), Some(102_400));
        assert_eq!(meminfo_field(mi, "Mem"), None);
        assert_eq!(meminfo_field(mi, "SwapTotal"), None);
        let psi = "some avg10=12.50 avg60=3.00 avg300=0.10 total=99\n\
                   full avg10=1.00 avg60=0.00 avg300=0.00 total=9\n";
        assert_eq!(psi_some_avg10(psi), Some(12.5));
        assert_eq!(psi_some_avg10("garbage"), None);
    }

    #[test]
    fn activity_counts_idle_time_from_the_last_work() {
        let mut a = Activity::new(10.0);
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(a.idle_secs("g", 1000, t0), 0.0);
        // 5 per second: under the threshold, idle since t0.
        assert_eq!(a.idle_secs("g", 1005, t0 + s), 1.0);
        assert_eq!(a.idle_secs("g", 1010, t0 + 2 * s), 2.0);
        // 500 per second: busy now.
        assert_eq!(a.idle_secs("g", 1510, t0 + 3 * s), 0.0);
        assert_eq!(a.idle_secs("g", 1510, t0 + 5 * s), 2.0);
        // A guest that rebooted (counters went back) is busy.
        assert_eq!(a.idle_secs("g", 3, t0 + 6 * s), 0.0);
        a.retain(&[]);
        assert_eq!(a.idle_secs("g", 3, t0 + 60 * s), 0.0);
    }
}
