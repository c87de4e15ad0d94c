/* Guest test: POSIX per-process timers through the raw syscalls
 * (timer_create/settime/gettime/getoverrun/delete): argument checks, the
 * default sigevent (SIGALRM, si_value = the timer's id), SI_TIMER siginfo
 * with si_timerid and si_overrun (also through signalfd), relative and
 * absolute (TIMER_ABSTIME) expiries on CLOCK_MONOTONIC and CLOCK_REALTIME,
 * periodic timers whose missed expiries while the signal is blocked come
 * back as the overrun count, SIGEV_NONE (no signal, timer_gettime still
 * counts down), SIGEV_THREAD_ID to one thread, the CPU-time clocks (a
 * sleeping process's does not run), no timers in a fork child and none
 * after exec. Every wait gives up after 10 s; never prints a time. */
#include "t_common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>

#define NS 1000000000LL
#define MS 1000000LL

static long tcreate(clockid_t c, struct sigevent *ev, int *id) {
    return syscall(SYS_timer_create, c, ev, id);
}
static long tset(int id, int flags, const struct itimerspec *n, struct itimerspec *o) {
    return syscall(SYS_timer_settime, id, flags, n, o);
}
static long tget(int id, struct itimerspec *c) { return syscall(SYS_timer_gettime, id, c); }
static long tover(int id) { return syscall(SYS_timer_getoverrun, id); }
static long tdel(int id) { return syscall(SYS_timer_delete, id); }

static struct itimerspec its(long long value_ns, long long interval_ns) {
    struct itimerspec s = {
        .it_value = {value_ns / NS, value_ns % NS},
        .it_interval = {interval_ns / NS, interval_ns % NS},
    };
    return s;
}
static long long ts_ns(struct timespec t) { return t.tv_sec * NS + t.tv_nsec; }
static long long now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return ts_ns(t);
}
static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * MS};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* Waits up to 10 s for one of `set`'s signals (blocked by the caller). */
static int wait_sig(const sigset_t *set, siginfo_t *si) {
    struct timespec t = {10, 0};
    return sigtimedwait(set, si, &t);
}
static sigset_t only(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

static void check_args(void) {
    int id;
    struct sigevent ev = {0};
    id = -1;
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, &id) == 0 && id == 0, "the process's first timer is number 0");
    CHECK(tdel(id) == 0, "deleted");
    errno = 0;
    CHECK(tcreate(10, NULL, &id) == -1 && errno == EINVAL, "timer_create on clock 10: EINVAL");
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC_RAW, NULL, &id) == -1 && errno == EOPNOTSUPP,
          "timer_create on CLOCK_MONOTONIC_RAW: EOPNOTSUPP");
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC_COARSE, NULL, &id) == -1 && errno == EOPNOTSUPP,
          "timer_create on CLOCK_MONOTONIC_COARSE: EOPNOTSUPP");
    ev.sigev_notify = 99;
    ev.sigev_signo = SIGUSR1;
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "sigev_notify 99: EINVAL");
    /* The kernel takes SIGEV_THREAD (glibc's, done in user space) as
     * SIGEV_SIGNAL. */
    ev.sigev_notify = SIGEV_THREAD;
    id = -1;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "SIGEV_THREAD reaching the kernel: accepted");
    CHECK(tdel(id) == 0, "deleted");
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "signal 0: EINVAL");
    ev.sigev_signo = 65;
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL, "signal 65: EINVAL");
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev._sigev_un._tid = 1 << 30;
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == -1 && errno == EINVAL,
          "SIGEV_THREAD_ID to no such thread: EINVAL");
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, (int *)8) == -1 && errno == EFAULT,
          "timer_create to a bad address: EFAULT");
    struct itimerspec s = its(MS, 0);
    errno = 0;
    CHECK(tset(12345, 0, &s, NULL) == -1 && errno == EINVAL, "timer_settime on no timer: EINVAL");
    errno = 0;
    CHECK(tget(-1, &s) == -1 && errno == EINVAL, "timer_gettime on timer -1: EINVAL");
    errno = 0;
    CHECK(tover(12345) == -1 && errno == EINVAL, "timer_getoverrun on no timer: EINVAL");
    errno = 0;
    CHECK(tdel(12345) == -1 && errno == EINVAL, "timer_delete on no timer: EINVAL");
}

