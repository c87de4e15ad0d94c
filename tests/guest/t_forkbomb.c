/* Guest only (as init): a fork bomb as uid 1000 meets EAGAIN at its
 * RLIMIT_NPROC (half the task cap, which is sized to mem=), the instance
 * lives, and root can still fork and exec; then root's own bomb meets the
 * cap itself. Prints the counts (they follow mem=, so no native run). */
#include "t_common.h"
#include <sys/resource.h>

/* Forks children that sleep until killed, until fork fails; returns how
 * many, and the errno that stopped it in *why. */
static int bomb(int *why) {
    int n = 0;
    for (;;) {
        pid_t c = fork();
        if (c == 0) {
            pause();
            _exit(0);
        }
        if (c < 0) {
            *why = errno;
            return n;
        }
        n++;
        if (n > 100000) return n;
    }
}

static int root_can_run(void) {
    pid_t c = fork();
    if (c == 0) {
        execl("/bin/busybox", "true", (char *)NULL);
        _exit(127);
    }
    return c > 0 && strcmp(t_wait(c), "exited 0") == 0;
}

int main(void) {
    t_begin("t_forkbomb");
    struct rlimit rl;
    getrlimit(RLIMIT_NPROC, &rl);
    SAY("RLIMIT_NPROC %ld\n", (long)rl.rlim_cur);
    int p[2];
    if (pipe(p) != 0) return 3;
    pid_t user = fork();
    if (user == 0) {
        close(p[0]);
        setpgid(0, 0);
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(9);
        int why = 0, n = bomb(&why);
        int msg[2] = {n, why};
        if (write(p[1], msg, sizeof msg) != sizeof msg) _exit(8);
        pause();
        _exit(0);
    }
    close(p[1]);
    int msg[2] = {0, 0};
    CHECK(read(p[0], msg, sizeof msg) == sizeof msg, "uid 1000's bomb reports");
    SAY("uid 1000 bomb: %d processes, then %s\n", msg[0], strerrorname_np(msg[1]) ? strerrorname_np(msg[1]) : "?");
    CHECK(msg[1] == EAGAIN, "uid 1000's fork fails with EAGAIN at its limit");
    CHECK(msg[0] + 1 <= rl.rlim_cur, "no more than RLIMIT_NPROC");
    sleep(1); /* the peak: time for the host to measure the instance */
    CHECK(root_can_run(), "root forks and execs while the bomb stands");
    kill(-user, SIGKILL);
    while (wait(NULL) > 0) {}
    CHECK(root_can_run(), "and after it is gone");

    /* Root's bomb: the cap itself (root has no RLIMIT_NPROC). */
    pid_t r = fork();
    if (r == 0) {
        setpgid(0, 0);
        int why = 0, n = bomb(&why);
        printf("root bomb: %d processes, then %s\n", n, strerrorname_np(why) ? strerrorname_np(why) : "?");
        sleep(1);
        _exit(why == EAGAIN ? 0 : 1);
    }
    CHECK(strcmp(t_wait(r), "exited 0") == 0, "root's bomb meets EAGAIN at the cap");
    kill(-r, SIGKILL);
    while (wait(NULL) > 0) {}
    CHECK(root_can_run(), "root runs commands after its own bomb");
    return t_end();
}
