/* Hardening: what an unprivileged guest process must not be able to do,
 * and single syscalls that once took the whole instance down.
 * - VM_MAYWRITE: a MAP_SHARED mapping of a file opened O_RDONLY can never
 *   be made writable (mmap, mprotect, mremap, fork, madvise), checked as
 *   uid 1000 against a root-owned file (this program's own binary).
 * - A MAP_SHARED page of a file opened O_RDWR that is read, then written,
 *   is copied up and stays coherent with read() and other mappings (under
 *   ubd=mmap the page first maps the read-only image).
 * - Huge lengths and times: mprotect/mremap/madvise/mincore with
 *   0xfffffffffffff000, tv_sec = INT64_MAX to every sleeping call (cut
 *   short by a timer), setitimer with INT64_MAX.
 * - arch_prctl(ARCH_SET_FS/GS) with a non-canonical base is EPERM. */
#include "t_common.h"
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#define PG 4096L
#define HUGE_LEN 0xfffffffffffff000UL

static const char *self_path;

/* The file written through shared mappings: from the disk image in the
 * guest (its pages are the image's under ubd=mmap), made here natively. */
static const char *pattern_file(void) {
    static char path[128];
    if (access("/etc/hardening.dat", F_OK) == 0) return "/etc/hardening.dat";
    snprintf(path, sizeof path, "%s/hardening.dat", t_dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    char page[PG];
    for (int i = 0; i < 4; i++) {
        memset(page, 'a' + i, sizeof page);
        if (write(fd, page, sizeof page) != PG) return NULL;
    }
    close(fd);
    return path;
}

static int file_byte(const char *path, off_t off) {
    unsigned char c = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || pread(fd, &c, 1, off) != 1) c = 0;
    close(fd);
    return c;
}

/* Everything that could make a read-only shared file mapping writable. */
static void maywrite_checks(const char *who) {
    int before = file_byte(self_path, 0);
    int fd = open(self_path, O_RDONLY);
    CHECK(fd >= 0, "%s: open own binary O_RDONLY", who);
    if (getuid() != 0) {
        errno = 0;
        CHECK(open(self_path, O_RDWR) < 0 && errno == EACCES, "%s: open O_RDWR refused (EACCES)", who);
    }
    errno = 0;
    CHECK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES,
          "%s: mmap shared writable of an O_RDONLY file: EACCES", who);
    char *p = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "%s: mmap shared read-only", who);
    errno = 0;
    CHECK(mprotect(p, PG, PROT_READ | PROT_WRITE) < 0 && errno == EACCES, "%s: mprotect(PROT_WRITE): EACCES", who);
    errno = 0;
    CHECK(mprotect(p, PG, PROT_WRITE) < 0 && errno == EACCES, "%s: mprotect(PROT_WRITE alone): EACCES", who);
    /* The whole mapping (umlrun does not merge VMAs split by a partial
     * mprotect again, and mremap below must see one). */
    CHECK(mprotect(p, 2 * PG, PROT_READ) == 0, "%s: mprotect(PROT_READ) still fine", who);
    /* madvise changes nothing about it. */
    CHECK(madvise(p, PG, MADV_DONTNEED) == 0, "%s: madvise DONTNEED", who);
    errno = 0;
    CHECK(mprotect(p, PG, PROT_READ | PROT_WRITE) < 0 && errno == EACCES, "%s: after madvise: still EACCES", who);
    /* Moved by mremap, it keeps the restriction. */
    char *q = mremap(p, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, p + 64 * PG);
    CHECK(q != MAP_FAILED, "%s: mremap moves it", who);
    if (q == MAP_FAILED) q = p;
    errno = 0;
    CHECK(mprotect(q, 2 * PG, PROT_READ | PROT_WRITE) < 0 && errno == EACCES, "%s: after mremap: EACCES", who);
    /* So does a forked child's copy. */
    pid_t c = fork();
    if (c == 0) {
        errno = 0;
        int r = mprotect(q, PG, PROT_READ | PROT_WRITE);
        _exit(r < 0 && errno == EACCES ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(c), "exited 0"), "%s: in a forked child: EACCES", who);
    /* A private mapping may be written: the file does not change. */
    char *r = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(r != MAP_FAILED && mprotect(r, PG, PROT_READ | PROT_WRITE) == 0, "%s: private mapping made writable", who);
    if (r != MAP_FAILED) r[0] = (char)(r[0] + 1);
    CHECK(file_byte(self_path, 0) == before, "%s: the file is unchanged", who);
    munmap(q, 2 * PG);
    munmap(r, PG);
    close(fd);
}

