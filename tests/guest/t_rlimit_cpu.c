/* Guest test: RLIMIT_CPU. A process spinning with a soft limit of 1 s
 * and a hard limit of 3 s gets SIGXCPU at 1 s and again at 2 s (the soft
 * limit its handler sees moves one second on each time), then SIGKILL at
 * 3 s; with no handler SIGXCPU's default action kills it (core); with
 * soft = hard the hard limit wins: SIGKILL and no SIGXCPU. */
#include "t_common.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>

static int wfd;

static void on_xcpu(int sig) {
    (void)sig;
    struct rlimit r;
    getrlimit(RLIMIT_CPU, &r);
    char c = (char)('0' + (r.rlim_cur > 9 ? 9 : r.rlim_cur));
    if (write(wfd, &c, 1) != 1) _exit(80);
}

static void spin(void) {
    volatile unsigned long x = 0;
    for (;;) x++;
}

/* Starts a child with limits (soft, hard), a SIGXCPU handler if asked;
 * returns how it ended and what its handler reported in `seen`. */
static const char *run(rlim_t soft, rlim_t hard, int handler, char *seen, size_t cap) {
    int p[2];
    if (pipe(p) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        wfd = p[1];
        if (handler) signal(SIGXCPU, on_xcpu);
        struct rlimit r = {soft, hard};
        if (setrlimit(RLIMIT_CPU, &r) != 0) _exit(81);
        spin();
    }
    close(p[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(p[0], seen + n, cap - 1 - n)) > 0) n += (size_t)got;
    seen[n] = 0;
    close(p[0]);
    return t_wait(pid);
}

int main(void) {
    t_begin("t_rlimit_cpu");
    struct rlimit r;
    CHECK(getrlimit(RLIMIT_CPU, &r) == 0 && r.rlim_cur == RLIM_INFINITY && r.rlim_max == RLIM_INFINITY,
          "RLIMIT_CPU is unlimited at first");
    char seen[32];
    const char *how = run(1, 3, 1, seen, sizeof seen);
    CHECK(strcmp(how, "killed by KILL") == 0, "soft 1 s, hard 3 s: killed by SIGKILL (%s)", how);
    CHECK(strcmp(seen, "23") == 0, "two SIGXCPU, the soft limit then 2 and 3 (saw \"%s\")", seen);
    how = run(1, RLIM_INFINITY, 0, seen, sizeof seen);
    CHECK(strcmp(how, "killed by XCPU") == 0, "no handler: SIGXCPU kills (%s)", how);
    how = run(1, 1, 1, seen, sizeof seen);
    CHECK(strcmp(how, "killed by KILL") == 0 && seen[0] == 0, "soft = hard = 1 s: SIGKILL, no SIGXCPU (%s)", how);
    return t_end();
}
