//! The mconsole commands as text: what a request says, parsed into a
//! [`Command`] the kernel runs. The command names, the help text and the
//! error messages are UML's (`arch/um/drivers/mconsole_kern.c`), plus our
//! `stats`.

use crate::config::limits::LimitName;
use crate::config::size::parse_size;

/// UML's help text, with our extension at the end.
pub const HELP: &str = "Commands: 
    version - Get kernel version 
    help - Print this message 
    halt - Halt UML 
    reboot - Reboot UML 
    config <dev>=<config> - Add a new device to UML;  
\tsame syntax as command line 
    config <dev> - Query the configuration of a device 
    remove <dev> - Remove a device from UML 
    sysrq <letter> - Performs the SysRq action controlled by the letter 
    cad - invoke the Ctrl-Alt-Del handler 
    stop - pause the UML; it will do nothing until it receives a 'go' 
    go - continue the UML after a 'stop' 
    log <string> - make UML enter <string> into the kernel log
    proc <file> - returns the contents of the UML's /proc/<file>
    stack <pid> - returns the stack of the specified pid
    stats - memory and activity figures as one JSON object (umlrun)
    config host_mem_max=<size>|cgroup - the host memory budget (umlrun)
    config pagecache_max|mapped_file_max=<size>|none, max_map_count=<n> - guest limits (umlrun)
    config eth<N>=<transport>,<args> - add a network interface (user, tuntap, daemon; umlrun)
";

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Version,
    Help,
    Halt,
    Reboot,
    Cad,
    Stop,
    Go,
    /// The SysRq letter (None: none given, which shows the help line).
    Sysrq(Option<char>),
    Proc(String),
    Log(String),
    /// `config <dev>`: query.
    ConfigGet(Device),
    /// `config <dev>=<spec>`; for a ubd, what follows its index: flag
    /// letters, `=`, then the file(s), as on the command line.
    ConfigSet(Device, String),
    Remove(Device),
    Stack(i32),
    Stats,
}

/// What `config`/`remove` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Mem,
    /// ubd<N>: N from a digit or a letter, as on the command line.
    Ubd(u8),
    /// The host memory budget (`host_mem_max=`, umlrun's).
    HostMemMax,
    /// A per-guest limit (`pagecache_max`, `max_map_count`, `mapped_file_max`).
    Limit(LimitName),
    /// eth<N>, N a digit: a network interface (`config eth1=daemon,...`).
    Eth(u8),
}

/// A `config mem=` change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemChange {
    Plug(u64),
    Unplug(u64),
}

/// Parses a request's text. Errors are the reply text.
pub fn parse(text: &str) -> Result<Command, String> {
    let text = text.trim_start();
    let (word, rest) = match text.find(char::is_whitespace) {
        Some(n) => (&text[..n], text[n..].trim_start()),
        None => (text, ""),
    };
    let none = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(format!("'{word}' takes no argument"))
        }
    };
    match word {
        "version" => none(Command::Version),
        "help" => none(Command::Help),
        "halt" => none(Command::Halt),
        "reboot" => none(Command::Reboot),
        "cad" => none(Command::Cad),
        "stop" => none(Command::Stop),
        "go" => none(Command::Go),
        "stats" => none(Command::Stats),
        "sysrq" => Ok(Command::Sysrq(rest.chars().next())),
        "proc" => {
            if rest.is_empty() {
                Err("Failed to open file".into())
            } else {
                Ok(Command::Proc(rest.to_string()))
            }
        }
        // UML logs what follows "log " verbatim.
        "log" => Ok(Command::Log(text.get(4..).unwrap_or("").to_string())),
        "config" => config(rest),
        "remove" => {
            let dev = device(rest).ok_or("Bad remove option")?;
            if dev.1.is_empty() {
                Ok(Command::Remove(dev.0))
            } else {
                Err("Couldn't parse device number".into())
            }
        }
        "stack" => match rest.parse::<i32>() {
            Ok(p) => Ok(Command::Stack(p)),
            Err(_) => Err("Please specify a pid".into()),
        },
        _ => Err("Unknown command".into()),
    }
}

