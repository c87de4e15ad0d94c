/* Resource limits compared with Linux: RLIMIT_FSIZE (a write is cut at
 * the limit, a write at it fails with EFBIG and SIGXFSZ, ftruncate past it
 * too), and vm.max_map_count (mmap fails with ENOMEM past it instead of the
 * process being killed; unmapping makes room again). */
#include "t_common.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>

static volatile sig_atomic_t xfsz;
static void on_xfsz(int s) { (void)s; xfsz++; }

static void fsize(void) {
    struct sigaction sa = {.sa_handler = on_xfsz};
    sigaction(SIGXFSZ, &sa, NULL);
    struct rlimit old, r = {1000, RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &old);
    CHECK(setrlimit(RLIMIT_FSIZE, &r) == 0, "RLIMIT_FSIZE 1000");
    int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char buf[1500];
    memset(buf, 'x', sizeof buf);
    CHECK(write(fd, buf, 600) == 600, "600 bytes fit");
    CHECK(write(fd, buf, 600) == 400 && xfsz == 0, "the next write is cut at the limit, no signal");
    errno = 0;
    CHECK(write(fd, buf, 1) == -1 && errno == EFBIG && xfsz == 1, "a write at the limit: EFBIG and SIGXFSZ");
    CHECK(pwrite(fd, buf, 10, 995) == 5, "pwrite near the limit is cut too");
    CHECK(pwrite(fd, buf, 10, 5000) == -1 && errno == EFBIG && xfsz == 2, "pwrite past it: EFBIG, SIGXFSZ");
    CHECK(ftruncate(fd, 1000) == 0, "ftruncate to the limit");
    CHECK(ftruncate(fd, 1001) == -1 && errno == EFBIG && xfsz == 3, "ftruncate past it: EFBIG, SIGXFSZ");
    CHECK(ftruncate(fd, 10) == 0, "shrinking is fine");
    struct stat st;
    fstat(fd, &st);
    CHECK(st.st_size == 10, "size 10");
    close(fd);
    setrlimit(RLIMIT_FSIZE, &old);
    /* Without a handler SIGXFSZ kills (and dumps core). */
    pid_t c = fork();
    if (c == 0) {
        signal(SIGXFSZ, SIG_DFL);
        struct rlimit z = {0, 0};
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        setrlimit(RLIMIT_FSIZE, &z);
        int f = open("big2", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(f, "x", 1);
        _exit(0);
    }
    int st2 = 0;
    waitpid(c, &st2, 0);
    CHECK(WIFSIGNALED(st2) && WTERMSIG(st2) == SIGXFSZ, "no handler: killed by SIGXFSZ");
    signal(SIGXFSZ, SIG_DFL);
}

static void map_count(void) {
    pid_t c = fork();
    if (c == 0) {
        /* Alternate protections so neighbours never merge. */
        char *base = mmap(NULL, 70000UL * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) _exit(10);
        munmap(base, 70000UL * 4096);
        long n = 0;
        int err = 0;
        for (long i = 0; i < 70000; i++) {
            void *p = mmap(base + i * 4096, 4096, (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED) {
                err = errno;
                break;
            }
            n++;
        }
        if (err != ENOMEM) _exit(11);
        if (n < 60000) _exit(12);
        /* Unmapping one makes room for one. */
        munmap(base, 4096);
        void *p = mmap(base, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == MAP_FAILED) _exit(13);
        _exit(0);
    }
    SAY("mapping until vm.max_map_count (ENOMEM, not killed; room after munmap): %s\n", t_wait(c));
}

int main(void) {
    t_begin("t_limits");
    fsize();
    map_count();
    return t_end();
}
