//! The `umlrun` command: read UML-style switches, check the disks, claim
//! `<uml_dir>/<umid>/pid`, say what was set up, and boot the guest.
//!
//! Exit codes: 0 after --help/--version, 1 when the host refuses (umid in
//! use, no pid file), 2 for a wrong switch, size or path, 3 while the guest
//! kernel cannot boot yet.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use thiserror::Error;

use umlrun::config::size::format_size;
use umlrun::config::{host_defaults, parse_args, Command, Config, InstanceDir, UbdMode};
use umlrun::host::misc;

const EXIT_HOST: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO_BOOT: u8 = 3;

const HELP: &str = "\
usage: umlrun [switches] [image]

Boot a Linux guest in user mode. Switches use User-Mode Linux's syntax:

  mem=<n>[K|M|G]              guest memory (default 256M, at least 16M)
  ubd<N>[flags]=<file>[,<backing>]
                              a disk: N is 0-9 or a-z (ubd0 = ubda = /dev/ubda);
                              <file> is a COW file or a raw image; <backing>
                              overrides the backing file named in the COW header.
                              flags: r read-only, s synchronous writes,
                                     d not a COW file, c shared (no lock)
  <image>                     a bare path: the same as ubd0=<image>
  ubd=mmap | ubd=copy         map 4K disk pages straight from the image (mmap)
                              or copy them into guest memory (copy, default)
  umid=<name>                 this instance's name (default: random)
  uml_dir=<dir>               where <umid>/pid is kept (default ~/.uml)
  con0=fd:<in>,fd:<out> | con0=fd:<n> | con0=null
                              the guest console (default fd:0,fd:1); con= too
  root=<device>               the guest's root device (default /dev/ubda)
  init=<path>                 the guest's first program (default /sbin/init)
  pagecache_max=<n>[K|M|G]    cap the guest page cache (default: no cap)
  cpu=<n>                     pin the instance to host CPU n (default: automatic)
  --help, -h                  this text
  --version                   the version

example: umlrun mem=256M ubd=mmap disk-images/busybox.cow

Exit codes: 0 help/version, 1 host refused (e.g. umid in use), 2 bad switch
or path, 3 the guest kernel cannot boot yet.
Logs: RUST_LOG=debug umlrun ...   The manual is HOWTO.md.
";

/// Why the guest did not run.
#[derive(Debug, Error)]
enum BootError {
    #[error("the guest kernel cannot boot yet (no ptrace platform); stopping")]
    NoPlatform,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    // Returning (not process::exit) lets the instance guard clean up.
    ExitCode::from(run())
}

fn run() -> u8 {
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(raw) => {
                eprintln!("umlrun: {}: not valid UTF-8", raw.to_string_lossy());
                return EXIT_USAGE;
            }
        }
    }
    let cfg = match parse_args(&args, &host_defaults()) {
        Ok(Command::Help) => {
            print!("{HELP}");
            return 0;
        }
        Ok(Command::Version) => {
            println!("umlrun {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Command::Run(cfg)) => cfg,
        Err(e) => {
            eprintln!("umlrun: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(msg) = check_disks(&cfg) {
        eprintln!("umlrun: {msg}");
        return EXIT_USAGE;
    }
    if let Some(cpu) = cfg.cpu {
        if let Err(e) = misc::pin_to_cpu(cpu) {
            eprintln!("umlrun: cpu={cpu}: cannot pin: {e}");
            return EXIT_HOST;
        }
    }
    let instance = match InstanceDir::claim(&cfg.uml_dir, &cfg.umid) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("umlrun: {e}");
            return EXIT_HOST;
        }
    };
    for line in describe(&cfg, &instance) {
        eprintln!("umlrun: {line}");
    }
    let code = match boot(&cfg) {
        Ok(()) => 0,
        Err(e @ BootError::NoPlatform) => {
            eprintln!("umlrun: {e}");
            EXIT_NO_BOOT
        }
    };
    drop(instance);
    code
}

/// Bring the guest up and run it until it halts.
///
/// This is where the kernel gets wired in: physical memory
/// (`umlrun::physmem::PhysMem::new(cfg.mem_bytes)`), the disks
/// (`umlrun::block::Ubd::open(&spec)` for each of `cfg.ubds`), the page
/// cache capped by `cfg.pagecache_max`, the console on `cfg.console`, then
/// `cfg.init` from `cfg.root` on the ptrace platform. Until that platform
/// exists there is nothing to run, and we say so instead of pretending.
fn boot(cfg: &Config) -> Result<(), BootError> {
    log::debug!("boot: {cfg:?}");
    Err(BootError::NoPlatform)
}

/// Every disk file (and a backing file named on the command line) must be
/// an existing file; the message starts with the switch.
fn check_disks(cfg: &Config) -> Result<(), String> {
    for spec in &cfg.ubds {
        let mut paths = vec![spec.file.as_path()];
        paths.extend(spec.backing.as_deref());
        for path in paths {
            check_file(path).map_err(|why| match spec.backing {
                // One file: the switch already names it.
                None => format!("{}: {why}", spec.switch_text()),
                Some(_) => format!("{}: {}: {why}", spec.switch_text(), path.display()),
            })?;
        }
    }
    Ok(())
}

fn check_file(path: &Path) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Err("is a directory, not a disk image".into()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such file".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// What was set up, one line per item.
fn describe(cfg: &Config, instance: &InstanceDir) -> Vec<String> {
    let mut lines = vec![format!(
        "mem      {} ({} bytes, {} frames of 4K)",
        format_size(cfg.mem_bytes),
        cfg.mem_bytes,
        cfg.mem_bytes / 4096
    )];
    let mode = match cfg.ubd_mode {
        UbdMode::Copy => "copy",
        UbdMode::Mmap => "mmap",
    };
    for spec in &cfg.ubds {
        let backing = match (&spec.backing, spec.flags.no_cow) {
            (_, true) => "raw image".to_string(),
            (Some(b), false) => format!("backing {}", b.display()),
            (None, false) => "backing file from its COW header, if it is one".to_string(),
        };
        let flags = match spec.flags.letters() {
            f if f.is_empty() => "none".to_string(),
            f => f,
        };
        lines.push(format!(
            "{:<8} {} ({backing}; flags {flags}; {mode} mode) = /dev/{}",
            format!("ubd{}", spec.index),
            spec.file.display(),
            spec.guest_name()
        ));
    }
    lines.push(format!("umid     {}", cfg.umid));
    lines.push(format!(
        "pid file {} (pid {})",
        instance.pid_file().display(),
        misc::current_pid()
    ));
    lines.push(format!("console  {}", cfg.console));
    lines.push(format!("root     {}  init {}", cfg.root, cfg.init));
    lines.push(format!(
        "pagecache_max {}",
        cfg.pagecache_max
            .map(format_size)
            .unwrap_or_else(|| "none".into())
    ));
    lines.push(match cfg.cpu {
        Some(c) => format!("cpu      {c} (pinned)"),
        None => "cpu      automatic".into(),
    });
    lines
}
