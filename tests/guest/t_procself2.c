/* Guest test: /proc/<pid>/oom_score_adj, oom_adj and oom_score, writable
 * comm, and task/ listing every thread. Runs unprivileged (a root caller
 * drops to uid 65534 in a child) so both sides follow the same rules:
 * oom_score_adj takes -1000..1000 (EINVAL outside), may not go below its
 * floor (EACCES), the legacy oom_adj (-17..15) scales by 1000/17 and may
 * not go below the current value; both are inherited across fork.
 * comm takes at most 15 bytes, only from the process itself (EINVAL
 * otherwise), and shows in PR_GET_NAME and stat; task/<tid>/comm renames
 * that thread alone. */
#include "t_common.h"
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static char *slurp(const char *path) {
    static char buf[8192];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    int n = 0, r;
    while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    return buf;
}

/* Writes `s` (its bytes, no NUL) to `path`: 0 or the errno. */
static int put(const char *path, const char *s, size_t len) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return errno;
    ssize_t r = write(fd, s, len);
    int e = r < 0 ? errno : (r == (ssize_t)len ? 0 : -1);
    close(fd);
    return e;
}
#define PUT(p, s) put(p, s, strlen(s))

static const char *ename(int e) {
    if (e == 0) return "ok";
    if (e < 0) return "short";
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

static int num(const char *path) {
    char *t = slurp(path);
    return t ? atoi(t) : -99999;
}

/* The text with newlines shown as \n. */
static const char *esc(const char *s) {
    static char o[128];
    int j = 0;
    for (; s && *s && j < 120; s++) {
        if (*s == '\n') {
            o[j++] = '\\';
            o[j++] = 'n';
        } else {
            o[j++] = *s;
        }
    }
    o[j] = 0;
    return o;
}

static int to_worker[2], from_worker[2];

static void *worker(void *arg) {
    (void)arg;
    char c;
    prctl(PR_SET_NAME, "worker", 0, 0, 0);
    int tid = (int)syscall(SYS_gettid);
    if (write(from_worker[1], &tid, sizeof tid) != sizeof tid) return NULL;
    /* Wait for the main thread to rename us through /proc. */
    if (read(to_worker[0], &c, 1) != 1) return NULL;
    char name[16] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (write(from_worker[1], name, sizeof name) != sizeof name) return NULL;
    if (read(to_worker[0], &c, 1) != 1) return NULL;
    return NULL;
}

static void oom_checks(void) {
    const char *adj = "/proc/self/oom_score_adj";
    const char *old = "/proc/self/oom_adj";
    int v0 = num(adj);
    CHECK(v0 >= -1000 && v0 <= 1000, "oom_score_adj starts in -1000..1000");
    SAY("write 500: %s\n", ename(PUT(adj, "500")));
    SAY("oom_score_adj: %d, oom_adj: %d\n", num(adj), num(old));
    SAY("write 1001: %s\n", ename(PUT(adj, "1001")));
    SAY("write -1001: %s\n", ename(PUT(adj, "-1001")));
    SAY("write abc: %s\n", ename(PUT(adj, "abc")));
    SAY("write '  700\\n': %s\n", ename(PUT(adj, "  700\n")));
    SAY("oom_score_adj: %d\n", num(adj));
    SAY("write -1000 unprivileged: %s\n", ename(PUT(adj, "-1000")));
    SAY("lower to 500 (above the floor): %s\n", ename(PUT(adj, "500")));
    SAY("oom_adj write 1 (below current): %s\n", ename(PUT(old, "1")));
    SAY("oom_adj write 16: %s\n", ename(PUT(old, "16")));
    SAY("oom_adj write -18: %s\n", ename(PUT(old, "-18")));
    SAY("oom_adj write 9 (529): %s\n", ename(PUT(old, "9")));
    SAY("oom_score_adj: %d, oom_adj: %d\n", num(adj), num(old));
    SAY("oom_adj write 15: %s\n", ename(PUT(old, "15")));
    SAY("oom_score_adj: %d, oom_adj: %d\n", num(adj), num(old));
    int score = num("/proc/self/oom_score");
    CHECK(score >= 1300 && score <= 2000, "oom_score with oom_score_adj 1000 is near the top");
    SAY("write oom_score: %s\n", ename(PUT("/proc/self/oom_score", "1")));
    /* Another user's process (pid 1 is root's on both sides). */
    SAY("write root's oom_score_adj: %s\n", ename(PUT("/proc/1/oom_score_adj", "0")));
    SAY("write root's comm: %s\n", ename(PUT("/proc/1/comm", "x")));
    struct stat st;
    const char *files[] = {"oom_score_adj", "oom_adj", "oom_score", "comm"};
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/%s", files[i]);
        CHECK(stat(p, &st) == 0, "stat %s", files[i]);
        SAY("%s mode %o\n", files[i], st.st_mode & 07777);
    }
    pid_t c = fork();
    if (c == 0) {
        int a = num(adj), o = num(old);
        _exit(a == 1000 && o == 15 ? 0 : 1);
    }
    SAY("child inherits oom_score_adj: %s\n", t_wait(c));
}