static void check_default_event(void) {
    sigset_t set = only(SIGALRM);
    siginfo_t si;
    int id = -1;
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, &id) == 0, "timer_create with no sigevent");
    CHECK(id > 0, "ids count up: not the freed 0");
    struct itimerspec s = its(20 * MS, 0), cur;
    CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) == 0, "a new timer is disarmed");
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK(tset(id, 0, &s, NULL) == 0, "timer_settime 20 ms relative");
    int r = wait_sig(&set, &si);
    long long took = now_ns(CLOCK_MONOTONIC) - t0;
    CHECK(r == SIGALRM, "the default signal is SIGALRM");
    CHECK(took >= 20 * MS, "not before 20 ms");
    CHECK(si.si_code == SI_TIMER, "si_code is SI_TIMER");
    CHECK(si.si_timerid == id, "si_timerid is the timer");
    CHECK(si.si_overrun == 0, "si_overrun of a one-shot is 0");
    CHECK(si.si_value.sival_int == id, "the default si_value is the timer id");
    CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) == 0 && ts_ns(cur.it_interval) == 0,
          "an expired one-shot reads disarmed");
    CHECK(tover(id) == 0, "timer_getoverrun of a one-shot is 0");
    CHECK(tdel(id) == 0, "timer_delete");
    errno = 0;
    CHECK(tget(id, &cur) == -1 && errno == EINVAL, "a deleted timer is gone");
}

static void check_settime_gettime(void) {
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2};
    ev.sigev_value.sival_ptr = (void *)0x1234567890abcdefULL;
    int id;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create SIGUSR2 with a pointer value");
    struct itimerspec s = its(10 * NS, 2 * NS + 500 * MS), old, cur;
    CHECK(tset(id, 0, &s, &old) == 0 && ts_ns(old.it_value) == 0, "first arming: old value 0");
    CHECK(tget(id, &cur) == 0, "timer_gettime");
    CHECK(ts_ns(cur.it_value) > 9 * NS && ts_ns(cur.it_value) <= 10 * NS, "value left: in (9 s, 10 s]");
    CHECK(ts_ns(cur.it_interval) == 2 * NS + 500 * MS, "interval as set");
    s = its(5 * NS, 0);
    CHECK(tset(id, 0, &s, &old) == 0, "re-arming");
    CHECK(ts_ns(old.it_value) > 9 * NS && ts_ns(old.it_interval) == 2 * NS + 500 * MS,
          "the old value comes back");
    s = its(0, NS);
    CHECK(tset(id, 0, &s, NULL) == 0 && tget(id, &cur) == 0 && ts_ns(cur.it_value) == 0 &&
              ts_ns(cur.it_interval) == 0,
          "value 0 disarms (the interval is dropped)");
    s = its(MS, 0);
    s.it_value.tv_nsec = NS;
    errno = 0;
    CHECK(tset(id, 0, &s, NULL) == -1 && errno == EINVAL, "nsec 1e9: EINVAL");
    s = its(MS, 0);
    s.it_interval.tv_sec = -1;
    errno = 0;
    CHECK(tset(id, 0, &s, NULL) == -1 && errno == EINVAL, "a negative interval: EINVAL");
    errno = 0;
    CHECK(tset(id, 0, NULL, NULL) == -1 && errno == EINVAL, "no new value: EINVAL");
    errno = 0;
    CHECK(tget(id, (struct itimerspec *)8) == -1 && errno == EFAULT, "timer_gettime to a bad address: EFAULT");

    /* The pointer value arrives whole. */
    sigset_t set = only(SIGUSR2);
    siginfo_t si;
    s = its(5 * MS, 0);
    CHECK(tset(id, 0, &s, NULL) == 0 && wait_sig(&set, &si) == SIGUSR2, "SIGUSR2 arrives");
    CHECK(si.si_value.sival_ptr == (void *)0x1234567890abcdefULL, "si_value carries the whole pointer");
    CHECK(si.si_timerid == id, "si_timerid");
    CHECK(tdel(id) == 0, "timer_delete");
}

static void check_absolute(void) {
    sigset_t set = only(SIGUSR1);
    siginfo_t si;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    int id;
    for (int c = 0; c < 2; c++) {
        clockid_t clk = c ? CLOCK_MONOTONIC : CLOCK_REALTIME;
        const char *cn = c ? "CLOCK_MONOTONIC" : "CLOCK_REALTIME";
        CHECK(tcreate(clk, &ev, &id) == 0, "timer_create on %s", cn);
        long long at = now_ns(clk) + 30 * MS;
        struct itimerspec s = its(at, 0), cur;
        CHECK(tset(id, TIMER_ABSTIME, &s, NULL) == 0, "%s: TIMER_ABSTIME now + 30 ms", cn);
        CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 30 * MS,
              "%s: timer_gettime gives the time left, not the absolute time", cn);
        CHECK(wait_sig(&set, &si) == SIGUSR1, "%s: the signal arrives", cn);
        CHECK(now_ns(clk) >= at, "%s: not before the set time", cn);
        s = its(now_ns(clk) - NS, 0);
        long long t0 = now_ns(CLOCK_MONOTONIC);
        CHECK(tset(id, TIMER_ABSTIME, &s, NULL) == 0, "%s: an absolute time in the past", cn);
        CHECK(wait_sig(&set, &si) == SIGUSR1 && now_ns(CLOCK_MONOTONIC) - t0 < 5 * NS,
              "%s: expires at once", cn);
        CHECK(tdel(id) == 0, "%s: timer_delete", cn);
    }
}

