//! `umlbalance`'s settings: a TOML file (`--config`) and switches that
//! override it, checked at start so a mistake is one clear line.
//!
//! ```toml
//! policy = "constant-free"          # or "host-should-not-swap"
//! uml_dirs = ["/home/me/.uml"]
//! interval = "2s"
//! pool = "1G"                       # all guests together hold at most this
//! admission = true                  # grow a guest only if its way to max fits the pool
//! cgroup = "/sys/fs/cgroup/guests"  # host figures from this memory cgroup
//! psi_cgroup = "/sys/fs/cgroup/unified/guests"  # memory.pressure from this v2 cgroup
//! metrics = "/run/umlbalance.prom"  # Prometheus text, rewritten each round
//! metrics_listen = "127.0.0.1:9101"  # or "unix:/run/umlbalance.sock": GET /metrics
//!
//! [constant_free]
//! base = "16M"
//! percent = 10
//! hysteresis = "4M"
//!
//! [host_should_not_swap]
//! floor = "512M"
//! slack = "64M"
//! reserve = "16M"
//! psi_max = 10.0
//! free_committed = false  # true: guests' free memory counts as the host's used
//! admission = false       # true: grow a guest only if its growth to max fits
//!
//! [squeeze]
//! every = "60s"
//! idle = "30s"
//! keep = "8M"
//!
//! [[class]]
//! name = "gold"
//! priority = 10
//! min = "256M"
//!
//! [[guest]]
//! umid = "web*"                     # a name, or a prefix ending in *
//! class = "gold"
//! max = "2G"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::serve::{parse_listen, Listen};
use super::{ConstantFree, HostShouldNotSwap};
use crate::config::size::parse_size;

const MIB: u64 = 1 << 20;

/// A size as TOML gives it: `"64M"` or a number of bytes.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "SizeInput")]
struct RawSize(u64);

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeInput {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeInput> for RawSize {
    type Error = String;
    fn try_from(s: SizeInput) -> Result<Self, String> {
        match s {
            SizeInput::Bytes(b) => Ok(RawSize(b)),
            SizeInput::Text(t) => parse_size(&t)
                .map(RawSize)
                .map_err(|_| format!("{t:?}: bad size (use a number with K, M or G)")),
        }
    }
}

impl RawSize {
    fn bytes(self) -> u64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
struct RawDuration(Duration);

impl TryFrom<String> for RawDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_duration(&s).map(RawDuration)
    }
}

