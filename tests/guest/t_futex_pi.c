/* PI futexes and robust futex lists, compared with Linux: PI mutexes
 * between threads and between processes, robust mutexes whose owner dies
 * (EOWNERDEAD for the next locker, waiting or not; PI and not), and the raw
 * operations' answers (EDEADLK, EPERM, EAGAIN, ETIMEDOUT, ESRCH,
 * set/get_robust_list). */
#include "t_common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

static long futex(void *uaddr, int op, int val, const struct timespec *ts) {
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static pthread_mutex_t *new_mutex(void *mem, int pi, int robust, int pshared) {
    pthread_mutex_t *m = mem;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (pi) pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pshared) pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return m;
}

static pthread_mutex_t *tm;
static volatile int phase;

static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(tm);
    phase = 1;
    sleep_ms(100);
    phase = 2;
    pthread_mutex_unlock(tm);
    return NULL;
}

static void *die_holding(void *arg) {
    (void)arg;
    pthread_mutex_lock(tm);
    phase = 1;
    return NULL; /* the thread ends holding a robust mutex */
}

static void threads(void) {
    static pthread_mutex_t m;
    tm = new_mutex(&m, 1, 0, 0);
    pthread_t t;
    phase = 0;
    pthread_create(&t, NULL, holder, NULL);
    while (phase == 0) sleep_ms(1);
    CHECK(pthread_mutex_trylock(tm) == EBUSY, "PI mutex held by a thread: trylock EBUSY");
    CHECK(pthread_mutex_lock(tm) == 0 && phase == 2, "PI mutex: lock waits until the holder unlocks");
    CHECK(pthread_mutex_unlock(tm) == 0, "unlock");
    pthread_join(t, NULL);
    /* A robust mutex whose owning thread ends. */
    static pthread_mutex_t r;
    tm = new_mutex(&r, 0, 1, 0);
    phase = 0;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    CHECK(pthread_mutex_lock(tm) == EOWNERDEAD, "robust mutex of an ended thread: EOWNERDEAD");
    CHECK(pthread_mutex_consistent(tm) == 0 && pthread_mutex_unlock(tm) == 0, "made consistent and unlocked");
    CHECK(pthread_mutex_lock(tm) == 0 && pthread_mutex_unlock(tm) == 0, "then it locks normally");
    static pthread_mutex_t rp;
    tm = new_mutex(&rp, 1, 1, 0);
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    CHECK(pthread_mutex_lock(tm) == EOWNERDEAD, "robust PI mutex of an ended thread: EOWNERDEAD");
    pthread_mutex_consistent(tm);
    pthread_mutex_unlock(tm);
}

/* A process-shared mutex in MAP_SHARED memory; the child holds it. */
static void processes(int pi, int robust, int child_dies, int parent_waits) {
    void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutex_t *m = new_mutex(mem, pi, robust, 1);
    volatile int *flag = (int *)((char *)mem + 2048);
    *flag = 0;
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(m);
        *flag = 1;
        sleep_ms(parent_waits ? 150 : 0);
        if (child_dies) _exit(0);
        *flag = 2;
        pthread_mutex_unlock(m);
        _exit(0);
    }
    if (!parent_waits) waitpid(c, NULL, 0);
    else
        while (*flag == 0) sleep_ms(1);
    int r = pthread_mutex_lock(m);
    SAY("pi %d robust %d: child %s, parent %s: lock %s\n", pi, robust, child_dies ? "dies holding it" : "unlocks",
        parent_waits ? "waits" : "comes after", r == 0 ? "0" : strerrorname_np(r));
    if (r == EOWNERDEAD) pthread_mutex_consistent(m);
    CHECK(pthread_mutex_unlock(m) == 0, "unlock");
    if (parent_waits) waitpid(c, NULL, 0);
    munmap(mem, 4096);
}

