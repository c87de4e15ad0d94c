/* Advisory locks, compared with Linux: POSIX record locks between
 * processes (conflicts, F_GETLK's answer, split and merge, any close drops
 * them, not inherited by fork, dropped at exit), F_SETLKW waiting, EINTR and
 * EDEADLK, OFD locks, flock (independent of record locks, converts, waits),
 * leases (taking, F_GETLEASE, a break by another opener), F_SETOWN and
 * F_SETSIG, argument errors, and /proc/locks lines. */
#include "t_common.h"
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <time.h>

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* F_GETLK for [start, start+len) as words: "unlocked" or "W 0+100 pid" */
static const char *getlk(int fd, int cmd, short type, off_t start, off_t len, pid_t holder) {
    static char buf[96];
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) != 0) {
        snprintf(buf, sizeof buf, "error %s", strerrorname_np(errno));
        return buf;
    }
    if (fl.l_type == F_UNLCK) return "unlocked";
    snprintf(buf, sizeof buf, "%s %ld+%ld pid %s whence %d", fl.l_type == F_WRLCK ? "W" : "R",
             (long)fl.l_start, (long)fl.l_len,
             fl.l_pid == holder ? "holder" : fl.l_pid == -1 ? "-1" : "other", fl.l_whence);
    return buf;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static volatile sig_atomic_t got_sig;
static void on_sig(int s) { got_sig = s; }

/* Runs fn in a child; returns how it ended. */
static const char *in_child(void (*fn)(void *), void *arg) {
    pid_t p = fork();
    if (p == 0) {
        fn(arg);
        _exit(0);
    }
    return t_wait(p);
}

static int g_fd;
static pid_t g_parent;

static void child_sees_parent_lock(void *a) {
    (void)a;
    CHECK(!strcmp(getlk(g_fd, F_GETLK, F_WRLCK, 50, 10, g_parent), "W 0+100 pid holder whence 0"),
          "child F_GETLK sees the parent's write lock (%s)", getlk(g_fd, F_GETLK, F_WRLCK, 50, 10, g_parent));
    errno = 0;
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 50, 10) == -1 && (errno == EAGAIN || errno == EACCES),
          "child conflicting F_SETLK fails with EAGAIN");
    CHECK(lk(g_fd, F_SETLK, F_RDLCK, 99, 1) == -1 && errno == EAGAIN, "child read lock on the last byte: EAGAIN");
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 100, 50) == 0, "child lock just past the parent's range is granted");
    CHECK(!strcmp(getlk(g_fd, F_GETLK, F_RDLCK, 0, 0, g_parent), "W 0+100 pid holder whence 0"),
          "child F_GETLK to EOF finds the first conflict");
    CHECK(lk(g_fd, F_OFD_SETLK, F_WRLCK, 50, 10) == -1 && errno == EAGAIN,
          "child F_OFD_SETLK conflicting with a POSIX lock: EAGAIN");
}

static void child_after_split(void *a) {
    (void)a;
    SAY("split: 40..59 %s\n", getlk(g_fd, F_GETLK, F_WRLCK, 40, 20, g_parent));
    SAY("split: 30..69 %s\n", getlk(g_fd, F_GETLK, F_WRLCK, 30, 40, g_parent));
    SAY("split: 50..99 %s\n", getlk(g_fd, F_GETLK, F_WRLCK, 50, 50, g_parent));
    SAY("split: read 40..59 %s\n", getlk(g_fd, F_GETLK, F_RDLCK, 40, 20, g_parent));
    SAY("split: read 0..9 %s\n", getlk(g_fd, F_GETLK, F_RDLCK, 0, 10, g_parent));
    SAY("merge: 100..199 %s\n", getlk(g_fd, F_GETLK, F_WRLCK, 100, 100, g_parent));
    SAY("to EOF: 1000000 %s\n", getlk(g_fd, F_GETLK, F_WRLCK, 1000000, 1, g_parent));
}

static void child_free(void *a) {
    SAY("%s: %s\n", (const char *)a, getlk(g_fd, F_GETLK, F_WRLCK, 0, 0, g_parent));
}

static void child_locks_and_exits(void *a) {
    (void)a;
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 0, 10) == 0, "child takes a lock and exits holding it");
}

