//! File syscalls on the tmpfs root, through the fake platform.

use super::*;

const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const PATH: u64 = DATA + 0x10;
const MISSING: u64 = DATA + 0x20;
const BUF: u64 = DATA + 0x100;

#[test]
fn open_write_seek_read_close_unlink_on_tmpfs() {
    let mut p = Program::new();
    let op = p.sys(
        OPEN,
        &[Val::Imm(PATH), Val::Imm(O_RDWR | O_CREAT), Val::Imm(0o644)],
    );
    p.push(Insn::Mov(R::R12, Val::Reg(R::Rax)));
    let wr = p.sys(WRITE, &[Val::Reg(R::R12), Val::Imm(DATA), Val::Imm(11)]);
    let sk = p.sys(LSEEK, &[Val::Reg(R::R12), Val::Imm(6), Val::Imm(0)]);
    let rd = p.sys(READ, &[Val::Reg(R::R12), Val::Imm(BUF), Val::Imm(100)]);
    let eof = p.sys(READ, &[Val::Reg(R::R12), Val::Imm(BUF + 64), Val::Imm(100)]);
    let cl = p.sys(CLOSE, &[Val::Reg(R::R12)]);
    let bad = p.sys(READ, &[Val::Reg(R::R12), Val::Imm(BUF), Val::Imm(1)]);
    let missing = p.sys(OPEN, &[Val::Imm(MISSING), Val::Imm(0)]);
    p.stop();
    let ul = p.sys(UNLINK, &[Val::Imm(PATH)]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    k.write_user(1, DATA, b"hello world").unwrap();
    k.write_user(1, PATH, b"/f\0").unwrap();
    k.write_user(1, MISSING, b"/nope\0").unwrap();
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    let fd = trace.ret(op);
    assert_eq!(fd, 3, "fds 0-2 are the console's");
    assert_eq!(trace.ret(wr), 11);
    assert_eq!(trace.ret(sk), 6);
    assert_eq!(trace.ret(rd), 5);
    assert_eq!(trace.ret(eof), 0);
    assert_eq!(trace.ret(cl), 0);
    assert_eq!(trace.ret(bad), EBADF);
    assert_eq!(trace.ret(missing), ENOENT);
    assert_eq!(k.read_user_vec(1, BUF, 5).unwrap(), b"world");
    assert_eq!(file_bytes(&k, b"/f").as_deref(), Some(&b"hello world"[..]));
    assert_eq!(run(&mut k), Shutdown::InitDied(0));
    assert_eq!(trace.ret(ul), 0);
    assert_eq!(file_bytes(&k, b"/f"), None);
}

/// chroot: absolute paths, `..` and absolute symlinks start at the new
/// root; the cwd stays outside it (getcwd: "(unreachable)/", and a
/// relative path from it still reaches the real tree, as on Linux) until
/// a chdir("/"); a child forked after it has the same root.
#[test]
fn chroot_changes_where_paths_start() {
    const MKDIR: u64 = 83;
    const SYMLINK: u64 = 88;
    const CHROOT: u64 = 161;
    const GETCWD: u64 = 79;
    const CHDIR: u64 = 80;
    const O_CREAT_RDWR: u64 = O_CREAT | O_RDWR;
    // Strings in the data area, at fixed offsets.
    let s = |i: u64| DATA + 0x200 + i * 0x20;
    let strs: [&[u8]; 10] = [
        b"/j\0",
        b"/j/d\0",
        b"/j/d/f\0",
        b"/d/f\0",
        b"/j/abs\0",
        b"/side\0",
        b"/../../d/f\0",
        b"/abs\0",
        b"side\0",
        b"/\0",
    ];
    let mut p = Program::new();
    p.sys(MKDIR, &[Val::Imm(s(0)), Val::Imm(0o755)]);
    p.sys(MKDIR, &[Val::Imm(s(1)), Val::Imm(0o755)]);
    p.sys(
        OPEN,
        &[Val::Imm(s(2)), Val::Imm(O_CREAT_RDWR), Val::Imm(0o644)],
    );
    p.sys(SYMLINK, &[Val::Imm(s(3)), Val::Imm(s(4))]);
    p.sys(
        OPEN,
        &[Val::Imm(s(5)), Val::Imm(O_CREAT_RDWR), Val::Imm(0o644)],
    );
    let ch = p.sys(CHROOT, &[Val::Imm(s(0))]);
    let abs = p.sys(OPEN, &[Val::Imm(s(3)), Val::Imm(0)]);
    let dotdot = p.sys(OPEN, &[Val::Imm(s(6)), Val::Imm(0)]);
    let link = p.sys(OPEN, &[Val::Imm(s(7)), Val::Imm(0)]);
    let side_abs = p.sys(OPEN, &[Val::Imm(s(5)), Val::Imm(0)]);
    let side_rel = p.sys(OPEN, &[Val::Imm(s(8)), Val::Imm(0)]);
    let cwd_out = p.sys(GETCWD, &[Val::Imm(BUF), Val::Imm(64)]);
    let cd = p.sys(CHDIR, &[Val::Imm(s(9))]);
    let cwd_in = p.sys(GETCWD, &[Val::Imm(BUF + 64), Val::Imm(64)]);
    let side_after = p.sys(OPEN, &[Val::Imm(s(8)), Val::Imm(0)]);
    let (_, jz) = p.fork();
    let wait = p.sys(
        WAIT4,
        &[Val::Imm(u64::MAX), Val::Imm(0), Val::Imm(0), Val::Imm(0)],
    );
    p.stop();
    p.exit(0);
    let child_start = p.here();
    p.set_target(jz, child_start);
    let child = p.sys(OPEN, &[Val::Imm(s(3)), Val::Imm(0)]);
    let child_side = p.sys(OPEN, &[Val::Imm(s(5)), Val::Imm(0)]);
    p.exit(0);
    let (mut k, trace) = boot(p);
    for (i, t) in strs.iter().enumerate() {
        k.write_user(1, s(i as u64), t).unwrap();
    }
    assert_eq!(run(&mut k), Shutdown::PowerOff);
    assert_eq!(trace.ret(ch), 0);
    assert!(trace.ret(abs) >= 3, "/d/f is /j/d/f");
    assert!(trace.ret(dotdot) >= 3, "/../../d/f stays in /j");
    assert!(trace.ret(link) >= 3, "the link's /d/f is /j/d/f");
    assert_eq!(trace.ret(side_abs), ENOENT, "/side is /j/side");
    assert!(trace.ret(side_rel) >= 3, "the cwd is still the real /");
    assert_eq!(trace.ret(cwd_out), 15);
    assert_eq!(k.read_user_vec(1, BUF, 15).unwrap(), b"(unreachable)/\0");
    assert_eq!(trace.ret(cd), 0);
    assert_eq!(trace.ret(cwd_in), 2);
    assert_eq!(k.read_user_vec(1, BUF + 64, 2).unwrap(), b"/\0");
    assert_eq!(trace.ret(side_after), ENOENT);
    assert!(trace.ret(wait) > 1);
    assert!(trace.ret(child) >= 3, "the child has the root");
    assert_eq!(trace.ret(child_side), ENOENT);
    let root = k.task(1).unwrap().fs.borrow().root.path();
    assert_eq!(root, b"/j");
}
