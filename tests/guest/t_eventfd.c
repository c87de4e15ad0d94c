/* Guest test: eventfd/eventfd2: counter and semaphore modes, flags,
 * EAGAIN/EINVAL rules, the 0xfffffffffffffffe ceiling, blocking reads and
 * writes woken by the other side, poll/select readiness, and what fstat,
 * lseek and pread say. */
#include "t_common.h"
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int rd(int fd, uint64_t *v) { return read(fd, v, 8); }
static int wr(int fd, uint64_t v) { return write(fd, &v, 8); }

static short revents(int fd, short ev) {
    struct pollfd p = {fd, ev, 0};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

int main(void) {
    t_begin("t_eventfd");
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    uint64_t v = 0;

    /* counter mode */
    int fd = eventfd(3, 0);
    CHECK(fd >= 0, "eventfd(3, 0)");
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "open for reading and writing");
    CHECK(fcntl(fd, F_GETFD) == 0, "no FD_CLOEXEC");
    CHECK(rd(fd, &v) == 8 && v == 3, "read gives the initial value");
    CHECK(wr(fd, 5) == 8 && wr(fd, 7) == 8, "two writes");
    CHECK(rd(fd, &v) == 8 && v == 12, "read gives their sum and resets");
    char small[4];
    CHECK(read(fd, small, 4) < 0 && errno == EINVAL, "read of 4 bytes: EINVAL");
    CHECK(write(fd, small, 4) < 0 && errno == EINVAL, "write of 4 bytes: EINVAL");
    char big[16] = {0};
    CHECK(wr(fd, 2) == 8 && read(fd, big, sizeof big) == 8, "read of 16 bytes returns 8");
    CHECK(wr(fd, UINT64_MAX) < 0 && errno == EINVAL, "writing 0xffffffffffffffff: EINVAL");
    CHECK(wr(fd, 0) == 8, "writing 0 is allowed");
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && lseek(fd, 5, SEEK_CUR) == 0, "lseek: a no-op that returns 0");
    CHECK(pread(fd, &v, 8, 0) < 0 && errno == ESPIPE, "pread: ESPIPE");
    int n;
    CHECK(ioctl(fd, FIONREAD, &n) < 0 && errno == ENOTTY, "ioctl FIONREAD: ENOTTY");
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ENODEV, "mmap: ENODEV");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0 && (st.st_mode & 0777) == 0600, "fstat: an anonymous inode, mode 0600");
    char link[64] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && !strcmp(link, "anon_inode:[eventfd]"), "/proc/self/fd names it anon_inode:[eventfd]");
    close(fd);

    /* flags */
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(fd >= 0, "eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC)");
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "FD_CLOEXEC set");
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "O_NONBLOCK set");
    CHECK(rd(fd, &v) < 0 && errno == EAGAIN, "empty non-blocking read: EAGAIN");
    CHECK(eventfd(0, 0x10) < 0 && errno == EINVAL, "unknown flag: EINVAL");
    CHECK(syscall(SYS_eventfd, 9) >= 0, "the old eventfd syscall");

    /* the ceiling: the counter holds at most 0xfffffffffffffffe */
    CHECK(wr(fd, UINT64_MAX - 1) == 8, "write 0xfffffffffffffffe");
    CHECK(wr(fd, 1) < 0 && errno == EAGAIN, "one more would overflow: EAGAIN");
    CHECK(wr(fd, 0) == 8, "writing 0 at the ceiling still works");
    short re = revents(fd, POLLIN | POLLOUT);
    CHECK(re == POLLIN, "full: POLLIN only (revents %#x)", re);
    CHECK(rd(fd, &v) == 8 && v == UINT64_MAX - 1, "read it back");
    re = revents(fd, POLLIN | POLLOUT);
    CHECK(re == POLLOUT, "empty: POLLOUT only (revents %#x)", re);
    CHECK(wr(fd, 1) == 8, "write 1");
    re = revents(fd, POLLIN | POLLOUT);
    CHECK(re == (POLLIN | POLLOUT), "1: POLLIN|POLLOUT (revents %#x)", re);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(fd, &r);
    FD_SET(fd, &w);
    struct timeval tv = {0, 0};
    CHECK(select(fd + 1, &r, &w, NULL, &tv) == 2, "select: readable and writable");
    close(fd);

    /* semaphore mode */
    fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(fd >= 0, "EFD_SEMAPHORE");
    CHECK(rd(fd, &v) == 8 && v == 1, "semaphore read gives 1");
    CHECK(rd(fd, &v) == 8 && v == 1, "again 1");
    CHECK(rd(fd, &v) < 0 && errno == EAGAIN, "then EAGAIN");
    CHECK(wr(fd, 3) == 8, "post 3");
    int got = 0;
    while (rd(fd, &v) == 8 && v == 1) got++;
    CHECK(got == 3 && errno == EAGAIN, "three reads of 1");
    close(fd);

    /* a blocking read is woken by a write from another process */
    fd = eventfd(0, 0);
    pid_t c = fork();
    if (c == 0) {
        sleep_ms(50);
        wr(fd, 42);
        _exit(0);
    }
    CHECK(rd(fd, &v) == 8 && v == 42, "blocking read woken by the child's write");
    CHECK(!strcmp(t_wait(c), "exited 0"), "child done");

    /* a blocking write at the ceiling is woken by a read */
    CHECK(wr(fd, UINT64_MAX - 1) == 8, "fill to the ceiling");
    c = fork();
    if (c == 0) {
        uint64_t x;
        sleep_ms(50);
        _exit(rd(fd, &x) == 8 && x == UINT64_MAX - 1 ? 0 : 1);
    }
    CHECK(wr(fd, 5) == 8, "blocking write goes through once the child read");
    CHECK(!strcmp(t_wait(c), "exited 0"), "child read the full count");
    CHECK(rd(fd, &v) == 8 && v == 5, "the blocked write's value is there");

    /* poll sleeps until the other process writes */
    c = fork();
    if (c == 0) {
        sleep_ms(50);
        wr(fd, 1);
        _exit(0);
    }
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 5000) == 1 && p.revents == POLLIN, "poll woken by the write");
    CHECK(rd(fd, &v) == 8 && v == 1, "read it");
    t_wait(c);

    /* shared across fork, one counter */
    c = fork();
    if (c == 0) _exit(wr(fd, 10) == 8 ? 0 : 1);
    t_wait(c);
    CHECK(rd(fd, &v) == 8 && v == 10, "the child's write through the inherited fd");
    close(fd);
    return t_end();
}
