/* Guest side of tests/net_errors.rs. In the guest: listens on
 * 0.0.0.0:8080 (the host reaches it through eth0=user's port forward),
 * reads "REFUSED SILENT\n": two host ports, one nobody listens on and
 * one whose listener drops SYNs (a full backlog); the host is 10.0.2.2,
 * out through the NAT. Natively (`t_net_errors HOST REFUSED SILENT`) the
 * same connects go straight to HOST, and the test compares the lines:
 *   1. a blocking connect to REFUSED: ECONNREFUSED;
 *   2. a blocking connect to SILENT with TCP_SYNCNT 1: ETIMEDOUT after
 *      Linux's 1 + 2 s of SYN retries;
 *   3. the same, non-blocking: EINPROGRESS, then poll says POLLOUT,
 *      POLLERR and POLLHUP, and SO_ERROR is ETIMEDOUT;
 * each line goes to stdout and to the host connection, which is then
 * closed; exits 0. */
#include "t_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

static int report_fd = -1;

static void say(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fputs(line, stdout);
    if (report_fd >= 0 && n > 0) {
        if (write(report_fd, line, (size_t)n) < 0) report_fd = -1;
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static const char *host = "10.0.2.2";

static struct sockaddr_in gateway(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    return a;
}

static int syncnt_socket(int flags) {
    int s = socket(AF_INET, SOCK_STREAM | flags, 0), one = 1;
    if (setsockopt(s, IPPROTO_TCP, TCP_SYNCNT, &one, sizeof one)) say("TCP_SYNCNT: %s\n", strerror(errno));
    return s;
}

/* Guest mode: the ports come from the host through the forward. */
static int listen_for_ports(int *refused, int *silent) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    if (bind(l, (void *)&a, sizeof a) || listen(l, 8)) {
        printf("listen: %s\n", strerror(errno));
        return 1;
    }
    printf("listening\n");
    report_fd = accept(l, NULL, NULL);
    close(l);
    char req[64] = {0};
    size_t got = 0;
    while (got < sizeof req - 1 && !strchr(req, '\n')) {
        ssize_t r = read(report_fd, req + got, sizeof req - 1 - got);
        if (r <= 0) break;
        got += r;
    }
    if (sscanf(req, "%d %d", refused, silent) != 2) {
        say("bad request: %s\n", req);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int refused = 0, silent = 0;
    if (argc == 4) {
        host = argv[1];
        refused = atoi(argv[2]);
        silent = atoi(argv[3]);
    } else if (listen_for_ports(&refused, &silent)) {
        return 1;
    }

    /* 1 */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in d = gateway(refused);
    int r = connect(s, (void *)&d, sizeof d);
    say("refused: %d %s\n", r, r ? strerror(errno) : "ok");
    close(s);

    /* 2 */
    s = syncnt_socket(0);
    d = gateway(silent);
    double t0 = now();
    r = connect(s, (void *)&d, sizeof d);
    int e = errno;
    double took = now() - t0;
    say("silent: %d %s after %s\n", r, r ? strerror(e) : "ok",
        took >= 2.5 && took < 6 ? "about 3 s" : "the wrong time");
    if (took < 2.5 || took >= 6) say("took %.2f s\n", took);
    close(s);

    /* 3 */
    s = syncnt_socket(SOCK_NONBLOCK);
    r = connect(s, (void *)&d, sizeof d);
    say("nonblocking: %d %s\n", r, r ? strerror(errno) : "ok");
    struct pollfd p = {.fd = s, .events = POLLOUT};
    r = poll(&p, 1, 10000);
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
    say("poll: %d%s%s%s, SO_ERROR %s\n", r, p.revents & POLLOUT ? " POLLOUT" : "",
        p.revents & POLLERR ? " POLLERR" : "", p.revents & POLLHUP ? " POLLHUP" : "",
        err ? strerror(err) : "0");
    close(s);
    say("done\n");
    if (report_fd >= 0) close(report_fd);
    return 0;
}
