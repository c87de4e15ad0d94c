/* forkswap: fork and exec under hard swapping. Holds WS MiB of private
 * memory (well past the instance's host budget, so it lives in swap),
 * and ROUNDS times: rewrites the next CHUNK MiB of it (swap-in and out
 * go on all the time), forks, and the child execs a short program —
 * this one again as "forkswap child N", which allocates and checks a
 * little memory of its own and exits with N*7 % 251, or every third
 * round busybox's `true` — and the parent checks the exit status. Every
 * fourth child first reads back a few pages it inherited (shared
 * copy-on-write with the parent, maybe in swap) before it execs. At the
 * end every page of the working set is checked. Prints "forkswap: N
 * children ok, WS MiB ok", or what went wrong and exits 1 (2 on bad
 * usage or a failed call). Used by tests/overcommit.rs.
 *   forkswap WS_MIB ROUNDS [CHUNK_MIB]     forkswap child N */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE_WORDS 512

static uint64_t pattern(uint64_t page, uint64_t gen) { return page * 0x9e3779b97f4a7c15ULL + gen; }

static int child_main(const char *arg)
{
    char *end;
    long n = strtol(arg, &end, 10);
    if (*end || n < 0)
        return 200;
    /* A little memory of its own, touched and checked. */
    size_t len = 1 << 20;
    volatile uint64_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 201;
    for (size_t i = 0; i < len / 8; i += PAGE_WORDS)
        m[i] = i ^ (uint64_t)n;
    for (size_t i = 0; i < len / 8; i += PAGE_WORDS)
        if (m[i] != (i ^ (uint64_t)n))
            return 202;
    return (int)(n * 7 % 251);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "child"))
        return child_main(argv[2]);
    if (argc < 3) {
        fprintf(stderr, "usage: forkswap WS_MIB ROUNDS [CHUNK_MIB]\n");
        return 2;
    }
    size_t ws = strtoull(argv[1], NULL, 0) << 20;
    long rounds = strtol(argv[2], NULL, 0);
    size_t chunk = (argc > 3 ? strtoull(argv[3], NULL, 0) : 2) << 20;
    size_t pages = ws / 4096, cpages = chunk / 4096;
    if (!pages || !cpages || cpages > pages) {
        fprintf(stderr, "forkswap: bad sizes\n");
        return 2;
    }
    volatile uint64_t *w = mmap(NULL, ws, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) {
        perror("forkswap: mmap");
        return 2;
    }
    /* gen[i]: what page i holds now. */
    uint32_t *gen = calloc(pages, sizeof *gen);
    if (!gen) {
        perror("forkswap: calloc");
        return 2;
    }
    for (size_t i = 0; i < pages; i++)
        w[i * PAGE_WORDS] = pattern(i, 0);
    size_t next = 0;
    for (long r = 0; r < rounds; r++) {
        for (size_t k = 0; k < cpages; k++, next = (next + 1) % pages) {
            gen[next]++;
            w[next * PAGE_WORDS] = pattern(next, gen[next]);
        }
        fflush(stdout);
        pid_t c = fork();
        if (c < 0) {
            printf("forkswap: round %ld: fork: %m\n", r);
            return 1;
        }
        if (c == 0) {
            if (r % 4 == 0) {
                /* Inherited pages, shared copy-on-write, read back. */
                for (size_t i = 0; i < pages; i += pages / 16 + 1)
                    if (w[i * PAGE_WORDS] != pattern(i, gen[i])) {
                        printf("forkswap: round %ld child: inherited page %zu bad\n", r, i);
                        _exit(203);
                    }
            }
            if (r % 3 == 2) {
                execl("/bin/true", "true", (char *)NULL);
            } else {
                char n[24];
                snprintf(n, sizeof n, "%ld", r);
                execl(argv[0], argv[0], "child", n, (char *)NULL);
            }
            printf("forkswap: round %ld child: exec: %m\n", r);
            fflush(stdout);
            _exit(204);
        }
        int st;
        if (waitpid(c, &st, 0) != c) {
            printf("forkswap: round %ld: waitpid: %m\n", r);
            return 1;
        }
        int want = r % 3 == 2 ? 0 : (int)(r * 7 % 251);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != want) {
            printf("forkswap: round %ld: child ended %#x, wanted exit %d\n", r, st, want);
            return 1;
        }
    }
    for (size_t i = 0; i < pages; i++)
        if (w[i * PAGE_WORDS] != pattern(i, gen[i])) {
            printf("forkswap: page %zu bad at the end\n", i);
            return 1;
        }
    printf("forkswap: %ld children ok, %zu MiB ok\n", rounds, ws >> 20);
    return 0;
}
