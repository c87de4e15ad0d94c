/* memhog: allocates and touches N MiB of anonymous memory, writing a
 * pattern every page, then reads every page back and checks it.
 * Used by tests/overcommit.rs (OOM kills in the guest, swap). Prints
 * "memhog: N MiB ok" and exits 0 when every page checks out; exits 1
 * naming the first bad page otherwise. With HOLD, it then keeps the
 * memory HOLD seconds (tests/swapfile.rs looks at /proc/swaps meanwhile).
 * PASSES reads and checks everything that many times (default 1): pages
 * read back from swap and not written since are clean (the swap cache).
 *   memhog MIB [SEED [HOLD [PASSES]]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t pattern(uint64_t page, uint64_t word, uint64_t seed)
{
    return (page * 0x9e3779b97f4a7c15ULL) ^ (word * 0xc2b2ae3d27d4eb4fULL) ^ seed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: memhog MIB [SEED]\n");
        return 2;
    }
    uint64_t mib = strtoull(argv[1], NULL, 0);
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
    size_t len = mib << 20;
    size_t pages = len / 4096;
    uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("memhog: mmap");
        return 2;
    }
    /* Eight words a page: enough to tell pages apart and catch a page
     * swapped in at the wrong place or half-written. */
    for (size_t p = 0; p < pages; p++)
        for (uint64_t w = 0; w < 512; w += 64)
            mem[p * 512 + w] = pattern(p, w, seed);
    printf("memhog: %llu MiB written\n", (unsigned long long)mib);
    fflush(stdout);
    unsigned passes = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 0) : 1;
    for (unsigned pass = 0; pass < passes; pass++)
    for (size_t p = 0; p < pages; p++)
        for (uint64_t w = 0; w < 512; w += 64)
            if (mem[p * 512 + w] != pattern(p, w, seed)) {
                printf("memhog: page %zu word %llu bad: %llx\n", p, (unsigned long long)w,
                       (unsigned long long)mem[p * 512 + w]);
                return 1;
            }
    printf("memhog: %llu MiB ok\n", (unsigned long long)mib);
    fflush(stdout);
    if (argc > 3)
        sleep((unsigned)strtoul(argv[3], NULL, 0));
    return 0;
}
