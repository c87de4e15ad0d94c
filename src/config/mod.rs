//! The umlrun command line, in UML's syntax (`mem=256M ubd0=cow,backing`).
//!
//! The types here are shared with `block` (which opens `UbdSpec`s) and the
//! boot code; the parser fills them in and every error names its switch.
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | the shared types: `Config`, `UbdSpec`, `UbdFlags`, `UbdMode`, `Console` |
//! | `parse.rs` | switches → `Config`, one `ConfigError` per mistake |
//! | `size.rs` | `256M`-style sizes |
//! | `umid.rs` | the instance directory `<uml_dir>/<umid>/pid` and its guard |
//! | `limits.rs` | `pagecache_max`, `max_map_count`, `mapped_file_max`: names and values (switch and mconsole) |
//! | `eth.rs` | `eth<N>=` network devices: the user-mode NAT and its port forwards |

#![deny(unsafe_code)]

pub mod eth;
pub mod limits;
pub mod parse;
pub mod size;
pub mod umid;

pub use parse::{parse_args, Command, ConfigError, Defaults};
pub use umid::{read_pid, InstanceDir, UmidError};

use std::fmt;
use std::path::PathBuf;

/// How a ubd device brings disk pages into the guest's page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UbdMode {
    /// `pread`/`pwrite` into page-cache frames (UML's default).
    #[default]
    Copy,
    /// 4 KiB pages that lie aligned in one host file are mapped from it.
    Mmap,
}

/// The flags after `ubd<N>`: `r`, `s`, `d`, `c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UbdFlags {
    /// `r`: the device is read-only.
    pub read_only: bool,
    /// `s`: writes are O_SYNC.
    pub sync: bool,
    /// `d`: the file is a plain image, never a COW file.
    pub no_cow: bool,
    /// `c`: shared; do not take the exclusive lock.
    pub shared: bool,
}

/// One `ubd<N><flags>=<file>[,<backing>]` switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbdSpec {
    /// Device index: 0 for ubd0/ubda.
    pub index: u8,
    pub flags: UbdFlags,
    /// The COW file, or the raw image.
    pub file: PathBuf,
    /// The backing file named on the command line; it wins over the header.
    pub backing: Option<PathBuf>,
    pub mode: UbdMode,
}

/// `mem=` when none is given. UML defaults to 32M; a busybox guest with a
/// page cache is happier with 256M, and an untouched memfd costs nothing.
pub const DEFAULT_MEM: u64 = 256 << 20;
/// The least `mem=` that can hold a kernel's tables and one shell.
pub const MIN_MEM: u64 = 16 << 20;
/// `root=` when none is given: the first ubd device, as in UML.
pub const DEFAULT_ROOT: &str = "/dev/ubda";
/// `init=` when none is given.
pub const DEFAULT_INIT: &str = "/sbin/init";
/// The longest umid UML accepts (`UMID_LEN`).
pub const MAX_UMID_LEN: usize = 64;

/// Where the guest console (`con0=`) reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// `fd:IN,fd:OUT` (or `fd:N` for both): host file descriptors.
    Fd { input: i32, output: i32 },
    /// `null`: input is empty, output is thrown away.
    Null,
}

impl Default for Console {
    fn default() -> Self {
        Console::Fd {
            input: 0,
            output: 1,
        }
    }
}

impl fmt::Display for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Console::Fd { input, output } => write!(f, "fd:{input},fd:{output}"),
            Console::Null => write!(f, "null"),
        }
    }
}

/// Which platform runs guest code (`platform=auto|ptrace|seccomp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlatformKind {
    /// The default: the fastest that works on this host. Seccomp when the
    /// host has user FSGSBASE and a first seccomp stub sets up (it is
    /// spawned at boot and kept as a spare), ptrace otherwise.
    #[default]
    Auto,
    /// Stubs under ptrace (PTRACE_SYSEMU): works on every host.
    Ptrace,
    /// Stubs behind a seccomp filter, syscalls as SIGSYS handed over in
    /// shared memory (needs user FSGSBASE: Linux 5.9+), on umlrun's CPU.
    Seccomp,
    /// The same with the stubs on another CPU and both sides polling:
    /// fastest on a host with a CPU to spare, slow on a busy one.
    SeccompSpin,
}

impl PlatformKind {
    pub fn parse(s: &str) -> Option<PlatformKind> {
        match s {
            "auto" => Some(PlatformKind::Auto),
            "ptrace" => Some(PlatformKind::Ptrace),
            "seccomp" => Some(PlatformKind::Seccomp),
            "seccomp-spin" => Some(PlatformKind::SeccompSpin),
            _ => None,
        }
    }
}

impl std::fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlatformKind::Auto => "auto",
            PlatformKind::Ptrace => "ptrace",
            PlatformKind::Seccomp => "seccomp",
            PlatformKind::SeccompSpin => "seccomp-spin",
        })
    }
}

