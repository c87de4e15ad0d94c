/* futex_waitv (Linux 5.16+): argument errors (flags, counts, entry flags,
 * __reserved, values wider than 32 bits, clock ids, timespecs, misaligned
 * and unmapped words, in Linux's order), EAGAIN, absolute timeouts on
 * CLOCK_MONOTONIC and CLOCK_REALTIME, a FUTEX_WAKE on the 2nd of 3 words
 * returning 1, a wake from another thread, a shared wait across fork, and
 * signals: EINTR without SA_RESTART, restarted with it. */
#include "t_common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

#define U32 2u  /* FUTEX2_SIZE_U32 */
#define PRIV 128u /* FUTEX2_PRIVATE */

static long waitv(struct waitv *w, unsigned n, unsigned flags, struct timespec *ts, int clk) {
    return syscall(SYS_futex_waitv, w, n, flags, ts, clk);
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static struct timespec in_ms(int clk, int ms) {
    struct timespec t;
    clock_gettime(clk, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static volatile uint32_t words[3];

static void set(struct waitv *w, int i, volatile uint32_t *addr, uint64_t val, uint32_t flags) {
    w[i] = (struct waitv){.val = val, .uaddr = (uintptr_t)addr, .flags = flags};
}

static int err(long r, int e) { return r == -1 && errno == e; }

static void errors(void) {
    struct waitv w[130];
    for (int i = 0; i < 130; i++) set(w, i, &words[0], 0, U32 | PRIV);
    words[0] = words[1] = words[2] = 0;
    struct timespec past = {0, 0};
    CHECK(err(waitv(w, 1, 1, &past, CLOCK_MONOTONIC), EINVAL), "flags to the call: EINVAL");
    CHECK(err(waitv(w, 0, 0, &past, CLOCK_MONOTONIC), EINVAL), "no futexes: EINVAL");
    CHECK(err(waitv(w, 129, 0, &past, CLOCK_MONOTONIC), EINVAL), "129 futexes: EINVAL");
    CHECK(err(waitv(w, 128, 0, &past, CLOCK_MONOTONIC), ETIMEDOUT),
          "128 futexes (one word 128 times), a past deadline: ETIMEDOUT");
    CHECK(err(waitv(NULL, 1, 0, &past, CLOCK_MONOTONIC), EINVAL), "a NULL vector: EINVAL");
    CHECK(err(waitv((struct waitv *)8, 1, 0, &past, CLOCK_MONOTONIC), EFAULT),
          "an unreadable vector: EFAULT");
    CHECK(err(waitv(w, 1, 0, &past, CLOCK_BOOTTIME), EINVAL), "CLOCK_BOOTTIME: EINVAL");
    CHECK(err(waitv((struct waitv *)8, 1, 0, &past, 99), EINVAL),
          "a bad clock is found before a bad vector");
    CHECK(err(waitv(w, 1, 0, (struct timespec *)8, CLOCK_MONOTONIC), EFAULT),
          "an unreadable timeout: EFAULT");
    struct timespec bad = {0, 1000000000L};
    CHECK(err(waitv(w, 1, 0, &bad, CLOCK_MONOTONIC), EINVAL), "tv_nsec out of range: EINVAL");
    struct timespec neg = {-1, 0};
    CHECK(err(waitv(w, 1, 0, &neg, CLOCK_REALTIME), EINVAL), "a negative tv_sec: EINVAL");
    words[0] = 5;
    CHECK(err(waitv(w, 1, 0, NULL, 99), EAGAIN), "no timeout: the clock id is not looked at");
    words[0] = 0;

    uint32_t bad_flags[] = {0, 1, 3, U32 | 0x10, U32 | 0x100, U32 | 0x80000000u};
    for (unsigned i = 0; i < sizeof bad_flags / sizeof *bad_flags; i++) {
        set(w, 0, &words[0], 0, bad_flags[i]);
        CHECK(err(waitv(w, 1, 0, &past, CLOCK_MONOTONIC), EINVAL), "entry flags %#x: EINVAL",
              bad_flags[i]);
    }
    set(w, 0, &words[0], 0, U32);
    w[0].reserved = 1;
    CHECK(err(waitv(w, 1, 0, &past, CLOCK_MONOTONIC), EINVAL), "a nonzero __reserved: EINVAL");
    set(w, 0, &words[0], 1ull << 32, U32);
    CHECK(err(waitv(w, 1, 0, &past, CLOCK_MONOTONIC), EINVAL), "a value above 32 bits: EINVAL");
    /* Entries are checked in order, all before any word is read. */
    set(w, 0, &words[0], 7, U32 | PRIV);
    set(w, 1, &words[1], 0, U32 | PRIV);
    w[1].reserved = 1;
    CHECK(err(waitv(w, 2, 0, &past, CLOCK_MONOTONIC), EINVAL),
          "a bad 2nd entry is found before the 1st word's value");
    set(w, 1, (volatile uint32_t *)((char *)&words[1] + 2), 0, U32 | PRIV);
    CHECK(err(waitv(w, 2, 0, &past, CLOCK_MONOTONIC), EINVAL),
          "a misaligned 2nd word is found before the 1st word's value");
    set(w, 1, (volatile uint32_t *)16, 0, U32);
    CHECK(err(waitv(w, 2, 0, &past, CLOCK_MONOTONIC), EFAULT),
          "an unmapped shared 2nd word is found before the 1st word's value");
    set(w, 1, (volatile uint32_t *)16, 0, U32 | PRIV);
    CHECK(err(waitv(w, 2, 0, &past, CLOCK_MONOTONIC), EAGAIN),
          "a differing 1st word, then an unmapped private one: EAGAIN");
    set(w, 0, &words[0], 0, U32 | PRIV);
    CHECK(err(waitv(w, 2, 0, &past, CLOCK_MONOTONIC), EFAULT),
          "a matching 1st word, then an unmapped private one: EFAULT");
    CHECK(err(waitv(w + 1, 1, 0, NULL, 0), EFAULT), "an unmapped private word: EFAULT");
    /* A partly readable vector: the first entry fine, the second not. */
    char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(pg + 4096, 4096);
    struct waitv *edge = (struct waitv *)(pg + 4096 - sizeof *edge);
    set(edge, 0, &words[0], 0, U32 | PRIV);
    CHECK(err(waitv(edge, 2, 0, &past, CLOCK_MONOTONIC), EFAULT), "a vector running off its mapping: EFAULT");
    CHECK(err(waitv(edge, 1, 0, &past, CLOCK_MONOTONIC), ETIMEDOUT), "its readable first entry alone: ETIMEDOUT");
    munmap(pg, 4096);
}

static void values_and_timeouts(void) {
    struct waitv w[3];
    words[0] = 0, words[1] = 1, words[2] = 2;
    for (int i = 0; i < 3; i++) set(w, i, &words[i], i, U32 | PRIV);
    w[1].val = 9;
    struct timespec past = {0, 0};
    CHECK(err(waitv(w, 3, 0, NULL, 0), EAGAIN), "the 2nd word differs: EAGAIN");
    CHECK(err(waitv(w, 3, 0, &past, CLOCK_MONOTONIC), EAGAIN),
          "a differing word and a past deadline: EAGAIN, not ETIMEDOUT");
    w[1].val = 1;
    int clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
    for (int c = 0; c < 2; c++) {
        struct timespec t0, t1, dl = in_ms(clocks[c], 150);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long r = waitv(w, 3, 0, &dl, clocks[c]);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        CHECK(err(r, ETIMEDOUT), "%s deadline 150 ms ahead: ETIMEDOUT",
              c ? "CLOCK_REALTIME" : "CLOCK_MONOTONIC");
        CHECK(ms >= 140 && ms < 3000, "... after about 150 ms");
    }
    w[0].flags = U32; /* a shared entry on a private page: keyed privately */
    CHECK(err(waitv(w, 3, 0, &past, CLOCK_REALTIME), ETIMEDOUT), "a past REALTIME deadline: ETIMEDOUT");
}

/* A thread waiting on three words; `ret`/`e` its result. */
struct vw {
    struct waitv w[3];
    long ret;
    int e;
    volatile int done;
};

static void *vwait(void *arg) {
    struct vw *v = arg;
    struct timespec dl = in_ms(CLOCK_MONOTONIC, 10000);
    v->ret = waitv(v->w, 3, 0, &dl, CLOCK_MONOTONIC);
    v->e = errno;
    v->done = 1;
    return NULL;
}

/* FUTEX_WAKE (op) on `word` until it wakes someone; 1 if it did. */
static int wake_eventually(volatile uint32_t *word, int op) {
    for (int i = 0; i < 500; i++) {
        long n = syscall(SYS_futex, word, op, 1, NULL, NULL, 0);
        if (n == 1) return 1;
        if (n < 0) return -1;
        msleep(10);
    }
    return 0;
}

struct waker { volatile uint32_t *word; int op; int r; };

static void *waker(void *a) {
    struct waker *k = a;
    k->r = wake_eventually(k->word, k->op);
    return NULL;
}

static void wakes(void) {
    struct vw v = {0};
    words[0] = words[1] = words[2] = 0;
    for (int i = 0; i < 3; i++) set(v.w, i, &words[i], 0, U32 | PRIV);
    pthread_t t;
    pthread_create(&t, NULL, vwait, &v);
    CHECK(wake_eventually(&words[1], FUTEX_WAKE_PRIVATE) == 1, "FUTEX_WAKE on the 2nd word wakes the waiter");
    pthread_join(t, NULL);
    CHECK(v.ret == 1, "futex_waitv returns 1, the index woken (got %ld)", v.ret);
    CHECK(syscall(SYS_futex, &words[0], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0 &&
              syscall(SYS_futex, &words[2], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0,
          "the woken waiter is on none of the other words");

    /* The other way round: this thread waits, another wakes the 3rd word. */
    struct vw me = {0};
    for (int i = 0; i < 3; i++) set(me.w, i, &words[i], 0, U32 | PRIV);
    struct waker wk = {&words[2], FUTEX_WAKE_PRIVATE, 0};
    pthread_create(&t, NULL, waker, &wk);
    vwait(&me);
    pthread_join(t, NULL);
    CHECK(me.ret == 2 && wk.r == 1, "a wake from another thread on the 3rd word: returns 2 (got %ld)", me.ret);

    /* A private wake does not reach a shared waiter's word, a shared one does. */
    struct vw s = {0};
    for (int i = 0; i < 3; i++) set(s.w, i, &words[i], 0, U32);
    pthread_create(&t, NULL, vwait, &s);
    CHECK(wake_eventually(&words[0], FUTEX_WAKE) == 1, "FUTEX_WAKE on the 1st word of a shared vector");
    pthread_join(t, NULL);
    CHECK(s.ret == 0, "returns 0 (got %ld)", s.ret);
}

static void across_fork(void) {
    volatile uint32_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "a MAP_SHARED page");
    m[0] = m[1] = 0;
    pid_t p = fork();
    if (p == 0) {
        struct waitv w[2];
        set(w, 0, &m[0], 0, U32);
        set(w, 1, &m[1], 0, U32);
        struct timespec dl = in_ms(CLOCK_MONOTONIC, 10000);
        long r = waitv(w, 2, 0, &dl, CLOCK_MONOTONIC);
        _exit(r < 0 ? 100 + errno % 100 : (int)r);
    }
    CHECK(wake_eventually(&m[1], FUTEX_WAKE) == 1, "FUTEX_WAKE from another process on the 2nd shared word");
    SAY("child (exit code = index woken): %s\n", t_wait(p));
    munmap((void *)m, 4096);
}

static volatile int handled;
static void on_sig(int s) { (void)s; handled++; }

struct poker { pid_t tid; volatile int stop; volatile uint32_t *word; int woke; };

static void *poke_until_stopped(void *a) {
    struct poker *p = a;
    while (!p->stop) {
        msleep(50);
        if (!p->stop) syscall(SYS_tgkill, getpid(), p->tid, SIGUSR1);
    }
    return NULL;
}

static void *poke_then_wake(void *a) {
    struct poker *p = a;
    msleep(150);
    syscall(SYS_tgkill, getpid(), p->tid, SIGUSR1);
    while (!handled) msleep(5);
    msleep(100);
    p->woke = wake_eventually(p->word, FUTEX_WAKE_PRIVATE);
    return NULL;
}

static void signals(void) {
    struct waitv w[2];
    words[0] = words[1] = 0;
    set(w, 0, &words[0], 0, U32 | PRIV);
    set(w, 1, &words[1], 0, U32 | PRIV);
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sigaction(SIGUSR1, &sa, NULL);
    struct poker pk = {.tid = gettid(), .word = &words[1]};
    pthread_t t;
    pthread_create(&t, NULL, poke_until_stopped, &pk);
    struct timespec dl = in_ms(CLOCK_MONOTONIC, 5000);
    long r = waitv(w, 2, 0, &dl, CLOCK_MONOTONIC);
    int e = errno;
    pk.stop = 1;
    pthread_join(t, NULL);
    errno = e;
    CHECK(err(r, EINTR) && handled > 0, "a handled signal without SA_RESTART: EINTR");

    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;
    pthread_create(&t, NULL, poke_then_wake, &pk);
    dl = in_ms(CLOCK_MONOTONIC, 5000);
    r = waitv(w, 2, 0, &dl, CLOCK_MONOTONIC);
    pthread_join(t, NULL);
    CHECK(r == 1 && handled == 1 && pk.woke == 1,
          "with SA_RESTART the wait is restarted after the handler, then woken on the 2nd word (got %ld)", r);
    signal(SIGUSR1, SIG_DFL);
}

int main(void) {
    t_begin("t_futexv");
    errors();
    values_and_timeouts();
    wakes();
    across_fork();
    signals();
    return t_end();
}
