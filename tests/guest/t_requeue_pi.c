/* FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI with raw syscalls (glibc's
 * condition variables no longer use them), compared with Linux: argument
 * checks in Linux's order, EAGAIN on a changed word, the woken waiter owning
 * the PI futex with the bits Linux leaves, requeued waiters handed the lock by
 * FUTEX_UNLOCK_PI, timeouts and signals before and after the requeue, the
 * EINVAL answers of other ops meeting PI waiters, and the same between two
 * processes. Also the PI handoff and signal rules of FUTEX_LOCK_PI that the
 * requeue shares. */
#include "t_common.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>

#define P FUTEX_PRIVATE_FLAG

static long fx(unsigned *u, int op, unsigned val, unsigned long val2, unsigned *u2, unsigned val3) {
    return syscall(SYS_futex, u, op, val, val2, u2, val3);
}

static long cmp_rq(unsigned *u1, int nwake, int nreq, unsigned *u2, unsigned cmp, int flags) {
    return fx(u1, FUTEX_CMP_REQUEUE_PI | flags, nwake, (unsigned long)(long)nreq, u2, cmp);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static struct timespec abs_in(clockid_t c, int ms) {
    struct timespec t;
    clock_gettime(c, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static const char *en(long r) {
    if (r >= 0) {
        static char b[32];
        snprintf(b, sizeof b, "%ld", r);
        return b;
    }
    return strerrorname_np(errno);
}

/* Retries `call` every millisecond until it gives something else than 0
 * (a waiter got there), for at most 5 s. */
#define UNTIL_NONZERO(r, call)                                                                                         \
    do {                                                                                                               \
        for (int i_ = 0; i_ < 5000; i_++) {                                                                            \
            (r) = (call);                                                                                              \
            if ((r) != 0) break;                                                                                       \
            sleep_ms(1);                                                                                               \
        }                                                                                                              \
    } while (0)

/* A thread in FUTEX_WAIT_REQUEUE_PI(u1, val, abs, u2). */
struct waiter {
    unsigned *u1, *u2;
    unsigned val;
    int flags; /* P or 0, FUTEX_CLOCK_REALTIME */
    struct timespec *abs;
    pthread_t th;
    int tid;
    volatile int started, done, go;
    long ret;
    int err;
    unsigned seen;  /* *u2 right after the call returned */
    long unlock_ret; /* UNLOCK_PI once `go` is set, when the call returned 0 */
};

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    w->tid = gettid();
    w->started = 1;
    long r = fx(w->u1, FUTEX_WAIT_REQUEUE_PI | w->flags, w->val, (unsigned long)w->abs, w->u2, 0);
    w->err = r ? errno : 0;
    w->seen = *w->u2;
    w->ret = r;
    w->done = 1;
    if (r == 0) {
        for (int i = 0; i < 5000 && !w->go; i++) sleep_ms(1);
        w->unlock_ret = fx(w->u2, FUTEX_UNLOCK_PI | (w->flags & P), 0, 0, NULL, 0);
    }
    return NULL;
}

/* Waits (at most 5 s) until thread `tid` sleeps in the kernel. */
static void asleep(int tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    for (int i = 0; i < 5000; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            char *e = strrchr(buf, ')');
            if (e && e[1] == ' ' && e[2] == 'S') return;
        }
        sleep_ms(1);
    }
}

static void start_flags(struct waiter *w, unsigned *u1, unsigned *u2, struct timespec *abs, int flags) {
    memset(w, 0, sizeof *w);
    w->u1 = u1;
    w->u2 = u2;
    w->val = *u1;
    w->flags = flags;
    w->abs = abs;
    pthread_create(&w->th, NULL, waiter_main, w);
    while (!w->started) sleep_ms(1);
    asleep(w->tid);
}

static void start(struct waiter *w, unsigned *u1, unsigned *u2, struct timespec *abs) {
    start_flags(w, u1, u2, abs, P);
}

/* Waits until FUTEX_WAKE on `u1` says a requeue-PI waiter sleeps there
 * (EINVAL, as Linux answers a plain wake meeting one). */
static int sleeping_on(unsigned *u1) {
    for (int i = 0; i < 5000; i++) {
        if (fx(u1, FUTEX_WAKE | P, 1, 0, NULL, 0) == -1 && errno == EINVAL) return 1;
        sleep_ms(1);
    }
    return 0;
}

static void finish(struct waiter *w) {
    w->go = 1;
    pthread_join(w->th, NULL);
}

static unsigned me(void) { return (unsigned)gettid(); }

static void arguments(void) {
    static unsigned a, b;
    unsigned *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 4096);
    a = 7;
    b = 0;
    long r;
    r = cmp_rq(&a, 1, 1, &a, 7, P);
    CHECK(r == -1 && errno == EINVAL, "CMP_REQUEUE_PI with uaddr == uaddr2: %s", en(r));
    r = cmp_rq(&a, 1, 1, &a, 8, P);
    CHECK(r == -1 && errno == EINVAL, "... even when the word differs: %s", en(r));
    r = cmp_rq(&a, 0, 1, &b, 7, P);
    CHECK(r == -1 && errno == EINVAL, "CMP_REQUEUE_PI with nr_wake 0: %s", en(r));
    r = cmp_rq(&a, 2, 1, &b, 8, P);
    CHECK(r == -1 && errno == EINVAL, "nr_wake 2 (word differs too): %s", en(r));
    r = cmp_rq(&a, -1, 1, &b, 7, P);
    CHECK(r == -1 && errno == EINVAL, "nr_wake -1: %s", en(r));
    r = cmp_rq(&a, 1, -1, &b, 7, P);
    CHECK(r == -1 && errno == EINVAL, "nr_requeue -1: %s", en(r));
    r = cmp_rq(&a, 1, 1, &b, 8, P);
    CHECK(r == -1 && errno == EAGAIN, "the word is not the expected value: %s", en(r));
    r = cmp_rq(&a, 1, 1, (unsigned *)((char *)&b + 1), 7, P);
    CHECK(r == -1 && errno == EINVAL, "misaligned uaddr2: %s", en(r));
    r = cmp_rq((unsigned *)((char *)&a + 2), 1, 1, &b, 7, P);
    CHECK(r == -1 && errno == EINVAL, "misaligned uaddr: %s", en(r));
    r = cmp_rq(gone, 1, 1, &b, 7, P);
    CHECK(r == -1 && errno == EFAULT, "unmapped uaddr: %s", en(r));
    r = cmp_rq(&a, 1, 1, gone, 8, P);
    CHECK(r == -1 && errno == EAGAIN, "unmapped uaddr2, word differs: %s (the value is checked first)", en(r));
    r = cmp_rq(&a, 1, 1, gone, 7, P);
    CHECK(r == -1 && errno == EFAULT, "unmapped uaddr2, no waiter: %s", en(r));
    r = cmp_rq(&a, 1, INT_MAX, &b, 7, P);
    CHECK(r == 0 && b == 0, "no waiter: %s, uaddr2 untouched", en(r));
    r = cmp_rq(&a, 1, 1, &b, 7, P | FUTEX_CLOCK_REALTIME);
    CHECK(r == -1 && errno == ENOSYS, "CMP_REQUEUE_PI with FUTEX_CLOCK_REALTIME: %s", en(r));
    r = cmp_rq(&a, 1, 1, &b, 7, 0);
    CHECK(r == 0, "shared (no PRIVATE flag), no waiter: %s", en(r));

    struct timespec past = {0, 0};
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 7, 0, &a, 0);
    CHECK(r == -1 && errno == EINVAL, "WAIT_REQUEUE_PI with uaddr == uaddr2: %s", en(r));
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 8, 0, &b, 0);
    CHECK(r == -1 && errno == EAGAIN, "WAIT_REQUEUE_PI, the word differs: %s", en(r));
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 8, 0, &b, 0x5a5a);
    CHECK(r == -1 && errno == EAGAIN, "val3 (a bitset elsewhere) is ignored: %s", en(r));
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 7, (unsigned long)&past, &b, 0);
    CHECK(r == -1 && errno == ETIMEDOUT, "a deadline already past: %s", en(r));
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 8, (unsigned long)&past, &b, 0);
    CHECK(r == -1 && errno == EAGAIN, "a deadline already past, word differs: %s", en(r));
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 7, (unsigned long)&past, (unsigned *)((char *)&b + 1), 0);
    CHECK(r == -1 && errno == EINVAL, "WAIT_REQUEUE_PI, misaligned uaddr2: %s", en(r));
    r = fx((unsigned *)((char *)&a + 1), FUTEX_WAIT_REQUEUE_PI | P, 7, 0, &b, 0);
    CHECK(r == -1 && errno == EINVAL, "WAIT_REQUEUE_PI, misaligned uaddr: %s", en(r));
    r = fx(gone, FUTEX_WAIT_REQUEUE_PI | P, 7, 0, &b, 0);
    CHECK(r == -1 && errno == EFAULT, "WAIT_REQUEUE_PI, unmapped uaddr: %s", en(r));
    struct timespec bad = {0, 1000000000};
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 8, (unsigned long)&bad, &b, 0);
    CHECK(r == -1 && errno == EINVAL, "WAIT_REQUEUE_PI, tv_nsec 1e9 (before the value check): %s", en(r));
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 8, (unsigned long)gone, &b, 0);
    CHECK(r == -1 && errno == EFAULT, "WAIT_REQUEUE_PI, unreadable timeout: %s", en(r));
    struct timespec t = abs_in(CLOCK_MONOTONIC, 60);
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P, 7, (unsigned long)&t, &b, 0);
    CHECK(r == -1 && errno == ETIMEDOUT, "absolute CLOCK_MONOTONIC deadline: %s", en(r));
    t = abs_in(CLOCK_REALTIME, 60);
    r = fx(&a, FUTEX_WAIT_REQUEUE_PI | P | FUTEX_CLOCK_REALTIME, 7, (unsigned long)&t, &b, 0);
    CHECK(r == -1 && errno == ETIMEDOUT, "absolute CLOCK_REALTIME deadline: %s", en(r));
}

