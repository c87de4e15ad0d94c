/* Scheduling: a process that computes forever (with or without syscalls)
 * does not starve the others. Next to spinning children, a parent's sleeps,
 * poll and select timeouts and an interval timer's signal all end about on
 * time, and every spinner keeps getting CPU (fair shares). */
#include "t_common.h"
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/time.h>
#include <limits.h>
#include <time.h>

#define SPINNERS 3

static volatile unsigned long *counters;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A child that computes forever: pure arithmetic, or a syscall per round. */
static pid_t spinner(int slot, int syscalls) {
    pid_t p = fork();
    if (p == 0) {
        for (;;) {
            counters[slot]++;
            if (syscalls) getppid();
        }
    }
    return p;
}

static volatile sig_atomic_t alarms;
static void on_alarm(int s) { (void)s; alarms++; }

/* `what` took between `lo` and 2 s (generous: one CPU, shared). */
static void timed(const char *what, double t0, double lo) {
    double took = now_s() - t0;
    CHECK(took >= lo && took < 2.0, "%s ends about on time", what);
}

int main(void) {
    t_begin("t_sched");
    counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(counters != MAP_FAILED, "shared counters");
    pid_t kids[SPINNERS];
    kids[0] = spinner(0, 0);
    CHECK(kids[0] > 0, "fork a spinning child");

    double t0 = now_s();
    for (int i = 0; i < 5; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    timed("five 50 ms sleeps next to a spinner", t0, 0.25);

    t0 = now_s();
    CHECK(poll(NULL, 0, 100) == 0, "poll with a timeout next to a spinner");
    timed("poll's 100 ms timeout", t0, 0.1);

    t0 = now_s();
    struct timeval tv = {0, 100 * 1000};
    CHECK(select(0, NULL, NULL, NULL, &tv) == 0, "select with a timeout next to a spinner");
    timed("select's 100 ms timeout", t0, 0.1);

    signal(SIGALRM, on_alarm);
    struct itimerval it = {{0, 0}, {0, 100 * 1000}};
    t0 = now_s();
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer 100 ms");
    while (!alarms) pause();
    timed("ITIMER_REAL's SIGALRM", t0, 0.1);

    /* The longest sleep there is: ends by the signal, not by overflow. */
    alarms = 0;
    struct itimerval once = {{0, 0}, {0, 50 * 1000}};
    setitimer(ITIMER_REAL, &once, NULL);
    struct timespec forever = {LONG_MAX, 999999999};
    errno = 0;
    CHECK(nanosleep(&forever, NULL) == -1 && errno == EINTR && alarms == 1,
          "a LONG_MAX-second sleep ends with EINTR when SIGALRM comes");
    struct itimerval huge = {{LONG_MAX / 4, 0}, {LONG_MAX / 4, 0}}, left;
    CHECK(setitimer(ITIMER_REAL, &huge, NULL) == 0 && getitimer(ITIMER_REAL, &left) == 0 &&
              left.it_value.tv_sec > 1000000,
          "an interval timer of LONG_MAX/4 seconds is accepted");
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);

    kids[1] = spinner(1, 1);
    kids[2] = spinner(2, 0);
    CHECK(kids[1] > 0 && kids[2] > 0, "fork two more spinners (one making syscalls)");
    t0 = now_s();
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    timed("a 300 ms sleep next to three spinners", t0, 0.3);
    unsigned long before[SPINNERS];
    for (int i = 0; i < SPINNERS; i++) before[i] = counters[i];
    nanosleep(&ts, NULL);
    for (int i = 0; i < SPINNERS; i++)
        CHECK(counters[i] > before[i], "spinner %d keeps getting CPU", i);

    for (int i = 0; i < SPINNERS; i++) {
        kill(kids[i], SIGKILL);
        SAY("spinner %d: %s\n", i, t_wait(kids[i]));
    }
    return t_end();
}
