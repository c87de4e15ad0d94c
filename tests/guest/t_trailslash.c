/* Guest test: a trailing slash in open's path. With O_CREAT it names a
 * directory open cannot make: EISDIR whatever is there (Linux's
 * open_last_lookups), after the parent was found (ENOENT, ENOTDIR), and
 * nothing is created. Python's shutil.copyfile relies on it (issue 43219:
 * copying to "missing_dir/" must fail, not create a file). */
#include "t_common.h"
#include <sys/stat.h>

static int open_err(const char *p, int flags) {
    int fd = open(p, flags, 0644);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno;
}

int main(void) {
    t_begin("t_trailslash");
    char d[] = "/tmp/t_trailslash.XXXXXX";
    CHECK(mkdtemp(d) != NULL, "a scratch directory");
    char p[256];
    snprintf(p, sizeof p, "%s/file", d);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && close(fd) == 0, "a file");
    snprintf(p, sizeof p, "%s/dir", d);
    CHECK(mkdir(p, 0755) == 0, "a directory");

    struct {
        const char *rel;
        int flags;
        int want;
        const char *what;
    } cases[] = {
        {"missing/", O_CREAT | O_WRONLY, EISDIR, "O_CREAT of a missing name with a slash: EISDIR"},
        {"missing/", O_CREAT | O_EXCL | O_WRONLY, EISDIR, "O_CREAT|O_EXCL likewise: EISDIR"},
        {"file/", O_CREAT | O_WRONLY, EISDIR, "O_CREAT of a file with a slash: EISDIR"},
        {"dir/", O_CREAT | O_WRONLY, EISDIR, "O_CREAT of a directory with a slash: EISDIR"},
        {"dir/", O_CREAT | O_RDONLY, EISDIR, "O_CREAT|O_RDONLY of a directory with a slash: EISDIR"},
        {"nodir/x/", O_CREAT | O_WRONLY, ENOENT, "a missing parent first: ENOENT"},
        {"file/x/", O_CREAT | O_WRONLY, ENOTDIR, "a file as parent first: ENOTDIR"},
        {"file/", O_RDONLY, ENOTDIR, "opening a file with a slash: ENOTDIR"},
        {"missing/", O_RDONLY, ENOENT, "opening a missing name with a slash: ENOENT"},
        {"dir/", O_RDONLY, 0, "opening a directory with a slash: fine"},
        {"dir/", O_WRONLY, EISDIR, "a directory for writing: EISDIR"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", d, cases[i].rel);
        int e = open_err(p, cases[i].flags);
        CHECK(e == cases[i].want, "%s (got %s)", cases[i].what, e ? strerror(e) : "success");
    }
    snprintf(p, sizeof p, "%s/missing", d);
    CHECK(access(p, F_OK) != 0 && errno == ENOENT, "nothing was created");

    snprintf(p, sizeof p, "%s/file", d);
    unlink(p);
    snprintf(p, sizeof p, "%s/dir", d);
    rmdir(p);
    CHECK(rmdir(d) == 0, "clean up");
    return t_end();
}