/* A thread in plain FUTEX_WAIT. */
struct plain {
    unsigned *u;
    long r;
};

static void *plain_main(void *arg) {
    struct plain *pl = arg;
    pl->r = fx(pl->u, FUTEX_WAIT | P, *pl->u, 0, NULL, 0);
    return NULL;
}

/* Linux answers EINVAL where a plain op meets a PI waiter or the reverse. */
static void mixing(void) {
    static unsigned a, b, c;
    struct waiter w;
    long r;
    /* Not a possible tid: in the guest the test runs as tid 1. */
    const unsigned A = 0x3ffffff1;
    a = A;
    b = 0;
    c = 0;
    start(&w, &a, &b, NULL);
    CHECK(sleeping_on(&a), "FUTEX_WAKE meeting a WAIT_REQUEUE_PI waiter: EINVAL");
    r = fx(&a, FUTEX_WAKE_BITSET | P, 1, 0, NULL, 1);
    CHECK(r == -1 && errno == EINVAL, "FUTEX_WAKE_BITSET meeting it: %s", en(r));
    r = fx(&a, FUTEX_CMP_REQUEUE | P, 1, 1, &c, A);
    CHECK(r == -1 && errno == EINVAL, "plain FUTEX_CMP_REQUEUE meeting it: %s", en(r));
    r = fx(&a, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == -1 && errno == EINVAL, "FUTEX_LOCK_PI on its word: %s", en(r));
    r = fx(&c, FUTEX_WAKE_OP | P, 1, 0, &a, FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_NE, 0));
    CHECK(r == -1 && errno == EINVAL, "FUTEX_WAKE_OP whose second word it is: %s", en(r));
    r = cmp_rq(&a, 1, 1, &c, A, P);
    CHECK(r == -1 && errno == EINVAL, "CMP_REQUEUE_PI to another uaddr2 than it waits for: %s", en(r));
    CHECK(a == A && c == 0 && !w.done, "nothing changed, it still waits");
    r = cmp_rq(&a, 1, 0, &b, A, P);
    CHECK(r == 1, "CMP_REQUEUE_PI to its uaddr2: %s", en(r));
    finish(&w);
    CHECK(w.ret == 0 && w.unlock_ret == 0 && b == 0, "it got the lock and unlocked it");

    /* A plain waiter on the PI word: the target is not a PI futex. */
    b = 0x3ffffff5;
    start(&w, &a, &b, NULL);
    CHECK(sleeping_on(&a), "a requeue-PI waiter on a");
    struct plain pl = {&b, 0};
    pthread_t pt;
    pthread_create(&pt, NULL, plain_main, &pl);
    UNTIL_NONZERO(r, fx(&b, FUTEX_REQUEUE | P, 0, 1, &b, 0));
    CHECK(r == 1, "FUTEX_REQUEUE of b onto itself counts its waiter: %s", en(r));
    r = cmp_rq(&a, 1, 1, &b, A, P);
    CHECK(r == -1 && errno == EINVAL, "CMP_REQUEUE_PI to a word with a plain waiter: %s", en(r));
    r = fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == -1 && errno == EINVAL, "FUTEX_LOCK_PI on a word with a plain waiter: %s", en(r));
    r = fx(&b, FUTEX_TRYLOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == -1 && errno == EINVAL, "FUTEX_TRYLOCK_PI on it: %s", en(r));
    r = fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == -1 && errno == EPERM, "FUTEX_UNLOCK_PI on it (not the owner): %s", en(r));
    r = fx(&b, FUTEX_WAKE | P, 1, 0, NULL, 0);
    pthread_join(pt, NULL);
    CHECK(r == 1 && pl.r == 0, "the plain waiter woken by FUTEX_WAKE");
    b = 0;
    r = cmp_rq(&a, 1, 1, &b, A, P);
    CHECK(r == 1, "then the requeue-PI waiter is woken owning b: %s", en(r));
    finish(&w);
    CHECK(w.ret == 0 && w.seen == ((unsigned)w.tid | FUTEX_WAITERS) && w.unlock_ret == 0 && b == 0,
          "it owned b with FUTEX_WAITERS (nr_requeue 1) and unlocked it");

    /* Linux's futex_wake counts after waking: a count of 0 or -1 wakes one. */
    for (int n = 0; n >= -1; n--) {
        c = 3;
        struct plain q = {&c, 1};
        pthread_create(&pt, NULL, plain_main, &q);
        UNTIL_NONZERO(r, fx(&c, FUTEX_REQUEUE | P, 0, 1, &c, 0));
        r = fx(&c, FUTEX_WAKE | P, n, 0, NULL, 0);
        pthread_join(pt, NULL);
        CHECK(r == 1 && q.r == 0, "FUTEX_WAKE with a count of %d wakes one: %s", n, en(r));
    }
}

