/* Guest test: the AVX/AVX-512 (XSAVE) state around signals, threads and
 * fork. Registers are loaded and read back inside one asm block around a
 * raw syscall, so only the kernel can change them in between. Checks pass
 * trivially (same lines) on a host without AVX or AVX-512. */
#include "t_common.h"
#include <cpuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>

#define MAGIC1 0x46505853u
#define MAGIC2 0x46505845u
#define UC_FP_XSTATE 1

static int has_avx, has_avx512;
static unsigned off_ymm, off_k, off_zmm_hi, off_hi16; /* XSAVE component offsets */

/* The vector state one test moves: ymm0-15 always; zmm0-31 and k1-7 with
 * AVX-512. */
struct vec {
    uint8_t z[32][64];
    uint16_t k[8];
};

static void features(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
        return;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    has_avx = (lo & 6) == 6;
    __cpuid_count(7, 0, a, b, c, d);
    has_avx512 = has_avx && (b & bit_AVX512F) && (lo & 0xe0) == 0xe0;
    __cpuid_count(0xd, 2, a, b, c, d);
    off_ymm = b;
    if (has_avx512) {
        __cpuid_count(0xd, 5, a, b, c, d);
        off_k = b;
        __cpuid_count(0xd, 6, a, b, c, d);
        off_zmm_hi = b;
        __cpuid_count(0xd, 7, a, b, c, d);
        off_hi16 = b;
    }
}

static void pattern(struct vec *v, int seed) {
    for (int r = 0; r < 32; r++)
        for (int i = 0; i < 64; i++)
            v->z[r][i] = (uint8_t)(seed * 37 + r * 64 + i * 7 + 1);
    for (int r = 0; r < 8; r++)
        v->k[r] = (uint16_t)(seed * 1000 + r * 77 + 5);
}

#define Y(n) "vmovdqu " #n "*64(%[in]), %%ymm" #n "\n"
#define YS(n) "vmovdqu %%ymm" #n ", " #n "*64(%[out])\n"
#define YCLOB "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* ymm0-15 = in; `n` times syscall(nr, a0, a1, a2); out = ymm0-15. Returns
 * the last syscall's result. */
__attribute__((target("avx"))) static long ymm_syscall(const struct vec *in, struct vec *out, long n, long nr, long a0, long a1, long a2) {
    long ret;
    __asm__ volatile(
        Y(0) Y(1) Y(2) Y(3) Y(4) Y(5) Y(6) Y(7) Y(8) Y(9) Y(10) Y(11) Y(12) Y(13) Y(14) Y(15)
        "1: mov %[nr], %%rax\n"
        "syscall\n"
        "dec %[n]\n"
        "jnz 1b\n"
        YS(0) YS(1) YS(2) YS(3) YS(4) YS(5) YS(6) YS(7) YS(8) YS(9) YS(10) YS(11) YS(12) YS(13) YS(14) YS(15)
        : "=&a"(ret), [n] "+r"(n)
        : [nr] "r"(nr), "D"(a0), "S"(a1), "d"(a2), [in] "r"(in->z), [out] "r"(out->z)
        : "rcx", "r11", "memory", YCLOB);
    return ret;
}

#define Z(n) "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n"
#define ZS(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n"
#define K(n) "kmovw " #n "*2(%[kin]), %%k" #n "\n"
#define KS(n) "kmovw %%k" #n ", " #n "*2(%[kout])\n"
#define ZCLOB YCLOB, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7"

/* The same with zmm0-31 and k1-7. */
__attribute__((target("avx512f"))) static long zmm_syscall(const struct vec *in, struct vec *out, long n, long nr, long a0, long a1, long a2) {
    long ret;
    __asm__ volatile(
        Z(0) Z(1) Z(2) Z(3) Z(4) Z(5) Z(6) Z(7) Z(8) Z(9) Z(10) Z(11) Z(12) Z(13) Z(14) Z(15)
        Z(16) Z(17) Z(18) Z(19) Z(20) Z(21) Z(22) Z(23) Z(24) Z(25) Z(26) Z(27) Z(28) Z(29) Z(30) Z(31)
        K(1) K(2) K(3) K(4) K(5) K(6) K(7)
        "1: mov %[nr], %%rax\n"
        "syscall\n"
        "dec %[n]\n"
        "jnz 1b\n"
        ZS(0) ZS(1) ZS(2) ZS(3) ZS(4) ZS(5) ZS(6) ZS(7) ZS(8) ZS(9) ZS(10) ZS(11) ZS(12) ZS(13) ZS(14) ZS(15)
        ZS(16) ZS(17) ZS(18) ZS(19) ZS(20) ZS(21) ZS(22) ZS(23) ZS(24) ZS(25) ZS(26) ZS(27) ZS(28) ZS(29) ZS(30) ZS(31)
        KS(1) KS(2) KS(3) KS(4) KS(5) KS(6) KS(7)
        : "=&a"(ret), [n] "+r"(n)
        : [nr] "r"(nr), "D"(a0), "S"(a1), "d"(a2), [in] "r"(in->z), [out] "r"(out->z), [kin] "r"(in->k), [kout] "r"(out->k)
        : "rcx", "r11", "memory", ZCLOB);
    return ret;
}

