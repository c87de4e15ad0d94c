//! `eth<N>=<transport>,<args>`: UML's network device switch, eth0 to
//! eth5, each its own interface. `ethN=tuntap,<tap>[,<mac>[,<hostip>]]`
//! (UML's order) attaches it to an existing host tap device, as an
//! Ethernet link (ARP, frames); the host IP, which UML's helper would
//! put on a tap it made, is accepted and unused: the tap is the host's
//! to configure. `ethN=daemon[,<mac>[,unix[,<ctl>]]]` (UML's order and
//! defaults: `unix`, `/tmp/uml.ctl`) plugs it into a `uml_switch` by its
//! control socket, as an Ethernet link with an MTU of 1500, without
//! root; UML's other socket type is not built. The rootless user-mode NAT is `ethN=user` (or `slirp`)
//! with any number of
//! `hostfwd=tcp:<hostaddr>:<hostport>-:<guestport>` port forwards
//! (QEMU's syntax; an empty host address is 127.0.0.1), and
//! `resolver=<addr>[:<port>]`: where the DNS forwarder (10.0.2.3 on
//! eth0) sends queries (default: the host's /etc/resolv.conf), and
//! `addr=none`: the interface starts down with no address, for the guest
//! to configure (udhcpc from the NAT's DHCP server, or ifconfig and
//! route), as on a real NIC. ethN's NAT is on 10.0.(2+N).0/24
//! (`net::inet::natnet`).

use std::net::{Ipv4Addr, SocketAddrV4};

/// One TCP port forward: connections to `host` on the host reach the
/// guest's `guest_port` on the interface the forward was given with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFwd {
    pub host: SocketAddrV4,
    pub guest_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EthTransport {
    /// User-mode NAT: the guest's ethN is 10.0.(2+N).15/24, the gateway
    /// 10.0.(2+N).2; forwards bring host connections in.
    User {
        fwds: Vec<HostFwd>,
        /// The host resolver for 10.0.2.3 (None: /etc/resolv.conf's).
        resolver: Option<SocketAddrV4>,
        /// The interface starts up with its address (and the default
        /// route, if no lower one took it) (false: `addr=none`, down with
        /// no address).
        configured: bool,
    },
    /// A host tap device by name; the guest's MAC (None: QEMU's, with N
    /// added). Starts down with no address.
    Tuntap { dev: String, mac: Option<[u8; 6]> },
    /// A port on a uml_switch by its control socket; the guest's MAC
    /// (None: as for tuntap). Starts down with no address.
    Daemon {
        mac: Option<[u8; 6]>,
        ctl: std::path::PathBuf,
    },
}

/// UML's default control socket for `ethN=daemon`.
pub const DAEMON_CTL: &str = "/tmp/uml.ctl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthSpec {
    pub index: u8,
    pub transport: EthTransport,
}

/// Parses `eth<rest>=<value>`; Err is the reason, for the caller's
/// message.
pub fn parse(rest: &str, value: &str) -> Result<EthSpec, &'static str> {
    let index: u8 = rest.parse().map_err(|_| "use eth0..eth5")?;
    if index >= crate::net::inet::ifcfg::ETH_MAX || rest.len() > 1 {
        return Err("use eth0..eth5");
    }
    let mut parts = value.split(',');
    match parts.next() {
        Some("user" | "slirp") => {}
        Some("tuntap") => return tuntap(index, parts),
        Some("daemon") => return daemon(index, parts),
        Some("mcast" | "vde" | "vector") => {
            return Err("only the user (slirp), tuntap and daemon transports are built so far")
        }
        _ => return Err("unknown transport (use eth0=user[,hostfwd=tcp::PORT-:PORT])"),
    }
    let mut fwds = Vec::new();
    let mut resolver = None;
    let mut configured = true;
    for p in parts {
        if p == "addr=none" {
            configured = false;
            continue;
        }
        if let Some(r) = p.strip_prefix("resolver=") {
            resolver = Some(resolver_addr(r).ok_or("bad resolver (use resolver=ADDR[:PORT])")?);
            continue;
        }
        let Some(f) = p.strip_prefix("hostfwd=") else {
            return Err(
                "unknown option (use hostfwd=tcp:[ADDR]:PORT-:PORT, resolver=ADDR or addr=none)",
            );
        };
        fwds.push(hostfwd(f).ok_or("bad hostfwd (use hostfwd=tcp:[ADDR]:PORT-:PORT)")?);
    }
    Ok(EthSpec {
        index,
        transport: EthTransport::User {
            fwds,
            resolver,
            configured,
        },
    })
}

