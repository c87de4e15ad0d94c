/* Per-user kernel caps, as Linux counts them per uid (issue 10):
 * fs.inotify.max_user_instances (inotify_init1 EMFILE past 128),
 * fs.pipe-user-pages-soft (past 16384 pages a new pipe has 2 pages, not
 * 16, and F_SETPIPE_SZ may not grow a pipe: EPERM), fs.epoll.max_user_watches
 * (EPOLL_CTL_ADD ENOSPC at the cap), and their /proc/sys files (readable
 * by anyone, writable by root only; nothing is written: natively that
 * would change the host). Each count runs as a fresh uid of its own, so
 * no other process's pipes or instances count. */
#include "t_common.h"
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>

static long read_long(const char *path) {
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

/* Forks a child that becomes a uid nobody else has, with room for 8192
 * fds, and runs fn there. */
static void as_fresh_user(const char *what, void (*fn)(void)) {
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {8192, 8192};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(10);
        uid_t u = 200000 + (getpid() % 100000);
        if (setgid(u) != 0 || setuid(u) != 0) _exit(11);
        fn();
        _exit(0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "%s child", what);
}

static void proc_files(void) {
    CHECK(read_long("/proc/sys/fs/inotify/max_user_instances") == 128, "max_user_instances reads 128");
    CHECK(read_long("/proc/sys/fs/pipe-user-pages-soft") == 16384, "pipe-user-pages-soft reads 16384");
    CHECK(read_long("/proc/sys/fs/pipe-user-pages-hard") == 0, "pipe-user-pages-hard reads 0");
    /* Sized to memory (4 % of RAM / 200 bytes): only that it is there. */
    CHECK(read_long("/proc/sys/fs/epoll/max_user_watches") > 0, "epoll max_user_watches reads");
    const char *files[] = {"/proc/sys/fs/inotify/max_user_instances", "/proc/sys/fs/pipe-user-pages-soft",
                           "/proc/sys/fs/pipe-user-pages-hard", "/proc/sys/fs/epoll/max_user_watches"};
    for (int i = 0; i < 4; i++) {
        struct stat st;
        CHECK(stat(files[i], &st) == 0 && (st.st_mode & 0777) == 0644 && st.st_uid == 0, "%s mode 0644 root",
              files[i] + 10);
        int fd = open(files[i], O_WRONLY);
        CHECK(fd >= 0, "root may open %s for writing", files[i] + 10);
        if (fd >= 0) close(fd);
    }
}

static void proc_files_unprivileged(void) {
    errno = 0;
    int fd = open("/proc/sys/fs/pipe-user-pages-soft", O_WRONLY);
    CHECK(fd < 0 && errno == EACCES, "a user may not open pipe-user-pages-soft for writing");
    fd = open("/proc/sys/fs/pipe-user-pages-soft", O_RDONLY);
    CHECK(fd >= 0, "a user may read it");
    if (fd >= 0) close(fd);
}

static void inotify_instances(void) {
    int fds[200], n = 0, err = 0;
    for (; n < 200; n++) {
        fds[n] = inotify_init1(IN_CLOEXEC);
        if (fds[n] < 0) {
            err = errno;
            break;
        }
    }
    printf("inotify instances: %d, then %s\n", n, err ? strerrorname_np(err) : "no error");
    close(fds[0]);
    int again = inotify_init1(0);
    CHECK(again >= 0, "closing one gives it back");
    for (int i = 1; i < n; i++) close(fds[i]);
    if (again >= 0) close(again);
}

static int pipe_size(int fd) { return fcntl(fd, F_GETPIPE_SZ); }

static void pipe_pages(void) {
    enum { N = 1030 };
    static int p[N][2];
    int n = 0, full = 0;
    for (; n < N; n++) {
        if (pipe(p[n]) != 0) break;
        if (pipe_size(p[n][0]) == 65536) full++;
    }
    printf("pipes made: %d, of 16 pages: %d\n", n, full);
    printf("pipe 1025 holds %d bytes, pipe 1030 %d\n", pipe_size(p[1024][0]), pipe_size(p[N - 1][0]));
    errno = 0;
    int r = fcntl(p[1024][1], F_SETPIPE_SZ, 65536);
    printf("growing pipe 1025 to 64K: %s\n", r >= 0 ? "ok" : strerrorname_np(errno));
    r = fcntl(p[0][1], F_SETPIPE_SZ, 4096);
    printf("shrinking pipe 1 to 4K: %d\n", r);
    errno = 0;
    r = fcntl(p[0][1], F_SETPIPE_SZ, 65536);
    printf("growing it back past the soft limit: %s\n", r >= 0 ? "ok" : strerrorname_np(errno));
    r = fcntl(p[1024][1], F_SETPIPE_SZ, 4096);
    printf("shrinking pipe 1025 to 4K: %d\n", r);
    for (int i = 0; i < n; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
    int q[2];
    CHECK(pipe(q) == 0 && pipe_size(q[0]) == 65536, "after closing them a new pipe has 16 pages again");
    close(q[0]);
    close(q[1]);
}

static void epoll_watches(void) {
    long max = read_long("/proc/sys/fs/epoll/max_user_watches");
    /* Natively the cap is sized to the host's RAM (millions): out of a
     * test's reach, so only a guest (64M: about 13 000) counts to it. */
    if (max <= 0 || max > 20000) {
        printf("epoll watches: ENOSPC exactly at max_user_watches, given back on close\n");
        return;
    }
    enum { FDS = 128 };
    int fds[FDS];
    for (int i = 0; i < FDS; i += 2)
        if (pipe(&fds[i]) != 0) _exit(20);
    long added = 0;
    int err = 0, eps[400], neps = 0;
    while (!err && neps < 400) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) _exit(21);
        eps[neps++] = ep;
        for (int i = 0; i < FDS; i++) {
            struct epoll_event ev = {.events = EPOLLIN};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
                err = errno;
                break;
            }
            added++;
        }
    }
    /* Closing one epoll gives its watches back: one more fits. */
    close(eps[0]);
    struct epoll_event ev = {.events = EPOLLIN};
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int back = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev) == 0;
    if (err == ENOSPC && added == max && back)
        printf("epoll watches: ENOSPC exactly at max_user_watches, given back on close\n");
    else
        printf("epoll watches: %ld added of %ld, then %s; given back %d\n", added, max,
               err ? strerrorname_np(err) : "none", back);
    for (int i = 1; i < neps; i++) close(eps[i]);
}

int main(void) {
    t_begin("t_ucaps");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    proc_files();
    as_fresh_user("proc files", proc_files_unprivileged);
    as_fresh_user("inotify", inotify_instances);
    as_fresh_user("pipes", pipe_pages);
    as_fresh_user("epoll", epoll_watches);
    return t_end();
}
