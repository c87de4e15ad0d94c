//! Switches → `Config`. Pure logic: the host facts it needs (home, a fresh
//! umid, the CPUs we may use) come in a `Defaults`, so tests give their own.
//!
//! As on UML's command line a later scalar switch wins over an earlier one
//! (`mem=64M mem=128M` gives 128M); a disk given twice is an error, because
//! silently dropping a disk loses data.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::limits::{parse_limit, LimitName};
use super::size::{format_size, parse_size, SizeError};
use super::{
    Config, Console, UbdFlags, UbdMode, UbdSpec, DEFAULT_INIT, DEFAULT_MEM, DEFAULT_ROOT,
    MAX_UMID_LEN, MIN_MEM,
};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Version,
    /// `--syscalls`: print each syscall's support level.
    Syscalls,
    Run(Box<Config>),
}

/// Host facts the defaults depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The home directory (for `~/.uml/` and a leading `~/` in `uml_dir=`).
    pub home: Option<PathBuf>,
    /// The umid to use when none is given (random, like UML's).
    pub umid: String,
    /// The CPUs `cpu=` may name.
    pub cpus: Vec<usize>,
    /// The platform when no `platform=` is given (the environment's
    /// UMLRUN_PLATFORM, else ptrace).
    pub platform: super::PlatformKind,
}

impl Defaults {
    /// `~/.uml`, or `/tmp/.uml` when there is no home directory.
    pub fn uml_dir(&self) -> PathBuf {
        match &self.home {
            Some(h) => h.join(".uml"),
            None => PathBuf::from("/tmp/.uml"),
        }
    }
}