static void basics(void) {
    g_parent = getpid();
    g_fd = open("lockfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(g_fd >= 0, "open lockfile");
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 0, 100) == 0, "parent write lock 0..99");
    CHECK(!strcmp(getlk(g_fd, F_GETLK, F_WRLCK, 0, 100, g_parent), "unlocked"),
          "own lock never conflicts with itself");
    SAY("child: %s\n", in_child(child_sees_parent_lock, NULL));
    /* Changing the middle splits, adjacent same-type ranges merge. */
    CHECK(lk(g_fd, F_SETLK, F_UNLCK, 40, 20) == 0, "unlock the middle 40..59");
    CHECK(lk(g_fd, F_SETLK, F_RDLCK, 50, 5) == 0, "read lock 50..54 inside the hole");
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 100, 50) == 0 && lk(g_fd, F_SETLK, F_WRLCK, 150, 50) == 0,
          "two adjacent write locks 100..149, 150..199");
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 10000, 0) == 0, "write lock from 10000 to EOF");
    SAY("child: %s\n", in_child(child_after_split, NULL));
    CHECK(lk(g_fd, F_SETLK, F_UNLCK, 0, 0) == 0, "unlock everything");
    SAY("child: %s\n", in_child(child_free, "after unlock all"));
    /* Any close of any fd for the file drops the process's locks. */
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 0, 0) == 0, "lock the whole file again");
    int other = open("lockfile", O_RDONLY);
    close(other);
    SAY("child: %s\n", in_child(child_free, "after closing another fd"));
    int dupfd = dup(g_fd);
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 0, 0) == 0, "lock again");
    close(dupfd);
    SAY("child: %s\n", in_child(child_free, "after closing a dup"));
    /* dup2 over an fd is a close too. */
    CHECK(lk(g_fd, F_SETLK, F_WRLCK, 0, 0) == 0, "lock again");
    int d2 = open("lockfile", O_RDONLY);
    int nul = open("/dev/null", O_RDONLY);
    dup2(nul, d2);
    close(nul);
    close(d2);
    SAY("child: %s\n", in_child(child_free, "after dup2 over an fd"));
    /* A child's locks die with it; the parent's are not inherited. */
    CHECK(lk(g_fd, F_SETLK, F_RDLCK, 0, 0) == 0, "parent read lock");
    pid_t p = fork();
    if (p == 0) {
        /* Not inherited: unlocking in the child does not touch the parent's. */
        CHECK(lk(g_fd, F_SETLK, F_UNLCK, 0, 0) == 0, "child unlock (of nothing)");
        _exit(lk(g_fd, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EAGAIN ? 0 : 1);
    }
    SAY("child write lock over the parent's read lock: %s\n", t_wait(p));
    CHECK(lk(g_fd, F_SETLK, F_UNLCK, 0, 0) == 0, "parent unlock");
    SAY("child: %s\n", in_child(child_locks_and_exits, NULL));
    CHECK(!strcmp(getlk(g_fd, F_GETLK, F_WRLCK, 0, 0, g_parent), "unlocked"), "the exited child's lock is gone");
    close(g_fd);
}

