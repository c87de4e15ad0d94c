/* Guest test: signals: sigaction/SA_SIGINFO, siginfo fields, masks and
 * pending sets, SIGCHLD, sigaltstack, SA_RESTART vs EINTR, sigsuspend,
 * SIGPIPE, default actions. Default actions are checked in children: in the
 * guest this program is init, which the kernel shields from them. */
#include "t_common.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

static volatile sig_atomic_t hits, last_sig, last_code, last_pid_ok, last_uid_ok, on_alt, chld_status, chld_code;
static volatile pid_t expect_pid;
static char *alt_base;
static size_t alt_size;
static int wake_fd = -1;

static void info_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    hits++;
    last_sig = sig;
    last_code = si->si_code;
    last_pid_ok = si->si_pid == expect_pid;
    last_uid_ok = si->si_uid == getuid();
    if (sig == SIGCHLD) { chld_status = si->si_status; chld_code = si->si_code; }
    char here;
    on_alt = alt_base && &here >= alt_base && &here < alt_base + alt_size;
    if (wake_fd >= 0) write(wake_fd, "x", 1);
}

static void handle(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) SAY("sigaction %d failed\n", sig);
}

static const char *code_name(int c) {
    switch (c) {
    case SI_USER: return "SI_USER";
    case SI_TKILL: return "SI_TKILL";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_KERNEL: return "SI_KERNEL";
    case SI_TIMER: return "SI_TIMER";
    case CLD_EXITED: return "CLD_EXITED";
    default: return "other";
    }
}

/* Fork a child that runs fn and report how it ended. */
static void child_status(const char *what, void (*fn)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        fn();
        _exit(0);
    }
    SAY("%s: %s\n", what, t_wait(pid));
}
static void c_term(void) { raise(SIGTERM); }
static void c_int(void) { kill(getpid(), SIGINT); }
static void c_segv(void) { signal(SIGSEGV, SIG_DFL); *(volatile int *)8 = 1; }
static void c_quit(void) { raise(SIGQUIT); }
static void c_alrm(void) { alarm(1); for (;;) pause(); }
static void c_ign(void) { raise(SIGCHLD); raise(SIGWINCH); raise(SIGURG); raise(SIGCONT); }
static void c_ignored_term(void) { signal(SIGTERM, SIG_IGN); raise(SIGTERM); }
static void c_blocked_then_exit(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    _exit(4); /* never unblocked: the pending signal dies with us */
}
static void c_pipe(void) {
    int p[2];
    pipe(p);
    close(p[0]);
    write(p[1], "x", 1);
    _exit(3);
}
static void c_sigkill_uncatchable(void) {
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGKILL, &sa, NULL) == 0) _exit(1);
    if (sigaction(SIGSTOP, &sa, NULL) == 0) _exit(2);
    raise(SIGKILL);
}

