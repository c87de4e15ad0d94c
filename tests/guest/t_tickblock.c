/* Guest program for the preemption test (tests/seccomp_wall.rs, both
 * platforms): guest code must not escape preemption.
 *
 * A child finds the stub's `mov $15, %eax; syscall` (its rt_sigreturn)
 * and jumps there with the stack on a signal frame it built: every host
 * signal blocked, rip on an endless loop. On the seccomp platform that
 * host rt_sigreturn is allowed, so the stub would run on with the
 * preemption tick blocked and the kernel would wait for it for ever (the
 * whole instance frozen). The kernel must kill such a child; on ptrace
 * the jump is a guest syscall like any other (the loop is preempted and
 * the parent's kill ends it).
 *
 * Prints "tickblock: ok" when the parent ran on, saw the child end and
 * the instance still forks. Not compared with a native run. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STUB_BASE 0x7ffffc000000UL
#define PAGE 4096UL

static void spin(void) {
    for (;;)
        __asm__ volatile("" ::: "memory");
}

/* struct rt_sigframe as the host kernel reads it: pretcode, then the
 * ucontext (uc_flags, uc_link, uc_stack, sigcontext, sigmask). */
struct frame {
    uint64_t pretcode;
    uint64_t uc_flags, uc_link;
    uint64_t ss_sp, ss_flags_pad, ss_size;
    uint64_t gregs[18]; /* r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags */
    uint16_t cs, gs, fs, ss;
    uint64_t err, trapno, oldmask, cr2, fpstate, reserved[8];
    uint64_t sigmask;
};

static char stack[65536] __attribute__((aligned(16)));
static struct frame f __attribute__((aligned(64)));

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const unsigned char *code = (const unsigned char *)STUB_BASE;
    unsigned long site = 0;
    static const unsigned char pat[] = {0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
    for (unsigned long off = 0; off + sizeof pat < PAGE; off++)
        if (memcmp(code + off, pat, sizeof pat) == 0) {
            site = STUB_BASE + off;
            break;
        }
    printf("rt_sigreturn site found: %s\n", site ? "yes" : "no");
    pid_t p = fork();
    if (p == 0) {
        memset(&f, 0, sizeof f);
        f.uc_flags = 2 | 4; /* UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS */
        f.gregs[15] = (uint64_t)(stack + sizeof stack - 64); /* rsp */
        f.gregs[16] = (uint64_t)spin;                        /* rip */
        f.gregs[17] = 0x202;                                 /* eflags */
        f.cs = 0x33;
        f.ss = 0x2b;
        f.sigmask = ~0ULL;
        if (site)
            __asm__ volatile("mov %0, %%rsp\n\tjmp *%1" ::"r"(&f.uc_flags), "r"(site) : "memory");
        spin();
    }
    /* The parent gets the CPU back (the kernel preempts or kills the
     * child), then ends the child if it still runs. */
    long t0 = now_ms();
    int st = 0;
    pid_t w = 0;
    while ((w = waitpid(p, &st, WNOHANG)) == 0 && now_ms() - t0 < 3000)
        usleep(10000);
    if (w == 0) {
        kill(p, SIGKILL);
        w = waitpid(p, &st, 0);
    }
    printf("child ended: %s\n", w == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "SIGKILL" : "other");
    pid_t q = fork();
    if (q == 0)
        _exit(7);
    int st2 = 0;
    if (q < 0 || waitpid(q, &st2, 0) != q || !WIFEXITED(st2) || WEXITSTATUS(st2) != 7) {
        printf("tickblock: FAIL: no fork after\n");
        return 1;
    }
    printf("tickblock: ok\n");
    return 0;
}
