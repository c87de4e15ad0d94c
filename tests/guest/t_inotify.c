/* Guest test: inotify on a directory and on a file: IN_CREATE (file,
 * directory with IN_ISDIR, symlink, hard link), IN_MODIFY (write,
 * ftruncate), IN_ATTRIB (chmod), IN_CLOSE_WRITE/IN_CLOSE_NOWRITE,
 * IN_MOVED_FROM/IN_MOVED_TO with one cookie, IN_DELETE, IN_DELETE_SELF
 * and IN_IGNORED, IN_ONESHOT, merging of identical events, rm_watch,
 * records with 16-byte padded names, IN_NONBLOCK EAGAIN, a blocking read
 * and poll woken by another process, FIONREAD, and bad calls. Runs in a
 * scratch directory on the test disk (ext2) and in /tmp (tmpfs in the
 * guest when mounted). Then IN_OPEN, IN_ACCESS (reads that return
 * bytes, pread, getdents of a directory with IN_ISDIR), IN_CLOSE_* (no
 * events for O_PATH), and IN_UNMOUNT then IN_IGNORED for watches on a
 * tmpfs unmounted. */
#include "t_common.h"
#include <dirent.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>

#define MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

static char evbuf[8192];
static int evlen, evpos;

static const char *names(uint32_t m) {
    static char b[256];
    b[0] = 0;
    static const struct { uint32_t bit; const char *n; } t[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"}, {IN_CLOSE_WRITE, "CLOSE_WRITE"},
        {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}};
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
        if (m & t[i].bit) {
            if (b[0]) strcat(b, "|");
            strcat(b, t[i].n);
        }
    return b;
}

/* Prints every queued event (non-blocking read) as "wd-name mask name". */
static int dump(int fd, const char *label, int wd_dir, int wd_file) {
    int count = 0;
    SAY("%s:\n", label);
    for (;;) {
        if (evpos >= evlen) {
            evlen = read(fd, evbuf, sizeof evbuf);
            evpos = 0;
            if (evlen <= 0) break;
        }
        struct inotify_event *e = (struct inotify_event *)(evbuf + evpos);
        const char *w = e->wd == wd_dir ? "dir" : e->wd == wd_file ? "file" : "other";
        SAY("  %s %s%s%s len%%16=%d\n", w, names(e->mask), e->len ? " " : "", e->len ? e->name : "", e->len % 16);
        evpos += sizeof *e + e->len;
        count++;
    }
    return count;
}

static void in_dir(const char *where, const char *label) {
    SAY("-- in %s\n", label);
    char d[128];
    snprintf(d, sizeof d, "%s/watched", where);
    mkdir(d, 0755);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC && (fcntl(fd, F_GETFL) & O_NONBLOCK), "inotify_init1(IN_NONBLOCK | IN_CLOEXEC)");
    int wd = inotify_add_watch(fd, d, MASK);
    CHECK(wd >= 1, "watch the directory");
    CHECK(inotify_add_watch(fd, d, MASK) == wd, "watching it again gives the same wd");
    CHECK(read(fd, evbuf, sizeof evbuf) < 0 && errno == EAGAIN, "nothing yet: EAGAIN");
    char f[160], g[160], sub[160], ln[160], hl[160];
    snprintf(f, sizeof f, "%s/a.txt", d);
    snprintf(g, sizeof g, "%s/b-with-a-longer-name.txt", d);
    snprintf(sub, sizeof sub, "%s/sub", d);
    snprintf(ln, sizeof ln, "%s/sym", d);
    snprintf(hl, sizeof hl, "%s/hard", d);
    int w = open(f, O_CREAT | O_WRONLY, 0644);
    write(w, "x", 1);
    write(w, "y", 1);
    close(w);
    int n;
    CHECK(ioctl(fd, FIONREAD, &n) == 0 && n > 0, "FIONREAD: bytes queued");
    dump(fd, "create, two writes (merged), close", wd, -1);
    int wf = inotify_add_watch(fd, f, IN_ALL_EVENTS & ~(IN_OPEN | IN_ACCESS));
    CHECK(wf >= 1 && wf != wd, "watch the file too");
    chmod(f, 0600);
    int r = open(f, O_RDONLY);
    close(r);
    w = open(f, O_WRONLY);
    ftruncate(w, 0);
    close(w);
    dump(fd, "chmod, open/close read-only, ftruncate, close", wd, wf);
    rename(f, g);
    mkdir(sub, 0755);
    symlink("a.txt", ln);
    link(g, hl);
    dump(fd, "rename, mkdir, symlink, link", wd, wf);
    char buf[4096];
    evlen = read(fd, buf, sizeof buf);
    unlink(hl);
    unlink(g);
    rmdir(sub);
    unlink(ln);
    dump(fd, "unlink the hard link, then the file, rmdir, unlink the symlink", wd, wf);
    CHECK(inotify_rm_watch(fd, wf) < 0 && errno == EINVAL, "rm_watch of a watch already gone: EINVAL");
    /* one-shot */
    int w1 = inotify_add_watch(fd, d, IN_CREATE | IN_ONESHOT);
    CHECK(w1 == wd, "IN_ONESHOT replaces the directory's watch");
    close(open(f, O_CREAT | O_WRONLY, 0644));
    close(open(g, O_CREAT | O_WRONLY, 0644));
    dump(fd, "one-shot: two creates", wd, -1);
    unlink(f);
    unlink(g);
    CHECK(read(fd, buf, sizeof buf) < 0 && errno == EAGAIN, "the one-shot watch is gone");
    /* rm_watch */
    wd = inotify_add_watch(fd, d, IN_CREATE);
    CHECK(inotify_rm_watch(fd, wd) == 0, "rm_watch");
    dump(fd, "after rm_watch", wd, -1);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    CHECK(read(fd, buf, sizeof buf) < 0 && errno == EAGAIN, "no events after rm_watch");
    unlink(f);
    /* a read too small for the first record */
    wd = inotify_add_watch(fd, d, IN_CREATE | IN_DELETE);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    CHECK(read(fd, buf, 20) < 0 && errno == EINVAL, "a read smaller than the record: EINVAL");
    CHECK(read(fd, buf, sizeof buf) == 32, "then the 32-byte record");
    unlink(f);
    /* blocking read and poll, woken by a child */
    int b = inotify_init();
    wd = inotify_add_watch(b, d, IN_CREATE);
    pid_t c = fork();
    if (c == 0) {
        struct timespec ts = {0, 30000000};
        nanosleep(&ts, NULL);
        close(open(f, O_CREAT | O_WRONLY, 0644));
        _exit(0);
    }
    struct pollfd p = {b, POLLIN, 0};
    CHECK(poll(&p, 1, 5000) == 1 && p.revents == POLLIN, "poll wakes at another process's create");
    CHECK(read(b, buf, sizeof buf) == 32, "blocking read: one record");
    int st;
    waitpid(c, &st, 0);
    close(b);
    unlink(f);
    rmdir(d);
    dump(fd, "the watched directory removed", wd, -1);
    close(fd);
}