int main(void) {
    t_begin("t_signal");
    pid_t me = getpid();
    expect_pid = me;
    sigset_t set, old, pend;

    /* SA_SIGINFO handler via raise (tgkill) and kill */
    handle(SIGUSR1, 0);
    hits = 0;
    CHECK(raise(SIGUSR1) == 0 && hits == 1, "raise SIGUSR1 runs the handler once");
    SAY("raise: signo %s, code %s, pid matches %d, uid matches %d\n", sigabbrev_np(last_sig), code_name(last_code), last_pid_ok, last_uid_ok);
    CHECK(kill(me, SIGUSR1) == 0 && hits == 2, "kill self runs the handler");
    SAY("kill: code %s, pid matches %d\n", code_name(last_code), last_pid_ok);
    CHECK(syscall(SYS_tgkill, me, gettid(), SIGUSR1) == 0 && hits == 3 && last_code == SI_TKILL, "tgkill gives SI_TKILL");
    struct sigaction cur;
    CHECK(sigaction(SIGUSR1, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == info_handler, "sigaction reads back the handler");
    CHECK(sigaction(SIGKILL, &cur, NULL) < 0 && errno == EINVAL, "sigaction on SIGKILL gives EINVAL");
    CHECK(kill(me, 65) < 0 && errno == EINVAL, "kill with signal 65 gives EINVAL");
    CHECK(kill(me, 0) == 0, "kill 0 probes self");

    /* mask, pending, unblock delivers */
    hits = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, &old) == 0 && !sigismember(&old, SIGUSR1), "block SIGUSR1");
    raise(SIGUSR1);
    raise(SIGUSR1); /* standard signals do not queue */
    CHECK(hits == 0, "blocked signal not delivered");
    CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2), "sigpending shows SIGUSR1 only");
    CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0 && hits == 1, "unblock delivers it once");
    CHECK(sigpending(&pend) == 0 && !sigismember(&pend, SIGUSR1), "nothing pending after delivery");
    sigfillset(&set);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0 && sigprocmask(SIG_BLOCK, NULL, &cur.sa_mask) == 0 &&
              !sigismember(&cur.sa_mask, SIGKILL) && !sigismember(&cur.sa_mask, SIGSTOP),
          "SIGKILL and SIGSTOP cannot be blocked");
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* real-time signals queue */
    handle(SIGRTMIN + 1, 0);
    hits = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    union sigval v = {.sival_int = 77};
    sigqueue(me, SIGRTMIN + 1, v);
    sigqueue(me, SIGRTMIN + 1, v);
    sigqueue(me, SIGRTMIN + 1, v);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    CHECK(hits == 3 && last_code == SI_QUEUE, "3 queued real-time signals delivered 3 times (SI_QUEUE)");

    /* sa_mask and SA_NODEFER / SA_RESETHAND */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGUSR2, &sa, NULL);
    hits = 0;
    raise(SIGUSR2);
    CHECK(hits == 1 && sigaction(SIGUSR2, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL, "SA_RESETHAND resets to SIG_DFL");

    /* SIGCHLD from an exiting child */
    handle(SIGCHLD, 0);
    hits = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t pid = fork();
    if (pid == 0) _exit(3);
    expect_pid = pid;
    sigset_t waitmask = old;
    sigdelset(&waitmask, SIGCHLD);
    while (!hits) sigsuspend(&waitmask);
    sigprocmask(SIG_SETMASK, &old, NULL);
    SAY("SIGCHLD: code %s, status %d, pid is the child %d\n", code_name(chld_code), chld_status, last_pid_ok);
    t_wait(pid);
    expect_pid = me;
    signal(SIGCHLD, SIG_DFL);

    /* sigsuspend returns EINTR after the handler */
    handle(SIGALRM, 0);
    hits = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, &old);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    sigset_t empty;
    sigemptyset(&empty);
    int r = sigsuspend(&empty);
    CHECK(r == -1 && errno == EINTR && hits == 1, "sigsuspend: EINTR after the handler");
    CHECK(sigprocmask(SIG_BLOCK, NULL, &set) == 0 && sigismember(&set, SIGALRM), "sigsuspend restores the mask");
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* sigaltstack */
    stack_t ss = {0}, oss;
    alt_size = 64 * 1024;
    alt_base = malloc(alt_size);
    ss.ss_sp = alt_base;
    ss.ss_size = alt_size;
    CHECK(sigaltstack(&ss, &oss) == 0 && (oss.ss_flags & SS_DISABLE), "sigaltstack set (none before)");
    handle(SIGUSR2, SA_ONSTACK);
    on_alt = 0;
    raise(SIGUSR2);
    CHECK(on_alt, "SA_ONSTACK handler runs on the alternate stack");
    handle(SIGUSR1, 0);
    on_alt = 1;
    raise(SIGUSR1);
    CHECK(!on_alt, "handler without SA_ONSTACK stays on the normal stack");
    ss.ss_flags = SS_DISABLE;
    CHECK(sigaltstack(&ss, NULL) == 0 && sigaltstack(NULL, &oss) == 0 && (oss.ss_flags & SS_DISABLE), "sigaltstack disabled");
    alt_base = NULL;

    /* SA_RESTART vs EINTR on a blocking pipe read: the handler writes the
     * byte the read is waiting for, so both cases are deterministic */
    int p[2];
    char buf[8];
    for (int restart = 0; restart <= 1; restart++) {
        CHECK(pipe(p) == 0, "pipe");
        wake_fd = p[1];
        handle(SIGALRM, restart ? SA_RESTART : 0);
        hits = 0;
        struct itimerval t = {{0, 0}, {0, 50000}};
        setitimer(ITIMER_REAL, &t, NULL);
        ssize_t n = read(p[0], buf, sizeof buf);
        if (restart)
            CHECK(n == 1 && buf[0] == 'x' && hits == 1, "SA_RESTART: read restarted and got the handler's byte");
        else
            CHECK(n < 0 && errno == EINTR && hits == 1 && read(p[0], buf, 1) == 1, "no SA_RESTART: read fails with EINTR");
        wake_fd = -1;
        close(p[0]);
        close(p[1]);
    }
    signal(SIGALRM, SIG_DFL);

    /* SIGPIPE: ignored gives EPIPE, default kills (in a child) */
    signal(SIGPIPE, SIG_IGN);
    CHECK(pipe(p) == 0 && close(p[0]) == 0 && write(p[1], "x", 1) < 0 && errno == EPIPE, "write to a closed pipe with SIGPIPE ignored gives EPIPE");
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);

    /* default actions */
    child_status("default SIGPIPE on a closed pipe", c_pipe);
    child_status("default SIGTERM", c_term);
    child_status("default SIGINT", c_int);
    child_status("default SIGQUIT", c_quit);
    child_status("default SIGSEGV on a NULL write", c_segv);
    child_status("default SIGALRM from alarm(1)", c_alrm);
    child_status("SIGCHLD, SIGWINCH, SIGURG, SIGCONT ignored by default", c_ign);
    child_status("SIGTERM set to SIG_IGN", c_ignored_term);
    child_status("blocked SIGUSR1 never delivered", c_blocked_then_exit);
    child_status("SIGKILL/SIGSTOP cannot be ignored", c_sigkill_uncatchable);

    /* handlers are reset by exec, ignored stays ignored, mask survives fork */
    handle(SIGUSR1, 0);
    signal(SIGUSR2, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid = fork();
    if (pid == 0) {
        struct sigaction a, b;
        sigset_t m;
        sigaction(SIGUSR1, NULL, &a);
        sigaction(SIGUSR2, NULL, &b);
        sigprocmask(SIG_BLOCK, NULL, &m);
        _exit((a.sa_sigaction == info_handler) + 2 * (b.sa_handler == SIG_IGN) + 4 * sigismember(&m, SIGHUP));
    }
    SAY("fork inherits handler, SIG_IGN and mask (7): %s\n", t_wait(pid));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* signal sent by a child to the parent */
    handle(SIGUSR1, 0);
    hits = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid = fork();
    if (pid == 0) { kill(getppid(), SIGUSR1); _exit(0); }
    expect_pid = pid;
    sigemptyset(&empty);
    while (!hits) sigsuspend(&empty);
    sigprocmask(SIG_SETMASK, &old, NULL);
    SAY("signal from a child: code %s, si_pid is the child %d\n", code_name(last_code), last_pid_ok);
    t_wait(pid);

    return t_end();
}
