/* Bench guest: TCP over loopback (127.0.0.1) between two processes
 * (fork). Prints
 *   tcp_pingpong <µs> us     one 1-byte round trip (TCP_NODELAY), median
 *                            of 9 batches, each at least 0.1 s
 *   tcp_stream <MB/s> MB/s   64 KiB writes for at least 0.3 s, median of 5
 * Ports are ephemeral, so the native run needs no free port. */
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp);
    return v[n / 2];
}

/* A connected pair: *srv accepted, *cli connected. */
static void pair(int *srv, int *cli)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (void *)&a, sizeof a) || listen(l, 1) || getsockname(l, (void *)&a, &al)) {
        perror("listen");
        exit(1);
    }
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*cli, (void *)&a, sizeof a)) {
        perror("connect");
        exit(1);
    }
    *srv = accept(l, NULL, NULL);
    close(l);
    setsockopt(*srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(*cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* As init= nothing has brought lo up on a real kernel (linux.uml):
 * do it, as ifconfig lo up would. Errors are ignored (umlrun's lo is
 * always up; natively it is up already). */
static void lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &r) == 0 && !(r.ifr_flags & IFF_UP)) {
        r.ifr_flags |= IFF_UP;
        ioctl(fd, SIOCSIFFLAGS, &r);
    }
    close(fd);
}

int main(void)
{
    int s, c;
    lo_up();
    pair(&s, &c);
    pid_t pid = fork();
    if (pid == 0) {
        /* Echo one byte at a time until 'q', then sink a stream until EOF. */
        close(c);
        char b;
        while (read(s, &b, 1) == 1 && b != 'q')
            if (write(s, &b, 1) != 1)
                _exit(1);
        static char buf[1 << 16];
        while (read(s, buf, sizeof buf) > 0)
            ;
        _exit(0);
    }
    close(s);
    double lat[9];
    for (int r = 0; r < 9; r++) {
        long n = 0;
        double start = now_us(), el;
        do {
            for (int i = 0; i < 100; i++) {
                char b = 'p';
                if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1) {
                    perror("pingpong");
                    return 1;
                }
            }
            n += 100;
            el = now_us() - start;
        } while (el < 100000);
        lat[r] = el / n;
    }
    if (write(c, "q", 1) != 1)
        return 1;
    static char buf[1 << 16];
    memset(buf, 'x', sizeof buf);
    double bw[5];
    for (int r = 0; r < 5; r++) {
        double start = now_us(), el;
        long bytes = 0;
        do {
            for (int i = 0; i < 16; i++) {
                ssize_t w = write(c, buf, sizeof buf);
                if (w <= 0) {
                    perror("stream");
                    return 1;
                }
                bytes += w;
            }
            el = now_us() - start;
        } while (el < 300000);
        bw[r] = bytes / el; /* bytes per µs = MB/s */
    }
    close(c);
    waitpid(pid, NULL, 0);
    printf("tcp_pingpong %.4f us\n", median(lat, 9));
    printf("tcp_stream %.4f MB/s\n", median(bw, 5));
    return 0;
}
