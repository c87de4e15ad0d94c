/* Guest test: an event loop as real servers write one. One epoll watches
 * a non-blocking AF_UNIX listener bound to a path, its 200 accepted
 * connections (from 4 client processes of 50 connections each), a
 * periodic timerfd, a signalfd (SIGRTMIN from each client when it has
 * its echoes, SIGCHLD when it exits) and an eventfd the loop writes to
 * itself when every client is reaped. Clients send 5 rounds of messages
 * of many sizes on every connection and check each echo byte for byte.
 * The summary holds only counts that do not depend on timing. */
#include "t_common.h"
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#define PROCS 4
#define CONNS 50
#define ROUNDS 5
#define MAXMSG 700

enum { K_LISTEN = 1, K_TIMER, K_SIGNAL, K_EVENT, K_CONN };

static int msg_len(int proc, int conn, int round) { return (proc * 131 + conn * 37 + round * 101) % MAXMSG + 1; }

static void fill(char *b, int n, int proc, int conn, int round) {
    for (int i = 0; i < n; i++) b[i] = (char)(proc * 7 + conn * 13 + round * 29 + i * 3);
}

static int read_full(int fd, char *b, int n) {
    int got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0) return -1;
        got += r;
    }
    return got;
}

static int client(const char *path, int proc) {
    int fds[CONNS];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    for (int c = 0; c < CONNS; c++) {
        fds[c] = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fds[c] < 0 || connect(fds[c], (struct sockaddr *)&sa, sizeof sa) != 0) return 10;
    }
    char out[MAXMSG], in[MAXMSG];
    for (int r = 0; r < ROUNDS; r++) {
        for (int c = 0; c < CONNS; c++) {
            int n = msg_len(proc, c, r);
            fill(out, n, proc, c, r);
            if (write(fds[c], out, n) != n) return 11;
        }
        for (int c = 0; c < CONNS; c++) {
            int n = msg_len(proc, c, r);
            fill(out, n, proc, c, r);
            if (read_full(fds[c], in, n) != n || memcmp(in, out, n) != 0) return 12;
        }
    }
    union sigval v = {.sival_int = proc};
    sigqueue(getppid(), SIGRTMIN, v);
    for (int c = 0; c < CONNS; c++) close(fds[c]);
    return 0;
}

static void add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        printf("epoll_ctl ADD: FAIL (%s)\n", strerror(errno));
        exit(1);
    }
}

int main(void) {
    t_begin("t_evloop");
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGRTMIN);
    sigaddset(&m, SIGCHLD);
    sigprocmask(SIG_BLOCK, &m, NULL);

    char path[128];
    snprintf(path, sizeof path, "%s/ev.sock", t_dir);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ls, 256) == 0, "listener bound and listening");
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {{0, 5000000}, {0, 5000000}};
    CHECK(tfd >= 0 && timerfd_settime(tfd, 0, &its, NULL) == 0, "a 5 ms periodic timerfd");
    int sfd = signalfd(-1, &m, SFD_NONBLOCK);
    CHECK(sfd >= 0, "a signalfd for SIGRTMIN and SIGCHLD");
    int efd = eventfd(0, EFD_NONBLOCK);
    CHECK(efd >= 0, "an eventfd");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    add(ep, ls, EPOLLIN, K_LISTEN);
    add(ep, tfd, EPOLLIN, K_TIMER);
    add(ep, sfd, EPOLLIN, K_SIGNAL);
    add(ep, efd, EPOLLIN, K_EVENT);

    for (int p = 0; p < PROCS; p++) {
        pid_t c = fork();
        if (c == 0) {
            close(ep);
            close(ls);
            _exit(client(path, p));
        }
    }

    int accepted = 0, open_conns = 0, closed = 0, reaped = 0, exited_ok = 0, done_signals = 0;
    int proc_seen = 0, eof_with_rdhup = 0, loops = 0;
    uint64_t ticks = 0, echoed = 0;
    int finished = 0, ended = 0;
    char buf[4096];
    while (!finished) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 10000);
        if (n <= 0) {
            printf("epoll_wait returned %d: FAIL (%s)\n", n, n < 0 ? strerror(errno) : "timed out");
            break;
        }
        loops++;
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            int kind = d < K_CONN ? (int)d : K_CONN;
            if (kind == K_LISTEN) {
                for (;;) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    accepted++;
                    open_conns++;
                    add(ep, c, EPOLLIN | EPOLLRDHUP, K_CONN + (uint64_t)c);
                }
            } else if (kind == K_TIMER) {
                uint64_t t;
                if (read(tfd, &t, 8) == 8) ticks += t;
            } else if (kind == K_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if ((int)si.ssi_signo == SIGRTMIN) {
                        done_signals++;
                        proc_seen |= 1 << si.ssi_int;
                    } else if (si.ssi_signo == SIGCHLD) {
                        int st;
                        while (waitpid(-1, &st, WNOHANG) > 0) {
                            reaped++;
                            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) exited_ok++;
                            else printf("a client: %s\n", t_status(st));
                        }
                    }
                }
            } else if (kind == K_EVENT) {
                uint64_t v;
                if (read(efd, &v, 8) == 8 && v == 1) finished = 1;
            } else {
                int c = (int)(d - K_CONN);
                for (;;) {
                    ssize_t r = read(c, buf, sizeof buf);
                    if (r > 0) {
                        if (write(c, buf, r) != r) printf("short echo: FAIL\n");
                        echoed += r;
                        continue;
                    }
                    if (r == 0) {
                        if (evs[i].events & EPOLLRDHUP) eof_with_rdhup++;
                        epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL);
                        close(c);
                        open_conns--;
                        closed++;
                    }
                    break;
                }
            }
        }
        /* All clients done and reaped, and the timer seen at least once
         * (a fast host can finish inside one 5 ms period): end the loop
         * through the eventfd. */
        if (!ended && reaped == PROCS && open_conns == 0 && ticks > 0) {
            uint64_t one = 1;
            if (write(efd, &one, 8) == 8) ended = 1;
        }
    }
    uint64_t want = 0;
    for (int p = 0; p < PROCS; p++)
        for (int c = 0; c < CONNS; c++)
            for (int r = 0; r < ROUNDS; r++) want += msg_len(p, c, r);
    CHECK(accepted == PROCS * CONNS, "accepted %d connections", accepted);
    CHECK(closed == PROCS * CONNS, "closed %d at EOF", closed);
    CHECK(eof_with_rdhup > 0, "EOFs come with EPOLLRDHUP");
    CHECK(echoed == want, "echoed %llu bytes", (unsigned long long)echoed);
    CHECK(done_signals == PROCS && proc_seen == (1 << PROCS) - 1, "%d SIGRTMIN with each client's value", done_signals);
    CHECK(reaped == PROCS && exited_ok == PROCS, "%d clients checked every echo and exited 0", exited_ok);
    CHECK(ticks > 0, "the timer ticked");
    CHECK(finished, "the eventfd ended the loop");
    CHECK(loops > 1, "several loop turns");
    close(ep);
    close(ls);
    unlink(path);
    return t_end();
}