/* The lock is free: the top waiter takes it at once. */
static void free_lock(void) {
    static unsigned a, b;
    struct waiter w1, w2, w3;
    long r;
    a = 3;
    b = 0;
    start(&w1, &a, &b, NULL);
    CHECK(sleeping_on(&a), "one waiter sleeps");
    r = cmp_rq(&a, 1, 0, &b, 3, P);
    CHECK(r == 1, "free lock, nr_requeue 0: %s", en(r));
    finish(&w1);
    CHECK(w1.ret == 0 && w1.seen == (unsigned)w1.tid, "the woken waiter owns b, no FUTEX_WAITERS");
    CHECK(w1.unlock_ret == 0 && b == 0, "its UNLOCK_PI frees b");

    b = FUTEX_OWNER_DIED;
    start(&w1, &a, &b, NULL);
    CHECK(sleeping_on(&a), "one waiter sleeps");
    r = cmp_rq(&a, 1, INT_MAX, &b, 3, P);
    CHECK(r == 1, "free lock (owner-died bit), nr_requeue INT_MAX: %s", en(r));
    finish(&w1);
    CHECK(w1.ret == 0 && w1.seen == ((unsigned)w1.tid | FUTEX_WAITERS | FUTEX_OWNER_DIED),
          "it owns b with FUTEX_WAITERS, FUTEX_OWNER_DIED kept");
    CHECK(w1.unlock_ret == 0 && b == 0, "its UNLOCK_PI frees b");

    b = 0;
    start(&w1, &a, &b, NULL);
    CHECK(sleeping_on(&a), "first waiter sleeps");
    start(&w2, &a, &b, NULL);
    start(&w3, &a, &b, NULL);
    r = cmp_rq(&a, 1, 1, &b, 3, P);
    /* Which of the three was first is the order they reached the kernel:
     * name them by who returned. */
    CHECK(r == 2, "three waiters, free lock, nr_requeue 1: %s (one woken, one requeued)", en(r));
    struct waiter *ws[3] = {&w1, &w2, &w3};
    struct waiter *owner = NULL;
    for (int i = 0; i < 200 && !owner; i++) {
        for (int j = 0; j < 3; j++)
            if (ws[j]->done) owner = ws[j];
        if (!owner) sleep_ms(1);
    }
    CHECK(owner && owner->ret == 0 && owner->seen == ((unsigned)owner->tid | FUTEX_WAITERS),
          "the woken one owns b with FUTEX_WAITERS");
    int still = 0;
    for (int j = 0; j < 3; j++) still += !ws[j]->done;
    CHECK(still == 2, "the other two still sleep");
    r = fx(&a, FUTEX_WAKE | P, 1, 0, NULL, 0);
    CHECK(r == -1 && errno == EINVAL, "one of them still on a: FUTEX_WAKE %s", en(r));
    /* The owner unlocks: the requeued one gets b from UNLOCK_PI. */
    if (owner) owner->go = 1;
    struct waiter *next = NULL;
    for (int i = 0; i < 5000 && !next; i++) {
        for (int j = 0; j < 3; j++)
            if (ws[j] != owner && ws[j]->done) next = ws[j];
        if (!next) sleep_ms(1);
    }
    CHECK(next && next->ret == 0 && next->seen == ((unsigned)next->tid | FUTEX_WAITERS),
          "UNLOCK_PI handed b to the requeued waiter, FUTEX_WAITERS set (Linux keeps it while PI state exists)");
    CHECK(owner && owner->unlock_ret == 0, "the first owner's UNLOCK_PI: 0");
    r = cmp_rq(&a, 1, 1, &b, 3, P);
    CHECK(r == 1, "the last waiter requeued to the lock the second holds: %s", en(r));
    if (next) finish(next);
    for (int j = 0; j < 3; j++)
        if (ws[j] != owner && ws[j] != next) finish(ws[j]);
    if (owner) pthread_join(owner->th, NULL);
    int all = 1;
    for (int j = 0; j < 3; j++) all &= ws[j]->ret == 0 && ws[j]->unlock_ret == 0;
    CHECK(all && b == 0, "all three owned b in turn and b is free");
}