/// `tuntap,<tap>[,<mac>[,<hostip>]]`.
fn tuntap<'a>(
    index: u8,
    mut parts: impl Iterator<Item = &'a str>,
) -> Result<EthSpec, &'static str> {
    let dev = parts.next().unwrap_or("");
    if dev.is_empty() || dev.len() > 15 || dev.contains('/') {
        return Err("name an existing tap device (ethN=tuntap,<tap>[,<mac>])");
    }
    let mac = match parts.next().filter(|m| !m.is_empty()) {
        Some(m) => Some(mac_of(m).ok_or("bad MAC (use xx:xx:xx:xx:xx:xx, unicast)")?),
        None => None,
    };
    if let Some(ip) = parts.next().filter(|i| !i.is_empty()) {
        ip.parse::<Ipv4Addr>()
            .map_err(|_| "bad host IP (ethN=tuntap,<tap>,<mac>,<hostip>)")?;
    }
    if parts.next().is_some() {
        return Err("too many fields (ethN=tuntap,<tap>[,<mac>[,<hostip>]])");
    }
    Ok(EthSpec {
        index,
        transport: EthTransport::Tuntap {
            dev: dev.into(),
            mac,
        },
    })
}

/// `spec` written back in the switch's syntax (the mconsole's
/// `config eth<N>` answer).
pub fn describe(spec: &EthSpec) -> String {
    let mac = |m: &Option<[u8; 6]>| {
        m.map(|m| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
    };
    match &spec.transport {
        EthTransport::User {
            fwds,
            resolver,
            configured,
        } => {
            let mut s = String::from("user");
            for f in fwds {
                s += &format!(
                    ",hostfwd=tcp:{}:{}-:{}",
                    f.host.ip(),
                    f.host.port(),
                    f.guest_port
                );
            }
            if let Some(r) = resolver {
                s += &format!(",resolver={r}");
            }
            if !configured {
                s += ",addr=none";
            }
            s
        }
        EthTransport::Tuntap { dev, mac: m } => match m {
            Some(_) => format!("tuntap,{dev},{}", mac(m)),
            None => format!("tuntap,{dev}"),
        },
        EthTransport::Daemon { mac: m, ctl } => {
            format!("daemon,{},unix,{}", mac(m), ctl.display())
        }
    }
}

/// `daemon[,<mac>[,<type>[,<ctl>]]]`: empty fields take UML's defaults.
fn daemon<'a>(
    index: u8,
    mut parts: impl Iterator<Item = &'a str>,
) -> Result<EthSpec, &'static str> {
    let mac = match parts.next().filter(|m| !m.is_empty()) {
        Some(m) => Some(mac_of(m).ok_or("bad MAC (use xx:xx:xx:xx:xx:xx, unicast)")?),
        None => None,
    };
    match parts.next().filter(|t| !t.is_empty()) {
        None | Some("unix") => {}
        Some(_) => return Err("only the unix socket type is built (ethN=daemon,<mac>,unix,<ctl>)"),
    }
    let ctl = parts.next().filter(|c| !c.is_empty()).unwrap_or(DAEMON_CTL);
    // sun_path holds 108 bytes with the NUL.
    if ctl.len() > 107 || ctl.contains('\0') {
        return Err("the control socket's path is too long for a unix socket (107 bytes)");
    }
    if parts.next().is_some() {
        return Err("too many fields (ethN=daemon,<mac>,unix,<ctl-socket>)");
    }
    Ok(EthSpec {
        index,
        transport: EthTransport::Daemon {
            mac,
            ctl: ctl.into(),
        },
    })
}

/// `xx:xx:xx:xx:xx:xx`, a unicast address.
fn mac_of(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut it = s.split(':');
    for b in &mut m {
        let x = it.next()?;
        if x.is_empty() || x.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(x, 16).ok()?;
    }
    if it.next().is_some() || m[0] & 1 != 0 || m == [0; 6] {
        return None;
    }
    Some(m)
}

/// `addr[:port]`, port 53 if not given.
fn resolver_addr(s: &str) -> Option<SocketAddrV4> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Some(SocketAddrV4::new(ip, 53));
    }
    let a: SocketAddrV4 = s.parse().ok()?;
    (a.port() != 0).then_some(a)
}

