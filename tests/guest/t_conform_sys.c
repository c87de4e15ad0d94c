/* Guest test: Linux's answers to small misuses of clocks, memory calls,
 * prctl, rlimits, signals and waits; and the scheduling values a task
 * keeps (nice, priority, policy) with their permission and errno rules. */
#include "t_common.h"
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

static long ts_ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

static void clocks(void) {
    struct timespec ts;
    static const int bad[] = {-1, 8, 9, 10, 12, 100, INT_MIN};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int id = bad[i];
        errno = 0;
        CHECK(syscall(SYS_clock_gettime, id, &ts) < 0 && errno == EINVAL, "clock_gettime(%d): EINVAL", id);
        CHECK(syscall(SYS_clock_getres, id, &ts) < 0 && errno == EINVAL, "clock_getres(%d): EINVAL", id);
        CHECK(clock_gettime(id, &ts) < 0 && errno == EINVAL, "libc clock_gettime(%d): EINVAL", id);
    }
    static const int good[] = {0, 1, 2, 3, 4, 5, 6, 7, 11};
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
        int id = good[i];
        CHECK(syscall(SYS_clock_gettime, id, &ts) == 0 && syscall(SYS_clock_getres, id, &ts) == 0 && ts.tv_sec == 0 && ts.tv_nsec > 0,
              "clock %d: gettime and getres", id);
        CHECK(syscall(SYS_clock_getres, id, NULL) == 0, "clock_getres(%d, NULL)", id);
    }
    struct timespec fine, coarse;
    CHECK(clock_getres(CLOCK_MONOTONIC_COARSE, &coarse) == 0 && clock_getres(CLOCK_MONOTONIC, &fine) == 0 && coarse.tv_nsec >= fine.tv_nsec,
          "COARSE resolution is no finer than the fine clock's");
    /* the coarse clocks never run backwards, mixing the vDSO and the syscall,
     * and never run ahead of their fine clocks */
    int back = 0, ahead = 0;
    for (int i = 0; i < 20000; i++) {
        struct timespec a, b, c, f;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &a);
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC_COARSE, &b);
        clock_gettime(CLOCK_MONOTONIC, &f);
        clock_gettime(CLOCK_MONOTONIC_COARSE, &c);
        back += ts_ns(b) < ts_ns(a) || ts_ns(c) < ts_ns(b);
        ahead += ts_ns(b) > ts_ns(f);
        clock_gettime(CLOCK_REALTIME_COARSE, &a);
        syscall(SYS_clock_gettime, CLOCK_REALTIME_COARSE, &b);
        clock_gettime(CLOCK_REALTIME, &f);
        clock_gettime(CLOCK_REALTIME_COARSE, &c);
        back += ts_ns(b) < ts_ns(a) || ts_ns(c) < ts_ns(b);
        ahead += ts_ns(b) > ts_ns(f);
    }
    CHECK(back == 0, "COARSE clocks never ran backwards (vDSO and syscall mixed)");
    CHECK(ahead == 0, "COARSE clocks never ran ahead of the fine clocks");
    /* a process CPU-time clock id for ourselves (clock_getcpuclockid) */
    clockid_t cid;
    CHECK(clock_getcpuclockid(0, &cid) == 0 && clock_gettime(cid, &ts) == 0, "clock_getcpuclockid(0) clock reads");
}

static void memory(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED && munmap(p + pg, pg) == 0, "a mapping with a hole");
    CHECK(mprotect(p, 3 * pg, PROT_READ) < 0 && errno == ENOMEM, "mprotect over a hole: ENOMEM");
    CHECK(msync(p, 3 * pg, MS_SYNC) < 0 && errno == ENOMEM, "msync over a hole: ENOMEM");
    CHECK(munlock(p, 3 * pg) < 0 && errno == ENOMEM, "munlock over a hole: ENOMEM");
    CHECK(mprotect(p + pg, pg, PROT_READ) < 0 && errno == ENOMEM, "mprotect of the hole alone: ENOMEM");
    CHECK(mprotect(p, pg, PROT_READ) == 0 && msync(p, pg, MS_ASYNC) == 0 && munlock(p, pg) == 0, "the same calls on the mapped page succeed");
    munmap(p, 4 * pg);
    errno = 0;
    CHECK(mmap(NULL, pg, PROT_READ, MAP_PRIVATE, -1, 0) == MAP_FAILED && errno == EBADF, "mmap fd -1 without MAP_ANONYMOUS: EBADF");
    CHECK(mmap(NULL, pg, PROT_READ, MAP_SHARED, 999, 0) == MAP_FAILED && errno == EBADF, "mmap of a closed fd: EBADF");
    int fd = open("mapfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, pg) == 0, "a one-page file");
    CHECK(mmap(NULL, pg, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, fd, 0) == MAP_FAILED && errno == EOPNOTSUPP,
          "MAP_SHARED_VALIDATE with an unknown flag: EOPNOTSUPP");
    void *q = mmap(NULL, pg, PROT_READ, MAP_SHARED_VALIDATE, fd, 0);
    CHECK(q != MAP_FAILED, "MAP_SHARED_VALIDATE with known flags maps");
    if (q != MAP_FAILED) munmap(q, pg);
    CHECK(mmap(NULL, pg, PROT_READ, MAP_SHARED | 0x200000, fd, 0) != MAP_FAILED, "plain MAP_SHARED ignores the unknown flag");
    close(fd);
    unlink("mapfile");
}

