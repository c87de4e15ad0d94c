/* Guest test: bulk AF_UNIX stream transfer. 10 MiB of a pseudo-random
 * byte stream go from a child to its parent over a socketpair, then over
 * a path-bound listener, written and read in chunk sizes that vary from 1
 * byte to 256 KiB (blocking on one side, non-blocking with poll on the
 * other); the reader checks a 64-bit FNV-1a checksum and the byte count
 * against the sender's. Like busybox `nc -lU` / `nc -U` moving a file. */
#include "t_common.h"
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define TOTAL (10 << 20)

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* The stream: byte i of a xorshift sequence. */
static void gen(unsigned char *b, size_t n, uint64_t *state) {
    for (size_t i = 0; i < n; i++) {
        uint64_t x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        b[i] = (unsigned char)x;
    }
}

static size_t chunk(int i) {
    static const size_t sizes[] = {1, 7, 4096, 65536, 262144, 1000, 131071, 3, 65537, 200000};
    return sizes[i % 10];
}

static int send_all(int fd, int nonblock) {
    static unsigned char b[262144];
    uint64_t st = 88172645463325252ULL;
    size_t sent = 0;
    for (int i = 0; sent < TOTAL; i++) {
        size_t n = chunk(i);
        if (n > TOTAL - sent) n = TOTAL - sent;
        gen(b, n, &st);
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, b + off, n - off);
            if (w < 0 && nonblock && errno == EAGAIN) {
                struct pollfd p = {fd, POLLOUT, 0};
                poll(&p, 1, -1);
                continue;
            }
            if (w <= 0) return 1;
            off += w;
        }
        sent += n;
    }
    return 0;
}

static int recv_all(int fd, int nonblock, uint64_t *sum, size_t *count) {
    static unsigned char b[262144];
    uint64_t h = 14695981039346656037ULL;
    size_t got = 0;
    for (int i = 0;; i++) {
        ssize_t r = read(fd, b, chunk(i + 3));
        if (r < 0 && nonblock && errno == EAGAIN) {
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, -1);
            continue;
        }
        if (r < 0) return 1;
        if (r == 0) break;
        h = fnv(h, b, r);
        got += r;
    }
    *sum = h;
    *count = got;
    return 0;
}

static uint64_t expected(void) {
    static unsigned char b[65536];
    uint64_t st = 88172645463325252ULL, h = 14695981039346656037ULL;
    for (size_t done = 0; done < TOTAL; done += sizeof b) {
        gen(b, sizeof b, &st);
        h = fnv(h, b, sizeof b);
    }
    return h;
}

static void transfer(const char *what, int rfd, int wfd, int reader_nonblock) {
    pid_t c = fork();
    if (c == 0) {
        close(rfd);
        int r = send_all(wfd, !reader_nonblock);
        close(wfd);
        _exit(r);
    }
    close(wfd);
    if (reader_nonblock) fcntl(rfd, F_SETFL, O_NONBLOCK);
    uint64_t sum = 0;
    size_t count = 0;
    int r = recv_all(rfd, reader_nonblock, &sum, &count);
    close(rfd);
    int st;
    waitpid(c, &st, 0);
    CHECK(r == 0 && count == TOTAL, "%s: %zu bytes arrive", what, count);
    CHECK(sum == expected(), "%s: checksum matches", what);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the sender: %s", what, t_status(st));
}

int main(void) {
    t_begin("t_unix_bulk");
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    transfer("socketpair, blocking reader", sv[0], sv[1], 0);

    char path[128];
    snprintf(path, sizeof path, "%s/bulk.sock", t_dir);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    CHECK(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ls, 1) == 0, "listener at a path");
    int cs = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(connect(cs, (struct sockaddr *)&sa, sizeof sa) == 0, "non-blocking connect");
    int as = accept(ls, NULL, NULL);
    CHECK(as >= 0, "accept");
    /* the accepted end reads, non-blocking; the connecting end writes */
    fcntl(cs, F_SETFL, 0);
    transfer("listener, non-blocking reader with poll", as, cs, 1);
    close(ls);
    unlink(path);
    return t_end();
}
