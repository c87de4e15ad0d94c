/* Per-process kernel memory a guest can grow is bounded, with Linux's
 * errnos: queued signals (RLIMIT_SIGPENDING: rt_sigqueueinfo EAGAIN,
 * kill() coalesces), mappings (vm.max_map_count: mmap ENOMEM, and a
 * munmap or mprotect that would split a VMA at the limit ENOMEM). Counts
 * that differ between hosts (VMAs already mapped) are never printed. */
#include "t_common.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define PG 4096L

static volatile int got_a, got_b;
static void on_a(int s) { (void)s; got_a++; }
static void on_b(int s) { (void)s; got_b++; }

static void sigpending_limit(void) {
    pid_t c = fork();
    if (c == 0) {
        /* Linux counts per user: a uid no other process has. */
        struct rlimit rl = {8, 8};
        if (setrlimit(RLIMIT_SIGPENDING, &rl) != 0) _exit(10);
        if (setgid(54321) != 0 || setuid(54321) != 0) _exit(11);
        int a = SIGRTMIN + 1, b = SIGRTMIN + 2;
        signal(a, on_a);
        signal(b, on_b);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, a);
        sigaddset(&set, b);
        sigprocmask(SIG_BLOCK, &set, NULL);
        int queued = 0;
        for (int i = 0; i < 8; i++) {
            union sigval v = {.sival_int = i};
            if (sigqueue(getpid(), a, v) == 0) queued++;
        }
        union sigval v = {.sival_int = 99};
        errno = 0;
        int over = sigqueue(getpid(), a, v) < 0 && errno == EAGAIN;
        errno = 0;
        int over_new = sigqueue(getpid(), b, v) < 0 && errno == EAGAIN;
        int killed = kill(getpid(), a) == 0 && kill(getpid(), b) == 0;
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        printf("queued %d of 8, 9th EAGAIN %d, another number EAGAIN %d, kill past it ok %d\n",
               queued, over, over_new, killed);
        printf("delivered: %d of the first number, %d of the other\n", got_a, got_b);
        _exit(0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "RLIMIT_SIGPENDING child");
}

static void map_count_limit(void) {
    pid_t c = fork();
    if (c == 0) {
        char *big = mmap(0, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        /* One-page mappings with a page between them: none can merge. */
        char *base = (char *)0x200000000000L;
        long n = 0;
        int err = 0;
        for (; n < 70000; n++) {
            void *p = mmap(base + 2 * n * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED) {
                err = errno;
                break;
            }
        }
        printf("mmap stops at the limit: %s\n", err ? strerrorname_np(err) : "no");
        errno = 0;
        printf("munmap splitting a VMA there: %s\n", munmap(big + PG, PG) == 0 ? "ok" : strerrorname_np(errno));
        errno = 0;
        printf("mprotect splitting a VMA there: %s\n",
               mprotect(big + PG, PG, PROT_READ) == 0 ? "ok" : strerrorname_np(errno));
        errno = 0;
        printf("munmap of a VMA's head: %s\n", munmap(big, PG) == 0 ? "ok" : strerrorname_np(errno));
        errno = 0;
        printf("munmap of them all: %s\n", munmap(base, 2 * n * PG) == 0 ? "ok" : strerrorname_np(errno));
        void *p = mmap(0, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("mmap after: %s\n", p != MAP_FAILED ? "ok" : strerrorname_np(errno));
        _exit(0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "max_map_count child");
}

int main(void) {
    t_begin("t_kcaps");
    sigpending_limit();
    map_count_limit();
    return t_end();
}
