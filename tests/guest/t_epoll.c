/* Guest test: epoll: create/create1, ctl ADD/MOD/DEL and their errors,
 * level and edge triggering, EPOLLONESHOT, EPOLLEXCLUSIVE, pipes and
 * sockets (EPOLLIN/OUT/HUP/RDHUP, listeners), nested epoll and loops,
 * timeouts and wake-ups, epoll_pwait/pwait2, close and dup semantics,
 * sharing across fork. */
#include "t_common.h"
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

static volatile unsigned long bad_addr = 8;
#define badp ((void *)bad_addr)

static volatile int usr1;
static void on_usr1(int sig) { (void)sig; usr1++; }

static int add(int ep, int fd, unsigned ev, unsigned long data) {
    struct epoll_event e = {.events = ev, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int mod(int ep, int fd, unsigned ev, unsigned long data) {
    struct epoll_event e = {.events = ev, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

/* Waits `ms`; returns the count and puts "data:events" pairs in `out`. */
static int waitfor(int ep, int max, int ms, char *out, size_t len) {
    struct epoll_event ev[16];
    int n = epoll_wait(ep, ev, max, ms);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%lu:%x", i ? " " : "", (unsigned long)ev[i].data.u64, ev[i].events);
    }
    return n;
}

static long ms_since(struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void t_errors(void) {
    struct epoll_event e = {.events = EPOLLIN};
    CHECK(epoll_create(0) < 0 && errno == EINVAL, "epoll_create(0): EINVAL");
    CHECK(epoll_create1(0x1) < 0 && errno == EINVAL, "epoll_create1 bad flags: EINVAL");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0 && fcntl(ep, F_GETFD) == FD_CLOEXEC, "epoll_create1(EPOLL_CLOEXEC)");
    int ep2 = epoll_create(1);
    CHECK(ep2 >= 0 && fcntl(ep2, F_GETFD) == 0, "epoll_create(1)");
    int p[2];
    pipe(p);
    CHECK(add(ep, p[0], EPOLLIN, 1) == 0, "ADD");
    CHECK(add(ep, p[0], EPOLLIN, 1) < 0 && errno == EEXIST, "ADD twice: EEXIST");
    CHECK(mod(ep, p[1], EPOLLOUT, 2) < 0 && errno == ENOENT, "MOD absent: ENOENT");
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) < 0 && errno == ENOENT, "DEL absent: ENOENT");
    CHECK(epoll_ctl(ep, 77, p[0], &e) < 0 && errno == EINVAL, "bad op: EINVAL");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], badp) < 0 && errno == EFAULT, "bad event pointer: EFAULT");
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], badp) == 0, "DEL ignores the event pointer");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, 0x7fff, &e) < 0 && errno == EBADF, "bad fd: EBADF");
    CHECK(epoll_ctl(0x7fff, EPOLL_CTL_ADD, p[0], &e) < 0 && errno == EBADF, "bad epfd: EBADF");
    CHECK(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &e) < 0 && errno == EINVAL, "epfd not an epoll: EINVAL");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e) < 0 && errno == EINVAL, "an epoll watching itself: EINVAL");
    int f = open("plain", O_CREAT | O_RDWR, 0644);
    CHECK(add(ep, f, EPOLLIN, 3) < 0 && errno == EPERM, "a regular file: EPERM");
    close(f);
    int d = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(add(ep, d, EPOLLIN, 3) < 0 && errno == EPERM, "a directory: EPERM");
    close(d);
    CHECK(add(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 4) < 0 && errno == EINVAL, "EXCLUSIVE with ONESHOT: EINVAL");
    CHECK(add(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE, 4) == 0, "ADD EXCLUSIVE");
    CHECK(mod(ep, p[0], EPOLLIN, 4) < 0 && errno == EINVAL, "MOD of an EXCLUSIVE interest: EINVAL");
    CHECK(add(ep, p[1], EPOLLOUT | EPOLLWAKEUP, 5) == 0, "EPOLLWAKEUP accepted");
    CHECK(add(ep2, ep, EPOLLIN | EPOLLEXCLUSIVE, 6) < 0 && errno == EINVAL, "EXCLUSIVE on an epoll: EINVAL");
    CHECK(add(ep2, ep, EPOLLIN, 6) == 0, "nest an epoll");
    CHECK(add(ep, ep2, EPOLLIN, 7) < 0 && errno == ELOOP, "a loop: ELOOP");
    struct epoll_event out[4];
    CHECK(epoll_wait(ep, out, 0, 0) < 0 && errno == EINVAL, "maxevents 0: EINVAL");
    CHECK(syscall(SYS_epoll_wait, ep, out, -1, 0) < 0 && errno == EINVAL, "maxevents -1: EINVAL");
    CHECK(epoll_wait(0x7fff, out, 4, 0) < 0 && errno == EBADF, "wait bad epfd: EBADF");
    CHECK(epoll_wait(p[0], out, 4, 0) < 0 && errno == EINVAL, "wait on a pipe: EINVAL");
    CHECK(epoll_wait(ep, badp, 4, 0) < 0 && errno == EFAULT, "wait bad events pointer: EFAULT");
    CHECK(syscall(SYS_epoll_pwait, ep, out, 4, 0, NULL, 4) >= 0, "epoll_pwait NULL mask ignores the size");
    sigset_t ss;
    sigemptyset(&ss);
    CHECK(syscall(SYS_epoll_pwait, ep, out, 4, 0, &ss, 4) < 0 && errno == EINVAL, "epoll_pwait bad sigsetsize: EINVAL");
    struct timespec bad = {0, 2000000000L};
    CHECK(syscall(SYS_epoll_pwait2, ep, out, 4, &bad, NULL, 8) < 0 && errno == EINVAL, "epoll_pwait2 bad timespec: EINVAL");
    close(ep);
    close(ep2);
    close(p[0]);
    close(p[1]);
}

