//! What /proc shows of open files beyond their names: the text of
//! /proc/<pid>/fdinfo/<fd> (pos, flags, mnt_id, ino, then the kind's own
//! lines from `FileDescription::fdinfo`) and of /proc/net/unix (every
//! AF_UNIX socket an fd holds), both in Linux's formats. `refresh_proc`
//! puts them in the procfs snapshot.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::socket::SocketFile;
use crate::kernel::Kernel;
use crate::net::sockaddr::UnixAddr;
use crate::vfs::file::{ops_of, O_CLOEXEC, O_PATH};
use crate::vfs::OpenFileRef;

/// O_LARGEFILE: Linux sets it on every file opened by path on x86-64.
const O_LARGEFILE: u32 = 0o100000;

/// An open file's status flags as Linux shows them (F_GETFL, fdinfo):
/// on x86-64 a file opened by path, but not with O_PATH, has O_LARGEFILE.
pub fn status_flags(f: &OpenFileRef) -> u32 {
    let ops = ops_of(f);
    let flags = f.borrow().flags;
    if flags & O_PATH == 0 && (ops.node().is_some() || ops.directory().is_some()) {
        flags | O_LARGEFILE
    } else {
        flags
    }
}
/// __SO_ACCEPTCON: a listening socket in /proc/net/unix's Flags.
const SO_ACCEPTCON: u32 = 0x10000;

impl Kernel {
    /// /proc/<pid>/fdinfo/<fd> text of every fd of every process.
    pub fn fdinfo_all(
        &mut self,
        only: Option<crate::kernel::task::Pid>,
    ) -> BTreeMap<(u32, u32), Vec<u8>> {
        let fds: Vec<(u32, u32, OpenFileRef, bool)> = self
            .tasks
            .values()
            .filter(|t| t.is_leader() && only.is_none_or(|p| p == t.tgid))
            .flat_map(|t| {
                let pid = t.tgid as u32;
                t.files
                    .borrow()
                    .iter()
                    .map(|(fd, e)| (pid, fd, e.file.clone(), e.cloexec))
                    .collect::<Vec<_>>()
            })
            .collect();
        fds.into_iter()
            .map(|(pid, fd, f, cloexec)| ((pid, fd), self.fdinfo_text(&f, cloexec).into_bytes()))
            .collect()
    }

    /// One fd's fdinfo.
    pub fn fdinfo_text(&mut self, f: &OpenFileRef, cloexec: bool) -> String {
        let ops = ops_of(f);
        let pos = f.borrow().offset;
        let mut flags = status_flags(f);
        let node = ops.node();
        if cloexec {
            flags |= O_CLOEXEC;
        }
        let ino = ops.stat(self).map(|(st, _)| st.ino).unwrap_or(0);
        let mnt = node.map_or(0, |n| n.mnt);
        let mut out = format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\nino:\t{ino}\n");
        out.push_str(&ops.fdinfo(self));
        out
    }

    /// /proc/net/unix: one line per socket an fd refers to (sockets only
    /// in flight or only in an accept queue are not listed).
    pub fn net_unix_text(&self) -> Vec<u8> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec();
        for t in self.tasks.values().filter(|t| t.is_leader()) {
            for (_, e) in t.files.borrow().iter() {
                let ops = ops_of(&e.file);
                let Some(sf) = ops.as_socket() else {
                    continue;
                };
                if !seen.insert(sf.ino) {
                    continue;
                }
                out.extend_from_slice(&net_unix_line(sf, Rc::strong_count(&e.file)));
            }
        }
        out
    }
}

fn net_unix_line(sf: &SocketFile, refs: usize) -> Vec<u8> {
    let s = sf.sock.borrow();
    let (flags, st) = if s.listening() {
        (SO_ACCEPTCON, 1)
    } else if s.connected() {
        (0, 3)
    } else {
        (0, 1)
    };
    let mut line = format!(
        "0000000000000000: {:08X} {:08X} {:08X} {:04X} {:02X} {:5}",
        refs + 1,
        0,
        flags,
        s.kind.raw(),
        st,
        sf.ino
    )
    .into_bytes();
    match s.addr() {
        UnixAddr::Unnamed => {}
        UnixAddr::Path(p) => {
            line.push(b' ');
            line.extend_from_slice(p);
        }
        UnixAddr::Abstract(n) => {
            line.extend_from_slice(b" @");
            line.extend(n.iter().map(|&c| if c == 0 { b'@' } else { c }));
        }
    }
    line.push(b'\n');
    line
}