static void test_maywrite(const char *argv0) {
    self_path = argv0;
    maywrite_checks("root");
    pid_t c = fork();
    if (c == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(2);
        t_failures = 0;
        maywrite_checks("uid 1000");
        _exit(t_failures ? 1 : 0);
    }
    CHECK(!strcmp(t_wait(c), "exited 0"), "uid 1000 child passed");
}

static void test_shared_write_after_read(void) {
    const char *path = pattern_file();
    CHECK(path != NULL, "pattern file");
    if (!path) return;
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0, "open pattern O_RDWR");
    char *w = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *ro = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(w != MAP_FAILED && ro != MAP_FAILED, "two shared mappings");
    char first = w[PG], other = ro[PG];
    CHECK(first == 'b' && other == 'b', "read page 1 through both: '%c' '%c'", first, other);
    w[PG] = 'X'; /* a write after the read: copy-up, not SIGKILL */
    CHECK(w[PG] == 'X', "write after read seen by the writer");
    CHECK(ro[PG] == 'X', "write seen through the other mapping");
    CHECK(file_byte(path, PG) == 'X', "write seen by read()");
    /* A forked child reads the page, the parent writes again. */
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    pid_t c = fork();
    if (c == 0) {
        char dummy;
        if (ro[2 * PG] != 'c') _exit(3);
        if (read(pfd[0], &dummy, 1) != 1) _exit(4);
        _exit(ro[2 * PG] == 'Y' ? 0 : 1);
    }
    usleep(20000);
    w[2 * PG] = 'Y';
    CHECK(write(pfd[1], "x", 1) == 1, "tell the child");
    CHECK(!strcmp(t_wait(c), "exited 0"), "child saw the parent's write");
    /* pwrite to a page mapped elsewhere shows through the mappings. */
    char z = 'Z';
    CHECK(ro[3 * PG] == 'd' && pwrite(fd, &z, 1, 3 * PG) == 1, "pwrite page 3");
    CHECK(ro[3 * PG] == 'Z' && w[3 * PG] == 'Z', "pwrite seen through both mappings");
    /* Restore the pattern (the native file is scratch anyway). */
    w[PG] = 'b';
    w[2 * PG] = 'c';
    w[3 * PG] = 'd';
    CHECK(msync(w, 4 * PG, MS_SYNC) == 0, "msync");
    munmap(w, 4 * PG);
    munmap(ro, 4 * PG);
    close(fd);
}

static void test_huge_lengths(void) {
    char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "anon mapping");
    errno = 0;
    CHECK(mprotect(p, HUGE_LEN, PROT_READ) < 0 && errno == ENOMEM, "mprotect huge length: ENOMEM");
    errno = 0;
    CHECK(mprotect(p, (size_t)-1, PROT_READ) < 0 && errno == ENOMEM, "mprotect length -1: ENOMEM");
    errno = 0;
    CHECK(mremap(p, HUGE_LEN, PG, 0) == MAP_FAILED && errno == EINVAL, "mremap huge old length: EINVAL");
    errno = 0;
    CHECK(mremap(p, PG, HUGE_LEN, 0) == MAP_FAILED, "mremap huge new length fails");
    errno = 0;
    CHECK(mremap(p, PG, HUGE_LEN, MREMAP_MAYMOVE) == MAP_FAILED, "mremap huge new length (maymove) fails");
    errno = 0;
    CHECK(madvise(p, HUGE_LEN, MADV_DONTNEED) < 0 && errno == EINVAL, "madvise huge length: EINVAL");
    unsigned char vec[4];
    errno = 0;
    CHECK(mincore(p, HUGE_LEN, vec) < 0 && errno == ENOMEM, "mincore huge length: ENOMEM");
    errno = 0;
    CHECK(munmap(p, HUGE_LEN) < 0 && errno == EINVAL, "munmap huge length: EINVAL");
    errno = 0;
    CHECK(msync(p, HUGE_LEN, MS_SYNC) < 0 && errno == ENOMEM, "msync huge length: ENOMEM");
    p[0] = 1;
    CHECK(p[0] == 1, "the mapping still works");
    munmap(p, 4 * PG);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int s) {
    (void)s;
    alarms++;
}

