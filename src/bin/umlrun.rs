//! The `umlrun` command: read UML-style switches, check the disks, claim
//! `<uml_dir>/<umid>/pid`, say what was set up, and boot the guest.
//!
//! Exit codes: 0 after --help/--version and after the guest powers off or
//! halts, 1 when the host refuses (umid in use, no pid file), 2 for a wrong
//! switch, size or path, 3 when the guest cannot boot (bad image, no init);
//! when init itself exits, its exit code (128+signal if killed).

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use umlrun::config::size::format_size;
use umlrun::config::{host_defaults, parse_args, Command, Config, InstanceDir, UbdMode};
use umlrun::host::misc;
use umlrun::kernel::boot::{boot, Ended};

const EXIT_HOST: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// The guest could not be started (bad image, no init).
const EXIT_BOOT_FAILED: u8 = 3;

const HELP: &str = "\
usage: umlrun [switches] [image]

Boot a Linux guest in user mode. Switches use User-Mode Linux's syntax:

  mem=<n>[K|M|G]              guest memory (default 256M, at least 16M)
  maxmem=<n>[K|M|G]           how far `config mem=+<n>` may grow it (default: mem=)
  oom_wait=<ms>               out of memory below maxmem=, a fault waits this long for a plug
                              (a balancer's `config mem=+<n>`) before the OOM killer (default 0)
  ubd<N>[flags]=<file>[,<backing>]
                              a disk: N is 0-9 or a-z (ubd0 = ubda = /dev/ubda);
                              <file> is a COW file or a raw image; <backing>
                              overrides the backing file named in the COW header.
                              flags: r read-only, s synchronous writes,
                                     d not a COW file, c shared (no lock)
  <image>                     a bare path: the same as ubd0=<image>
  cow_backing=beside|named|any
                              which backing file a COW header may name: one in
                              the COW file's directory (default), none (name it
                              as <backing>), or any path, as UML trusts it
  ubd=mmap | ubd=copy         map 4K disk pages straight from the image (mmap)
                              or copy them into guest memory (copy, default)
  umid=<name>                 this instance's name (default: random)
  uml_dir=<dir>               where <umid>/pid is kept (default ~/.uml)
  con0=fd:<in>,fd:<out> | con0=fd:<n> | con0=null
                              the guest console (default fd:0,fd:1); con= too
  root=<device>               the guest's root device (default /dev/ubda)
  init=<path>                 the guest's first program (default /sbin/init)
  pagecache_max=<n>[K|M|G]    cap the guest page cache (default: no cap)
  max_map_count=<n>           mappings per guest process (default 65530)
  mapped_file_max=<n>[K|M|G]  bytes of file mappings the guest may hold
                              (default: no cap); all three change at run time
                              with `config <name>=` on the mconsole
  cpu=<n>                     pin the instance to host CPU n (default: automatic)
  host_mem_max=<n>[K|M|G]     host memory the instance may hold; near it the
                              guest reclaims, swaps, then OOM-kills inside
                              (default: what its memory cgroup leaves it)
  platform=ptrace|seccomp|seccomp-spin
                              what runs guest code (default ptrace, or the
                              environment's UMLRUN_PLATFORM); see HOWTO.md
  mconsole=notify:<socket>    send UML's notify messages (socket, panic) there
  uid=<n> gid=<n>             started as root: open the files, then run as
                              this host user and group, for good
  host_seccomp=on|off         umlrun's own seccomp filter: an allow-list of
                              the host syscalls it needs (default on; off
                              only to debug a refused call)
  namespaces=auto|on|off      the stubs in their own pid, mount (an empty,
                              read-only root) and network namespaces
                              (default auto: when the host allows them; on:
                              an error when it does not)
  eth<N>=user[,hostfwd=tcp:[<hostaddr>]:<hostport>-:<guestport>]...
                              ethN (eth0..eth5) on a rootless user-mode NAT (also
                              `slirp`): the guest is 10.0.(2+N).15/24, the gateway
                              10.0.(2+N).2 (the first interface has the default route);
                              each hostfwd brings host connections to a guest port;
                              `,addr=none`: the interface starts down with no address,
                              for the guest's udhcpc (the NAT's DHCP server) or ifconfig
  eth<N>=tuntap,<tap>[,<mac>[,<hostip>]]
                              ethN on an existing host tap device (root)
  eth<N>=daemon[,<mac>[,unix[,<ctl-socket>]]]
                              ethN on a uml_switch port (no root; default socket
                              /tmp/uml.ctl), shared with other umlrun and UML guests;
                              tap and switch interfaces start down with no address

