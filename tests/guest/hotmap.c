/* hotmap FILE: a process that exists before FILE's disk does. Prints
 * "waiting", polls until FILE opens, then maps it (MAP_SHARED and
 * MAP_PRIVATE, read-only) without exec'ing, reads every page, prints
 * "mapped <sum>" and sleeps until killed. In ubd=mmap mode its own stub,
 * spawned before the disk was hot-added, must then map the disk's image
 * (tests/mconsole.rs, ubd hot-add): only a stub that was handed the
 * disk's fd can. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hotmap FILE\n");
        return 2;
    }
    printf("waiting\n");
    fflush(stdout);
    int fd;
    struct timespec tick = {0, 100 * 1000 * 1000};
    while ((fd = open(argv[1], O_RDONLY)) < 0)
        nanosleep(&tick, NULL);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 4096) {
        fprintf(stderr, "hotmap: %s: want a file of a page or more\n", argv[1]);
        return 1;
    }
    size_t len = (size_t)st.st_size & ~(size_t)4095;
    unsigned long sum = 0;
    int flags[2] = {MAP_SHARED, MAP_PRIVATE};
    for (int i = 0; i < 2; i++) {
        const unsigned char *p = mmap(NULL, len, PROT_READ, flags[i], fd, 0);
        if (p == MAP_FAILED) {
            perror("hotmap: mmap");
            return 1;
        }
        for (size_t off = 0; off < len; off += 4096)
            sum += p[off];
    }
    printf("mapped %lu\n", sum);
    fflush(stdout);
    for (;;)
        pause();
}
