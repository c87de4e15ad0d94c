/* Guest test: pselect6 and ppoll apply their signal mask for the duration
 * of the wait (GNU make -j blocks SIGCHLD and waits in pselect with it
 * unblocked), restore the caller's mask on return, and return EINTR when a
 * handled signal interrupts them (also with SA_RESTART). */
#include "t_common.h"
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t got_chld, got_usr1, got_alrm;
static sigset_t mask_in_handler;

static void on_chld(int s) {
    (void)s;
    got_chld++;
    sigprocmask(SIG_BLOCK, NULL, &mask_in_handler);
}
static void on_usr1(int s) { (void)s; got_usr1++; }
static void on_alrm(int s) { (void)s; got_alrm++; }

static int blocked(int sig) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

/* A child that exits after `ms` milliseconds. */
static pid_t child_exiting_after(int ms) {
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, ms * 1000000L};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    return pid;
}

int main(void) {
    t_begin("t_pselect");
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_alrm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);

    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    sigset_t chld, empty;
    sigemptyset(&empty);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);

    /* make -j: SIGCHLD blocked, pselect with it unblocked hears the child. */
    sigprocmask(SIG_BLOCK, &chld, NULL);
    pid_t c = child_exiting_after(50);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timespec five = {5, 0};
    int r = pselect(p[0] + 1, &rd, NULL, NULL, &five, &empty);
    CHECK(r == -1 && errno == EINTR, "pselect with SIGCHLD unblocked: EINTR when the child exits");
    CHECK(got_chld == 1, "the SIGCHLD handler ran during pselect");
    CHECK(sigismember(&mask_in_handler, SIGCHLD), "handler ran with SIGCHLD blocked (sa_mask)");
    CHECK(blocked(SIGCHLD), "after pselect SIGCHLD is blocked again");
    CHECK(!strcmp(t_wait(c), "exited 0"), "child reaped");

    /* The same with ppoll. */
    got_chld = 0;
    c = child_exiting_after(50);
    struct pollfd pf = {p[0], POLLIN, 0};
    r = ppoll(&pf, 1, &five, &empty);
    CHECK(r == -1 && errno == EINTR, "ppoll with SIGCHLD unblocked: EINTR when the child exits");
    CHECK(got_chld == 1, "the SIGCHLD handler ran during ppoll");
    CHECK(blocked(SIGCHLD), "after ppoll SIGCHLD is blocked again");
    CHECK(!strcmp(t_wait(c), "exited 0"), "child reaped");

    /* A signal already pending and unblocked by the call's mask: EINTR at once. */
    got_chld = 0;
    c = child_exiting_after(1);
    CHECK(!strcmp(t_wait(c), "exited 0"), "child reaped while SIGCHLD blocked");
    sigset_t pend;
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGCHLD), "SIGCHLD pending");
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    r = pselect(p[0] + 1, &rd, NULL, NULL, &five, &empty);
    CHECK(r == -1 && errno == EINTR && got_chld == 1, "pending SIGCHLD interrupts pselect at once");
    CHECK(blocked(SIGCHLD), "and the mask is back");

    /* Ready at once: the mask is restored and the pending signal stays
     * blocked (not delivered by the temporary mask). */
    got_chld = 0;
    c = child_exiting_after(1);
    t_wait(c);
    CHECK(write(p[1], "x", 1) == 1, "pipe has data");
    pf.revents = 0;
    r = ppoll(&pf, 1, &five, &empty);
    CHECK(r == 1 && got_chld == 0, "ready fds win over a pending signal: ppoll returns 1");
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    CHECK(got_chld == 1, "SIGCHLD delivered once in all");
    char ch;
    CHECK(read(p[0], &ch, 1) == 1, "drain");

    /* The call's mask blocks a signal: it does not interrupt, and is
     * delivered after the call returns. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigaddset(&usr1, SIGCHLD); /* the child's exit must not interrupt either */
    got_usr1 = 0;
    pid_t parent = getpid();
    c = fork();
    if (c == 0) {
        struct timespec ts = {0, 30000000L};
        nanosleep(&ts, NULL);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    struct timespec short_t = {0, 300000000L};
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    r = pselect(p[0] + 1, &rd, NULL, NULL, &short_t, &usr1);
    CHECK(r == 0, "a signal the call's mask blocks does not interrupt it (timeout)");
    CHECK(got_usr1 == 1, "it is delivered once the call returns");
    CHECK(!blocked(SIGUSR1), "the caller's mask is back (SIGUSR1 unblocked)");
    t_wait(c);
    got_chld = 0;

    /* SA_RESTART does not restart ppoll/pselect/poll: EINTR. */
    got_alrm = 0;
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    pf.revents = 0;
    r = ppoll(&pf, 1, NULL, NULL);
    CHECK(r == -1 && errno == EINTR && got_alrm == 1, "ppoll without a mask: SIGALRM (SA_RESTART) gives EINTR");
    setitimer(ITIMER_REAL, &it, NULL);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    r = pselect(p[0] + 1, &rd, NULL, NULL, NULL, NULL);
    CHECK(r == -1 && errno == EINTR && got_alrm == 2, "pselect without a mask: EINTR");
    setitimer(ITIMER_REAL, &it, NULL);
    r = poll(&pf, 1, -1);
    CHECK(r == -1 && errno == EINTR && got_alrm == 3, "poll: EINTR");

    /* Bad mask size: EINVAL. */
    r = syscall(271, &pf, 1, NULL, &empty, 4);
    CHECK(r == -1 && errno == EINVAL, "ppoll with sigsetsize 4: EINVAL");
    struct { const sigset_t *ss; size_t len; } arg = {&empty, 4};
    r = syscall(270, p[0] + 1, &rd, NULL, NULL, &short_t, &arg);
    CHECK(r == -1 && errno == EINVAL, "pselect6 with sigsetsize 4: EINVAL");
    CHECK(!blocked(SIGUSR1) && !blocked(SIGCHLD), "mask unchanged after the failures");

    close(p[0]);
    close(p[1]);
    return t_end();
}
