/* Bench guest: random 4 KiB preads at page-aligned offsets of the 64 MiB
 * file `rand` (next to this program; a file of its own so the sequential
 * bench cannot warm it). Cold: 2048 reads right after boot (natively after
 * fadvise DONTNEED); warm: the whole file read once, then 0.3 s of reads.
 * Prints `rand_read_cold <MB/s> MB/s` and `rand_read_warm ...`. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define FILE_PAGES (16384L)

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static unsigned long seed = 88172645463325252UL;
static long next_page(void)
{
    seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
    return (long)(seed % FILE_PAGES);
}

static char buf[1 << 20];

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_randread");
    snprintf(path, sizeof path, "%s/rand", dirname(self));
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    long n = 2048;
    double start = now_us();
    for (long i = 0; i < n; i++)
        if (pread(fd, buf, 4096, next_page() * 4096) != 4096) { printf("rand_read: short read\n"); return 1; }
    double cold = n * 4096.0 / (now_us() - start);
    long total = 0; ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) total += r;
    if (total != FILE_PAGES * 4096) { printf("rand_read: warm-up read %ld bytes\n", total); return 1; }
    n = 0;
    double el;
    start = now_us();
    do {
        for (int i = 0; i < 256; i++)
            if (pread(fd, buf, 4096, next_page() * 4096) != 4096) { printf("rand_read: short read\n"); return 1; }
        n += 256;
        el = now_us() - start;
    } while (el < 300000);
    printf("rand_read_cold %.1f MB/s\n", cold);
    printf("rand_read_warm %.1f MB/s\n", n * 4096.0 / el);
    return 0;
}
