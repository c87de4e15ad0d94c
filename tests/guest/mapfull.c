/* mapfull DIR: a shared file mapping that outgrows its disk. Makes
 * DIR/sparse (16 MiB, all hole), maps it MAP_SHARED and fills page after
 * page. On a disk too small for that, Linux answers the first write
 * that needs a block the disk cannot give with SIGBUS (ext2's
 * page_mkwrite allocates at the fault), so no page it took is lost at
 * writeback. Prints one line:
 *   wrote N sigbus S msync R fsync R verify ok|bad@PAGE
 * (tests/data_disks.rs: the pages before the SIGBUS must read back). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 4096

static sigjmp_buf env;

static void on_bus(int sig)
{
    (void)sig;
    siglongjmp(env, 1);
}

static unsigned char fill(long page)
{
    return (unsigned char)(0x5a ^ (page * 7));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mapfull DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/sparse", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)PAGES * PAGE) != 0) {
        perror("mapfull: create");
        return 1;
    }
    unsigned char *m = mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE,
                            MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mapfull: mmap");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, NULL);
    volatile long wrote = 0;
    volatile int sigbus = 0;
    if (sigsetjmp(env, 1) == 0) {
        for (long i = 0; i < PAGES; i++) {
            memset(m + i * PAGE, fill(i), PAGE);
            wrote = i + 1;
        }
    } else {
        sigbus = 1;
    }
    int ms = msync(m, (size_t)PAGES * PAGE, MS_SYNC) == 0 ? 0 : errno;
    int fs = fsync(fd) == 0 ? 0 : errno;
    munmap(m, (size_t)PAGES * PAGE);
    close(fd);
    /* Read back through read(2), a path that never saw the mapping. */
    char verdict[64] = "ok";
    fd = open(path, O_RDONLY);
    static unsigned char buf[PAGE];
    for (long i = 0; i < wrote; i++) {
        if (pread(fd, buf, PAGE, (off_t)i * PAGE) != PAGE) {
            snprintf(verdict, sizeof verdict, "short@%ld", i);
            break;
        }
        for (int j = 0; j < PAGE; j++)
            if (buf[j] != fill(i)) {
                snprintf(verdict, sizeof verdict, "bad@%ld", i);
                i = wrote;
                break;
            }
    }
    close(fd);
    printf("wrote %ld sigbus %d msync %d fsync %d verify %s\n", (long)wrote, sigbus, ms,
           fs, verdict);
    return 0;
}
