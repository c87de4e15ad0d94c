/* Guest test: each inet socket is woken on its own. Edge-triggered epoll
 * reports a socket again only when something happened on that socket:
 * traffic on other connections (TCP and UDP) must not re-report an idle
 * writable socket, and data of the same size arriving again after a
 * full read must be reported again. A reader blocked on one connection
 * sleeps through traffic on the others and wakes for its own bytes;
 * poll() on several sockets answers for the one that got data.
 * Ports are ephemeral (bind to port 0). */
#include "t_common.h"
#include "t_sock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* A TCP connection to 127.0.0.1:port without Nagle's delay. */
static int connect_to(int port) {
    int one = 1, c = t_tcp_connect(port);
    if (c >= 0) setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

/* Events ready on `ep` within `ms`, with their union in *ev. */
static int ready(int ep, int ms, unsigned *ev) {
    struct epoll_event e[4];
    int n = epoll_wait(ep, e, 4, ms);
    *ev = 0;
    for (int i = 0; i < n; i++) *ev |= e[i].events;
    return n;
}

/* Lets loopback ACKs settle (Linux sends them from softirq context). */
static void settle(void) { usleep(50 * 1000); }

static void t_edge(void) {
    int port, l = t_tcp_listener(&port, 8);
    int c1 = connect_to(port), s1 = accept(l, NULL, NULL);
    int c2 = connect_to(port), s2 = accept(l, NULL, NULL);
    CHECK(l >= 0 && c1 >= 0 && s1 >= 0 && c2 >= 0 && s2 >= 0, "two connections");
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = c2};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c2, &e) == 0, "watch c2 edge-triggered");
    unsigned ev;
    int n = ready(ep, 1000, &ev);
    CHECK(n == 1 && ev == EPOLLOUT, "idle c2: one EPOLLOUT edge (n=%d ev=%#x)", n, ev);
    settle();
    n = ready(ep, 0, &ev);
    CHECK(n == 0, "reported once only (n=%d)", n);

    /* Traffic on the other connection, both ways, and UDP. */
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    int moved = 0;
    for (int i = 0; i < 20; i++) {
        if (write(c1, buf, 100) == 100 && read(s1, buf, sizeof buf) == 100) moved++;
        if (write(s1, buf, 1000) == 1000 && read(c1, buf, sizeof buf) == 1000) moved++;
    }
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = t_lo4(0);
    socklen_t ul = sizeof ua;
    bind(u2, (void *)&ua, sizeof ua);
    getsockname(u2, (void *)&ua, &ul);
    for (int i = 0; i < 5; i++)
        if (sendto(u1, "dgram", 5, 0, (void *)&ua, sizeof ua) == 5 && recv(u2, buf, sizeof buf, 0) == 5)
            moved++;
    CHECK(moved == 45, "traffic on other sockets (%d exchanges)", moved);
    settle();
    n = ready(ep, 0, &ev);
    CHECK(n == 0, "other sockets' traffic does not re-report c2 (n=%d ev=%#x)", n, ev);

    /* c2's own data: reported; the same amount again after a full read:
     * reported again. */
    for (int round = 0; round < 3; round++) {
        CHECK(write(s2, "0123456789", 10) == 10, "round %d: 10 bytes to c2", round);
        n = ready(ep, 1000, &ev);
        CHECK(n == 1 && (ev & EPOLLIN), "round %d: c2 reported readable (ev has IN: %d)", round,
              !!(ev & EPOLLIN));
        CHECK(read(c2, buf, sizeof buf) == 10, "round %d: read all 10", round);
        settle();
        n = ready(ep, 0, &ev);
        CHECK(n == 0, "round %d: nothing more after the read (n=%d)", round, n);
    }
    /* A peer close is an edge too. */
    close(s2);
    n = ready(ep, 1000, &ev);
    CHECK(n == 1 && (ev & EPOLLIN), "peer close reported (EPOLLIN %d)", !!(ev & EPOLLIN));
    CHECK(read(c2, buf, sizeof buf) == 0, "then EOF");
    close(ep);
    close(c1), close(s1), close(c2), close(l), close(u1), close(u2);
}

/* A child blocked reading one connection while the parent drives
 * another: it gets exactly its own bytes, once they come. */
static void t_blocked_reader(void) {
    int port, l = t_tcp_listener(&port, 8);
    int c1 = connect_to(port), s1 = accept(l, NULL, NULL);
    int c2 = connect_to(port), s2 = accept(l, NULL, NULL);
    int sync[2];
    CHECK(pipe(sync) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char b[64];
        write(sync[1], "r", 1);
        ssize_t r = read(c2, b, sizeof b);
        _exit(r == 6 && memcmp(b, "for c2", 6) == 0 ? 0 : 1);
    }
    char b;
    read(sync[0], &b, 1);
    usleep(100 * 1000);
    char buf[512];
    int moved = 0;
    for (int i = 0; i < 50; i++)
        if (write(c1, buf, sizeof buf) == sizeof buf && read(s1, buf, sizeof buf) > 0) moved++;
    CHECK(moved == 50, "50 exchanges on another connection while the child sleeps");
    int st;
    CHECK(waitpid(pid, &st, WNOHANG) == 0, "the child still sleeps");
    CHECK(write(s2, "for c2", 6) == 6, "its bytes");
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "the child read them");

    /* poll on all four ends: only the one with data is readable. */
    CHECK(write(s1, "p", 1) == 1, "one byte to c1");
    struct pollfd p[3] = {{c1, POLLIN, 0}, {c2, POLLIN, 0}, {s2, POLLIN, 0}};
    int n = poll(p, 3, 1000);
    CHECK(n == 1 && p[0].revents == POLLIN, "poll: c1 alone is readable (n=%d)", n);
    close(c1), close(s1), close(c2), close(s2), close(l), close(sync[0]), close(sync[1]);
}

int main(void) {
    t_begin("t_inetwake");
    t_edge();
    t_blocked_reader();
    return t_end();
}
