/* Guest test: AF_INET/AF_INET6 sockets over loopback: a TCP echo server
 * and client in one program (fork), a 1 MiB transfer with shutdown,
 * refused connections (blocking and not), non-blocking connect, UDP
 * echo, connected UDP, MSG_PEEK/TRUNC/DONTWAIT/WAITALL, epoll readiness
 * (listener, data, peer close), IPv6 on ::1 and v4-mapped peers, socket
 * options, bind conflicts, SO_LINGER 0 resets, bad input.
 * Ports are ephemeral (bind to port 0, getsockname) so the native run
 * never depends on which host ports are free. */
#include "t_common.h"
#include "t_sock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define PMASK (POLLIN | POLLOUT | POLLERR | POLLHUP)

static ssize_t read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) return r < 0 ? r : (ssize_t)got;
        got += r;
    }
    return got;
}

static void t_echo(void) {
    int port, s = t_tcp_listener(&port, 4);
    CHECK(s >= 0 && port > 0, "listen on 127.0.0.1:ephemeral");
    pid_t pid = fork();
    if (pid == 0) {
        int c = t_tcp_connect(port);
        struct sockaddr_in me;
        socklen_t l = sizeof me;
        getsockname(c, (void *)&me, &l);
        char msg[32];
        snprintf(msg, sizeof msg, "hello %d", ntohs(me.sin_port));
        if (write(c, msg, strlen(msg)) != (ssize_t)strlen(msg)) _exit(2);
        char back[32] = {0};
        if (read_full(c, back, strlen(msg)) != (ssize_t)strlen(msg)) _exit(3);
        if (strcmp(back, msg) != 0) _exit(4);
        close(c);
        _exit(0);
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int a = accept4(s, (void *)&peer, &pl, SOCK_CLOEXEC);
    CHECK(a >= 0 && pl == sizeof peer && peer.sin_family == AF_INET &&
              peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "accept4 gives the peer's address");
    CHECK(fcntl(a, F_GETFD) == FD_CLOEXEC, "accept4 SOCK_CLOEXEC");
    char buf[64] = {0};
    ssize_t n = read(a, buf, sizeof buf - 1);
    char want[32];
    snprintf(want, sizeof want, "hello %d", ntohs(peer.sin_port));
    CHECK(n > 0 && strcmp(buf, want) == 0, "server reads the client's message (its port matches getpeername)");
    struct sockaddr_in p2, me2;
    socklen_t l2 = sizeof p2, l3 = sizeof me2;
    CHECK(getpeername(a, (void *)&p2, &l2) == 0 && p2.sin_port == peer.sin_port,
          "getpeername on the accepted socket");
    CHECK(getsockname(a, (void *)&me2, &l3) == 0 && ntohs(me2.sin_port) == port,
          "the accepted socket's name is the listener's port");
    CHECK(write(a, buf, n) == n, "echo back");
    CHECK(read(a, buf, sizeof buf) == 0, "EOF after the client closes");
    SAY("client: %s\n", t_wait(pid));
    close(a);
    close(s);
}

/* 1 MiB client -> server, shutdown(SHUT_WR), the server answers with
 * the byte count and a checksum. */
static void t_bulk(void) {
    int port, s = t_tcp_listener(&port, 1);
    enum { TOTAL = 1 << 20 };
    pid_t pid = fork();
    if (pid == 0) {
        int c = t_tcp_connect(port);
        if (c < 0) _exit(2);
        static unsigned char b[TOTAL];
        for (int i = 0; i < TOTAL; i++) b[i] = (unsigned char)(i * 7 + i / 251);
        size_t off = 0;
        while (off < TOTAL) {
            ssize_t w = write(c, b + off, TOTAL - off > 10000 ? 10000 : TOTAL - off);
            if (w <= 0) _exit(3);
            off += w;
        }
        if (shutdown(c, SHUT_WR) != 0) _exit(4);
        unsigned long ans[2];
        if (read_full(c, ans, sizeof ans) != sizeof ans) _exit(5);
        unsigned long sum = 0;
        for (int i = 0; i < TOTAL; i++) sum = sum * 31 + b[i];
        _exit(ans[0] == TOTAL && ans[1] == sum ? 0 : 6);
    }
    int a = accept(s, NULL, NULL);
    static unsigned char buf[65536];
    unsigned long total = 0, sum = 0;
    ssize_t n;
    while ((n = read(a, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) sum = sum * 31 + buf[i];
        total += n;
    }
    CHECK(n == 0 && total == TOTAL, "1 MiB arrives, then EOF after SHUT_WR");
    unsigned long ans[2] = {total, sum};
    CHECK(write(a, ans, sizeof ans) == sizeof ans, "the half-closed peer can still be written");
    SAY("bulk client: %s\n", t_wait(pid));
    close(a);
    close(s);
}

static void t_refused_and_nonblock(void) {
    int port, s = t_tcp_listener(&port, 2);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = t_lo4(port);
    int r = connect(c, (void *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS, "non-blocking connect: 0 or EINPROGRESS");
    struct pollfd p = {c, POLLIN | POLLOUT, 0};
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & PMASK) == POLLOUT, "then POLLOUT only");
    int e = -1;
    socklen_t l = sizeof e;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e == 0, "SO_ERROR 0");
    r = connect(c, (void *)&a, sizeof a);
    CHECK(r == 0 || errno == EISCONN, "connect again: 0 or EISCONN");
    CHECK(connect(c, (void *)&a, sizeof a) == -1 && errno == EISCONN, "and then EISCONN");
    char ch;
    CHECK(recv(c, &ch, 1, 0) == -1 && errno == EAGAIN, "recv on an empty non-blocking socket: EAGAIN");
    int acc = accept(s, NULL, NULL);
    CHECK(acc >= 0, "the listener has it");
    close(acc);
    close(c);
    close(s);

    /* Nobody listens there now. */
    int d = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(d, (void *)&a, sizeof a);
    CHECK(r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED), "non-blocking connect to a closed port");
    p.fd = d;
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & PMASK) == PMASK, "POLLIN|POLLOUT|POLLERR|POLLHUP");
    CHECK(getsockopt(d, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e == ECONNREFUSED, "SO_ERROR ECONNREFUSED");
    CHECK(connect(d, (void *)&a, sizeof a) == -1 && errno == ECONNABORTED, "connect after the error was read: ECONNABORTED");
    close(d);
    int g = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(g, (void *)&a, sizeof a) == -1 && errno == ECONNREFUSED, "blocking connect: ECONNREFUSED");
    p.fd = g;
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & PMASK) == (POLLOUT | POLLHUP), "an unconnected socket polls POLLOUT|POLLHUP");
    close(g);
}