static void t_triggers(void) {
    char s[256], buf[64];
    int p[2];
    pipe(p);
    int ep = epoll_create1(0);
    add(ep, p[0], EPOLLIN, 10);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "empty pipe: nothing");
    write(p[1], "ab", 2);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "10:1"), "LT: EPOLLIN (%s)", s);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1, "LT: again while readable");
    read(p[0], buf, sizeof buf);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "LT: drained, nothing");
    /* edge triggered */
    CHECK(mod(ep, p[0], EPOLLIN | EPOLLET, 11) == 0, "MOD to EPOLLET");
    write(p[1], "a", 1);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "11:1"), "ET: reported once (%s)", s);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "ET: not again without new data");
    write(p[1], "b", 1);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1, "ET: new data while readable reports again");
    read(p[0], buf, sizeof buf);
    /* one-shot */
    CHECK(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 12) == 0, "MOD to EPOLLONESHOT");
    write(p[1], "c", 1);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "12:1"), "ONESHOT: first report");
    write(p[1], "d", 1);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "ONESHOT: disarmed");
    CHECK(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 13) == 0 && waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "13:1"), "MOD re-arms");
    read(p[0], buf, sizeof buf);
    /* write end: OUT, then ERR when the reader goes */
    add(ep, p[1], EPOLLOUT, 14);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "14:4"), "write end: EPOLLOUT (%s)", s);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == 0, "DEL");
    CHECK(mod(ep, p[0], EPOLLIN, 15) == 0, "back to LT");
    close(p[1]);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "15:10"), "writer closed: EPOLLHUP (%s)", s);
    close(p[0]);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "closed fd: its interest is gone");
    /* maxevents rotates */
    int q[3][2];
    for (int i = 0; i < 3; i++) {
        pipe(q[i]);
        write(q[i][1], "x", 1);
        add(ep, q[i][0], EPOLLIN, 20 + i);
    }
    int seen[3] = {0};
    for (int round = 0; round < 3; round++) {
        struct epoll_event ev[1];
        if (epoll_wait(ep, ev, 1, 0) == 1 && ev[0].data.u64 >= 20 && ev[0].data.u64 < 23) seen[ev[0].data.u64 - 20]++;
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1, "maxevents 1 reaches every ready fd in turn");
    for (int i = 0; i < 3; i++) {
        close(q[i][0]);
        close(q[i][1]);
    }
    close(ep);
}

