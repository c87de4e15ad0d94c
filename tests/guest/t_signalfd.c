/* Guest test: signalfd/signalfd4: blocked signals read as
 * signalfd_siginfo records (kill, sigqueue with a value, SIGCHLD with the
 * child's status, several at once, lowest number first), the mask (only
 * its signals; changed through the fd; SIGKILL/SIGSTOP dropped), flags,
 * non-blocking EAGAIN, a blocking read woken by a signal from a child,
 * poll and epoll readiness, fork (a child reads its own signals), and the
 * errno of bad calls. Output holds no pids: pids are compared. */
#include "t_common.h"
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>

static short revents(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

int main(void) {
    t_begin("t_signalfd");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    struct signalfd_siginfo si[4];
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigaddset(&m, SIGCHLD);
    sigaddset(&m, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &m, NULL);

    int fd = signalfd(-1, &m, 0);
    CHECK(fd >= 0, "signalfd(-1, {USR1, USR2, CHLD, RTMIN}, 0)");
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "open for reading and writing");
    CHECK(fcntl(fd, F_GETFD) == 0, "no FD_CLOEXEC");
    int nb = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK(nb >= 0 && fcntl(nb, F_GETFD) == FD_CLOEXEC && (fcntl(nb, F_GETFL) & O_NONBLOCK), "SFD_NONBLOCK | SFD_CLOEXEC");
    CHECK(read(nb, si, sizeof si) < 0 && errno == EAGAIN, "nothing pending: EAGAIN");
    CHECK(revents(fd) == 0, "poll: not readable");

    /* kill */
    kill(getpid(), SIGUSR1);
    CHECK(revents(fd) == POLLIN, "poll: readable with SIGUSR1 pending");
    sigset_t pend;
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR1), "SIGUSR1 is pending");
    char small[64];
    CHECK(read(fd, small, sizeof small) < 0 && errno == EINVAL, "read of 64 bytes: EINVAL");
    CHECK(read(fd, si, sizeof si) == sizeof si[0], "read: one record");
    CHECK(si[0].ssi_signo == SIGUSR1 && si[0].ssi_code == SI_USER, "SIGUSR1, SI_USER");
    CHECK(si[0].ssi_pid == (uint32_t)getpid() && si[0].ssi_uid == getuid(), "sender's pid and uid");
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGUSR1), "no longer pending");

    /* sigqueue with a value; several at once, lowest number first */
    union sigval v = {.sival_int = 4242};
    sigqueue(getpid(), SIGRTMIN, v);
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    CHECK(read(fd, si, sizeof si) == 3 * sizeof si[0], "three records in one read");
    CHECK(si[0].ssi_signo == SIGUSR1 && si[1].ssi_signo == SIGUSR2 && (int)si[2].ssi_signo == SIGRTMIN,
          "in order USR1, USR2, RTMIN");
    CHECK(si[2].ssi_code == SI_QUEUE && si[2].ssi_int == 4242, "sigqueue's code and value");

    /* only the mask's signals */
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, NULL);
    kill(getpid(), SIGHUP);
    CHECK(read(nb, si, sizeof si) < 0 && errno == EAGAIN, "SIGHUP is outside the mask");
    sigset_t m2 = m;
    sigaddset(&m2, SIGHUP);
    sigaddset(&m2, SIGKILL);
    CHECK(signalfd(nb, &m2, 0) == nb, "a new mask through the fd");
    CHECK(read(nb, si, sizeof si) == sizeof si[0] && si[0].ssi_signo == SIGHUP, "now SIGHUP reads");

    /* SIGCHLD from a child, blocking read */
    pid_t c = fork();
    if (c == 0) _exit(7);
    CHECK(read(fd, si, sizeof si) == sizeof si[0], "blocking read for SIGCHLD");
    CHECK(si[0].ssi_signo == SIGCHLD && si[0].ssi_code == CLD_EXITED && si[0].ssi_status == 7 &&
              si[0].ssi_pid == (uint32_t)c,
          "SIGCHLD: CLD_EXITED, status 7, the child's pid");
    int st;
    waitpid(c, &st, 0);

    /* a child signals the parent while it sleeps in read */
    pid_t parent = getpid();
    c = fork();
    if (c == 0) {
        struct timespec ts = {0, 30000000};
        nanosleep(&ts, NULL);
        kill(parent, SIGUSR2);
        _exit(0);
    }
    CHECK(read(fd, si, sizeof si[0]) == sizeof si[0] && si[0].ssi_signo == SIGUSR2, "a blocking read woken by another process's kill");
    CHECK(read(fd, si, sizeof si[0]) == sizeof si[0] && si[0].ssi_signo == SIGCHLD, "then its SIGCHLD");
    waitpid(c, &st, 0);

    /* epoll */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 5}, got;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD");
    CHECK(epoll_wait(ep, &got, 1, 0) == 0, "epoll: nothing yet");
    c = fork();
    if (c == 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    CHECK(epoll_wait(ep, &got, 1, 5000) == 1 && got.data.u32 == 5 && got.events == EPOLLIN, "epoll_wait wakes with the signal");
    CHECK(read(fd, si, sizeof si) >= (ssize_t)sizeof si[0] && si[0].ssi_signo == SIGUSR1, "and it reads");
    waitpid(c, &st, 0);
    while (read(nb, si, sizeof si) > 0) {
    }
    CHECK(epoll_wait(ep, &got, 1, 0) == 0, "epoll: nothing once read");
    close(ep);

    /* a forked child reads its own signals, not the parent's */
    kill(getpid(), SIGUSR1);
    c = fork();
    if (c == 0) {
        int ok1 = read(nb, si, sizeof si) < 0 && errno == EAGAIN;
        kill(getpid(), SIGUSR2);
        int ok2 = read(nb, si, sizeof si) == sizeof si[0] && si[0].ssi_signo == SIGUSR2;
        _exit(ok1 && ok2 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child sees only its own pending signals");
    CHECK(read(nb, si, sizeof si) >= (ssize_t)sizeof si[0] && si[0].ssi_signo == SIGUSR1, "the parent's SIGUSR1 is still there");
    while (read(nb, si, sizeof si) > 0) {
    }

    /* bad calls */
    CHECK(syscall(SYS_signalfd4, -1, &m, 4, 0) < 0 && errno == EINVAL, "sizemask 4: EINVAL");
    CHECK(syscall(SYS_signalfd4, -1, &m, 8, 0x10) < 0 && errno == EINVAL, "unknown flags: EINVAL");
    CHECK(syscall(SYS_signalfd4, -1, (void *)8, 8, 0) < 0 && errno == EFAULT, "bad mask address: EFAULT");
    CHECK(signalfd(99, &m, 0) < 0 && errno == EBADF, "a closed fd: EBADF");
    int pfd[2];
    pipe(pfd);
    CHECK(signalfd(pfd[0], &m, 0) < 0 && errno == EINVAL, "a pipe: EINVAL");
    CHECK(write(fd, si, sizeof si[0]) < 0 && errno == EINVAL, "write: EINVAL");
    struct stat sb;
    CHECK(fstat(fd, &sb) == 0 && (sb.st_mode & S_IFMT) == 0 && (sb.st_mode & 0777) == 0600, "fstat: an anonymous inode, mode 0600");
    char link[64] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && strcmp(link, "anon_inode:[signalfd]") == 0, "/proc/self/fd link: %s", link);
    close(fd);
    close(nb);
    return t_end();
}
