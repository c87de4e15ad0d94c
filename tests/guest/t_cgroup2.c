/* cgroup2, compared with native (natively it is the host's own v2
 * hierarchy, mounted a second time here; the test expects to start in its
 * root, as a process on a v1/hybrid host or as init in the guest does):
 * mount it, see the root's files and that init and this process are in
 * the root, make a group, move this process there with "0" in
 * cgroup.procs, see it in /proc/self/cgroup's "0::" line and in
 * cgroup.events, a forked child inherit it, rmdir refused while populated
 * (EBUSY), a controller the hierarchy does not offer refused (ENOENT) and
 * an unknown name or a missing +/- refused (EINVAL), then move back and
 * remove the group. Which controllers are offered is the host's business
 * (this host's v1 mounts hold most of them): only the format is checked. */
#include "t_common.h"
#include <sys/mount.h>
#include <sys/statfs.h>

static int cat(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = '\0';
    return (int)n;
}

/* The whole file (the host's root group can list thousands of pids). */
static char whole[1 << 20];
static int cat_all(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t got = 0;
    ssize_t n;
    while (got < sizeof whole - 1 && (n = read(fd, whole + got, sizeof whole - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    whole[got] = '\0';
    return (int)got;
}

static int put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The "0::" (cgroup2) line of /proc/self/cgroup, without its newline. */
static int v2_path(char *out, size_t len) {
    char b[4096];
    if (cat("/proc/self/cgroup", b, sizeof b) < 0) return -1;
    for (char *p = b; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "0::", 3) != 0) continue;
        size_t n = strcspn(p + 3, "\n");
        if (n >= len) return -1;
        memcpy(out, p + 3, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

/* Whether the space-separated list `text` has `word`. */
static int has_word(const char *text, const char *word) {
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++)
        if ((p == text || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

int main(void) {
    t_begin("t_cgroup2");
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    char buf[4096], me[32];
    snprintf(me, sizeof me, "%d", getpid());
    CHECK(mkdir("cg", 0755) == 0, "a mount point");
    CHECK(mount("none", "cg", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "nsdelegate,memory_recursiveprot") == 0,
          "mount -t cgroup2 (with systemd's options)");
    struct statfs sf;
    CHECK(statfs("cg", &sf) == 0 && sf.f_type == 0x63677270, "statfs says CGROUP2_SUPER_MAGIC");
    CHECK(cat("/proc/filesystems", buf, sizeof buf) > 0 && strstr(buf, "nodev\tcgroup2\n"),
          "/proc/filesystems lists cgroup2");
    CHECK(cat("/proc/self/mounts", buf, sizeof buf) > 0 && strstr(buf, " cgroup2 "),
          "/proc/self/mounts shows the mount");
    int n = cat("cg/cgroup.controllers", buf, sizeof buf);
    CHECK(n > 0 && buf[n - 1] == '\n' && strchr(buf, '\n') == buf + n - 1,
          "cgroup.controllers is one line");
    /* A controller this hierarchy does not offer (the guest offers none;
     * this host's v1 mounts hold memory, pids, io...). */
    static const char *const names[] = {"memory", "pids", "io", "cpu", "cpuset", "rdma", "misc", "hugetlb"};
    const char *absent = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !absent; i++)
        if (!has_word(buf, names[i])) absent = names[i];
    CHECK(absent != NULL, "some controller is not offered");
    char plus[32];
    snprintf(plus, sizeof plus, "+%s", absent ? absent : "memory");
    CHECK(cat_all("cg/cgroup.procs") > 0 && has_line(whole, "1") && has_line(whole, me),
          "init and this process are in the root");
    char path[256];
    CHECK(v2_path(path, sizeof path) == 0 && strcmp(path, "/") == 0, "/proc/self/cgroup: 0::/");
    CHECK(access("cg/cgroup.events", F_OK) == -1 && errno == ENOENT, "the root has no cgroup.events");
    errno = 0;
    CHECK(put("cg/cgroup.subtree_control", plus) == -1 && errno == ENOENT,
          "enabling a controller not offered is ENOENT");
    errno = 0;
    CHECK(put("cg/cgroup.subtree_control", "+nosuchctl") == -1 && errno == EINVAL,
          "an unknown controller is EINVAL");
    errno = 0;
    CHECK(put("cg/cgroup.subtree_control", "memory") == -1 && errno == EINVAL,
          "a name without + or - is EINVAL");
    CHECK(put("cg/cgroup.subtree_control", "\n") == 0, "a write of no controller is accepted");

    CHECK(mkdir("cg/svc", 0755) == 0 && mkdir("cg/svc/inner", 0755) == 0, "mkdir two groups");
    errno = 0;
    CHECK(mkdir("cg/svc", 0755) == -1 && errno == EEXIST, "mkdir again is EEXIST");
    CHECK(cat("cg/svc/cgroup.events", buf, sizeof buf) > 0 && has_line(buf, "populated 0"),
          "a new group is not populated");
    CHECK(put("cg/svc/inner/cgroup.procs", "0") == 0, "move this process with 0");
    CHECK(v2_path(path, sizeof path) == 0 && strcmp(path, "/svc/inner") == 0,
          "/proc/self/cgroup: 0::/svc/inner");
    char line[40];
    snprintf(line, sizeof line, "%s\n", me);
    CHECK(cat("cg/svc/inner/cgroup.procs", buf, sizeof buf) > 0 && strcmp(buf, line) == 0,
          "cgroup.procs lists it alone");
    CHECK(cat_all("cg/cgroup.procs") >= 0 && !has_line(whole, me), "the root no longer does");
    CHECK(cat("cg/svc/cgroup.events", buf, sizeof buf) > 0 && has_line(buf, "populated 1"),
          "the parent is populated (a descendant has a process)");
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0, "two pipes");
    pid_t kid = fork();
    if (kid == 0) {
        char b[256];
        int ok = v2_path(b, sizeof b) == 0 && strcmp(b, "/svc/inner") == 0;
        if (write(up[1], ok ? "y" : "n", 1) != 1) _exit(2);
        char c;
        if (read(down[0], &c, 1) < 0) _exit(3);
        _exit(0);
    }
    char c = 0;
    CHECK(read(up[0], &c, 1) == 1 && c == 'y', "a forked child starts in its parent's group");
    errno = 0;
    CHECK(rmdir("cg/svc/inner") == -1 && errno == EBUSY, "rmdir of a populated group is EBUSY");
    errno = 0;
    CHECK(rmdir("cg/svc") == -1 && errno == EBUSY, "rmdir of a group with a child group is EBUSY");
    CHECK(put("cg/cgroup.procs", me) == 0, "move this process back by its pid");
    CHECK(write(down[1], "x", 1) == 1 && strcmp(t_wait(kid), "exited 0") == 0, "the child exits");
    CHECK(cat("cg/svc/cgroup.events", buf, sizeof buf) > 0 && has_line(buf, "populated 0"),
          "emptied once the child exited");
    errno = 0;
    CHECK(put("cg/cgroup.procs", "999999") == -1 && errno == ESRCH, "an unknown pid is ESRCH");
    CHECK(rmdir("cg/svc/inner") == 0 && rmdir("cg/svc") == 0, "rmdir of empty groups");
    errno = 0;
    CHECK(access("cg/svc", F_OK) == -1 && errno == ENOENT, "gone");
    pid_t u = fork();
    if (u == 0) {
        if (setuid(1000) != 0) _exit(9);
        errno = 0;
        int r = mkdir("cg/mine", 0755);
        _exit(r == -1 && errno == EACCES ? 0 : 1);
    }
    CHECK(strcmp(t_wait(u), "exited 0") == 0, "uid 1000 cannot make a group in root's (EACCES)");
    CHECK(umount("cg") == 0 && rmdir("cg") == 0, "umount");
    return t_end();
}