static void t_sockets(void) {
    char s[256], buf[64];
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int ep = epoll_create1(0);
    add(ep, sv[0], EPOLLIN | EPOLLOUT | EPOLLRDHUP, 1);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "1:4"), "connected socket: EPOLLOUT (%s)", s);
    write(sv[1], "hi", 2);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "1:5"), "data: EPOLLIN|EPOLLOUT (%s)", s);
    read(sv[0], buf, sizeof buf);
    shutdown(sv[1], SHUT_WR);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "1:2005"), "peer SHUT_WR: EPOLLRDHUP|IN|OUT (%s)", s);
    close(sv[1]);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "1:2015"), "peer closed: adds EPOLLHUP (%s)", s);
    close(sv[0]);
    /* a listener is readable when a connection waits */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, "ep.sock");
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bind(l, (struct sockaddr *)&a, al);
    listen(l, 8);
    add(ep, l, EPOLLIN | EPOLLOUT, 2);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "idle listener: nothing (not even EPOLLOUT)");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, al);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "2:1"), "pending connection: EPOLLIN (%s)", s);
    int acc = accept(l, NULL, NULL);
    CHECK(acc >= 0 && waitfor(ep, 8, 0, s, sizeof s) == 0, "accepted: quiet again");
    close(acc);
    close(c);
    /* an unconnected stream socket polls HUP|OUT */
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    add(ep, u, EPOLLIN | EPOLLOUT, 3);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "3:14"), "unconnected stream: EPOLLOUT|EPOLLHUP (%s)", s);
    close(u);
    /* 20 clients on the listener, served from one epoll */
    pid_t kids[20];
    for (int i = 0; i < 20; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int k = socket(AF_UNIX, SOCK_STREAM, 0);
            if (connect(k, (struct sockaddr *)&a, al) != 0) _exit(1);
            char m[8];
            snprintf(m, sizeof m, "c%02d", i);
            write(k, m, 3);
            _exit(read(k, m, 3) == 3 && m[0] == 'C' ? 0 : 2);
        }
    }
    int served = 0, accepted = 0, spins = 0;
    while (served < 20 && spins++ < 1000) {
        struct epoll_event ev[8];
        int n = epoll_wait(ep, ev, 8, 2000);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == 2) {
                int k;
                while ((k = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    add(ep, k, EPOLLIN, 100 + k);
                    accepted++;
                }
            } else {
                int k = ev[i].data.u64 - 100;
                char m[8];
                if (read(k, m, 3) == 3) {
                    m[0] = 'C';
                    write(k, m, 3);
                    served++;
                }
                epoll_ctl(ep, EPOLL_CTL_DEL, k, NULL);
                close(k);
            }
        }
    }
    CHECK(accepted == 20 && served == 20, "20 clients accepted and served through epoll");
    int ok = 0;
    for (int i = 0; i < 20; i++) ok += !strcmp(t_wait(kids[i]), "exited 0");
    CHECK(ok == 20, "all clients got their answer");
    close(l);
    unlink("ep.sock");
    close(ep);
}

