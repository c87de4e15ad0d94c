/* The real-time classes, as Linux runs them on one CPU: who runs first is
 * observed through a log in shared memory that each process appends a
 * letter to. A runnable SCHED_FIFO/SCHED_RR task runs before any normal
 * one; a higher real-time priority pre-empts a lower one when it wakes or
 * when sched_setscheduler/sched_setparam raises it; equal priorities never
 * pre-empt; FIFO runs until it blocks or yields, RR takes turns by its
 * 100 ms quantum (sched_rr_get_interval); sched_yield goes to the tail of
 * its priority. The rules for who may (EPERM for uid 1000 without
 * RLIMIT_RTPRIO), and the throttle: a spinning FIFO task still lets a
 * normal one run within a few seconds (Linux: sched_rt_runtime_us).
 * And sched_{get,set}affinity's errors.
 * Natively the program pins itself to one CPU and must run as root. */
#include "t_common.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

struct shared {
    int n;
    char log[256];
    volatile unsigned long counter;
};
static struct shared *sh;

static void mark(char c) {
    int i = __atomic_fetch_add(&sh->n, 1, __ATOMIC_SEQ_CST);
    if (i >= 0 && i < 255) sh->log[i] = c;
}

static void reset(void) {
    sh->n = 0;
    memset(sh->log, 0, sizeof sh->log);
}

static int setsched(pid_t p, int policy, int prio) {
    struct sched_param sp = {.sched_priority = prio};
    return sched_setscheduler(p, policy, &sp);
}

static int setparam(pid_t p, int prio) {
    struct sched_param sp = {.sched_priority = prio};
    return sched_setparam(p, &sp);
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double clock_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Computes until this thread has used `ms` more of CPU time. */
static void burn_ms(long ms) {
    double end = clock_s(CLOCK_THREAD_CPUTIME_ID) + ms / 1e3;
    while (clock_s(CLOCK_THREAD_CPUTIME_ID) < end) {
    }
}

/* Waits for every child and checks each exited 0. */
static void reap(const char *what, pid_t *kids, int n) {
    int good = 1;
    for (int i = 0; i < n; i++)
        if (strcmp(t_wait(kids[i]), "exited 0") != 0) good = 0;
    CHECK(good, "%s: the children exit 0", what);
}

/* Who may: uid 1000 with RLIMIT_RTPRIO 0 (hard 0 too: raising it needs
 * CAP_SYS_RESOURCE) may not take a real-time policy, may lower the
 * priority it was given and leave for SCHED_OTHER, may not raise it
 * again nor change to another real-time policy, and may not touch
 * another user's process. */
static void permissions(void) {
    pid_t p = fork();
    if (p == 0) {
        int before = t_failures;
        if (setsched(0, SCHED_FIFO, 10) != 0 || setgid(1000) != 0 || setuid(1000) != 0)
            _exit(9);
        struct rlimit rl;
        CHECK(getrlimit(RLIMIT_RTPRIO, &rl) == 0 && rl.rlim_cur == 0,
              "uid 1000: RLIMIT_RTPRIO is 0");
        errno = 0;
        CHECK(setparam(0, 11) == -1 && errno == EPERM, "raising FIFO 10 to 11 is EPERM");
        CHECK(setparam(0, 5) == 0, "lowering to 5 is allowed");
        CHECK(setsched(0, SCHED_FIFO, 5) == 0, "setting the same again is allowed");
        errno = 0;
        CHECK(setparam(0, 6) == -1 && errno == EPERM, "raising back to 6 is EPERM");
        errno = 0;
        CHECK(setsched(0, SCHED_RR, 5) == -1 && errno == EPERM,
              "changing to SCHED_RR without RLIMIT_RTPRIO is EPERM");
        CHECK(sched_getscheduler(0) == SCHED_FIFO, "still SCHED_FIFO");
        CHECK(setsched(0, SCHED_OTHER, 0) == 0, "leaving for SCHED_OTHER is allowed");
        errno = 0;
        CHECK(setsched(0, SCHED_FIFO, 1) == -1 && errno == EPERM,
              "uid 1000 without RLIMIT_RTPRIO: SCHED_FIFO is EPERM");
        errno = 0;
        CHECK(setsched(0, SCHED_RR, 1) == -1 && errno == EPERM, "and SCHED_RR too");
        errno = 0;
        CHECK(setsched(getppid(), SCHED_OTHER, 0) == -1 && errno == EPERM,
              "root's process cannot be changed by uid 1000");
        _exit(t_failures > before ? 1 : 0);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "the uid 1000 child exits 0");
}

/* CPU affinity's errors (the guest has one CPU; natively there may be
 * more, so only answers both give are checked). */
static void affinity(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    errno = 0;
    CHECK(sched_getaffinity(-1, sizeof set, &set) == -1 && errno == ESRCH,
          "sched_getaffinity(-1) is ESRCH");
    errno = 0;
    CHECK(sched_getaffinity(0, 3, &set) == -1 && errno == EINVAL,
          "sched_getaffinity with 3 bytes is EINVAL");
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1,
          "sched_getaffinity(0) names at least one CPU");
    CPU_ZERO(&set);
    errno = 0;
    CHECK(sched_setaffinity(0, sizeof set, &set) == -1 && errno == EINVAL,
          "sched_setaffinity with an empty mask is EINVAL");
    CPU_SET(0, &set);
    errno = 0;
    CHECK(sched_setaffinity(-1, sizeof set, &set) == -1 && errno == ESRCH,
          "sched_setaffinity(-1) is ESRCH");
    errno = 0;
    CHECK(sched_setaffinity(0, sizeof set, (cpu_set_t *)8) == -1 && errno == EFAULT,
          "sched_setaffinity from a bad address is EFAULT");
    pid_t p = fork();
    if (p == 0) {
        int before = t_failures;
        cpu_set_t mine;
        if (sched_getaffinity(0, sizeof mine, &mine) != 0 || setuid(1000) != 0) _exit(9);
        errno = 0;
        CHECK(sched_setaffinity(getppid(), sizeof mine, &mine) == -1 && errno == EPERM,
              "uid 1000 cannot set root's affinity (EPERM)");
        CHECK(sched_setaffinity(0, sizeof mine, &mine) == 0, "but may set its own");
        _exit(t_failures > before ? 1 : 0);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "the affinity child exits 0");
}