#define OAC (IN_OPEN | IN_ACCESS | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)

static void open_access(const char *where, const char *label) {
    SAY("-- open and access in %s\n", label);
    char d[128], f[160];
    snprintf(d, sizeof d, "%s/oa", where);
    mkdir(d, 0755);
    snprintf(f, sizeof f, "%s/f", d);
    int w = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(write(w, "hello", 5) == 5, "write the file");
    close(w);
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, d, OAC);
    int wf = inotify_add_watch(fd, f, OAC);
    CHECK(wd >= 1 && wf >= 1, "watch the directory and the file");
    char buf[16];
    int r = open(f, O_RDONLY);
    CHECK(read(r, buf, 2) == 2, "read 2");
    CHECK(read(r, buf, sizeof buf) == 3, "read the rest");
    CHECK(read(r, buf, sizeof buf) == 0, "read at the end");
    dump(fd, "open, two reads, a read at the end", wd, wf);
    CHECK(pread(r, buf, 1, 0) == 1, "pread");
    close(r);
    dump(fd, "pread, close", wd, wf);
    r = open(f, O_RDWR);
    close(r);
    r = open(f, O_PATH);
    close(r);
    dump(fd, "open O_RDWR and close, open O_PATH and close", wd, wf);
    DIR *dir = opendir(d);
    int entries = 0;
    while (readdir(dir)) entries++;
    closedir(dir);
    CHECK(entries == 3, "readdir: 3 entries");
    dump(fd, "opendir, readdir to the end, closedir", wd, wf);
    int e = open(f, O_RDONLY | O_DIRECTORY);
    CHECK(e < 0 && errno == ENOTDIR, "O_DIRECTORY on a file: ENOTDIR");
    CHECK(read(fd, buf, sizeof buf) < 0 && errno == EAGAIN, "a failed open: no event");
    close(fd);
    unlink(f);
    rmdir(d);
}

static void unmount_events(void) {
    SAY("-- unmount\n");
    const char *m = "/tmp/inotify-um";
    mkdir(m, 0755);
    if (mount("tmpfs", m, "tmpfs", 0, NULL) != 0) {
        SAY("(no tmpfs mount: %s)\n", strerror(errno));
        rmdir(m);
        return;
    }
    close(open("/tmp/inotify-um/f", O_CREAT | O_WRONLY, 0644));
    int a = inotify_init1(IN_NONBLOCK), b = inotify_init1(IN_NONBLOCK), c = inotify_init1(IN_NONBLOCK);
    int wa = inotify_add_watch(a, m, IN_CREATE);
    int wb = inotify_add_watch(b, "/tmp/inotify-um/f", IN_ATTRIB);
    int wc = inotify_add_watch(c, "/tmp", IN_DELETE);
    CHECK(wa >= 1 && wb >= 1 && wc >= 1, "watch the root, a file in it, and /tmp");
    CHECK(umount(m) == 0, "umount with watches on its inodes");
    dump(a, "the watch on the unmounted root", wa, -1);
    dump(b, "the watch on a file of it", -1, wb);
    dump(c, "the watch on the directory above", wc, -1);
    CHECK(inotify_rm_watch(a, wa) < 0 && errno == EINVAL, "rm_watch after the unmount: EINVAL");
    close(a);
    close(b);
    close(c);
    rmdir(m);
}

