/* prctl and personality compared with Linux: child subreapers (orphans
 * are adopted by the nearest subreaper, which can wait for them),
 * PR_SET_PDEATHSIG, timer slack, PR_GET_TSC, personality(2) and UNAME26. */
#include "t_common.h"
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <time.h>

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void subreaper(void) {
    int v = -1;
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &v) == 0 && v == 0, "not a subreaper at first");
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER");
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &v) == 0 && v == 1, "PR_GET_CHILD_SUBREAPER: 1");
    int pp[2];
    CHECK(pipe(pp) == 0, "pipe");
    pid_t mid = fork();
    if (mid == 0) {
        pid_t grand = fork();
        if (grand == 0) {
            close(pp[0]);
            sleep_ms(150); /* outlive the middle process */
            int adopted = getppid();
            write(pp[1], &adopted, sizeof adopted);
            _exit(7);
        }
        _exit(0);
    }
    close(pp[1]);
    SAY("middle process: %s\n", t_wait(mid));
    int adopted = 0;
    CHECK(read(pp[0], &adopted, sizeof adopted) == sizeof adopted && adopted == getpid(),
          "the orphan's new parent is the subreaper");
    close(pp[0]);
    int st = 0;
    pid_t r = wait(&st);
    CHECK(r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7, "the subreaper reaps the adopted grandchild");
    /* A grandchild that is already a zombie when its parent goes. */
    mid = fork();
    if (mid == 0) {
        if (fork() == 0) _exit(3);
        sleep_ms(100);
        _exit(0);
    }
    SAY("middle process: %s\n", t_wait(mid));
    r = wait(&st);
    CHECK(r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 3, "a zombie orphan is reaped by the subreaper");
    CHECK(wait(&st) == -1 && errno == ECHILD, "then no children are left");
    /* Subreaper status is not inherited. */
    pid_t c = fork();
    if (c == 0) {
        int x = -1;
        prctl(PR_GET_CHILD_SUBREAPER, &x);
        _exit(x == 0 ? 0 : 1);
    }
    SAY("child is not a subreaper: %s\n", t_wait(c));
}

static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }

static void pdeathsig(void) {
    int pp[2];
    CHECK(pipe(pp) == 0, "pipe");
    pid_t mid = fork();
    if (mid == 0) {
        pid_t grand = fork();
        if (grand == 0) {
            struct sigaction sa = {.sa_handler = on_usr1};
            sigaction(SIGUSR1, &sa, NULL);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            int s = 0;
            prctl(PR_GET_PDEATHSIG, &s);
            close(pp[0]);
            write(pp[1], "r", 1);
            for (int i = 0; i < 200 && !got; i++) sleep_ms(5);
            char c = got == SIGUSR1 && s == SIGUSR1 ? 'y' : 'n';
            write(pp[1], &c, 1);
            _exit(0);
        }
        char c;
        close(pp[1]);
        read(pp[0], &c, 1);
        _exit(0);
    }
    close(pp[1]);
    SAY("middle process: %s\n", t_wait(mid));
    char b = 0; /* the middle process took the "r" */
    read(pp[0], &b, 1);
    CHECK(b == 'y', "PR_SET_PDEATHSIG: SIGUSR1 when the parent died");
    close(pp[0]);
    while (wait(NULL) > 0) {}
}

static void slack_and_tsc(void) {
    long initial = prctl(PR_GET_TIMERSLACK);
    CHECK(initial > 0, "a timer slack");
    CHECK(prctl(PR_SET_TIMERSLACK, 12345) == 0 && prctl(PR_GET_TIMERSLACK) == 12345, "PR_SET_TIMERSLACK 12345");
    pid_t c = fork();
    if (c == 0) _exit(prctl(PR_GET_TIMERSLACK) == 12345 ? 0 : 1);
    SAY("child inherits the slack: %s\n", t_wait(c));
    CHECK(prctl(PR_SET_TIMERSLACK, 0) == 0 && prctl(PR_GET_TIMERSLACK) == initial, "0 restores the default");
    int tsc = 0;
    CHECK(prctl(PR_GET_TSC, &tsc) == 0 && tsc == PR_TSC_ENABLE, "PR_GET_TSC: enabled");
    CHECK(prctl(PR_SET_TSC, PR_TSC_ENABLE) == 0, "PR_SET_TSC enable");
}

