/* ICMP port unreachable back to a UDP sender, on lo: a connected UDP
 * socket gets ECONNREFUSED once (recv, send, SO_ERROR, POLLERR), an
 * unconnected one never (no IP_RECVERR), IPv4 and IPv6, and a socket
 * connected to a port that answers sees its data.
 *
 * `t_udprefused ADDR PORT`: only the connected-socket checks against a
 * closed UDP port ADDR:PORT, then "done" (tests/net_udp_icmp.rs runs it
 * natively on 127.0.0.1). As init of a guest with eth0 (the NAT), it
 * listens on TCP 8080 for "PORT\n", runs the same checks against
 * 10.0.2.2:PORT and sends its lines back on that connection. */
#include "t_common.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

/* A UDP port nobody listens on: bound, then closed. */
static int free_port(int family) {
    int s = socket(family, SOCK_DGRAM, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = family;
    if (family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    bind(s, (struct sockaddr *)&ss, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    getsockname(s, (struct sockaddr *)&ss, &len);
    close(s);
    return family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                             : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static socklen_t addr_of(int family, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    ss->ss_family = family;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(port);
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    return sizeof *a;
}

static const char *err(long r) {
    static char b[32];
    if (r >= 0) {
        snprintf(b, sizeof b, "%ld", r);
        return b;
    }
    return strerrorname_np(errno);
}

/* The ICMP error may come back asynchronously (through the NAT). */
static int settle_us = 20000;

static void connected_checks(int family, const char *fam, struct sockaddr_storage *ssp, socklen_t len);
static void other_checks(int family, const char *fam, struct sockaddr_storage *ssp, socklen_t len);

static void refused(int family, const char *fam) {
    struct sockaddr_storage ss;
    socklen_t len = addr_of(family, free_port(family), &ss);
    connected_checks(family, fam, &ss, len);
    other_checks(family, fam, &ss, len);
}

static void connected_checks(int family, const char *fam, struct sockaddr_storage *ssp, socklen_t len) {
    struct sockaddr_storage ss = *ssp;
    char buf[16];
    (void)family;

    int s = socket(family, SOCK_DGRAM, 0);
    CHECK(connect(s, (struct sockaddr *)&ss, len) == 0, "%s connect to a closed port", fam);
    long r = send(s, "a", 1, 0);
    CHECK(r == 1, "%s first send: %s", fam, err(r));
    usleep(settle_us);
    struct pollfd p = {.fd = s, .events = POLLIN | POLLOUT};
    poll(&p, 1, 1000);
    CHECK((p.revents & (POLLERR | POLLIN | POLLOUT)) == (POLLERR | POLLOUT),
          "%s poll: POLLERR%s%s", fam, p.revents & POLLIN ? " POLLIN" : "",
          p.revents & POLLOUT ? " POLLOUT" : "");
    r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    CHECK(r == -1 && errno == ECONNREFUSED, "%s recv after the ICMP: %s", fam, err(r));
    r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    CHECK(r == -1 && errno == EAGAIN, "%s the error is reported once: %s", fam, err(r));

    r = send(s, "b", 1, 0);
    CHECK(r == 1, "%s second send: %s", fam, err(r));
    usleep(settle_us);
    r = send(s, "c", 1, 0);
    CHECK(r == -1 && errno == ECONNREFUSED, "%s the send after it: %s", fam, err(r));

    r = send(s, "d", 1, 0);
    usleep(settle_us);
    int e = -1;
    socklen_t el = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
    CHECK(r == 1 && e == ECONNREFUSED, "%s SO_ERROR: %s", fam, e ? strerrorname_np(e) : "0");
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
    CHECK(e == 0, "%s SO_ERROR again: %s", fam, e ? strerrorname_np(e) : "0");
    close(s);
}

static void other_checks(int family, const char *fam, struct sockaddr_storage *ssp, socklen_t len) {
    struct sockaddr_storage ss = *ssp;
    char buf[16];
    int e = -1;
    socklen_t el = sizeof e;
    long r, r2;
    int s;

    /* Unconnected: the ICMP is not reported. */
    s = socket(family, SOCK_DGRAM, 0);
    r = sendto(s, "e", 1, 0, (struct sockaddr *)&ss, len);
    usleep(settle_us);
    r2 = sendto(s, "f", 1, 0, (struct sockaddr *)&ss, len);
    CHECK(r == 1 && r2 == 1, "%s unconnected sends: %s", fam, err(r2));
    r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    CHECK(r == -1 && errno == EAGAIN, "%s unconnected recv: %s", fam, err(r));
    e = -1;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
    CHECK(e == 0, "%s unconnected SO_ERROR: %s", fam, e ? strerrorname_np(e) : "0");
    close(s);

    /* A port that answers: no error, the data. */
    int srv = socket(family, SOCK_DGRAM, 0);
    len = addr_of(family, 0, &ss);
    bind(srv, (struct sockaddr *)&ss, len);
    getsockname(srv, (struct sockaddr *)&ss, &len);
    s = socket(family, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&ss, len);
    r = send(s, "g", 1, 0);
    usleep(settle_us);
    r2 = recv(srv, buf, sizeof buf, MSG_DONTWAIT);
    CHECK(r == 1 && r2 == 1 && buf[0] == 'g', "%s to a bound port: %s", fam, err(r2));
    r = recv(s, buf, sizeof buf, MSG_DONTWAIT);
    CHECK(r == -1 && errno == EAGAIN, "%s no error from it: %s", fam, err(r));
    close(s);
    close(srv);
}

static void at(const char *addr, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, addr, &a.sin_addr);
    settle_us = 300000;
    connected_checks(AF_INET, "v4", (struct sockaddr_storage *)&a, sizeof a);
    printf("done\n");
}

int main(int argc, char **argv) {
    if (argc == 3) {
        at(argv[1], atoi(argv[2]));
        return t_failures ? 1 : 0;
    }
    if (getpid() == 1 && if_nametoindex("eth0") > 0) {
        /* The NAT run: the port from the host, the lines back to it. */
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0) return 2;
        printf("listening\n");
        int c = accept(l, NULL, NULL);
        char line[32] = {0};
        if (c < 0 || read(c, line, sizeof line - 1) <= 0) return 3;
        fflush(stdout);
        int out = dup(1);
        dup2(c, 1);
        at("10.0.2.2", atoi(line));
        fflush(stdout);
        dup2(out, 1);
        close(c);
        printf("reported\n");
        return t_failures ? 1 : 0;
    }
    t_begin("t_udprefused");
    refused(AF_INET, "v4");
    refused(AF_INET6, "v6");
    return t_end();
}