/* Whether `out` holds `in` for the registers this host has. */
static int same(const struct vec *in, const struct vec *out) {
    if (has_avx512)
        return memcmp(in->z, out->z, sizeof in->z) == 0 && memcmp(&in->k[1], &out->k[1], 7 * 2) == 0;
    for (int r = 0; r < 16; r++)
        if (memcmp(in->z[r], out->z[r], 32) != 0)
            return 0;
    return 1;
}

/* Runs the host's widest variant; without AVX only the syscall runs. */
static long vec_syscall(const struct vec *in, struct vec *out, long n, long nr, long a0, long a1, long a2) {
    if (has_avx512)
        return zmm_syscall(in, out, n, nr, a0, a1, a2);
    if (has_avx)
        return ymm_syscall(in, out, n, nr, a0, a1, a2);
    long ret = 0;
    while (n--)
        ret = syscall(nr, a0, a1, a2);
    *out = *in;
    return ret;
}

/* Clobbers every vector register, as glibc's AVX string functions would. */
__attribute__((target("avx512f"))) static void clobber512(void) {
    __asm__ volatile("vpternlogd $0xff, %%zmm0, %%zmm0, %%zmm0\n"
                     "vmovdqa64 %%zmm0, %%zmm7\nvmovdqa64 %%zmm0, %%zmm15\n"
                     "vmovdqa64 %%zmm0, %%zmm16\nvmovdqa64 %%zmm0, %%zmm31\n"
                     "kxnorw %%k1, %%k1, %%k1\nkxnorw %%k7, %%k7, %%k7\n" ::: "xmm0", "xmm7", "xmm15", "xmm16", "xmm31", "k1", "k7");
}
__attribute__((target("avx"))) static void clobber256(void) {
    __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\nvmovdqa %%ymm0, %%ymm3\nvmovdqa %%ymm0, %%ymm15\n" ::: "xmm0", "xmm3", "xmm15");
}
static char big[1 << 16];
static void clobber(void) {
    memset(big, 0x5a, sizeof big); /* glibc picks its AVX/EVEX memset */
    if (has_avx512)
        clobber512();
    else if (has_avx)
        clobber256();
}

static struct vec v_in, v_out, v_edit;
static volatile int h_magic1, h_magic2, h_flags, h_align, h_ymm, h_zmm, h_bv, h_runs;
static volatile int edit_frame;

/* Whether the frame's xstate holds v_in (the interrupted registers). */
static void check_frame(const uint8_t *fp) {
    uint64_t bv;
    memcpy(&bv, fp + 512, 8);
    h_bv = !has_avx || (bv & 4);
    h_ymm = 1;
    h_zmm = 1;
    if (!has_avx)
        return;
    for (int r = 0; r < 16; r++) {
        if (memcmp(fp + 160 + 16 * r, v_in.z[r], 16) != 0 || memcmp(fp + off_ymm + 16 * r, v_in.z[r] + 16, 16) != 0)
            h_ymm = 0;
    }
    if (!has_avx512)
        return;
    for (int r = 0; r < 16; r++)
        if (memcmp(fp + off_zmm_hi + 32 * r, v_in.z[r] + 32, 32) != 0)
            h_zmm = 0;
    for (int r = 16; r < 32; r++)
        if (memcmp(fp + off_hi16 + 64 * (r - 16), v_in.z[r], 64) != 0)
            h_zmm = 0;
    for (int r = 1; r < 8; r++) {
        uint64_t k;
        memcpy(&k, fp + off_k + 8 * r, 8);
        if (k != v_in.k[r])
            h_zmm = 0;
    }
}