/// One mistake on the command line. The message starts with the switch as
/// written; umlrun prints `umlrun: <message>` and exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{0}: unknown switch (see umlrun --help)")]
    Unknown(String),
    #[error("{0}: {1}")]
    BadEth(String, &'static str),
    #[error("{0}: needs a value, e.g. {1}")]
    NoValue(String, &'static str),
    #[error("{0}: missing value")]
    EmptyValue(String),
    #[error("{0}: bad size (use a number with K, M or G)")]
    BadSize(String),
    #[error("{0}: size does not fit in 64 bits")]
    SizeTooBig(String),
    /// A limit's own message (config/limits.rs).
    #[error("{0}")]
    BadLimit(String),
    #[error("{switch}: too small (at least {min})")]
    TooSmall { switch: String, min: String },
    #[error("{0}: bad device (use ubd0..ubd9 or ubda..ubdz, then flags r, s, d, c)")]
    BadDevice(String),
    #[error("{switch}: unknown flag '{flag}' (use r, s, d or c)")]
    BadFlag { switch: String, flag: char },
    #[error("{switch}: ubd{index} is already given by {first}")]
    DuplicateDevice {
        switch: String,
        index: u8,
        first: String,
    },
    #[error("{0}: missing file name")]
    MissingPath(String),
    #[error("{0}: the d flag says the file is not a COW file, so it takes no backing file")]
    BackingWithoutCow(String),
    #[error("{0}: use ubd=mmap or ubd=copy")]
    BadUbdMode(String),
    #[error("{0}: bad umid (1 to 64 characters, no '/', not '.' or '..')")]
    BadUmid(String),
    #[error("{0}: use con0=fd:IN,fd:OUT, con0=fd:N or con0=null")]
    BadConsole(String),
    #[error("{0}: only con0 (the console) is supported")]
    OnlyCon0(String),
    #[error("{0}: bad CPU number")]
    BadCpuNumber(String),
    #[error("{0}: unknown platform (auto, ptrace, seccomp or seccomp-spin)")]
    BadPlatform(String),
    #[error("{0}: unknown cow_backing (beside, named or any)")]
    BadCowBacking(String),
    #[error("{switch}: this process may not run on that CPU (allowed: {allowed})")]
    CpuNotAllowed { switch: String, allowed: String },
    #[error("{0}: not valid UTF-8")]
    NotUtf8(String),
    #[error("{maxmem}: below mem={mem} (maxmem= is how far hot-plug may grow the guest)")]
    MaxmemBelowMem { maxmem: String, mem: String },
    #[error("{0}: use mconsole=notify:<socket path>")]
    BadMconsole(String),
    #[error("{0}: milliseconds, 0 to 600000 (e.g. oom_wait=5000)")]
    BadOomWait(String),
    #[error("{0}: a numeric host id (e.g. uid=1000)")]
    BadId(String),
    #[error("uid= and gid= go together (e.g. uid=1000 gid=1000)")]
    UidWithoutGid,
    #[error("{0}: use on or off")]
    BadOnOff(String),
    #[error("{0}: use auto, on or off")]
    BadNamespaces(String),
    #[error("no disk: give an image path (e.g. umlrun disk-images/busybox.cow) or ubd0=<file>")]
    NoDisk,
}

/// Parse the arguments after the program name.
pub fn parse_args<S: AsRef<str>>(args: &[S], defaults: &Defaults) -> Result<Command, ConfigError> {
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    // Like UML, --help and --version win wherever they are.
    if args.iter().any(|a| *a == "--help" || *a == "-h") {
        return Ok(Command::Help);
    }
    if args.contains(&"--version") {
        return Ok(Command::Version);
    }
    if args.contains(&"--syscalls") {
        return Ok(Command::Syscalls);
    }
    let mut cfg = Config {
        mem_bytes: DEFAULT_MEM,
        ubds: Vec::new(),
        ubd_mode: UbdMode::default(),
        umid: defaults.umid.clone(),
        uml_dir: defaults.uml_dir(),
        console: Console::default(),
        root: DEFAULT_ROOT.to_string(),
        init: DEFAULT_INIT.to_string(),
        pagecache_max: None,
        max_map_count: None,
        mapped_file_max: None,
        cpu: None,
        platform: defaults.platform,
        cow_backing: Default::default(),
        maxmem_bytes: None,
        oom_wait_ms: 0,
        mconsole_notify: None,
        host_mem_max: None,
        eth: Vec::new(),
        cmdline: args.join(" "),
        run_as: None,
        host_seccomp: true,
        namespaces: Default::default(),
    };
    let (mut uid, mut gid) = (None, None);
    let mut maxmem_arg = String::new();
    for arg in args {
        if let Some(v) = arg.strip_prefix("uid=") {
            uid = Some(id(arg, v)?);
            continue;
        }
        if let Some(v) = arg.strip_prefix("gid=") {
            gid = Some(id(arg, v)?);
            continue;
        }
        apply(&mut cfg, arg, defaults)?;
        if arg.starts_with("maxmem=") {
            maxmem_arg = arg.to_string();
        }
    }
    if let Some(max) = cfg.maxmem_bytes {
        if max < cfg.mem_bytes {
            return Err(ConfigError::MaxmemBelowMem {
                maxmem: maxmem_arg,
                mem: format_size(cfg.mem_bytes),
            });
        }
    }
    cfg.run_as = match (uid, gid) {
        (Some(u), Some(g)) => Some((u, g)),
        (None, None) => None,
        _ => return Err(ConfigError::UidWithoutGid),
    };
    if cfg.ubds.is_empty() {
        return Err(ConfigError::NoDisk);
    }
    for spec in &mut cfg.ubds {
        spec.mode = cfg.ubd_mode;
    }
    Ok(Command::Run(Box::new(cfg)))
}

/// A numeric host user or group id (`uid=1000`).
fn id(arg: &str, v: &str) -> Result<u32, ConfigError> {
    match v.parse::<u32>() {
        Ok(n) if n != u32::MAX => Ok(n),
        _ => Err(ConfigError::BadId(arg.into())),
    }
}

/// The longest `oom_wait=` (ms): ten minutes.
pub const MAX_OOM_WAIT_MS: u64 = 600_000;

/// The smallest `host_mem_max=`: the kernel, a few stubs and init.
pub const HOST_MEM_MIN: u64 = 16 << 20;

/// Switch names that take `=value`, with an example for the error message.
const VALUED: &[(&str, &str)] = &[
    ("mem", "mem=256M"),
    ("maxmem", "maxmem=1G"),
    ("oom_wait", "oom_wait=5000"),
    ("mconsole", "mconsole=notify:/tmp/notify.sock"),
    ("ubd", "ubd=mmap"),
    ("umid", "umid=web1"),
    ("uml_dir", "uml_dir=~/.uml"),
    ("con", "con0=fd:0,fd:1"),
    ("con0", "con0=fd:0,fd:1"),
    ("root", "root=/dev/ubda"),
    ("init", "init=/bin/sh"),
    ("pagecache_max", "pagecache_max=64M"),
    ("max_map_count", "max_map_count=1000"),
    ("mapped_file_max", "mapped_file_max=64M"),
    ("cpu", "cpu=0"),
    ("host_mem_max", "host_mem_max=96M"),
    ("platform", "platform=seccomp"),
    ("cow_backing", "cow_backing=named"),
    ("eth0", "eth0=user,hostfwd=tcp::8080-:80"),
    ("uid", "uid=1000"),
    ("gid", "gid=1000"),
    ("host_seccomp", "host_seccomp=off"),
    ("namespaces", "namespaces=off"),
];

fn apply(cfg: &mut Config, arg: &str, defaults: &Defaults) -> Result<(), ConfigError> {
    let Some((key, value)) = arg.split_once('=').filter(|(k, _)| !k.contains('/')) else {
        return bare(cfg, arg);
    };
    match key {
        "mem" => {
            let bytes = size(arg, value)?;
            // Whole pages only: the memfd is cut into 4 KiB frames.
            let bytes = bytes & !4095;
            if bytes < MIN_MEM {
                return Err(ConfigError::TooSmall {
                    switch: arg.into(),
                    min: format_size(MIN_MEM),
                });
            }
            cfg.mem_bytes = bytes;
        }
        "maxmem" => {
            let bytes = size(arg, value)? & !4095;
            if bytes < MIN_MEM {
                return Err(ConfigError::TooSmall {
                    switch: arg.into(),
                    min: format_size(MIN_MEM),
                });
            }
            cfg.maxmem_bytes = Some(bytes);
        }
        "oom_wait" => {
            cfg.oom_wait_ms = match value.parse::<u64>() {
                Ok(ms) if ms <= MAX_OOM_WAIT_MS => ms,
                _ => return Err(ConfigError::BadOomWait(arg.into())),
            }
        }
        "mconsole" => match value.strip_prefix("notify:") {
            Some(path) if !path.is_empty() => {
                cfg.mconsole_notify = Some(expand_tilde(path, defaults.home.as_deref()));
            }
            _ => return Err(ConfigError::BadMconsole(arg.into())),
        },
        "ubd" => {
            cfg.ubd_mode = match value {
                "mmap" => UbdMode::Mmap,
                "copy" => UbdMode::Copy,
                _ => return Err(ConfigError::BadUbdMode(arg.into())),
            }
        }
        "umid" => {
            if value.is_empty()
                || value.len() > MAX_UMID_LEN
                || value.contains('/')
                || value == "."
                || value == ".."
            {
                return Err(ConfigError::BadUmid(arg.into()));
            }
            cfg.umid = value.to_string();
        }
        "uml_dir" => {
            if value.is_empty() {
                return Err(ConfigError::EmptyValue(arg.into()));
            }
            cfg.uml_dir = expand_tilde(value, defaults.home.as_deref());
        }
        "con" | "con0" => cfg.console = console(arg, value)?,
        "root" | "init" => {
            if value.is_empty() {
                return Err(ConfigError::EmptyValue(arg.into()));
            }
            if key == "root" {
                cfg.root = value.to_string();
            } else {
                cfg.init = value.to_string();
            }
        }
        "host_mem_max" => {
            let bytes = size(arg, value)?;
            if bytes < HOST_MEM_MIN {
                return Err(ConfigError::TooSmall {
                    switch: arg.into(),
                    min: format_size(HOST_MEM_MIN),
                });
            }
            cfg.host_mem_max = Some(bytes);
        }
        "pagecache_max" => {
            let bytes = size(arg, value)?;
            if bytes < 4096 {
                return Err(ConfigError::TooSmall {
                    switch: arg.into(),
                    min: "4K".into(),
                });
            }
            cfg.pagecache_max = Some(bytes);
        }
        "max_map_count" | "mapped_file_max" => {
            let (name, field) = if key == "max_map_count" {
                (LimitName::MaxMapCount, &mut cfg.max_map_count)
            } else {
                (LimitName::MappedFileMax, &mut cfg.mapped_file_max)
            };
            *field = parse_limit(name, value).map_err(ConfigError::BadLimit)?;
        }
        "cpu" => {
            let n: usize = value
                .parse()
                .map_err(|_| ConfigError::BadCpuNumber(arg.into()))?;
            if !defaults.cpus.contains(&n) {
                return Err(ConfigError::CpuNotAllowed {
                    switch: arg.into(),
                    allowed: cpu_list(&defaults.cpus),
                });
            }
            cfg.cpu = Some(n);
        }
        "host_seccomp" => {
            cfg.host_seccomp = match value {
                "on" => true,
                "off" => false,
                _ => return Err(ConfigError::BadOnOff(arg.into())),
            }
        }
        "namespaces" => {
            cfg.namespaces = match value {
                "auto" => super::Namespaces::Auto,
                "on" => super::Namespaces::On,
                "off" => super::Namespaces::Off,
                _ => return Err(ConfigError::BadNamespaces(arg.into())),
            }
        }
        "platform" => {
            cfg.platform = super::PlatformKind::parse(value)
                .ok_or_else(|| ConfigError::BadPlatform(arg.into()))?;
        }
        "cow_backing" => {
            cfg.cow_backing = crate::block::cow::confine::BackingPolicy::parse(value)
                .ok_or_else(|| ConfigError::BadCowBacking(arg.into()))?;
        }
        _ if key.starts_with("con") && key[3..].bytes().all(|b| b.is_ascii_digit()) => {
            return Err(ConfigError::OnlyCon0(arg.into()));
        }
        _ if key.starts_with("ubd") => ubd(cfg, arg, &key[3..], value)?,
        _ if key.starts_with("eth") => {
            let spec = super::eth::parse(&key[3..], value)
                .map_err(|why| ConfigError::BadEth(arg.into(), why))?;
            if cfg.eth.iter().any(|e| e.index == spec.index) {
                return Err(ConfigError::BadEth(arg.into(), "given twice"));
            }
            cfg.eth.push(spec);
        }
        _ => return Err(ConfigError::Unknown(arg.into())),
    }
    Ok(())
}

/// An argument without `=`: an image path for ubd0, unless it looks like an
/// option or forgets the value of a known switch.
fn bare(cfg: &mut Config, arg: &str) -> Result<(), ConfigError> {
    if arg.starts_with('-') {
        return Err(ConfigError::Unknown(arg.into()));
    }
    if let Some((_, example)) = VALUED.iter().find(|(k, _)| *k == arg) {
        return Err(ConfigError::NoValue(arg.into(), example));
    }
    if arg.is_empty() {
        return Err(ConfigError::MissingPath("''".into()));
    }
    add_ubd(
        cfg,
        arg,
        UbdSpec {
            index: 0,
            flags: UbdFlags::default(),
            file: arg.into(),
            backing: None,
            mode: UbdMode::default(),
        },
    )
}

/// `ubd<N><flags>=<file>[,<backing>]`; `dev` is what follows "ubd".
fn ubd(cfg: &mut Config, arg: &str, dev: &str, value: &str) -> Result<(), ConfigError> {
    let mut chars = dev.chars();
    let index = match chars.next() {
        Some(c @ '0'..='9') => c as u8 - b'0',
        Some(c @ 'a'..='z') => c as u8 - b'a',
        _ => return Err(ConfigError::BadDevice(arg.into())),
    };
    let mut flags = UbdFlags::default();
    for c in chars {
        match c {
            'r' => flags.read_only = true,
            's' => flags.sync = true,
            'd' => flags.no_cow = true,
            'c' => flags.shared = true,
            _ => {
                return Err(ConfigError::BadFlag {
                    switch: arg.into(),
                    flag: c,
                })
            }
        }
    }
    let (file, backing) = match value.split_once(',') {
        Some((f, b)) => (f, Some(b)),
        None => (value, None),
    };
    if file.is_empty() || backing == Some("") {
        return Err(ConfigError::MissingPath(arg.into()));
    }
    if flags.no_cow && backing.is_some() {
        return Err(ConfigError::BackingWithoutCow(arg.into()));
    }
    add_ubd(
        cfg,
        arg,
        UbdSpec {
            index,
            flags,
            file: file.into(),
            backing: backing.map(PathBuf::from),
            mode: UbdMode::default(),
        },
    )
}

fn add_ubd(cfg: &mut Config, arg: &str, spec: UbdSpec) -> Result<(), ConfigError> {
    if let Some(first) = cfg.ubds.iter().find(|u| u.index == spec.index) {
        return Err(ConfigError::DuplicateDevice {
            switch: arg.into(),
            index: spec.index,
            first: first.switch_text(),
        });
    }
    cfg.ubds.push(spec);
    Ok(())
}

fn size(arg: &str, value: &str) -> Result<u64, ConfigError> {
    parse_size(value).map_err(|e| match e {
        SizeError::Syntax => ConfigError::BadSize(arg.into()),
        SizeError::TooBig => ConfigError::SizeTooBig(arg.into()),
    })
}

/// `fd:N`, `fd:IN,fd:OUT` or `null`.
fn console(arg: &str, value: &str) -> Result<Console, ConfigError> {
    let bad = || ConfigError::BadConsole(arg.into());
    let fd = |s: &str| -> Result<i32, ConfigError> {
        let n = s.strip_prefix("fd:").ok_or_else(bad)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        n.parse().map_err(|_| bad())
    };
    if value == "null" {
        return Ok(Console::Null);
    }
    let (input, output) = match value.split_once(',') {
        Some((i, o)) => (fd(i)?, fd(o)?),
        None => {
            let n = fd(value)?;
            (n, n)
        }
    };
    Ok(Console::Fd { input, output })
}

fn expand_tilde(value: &str, home: Option<&Path>) -> PathBuf {
    match (home, value.strip_prefix("~/")) {
        (Some(h), _) if value == "~" => h.to_path_buf(),
        (Some(h), Some(rest)) => h.join(rest),
        _ => PathBuf::from(value),
    }
}

/// `0-3,6` style list for messages.
fn cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            home: Some("/home/u".into()),
            umid: "Xy12ab".into(),
            cpus: vec![0, 1],
            platform: Default::default(),
        }
    }

    fn run(args: &[&str]) -> Config {
        match parse_args(args, &defaults()) {
            Ok(Command::Run(c)) => *c,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse_args(args, &defaults()) {
            Err(e) => e.to_string(),
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let c = run(&["disk.cow"]);
        assert_eq!(c.mem_bytes, 256 << 20);
        assert_eq!(c.ubd_mode, UbdMode::Copy);
        assert_eq!(c.umid, "Xy12ab");
        assert_eq!(c.uml_dir, PathBuf::from("/home/u/.uml"));
        assert_eq!(
            c.console,
            Console::Fd {
                input: 0,
                output: 1
            }
        );
        assert_eq!(c.root, "/dev/ubda");
        assert_eq!(c.init, "/sbin/init");
        assert_eq!(c.pagecache_max, None);
        assert_eq!(c.cpu, None);
        assert_eq!(
            c.ubds,
            vec![UbdSpec {
                index: 0,
                flags: UbdFlags::default(),
                file: "disk.cow".into(),
                backing: None,
                mode: UbdMode::Copy,
            }]
        );
        assert_eq!(c.instance_dir(), PathBuf::from("/home/u/.uml/Xy12ab"));
    }

    #[test]
    fn no_home_falls_back_to_tmp() {
        let d = Defaults {
            home: None,
            ..defaults()
        };
        match parse_args(&["a.img"], &d) {
            Ok(Command::Run(c)) => assert_eq!(c.uml_dir, PathBuf::from("/tmp/.uml")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_and_version_win_anywhere() {
        let d = defaults();
        assert_eq!(parse_args(&["--help"], &d), Ok(Command::Help));
        assert_eq!(parse_args(&["-h"], &d), Ok(Command::Help));
        assert_eq!(parse_args(&["mem=12Q", "--help"], &d), Ok(Command::Help));
        assert_eq!(parse_args(&["--version"], &d), Ok(Command::Version));
        assert_eq!(parse_args(&["x", "--version"], &d), Ok(Command::Version));
        assert_eq!(parse_args(&["x", "--syscalls"], &d), Ok(Command::Syscalls));
    }

    #[test]
    fn mem_sizes() {
        assert_eq!(run(&["mem=64M", "a"]).mem_bytes, 64 << 20);
        assert_eq!(run(&["mem=1G", "a"]).mem_bytes, 1 << 30);
        assert_eq!(run(&["mem=65536k", "a"]).mem_bytes, 64 << 20);
        // Rounded down to whole pages.
        assert_eq!(run(&["mem=16777217", "a"]).mem_bytes, 16 << 20);
        // Later wins, as in UML.
        assert_eq!(run(&["mem=64M", "mem=128M", "a"]).mem_bytes, 128 << 20);
    }

    #[test]
    fn mem_errors_name_the_switch() {
        assert_eq!(
            err(&["mem=12Q", "a"]),
            "mem=12Q: bad size (use a number with K, M or G)"
        );
        assert_eq!(
            err(&["mem=", "a"]),
            "mem=: bad size (use a number with K, M or G)"
        );
        assert_eq!(
            err(&["mem=99999999999999999999", "a"]),
            "mem=99999999999999999999: size does not fit in 64 bits"
        );
        assert_eq!(err(&["mem=1M", "a"]), "mem=1M: too small (at least 16M)");
        assert_eq!(err(&["mem"]), "mem: needs a value, e.g. mem=256M");
    }

    #[test]
    fn ubd_devices_and_flags() {
        let c = run(&[
            "ubd0=a.cow,a.img",
            "ubd1r=b.img",
            "ubdcsdc=c.img",
            "ubd3rsc=d.cow",
        ]);
        assert_eq!(c.ubds.len(), 4);
        assert_eq!(c.ubds[0].index, 0);
        assert_eq!(c.ubds[0].file, PathBuf::from("a.cow"));
        assert_eq!(c.ubds[0].backing, Some(PathBuf::from("a.img")));
        assert_eq!(c.ubds[0].flags, UbdFlags::default());
        assert_eq!(c.ubds[1].index, 1);
        assert!(c.ubds[1].flags.read_only);
        assert_eq!(c.ubds[1].backing, None);
        // ubdc: the first letter is the device (c = 2), the rest are flags.
        assert_eq!(c.ubds[2].index, 2);
        assert_eq!(
            c.ubds[2].flags,
            UbdFlags {
                read_only: false,
                sync: true,
                no_cow: true,
                shared: true
            }
        );
        assert_eq!(c.ubds[3].index, 3);
        assert_eq!(c.ubds[3].flags.letters(), "rsc");
        let z = run(&["ubdz=z.img"]);
        assert_eq!(z.ubds[0].index, 25);
    }

    #[test]
    fn ubd_mode_applies_to_every_device() {
        let c = run(&["ubd0=a", "ubd=mmap", "ubd1=b"]);
        assert_eq!(c.ubd_mode, UbdMode::Mmap);
        assert!(c.ubds.iter().all(|u| u.mode == UbdMode::Mmap));
        let c = run(&["ubd=mmap", "ubd=copy", "a"]);
        assert_eq!(c.ubd_mode, UbdMode::Copy);
        assert_eq!(c.ubds[0].mode, UbdMode::Copy);
    }

    #[test]
    fn bare_path_is_ubd0() {
        let c = run(&["mem=64M", "ubd=mmap", "disk-images/busybox.cow"]);
        assert_eq!(c.ubds[0].index, 0);
        assert_eq!(c.ubds[0].file, PathBuf::from("disk-images/busybox.cow"));
        assert_eq!(c.ubds[0].mode, UbdMode::Mmap);
        // A path whose name holds '=' after a '/' is still a path.
        let c = run(&["./odd=name.img"]);
        assert_eq!(c.ubds[0].file, PathBuf::from("./odd=name.img"));
        // Bare path plus ubd1 is fine.
        assert_eq!(run(&["a.img", "ubd1=b.img"]).ubds.len(), 2);
    }

    #[test]
    fn ubd_errors() {
        assert_eq!(
            err(&["a.img", "ubd0=b.img"]),
            "ubd0=b.img: ubd0 is already given by ubd0=a.img"
        );
        assert_eq!(
            err(&["ubd1=a", "ubdb=b"]),
            "ubdb=b: ubd1 is already given by ubd1=a"
        );
        assert_eq!(
            err(&["a.img", "b.img"]),
            "b.img: ubd0 is already given by ubd0=a.img"
        );
        assert_eq!(err(&["ubd0="]), "ubd0=: missing file name");
        assert_eq!(err(&["ubd0=,b.img"]), "ubd0=,b.img: missing file name");
        assert_eq!(err(&["ubd0=a.cow,"]), "ubd0=a.cow,: missing file name");
        assert_eq!(
            err(&["ubd0x=a"]),
            "ubd0x=a: unknown flag 'x' (use r, s, d or c)"
        );
        assert_eq!(
            err(&["ubdA=a"]),
            "ubdA=a: bad device (use ubd0..ubd9 or ubda..ubdz, then flags r, s, d, c)"
        );
        assert_eq!(
            err(&["ubd0d=a.img,b.img"]),
            "ubd0d=a.img,b.img: the d flag says the file is not a COW file, so it takes no backing file"
        );
        assert_eq!(
            err(&["ubd=fast", "a"]),
            "ubd=fast: use ubd=mmap or ubd=copy"
        );
        assert_eq!(err(&["ubd"]), "ubd: needs a value, e.g. ubd=mmap");
        assert_eq!(
            err(&["mem=64M"]),
            "no disk: give an image path (e.g. umlrun disk-images/busybox.cow) or ubd0=<file>"
        );
        assert_eq!(err(&[""]), "'': missing file name");
    }

    #[test]
    fn umid_and_uml_dir() {
        let c = run(&["umid=web1", "uml_dir=/var/run/uml", "a"]);
        assert_eq!(c.umid, "web1");
        assert_eq!(c.uml_dir, PathBuf::from("/var/run/uml"));
        assert_eq!(c.instance_dir(), PathBuf::from("/var/run/uml/web1"));
        assert_eq!(
            run(&["uml_dir=~/x", "a"]).uml_dir,
            PathBuf::from("/home/u/x")
        );
        assert_eq!(run(&["uml_dir=~", "a"]).uml_dir, PathBuf::from("/home/u"));
        let long = format!("umid={}", "u".repeat(64));
        assert_eq!(run(&[&long, "a"]).umid.len(), 64);
        for bad in [
            "umid=",
            "umid=a/b",
            "umid=.",
            "umid=..",
            &format!("umid={}", "u".repeat(65)),
        ] {
            assert_eq!(
                err(&[bad, "a"]),
                format!("{bad}: bad umid (1 to 64 characters, no '/', not '.' or '..')")
            );
        }
        assert_eq!(err(&["uml_dir=", "a"]), "uml_dir=: missing value");
    }

    #[test]
    fn consoles() {
        assert_eq!(
            run(&["con0=fd:0,fd:1", "a"]).console,
            Console::Fd {
                input: 0,
                output: 1
            }
        );
        assert_eq!(
            run(&["con=fd:3", "a"]).console,
            Console::Fd {
                input: 3,
                output: 3
            }
        );
        assert_eq!(
            run(&["con=fd:4,fd:5", "a"]).console,
            Console::Fd {
                input: 4,
                output: 5
            }
        );
        assert_eq!(run(&["con0=null", "a"]).console, Console::Null);
        for bad in [
            "con0=pty",
            "con0=fd:",
            "con0=fd:x",
            "con0=fd:-1",
            "con=fd:0,",
            "con0=",
            "con0=fd:99999999999",
        ] {
            assert_eq!(
                err(&[bad, "a"]),
                format!("{bad}: use con0=fd:IN,fd:OUT, con0=fd:N or con0=null")
            );
        }
        assert_eq!(
            err(&["con1=null", "a"]),
            "con1=null: only con0 (the console) is supported"
        );
    }

    #[test]
    fn root_and_init() {
        let c = run(&["root=/dev/ubdb", "init=/bin/sh", "a"]);
        assert_eq!(c.root, "/dev/ubdb");
        assert_eq!(c.init, "/bin/sh");
        assert_eq!(err(&["root=", "a"]), "root=: missing value");
        assert_eq!(err(&["init=", "a"]), "init=: missing value");
    }

    #[test]
    fn host_mem_max() {
        assert_eq!(run(&["host_mem_max=96M", "a"]).host_mem_max, Some(96 << 20));
        assert_eq!(run(&["a"]).host_mem_max, None);
        assert_eq!(
            err(&["host_mem_max=1M", "a"]),
            "host_mem_max=1M: too small (at least 16M)"
        );
    }

    #[test]
    fn pagecache_max() {
        assert_eq!(
            run(&["pagecache_max=64M", "a"]).pagecache_max,
            Some(64 << 20)
        );
        assert_eq!(
            err(&["pagecache_max=lots", "a"]),
            "pagecache_max=lots: bad size (use a number with K, M or G)"
        );
        assert_eq!(
            err(&["pagecache_max=100", "a"]),
            "pagecache_max=100: too small (at least 4K)"
        );
    }

    #[test]
    fn cow_backing_switch() {
        use crate::block::cow::confine::BackingPolicy;
        assert_eq!(run(&["a"]).cow_backing, BackingPolicy::Beside);
        assert_eq!(
            run(&["cow_backing=any", "a"]).cow_backing,
            BackingPolicy::Any
        );
        assert_eq!(
            run(&["cow_backing=named", "a"]).cow_backing,
            BackingPolicy::Named
        );
        assert!(err(&["cow_backing=all", "a"]).contains("unknown cow_backing"));
    }

    #[test]
    fn platform_switch() {
        use crate::config::PlatformKind;
        assert_eq!(run(&["a"]).platform, PlatformKind::Auto);
        assert_eq!(run(&["platform=auto", "a"]).platform, PlatformKind::Auto);
        assert_eq!(
            run(&["platform=seccomp", "a"]).platform,
            PlatformKind::Seccomp
        );
        assert_eq!(
            run(&["platform=seccomp-spin", "a"]).platform,
            PlatformKind::SeccompSpin
        );
        assert_eq!(
            run(&["platform=ptrace", "a"]).platform,
            PlatformKind::Ptrace
        );
        assert_eq!(
            err(&["platform=kvm", "a"]),
            "platform=kvm: unknown platform (auto, ptrace, seccomp or seccomp-spin)"
        );
        let d = Defaults {
            platform: PlatformKind::Seccomp,
            ..defaults()
        };
        let Ok(Command::Run(c)) = parse_args(&["a"], &d) else {
            panic!("no run")
        };
        assert_eq!(c.platform, PlatformKind::Seccomp);
    }

    #[test]
    fn cpu_pinning() {
        assert_eq!(run(&["cpu=1", "a"]).cpu, Some(1));
        assert_eq!(err(&["cpu=x", "a"]), "cpu=x: bad CPU number");
        assert_eq!(err(&["cpu=-1", "a"]), "cpu=-1: bad CPU number");
        assert_eq!(
            err(&["cpu=7", "a"]),
            "cpu=7: this process may not run on that CPU (allowed: 0-1)"
        );
    }

    #[test]
    fn unknown_switches() {
        assert_eq!(
            err(&["a", "--fast"]),
            "--fast: unknown switch (see umlrun --help)"
        );
        assert_eq!(
            err(&["a", "eth0=tuntap"]),
            "eth0=tuntap: name an existing tap device (ethN=tuntap,<tap>[,<mac>])"
        );
        assert_eq!(
            err(&["a", "eth0=user", "eth0=slirp"]),
            "eth0=slirp: given twice"
        );
        assert_eq!(
            err(&["a", "memory=1G"]),
            "memory=1G: unknown switch (see umlrun --help)"
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(cpu_list(&[5]), "5");
        assert_eq!(cpu_list(&[]), "none");
    }

    #[test]
    fn namespaces_switch() {
        use crate::config::Namespaces;
        assert_eq!(run(&["a"]).namespaces, Namespaces::Auto);
        assert_eq!(run(&["namespaces=on", "a"]).namespaces, Namespaces::On);
        assert_eq!(run(&["namespaces=off", "a"]).namespaces, Namespaces::Off);
        assert_eq!(run(&["namespaces=auto", "a"]).namespaces, Namespaces::Auto);
        assert_eq!(
            err(&["namespaces=yes", "a"]),
            "namespaces=yes: use auto, on or off"
        );
    }

    #[test]
    fn uid_gid_and_host_seccomp() {
        let c = run(&["a"]);
        assert_eq!(c.run_as, None);
        assert!(c.host_seccomp);
        assert_eq!(run(&["uid=1000", "gid=100", "a"]).run_as, Some((1000, 100)));
        assert!(!run(&["host_seccomp=off", "a"]).host_seccomp);
        assert!(run(&["host_seccomp=on", "a"]).host_seccomp);
        assert_eq!(
            err(&["uid=1000", "a"]),
            "uid= and gid= go together (e.g. uid=1000 gid=1000)"
        );
        assert_eq!(
            err(&["gid=5", "a"]),
            "uid= and gid= go together (e.g. uid=1000 gid=1000)"
        );
        assert_eq!(
            err(&["uid=bob", "gid=1", "a"]),
            "uid=bob: a numeric host id (e.g. uid=1000)"
        );
        assert_eq!(
            err(&["uid=-1", "gid=1", "a"]),
            "uid=-1: a numeric host id (e.g. uid=1000)"
        );
        assert_eq!(
            err(&["uid=1", "gid=4294967295", "a"]),
            "gid=4294967295: a numeric host id (e.g. uid=1000)"
        );
        assert_eq!(
            err(&["host_seccomp=maybe", "a"]),
            "host_seccomp=maybe: use on or off"
        );
        assert_eq!(err(&["uid", "a"]), "uid: needs a value, e.g. uid=1000");
    }

    #[test]
    fn oom_wait_is_milliseconds_within_ten_minutes() {
        assert_eq!(run(&["a"]).oom_wait_ms, 0);
        assert_eq!(run(&["oom_wait=5000", "a"]).oom_wait_ms, 5000);
        assert_eq!(run(&["oom_wait=600000", "a"]).oom_wait_ms, 600_000);
        for bad in ["oom_wait=600001", "oom_wait=-1", "oom_wait=5s", "oom_wait="] {
            assert_eq!(
                err(&[bad, "a"]),
                format!("{bad}: milliseconds, 0 to 600000 (e.g. oom_wait=5000)")
            );
        }
    }

    #[test]
    fn maxmem_and_mconsole_notify() {
        let c = run(&["mem=64M", "maxmem=1G", "a"]);
        assert_eq!(
            (c.mem_bytes, c.maxmem_bytes, c.maxmem()),
            (64 << 20, Some(1 << 30), 1 << 30)
        );
        assert_eq!(run(&["mem=64M", "a"]).maxmem(), 64 << 20);
        assert_eq!(
            err(&["mem=64M", "maxmem=32M", "a"]),
            "maxmem=32M: below mem=64M (maxmem= is how far hot-plug may grow the guest)"
        );
        assert!(err(&["maxmem=lots", "a"]).starts_with("maxmem=lots: bad size"));
        assert!(err(&["maxmem=1M", "a"]).starts_with("maxmem=1M: too small"));
        let c = run(&["mconsole=notify:/tmp/n.sock", "a"]);
        assert_eq!(c.mconsole_notify, Some(PathBuf::from("/tmp/n.sock")));
        assert_eq!(
            err(&["mconsole=/tmp/n", "a"]),
            "mconsole=/tmp/n: use mconsole=notify:<socket path>"
        );
        assert!(err(&["mconsole=notify:", "a"]).starts_with("mconsole=notify:: use"));
        assert!(err(&["maxmem", "a"]).contains("needs a value"));
    }
}