static void errors(void) {
    int ro = open("lockfile", O_RDONLY);
    int wo = open("lockfile", O_WRONLY);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    CHECK(fcntl(ro, F_SETLK, &fl) == -1 && errno == EBADF, "write lock on an O_RDONLY fd: EBADF");
    fl.l_type = F_RDLCK;
    CHECK(fcntl(wo, F_SETLK, &fl) == -1 && errno == EBADF, "read lock on an O_WRONLY fd: EBADF");
    fl.l_type = 7;
    CHECK(fcntl(ro, F_SETLK, &fl) == -1 && errno == EINVAL, "bad l_type: EINVAL");
    fl.l_type = F_RDLCK;
    fl.l_whence = 9;
    CHECK(fcntl(ro, F_SETLK, &fl) == -1 && errno == EINVAL, "bad l_whence: EINVAL");
    fl.l_whence = SEEK_SET;
    fl.l_start = -1;
    CHECK(fcntl(ro, F_SETLK, &fl) == -1 && errno == EINVAL, "negative start: EINVAL");
    fl.l_start = 10;
    fl.l_len = -5;
    CHECK(fcntl(ro, F_SETLK, &fl) == 0, "negative length locks the bytes before start");
    fl.l_start = 0x7fffffffffffffffL;
    fl.l_len = 2;
    CHECK(fcntl(ro, F_SETLK, &fl) == -1 && errno == EOVERFLOW, "range past OFFSET_MAX: EOVERFLOW");
    fl.l_start = 0;
    fl.l_len = 0;
    fl.l_type = F_UNLCK;
    CHECK(fcntl(ro, F_GETLK, &fl) == -1 && errno == EINVAL, "F_GETLK with F_UNLCK: EINVAL");
    fl.l_type = F_RDLCK;
    fl.l_pid = 5;
    CHECK(fcntl(ro, F_OFD_SETLK, &fl) == -1 && errno == EINVAL, "F_OFD_SETLK with l_pid set: EINVAL");
    CHECK(fcntl(ro, F_OFD_GETLK, &fl) == -1 && errno == EINVAL, "F_OFD_GETLK with l_pid set: EINVAL");
    CHECK(fcntl(99, F_SETLK, &fl) == -1 && errno == EBADF, "lock on a closed fd: EBADF");
    CHECK(fcntl(ro, F_SETLK, (void *)8) == -1 && errno == EFAULT, "bad struct pointer: EFAULT");
    CHECK(flock(ro, 77) == -1 && errno == EINVAL, "flock with a bad operation: EINVAL");
    CHECK(flock(99, LOCK_SH) == -1 && errno == EBADF, "flock on a closed fd: EBADF");
    int path = open("lockfile", O_PATH);
    CHECK(flock(path, LOCK_SH) == -1 && errno == EBADF, "flock on an O_PATH fd: EBADF");
    CHECK(fcntl(path, F_GETLK, &fl) == -1 && errno == EBADF, "F_GETLK on an O_PATH fd: EBADF");
    /* SEEK_CUR and SEEK_END ranges. */
    CHECK(write(wo, "0123456789", 10) == 10, "ten bytes");
    close(ro);
    int rw = open("lockfile", O_RDWR);
    lseek(rw, 4, SEEK_SET);
    struct flock c = {.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 1, .l_len = 2};
    CHECK(fcntl(rw, F_SETLK, &c) == 0, "SEEK_CUR lock");
    struct flock e = {.l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = -3, .l_len = 0};
    CHECK(fcntl(rw, F_SETLK, &e) == 0, "SEEK_END lock");
    g_fd = rw;
    g_parent = getpid();
    pid_t p = fork();
    if (p == 0) {
        SAY("SEEK_CUR lock: %s\n", getlk(rw, F_GETLK, F_RDLCK, 0, 7, g_parent));
        SAY("SEEK_END lock: %s\n", getlk(rw, F_GETLK, F_RDLCK, 7, 0, g_parent));
        _exit(0);
    }
    t_wait(p);
    close(rw);
    close(wo);
    close(path);
}