/// `2s`, `500ms`, `1m`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?}: bad duration (use e.g. 500ms, 2s, 1m)");
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.01..=86400.0).contains(&secs) {
        return Err(format!("{s:?}: out of range (10ms to 1 day)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: Option<String>,
    uml_dirs: Option<Vec<PathBuf>>,
    interval: Option<RawDuration>,
    timeout: Option<RawDuration>,
    pool: Option<RawSize>,
    cgroup: Option<PathBuf>,
    psi_cgroup: Option<PathBuf>,
    metrics: Option<PathBuf>,
    metrics_listen: Option<String>,
    idle_rate: Option<f64>,
    admission: Option<bool>,
    constant_free: Option<RawConstantFree>,
    host_should_not_swap: Option<RawHost>,
    squeeze: Option<RawSqueeze>,
    #[serde(default)]
    class: Vec<RawClass>,
    #[serde(default)]
    guest: Vec<RawGuest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConstantFree {
    base: Option<RawSize>,
    percent: Option<u64>,
    hysteresis: Option<RawSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    floor: Option<RawSize>,
    slack: Option<RawSize>,
    reserve: Option<RawSize>,
    psi_max: Option<f64>,
    free_committed: Option<bool>,
    admission: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSqueeze {
    every: RawDuration,
    idle: Option<RawDuration>,
    keep: Option<RawSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    name: String,
    priority: Option<i32>,
    min: Option<RawSize>,
    max: Option<RawSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuest {
    umid: String,
    class: Option<String>,
    min: Option<RawSize>,
    max: Option<RawSize>,
}

/// Which policy runs.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChoice {
    ConstantFree(ConstantFree),
    HostShouldNotSwap(HostShouldNotSwap),
}

/// A class of guests: priority and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub name: String,
    pub priority: i32,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// One `[[guest]]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestRule {
    pub umid: String,
    pub class: Option<String>,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl GuestRule {
    fn matches(&self, umid: &str) -> bool {
        match self.umid.strip_suffix('*') {
            Some(prefix) => umid.starts_with(prefix),
            None => self.umid == umid,
        }
    }
}

/// The periodic squeeze of idle guests' page cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Squeeze {
    pub every: Duration,
    pub idle: Duration,
    pub keep: u64,
}

/// Everything `umlbalance` runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub policy: PolicyChoice,
    pub uml_dirs: Vec<PathBuf>,
    pub interval: Duration,
    /// How long one mconsole answer may take before the guest is skipped.
    pub timeout: Duration,
    pub pool: Option<u64>,
    /// Pool admission: grow a guest after the first only if all it may
    /// still grow by (to its max) fits in the pool (`arbitrate`).
    pub admission: bool,
    pub cgroup: Option<PathBuf>,
    /// A cgroup v2 whose memory.pressure is the guests' PSI, when the
    /// memory controller is elsewhere (a v1 host with a v2 hierarchy for
    /// PSI); default: `cgroup`'s own memory.pressure, else the host's.
    pub psi_cgroup: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    /// Where the metrics are served over HTTP (serve.rs).
    pub metrics_listen: Option<Listen>,
    /// Syscalls + faults per second under which a guest counts as idle.
    pub idle_rate: f64,
    pub squeeze: Option<Squeeze>,
    pub classes: Vec<Class>,
    pub guests: Vec<GuestRule>,
    /// What a guest keeps free when it gives (unplug and pool donations).
    pub reserve: u64,
    pub default_min: u64,
    pub once: bool,
    pub dry_run: bool,
    /// Stop after this many rounds (None: run until killed).
    pub rounds: Option<u64>,
    /// The file's settings of each policy, for one chosen by switch.
    pub constant_free_settings: Option<ConstantFree>,
    pub host_settings: Option<HostShouldNotSwap>,
}

/// A guest's class priority and limits, after its rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub priority: i32,
    pub min: u64,
    pub max: Option<u64>,
}

impl Config {
    /// The limits for `umid`: the first matching `[[guest]]` rule, its
    /// class, then the defaults.
    pub fn limits(&self, umid: &str) -> Limits {
        let rule = self.guests.iter().find(|r| r.matches(umid));
        let class = rule
            .and_then(|r| r.class.as_deref())
            .and_then(|c| self.classes.iter().find(|k| k.name == c));
        Limits {
            priority: class.map_or(0, |c| c.priority),
            min: rule
                .and_then(|r| r.min)
                .or(class.and_then(|c| c.min))
                .unwrap_or(self.default_min),
            max: rule.and_then(|r| r.max).or(class.and_then(|c| c.max)),
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
usage: umlbalance [--config FILE] [--policy constant-free|host-should-not-swap]
                  [--uml-dir DIR]... [--interval 2s] [--pool SIZE] [--cgroup DIR]
                  [--psi-cgroup DIR] [--admission]
                  [--floor SIZE] [--metrics FILE] [--metrics-listen ADDR]
                  [--once] [--dry-run] [--rounds N]

Moves memory between running umlrun guests through their mconsole sockets
(<uml_dir>/<umid>/mconsole): reads each guest's `stats`, the host's
MemAvailable and memory PSI, and sends `config mem=+N` / `config mem=-N`.

  --config FILE     TOML settings (see HOWTO.md); switches override it
  --policy NAME     constant-free (default) or host-should-not-swap
  --uml-dir DIR     where instances are (repeatable; default ~/.uml)
  --interval T      time between rounds (default 2s)
  --timeout T       how long a guest may take to answer (default 1s)
  --pool SIZE       all guests together hold at most SIZE (plugged memory)
  --admission       grow a guest after the first only if all it may still
                    grow by (to its max) fits: in the pool, and for
                    host-should-not-swap in the host's room too
  --cgroup DIR      host figures from this memory cgroup (and its memory.pressure)
  --psi-cgroup DIR  memory PSI from this cgroup v2's memory.pressure
  --floor SIZE      host-should-not-swap: keep MemAvailable above SIZE
  --min SIZE        no guest is shrunk below SIZE (default 32M)
  --metrics FILE    write Prometheus text there each round
  --metrics-listen ADDR
                    serve it over HTTP (GET /metrics) on a loopback
                    <ip>:<port> or unix:<path>
  --once            one round, then exit
  --dry-run         print decisions, change nothing
  --rounds N        stop after N rounds

The log goes to stderr (RUST_LOG=info shows every change). Exit codes:
0 done, 2 bad usage or configuration.
";

fn size_arg(flag: &str, v: &str) -> Result<u64, String> {
    parse_size(v).map_err(|_| format!("{flag} {v}: bad size (use a number with K, M or G)"))
}

/// Reads the switches (and the file `--config` names): a clear one-line
/// error for anything wrong.
pub fn from_args(args: &[String], default_uml_dir: PathBuf) -> Result<Config, String> {
    let mut file = None;
    let mut it = args.iter();
    let mut sw: Vec<(&str, Option<&str>)> = Vec::new();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a.as_str(), None),
        };
        let takes_value = !matches!(flag, "--once" | "--dry-run" | "--admission");
        if !flag.starts_with("--") {
            return Err(format!("{a}: unexpected argument (see --help)"));
        }
        let value = if takes_value {
            match inline {
                Some(v) => Some(v),
                None => Some(
                    it.next()
                        .map(String::as_str)
                        .ok_or_else(|| format!("{flag}: needs a value"))?,
                ),
            }
        } else {
            if inline.is_some() {
                return Err(format!("{flag}: takes no value"));
            }
            None
        };
        if flag == "--config" {
            file = value;
        } else {
            sw.push((flag, value));
        }
    }
    let raw = match file {
        Some(path) => read_file(Path::new(path))?,
        None => RawFile::default(),
    };
    let mut policy_name = raw.policy.clone();
    let mut uml_dirs: Vec<PathBuf> = Vec::new();
    let mut cfg = build(raw, default_uml_dir.clone())?;
    let mut floor = None;
    let mut min = None;
    let mut admission = false;
    for (flag, value) in sw {
        let v = value.unwrap_or("");
        match flag {
            "--policy" => policy_name = Some(v.to_string()),
            "--uml-dir" => uml_dirs.push(PathBuf::from(v)),
            "--interval" => cfg.interval = parse_duration(v).map_err(|e| format!("{flag} {e}"))?,
            "--timeout" => cfg.timeout = parse_duration(v).map_err(|e| format!("{flag} {e}"))?,
            "--pool" => cfg.pool = Some(size_arg(flag, v)?),
            "--cgroup" => cfg.cgroup = Some(PathBuf::from(v)),
            "--psi-cgroup" => cfg.psi_cgroup = Some(PathBuf::from(v)),
            "--floor" => floor = Some(size_arg(flag, v)?),
            "--min" => min = Some(size_arg(flag, v)?),
            "--metrics" => cfg.metrics = Some(PathBuf::from(v)),
            "--metrics-listen" => cfg.metrics_listen = Some(parse_listen(v)?),
            "--admission" => admission = true,
            "--once" => cfg.once = true,
            "--dry-run" => cfg.dry_run = true,
            "--rounds" => {
                cfg.rounds = Some(
                    v.parse()
                        .ok()
                        .filter(|&n: &u64| n > 0)
                        .ok_or_else(|| format!("--rounds {v}: not a positive number"))?,
                )
            }
            _ => return Err(format!("{flag}: unknown switch (see --help)")),
        }
    }
    if !uml_dirs.is_empty() {
        cfg.uml_dirs = uml_dirs;
    }
    if let Some(m) = min {
        cfg.default_min = m;
    }
    // The policy switch picks the policy; its settings stay the file's.
    if let Some(name) = policy_name {
        cfg.policy = match (name.as_str(), &cfg.policy) {
            ("constant-free", PolicyChoice::ConstantFree(_)) => cfg.policy.clone(),
            ("constant-free", _) => PolicyChoice::ConstantFree(cfg_constant_free(&cfg)),
            ("host-should-not-swap", PolicyChoice::HostShouldNotSwap(_)) => cfg.policy.clone(),
            ("host-should-not-swap", _) => PolicyChoice::HostShouldNotSwap(cfg_host(&cfg)),
            _ => {
                return Err(format!(
                    "policy {name:?}: unknown (constant-free or host-should-not-swap)"
                ))
            }
        };
    }
    if let Some(f) = floor {
        match &mut cfg.policy {
            PolicyChoice::HostShouldNotSwap(h) => h.floor = f,
            _ => return Err("--floor: only for --policy host-should-not-swap".into()),
        }
    }
    if admission {
        cfg.admission = true;
        if let PolicyChoice::HostShouldNotSwap(h) = &mut cfg.policy {
            h.admission = true;
        }
    }
    if cfg.once {
        cfg.rounds = Some(1);
    }
    Ok(cfg)
}

// The file's sections kept for a policy chosen by switch.
fn cfg_constant_free(cfg: &Config) -> ConstantFree {
    cfg.constant_free_settings.clone().unwrap_or_default()
}

fn cfg_host(cfg: &Config) -> HostShouldNotSwap {
    cfg.host_settings.clone().unwrap_or_default()
}

fn read_file(path: &Path) -> Result<RawFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().replace('\n', " ");
        match line {
            Some(l) => format!("{}:{l}: {}", path.display(), msg.trim()),
            None => format!("{}: {}", path.display(), msg.trim()),
        }
    })
}

