/* Guest test: sendmmsg that cannot send everything returns the count of
 * messages sent so far (Linux's __sys_sendmmsg), each msg_len holding
 * the bytes of its message that went; the error of the message that
 * failed is dropped. Non-blocking: a full queue stops it (a stream
 * message that went in part counts, with its short msg_len); nothing
 * sent is EAGAIN. Blocking: every message goes while a reader drains;
 * a signal while blocked returns the messages sent (the one cut short
 * counted). A bad buffer or address in a later message returns the
 * count before it. Printed facts do not depend on buffer sizes. */
#include "t_common.h"
#include "t_sock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define N 64
#define MSG (64 << 10)

/* n messages of `each` bytes over b, one iovec each. */
static struct mmsghdr *msgs(unsigned char *b, int n, size_t each) {
    static struct mmsghdr m[N];
    static struct iovec v[N];
    memset(m, 0, sizeof m);
    for (int i = 0; i < n; i++) {
        v[i] = (struct iovec){b + (size_t)i * each, each};
        m[i].msg_hdr.msg_iov = &v[i];
        m[i].msg_hdr.msg_iovlen = 1;
        m[i].msg_len = 0xdead;
    }
    return m;
}

/* Reads everything until EOF or EAGAIN; checks the pattern. */
static size_t drain(int fd, int *bad) {
    unsigned char *r = malloc(1 << 20);
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, r, 1 << 20, MSG_DONTWAIT);
        if (k <= 0) {
            /* TCP loopback may still hold some in flight: one more look. */
            usleep(20000);
            k = recv(fd, r, 1 << 20, MSG_DONTWAIT);
            if (k <= 0) break;
        }
        for (ssize_t i = 0; i < k; i++) *bad |= r[i] != t_pat(got + i);
        got += k;
    }
    free(r);
    return got;
}

static void t_nonblocking_stream(int tcp) {
    const char *fam = tcp ? "tcp" : "unix";
    int sv[2];
    CHECK(t_stream_pair(tcp, sv, 65536) == 0, "%s: pair", fam);
    unsigned char *b = t_pattern((size_t)N * MSG);
    struct mmsghdr *m = msgs(b, N, MSG);
    int n = sendmmsg(sv[0], m, N, MSG_DONTWAIT);
    CHECK(n > 0 && n < N, "%s: a full buffer stops sendmmsg part-way with the count sent", fam);
    size_t sum = 0;
    int whole = 1;
    for (int i = 0; i < n; i++) {
        sum += m[i].msg_len;
        if (i < n - 1) whole &= m[i].msg_len == MSG;
    }
    CHECK(whole, "%s: the messages before the last counted went whole", fam);
    CHECK(n > 0 && m[n - 1].msg_len > 0 && m[n - 1].msg_len <= MSG,
          "%s: the last counted went whole or in part, its msg_len says how much", fam);
    CHECK(m[n < N ? n : N - 1].msg_len == 0xdead, "%s: msg_len of the first not sent untouched", fam);
    errno = 0;
    int again = sendmmsg(sv[0], m + n, N - n, MSG_DONTWAIT);
    CHECK(again == -1 && errno == EAGAIN, "%s: nothing sent is EAGAIN", fam);
    int bad = 0;
    size_t got = drain(sv[1], &bad);
    CHECK(got == sum && !bad, "%s: the reader gets exactly the bytes msg_len counted, in order", fam);
    free(b);
    close(sv[0]), close(sv[1]);
}

static void t_nonblocking_dgram(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "dgram: pair");
    unsigned char *b = t_pattern((size_t)N * 4096);
    struct mmsghdr *m = msgs(b, N, 4096);
    int total = 0, calls = 0, n;
    /* Sends until the peer's queue is full. */
    while ((n = sendmmsg(sv[0], m, N, MSG_DONTWAIT)) == N) total += n, calls++;
    CHECK(n > 0 && n < N, "dgram: a full queue stops sendmmsg part-way with the count sent");
    total += n > 0 ? n : 0;
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= m[i].msg_len == 4096;
    CHECK(ok, "dgram: each message counted went whole");
    int got = 0;
    char r[8192];
    while (recv(sv[1], r, sizeof r, MSG_DONTWAIT) == 4096) got++;
    CHECK(got == total, "dgram: exactly the messages counted arrived");
    free(b);
    close(sv[0]), close(sv[1]);
}