The management console is <uml_dir>/<umid>/mconsole: talk to it with
`umlctl <umid> ...` or Debian's `uml_mconsole <umid> ...`.
  --help, -h                  this text
  --version                   the version
  --syscalls                  each syscall's support level: full, partial
                              (with what is missing) or unsupported (ENOSYS)

example: umlrun mem=256M ubd=mmap disk-images/busybox.cow

Exit codes: 0 help/version/syscalls or guest powered off, 1 host refused (e.g. umid
in use), 2 bad switch or path, 3 the guest cannot boot; if init exits, its
exit code (128+signal if it was killed).
Logs: RUST_LOG=debug umlrun ...   The manual is HOWTO.md.
";

/// The heap counted as it grows: the host budget charges the kernel's own
/// structures between two reads of /proc (host/heap.rs).
#[global_allocator]
static HEAP: umlrun::host::heap::Counting = umlrun::host::heap::Counting;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    umlrun::ratelimit::limit_panic_messages();
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
        Ok(Command::Syscalls) => {
            print!("{}", umlrun::syscalls::support::report());
            return 0;
        }
        Ok(Command::Run(cfg)) => *cfg,
        Err(e) => {
            eprintln!("umlrun: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some((uid, gid)) = cfg.run_as {
        let (me, my_gid) = umlrun::host::privs::ids();
        if !umlrun::host::privs::is_root() && (uid, gid) != (me, my_gid) {
            eprintln!(
                "umlrun: uid={uid} gid={gid}: only root can change user (umlrun runs as uid {me} gid {my_gid})"
            );
            return EXIT_HOST;
        }
    }
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
    // Before the first stub: neither umlrun nor a stub may gain privileges
    // by exec from here on.
    if let Err(e) = umlrun::host::privs::set_no_new_privs() {
        eprintln!("umlrun: cannot set no_new_privs: {e}");
        return EXIT_HOST;
    }
    // Quiet by default: the console is the guest's (RUST_LOG=info shows it).
    for line in describe(&cfg, &instance) {
        log::info!("{line}");
    }
    let code = match boot(&cfg) {
        Ok(ended) => {
            if let Ended::InitExited(status) = ended {
                eprintln!("umlrun: init exited (wait status {status:#x}); instance stopped");
            }
            ended.exit_code()
        }
        Err(e @ umlrun::kernel::boot::BootError::Privs(_)) => {
            eprintln!("umlrun: {e}");
            EXIT_HOST
        }
        Err(e) => {
            eprintln!("umlrun: {e}");
            EXIT_BOOT_FAILED
        }
    };
    drop(instance);
    code
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
        "mem      {} ({} bytes, {} frames of 4K); maxmem {}",
        format_size(cfg.mem_bytes),
        cfg.mem_bytes,
        cfg.mem_bytes / 4096,
        format_size(cfg.maxmem())
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
        "mconsole {}",
        instance.dir().join("mconsole").display()
    ));
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
    lines.push(format!(
        "host_mem_max {}",
        cfg.host_mem_max
            .map(format_size)
            .unwrap_or_else(|| "from the memory cgroup, if limited".into())
    ));
    lines.push(match cfg.cpu {
        Some(c) => format!("cpu      {c} (pinned)"),
        None => "cpu      automatic".into(),
    });
    lines
}
