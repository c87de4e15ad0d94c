/* Guest test: processes and threads: fork, vfork, wait4/waitid statuses,
 * execve (of itself, with argv/envp), ids, sessions and groups, zombies,
 * exit_group, pthreads and futex. Waits always name a pid: in the guest this
 * program is init, and orphans are reparented to it. */
#include "t_common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* The execve target: this same program, run with --exec-child. */
static int exec_child(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    SAY("exec child: argc %d\n", argc);
    for (int i = 2; i < argc; i++) SAY("exec child: argv[%d] = '%s'\n", i, argv[i]);
    SAY("exec child: FOO=%s X=%s HOME=%s\n", getenv("FOO") ?: "(unset)", getenv("X") ?: "(unset)", getenv("HOME") ?: "(unset)");
    int n = 0;
    for (char **e = environ; *e; e++) n++;
    if (getenv("FOO")) SAY("exec child: %d environment entries\n", n); /* only the explicit envp is known here */
    /* fd 9 was left open without FD_CLOEXEC, fd 10 with it */
    SAY("exec child: fd 9 %s, fd 10 %s\n", fcntl(9, F_GETFD) >= 0 ? "open" : "closed", fcntl(10, F_GETFD) >= 0 ? "open" : "closed");
    return 42;
}

static long counter;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int futex_word;
static int thread_pid_same, thread_tid_differs;

static void *adder(void *arg) {
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    if (arg) {
        thread_pid_same = getpid() == *(pid_t *)arg;
        thread_tid_differs = gettid() != *(pid_t *)arg;
    }
    return (void *)7L;
}

static void *futex_waiter(void *arg) {
    (void)arg;
    while (atomic_load(&futex_word) == 0)
        syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return (void *)(long)atomic_load(&futex_word);
}