static void comm_checks(void) {
    const char *comm = "/proc/self/comm";
    char name[17] = {0};
    SAY("write comm: %s\n", ename(PUT(comm, "hello-procfs")));
    SAY("comm: %s\n", esc(slurp(comm)));
    prctl(PR_GET_NAME, name, 0, 0, 0);
    SAY("PR_GET_NAME: %s\n", name);
    char *st = slurp("/proc/self/stat");
    CHECK(st && strstr(st, " (hello-procfs) "), "stat shows the new name");
    st = slurp("/proc/self/status");
    CHECK(st && strstr(st, "Name:\thello-procfs\n"), "status shows the new name");
    SAY("write long comm: %s\n", ename(PUT(comm, "0123456789abcdefghij")));
    SAY("comm: %s\n", esc(slurp(comm)));
    SAY("write comm with newline: %s\n", ename(PUT(comm, "nl\n")));
    SAY("comm: %s\n", esc(slurp(comm)));
    prctl(PR_SET_NAME, "main", 0, 0, 0);

    /* Another process's comm: EINVAL (same owner, so it opens). */
    int p[2];
    if (pipe(p) != 0) return;
    pid_t c = fork();
    if (c == 0) {
        char x;
        close(p[1]);
        if (read(p[0], &x, 1) < 0) _exit(2);
        _exit(0);
    }
    close(p[0]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)c);
    SAY("write another process's comm: %s\n", ename(PUT(path, "other")));
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)c);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT, "task/<another process> is ENOENT");
    close(p[1]);
    SAY("child: %s\n", t_wait(c));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void thread_checks(void) {
    pthread_t th;
    int wtid = 0;
    char c = 'x';
    if (pipe(to_worker) != 0 || pipe(from_worker) != 0) return;
    if (pthread_create(&th, NULL, worker, NULL) != 0) return;
    if (read(from_worker[0], &wtid, sizeof wtid) != sizeof wtid) return;

    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL, "opendir /proc/self/task");
    if (!d) return;
    char *names[8];
    int n = 0, tids_ok = 1, seen_self = 0, seen_worker = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 8) {
        if (e->d_name[0] == '.') continue;
        int tid = atoi(e->d_name);
        if (tid == getpid()) seen_self = 1;
        if (tid == wtid) seen_worker = 1;
        char p[96];
        snprintf(p, sizeof p, "/proc/self/task/%d/comm", tid);
        char *cm = slurp(p);
        names[n++] = strdup(cm ? esc(cm) : "?");
        snprintf(p, sizeof p, "/proc/self/task/%d/stat", tid);
        char *st = slurp(p);
        if (!st || atoi(st) != tid) tids_ok = 0;
        snprintf(p, sizeof p, "/proc/self/task/%d/status", tid);
        st = slurp(p);
        char want[64];
        snprintf(want, sizeof want, "\nTgid:\t%d\n", (int)getpid());
        if (!st || !strstr(st, want)) tids_ok = 0;
        snprintf(want, sizeof want, "\nPid:\t%d\n", tid);
        if (!st || !strstr(st, want)) tids_ok = 0;
    }
    closedir(d);
    SAY("task/ lists %d threads\n", n);
    CHECK(seen_self && seen_worker, "task/ lists the leader and the worker");
    CHECK(tids_ok, "task/<tid>/stat and status are the thread's");
    qsort(names, n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        SAY("thread comm: %s\n", names[i]);
        free(names[i]);
    }
    char *st = slurp("/proc/self/status");
    CHECK(st && strstr(st, "Threads:\t2\n"), "status says 2 threads");

    char p[96];
    snprintf(p, sizeof p, "/proc/self/task/%d/comm", wtid);
    SAY("rename the worker through task/: %s\n", ename(PUT(p, "renamed")));
    if (write(to_worker[1], &c, 1) != 1) return;
    char name[16];
    if (read(from_worker[0], name, sizeof name) != sizeof name) return;
    SAY("worker's PR_GET_NAME: %s\n", name);
    SAY("worker's comm: %s\n", esc(slurp(p)));
    SAY("leader's comm: %s\n", esc(slurp("/proc/self/comm")));
    snprintf(p, sizeof p, "/proc/self/task/%d/stat", wtid);
    st = slurp(p);
    CHECK(st && strstr(st, " (renamed) "), "the worker's stat shows its name");
    if (write(to_worker[1], &c, 1) != 1) return;
    pthread_join(th, NULL);
    d = opendir("/proc/self/task");
    n = 0;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    SAY("after join, task/ lists %d threads\n", n);
}

int main(void) {
    t_begin("t_procself2");
    /* The guest's init has no /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    pid_t c = fork();
    if (c == 0) {
        if (geteuid() == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        }
        oom_checks();
        comm_checks();
        thread_checks();
        _exit(t_failures ? 1 : 0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "unprivileged child's checks");
    return t_end();
}