/// A device name and what follows it.
fn device(s: &str) -> Option<(Device, &str)> {
    if let Some(rest) = s.strip_prefix("mem") {
        return Some((Device::Mem, rest));
    }
    if let Some(rest) = s.strip_prefix("host_mem_max") {
        return Some((Device::HostMemMax, rest));
    }
    for (name, l) in LimitName::ALL {
        if let Some(rest) = s.strip_prefix(name) {
            return Some((Device::Limit(l), rest));
        }
    }
    if let Some(rest) = s.strip_prefix("eth") {
        let c = rest.bytes().next()?;
        return c
            .is_ascii_digit()
            .then(|| (Device::Eth(c - b'0'), &rest[1..]));
    }
    let rest = s.strip_prefix("ubd")?;
    let c = rest.bytes().next()?;
    let n = match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'z' => c - b'a',
        _ => return None,
    };
    Some((Device::Ubd(n), &rest[1..]))
}

fn config(s: &str) -> Result<Command, String> {
    let (dev, rest) = device(s).ok_or("Bad configuration option")?;
    if rest.is_empty() {
        return Ok(Command::ConfigGet(dev));
    }
    if let Device::Ubd(_) = dev {
        // ubd<N>[flags]=<file>[,<backing>]
        return match rest.split_once('=') {
            Some((flags, _)) if flags.chars().all(|c| "rsdc".contains(c)) => {
                Ok(Command::ConfigSet(dev, rest.to_string()))
            }
            _ => Err("Bad configuration option".into()),
        };
    }
    match (rest.strip_prefix('='), dev) {
        (Some(spec), dev) => Ok(Command::ConfigSet(dev, spec.to_string())),
        (None, Device::HostMemMax) => Err("Expected '=' after 'host_mem_max'".into()),
        (None, Device::Limit(l)) => Err(format!("Expected '=' after '{}'", l.name())),
        (None, _) => Err("Expected '=' after 'mem'".into()),
    }
}

/// `config host_mem_max=`: a size, or `cgroup` to follow the memory
/// cgroup again. None means `cgroup`.
pub fn parse_host_mem_max(spec: &str) -> Result<Option<u64>, String> {
    if spec == "cgroup" {
        return Ok(None);
    }
    let bytes = parse_size(spec).map_err(|_| format!("host_mem_max={spec}: bad size"))?;
    if bytes < crate::config::parse::HOST_MEM_MIN {
        return Err(format!("host_mem_max={spec}: too small (at least 16M)"));
    }
    Ok(Some(bytes))
}