static void handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
    uint32_t m1, xsize, m2 = 0;
    memcpy(&m1, fp + 464, 4);
    memcpy(&xsize, fp + 480, 4);
    h_magic1 = m1 == MAGIC1;
    if (h_magic1 && xsize >= 576 && xsize < (1 << 16))
        memcpy(&m2, fp + xsize, 4);
    h_magic2 = m2 == MAGIC2;
    h_flags = (uc->uc_flags & UC_FP_XSTATE) != 0;
    h_align = ((uintptr_t)fp & 63) == 0;
    /* Without both magics the frame may hold only the 512-byte FXSAVE
     * area: reading past it could leave the stack. */
    int xstate = h_magic1 && h_magic2;
    if (xstate)
        check_frame(fp);
    else
        h_bv = h_ymm = h_zmm = !has_avx;
    if (edit_frame && has_avx && xstate) {
        /* ymm3 and (AVX-512) zmm20 get v_edit's values on sigreturn. */
        memcpy(fp + 160 + 16 * 3, v_edit.z[3], 16);
        memcpy(fp + off_ymm + 16 * 3, v_edit.z[3] + 16, 16);
        if (has_avx512) {
            memcpy(fp + off_zmm_hi + 32 * 3, v_edit.z[3] + 32, 32);
            memcpy(fp + off_hi16 + 64 * 4, v_edit.z[20], 64);
        }
    }
    h_runs++;
    clobber();
}

static void on(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigaction(sig, &sa, NULL);
}

static void t_handler(void) {
    on(SIGUSR1, 0);
    pattern(&v_in, 1);
    memset(&v_out, 0, sizeof v_out);
    vec_syscall(&v_in, &v_out, 1, SYS_kill, getpid(), SIGUSR1, 0);
    CHECK(h_runs == 1, "handler ran once, from inside the asm");
    CHECK(h_magic1, "frame fpstate has FP_XSTATE_MAGIC1");
    CHECK(h_magic2, "frame fpstate has FP_XSTATE_MAGIC2 after the xstate");
    CHECK(h_flags, "uc_flags has UC_FP_XSTATE");
    CHECK(h_align, "fpstate is 64-byte aligned");
    CHECK(h_bv, "XSTATE_BV marks the AVX state in use");
    CHECK(h_ymm, "frame xstate holds the interrupted ymm values");
    CHECK(h_zmm, "frame xstate holds the interrupted zmm and k values");
    CHECK(same(&v_in, &v_out), "vector registers survive a clobbering handler");
}

static void t_edit(void) {
    pattern(&v_in, 2);
    pattern(&v_edit, 3);
    edit_frame = 1;
    vec_syscall(&v_in, &v_out, 1, SYS_kill, getpid(), SIGUSR1, 0);
    edit_frame = 0;
    struct vec want = v_in;
    memcpy(want.z[3], v_edit.z[3], has_avx512 ? 64 : 32);
    if (has_avx512)
        memcpy(want.z[20], v_edit.z[20], 64);
    CHECK(same(&want, &v_out), "ymm/zmm edited in the frame take effect after sigreturn");
}

/* The frame must fit a sigaltstack of sysconf(_SC_MINSIGSTKSZ) (glibc reads
 * AT_MINSIGSTKSZ) plus room for the handler, above a guard page. */
static void c_altstack(void) {
    long min = sysconf(_SC_MINSIGSTKSZ);
    size_t size = (size_t)min + 512;
    size_t len = 4096 + ((size + 4095) & ~4095ul);
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE) != 0)
        _exit(2);
    stack_t ss = {.ss_sp = m + len - size, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        _exit(3);
    on(SIGUSR2, SA_ONSTACK);
    h_runs = 0;
    pattern(&v_in, 4);
    vec_syscall(&v_in, &v_out, 1, SYS_kill, getpid(), SIGUSR2, 0);
    _exit(h_runs == 1 && h_magic2 && same(&v_in, &v_out) ? 0 : 1);
}

static void t_altstack(void) {
    /* Not the legacy 2048: a host without AVX-512 reports less (1776 with
     * x87+SSE+AVX). A frame with an FP image needs more than 1 KiB; that the
     * frame fits on a stack this size is the next check. */
    CHECK(sysconf(_SC_MINSIGSTKSZ) >= 1024, "MINSIGSTKSZ holds a frame with an FP image");
    SAY("MINSIGSTKSZ %ld (compared with the host kernel's)\n", sysconf(_SC_MINSIGSTKSZ));
    pid_t pid = fork();
    if (pid == 0)
        c_altstack();
    SAY("xstate frame on a MINSIGSTKSZ altstack: %s\n", t_wait(pid));
}

