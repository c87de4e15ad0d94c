/* fcntl F_SETFL and F_GETFL as Linux's setfl: O_APPEND, O_NONBLOCK and
 * O_NOATIME change (the access mode and creation flags do not); O_NOATIME
 * may be turned on only by the file's owner or root (CAP_FOWNER), else
 * EPERM and the flags stay; an fd that already has it keeps it through
 * any uid; F_GETFL reports it. open(O_NOATIME) follows the same rule. An
 * O_PATH fd answers F_GETFL (with O_PATH) but refuses F_SETFL (EBADF).
 * The flag words F_GETFL returns are printed in octal. */
#include "t_common.h"

#define USER 4242

static int getfl(int fd) { return fcntl(fd, F_GETFL); }

/* As another user (uid USER): the checks on `fd` (root's file) and on a
 * file and a pipe of its own. */
static void as_user(int root_fd, int root_noatime_fd, int root_pipe) {
    pid_t c = fork();
    if (c == 0) {
        if (setgid(USER) != 0 || setuid(USER) != 0) _exit(10);
        errno = 0;
        CHECK(fcntl(root_fd, F_SETFL, O_NOATIME) == -1 && errno == EPERM,
              "user: F_SETFL O_NOATIME on root's file is EPERM");
        CHECK(!(getfl(root_fd) & O_NOATIME), "user: the flag stayed off");
        CHECK(fcntl(root_fd, F_SETFL, O_NONBLOCK | O_NOATIME) == -1 && !(getfl(root_fd) & O_NONBLOCK),
              "user: a refused F_SETFL changes nothing else either");
        CHECK(fcntl(root_fd, F_SETFL, O_APPEND) == 0 && (getfl(root_fd) & O_APPEND),
              "user: O_APPEND on root's file is allowed");
        errno = 0;
        CHECK(open("root.txt", O_RDONLY | O_NOATIME) == -1 && errno == EPERM,
              "user: open O_NOATIME of root's file is EPERM");
        CHECK(fcntl(root_noatime_fd, F_SETFL, O_NOATIME | O_NONBLOCK) == 0 &&
                  (getfl(root_noatime_fd) & (O_NOATIME | O_NONBLOCK)) == (O_NOATIME | O_NONBLOCK),
              "user: an fd that has O_NOATIME keeps it");
        CHECK(fcntl(root_noatime_fd, F_SETFL, 0) == 0 && !(getfl(root_noatime_fd) & O_NOATIME),
              "user: and may clear it");
        errno = 0;
        CHECK(fcntl(root_noatime_fd, F_SETFL, O_NOATIME) == -1 && errno == EPERM,
              "user: but not set it again");
        errno = 0;
        CHECK(fcntl(root_pipe, F_SETFL, O_NOATIME) == -1 && errno == EPERM,
              "user: O_NOATIME on root's pipe is EPERM");

        int fd = open("user.txt", O_RDWR | O_CREAT | O_EXCL, 0600);
        CHECK(fd >= 0, "user: create a file of its own");
        CHECK(fcntl(fd, F_SETFL, O_NOATIME) == 0 && (getfl(fd) & O_NOATIME),
              "user: O_NOATIME on its own file");
        SAY("user: F_GETFL of its own file: %o\n", getfl(fd));
        int ro = open("user.txt", O_RDONLY | O_NOATIME);
        CHECK(ro >= 0 && (getfl(ro) & O_NOATIME), "user: open O_NOATIME of its own file");
        int p[2];
        struct stat st;
        CHECK(pipe(p) == 0 && fstat(p[0], &st) == 0 && st.st_uid == USER && st.st_gid == USER,
              "user: its pipe is its own (fstat)");
        CHECK(fcntl(p[0], F_SETFL, O_NOATIME) == 0 && (getfl(p[0]) & O_NOATIME),
              "user: O_NOATIME on its own pipe");
        unlink("user.txt");
        _exit(t_failures ? 1 : 0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "the user's checks");
}

int main(void) {
    t_begin("t_setfl");
    CHECK(chmod(".", 0777) == 0, "a scratch dir others may use");
    int fd = open("root.txt", O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0, "root creates a file");
    SAY("F_GETFL after open O_RDWR: %o\n", getfl(fd));
    CHECK(fcntl(fd, F_SETFL, O_NOATIME) == 0 && (getfl(fd) & O_NOATIME), "root: F_SETFL O_NOATIME");
    SAY("F_GETFL with O_NOATIME: %o\n", getfl(fd));
    CHECK(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK | O_NOATIME) == 0, "root: three flags at once");
    SAY("F_GETFL with O_APPEND|O_NONBLOCK|O_NOATIME: %o\n", getfl(fd));
    CHECK(fcntl(fd, F_SETFL, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL) == 0, "root: only changeable flags change");
    SAY("F_GETFL after clearing (and asking for others): %o\n", getfl(fd));
    CHECK((getfl(fd) & O_ACCMODE) == O_RDWR, "the access mode stays");

    int ro = open("root.txt", O_RDONLY);
    int noatime = open("root.txt", O_RDONLY | O_NOATIME);
    CHECK(ro >= 0 && noatime >= 0 && (getfl(noatime) & O_NOATIME), "root: open O_NOATIME");
    SAY("F_GETFL after open O_RDONLY|O_NOATIME: %o\n", getfl(noatime));
    int p[2];
    CHECK(pipe(p) == 0, "root: a pipe");
    SAY("F_GETFL of a pipe's read end: %o\n", getfl(p[0]));
    as_user(ro, noatime, p[0]);

    int path = open("root.txt", O_PATH);
    CHECK(path >= 0, "an O_PATH fd");
    SAY("F_GETFL of an O_PATH fd: %o\n", getfl(path));
    errno = 0;
    CHECK(fcntl(path, F_SETFL, O_NOATIME) == -1 && errno == EBADF, "F_SETFL on an O_PATH fd is EBADF");
    errno = 0;
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    CHECK(fcntl(path, F_GETLK, &fl) == -1 && errno == EBADF, "F_GETLK on an O_PATH fd is EBADF");
    CHECK(fcntl(path, F_SETFD, FD_CLOEXEC) == 0 && fcntl(path, F_GETFD) == FD_CLOEXEC,
          "F_SETFD/F_GETFD on an O_PATH fd");
    int d = fcntl(path, F_DUPFD_CLOEXEC, 0);
    CHECK(d >= 0 && (getfl(d) & O_PATH), "F_DUPFD_CLOEXEC of an O_PATH fd");
    errno = 0;
    CHECK(fcntl(-1, F_GETFL) == -1 && errno == EBADF, "F_GETFL of a bad fd is EBADF");
    unlink("root.txt");
    return t_end();
}
