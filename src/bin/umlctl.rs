//! The `umlctl` command: talk to running umlrun instances through their
//! management console sockets (UML's mconsole protocol, as `uml_mconsole`
//! speaks it).
//!
//! Exit codes: 0 done, 1 the instance refused the command (its error is
//! printed) or is not running, 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use umlrun::config::size::format_size;
use umlrun::config::{host_defaults, read_pid};
use umlrun::host::misc::pid_alive;
use umlrun::mconsole::client::{request, Answer, ClientError};

const HELP: &str = "\
usage: umlctl [uml_dir=<dir>] list
       umlctl [uml_dir=<dir>] <umid> stats [--json]
       umlctl [uml_dir=<dir>] <umid> mem [+|-]<n>[K|M|G]
       umlctl [uml_dir=<dir>] <umid> <mconsole command...>

Talk to running umlrun instances through <uml_dir>/<umid>/mconsole (the
default uml_dir is ~/.uml; <umid> may also be a socket path).

  list                  every instance under uml_dir: alive or stale
  stats [--json]        memory, page cache, host memory held, activity
  mem                   the guest's memory size
  mem -<n> | mem +<n>   unplug or plug guest memory (up to its maxmem=)
  anything else         passed through: version, help, halt, reboot, cad,
                        stop, go, sysrq <key>, proc <file>, log <text>,
                        config <dev>[=<spec>], remove <dev>, stack <pid>

Exit codes: 0 done, 1 refused by the instance or instance not running,
2 bad usage.
";

const TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    ExitCode::from(run(std::env::args().skip(1).collect()))
}

fn run(mut args: Vec<String>) -> u8 {
    let mut uml_dir = host_defaults().uml_dir();
    if let Some(d) = args.first().and_then(|a| a.strip_prefix("uml_dir=")) {
        uml_dir = PathBuf::from(d);
        args.remove(0);
    }
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") if args.len() <= 1 => {
            print!("{HELP}");
            if args.is_empty() {
                EXIT_USAGE
            } else {
                0
            }
        }
        Some("list") if args.len() == 1 => list(&uml_dir),
        Some(umid) => {
            let target = match Target::find(&uml_dir, umid) {
                Ok(t) => t,
                Err(msg) => {
                    eprintln!("umlctl: {msg}");
                    return EXIT_REFUSED;
                }
            };
            let rest = &args[1..];
            match rest.first().map(String::as_str) {
                None => {
                    eprintln!("umlctl: {umid}: no command (see umlctl --help)");
                    EXIT_USAGE
                }
                Some("stats") => stats(&target, rest.get(1).map(String::as_str)),
                Some("mem") => mem(&target, rest.get(1).map(String::as_str), rest.len()),
                Some(_) => {
                    let cmd = rest.join(" ");
                    match target.ask(&cmd) {
                        Ok(a) => print_answer(&a),
                        Err(code) => code,
                    }
                }
            }
        }
        None => EXIT_USAGE,
    }
}

/// One instance's socket.
struct Target {
    name: String,
    socket: PathBuf,
}

impl Target {
    /// `<uml_dir>/<umid>/mconsole`, or a socket path; a clear error for a
    /// missing or dead instance.
    fn find(uml_dir: &Path, umid: &str) -> Result<Target, String> {
        if umid.contains('/') {
            let p = PathBuf::from(umid);
            if !p.exists() {
                return Err(format!("{umid}: no such socket"));
            }
            return Ok(Target {
                name: umid.into(),
                socket: p,
            });
        }
        let dir = uml_dir.join(umid);
        if !dir.is_dir() {
            return Err(format!(
                "{umid}: no such instance under {} (umlctl list shows them)",
                uml_dir.display()
            ));
        }
        match read_pid(&dir.join("pid")) {
            Some(pid) if pid_alive(pid) => {}
            Some(pid) => {
                return Err(format!(
                    "{umid}: not running (stale: its pid {pid} is gone)"
                ))
            }
            None => return Err(format!("{umid}: not running (no pid file)")),
        }
        let socket = dir.join("mconsole");
        if !socket.exists() {
            return Err(format!("{umid}: has no management console socket"));
        }
        Ok(Target {
            name: umid.into(),
            socket,
        })
    }

    /// Sends `cmd`; a failure to reach the instance is printed.
    fn ask(&self, cmd: &str) -> Result<Answer, u8> {
        request(&self.socket, cmd, TIMEOUT).map_err(|e| {
            match e {
                ClientError::Send { ref source, .. }
                    if source.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    eprintln!("umlctl: {}: not running (nobody at its socket)", self.name)
                }
                e => eprintln!("umlctl: {}: {e}", self.name),
            }
            EXIT_REFUSED
        })
    }
}

fn print_answer(a: &Answer) -> u8 {
    if a.err {
        eprintln!("umlctl: {}", a.text.trim_end());
        return EXIT_REFUSED;
    }
    let t = a.text.strip_prefix('\n').unwrap_or(&a.text);
    if !t.is_empty() {
        print!("{t}");
        if !t.ends_with('\n') {
            println!();
        }
    }
    0
}