static void t_errors(void) {
    CHECK(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -1 && errno == EPROTONOSUPPORT, "stream with IPPROTO_UDP: EPROTONOSUPPORT");
    CHECK(socket(AF_INET, SOCK_SEQPACKET, 0) == -1 && errno == ESOCKTNOSUPPORT, "inet seqpacket: ESOCKTNOSUPPORT");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = t_lo4(0);
    CHECK(bind(s, (void *)&a, sizeof a - 1) == -1 && errno == EINVAL, "bind with a short address: EINVAL");
    a.sin_family = AF_INET6;
    CHECK(bind(s, (void *)&a, sizeof a) == -1 && errno == EAFNOSUPPORT, "bind with the wrong family: EAFNOSUPPORT");
    a = t_lo4(0);
    a.sin_addr.s_addr = inet_addr("192.0.2.1");
    CHECK(bind(s, (void *)&a, sizeof a) == -1 && errno == EADDRNOTAVAIL, "bind to an address not ours: EADDRNOTAVAIL");
    struct sockaddr_in p;
    socklen_t l = sizeof p;
    CHECK(getpeername(s, (void *)&p, &l) == -1 && errno == ENOTCONN, "getpeername unconnected: ENOTCONN");
    CHECK(send(s, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE, "send unconnected: EPIPE");
    char c;
    CHECK(recv(s, &c, 1, 0) == -1 && errno == ENOTCONN, "recv unconnected: ENOTCONN");
    CHECK(shutdown(s, SHUT_WR) == -1 && errno == ENOTCONN, "shutdown unconnected: ENOTCONN");
    close(s);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(listen(u, 1) == -1 && errno == EOPNOTSUPP, "listen on UDP: EOPNOTSUPP");
    CHECK(send(u, "x", 1, 0) == -1 && errno == EDESTADDRREQ, "UDP send without a peer: EDESTADDRREQ");
    close(u);

    /* Bind conflicts. */
    int port, l1 = t_tcp_listener(&port, 1);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    a = t_lo4(port);
    CHECK(bind(b, (void *)&a, sizeof a) == -1 && errno == EADDRINUSE, "bind to a listening port: EADDRINUSE");
    int one = 1;
    setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    CHECK(bind(b, (void *)&a, sizeof a) == -1 && errno == EADDRINUSE, "even with SO_REUSEADDR");
    close(l1);
    CHECK(bind(b, (void *)&a, sizeof a) == 0, "free once the listener closed");
    CHECK(bind(b, (void *)&a, sizeof a) == -1 && errno == EINVAL, "bind twice: EINVAL");
    close(b);
}

static void t_udp(void) {
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in aa = t_lo4(0), ba = t_lo4(0), from;
    socklen_t l = sizeof aa;
    bind(a, (void *)&aa, sizeof aa);
    getsockname(a, (void *)&aa, &l);
    CHECK(sendto(b, "ping", 4, 0, (void *)&aa, sizeof aa) == 4, "sendto from an unbound socket (autobind)");
    l = sizeof ba;
    CHECK(getsockname(b, (void *)&ba, &l) == 0 && ba.sin_port != 0, "the sender got a port");
    char buf[16] = {0};
    socklen_t fl = sizeof from;
    CHECK(recvfrom(a, buf, sizeof buf, 0, (void *)&from, &fl) == 4 && !memcmp(buf, "ping", 4) &&
              from.sin_port == ba.sin_port && fl == sizeof from,
          "recvfrom gives the datagram and its sender");
    CHECK(sendto(a, "pong!", 5, 0, (void *)&from, fl) == 5, "echo back");
    CHECK(recv(b, buf, 2, 0) == 2 && !memcmp(buf, "po", 2), "a short read truncates");
    CHECK(recv(b, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN, "the rest of the datagram is gone");
    sendto(b, "abcdef", 6, 0, (void *)&aa, sizeof aa);
    CHECK(recv(a, buf, 3, MSG_PEEK | MSG_TRUNC) == 6, "MSG_PEEK|MSG_TRUNC gives the full length");
    struct iovec iov = {buf, 3};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK(recvmsg(a, &m, 0) == 3 && (m.msg_flags & MSG_TRUNC), "recvmsg sets MSG_TRUNC");
    int n = -1;
    CHECK(ioctl(a, FIONREAD, &n) == 0 && n == 0, "FIONREAD 0 when empty");
    /* Connected UDP: only the peer's datagrams. */
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(connect(a, (void *)&ba, sizeof ba) == 0, "connect a UDP socket");
    sendto(c, "other", 5, 0, (void *)&aa, sizeof aa);
    sendto(b, "peer", 4, 0, (void *)&aa, sizeof aa);
    CHECK(recv(a, buf, sizeof buf, 0) == 4 && !memcmp(buf, "peer", 4), "a connected UDP socket gets only its peer's datagrams");
    CHECK(send(a, "back", 4, 0) == 4 && recv(b, buf, sizeof buf, 0) == 4, "send on a connected UDP socket");
    struct sockaddr_in pn;
    l = sizeof pn;
    CHECK(getpeername(a, (void *)&pn, &l) == 0 && pn.sin_port == ba.sin_port, "getpeername on connected UDP");
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    CHECK(connect(a, &un, sizeof un) == 0 && getpeername(a, (void *)&pn, &l) == -1 && errno == ENOTCONN,
          "AF_UNSPEC dissolves the association");
    close(a);
    close(b);
    close(c);
}

static void t_epoll(void) {
    int port, s = t_tcp_listener(&port, 4);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    CHECK(epoll_wait(ep, out, 4, 0) == 0, "a listener with nobody waiting is not ready");
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = t_lo4(port);
    connect(c, (void *)&a, sizeof a);
    CHECK(epoll_wait(ep, out, 4, 5000) == 1 && out[0].data.u32 == 1 && out[0].events == EPOLLIN,
          "epoll: the listener is readable once a client connects");
    int acc = accept4(s, NULL, NULL, SOCK_NONBLOCK);
    CHECK(acc >= 0, "accept4 SOCK_NONBLOCK");
    fcntl(s, F_SETFL, O_NONBLOCK);
    CHECK(accept(s, NULL, NULL) == -1 && errno == EAGAIN, "nothing more to accept: EAGAIN");
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, acc, &ev);
    CHECK(epoll_wait(ep, out, 4, 0) == 0, "no data, not ready");
    CHECK(write(c, "data", 4) == 4, "client writes");
    CHECK(epoll_wait(ep, out, 4, 5000) == 1 && out[0].data.u32 == 2 && out[0].events == EPOLLIN,
          "epoll: data makes the accepted socket readable");
    CHECK(epoll_wait(ep, out, 4, 0) == 0, "edge-triggered: once");
    char buf[8];
    CHECK(read(acc, buf, sizeof buf) == 4, "read it");
    close(c);
    CHECK(epoll_wait(ep, out, 4, 5000) == 1 && out[0].events == (EPOLLIN | EPOLLRDHUP),
          "epoll: the peer's close is EPOLLIN|EPOLLRDHUP");
    CHECK(read(acc, buf, sizeof buf) == 0, "then EOF");
    close(acc);
    close(ep);
    close(s);
}

static void t_options(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0), v = -1, one = 1;
    socklen_t l = sizeof v;
    CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_STREAM, "SO_TYPE");
    CHECK(getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &l) == 0 && v == AF_INET, "SO_DOMAIN");
    CHECK(getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l) == 0 && v == IPPROTO_TCP, "SO_PROTOCOL");
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
              getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &l) == 0 && v == 1,
          "SO_REUSEADDR");
    CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
              getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l) == 0 && v == 1,
          "TCP_NODELAY");
    CHECK(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0 &&
              getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, &l) == 0 && v == 1,
          "SO_KEEPALIVE");
    int tos = 0x10;
    CHECK(setsockopt(s, IPPROTO_IP, IP_TOS, &tos, sizeof tos) == 0 &&
              getsockopt(s, IPPROTO_IP, IP_TOS, &v, &l) == 0 && v == 0x10,
          "IP_TOS");
    CHECK(getsockopt(s, IPPROTO_IP, IP_TTL, &v, &l) == 0 && v == 64, "IP_TTL default 64");
    int buf = 100000;
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf) == 0 &&
              getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &l) == 0 && v == 200000,
          "SO_RCVBUF doubles");
    struct linger lg = {1, 5}, lg2;
    socklen_t ll = sizeof lg2;
    CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 &&
              getsockopt(s, SOL_SOCKET, SO_LINGER, &lg2, &ll) == 0 && lg2.l_onoff == 1 && lg2.l_linger == 5,
          "SO_LINGER");
    CHECK(setsockopt(s, SOL_SOCKET, 9999, &one, sizeof one) == -1 && errno == ENOPROTOOPT, "unknown option: ENOPROTOOPT");
    CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v == 0, "SO_ACCEPTCONN 0");
    struct sockaddr_in a = t_lo4(0);
    bind(s, (void *)&a, sizeof a);
    listen(s, 1);
    CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v == 1, "SO_ACCEPTCONN 1 when listening");
    close(s);
}

