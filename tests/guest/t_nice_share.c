/* Fair shares by nice, as Linux's CFS weighs them (nice 0 weighs 1024,
 * nice 19 15, SCHED_IDLE 3): two processes that compute forever on one
 * CPU for a second each get CPU in proportion to their weights. Checked
 * with generous bounds (a shared host): the nice 0 one gets at least 5x
 * the CPU of the nice 19 one, and of a SCHED_IDLE one, yet the nice 19
 * one still runs; two at the same nice get within 3x of each other. Only ratios are checked: a loaded host may give the
 * CPU to others for most of the second.
 * Natively all are pinned to one CPU so that they compete there too.
 * With an argument, the measured CPU times are printed as well. */
#include "t_common.h"
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static int verbose;
/* Each spinner's loop count (shared): did it run at all. */
static volatile unsigned long *counters;

/* A child that sets its own nice (or SCHED_IDLE when nice is 100), waits
 * at the gate, then computes forever. */
static pid_t spinner(int nice, int gate, int slot) {
    pid_t p = fork();
    if (p == 0) {
        if (nice == 100) {
            struct sched_param sp = {0};
            if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) _exit(2);
        } else if (setpriority(PRIO_PROCESS, 0, nice) != 0) {
            _exit(2);
        }
        char c;
        if (read(gate, &c, 1) != 1) _exit(3);
        for (;;) counters[slot]++;
    }
    return p;
}

/* Kills `p` and returns the CPU time (s) it used; -1 if it did not run. */
static double cpu_of(pid_t p) {
    struct rusage ru;
    int st;
    kill(p, SIGKILL);
    if (wait4(p, &st, 0, &ru) != p || !WIFSIGNALED(st)) return -1;
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Two spinners at nice `na` and `nb` released together, left to compute
 * for one second: their CPU times. */
static void race(const char *what, int na, int nb, double *ca, double *cb) {
    int gate[2];
    CHECK(pipe(gate) == 0, "%s: a gate", what);
    counters[0] = counters[1] = 0;
    pid_t a = spinner(na, gate[0], 0), b = spinner(nb, gate[0], 1);
    CHECK(a > 0 && b > 0, "%s: fork two spinners", what);
    close(gate[0]);
    /* Both have set their nice before the gate opens (they block on it). */
    struct timespec settle = {0, 50 * 1000 * 1000};
    nanosleep(&settle, NULL);
    CHECK(write(gate[1], "ab", 2) == 2, "%s: open the gate", what);
    close(gate[1]);
    struct timespec run = {1, 0};
    nanosleep(&run, NULL);
    *ca = cpu_of(a);
    *cb = cpu_of(b);
    if (verbose) fprintf(stderr, "%s: %.3f s and %.3f s\n", what, *ca, *cb);
}

int main(int argc, char **argv) {
    t_begin("t_nice_share");
    verbose = argc > 1;
    counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(counters != MAP_FAILED, "shared counters");
    int cpu = sched_getcpu();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu < 0 ? 0 : cpu, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "pin to one CPU");
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    CHECK(errno == 0 && base <= 5, "start at a low nice value");

    double n0, n19;
    race("nice 0 vs nice 19", base, 19, &n0, &n19);
    CHECK(n0 > 0 && n0 >= 5 * n19, "nice 0 gets at least 5x the CPU of nice 19");
    CHECK(counters[1] > 0, "nice 19 still runs");

    double i0, idle;
    race("nice 0 vs SCHED_IDLE", base, 100, &i0, &idle);
    CHECK(i0 > 0 && i0 >= 5 * idle, "nice 0 gets at least 5x the CPU of SCHED_IDLE");

    double a, b;
    race("nice 0 vs nice 0", base, base, &a, &b);
    CHECK(a + b > 0 && a <= 3 * b && b <= 3 * a, "equal nice values share about equally");

    double c, d;
    race("nice 10 vs nice 10", 10, 10, &c, &d);
    CHECK(c + d > 0 && c <= 3 * d && d <= 3 * c, "two at nice 10 share about equally");
    return t_end();
}
