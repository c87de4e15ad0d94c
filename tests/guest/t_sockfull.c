/* Guest test: a blocking stream socket moves everything asked for.
 * write, writev (64 iovecs), send and sendmsg (1024 iovecs) of 4 MiB on
 * AF_UNIX and TCP return the whole count while a slow reader drains it;
 * MSG_WAITALL receives larger than the peer's SO_SNDBUF plus our
 * SO_RCVBUF (and larger than 1 MiB) complete; the data arrives in order.
 * Short counts only where Linux gives them: a signal during a write
 * that moved some bytes, a signal during a MSG_WAITALL receive that got
 * some, and the peer closing part-way. */
#include "t_common.h"
#include "t_sock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define BIG (4 << 20)

/* Child: reads n bytes slowly from fd in small pieces, checks them
 * against the pattern; exit 0 if all came in order. */
static pid_t slow_reader(int fd, size_t n) {
    pid_t pid = fork();
    if (pid) return pid;
    unsigned char *b = malloc(65536);
    size_t got = 0;
    int bad = 0;
    usleep(100 * 1000);
    while (got < n) {
        ssize_t r = read(fd, b, got % 3 ? 65536 : 1000);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) bad |= b[i] != t_pat(got + i);
        got += r;
    }
    _exit(got == n && !bad ? 0 : 1);
}

enum how { WRITE, WRITEV, SEND, SENDMSG };
static const char *hows[] = {"write", "writev", "send", "sendmsg"};

static ssize_t put(int fd, enum how h, unsigned char *b, size_t n) {
    static struct iovec v[1024];
    int cnt = h == WRITEV ? 64 : 1024;
    size_t each = n / cnt;
    for (int i = 0; i < cnt; i++) v[i] = (struct iovec){b + i * each, each};
    struct msghdr m = {.msg_iov = v, .msg_iovlen = cnt};
    switch (h) {
    case WRITE: return write(fd, b, n);
    case WRITEV: return writev(fd, v, cnt);
    case SEND: return send(fd, b, n, 0);
    default: return sendmsg(fd, &m, 0);
    }
}

static void t_whole_writes(int tcp) {
    unsigned char *b = t_pattern(BIG);
    for (enum how h = WRITE; h <= SENDMSG; h++) {
        int sv[2];
        CHECK(t_stream_pair(tcp, sv, 0) == 0, "%s %s: pair", tcp ? "tcp" : "unix", hows[h]);
        pid_t pid = slow_reader(sv[1], BIG);
        ssize_t n = put(sv[0], h, b, BIG);
        CHECK(n == BIG, "%s %s of 4 MiB returns all of it (%zd)", tcp ? "tcp" : "unix", hows[h], n);
        CHECK(strcmp(t_wait(pid), "exited 0") == 0, "%s %s: the reader got it all in order",
              tcp ? "tcp" : "unix", hows[h]);
        close(sv[0]), close(sv[1]);
    }
    free(b);
}

/* Child: writes n bytes in pieces of 3000 with short pauses. */
static pid_t trickle(int fd, size_t n, size_t upto) {
    pid_t pid = fork();
    if (pid) return pid;
    unsigned char *b = t_pattern(n);
    size_t sent = 0;
    while (sent < upto) {
        size_t k = upto - sent < 30000 ? upto - sent : 30000;
        ssize_t w = write(fd, b + sent, k);
        if (w <= 0) _exit(2);
        sent += w;
        if (sent % 300000 < 30000) usleep(2000);
    }
    _exit(0);
}

static void t_waitall(int tcp) {
    const char *fam = tcp ? "tcp" : "unix";
    size_t sizes[] = {1 << 20, 3 << 20};
    for (int i = 0; i < 2; i++) {
        size_t n = sizes[i];
        int sv[2];
        CHECK(t_stream_pair(tcp, sv, 0) == 0, "%s waitall %zu: pair", fam, n);
        int small = tcp ? 65536 : 8192;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        pid_t pid = trickle(sv[0], n, n);
        unsigned char *b = malloc(n);
        ssize_t r = recv(sv[1], b, n, MSG_WAITALL);
        int bad = 0;
        for (size_t j = 0; r > 0 && j < (size_t)r; j++) bad |= b[j] != t_pat(j);
        CHECK(r == (ssize_t)n && !bad, "%s MSG_WAITALL of %zu KiB past both buffers: all, in order",
              fam, n >> 10);
        CHECK(strcmp(t_wait(pid), "exited 0") == 0, "%s waitall %zu: writer done", fam, n);
        /* recvmsg with several iovecs, the peer closing part-way. */
        pid = trickle(sv[0], n, 100000);
        close(sv[0]);
        struct iovec v[3] = {{b, 1000}, {b + 1000, 50000}, {b + 51000, n - 51000}};
        struct msghdr m = {.msg_iov = v, .msg_iovlen = 3};
        r = recvmsg(sv[1], &m, MSG_WAITALL);
        bad = 0;
        for (size_t j = 0; r > 0 && j < (size_t)r; j++) bad |= b[j] != t_pat(j);
        CHECK(r == 100000 && !bad, "%s recvmsg MSG_WAITALL, peer closes after 100000: %zd", fam, r);
        CHECK(strcmp(t_wait(pid), "exited 0") == 0, "%s waitall close: writer done", fam);
        free(b);
        close(sv[1]);
    }
}

static void on_alarm(int s) { (void)s; }

/* A signal cuts a blocked write that moved bytes (the count returns)
 * and a MSG_WAITALL receive that got some (the count returns). */
static void t_signal_cuts(int tcp) {
    const char *fam = tcp ? "tcp" : "unix";
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    int sv[2];
    CHECK(t_stream_pair(tcp, sv, 0) == 0, "%s cut: pair", fam);
    unsigned char *b = t_pattern(BIG);
    ualarm(300 * 1000, 0);
    ssize_t n = write(sv[0], b, BIG);
    CHECK(n > 0 && n < BIG, "%s: a signal ends a blocked 4 MiB write with a short count", fam);
    unsigned char *r = malloc(BIG);
    size_t got = 0;
    while (got < (size_t)n) {
        ssize_t k = read(sv[1], r + got, BIG - got);
        if (k <= 0) break;
        got += k;
    }
    CHECK(got == (size_t)n && memcmp(r, b, got) == 0, "%s: exactly those bytes went", fam);
    CHECK(write(sv[0], b, 5000) == 5000, "%s: 5000 more", fam);
    ualarm(300 * 1000, 0);
    ssize_t k = recv(sv[1], r, 100000, MSG_WAITALL);
    CHECK(k == 5000, "%s: a signal ends a MSG_WAITALL recv with what came (%zd)", fam, k);
    free(b), free(r);
    close(sv[0]), close(sv[1]);
}

int main(void) {
    t_begin("t_sockfull");
    signal(SIGPIPE, SIG_IGN);
    for (int tcp = 0; tcp < 2; tcp++) {
        t_whole_writes(tcp);
        t_waitall(tcp);
        t_signal_cuts(tcp);
    }
    return t_end();
}