/* SO_LINGER {1, 0}: close resets, the peer reads ECONNRESET. */
static void t_reset(void) {
    int port, s = t_tcp_listener(&port, 1);
    int c = t_tcp_connect(port);
    int a = accept(s, NULL, NULL);
    struct linger lg = {1, 0};
    setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(a);
    char b;
    CHECK(recv(c, &b, 1, 0) == -1 && errno == ECONNRESET, "SO_LINGER 0 close: the peer gets ECONNRESET");
    CHECK(recv(c, &b, 1, 0) == 0, "then EOF");
    signal(SIGPIPE, SIG_IGN);
    CHECK(send(c, "x", 1, 0) == -1 && errno == EPIPE, "and sends fail with EPIPE");
    signal(SIGPIPE, SIG_DFL);
    close(c);
    close(s);
}

static void t_waitall_and_peek(void) {
    int port, s = t_tcp_listener(&port, 1);
    pid_t pid = fork();
    if (pid == 0) {
        int c = t_tcp_connect(port);
        for (int i = 0; i < 4; i++) {
            if (write(c, "ab", 2) != 2) _exit(2);
            usleep(20000);
        }
        close(c);
        _exit(0);
    }
    int a = accept(s, NULL, NULL);
    char buf[16] = {0};
    CHECK(recv(a, buf, 8, MSG_WAITALL) == 8 && !memcmp(buf, "abababab", 8), "MSG_WAITALL waits for all 8 bytes");
    SAY("waitall writer: %s\n", t_wait(pid));
    close(a);
    close(s);
}

