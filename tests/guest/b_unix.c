/* Bench guest: AF_UNIX stream sockets over a socketpair between two
 * processes. Ping-pong: 1-byte write + read each way, µs per round trip
 * (four syscalls, two per side). Throughput: 1 MiB writes of a 256 MiB
 * total, read in 1 MiB reads by the other process, MB/s (10^6 bytes/s).
 * Each part runs until at least 0.3 s have passed. Then the ping-pong again
 * in batches alternating with batches of raw getppid calls, for the ratio
 * of a round trip to a getppid round trip under the same host load (issue
 * 11's target; separate runs on a busy host differ more than the ratio
 * does). Prints `unix_pingpong <µs> us`, `unix_pingpong_per_getppid <r> x`
 * and `unix_stream_1m <MB/s> MB/s`. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int full(int fd, char *b, size_t n, int writing)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = writing ? write(fd, b + done, n - done) : read(fd, b + done, n - done);
        if (r <= 0)
            return -1;
        done += r;
    }
    return 0;
}

int main(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 1;
    pid_t c = fork();
    if (c == 0) {
        /* echo single bytes until a 0 byte, then sink bulk data until EOF */
        char b;
        while (read(sv[1], &b, 1) == 1 && b != 0)
            write(sv[1], &b, 1);
        static char buf[1 << 20];
        while (read(sv[1], buf, sizeof buf) > 0) {
        }
        write(sv[1], "k", 1);
        _exit(0);
    }
    close(sv[1]);
    long n = 0;
    char b = 1;
    double start = now_us(), el;
    do {
        for (int i = 0; i < 200; i++) {
            write(sv[0], &b, 1);
            read(sv[0], &b, 1);
        }
        n += 200;
        el = now_us() - start;
    } while (el < 300000);
    printf("unix_pingpong %.4f us\n", el / n);
    double t_pp = 0, t_gp = 0;
    long rounds = 0;
    start = now_us();
    do {
        double t0 = now_us();
        for (int i = 0; i < 200; i++) {
            write(sv[0], &b, 1);
            read(sv[0], &b, 1);
        }
        double t1 = now_us();
        for (int i = 0; i < 800; i++)
            syscall(SYS_getppid);
        t_gp += now_us() - t1;
        t_pp += t1 - t0;
        rounds++;
    } while (now_us() - start < 300000);
    printf("unix_pingpong_per_getppid %.3f x\n", (t_pp / 200) / (t_gp / 800));
    b = 0;
    write(sv[0], &b, 1);

    static char buf[1 << 20];
    long bytes = 0;
    start = now_us();
    do {
        for (int i = 0; i < 16; i++)
            if (full(sv[0], buf, sizeof buf, 1) != 0)
                return 2;
        bytes += 16L << 20;
        el = now_us() - start;
    } while (el < 300000 && bytes < (256L << 20));
    shutdown(sv[0], SHUT_WR);
    /* wait for the reader to have taken everything */
    if (read(sv[0], &b, 1) != 1)
        return 3;
    el = now_us() - start;
    printf("unix_stream_1m %.1f MB/s\n", bytes / el);
    waitpid(c, NULL, 0);
    return 0;
}
