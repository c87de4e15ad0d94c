/* Futexes keyed by what backs the word: FUTEX_WAIT/WAKE across fork on
 * MAP_SHARED anonymous memory and on a shared file mapping (each process
 * with its own mapping of the file), a private futex not reachable from
 * another process, process-shared pthread mutex, condition variable and
 * semaphores across fork; the BITSET forms, REQUEUE/CMP_REQUEUE, WAKE_OP,
 * timeouts and argument errors. */
#include "t_common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

static long fx(volatile uint32_t *uaddr, int op, uint32_t val, const void *timeout_or_val2,
               volatile uint32_t *uaddr2, uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, timeout_or_val2, uaddr2, val3);
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Wakes `word`'s waiter (retrying until one was there), then sets it. */
static int wake_one_eventually(volatile uint32_t *word, int op) {
    for (int i = 0; i < 500; i++) {
        long n = fx(word, op, 1, NULL, NULL, 0);
        if (n == 1) return 1;
        if (n < 0) return -1;
        msleep(10);
    }
    return 0;
}

/* A child that waits on *word while it is 0; exits 0 once woken with
 * the word changed, 1 on an unexpected error. */
static pid_t waiter(volatile uint32_t *word, int op) {
    pid_t p = fork();
    if (p == 0) {
        while (*word == 0) {
            long r = fx(word, op, 0, NULL, NULL, 0);
            if (r != 0 && errno != EAGAIN && errno != EINTR) _exit(1);
        }
        _exit(0);
    }
    return p;
}

static void across_fork(const char *what, volatile uint32_t *parent_word,
                        volatile uint32_t *child_word) {
    *parent_word = 0;
    pid_t p = waiter(child_word, FUTEX_WAIT);
    int woke = wake_one_eventually(parent_word, FUTEX_WAKE);
    *parent_word = 1;
    fx(parent_word, FUTEX_WAKE, 1, NULL, NULL, 0);
    CHECK(woke == 1, "%s: FUTEX_WAKE reaches a waiter in another process", what);
    SAY("%s: waiter %s\n", what, t_wait(p));
}

static void shared_anon(void) {
    volatile uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(w != MAP_FAILED, "MAP_SHARED anonymous page");
    across_fork("MAP_SHARED anonymous", w + 5, w + 5);

    /* A private futex is keyed by the address space: a wake from another
     * process does not reach it, private or not. */
    w[9] = 0;
    pid_t p = waiter(w + 9, FUTEX_WAIT_PRIVATE);
    msleep(200);
    CHECK(fx(w + 9, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0,
          "FUTEX_WAKE_PRIVATE from another process wakes no private waiter");
    CHECK(fx(w + 9, FUTEX_WAKE, 1, NULL, NULL, 0) == 0,
          "FUTEX_WAKE from another process wakes no private waiter");
    kill(p, SIGKILL);
    SAY("private waiter: %s\n", t_wait(p));
    munmap((void *)w, 4096);
}

static void shared_file(void) {
    int fd = open("futexfile", O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 8192) == 0, "an 8 KiB file");
    /* The parent maps both pages; the child maps only the second, so the
     * word sits at different addresses: the key is the file offset. */
    volatile uint32_t *both = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(both != MAP_FAILED, "MAP_SHARED file mapping");
    both[1024 + 3] = 0;
    pid_t p = fork();
    if (p == 0) {
        volatile uint32_t *second = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
        if (second == MAP_FAILED) _exit(2);
        while (second[3] == 0) {
            long r = fx(second + 3, FUTEX_WAIT, 0, NULL, NULL, 0);
            if (r != 0 && errno != EAGAIN && errno != EINTR) _exit(1);
        }
        _exit(0);
    }
    int woke = wake_one_eventually(both + 1024 + 3, FUTEX_WAKE);
    both[1024 + 3] = 1;
    fx(both + 1024 + 3, FUTEX_WAKE, 1, NULL, NULL, 0);
    CHECK(woke == 1, "shared file mapping: FUTEX_WAKE reaches the other process's mapping");
    SAY("shared file mapping: waiter %s\n", t_wait(p));
    munmap((void *)both, 8192);
    close(fd);
}

struct shared {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int flag;
    sem_t ping, pong;
    int rounds;
};

