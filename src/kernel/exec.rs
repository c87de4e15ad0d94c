//! execve: replace a process's image with a new program (ELF, static,
//! static-pie or dynamic with PT_INTERP, or a `#!` script).

use std::rc::Rc;

use super::core::{Kernel, Mm};
use super::task::Pid;
use crate::errno::{Errno, KResult};
use crate::fs::{S_IFMT, S_IFREG};
use crate::loader::{build_stack, parse_shebang, AuxInfo, ElfFile, LoadPlan, StackSpec};
use crate::mm::pagecache::FilePages;
use crate::mm::GuestVirt;
use crate::mm::*;
use crate::platform::Regs;
use crate::vfs::perm::MAY_EXEC;
use crate::vfs::Resolved;

/// Where a position-independent main program goes (Linux's
/// ELF_ET_DYN_BASE without randomization).
const ET_DYN_BASE: u64 = 0x5555_5555_4000;
/// How much of a file exec reads to parse headers.
const HEAD_MAX: usize = 16 * 1024;
/// Nested `#!` interpreters allowed.
const MAX_SCRIPT_DEPTH: usize = 4;

struct Image {
    file: Resolved,
    elf: ElfFile,
}

impl Kernel {
    fn exec_open(&mut self, tid: Pid, path: &[u8]) -> KResult<(Resolved, Vec<u8>)> {
        // The program, a `#!` interpreter and PT_INTERP alike are found
        // from the caller's root (chroot) and cwd.
        let t = self.task(tid)?;
        let (root, cwd) = {
            let fs = t.fs.borrow();
            (fs.root.path(), fs.cwd.path())
        };
        let cred = t.cred.clone();
        let seen_cwd = crate::vfs::dentry::shown_from(&root, &cwd);
        if path.starts_with(b"/proc")
            || path.starts_with(b"/dev/fd")
            || seen_cwd.starts_with(b"/proc")
        {
            // /proc/self/exe and /proc/<pid>/fd/<n> lead to what they name now.
            self.refresh_proc(tid);
        }
        let r = self.mounts.resolve(&root, &cwd, path, true, &cred)?;
        self.exec_check(tid, r)
    }

    /// The checks of exec on a found file, and its first bytes.
    fn exec_check(&mut self, tid: Pid, r: Resolved) -> KResult<(Resolved, Vec<u8>)> {
        let cred = self.task(tid)?.cred.clone();
        if r.stat.mode & S_IFMT != S_IFREG {
            return Err(Errno::EACCES);
        }
        cred.check(&r.stat, MAY_EXEC)?;
        self.deny_exec_of_written(r.node)?;
        let fs = self.mounts.fs(r.node.mnt)?;
        let n = (r.stat.size as usize).min(HEAD_MAX);
        let mut head = vec![0u8; n];
        // open_exec opens the program (IN_OPEN) and reads it (IN_ACCESS),
        // as Linux's fsnotify_open and kernel_read do.
        self.notify_file(tid, &r.path, r.node, super::files::inotify::IN_OPEN);
        let got = fs.read(r.node.ino, 0, &mut head)?;
        head.truncate(got);
        if got > 0 {
            self.notify_file(tid, &r.path, r.node, super::files::inotify::IN_ACCESS);
        }
        Ok((r, head))
    }

    /// ETXTBSY when `node` is open for writing anywhere, or mapped from
    /// a file opened for writing (even after that fd was closed, shared
    /// or private), or held so by a file in flight in an SCM_RIGHTS
    /// message: its write count (vfs/writecount.rs) is above zero.
    /// Linux's deny_write_access in do_open_execat, for the program, its
    /// `#!` interpreter and its PT_INTERP alike. memfd files are exempt,
    /// as on Linux 6.18 (measured: fexecve of a writable memfd runs).
    fn deny_exec_of_written(&self, node: crate::vfs::Node) -> KResult<()> {
        if self.evhub.memfd_mount == Some(node.mnt) {
            return Ok(());
        }
        if self.writecounts.has_writers((node.mnt, node.ino)) {
            return Err(Errno::ETXTBSY);
        }
        Ok(())
    }

