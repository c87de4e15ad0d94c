//! Miscellaneous syscalls: uname, sethostname, sysinfo, getrandom,
//! reboot, mount, umount2.

use super::{ok, SysResult};
use crate::errno::{Errno, KResult};
use crate::kernel::task::Pid;
use crate::kernel::{Kernel, Shutdown};

pub const RELEASE: &str = "6.1.0-umlrun";

const UNAME26: u32 = 0x0020000;

/// The release a UNAME26 process sees.
fn uname26(release: &str) -> String {
    let mut dots = 0;
    let mut end = release.len();
    for (i, c) in release.char_indices() {
        if c == '.' {
            dots += 1;
            if dots >= 3 {
                end = i;
                break;
            }
        }
        if !c.is_ascii_digit() && c != '.' {
            end = i;
            break;
        }
    }
    let minor: u32 = release
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    format!("2.6.{}{}", minor + 60, &release[end..])
}

pub fn sys_uname(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let mut b = [0u8; 390];
    // personality UNAME26: "2.6.<60 + minor><rest>", as Linux's override_release.
    let release = if k.task(tid)?.personality & UNAME26 != 0 {
        uname26(RELEASE)
    } else {
        RELEASE.to_string()
    };
    let fields: [&[u8]; 6] = [
        b"Linux",
        &k.config.hostname.clone(),
        release.as_bytes(),
        b"#1 SMP umlrun",
        b"x86_64",
        &k.domainname.clone(),
    ];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    k.write_user(tid, a[0], &b)?;
    ok(0)
}

/// setdomainname(2): root only, at most 64 bytes.
pub fn sys_setdomainname(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    if a[1] > 64 {
        return Err(Errno::EINVAL);
    }
    k.domainname = k.read_user_vec(tid, a[0], a[1] as usize)?;
    ok(0)
}

pub fn sys_sethostname(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    if a[1] > 64 {
        return Err(Errno::EINVAL);
    }
    k.config.hostname = k.read_user_vec(tid, a[0], a[1] as usize)?;
    ok(0)
}

pub fn sys_sysinfo(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    let st = k.physmem.stats();
    let mut b = [0u8; 112];
    let put = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut b, 0, k.uptime().as_secs());
    put(&mut b, 32, k.physmem.frames_plugged() * crate::abi::PAGE);
    put(&mut b, 40, st.frames_free * crate::abi::PAGE);
    let (total, used) = {
        let swap = k.frames.swap.borrow();
        (swap.total_pages(), swap.used_pages())
    };
    put(&mut b, 64, total * crate::abi::PAGE);
    put(&mut b, 72, total.saturating_sub(used) * crate::abi::PAGE);
    // bufferram: Linux's block-device buffers; our page cache is Cached in /proc/meminfo.
    let procs = k.tasks.values().filter(|t| t.is_alive()).count() as u16;
    b[80..82].copy_from_slice(&procs.to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    k.write_user(tid, a[0], &b)?;
    ok(0)
}

pub fn sys_getrandom(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    // GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE
    if a[2] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let n = (a[1] as usize).min(1 << 20);
    let mut buf = vec![0u8; n];
    k.rng.fill(&mut buf);
    k.write_user(tid, a[0], &buf)?;
    ok(n as i64)
}

pub fn sys_reboot(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    const MAGIC1: u32 = 0xfee1_dead;
    const MAGIC2: [u32; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    if a[0] as u32 != MAGIC1 || !MAGIC2.contains(&(a[1] as u32)) {
        return Err(Errno::EINVAL);
    }
    let how = match a[2] as u32 {
        0x0123_4567 => Shutdown::Restart,
        0xCDEF_0123 => Shutdown::Halt,
        0x4321_FEDC => Shutdown::PowerOff,
        0x89AB_CDEF | 0 => return ok(0), // Ctrl-Alt-Del on/off
        _ => return Err(Errno::EINVAL),
    };
    log::info!("guest asked for {how:?}");
    k.shutdown = Some(how);
    ok(0)
}

pub fn sys_mount(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    let target = k.read_path(tid, a[1])?;
    let fstype = opt_string(k, tid, a[2])?;
    let source = opt_string(k, tid, a[0])?;
    k.do_mount(tid, source, &target, fstype, a[3])?;
    ok(0)
}

/// A string argument that may be NULL.
fn opt_string(k: &mut Kernel, tid: Pid, addr: u64) -> KResult<Option<Vec<u8>>> {
    if addr == 0 {
        return Ok(None);
    }
    k.read_path(tid, addr).map(Some)
}

pub fn sys_umount2(k: &mut Kernel, tid: Pid, a: [u64; 6]) -> SysResult {
    if k.task(tid)?.cred.euid != 0 {
        return Err(Errno::EPERM);
    }
    let target = k.read_path(tid, a[0])?;
    k.do_umount(tid, &target, a[1])?;
    ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname26_keeps_the_suffix() {
        assert_eq!(uname26("6.1.0-umlrun"), "2.6.61-umlrun");
        assert_eq!(uname26("6.18.44-fc-v1272"), "2.6.78-fc-v1272");
        assert_eq!(uname26("5.10"), "2.6.70");
    }
}
