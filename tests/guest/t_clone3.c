/* Guest test: clone3 as Linux checks and runs it: the struct's size
 * (too small, too big, non-zero tail), exit_signal, flags it refuses,
 * stack and stack_size together, set_tid (EEXIST for a pid in use,
 * EINVAL for 0, negative or beyond pid_max, pointer and size together),
 * CLONE_INTO_CGROUP (no such cgroup: EBADF, a field the size leaves out:
 * EINVAL), CLONE_PIDFD (a close-on-exec pidfd that polls readable when
 * the child exits; EFAULT for a bad pointer), CLONE_PARENT_SETTID,
 * CLONE_CLEAR_SIGHAND (caught signals back to default, ignored stay
 * ignored), a child on its own stack, the legacy clone's CLONE_PIDFD, and
 * glibc's own users (pthread_create, posix_spawn) which call clone3
 * first. */
#include "t_common.h"
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

extern char **environ;

static long c3(struct clone_args *a, size_t size) { return syscall(SYS_clone3, a, size); }

/* clone3 like fork; the child exits at once with 7. Returns the child's
 * wait status, or -errno. */
static int run(struct clone_args *a, size_t size) {
    long r = c3(a, size);
    if (r == 0) _exit(7);
    if (r < 0) return -errno;
    int st;
    if (waitpid(r, &st, __WALL) != r) return -1000;
    return st;
}

static struct clone_args plain(void) {
    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    return a;
}

static void check_args(void) {
    struct clone_args a = plain();
    int st = run(&a, sizeof a);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "a fork-like clone3: the child exits 7");
    CHECK(run(&a, 64) >= 0, "the first version's size (64) works");
    CHECK(run(&a, 63) == -EINVAL, "size 63: EINVAL");
    CHECK(run(&a, 0) == -EINVAL, "size 0: EINVAL");
    CHECK(run(&a, 8192) == -E2BIG, "size 8192: E2BIG");
    struct {
        struct clone_args a;
        uint64_t extra[4];
    } big;
    memset(&big, 0, sizeof big);
    big.a = plain();
    CHECK(run(&big.a, sizeof big) >= 0, "a bigger struct with a zero tail works");
    big.extra[2] = 1;
    CHECK(run(&big.a, sizeof big) == -E2BIG, "a non-zero tail: E2BIG");
    errno = 0;
    CHECK(c3((struct clone_args *)8, 64) == -1 && errno == EFAULT, "a bad pointer: EFAULT");

    a = plain();
    a.exit_signal = 65;
    CHECK(run(&a, sizeof a) == -EINVAL, "exit_signal 65: EINVAL");
    a.exit_signal = 0x100 | SIGCHLD;
    CHECK(run(&a, sizeof a) == -EINVAL, "exit_signal beyond CSIGNAL: EINVAL");
    a = plain();
    a.flags = 0x11;
    CHECK(run(&a, sizeof a) == -EINVAL, "a signal in the flags: EINVAL");
    a = plain();
    a.flags = CLONE_DETACHED;
    CHECK(run(&a, sizeof a) == -EINVAL, "CLONE_DETACHED: EINVAL");
    a = plain();
    a.flags = 1ULL << 40;
    CHECK(run(&a, sizeof a) == -EINVAL, "an unknown high flag: EINVAL");
    a = plain();
    a.flags = CLONE_VM | CLONE_SIGHAND | CLONE_CLEAR_SIGHAND;
    CHECK(run(&a, sizeof a) == -EINVAL, "CLONE_SIGHAND with CLONE_CLEAR_SIGHAND: EINVAL");
    a = plain();
    a.flags = CLONE_PARENT;
    CHECK(run(&a, sizeof a) == -EINVAL, "CLONE_PARENT with an exit signal: EINVAL");
    a = plain();
    a.flags = CLONE_THREAD | CLONE_SIGHAND | CLONE_VM;
    CHECK(run(&a, sizeof a) == -EINVAL, "CLONE_THREAD with an exit signal: EINVAL");
    a = plain();
    a.stack_size = 4096;
    CHECK(run(&a, sizeof a) == -EINVAL, "stack_size without a stack: EINVAL");
    a = plain();
    static char stk[4096];
    a.stack = (uintptr_t)stk;
    CHECK(run(&a, sizeof a) == -EINVAL, "a stack without a size: EINVAL");

    pid_t t = getpid();
    a = plain();
    a.set_tid = (uintptr_t)&t;
    a.set_tid_size = 1;
    CHECK(run(&a, sizeof a) == -EEXIST, "set_tid of a pid in use: EEXIST");
    t = 0;
    CHECK(run(&a, sizeof a) == -EINVAL, "set_tid 0: EINVAL");
    t = -3;
    CHECK(run(&a, sizeof a) == -EINVAL, "set_tid -3: EINVAL");
    t = 5000000;
    CHECK(run(&a, sizeof a) == -EINVAL, "set_tid beyond pid_max: EINVAL");
    a.set_tid_size = 0;
    CHECK(run(&a, sizeof a) == -EINVAL, "set_tid without a size: EINVAL");
    a.set_tid = 0;
    a.set_tid_size = 1;
    CHECK(run(&a, sizeof a) == -EINVAL, "a size without set_tid: EINVAL");
    a.set_tid_size = 40;
    CHECK(run(&a, sizeof a) == -EINVAL, "set_tid_size 40: EINVAL");

    a = plain();
    a.flags = CLONE_INTO_CGROUP;
    a.cgroup = 0;
    CHECK(run(&a, sizeof a) == -EBADF, "CLONE_INTO_CGROUP with a file that is no cgroup: EBADF");
    CHECK(run(&a, 64) == -EINVAL, "CLONE_INTO_CGROUP with no cgroup field: EINVAL");
    a.cgroup = -1;
    CHECK(run(&a, sizeof a) == -EINVAL, "cgroup beyond INT_MAX: EINVAL");
    a = plain();
    a.cgroup = 5;
    CHECK(run(&a, sizeof a) >= 0, "a cgroup without the flag is ignored");
}