static void t_fork(void) {
    pattern(&v_in, 5);
    long r = vec_syscall(&v_in, &v_out, 1, SYS_fork, 0, 0, 0);
    if (r == 0)
        syscall(SYS_exit, same(&v_in, &v_out) ? 0 : 1);
    CHECK(same(&v_in, &v_out), "parent keeps its vector registers over fork");
    int st = 0;
    waitpid(r, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child starts with the parent's vector registers");
}

static pthread_barrier_t bar;
static int thread_ok[2];

static void *spinner(void *arg) {
    int id = (int)(intptr_t)arg;
    struct vec in, out;
    pattern(&in, 10 + id);
    pthread_barrier_wait(&bar);
    vec_syscall(&in, &out, 3000, SYS_sched_yield, 0, 0, 0);
    thread_ok[id] = same(&in, &out);
    return NULL;
}

static void t_threads(void) {
    pthread_t t[2];
    pthread_barrier_init(&bar, NULL, 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, spinner, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(thread_ok[0] && thread_ok[1], "two threads yielding keep their own vector registers");
}

/* A signal to a thread spinning in its vector loop, from another thread. */
static volatile int spin_ready;
static void *sig_spinner(void *arg) {
    (void)arg;
    struct vec in, out;
    pattern(&in, 20);
    spin_ready = 1;
    vec_syscall(&in, &out, 3000, SYS_sched_yield, 0, 0, 0);
    thread_ok[0] = same(&in, &out);
    return NULL;
}

static void t_thread_signal(void) {
    pthread_t t;
    h_runs = 0;
    spin_ready = 0;
    pthread_create(&t, NULL, sig_spinner, NULL);
    while (!spin_ready)
        sched_yield();
    for (int i = 0; i < 5; i++) {
        pthread_kill(t, SIGUSR1);
        sched_yield();
    }
    pthread_join(t, NULL);
    CHECK(thread_ok[0], "signals to a spinning thread keep its vector registers");
}

/* A frame that does not fit on the alternate stack is never written below
 * it: Linux kills the task with SIGSEGV (an AVX-512 frame is ~3.2 KiB, more
 * than MINSIGSTKSZ; where it fits, the handler runs and nothing below the
 * stack changes either way). */
static unsigned char small_area[16384];
static void nop_handler(int sig) { (void)sig; }
static void t_small_altstack(void) {
    pid_t p = fork();
    if (p == 0) {
        memset(small_area, 0xaa, sizeof small_area);
        stack_t ss = {.ss_sp = small_area + 8192, .ss_size = 2048, .ss_flags = 0};
        if (sigaltstack(&ss, 0) != 0) _exit(3);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = nop_handler;
        sa.sa_flags = SA_ONSTACK;
        sigaction(SIGUSR1, &sa, 0);
        raise(SIGUSR1);
        for (int i = 0; i < 8192; i++)
            if (small_area[i] != 0xaa) _exit(2);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) != 0),
          "a frame too big for the altstack does not overwrite memory below it");
    SAY("2048-byte altstack: child %s\n",
        WIFSIGNALED(st) ? (WTERMSIG(st) == SIGSEGV ? "killed by SIGSEGV" : "killed")
                        : "ran its handler");
}

/* A handler's edits of MXCSR and an xmm register in the frame take effect,
 * also when SSE was in its init state when the signal came (all vector
 * registers zeroed, the signal sent by a raw syscall). */
static volatile int mx_seen;
static void mx_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    uc->uc_mcontext.fpregs->mxcsr |= 0x8040; /* FTZ | DAZ */
    uc->uc_mcontext.fpregs->_xmm[3].element[0] = 0x1234;
    mx_seen = 1;
}
static void t_edit_sse(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = mx_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, &old);
    unsigned mxcsr, x3;
    pid_t me = getpid();
    if (has_avx)
        __asm__ volatile("vzeroall" ::: "memory");
    else
        __asm__ volatile("pxor %%xmm3, %%xmm3" ::: "memory");
    __asm__ volatile("syscall\n"
                     "stmxcsr %0\n"
                     "movd %%xmm3, %1\n"
                     : "=m"(mxcsr), "=r"(x3)
                     : "a"(62L), "D"((long)me), "S"((long)SIGUSR2)
                     : "rcx", "r11", "memory");
    sigaction(SIGUSR2, &old, 0);
    unsigned keep = 0x1f80;
    __asm__ volatile("ldmxcsr %0" ::"m"(keep));
    CHECK(mx_seen, "the SSE-editing handler ran");
    CHECK((mxcsr & 0x8040) == 0x8040, "MXCSR edited in the frame comes back");
    CHECK(x3 == 0x1234, "xmm3 edited in the frame comes back");
}

int main(void) {
    t_begin("t_sigxstate");
    features();
    t_handler();
    t_edit();
    t_altstack();
    t_small_altstack();
    t_edit_sse();
    t_fork();
    t_threads();
    t_thread_signal();
    return t_end();
}