static void prctls(void) {
    char name[16];
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0, "PR_GET_NAME with zero unused arguments");
    CHECK(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0) < 0 && errno == EINVAL, "PR_SET_DUMPABLE 2: EINVAL");
    CHECK(prctl(PR_CAPBSET_READ, 1000, 0, 0, 0) < 0 && errno == EINVAL, "PR_CAPBSET_READ of no such capability: EINVAL");
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0) < 0 && errno == EINVAL, "PR_SET_NO_NEW_PRIVS with a non-zero unused argument: EINVAL");
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0) < 0 && errno == EINVAL, "PR_SET_NO_NEW_PRIVS 2: EINVAL");
    CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0, "PR_GET_NO_NEW_PRIVS: 0");
    CHECK(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 && errno == EINVAL, "PR_GET_NO_NEW_PRIVS with a non-zero unused argument: EINVAL");
    pid_t kid = fork();
    if (kid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) _exit(1);
        pid_t gk = fork();
        if (gk == 0) _exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 1);
        _exit(strcmp(t_wait(gk), "exited 0") != 0);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "PR_SET_NO_NEW_PRIVS 1 sticks, and a child inherits it");
    CHECK(prctl(PR_SET_PDEATHSIG, 99, 0, 0, 0) < 0 && errno == EINVAL, "PR_SET_PDEATHSIG with a bad signal: EINVAL");
    int sig = -1;
    CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0 && prctl(PR_GET_PDEATHSIG, &sig) == 0 && sig == SIGUSR1, "PR_SET/GET_PDEATHSIG");
    prctl(PR_SET_PDEATHSIG, 0);
    CHECK(prctl(9999, 0, 0, 0, 0) < 0 && errno == EINVAL, "unknown prctl: EINVAL");
}

static void rlimits(void) {
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    long nr_open = 1048576;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f) {
        if (fscanf(f, "%ld", &nr_open) != 1) nr_open = 1048576;
        fclose(f);
    }
    rl.rlim_cur = nr_open + 1;
    rl.rlim_max = nr_open + 1;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) < 0 && errno == EPERM, "RLIMIT_NOFILE above nr_open: EPERM");
    rl.rlim_cur = old.rlim_cur;
    rl.rlim_max = RLIM_INFINITY;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) < 0 && errno == EPERM, "RLIMIT_NOFILE hard limit infinity: EPERM");
    getrlimit(RLIMIT_NOFILE, &rl);
    CHECK(rl.rlim_cur == old.rlim_cur && rl.rlim_max == old.rlim_max, "the limit did not change");
}

static volatile int got_info;
static void on_info(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    got_info = si != NULL && si->si_signo == SIGUSR2;
}

