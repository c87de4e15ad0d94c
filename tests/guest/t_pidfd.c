/* Guest test: pidfd_open, pidfd_send_signal and waitid(P_PIDFD): a
 * pidfd polls readable once its process ends (poll and epoll, waking a
 * sleeper), signals reach the process (with and without a siginfo),
 * waitid through the pidfd reaps it, and bad calls give Linux's errno. */
#include "t_common.h"
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags) {
    return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static short revents(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) < 0) return -1;
    return p.revents;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    t_begin("t_pidfd");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);

    /* a child that waits to be killed */
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    int fd = pidfd_open(c, 0);
    CHECK(fd >= 0, "pidfd_open(child, 0)");
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "always FD_CLOEXEC");
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) == 0, "blocking");
    CHECK(revents(fd) == 0, "poll: a live process is not readable");
    char buf[8];
    CHECK(read(fd, buf, sizeof buf) < 0 && errno == EINVAL, "read: EINVAL");
    CHECK(pidfd_send_signal(fd, 0, NULL, 0) == 0, "signal 0: the process exists");
    CHECK(pidfd_send_signal(fd, SIGTERM, NULL, 0) == 0, "SIGTERM");
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & POLLIN), "poll wakes when it dies");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == 0 && si.si_pid == c && si.si_code == CLD_KILLED && si.si_status == SIGTERM,
          "waitid(P_PIDFD): killed by SIGTERM");
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD, "reaped: ECHILD");
    CHECK(revents(fd) & POLLIN, "still readable once reaped");
    CHECK(pidfd_send_signal(fd, SIGTERM, NULL, 0) < 0 && errno == ESRCH, "signal to a reaped process: ESRCH");
    close(fd);

    /* epoll, a sleeper woken by an exit */
    c = fork();
    if (c == 0) {
        sleep_ms(30);
        _exit(3);
    }
    fd = pidfd_open(c, PIDFD_NONBLOCK);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK), "PIDFD_NONBLOCK");
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED) < 0 && errno == EAGAIN, "waitid on a non-blocking pidfd of a live child: EAGAIN");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 9}, got;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD");
    CHECK(epoll_wait(ep, &got, 1, 5000) == 1 && got.data.u32 == 9 && (got.events & EPOLLIN), "epoll_wait wakes at the exit");
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 3, "exited 3");
    close(ep);
    close(fd);

    /* a siginfo with the signal */
    c = fork();
    if (c == 0) {
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        sigprocmask(SIG_BLOCK, &m, NULL);
        siginfo_t got_si;
        int s = sigwaitinfo(&m, &got_si);
        _exit(s == SIGUSR1 && got_si.si_code == SI_QUEUE && got_si.si_value.sival_int == 77 ? 0 : 1);
    }
    fd = pidfd_open(c, 0);
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 77;
    sleep_ms(20);
    CHECK(pidfd_send_signal(fd, SIGUSR1, &si, 0) == 0, "pidfd_send_signal with a siginfo");
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child got its code and value");
    si.si_code = SI_USER;
    CHECK(pidfd_send_signal(fd, SIGUSR1, &si, 0) < 0 && errno == EPERM, "SI_USER in a siginfo to another process: EPERM");

    /* bad calls */
    CHECK(pidfd_send_signal(fd, SIGUSR1, NULL, 0x100) < 0 && errno == EINVAL, "unknown flags: EINVAL");
    close(fd);
    CHECK(pidfd_open(0, 0) < 0 && errno == EINVAL, "pid 0: EINVAL");
    CHECK(pidfd_open(-1, 0) < 0 && errno == EINVAL, "pid -1: EINVAL");
    CHECK(pidfd_open(getpid(), 1) < 0 && errno == EINVAL, "flags 1: EINVAL");
    CHECK(pidfd_open(c, 0) < 0 && errno == ESRCH, "a reaped pid: ESRCH");
    int pfd[2];
    pipe(pfd);
    CHECK(pidfd_send_signal(pfd[0], 0, NULL, 0) < 0 && errno == EBADF, "a pipe: EBADF");
    CHECK(pidfd_send_signal(99, 0, NULL, 0) < 0 && errno == EBADF, "a closed fd: EBADF");
    CHECK(waitid(P_PIDFD, pfd[0], &si, WEXITED) < 0 && errno == EBADF, "waitid(P_PIDFD) on a pipe: EBADF");
    int me = pidfd_open(getpid(), 0);
    CHECK(me >= 0 && revents(me) == 0, "a pidfd of oneself: not readable");
    struct stat sb;
    CHECK(fstat(me, &sb) == 0, "fstat works");
    char link[64] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", me);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && strcmp(link, "anon_inode:[pidfd]") == 0, "/proc/self/fd link: %s", link);
    /* An open /proc/<pid> directory is a pidfd to pidfd_send_signal (as
     * Python's test_signal uses it); a task directory or a file is not. */
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d", getpid());
    int pd = open(dir, O_RDONLY | O_DIRECTORY);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    struct timespec zero = {0, 0};
    CHECK(pd >= 0 && pidfd_send_signal(pd, SIGUSR2, NULL, 0) == 0 && sigtimedwait(&usr1, NULL, &zero) == SIGUSR2,
          "a /proc/<pid> directory fd: the signal arrives");
    snprintf(dir, sizeof dir, "/proc/%d/task/%d", getpid(), getpid());
    int td = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(td >= 0 && pidfd_send_signal(td, 0, NULL, 0) < 0 && errno == EBADF, "a /proc/<pid>/task/<tid> fd: EBADF");
    int sf = open("/proc/self/status", O_RDONLY);
    CHECK(sf >= 0 && pidfd_send_signal(sf, 0, NULL, 0) < 0 && errno == EBADF, "/proc/self/status: EBADF");
    close(pd);
    close(td);
    close(sf);
    return t_end();
}
