/* Bench guest: warm 4 KiB pread of one page of `big` (next to this program),
 * µs per call. Prints `pread_4k <µs> us`. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    static char buf[4096];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_pread");
    snprintf(path, sizeof path, "%s/big", dirname(self));
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    if (pread(fd, buf, 4096, 8192) != 4096) { printf("pread_4k: short read\n"); return 1; }
    long n = 0;
    double start = now_us(), el;
    do {
        for (int i = 0; i < 100; i++)
            if (pread(fd, buf, 4096, 8192) != 4096) { printf("pread_4k: short read\n"); return 1; }
        n += 100;
        el = now_us() - start;
    } while (el < 300000);
    printf("pread_4k %.3f us\n", el / n);
    return 0;
}
