/* Traps a guest program takes and handles itself: int3 (SIGTRAP), ud2
 * (SIGILL), a division by zero (SIGFPE), single-stepping with the trap flag
 * (SIGTRAP per instruction), and int3 with no handler (killed by SIGTRAP).
 * Every platform must deliver them as Linux does (the seccomp platform's
 * stub catches each on the host first). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

static int failed, checks;
#define CHECK(c, what)                                                   \
    do {                                                                 \
        checks++;                                                        \
        if (c) printf("%s: ok\n", what);                                 \
        else { failed++; printf("%s: FAIL (line %d)\n", what, __LINE__); } \
    } while (0)

static volatile int got_sig, got_code, steps;
static sigjmp_buf jb;

static void on_trap(int s, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = s;
    got_code = si->si_code;
}
static void on_jump(int s, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = s;
    got_code = si->si_code;
    siglongjmp(jb, 1);
}
static void on_step(int s, siginfo_t *si, void *ucv) {
    (void)s;
    (void)si;
    ucontext_t *uc = ucv;
    if (++steps >= 5) uc->uc_mcontext.gregs[REG_EFL] &= ~0x100L;
}

static void handle(int sig, void (*f)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = f;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(sig, &sa, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    handle(SIGTRAP, on_trap);
    got_sig = 0;
    __asm__ volatile("int3");
    CHECK(got_sig == SIGTRAP && got_code == 0x80, "int3: SIGTRAP, SI_KERNEL, and on");
    __asm__ volatile("int3");
    CHECK(got_sig == SIGTRAP, "a second int3 too");

    handle(SIGILL, on_jump);
    got_sig = 0;
    if (sigsetjmp(jb, 1) == 0) __asm__ volatile("ud2");
    CHECK(got_sig == SIGILL && got_code == ILL_ILLOPN, "ud2: SIGILL ILL_ILLOPN");

    handle(SIGFPE, on_jump);
    got_sig = 0;
    volatile int zero = 0, n = 7;
    if (sigsetjmp(jb, 1) == 0) n = n / zero;
    CHECK(got_sig == SIGFPE && got_code == FPE_INTDIV, "division by zero: SIGFPE FPE_INTDIV");

    handle(SIGTRAP, on_step);
    steps = 0;
    __asm__ volatile("pushf; orq $0x100, (%%rsp); popf; nop; nop; nop; nop; nop; nop; nop; nop"
                     ::: "memory", "cc");
    CHECK(steps == 5, "trap flag: one SIGTRAP per instruction until cleared");

    pid_t p = fork();
    if (p == 0) {
        signal(SIGTRAP, SIG_DFL);
        __asm__ volatile("int3");
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTRAP, "int3 without a handler: killed by SIGTRAP");
    printf("== t_traps: %d checks, %d failed\n", checks, failed);
    return failed != 0;
}