static void *exiter(void *arg) {
    (void)arg;
    exit(33); /* exit_group: takes the whole process down */
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--exec-child")) return exec_child(argc, argv);
    t_begin("t_process");
    pid_t me = getpid(), pid;
    int st;

    CHECK(getpid() == syscall(SYS_getpid) && gettid() == me, "getpid == gettid in a single-threaded process");

    /* fork + exit codes */
    pid = fork();
    if (pid == 0) {
        SAY("fork child: getppid is the parent: %s\n", getppid() == me ? "yes" : "no");
        SAY("fork child: own pid differs: %s\n", getpid() != me ? "yes" : "no");
        _exit(7);
    }
    SAY("fork: child %s\n", t_wait(pid));
    CHECK(waitpid(pid, &st, 0) < 0 && errno == ECHILD, "second wait of a reaped child gives ECHILD");
    CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "waitpid(-1) with no children gives ECHILD");

    /* wait4 returns the pid and rusage */
    pid = fork();
    if (pid == 0) _exit(0);
    struct rusage ru;
    CHECK(wait4(pid, &st, 0, &ru) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait4 returns the child's pid, exited 0");
    for (int code = 1; code <= 255; code += 127) {
        pid = fork();
        if (pid == 0) _exit(code);
        SAY("exit code %d: %s\n", code, t_wait(pid));
    }
    pid = fork();
    if (pid == 0) _exit(256 + 3);
    SAY("exit code 259 is truncated: %s\n", t_wait(pid));

    /* killed by signals */
    int sigs[] = {SIGKILL, SIGTERM, SIGUSR1, SIGABRT};
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        pid = fork();
        if (pid == 0) {
            struct rlimit no_core = {0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            raise(sigs[i]);
            _exit(99);
        }
        SAY("child raising SIG%s: %s\n", sigabbrev_np(sigs[i]), t_wait(pid));
    }

    /* WNOHANG on a running child, then kill it */
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    pid = fork();
    if (pid == 0) {
        char c;
        close(pfd[1]);
        read(pfd[0], &c, 1); /* blocks until the parent closes */
        _exit(5);
    }
    close(pfd[0]);
    CHECK(waitpid(pid, &st, WNOHANG) == 0, "WNOHANG on a running child returns 0");
    CHECK(kill(pid, 0) == 0, "kill 0 finds the running child");
    close(pfd[1]);
    SAY("child released by EOF: %s\n", t_wait(pid));

    /* zombies: visible to kill(pid, 0) until reaped */
    CHECK(pipe(pfd) == 0, "pipe");
    pid = fork();
    if (pid == 0) { close(pfd[0]); close(pfd[1]); _exit(11); }
    close(pfd[1]);
    char c;
    CHECK(read(pfd[0], &c, 1) == 0, "EOF once the child has exited");
    close(pfd[0]);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == pid, "waitid WNOWAIT sees the zombie");
    SAY("waitid: si_code %s, si_status %d, si_signo %s\n", si.si_code == CLD_EXITED ? "CLD_EXITED" : "other", si.si_status,
        si.si_signo == SIGCHLD ? "SIGCHLD" : "other");
    CHECK(kill(pid, 0) == 0, "zombie still exists after WNOWAIT");
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_ALL, 0, &si, WEXITED) == 0 && si.si_pid == pid && si.si_status == 11, "waitid P_ALL reaps it");
    CHECK(kill(pid, 0) < 0 && errno == ESRCH, "reaped zombie is gone (ESRCH)");
    pid = fork();
    if (pid == 0) { struct rlimit r = {0, 0}; setrlimit(RLIMIT_CORE, &r); raise(SIGSEGV); _exit(1); }
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, pid, &si, WEXITED) == 0, "waitid a signalled child");
    SAY("waitid signalled: si_code %s, si_status %s\n",
        /* DUMPED or not depends on the host's core_pattern: both mean killed */
        si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED ? "CLD_KILLED/DUMPED" : "other", sigabbrev_np(si.si_status));

    /* stop and continue */
    pid = fork();
    if (pid == 0) { for (;;) pause(); }
    kill(pid, SIGSTOP);
    CHECK(waitpid(pid, &st, WUNTRACED) == pid, "waitpid WUNTRACED");
    SAY("after SIGSTOP: %s\n", t_status(st));
    kill(pid, SIGCONT);
    CHECK(waitpid(pid, &st, WCONTINUED) == pid, "waitpid WCONTINUED");
    SAY("after SIGCONT: %s\n", t_status(st));
    kill(pid, SIGKILL);
    SAY("after SIGKILL: %s\n", t_wait(pid));

    /* vfork: the child borrows the parent's memory until it exits */
    volatile int shared = 0;
    pid = vfork();
    if (pid == 0) { shared = 1; _exit(5); }
    SAY("vfork: child %s, saw its write: %s\n", t_wait(pid), shared == 1 ? "yes" : "no");

    /* execve with argv and envp; exec failure */
    int keep = open("/", O_RDONLY), cloexec = open("/", O_RDONLY | O_CLOEXEC);
    dup2(keep, 9);
    dup2(cloexec, 10);
    fcntl(10, F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "--exec-child", "a b", "", "c", NULL};
        char *env[] = {"FOO=bar", "X=1", NULL};
        execve(access(argv[0], X_OK) == 0 ? argv[0] : "/proc/self/exe", args, env);
        _exit(98);
    }
    SAY("execve: child %s\n", t_wait(pid));
    pid = vfork();
    if (pid == 0) {
        char *args[] = {argv[0], "--exec-child", NULL};
        execve(access(argv[0], X_OK) == 0 ? argv[0] : "/proc/self/exe", args, environ); /* vfork + exec: the common spawn path */
        _exit(98);
    }
    SAY("vfork + execve: child %s\n", t_wait(pid));
    close(9); close(10); close(keep); close(cloexec);
    char *none[] = {"nope", NULL};
    CHECK(execve("/nonexistent/program", none, environ) < 0 && errno == ENOENT, "execve of a missing file gives ENOENT");
    CHECK(execve("/", none, environ) < 0 && errno == EACCES, "execve of a directory gives EACCES");
    int sfd = open("script", O_CREAT | O_WRONLY, 0755);
    CHECK(write(sfd, "#!/bin/sh\nexit 6\n", 17) == 17 && close(sfd) == 0, "write a #! script");
    pid = fork();
    if (pid == 0) { char *a[] = {"script", NULL}; execve("./script", a, environ); _exit(98); }
    SAY("execve of a #! script: child %s\n", t_wait(pid));

    /* sessions and process groups */
    pid = fork();
    if (pid == 0) {
        pid_t self = getpid();
        int ok = getpgid(0) != self && setsid() == self && getsid(0) == self && getpgid(0) == self && getpgrp() == self;
        int again = setsid() < 0 && errno == EPERM;
        SAY("setsid in child: %s, second setsid EPERM: %s\n", ok ? "ok" : "FAIL", again ? "yes" : "no");
        _exit(0);
    }
    SAY("setsid child: %s\n", t_wait(pid));
    pid = fork();
    if (pid == 0) {
        pid_t self = getpid();
        int ok = setpgid(0, 0) == 0 && getpgid(0) == self && getsid(0) == getsid(getppid());
        SAY("setpgid(0,0) in child: %s\n", ok ? "ok" : "FAIL");
        _exit(0);
    }
    SAY("setpgid child: %s\n", t_wait(pid));
    CHECK(getpgid(999999) < 0 && errno == ESRCH, "getpgid of no such process gives ESRCH");

    /* exit_group from a single-threaded program */
    pid = fork();
    if (pid == 0) syscall(SYS_exit_group, 9);
    SAY("exit_group(9): %s\n", t_wait(pid));

    /* threads */
    pthread_t th[4];
    void *ret;
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= pthread_create(&th[i], NULL, adder, i == 0 ? (void *)&me : NULL) == 0;
    for (int i = 0; i < 4; i++) ok &= pthread_join(th[i], &ret) == 0 && ret == (void *)7L;
    CHECK(ok && counter == 40000, "4 threads x 10000 locked increments = %ld", counter);
    CHECK(thread_pid_same && thread_tid_differs, "thread: same pid, own tid");
    pthread_t w;
    CHECK(pthread_create(&w, NULL, futex_waiter, NULL) == 0, "start a futex waiter");
    usleep(20000);
    atomic_store(&futex_word, 5);
    syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    CHECK(pthread_join(w, &ret) == 0 && ret == (void *)5L, "futex wake released the waiter");
    pid = fork();
    if (pid == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exiter, NULL);
        for (;;) pause();
    }
    SAY("thread calling exit(33): process %s\n", t_wait(pid));
    pid = fork();
    if (pid == 0) {
        /* threads in a forked child work too */
        pthread_t t;
        counter = 0;
        pthread_create(&t, NULL, adder, NULL);
        pthread_join(t, NULL);
        _exit(counter == 10000 ? 0 : 1);
    }
    SAY("thread in a forked child: %s\n", t_wait(pid));

    /* orphans are reparented (to init, or a subreaper natively); the orphan
     * holds done[1] until it has printed, so EOF on done[0] orders the output */
    int done[2];
    CHECK(pipe(pfd) == 0 && pipe(done) == 0, "pipes");
    pid = fork();
    if (pid == 0) {
        pid_t mid = getpid();
        if (fork() == 0) {
            char b;
            close(pfd[1]);
            close(done[0]);
            read(pfd[0], &b, 1); /* wait until mid has been reaped */
            SAY("orphan: reparented away from its exited parent: %s\n", getppid() != mid ? "yes" : "no");
            _exit(0);
        }
        _exit(0);
    }
    close(pfd[0]);
    close(done[1]);
    SAY("middle child: %s\n", t_wait(pid));
    close(pfd[1]); /* lets the orphan go on */
    CHECK(read(done[0], &c, 1) == 0, "orphan finished");
    close(done[0]);

    return t_end();
}