static void intervals(void) {
    struct timespec ts;
    CHECK(setsched(0, SCHED_RR, 1) == 0 && sched_rr_get_interval(0, &ts) == 0 &&
              ts.tv_sec == 0 && ts.tv_nsec == 100000000,
          "SCHED_RR's quantum is 100 ms");
    CHECK(setsched(0, SCHED_FIFO, 1) == 0 && sched_rr_get_interval(0, &ts) == 0 &&
              ts.tv_sec == 0 && ts.tv_nsec == 0,
          "SCHED_FIFO has none (0)");
}

/* A normal and a FIFO child both blocked on one pipe; one write wakes
 * both (the normal one first in line): the FIFO one runs first. */
static void rt_before_fair(void) {
    reset();
    int gate[2];
    CHECK(pipe(gate) == 0, "rt before fair: a gate");
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            if (i == 0 ? setsched(0, SCHED_OTHER, 0) : setsched(0, SCHED_FIFO, 10)) _exit(2);
            char c;
            if (read(gate[0], &c, 1) != 1) _exit(3);
            mark(i == 0 ? 'o' : 'f');
            _exit(0);
        }
        /* The child blocks on the gate before the next one is made. */
        nap_ms(30);
    }
    CHECK(write(gate[1], "ab", 2) == 2, "rt before fair: open the gate");
    mark('p');
    reap("rt before fair", kids, 2);
    CHECK(strcmp(sh->log, "pfo") == 0,
          "the FIFO 50 parent goes on, then the FIFO 10 child before the normal one");
    close(gate[0]);
    close(gate[1]);
}

/* The parent at (policy, prio) writes to a pipe a child at (cpolicy,
 * cprio) is blocked on: "1c2" when the child pre-empts the write, "12c"
 * when it waits for the parent to block. */
