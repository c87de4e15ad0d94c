/* Guest program for the seccomp-wall test: tries every way it knows to make
 * a host syscall that creates /tmp/wall-<random>-<n>, each attempt in a
 * child of its own (many of them die):
 *   0  the `syscall` instruction in our own text (openat)
 *   1  `syscall` from a page we map executable and write ourselves (creat)
 *   2  `int $0x80` (i386 creat)
 *   3  `sysenter` (i386 creat)
 *   4  an x32 syscall number (creat | 0x40000000)
 *   5  the vsyscall page's entries
 *   6  scribbling over the seccomp platform's shared area (forged commands,
 *      reports, frame and siginfo pointers, op lists), then syscalls: the
 *      child may die, umlrun must go on
 *   7+ a jump to every `0f 05` (syscall) in the platform stub's code page,
 *      with creat (and, in a second child, open) in the registers.
 * Attempts 0, 1 reach the guest kernel and create the file in the guest's
 * /tmp (correct); none may create it on the host, which the harness checks
 * for the prefix printed first. Not compared with a native run (natively
 * the files really are created, and removed here at the end). The last
 * line, "tally: attempts N", is its share of the isolation tally
 * (tests/seccomp_wall.rs); only the host can tell whether one reached it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#define STUB_PAGE 0x7ffffc000000UL

static char prefix[64];

static void path_of(int n, char *out, size_t len) { snprintf(out, len, "%s-%d", prefix, n); }

/* Runs f(n) in a child with an alarm; returns a short description. */
static void attempt(int n, void (*f)(int, const char *)) {
    char path[96];
    path_of(n, path, sizeof path);
    pid_t p = fork();
    if (p == 0) {
        alarm(2);
        f(n, path);
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    printf("attempt %d: %s %d\n", n, WIFEXITED(st) ? "exited" : "killed by",
           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void own_syscall(int n, const char *path) {
    (void)n;
    long r;
    register long r10 __asm__("r10") = 0644;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(257L), "D"(-100L), "S"(path), "d"((long)(O_CREAT | O_WRONLY)), "r"(r10)
                     : "rcx", "r11", "memory");
}

static void mapped_syscall(int n, const char *path) {
    (void)n;
    unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    static const unsigned char code[] = {0x48, 0x89, 0xf8,       /* mov rax, rdi */
                                         0x48, 0x89, 0xf7,       /* mov rdi, rsi */
                                         0x48, 0x89, 0xd6,       /* mov rsi, rdx */
                                         0x0f, 0x05, 0xc3};      /* syscall; ret */
    memcpy(p, code, sizeof code);
    long (*f)(long, const char *, long) = (void *)p;
    f(85, path, 0644);
}

static void int80(int n, const char *path) {
    (void)n;
    /* i386 creat(path, mode) = 8; the path must be below 4 GiB for the
     * 32-bit ABI: copy it to a low page. */
    char *low = mmap((void *)0x10000, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (low == MAP_FAILED) return;
    strcpy(low, path);
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(8L), "b"(low), "c"(0644L) : "memory");
}

static void sysenter(int n, const char *path) {
    (void)n;
    char *low = mmap((void *)0x10000, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (low == MAP_FAILED) return;
    strcpy(low, path);
    long r;
    __asm__ volatile("sysenter" : "=a"(r) : "a"(8L), "b"(low), "c"(0644L) : "memory");
}

static void x32(int n, const char *path) {
    (void)n;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(0x40000000L + 85), "D"(path), "S"(0644L)
                     : "rcx", "r11", "memory");
}

static void vsyscall(int n, const char *path) {
    (void)n;
    (void)path;
    /* gettimeofday, time, getcpu: none writes files, but each must stay
     * inside the guest (or fault). */
    long (*gtod)(void *, void *) = (void *)0xffffffffff600000UL;
    char tv[16];
    gtod(tv, NULL);
}

#define SHARED_AREA 0x7ffffc010000UL

static void scribble(int n, const char *path) {
    (void)n;
    (void)path;
    /* Absent on ptrace: the first write faults and the child dies. */
    volatile uint64_t *a = (volatile uint64_t *)SHARED_AREA;
    uint64_t x = 0x9e3779b97f4a7c15UL;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < 0x10000 / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* pointers into the area, small numbers and noise */
            a[i] = (x & 3) == 0 ? SHARED_AREA + (x >> 2) % 0x10000 : (x & 3) == 1 ? (x >> 60) : x;
        }
        a[0] = round & 1 ? 0x100000001UL : 0x1; /* CMD, DONE */
        getppid();
        getppid();
    }
}

static uint64_t site;
static long site_nr;

static void jump_into_stub(int n, const char *path) {
    (void)n;
    long nr = site_nr;
    register long r10 __asm__("r10") = 0644;
    /* creat(path, 0644) or open(path, O_CREAT|O_WRONLY, 0644) */
    long a1 = nr == 85 ? 0644 : (O_CREAT | O_WRONLY);
    __asm__ volatile("jmp *%0"
                     :
                     : "r"(site), "a"(nr), "D"(path), "S"(a1), "d"(0644L), "r"(r10)
                     : "memory");
}

/* Reading the stub page may fault (a platform that maps none): do it in a
 * child that reports the syscall sites through a pipe. */
static int stub_sites(uint64_t *out, int max) {
    int fds[2];
    if (pipe(fds)) return 0;
    pid_t p = fork();
    if (p == 0) {
        close(fds[0]);
        const volatile unsigned char *c = (const void *)STUB_PAGE;
        for (uint64_t i = 0; i + 1 < 4096; i++)
            if (c[i] == 0x0f && c[i + 1] == 0x05) {
                uint64_t a = STUB_PAGE + i;
                if (write(fds[1], &a, 8) != 8) break;
            }
        _exit(0);
    }
    close(fds[1]);
    int n = 0;
    while (n < max && read(fds[0], &out[n], 8) == 8) n++;
    close(fds[0]);
    waitpid(p, NULL, 0);
    return n;
}

int main(void) {
    unsigned char r[8];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getrandom(r, sizeof r, 0) != sizeof r) return 2;
    int n = snprintf(prefix, sizeof prefix, "/tmp/wall-");
    for (int i = 0; i < 8; i++) n += snprintf(prefix + n, sizeof prefix - n, "%02x", r[i]);
    printf("wall prefix: %s\n", prefix);
    attempt(0, own_syscall);
    attempt(1, mapped_syscall);
    attempt(2, int80);
    attempt(3, sysenter);
    attempt(4, x32);
    attempt(5, vsyscall);
    attempt(6, scribble);
    uint64_t sites[64];
    int ns = stub_sites(sites, 64);
    printf("stub syscall sites: %d\n", ns);
    int k = 7;
    for (int i = 0; i < ns; i++) {
        site = sites[i];
        site_nr = 85;
        attempt(k++, jump_into_stub);
        site_nr = 2;
        attempt(k++, jump_into_stub);
    }
    /* The guest's own view: attempt 0 went to the guest kernel. */
    char path[96];
    path_of(0, path, sizeof path);
    printf("own syscall created the file in this system: %s\n",
           access(path, F_OK) == 0 ? "yes" : "no");
    if (getenv("T_WALL_CLEANUP"))
        for (int i = 0; i < k; i++) {
            path_of(i, path, sizeof path);
            unlink(path);
        }
    printf("wall: %d attempts\n", k);
    printf("tally: attempts %d\n", k);
    return 0;
}
