/* Guest only (it must be init, pid 1): init gets only the signals it has a
 * handler for, whoever sends them and however (kill, tkill, tgkill,
 * rt_sigqueueinfo, a process group, kill(-1)): SIGKILL and SIGSTOP too,
 * as Linux's SIGNAL_UNKILLABLE. The fuzzer's children once killed init
 * with tgkill(1, 1, SIGPROF) and friends. A signal queued while init
 * blocked it, whose handler is SIG_DFL by the time it is unblocked, is
 * dropped too. And an unprivileged process may not signal root's. */
#include "t_common.h"
#include <signal.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1++; }

/* In a child: send `sig` to init every way there is. */
static void hit_init(int sig) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    kill(1, sig);
    syscall(SYS_tkill, 1, sig);
    syscall(SYS_tgkill, 1, 1, sig);
    syscall(SYS_rt_sigqueueinfo, 1, sig, &si);
    syscall(SYS_rt_tgsigqueueinfo, 1, 1, sig, &si);
    kill(-1, sig);
}

static void from_child(int uid) {
    static const int sigs[] = {SIGPROF, SIGQUIT, SIGSTKFLT, SIGTERM, SIGSEGV, SIGSTOP, SIGKILL};
    pid_t c = fork();
    if (c == 0) {
        if (uid && (setgid(uid) != 0 || setuid(uid) != 0)) _exit(9);
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) hit_init(sigs[i]);
        _exit(0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "uid %d sends SIGPROF..SIGKILL to init every way: init lives", uid);
}

int main(void) {
    t_begin("t_init_signals");
    if (getpid() != 1) {
        SAY("not init: run as init under umlrun\n");
        return 2;
    }
    from_child(0);
    from_child(1000);

    /* A handled signal arrives, from root; an unprivileged sender is EPERM. */
    signal(SIGUSR1, on_usr1);
    pid_t c = fork();
    if (c == 0) _exit(kill(1, SIGUSR1) == 0 ? 0 : 1);
    t_wait(c);
    CHECK(got_usr1 == 1, "root's SIGUSR1 reaches init's handler");
    c = fork();
    if (c == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(9);
        errno = 0;
        int k = kill(1, SIGUSR1);
        int t = (int)syscall(SYS_tgkill, 1, 1, SIGUSR1);
        _exit(k < 0 && errno == EPERM && t < 0 ? 0 : 1);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "uid 1000 signalling init: EPERM");
    CHECK(got_usr1 == 1, "no SIGUSR1 from uid 1000");

    /* Queued while blocked, SIG_DFL when unblocked: dropped. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    c = fork();
    if (c == 0) _exit(kill(1, SIGUSR2) == 0 ? 0 : 1);
    t_wait(c);
    sigset_t pend;
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR2), "SIGUSR2 pending while init blocks it");
    signal(SIGUSR2, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    CHECK(1, "SIGUSR2 unblocked with SIG_DFL: init lives");
    return t_end();
}
