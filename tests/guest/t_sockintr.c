/* Guest test: signals and timeouts in blocking AF_UNIX socket calls.
 * A blocking stream send goes on until all of it went (a reader that
 * drains slowly gets it all); a signal after part of it went returns the
 * short count (with or without SA_RESTART, no EINTR, no restart), and so
 * does SO_SNDTIMEO running out; a peer closing part-way gives the count,
 * not EPIPE nor SIGPIPE. A socket wait under SO_RCVTIMEO/SO_SNDTIMEO
 * interrupted by a handled signal fails with EINTR even under SA_RESTART
 * (socket(7)); without a timeout SA_RESTART restarts it. */
#include "t_common.h"
#include "t_sock.h"
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>

#define BIG (1 << 20)
static char big[BIG];
static volatile sig_atomic_t alarms, pipes;

static void on_alarm(int s) {
    (void)s;
    alarms++;
}
static void on_pipe(int s) {
    (void)s;
    pipes++;
}

/* SIGALRM to a handler (SA_RESTART or not) after `ms`. */
static void alarm_in(int ms, int restart) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Everything queued on `fd` now, read without waiting. */
static long drain(int fd) {
    long total = 0;
    static char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            return total;
        total += n;
    }
}

static void pair(int sv[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("socketpair");
        exit(1);
    }
}

static void send_interrupted(int restart) {
    int sv[2];
    pair(sv);
    alarms = 0;
    alarm_in(100, restart);
    long long t0 = t_now_ms();
    ssize_t n = send(sv[0], big, BIG, 0);
    long long el = t_now_ms() - t0;
    CHECK(n > 0 && n < BIG, "%s: a send interrupted part-way returns a short count",
          restart ? "SA_RESTART" : "no SA_RESTART");
    CHECK(alarms == 1 && el >= 80, "%s: it slept until the signal", restart ? "SA_RESTART" : "no SA_RESTART");
    CHECK(drain(sv[1]) == n, "%s: the reader gets exactly that count", restart ? "SA_RESTART" : "no SA_RESTART");
    close(sv[0]);
    close(sv[1]);
}

