/* chroot(2): Linux's checks in its order — the path first (ENOENT,
 * ENOTDIR, EFAULT, ELOOP), then search permission on it (EACCES), then
 * the privilege (EPERM) — so uid 1000 gets ENOENT, not EPERM, for a
 * missing path. Then a real chroot into a small tree, in children (the
 * parent keeps the real root to clean up): absolute paths, absolute and
 * relative symlinks, `..` at the root, *at calls from a dirfd inside,
 * getcwd with the cwd outside the root ("(unreachable)"), /proc/self/root
 * and /proc/self/cwd read through a /proc fd kept from before (the jail
 * has no /proc), /proc/<pid>/root from outside, fork inheritance, exec of
 * a static program and a `#!` script copied into the tree, a unix socket
 * bound in the jail, a mount in the jail, no ancestor permission checks
 * above the root, and the classic escape through a directory fd opened
 * before chroot (Linux allows it: `..` stops only at the root itself). */
#include "t_common.h"
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

static int proc_fd = -1;

/* The first line of `path`, or "" when it cannot be read. */
static const char *slurp_at(int dirfd, const char *path) {
    static char buf[128];
    buf[0] = 0;
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) return buf;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    return buf;
}

static const char *slurp(const char *path) { return slurp_at(AT_FDCWD, path); }