/* execve opens and reads the program: IN_OPEN, then IN_ACCESS, on a
 * watch of the program file (Linux reads it more than once: only the
 * kinds and their order are compared). */
static void exec_events(const char *self) {
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(fd, self, IN_OPEN | IN_ACCESS);
    CHECK(wd >= 0, "watch the program file");
    pid_t c = fork();
    if (c == 0) {
        execl(self, self, "exec-child", (char *)NULL);
        _exit(9);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the program ran");
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(fd, buf, sizeof buf);
    int opened = 0, accessed_after = 0, first_open = -1, i = 0;
    for (char *p = buf; n > 0 && p < buf + n; i++) {
        struct inotify_event *e = (void *)p;
        if ((e->mask & IN_OPEN) && !opened) {
            opened = 1;
            first_open = i;
        }
        if ((e->mask & IN_ACCESS) && opened)
            accessed_after = 1;
        p += sizeof *e + e->len;
    }
    CHECK(opened && first_open == 0, "execve: IN_OPEN on the program first");
    CHECK(accessed_after, "then IN_ACCESS (the kernel reads it)");
    close(fd);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
        return 0;
    t_begin("t_inotify");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    in_dir(t_dir, "the scratch directory");
    mkdir("/tmp/inotify-tmpfs", 0755);
    if (mount("tmpfs", "/tmp/inotify-tmpfs", "tmpfs", 0, NULL) == 0) {
        in_dir("/tmp/inotify-tmpfs", "a tmpfs");
        umount("/tmp/inotify-tmpfs");
    } else {
        SAY("(no tmpfs mount: %s)\n", strerror(errno));
        in_dir("/tmp/inotify-tmpfs", "a tmpfs");
    }
    rmdir("/tmp/inotify-tmpfs");
    open_access(t_dir, "the scratch directory");
    open_access("/tmp", "/tmp");
    unmount_events();
    {
        char self[256] = {0};
        if (readlink("/proc/self/exe", self, sizeof self - 1) > 0)
            exec_events(self);
    }

    int fd = inotify_init1(0);
    CHECK(inotify_init1(0x10) < 0 && errno == EINVAL, "inotify_init1 unknown flags: EINVAL");
    CHECK(inotify_add_watch(fd, "/", 0) < 0 && errno == EINVAL, "mask 0: EINVAL");
    CHECK(inotify_add_watch(fd, "/nonexistent", IN_CREATE) < 0 && errno == ENOENT, "no such path: ENOENT");
    CHECK(inotify_add_watch(fd, "/proc/self/status", IN_CREATE | IN_ONLYDIR) < 0 && errno == ENOTDIR, "IN_ONLYDIR on a file: ENOTDIR");
    int wd = inotify_add_watch(fd, "/", IN_CREATE);
    CHECK(inotify_add_watch(fd, "/", IN_DELETE | IN_MASK_CREATE) < 0 && errno == EEXIST, "IN_MASK_CREATE on a watched inode: EEXIST");
    CHECK(inotify_rm_watch(fd, wd + 100) < 0 && errno == EINVAL, "rm_watch of an unknown wd: EINVAL");
    CHECK(inotify_add_watch(0, "/", IN_CREATE) < 0 && errno == EINVAL, "add_watch on a non-inotify fd: EINVAL");
    CHECK(inotify_add_watch(99, "/", IN_CREATE) < 0 && errno == EBADF, "add_watch on a closed fd: EBADF");
    CHECK(inotify_add_watch(fd, "/tmp", IN_CREATE | IN_ISDIR) >= 0, "IN_CREATE|IN_ISDIR (libmount's mask) is taken");
    CHECK(inotify_add_watch(fd, "/tmp", IN_CREATE | 0x08000000) < 0 && errno == EINVAL, "an unknown mask bit: EINVAL");
    CHECK(inotify_add_watch(fd, "/tmp", 0x08000000) < 0 && errno == EINVAL, "only an unknown bit: EINVAL");
    CHECK(inotify_add_watch(fd, (char *)8, IN_CREATE) < 0 && errno == EFAULT, "a bad path address: EFAULT");
    char link[64] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && strcmp(link, "anon_inode:inotify") == 0, "/proc/self/fd link: %s", link);
    close(fd);
    return t_end();
}
