/* Bench guest for the memory table: read all of `big` (next to this
 * program) with read(), then map it (PROT_READ, MAP_SHARED) and touch every
 * page, so the file sits in the guest's page cache whichever path the kernel
 * caches; print `hold ready <bytes>`, then sleep until killed, mapping kept.
 * Exit 1 if the read is short or a page differs from what read() saw. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>

static char buf[1 << 20];

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_hold");
    snprintf(path, sizeof path, "%s/big", dirname(self));
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    long total = 0; ssize_t r;
    unsigned long sum = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i += 4096) sum += (unsigned char)buf[i];
        total += r;
    }
    if (total != 64L << 20) { printf("hold: read %ld bytes\n", total); return 1; }
    volatile unsigned char *m = mmap(NULL, total, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("hold: mmap"); return 1; }
    for (long i = 0; i < total; i += 4096) sum -= m[i];
    if (sum != 0) { printf("hold: mapped pages differ from read()\n"); return 1; }
    printf("hold ready %ld\n", total);
    fflush(stdout);
    for (;;) sleep(1000);
}
