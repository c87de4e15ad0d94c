/* Bench guest: sequential read of the 64 MiB file `big` (next to this
 * program) with 1 MiB read()s, twice. First pass cold (fresh boot; natively
 * the file is dropped from the host cache with fadvise DONTNEED first),
 * second warm. Prints `seq_read_cold <MB/s> MB/s` and `seq_read_warm ...`. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char buf[CHUNK];

/* Reads fd from offset 0 to EOF; returns MB/s, or -1 on error. */
static double pass(int fd, long *bytes)
{
    long total = 0;
    ssize_t r;
    if (lseek(fd, 0, SEEK_SET) != 0) return -1;
    double start = now_us();
    while ((r = read(fd, buf, CHUNK)) > 0)
        total += r;
    double el = now_us() - start;
    if (r < 0) return -1;
    *bytes = total;
    return total / el; /* bytes per µs = MB/s (10^6) */
}

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_seqread");
    snprintf(path, sizeof path, "%s/big", dirname(self));
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* best effort */
    long b1 = 0, b2 = 0;
    double cold = pass(fd, &b1), warm = pass(fd, &b2);
    if (cold < 0 || warm < 0 || b1 != 64L << 20 || b2 != b1) {
        printf("seq_read: read %ld and %ld bytes, expected %ld\n", b1, b2, 64L << 20);
        return 1;
    }
    printf("seq_read_cold %.1f MB/s\n", cold);
    printf("seq_read_warm %.1f MB/s\n", warm);
    return 0;
}
