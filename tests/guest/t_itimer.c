/* Guest test: the CPU-time interval timers. ITIMER_VIRTUAL (user CPU
 * time) sends SIGVTALRM and ITIMER_PROF (user + system) SIGPROF while the
 * process computes, intervals reload, getitimer shows the time left and
 * the interval, setitimer returns the old value, a sleeping process's
 * ITIMER_VIRTUAL does not run, a fork child starts without timers, and
 * the default action of both signals ends the process. Every wait for a
 * signal gives up after 10 s of wall time, so a broken kernel fails a
 * check instead of hanging. Never prints a time. */
#include "t_common.h"
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t vt, prof;
static volatile sig_atomic_t vt_code_ok = 1;
static void on_vt(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (sig != SIGVTALRM || si->si_code != SI_KERNEL) vt_code_ok = 0;
    vt++;
}
static void on_prof(int sig) {
    (void)sig;
    prof++;
}

static long long wall_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Compute in user space until *count reaches want or 10 s of wall time
 * pass; with syscalls set, each round also makes a few cheap syscalls.
 * Returns *count. */
static int spin_until(volatile sig_atomic_t *count, int want, int syscalls) {
    long long end = wall_ns() + 10000000000LL;
    volatile unsigned long x = 0;
    while (*count < want && wall_ns() < end) {
        for (int i = 0; i < 20000; i++) x++;
        for (int i = 0; syscalls && i < 20; i++) syscall(SYS_getppid);
    }
    return *count;
}

/* Compute for `ms` milliseconds of wall time. */
static void spin_wall(int ms) {
    long long end = wall_ns() + ms * 1000000LL;
    volatile unsigned long x = 0;
    while (wall_ns() < end)
        for (int i = 0; i < 20000; i++) x++;
}

/* Linux's getitimer may show a CPU timer up to a scheduler tick above what
 * was set (it rounds the clock sample); 10 ms covers any HZ >= 100. */
#define TICK_US 10000

static long long tv_us(struct timeval t) { return t.tv_sec * 1000000LL + t.tv_usec; }

static const struct itimerval off = {{0, 0}, {0, 0}};

/* A child that arms `which` with the default disposition of its signal
 * and computes: it must be killed by that signal. */