static void check_pidfd_and_tids(void) {
    struct clone_args a = plain();
    int pidfd = -1;
    pid_t ptid = 0;
    a.flags = CLONE_PIDFD | CLONE_PARENT_SETTID;
    a.pidfd = (uintptr_t)&pidfd;
    a.parent_tid = (uintptr_t)&ptid;
    int p[2];
    pipe(p);
    long r = c3(&a, sizeof a);
    if (r == 0) {
        char c;
        read(p[0], &c, 1);
        _exit(3);
    }
    CHECK(r > 0, "clone3 with CLONE_PIDFD | CLONE_PARENT_SETTID");
    CHECK(ptid == r, "the parent's tid word holds the child's pid");
    CHECK(pidfd > 2, "a pidfd came back");
    CHECK(fcntl(pidfd, F_GETFD) == FD_CLOEXEC, "the pidfd is close-on-exec");
    struct pollfd pf = {pidfd, POLLIN, 0};
    CHECK(poll(&pf, 1, 0) == 0, "it does not poll readable while the child runs");
    write(p[1], "x", 1);
    CHECK(poll(&pf, 1, 10000) == 1 && (pf.revents & POLLIN), "it polls readable once the child exited");
    siginfo_t si;
    CHECK(waitid(P_PIDFD, pidfd, &si, WEXITED) == 0 && si.si_status == 3, "waitid(P_PIDFD) reaps it: 3");
    close(pidfd);
    close(p[0]);
    close(p[1]);

    a = plain();
    a.flags = CLONE_PIDFD;
    a.pidfd = 8;
    errno = 0;
    CHECK(run(&a, sizeof a) == -EFAULT, "a bad pidfd pointer: EFAULT");
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "and no child was made");

    /* The legacy clone's CLONE_PIDFD: the fd goes to parent_tid. */
    int fd2 = -1;
    r = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &fd2, 0, 0);
    if (r == 0) _exit(4);
    CHECK(r > 0 && fd2 > 2, "clone(CLONE_PIDFD) gives a pidfd in parent_tid");
    CHECK(waitid(P_PIDFD, fd2, &si, WEXITED) == 0 && si.si_status == 4, "which reaps the child: 4");
    close(fd2);
    errno = 0;
    CHECK(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &fd2, 0, 0) == -1 && errno == EINVAL,
          "clone(CLONE_PIDFD | CLONE_PARENT_SETTID): EINVAL");
}

