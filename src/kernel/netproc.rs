//! The interface ioctls' glue (`Kernel::if_ioctl`: guest memory in and
//! out of `net::inet::ifreq`), and what /proc/net shows of the inet stack: the interfaces' counters, the
//! TCP and UDP sockets that fds refer to (as /proc/net/unix, sockets
//! only in an accept queue or closing are not listed), the ethN's routes.
//! The text is `net::inet::procnet`'s; this gathers the rows. A guest
//! that never made an inet socket and has no ethN sees lo's zeros
//! (the stack is not made for a look).

use std::collections::BTreeSet;

use super::core::Kernel;
use super::task::Pid;
use crate::errno::Errno;
use crate::net::inet::ifcfg;
use crate::net::inet::ifreq::{self, IFREQ_LEN, SIOCGIFCONF};
use crate::net::inet::procnet::{self, SockRow};
use crate::net::inet::{Family, Proto};
use crate::syscalls::{ok, SysResult};
use crate::vfs::file::ops_of;

/// The route ioctls (struct rtentry).
pub const SIOCADDRT: u32 = 0x890b;
pub const SIOCDELRT: u32 = 0x890c;

impl Kernel {
    /// An interface ioctl (SIOCGIF*, `ifreq::is_if_ioctl`) on a socket.
    pub fn if_ioctl(&mut self, tid: Pid, req: u32, arg: u64) -> SysResult {
        if req == SIOCADDRT || req == SIOCDELRT {
            return self.route_ioctl(tid, req, arg);
        }
        let eths = self.inet.as_ref().map(|s| s.eths()).unwrap_or_default();
        let ifs = ifreq::interfaces(&eths);
        if req == SIOCGIFCONF {
            // struct ifconf { int ifc_len; char *ifc_buf; }
            let raw = self.read_user_vec(tid, arg, 16)?;
            let len = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            let buf = u64::from_le_bytes(raw[8..16].try_into().map_err(|_| Errno::EFAULT)?);
            let room = (buf != 0).then_some(len.max(0) as usize);
            let (n, bytes) = ifreq::ifconf(&ifs, room);
            if !bytes.is_empty() {
                self.write_user(tid, buf, &bytes)?;
            }
            self.write_u32(tid, arg, n as u32)?;
            return ok(0);
        }
        let raw = self.read_user_vec(tid, arg, IFREQ_LEN)?;
        let ifr: [u8; IFREQ_LEN] = raw.try_into().map_err(|_| Errno::EFAULT)?;
        let privileged = self.task(tid)?.cred.euid == 0;
        if let Some(i) = ifreq::eth_set_target(&eths, req, &ifr) {
            if !privileged {
                return Err(Errno::EPERM);
            }
            self.net().configure(|ifs| {
                let e = ifs.get_mut(i).ok_or(Errno::ENODEV)?;
                ifreq::ifreq_set(e, req, &ifr)
            })?;
            self.net_settle();
            return ok(0);
        }
        if let Some(out) = ifreq::ifreq_ioctl(&ifs, req, &ifr, privileged)? {
            self.write_user(tid, arg, &out)?;
        }
        ok(0)
    }

    /// SIOCADDRT/SIOCDELRT: a `struct rtentry` through an ethN (the one
    /// `rt_dev` names, else the one the gateway is on).
    fn route_ioctl(&mut self, tid: Pid, req: u32, arg: u64) -> SysResult {
        if self.task(tid)?.cred.euid != 0 {
            return Err(Errno::EPERM);
        }
        let raw = self.read_user_vec(tid, arg, ifcfg::RTENTRY_LEN)?;
        let rt = ifcfg::parse_rtentry(&raw)?;
        let dev = if rt.dev_ptr != 0 {
            // Linux copies IFNAMSIZ-1 bytes of the name.
            let mut name = self.read_path(tid, rt.dev_ptr)?;
            name.truncate(15);
            Some(name)
        } else {
            None
        };
        if dev.as_deref() == Some(b"lo") {
            // lo's routes live in the local table, not changed here.
            return Err(Errno::EOPNOTSUPP);
        }
        let eths = self.inet.as_ref().map(|s| s.eths()).unwrap_or_default();
        let dev = match dev {
            Some(d) => Some(ifcfg::by_name(&eths, &d).ok_or(Errno::ENODEV)?),
            None => None,
        };
        if eths.is_empty() {
            return Err(Errno::ENETUNREACH);
        }
        let r = self.net().configure(|ifs| {
            if req == SIOCADDRT {
                ifcfg::add_route(ifs, rt.route, dev)
            } else {
                let gw = rt.route.gw;
                let metric = (rt.route.metric != 0).then_some(rt.route.metric);
                ifcfg::del_route(ifs, rt.route.dst, rt.route.prefix, gw, metric, dev)
            }
        });
        self.net_settle();
        r?;
        ok(0)
    }

    /// /proc/net's inet files, by name.
    pub fn net_proc_texts(&mut self) -> Vec<(&'static str, Vec<u8>)> {
        let mut rows: [Vec<SockRow>; 4] = Default::default(); // tcp, tcp6, udp, udp6
        let mut seen = BTreeSet::new();
        let mut files = Vec::new();
        for t in self.tasks.values().filter(|t| t.is_leader()) {
            for (_, e) in t.files.borrow().iter() {
                let ops = ops_of(&e.file);
                if let Some(f) = ops.as_inet() {
                    if seen.insert(f.ino) {
                        files.push((ops.clone(), t.cred.euid));
                    }
                }
            }
        }
        if let Some(st) = self.inet.as_mut() {
            for (ops, uid) in &files {
                let Some(f) = ops.as_inet() else { continue };
                let s = f.sock.borrow();
                let row = match s.proto {
                    Proto::Tcp => s.tcp_row(st),
                    Proto::Udp => s.udp_row(),
                    // /proc/net/icmp is not made.
                    Proto::Icmp => None,
                };
                let Some((state, local, remote)) = row else {
                    continue;
                };
                let i = match (s.proto, s.family) {
                    (Proto::Tcp, Family::V4) => 0,
                    (Proto::Tcp, Family::V6) => 1,
                    (Proto::Udp, Family::V4) => 2,
                    (Proto::Udp, Family::V6) => 3,
                    (Proto::Icmp, _) => continue,
                };
                rows[i].push(SockRow {
                    local,
                    remote,
                    state,
                    txq: s.outq(st),
                    rxq: s.inq(st).unwrap_or(0),
                    uid: *uid,
                    ino: f.ino,
                });
            }
        }
        let (lo, eths) = match self.inet.as_ref() {
            Some(st) => (st.lo, st.eths()),
            None => (Default::default(), Vec::new()),
        };
        vec![
            ("dev", procnet::dev(&lo, &eths)),
            ("tcp", procnet::tcp(&rows[0], false)),
            ("tcp6", procnet::tcp(&rows[1], true)),
            ("udp", procnet::udp(&rows[2], false)),
            ("udp6", procnet::udp(&rows[3], true)),
            ("route", procnet::route(&eths)),
            ("if_inet6", procnet::if_inet6()),
        ]
        .into_iter()
        .map(|(n, t)| (n, t.into_bytes()))
        .collect()
    }
}