/* Message 2 of 4 has a bad buffer: 2 sent, EFAULT dropped; then a UDP
 * message to port 0 in third place: 2 sent, EINVAL dropped. */
static void t_error_midway(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "fault: pair");
    unsigned char *b = t_pattern(4 * 100);
    struct mmsghdr *m = msgs(b, 4, 100);
    m[2].msg_hdr.msg_iov->iov_base = (void *)8;
    CHECK(sendmmsg(sv[0], m, 4, 0) == 2, "a bad buffer in message 3: the 2 before it count");
    CHECK(m[2].msg_len == 0xdead, "its msg_len untouched");
    char r[200];
    int got = 0;
    while (recv(sv[1], r, sizeof r, MSG_DONTWAIT) == 100) got++;
    CHECK(got == 2, "2 arrived");
    errno = 0;
    CHECK(sendmmsg(sv[0], m + 2, 2, 0) == -1 && errno == EFAULT, "the bad one first: EFAULT");
    close(sv[0]), close(sv[1]);

    int u = socket(AF_INET, SOCK_DGRAM, 0), r2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(r2, (void *)&a, sizeof a);
    getsockname(r2, (void *)&a, &len);
    struct sockaddr_in zero = a;
    zero.sin_port = 0;
    m = msgs(b, 4, 100);
    for (int i = 0; i < 4; i++) {
        m[i].msg_hdr.msg_name = i == 2 ? &zero : &a;
        m[i].msg_hdr.msg_namelen = sizeof a;
    }
    CHECK(sendmmsg(u, m, 4, 0) == 2, "udp: a bad address in message 3: the 2 before it count");
    usleep(20000);
    got = 0;
    while (recv(r2, r, sizeof r, MSG_DONTWAIT) == 100) got++;
    CHECK(got == 2, "udp: 2 arrived");
    free(b);
    close(u), close(r2);
}

static void t_blocking(int tcp) {
    const char *fam = tcp ? "tcp" : "unix";
    int sv[2];
    CHECK(t_stream_pair(tcp, sv, 65536) == 0, "%s blocking: pair", fam);
    unsigned char *b = t_pattern((size_t)N * MSG);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        unsigned char *r = malloc(MSG);
        size_t got = 0;
        int bad = 0;
        usleep(50000);
        for (;;) {
            ssize_t k = read(sv[1], r, got % 3 ? MSG : 3000);
            if (k <= 0) break;
            for (ssize_t i = 0; i < k; i++) bad |= r[i] != t_pat(got + i);
            got += k;
        }
        _exit(got == (size_t)N * MSG && !bad ? 0 : 1);
    }
    close(sv[1]);
    struct mmsghdr *m = msgs(b, N, MSG);
    int n = sendmmsg(sv[0], m, N, 0);
    CHECK(n == N, "%s: a blocking sendmmsg of 4 MiB sends every message (%d)", fam, n);
    int whole = 1;
    for (int i = 0; i < N; i++) whole &= m[i].msg_len == MSG;
    CHECK(whole, "%s: every msg_len is the message's size", fam);
    close(sv[0]);
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "%s: the reader got all of it in order", fam);
    free(b);
}

static void on_alarm(int s) { (void)s; }

static void t_signal(int tcp) {
    const char *fam = tcp ? "tcp" : "unix";
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    int sv[2];
    CHECK(t_stream_pair(tcp, sv, 65536) == 0, "%s signal: pair", fam);
    unsigned char *b = t_pattern((size_t)N * MSG);
    struct mmsghdr *m = msgs(b, N, MSG);
    ualarm(300 * 1000, 0);
    int n = sendmmsg(sv[0], m, N, 0);
    CHECK(n > 0 && n < N, "%s: a signal ends a blocked sendmmsg with the count sent", fam);
    size_t sum = 0;
    for (int i = 0; i < n; i++) sum += m[i].msg_len;
    int bad = 0;
    size_t got = drain(sv[1], &bad);
    CHECK(got == sum && !bad, "%s: the reader gets exactly the bytes msg_len counted", fam);
    free(b);
    close(sv[0]), close(sv[1]);
}

int main(void) {
    t_begin("t_sendmmsg");
    signal(SIGPIPE, SIG_IGN);
    for (int tcp = 0; tcp < 2; tcp++) t_nonblocking_stream(tcp);
    t_nonblocking_dgram();
    t_error_midway();
    for (int tcp = 0; tcp < 2; tcp++) {
        t_blocking(tcp);
        t_signal(tcp);
    }
    return t_end();
}