    /// What an open fd refers to, for exec by fd (EACCES when it is not
    /// a file: a pipe or a terminal cannot be run).
    pub fn fd_resolved(&self, tid: Pid, fd: i32) -> KResult<Resolved> {
        let f = self.task(tid)?.files.borrow().file(fd)?;
        let of = f.borrow();
        let node = of.node().ok_or(Errno::EACCES)?;
        let stat = self.mounts.stat_node(node)?;
        Ok(Resolved {
            node,
            path: of.path.clone(),
            stat,
        })
    }

    fn file_source(&self, r: &Resolved) -> KResult<Rc<FilePages>> {
        let m = self.mounts.get(r.node.mnt)?;
        Ok(Rc::new(FilePages {
            cache: self.pagecache.clone(),
            fs: m.fs.clone(),
            key: (r.node.mnt, r.node.ino),
            dev: m.dev,
            path: r.path.clone(),
        }))
    }

    /// Maps one load plan into `aspace`.
    fn map_plan(
        &mut self,
        aspace: &mut AddressSpace,
        plan: &LoadPlan,
        src: &Rc<FilePages>,
    ) -> KResult<()> {
        for s in &plan.segments {
            let prot = s.prot.bits() as u32;
            let start = s.map_start();
            let file_end = s.file_end();
            let mem_end = s.mem_end();
            if s.filesz > 0 {
                aspace.insert_vma(
                    Vma {
                        start: GuestVirt(start),
                        end: GuestVirt(file_end),
                        prot,
                        shared: false,
                        may_write: true,
                        backing: Backing::File {
                            source: src.clone(),
                            pgoff: s.map_offset() / PAGE,
                        },
                        label: None,
                        lock: crate::mm::vma::Lock::None,
                        write_ref: None,
                    },
                    &mut self.frames,
                );
                // The rest of the last file page belongs to bss: zeros.
                let bss = s.bss_start();
                if s.memsz > s.filesz && bss < file_end {
                    let zeros = vec![0u8; (file_end - bss) as usize];
                    aspace.write_user_force(GuestVirt(bss), &zeros, &mut self.frames)?;
                }
            }
            let anon_start = if s.filesz > 0 { file_end } else { start };
            if mem_end > anon_start {
                aspace.insert_vma(
                    Vma {
                        start: GuestVirt(anon_start),
                        end: GuestVirt(mem_end),
                        prot,
                        shared: false,
                        may_write: true,
                        backing: Backing::Anon,
                        label: None,
                        lock: crate::mm::vma::Lock::None,
                        write_ref: None,
                    },
                    &mut self.frames,
                );
            }
        }
        Ok(())
    }

