/* Guest test: the file syscalls (open..fsync), in a scratch dir under /tmp. */
#include "t_common.h"
#include <dirent.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define MASKFL(f) ((f) & (O_ACCMODE | O_APPEND | O_NONBLOCK))

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* getdents64 on a directory fd: names (minus . and ..) sorted, with d_type. */
static void list_dir(const char *path) {
    char buf[4096], *names[64];
    int n = 0, fd = open(path, O_RDONLY | O_DIRECTORY);
    long r;
    CHECK(fd >= 0, "open dir %s O_DIRECTORY", path);
    while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < r;) {
            struct { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
            if (strcmp(d->name, ".") && strcmp(d->name, "..") && n < 64) {
                char *s;
                const char *t = d->type == DT_REG ? "reg" : d->type == DT_DIR ? "dir" : d->type == DT_LNK ? "lnk"
                              : d->type == DT_FIFO ? "fifo" : d->type == DT_UNKNOWN ? "unknown" : "other";
                if (asprintf(&s, "%s (%s)", d->name, t) > 0) names[n++] = s;
            }
            off += d->reclen;
        }
    }
    CHECK(r == 0, "getdents64 %s to the end", path);
    close(fd);
    qsort(names, n, sizeof *names, cmpstr);
    SAY("ls %s:", path);
    for (int i = 0; i < n; i++) { SAY(" %s", names[i]); free(names[i]); }
    SAY("\n");
}

