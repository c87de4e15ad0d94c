//! The initial process stack, as execve leaves it (x86-64 SysV ABI):
//!
//! ```text
//! stack_top -> 8 zero bytes (end marker)
//!              execfn string, envp strings, argv strings
//!              platform string, 16 AT_RANDOM bytes
//!              padding so rsp is 16-byte aligned
//!              auxv pairs ... AT_NULL
//!              envp pointers ... NULL
//!              argv pointers ... NULL
//! rsp ------>  argc
//! ```

use crate::errno::Errno;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Linux's MAX_ARG_STRLEN: one argument or environment string.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Total argv+envp bytes allowed (Linux: a quarter of an 8 MiB stack rlimit).
pub const MAX_ARG_TOTAL: usize = 2 << 20;

/// The values the auxiliary vector reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuxInfo {
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    pub entry: u64,
    /// The interpreter's load bias, 0 without one.
    pub base: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub secure: bool,
    pub hwcap: u64,
    pub hwcap2: u64,
    pub clktck: u64,
    /// The vDSO's ELF header, if the guest gets one.
    pub sysinfo_ehdr: Option<u64>,
    pub random: [u8; 16],
    /// AT_PLATFORM string, e.g. "x86_64".
    pub platform: Vec<u8>,
    /// AT_MINSIGSTKSZ: stack one signal frame needs (0: not reported).
    pub minsigstksz: u64,
}

/// What goes on a new stack.
#[derive(Clone, Copy, Debug)]
pub struct StackSpec<'a> {
    pub argv: &'a [&'a [u8]],
    pub envp: &'a [&'a [u8]],
    /// The path exec was called with (AT_EXECFN).
    pub execfn: &'a [u8],
    pub aux: &'a AuxInfo,
    /// One past the highest stack byte; 16-byte aligned.
    pub stack_top: u64,
}

/// The bytes of `[rsp, stack_top)` and the rsp to start with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackImage {
    pub rsp: u64,
    pub bytes: Vec<u8>,
}

impl StackImage {
    fn put(&mut self, addr: u64, data: &[u8]) {
        let at = (addr - self.rsp) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }
    fn put_u64(&mut self, addr: u64, v: u64) {
        self.put(addr, &v.to_le_bytes());
    }
}

fn check_strings(list: &[&[u8]]) -> Result<usize, Errno> {
    let mut total = 0usize;
    for s in list {
        if s.contains(&0) {
            return Err(Errno::EINVAL);
        }
        if s.len() + 1 > MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        total += s.len() + 1;
    }
    Ok(total)
}

/// Lay out the initial stack.
pub fn build_stack(spec: &StackSpec<'_>) -> Result<StackImage, Errno> {
    if !spec.stack_top.is_multiple_of(16) || spec.stack_top < (64 << 20) {
        return Err(Errno::EINVAL);
    }
    let args = check_strings(spec.argv)? + check_strings(spec.envp)?;
    if args > MAX_ARG_TOTAL {
        return Err(Errno::E2BIG);
    }
    let fixed = check_strings(&[spec.execfn, &spec.aux.platform])?;
    let strings = (args + fixed) as u64;

    // Strings, top down: end marker, execfn, envp, argv (argv[0] lowest).
    let end_marker = spec.stack_top - 8;
    let execfn_at = end_marker - (spec.execfn.len() as u64 + 1);
    let strings_lo = spec.stack_top - 8 - strings;
    let platform_at = strings_lo;
    let random_at = (platform_at - 16) & !15;

    let aux = auxv_pairs(spec.aux, platform_at, random_at, execfn_at);
    let words = 1 + spec.argv.len() + 1 + spec.envp.len() + 1 + aux.len() * 2;
    let rsp = (random_at - words as u64 * 8) & !15;

    let mut img = StackImage {
        rsp,
        bytes: vec![0; (spec.stack_top - rsp) as usize],
    };
    // Strings and their addresses.
    let mut at = execfn_at;
    img.put(at, spec.execfn);
    let mut env_ptrs = Vec::with_capacity(spec.envp.len());
    for s in spec.envp.iter().rev() {
        at -= s.len() as u64 + 1;
        img.put(at, s);
        env_ptrs.push(at);
    }
    env_ptrs.reverse();
    let mut arg_ptrs = Vec::with_capacity(spec.argv.len());
    for s in spec.argv.iter().rev() {
        at -= s.len() as u64 + 1;
        img.put(at, s);
        arg_ptrs.push(at);
    }
    arg_ptrs.reverse();
    debug_assert_eq!(at - (spec.aux.platform.len() as u64 + 1), platform_at);
    img.put(platform_at, &spec.aux.platform);
    img.put(random_at, &spec.aux.random);

    // The pointer block from rsp up.
    let mut p = rsp;
    let mut push = |img: &mut StackImage, v: u64| {
        img.put_u64(p, v);
        p += 8;
    };
    push(&mut img, spec.argv.len() as u64);
    for a in arg_ptrs {
        push(&mut img, a);
    }
    push(&mut img, 0);
    for e in env_ptrs {
        push(&mut img, e);
    }
    push(&mut img, 0);
    for (k, v) in aux {
        push(&mut img, k);
        push(&mut img, v);
    }
    Ok(img)
}

