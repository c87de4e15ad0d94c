/* Guest test: timerfd: create flags and clocks, one-shot and periodic
 * expirations counted by read, TFD_TIMER_ABSTIME on CLOCK_REALTIME and
 * CLOCK_MONOTONIC, gettime/settime old values, disarming, non-blocking
 * EAGAIN, blocking reads woken by the expiry, poll and epoll readiness,
 * the errno of bad calls, and what fstat and /proc/self/fd say. */
#include "t_common.h"
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/timerfd.h>
#include <time.h>

static long long now_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int arm(int fd, int flags, long long value_ns, long long interval_ns, struct itimerspec *old) {
    struct itimerspec its = {
        {interval_ns / 1000000000LL, interval_ns % 1000000000LL},
        {value_ns / 1000000000LL, value_ns % 1000000000LL},
    };
    return timerfd_settime(fd, flags, &its, old);
}

static short revents(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

int main(void) {
    t_begin("t_timerfd");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    uint64_t n = 0;

    /* create */
    int fd = timerfd_create(CLOCK_MONOTONIC, 0);
    CHECK(fd >= 0, "timerfd_create(CLOCK_MONOTONIC, 0)");
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "open for reading and writing");
    CHECK(fcntl(fd, F_GETFD) == 0, "no FD_CLOEXEC");
    int fd2 = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    CHECK(fd2 >= 0 && fcntl(fd2, F_GETFD) == FD_CLOEXEC && (fcntl(fd2, F_GETFL) & O_NONBLOCK), "TFD_CLOEXEC | TFD_NONBLOCK");
    int fd3 = timerfd_create(CLOCK_BOOTTIME, 0);
    CHECK(fd3 >= 0, "CLOCK_BOOTTIME");
    close(fd3);
    CHECK(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0) < 0 && errno == EINVAL, "a CPU clock: EINVAL");
    CHECK(timerfd_create(1234, 0) < 0 && errno == EINVAL, "an unknown clock: EINVAL");
    CHECK(timerfd_create(CLOCK_MONOTONIC, 0x100) < 0 && errno == EINVAL, "unknown flags: EINVAL");

    /* disarmed */
    struct itimerspec cur;
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "new: disarmed");
    CHECK(read(fd2, &n, 8) < 0 && errno == EAGAIN, "non-blocking read of a disarmed timer: EAGAIN");
    CHECK(revents(fd) == 0, "poll: not readable");
    char small[4];
    CHECK(read(fd, small, 4) < 0 && errno == EINVAL, "read of 4 bytes: EINVAL");

    /* one-shot, relative */
    /* t0 before arming: a loaded host may run us late, never the timer early. */
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK(arm(fd, 0, 30000000, 0, NULL) == 0, "arm 30 ms one-shot");
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_sec == 0 &&
              cur.it_value.tv_nsec <= 30000000 && cur.it_interval.tv_nsec == 0,
          "gettime: time left within 30 ms, no interval");
    CHECK(read(fd, &n, 8) == 8 && n == 1, "blocking read returns 1 expiration");
    long long waited = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(waited >= 30000000 && waited < 2000000000LL, "after about 30 ms");
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "expired one-shot: disarmed");
    CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && read(fd, &n, 8) < 0 && errno == EAGAIN, "read again: EAGAIN");
    fcntl(fd, F_SETFL, 0);

    /* periodic: expirations accumulate */
    CHECK(arm(fd, 0, 10000000, 10000000, NULL) == 0, "arm every 10 ms");
    struct timespec ts = {0, 65000000};
    nanosleep(&ts, NULL);
    CHECK(revents(fd) == POLLIN, "poll: readable");
    CHECK(read(fd, &n, 8) == 8 && n >= 5 && n < 200, "read after 65 ms: at least 5 expirations");
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_interval.tv_nsec == 10000000 && cur.it_value.tv_nsec <= 10000000, "gettime: interval 10 ms");
    struct itimerspec old;
    CHECK(arm(fd, 0, 0, 0, &old) == 0 && old.it_interval.tv_nsec == 10000000, "disarm returns the old interval");
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_nsec == 0 && cur.it_interval.tv_nsec == 0, "disarmed");
    CHECK(revents(fd) == 0, "disarming drops the count");

    /* absolute */
    long long rt = now_ns(CLOCK_REALTIME) + 20000000;
    CHECK(arm(fd2, TFD_TIMER_ABSTIME, rt, 0, NULL) == 0, "CLOCK_REALTIME absolute, 20 ms ahead");
    struct pollfd p = {fd2, POLLIN, 0};
    CHECK(poll(&p, 1, 5000) == 1 && p.revents == POLLIN, "poll wakes at the expiry");
    CHECK(now_ns(CLOCK_REALTIME) >= rt, "not before it");
    CHECK(read(fd2, &n, 8) == 8 && n == 1, "one expiration");
    CHECK(arm(fd2, TFD_TIMER_ABSTIME, now_ns(CLOCK_REALTIME) - 1000000000LL, 0, NULL) == 0 && read(fd2, &n, 8) == 8 && n == 1,
          "an absolute time in the past expires at once");
    CHECK(arm(fd2, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, now_ns(CLOCK_REALTIME) + 1000000000LL, 0, NULL) == 0,
          "TFD_TIMER_CANCEL_ON_SET accepted");
    CHECK(arm(fd, TFD_TIMER_ABSTIME, now_ns(CLOCK_MONOTONIC) + 10000000, 0, NULL) == 0 && read(fd, &n, 8) == 8 && n == 1,
          "CLOCK_MONOTONIC absolute");

    /* epoll */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, got;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD");
    CHECK(epoll_wait(ep, &got, 1, 0) == 0, "epoll: nothing yet");
    CHECK(arm(fd, 0, 15000000, 0, NULL) == 0, "arm 15 ms");
    CHECK(epoll_wait(ep, &got, 1, 5000) == 1 && got.data.u32 == 7 && got.events == EPOLLIN, "epoll_wait wakes at the expiry");
    CHECK(read(fd, &n, 8) == 8 && n == 1, "read it");
    CHECK(epoll_wait(ep, &got, 1, 0) == 0, "epoll: nothing after the read");
    close(ep);

    /* bad calls */
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    CHECK(timerfd_settime(fd, 0, &bad, NULL) < 0 && errno == EINVAL, "settime with tv_nsec 1e9: EINVAL");
    struct itimerspec neg = {{0, 0}, {-1, 0}};
    CHECK(timerfd_settime(fd, 0, &neg, NULL) < 0 && errno == EINVAL, "settime with negative seconds: EINVAL");
    struct itimerspec one = {{0, 0}, {1, 0}};
    CHECK(timerfd_settime(fd, 0x10, &one, NULL) < 0 && errno == EINVAL, "settime with unknown flags: EINVAL");
    CHECK(timerfd_settime(fd, 0, NULL, NULL) < 0 && errno == EFAULT, "settime with NULL: EFAULT");
    CHECK(timerfd_settime(fd, 0, (void *)8, NULL) < 0 && errno == EFAULT, "settime with a bad address: EFAULT");
    CHECK(timerfd_settime(99, 0, &one, NULL) < 0 && errno == EBADF, "settime on a closed fd: EBADF");
    int pfd[2];
    pipe(pfd);
    CHECK(timerfd_settime(pfd[0], 0, &one, NULL) < 0 && errno == EINVAL, "settime on a pipe: EINVAL");
    CHECK(timerfd_gettime(pfd[0], &cur) < 0 && errno == EINVAL, "gettime on a pipe: EINVAL");
    CHECK(write(fd, &n, 8) < 0 && errno == EINVAL, "write: EINVAL");

    /* what it looks like */
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0 && (st.st_mode & 0777) == 0600, "fstat: an anonymous inode, mode 0600");
    char link[64] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && strcmp(link, "anon_inode:[timerfd]") == 0, "/proc/self/fd link: %s", link);

    /* fork shares it */
    CHECK(arm(fd, 0, 20000000, 0, NULL) == 0, "arm 20 ms");
    pid_t c = fork();
    if (c == 0) {
        uint64_t m = 0;
        _exit(read(fd, &m, 8) == 8 && m == 1 ? 0 : 1);
    }
    int stv;
    waitpid(c, &stv, 0);
    CHECK(WIFEXITED(stv) && WEXITSTATUS(stv) == 0, "a child reads the shared timer");
    CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && read(fd, &n, 8) < 0 && errno == EAGAIN, "the parent finds it read");
    close(fd);
    close(fd2);
    return t_end();
}