static void check_periodic_overrun(void) {
    sigset_t set = only(SIGRTMIN + 1);
    siginfo_t si;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1};
    ev.sigev_value.sival_int = 77;
    int id;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create SIGRTMIN+1");
    struct itimerspec s = its(10 * MS, 10 * MS), cur;
    CHECK(tset(id, 0, &s, NULL) == 0, "periodic 10 ms");
    sleep_ms(125);
    int pending = 0;
    sigset_t p;
    sigpending(&p);
    pending = sigismember(&p, SIGRTMIN + 1);
    CHECK(pending, "the blocked signal is pending");
    CHECK(wait_sig(&set, &si) == SIGRTMIN + 1, "taken");
    CHECK(si.si_value.sival_int == 77 && si.si_timerid == id, "si_value and si_timerid");
    CHECK(si.si_overrun >= 5 && si.si_overrun <= 40, "si_overrun counts the missed periods (5..40)");
    CHECK(tover(id) == si.si_overrun, "timer_getoverrun agrees with si_overrun");
    struct timespec z = {0, 0};
    CHECK(sigtimedwait(&set, &si, &z) == -1 && errno == EAGAIN,
          "a real-time timer signal is queued once, not once per expiry");
    CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 10 * MS,
          "after the signal was taken the timer runs again");
    /* Taken at once: few overruns (at most 10: a loaded host may run us
     * up to 100 ms late; the 125 ms backlog above would show as 12+). */
    CHECK(wait_sig(&set, &si) == SIGRTMIN + 1 && si.si_overrun <= 10, "the next period's signal");
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= wait_sig(&set, &si) == SIGRTMIN + 1 && si.si_overrun <= 10;
    CHECK(ok, "five more periods, taken in time");
    CHECK(tdel(id) == 0, "timer_delete");
}

static void check_sigev_none(void) {
    struct sigevent ev = {.sigev_notify = SIGEV_NONE};
    int id;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create SIGEV_NONE");
    struct itimerspec s = its(20 * MS, 10 * MS), cur;
    CHECK(tset(id, 0, &s, NULL) == 0, "armed 20 ms, then every 10 ms");
    sleep_ms(55);
    sigset_t p;
    sigpending(&p);
    CHECK(!sigismember(&p, SIGALRM), "no signal");
    CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= 10 * MS,
          "timer_gettime counts down within the period");
    CHECK(ts_ns(cur.it_interval) == 10 * MS, "interval");
    s = its(10 * MS, 0);
    CHECK(tset(id, 0, &s, NULL) == 0, "one-shot 10 ms");
    sleep_ms(30);
    CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) == 0, "an expired SIGEV_NONE one-shot reads 0");
    CHECK(tdel(id) == 0, "timer_delete");
}

static volatile pid_t got_tid;
static volatile int got_timerid = -1;
static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    got_tid = syscall(SYS_gettid);
    got_timerid = si->si_timerid;
}
static volatile int thread_tid, thread_stop;
static void *thread_main(void *a) {
    (void)a;
    sigset_t s = only(SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    thread_tid = syscall(SYS_gettid);
    long long end = now_ns(CLOCK_MONOTONIC) + 10 * NS;
    while (!thread_stop && now_ns(CLOCK_MONOTONIC) < end) sleep_ms(2);
    return NULL;
}

static void check_thread_id(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    while (!thread_tid) sleep_ms(1);
    struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1};
    ev._sigev_un._tid = thread_tid;
    int id;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "timer_create SIGEV_THREAD_ID");
    struct itimerspec s = its(10 * MS, 0);
    CHECK(tset(id, 0, &s, NULL) == 0, "armed");
    long long end = now_ns(CLOCK_MONOTONIC) + 10 * NS;
    while (!got_tid && now_ns(CLOCK_MONOTONIC) < end) sleep_ms(1);
    CHECK(got_tid == thread_tid, "the handler ran on the named thread");
    CHECK(got_timerid == id, "si_timerid in the handler");
    thread_stop = 1;
    pthread_join(th, NULL);
    CHECK(tdel(id) == 0, "timer_delete");
    signal(SIGUSR1, SIG_DFL);
}