static void waiting(void) {
    int fd = open("waitfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int pp[2];
    CHECK(pipe(pp) == 0, "pipe");
    /* F_SETLKW sleeps until the holder lets go. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0, "parent locks 0..9");
    pid_t p = fork();
    if (p == 0) {
        close(pp[0]);
        int r = lk(fd, F_SETLKW, F_WRLCK, 5, 1);
        char c = r == 0 ? 'y' : 'n';
        write(pp[1], &c, 1);
        _exit(0);
    }
    close(pp[1]);
    sleep_ms(150);
    int fl = fcntl(pp[0], F_GETFL);
    fcntl(pp[0], F_SETFL, fl | O_NONBLOCK);
    char c = 0;
    CHECK(read(pp[0], &c, 1) == -1 && errno == EAGAIN, "the waiter is still asleep while the lock is held");
    fcntl(pp[0], F_SETFL, fl);
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 10) == 0, "parent unlocks");
    CHECK(read(pp[0], &c, 1) == 1 && c == 'y', "the waiter got the lock");
    SAY("waiter: %s\n", t_wait(p));
    close(pp[0]);

    /* A handled signal without SA_RESTART ends the wait with EINTR. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0, "parent locks again");
    p = fork();
    if (p == 0) {
        struct sigaction sa = {.sa_handler = on_sig};
        sigaction(SIGALRM, &sa, NULL);
        alarm(1);
        int r = lk(fd, F_SETLKW, F_WRLCK, 0, 1);
        _exit(r == -1 && errno == EINTR && got_sig == SIGALRM ? 0 : 1);
    }
    SAY("F_SETLKW interrupted by a signal (EINTR): %s\n", t_wait(p));
    /* OFD waits too, and the lock is free once the holder's fd closes. */
    p = fork();
    if (p == 0) {
        int mine = open("waitfile", O_RDWR);
        struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        int r = fcntl(mine, F_OFD_SETLKW, &o);
        _exit(r == 0 ? 0 : 1);
    }
    sleep_ms(100);
    close(fd); /* closing drops the parent's POSIX lock: the OFD waiter goes on */
    SAY("F_OFD_SETLKW waiter after the holder closed: %s\n", t_wait(p));

    /* Deadlock: parent holds A, child holds B and waits for A; the
     * parent asking for B would close the cycle. */
    fd = open("waitfile", O_RDWR);
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    CHECK(lk(fd, F_SETLK, F_WRLCK, 0, 1) == 0, "parent holds byte 0");
    p = fork();
    if (p == 0) {
        close(ready[0]);
        lk(fd, F_SETLK, F_WRLCK, 1, 1);
        write(ready[1], "x", 1);
        int r = lk(fd, F_SETLKW, F_WRLCK, 0, 1);
        _exit(r == 0 ? 0 : 1);
    }
    close(ready[1]);
    read(ready[0], &c, 1);
    close(ready[0]);
    sleep_ms(150);
    errno = 0;
    CHECK(lk(fd, F_SETLKW, F_WRLCK, 1, 1) == -1 && errno == EDEADLK, "the lock that closes a cycle: EDEADLK");
    CHECK(lk(fd, F_SETLK, F_UNLCK, 0, 1) == 0, "parent lets byte 0 go");
    SAY("child that waited for byte 0: %s\n", t_wait(p));
    close(fd);
}

static void ofd(void) {
    int a = open("ofdfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int b = open("ofdfile", O_RDWR);
    struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    CHECK(fcntl(a, F_OFD_SETLK, &o) == 0, "OFD write lock through one open");
    o.l_type = F_RDLCK;
    CHECK(fcntl(b, F_OFD_SETLK, &o) == -1 && errno == EAGAIN, "another open of the same process conflicts");
    o.l_type = F_WRLCK;
    CHECK(fcntl(b, F_OFD_GETLK, &o) == 0 && o.l_type == F_WRLCK && o.l_pid == -1 && o.l_len == 10,
          "F_OFD_GETLK reports it with l_pid -1");
    CHECK(!strcmp(getlk(b, F_GETLK, F_WRLCK, 5, 1, 0), "W 0+10 pid -1 whence 0"),
          "F_GETLK sees an OFD lock (pid -1)");
    CHECK(lk(b, F_SETLK, F_WRLCK, 5, 1) == -1 && errno == EAGAIN, "a POSIX lock of the same process conflicts with it");
    int c = open("ofdfile", O_RDONLY);
    close(c);
    o.l_type = F_RDLCK;
    o.l_pid = 0;
    CHECK(fcntl(b, F_OFD_SETLK, &o) == -1 && errno == EAGAIN, "closing another fd does not drop an OFD lock");
    /* A forked child shares the open file description: same owner. */
    pid_t p = fork();
    if (p == 0) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 20};
        _exit(fcntl(a, F_OFD_SETLK, &q) == 0 ? 0 : 1);
    }
    SAY("child extends the shared OFD lock: %s\n", t_wait(p));
    o.l_start = 15;
    o.l_len = 1;
    o.l_pid = 0;
    CHECK(fcntl(b, F_OFD_SETLK, &o) == -1 && errno == EAGAIN, "the child's extension holds");
    close(a);
    o.l_pid = 0;
    CHECK(fcntl(b, F_OFD_SETLK, &o) == 0, "the last close of the description drops its OFD locks");
    close(b);
}

static void flocks(void) {
    int a = open("flockfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int b = open("flockfile", O_RDONLY);
    CHECK(flock(a, LOCK_EX) == 0, "LOCK_EX");
    CHECK(flock(b, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK, "LOCK_SH|LOCK_NB on another open: EWOULDBLOCK");
    CHECK(flock(a, LOCK_EX) == 0, "LOCK_EX again on the same open");
    CHECK(lk(a, F_SETLK, F_WRLCK, 0, 0) == 0, "a record lock is independent of flock");
    CHECK(flock(a, LOCK_SH) == 0, "convert to LOCK_SH");
    CHECK(flock(b, LOCK_SH | LOCK_NB) == 0, "a second shared lock");
    CHECK(flock(a, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK, "upgrade while another shares: EWOULDBLOCK");
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "the failed upgrade dropped the shared lock (Linux converts by unlocking)");
    CHECK(flock(b, LOCK_UN) == 0 && flock(a, LOCK_EX | LOCK_NB) == 0, "LOCK_UN frees it");
    /* Shared by fork: the child's unlock is the parent's. */
    pid_t p = fork();
    if (p == 0) _exit(flock(a, LOCK_UN) == 0 ? 0 : 1);
    t_wait(p);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "a child's LOCK_UN on the shared open released it");
    /* A blocking flock waits for the holder. */
    int pp[2];
    CHECK(pipe(pp) == 0, "pipe");
    p = fork();
    if (p == 0) {
        close(pp[0]);
        int r = flock(a, LOCK_SH);
        write(pp[1], r == 0 ? "y" : "n", 1);
        _exit(0);
    }
    close(pp[1]);
    sleep_ms(100);
    CHECK(flock(b, LOCK_UN) == 0, "holder unlocks");
    char c = 0;
    CHECK(read(pp[0], &c, 1) == 1 && c == 'y', "the blocked flock got the lock");
    t_wait(p);
    close(pp[0]);
    /* Closing the last fd of the open drops the flock. */
    close(a);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0, "closing the holder's open drops its flock");
    close(b);
}