/* The lock is held: waiters are requeued to it, one more than nr_requeue. */
static void held_lock(void) {
    static unsigned a, b;
    struct waiter w1, w2, w3;
    long r;
    a = 9;
    b = 0;
    CHECK(fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0) == 0 && b == me(), "main takes b");
    start(&w1, &a, &b, NULL);
    CHECK(sleeping_on(&a), "first waiter sleeps");
    start(&w2, &a, &b, NULL);
    start(&w3, &a, &b, NULL);
    r = cmp_rq(&a, 1, 0, &b, 9, P);
    CHECK(r == 1, "held lock, nr_requeue 0: %s (one requeued anyway)", en(r));
    CHECK(b == (me() | FUTEX_WAITERS), "b: main's tid with FUTEX_WAITERS");
    r = cmp_rq(&a, 1, 1, &b, 9, P);
    CHECK(r == 2, "held lock, nr_requeue 1: %s (the other two)", en(r));
    r = cmp_rq(&a, 1, 1, &b, 9, P);
    CHECK(r == 0 && !w1.done && !w2.done && !w3.done, "nobody left on a: %s, all three sleep on b", en(r));
    r = fx(&b, FUTEX_WAKE | P, 1, 0, NULL, 0);
    CHECK(r == -1 && errno == EINVAL, "FUTEX_WAKE on b meeting the requeued waiters: %s", en(r));
    r = fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == 0, "main's UNLOCK_PI: %s", en(r));
    struct waiter *ws[3] = {&w1, &w2, &w3};
    int order_ok = 1;
    for (int k = 0; k < 3; k++) {
        /* Requeued in arrival order: w1 first (it slept before the others
         * started), then w2 and w3 in some order. */
        struct waiter *got = NULL;
        for (int i = 0; i < 5000 && !got; i++) {
            for (int j = 0; j < 3; j++)
                if (ws[j]->done && !ws[j]->go) got = ws[j];
            if (!got) sleep_ms(1);
        }
        if (!got || got->ret != 0 || got->seen != ((unsigned)got->tid | FUTEX_WAITERS)) order_ok = 0;
        if (k == 0 && got != &w1) order_ok = 0;
        if (got) got->go = 1;
    }
    for (int j = 0; j < 3; j++) pthread_join(ws[j]->th, NULL);
    CHECK(order_ok, "each requeued waiter got b from UNLOCK_PI in turn, first come first, FUTEX_WAITERS set");
    CHECK(w1.unlock_ret == 0 && w2.unlock_ret == 0 && w3.unlock_ret == 0 && b == 0, "and b is free at the end");

    /* The waiter already owns the target: EDEADLK. */
    b = 0;
    struct timespec t;
    struct waiter d;
    memset(&d, 0, sizeof d);
    d.u1 = &a;
    d.u2 = &b;
    d.val = a;
    d.flags = P;
    t = abs_in(CLOCK_MONOTONIC, 400);
    d.abs = &t;
    void *owning_waiter(void *);
    pthread_create(&d.th, NULL, owning_waiter, &d);
    CHECK(sleeping_on(&a), "a waiter that owns b sleeps on a");
    r = cmp_rq(&a, 1, 1, &b, 9, P);
    CHECK(r == -1 && errno == EDEADLK, "CMP_REQUEUE_PI of a waiter to the lock it owns: %s", en(r));
    pthread_join(d.th, NULL);
    CHECK(d.ret == -1 && d.err == ETIMEDOUT, "it times out: %s", strerrorname_np(d.err));
}

