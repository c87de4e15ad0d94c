/* Guest side of tests/net_fwd.rs (not compared with native: it serves
 * the host through eth0=user's port forward). Listens on 0.0.0.0:8080
 * and serves two connections, then exits 0:
 *   1. an HTTP/1.0 GET: answers 200 with a 4 MiB body in one write
 *      (far more than the socket's and the forward's buffers: the
 *      blocking write sleeps on a full send buffer and must be woken
 *      each time the stack frees room; the host side pumps with
 *      back-pressure);
 *   2. an upload: reads until the host half-closes, answers with the
 *      byte count and a checksum. */
#include "t_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

enum { BODY = 4 << 20 };

static int write_all(int fd, const void *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p = (const char *)p + w;
        n -= w;
    }
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    if (bind(s, (void *)&a, sizeof a) || listen(s, 8)) {
        printf("listen: %s\n", strerror(errno));
        return 1;
    }
    printf("listening\n");
    /* 1: HTTP GET */
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int c = accept(s, (void *)&peer, &pl);
    char req[1024];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = read(c, req + got, sizeof req - 1 - got);
        if (r <= 0) break;
        got += r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char ip[32];
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    printf("request from %s: %.14s\n", ip, req);
    static char body[BODY];
    for (int i = 0; i < BODY; i++) body[i] = 'a' + i % 26;
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", BODY);
    if (write_all(c, hdr, hl) || write_all(c, body, BODY)) printf("write failed: %s\n", strerror(errno));
    close(c);
    /* 2: upload until EOF */
    c = accept(s, NULL, NULL);
    static unsigned char buf[65536];
    unsigned long total = 0, sum = 0;
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) sum = sum * 31 + buf[i];
        total += n;
    }
    char ans[96];
    int al = snprintf(ans, sizeof ans, "got %lu sum %lu\n", total, sum);
    write_all(c, ans, al);
    close(c);
    close(s);
    printf("served 2\n");
    return 0;
}
