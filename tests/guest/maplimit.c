/* maplimit: maps one page of FILE again and again (each a VMA of its own:
 * every mapping is of page 0, so none merge) until N are mapped or mmap
 * fails, then prints
 *   "maplimit: mapped K of N, then ERRNO"   (or "..., then ok")
 * and holds them for HOLD_MS ms. For tests/balance.rs (the guest's
 * max_map_count= and mapped_file_max= caps).
 *   maplimit FILE N [HOLD_MS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: maplimit FILE N [HOLD_MS]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    long n = atol(argv[2]), k = 0;
    const char *how = "ok";
    for (; k < n; k++) {
        void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            how = strerrorname_np(errno);
            break;
        }
    }
    printf("maplimit: mapped %ld of %ld, then %s\n", k, n, how ? how : "?");
    fflush(stdout);
    if (argc > 3) {
        long ms = atol(argv[3]);
        struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&t, NULL);
    }
    return 0;
}
