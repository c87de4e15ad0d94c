/* swapctl: swapon(2)/swapoff(2) with a priority, which busybox's swapon
 * cannot give. Prints "ok" or the errno's strerror text and exits 1.
 * Used by tests/swapfile.rs.
 *   swapctl on PATH [PRIO]
 *   swapctl off PATH
 *   swapctl write|otrunc|truncate|ftruncate|fallocate|copy|mmap PATH
 *     (modify PATH one way; an active swap file gives ETXTBSY, though
 *     opening it for writing succeeds; mmap is MAP_SHARED PROT_WRITE)
 *   swapctl mmapok PATH
 *     (MAP_SHARED PROT_READ and MAP_PRIVATE PROT_WRITE mappings of PATH,
 *     which an active swap file allows; a private write stays private)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/swap.h>
#include <unistd.h>

static int modify(const char *op, const char *path)
{
    if (strcmp(op, "truncate") == 0)
        return truncate(path, 4096);
    if (strcmp(op, "otrunc") == 0) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        if (fd >= 0)
            close(fd);
        return fd < 0 ? -1 : 0;
    }
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        printf("swapctl %s %s: open: %s\n", op, path, strerror(errno));
        exit(1);
    }
    long r;
    if (strcmp(op, "write") == 0)
        r = pwrite(fd, "x", 1, 1 << 20);
    else if (strcmp(op, "ftruncate") == 0)
        r = ftruncate(fd, 4096);
    else if (strcmp(op, "fallocate") == 0)
        r = fallocate(fd, 0, 0, 4096);
    else if (strcmp(op, "mmap") == 0) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        r = p == MAP_FAILED ? -1 : 0;
        if (p != MAP_FAILED)
            munmap(p, 4096);
    } else if (strcmp(op, "mmapok") == 0) {
        char *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        char *pw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        r = ro == MAP_FAILED || pw == MAP_FAILED ? -1 : 0;
        if (r == 0) {
            char was = ro[4086];
            pw[4086] = 'Z';
            if (ro[4086] != was || pw[4086] != 'Z') {
                printf("swapctl mmapok %s: private write leaked\n", path);
                exit(1);
            }
        }
        if (ro != MAP_FAILED)
            munmap(ro, 4096);
        if (pw != MAP_FAILED)
            munmap(pw, 4096);
    } else if (strcmp(op, "copy") == 0) {
        loff_t in = 0, out = 1 << 20;
        r = copy_file_range(fd, &in, fd, &out, 16, 0);
    } else {
        fprintf(stderr, "swapctl: %s?\n", op);
        exit(2);
    }
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: swapctl on PATH [PRIO] | off PATH | OP PATH\n");
        return 2;
    }
    int r;
    if (strcmp(argv[1], "on") == 0) {
        int flags = 0;
        if (argc > 3)
            flags = SWAP_FLAG_PREFER | ((atoi(argv[3]) << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
        r = swapon(argv[2], flags);
    } else if (strcmp(argv[1], "off") == 0) {
        r = swapoff(argv[2]);
    } else {
        r = modify(argv[1], argv[2]);
    }
    if (r != 0) {
        printf("swapctl %s %s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}