static void raw(void) {
    unsigned int w = 0;
    CHECK(futex(&w, FUTEX_LOCK_PI, 0, NULL) == 0 && (w & FUTEX_TID_MASK) == (unsigned)gettid(), "LOCK_PI on a free word takes it");
    CHECK(futex(&w, FUTEX_LOCK_PI, 0, NULL) == -1 && errno == EDEADLK, "LOCK_PI on one's own: EDEADLK");
    CHECK(futex(&w, FUTEX_TRYLOCK_PI, 0, NULL) == -1 && errno == EDEADLK, "TRYLOCK_PI on one's own: EDEADLK");
    CHECK(futex(&w, FUTEX_UNLOCK_PI, 0, NULL) == 0 && w == 0, "UNLOCK_PI without waiters: 0");
    CHECK(futex(&w, FUTEX_UNLOCK_PI, 0, NULL) == -1 && errno == EPERM, "UNLOCK_PI of a word one does not own: EPERM");
    /* Owned by a live process (our parent-less child): others get EAGAIN / ETIMEDOUT. */
    unsigned int *sw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *sw = 0;
    pid_t c = fork();
    if (c == 0) {
        futex(sw, FUTEX_LOCK_PI, 0, NULL);
        sleep_ms(300);
        _exit(0);
    }
    while (*sw == 0) sleep_ms(1);
    CHECK(futex(sw, FUTEX_TRYLOCK_PI, 0, NULL) == -1 && errno == EAGAIN, "TRYLOCK_PI owned by another: EAGAIN");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 50000000;
    if (now.tv_nsec >= 1000000000) {
        now.tv_sec++;
        now.tv_nsec -= 1000000000;
    }
    CHECK(futex(sw, FUTEX_LOCK_PI, 0, &now) == -1 && errno == ETIMEDOUT, "LOCK_PI with an absolute timeout: ETIMEDOUT");
    CHECK(*sw & FUTEX_WAITERS, "a waiter set FUTEX_WAITERS");
    waitpid(c, NULL, 0);
    /* The owner died without a robust list: the word names a gone task. */
    CHECK(futex(sw, FUTEX_LOCK_PI, 0, NULL) == -1 && errno == ESRCH, "LOCK_PI owned by a task that is gone: ESRCH");
    munmap(sw, 4096);
    struct robust_list_head *head;
    size_t len;
    CHECK(syscall(SYS_get_robust_list, 0, &head, &len) == 0 && head != NULL && len == sizeof *head,
          "get_robust_list: glibc's list");
    CHECK(syscall(SYS_set_robust_list, head, 7) == -1 && errno == EINVAL, "set_robust_list with a bad size: EINVAL");
    CHECK(futex(&w, FUTEX_LOCK_PI | FUTEX_CLOCK_REALTIME, 0, NULL) == -1 && errno == ENOSYS,
          "LOCK_PI with FUTEX_CLOCK_REALTIME: ENOSYS");
    CHECK(futex(&w, FUTEX_LOCK_PI2, 0, NULL) == 0 && futex(&w, FUTEX_UNLOCK_PI, 0, NULL) == 0, "LOCK_PI2 and UNLOCK_PI");
    /* A hand-made robust list: the futex gets FUTEX_OWNER_DIED at exit. */
    unsigned int *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    c = fork();
    if (c == 0) {
        static struct robust_list_head h;
        static struct {
            struct robust_list list;
            unsigned int word;
        } lock;
        /* The shared word is reached through futex_offset from our entry. */
        h.list.next = &lock.list;
        lock.list.next = &h.list;
        h.futex_offset = (long)((char *)rw - (char *)&lock.list);
        h.list_op_pending = NULL;
        *rw = gettid();
        syscall(SYS_set_robust_list, &h, sizeof h);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    CHECK(*rw == FUTEX_OWNER_DIED, "a dead owner's robust futex: FUTEX_OWNER_DIED");
    munmap(rw, 4096);
}

int main(void) {
    t_begin("t_futex_pi");
    threads();
    for (int pi = 0; pi < 2; pi++) {
        processes(pi, 0, 0, 1);
        processes(pi, 1, 1, 0);
        processes(pi, 1, 1, 1);
    }
    raw();
    return t_end();
}
