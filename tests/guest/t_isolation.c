/* Guest program for the isolation test: creates /tmp/isolation-<random>,
 * checks it can read it back, and prints its path. The harness then checks
 * that no such file exists on the host. Not compared with a native run
 * (natively the file really is created, and removed here at the end).
 * Its share of the isolation tally (tests/seccomp_wall.rs): one attempt,
 * which only the host can judge. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

int main(int argc, char **argv) {
    unsigned char r[8];
    char path[64], buf[16] = {0};
    (void)argc;
    (void)argv;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getrandom(r, sizeof r, 0) != sizeof r) return 2;
    int n = snprintf(path, sizeof path, "/tmp/isolation-");
    for (int i = 0; i < 8; i++) n += snprintf(path + n, sizeof path - n, "%02x", r[i]);
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    if (fd < 0 || write(fd, "guest", 5) != 5 || pread(fd, buf, 5, 0) != 5 || strcmp(buf, "guest")) {
        printf("isolation: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    close(fd);
    printf("isolation file: %s\n", path);
    printf("tally: attempts 1\n");
    if (getenv("T_ISOLATION_CLEANUP")) unlink(path);
    return 0;
}
