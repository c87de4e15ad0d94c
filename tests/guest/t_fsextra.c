/* Calls a Debian userland makes that were missing: O_PATH|O_NOFOLLOW on a
 * symlink (tar, python's tempfile), the xattr family (on a tmpfs mounted
 * here, so native and guest see the same kind of file system), preadv/
 * pwritev and their v2 forms, copy_file_range, close_range, fadvise64,
 * fallocate. Runs as root (natively too: it mounts a tmpfs). */
#include "t_common.h"
#include <sys/mount.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <linux/close_range.h>
#include <linux/falloc.h>
#include <sys/syscall.h>

static void opath(void) {
    SAY("-- O_PATH on symlinks\n");
    CHECK(symlink("target-file", "lnk") == 0, "symlink");
    int t = open("target-file", O_WRONLY | O_CREAT, 0640);
    close(t);
    errno = 0;
    CHECK(open("lnk", O_RDONLY | O_NOFOLLOW) == -1 && errno == ELOOP, "O_NOFOLLOW without O_PATH: ELOOP");
    int fd = open("lnk", O_PATH | O_NOFOLLOW);
    CHECK(fd >= 0, "O_PATH|O_NOFOLLOW opens the link");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISLNK(st.st_mode), "fstat: a symlink");
    CHECK(fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && S_ISLNK(st.st_mode) && st.st_size == 11,
          "fstatat AT_EMPTY_PATH: the link, size 11");
    char buf[64] = {0};
    CHECK(readlinkat(fd, "", buf, sizeof buf) == 11 && strcmp(buf, "target-file") == 0, "readlinkat(fd, \"\")");
    CHECK(fchownat(fd, "", 0, 0, AT_EMPTY_PATH) == 0, "fchownat AT_EMPTY_PATH on the link");
    errno = 0;
    CHECK(read(fd, buf, 1) == -1 && errno == EBADF, "read on O_PATH: EBADF");
    errno = 0;
    CHECK(fchmod(fd, 0600) == -1 && errno == EBADF, "fchmod on O_PATH: EBADF");
    close(fd);
    /* glibc's fchmodat(AT_SYMLINK_NOFOLLOW) goes through O_PATH. */
    errno = 0;
    CHECK(fchmodat(AT_FDCWD, "lnk", 0600, AT_SYMLINK_NOFOLLOW) == -1 && errno == EOPNOTSUPP,
          "fchmodat NOFOLLOW on a link: EOPNOTSUPP");
    CHECK(fchmodat(AT_FDCWD, "target-file", 0600, AT_SYMLINK_NOFOLLOW) == 0, "fchmodat NOFOLLOW on a file");
    CHECK(stat("target-file", &st) == 0 && (st.st_mode & 07777) == 0600, "mode changed to 0600");
    fd = open("target-file", O_PATH);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode), "O_PATH on a file: fstat a file");
    errno = 0;
    CHECK(readlinkat(fd, "", buf, sizeof buf) == -1 && errno == ENOENT, "readlinkat(\"\") on a non-link: ENOENT");
    close(fd);
    errno = 0;
    CHECK(readlink("lnk", buf, 0) == -1 && errno == EINVAL, "readlink bufsiz 0: EINVAL");
}