static const char *link_at(int dirfd, const char *path) {
    static char buf[256];
    ssize_t n = readlinkat(dirfd, path, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? buf : "";
}

/* The raw getcwd syscall's text (glibc's getcwd refuses "(unreachable)"). */
static const char *raw_cwd(void) {
    static char buf[256];
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    return n > 0 ? buf : "";
}

static int same_file(const char *a, const struct stat *b) {
    struct stat st;
    return stat(a, &st) == 0 && st.st_ino == b->st_ino && st.st_dev == b->st_dev;
}

/* Copy this program to `to` (mode 0755). */
static int copy_self(const char *to) {
    int in = open("/proc/self/exe", O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char buf[65536];
    ssize_t n;
    int ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, n) == n;
    close(in);
    close(out);
    return ok;
}

/* Run as /bin/t inside the jail (argv[1] "inside" or, through the
 * script /bin/s, "script"). */
static int inside(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fails = 0;
#define IN_CHECK(c, what)                                                   \
    do {                                                                     \
        int ok_ = (c);                                                       \
        printf("%s: %s: %s\n", argv[1], what, ok_ ? "ok" : "FAIL");        \
        fails += !ok_;                                                       \
    } while (0)
    IN_CHECK(strcmp(slurp("/etc/hello"), "inside") == 0, "/etc/hello is the jail's");
    if (strcmp(argv[1], "script") == 0)
        IN_CHECK(argc == 3 && strcmp(argv[2], "/bin/s") == 0,
                 "the interpreter gets the script's path");
    /* The /proc fd survives exec (not close-on-exec): fd 9. */
    IN_CHECK(strcmp(link_at(9, "self/exe"), "/bin/t") == 0, "/proc/self/exe is /bin/t");
    IN_CHECK(strcmp(link_at(9, "self/root"), "/") == 0, "/proc/self/root is /");
    return fails ? 1 : 0;
}

/* The lines of /proc/self/mountinfo (read through the kept /proc fd)
 * when the only one has mount point /mnt; -1 otherwise. */
static int mounts_seen(void) {
    static char buf[8192];
    int fd = openat(proc_fd, "self/mountinfo", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    int lines = 0, mnt = 0;
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
        char point[256];
        lines++;
        if (sscanf(l, "%*s %*s %*s %*s %255s", point) == 1 && strcmp(point, "/mnt") == 0) mnt++;
    }
    return lines == 1 && mnt == 1 ? 1 : -1;
}

/* In a child: chroot into jail and check what is seen from there. */
static void in_jail(const struct stat *jail, int ready_w, int go_r) {
    int out = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(out >= 0, "a directory fd from before");
    CHECK(chroot("jail") == 0, "chroot into the tree");
    char b;
    if (write(ready_w, "r", 1) != 1 || read(go_r, &b, 1) != 1) _exit(8);

    CHECK(same_file("/", jail), "/ is the tree");
    CHECK(same_file("/..", jail) && same_file("/../../..", jail), "/.. stays at the root");
    CHECK(strcmp(slurp("/etc/hello"), "inside") == 0, "an absolute path is the tree's");
    CHECK(strcmp(slurp("/../../etc/hello"), "inside") == 0, "/../../etc/hello is the tree's");
    errno = 0;
    CHECK(access("/../outside", F_OK) == -1 && errno == ENOENT,
          "the file beside the tree is not reachable by ..");
    CHECK(strcmp(link_at(AT_FDCWD, "/abs"), "/etc/hello") == 0, "readlink shows the link's text");
    CHECK(strcmp(slurp("/abs"), "inside") == 0, "an absolute symlink resolves in the tree");
    CHECK(strcmp(slurp("/sub/up"), "inside") == 0, "a relative symlink with .. stays in the tree");
    int sub = open("/sub/deep", O_RDONLY | O_DIRECTORY);
    CHECK(sub >= 0, "open a directory in the tree");
    CHECK(strcmp(slurp_at(sub, "../../../../etc/hello"), "inside") == 0,
          "openat with .. past the root stays in the tree");
    CHECK(strcmp(slurp_at(sub, "/etc/hello"), "inside") == 0, "openat with an absolute path");
    CHECK(mkdirat(sub, "made", 0755) == 0 && access("/sub/deep/made", F_OK) == 0,
          "mkdirat from a dirfd in the tree");
    close(sub);

    /* The cwd is still outside the new root. */
    const char *cwd = raw_cwd();
    CHECK(strncmp(cwd, "(unreachable)", 13) == 0 && strcmp(cwd + 13, t_dir) == 0,
          "getcwd outside the root is (unreachable) and the real path");
    char buf[256];
    errno = 0;
    CHECK(getcwd(buf, sizeof buf) == NULL && errno == ENOENT, "glibc's getcwd says ENOENT");
    CHECK(strcmp(link_at(proc_fd, "self/cwd"), t_dir) == 0, "/proc/self/cwd shows the real path");
    CHECK(strcmp(link_at(proc_fd, "self/root"), "/") == 0, "/proc/self/root is /");
    CHECK(chdir("/sub") == 0 && strcmp(raw_cwd(), "/sub") == 0, "getcwd in the tree");
    CHECK(strcmp(link_at(proc_fd, "self/cwd"), "/sub") == 0, "/proc/self/cwd in the tree");
    CHECK(chdir("..") == 0 && chdir("..") == 0 && strcmp(raw_cwd(), "/") == 0,
          "chdir .. at the root stays");
    int sfd = open("/etc/hello", O_RDONLY);
    char fdl[32];
    snprintf(fdl, sizeof fdl, "self/fd/%d", sfd);
    CHECK(strcmp(link_at(proc_fd, fdl), "/etc/hello") == 0, "/proc/self/fd/N is seen from the root");
    close(sfd);

    /* A unix socket bound in the tree. */
    int u = socket(AF_UNIX, SOCK_DGRAM, 0), c = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, "/u.sock");
    CHECK(bind(u, (struct sockaddr *)&a, sizeof a) == 0, "bind a unix socket at /u.sock");
    struct stat st;
    CHECK(stat("/u.sock", &st) == 0 && S_ISSOCK(st.st_mode), "/u.sock is a socket");
    CHECK(sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a) == 1 && recv(u, &b, 1, 0) == 1,
          "send to /u.sock reaches it");
    close(u);
    close(c);

    /* A mount in the tree. */
    struct stat before, after;
    CHECK(stat("/mnt", &before) == 0 && mount("none", "/mnt", "tmpfs", 0, NULL) == 0,
          "mount tmpfs on /mnt");
    CHECK(stat("/mnt", &after) == 0 && after.st_dev != before.st_dev, "/mnt is the new mount");
    CHECK(close(open("/mnt/f", O_CREAT | O_WRONLY, 0644)) == 0, "a file on it");
    CHECK(mounts_seen() == 1, "mountinfo seen from the tree: only /mnt (the rest is outside)");
    CHECK(umount("/mnt") == 0 && access("/mnt/f", F_OK) != 0, "umount /mnt");

    /* Fork: the child has the same root. */
    pid_t p = fork();
    if (p == 0) {
        int ok = strcmp(slurp("/etc/hello"), "inside") == 0 &&
                 strcmp(link_at(proc_fd, "self/root"), "/") == 0 && same_file("/..", jail);
        _exit(ok ? 0 : 1);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "a forked child has the same root");

    /* Exec of a static program and a script in the tree. */
    if (dup2(proc_fd, 9) != 9) _exit(8);
    p = fork();
    if (p == 0) {
        execl("/bin/t", "t", "inside", (char *)NULL);
        _exit(127);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "exec /bin/t in the tree");
    p = fork();
    if (p == 0) {
        execl("/bin/s", "s", (char *)NULL);
        _exit(127);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "exec the #! script /bin/s in the tree");
    p = fork();
    if (p == 0) {
        int jfd = open("/bin", O_RDONLY | O_DIRECTORY);
        char *args[] = {"t", "inside", NULL}, *env[] = {NULL};
        syscall(SYS_execveat, jfd, "t", args, env, 0);
        _exit(127);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "execveat from a dirfd in the tree");

    /* The classic escape: the fd from before leads out, .. is free there. */
    CHECK(fchdir(out) == 0, "fchdir to the directory from before");
    CHECK(strncmp(raw_cwd(), "(unreachable)", 13) == 0, "it is unreachable from the root");
    CHECK(strcmp(slurp("outside"), "outside") == 0, "a file beside the tree, relative to it");
    for (int i = 0; i < 64; i++)
        if (chdir("..") != 0) _exit(8);
    CHECK(strcmp(raw_cwd(), "(unreachable)/") == 0, "chdir .. leads to the real root");
    CHECK(chroot(".") == 0, "chroot . there");
    CHECK(strcmp(raw_cwd(), "/") == 0 && strcmp(link_at(proc_fd, "self/root"), "/") == 0,
          "out: the real root again");
    snprintf(buf, sizeof buf, "%s/outside", t_dir);
    CHECK(strcmp(slurp(buf), "outside") == 0, "out: the file beside the tree by its real path");
}

