/* Bench guest: anonymous page faults. mmap 16 MiB, write one byte in each
 * 4 KiB page, munmap; five rounds. Prints `page_fault <µs per page> us`. */
#include <stdio.h>
#include <time.h>
#include <sys/mman.h>

#define PAGES 4096
#define ROUNDS 5

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(void)
{
    double total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        volatile char *p = mmap(NULL, PAGES * 4096L, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 1; }
        double start = now_us();
        for (long i = 0; i < PAGES; i++)
            p[i * 4096] = 1;
        total += now_us() - start;
        for (long i = 0; i < PAGES; i++)
            if (p[i * 4096] != 1) { printf("page_fault: page %ld lost its byte\n", i); return 1; }
        munmap((void *)p, PAGES * 4096L);
    }
    printf("page_fault %.3f us\n", total / (PAGES * ROUNDS));
    return 0;
}