static void t_ipv6(void) {
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    socklen_t l = sizeof a;
    CHECK(bind(s, (void *)&a, sizeof a) == 0 && listen(s, 4) == 0 && getsockname(s, (void *)&a, &l) == 0 &&
              l == sizeof a,
          "an AF_INET6 listener on [::]");
    int port = ntohs(a.sin6_port);
    /* A v6 client on ::1. */
    int c6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 to = a;
    to.sin6_addr = in6addr_loopback;
    CHECK(connect(c6, (void *)&to, sizeof to) == 0, "connect to [::1]");
    struct sockaddr_in6 peer;
    socklen_t pl = sizeof peer;
    int a6 = accept(s, (void *)&peer, &pl);
    CHECK(a6 >= 0 && pl == sizeof peer && IN6_IS_ADDR_LOOPBACK(&peer.sin6_addr), "the peer is ::1");
    CHECK(write(c6, "six", 3) == 3 && read(a6, (char[4]){0}, 4) == 3, "data over IPv6");
    /* A v4 client: the v6 listener sees a v4-mapped peer. */
    int c4 = t_tcp_connect(port);
    CHECK(c4 >= 0, "an AF_INET client reaches the [::] listener");
    pl = sizeof peer;
    int a4 = accept(s, (void *)&peer, &pl);
    char txt[64] = "";
    inet_ntop(AF_INET6, &peer.sin6_addr, txt, sizeof txt);
    CHECK(a4 >= 0 && strcmp(txt, "::ffff:127.0.0.1") == 0, "its peer is %s", txt);
    /* UDP over ::1. */
    int u1 = socket(AF_INET6, SOCK_DGRAM, 0), u2 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 ua = to;
    ua.sin6_port = 0;
    l = sizeof ua;
    bind(u1, (void *)&ua, sizeof ua);
    getsockname(u1, (void *)&ua, &l);
    char b[8];
    CHECK(sendto(u2, "udp6", 4, 0, (void *)&ua, sizeof ua) == 4 && recv(u1, b, sizeof b, 0) == 4, "UDP over ::1");
    close(u1);
    close(u2);
    close(c6);
    close(a6);
    close(c4);
    close(a4);
    close(s);
}

int main(void) {
    t_begin("t_inet");
    t_echo();
    t_bulk();
    t_refused_and_nonblock();
    t_errors();
    t_udp();
    t_epoll();
    t_options();
    t_reset();
    t_waitall_and_peek();
    t_ipv6();
    return t_end();
}
