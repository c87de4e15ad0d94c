/* Guest program for the process-isolation test (tests/seccomp_wall.rs,
 * both platforms): one guest process must not read another's memory
 * through the stub.
 *
 * A victim child fills a page of its own with a random secret and waits.
 * The attacker (another child) finds every `syscall` instruction in the
 * stub's code page and jumps to each with its own registers:
 *   mmap(window, 16 MiB, PROT_READ, MAP_SHARED|MAP_FIXED, fd, offset)
 * for every host fd 0..63 and offsets across the file, as the stub's op
 * loop would run it for umlrun. A host mmap there would map the guest
 * memory file (or a disk image) behind the guest kernel's back; the
 * attacker then reads the window natively and looks for the secret.
 * Registers the stub code uses after its `syscall` point at nothing, so
 * whatever the stub does next faults, and the attacker's own SIGSEGV
 * handler reads the syscall's result (rax) from its signal frame.
 *
 * Prints "memsteal: safe" when the secret was not found (and the
 * instance still works), "memsteal: STOLEN fd F offset O" otherwise
 * (exit 1). Not compared with a native run (natively these addresses are
 * ordinary user memory). Its share of the isolation tally
 * (tests/seccomp_wall.rs): "tally: attempts N reached M", one attempt per
 * attacker (a stub syscall site, every fd and offset), M the thefts. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define STUB_BASE 0x7ffffc000000UL
#define PAGE 4096UL
#define WINDOW (16UL << 20)
#define MAX_FD 64
/* Up to 1 GiB of a file: more than any mem= the tests use. */
#define MAX_OFF (1UL << 30)

/* The key; the secret page is derived from it byte by byte and exists
 * only in the victim's memory (a copy anywhere in the attacker's own
 * memory would be found in the memory file too). */
static unsigned char key[32];

static unsigned char secret_byte(unsigned long i) {
    static const char tag[] = "MEMSTEAL-SECRET:";
    if (i < 16)
        return (unsigned char)tag[i];
    return key[i % 32] ^ (unsigned char)(i * 7) ^ (unsigned char)(i >> 8);
}

static int is_secret(const unsigned char *p) {
    for (unsigned long i = 0; i < PAGE; i++)
        if (p[i] != secret_byte(i))
            return 0;
    return 1;
}
static sigjmp_buf jb;
static volatile long got_rax;
static volatile int got_sig;

static void on_fault(int sig, siginfo_t *si, void *ctx) {
    (void)si;
    ucontext_t *uc = ctx;
    got_rax = uc->uc_mcontext.gregs[REG_RAX];
    got_sig = sig;
    siglongjmp(jb, 1);
}

static void catch_faults(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Jump to `site` with mmap's number and arguments in the registers and
 * every other register the stub might use pointing at page 1 (unmapped):
 * returns rax as the attacker's fault handler saw it. */
static long hijack(unsigned long site, unsigned long addr, unsigned long len, long fd, unsigned long off) {
    got_rax = -4096;
    got_sig = 0;
    if (sigsetjmp(jb, 1) == 0) {
        register long r10 __asm__("r10") = MAP_SHARED | MAP_FIXED;
        register long r8 __asm__("r8") = fd;
        register long r9 __asm__("r9") = (long)off;
        register long r12 __asm__("r12") = 0x1000;
        register long r13 __asm__("r13") = 0x1000;
        register long r14 __asm__("r14") = 0x1000;
        register long r15 __asm__("r15") = 0x1000;
        __asm__ volatile("mov $0x1000, %%rbx\n\t"
                         "mov $0x1000, %%rbp\n\t"
                         "jmp *%0" ::"r"(site),
                         "a"(9L), "D"(addr), "S"(len), "d"((long)PROT_READ), "r"(r10), "r"(r8), "r"(r9),
                         "r"(r12), "r"(r13), "r"(r14), "r"(r15)
                         : "rbx", "rbp", "memory");
        /* not reached: the jump never comes back here */
    }
    return got_rax;
}

/* Scans the window for the secret, page by page, until a page faults
 * (past the end of the file). Returns the page index or -1. */
static long scan(const unsigned char *w, unsigned long len) {
    volatile unsigned long i;
    for (i = 0; i < len / PAGE; i++) {
        if (sigsetjmp(jb, 1) != 0)
            return -1;
        if (is_secret(w + i * PAGE))
            return (long)i;
    }
    return -1;
}

/* The attacker: every site, every fd; exits 10 with a report when it
 * found the secret, 0 when not. May be killed by the stub's filter. */
static void attack(unsigned long site, int report_fd) {
    alarm(60);
    catch_faults();
    unsigned char *win = mmap(NULL, WINDOW, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (win == MAP_FAILED)
        _exit(3);
    for (long fd = 0; fd < MAX_FD; fd++) {
        if (fd == report_fd)
            continue;
        for (unsigned long off = 0; off < MAX_OFF; off += WINDOW) {
            long r = hijack(site, (unsigned long)win, WINDOW, fd, off);
            if (r != (long)win)
                break;
            long at = scan(win, WINDOW);
            if (at >= 0) {
                dprintf(report_fd, "memsteal: STOLEN fd %ld offset %#lx via %#lx\n", fd, off + at * PAGE,
                        site);
                _exit(10);
            }
        }
    }
    _exit(0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (getrandom(key, sizeof key, 0) != sizeof key)
        return 2;

    int ready[2];
    if (pipe(ready) != 0)
        return 2;
    pid_t victim = fork();
    if (victim == 0) {
        unsigned char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            _exit(2);
        for (unsigned long i = 0; i < PAGE; i++)
            p[i] = secret_byte(i);
        if (write(ready[1], "r", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    char c;
    if (victim < 0 || read(ready[0], &c, 1) != 1)
        return 2;

    /* Close every other fd (the attacker's guesses must not name a guest
     * file), keeping stdout for the report. */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);

    const unsigned char *code = (const unsigned char *)STUB_BASE;
    int sites = 0, stolen = 0, killed = 0;
    for (unsigned long off = 0; off + 1 < PAGE; off++) {
        if (code[off] != 0x0f || code[off + 1] != 0x05)
            continue;
        sites++;
        unsigned long site = STUB_BASE + off;
        pid_t a = fork();
        if (a == 0)
            attack(site, 1);
        int st = 0;
        waitpid(a, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 10)
            stolen++;
        else if (WIFSIGNALED(st))
            killed++;
    }
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    printf("stub syscall sites: %d (attackers killed: %d)\n", sites, killed);
    printf("tally: attempts %d reached %d\n", sites, stolen);
    /* The instance still works. */
    pid_t p = fork();
    if (p == 0)
        _exit(getppid() > 0 ? 7 : 1);
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
        printf("memsteal: FAIL: the instance stopped working\n");
        return 1;
    }
    if (sites == 0) {
        printf("memsteal: FAIL: no syscall site found\n");
        return 1;
    }
    if (stolen) {
        printf("memsteal: STOLEN through %d sites\n", stolen);
        return 1;
    }
    printf("memsteal: safe\n");
    return 0;
}