int main(int argc, char **argv) {
    if (argc > 1) return inside(argc, argv);
    t_begin("t_chroot");
    CHECK(mkdir("dir", 0755) == 0 && mkdir("dir/shut", 0700) == 0, "make directories");
    CHECK(close(open("file", O_CREAT | O_WRONLY, 0644)) == 0, "make a file");
    CHECK(symlink("loop", "loop") == 0, "make a symlink loop");
    errno = 0;
    CHECK(chroot("missing") == -1 && errno == ENOENT, "a missing path is ENOENT");
    errno = 0;
    CHECK(chroot("file") == -1 && errno == ENOTDIR, "a file is ENOTDIR");
    errno = 0;
    CHECK(chroot("file/x") == -1 && errno == ENOTDIR, "a path through a file is ENOTDIR");
    errno = 0;
    CHECK(chroot("loop") == -1 && errno == ELOOP, "a symlink loop is ELOOP");
    errno = 0;
    CHECK(chroot((const char *)8) == -1 && errno == EFAULT, "a bad address is EFAULT");
    errno = 0;
    CHECK(chroot("") == -1 && errno == ENOENT, "an empty path is ENOENT");
    CHECK(chroot("/") == 0, "root may chroot to /");

    /* The tree. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    proc_fd = open("/proc", O_RDONLY | O_DIRECTORY);
    CHECK(proc_fd >= 0, "open /proc");
    CHECK(mkdir("jail", 0755) == 0 && mkdir("jail/etc", 0755) == 0 &&
              mkdir("jail/bin", 0755) == 0 && mkdir("jail/sub", 0755) == 0 &&
              mkdir("jail/sub/deep", 0755) == 0 && mkdir("jail/mnt", 0755) == 0,
          "make the tree");
    int fd = open("jail/etc/hello", O_CREAT | O_WRONLY, 0644);
    CHECK(write(fd, "inside\n", 7) == 7 && close(fd) == 0, "jail/etc/hello");
    fd = open("outside", O_CREAT | O_WRONLY, 0644);
    CHECK(write(fd, "outside\n", 8) == 8 && close(fd) == 0, "a file beside the tree");
    CHECK(symlink("/etc/hello", "jail/abs") == 0 && symlink("../../../../etc/hello", "jail/sub/up") == 0,
          "an absolute and a relative symlink");
    CHECK(copy_self("jail/bin/t"), "copy this program to jail/bin/t");
    fd = open("jail/bin/s", O_CREAT | O_WRONLY, 0755);
    CHECK(write(fd, "#!/bin/t script\n", 16) == 16 && close(fd) == 0, "a script jail/bin/s");
    struct stat jail;
    CHECK(stat("jail", &jail) == 0, "stat the tree");

    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0, "pipes");
    pid_t p = fork();
    if (p == 0) {
        int before = t_failures;
        in_jail(&jail, ready[1], go[0]);
        _exit(t_failures > before ? 1 : 0);
    }
    char b;
    CHECK(read(ready[0], &b, 1) == 1, "the child is in the tree");
    char path[64], want[128];
    snprintf(path, sizeof path, "%d/root", p);
    snprintf(want, sizeof want, "%s/jail", t_dir);
    CHECK(strcmp(link_at(proc_fd, path), want) == 0, "/proc/<pid>/root from outside is the real path");
    snprintf(path, sizeof path, "%d/root/etc/hello", p);
    CHECK(strcmp(slurp_at(proc_fd, path), "inside") == 0, "a path through /proc/<pid>/root");
    /* Not a CHECK: its line would race with the child's. */
    if (write(go[1], "g", 1) != 1) t_failures++;
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "the child in the tree exits 0");
    struct stat st;
    CHECK(stat("jail/u.sock", &st) == 0 && S_ISSOCK(st.st_mode), "the socket is in the tree");
    CHECK(access("jail/sub/deep/made", F_OK) == 0, "the directory made is in the tree");
    CHECK(stat("jail/mnt", &st) == 0 && st.st_dev == jail.st_dev, "the mount in the tree is gone");

    /* No search permission is needed above the root (Linux checks none). */
    CHECK(mkdir("locked", 0700) == 0 && mkdir("locked/in", 0755) == 0, "a tree under a 0700 dir");
    fd = open("locked/in/f", O_CREAT | O_WRONLY, 0644);
    CHECK(write(fd, "f\n", 2) == 2 && close(fd) == 0, "a file in it");
    p = fork();
    if (p == 0) {
        if (chroot("locked/in") != 0 || chdir("/") != 0 || setuid(1000) != 0) _exit(9);
        _exit(strcmp(slurp("/f"), "f") == 0 ? 0 : 1);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "uid 1000 in a root under a 0700 dir reads /f");

    CHECK(chmod(".", 0755) == 0, "the scratch dir is searchable");
    p = fork();
    if (p == 0) {
        int before = t_failures;
        if (setuid(1000) != 0) _exit(9);
        errno = 0;
        CHECK(chroot("missing") == -1 && errno == ENOENT, "uid 1000: a missing path is ENOENT");
        errno = 0;
        CHECK(chroot("dir/shut") == -1 && errno == EACCES,
              "uid 1000: a directory it may not search is EACCES");
        errno = 0;
        CHECK(chroot("dir") == -1 && errno == EPERM, "uid 1000: a directory is EPERM");
        _exit(t_failures > before ? 1 : 0);
    }
    CHECK(strcmp(t_wait(p), "exited 0") == 0, "the uid 1000 child exits 0");
    return t_end();
}