static void check_signalfd(void) {
    sigset_t set = only(SIGUSR2);
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2};
    ev.sigev_value.sival_int = 5;
    int id;
    CHECK(fd >= 0 && tcreate(CLOCK_MONOTONIC, &ev, &id) == 0, "signalfd and timer");
    struct itimerspec s = its(5 * MS, 5 * MS);
    CHECK(tset(id, 0, &s, NULL) == 0, "periodic 5 ms");
    sleep_ms(40);
    struct signalfd_siginfo ssi;
    CHECK(read(fd, &ssi, sizeof ssi) == sizeof ssi, "read from the signalfd");
    CHECK(ssi.ssi_signo == SIGUSR2 && ssi.ssi_code == SI_TIMER, "ssi_signo, ssi_code SI_TIMER");
    CHECK((int)ssi.ssi_tid == id, "ssi_tid is the timer id");
    CHECK(ssi.ssi_overrun >= 3, "ssi_overrun counts missed periods");
    CHECK(ssi.ssi_int == 5, "ssi_int");
    CHECK(ssi.ssi_pid == 0 && ssi.ssi_uid == 0, "ssi_pid and ssi_uid are 0");
    CHECK(tdel(id) == 0, "timer_delete");
    sigtimedwait(&set, NULL, &(struct timespec){0, 0});
    close(fd);
}

static volatile sig_atomic_t cpu_fired;
static void on_cpu(int sig) {
    (void)sig;
    cpu_fired++;
}

static void check_cpu_clocks(void) {
    signal(SIGVTALRM, on_cpu);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGVTALRM};
    for (int c = 0; c < 2; c++) {
        clockid_t clk = c ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID;
        const char *cn = c ? "CLOCK_THREAD_CPUTIME_ID" : "CLOCK_PROCESS_CPUTIME_ID";
        int id;
        cpu_fired = 0;
        CHECK(tcreate(clk, &ev, &id) == 0, "timer_create on %s", cn);
        struct itimerspec s = its(30 * MS, 0), cur;
        CHECK(tset(id, 0, &s, NULL) == 0, "%s: 30 ms of CPU", cn);
        sleep_ms(100);
        CHECK(!cpu_fired, "%s: sleeping uses no CPU time: no signal", cn);
        CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) > 10 * MS, "%s: most of it still left", cn);
        long long end = now_ns(CLOCK_MONOTONIC) + 10 * NS;
        volatile unsigned long x = 0;
        while (!cpu_fired && now_ns(CLOCK_MONOTONIC) < end)
            for (int i = 0; i < 10000; i++) x++;
        CHECK(cpu_fired == 1, "%s: computing for 30 ms sends it", cn);
        s = its(now_ns(clk) + 20 * MS, 0);
        cpu_fired = 0;
        CHECK(tset(id, TIMER_ABSTIME, &s, NULL) == 0, "%s: absolute CPU time", cn);
        end = now_ns(CLOCK_MONOTONIC) + 10 * NS;
        while (!cpu_fired && now_ns(CLOCK_MONOTONIC) < end)
            for (int i = 0; i < 10000; i++) x++;
        CHECK(cpu_fired == 1, "%s: absolute expiry sends it", cn);
        CHECK(tdel(id) == 0, "%s: timer_delete", cn);
    }
    signal(SIGVTALRM, SIG_DFL);
}

static void check_fork(void) {
    int id;
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, &id) == 0, "timer_create before fork");
    struct itimerspec s = its(10 * NS, 0), cur;
    tset(id, 0, &s, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        int gone = tget(id, &cur) == -1 && errno == EINVAL;
        _exit(gone ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a fork child has no timers");
    CHECK(tget(id, &cur) == 0 && ts_ns(cur.it_value) > 0, "the parent's timer still runs");
    tdel(id);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
        /* Run in a fork child that made a timer first. */
        struct itimerspec cur;
        errno = 0;
        return tget(0, &cur) == -1 && errno == EINVAL ? 0 : 1;
    }
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    check_args();
    check_default_event();
    check_settime_gettime();
    check_absolute();
    check_periodic_overrun();
    check_sigev_none();
    check_thread_id();
    check_signalfd();
    check_cpu_clocks();
    /* The fork child runs the exec with a timer of its own (number 0). */
    pid_t pid = fork();
    if (pid == 0) {
        int id;
        tcreate(CLOCK_MONOTONIC, NULL, &id);
        struct itimerspec s = its(10 * NS, 0);
        tset(id, 0, &s, NULL);
        execl(argv[0], argv[0], "after-exec", (char *)NULL);
        _exit(2);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a timer made before exec is gone after it (%s)", t_status(st));
    check_fork();
    printf("== t_ptimer: %d checks, %d failed\n", t_checks, t_failures);
    return t_failures != 0;
}