static void xattrs(void) {
    SAY("-- xattrs on tmpfs\n");
    int fd = open("mnt/f", O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0, "create a file on the tmpfs");
    char buf[256];
    errno = 0;
    CHECK(getxattr("mnt/f", "user.none", buf, sizeof buf) == -1 && errno == ENODATA, "unset: ENODATA");
    CHECK(setxattr("mnt/f", "user.a", "hello", 5, 0) == 0, "setxattr user.a");
    CHECK(getxattr("mnt/f", "user.a", NULL, 0) == 5, "size query: 5");
    memset(buf, 0, sizeof buf);
    CHECK(getxattr("mnt/f", "user.a", buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "getxattr user.a");
    errno = 0;
    CHECK(getxattr("mnt/f", "user.a", buf, 2) == -1 && errno == ERANGE, "small buffer: ERANGE");
    errno = 0;
    CHECK(setxattr("mnt/f", "user.a", "x", 1, XATTR_CREATE) == -1 && errno == EEXIST, "XATTR_CREATE on a set one: EEXIST");
    errno = 0;
    CHECK(setxattr("mnt/f", "user.b", "x", 1, XATTR_REPLACE) == -1 && errno == ENODATA, "XATTR_REPLACE on an unset one: ENODATA");
    CHECK(fsetxattr(fd, "user.b", "", 0, 0) == 0, "fsetxattr an empty value");
    CHECK(fgetxattr(fd, "user.b", buf, sizeof buf) == 0, "fgetxattr: empty");
    CHECK(setxattr("mnt/f", "trusted.t", "tt", 2, 0) == 0, "trusted.* as root");
    ssize_t n = listxattr("mnt/f", buf, sizeof buf);
    /* Order is the file system's: check membership. */
    int have_a = 0, have_b = 0, have_t = 0, count = 0;
    for (ssize_t i = 0; n > 0 && i < n; i += strlen(buf + i) + 1) {
        count++;
        have_a |= !strcmp(buf + i, "user.a");
        have_b |= !strcmp(buf + i, "user.b");
        have_t |= !strcmp(buf + i, "trusted.t");
    }
    CHECK(n == (ssize_t)(sizeof "user.a" + sizeof "user.b" + sizeof "trusted.t") && count == 3 && have_a && have_b && have_t,
          "listxattr: the three names");
    CHECK(flistxattr(fd, NULL, 0) == n, "flistxattr size query");
    errno = 0;
    CHECK(listxattr("mnt/f", buf, 3) == -1 && errno == ERANGE, "listxattr small buffer: ERANGE");
    CHECK(removexattr("mnt/f", "user.a") == 0, "removexattr");
    errno = 0;
    CHECK(removexattr("mnt/f", "user.a") == -1 && errno == ENODATA, "remove again: ENODATA");
    CHECK(fremovexattr(fd, "user.b") == 0, "fremovexattr");
    errno = 0;
    CHECK(setxattr("mnt/f", "", "x", 1, 0) == -1 && errno == ERANGE, "empty name: ERANGE");
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[299] = 0;
    errno = 0;
    CHECK(setxattr("mnt/f", longname, "x", 1, 0) == -1 && errno == ERANGE, "300-byte name: ERANGE");
    errno = 0;
    CHECK(setxattr("mnt/f", "bogus.x", "x", 1, 0) == -1 && errno == EOPNOTSUPP, "unknown namespace: EOPNOTSUPP");
    static char big[65537];
    errno = 0;
    CHECK(setxattr("mnt/f", "user.big", big, sizeof big, 0) == -1 && errno == E2BIG, "value over 64 KiB: E2BIG");
    errno = 0;
    CHECK(setxattr("mnt/f", "user.a", "x", 1, 4) == -1 && errno == EINVAL, "bad flags: EINVAL");
    CHECK(symlink("f", "mnt/l") == 0, "a link on the tmpfs");
    errno = 0;
    CHECK(lsetxattr("mnt/l", "user.a", "x", 1, 0) == -1 && errno == EPERM, "user.* on a link: EPERM");
    errno = 0;
    CHECK(lgetxattr("mnt/l", "user.a", buf, sizeof buf) == -1 && errno == ENODATA, "user.* read on a link: ENODATA");
    CHECK(setxattr("mnt/l", "user.via", "1", 1, 0) == 0 && getxattr("mnt/f", "user.via", buf, 10) == 1,
          "setxattr follows the link");
    CHECK(mkdir("mnt/d", 0755) == 0 && setxattr("mnt/d", "user.dir", "d", 1, 0) == 0, "user.* on a directory");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    errno = 0;
    CHECK(fgetxattr(p[0], "user.a", buf, sizeof buf) == -1 && errno == ENODATA, "fgetxattr user.* on a pipe: ENODATA");
    errno = 0;
    CHECK(fsetxattr(p[1], "user.a", "x", 1, 0) == -1 && errno == EPERM, "fsetxattr user.* on a pipe: EPERM");
    CHECK(flistxattr(p[0], buf, sizeof buf) == 0, "flistxattr on a pipe: empty");
    close(p[0]);
    close(p[1]);
    int op = open("mnt/f", O_PATH);
    errno = 0;
    CHECK(fgetxattr(op, "user.via", buf, sizeof buf) == -1 && errno == EBADF, "fgetxattr on O_PATH: EBADF");
    close(op);
    errno = 0;
    CHECK(getxattr("/proc/self/status", "user.a", buf, sizeof buf) == -1 && errno == EOPNOTSUPP,
          "getxattr on /proc: EOPNOTSUPP");
    errno = 0;
    CHECK(getxattr("mnt/nope", "user.a", buf, sizeof buf) == -1 && errno == ENOENT, "missing file: ENOENT");
    close(fd);
}

static void vectored(void) {
    SAY("-- preadv/pwritev\n");
    int fd = open("v", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char a[4] = "abcd", b[6] = "efghij";
    struct iovec w[2] = {{a, 4}, {b, 6}};
    CHECK(pwritev(fd, w, 2, 100) == 10, "pwritev 10 bytes at 100");
    CHECK(lseek(fd, 0, SEEK_CUR) == 0, "offset unchanged");
    char x[3], y[20];
    struct iovec r[2] = {{x, 3}, {y, 20}};
    memset(y, 0, sizeof y);
    CHECK(preadv(fd, r, 2, 101) == 9 && memcmp(x, "bcd", 3) == 0 && memcmp(y, "efghij", 6) == 0, "preadv scatters");
    errno = 0;
    CHECK(preadv(fd, r, 2, -5) == -1 && errno == EINVAL, "negative offset: EINVAL");
    CHECK(pwritev2(fd, w, 1, -1, 0) == 4 && lseek(fd, 0, SEEK_CUR) == 4, "pwritev2 at -1: the file offset, moved");
    CHECK(preadv2(fd, r, 1, -1, 0) == 3 && lseek(fd, 0, SEEK_CUR) == 7, "preadv2 at -1 advances");
    CHECK(pwritev2(fd, w, 1, 0, RWF_APPEND) == 4, "pwritev2 RWF_APPEND");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 114, "appended at the end: 114");
    CHECK(pwritev2(fd, w, 1, 0, RWF_DSYNC) == 4, "RWF_DSYNC");
    errno = 0;
    CHECK(preadv2(fd, r, 1, 0, 0x1000) == -1 && errno == EOPNOTSUPP, "unknown RWF flag: EOPNOTSUPP");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    errno = 0;
    CHECK(preadv(p[0], r, 1, 0) == -1 && errno == ESPIPE, "preadv on a pipe: ESPIPE");
    errno = 0;
    CHECK(preadv2(p[0], r, 1, -1, RWF_NOWAIT) == -1 && errno == EAGAIN, "preadv2 NOWAIT on an empty pipe: EAGAIN");
    CHECK(write(p[1], "zz", 2) == 2 && preadv2(p[0], r, 1, -1, 0) == 2, "preadv2 -1 reads a pipe");
    close(p[0]);
    close(p[1]);

    SAY("-- copy_file_range\n");
    int out = open("cfr", O_RDWR | O_CREAT | O_TRUNC, 0644);
    loff_t oi = 100, oo = 0;
    CHECK(copy_file_range(fd, &oi, out, &oo, 10, 0) == 10 && oi == 110 && oo == 10, "copy 10 bytes, offsets advance");
    CHECK(pread(out, y, 10, 0) == 10 && memcmp(y, "abcdefghij", 10) == 0, "copied bytes");
    oi = 1000;
    CHECK(copy_file_range(fd, &oi, out, NULL, 10, 0) == 0, "at EOF: 0");
    errno = 0;
    CHECK(copy_file_range(fd, NULL, out, NULL, 10, 1) == -1 && errno == EINVAL, "flags: EINVAL");
    oi = 0;
    oo = 5;
    errno = 0;
    CHECK(copy_file_range(out, &oi, out, &oo, 10, 0) == -1 && errno == EINVAL, "overlap in one file: EINVAL");
    close(out);
    close(fd);
}

static void misc(void) {
    SAY("-- close_range\n");
    int base = open("/dev/null", O_RDONLY);
    for (int i = 0; i < 4; i++) dup2(base, base + 1 + i);
    CHECK(close_range(base + 1, base + 2, 0) == 0, "close_range two fds");
    CHECK(fcntl(base + 1, F_GETFD) == -1 && fcntl(base + 2, F_GETFD) == -1 && fcntl(base + 3, F_GETFD) == 0,
          "those two closed, the next open");
    CHECK(close_range(base + 3, base + 4, CLOSE_RANGE_CLOEXEC) == 0, "CLOSE_RANGE_CLOEXEC");
    CHECK(fcntl(base + 3, F_GETFD) == FD_CLOEXEC && fcntl(base + 4, F_GETFD) == FD_CLOEXEC, "marked close-on-exec");
    errno = 0;
    CHECK(close_range(5, 4, 0) == -1 && errno == EINVAL, "first > last: EINVAL");
    errno = 0;
    CHECK(close_range(base + 3, ~0U, 0x80) == -1 && errno == EINVAL, "unknown flag: EINVAL");
    CHECK(close_range(base + 3, ~0U, CLOSE_RANGE_UNSHARE) == 0, "close_range to the end, unshared");
    CHECK(fcntl(base + 3, F_GETFD) == -1 && fcntl(base, F_GETFD) == 0, "closed to the end, below kept");
    close(base);

    SAY("-- fadvise64\n");
    int fd = open("v", O_RDONLY);
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0, "POSIX_FADV_SEQUENTIAL");
    CHECK(posix_fadvise(fd, 0, 0, 99) == EINVAL, "unknown advice: EINVAL");
    CHECK(posix_fadvise(99, 0, 0, 0) == EBADF, "bad fd: EBADF");
    int p[2];
    CHECK(pipe(p) == 0 && posix_fadvise(p[0], 0, 0, 0) == ESPIPE, "on a pipe: ESPIPE");
    close(p[0]);
    close(p[1]);
    close(fd);

    SAY("-- fallocate on tmpfs\n");
    fd = open("mnt/fa", O_RDWR | O_CREAT, 0644);
    struct stat st;
    CHECK(fallocate(fd, 0, 0, 10000) == 0 && fstat(fd, &st) == 0 && st.st_size == 10000, "mode 0 grows to 10000");
    CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 20000) == 0 && fstat(fd, &st) == 0 && st.st_size == 10000,
          "KEEP_SIZE keeps the size");
    CHECK(pwrite(fd, "xxxxxxxxxx", 10, 100) == 10, "write some bytes");
    CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 102, 4) == 0, "punch 4 bytes");
    char b[10];
    CHECK(pread(fd, b, 10, 100) == 10 && memcmp(b, "xx\0\0\0\0xxxx", 10) == 0, "the hole reads zeros");
    errno = 0;
    CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10) == -1 && errno == EOPNOTSUPP, "PUNCH_HOLE without KEEP_SIZE: EOPNOTSUPP");
    errno = 0;
    CHECK(fallocate(fd, 0, -1, 10) == -1 && errno == EINVAL, "negative offset: EINVAL");
    errno = 0;
    CHECK(fallocate(fd, 0, 0, 0) == -1 && errno == EINVAL, "zero length: EINVAL");
    close(fd);
    fd = open("mnt/fa", O_RDONLY);
    errno = 0;
    CHECK(fallocate(fd, 0, 0, 10) == -1 && errno == EBADF, "read-only fd: EBADF");
    close(fd);
    CHECK(posix_fallocate(open("mnt/pf", O_RDWR | O_CREAT, 0644), 0, 5000) == 0, "posix_fallocate");
    CHECK(stat("mnt/pf", &st) == 0 && st.st_size == 5000, "posix_fallocate grew the file");
}

