/* dnotify: fcntl(dirfd, F_NOTIFY, DN_*) signals the file's owner when
 * something happens in the directory: one watch (and one F_SETSIG signal)
 * per DN_* kind here, so the output names which kinds each operation
 * fired and how often. Also: one-shot vs DN_MULTISHOT, masks added by a
 * second F_NOTIFY, removal by 0 and by closing an fd of the file (not by a
 * child's close), si_code/si_band/si_fd, plain SIGIO, the errors. A
 * rename between directories is DN_DELETE in the old one and DN_CREATE in
 * the new one; DN_RENAME is a rename inside one directory (RENAME_EXCHANGE
 * is two moves). Runs as root (natively too: it mounts a tmpfs). */
#include "t_common.h"
#include <poll.h>
#include <sys/mount.h>
#include <signal.h>
#include <time.h>

/* Linux's band for POLL_MSG. */
#define POLLIN_BAND (POLLIN | POLLRDNORM | POLLMSG)

static const struct {
    int bit;
    const char *name;
} kinds[] = {
    {DN_ACCESS, "ACCESS"}, {DN_MODIFY, "MODIFY"}, {DN_CREATE, "CREATE"},
    {DN_DELETE, "DELETE"}, {DN_RENAME, "RENAME"}, {DN_ATTRIB, "ATTRIB"},
    /* the last watches the other directory, e, for every kind */
    {DN_ACCESS | DN_MODIFY | DN_CREATE | DN_DELETE | DN_RENAME | DN_ATTRIB, "E:ANY"},
};
#define NK 7
static int fds[NK];
static sigset_t all;

/* The signals queued since last time, as "KIND xN ..." ("none"). */
static const char *drain(int *bad_info) {
    static char out[256];
    int counts[NK] = {0};
    struct timespec zero = {0, 0};
    siginfo_t si;
    int s;
    while ((s = sigtimedwait(&all, &si, &zero)) > 0) {
        int i = s - SIGRTMIN - 1;
        if (i < 0 || i >= NK) {
            (*bad_info)++;
            continue;
        }
        counts[i]++;
        if (si.si_code != POLL_MSG || si.si_fd != fds[i] || si.si_band != POLLIN_BAND)
            (*bad_info)++;
    }
    out[0] = 0;
    for (int i = 0; i < NK; i++)
        if (counts[i])
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s x%d", out[0] ? " " : "",
                     kinds[i].name, counts[i]);
    return out[0] ? out : "none";
}

static void watch_all(const char *dir, const char *other, int multishot) {
    for (int i = 0; i < NK; i++) {
        fds[i] = open(i == NK - 1 ? other : dir, O_RDONLY | O_DIRECTORY);
        fcntl(fds[i], F_SETSIG, SIGRTMIN + 1 + i);
        fcntl(fds[i], F_NOTIFY, kinds[i].bit | (multishot ? DN_MULTISHOT : 0));
    }
}

static void unwatch_all(void) {
    for (int i = 0; i < NK; i++)
        close(fds[i]);
}

#define OP(what, stmt)                                   \
    do {                                                 \
        stmt;                                            \
        SAY("%-28s -> %s\n", what, drain(&bad));         \
    } while (0)