/* Lines of /proc/locks for inode `st`: kind, type, whose, range. */
static void proc_locks(void) {
    int a = open("proclocks", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int b = open("proclocks", O_RDWR);
    struct stat st;
    fstat(a, &st);
    CHECK(lk(a, F_SETLK, F_WRLCK, 0, 100) == 0, "POSIX write lock 0..99");
    CHECK(lk(a, F_SETLK, F_RDLCK, 200, 0) == 0, "POSIX read lock 200..EOF");
    struct flock o = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 50};
    CHECK(fcntl(b, F_OFD_SETLK, &o) == 0, "OFD read lock 100..149");
    CHECK(flock(b, LOCK_SH) == 0, "flock shared");
    char want[64];
    snprintf(want, sizeof want, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
    FILE *f = fopen("/proc/locks", "r");
    CHECK(f != NULL, "open /proc/locks");
    char line[256];
    int n = 0;
    char seen[8][128];
    while (f && fgets(line, sizeof line, f)) {
        char kind[16], adv[16], type[16], dev[64], start[32], end[32];
        int id, pid;
        if (sscanf(line, "%d: %15s %15s %15s %d %63s %31s %31s", &id, kind, adv, type, &pid, dev, start, end) != 8)
            continue;
        if (strcmp(dev, want) != 0 || n >= 8) continue;
        snprintf(seen[n++], 128, "%s %s %s %s %s..%s", kind, adv, type,
                 pid == getpid() ? "me" : pid == -1 ? "-1" : "other", start, end);
    }
    if (f) fclose(f);
    /* Linux lists newest first; order is not compared. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(seen[i], seen[j]) > 0) {
                char t[128];
                strcpy(t, seen[i]);
                strcpy(seen[i], seen[j]);
                strcpy(seen[j], t);
            }
    for (int i = 0; i < n; i++) SAY("/proc/locks: %s\n", seen[i]);
    close(a);
    close(b);
}

static void leases(void) {
    int fd = open("leasefile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    close(fd);
    int ro = open("leasefile", O_RDONLY);
    CHECK(fcntl(ro, F_GETLEASE) == F_UNLCK, "no lease at first");
    CHECK(fcntl(ro, F_SETLEASE, F_RDLCK) == 0, "read lease on an O_RDONLY open");
    CHECK(fcntl(ro, F_GETLEASE) == F_RDLCK, "F_GETLEASE: F_RDLCK");
    CHECK(fcntl(ro, F_SETLEASE, F_WRLCK) == 0, "upgrade to a write lease (no other open)");
    CHECK(fcntl(ro, F_GETLEASE) == F_WRLCK, "F_GETLEASE: F_WRLCK");
    CHECK(fcntl(ro, F_SETLEASE, F_UNLCK) == 0 && fcntl(ro, F_GETLEASE) == F_UNLCK, "F_UNLCK gives it up");
    int rw = open("leasefile", O_RDWR);
    CHECK(fcntl(rw, F_SETLEASE, F_RDLCK) == -1 && errno == EAGAIN, "read lease on a writable open: EAGAIN");
    CHECK(fcntl(ro, F_SETLEASE, F_RDLCK) == -1 && errno == EAGAIN, "read lease while another open writes: EAGAIN");
    CHECK(fcntl(rw, F_SETLEASE, F_WRLCK) == -1 && errno == EAGAIN, "write lease while another open exists: EAGAIN");
    close(rw);
    CHECK(fcntl(ro, F_SETLEASE, 5) == -1 && errno == EINVAL, "bad lease type: EINVAL");
    int dir = open(".", O_RDONLY);
    CHECK(fcntl(dir, F_SETLEASE, F_RDLCK) == -1 && errno == EINVAL, "lease on a directory: EINVAL");
    close(dir);
    /* A writer's open breaks a read lease: the holder gets SIGIO, a
     * non-blocking opener EWOULDBLOCK, and the lease reports its target. */
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGIO, &sa, NULL);
    got_sig = 0;
    CHECK(fcntl(ro, F_SETLEASE, F_RDLCK) == 0, "read lease again");
    pid_t p = fork();
    if (p == 0) {
        int w = open("leasefile", O_WRONLY | O_NONBLOCK);
        _exit(w == -1 && errno == EWOULDBLOCK ? 0 : 1);
    }
    SAY("non-blocking writer open during a read lease (EWOULDBLOCK): %s\n", t_wait(p));
    CHECK(got_sig == SIGIO, "the lease holder got SIGIO");
    CHECK(fcntl(ro, F_GETLEASE) == F_UNLCK, "a lease being broken for a writer reports F_UNLCK");
    /* A blocking opener waits until the holder gives the lease up. */
    int pp[2];
    CHECK(pipe(pp) == 0, "pipe");
    p = fork();
    if (p == 0) {
        close(pp[0]);
        int w = open("leasefile", O_WRONLY);
        write(pp[1], w >= 0 ? "y" : "n", 1);
        _exit(0);
    }
    close(pp[1]);
    sleep_ms(100);
    int fl = fcntl(pp[0], F_GETFL);
    fcntl(pp[0], F_SETFL, fl | O_NONBLOCK);
    char c = 0;
    CHECK(read(pp[0], &c, 1) == -1 && errno == EAGAIN, "the blocking opener waits");
    fcntl(pp[0], F_SETFL, fl);
    CHECK(fcntl(ro, F_SETLEASE, F_UNLCK) == 0, "the holder gives the lease up");
    CHECK(read(pp[0], &c, 1) == 1 && c == 'y', "the opener goes on");
    t_wait(p);
    close(pp[0]);
    /* A reader does not break a read lease. */
    CHECK(fcntl(ro, F_SETLEASE, F_RDLCK) == 0, "read lease again");
    int r2 = open("leasefile", O_RDONLY | O_NONBLOCK);
    CHECK(r2 >= 0 && fcntl(ro, F_GETLEASE) == F_RDLCK, "a reader's open leaves a read lease alone");
    close(r2);
    close(ro);
    signal(SIGIO, SIG_DFL);
}

