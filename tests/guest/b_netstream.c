/* Bench guest: bulk TCP with 64 KiB reads and writes, for scripts/bench-net
 * (reached from the host through eth0=user's hostfwd, or a tap). Listens
 * on 0.0.0.0:5001 (or argv[1]'s port) and serves one connection at a time;
 * each starts with one command byte:
 *   'r'           the guest reads until the host half-closes, then answers
 *                 with the byte count (8 bytes, little-endian) and closes;
 *   's' + u32 MiB the guest writes that many MiB (a fixed pattern: byte i
 *                 of the stream is i * 7 mod 251) and closes;
 *   'q'           the program exits.
 * Not compared with native: the host side is the benchmark. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CHUNK = 64 << 10 };

static int read_full(int fd, void *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p = (char *)p + r;
        n -= r;
    }
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p = (const char *)p + w;
        n -= w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static unsigned char buf[CHUNK], pat[251 * 7 + CHUNK];
    for (size_t i = 0; i < sizeof pat; i++) pat[i] = (unsigned char)(i * 7 % 251);
    int port = argc > 1 ? atoi(argv[1]) : 5001, one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(l, (void *)&a, sizeof a) || listen(l, 4)) {
        perror("b_netstream: listen");
        return 1;
    }
    printf("b_netstream: listening on %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        unsigned char cmd;
        if (read_full(c, &cmd, 1)) {
            close(c);
            continue;
        }
        if (cmd == 'q') {
            close(c);
            return 0;
        }
        if (cmd == 'r') {
            uint64_t total = 0;
            ssize_t n;
            while ((n = read(c, buf, sizeof buf)) > 0) total += n;
            write_all(c, &total, sizeof total);
        } else if (cmd == 's') {
            uint32_t mb;
            if (read_full(c, &mb, sizeof mb) == 0) {
                uint64_t left = (uint64_t)mb << 20, off = 0;
                while (left > 0) {
                    size_t n = left < CHUNK ? left : CHUNK;
                    if (write_all(c, pat + off % 251, n)) break;
                    off += n;
                    left -= n;
                }
            }
        }
        close(c);
    }
}