static void signals(void) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0 && sigaction(SIGUSR2, NULL, &old) == 0, "SA_RESETHAND|SA_SIGINFO handler set");
    CHECK((old.sa_flags & (SA_SIGINFO | SA_RESETHAND)) == (SA_SIGINFO | SA_RESETHAND), "both flags read back");
    raise(SIGUSR2);
    CHECK(got_info, "the handler ran with its siginfo");
    CHECK(sigaction(SIGUSR2, NULL, &old) == 0 && old.sa_handler == SIG_DFL, "the handler was reset to SIG_DFL");
    CHECK((old.sa_flags & (SA_SIGINFO | SA_RESETHAND)) == (SA_SIGINFO | SA_RESETHAND), "after the reset the flags stay (SA_SIGINFO too)");

    pid_t me = getpid();
    CHECK(syscall(SYS_tgkill, me, me, 0) == 0, "tgkill(self, self, 0)");
    CHECK(syscall(SYS_tgkill, me, me, 65) < 0 && errno == EINVAL, "tgkill with signal 65: EINVAL");
    CHECK(syscall(SYS_tgkill, me, me, -1) < 0 && errno == EINVAL, "tgkill with signal -1: EINVAL");
    CHECK(syscall(SYS_tgkill, 0, me, 0) < 0 && errno == EINVAL, "tgkill with tgid 0: EINVAL");
    CHECK(syscall(SYS_tgkill, me, 0, 0) < 0 && errno == EINVAL, "tgkill with tid 0: EINVAL");
    CHECK(syscall(SYS_tgkill, -1, me, 0) < 0 && errno == EINVAL, "tgkill with tgid -1: EINVAL");
    CHECK(syscall(SYS_tgkill, me, -1, 0) < 0 && errno == EINVAL, "tgkill with tid -1: EINVAL");
    pid_t kid = fork();
    if (kid == 0) _exit(0);
    t_wait(kid);
    CHECK(syscall(SYS_tgkill, me, kid, 0) < 0 && errno == ESRCH, "tgkill of a reaped tid: ESRCH");
    CHECK(syscall(SYS_tkill, kid, 0) < 0 && errno == ESRCH, "tkill of a reaped tid: ESRCH");
    CHECK(syscall(SYS_tkill, 0, 0) < 0 && errno == EINVAL, "tkill of tid 0: EINVAL");

    int st;
    CHECK(waitpid(INT_MIN, &st, WNOHANG) < 0 && errno == ESRCH, "waitpid(INT_MIN): ESRCH");
    CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "waitpid(-1) with no children: ECHILD");
    CHECK(waitpid(0, &st, 0x4000000) < 0 && errno == EINVAL, "waitpid with a bad option: EINVAL");
}

