/* Bench guest for the memory table: read all of `big` (next to this
 * program) into the page cache, print `hold ready <bytes>`, then sleep until
 * killed. Exit 1 if the read is short. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <unistd.h>

static char buf[1 << 20];

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_hold");
    snprintf(path, sizeof path, "%s/big", dirname(self));
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    long total = 0; ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) total += r;
    if (total != 64L << 20) { printf("hold: read %ld bytes\n", total); return 1; }
    printf("hold ready %ld\n", total);
    fflush(stdout);
    for (;;) sleep(1000);
}