static void pthread_pshared(void) {
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    CHECK(pthread_mutex_init(&s->mutex, &ma) == 0 && pthread_cond_init(&s->cond, &ca) == 0,
          "process-shared mutex and condition variable");
    CHECK(sem_init(&s->ping, 1, 0) == 0 && sem_init(&s->pong, 1, 0) == 0,
          "process-shared semaphores (sem_init pshared=1)");

    /* The child blocks on the mutex the parent holds, then signals the
     * condition the parent waits on. */
    pthread_mutex_lock(&s->mutex);
    pid_t p = fork();
    if (p == 0) {
        pthread_mutex_lock(&s->mutex);
        s->flag = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mutex);
        /* Semaphore ping-pong. */
        for (int i = 0; i < 200; i++) {
            sem_wait(&s->ping);
            s->rounds++;
            sem_post(&s->pong);
        }
        _exit(0);
    }
    msleep(100);
    while (!s->flag) pthread_cond_wait(&s->cond, &s->mutex);
    pthread_mutex_unlock(&s->mutex);
    CHECK(s->flag == 1, "the child took the mutex and signalled the condition");
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        sem_post(&s->ping);
        sem_wait(&s->pong);
        if (s->rounds != i + 1) ok = 0;
    }
    CHECK(ok && s->rounds == 200, "200 semaphore round trips between processes");
    SAY("pthread child: %s\n", t_wait(p));
    munmap(s, sizeof *s);
}

/* Threads of one process, for the multi-waiter operations. */
static volatile uint32_t f1, f2;
static volatile int started;
static long results[3];

struct wa { volatile uint32_t *word; uint32_t bitset; int slot; };

static void *wait_thread(void *arg) {
    struct wa *a = arg;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    long r = fx(a->word, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, a->bitset);
    results[a->slot] = r == 0 ? 0 : -errno;
    return NULL;
}

static void start_waiters(pthread_t *t, struct wa *a, int n) {
    started = 0;
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, wait_thread, &a[i]);
    while (started < n) msleep(5);
    msleep(150); /* from "about to wait" to waiting */
}

static void bitsets_requeue_wake_op(void) {
    pthread_t t[3];
    struct wa a[3] = {{&f1, 0x1, 0}, {&f1, 0x2, 1}, {&f1, 0x3, 2}};
    f1 = 0;
    start_waiters(t, a, 3);
    CHECK(fx(&f1, FUTEX_WAKE_BITSET_PRIVATE, 9, NULL, NULL, 0x4) == 0,
          "WAKE_BITSET with a bitset no waiter has wakes none");
    CHECK(fx(&f1, FUTEX_WAKE_BITSET_PRIVATE, 9, NULL, NULL, 0x2) == 2,
          "WAKE_BITSET 0x2 wakes the two waiters whose bitset has it");
    CHECK(fx(&f1, FUTEX_WAKE_PRIVATE, 9, NULL, NULL, 0) == 1, "FUTEX_WAKE wakes the last one");
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    CHECK(results[0] == 0 && results[1] == 0 && results[2] == 0, "all three returned 0");

    struct wa b[3] = {{&f1, ~0u, 0}, {&f1, ~0u, 1}, {&f1, ~0u, 2}};
    f1 = 0, f2 = 0;
    start_waiters(t, b, 3);
    CHECK(fx(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2L, &f2, 7) == -1 && errno == EAGAIN,
          "CMP_REQUEUE with the wrong expected value is EAGAIN");
    CHECK(fx(&f1, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1L, &f2, 0) == 2,
          "CMP_REQUEUE wakes 1, moves 1: returns 2");
    CHECK(fx(&f1, FUTEX_REQUEUE_PRIVATE, 0, (void *)5L, &f2, 0) == 1,
          "REQUEUE moves the last waiter: returns 1");
    CHECK(fx(&f1, FUTEX_WAKE_PRIVATE, 9, NULL, NULL, 0) == 0, "no waiter left on the first word");
    CHECK(fx(&f2, FUTEX_WAKE_PRIVATE, 9, NULL, NULL, 0) == 2, "both requeued waiters wake on the second");
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);

    struct wa c[1] = {{&f2, ~0u, 0}};
    f1 = 0, f2 = 0;
    start_waiters(t, c, 1);
    /* *f2 = 5 (SET), wake one on f2 if the old value == 0. */
    int op = FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 0);
    CHECK(fx(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &f2, op) == 1,
          "WAKE_OP: the comparison holds, the waiter on the second word wakes");
    CHECK(f2 == 5, "WAKE_OP set the second word");
    pthread_join(t[0], NULL);
    op = FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_LT, 0);
    CHECK(fx(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &f2, op) == 0 && f2 == 6,
          "WAKE_OP: ADD, the comparison fails, nobody to wake");
    op = FUTEX_OP((FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT), 4, FUTEX_OP_CMP_GE, -1);
    CHECK(fx(&f1, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1L, &f2, op) == 0 && f2 == (6 | 16),
          "WAKE_OP: OR with a shifted argument");
}

static volatile uint32_t tw;
static void *change_word(void *arg) {
    (void)arg;
    msleep(30);
    tw = 1; /* no wake: the waiter must time out */
    return NULL;
}

