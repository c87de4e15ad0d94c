/* Shared by the socket guest tests (after t_common.h): names, clocks,
 * patterns and connected pairs they all need, so no test keeps its own
 * copy. */
#ifndef T_SOCK_H
#define T_SOCK_H
#include "t_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

/* An abstract AF_UNIX name of this run's own: natively every process of
 * the host's network namespace shares the abstract names, so a fixed one
 * collides when two runs of a test overlap (EADDRINUSE, ECONNREFUSED).
 * The scratch directory's name (mkdtemp: unique while it lives) is the
 * name, so its length is the same on every run. Returns the address
 * length. */
T_FN socklen_t t_abstract(struct sockaddr_un *a) {
    const char *name = strrchr(t_dir, '/') + 1;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, strlen(name));
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

/* CLOCK_MONOTONIC in ms. */
T_FN long long t_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* The byte at offset i of a stream (not periodic in a page). */
T_FN unsigned char t_pat(size_t i) { return (unsigned char)(i * 7 + i / 4096); }

/* n bytes of the t_pat stream (malloc'd). */
T_FN unsigned char *t_pattern(size_t n) {
    unsigned char *b = malloc(n);
    for (size_t i = 0; b && i < n; i++) b[i] = t_pat(i);
    return b;
}

/* 127.0.0.1:port. */
T_FN struct sockaddr_in t_lo4(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A TCP listener on 127.0.0.1, ephemeral port; *port gets it. */
T_FN int t_tcp_listener(int *port, int backlog) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = t_lo4(0);
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (void *)&a, sizeof a) || listen(s, backlog) || getsockname(s, (void *)&a, &l))
        return -1;
    *port = ntohs(a.sin_port);
    return s;
}

/* A TCP connection to 127.0.0.1:port, or -1. */
T_FN int t_tcp_connect(int port) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = t_lo4(port);
    if (connect(c, (void *)&a, sizeof a) != 0) {
        close(c);
        return -1;
    }
    return c;
}

/* A connected stream pair: AF_UNIX (tcp 0) or TCP over loopback; with
 * `small`, the TCP receiver's and sender's buffers asked that small. */
T_FN int t_stream_pair(int tcp, int sv[2], int small) {
    if (!tcp) return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int port;
    int l = t_tcp_listener(&port, 1);
    if (l < 0) return -1;
    if (small) setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (small) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct sockaddr_in a = t_lo4(port);
    if (connect(sv[0], (void *)&a, sizeof a)) return -1;
    sv[1] = accept(l, NULL, NULL);
    close(l);
    return sv[1] < 0 ? -1 : 0;
}

#endif
