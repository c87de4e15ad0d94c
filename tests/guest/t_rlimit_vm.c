/* RLIMIT_AS and RLIMIT_DATA as Linux's may_expand_vm enforces them:
 * RLIMIT_AS bounds every mapping together (VmSize), RLIMIT_DATA the
 * private writable ones (VmData); mmap, brk, mremap and mprotect that
 * would pass a limit fail (ENOMEM; brk leaves the break), a mapping that
 * only replaces one (MAP_FIXED) or shrinks is fine, and unmapping makes
 * room again. Limits are set relative to the process's own VmSize and
 * VmData, so only derived facts are printed. Runs in a child, so the
 * limits do not outlive the checks. */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define MB (1L << 20)

/* A "Vm...:  N kB" line of /proc/self/status, in bytes (no malloc). */
static long status_bytes(const char *name) {
    static char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    int n = 0, k;
    while (n < (int)sizeof buf - 1 && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += k;
    close(fd);
    buf[n] = 0;
    char *p = strstr(buf, name);
    return p ? atol(p + strlen(name) + 1) * 1024 : -1;
}

static int set(int res, long cur) {
    struct rlimit r = {cur < 0 ? RLIM_INFINITY : (rlim_t)cur, RLIM_INFINITY};
    return setrlimit(res, &r);
}

static void *map(long len, int prot, int flags) {
    return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

static void as_limit(void) {
    long size = status_bytes("VmSize:");
    CHECK(size > 0, "VmSize read");
    CHECK(set(RLIMIT_AS, size + 8 * MB) == 0, "RLIMIT_AS = VmSize + 8M");
    char *a = map(4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    CHECK(a != MAP_FAILED, "4M fits");
    errno = 0;
    CHECK(map(8 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE) == MAP_FAILED && errno == ENOMEM, "8M more: ENOMEM");
    CHECK(map(8 * MB, PROT_NONE, MAP_PRIVATE) == MAP_FAILED && errno == ENOMEM, "PROT_NONE counts too: ENOMEM");
    CHECK(map(8 * MB, PROT_READ | PROT_WRITE, MAP_SHARED) == MAP_FAILED && errno == ENOMEM, "shared counts too: ENOMEM");
    char *b = map(4 * MB, PROT_READ, MAP_PRIVATE);
    CHECK(b != MAP_FAILED && status_bytes("VmSize:") == size + 8 * MB, "4M more reaches the limit exactly");
    errno = 0;
    CHECK(map(4096, PROT_READ, MAP_PRIVATE) == MAP_FAILED && errno == ENOMEM, "one page past it: ENOMEM");
    CHECK(mmap(a, 4 * MB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == a,
          "MAP_FIXED over an old mapping at the limit: fine");
    errno = 0;
    CHECK(mremap(b, 4 * MB, 8 * MB, MREMAP_MAYMOVE) == MAP_FAILED && errno == ENOMEM, "mremap growing past it: ENOMEM");
    CHECK(mremap(b, 4 * MB, 2 * MB, 0) == b, "mremap shrinking: fine");
    long brk0 = syscall(SYS_brk, 0);
    CHECK(syscall(SYS_brk, brk0 + 4 * MB) == brk0, "brk past it: the break stays");
    CHECK(syscall(SYS_brk, brk0 + 2 * MB) == brk0 + 2 * MB, "brk within it moves");
    CHECK(syscall(SYS_brk, brk0) == brk0, "brk back");
    CHECK(munmap(a, 4 * MB) == 0 && map(4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE) != MAP_FAILED,
          "munmap makes room again");
    CHECK(set(RLIMIT_AS, -1) == 0, "RLIMIT_AS back to infinity");
    CHECK(map(64 * MB, PROT_NONE, MAP_PRIVATE) != MAP_FAILED, "then 64M fits");
}

static void data_limit(void) {
    long data = status_bytes("VmData:");
    CHECK(data > 0, "VmData read");
    CHECK(set(RLIMIT_DATA, data + 8 * MB) == 0, "RLIMIT_DATA = VmData + 8M");
    errno = 0;
    CHECK(map(16 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE) == MAP_FAILED && errno == ENOMEM, "16M private writable: ENOMEM");
    char *ro = map(16 * MB, PROT_READ, MAP_PRIVATE);
    CHECK(ro != MAP_FAILED, "16M private read-only: not data, fine");
    char *sh = map(16 * MB, PROT_READ | PROT_WRITE, MAP_SHARED);
    CHECK(sh != MAP_FAILED, "16M shared writable: not data, fine");
    char *rw = map(4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    CHECK(rw != MAP_FAILED && status_bytes("VmData:") == data + 4 * MB, "4M private writable fits (VmData + 4M)");
    errno = 0;
    CHECK(mprotect(ro, 8 * MB, PROT_READ | PROT_WRITE) == -1 && errno == ENOMEM, "mprotect making 8M writable: ENOMEM");
    CHECK(mprotect(ro, 2 * MB, PROT_READ | PROT_WRITE) == 0, "making 2M writable: fine");
    errno = 0;
    CHECK(mremap(rw, 4 * MB, 8 * MB, MREMAP_MAYMOVE) == MAP_FAILED && errno == ENOMEM, "mremap growing data past it: ENOMEM");
    CHECK(mremap(sh, 16 * MB, 32 * MB, MREMAP_MAYMOVE) != MAP_FAILED, "mremap growing shared: fine");
    long brk0 = syscall(SYS_brk, 0);
    CHECK(syscall(SYS_brk, brk0 + 4 * MB) == brk0, "brk past it: the break stays");
    CHECK(syscall(SYS_brk, brk0 + MB) == brk0 + MB, "brk within it moves");
    CHECK(munmap(rw, 4 * MB) == 0 && syscall(SYS_brk, brk0 + 3 * MB) == brk0 + 3 * MB, "munmap makes room again");
    syscall(SYS_brk, brk0);
}

int main(void) {
    t_begin("t_rlimit_vm");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    pid_t p = fork();
    if (p == 0) {
        as_limit();
        data_limit();
        _exit(t_failures ? 1 : 0);
    }
    int st = 0;
    pid_t w = waitpid(p, &st, 0);
    CHECK(w == p && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", t_status(st));
    return t_end();
}