int main(void) {
    t_begin("t_dnotify");
    int bad = 0;
    sigemptyset(&all);
    for (int i = 0; i <= NK + 1; i++)
        sigaddset(&all, SIGRTMIN + i);
    sigaddset(&all, SIGIO);
    sigprocmask(SIG_BLOCK, &all, NULL);

    /* Errors and the no-op forms. */
    CHECK(mkdir("d", 0755) == 0 && mkdir("d/sub", 0755) == 0 && mkdir("e", 0755) == 0, "mkdir");
    int f = open("d/file", O_CREAT | O_RDWR, 0644);
    CHECK(f >= 0, "create d/file");
    errno = 0;
    CHECK(fcntl(f, F_NOTIFY, DN_CREATE) < 0 && errno == ENOTDIR, "F_NOTIFY on a regular file: ENOTDIR");
    CHECK(fcntl(f, F_NOTIFY, DN_MULTISHOT) == 0, "F_NOTIFY DN_MULTISHOT alone on a file: 0 (a removal)");
    int p = open("d", O_PATH);
    errno = 0;
    CHECK(fcntl(p, F_NOTIFY, DN_CREATE) < 0 && errno == EBADF, "F_NOTIFY on an O_PATH fd: EBADF");
    close(p);
    int d = open("d", O_RDONLY | O_DIRECTORY);
    CHECK(fcntl(d, F_NOTIFY, 0) == 0, "F_NOTIFY 0 without a watch: 0");
    CHECK(fcntl(d, F_NOTIFY, DN_CREATE) == 0 && fcntl(d, F_GETOWN) == getpid(),
          "F_NOTIFY makes the caller the owner");

    /* Plain SIGIO (no F_SETSIG): si_code SI_KERNEL. */
    struct timespec zero = {0, 0}, tenth = {0, 100000000};
    siginfo_t si;
    close(open("d/a", O_CREAT | O_WRONLY, 0644));
    int s = sigtimedwait(&all, &si, &zero);
    CHECK(s == SIGIO && si.si_code == SI_KERNEL && si.si_fd == 0, "a create: SIGIO, SI_KERNEL");
    close(open("d/b", O_CREAT | O_WRONLY, 0644));
    CHECK(sigtimedwait(&all, &si, &zero) < 0 && errno == EAGAIN, "one-shot: no second SIGIO");
    close(d);

    /* Every kind, multishot. */
    watch_all("d", "e", 1);
    char buf[16];
    OP("create", close(open("d/c", O_CREAT | O_WRONLY, 0644)));
    OP("write", (void)!write(f, "hello", 5));
    OP("pwrite", (void)!pwrite(f, "x", 1, 100));
    OP("ftruncate", (void)!ftruncate(f, 2));
    OP("read", (void)!pread(f, buf, sizeof buf, 0));
    OP("read at EOF", (void)!pread(f, buf, sizeof buf, 1000));
    OP("fchmod", fchmod(f, 0600));
    OP("chown to self", (void)!chown("d/c", getuid(), getgid()));
    OP("link", (void)!link("d/c", "d/c2"));
    OP("unlink", unlink("d/c2"));
    OP("symlink", (void)!symlink("c", "d/sl"));
    OP("mkdir", mkdir("d/sub2", 0755));
    OP("rmdir", rmdir("d/sub2"));
    OP("rename in d", rename("d/c", "d/c3"));
    OP("rename over a file", rename("d/c3", "d/a"));
    OP("rename d -> e", rename("d/b", "e/b"));
    OP("rename e -> d", rename("e/b", "d/b"));
    OP("in a subdirectory", close(open("d/sub/x", O_CREAT | O_WRONLY, 0644)));
    OP("chmod of the subdirectory", chmod("d/sub", 0700));
    OP("chmod of d itself", chmod("d", 0755));
    OP("mkfifo", mkfifo("d/fifo", 0644));
    OP("a child creates", {
        pid_t c = fork();
        if (c == 0)
            _exit(close(open("d/fromchild", O_CREAT | O_WRONLY, 0644)) != 0);
        t_wait(c);
    });
    OP("a child closes its fds", {
        pid_t c = fork();
        if (c == 0) {
            unwatch_all();
            _exit(0);
        }
        t_wait(c);
    });
    OP("then a create", close(open("d/after-child", O_CREAT | O_WRONLY, 0644)));
    unwatch_all();
    OP("after close", close(open("d/after-close", O_CREAT | O_WRONLY, 0644)));

    /* One-shot watches fire once. */
    watch_all("d", "e", 0);
    OP("one-shot: write", (void)!write(f, "a", 1));
    OP("one-shot: write again", (void)!write(f, "a", 1));
    OP("one-shot: rename in d", rename("d/a", "d/a2"));
    OP("one-shot: rename again", rename("d/a2", "d/a"));
    unwatch_all();

    /* A second F_NOTIFY adds events; 0 removes; a dup's close removes. */
    d = open("d", O_RDONLY | O_DIRECTORY);
    fcntl(d, F_SETSIG, SIGRTMIN + 1 + 2); /* reported as CREATE */
    fds[2] = d;
    fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT);
    fcntl(d, F_NOTIFY, DN_DELETE);
    OP("added mask: unlink", unlink("d/a"));
    OP("added mask: create", close(open("d/a", O_CREAT | O_WRONLY, 0644)));
    fcntl(d, F_NOTIFY, 0);
    OP("removed by 0: create", close(open("d/a0", O_CREAT | O_WRONLY, 0644)));
    fcntl(d, F_NOTIFY, DN_CREATE | DN_MULTISHOT);
    int d2 = dup(d);
    OP("rearmed: create", close(open("d/a1", O_CREAT | O_WRONLY, 0644)));
    close(d2);
    OP("a dup closed: create", close(open("d/a2", O_CREAT | O_WRONLY, 0644)));
    close(d);

    /* RENAME_EXCHANGE (on a tmpfs: ext2 has none) is two moves. */
    CHECK(mkdir("mnt", 0755) == 0 && mount("tmpfs", "mnt", "tmpfs", 0, "size=1m") == 0, "mount a tmpfs");
    CHECK(mkdir("mnt/d", 0755) == 0 && mkdir("mnt/e", 0755) == 0, "mkdir in the tmpfs");
    close(open("mnt/d/x", O_CREAT | O_WRONLY, 0644));
    close(open("mnt/d/y", O_CREAT | O_WRONLY, 0644));
    close(open("mnt/e/z", O_CREAT | O_WRONLY, 0644));
    watch_all("mnt/d", "mnt/e", 1);
    OP("tmpfs: create", close(open("mnt/d/w", O_CREAT | O_WRONLY, 0644)));
    OP("tmpfs: exchange in d", renameat2(AT_FDCWD, "mnt/d/x", AT_FDCWD, "mnt/d/y", RENAME_EXCHANGE));
    OP("tmpfs: exchange d, e", renameat2(AT_FDCWD, "mnt/d/x", AT_FDCWD, "mnt/e/z", RENAME_EXCHANGE));
    unwatch_all();
    CHECK(umount("mnt") == 0, "umount the tmpfs");

    CHECK(bad == 0, "every signal had si_code POLL_MSG, its fd in si_fd and POLLIN|POLLRDNORM|POLLMSG in si_band (%d did not)", bad);
    CHECK(sigtimedwait(&all, &si, &tenth) < 0 && errno == EAGAIN, "nothing else queued");
    close(f);
    return t_end();
}
