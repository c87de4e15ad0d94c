/* Shared by the t_*.c guest tests: each check prints "<what>: ok" or
 * "<what>: FAIL (...)", so the output is identical natively and in the guest
 * when both behave, and a mismatch names the check. Output must never hold
 * pids, addresses, times or host names: print derived facts instead.
 * stdout is unbuffered because it is a pipe natively but a tty in the guest
 * (different glibc buffering, and fork would duplicate buffered output). */
#ifndef T_COMMON_H
#define T_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_FN __attribute__((unused)) static

static int t_checks, t_failures;
static char t_dir[64];
static const char *t_name = "t";

T_FN void t_check(int ok, int line, const char *fmt, ...) {
    int saved = errno;
    va_list ap;
    t_checks++;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (ok) {
        printf(": ok\n");
    } else {
        const char *e = strerrorname_np(saved);
        printf(": FAIL (line %d, errno %s)\n", line, e ? e : "0");
        t_failures++;
    }
    errno = saved;
}
/* CHECK(cond, "printf format", args...) */
#define CHECK(cond, ...) t_check(!!(cond), __LINE__, __VA_ARGS__)
#define SAY(...) printf(__VA_ARGS__)

/* Describe a wait status in words (never a pid). */
T_FN const char *t_status(int st) {
    static char buf[64];
    if (WIFEXITED(st))
        snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "killed by %s", sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    else if (WIFSTOPPED(st))
        snprintf(buf, sizeof buf, "stopped by %s", sigabbrev_np(WSTOPSIG(st)) ? sigabbrev_np(WSTOPSIG(st)) : "?");
    else if (WIFCONTINUED(st))
        snprintf(buf, sizeof buf, "continued");
    else
        snprintf(buf, sizeof buf, "status %#x", st);
    return buf;
}

/* Wait for one child by pid and describe how it ended. */
T_FN const char *t_wait(pid_t pid) {
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r != pid) return "waitpid failed";
    return t_status(st);
}

T_FN int t_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* Start: unbuffered output, a known umask, and a private scratch directory
 * under /tmp (the cwd from here on). */
T_FN void t_begin(const char *name) {
    t_name = name;
    setvbuf(stdout, NULL, _IONBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    umask(022);
    snprintf(t_dir, sizeof t_dir, "/tmp/%s.XXXXXX", name);
    if (!mkdtemp(t_dir) || chdir(t_dir) != 0) {
        printf("%s: cannot make a scratch dir in /tmp: %s\n", name, strerror(errno));
        exit(100);
    }
    SAY("== %s\n", name);
}

/* End: remove the scratch dir, print the tally, exit 0 only if all passed. */
T_FN int t_end(void) {
    if (chdir("/") != 0) t_failures++;
    if (nftw(t_dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        printf("cleanup of scratch dir: FAIL (%s)\n", strerror(errno));
        t_failures++;
    }
    printf("== %s: %d checks, %d failed\n", t_name, t_checks, t_failures);
    return t_failures ? 1 : 0;
}

#endif