fn auxv_pairs(a: &AuxInfo, platform: u64, random: u64, execfn: u64) -> Vec<(u64, u64)> {
    let mut v = Vec::with_capacity(24);
    if let Some(ehdr) = a.sysinfo_ehdr {
        v.push((AT_SYSINFO_EHDR, ehdr));
    }
    v.extend_from_slice(&[
        (AT_HWCAP, a.hwcap),
        (AT_PAGESZ, 4096),
        (AT_CLKTCK, a.clktck),
        (AT_PHDR, a.phdr),
        (AT_PHENT, a.phent),
        (AT_PHNUM, a.phnum),
        (AT_BASE, a.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, a.entry),
        (AT_UID, a.uid as u64),
        (AT_EUID, a.euid as u64),
        (AT_GID, a.gid as u64),
        (AT_EGID, a.egid as u64),
        (AT_SECURE, a.secure as u64),
        (AT_RANDOM, random),
        (AT_HWCAP2, a.hwcap2),
        (AT_EXECFN, execfn),
        (AT_PLATFORM, platform),
    ]);
    if a.minsigstksz != 0 {
        v.push((AT_MINSIGSTKSZ, a.minsigstksz));
    }
    v.push((AT_NULL, 0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u64 = 0x7fff_f000_0000;

    fn word(img: &StackImage, addr: u64) -> u64 {
        let at = (addr - img.rsp) as usize;
        u64::from_le_bytes(img.bytes[at..at + 8].try_into().unwrap())
    }

    fn cstr(img: &StackImage, addr: u64) -> Vec<u8> {
        let at = (addr - img.rsp) as usize;
        img.bytes[at..]
            .iter()
            .take_while(|&&b| b != 0)
            .copied()
            .collect()
    }

    fn aux() -> AuxInfo {
        AuxInfo {
            phdr: 0x400040,
            phent: 56,
            phnum: 9,
            entry: 0x401000,
            clktck: 100,
            random: *b"0123456789abcdef",
            platform: b"x86_64".to_vec(),
            sysinfo_ehdr: Some(0x7fff_f7fc_1000),
            ..AuxInfo::default()
        }
    }

    /// Walk the image like a libc start routine would.
    type Walked = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<(u64, u64)>);

    fn walk(img: &StackImage) -> Walked {
        let argc = word(img, img.rsp);
        let mut p = img.rsp + 8;
        let argv = (0..argc).map(|i| cstr(img, word(img, p + i * 8))).collect();
        p += argc * 8;
        assert_eq!(word(img, p), 0);
        p += 8;
        let mut envp = Vec::new();
        while word(img, p) != 0 {
            envp.push(cstr(img, word(img, p)));
            p += 8;
        }
        p += 8;
        let mut auxv = Vec::new();
        loop {
            let (k, v) = (word(img, p), word(img, p + 8));
            auxv.push((k, v));
            p += 16;
            if k == AT_NULL {
                break;
            }
        }
        (argv, envp, auxv)
    }

    #[test]
    fn layout_round_trips() {
        for nargs in 0..4 {
            let argv_owned: Vec<Vec<u8>> =
                (0..nargs).map(|i| format!("arg{i}").into_bytes()).collect();
            let argv: Vec<&[u8]> = argv_owned.iter().map(|v| v.as_slice()).collect();
            let envp: Vec<&[u8]> = vec![b"A=1", b"HOME=/root"];
            let a = aux();
            let spec = StackSpec {
                argv: &argv,
                envp: &envp,
                execfn: b"/bin/prog",
                aux: &a,
                stack_top: TOP,
            };
            let img = build_stack(&spec).unwrap();
            assert_eq!(img.rsp % 16, 0, "ABI: rsp 16-aligned at entry");
            assert_eq!(img.rsp + img.bytes.len() as u64, TOP);
            let (av, ev, auxv) = walk(&img);
            assert_eq!(av, argv_owned);
            assert_eq!(ev, vec![b"A=1".to_vec(), b"HOME=/root".to_vec()]);
            let get = |k| auxv.iter().find(|p| p.0 == k).map(|p| p.1).unwrap();
            assert_eq!(get(AT_PHDR), 0x400040);
            assert_eq!(get(AT_PHNUM), 9);
            assert_eq!(get(AT_ENTRY), 0x401000);
            assert_eq!(get(AT_PAGESZ), 4096);
            assert_eq!(get(AT_SYSINFO_EHDR), 0x7fff_f7fc_1000);
            assert_eq!(cstr(&img, get(AT_EXECFN)), b"/bin/prog");
            assert_eq!(cstr(&img, get(AT_PLATFORM)), b"x86_64");
            let r = get(AT_RANDOM);
            let at = (r - img.rsp) as usize;
            assert_eq!(&img.bytes[at..at + 16], b"0123456789abcdef");
            assert_eq!(word(&img, TOP - 8), 0, "end marker");
        }
    }

    #[test]
    fn minsigstksz_only_when_known() {
        let mut a = aux();
        let spec = |a: &AuxInfo| {
            let img = build_stack(&StackSpec {
                argv: &[],
                envp: &[],
                execfn: b"/x",
                aux: a,
                stack_top: TOP,
            })
            .unwrap();
            walk(&img).2
        };
        assert!(!spec(&a).iter().any(|p| p.0 == AT_MINSIGSTKSZ));
        a.minsigstksz = 2960;
        let auxv = spec(&a);
        assert!(auxv.contains(&(AT_MINSIGSTKSZ, 2960)));
        assert_eq!(auxv.last(), Some(&(AT_NULL, 0)));
    }

    #[test]
    fn bad_input_is_an_error() {
        let a = aux();
        let nul: Vec<&[u8]> = vec![b"a\0b"];
        let spec = StackSpec {
            argv: &nul,
            envp: &[],
            execfn: b"/x",
            aux: &a,
            stack_top: TOP,
        };
        assert_eq!(build_stack(&spec), Err(Errno::EINVAL));
        let big = vec![b'x'; MAX_ARG_STRLEN];
        let argv: Vec<&[u8]> = vec![&big];
        let spec = StackSpec {
            argv: &argv,
            envp: &[],
            execfn: b"/x",
            aux: &a,
            stack_top: TOP,
        };
        assert_eq!(build_stack(&spec), Err(Errno::E2BIG));
        let spec = StackSpec {
            argv: &[],
            envp: &[],
            execfn: b"/x",
            aux: &a,
            stack_top: TOP + 8,
        };
        assert_eq!(build_stack(&spec), Err(Errno::EINVAL));
        let spec = StackSpec {
            argv: &[],
            envp: &[],
            execfn: b"/x",
            aux: &a,
            stack_top: 4096,
        };
        assert_eq!(build_stack(&spec), Err(Errno::EINVAL));
    }
}
