/* Guest test: clocks and timers: clock_gettime, nanosleep and
 * clock_nanosleep (sleep at least what was asked), gettimeofday, time,
 * times, alarm and setitimer/getitimer delivering SIGALRM. Checks facts,
 * never prints a time. */
#include "t_common.h"
#include <sys/syscall.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static long long ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Burn cpu_ms of this process's CPU time (capped at 10 s of wall time, so a
 * broken CPU clock fails the check instead of hanging). */
static void burn(long long cpu_ms) {
    long long cpu_end = ns(CLOCK_PROCESS_CPUTIME_ID) + cpu_ms * 1000000, wall_end = ns(CLOCK_MONOTONIC) + 10000000000LL;
    volatile unsigned long x = 0;
    while (ns(CLOCK_PROCESS_CPUTIME_ID) < cpu_end && ns(CLOCK_MONOTONIC) < wall_end)
        for (int i = 0; i < 10000; i++) x++;
}

int main(void) {
    t_begin("t_time");
    struct timespec t;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t) == 0 && t.tv_nsec >= 0 && t.tv_nsec < 1000000000, "clock_gettime MONOTONIC");
    int mono_ok = 1;
    long long prev = ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 10000; i++) {
        long long now = ns(CLOCK_MONOTONIC);
        if (now < prev) mono_ok = 0;
        prev = now;
    }
    CHECK(mono_ok, "MONOTONIC never goes back over 10000 reads");
    CHECK(clock_gettime(CLOCK_REALTIME, &t) == 0 && t.tv_sec > 1600000000, "REALTIME is after 2020");
    CHECK(clock_gettime(CLOCK_BOOTTIME, &t) == 0 && clock_gettime(CLOCK_MONOTONIC_COARSE, &t) == 0 && clock_gettime(CLOCK_REALTIME_COARSE, &t) == 0,
          "BOOTTIME and COARSE clocks");
    CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) == 0 && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0, "CPU-time clocks");
    CHECK(clock_gettime(12345, &t) < 0 && errno == EINVAL, "bad clock id gives EINVAL");
    CHECK(clock_getres(CLOCK_MONOTONIC, &t) == 0 && t.tv_sec == 0 && t.tv_nsec > 0 && t.tv_nsec <= 10000000, "clock_getres MONOTONIC at most 10 ms");

    struct timeval tv;
    long long rt = ns(CLOCK_REALTIME);
    CHECK(gettimeofday(&tv, NULL) == 0 && tv.tv_usec >= 0 && tv.tv_usec < 1000000, "gettimeofday");
    long long diff = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL - rt;
    CHECK(diff > -1000000000LL && diff < 5000000000LL, "gettimeofday agrees with REALTIME");
    time_t now = time(NULL), tt;
    CHECK(now > 1600000000 && time(&tt) >= now && tt >= now, "time");

    /* sleeps last at least what was asked */
    long long t0 = ns(CLOCK_MONOTONIC);
    struct timespec req = {0, 50000000}, rem = {9, 9};
    CHECK(nanosleep(&req, &rem) == 0, "nanosleep 50 ms");
    CHECK(ns(CLOCK_MONOTONIC) - t0 >= 50000000, "nanosleep slept at least 50 ms");
    t0 = ns(CLOCK_MONOTONIC);
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL) == 0 && ns(CLOCK_MONOTONIC) - t0 >= 50000000, "clock_nanosleep relative 50 ms");
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    long long target = abs.tv_sec * 1000000000LL + abs.tv_nsec + 30000000;
    abs.tv_sec = target / 1000000000LL;
    abs.tv_nsec = target % 1000000000LL;
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) == 0 && ns(CLOCK_MONOTONIC) >= target, "clock_nanosleep TIMER_ABSTIME");
    req.tv_nsec = 2000000000;
    CHECK(nanosleep(&req, NULL) < 0 && errno == EINVAL, "nanosleep with tv_nsec >= 1e9 gives EINVAL");

    /* nanosleep interrupted by a signal reports the remainder */
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 50000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer 50 ms one-shot");
    req.tv_sec = 5;
    req.tv_nsec = 0;
    int r = nanosleep(&req, &rem);
    CHECK(r < 0 && errno == EINTR && alarms == 1, "SIGALRM interrupts nanosleep with EINTR");
    CHECK(rem.tv_sec <= 5 && rem.tv_sec >= 3, "remaining time reported");

    /* getitimer, interval timers */
    it.it_value.tv_sec = 10;
    it.it_value.tv_usec = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    struct itimerval cur;
    CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec <= 10 && cur.it_value.tv_sec >= 8, "getitimer shows the pending timer");
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    CHECK(setitimer(ITIMER_REAL, &off, &old) == 0 && old.it_value.tv_sec >= 8 && getitimer(ITIMER_REAL, &cur) == 0 &&
              cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0,
          "setitimer 0 disarms and returns the old value");
    alarms = 0;
    struct itimerval rep = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &rep, NULL);
    sigset_t empty;
    sigemptyset(&empty);
    while (alarms < 3) sigsuspend(&empty);
    setitimer(ITIMER_REAL, &off, NULL);
    CHECK(alarms == 3, "a periodic timer fired 3 times");

    /* alarm */
    CHECK(alarm(5) == 0, "alarm(5) with none pending returns 0");
    unsigned left = alarm(0);
    CHECK(left >= 4 && left <= 5, "alarm(0) returns the seconds left");
    alarms = 0;
    alarm(1);
    while (!alarms) sigsuspend(&empty);
    CHECK(alarms == 1, "alarm(1) delivered SIGALRM");

    /* times */
    struct tms tm0, tm1;
    clock_t c0 = times(&tm0);
    CHECK(c0 != (clock_t)-1, "times");
    burn(100);
    clock_t c1 = times(&tm1);
    CHECK(c1 > c0, "times: elapsed ticks advance");
    CHECK(tm1.tms_utime + tm1.tms_stime > tm0.tms_utime + tm0.tms_stime, "times: 100 ms of CPU time show up");
    CHECK(sysconf(_SC_CLK_TCK) == 100, "CLK_TCK is 100");
    pid_t pid = fork();
    if (pid == 0) {
        burn(100);
        _exit(0);
    }
    t_wait(pid);
    struct tms tm2;
    times(&tm2);
    CHECK(tm2.tms_cutime + tm2.tms_cstime > 0, "times: a reaped child's CPU time is counted");

    /* the process CPU clock is this process's own: a child busy with
     * syscalls while we wait for it adds nothing to ours */
    long long own0 = ns(CLOCK_PROCESS_CPUTIME_ID);
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 30000; i++)
            syscall(SYS_getppid);
        _exit(0);
    }
    t_wait(pid);
    long long own = ns(CLOCK_PROCESS_CPUTIME_ID) - own0;
    CHECK(own >= 0 && own < 20000000LL, "CLOCK_PROCESS_CPUTIME_ID counts only the caller");
    return t_end();
}