static void default_action_kills(int which, int sig, const char *what) {
    pid_t pid = fork();
    if (pid == 0) {
        signal(sig, SIG_DFL);
        struct itimerval it = {{0, 0}, {0, 20000}};
        setitimer(which, &it, NULL);
        volatile sig_atomic_t never = 0;
        spin_until(&never, 1, 0);
        _exit(3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig, "%s: the default action ends the process (%s)", what, t_status(st));
}

int main(void) {
    t_begin("t_itimer");
    struct itimerval cur, old;

    /* nothing armed; bad arguments */
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && tv_us(cur.it_value) == 0 && tv_us(cur.it_interval) == 0, "ITIMER_VIRTUAL starts disarmed");
    CHECK(getitimer(ITIMER_PROF, &cur) == 0 && tv_us(cur.it_value) == 0 && tv_us(cur.it_interval) == 0, "ITIMER_PROF starts disarmed");
    CHECK(getitimer(7, &cur) < 0 && errno == EINVAL, "getitimer of an unknown timer gives EINVAL");
    CHECK(setitimer(7, &off, NULL) < 0 && errno == EINVAL, "setitimer of an unknown timer gives EINVAL");
    struct itimerval bad = {{0, 0}, {0, 1000000}};
    CHECK(setitimer(ITIMER_VIRTUAL, &bad, NULL) < 0 && errno == EINVAL, "tv_usec of 1000000 gives EINVAL");
    bad.it_value.tv_usec = 0;
    bad.it_interval.tv_usec = -1;
    CHECK(setitimer(ITIMER_PROF, &bad, NULL) < 0 && errno == EINVAL, "a negative interval gives EINVAL");

    struct sigaction sa = {0};
    sa.sa_sigaction = on_vt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGVTALRM, &sa, NULL);
    struct sigaction sp = {0};
    sp.sa_handler = on_prof;
    sp.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &sp, NULL);

    /* one-shot ITIMER_VIRTUAL: 50 ms of computing brings SIGVTALRM */
    struct itimerval it = {{0, 0}, {0, 50000}};
    CHECK(setitimer(ITIMER_VIRTUAL, &it, &old) == 0 && tv_us(old.it_value) == 0, "setitimer ITIMER_VIRTUAL 50 ms one-shot");
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && tv_us(cur.it_value) > 0 && tv_us(cur.it_value) <= 50000 + TICK_US && tv_us(cur.it_interval) == 0,
          "getitimer: at most 50 ms (and a tick) left, no interval");
    CHECK(spin_until(&vt, 1, 0) == 1, "computing delivers SIGVTALRM");
    CHECK(vt_code_ok, "SIGVTALRM comes with si_code SI_KERNEL");
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && tv_us(cur.it_value) == 0, "a one-shot timer is disarmed after it fired");
    spin_wall(60);
    CHECK(vt == 1, "a one-shot timer fires once");

    /* the time left goes down as CPU time is used, and only then */
    it.it_value.tv_sec = 5;
    it.it_value.tv_usec = 0;
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    getitimer(ITIMER_VIRTUAL, &cur);
    long long first = tv_us(cur.it_value);
    CHECK(first > 4000000 && first <= 5000000 + TICK_US, "getitimer after arming 5 s: between 4 and 5 s (and a tick) left");
    long long end = wall_ns() + 10000000000LL, left = first;
    while (left >= first && wall_ns() < end) {
        spin_wall(5);
        getitimer(ITIMER_VIRTUAL, &cur);
        left = tv_us(cur.it_value);
    }
    CHECK(left < first && left > 0, "the time left shrinks as the process computes");
    CHECK(setitimer(ITIMER_VIRTUAL, &off, &old) == 0 && tv_us(old.it_value) > 0 && tv_us(old.it_value) <= left,
          "disarming returns the old value");
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && tv_us(cur.it_value) == 0, "a disarmed timer shows 0");

    /* a sleeping process uses no CPU time: its ITIMER_VIRTUAL waits */
    vt = 0;
    it.it_value.tv_sec = 0;
    it.it_value.tv_usec = 50000;
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    struct timespec nap = {0, 300000000};
    nanosleep(&nap, NULL);
    CHECK(vt == 0, "ITIMER_VIRTUAL does not fire while the process sleeps");
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && tv_us(cur.it_value) > 0, "and is still armed after the sleep");
    CHECK(spin_until(&vt, 1, 0) == 1, "it fires once the process computes again");

    /* intervals reload */
    vt = 0;
    struct itimerval rep = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_VIRTUAL, &rep, NULL);
    CHECK(spin_until(&vt, 3, 0) >= 3, "a 20 ms ITIMER_VIRTUAL interval fires 3 times");
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && tv_us(cur.it_interval) == 20000 && tv_us(cur.it_value) > 0 && tv_us(cur.it_value) <= 20000 + TICK_US,
          "getitimer of a periodic timer: its interval, at most one interval (and a tick) left");
    CHECK(setitimer(ITIMER_VIRTUAL, &off, &old) == 0 && tv_us(old.it_interval) == 20000, "disarming returns the old interval");

    /* ITIMER_PROF: user time, and user + system time */
    CHECK(setitimer(ITIMER_PROF, &rep, NULL) == 0, "setitimer ITIMER_PROF 20 ms periodic");
    CHECK(spin_until(&prof, 3, 0) >= 3, "computing delivers SIGPROF 3 times");
    prof = 0;
    CHECK(spin_until(&prof, 2, 1) >= 2, "computing with syscalls delivers SIGPROF too");
    CHECK(setitimer(ITIMER_PROF, &off, &old) == 0 && tv_us(old.it_interval) == 20000, "ITIMER_PROF disarmed");
    int seen = prof;
    spin_wall(60);
    CHECK(prof == seen, "no SIGPROF after disarming");

    /* both at once, with ITIMER_REAL left alone */
    vt = prof = 0;
    struct itimerval real = {{0, 0}, {100, 0}};
    setitimer(ITIMER_REAL, &real, NULL);
    setitimer(ITIMER_VIRTUAL, &rep, NULL);
    setitimer(ITIMER_PROF, &rep, NULL);
    spin_until(&vt, 2, 0);
    CHECK(spin_until(&prof, 2, 0) >= 2 && vt >= 2, "ITIMER_VIRTUAL and ITIMER_PROF run side by side");
    CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec >= 90, "ITIMER_REAL is separate");
    setitimer(ITIMER_VIRTUAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
    setitimer(ITIMER_REAL, &off, NULL);

    /* a fork child starts without CPU timers */
    it.it_value.tv_sec = 100;
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        getitimer(ITIMER_VIRTUAL, &cur);
        _exit(tv_us(cur.it_value) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a fork child does not inherit ITIMER_VIRTUAL");
    CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && cur.it_value.tv_sec >= 90, "the parent keeps its timer");
    setitimer(ITIMER_VIRTUAL, &off, NULL);

    default_action_kills(ITIMER_VIRTUAL, SIGVTALRM, "SIGVTALRM");
    default_action_kills(ITIMER_PROF, SIGPROF, "SIGPROF");
    return t_end();
}