static void timeouts_and_errors(void) {
    tw = 0;
    struct timespec rel = {0, 50 * 1000 * 1000};
    CHECK(fx(&tw, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0) == -1 && errno == ETIMEDOUT,
          "FUTEX_WAIT with a 50 ms timeout times out");
    CHECK(fx(&tw, FUTEX_WAIT_PRIVATE, 1, &rel, NULL, 0) == -1 && errno == EAGAIN,
          "FUTEX_WAIT on another value is EAGAIN");
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 50 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
    CHECK(fx(&tw, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, NULL, ~0u) == -1 && errno == ETIMEDOUT,
          "FUTEX_WAIT_BITSET with an absolute monotonic deadline times out");
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 50 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
    CHECK(fx(&tw, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 0, &abs, NULL, ~0u) == -1 &&
              errno == ETIMEDOUT,
          "FUTEX_WAIT_BITSET on CLOCK_REALTIME times out");
    pthread_t t;
    pthread_create(&t, NULL, change_word, NULL);
    struct timespec longer = {0, 200 * 1000 * 1000};
    CHECK(fx(&tw, FUTEX_WAIT_PRIVATE, 0, &longer, NULL, 0) == -1 && errno == ETIMEDOUT,
          "a waiter whose word changed without a wake still times out");
    pthread_join(t, NULL);
    CHECK(fx((volatile uint32_t *)((char *)&tw + 1), FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == -1 &&
              errno == EINVAL,
          "a misaligned futex word is EINVAL");
    CHECK(fx(&tw, FUTEX_WAIT_BITSET_PRIVATE, 1, NULL, NULL, 0) == -1 && errno == EINVAL,
          "FUTEX_WAIT_BITSET with an empty bitset is EINVAL");
    CHECK(fx(&tw, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0) == -1 && errno == EINVAL,
          "FUTEX_WAKE_BITSET with an empty bitset is EINVAL");
    struct timespec bad = {0, 1000000000};
    tw = 0;
    CHECK(fx(&tw, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0) == -1 && errno == EINVAL,
          "a timeout with tv_nsec out of range is EINVAL");
    CHECK(fx((volatile uint32_t *)8, FUTEX_WAKE, 1, NULL, NULL, 0) == -1 && errno == EFAULT,
          "a shared wake on an unmapped word is EFAULT");
    CHECK(fx(&tw, FUTEX_WAKE, 1, NULL, NULL, 0) == 0, "a shared wake on a private page: nobody waits");
}

/* A process-shared barrier of three processes, and a named POSIX
 * semaphore (sem_open) posted by another process. */
static void barrier_and_named_sem(void) {
    pthread_barrier_t *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    CHECK(pthread_barrier_init(b, &ba, 3) == 0, "a process-shared barrier for 3");
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int x = pthread_barrier_wait(b);
            _exit(x == PTHREAD_BARRIER_SERIAL_THREAD ? 2 : x == 0 ? 0 : 1);
        }
    }
    int x = pthread_barrier_wait(b);
    int serial = x == PTHREAD_BARRIER_SERIAL_THREAD, others = x == 0;
    for (int i = 0; i < 2; i++) {
        const char *st = t_wait(kids[i]);
        serial += strcmp(st, "exited 2") == 0;
        others += strcmp(st, "exited 0") == 0;
    }
    CHECK(serial == 1 && others == 2, "all three passed it, one as the serial thread");
    munmap(b, 4096);

    sem_unlink("/t_futex_sem");
    sem_t *s = sem_open("/t_futex_sem", O_CREAT | O_EXCL, 0600, 0);
    CHECK(s != SEM_FAILED, "sem_open O_CREAT|O_EXCL");
    if (s == SEM_FAILED) return;
    CHECK(sem_open("/t_futex_sem", O_CREAT | O_EXCL, 0600, 0) == SEM_FAILED && errno == EEXIST, "again: EEXIST");
    pid_t c = fork();
    if (c == 0) {
        sem_t *t = sem_open("/t_futex_sem", 0);
        struct timespec d = {0, 50000000};
        nanosleep(&d, NULL);
        _exit(t != SEM_FAILED && sem_post(t) == 0 ? 0 : 1);
    }
    CHECK(sem_wait(s) == 0, "sem_wait woken by another process's sem_post");
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "the poster");
    int v = -1;
    CHECK(sem_getvalue(s, &v) == 0 && v == 0, "value 0 again");
    CHECK(sem_close(s) == 0 && sem_unlink("/t_futex_sem") == 0, "sem_close and sem_unlink");
    CHECK(sem_open("/t_futex_sem", 0) == SEM_FAILED && errno == ENOENT, "gone: ENOENT");
}

int main(void) {
    t_begin("t_futex");
    shared_anon();
    shared_file();
    pthread_pshared();
    bitsets_requeue_wake_op();
    timeouts_and_errors();
    barrier_and_named_sem();
    return t_end();
}