    /// execve. On success the task runs the new program when it resumes.
    pub fn execve(
        &mut self,
        tid: Pid,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> KResult<()> {
        self.exec_image(tid, path, None, argv, envp)
    }

    /// execveat(fd, "", AT_EMPTY_PATH) and fexecve: runs the file an open
    /// fd refers to (`file`), known to the program as `name` ("/dev/fd/N").
    pub fn execve_file(
        &mut self,
        tid: Pid,
        file: Resolved,
        name: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> KResult<()> {
        self.exec_image(tid, name, Some(file), argv, envp)
    }

    fn exec_image(
        &mut self,
        tid: Pid,
        path: &[u8],
        mut first: Option<Resolved>,
        mut argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> KResult<()> {
        if argv.is_empty() {
            // Linux gives a program started with no arguments an empty
            // argv[0], so that argv[1] is never the first environment string.
            argv.push(Vec::new());
        }
        let mut path = path.to_vec();
        let execfn = path.clone();
        let mut image = None;
        for _ in 0..=MAX_SCRIPT_DEPTH {
            let (file, head) = match first.take() {
                Some(r) => self.exec_check(tid, r)?,
                None => self.exec_open(tid, &path)?,
            };
            if let Some(sb) = parse_shebang(&head) {
                let sb = sb?;
                let mut nargv = vec![sb.interp.clone()];
                if let Some(a) = sb.arg {
                    nargv.push(a);
                }
                nargv.push(path.clone());
                nargv.extend(argv.into_iter().skip(1));
                argv = nargv;
                path = sb.interp;
                continue;
            }
            let elf = ElfFile::parse(&head, file.stat.size)?;
            image = Some(Image { file, elf });
            break;
        }
        let Some(main) = image else {
            return Err(Errno::ELOOP);
        };
        let interp = match &main.elf.interp {
            Some(ip) => {
                let (file, head) = self.exec_open(tid, ip)?;
                let elf = ElfFile::parse(&head, file.stat.size)?;
                if elf.interp.is_some() {
                    return Err(Errno::ENOEXEC);
                }
                Some(Image { file, elf })
            }
            None => None,
        };

        // Build the new address space before touching the old one, so a
        // failure leaves the caller intact.
        // The process's own stub is reused when nobody else shares it
        // (one fewer host fork+exec per guest exec); otherwise a new one.
        // The program's file may not be written while it runs (Linux's
        // exe_file_deny_write_access); taken before the old image goes,
        // so an ETXTBSY leaves the caller intact.
        let exe_deny = if self.evhub.memfd_mount == Some(main.file.node.mnt) {
            None
        } else {
            let n = main.file.node;
            Some(self.writecounts.deny_write((n.mnt, n.ino))?)
        };
        let old_mm = self.task(tid)?.mm;
        let reuse = self.mms.get(&old_mm).is_some_and(|m| m.users == 1);
        let mut fresh = if reuse { None } else { Some(self.new_guest()?) };
        let vdso = match &fresh {
            Some(s) => s.vdso(),
            None => self.mms.get(&old_mm).and_then(|m| m.guest.vdso()),
        };
        let fp_frame = match &mut fresh {
            Some(s) => s.fp_frame_size(),
            None => self
                .mms
                .get_mut(&old_mm)
                .map_or(0, |m| m.guest.fp_frame_size()),
        };
        let mut aspace = AddressSpace::new();
        let plan = LoadPlan::new(&main.elf, ET_DYN_BASE)?;
        let src = self.file_source(&main.file)?;
        let built = (|| -> KResult<(u64, u64)> {
            self.map_plan(&mut aspace, &plan, &src)?;
            let mut base = 0;
            let mut entry = plan.entry;
            if let Some(ip) = &interp {
                let (lo, hi) = ip.elf.span()?;
                let len = page_up(hi - lo).ok_or(Errno::ENOEXEC)? + PAGE;
                let at = aspace
                    .find_free(GuestVirt(0), len)
                    .ok_or(Errno::ENOMEM)?
                    .get();
                let iplan = LoadPlan::new(&ip.elf, at)?;
                let isrc = self.file_source(&ip.file)?;
                self.map_plan(&mut aspace, &iplan, &isrc)?;
                base = iplan.bias;
                entry = iplan.entry;
            }
            aspace.brk_start = plan.brk;
            aspace.brk = plan.brk;
            aspace.insert_vma(
                Vma {
                    start: GuestVirt(STACK_TOP - STACK_MAX),
                    end: GuestVirt(STACK_TOP),
                    prot: PROT_READ | PROT_WRITE | if plan.exec_stack { PROT_EXEC } else { 0 },
                    shared: false,
                    may_write: true,
                    backing: Backing::Anon,
                    label: Some("[stack]"),
                    lock: crate::mm::vma::Lock::None,
                    write_ref: None,
                },
                &mut self.frames,
            );
            let cred = self.task(tid)?.cred.clone();
            let mut random = [0u8; 16];
            self.rng.fill(&mut random);
            let aux = AuxInfo {
                phdr: plan.phdr,
                phent: plan.phent,
                phnum: plan.phnum,
                entry: plan.entry,
                base,
                uid: cred.uid,
                euid: cred.euid,
                gid: cred.gid,
                egid: cred.egid,
                secure: false,
                hwcap: 0x178b_fbff,
                hwcap2: 0,
                clktck: 100,
                sysinfo_ehdr: vdso.as_ref().map(|r| r.start),
                random,
                platform: b"x86_64".to_vec(),
                minsigstksz: super::signal::min_sigstack_size(fp_frame),
            };
            let argv_refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
            let envp_refs: Vec<&[u8]> = envp.iter().map(|a| a.as_slice()).collect();
            let img = build_stack(&StackSpec {
                argv: &argv_refs,
                envp: &envp_refs,
                execfn: &execfn,
                aux: &aux,
                stack_top: STACK_TOP,
            })?;
            aspace.write_user(GuestVirt(img.rsp), &img.bytes, &mut self.frames)?;
            Ok((entry, img.rsp))
        })();
        let (entry, rsp) = match built {
            Ok(v) => v,
            Err(e) => {
                aspace.clear(&mut self.frames);
                return Err(e);
            }
        };

        // Point of no return: other threads die, the old image goes.
        let tgid = self.task(tid)?.tgid;
        for th in self.threads(tgid) {
            if th != tid {
                self.exit_thread(th, 0);
                self.tasks.remove(&th);
            }
        }
        self.ptimers_exec(tgid);
        // SECURE_KEEP_CAPS never survives an execve (Linux's
        // cap_bprm_creds_from_file).
        self.task_mut(tid)?.securebits &= !(1 << 4);
        // The old address space's turns are charged while its stub's
        // clock still counts for it.
        self.settle_cpu();
        let old = self.task(tid)?.mm;
        let guest = match fresh.take() {
            Some(s) => {
                self.release_mm(tid, old);
                s
            }
            None => {
                let mut mm = self.mms.remove(&old).ok_or(Errno::EFAULT)?;
                mm.aspace.clear(&mut self.frames);
                if let Err(e) = mm.guest.wipe() {
                    log::warn!("cannot reuse the guest of {tid} ({e}); starting a new one");
                    mm.guest.kill();
                    self.new_guest()?
                } else {
                    mm.guest
                }
            }
        };
        // Its stub's CPU time counts from here (`cpuacct.rs`).
        let cpu_seen = Some(guest.cpu_time_ns());
        let id = self.alloc_mm_id();
        self.mms.insert(
            id,
            Mm {
                aspace,
                guest,
                loaded: None,
                users: 1,
                exe_deny,
                cpu_seen,
            },
        );
        let t = self.task_mut(tid)?;
        t.mm = id;
        t.regs = Regs::new_user(entry, rsp);
        // A new program starts with a clean FPU (and nothing of the old one).
        t.fp = Some(crate::platform::FpRegs::initial());
        t.altstack = Default::default();
        t.clear_child_tid = 0;
        t.robust_list = 0;
        t.exe = main.file.path.clone();
        t.exe_node = Some(main.file.node);
        // Linux names the task after the path execve was given (a
        // script's own name, not its interpreter's).
        t.comm = execfn
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or(b"")
            .iter()
            .take(15)
            .copied()
            .collect();
        t.cmdline = argv
            .iter()
            .flat_map(|a| a.iter().copied().chain(std::iter::once(0)))
            .collect();
        // Caught signals go back to SIG_DFL, in a private table.
        let handlers = t.sighand.borrow().clone();
        t.sighand = Rc::new(std::cell::RefCell::new(handlers));
        t.sighand.borrow_mut().reset_for_exec();
        // A private table; it keeps the lock owner unless it was shared
        // (POSIX locks survive exec).
        let files = if Rc::strong_count(&t.files) > 1 {
            t.files.borrow().forked()
        } else {
            t.files.borrow().clone()
        };
        t.files = Rc::new(std::cell::RefCell::new(files));
        let owner = t.files.borrow().owner;
        let closed = t.files.borrow_mut().close_on_exec();
        for e in closed {
            self.close_entry(owner, e.file);
        }
        self.wake_vfork_parent(tid);
        Ok(())
    }
}
