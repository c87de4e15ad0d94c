/* utime, utimes, futimesat and utimensat as Linux answers them: explicit
 * times need the owner or root (EPERM), setting both to now needs the owner,
 * root or write permission (EACCES); tv_usec/tv_nsec out of range EINVAL
 * before the path is looked at (utimes) or after (utimensat); both
 * UTIME_OMIT succeeds without looking at the path; utimensat's flag rules;
 * utime's struct utimbuf. Also O_NOATIME by a non-owner (EPERM) and
 * AT_EMPTY_PATH with AT_FDCWD meaning the cwd (faccessat2, fchownat,
 * utimensat). Raw syscalls, so glibc's choice of call does not matter. */
#include "t_common.h"
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <utime.h>

#ifndef UTIME_NOW
#define UTIME_NOW ((1l << 30) - 1l)
#define UTIME_OMIT ((1l << 30) - 2l)
#endif

static const char *en(long r) { return r == 0 ? "0" : r > 0 ? "positive" : strerrorname_np(errno); }

static long utime_raw(const char *p, const struct utimbuf *u) { return syscall(SYS_utime, p, u); }
static long utimes_raw(const char *p, const struct timeval *tv) { return syscall(SYS_utimes, p, tv); }
static long futimesat_raw(int d, const char *p, const struct timeval *tv) { return syscall(SYS_futimesat, d, p, tv); }
static long utimensat_raw(int d, const char *p, const struct timespec *ts, int fl) {
    return syscall(SYS_utimensat, d, p, ts, fl);
}

static long mtime_of(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_mtime : -1;
}

static long atime_of(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_atime : -1;
}

static void as_root(void) {
    CHECK(close(open("f", O_CREAT | O_WRONLY, 0644)) == 0, "a file");
    struct utimbuf u = {1000, 2000};
    long r = utime_raw("f", &u);
    CHECK(r == 0 && atime_of("f") == 1000 && mtime_of("f") == 2000, "utime(2) with a utimbuf: %s, atime 1000 mtime 2000",
          en(r));
    struct timeval tv[2] = {{3000, 5}, {4000, 999999}};
    r = utimes_raw("f", tv);
    CHECK(r == 0 && atime_of("f") == 3000 && mtime_of("f") == 4000, "utimes: %s", en(r));
    r = futimesat_raw(AT_FDCWD, "f", tv);
    CHECK(r == 0, "futimesat: %s", en(r));
    tv[1].tv_usec = 1000000;
    r = utimes_raw("nonexistent", tv);
    CHECK(r == -1 && errno == EINVAL, "utimes with tv_usec 10^6 (before the lookup): %s", en(r));
    tv[1].tv_usec = -1;
    r = utimes_raw("f", tv);
    CHECK(r == -1 && errno == EINVAL, "utimes with tv_usec -1: %s", en(r));
    tv[1].tv_usec = 0x7fffffffffffffffl;
    r = utimes_raw("f", tv);
    CHECK(r == -1 && errno == EINVAL, "utimes with a huge tv_usec: %s", en(r));

    struct timespec ts[2] = {{5000, 0}, {6000, 0}};
    r = utimensat_raw(AT_FDCWD, "f", ts, 0);
    CHECK(r == 0 && atime_of("f") == 5000 && mtime_of("f") == 6000, "utimensat: %s", en(r));
    ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_sec = 7000;
    r = utimensat_raw(AT_FDCWD, "f", ts, 0);
    CHECK(r == 0 && atime_of("f") == 5000 && mtime_of("f") == 7000, "UTIME_OMIT keeps atime: %s", en(r));
    ts[1].tv_nsec = UTIME_OMIT;
    r = utimensat_raw(AT_FDCWD, "nonexistent", ts, 0x4321);
    CHECK(r == 0, "both UTIME_OMIT: %s, even for a missing path and bad flags", en(r));
    ts[0].tv_nsec = 1000000000;
    ts[1].tv_nsec = 0;
    r = utimensat_raw(AT_FDCWD, "nonexistent", ts, 0);
    CHECK(r == -1 && errno == ENOENT, "utimensat, tv_nsec 10^9, missing path: %s (the lookup first)", en(r));
    r = utimensat_raw(AT_FDCWD, "f", ts, 0);
    CHECK(r == -1 && errno == EINVAL, "utimensat, tv_nsec 10^9: %s", en(r));
    ts[0].tv_nsec = -1;
    r = utimensat_raw(AT_FDCWD, "f", ts, 0);
    CHECK(r == -1 && errno == EINVAL, "utimensat, tv_nsec -1: %s", en(r));
    r = utimensat_raw(AT_FDCWD, "f", NULL, 0x4000);
    CHECK(r == -1 && errno == EINVAL, "utimensat with an unknown flag: %s", en(r));
    int fd = open("f", O_RDONLY);
    r = utimensat_raw(fd, NULL, NULL, AT_SYMLINK_NOFOLLOW);
    CHECK(r == -1 && errno == EINVAL, "utimensat(fd, NULL) with a flag: %s", en(r));
    r = utimensat_raw(fd, NULL, NULL, 0);
    CHECK(r == 0, "utimensat(fd, NULL): %s", en(r));
    close(fd);
    r = utimensat_raw(AT_FDCWD, NULL, NULL, 0);
    CHECK(r == -1 && errno == EFAULT, "utimensat(AT_FDCWD, NULL): %s", en(r));
    fd = open("f", O_PATH);
    r = utimensat_raw(fd, NULL, NULL, 0);
    CHECK(r == -1 && errno == EBADF, "utimensat(O_PATH fd, NULL): %s", en(r));
    r = utimensat_raw(fd, "", NULL, AT_EMPTY_PATH);
    CHECK(r == 0, "utimensat(O_PATH fd, \"\", AT_EMPTY_PATH): %s", en(r));
    close(fd);
    r = utimensat_raw(AT_FDCWD, "", NULL, AT_EMPTY_PATH);
    CHECK(r == 0, "utimensat(AT_FDCWD, \"\", AT_EMPTY_PATH) touches the cwd: %s", en(r));
    r = syscall(SYS_faccessat2, AT_FDCWD, "", W_OK, AT_EMPTY_PATH);
    CHECK(r == 0, "faccessat2(AT_FDCWD, \"\", AT_EMPTY_PATH) checks the cwd: %s", en(r));
    r = syscall(SYS_faccessat2, AT_FDCWD, "", W_OK, 0);
    CHECK(r == -1 && errno == ENOENT, "faccessat2 with \"\" and no AT_EMPTY_PATH: %s", en(r));
    r = syscall(SYS_fchownat, AT_FDCWD, "", 0, 0, AT_EMPTY_PATH);
    CHECK(r == 0, "fchownat(AT_FDCWD, \"\", AT_EMPTY_PATH) chowns the cwd: %s", en(r));
}