int main(void) {
    char buf[256];
    struct stat st;
    t_begin("t_fileio");

    /* open/creat/read/write/lseek */
    int fd = open("a", O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0, "open O_CREAT|O_EXCL");
    CHECK(open("a", O_RDWR | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST, "second O_EXCL gives EEXIST");
    CHECK(write(fd, "hello world\n", 12) == 12, "write 12 bytes");
    CHECK(lseek(fd, 0, SEEK_CUR) == 12, "lseek SEEK_CUR after write is 12");
    CHECK(lseek(fd, 6, SEEK_SET) == 6, "lseek SEEK_SET 6");
    memset(buf, 0, sizeof buf);
    CHECK(read(fd, buf, 5) == 5 && !memcmp(buf, "world", 5), "read 5 at 6 gives 'world'");
    CHECK(lseek(fd, -1, SEEK_END) == 11, "lseek SEEK_END -1 is 11");
    CHECK(read(fd, buf, 10) == 1 && buf[0] == '\n', "short read at the end");
    CHECK(read(fd, buf, 10) == 0, "read at EOF gives 0");
    CHECK(lseek(fd, -100, SEEK_SET) < 0 && errno == EINVAL, "lseek to a negative offset gives EINVAL");
    CHECK(lseek(fd, 100, SEEK_SET) == 100 && write(fd, "x", 1) == 1, "write past EOF");
    CHECK(fstat(fd, &st) == 0 && st.st_size == 101, "fstat size 101 after the hole");
    CHECK(pread(fd, buf, 4, 50) == 4 && !memcmp(buf, "\0\0\0\0", 4), "hole reads as zeros");
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5, "pwrite at 0");
    CHECK(lseek(fd, 0, SEEK_CUR) == 101, "pwrite leaves the offset alone");
    CHECK(pread(fd, buf, 12, 0) == 12 && !memcmp(buf, "HELLO world\n", 12), "pread sees the pwrite");
    int c = creat("b", 0600);
    CHECK(c >= 0, "creat");
    CHECK(read(c, buf, 1) < 0 && errno == EBADF, "read on a creat (write-only) fd gives EBADF");
    CHECK(open("nonexistent", O_RDONLY) < 0 && errno == ENOENT, "open missing gives ENOENT");
    CHECK(open("a/x", O_RDONLY) < 0 && errno == ENOTDIR, "open through a file gives ENOTDIR");

    /* readv/writev */
    struct iovec iov[3] = {{"one ", 4}, {"two ", 4}, {"three\n", 6}};
    CHECK(writev(c, iov, 3) == 14, "writev 3 buffers");
    close(c);
    c = open("b", O_RDONLY);
    char r1[5] = {0}, r2[20] = {0};
    struct iovec riov[2] = {{r1, 4}, {r2, sizeof r2 - 1}};
    CHECK(readv(c, riov, 2) == 14 && !strcmp(r1, "one ") && !strcmp(r2, "two three\n"), "readv splits 4 + 10");
    close(c);

    /* dup family and fcntl */
    int d = dup(fd);
    CHECK(d > fd || d >= 0, "dup");
    CHECK(lseek(d, 3, SEEK_SET) == 3 && lseek(fd, 0, SEEK_CUR) == 3, "dup shares the offset");
    CHECK(dup2(fd, 50) == 50, "dup2 to 50");
    CHECK(dup2(50, 50) == 50, "dup2 onto itself");
    CHECK(dup3(fd, 51, O_CLOEXEC) == 51 && fcntl(51, F_GETFD) == FD_CLOEXEC, "dup3 O_CLOEXEC sets FD_CLOEXEC");
    CHECK(dup3(fd, fd, 0) < 0 && errno == EINVAL, "dup3 onto itself gives EINVAL");
    CHECK(fcntl(fd, F_DUPFD, 60) >= 60, "F_DUPFD at least 60");
    CHECK(fcntl(fd, F_DUPFD_CLOEXEC, 0) >= 0, "F_DUPFD_CLOEXEC");
    CHECK(fcntl(fd, F_GETFD) == 0, "F_GETFD of a plain fd is 0");
    CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "F_SETFD FD_CLOEXEC");
    CHECK(fcntl(50, F_GETFD) == 0, "dup2 copy has no FD_CLOEXEC");
    CHECK(MASKFL(fcntl(fd, F_GETFL)) == O_RDWR, "F_GETFL is O_RDWR");
    CHECK(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK) == 0, "F_SETFL O_APPEND|O_NONBLOCK");
    CHECK(MASKFL(fcntl(d, F_GETFL)) == (O_RDWR | O_APPEND | O_NONBLOCK), "status flags shared with the dup");
    CHECK(write(fd, "Z", 1) == 1 && fstat(fd, &st) == 0 && st.st_size == 102, "O_APPEND write goes to the end");
    CHECK(close(50) == 0 && close(50) < 0 && errno == EBADF, "double close gives EBADF");
    CHECK(fcntl(999, F_GETFD) < 0 && errno == EBADF, "fcntl on a bad fd gives EBADF");
    close(51);
    close(d);

    /* stat family */
    CHECK(stat("a", &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644, "stat: regular, mode 0644");
    CHECK(st.st_nlink == 1, "stat: one link");
    struct stat st2;
    CHECK(fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev, "fstat matches stat");
    CHECK(fstatat(AT_FDCWD, "a", &st2, 0) == 0 && st2.st_ino == st.st_ino, "newfstatat AT_FDCWD");
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(fstatat(dfd, "a", &st2, AT_SYMLINK_NOFOLLOW) == 0 && st2.st_ino == st.st_ino, "newfstatat relative to a dir fd");
    CHECK(fstatat(fd, "", &st2, AT_EMPTY_PATH) == 0 && st2.st_ino == st.st_ino, "newfstatat AT_EMPTY_PATH");
    struct statx sx;
    CHECK(statx(dfd, "a", 0, STATX_BASIC_STATS, &sx) == 0 && sx.stx_size == 102 && S_ISREG(sx.stx_mode) && sx.stx_ino == st.st_ino,
          "statx size, type and inode");
    CHECK((sx.stx_mask & (STATX_TYPE | STATX_MODE | STATX_SIZE)) == (STATX_TYPE | STATX_MODE | STATX_SIZE), "statx mask");
    CHECK(stat(".", &st2) == 0 && S_ISDIR(st2.st_mode) && st2.st_nlink == 2, "stat dir: nlink 2");

    /* truncate */
    CHECK(ftruncate(fd, 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 5, "ftruncate to 5");
    CHECK(truncate("a", 8192) == 0 && stat("a", &st) == 0 && st.st_size == 8192, "truncate up to 8192");
    CHECK(pread(fd, buf, 8, 5) == 8 && !memcmp(buf, "\0\0\0\0\0\0\0\0", 8), "truncate up reads zeros");
    CHECK(pread(fd, buf, 5, 0) == 5 && !memcmp(buf, "HELLO", 5), "truncate kept the head");
    CHECK(ftruncate(fd, -1) < 0 && errno == EINVAL, "ftruncate -1 gives EINVAL");

    /* names: link, rename, symlink, readlink, unlink, mkdir, rmdir */
    CHECK(link("a", "a.link") == 0 && stat("a", &st) == 0 && st.st_nlink == 2, "link: nlink 2");
    CHECK(link("a", "b") < 0 && errno == EEXIST, "link onto an existing name gives EEXIST");
    CHECK(rename("a.link", "c") == 0 && access("a.link", F_OK) < 0 && errno == ENOENT, "rename moves the name");
    CHECK(stat("c", &st2) == 0 && st2.st_ino == st.st_ino, "renamed name is the same inode");
    CHECK(rename("c", "b") == 0 && stat("b", &st2) == 0 && st2.st_ino == st.st_ino, "rename replaces a file");
    CHECK(symlink("a", "sym") == 0, "symlink");
    CHECK(symlink("a", "sym") < 0 && errno == EEXIST, "symlink onto an existing name gives EEXIST");
    ssize_t n = readlink("sym", buf, sizeof buf);
    CHECK(n == 1 && buf[0] == 'a', "readlink gives 'a'");
    CHECK(readlink("a", buf, sizeof buf) < 0 && errno == EINVAL, "readlink of a file gives EINVAL");
    CHECK(lstat("sym", &st2) == 0 && S_ISLNK(st2.st_mode) && st2.st_size == 1, "lstat sees the link, size 1");
    CHECK(stat("sym", &st2) == 0 && st2.st_ino == st.st_ino, "stat follows the link");
    CHECK(symlink("missing", "dangling") == 0 && stat("dangling", &st2) < 0 && errno == ENOENT, "dangling link gives ENOENT");
    CHECK(mkdir("d", 0755) == 0 && mkdir("d", 0755) < 0 && errno == EEXIST, "mkdir, again gives EEXIST");
    CHECK(mkdir("d/e", 0700) == 0 && stat("d", &st2) == 0 && st2.st_nlink == 3, "subdir makes nlink 3");
    int f = open("d/e/f", O_CREAT | O_WRONLY, 0600);
    CHECK(f >= 0 && close(f) == 0, "create d/e/f");
    CHECK(rmdir("d/e") < 0 && errno == ENOTEMPTY, "rmdir non-empty gives ENOTEMPTY");
    CHECK(unlink("d/e") < 0 && errno == EISDIR, "unlink a dir gives EISDIR");
    CHECK(rmdir("a") < 0 && errno == ENOTDIR, "rmdir a file gives ENOTDIR");
    CHECK(unlinkat(AT_FDCWD, "d/e/f", 0) == 0, "unlinkat file");
    CHECK(unlinkat(dfd, "d/e", AT_REMOVEDIR) == 0 && stat("d", &st2) == 0 && st2.st_nlink == 2, "unlinkat AT_REMOVEDIR");
    CHECK(rename("d", "d2") == 0 && access("d2", F_OK) == 0, "rename a dir");
    CHECK(renameat2(AT_FDCWD, "b", AT_FDCWD, "a", RENAME_NOREPLACE) < 0 && errno == EEXIST, "renameat2 NOREPLACE gives EEXIST");
    CHECK(unlink("b") == 0 && stat("a", &st) == 0 && st.st_nlink == 1, "unlink drops nlink to 1");
    CHECK(unlink("b") < 0 && errno == ENOENT, "unlink missing gives ENOENT");
    mkfifo("fifo", 0644);
    list_dir(".");

    /* an open unlinked file still works */
    int u = open("tmpfile", O_CREAT | O_RDWR, 0644);
    CHECK(u >= 0 && unlink("tmpfile") == 0 && write(u, "abc", 3) == 3 && pread(u, buf, 3, 0) == 3 && !memcmp(buf, "abc", 3),
          "unlinked file stays usable");
    CHECK(fstat(u, &st2) == 0 && st2.st_nlink == 0, "unlinked file has nlink 0");
    close(u);

    /* permissions, owners, times */
    CHECK(chmod("a", 0600) == 0 && stat("a", &st) == 0 && (st.st_mode & 07777) == 0600, "chmod 0600");
    CHECK(fchmod(fd, 04755) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 04755, "fchmod 04755");
    CHECK(chown("a", 1000, 1001) == 0 && stat("a", &st) == 0 && st.st_uid == 1000 && st.st_gid == 1001, "chown 1000:1001");
    CHECK((st.st_mode & 07777) == 0755, "chown by root clears setuid");
    CHECK(lchown("sym", 7, 8) == 0 && lstat("sym", &st2) == 0 && st2.st_uid == 7 && stat("a", &st) == 0 && st.st_uid == 1000,
          "lchown changes the link only");
    struct timespec ts[2] = {{1000000000, 0}, {1200000000, 0}};
    CHECK(utimensat(AT_FDCWD, "a", ts, 0) == 0 && stat("a", &st) == 0 && st.st_atime == 1000000000 && st.st_mtime == 1200000000,
          "utimensat sets atime and mtime");
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    CHECK(utimensat(AT_FDCWD, "a", omit, 0) == 0 && stat("a", &st) == 0 && st.st_atime == 1000000000 && st.st_mtime > 1600000000,
          "UTIME_OMIT keeps atime, UTIME_NOW moves mtime");
    CHECK(access("a", R_OK | W_OK) == 0, "access R_OK|W_OK as root");
    CHECK(access("a", X_OK) == 0, "access X_OK on an executable");
    CHECK(chmod("a", 0644) == 0 && access("a", X_OK) < 0 && errno == EACCES, "access X_OK without x bits gives EACCES");
    CHECK(faccessat(AT_FDCWD, "missing", F_OK, 0) < 0 && errno == ENOENT, "faccessat missing gives ENOENT");

    /* umask */
    CHECK(umask(077) == 022, "umask returns the old 022");
    f = open("masked", O_CREAT | O_WRONLY, 0666);
    CHECK(f >= 0 && fstat(f, &st) == 0 && (st.st_mode & 0777) == 0600, "umask 077 gives 0600");
    close(f);
    CHECK(mkdir("mdir", 0777) == 0 && stat("mdir", &st) == 0 && (st.st_mode & 0777) == 0700, "umask applies to mkdir");
    umask(022);

    /* cwd */
    char cwd[256];
    CHECK(getcwd(cwd, sizeof cwd) && !strcmp(cwd, t_dir), "getcwd is the scratch dir");
    CHECK(chdir("d2") == 0 && getcwd(cwd, sizeof cwd) && !strcmp(cwd + strlen(t_dir), "/d2"), "chdir d2");
    CHECK(chdir("..") == 0 && getcwd(cwd, sizeof cwd) && !strcmp(cwd, t_dir), "chdir ..");
    CHECK(fchdir(open("mdir", O_RDONLY | O_DIRECTORY)) == 0 && getcwd(cwd, sizeof cwd) && !strcmp(cwd + strlen(t_dir), "/mdir"), "fchdir");
    CHECK(chdir(t_dir) == 0 && chdir("a") < 0 && errno == ENOTDIR, "chdir to a file gives ENOTDIR");
    CHECK(getcwd(cwd, 2) == NULL && errno == ERANGE, "getcwd small buffer gives ERANGE");

    /* statfs, sync */
    struct statfs sf;
    CHECK(statfs(".", &sf) == 0 && sf.f_bsize > 0 && sf.f_blocks > 0 && sf.f_bfree <= sf.f_blocks, "statfs sane");
    CHECK(fstatfs(fd, &sf) == 0 && sf.f_namelen >= 255, "fstatfs namelen >= 255");
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0, "fsync and fdatasync");
    sync();
    CHECK(syncfs(fd) == 0, "syncfs");
    CHECK(close(fd) == 0 && close(dfd) == 0, "close");
    list_dir(".");
    return t_end();
}