void *owning_waiter(void *arg) {
    struct waiter *d = arg;
    d->tid = gettid();
    fx(d->u2, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    d->ret = fx(d->u1, FUTEX_WAIT_REQUEUE_PI | P, d->val, (unsigned long)d->abs, d->u2, 0);
    d->err = errno;
    fx(d->u2, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    return NULL;
}

static volatile int handled;
static void on_usr1(int s) {
    (void)s;
    handled++;
}

static void timeouts_and_signals(void) {
    static unsigned a, b;
    struct waiter w;
    long r;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART */

    /* A timeout after the requeue. */
    a = 4;
    b = 0;
    fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    struct timespec t = abs_in(CLOCK_MONOTONIC, 500);
    start(&w, &a, &b, &t);
    CHECK(sleeping_on(&a), "a waiter with a 500 ms deadline sleeps");
    r = cmp_rq(&a, 1, 1, &b, 4, P);
    CHECK(r == 1, "requeued to main's lock: %s", en(r));
    finish(&w);
    CHECK(w.ret == -1 && w.err == ETIMEDOUT, "it times out on b: %s", strerrorname_np(w.err));
    CHECK(b == (me() | FUTEX_WAITERS), "b keeps FUTEX_WAITERS after it left");
    r = fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == 0 && b == 0, "main's UNLOCK_PI with nobody left: b is 0");

    /* A realtime deadline, requeued then handed the lock in time. */
    fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    t = abs_in(CLOCK_REALTIME, 5000);
    start_flags(&w, &a, &b, &t, P | FUTEX_CLOCK_REALTIME);
    CHECK(sleeping_on(&a), "a waiter with a CLOCK_REALTIME deadline sleeps");
    r = cmp_rq(&a, 1, 1, &b, 4, P);
    CHECK(r == 1, "requeued: %s", en(r));
    r = fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    finish(&w);
    CHECK(r == 0 && w.ret == 0 && w.seen == ((unsigned)w.tid | FUTEX_WAITERS) && w.unlock_ret == 0 && b == 0,
          "UNLOCK_PI hands it the lock before its deadline");

    /* A signal before the requeue: the handler runs and the wait goes on
     * (Linux restarts it even without SA_RESTART). */
    handled = 0;
    start(&w, &a, &b, NULL);
    CHECK(sleeping_on(&a), "a waiter sleeps on a");
    pthread_kill(w.th, SIGUSR1);
    for (int i = 0; i < 5000 && !handled; i++) sleep_ms(1);
    sleep_ms(10);
    CHECK(handled == 1 && !w.done, "a signal before the requeue: the handler ran, it still waits");
    CHECK(sleeping_on(&a), "it sleeps on a again");
    r = cmp_rq(&a, 1, 1, &b, 4, P);
    finish(&w);
    CHECK(r == 1 && w.ret == 0 && w.unlock_ret == 0 && b == 0, "then it is woken owning b: 0");

    /* A signal after the requeue: EAGAIN, even with SA_RESTART. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;
    fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    start(&w, &a, &b, NULL);
    CHECK(sleeping_on(&a), "a waiter sleeps on a");
    r = cmp_rq(&a, 1, 1, &b, 4, P);
    CHECK(r == 1, "requeued to main's lock: %s", en(r));
    pthread_kill(w.th, SIGUSR1);
    finish(&w);
    CHECK(handled == 1 && w.ret == -1 && w.err == EAGAIN, "a signal after the requeue (SA_RESTART): %s",
          strerrorname_np(w.err));
    r = fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    CHECK(r == 0 && b == 0, "main unlocks, nobody waits: b is 0");

    /* FUTEX_LOCK_PI cut by a handled signal is restarted, SA_RESTART or not. */
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;
    fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    struct waiter l;
    memset(&l, 0, sizeof l);
    l.u2 = &b;
    void *locker(void *);
    pthread_create(&l.th, NULL, locker, &l);
    for (int i = 0; i < 5000 && !(b & FUTEX_WAITERS); i++) sleep_ms(1);
    r = fx(&b, FUTEX_WAKE | P, 1, 0, NULL, 0);
    CHECK(r == -1 && errno == EINVAL, "FUTEX_WAKE meeting a LOCK_PI waiter: %s", en(r));
    pthread_kill(l.th, SIGUSR1);
    for (int i = 0; i < 5000 && !handled; i++) sleep_ms(1);
    sleep_ms(10);
    CHECK(handled == 1 && !l.done, "LOCK_PI cut by a signal without SA_RESTART: still waiting");
    r = fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    pthread_join(l.th, NULL);
    CHECK(r == 0 && l.ret == 0 && l.seen == ((unsigned)l.tid | FUTEX_WAITERS),
          "UNLOCK_PI hands it the lock: the word is its tid with FUTEX_WAITERS");
    CHECK(l.unlock_ret == 0 && b == 0, "it unlocks: b is 0");

    /* TRYLOCK_PI on an owned word. */
    fx(&b, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    memset(&l, 0, sizeof l);
    l.u2 = &b;
    void *trylocker(void *);
    pthread_create(&l.th, NULL, trylocker, &l);
    pthread_join(l.th, NULL);
    CHECK(l.ret == -1 && l.err == EAGAIN, "TRYLOCK_PI of a word another owns: %s", strerrorname_np(l.err));
    SAY("the word after it: owner's tid%s\n", b == me() ? "" : b == (me() | FUTEX_WAITERS) ? " with FUTEX_WAITERS" : " and something else");
    fx(&b, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    CHECK(b == 0, "unlocked");
    signal(SIGUSR1, SIG_DFL);
}

void *locker(void *arg) {
    struct waiter *l = arg;
    l->tid = gettid();
    l->ret = fx(l->u2, FUTEX_LOCK_PI | P, 0, 0, NULL, 0);
    l->seen = *l->u2;
    l->done = 1;
    l->unlock_ret = fx(l->u2, FUTEX_UNLOCK_PI | P, 0, 0, NULL, 0);
    return NULL;
}

void *trylocker(void *arg) {
    struct waiter *l = arg;
    l->ret = fx(l->u2, FUTEX_TRYLOCK_PI | P, 0, 0, NULL, 0);
    l->err = errno;
    return NULL;
}

/* Between processes: the words in shared memory, no PRIVATE flag. */
static void processes(void) {
    unsigned *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unsigned *a = m, *b = m + 1, *ok = m + 2, *ready = m + 3;
    *a = 2;
    *b = 0;
    long r = fx(b, FUTEX_LOCK_PI, 0, 0, NULL, 0);
    CHECK(r == 0 && *b == me(), "parent takes the shared PI word");
    pid_t c = fork();
    if (c == 0) {
        *ready = 1;
        long rr = fx(a, FUTEX_WAIT_REQUEUE_PI, 2, 0, b, 0);
        *ok = rr == 0 && *b == ((unsigned)gettid() | FUTEX_WAITERS);
        _exit(fx(b, FUTEX_UNLOCK_PI, 0, 0, NULL, 0) == 0 ? 0 : 1);
    }
    while (!*ready) sleep_ms(1);
    UNTIL_NONZERO(r, cmp_rq(a, 1, 1, b, 2, 0));
    CHECK(r == 1, "CMP_REQUEUE_PI of the child's wait to the parent's lock: %s", en(r));
    CHECK(*b == (me() | FUTEX_WAITERS), "the shared word: parent's tid with FUTEX_WAITERS");
    r = fx(b, FUTEX_UNLOCK_PI, 0, 0, NULL, 0);
    CHECK(r == 0, "parent's UNLOCK_PI: %s", en(r));
    CHECK(strcmp(t_wait(c), "exited 0") == 0 && *ok, "the child got the lock with FUTEX_WAITERS and unlocked it");
    CHECK(*b == 0, "the shared word is free");

    /* The child's lock is free: woken at once by the parent's requeue. */
    *ready = 0;
    *ok = 0;
    c = fork();
    if (c == 0) {
        *ready = 1;
        long rr = fx(a, FUTEX_WAIT_REQUEUE_PI, 2, 0, b, 0);
        *ok = rr == 0 && *b == (unsigned)gettid();
        _exit(fx(b, FUTEX_UNLOCK_PI, 0, 0, NULL, 0) == 0 ? 0 : 1);
    }
    while (!*ready) sleep_ms(1);
    UNTIL_NONZERO(r, cmp_rq(a, 1, 0, b, 2, 0));
    CHECK(r == 1 && strcmp(t_wait(c), "exited 0") == 0 && *ok && *b == 0,
          "a free shared lock: the child woken owning it (no FUTEX_WAITERS), then unlocks");
    munmap(m, 4096);
}

int main(void) {
    t_begin("t_requeue_pi");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    arguments();
    mixing();
    free_lock();
    held_lock();
    timeouts_and_signals();
    processes();
    return t_end();
}