/* uid 1000 against files of root's (one writable by all) and its own. */
static void as_user(void) {
    CHECK(close(open("rootw", O_CREAT | O_WRONLY, 0666)) == 0 && chmod("rootw", 0666) == 0, "root's file, mode 666");
    CHECK(close(open("rootr", O_CREAT | O_WRONLY, 0644)) == 0, "root's file, mode 644");
    CHECK(close(open("mine", O_CREAT | O_WRONLY, 0644)) == 0 && chown("mine", 1000, 1000) == 0, "a file of uid 1000");
    pid_t c = fork();
    if (c == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(90);
        long r;
        struct utimbuf u = {1, 1};
        struct timeval tv[2] = {{1, 0}, {1, 0}};
        struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
        struct timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
        r = utime_raw("rootw", NULL);
        CHECK(r == 0, "user: utime(NULL) of root's writable file: %s", en(r));
        r = utimes_raw("rootw", NULL);
        CHECK(r == 0, "user: utimes(NULL) of it: %s", en(r));
        r = utimensat_raw(AT_FDCWD, "rootw", now2, 0);
        CHECK(r == 0, "user: utimensat both UTIME_NOW of it: %s", en(r));
        r = utimensat_raw(AT_FDCWD, "rootw", now_omit, 0);
        CHECK(r == -1 && errno == EPERM, "user: UTIME_NOW and UTIME_OMIT of it: %s", en(r));
        r = utime_raw("rootw", &u);
        CHECK(r == -1 && errno == EPERM, "user: utime with times of it: %s", en(r));
        r = utimes_raw("rootw", tv);
        CHECK(r == -1 && errno == EPERM, "user: utimes with times of it: %s", en(r));
        r = utime_raw("rootr", NULL);
        CHECK(r == -1 && errno == EACCES, "user: utime(NULL) of root's read-only file: %s", en(r));
        r = utimensat_raw(AT_FDCWD, "rootr", NULL, 0);
        CHECK(r == -1 && errno == EACCES, "user: utimensat(NULL) of it: %s", en(r));
        r = utime_raw("rootr", &u);
        CHECK(r == -1 && errno == EPERM, "user: utime with times of it: %s", en(r));
        r = utime_raw("mine", &u);
        CHECK(r == 0 && mtime_of("mine") == 1, "user: utime with times of its own file: %s", en(r));
        r = open("rootw", O_RDONLY | O_NOATIME);
        CHECK(r == -1 && errno == EPERM, "user: O_NOATIME on root's file: %s", en(r));
        r = open("mine", O_RDONLY | O_NOATIME);
        CHECK(r >= 0, "user: O_NOATIME on its own file: %s", en(r < 0 ? r : 0));
        r = open("rootr", O_WRONLY | O_NOATIME);
        CHECK(r == -1 && errno == EACCES, "user: O_NOATIME for writing root's 644 file: %s (permission first)", en(r));
        _exit(0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "the uid 1000 child");
    int fd = open("rootr", O_RDONLY | O_NOATIME);
    CHECK(fd >= 0, "root: O_NOATIME on any file");
    close(fd);
}

int main(void) {
    t_begin("t_utimes");
    /* mkdtemp made the scratch dir 0700: let uid 1000 in. */
    chmod(".", 0777);
    as_root();
    as_user();
    return t_end();
}