/// `tcp:[addr]:port-[:]port` (the guest address, if given, is ignored:
/// the guest has one).
fn hostfwd(s: &str) -> Option<HostFwd> {
    let s = s.strip_prefix("tcp:")?;
    let (host, guest) = s.split_once('-')?;
    let (haddr, hport) = host.rsplit_once(':')?;
    let ip = if haddr.is_empty() {
        Ipv4Addr::LOCALHOST
    } else {
        haddr.parse().ok()?
    };
    let hport: u16 = hport.parse().ok()?;
    let gport: u16 = guest
        .rsplit_once(':')
        .map_or(guest, |(_, p)| p)
        .parse()
        .ok()?;
    if hport == 0 || gport == 0 {
        return None;
    }
    Some(HostFwd {
        host: SocketAddrV4::new(ip, hport),
        guest_port: gport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_with_forwards() {
        let s = parse(
            "0",
            "user,hostfwd=tcp::8080-:80,hostfwd=tcp:127.0.0.1:2222-10.0.2.15:22",
        )
        .unwrap();
        let EthTransport::User {
            fwds,
            resolver,
            configured,
        } = s.transport
        else {
            panic!("user")
        };
        assert_eq!(resolver, None);
        assert!(configured);
        assert_eq!(fwds.len(), 2);
        assert_eq!(fwds[0].host, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(fwds[0].guest_port, 80);
        assert_eq!(fwds[1].guest_port, 22);
        assert!(parse("0", "slirp").is_ok());
        assert_eq!(parse("1", "user").map(|s| s.index), Ok(1));
        assert_eq!(parse("5", "slirp").map(|s| s.index), Ok(5));
        assert!(parse("6", "user").is_err());
        assert!(parse("01", "user").is_err());
        assert!(parse("x", "user").is_err());
        assert_eq!(
            parse("0", "tuntap,tap0").map(|s| s.transport),
            Ok(EthTransport::Tuntap {
                dev: "tap0".into(),
                mac: None
            })
        );
        assert_eq!(
            parse("1", "tuntap,tap1,fe:fd:0:0:0:1,192.168.0.254").map(|s| s.transport),
            Ok(EthTransport::Tuntap {
                dev: "tap1".into(),
                mac: Some([0xfe, 0xfd, 0, 0, 0, 1])
            })
        );
        assert!(parse("0", "tuntap").is_err());
        assert!(parse("0", "tuntap,").is_err());
        assert!(parse("0", "tuntap,tap0,ff:ff:ff:ff:ff:ff").is_err());
        assert!(parse("0", "tuntap,tap0,52:54:00:12:34").is_err());
        assert!(parse("0", "tuntap,tap0,,nowhere").is_err());
        assert!(parse("0", "daemon,x,unix,/s").is_err());
        assert_eq!(
            parse("2", "daemon,fe:fd:0:0:0:2,unix,/run/sw.ctl").map(|s| s.transport),
            Ok(EthTransport::Daemon {
                mac: Some([0xfe, 0xfd, 0, 0, 0, 2]),
                ctl: "/run/sw.ctl".into()
            })
        );
        assert_eq!(
            parse("0", "daemon").map(|s| s.transport),
            Ok(EthTransport::Daemon {
                mac: None,
                ctl: DAEMON_CTL.into()
            })
        );
        assert_eq!(
            parse("0", "daemon,,,").map(|s| s.transport),
            Ok(EthTransport::Daemon {
                mac: None,
                ctl: DAEMON_CTL.into()
            })
        );
        assert!(parse("0", "daemon,,inet,/s").is_err());
        for v in [
            "daemon,fe:fd:00:00:00:02,unix,/run/sw.ctl",
            "daemon,,unix,/tmp/uml.ctl",
            "tuntap,tap1,fe:fd:00:00:00:01",
            "tuntap,tap0",
            "user,hostfwd=tcp:127.0.0.1:8080-:80,resolver=127.0.0.1:53,addr=none",
        ] {
            assert_eq!(describe(&parse("1", v).unwrap()), v);
        }
        assert!(parse("0", "daemon,,unix,/s,more").is_err());
        assert!(parse("0", &format!("daemon,,unix,/{}", "x".repeat(107))).is_err());
        assert!(parse("0", "user,hostfwd=udp::1-:2").is_err());
        assert!(parse("0", "user,hostfwd=tcp::0-:2").is_err());
        assert!(parse("0", "user,hostfwd=tcp::99999-:2").is_err());
        let r = |v| match parse("0", v).map(|s| s.transport) {
            Ok(EthTransport::User { resolver, .. }) => resolver,
            _ => None,
        };
        assert_eq!(
            r("user,resolver=127.0.0.1"),
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            r("user,resolver=127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert!(parse("0", "user,resolver=127.0.0.1:0").is_err());
        assert!(parse("0", "user,resolver=nowhere").is_err());
        let c = |v| match parse("0", v).map(|s| s.transport) {
            Ok(EthTransport::User { configured, .. }) => Some(configured),
            _ => None,
        };
        assert_eq!(c("user,addr=none"), Some(false));
        assert_eq!(c("user,addr=10.0.2.15"), None);
    }
}