static void on_usr1(int s) { (void)s; }

static void check_clear_sighand(void) {
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    struct clone_args a = plain();
    a.flags = CLONE_CLEAR_SIGHAND;
    long r = c3(&a, sizeof a);
    if (r == 0) {
        struct sigaction s1, s2;
        sigaction(SIGUSR1, NULL, &s1);
        sigaction(SIGUSR2, NULL, &s2);
        _exit((s1.sa_handler == SIG_DFL ? 1 : 0) | (s2.sa_handler == SIG_IGN ? 2 : 0));
    }
    int st;
    waitpid(r, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "CLONE_CLEAR_SIGHAND: handler reset, SIG_IGN kept");
    struct sigaction s1;
    sigaction(SIGUSR1, NULL, &s1);
    CHECK(s1.sa_handler == on_usr1, "the parent keeps its handler");
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

static volatile int on_own_stack;
static char *stk;
static size_t stk_size = 64 * 1024;

/* The child's first function, on the new stack: it cannot return. */
static void on_stack_child(void) {
    char here;
    on_own_stack = &here >= stk && &here < stk + stk_size;
    syscall(SYS_exit, 5);
}

/* clone3 whose child calls fn on its new stack (no C frame to return to). */
static long clone3_call(struct clone_args *a, size_t size, void (*fn)(void)) {
    long ret;
    register void (*f)(void) asm("r12") = fn;
    asm volatile("syscall\n\t"
                 "test %%rax, %%rax\n\t"
                 "jnz 1f\n\t"
                 "call *%%r12\n\t"
                 "1:\n\t"
                 : "=a"(ret)
                 : "0"((long)SYS_clone3), "D"(a), "S"(size), "r"(f)
                 : "rcx", "r11", "memory");
    return ret;
}

static void check_stack(void) {
    stk = mmap(NULL, stk_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct clone_args a = plain();
    a.flags = CLONE_VM | CLONE_VFORK;
    a.stack = (uintptr_t)stk;
    a.stack_size = stk_size;
    long r = clone3_call(&a, sizeof a, on_stack_child);
    int st = -1;
    CHECK(r > 0 && waitpid(r, &st, 0) == r, "clone3 CLONE_VM | CLONE_VFORK with a stack");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "the child exited 5 (%s)", t_status(st));
    CHECK(on_own_stack, "the child ran on the stack it was given (stack + stack_size down)");
    munmap(stk, stk_size);
}

static void *thread_fn(void *arg) { return (char *)arg + 1; }

static void check_glibc(void) {
    pthread_t th;
    void *res = NULL;
    CHECK(pthread_create(&th, NULL, thread_fn, (void *)41) == 0 && pthread_join(th, &res) == 0 &&
              res == (void *)42,
          "pthread_create and pthread_join");
    pid_t pid;
    char *argv[] = {"/tests/t_clone3", "spawned", NULL};
    char self[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        argv[0] = self;
    }
    int st = -1;
    CHECK(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0 && waitpid(pid, &st, 0) == pid,
          "posix_spawn");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 9, "the spawned program ran: exit 9");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "spawned") == 0) return 9;
    t_begin("t_clone3");
    check_args();
    check_pidfd_and_tids();
    check_clear_sighand();
    check_stack();
    check_glibc();
    return t_end();
}
