//! The balancer's view as Prometheus text (exposition format 0.0.4), for
//! node_exporter's textfile collector or any scraper that reads a file.

use std::fmt::Write;

/// One guest's line of figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestMetrics {
    pub umid: String,
    pub size: u64,
    pub used: u64,
    pub free: u64,
    pub page_cache: u64,
    pub anon: u64,
    pub host_bytes: u64,
    pub plugs: u64,
    pub unplugs: u64,
    pub plugged_bytes: u64,
    pub unplugged_bytes: u64,
    pub oom_kills: u64,
    pub up: bool,
}

/// The host's figures and the daemon's own counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostMetrics {
    pub mem_available: u64,
    pub pressure: f64,
    pub rounds: u64,
    pub pool: Option<u64>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One per-guest metric: name (after `umlbalance_guest_`), help, type, value.
type GuestMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&GuestMetrics) -> f64,
);

/// Every per-guest metric, in the order they are written.
const GUEST: &[GuestMetric] = &[
    (
        "size_bytes",
        "Memory plugged into the guest.",
        "gauge",
        |g| g.size as f64,
    ),
    ("used_bytes", "Guest memory in use.", "gauge", |g| {
        g.used as f64
    }),
    ("free_bytes", "Guest memory free.", "gauge", |g| {
        g.free as f64
    }),
    ("page_cache_bytes", "Guest page cache.", "gauge", |g| {
        g.page_cache as f64
    }),
    ("anon_bytes", "Guest anonymous memory.", "gauge", |g| {
        g.anon as f64
    }),
    (
        "host_bytes",
        "Host memory the guest's memfd holds.",
        "gauge",
        |g| g.host_bytes as f64,
    ),
    (
        "plugs_total",
        "config mem=+N sent by the balancer.",
        "counter",
        |g| g.plugs as f64,
    ),
    (
        "unplugs_total",
        "config mem=-N sent by the balancer.",
        "counter",
        |g| g.unplugs as f64,
    ),
    (
        "plugged_bytes_total",
        "Bytes plugged by the balancer.",
        "counter",
        |g| g.plugged_bytes as f64,
    ),
    (
        "unplugged_bytes_total",
        "Bytes unplugged by the balancer.",
        "counter",
        |g| g.unplugged_bytes as f64,
    ),
    ("oom_kills", "OOM kills inside the guest.", "gauge", |g| {
        g.oom_kills as f64
    }),
    ("up", "1 if the guest answered this round.", "gauge", |g| {
        u8::from(g.up) as f64
    }),
];

/// One host or daemon metric: full name, help, type, value (None: not written).
type HostMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&HostMetrics) -> Option<f64>,
);

const HOST: &[HostMetric] = &[
    (
        "umlbalance_host_available_bytes",
        "Host (or cgroup) memory available.",
        "gauge",
        |h| Some(h.mem_available as f64),
    ),
    (
        "umlbalance_host_pressure",
        "Host memory PSI some avg10 (%).",
        "gauge",
        |h| Some(h.pressure),
    ),
    (
        "umlbalance_pool_bytes",
        "Memory all guests may hold together.",
        "gauge",
        |h| h.pool.map(|p| p as f64),
    ),
    ("umlbalance_rounds_total", "Rounds run.", "counter", |h| {
        Some(h.rounds as f64)
    }),
];

/// The whole text.
pub fn render(host: &HostMetrics, guests: &[GuestMetrics]) -> String {
    let mut o = String::new();
    for (name, help, kind, value) in GUEST {
        let _ = writeln!(o, "# HELP umlbalance_guest_{name} {help}");
        let _ = writeln!(o, "# TYPE umlbalance_guest_{name} {kind}");
        for g in guests {
            let _ = writeln!(
                o,
                "umlbalance_guest_{name}{{umid=\"{}\"}} {}",
                escape(&g.umid),
                value(g)
            );
        }
    }
    for (name, help, kind, value) in HOST {
        if let Some(v) = value(host) {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    }
    o
}

/// Writes `text` to `path` atomically (a scraper never reads half).
pub fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_guest_and_the_host() {
        let g = GuestMetrics {
            umid: "web\"1".into(),
            size: 64 << 20,
            plugs: 3,
            up: true,
            ..Default::default()
        };
        let h = HostMetrics {
            mem_available: 1 << 30,
            pressure: 1.5,
            rounds: 7,
            pool: Some(512 << 20),
        };
        let t = render(&h, &[g]);
        assert!(
            t.contains("umlbalance_guest_size_bytes{umid=\"web\\\"1\"} 67108864\n"),
            "{t}"
        );
        assert!(t.contains("umlbalance_guest_plugs_total{umid=\"web\\\"1\"} 3\n"));
        assert!(t.contains("# TYPE umlbalance_guest_plugs_total counter\n"));
        assert!(t.contains("umlbalance_guest_up{umid=\"web\\\"1\"} 1\n"));
        assert!(t.contains("umlbalance_host_available_bytes 1073741824\n"));
        assert!(t.contains("umlbalance_pool_bytes 536870912\n"));
        assert!(t.contains("umlbalance_rounds_total 7\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(l.rsplit(' ').count(), 2, "{l}");
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.prom");
        write_file(&p, &t).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), t);
    }
}