static void scheduling(void) {
    errno = 0;
    CHECK(getpriority(PRIO_PROCESS, 0) == 0 && errno == 0, "nice starts at 0");
    CHECK(nice(5) == 5 && getpriority(PRIO_PROCESS, 0) == 5, "nice(5): 5");
    CHECK(nice(-1) == 4 && getpriority(PRIO_PROCESS, 0) == 4, "nice(-1) as root: 4");
    CHECK(nice(100) == 19 && getpriority(PRIO_PROCESS, 0) == 19, "nice(100) clamps at 19");
    CHECK(setpriority(PRIO_PROCESS, 0, -100) == 0 && getpriority(PRIO_PROCESS, 0) == -20, "setpriority(-100) clamps at -20");
    CHECK(setpriority(PRIO_PROCESS, 0, 0) == 0, "back to 0");
    CHECK(setpriority(99, 0, 0) < 0 && errno == EINVAL, "setpriority bad which: EINVAL");
    errno = 0;
    CHECK(getpriority(99, 0) == -1 && errno == EINVAL, "getpriority bad which: EINVAL");
    CHECK(setpriority(PRIO_PROCESS, 999999, 0) < 0 && errno == ESRCH, "setpriority of no such process: ESRCH");
    errno = 0;
    CHECK(getpriority(PRIO_PROCESS, 999999) == -1 && errno == ESRCH, "getpriority of no such process: ESRCH");

    /* a child: its value is its own, inherited at fork */
    CHECK(setpriority(PRIO_PROCESS, 0, 3) == 0, "nice 3 before fork");
    int p[2], q[2];
    char c;
    CHECK(pipe(p) == 0 && pipe(q) == 0, "pipes");
    pid_t kid = fork();
    if (kid == 0) {
        int inherited = getpriority(PRIO_PROCESS, 0);
        write(q[1], "r", 1);
        read(p[0], &c, 1);
        _exit(inherited == 3 && getpriority(PRIO_PROCESS, 0) == 10 ? 0 : 1);
    }
    read(q[0], &c, 1);
    CHECK(setpriority(PRIO_PROCESS, kid, 10) == 0 && getpriority(PRIO_PROCESS, kid) == 10, "setpriority of the child: 10");
    CHECK(getpriority(PRIO_PROCESS, 0) == 3, "ours stays 3");
    write(p[1], "x", 1);
    CHECK(!strcmp(t_wait(kid), "exited 0"), "the child inherited 3 and saw 10");
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);

    /* unprivileged: may raise, not lower; not touch others' */
    kid = fork();
    if (kid == 0) {
        int ok = 1;
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(2);
        ok &= setpriority(PRIO_PROCESS, 0, 5) == 0;
        ok &= setpriority(PRIO_PROCESS, 0, 4) < 0 && errno == EACCES;
        ok &= nice(-1) == -1 && errno == EPERM;
        ok &= getpriority(PRIO_PROCESS, 0) == 5;
        ok &= setpriority(PRIO_PROCESS, 1, 19) < 0 && errno == EPERM;
        struct sched_param sp = {.sched_priority = 1};
        ok &= sched_setscheduler(0, SCHED_FIFO, &sp) < 0 && errno == EPERM;
        sp.sched_priority = 0;
        ok &= sched_setscheduler(0, SCHED_BATCH, &sp) == 0 && sched_getscheduler(0) == SCHED_BATCH;
        _exit(ok ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "an unprivileged process raises but cannot lower its nice (EACCES, nice EPERM), nor touch others' (EPERM)");
    setpriority(PRIO_PROCESS, 0, 0);

    /* policies */
    struct sched_param sp = {0};
    CHECK(sched_getscheduler(0) == SCHED_OTHER, "policy starts SCHED_OTHER");
    CHECK(sched_setscheduler(0, SCHED_BATCH, &sp) == 0 && sched_getscheduler(0) == SCHED_BATCH, "SCHED_BATCH stored");
    CHECK(sched_setscheduler(0, SCHED_IDLE, &sp) == 0 && sched_getscheduler(0) == SCHED_IDLE, "SCHED_IDLE stored");
    sp.sched_priority = 10;
    CHECK(sched_setscheduler(0, SCHED_FIFO, &sp) == 0 && sched_getscheduler(0) == SCHED_FIFO, "SCHED_FIFO stored (root)");
    CHECK(sched_getparam(0, &sp) == 0 && sp.sched_priority == 10, "its priority 10");
    sp.sched_priority = 20;
    CHECK(sched_setparam(0, &sp) == 0 && sched_getparam(0, &sp) == 0 && sp.sched_priority == 20, "sched_setparam 20");
    sp.sched_priority = 5;
    CHECK(sched_setscheduler(0, SCHED_RR, &sp) == 0 && sched_getscheduler(0) == SCHED_RR, "SCHED_RR stored");
    struct timespec quantum;
    CHECK(sched_rr_get_interval(0, &quantum) == 0 && (quantum.tv_sec > 0 || quantum.tv_nsec > 0), "sched_rr_get_interval is positive");
    sp.sched_priority = 0;
    CHECK(sched_setscheduler(0, SCHED_FIFO, &sp) < 0 && errno == EINVAL, "SCHED_FIFO priority 0: EINVAL");
    sp.sched_priority = 100;
    CHECK(sched_setscheduler(0, SCHED_RR, &sp) < 0 && errno == EINVAL, "SCHED_RR priority 100: EINVAL");
    sp.sched_priority = 1;
    CHECK(sched_setscheduler(0, SCHED_OTHER, &sp) < 0 && errno == EINVAL, "SCHED_OTHER priority 1: EINVAL");
    CHECK(sched_setscheduler(0, 99, &sp) < 0 && errno == EINVAL, "unknown policy: EINVAL");
    CHECK(sched_setscheduler(-1, SCHED_OTHER, &sp) < 0 && errno == EINVAL, "pid -1: EINVAL");
    CHECK(sched_getscheduler(999999) < 0 && errno == ESRCH, "no such process: ESRCH");
    CHECK(sched_get_priority_max(SCHED_FIFO) == 99 && sched_get_priority_min(SCHED_FIFO) == 1, "FIFO priorities 1..99");
    CHECK(sched_get_priority_max(SCHED_OTHER) == 0 && sched_get_priority_min(SCHED_BATCH) == 0, "OTHER/BATCH priority 0");
    CHECK(sched_get_priority_max(99) < 0 && errno == EINVAL, "priority range of an unknown policy: EINVAL");
    sp.sched_priority = 0;
    CHECK(sched_setscheduler(0, SCHED_OTHER, &sp) == 0 && sched_getscheduler(0) == SCHED_OTHER, "back to SCHED_OTHER");
    sp.sched_priority = 3;
    CHECK(sched_setscheduler(0, SCHED_RR, &sp) == 0, "SCHED_RR before fork");
    kid = fork();
    if (kid == 0) _exit(sched_getscheduler(0) == SCHED_RR ? 0 : 1);
    CHECK(!strcmp(t_wait(kid), "exited 0"), "a child inherits the policy");
    sp.sched_priority = 0;
    sched_setscheduler(0, SCHED_OTHER, &sp);
}

int main(void) {
    t_begin("t_conform_sys");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    clocks();
    memory();
    prctls();
    rlimits();
    signals();
    scheduling();
    return t_end();
}
