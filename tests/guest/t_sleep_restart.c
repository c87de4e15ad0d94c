/* Guest test: sleeps cut short by signals, as Linux does them. A handler
 * (with or without SA_RESTART) makes nanosleep and relative clock_nanosleep
 * fail with EINTR and report the time left in rem; an absolute
 * clock_nanosleep fails with EINTR and leaves rem alone. A stop and a
 * continue, or a SIGCONT alone, do not lengthen a sleep: it ends at its
 * first deadline (restart_syscall). A handler that runs after a stop makes
 * the sleep fail with EINTR. Checks facts in wide margins, never prints a
 * time. */
#include "t_common.h"
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#define MS 1000000LL

static volatile sig_atomic_t hits;
static void on_sig(int sig) { (void)sig; hits++; }

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long ts_ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static void handle(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

/* SIGALRM after `ms` milliseconds (one shot). */
static void alarm_in(long ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * MS};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

/* A 2 s nanosleep cut by SIGALRM at 200 ms. */
static void handler_interrupts(const char *what, int flags) {
    handle(SIGALRM, flags);
    hits = 0;
    struct timespec req = {2, 0}, rem = {-1, -1};
    long long t0 = now_ns();
    alarm_in(200);
    int r = nanosleep(&req, &rem);
    int e = errno;
    long long took = now_ns() - t0, left = ts_ns(rem);
    CHECK(r == -1 && e == EINTR && hits == 1, "%s: nanosleep fails with EINTR after the handler", what);
    CHECK(left > 0 && left < 2000 * MS, "%s: rem is between 0 and the request", what);
    /* time slept + time left = the request (wide margin for a loaded host) */
    CHECK(took + left > 1500 * MS && took + left < 2500 * MS, "%s: rem + time slept is the request", what);
}

static void clock_nanosleep_interrupted(void) {
    handle(SIGALRM, SA_RESTART);
    hits = 0;
    struct timespec req = {2, 0}, rem = {-1, -1};
    long long t0 = now_ns();
    alarm_in(200);
    int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    long long took = now_ns() - t0, left = ts_ns(rem);
    CHECK(r == EINTR && hits == 1, "relative clock_nanosleep returns EINTR after a handler");
    CHECK(took + left > 1500 * MS && took + left < 2500 * MS, "relative clock_nanosleep: rem + time slept is the request");

    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 2;
    rem.tv_sec = 7;
    rem.tv_nsec = 7;
    hits = 0;
    alarm_in(200);
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, &rem);
    CHECK(r == EINTR && hits == 1, "absolute clock_nanosleep returns EINTR after a handler");
    CHECK(rem.tv_sec == 7 && rem.tv_nsec == 7, "absolute clock_nanosleep leaves rem alone");
    signal(SIGALRM, SIG_DFL);
}

/* A child sleeps `ms` (nanosleep, or relative clock_nanosleep if `clock`),
 * exits 0 if the sleep returned 0, 2 if it failed with EINTR, 3 otherwise;
 * with `usr1` it has a SIGUSR1 handler. */
static pid_t sleeper(long ms, int clock, int usr1) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (usr1) handle(SIGUSR1, SA_RESTART);
    struct timespec req = {ms / 1000, (ms % 1000) * MS}, rem;
    int r = clock ? clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem) : nanosleep(&req, &rem);
    if (r == 0) _exit(0);
    _exit((clock ? r : errno) == EINTR ? 2 : 3);
}

/* Stopped before its 2 s deadline and held stopped past it: once
 * continued the sleep ends at once, it does not start over. */
static void stop_and_continue(const char *what, int clock) {
    pid_t pid = sleeper(2000, clock, 0);
    sleep_ms(300);
    kill(pid, SIGSTOP);
    int st = 0;
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st), "%s: the sleeper stops", what);
    sleep_ms(2200);
    long long t0 = now_ns();
    kill(pid, SIGCONT);
    const char *how = t_wait(pid);
    long long after = now_ns() - t0;
    CHECK(strcmp(how, "exited 0") == 0, "%s: the sleep returns 0 after the continue (%s)", what, how);
    /* It would take the whole 2 s again if restarted from scratch. */
    CHECK(after < 1000 * MS, "%s: the sleep ends at its first deadline", what);
}

/* SIGCONT to a running sleeper does not lengthen its sleep. */
static void sigcont_alone(void) {
    long long t0 = now_ns();
    pid_t pid = sleeper(1000, 0, 0);
    sleep_ms(800);
    kill(pid, SIGCONT);
    const char *how = t_wait(pid);
    long long took = now_ns() - t0;
    CHECK(strcmp(how, "exited 0") == 0, "SIGCONT: the sleep returns 0 (%s)", how);
    CHECK(took < 1600 * MS, "SIGCONT: the sleep ends at its first deadline");
}

/* Stopped, sent a handled SIGUSR1 while stopped, continued: the handler
 * runs and the sleep fails with EINTR (even with SA_RESTART). */
static void handler_after_stop(void) {
    pid_t pid = sleeper(5000, 0, 1);
    sleep_ms(300);
    kill(pid, SIGSTOP);
    int st = 0;
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st), "handler after stop: the sleeper stops");
    kill(pid, SIGUSR1);
    long long t0 = now_ns();
    kill(pid, SIGCONT);
    const char *how = t_wait(pid);
    CHECK(strcmp(how, "exited 2") == 0, "handler after stop: the sleep fails with EINTR (%s)", how);
    CHECK(now_ns() - t0 < 2500 * MS, "handler after stop: it does not sleep on");
}

int main(void) {
    t_begin("t_sleep_restart");
    handler_interrupts("handler without SA_RESTART", 0);
    handler_interrupts("handler with SA_RESTART", SA_RESTART);
    clock_nanosleep_interrupted();
    stop_and_continue("nanosleep stopped and continued", 0);
    stop_and_continue("clock_nanosleep stopped and continued", 1);
    sigcont_alone();
    handler_after_stop();
    return t_end();
}
