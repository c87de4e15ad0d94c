/* burst: a bursty memory workload for the balancer (tests/balance.rs,
 * scripts/measure-elastic). Allocates MIB MiB of anonymous memory STEP
 * MiB at a time, one step every STEP_MS ms, touching every page; holds it
 * for HOLD_MS ms (checking every page), optionally reads the files named
 * after it (page cache), frees it all and exits 0, printing
 *   "burst: N MiB held"   once all is allocated and
 *   "burst: N MiB ok in T ms" at the end.
 * Exits 1 if a page reads back wrong, 2 on bad usage or a failed mmap.
 *   burst MIB STEP STEP_MS HOLD_MS [FILE...]
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
    nanosleep(&t, NULL);
}

static int check(uint64_t *mem, size_t pages, uint64_t tag)
{
    for (size_t p = 0; p < pages; p++)
        if (mem[p * 512] != (p ^ tag)) {
            printf("burst: page %zu bad\n", p);
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: burst MIB STEP STEP_MS HOLD_MS [FILE...]\n");
        return 2;
    }
    uint64_t mib = strtoull(argv[1], NULL, 0), step = strtoull(argv[2], NULL, 0);
    uint64_t step_ms = strtoull(argv[3], NULL, 0), hold_ms = strtoull(argv[4], NULL, 0);
    if (mib == 0 || step == 0 || mib > (1 << 20)) {
        fprintf(stderr, "burst: bad sizes\n");
        return 2;
    }
    uint64_t start = now_ms();
    size_t nchunks = (size_t)((mib + step - 1) / step);
    uint64_t **chunks = calloc(nchunks, sizeof(*chunks));
    if (!chunks)
        return 2;
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t this_mib = (c + 1) * step > mib ? mib - c * step : step;
        size_t len = (size_t)this_mib << 20;
        chunks[c] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (chunks[c] == MAP_FAILED) {
            perror("burst: mmap");
            return 2;
        }
        for (size_t p = 0; p < len / 4096; p++)
            chunks[c][p * 512] = p ^ c;
        if (step_ms)
            sleep_ms(step_ms);
    }
    printf("burst: %llu MiB held\n", (unsigned long long)mib);
    fflush(stdout);
    uint64_t until = now_ms() + hold_ms;
    do {
        for (size_t c = 0; c < nchunks; c++) {
            uint64_t this_mib = (c + 1) * step > mib ? mib - c * step : step;
            if (check(chunks[c], (size_t)(this_mib << 20) / 4096, c))
                return 1;
        }
        if (now_ms() < until)
            sleep_ms(hold_ms < 500 ? hold_ms : 500);
    } while (now_ms() < until);
    static char buf[65536];
    for (int i = 5; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0)
            continue;
        while (read(fd, buf, sizeof buf) > 0)
            ;
        close(fd);
    }
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t this_mib = (c + 1) * step > mib ? mib - c * step : step;
        munmap(chunks[c], (size_t)this_mib << 20);
    }
    printf("burst: %llu MiB ok in %llu ms\n", (unsigned long long)mib,
           (unsigned long long)(now_ms() - start));
    return 0;
}