static void wake(const char *what, int policy, int prio, int cpolicy, int cprio,
                 const char *want) {
    reset();
    int p[2];
    CHECK(pipe(p) == 0 && setsched(0, SCHED_FIFO, 50) == 0, "%s: a pipe", what);
    pid_t kid = fork();
    if (kid == 0) {
        if (setsched(0, cpolicy, cprio) != 0) _exit(2);
        char c;
        if (read(p[0], &c, 1) != 1) _exit(3);
        mark('c');
        _exit(0);
    }
    nap_ms(30);
    CHECK(setsched(0, policy, prio) == 0, "%s: the parent's policy", what);
    mark('1');
    CHECK(write(p[1], "x", 1) == 1, "%s: the write", what);
    mark('2');
    reap(what, &kid, 1);
    CHECK(strcmp(sh->log, want) == 0, "%s: %s", what, want);
    close(p[0]);
    close(p[1]);
    CHECK(setsched(0, SCHED_FIFO, 50) == 0, "%s: back to FIFO 50", what);
}

/* A queued child that has never run: raising it above the parent, or
 * the parent lowering itself below it, runs it before the call returns;
 * lowering it leaves it waiting. */
static void priority_changes(void) {
    const char *whats[3] = {"raising a queued task above the caller",
                            "the caller lowering itself below a queued task",
                            "raising a queued task to the caller's priority"};
    const char *wants[3] = {"1c2", "1c2", "12c"};
    for (int i = 0; i < 3; i++) {
        reset();
        CHECK(setsched(0, SCHED_FIFO, 20) == 0, "%s: the parent at FIFO 20", whats[i]);
        pid_t kid = fork();
        if (kid == 0) {
            mark('c');
            _exit(0);
        }
        CHECK(setsched(kid, SCHED_FIFO, 15) == 0, "%s: the child lowered to 15", whats[i]);
        mark('1');
        if (i == 0)
            CHECK(setparam(kid, 30) == 0, "%s: sched_setparam", whats[i]);
        else if (i == 1)
            CHECK(setparam(0, 10) == 0, "%s: sched_setparam", whats[i]);
        else
            CHECK(setsched(kid, SCHED_RR, 20) == 0, "%s: sched_setscheduler", whats[i]);
        mark('2');
        reap(whats[i], &kid, 1);
        CHECK(strcmp(sh->log, wants[i]) == 0, "%s: %s", whats[i], wants[i]);
    }
    CHECK(setsched(0, SCHED_FIFO, 50) == 0, "back to FIFO 50");
}

/* Lowering a queued task puts it at the head of its new priority: of two
 * children queued at 20, the second lowered to 10 after the first runs
 * first there. */
static void lowered_goes_to_head(void) {
    reset();
    CHECK(setsched(0, SCHED_FIFO, 20) == 0, "head: the parent at FIFO 20");
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            mark(i == 0 ? 'a' : 'b');
            _exit(0);
        }
        CHECK(setsched(kids[i], SCHED_FIFO, 10) == 0, "head: child %d lowered to 10", i);
    }
    reap("head", kids, 2);
    CHECK(strcmp(sh->log, "ba") == 0, "the task lowered last runs first (head of its priority)");
    CHECK(setsched(0, SCHED_FIFO, 50) == 0, "head: back to FIFO 50");
}

/* Two children at one priority, queued in order: each marks and yields
 * three times. */
static void yields(int policy) {
    reset();
    CHECK(setsched(0, policy, 10) == 0, "yield: the parent at priority 10");
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            for (int r = 0; r < 3; r++) {
                mark(i == 0 ? 'x' : 'y');
                sched_yield();
            }
            _exit(0);
        }
    }
    reap("yield", kids, 2);
    CHECK(strcmp(sh->log, "xyxyxy") == 0, "%s: sched_yield goes to the tail of the priority",
          policy == SCHED_FIFO ? "SCHED_FIFO" : "SCHED_RR");
    CHECK(setsched(0, SCHED_FIFO, 50) == 0, "yield: back to FIFO 50");
}

/* Two children at `policy` 10 that each compute `chunks` times `ms` of
 * CPU, marking after each chunk. Returns the longest run of one letter
 * and the number of switches between them. */