int main(void) {
    t_begin("t_fsextra");
    /* As init in the guest nothing has mounted /proc yet (glibc's
     * fchmodat NOFOLLOW goes through /proc/self/fd). */
    if (access("/proc/self", F_OK) != 0 && mount("proc", "/proc", "proc", 0, NULL) != 0)
        SAY("cannot mount /proc\n");
    /* O_CREAT with a trailing slash is EISDIR (shutil.copyfile to
     * "missing/"), after a missing parent's ENOENT. */
    int ts = open("nodir/", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(ts == -1 && errno == EISDIR && access("nodir", F_OK) != 0, "O_CREAT of \"nodir/\": EISDIR");
    ts = open("gone/x/", O_WRONLY | O_CREAT, 0644);
    CHECK(ts == -1 && errno == ENOENT, "O_CREAT of \"gone/x/\": ENOENT");
    opath();
    CHECK(mkdir("mnt", 0755) == 0 && mount("tmpfs", "mnt", "tmpfs", 0, "size=4m") == 0, "mount a tmpfs");
    xattrs();
    vectored();
    misc();
    SAY("-- rmdir after unlinking an open file (tmpfs)\n");
    CHECK(mkdir("mnt/od", 0755) == 0, "mkdir");
    int ofd = open("mnt/od/f", O_RDWR | O_CREAT, 0644);
    CHECK(ofd >= 0 && write(ofd, "abc", 3) == 3, "a file, open");
    CHECK(unlink("mnt/od/f") == 0, "unlinked while open");
    CHECK(rmdir("mnt/od") == 0, "its directory removed");
    char ob[4] = {0};
    CHECK(pread(ofd, ob, 3, 0) == 3 && memcmp(ob, "abc", 3) == 0, "the open file still reads");
    close(ofd);
    SAY("-- sysfs\n");
    CHECK(mkdir("sys", 0755) == 0 && mount("sysfs", "sys", "sysfs", 0, NULL) == 0, "mount -t sysfs");
    struct stat sst;
    CHECK(stat("sys/kernel", &sst) == 0 && S_ISDIR(sst.st_mode), "sys/kernel is a directory");
    CHECK(stat("sys/class", &sst) == 0 && S_ISDIR(sst.st_mode), "sys/class is a directory");
    CHECK(stat("sys/fs/cgroup", &sst) == 0 && S_ISDIR(sst.st_mode), "sys/fs/cgroup is a directory");
    CHECK(stat("sys/block", &sst) == 0 && S_ISDIR(sst.st_mode), "sys/block is a directory");
    CHECK(stat("sys/devices/system/cpu/cpu0", &sst) == 0 && S_ISDIR(sst.st_mode), "cpu0 is a directory");
    char online[32] = {0};
    int ofd2 = open("sys/devices/system/cpu/online", O_RDONLY);
    CHECK(ofd2 >= 0 && read(ofd2, online, sizeof online - 1) > 0 && online[0] == '0', "cpu/online starts with cpu 0");
    close(ofd2);
    CHECK(umount("sys") == 0, "umount sysfs");
    char fsl[4096] = {0};
    int pf = open("/proc/filesystems", O_RDONLY);
    ssize_t fl = 0, r1;
    while (pf >= 0 && (r1 = read(pf, fsl + fl, sizeof fsl - 1 - fl)) > 0) fl += r1;
    close(pf);
    CHECK(strstr(fsl, "nodev\tsysfs\n") && strstr(fsl, "nodev\tdevpts\n"), "/proc/filesystems lists sysfs and devpts");
    /* fds of the last section may still be open: close before umount. */
    for (int fd = 3; fd < 64; fd++) close(fd);
    CHECK(umount("mnt") == 0, "umount the tmpfs");
    return t_end();
}