/* Arms a one-shot 30 ms timer whose handler interrupts the call. */
static void arm(void) {
    struct itimerval it = {{0, 0}, {0, 30000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void test_huge_times(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: calls end with EINTR */
    sigaction(SIGALRM, &sa, NULL);
    struct timespec forever = {INT64_MAX, 999999999};
    struct timeval tv_forever = {INT64_MAX, 999999};
    int r;

    arm();
    errno = 0;
    r = nanosleep(&forever, NULL);
    CHECK(r < 0 && errno == EINTR, "nanosleep INT64_MAX: EINTR by the timer");
    arm();
    errno = 0;
    r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &forever, NULL);
    CHECK(r < 0 && errno == EINTR, "clock_nanosleep INT64_MAX: EINTR");
    arm();
    errno = 0;
    r = syscall(SYS_clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, &forever, NULL);
    CHECK(r < 0 && errno == EINTR, "clock_nanosleep absolute INT64_MAX: EINTR");
    arm();
    errno = 0;
    r = select(0, NULL, NULL, NULL, &tv_forever);
    CHECK(r < 0 && errno == EINTR, "select INT64_MAX: EINTR");
    arm();
    errno = 0;
    r = syscall(SYS_pselect6, 0, NULL, NULL, NULL, &forever, NULL);
    CHECK(r < 0 && errno == EINTR, "pselect6 INT64_MAX: EINTR");
    arm();
    errno = 0;
    r = syscall(SYS_ppoll, NULL, 0, &forever, NULL, 8);
    CHECK(r < 0 && errno == EINTR, "ppoll INT64_MAX: EINTR");
    static int fword;
    arm();
    errno = 0;
    r = syscall(SYS_futex, &fword, FUTEX_WAIT, 0, &forever, NULL, 0);
    CHECK(r < 0 && errno == EINTR, "futex WAIT INT64_MAX: EINTR");
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    arm();
    errno = 0;
    r = syscall(SYS_rt_sigtimedwait, &usr1, NULL, &forever, 8);
    CHECK(r < 0 && errno == EINTR, "rt_sigtimedwait INT64_MAX: EINTR");
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    struct itimerval big = {{INT64_MAX, 999999}, {INT64_MAX, 999999}}, old;
    CHECK(setitimer(ITIMER_REAL, &big, NULL) == 0, "setitimer INT64_MAX");
    CHECK(getitimer(ITIMER_REAL, &old) == 0 && old.it_value.tv_sec > 1000000, "getitimer: far away");
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0, "setitimer off");
    /* Invalid nanoseconds stay EINVAL. */
    struct timespec bad = {0, INT64_MAX};
    errno = 0;
    CHECK(nanosleep(&bad, NULL) < 0 && errno == EINVAL, "nanosleep tv_nsec INT64_MAX: EINVAL");
    errno = 0;
    CHECK(syscall(SYS_futex, &fword, FUTEX_WAIT, 0, &bad, NULL, 0) < 0 && errno == EINVAL,
          "futex tv_nsec INT64_MAX: EINVAL");
    struct timespec neg = {-1, 0};
    errno = 0;
    CHECK(syscall(SYS_ppoll, NULL, 0, &neg, NULL, 8) < 0 && errno == EINVAL, "ppoll negative: EINVAL");
    CHECK(alarms == 8, "every call was cut short by its timer (%d)", (int)alarms);
    signal(SIGALRM, SIG_DFL);
}

static void test_arch_prctl(void) {
    errno = 0;
    CHECK(syscall(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, 0x8000000000000000UL) < 0 && errno == EPERM,
          "ARCH_SET_FS non-canonical: EPERM");
    errno = 0;
    CHECK(syscall(SYS_arch_prctl, 0x1001 /* ARCH_SET_GS */, 0xffff800000000000UL) < 0 && errno == EPERM,
          "ARCH_SET_GS kernel address: EPERM");
    errno = 0;
    CHECK(syscall(SYS_arch_prctl, 0x1002, 0x7ffffffff000UL) < 0 && errno == EPERM,
          "ARCH_SET_FS at TASK_SIZE_MAX: EPERM");
    CHECK(getpid() > 0, "the task lives on");
}

int main(int argc, char **argv) {
    (void)argc;
    t_begin("t_hardening");
    test_maywrite(argv[0]);
    test_shared_write_after_read();
    test_huge_lengths();
    test_huge_times();
    test_arch_prctl();
    return t_end();
}