static void spinners(int policy, int chunks, int ms, int *longest, int *switches) {
    reset();
    /* The children inherit it, queued in order behind the parent. */
    CHECK(setsched(0, policy, 10) == 0, "spinners: the parent at priority 10");
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            for (int r = 0; r < chunks; r++) {
                burn_ms(ms);
                mark(i == 0 ? 'x' : 'y');
            }
            _exit(0);
        }
    }
    reap("spinners", kids, 2);
    *longest = 0;
    *switches = 0;
    int run = 0;
    for (int i = 0; sh->log[i]; i++) {
        run = (i > 0 && sh->log[i] == sh->log[i - 1]) ? run + 1 : 1;
        if (i > 0 && sh->log[i] != sh->log[i - 1]) (*switches)++;
        if (run > *longest) *longest = run;
    }
}

/* A FIFO task that computes does not let a normal one run at once, but
 * the throttle lets it run within a few seconds. */
static void throttle(void) {
    CHECK(setsched(0, SCHED_FIFO, 50) == 0, "throttle: the parent at FIFO 50");
    sh->counter = 0;
    pid_t kid = fork();
    if (kid == 0) {
        if (setsched(0, SCHED_OTHER, 0) != 0) _exit(2);
        for (;;) sh->counter++;
    }
    /* A whole period with no real-time running first: the next starts
     * with its full runtime. */
    nap_ms(1100);
    unsigned long c0 = sh->counter;
    double t0 = clock_s(CLOCK_MONOTONIC), t = 0;
    while (sh->counter == c0 && (t = clock_s(CLOCK_MONOTONIC) - t0) < 5.0) {
    }
    CHECK(c0 > 0, "throttle: the normal child ran while the parent slept");
    CHECK(sh->counter != c0, "a normal task still runs next to a spinning FIFO task");
    CHECK(t >= 0.3, "but not at once: the FIFO task had the CPU for a while first");
    kill(kid, SIGKILL);
    CHECK(strcmp(t_wait(kid), "killed by KILL") == 0, "throttle: the child is killed");
}

int main(void) {
    t_begin("t_rt");
    sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED, "shared log");
    int cpu = sched_getcpu();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu < 0 ? 0 : cpu, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "pin to one CPU");
    CHECK(getuid() == 0, "running as root");

    permissions();
    affinity();
    intervals();
    CHECK(setsched(0, SCHED_FIFO, 50) == 0, "the parent at FIFO 50");
    rt_before_fair();
    wake("a higher FIFO reader pre-empts the writer", SCHED_FIFO, 20, SCHED_FIFO, 30, "1c2");
    wake("a lower FIFO reader waits", SCHED_FIFO, 20, SCHED_FIFO, 10, "12c");
    wake("an equal RR reader waits", SCHED_RR, 20, SCHED_RR, 20, "12c");
    wake("a normal reader waits for a FIFO writer", SCHED_FIFO, 20, SCHED_OTHER, 0, "12c");
    wake("a FIFO reader pre-empts a normal writer", SCHED_OTHER, 0, SCHED_FIFO, 10, "1c2");
    wake("an RR reader pre-empts a SCHED_BATCH writer", SCHED_BATCH, 0, SCHED_RR, 1, "1c2");
    priority_changes();
    lowered_goes_to_head();
    yields(SCHED_FIFO);
    yields(SCHED_RR);

    int longest, switches;
    spinners(SCHED_FIFO, 3, 30, &longest, &switches);
    CHECK(strcmp(sh->log, "xxxyyy") == 0, "SCHED_FIFO computes until done: xxxyyy");
    spinners(SCHED_RR, 5, 60, &longest, &switches);
    CHECK(longest <= 2, "SCHED_RR: no more than two 60 ms chunks in a row (100 ms quantum)");
    CHECK(switches >= 4, "SCHED_RR: the two take turns");
    CHECK(sh->n == 10, "SCHED_RR: every chunk done");

    throttle();
    CHECK(setsched(0, SCHED_OTHER, 0) == 0, "back to SCHED_OTHER");
    return t_end();
}