static void persona(void) {
    CHECK(personality(0xffffffff) == PER_LINUX, "personality: PER_LINUX");
    CHECK(personality(PER_LINUX | ADDR_NO_RANDOMIZE) == PER_LINUX, "set ADDR_NO_RANDOMIZE (returns the old)");
    CHECK(personality(0xffffffff) == (PER_LINUX | ADDR_NO_RANDOMIZE), "it sticks");
    pid_t c = fork();
    if (c == 0) _exit(personality(0xffffffff) == ADDR_NO_RANDOMIZE ? 0 : 1);
    SAY("child inherits the personality: %s\n", t_wait(c));
    personality(PER_LINUX | UNAME26);
    struct utsname u;
    uname(&u);
    CHECK(!strncmp(u.release, "2.6.", 4), "UNAME26: the release reads 2.6.x");
    personality(PER_LINUX);
    uname(&u);
    CHECK(strncmp(u.release, "2.6.", 4) != 0, "back to the real release");
}

/* Secure bits and the bounding set, in a child (locks are for good):
 * Linux's rules for changing them (locked bits stay, locks stay, unknown
 * bits and non-root EPERM), inheritance by fork, KEEP_CAPS cleared by
 * execve (the re-executed program prints what it has). */
static void securebits(const char *self) {
    CHECK(prctl(PR_GET_SECUREBITS) == 0 && prctl(PR_GET_KEEPCAPS) == 0, "no secure bits at first");
    errno = 0;
    CHECK(prctl(PR_SET_KEEPCAPS, 2) == -1 && errno == EINVAL, "PR_SET_KEEPCAPS 2: EINVAL");
    CHECK(prctl(PR_SET_KEEPCAPS, 1) == 0 && prctl(PR_GET_SECUREBITS) == 0x10 && prctl(PR_GET_KEEPCAPS) == 1,
          "PR_SET_KEEPCAPS sets SECURE_KEEP_CAPS");
    errno = 0;
    CHECK(prctl(PR_SET_SECUREBITS, 1 << 20) == -1 && errno == EPERM, "an unknown secure bit: EPERM");
    CHECK(prctl(PR_SET_SECUREBITS, 0x30) == 0 && prctl(PR_GET_SECUREBITS) == 0x30, "KEEP_CAPS locked");
    errno = 0;
    CHECK(prctl(PR_SET_KEEPCAPS, 0) == -1 && errno == EPERM, "a locked KEEP_CAPS stays: EPERM");
    errno = 0;
    CHECK(prctl(PR_SET_SECUREBITS, 0x10) == -1 && errno == EPERM, "a lock stays: EPERM");
    CHECK(prctl(PR_SET_SECUREBITS, 0x31) == 0 && prctl(PR_GET_SECUREBITS) == 0x31, "NOROOT added");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(prctl(PR_GET_SECUREBITS) == 0x31 ? 0 : 1);
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "a forked child has them");
    fflush(stdout);
    c = fork();
    if (c == 0) {
        execl(self, "t_prctl", "securebits", (char *)NULL);
        _exit(127);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "the re-executed program ran");
    CHECK(prctl(PR_CAPBSET_READ, 21) == 1, "CAP_SYS_ADMIN in the bounding set");
    CHECK(prctl(PR_CAPBSET_DROP, 21) == 0 && prctl(PR_CAPBSET_READ, 21) == 0, "dropped from it");
    errno = 0;
    CHECK(prctl(PR_CAPBSET_READ, 41) == -1 && errno == EINVAL, "CAPBSET_READ past CAP_LAST_CAP: EINVAL");
    errno = 0;
    CHECK(prctl(PR_CAPBSET_DROP, 41) == -1 && errno == EINVAL, "CAPBSET_DROP past CAP_LAST_CAP: EINVAL");
    fflush(stdout);
    c = fork();
    if (c == 0) {
        if (prctl(PR_CAPBSET_READ, 21) != 0 || setuid(1000) != 0) _exit(2);
        int a = prctl(PR_SET_SECUREBITS, 0x31) == -1 && errno == EPERM;
        int b = prctl(PR_CAPBSET_DROP, 22) == -1 && errno == EPERM;
        _exit(a && b ? 0 : 1);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "inherited; uid 1000 may change neither (EPERM)");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "securebits") == 0) {
        printf("after execve: secure bits %#x\n", prctl(PR_GET_SECUREBITS));
        return prctl(PR_GET_SECUREBITS) == 0x21 ? 0 : 1;
    }
    t_begin("t_prctl");
    /* Not as init (which adopts every orphan anyway): in a child. */
    pid_t sub = fork();
    if (sub == 0) {
        subreaper();
        _exit(t_failures ? 1 : 0);
    }
    SAY("subreaper checks: %s\n", t_wait(sub));
    pdeathsig();
    slack_and_tsc();
    persona();
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    char self[256] = {0};
    CHECK(readlink("/proc/self/exe", self, sizeof self - 1) > 0, "its own path");
    fflush(stdout);
    pid_t sb = fork();
    if (sb == 0) {
        securebits(self);
        _exit(t_failures ? 1 : 0);
    }
    SAY("secure bit checks: %s\n", t_wait(sb));
    return t_end();
}