fn list(uml_dir: &Path) -> u8 {
    let Ok(rd) = std::fs::read_dir(uml_dir) else {
        println!("no instances ({} does not exist)", uml_dir.display());
        return 0;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    println!("{:<24} {:>8}  {:<6} {:>8}", "UMID", "PID", "STATE", "MEM");
    for n in names {
        let dir = uml_dir.join(&n);
        let pid = read_pid(&dir.join("pid"));
        let alive = pid.is_some_and(pid_alive);
        let mem = if alive && dir.join("mconsole").exists() {
            request(&dir.join("mconsole"), "config mem", Duration::from_secs(2))
                .ok()
                .filter(|a| !a.err)
                .and_then(|a| a.text.trim().parse::<u64>().ok())
                .map(format_size)
                .unwrap_or_else(|| "?".into())
        } else {
            "-".into()
        };
        println!(
            "{:<24} {:>8}  {:<6} {:>8}",
            n,
            pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            if alive { "alive" } else { "stale" },
            mem
        );
    }
    0
}

fn stats(t: &Target, opt: Option<&str>) -> u8 {
    let json = match opt {
        None => false,
        Some("--json") => true,
        Some(o) => {
            eprintln!("umlctl: stats: unknown option {o} (use --json)");
            return EXIT_USAGE;
        }
    };
    let a = match t.ask("stats") {
        Ok(a) => a,
        Err(code) => return code,
    };
    if a.err || json {
        return print_answer(&a);
    }
    let v: serde_json::Value = match serde_json::from_str(&a.text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("umlctl: {}: stats is not JSON: {e}", t.name);
            return EXIT_REFUSED;
        }
    };
    print!("{}", human_stats(&v));
    0
}

/// A byte figure in the shortest of K/M/G with one decimal.
fn human(b: u64) -> String {
    let (v, s) = match b {
        b if b >= 1 << 30 => (b as f64 / (1u64 << 30) as f64, "G"),
        b if b >= 1 << 20 => (b as f64 / (1u64 << 20) as f64, "M"),
        b if b >= 1 << 10 => (b as f64 / 1024.0, "K"),
        b => return format!("{b}B"),
    };
    format!("{v:.1}{s}")
}

fn human_stats(v: &serde_json::Value) -> String {
    let n = |p: &str| v.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
    let mut out = String::new();
    out.push_str(&format!(
        "memory    {} plugged (maxmem {}), {} free, {} used\n",
        human(n("/memory/plugged_bytes")),
        human(n("/memory/maxmem_bytes")),
        human(n("/memory/free_bytes")),
        human(n("/memory/used_bytes"))
    ));
    out.push_str(&format!(
        "  anon {}, page cache {} (clean {}, dirty {}, image {}; cap {}), shmem/tmpfs {}\n",
        human(n("/memory/anon_bytes")),
        human(n("/memory/page_cache/bytes")),
        human(n("/memory/page_cache/clean_bytes")),
        human(n("/memory/page_cache/dirty_bytes")),
        human(n("/memory/page_cache/image_substituted_bytes")),
        human(n("/memory/page_cache/cap_bytes")),
        human(n("/memory/shmem_tmpfs_bytes"))
    ));
    out.push_str(&format!(
        "  file mappings {} ({})\n",
        n("/memory/file_mappings/count"),
        human(n("/memory/file_mappings/bytes"))
    ));
    out.push_str(&format!(
        "host      memfd holds {}; {} punched so far\n",
        human(n("/host/memfd_allocated_bytes")),
        human(n("/host/punched_bytes"))
    ));
    out.push_str(&format!(
        "activity  {} faults, {} syscalls, {} processes, up {:.1}s{}\n",
        n("/faults"),
        n("/syscalls"),
        n("/processes"),
        v.pointer("/uptime_seconds")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0),
        if v.pointer("/stopped").and_then(|x| x.as_bool()) == Some(true) {
            " (stopped)"
        } else {
            ""
        }
    ));
    if let Some(top) = v.pointer("/top_rss").and_then(|x| x.as_array()) {
        out.push_str("top RSS\n");
        for p in top {
            out.push_str(&format!(
                "  {:>6} {:<16} {}\n",
                p["pid"].as_u64().unwrap_or(0),
                p["comm"].as_str().unwrap_or("?"),
                human(p["rss_bytes"].as_u64().unwrap_or(0))
            ));
        }
    }
    out
}

fn mem(t: &Target, change: Option<&str>, nargs: usize) -> u8 {
    if nargs > 2 {
        eprintln!("umlctl: mem takes one argument: [+|-]<size>");
        return EXIT_USAGE;
    }
    if let Some(c) = change {
        if !c.starts_with(['+', '-']) {
            eprintln!("umlctl: mem {c}: give a change, +<size> or -<size>");
            return EXIT_USAGE;
        }
        let a = match t.ask(&format!("config mem={c}")) {
            Ok(a) => a,
            Err(code) => return code,
        };
        if a.err {
            return print_answer(&a);
        }
        if !a.text.is_empty() {
            println!("{}", a.text.trim_end());
            return 0;
        }
    }
    match t.ask("config mem") {
        Ok(a) if !a.err => match a.text.trim().parse::<u64>() {
            Ok(b) => {
                println!("{}", format_size(b));
                0
            }
            Err(_) => print_answer(&a),
        },
        Ok(a) => print_answer(&a),
        Err(code) => code,
    }
}