/// Everything the command line says, with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Guest physical memory in bytes, a multiple of 4 KiB.
    pub mem_bytes: u64,
    /// The disks, in command-line order; indices are unique.
    pub ubds: Vec<UbdSpec>,
    /// `ubd=mmap` or `ubd=copy`; also copied into every `UbdSpec::mode`.
    pub ubd_mode: UbdMode,
    /// The instance's name; its pid file is `<uml_dir>/<umid>/pid`.
    pub umid: String,
    /// The directory holding one directory per running instance.
    pub uml_dir: PathBuf,
    pub console: Console,
    /// The guest's `root=` (a guest device name, e.g. /dev/ubda).
    pub root: String,
    /// The guest's first program.
    pub init: String,
    /// Upper bound on the guest page cache in bytes; None: no cap.
    pub pagecache_max: Option<u64>,
    /// VMAs per guest process (`max_map_count=`); None: Linux's 65530.
    pub max_map_count: Option<u64>,
    /// Bytes of file-backed mappings the guest may hold (`mapped_file_max=`).
    pub mapped_file_max: Option<u64>,
    /// The host CPU to pin the kernel and its stubs to; None: automatic.
    pub cpu: Option<usize>,
    /// What runs guest code (`platform=`).
    pub platform: PlatformKind,
    /// Which backing files a COW header may name (`cow_backing=`).
    pub cow_backing: crate::block::cow::confine::BackingPolicy,
    /// How far memory hot-plug may grow the guest (`maxmem=`); None: `mem=`.
    pub maxmem_bytes: Option<u64>,
    /// `oom_wait=<ms>`: out of memory with hot-plug headroom left, a
    /// faulting task waits this long for a plug before the OOM killer
    /// (kernel/oom.rs); 0: no wait.
    pub oom_wait_ms: u64,
    /// Where UML's notify messages go (`mconsole=notify:<socket>`).
    pub mconsole_notify: Option<PathBuf>,
    /// The host memory the instance may hold (`host_mem_max=`); None:
    /// what its memory cgroup leaves it (kernel/budget.rs).
    pub host_mem_max: Option<u64>,
    /// Network devices (`eth<N>=`), in command-line order.
    pub eth: Vec<eth::EthSpec>,
    /// The arguments as given, joined by spaces: the guest's /proc/cmdline.
    pub cmdline: String,
    /// `uid=`/`gid=`: the host user umlrun becomes after opening its files
    /// (it must start as root); None: it stays who it is.
    pub run_as: Option<(u32, u32)>,
    /// `host_seccomp=on|off`: umlrun's own seccomp filter (default on).
    pub host_seccomp: bool,
    /// `namespaces=auto|on|off`: the stubs' own pid, mount and network
    /// namespaces (default auto: when the host allows them).
    pub namespaces: Namespaces,
}

/// `namespaces=`: whether the stubs get their own namespaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Namespaces {
    /// When the host allows them (root, or unprivileged user namespaces);
    /// otherwise umlrun runs without and says so at `RUST_LOG=info`.
    #[default]
    Auto,
    /// Always: a namespace that cannot be made is a one-line error.
    On,
    Off,
}

impl Config {
    /// The instance directory, `<uml_dir>/<umid>`.
    pub fn instance_dir(&self) -> PathBuf {
        self.uml_dir.join(&self.umid)
    }

    /// The most memory hot-plug may give the guest.
    pub fn maxmem(&self) -> u64 {
        self.maxmem_bytes
            .unwrap_or(self.mem_bytes)
            .max(self.mem_bytes)
    }
}

/// The defaults this host gives: its home, a fresh random umid, our CPUs.
pub fn host_defaults() -> Defaults {
    use crate::host::misc;
    let random = misc::random_bytes(6).unwrap_or_else(|_| {
        // No /dev/urandom: fall back on the pid, still unique among live runs.
        misc::current_pid().to_be_bytes().repeat(2)
    });
    Defaults {
        home: misc::home_dir(),
        umid: umid::random_umid(&random),
        cpus: misc::allowed_cpus(),
        platform: std::env::var("UMLRUN_PLATFORM")
            .ok()
            .and_then(|v| PlatformKind::parse(&v))
            .unwrap_or_default(),
    }
}

impl UbdFlags {
    /// The flag letters as written after `ubd<N>`, e.g. "rc".
    pub fn letters(&self) -> String {
        let mut s = String::new();
        for (on, c) in [
            (self.read_only, 'r'),
            (self.sync, 's'),
            (self.no_cow, 'd'),
            (self.shared, 'c'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }
}

impl UbdSpec {
    /// The switch that names this device, e.g. `ubd0r=a.cow,a.img`; error
    /// messages about the device start with it.
    pub fn switch_text(&self) -> String {
        let mut s = format!(
            "ubd{}{}={}",
            self.index,
            self.flags.letters(),
            self.file.display()
        );
        if let Some(b) = &self.backing {
            s.push(',');
            s.push_str(&b.display().to_string());
        }
        s
    }

    /// The guest device name: ubda for index 0.
    pub fn guest_name(&self) -> String {
        format!("ubd{}", (b'a' + self.index) as char)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_text_and_names() {
        let spec = UbdSpec {
            index: 1,
            flags: UbdFlags {
                read_only: true,
                shared: true,
                ..Default::default()
            },
            file: "a.cow".into(),
            backing: Some("b.img".into()),
            mode: UbdMode::Mmap,
        };
        assert_eq!(spec.switch_text(), "ubd1rc=a.cow,b.img");
        assert_eq!(spec.guest_name(), "ubdb");
        assert_eq!(Console::default().to_string(), "fd:0,fd:1");
        assert_eq!(Console::Null.to_string(), "null");
    }
}