static void timed_wait_interrupted(const char *what, int restart) {
    int sv[2];
    pair(sv);
    struct timeval tv = {2, 0};
    int is_send = strcmp(what, "send") == 0 || strcmp(what, "write") == 0;
    setsockopt(sv[0], SOL_SOCKET, is_send ? SO_SNDTIMEO : SO_RCVTIMEO, &tv, sizeof tv);
    if (is_send) {
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        while (send(sv[0], big, sizeof big, 0) > 0) {
        }
        while (send(sv[0], big, 1, 0) > 0) {
        }
        fcntl(sv[0], F_SETFL, 0);
    }
    alarms = 0;
    alarm_in(100, restart);
    long long t0 = t_now_ms();
    char b[8];
    ssize_t r;
    if (strcmp(what, "send") == 0)
        r = send(sv[0], big, 1, 0);
    else if (strcmp(what, "write") == 0)
        r = write(sv[0], big, 1);
    else if (strcmp(what, "read") == 0)
        r = read(sv[0], b, sizeof b);
    else
        r = recv(sv[0], b, sizeof b, 0);
    long long el = t_now_ms() - t0;
    CHECK(r < 0 && errno == EINTR, "%s under a timeout, %s: EINTR", what, restart ? "SA_RESTART" : "no SA_RESTART");
    CHECK(alarms == 1 && el >= 80 && el < 1500, "%s: ended by the signal, not the timeout", what);
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    t_begin("t_sockintr");
    memset(big, 'x', sizeof big);
    struct sigaction sp = {0};
    sp.sa_handler = on_pipe;
    sigaction(SIGPIPE, &sp, NULL);

    /* A blocking send of 1 MiB to a reader that drains slowly: all of it. */
    {
        int sv[2];
        pair(sv);
        pid_t c = fork();
        if (c == 0) {
            close(sv[0]);
            long got = 0;
            static char buf[16384];
            for (;;) {
                ssize_t n = read(sv[1], buf, sizeof buf);
                if (n <= 0)
                    break;
                got += n;
                if (got % (256 * 1024) < 16384) {
                    struct timespec ts = {0, 5000000};
                    nanosleep(&ts, NULL);
                }
            }
            _exit(got == BIG ? 0 : 1);
        }
        close(sv[1]);
        CHECK(send(sv[0], big, BIG, 0) == BIG, "a blocking 1 MiB send to a slow reader sends it all");
        close(sv[0]);
        int st;
        waitpid(c, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader got 1 MiB and EOF");
    }
    /* sendmsg over two iovecs, same. */
    {
        int sv[2];
        pair(sv);
        pid_t c = fork();
        if (c == 0) {
            close(sv[0]);
            long got = 0;
            static char buf[65536];
            for (;;) {
                ssize_t n = read(sv[1], buf, sizeof buf);
                if (n <= 0)
                    break;
                for (ssize_t i = 0; i < n; i++)
                    if (buf[i] != (char)((got + i) >= BIG / 2 ? 'y' : 'x'))
                        _exit(2);
                got += n;
            }
            _exit(got == BIG ? 0 : 1);
        }
        close(sv[1]);
        static char second[BIG / 2];
        memset(second, 'y', sizeof second);
        struct iovec iov[2] = {{big, BIG / 2}, {second, BIG / 2}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        CHECK(sendmsg(sv[0], &mh, 0) == BIG, "a blocking 1 MiB sendmsg over two iovecs sends it all");
        close(sv[0]);
        int st;
        waitpid(c, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader got both halves in order");
    }

    send_interrupted(1);
    send_interrupted(0);

    /* SO_SNDTIMEO running out part-way: the count, not EAGAIN. */
    {
        int sv[2];
        pair(sv);
        struct timeval tv = {0, 150000};
        setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        long long t0 = t_now_ms();
        ssize_t n = send(sv[0], big, BIG, 0);
        long long el = t_now_ms() - t0;
        CHECK(n > 0 && n < BIG, "SO_SNDTIMEO out part-way: a short count");
        CHECK(el >= 120 && el < 3000, "after about the timeout");
        CHECK(drain(sv[1]) == n, "the reader gets that count");
        close(sv[0]);
        close(sv[1]);
    }

    /* The peer closes part-way: the count, no EPIPE, no SIGPIPE; the next
     * send is EPIPE with SIGPIPE. */
    {
        int sv[2];
        pair(sv);
        pid_t c = fork();
        if (c == 0) {
            close(sv[0]);
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            static char buf[4096];
            read(sv[1], buf, sizeof buf);
            _exit(0);
        }
        close(sv[1]);
        pipes = 0;
        ssize_t n = send(sv[0], big, BIG, 0);
        CHECK(n > 0 && n < BIG, "peer closed part-way: a short count");
        CHECK(pipes == 0, "and no SIGPIPE");
        CHECK(send(sv[0], big, 1, 0) < 0 && errno == EPIPE && pipes == 1, "the next send: EPIPE and SIGPIPE");
        waitpid(c, NULL, 0);
        close(sv[0]);
    }

    /* Timed waits cut by a handled signal: EINTR, SA_RESTART or not. */
    timed_wait_interrupted("recv", 1);
    timed_wait_interrupted("recv", 0);
    timed_wait_interrupted("read", 1);
    timed_wait_interrupted("send", 1);
    timed_wait_interrupted("write", 1);

    /* accept under SO_RCVTIMEO with SA_RESTART: EINTR. */
    {
        struct sockaddr_un sa;
        socklen_t sl = t_abstract(&sa);
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(bind(l, (struct sockaddr *)&sa, sl) == 0 && listen(l, 1) == 0, "listener");
        struct timeval tv = {2, 0};
        setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        alarms = 0;
        alarm_in(100, 1);
        long long t0 = t_now_ms();
        int r = accept(l, NULL, NULL);
        long long el = t_now_ms() - t0;
        CHECK(r < 0 && errno == EINTR && alarms == 1 && el < 1500, "accept under a timeout, SA_RESTART: EINTR");
        close(l);
    }

    /* Without a timeout, SA_RESTART restarts the wait: the data that
     * comes later is received. */
    {
        int sv[2];
        pair(sv);
        pid_t c = fork();
        if (c == 0) {
            struct timespec ts = {0, 300000000};
            nanosleep(&ts, NULL);
            write(sv[1], "late", 4);
            _exit(0);
        }
        alarms = 0;
        alarm_in(100, 1);
        char b[8];
        ssize_t r = recv(sv[0], b, sizeof b, 0);
        CHECK(r == 4 && alarms == 1, "no timeout, SA_RESTART: recv restarts and gets the data");
        waitpid(c, NULL, 0);
        alarm_in(100, 0);
        alarms = 0;
        r = recv(sv[0], b, sizeof b, 0);
        CHECK(r < 0 && errno == EINTR && alarms == 1, "no timeout, no SA_RESTART: EINTR");
        close(sv[0]);
        close(sv[1]);
    }
    return t_end();
}
