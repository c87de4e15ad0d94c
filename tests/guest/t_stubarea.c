/* Guest program for the stub-area test (tests/seccomp_wall.rs, both
 * platforms): the pages the platform stub and umlrun share (code, op list,
 * XSAVE area; on seccomp the shared area with its op list) must be out of
 * the guest's reach:
 *   - mmap (MAP_FIXED, MAP_FIXED_NOREPLACE, a hint), mprotect, mremap
 *     (from and onto the area) of any of them, or of a range overlapping
 *     them from below, fails; munmap of them changes nothing;
 *   - a write to the op-list and XSAVE pages kills the writer (SIGSEGV);
 *   - jumping to each `syscall` in the stub's code page with mprotect,
 *     munmap and mmap of the op list in the registers harms no one but the
 *     jumper;
 * and after all that the instance still forks, execs nothing new, and a
 * child's syscalls still work. Not compared with a native run (natively
 * these addresses are ordinary user memory). Prints "stubarea: ok", then
 * its share of the isolation tally (tests/seccomp_wall.rs): "tally:
 * attempts N reached M", M the failures (attacks not refused, or harm
 * one did). */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define STUB_BASE 0x7ffffc000000UL
#define STUB_AREA_END 0x7ffffc020000UL
#define PAGE 4096UL

static int failures;
/* The attacks made. */
static int attempts;

static void check(int ok, const char *what, unsigned long addr) {
    if (!ok) {
        failures++;
        printf("FAIL: %s at %#lx (errno %d)\n", what, addr, errno);
    }
}

/* One attack on the stub area: `refused` when it failed as it must. */
static void attack(int refused, const char *what, unsigned long addr) {
    attempts++;
    check(refused, what, addr);
}

/* Pages of the stub area, every one (mapped or not on this platform). */
static const unsigned long pages[] = {
    STUB_BASE,           /* code */
    STUB_BASE + 0x1000,  /* ptrace op list */
    STUB_BASE + 0x2000,  /* XSAVE area */
    STUB_BASE + 0x4000,  /* XSAVE area, last page */
    STUB_BASE + 0x8000,  /* between */
    STUB_BASE + 0x10000, /* seccomp shared area: commands */
    STUB_BASE + 0x11000, /* seccomp op list */
    STUB_BASE + 0x13000, /* seccomp op list, last page */
    STUB_BASE + 0x1f000, /* seccomp signal stack, last page */
};
#define NPAGES (sizeof pages / sizeof pages[0])