static void t_nested_and_waiting(void) {
    char s[256], buf[8];
    int p[2];
    pipe(p);
    int inner = epoll_create1(0), outer = epoll_create1(0);
    add(inner, p[0], EPOLLIN, 1);
    add(outer, inner, EPOLLIN, 2);
    CHECK(waitfor(outer, 8, 0, s, sizeof s) == 0, "nested: quiet");
    write(p[1], "x", 1);
    CHECK(waitfor(outer, 8, 0, s, sizeof s) == 1 && !strcmp(s, "2:1"), "nested: inner readiness shows as EPOLLIN (%s)", s);
    CHECK(waitfor(inner, 8, 0, s, sizeof s) == 1 && !strcmp(s, "1:1"), "inner reports the pipe");
    read(p[0], buf, 1);
    CHECK(waitfor(outer, 8, 0, s, sizeof s) == 0, "nested: quiet again");
    struct pollfd pf = {inner, POLLIN, 0};
    write(p[1], "y", 1);
    CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN), "poll on an epoll fd");
    read(p[0], buf, 1);
    /* timeouts */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(waitfor(inner, 8, 60, s, sizeof s) == 0 && ms_since(&t0) >= 55, "a 60 ms timeout passes");
    struct timespec ts = {0, 40000000};
    struct epoll_event ev[4];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(syscall(SYS_epoll_pwait2, inner, ev, 4, &ts, NULL, 8) == 0 && ms_since(&t0) >= 35, "epoll_pwait2 40 ms timeout");
    /* a blocked wait wakes for a child's write */
    pid_t k = fork();
    if (k == 0) {
        usleep(30000);
        write(p[1], "z", 1);
        _exit(0);
    }
    CHECK(waitfor(outer, 8, 5000, s, sizeof s) == 1, "blocked nested wait woke for a write");
    SAY("writer: %s\n", t_wait(k));
    read(p[0], buf, 1);
    /* a signal interrupts the wait: EINTR, even with SA_RESTART */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    k = fork();
    if (k == 0) {
        usleep(30000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    CHECK(epoll_wait(inner, ev, 4, 5000) < 0 && errno == EINTR && usr1 == 1, "a handled signal ends the wait: EINTR");
    SAY("signal child: %s\n", t_wait(k));
    signal(SIGUSR1, SIG_DFL);
    /* epoll_pwait: the mask blocks a signal during the wait */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    raise(SIGUSR2);
    sigset_t none;
    sigemptyset(&none);
    sigaddset(&none, SIGUSR2);
    CHECK(epoll_pwait(inner, ev, 4, 20, &none) == 0, "epoll_pwait with SIGUSR2 kept blocked: timeout");
    sigset_t pending;
    sigpending(&pending);
    CHECK(sigismember(&pending, SIGUSR2), "SIGUSR2 still pending");
    signal(SIGUSR2, SIG_IGN);
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR2, SIG_DFL);
    close(inner);
    CHECK(waitfor(outer, 8, 0, s, sizeof s) == 0, "closed inner epoll drops out");
    close(outer);
    close(p[0]);
    close(p[1]);
}

static void t_close_dup_fork(void) {
    char s[256];
    int p[2];
    pipe(p);
    int ep = epoll_create1(0);
    add(ep, p[0], EPOLLIN, 1);
    int d = dup(p[0]);
    close(p[0]);
    write(p[1], "x", 1);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "1:1"), "closing one fd of a dup'ed file keeps the interest");
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL) < 0 && errno == ENOENT, "DEL by the dup: ENOENT (key is fd + file)");
    CHECK(add(ep, d, EPOLLIN, 2) == 0, "the dup can be added on its own");
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 2, "both report");
    close(d);
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 0, "last fd closed: both interests gone");
    /* fork shares the epoll */
    int q[2];
    pipe(q);
    pid_t k = fork();
    if (k == 0) {
        add(ep, q[0], EPOLLIN, 3);
        write(q[1], "y", 1);
        _exit(0);
    }
    SAY("child: %s\n", t_wait(k));
    CHECK(waitfor(ep, 8, 0, s, sizeof s) == 1 && !strcmp(s, "3:1"), "an interest added by a child is seen by the parent");
    close(q[0]);
    close(q[1]);
    close(p[1]);
    close(ep);
}

int main(void) {
    t_begin("t_epoll");
    t_errors();
    t_triggers();
    t_sockets();
    t_nested_and_waiting();
    t_close_dup_fork();
    return t_end();
}
