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