static void mapping_calls(void) {
    char *own = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(own != MAP_FAILED, "own mmap", 0); /* not an attack */
    own[0] = 1;
    for (size_t i = 0; i < NPAGES; i++) {
        unsigned long a = pages[i];
        void *r = mmap((void *)a, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        attack(r == MAP_FAILED, "mmap MAP_FIXED", a);
        r = mmap((void *)a, PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        attack(r == MAP_FAILED, "mmap MAP_FIXED_NOREPLACE", a);
        r = mmap((void *)a, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        attack(r != MAP_FAILED && ((unsigned long)r + PAGE <= STUB_BASE || (unsigned long)r >= STUB_AREA_END),
               "mmap hint placed in the stub area", a);
        if (r != MAP_FAILED)
            munmap(r, PAGE);
        attack(mprotect((void *)a, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC) == -1, "mprotect", a);
        attack(mprotect((void *)a, PAGE, PROT_NONE) == -1, "mprotect NONE", a);
        /* munmap of pages the guest never mapped: Linux answers 0; the
         * stub must stay (the syscalls below would fail without it). */
        munmap((void *)a, PAGE);
        r = mremap(own, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)a);
        attack(r == MAP_FAILED, "mremap onto", a);
        r = mremap((void *)a, PAGE, 3 * PAGE, MREMAP_MAYMOVE);
        attack(r == MAP_FAILED, "mremap from", a);
        r = mremap((void *)a, PAGE, 2 * PAGE, 0);
        attack(r == MAP_FAILED, "mremap grow in place", a);
    }
    /* Overlapping from below: [STUB_BASE - PAGE, STUB_BASE + PAGE). */
    unsigned long below = STUB_BASE - PAGE;
    void *r = mmap((void *)below, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    attack(r == MAP_FAILED, "mmap overlapping from below", below);
    r = mmap((void *)below, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (r != MAP_FAILED) {
        ((char *)r)[0] = 1;
        attack(mremap(r, PAGE, 2 * PAGE, 0) == MAP_FAILED, "mremap growing into the area", below);
        attack(mprotect(r, 2 * PAGE, PROT_READ) == -1, "mprotect reaching into the area", below);
        munmap(r, 2 * PAGE);
    }
    /* A huge range covering everything. */
    attack(mprotect((void *)0x10000, STUB_AREA_END - 0x10000, PROT_READ | PROT_WRITE) == -1,
           "mprotect of everything", 0x10000);
    munmap(own, 2 * PAGE);
}

/* A child writes one byte at `a`: it must die of SIGSEGV. */
static void write_dies(unsigned long a) {
    pid_t p = fork();
    if (p == 0) {
        alarm(5);
        *(volatile char *)a = 0x55;
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    errno = 0;
    attack(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "a write did not kill the writer", a);
}

static sigjmp_buf jb;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(jb, 1);
}

/* Whether `a` can be read (mapped and readable) in this process. */
static int readable(unsigned long a) {
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, &old);
    int ok = 0;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*(volatile char *)a;
        ok = 1;
    }
    sigaction(SIGSEGV, &old, NULL);
    return ok;
}

/* Jumps to `site` with a mapping call on the op-list pages in the
 * registers, in a child that may die or hang (alarm). */
static void jump(unsigned long site, long nr, unsigned long a, unsigned long len, long prot, long flags) {
    pid_t p = fork();
    if (p == 0) {
        alarm(2);
        register long r10 __asm__("r10") = flags;
        register long r8 __asm__("r8") = 3;
        register long r9 __asm__("r9") = 0;
        __asm__ volatile("jmp *%0" ::"r"(site), "a"(nr), "D"(a), "S"(len), "d"(prot), "r"(r10), "r"(r8),
                         "r"(r9)
                         : "memory");
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    /* Whether it harmed anyone but the jumper: still_alive and the
     * writes after the jumps tell. */
    attempts++;
}

static void jumps(void) {
    if (!readable(STUB_BASE)) {
        printf("stub code page not readable\n");
        return;
    }
    const unsigned char *code = (const unsigned char *)STUB_BASE;
    int sites = 0;
    for (unsigned long off = 0; off + 1 < PAGE; off++) {
        if (code[off] != 0x0f || code[off + 1] != 0x05)
            continue;
        sites++;
        unsigned long s = STUB_BASE + off;
        for (int k = 0; k < 2; k++) {
            unsigned long op = k ? STUB_BASE + 0x11000 : STUB_BASE + 0x1000;
            jump(s, 10, op, 0x3000, PROT_READ | PROT_WRITE, 0);                 /* mprotect */
            jump(s, 11, op, 0x3000, 0, 0);                                      /* munmap */
            jump(s, 9, op, 0x3000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED); /* mmap */
        }
    }
    printf("stub syscall sites: %d\n", sites > 0 ? 1 : 0);
}

/* A child that makes a few syscalls and exits 7. */
static void still_alive(const char *when) {
    pid_t p = fork();
    if (p == 0) {
        char buf[16];
        int fds[2];
        if (pipe(fds) != 0 || write(fds[1], "x", 1) != 1 || read(fds[0], buf, 1) != 1)
            _exit(1);
        _exit(getppid() > 0 ? 7 : 2);
    }
    int st = 0;
    check(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7, when, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    mapping_calls();
    still_alive("alive after the mapping calls");
    /* Every op-list and XSAVE page that is mapped must be read-only. */
    for (size_t i = 0; i < NPAGES; i++) {
        unsigned long a = pages[i];
        int is_ops = (a >= STUB_BASE + 0x1000 && a < STUB_BASE + 0x5000) ||
                     (a >= STUB_BASE + 0x11000 && a < STUB_BASE + 0x14000);
        if (is_ops)
            write_dies(a);
    }
    write_dies(STUB_BASE); /* the code page */
    still_alive("alive after the writes");
    jumps();
    still_alive("alive after the jumps");
    /* This process's stub is intact: a write to the op list still kills. */
    write_dies(STUB_BASE + 0x1000);
    write_dies(STUB_BASE + 0x11000);
    int ok = failures == 0;
    if (ok)
        printf("stubarea: ok\n");
    else
        printf("stubarea: %d failures\n", failures);
    /* Every failure is an attack not refused, or harm one did (a jump's
     * shows in the checks after it). */
    printf("tally: attempts %d reached %d\n", attempts, failures);
    return ok ? 0 : 1;
}