static void owners(void) {
    int fd = open("ownfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fcntl(fd, F_GETOWN) == 0, "no owner at first");
    CHECK(fcntl(fd, F_SETOWN, getpid()) == 0 && fcntl(fd, F_GETOWN) == getpid(), "F_SETOWN to self");
    struct f_owner_ex ex = {0};
    CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == F_OWNER_PID && ex.pid == getpid(), "F_GETOWN_EX: F_OWNER_PID");
    setpgid(0, 0); /* a group of our own (init's would be 0) */
    CHECK(fcntl(fd, F_SETOWN, -getpgrp()) == 0 && fcntl(fd, F_GETOWN) == -getpgrp(), "F_SETOWN to the process group");
    CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == F_OWNER_PGRP && ex.pid == getpgrp(), "F_GETOWN_EX: F_OWNER_PGRP");
    ex.type = 7;
    CHECK(fcntl(fd, F_SETOWN_EX, &ex) == -1 && errno == EINVAL, "F_SETOWN_EX with a bad type: EINVAL");
    ex.type = F_OWNER_TID;
    ex.pid = 4000000;
    CHECK(fcntl(fd, F_SETOWN_EX, &ex) == -1 && errno == ESRCH, "F_SETOWN_EX to no such thread: ESRCH");
    CHECK(fcntl(fd, F_SETOWN, 4000000) == -1 && errno == ESRCH, "F_SETOWN to no such process: ESRCH");
    CHECK(fcntl(fd, F_GETSIG) == 0, "F_GETSIG: 0 at first");
    CHECK(fcntl(fd, F_SETSIG, SIGUSR1) == 0 && fcntl(fd, F_GETSIG) == SIGUSR1, "F_SETSIG");
    CHECK(fcntl(fd, F_SETSIG, 65) == -1 && errno == EINVAL, "F_SETSIG past the last signal: EINVAL");
    close(fd);
}

int main(void) {
    t_begin("t_locks");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    basics();
    errors();
    waiting();
    ofd();
    flocks();
    proc_locks();
    leases();
    owners();
    return t_end();
}