/// `+64M` / `-32M`, as UML's `mem_config` reads them. Sizes are bytes,
/// rounded down to whole pages.
pub fn parse_mem_change(spec: &str) -> Result<MemChange, String> {
    let (plug, num) = match spec.as_bytes().first() {
        Some(b'+') => (true, &spec[1..]),
        Some(b'-') => (false, &spec[1..]),
        _ => return Err("Expected increment to start with '-' or '+'".into()),
    };
    let bytes = parse_size(num).map_err(|_| "Failed to parse memory increment".to_string())?;
    let bytes = bytes & !4095;
    Ok(if plug {
        MemChange::Plug(bytes)
    } else {
        MemChange::Unplug(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands() {
        assert_eq!(parse("version"), Ok(Command::Version));
        assert_eq!(parse("  help  "), Ok(Command::Help));
        assert_eq!(parse("stop"), Ok(Command::Stop));
        assert_eq!(parse("go"), Ok(Command::Go));
        assert_eq!(parse("stats"), Ok(Command::Stats));
        assert_eq!(parse("halt now"), Err("'halt' takes no argument".into()));
        assert_eq!(parse("frobnicate"), Err("Unknown command".into()));
        assert_eq!(parse(""), Err("Unknown command".into()));
        assert_eq!(parse("versionx"), Err("Unknown command".into()));
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(parse("sysrq s"), Ok(Command::Sysrq(Some('s'))));
        assert_eq!(parse("sysrq"), Ok(Command::Sysrq(None)));
        assert_eq!(parse("proc meminfo"), Ok(Command::Proc("meminfo".into())));
        assert!(parse("proc").is_err());
        assert_eq!(
            parse("log hello  world"),
            Ok(Command::Log("hello  world".into()))
        );
        assert_eq!(parse("log"), Ok(Command::Log(String::new())));
        assert_eq!(parse("stack 12"), Ok(Command::Stack(12)));
        assert_eq!(parse("stack x"), Err("Please specify a pid".into()));
    }

    #[test]
    fn config_and_remove() {
        assert_eq!(parse("config mem"), Ok(Command::ConfigGet(Device::Mem)));
        assert_eq!(
            parse("config mem=-32M"),
            Ok(Command::ConfigSet(Device::Mem, "-32M".into()))
        );
        assert_eq!(parse("config ubd1"), Ok(Command::ConfigGet(Device::Ubd(1))));
        assert_eq!(parse("config ubdb"), Ok(Command::ConfigGet(Device::Ubd(1))));
        assert_eq!(
            parse("config ubd1=/tmp/x.img"),
            Ok(Command::ConfigSet(Device::Ubd(1), "=/tmp/x.img".into()))
        );
        assert_eq!(
            parse("config ubdbr=a.cow,b.img"),
            Ok(Command::ConfigSet(Device::Ubd(1), "r=a.cow,b.img".into()))
        );
        assert_eq!(
            parse("config ubd1x=a"),
            Err("Bad configuration option".into())
        );
        assert_eq!(
            parse("config eth0=tuntap"),
            Ok(Command::ConfigSet(Device::Eth(0), "tuntap".into()))
        );
        assert_eq!(
            parse("config eth1=daemon,,unix,/tmp/s.ctl"),
            Ok(Command::ConfigSet(
                Device::Eth(1),
                "daemon,,unix,/tmp/s.ctl".into()
            ))
        );
        assert_eq!(parse("config eth2"), Ok(Command::ConfigGet(Device::Eth(2))));
        assert_eq!(parse("remove eth2"), Ok(Command::Remove(Device::Eth(2))));
        assert_eq!(parse("config eth"), Err("Bad configuration option".into()));
        assert_eq!(
            parse("config ethx=user"),
            Err("Bad configuration option".into())
        );
        assert_eq!(parse("config memx"), Err("Expected '=' after 'mem'".into()));
        assert_eq!(
            parse("config pagecache_max=16M"),
            Ok(Command::ConfigSet(
                Device::Limit(LimitName::PagecacheMax),
                "16M".into()
            ))
        );
        assert_eq!(
            parse("config max_map_count"),
            Ok(Command::ConfigGet(Device::Limit(LimitName::MaxMapCount)))
        );
        assert_eq!(
            parse("remove mapped_file_max"),
            Ok(Command::Remove(Device::Limit(LimitName::MappedFileMax)))
        );
        assert_eq!(
            parse("config mapped_file_maxx"),
            Err("Expected '=' after 'mapped_file_max'".into())
        );
        assert_eq!(
            parse("config host_mem_max=96M"),
            Ok(Command::ConfigSet(Device::HostMemMax, "96M".into()))
        );
        assert_eq!(
            parse("config host_mem_max"),
            Ok(Command::ConfigGet(Device::HostMemMax))
        );
        assert_eq!(parse_host_mem_max("96M"), Ok(Some(96 << 20)));
        assert_eq!(parse_host_mem_max("cgroup"), Ok(None));
        assert!(parse_host_mem_max("1M").is_err());
        assert!(parse_host_mem_max("lots").is_err());
        assert_eq!(parse("remove ubd1"), Ok(Command::Remove(Device::Ubd(1))));
        assert_eq!(parse("remove mem"), Ok(Command::Remove(Device::Mem)));
        assert!(parse("remove ubd1x").is_err());
        assert!(parse("remove").is_err());
    }

    #[test]
    fn mem_changes() {
        assert_eq!(parse_mem_change("-32M"), Ok(MemChange::Unplug(32 << 20)));
        assert_eq!(parse_mem_change("+1G"), Ok(MemChange::Plug(1 << 30)));
        assert_eq!(parse_mem_change("+4097"), Ok(MemChange::Plug(4096)));
        assert_eq!(
            parse_mem_change("32M"),
            Err("Expected increment to start with '-' or '+'".into())
        );
        assert_eq!(
            parse_mem_change("-lots"),
            Err("Failed to parse memory increment".into())
        );
        assert!(parse_mem_change("+").is_err());
        assert!(parse_mem_change("+99999999999999999999G").is_err());
    }
}
