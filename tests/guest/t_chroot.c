/* chroot(2)'s checks in Linux's order: the path first (ENOENT, ENOTDIR,
 * EFAULT, ELOOP), then search permission on it (EACCES), then the
 * privilege (EPERM) — so uid 1000 gets ENOENT, not EPERM, for a missing
 * path. chroot("/") as root succeeds (a real chroot elsewhere is not
 * compared: umlrun keeps one root, see `umlrun --syscalls`). */
#include "t_common.h"

int main(void) {
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
    CHECK(chmod(".", 0755) == 0, "the scratch dir is searchable");
    pid_t p = fork();
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
