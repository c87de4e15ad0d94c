/* A blocking write to a pipe larger than the pipe: Linux's pipe_write sleeps
 * until every byte went; a signal returns the count written so far, EINTR
 * (or a restart under SA_RESTART) only when nothing was written. Python's
 * test_io test_interrupted_write_* rely on it. */
#include "t_common.h"
#include <signal.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <poll.h>

static volatile sig_atomic_t hits;
static void on_alarm(int s) { (void)s; hits++; }

static void arm(int ms, int restart) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A child that sleeps `ms`, then reads the pipe to EOF and exits with
 * 0 when it read `want` bytes (1 otherwise). */
static pid_t drainer(int r, int w, int ms, long want) {
    pid_t pid = fork();
    if (pid == 0) {
        close(w);
        usleep(ms * 1000);
        static char b[65536];
        long got = 0;
        ssize_t n;
        while ((n = read(r, b, sizeof b)) > 0) got += n;
        _exit(got == want ? 0 : 1);
    }
    return pid;
}

int main(void) {
    t_begin("t_pipewrite");
    int p[2];
    const long big = 3L << 20; /* more than one kernel chunk, 48 pipes' worth */
    char *data = malloc(big);
    memset(data, 'p', big);

    /* 1: a reader drains: the write takes everything, in one call. */
    CHECK(pipe(p) == 0, "pipe");
    pid_t pid = drainer(p[0], p[1], 20, big);
    close(p[0]);
    ssize_t n = write(p[1], data, big);
    CHECK(n == big, "a 3 MiB blocking write to a pipe with a reader returns 3 MiB (got %s)", n == big ? "all" : "less");
    close(p[1]);
    SAY("drainer: %s\n", t_wait(pid));

    /* 2: writev the same way, three iovecs. */
    CHECK(pipe(p) == 0, "pipe");
    pid = drainer(p[0], p[1], 20, big);
    close(p[0]);
    struct iovec iov[3] = {{data, 1}, {data, big - 4097}, {data, 4096}};
    n = writev(p[1], iov, 3);
    CHECK(n == big, "a 3 MiB blocking writev returns 3 MiB");
    close(p[1]);
    SAY("drainer: %s\n", t_wait(pid));

    /* 3: nobody reads: a signal returns what went (the whole pipe). */
    CHECK(pipe(p) == 0, "pipe");
    long cap = fcntl(p[1], F_GETPIPE_SZ);
    hits = 0;
    arm(100, 0);
    n = write(p[1], data, 4 * cap);
    CHECK(n == cap && hits == 1, "a signal ends a blocked 4-pipe write with the partial count (one pipe), no EINTR");
    /* 4: the pipe is full, nothing can go: SA_RESTART restarts the write
     * (which then takes all once a reader comes), no SA_RESTART is EINTR. */
    pid = drainer(p[0], p[1], 400, 3 * cap);
    arm(100, 1);
    n = write(p[1], data, 2 * cap);
    CHECK(n == 2 * cap && hits == 2, "full pipe, SA_RESTART handler: the write restarts and takes all");
    close(p[0]);
    close(p[1]);
    SAY("drainer: %s\n", t_wait(pid));
    CHECK(pipe(p) == 0 && write(p[1], data, cap) == cap, "a write of exactly one pipe goes at once");
    arm(100, 0);
    n = write(p[1], data, 2 * cap);
    CHECK(n < 0 && errno == EINTR && hits == 3, "full pipe, no SA_RESTART: EINTR");
    arm(100, 0);
    n = write(p[1], data, 100);
    CHECK(n < 0 && errno == EINTR && hits == 4, "full pipe, a small write: EINTR");

    /* 5: O_NONBLOCK: what fits, at once. */
    char sink[65536];
    struct pollfd pf = {p[0], POLLIN, 0};
    while (poll(&pf, 1, 0) == 1 && read(p[0], sink, sizeof sink) > 0)
        ;
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    n = write(p[1], data, 4 * cap);
    CHECK(n == cap, "O_NONBLOCK: a 4-pipe write to an empty pipe takes one pipe");
    n = write(p[1], data, 4 * cap);
    CHECK(n < 0 && errno == EAGAIN, "O_NONBLOCK: then EAGAIN");
    close(p[0]);
    close(p[1]);

    /* 6: the reader goes away part-way: the count written, and SIGPIPE. */
    signal(SIGPIPE, on_alarm);
    CHECK(pipe(p) == 0, "pipe");
    pid = fork();
    if (pid == 0) {
        close(p[1]);
        usleep(100000);
        read(p[0], sink, 1000);
        _exit(0);
    }
    close(p[0]);
    hits = 0;
    n = write(p[1], data, 4 * cap);
    CHECK(n >= cap && n < 4 * cap && hits == 1, "the reader exits mid-write: the partial count and one SIGPIPE");
    n = write(p[1], data, 10);
    CHECK(n < 0 && errno == EPIPE && hits == 2, "then EPIPE and SIGPIPE");
    close(p[1]);
    SAY("reader: %s\n", t_wait(pid));

    free(data);
    return t_end();
}
