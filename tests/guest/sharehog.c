/* sharehog: shared pages through swap. A region of SHARE MiB of one kind
 * is written with a pattern and shared with a forked child:
 *   anon  MAP_SHARED|MAP_ANONYMOUS (both see each other's writes)
 *   shm   a SysV segment attached before fork (the child inherits it)
 *   cow   MAP_PRIVATE|MAP_ANONYMOUS (copy-on-write: one frame for both
 *         until either writes)
 * Then the parent touches HOG MiB of private memory (pressure: the idle
 * shared pages go to swap while both hold them) and prints how much of
 * the region is in swap ("sharehog: KIND swap N kB", from its smaps).
 * The child checks every page and writes a second pattern (into the
 * shared pages, or its own copies for cow); the parent touches the hog
 * again (out again), prints the swap figure once more, and checks: the
 * child's pattern for anon and shm, its own first one for cow (the
 * child's writes must not leak). The child checks its pages once more
 * and exits. Prints "sharehog: KIND ok", or names the first bad page
 * and exits 1 (2 on bad usage or a failed call). Used by
 * tests/overcommit.rs.
 *   sharehog anon|shm|cow SHARE_MIB HOG_MIB */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t pattern(uint64_t page, uint64_t salt) { return page * 0x9e3779b97f4a7c15ULL ^ salt; }

/* The first page of `pages` (every 4 KiB at p) without `salt`'s pattern, or -1. */
static long bad_page(volatile uint64_t *p, size_t pages, uint64_t salt)
{
    for (size_t i = 0; i < pages; i++)
        if (p[i * 512] != pattern(i, salt) || p[i * 512 + 511] != ~pattern(i, salt))
            return (long)i;
    return -1;
}

static void fill(volatile uint64_t *p, size_t pages, uint64_t salt)
{
    for (size_t i = 0; i < pages; i++) {
        p[i * 512] = pattern(i, salt);
        p[i * 512 + 511] = ~pattern(i, salt);
    }
}

/* kB of the mapping at `addr` in swap, from /proc/self/smaps. */
static long swap_kb(void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int in = 0;
    long r = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
            continue;
        }
        long v;
        if (in && sscanf(line, "Swap: %ld kB", &v) == 1)
            r = v;
    }
    fclose(f);
    return r;
}

static void hog_pass(volatile char *h, size_t len, char v)
{
    for (size_t i = 0; i < len; i += 4096)
        h[i] = v;
}

static int wait_byte(int fd)
{
    char c;
    return read(fd, &c, 1) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sharehog anon|shm|cow SHARE_MIB HOG_MIB\n");
        return 2;
    }
    const char *kind = argv[1];
    size_t len = strtoull(argv[2], NULL, 0) << 20, hog = strtoull(argv[3], NULL, 0) << 20;
    size_t pages = len / 4096;
    int shm = !strcmp(kind, "shm"), cow = !strcmp(kind, "cow");
    if (!shm && !cow && strcmp(kind, "anon")) {
        fprintf(stderr, "sharehog: no kind %s\n", kind);
        return 2;
    }
    volatile uint64_t *p;
    int id = -1;
    if (shm) {
        id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
        p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
        if (p == (void *)-1) {
            perror("sharehog: shm");
            return 2;
        }
        /* Gone once both detach (exit). */
        shmctl(id, IPC_RMID, NULL);
    } else {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, (cow ? MAP_PRIVATE : MAP_SHARED) | MAP_ANONYMOUS,
                 -1, 0);
        if (p == MAP_FAILED) {
            perror("sharehog: mmap");
            return 2;
        }
    }
    fill(p, pages, 1);
    int go[2], done[2];
    if (pipe(go) || pipe(done)) {
        perror("sharehog: pipe");
        return 2;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("sharehog: fork");
        return 2;
    }
    if (child == 0) {
        long b;
        if (wait_byte(go[0]))
            _exit(2);
        if ((b = bad_page(p, pages, 1)) >= 0) {
            printf("sharehog: %s child: page %ld bad after swap-in\n", kind, b);
            _exit(1);
        }
        fill(p, pages, 2);
        if (write(done[1], "d", 1) != 1 || wait_byte(go[0]))
            _exit(2);
        if ((b = bad_page(p, pages, 2)) >= 0) {
            printf("sharehog: %s child: page %ld bad at the end\n", kind, b);
            _exit(1);
        }
        _exit(0);
    }
    volatile char *h = mmap(NULL, hog, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h == MAP_FAILED) {
        perror("sharehog: mmap hog");
        return 2;
    }
    hog_pass(h, hog, 1);
    printf("sharehog: %s swap %ld kB\n", kind, swap_kb((void *)p));
    fflush(stdout);
    if (write(go[1], "g", 1) != 1 || wait_byte(done[0])) {
        printf("sharehog: %s: the child did not get through\n", kind);
        return 1;
    }
    hog_pass(h, hog, 2);
    printf("sharehog: %s swap again %ld kB\n", kind, swap_kb((void *)p));
    fflush(stdout);
    long b = bad_page(p, pages, cow ? 1 : 2);
    if (b >= 0) {
        printf("sharehog: %s parent: page %ld bad\n", kind, b);
        return 1;
    }
    int st;
    if (write(go[1], "g", 1) != 1 || waitpid(child, &st, 0) != child || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
        printf("sharehog: %s: the child failed (status %#x)\n", kind, st);
        return 1;
    }
    printf("sharehog: %s ok\n", kind);
    return 0;
}
