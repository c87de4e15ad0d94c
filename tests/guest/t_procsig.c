/* Guest test: /proc/PID/status's signal masks. SigBlk is the blocked set,
 * SigIgn the signals set to SIG_IGN, SigCgt those with a handler (bit n-1
 * for signal n). Python's test_subprocess reads SigIgn to check
 * restore_signals; umlrun showed 0 there. Ignored signals stay ignored
 * across execve, caught ones go back to SIG_DFL (checked in a child that
 * re-runs this program with an argument). */
#include "t_common.h"
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void on_sig(int s) { (void)s; }

/* The hex value of `key` in /proc/self/status, or -1. */
static long long status_mask(const char *key) {
    static char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    int n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char want[32];
    snprintf(want, sizeof want, "\n%s:\t", key);
    char *p = strstr(buf, want);
    return p ? (long long)strtoull(p + strlen(want), NULL, 16) : -1;
}

#define BIT(s) (1ULL << ((s) - 1))

int main(int argc, char **argv) {
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    if (argc > 1) {
        /* After execve: SIGUSR1 still ignored, SIGUSR2 back to default,
         * SIGTERM still blocked. */
        printf("exec: SigIgn %llx SigCgt %llx SigBlk %llx\n", status_mask("SigIgn"), status_mask("SigCgt"),
               status_mask("SigBlk"));
        return 0;
    }
    t_begin("t_procsig");
    /* Start from known dispositions, whatever the parent left us (a host
     * shell can pass on ignored signals, also glibc's internal 32 and 33,
     * which signal() refuses: so the raw call). */
    for (int s = 1; s < 65; s++) {
        struct {
            unsigned long handler, flags, restorer, mask;
        } dfl = {0, 0, 0, 0};
        if (s != SIGKILL && s != SIGSTOP) syscall(SYS_rt_sigaction, s, &dfl, NULL, 8);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    CHECK(status_mask("SigIgn") == 0 && status_mask("SigCgt") == 0 && status_mask("SigBlk") == 0,
          "all default: SigIgn, SigCgt, SigBlk are 0");

    signal(SIGUSR1, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, on_sig);
    signal(SIGRTMIN + 2, on_sig);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGTERM);
    sigprocmask(SIG_BLOCK, &m, NULL);
    CHECK(status_mask("SigIgn") == (long long)(BIT(SIGUSR1) | BIT(SIGPIPE)), "SigIgn: SIGUSR1 and SIGPIPE (%llx)",
          status_mask("SigIgn"));
    CHECK(status_mask("SigCgt") == (long long)(BIT(SIGUSR2) | BIT(SIGRTMIN + 2)),
          "SigCgt: SIGUSR2 and SIGRTMIN+2 (%llx)", status_mask("SigCgt"));
    CHECK(status_mask("SigBlk") == (long long)BIT(SIGTERM), "SigBlk: SIGTERM (%llx)", status_mask("SigBlk"));

    signal(SIGPIPE, SIG_DFL);
    CHECK(status_mask("SigIgn") == (long long)BIT(SIGUSR1), "SIGPIPE back to default: only SIGUSR1 ignored");

    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        execl("/proc/self/exe", "t_procsig", "exec", (char *)NULL);
        _exit(127);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the exec'd child ran");
    return t_end();
}
