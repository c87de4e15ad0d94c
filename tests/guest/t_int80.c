/* int $0x80 from a 64-bit task. umlrun answers as a kernel built without
 * IA32 emulation: the instruction faults with SIGSEGV (si_code SI_KERNEL)
 * and rip at the `int`, never a syscall from the 64-bit table (eax=5 is
 * fstat there, open in the 32-bit ABI). Not compared with a native run:
 * the host kernel may well have IA32 emulation. Prints one verdict line,
 * then its share of the isolation tally (tests/seccomp_wall.rs). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static volatile sig_atomic_t code = -1;
static volatile unsigned long at_rip;
static unsigned char *insn;

static void on_segv(int s, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    (void)s;
    code = si->si_code;
    at_rip = uc->uc_mcontext.gregs[REG_RIP];
    /* Skip the 2-byte instruction. */
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    long ret = 12345;
    /* eax=20: getpid in the 32-bit table, writev in the 64-bit one. */
    __asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
                     "mov %%rcx, %1\n\t"
                     "mov $20, %%eax\n\t"
                     "1: int $0x80\n\t"
                     "mov %%rax, %0\n\t"
                     : "=r"(ret), "=m"(insn)
                     :
                     : "rax", "rcx", "memory");
    int at_int = at_rip == (unsigned long)insn;
    if (code == 0x80 && at_int && ret == 20) {
        printf("int80: SIGSEGV si_code SI_KERNEL at the int, eax kept\n");
        printf("tally: attempts 1 reached 0\n");
        return 0;
    }
    printf("int80: served or wrong (si_code %d, at the int %d, rax %ld)\n", (int)code, at_int, ret);
    printf("tally: attempts 1 reached 1\n");
    return 1;
}
