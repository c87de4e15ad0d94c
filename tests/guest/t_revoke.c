/* A mapping taken away cannot be used afterwards (issue 10): the kernel's
 * mapping change must be in force before any task of the address space
 * runs guest code again.
 *
 * - same task: write a page, munmap it (or mprotect it PROT_NONE, or map
 *   PROT_NONE over it with MAP_FIXED), touch it: SIGSEGV, at the same
 *   access as natively;
 * - another thread: a thread keeps reading and writing a page while the
 *   main thread revokes it (munmap, mprotect PROT_NONE, mprotect
 *   PROT_READ for writes, MAP_FIXED over it); once the revoking call has
 *   returned, the thread's next access faults. An access that succeeds
 *   after it (seen by a flag the thread reads before each access) is a
 *   failure. Many rounds each, so a flush that waits for the next stop of
 *   some other task would show.
 * - after munmap the frame goes back to the kernel and is handed out
 *   again (the main thread maps and fills fresh pages at once): the old
 *   thread never reads the new contents.
 */
#include "t_common.h"
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define ROUNDS 40
#define PAGE 4096

static __thread sigjmp_buf t_jb;
static __thread volatile int t_armed;
static __thread volatile int t_fault_sig;

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    if (!t_armed) {
        signal(sig, SIG_DFL);
        return;
    }
    t_fault_sig = sig;
    t_armed = 0;
    siglongjmp(t_jb, 1);
}

static void handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* Which access of a sequence faulted: 0 none, else 1 + its index. */
enum how { H_MUNMAP, H_NONE, H_FIXED, H_RDONLY };
static const char *hname[] = {"munmap", "mprotect PROT_NONE", "mmap MAP_FIXED PROT_NONE",
                              "mprotect PROT_READ"};

static void take_away(char *p, enum how h) {
    switch (h) {
    case H_MUNMAP:
        if (munmap(p, PAGE) != 0) abort();
        break;
    case H_NONE:
        if (mprotect(p, PAGE, PROT_NONE) != 0) abort();
        break;
    case H_FIXED:
        if (mmap(p, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p) abort();
        break;
    case H_RDONLY:
        if (mprotect(p, PAGE, PROT_READ) != 0) abort();
        break;
    }
}

/* --- the same task ------------------------------------------------------ */

static void same_task(enum how h) {
    char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile char *v = p;
    volatile int step = 0;
    t_fault_sig = 0;
    if (sigsetjmp(t_jb, 1) == 0) {
        t_armed = 1;
        v[0] = 1; /* step 1: the page works */
        step = 1;
        take_away(p, h);
        step = 2;
        (void)v[0]; /* a read: faults unless only writes were taken */
        step = 3;
        v[0] = 2; /* a write: faults */
        step = 4;
        t_armed = 0;
    }
    CHECK(t_fault_sig == SIGSEGV, "same task, %s: SIGSEGV at step %d", hname[h], step);
    munmap(p, PAGE);
}

/* --- another thread ----------------------------------------------------- */

struct shared {
    char *page;
    int write; /* the thread writes (else reads) */
    atomic_int revoked;
    atomic_long accesses;
    atomic_int late;    /* accesses that worked after the revoke returned */
    atomic_int faulted; /* the thread took its SIGSEGV */
    atomic_int stale;   /* a read saw the new owner's bytes */
};

static void *toucher(void *arg) {
    struct shared *s = arg;
    volatile char *v = s->page;
    t_fault_sig = 0;
    if (sigsetjmp(t_jb, 1) == 0) {
        t_armed = 1;
        for (;;) {
            int seen = atomic_load(&s->revoked);
            if (s->write) {
                v[0] = 7;
            } else if (v[0] == 0x5a) {
                atomic_store(&s->stale, 1);
            }
            if (seen) atomic_fetch_add(&s->late, 1);
            atomic_fetch_add(&s->accesses, 1);
            if (seen && atomic_load(&s->late) > 1000) break; /* never faults: stop */
        }
        t_armed = 0;
    }
    if (t_fault_sig == SIGSEGV) atomic_store(&s->faulted, 1);
    return NULL;
}

/* One round: returns 0 when the thread faulted and made no late access. */
static int one_round(enum how h, int write, int *late_out, int *stale_out) {
    struct shared s;
    memset(&s, 0, sizeof s);
    s.write = write;
    s.page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s.page == MAP_FAILED) return -1;
    s.page[0] = 1;
    pthread_t t;
    if (pthread_create(&t, NULL, toucher, &s) != 0) return -1;
    /* Let it run on the page for a while (on one CPU it must be scheduled). */
    /* Fresh pages, reserved now (so none takes the revoked page's
     * address) and filled right after the revoke: they may get its frame. */
    char *fresh[8];
    for (int i = 0; i < 8; i++)
        fresh[i] = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    while (atomic_load(&s.accesses) < 2000) sched_yield();
    take_away(s.page, h);
    atomic_store(&s.revoked, 1);
    for (int i = 0; i < 8; i++)
        if (fresh[i] != MAP_FAILED && mprotect(fresh[i], PAGE, PROT_READ | PROT_WRITE) == 0)
            memset(fresh[i], 0x5a, PAGE);
    pthread_join(t, NULL);
    for (int i = 0; i < 8; i++)
        if (fresh[i] != MAP_FAILED) munmap(fresh[i], PAGE);
    if (h != H_MUNMAP) munmap(s.page, PAGE);
    *late_out += atomic_load(&s.late);
    *stale_out += atomic_load(&s.stale);
    return atomic_load(&s.faulted) && atomic_load(&s.late) == 0 && !atomic_load(&s.stale) ? 0 : 1;
}

static void threads(enum how h, int write) {
    int bad = 0, late = 0, stale = 0;
    for (int r = 0; r < ROUNDS; r++)
        if (one_round(h, write, &late, &stale) != 0) bad++;
    CHECK(bad == 0, "another thread %s, %s: faults at once in %d rounds (late accesses %d, stale reads %d)",
          write ? "writing" : "reading", hname[h], ROUNDS, late, stale);
}

/* --- a child that uses a page after munmap dies of SIGSEGV ------------ */

static void child_dies(void) {
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
        munmap(p, PAGE);
        ((volatile char *)p)[0] = 2;
        _exit(0);
    }
    const char *how = t_wait(pid);
    CHECK(strcmp(how, "killed by SEGV") == 0, "a child writing a page it unmapped: %s", how);
}

int main(void) {
    t_begin("t_revoke");
    handlers();
    for (enum how h = H_MUNMAP; h <= H_RDONLY; h++) same_task(h);
    for (enum how h = H_MUNMAP; h <= H_FIXED; h++) {
        threads(h, 0);
        threads(h, 1);
    }
    threads(H_RDONLY, 1);
    child_dies();
    return t_end();
}