fn build(raw: RawFile, default_uml_dir: PathBuf) -> Result<Config, String> {
    let cf = raw.constant_free.map(|c| {
        let d = ConstantFree::default();
        ConstantFree {
            base: c.base.map_or(d.base, RawSize::bytes),
            percent: c.percent.unwrap_or(d.percent),
            hysteresis: c.hysteresis.map_or(d.hysteresis, RawSize::bytes),
        }
    });
    if let Some(c) = &cf {
        if c.percent > 1000 {
            return Err(format!(
                "constant_free.percent = {}: at most 1000",
                c.percent
            ));
        }
    }
    let host = match raw.host_should_not_swap {
        Some(h) => {
            let d = HostShouldNotSwap::default();
            let psi_max = h.psi_max.unwrap_or(d.psi_max);
            if !(0.0..=100.0).contains(&psi_max) {
                return Err(format!(
                    "host_should_not_swap.psi_max = {psi_max}: a percentage (0 to 100)"
                ));
            }
            Some(HostShouldNotSwap {
                floor: h.floor.map_or(d.floor, RawSize::bytes),
                slack: h.slack.map_or(d.slack, RawSize::bytes),
                reserve: h.reserve.map_or(d.reserve, RawSize::bytes),
                psi_max,
                free_committed: h.free_committed.unwrap_or(d.free_committed),
                admission: h.admission.unwrap_or(d.admission),
            })
        }
        None => None,
    };
    let policy = match raw.policy.as_deref() {
        None | Some("constant-free") => PolicyChoice::ConstantFree(cf.clone().unwrap_or_default()),
        Some("host-should-not-swap") => {
            PolicyChoice::HostShouldNotSwap(host.clone().unwrap_or_default())
        }
        Some(other) => {
            return Err(format!(
                "policy {other:?}: unknown (constant-free or host-should-not-swap)"
            ))
        }
    };
    let mut classes: Vec<Class> = Vec::new();
    for c in raw.class {
        if classes.iter().any(|k| k.name == c.name) {
            return Err(format!("class {:?}: defined twice", c.name));
        }
        let (min, max) = (c.min.map(RawSize::bytes), c.max.map(RawSize::bytes));
        if let (Some(a), Some(b)) = (min, max) {
            if a > b {
                return Err(format!("class {:?}: min is above max", c.name));
            }
        }
        classes.push(Class {
            name: c.name,
            priority: c.priority.unwrap_or(0),
            min,
            max,
        });
    }
    let mut guests = Vec::new();
    for g in raw.guest {
        if let Some(c) = &g.class {
            if !classes.iter().any(|k| &k.name == c) {
                return Err(format!("guest {:?}: no class named {c:?}", g.umid));
            }
        }
        let (min, max) = (g.min.map(RawSize::bytes), g.max.map(RawSize::bytes));
        if let (Some(a), Some(b)) = (min, max) {
            if a > b {
                return Err(format!("guest {:?}: min is above max", g.umid));
            }
        }
        guests.push(GuestRule {
            umid: g.umid,
            class: g.class,
            min,
            max,
        });
    }
    let squeeze = raw.squeeze.map(|s| Squeeze {
        every: s.every.0,
        idle: s.idle.map_or(Duration::from_secs(30), |d| d.0),
        keep: s.keep.map_or(8 * MIB, RawSize::bytes),
    });
    let idle_rate = raw.idle_rate.unwrap_or(20.0);
    if !(idle_rate.is_finite() && idle_rate >= 0.0) {
        return Err(format!("idle_rate = {idle_rate}: not a rate"));
    }
    let reserve = host.as_ref().map_or(16 * MIB, |h| h.reserve);
    Ok(Config {
        policy,
        uml_dirs: raw.uml_dirs.unwrap_or_else(|| vec![default_uml_dir]),
        interval: raw.interval.map_or(Duration::from_secs(2), |d| d.0),
        timeout: raw.timeout.map_or(Duration::from_secs(1), |d| d.0),
        pool: raw.pool.map(RawSize::bytes),
        admission: raw.admission.unwrap_or(false),
        cgroup: raw.cgroup,
        psi_cgroup: raw.psi_cgroup,
        metrics: raw.metrics,
        metrics_listen: raw
            .metrics_listen
            .as_deref()
            .map(parse_listen)
            .transpose()?,
        idle_rate,
        squeeze,
        classes,
        guests,
        reserve,
        default_min: 32 * MIB,
        once: false,
        dry_run: false,
        rounds: None,
        constant_free_settings: cf,
        host_settings: host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.toml");
        std::fs::write(&p, text).unwrap();
        let s = p.display().to_string();
        (d, s)
    }

    #[test]
    fn defaults_and_switches() {
        let c = from_args(&[], PathBuf::from("/h/.uml")).unwrap();
        assert_eq!(
            c.policy,
            PolicyChoice::ConstantFree(ConstantFree::default())
        );
        assert_eq!(c.uml_dirs, vec![PathBuf::from("/h/.uml")]);
        assert_eq!(c.interval, Duration::from_secs(2));
        let c = from_args(
            &args(
                "--policy host-should-not-swap --floor 1G --uml-dir /a --uml-dir=/b \
                 --interval 250ms --pool 512M --once --dry-run",
            ),
            PathBuf::new(),
        )
        .unwrap();
        match c.policy {
            PolicyChoice::HostShouldNotSwap(h) => assert_eq!(h.floor, 1 << 30),
            p => panic!("{p:?}"),
        }
        assert_eq!(c.uml_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.interval, Duration::from_millis(250));
        assert_eq!(c.pool, Some(512 * MIB));
        assert!(c.dry_run && c.once);
        assert_eq!(c.rounds, Some(1));
    }

    #[test]
    fn admission_from_the_switch_or_the_file() {
        let c = from_args(&[], PathBuf::new()).unwrap();
        assert!(!c.admission);
        let c = from_args(&args("--pool 1G --admission"), PathBuf::new()).unwrap();
        assert!(c.admission);
        // For host-should-not-swap the switch turns on its own admission too.
        let c = from_args(
            &args("--policy host-should-not-swap --admission"),
            PathBuf::new(),
        )
        .unwrap();
        match c.policy {
            PolicyChoice::HostShouldNotSwap(h) => assert!(h.admission && c.admission),
            p => panic!("{p:?}"),
        }
        let (_d, p) = file("pool = \"512M\"\nadmission = true\n");
        let c = from_args(&args(&format!("--config {p}")), PathBuf::new()).unwrap();
        assert!(c.admission);
        assert_eq!(
            from_args(&args("--admission=yes"), PathBuf::new()).unwrap_err(),
            "--admission: takes no value"
        );
    }

    #[test]
    fn bad_switches_are_one_line_errors() {
        let e = |s: &str| from_args(&args(s), PathBuf::new()).unwrap_err();
        assert_eq!(
            e("--policy greedy"),
            "policy \"greedy\": unknown (constant-free or host-should-not-swap)"
        );
        assert_eq!(
            e("--pool lots"),
            "--pool lots: bad size (use a number with K, M or G)"
        );
        assert_eq!(e("--interval"), "--interval: needs a value");
        assert_eq!(e("--frob 1"), "--frob: unknown switch (see --help)");
        assert_eq!(
            e("--floor 1G"),
            "--floor: only for --policy host-should-not-swap"
        );
        assert_eq!(e("--rounds 0"), "--rounds 0: not a positive number");
        assert_eq!(e("stray"), "stray: unexpected argument (see --help)");
        assert!(e("--interval 0s").contains("out of range"));
        assert!(e("--config /nonexistent/b.toml").starts_with("/nonexistent/b.toml: "));
    }

    #[test]
    fn a_full_file() {
        let (_d, p) = file(
            r#"
policy = "host-should-not-swap"
uml_dirs = ["/x", "/y"]
interval = "1s"
pool = "1G"
metrics = "/tmp/m.prom"

[host_should_not_swap]
floor = "512M"
reserve = 33554432
psi_max = 5.0

[squeeze]
every = "1m"

[[class]]
name = "gold"
priority = 10
min = "256M"

[[class]]
name = "cheap"
priority = -1
max = "128M"

[[guest]]
umid = "web*"
class = "gold"
max = "2G"

[[guest]]
umid = "batch1"
class = "cheap"
min = "16M"
"#,
        );
        let c = from_args(&args(&format!("--config {p}")), PathBuf::new()).unwrap();
        match &c.policy {
            PolicyChoice::HostShouldNotSwap(h) => {
                assert_eq!((h.floor, h.reserve, h.psi_max), (512 * MIB, 32 * MIB, 5.0));
                assert_eq!(h.slack, HostShouldNotSwap::default().slack);
            }
            p => panic!("{p:?}"),
        }
        assert_eq!(c.pool, Some(1 << 30));
        assert_eq!(c.squeeze.as_ref().unwrap().every, Duration::from_secs(60));
        let web = c.limits("web7");
        assert_eq!(
            (web.priority, web.min, web.max),
            (10, 256 * MIB, Some(2 << 30))
        );
        let b = c.limits("batch1");
        assert_eq!((b.priority, b.min, b.max), (-1, 16 * MIB, Some(128 * MIB)));
        let other = c.limits("batch2");
        assert_eq!((other.priority, other.min, other.max), (0, 32 * MIB, None));
        // The switch overrides the file's policy; the file's settings for
        // the other policy stay defaults.
        let c = from_args(
            &args(&format!("--config {p} --policy constant-free")),
            PathBuf::new(),
        )
        .unwrap();
        assert_eq!(
            c.policy,
            PolicyChoice::ConstantFree(ConstantFree::default())
        );
    }

    #[test]
    fn a_malformed_file_is_one_line_naming_the_line() {
        let cases = [
            ("policy = 3\n", ":1: "),
            ("pool = \"12Q\"\n", ":1: \"12Q\": bad size"),
            ("pool = -1\n", ":1: "),
            ("\n\nfloor = \"1G\"\n", "unknown field `floor`"),
            (
                "[[guest]]\numid = \"a\"\nclass = \"nope\"\n",
                "no class named \"nope\"",
            ),
            (
                "[[class]]\nname = \"a\"\nmin = \"2G\"\nmax = \"1G\"\n",
                "min is above max",
            ),
            ("interval = \"soon\"\n", ":1: "),
            ("policy = \"x\"\n", "unknown (constant-free"),
            ("[host_should_not_swap]\npsi_max = 500.0\n", "a percentage"),
            ("[[class]\n", ":1: "),
        ];
        for (text, want) in cases {
            let (_d, p) = file(text);
            let e = from_args(&args(&format!("--config {p}")), PathBuf::new()).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{text:?}: not one line: {e}");
        }
    }
}
