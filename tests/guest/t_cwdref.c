/* Guest test: the cwd and open directories are references, not path
 * strings: renaming or removing them, fchdir, openat relative to a moved
 * directory, getcwd and /proc/self/cwd behave as on Linux. */
#include "t_common.h"
#include <dirent.h>
#include <limits.h>
#include <sys/mount.h>

static int ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int main(void) {
    t_begin("t_cwdref");
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    char top[256], buf[PATH_MAX], p1[PATH_MAX], p2[PATH_MAX];
    CHECK(getcwd(top, sizeof top) != NULL, "getcwd");

    /* the cwd is renamed under the process */
    CHECK(mkdir("a", 0755) == 0 && chdir("a") == 0, "mkdir a, chdir a");
    snprintf(p1, sizeof p1, "%s/a", top);
    snprintf(p2, sizeof p2, "%s/b", top);
    CHECK(rename(p1, p2) == 0, "rename the cwd a -> b");
    CHECK(getcwd(buf, sizeof buf) && ends_with(buf, "/b"), "getcwd follows the rename");
    ssize_t n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    if (n >= 0) buf[n] = 0;
    CHECK(n > 0 && ends_with(buf, "/b"), "/proc/self/cwd follows the rename");
    int fd = open("f", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create f relative to the moved cwd");
    close(fd);
    snprintf(p1, sizeof p1, "%s/b/f", top);
    CHECK(exists(p1), "it is in b");
    CHECK(exists("../b/f") && !exists("../a"), "../b/f from the cwd, no ../a");

    /* a moved parent of the cwd */
    CHECK(mkdir("sub", 0755) == 0 && chdir("sub") == 0, "mkdir b/sub, chdir");
    snprintf(p1, sizeof p1, "%s/b", top);
    snprintf(p2, sizeof p2, "%s/c", top);
    CHECK(rename(p1, p2) == 0, "rename the parent b -> c");
    CHECK(getcwd(buf, sizeof buf) && ends_with(buf, "/c/sub"), "getcwd shows c/sub");
    CHECK(exists("../f"), "../f still found");
    CHECK(chdir(top) == 0, "back to the top");

    /* an open directory fd is renamed: openat and fchdir follow */
    CHECK(mkdir("d1", 0755) == 0, "mkdir d1");
    int dfd = open("d1", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0, "open d1");
    CHECK(rename("d1", "d2") == 0, "rename d1 -> d2");
    fd = openat(dfd, "x", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "openat through the old fd");
    close(fd);
    CHECK(exists("d2/x") && !exists("d1"), "x is in d2");
    CHECK(mkdir("d1", 0755) == 0, "a new d1");
    fd = openat(dfd, "y", O_CREAT | O_WRONLY, 0644);
    close(fd);
    CHECK(exists("d2/y") && !exists("d1/y"), "openat still means d2, not the new d1");
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", dfd);
    n = readlink(buf, p1, sizeof p1 - 1);
    if (n >= 0) p1[n] = 0;
    CHECK(n > 0 && ends_with(p1, "/d2"), "/proc/self/fd names d2");
    CHECK(fchdir(dfd) == 0 && getcwd(buf, sizeof buf) && ends_with(buf, "/d2"), "fchdir to it: getcwd is d2");
    CHECK(exists("x") && exists("y"), "x and y in the cwd");
    CHECK(chdir(top) == 0, "back to the top");
    close(dfd);

    /* the cwd is removed */
    CHECK(mkdir("gone", 0755) == 0 && chdir("gone") == 0, "mkdir gone, chdir");
    snprintf(p1, sizeof p1, "%s/gone", top);
    CHECK(rmdir(p1) == 0, "rmdir the cwd");
    errno = 0;
    CHECK(getcwd(buf, sizeof buf) == NULL && errno == ENOENT, "getcwd: ENOENT");
    n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    if (n >= 0) buf[n] = 0;
    CHECK(n > 0 && ends_with(buf, "/gone (deleted)"), "/proc/self/cwd says (deleted)");
    CHECK(open("new", O_CREAT | O_WRONLY, 0644) < 0 && errno == ENOENT, "creating in it: ENOENT");
    CHECK(mkdir(p1, 0755) == 0, "a new directory of the same name");
    CHECK(open("new", O_CREAT | O_WRONLY, 0644) < 0 && errno == ENOENT, "still ENOENT: the cwd is the removed one");
    snprintf(p2, sizeof p2, "%s/gone/new", top);
    CHECK(!exists(p2), "nothing went into the new one");
    CHECK(chdir(top) == 0, "back to the top");
    CHECK(getcwd(buf, sizeof buf) && !strcmp(buf, top), "getcwd is the top again");

    /* an open directory is removed */
    CHECK(mkdir("rm", 0755) == 0, "mkdir rm");
    dfd = open("rm", O_RDONLY | O_DIRECTORY);
    CHECK(rmdir("rm") == 0, "rmdir it while open");
    CHECK(openat(dfd, "z", O_CREAT | O_WRONLY, 0644) < 0 && errno == ENOENT, "openat in it: ENOENT");
    CHECK(mkdir("rm", 0755) == 0, "a new rm");
    CHECK(openat(dfd, "z", O_CREAT | O_WRONLY, 0644) < 0 && errno == ENOENT, "still ENOENT with a new rm there");
    CHECK(!exists("rm/z"), "nothing in the new rm");
    close(dfd);
    return t_end();
}
