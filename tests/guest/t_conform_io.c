/* Guest test: calls that install several fds at once fail whole at the fd
 * limit (EMFILE or EFAULT with nothing installed), O_APPEND writes always
 * go to the end (pwrite's offset is ignored, as Linux does), and the small
 * errno answers of file calls. */
#include "t_common.h"
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* How many fds are open below `limit`. */
static int open_count(int limit) {
    int n = 0;
    for (int fd = 0; fd < limit; fd++)
        if (fcntl(fd, F_GETFD) >= 0) n++;
    return n;
}

/* Fills the fd table up to `limit` and leaves `free_slots` slots open. */
static void fill_leaving(int limit, int free_slots) {
    int fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0)
        ;
    for (int i = 0; i < free_slots; i++) close(limit - 1 - i);
}

/* fds open when the test began: never closed by it. */
static char inherited[16];

static void close_from(int first, int limit) {
    for (int fd = first; fd < limit; fd++)
        if (!inherited[fd]) close(fd);
}

static void multi_fd_at_limit(void) {
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl.rlim_cur = 16;
    rl.rlim_max = old.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "RLIMIT_NOFILE lowered to 16");
    int base = open_count(16);
    for (int fd = 0; fd < 16; fd++) inherited[fd] = fcntl(fd, F_GETFD) >= 0;
    int p[2] = {-7, -7};

    fill_leaving(16, 1);
    CHECK(open_count(16) == 15, "one free slot left");
    CHECK(pipe(p) < 0 && errno == EMFILE, "pipe with one free slot: EMFILE");
    CHECK(p[0] == -7 && p[1] == -7, "pipe left the array alone");
    CHECK(open_count(16) == 15, "pipe installed nothing");
    CHECK(pipe2(p, O_CLOEXEC) < 0 && errno == EMFILE, "pipe2 with one free slot: EMFILE");
    CHECK(open_count(16) == 15, "pipe2 installed nothing");
    int sv[2] = {-7, -7};
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 && errno == EMFILE, "socketpair with one free slot: EMFILE");
    CHECK(sv[0] == -7 && sv[1] == -7 && open_count(16) == 15, "socketpair installed nothing, left the array alone");
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd == 15, "the free slot is still free (fd 15)");
    close(fd);

    close(14);
    CHECK(pipe(p) == 0 && p[0] == 14 && p[1] == 15, "two free slots: pipe gets fds 14 and 15");
    CHECK(write(p[1], "ok", 2) == 2, "the pipe works");
    char b[4] = {0};
    CHECK(read(p[0], b, sizeof b) == 2 && !memcmp(b, "ok", 2), "and reads back");
    close(p[0]);
    close(p[1]);

    CHECK(syscall(SYS_pipe2, (void *)8, 0) < 0 && errno == EFAULT, "pipe2 to a bad address: EFAULT");
    CHECK(open_count(16) == 14, "EFAULT installed nothing");
    close_from(3, 16);
    CHECK(open_count(16) == base, "back to the fds we started with");

    /* SCM_RIGHTS with three fds and one free slot: one installed,
     * MSG_CTRUNC, the others closed (Linux's scm_detach_fds). */
    int dp[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, dp) == 0, "a datagram pair");
    int three[3] = {0, 1, 2};
    char ch = 'x';
    struct iovec io = {&ch, 1};
    union {
        char b[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr h;
    } cs, cr;
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cs.b, .msg_controllen = sizeof cs.b};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof three);
    memcpy(CMSG_DATA(h), three, sizeof three);
    CHECK(sendmsg(dp[0], &m, 0) == 1, "three fds sent");
    fill_leaving(16, 1);
    memset(&cr, 0, sizeof cr);
    struct msghdr mr = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cr.b, .msg_controllen = sizeof cr.b};
    ssize_t got = recvmsg(dp[1], &mr, 0);
    struct cmsghdr *g = CMSG_FIRSTHDR(&mr);
    int nfds = g ? (int)((g->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : -1;
    CHECK(got == 1 && (mr.msg_flags & MSG_CTRUNC) && nfds == 1 && open_count(16) == 16,
          "recvmsg of three fds with one free slot: one installed, MSG_CTRUNC");
    close_from(3, 16);
    CHECK(open_count(16) == base, "back to the fds we started with");

    /* at the limit with no free slot at all */
    fill_leaving(16, 0);
    CHECK(pipe(p) < 0 && errno == EMFILE, "no free slot: EMFILE");
    close_from(3, 16);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "limit restored");
}

static void append_writes(void) {
    int fd = open("append", O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
    CHECK(fd >= 0, "open O_APPEND");
    CHECK(write(fd, "abc", 3) == 3, "write abc");
    CHECK(pwrite(fd, "X", 1, 0) == 1, "pwrite X at offset 0");
    char b[16] = {0};
    CHECK(pread(fd, b, sizeof b - 1, 0) == 4 && !strcmp(b, "abcX"), "O_APPEND: pwrite appended (abcX)");
    CHECK(lseek(fd, 0, SEEK_CUR) == 3, "pwrite left the file offset alone");
    CHECK(lseek(fd, 1, SEEK_SET) == 1 && write(fd, "Y", 1) == 1, "write after a seek to 1");
    memset(b, 0, sizeof b);
    CHECK(pread(fd, b, sizeof b - 1, 0) == 5 && !strcmp(b, "abcXY"), "O_APPEND: write appended (abcXY)");
    CHECK(lseek(fd, 0, SEEK_CUR) == 5, "write moved the offset to the end");
    struct iovec iov[2] = {{"1", 1}, {"23", 2}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && writev(fd, iov, 2) == 3, "writev after a seek to 0");
    memset(b, 0, sizeof b);
    CHECK(pread(fd, b, sizeof b - 1, 0) == 8 && !strcmp(b, "abcXY123"), "O_APPEND: writev appended");
    CHECK(fcntl(fd, F_SETFL, 0) == 0 && pwrite(fd, "Z", 1, 0) == 1, "O_APPEND cleared by F_SETFL, pwrite at 0");
    memset(b, 0, sizeof b);
    CHECK(pread(fd, b, sizeof b - 1, 0) == 8 && !strcmp(b, "Zbc" "XY123"), "without O_APPEND pwrite overwrites");
    close(fd);
    unlink("append");
}

static void file_errnos(void) {
    char b[4];
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "data", 4) == 4, "a file");
    close(fd);
    int pfd = open("f", O_PATH);
    CHECK(pfd >= 0, "open O_PATH");
    CHECK(read(pfd, b, 1) < 0 && errno == EBADF, "read on an O_PATH fd: EBADF");
    CHECK(write(pfd, "x", 1) < 0 && errno == EBADF, "write on an O_PATH fd: EBADF");
    CHECK(pread(pfd, b, 1, 0) < 0 && errno == EBADF, "pread on an O_PATH fd: EBADF");
    CHECK(fchmod(pfd, 0600) < 0 && errno == EBADF, "fchmod on an O_PATH fd: EBADF");
    CHECK(fchown(pfd, 0, 0) < 0 && errno == EBADF, "fchown on an O_PATH fd: EBADF");
    CHECK(ftruncate(pfd, 0) < 0 && errno == EBADF, "ftruncate on an O_PATH fd: EBADF");
    struct stat st;
    CHECK(fstat(pfd, &st) == 0 && st.st_size == 4 && (st.st_mode & 07777) == 0644, "fstat on an O_PATH fd works, mode unchanged");
    close(pfd);
    int rw = open("f", O_RDWR | O_PATH);
    CHECK(rw >= 0 && write(rw, "x", 1) < 0 && errno == EBADF, "O_RDWR|O_PATH still refuses write");
    close(rw);

    int d = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(pread(d, b, 1, 0) < 0 && errno == EISDIR, "pread on a directory: EISDIR");
    CHECK(read(d, b, 1) < 0 && errno == EISDIR, "read on a directory: EISDIR");
    CHECK(pwrite(d, b, 1, 0) < 0 && errno == EBADF, "pwrite on a read-only directory fd: EBADF");
    fd = open("f", O_RDONLY);
    CHECK(fchmodat(fd, "", 0600, 0) < 0 && errno == ENOENT, "fchmodat(file fd, \"\"): ENOENT");
    CHECK(fchmodat(d, "", 0600, 0) < 0 && errno == ENOENT, "fchmodat(dir fd, \"\"): ENOENT");
    CHECK(fchownat(d, "f", 0, 0, 0x4) < 0 && errno == EINVAL, "fchownat with an unknown flag: EINVAL");
    CHECK(fchownat(d, "f", 0, 0, AT_SYMLINK_NOFOLLOW) == 0, "fchownat AT_SYMLINK_NOFOLLOW");
    CHECK(fchownat(fd, "", 0, 0, AT_EMPTY_PATH) == 0, "fchownat(fd, \"\", AT_EMPTY_PATH)");
    CHECK(fchownat(fd, "", 0, 0, 0) < 0 && errno == ENOENT, "fchownat(fd, \"\") without AT_EMPTY_PATH: ENOENT");
    close(fd);
    close(d);

    CHECK(mkdir("sub", 0755) == 0 && chdir("sub") == 0, "into a subdirectory");
    CHECK(rmdir(".") < 0 && errno == EINVAL, "rmdir(\".\"): EINVAL");
    CHECK(rmdir("..") < 0 && errno == ENOTEMPTY, "rmdir(\"..\"): ENOTEMPTY");
    CHECK(rmdir("../sub/.") < 0 && errno == EINVAL, "rmdir(\"../sub/.\"): EINVAL");
    CHECK(chdir("..") == 0 && rmdir("sub") == 0, "out and removed");

    CHECK(access("f", R_OK | W_OK) == 0, "access R_OK|W_OK");
    CHECK(access("f", 8) < 0 && errno == EINVAL, "access with mode 8: EINVAL");
    CHECK(access("f", -1) < 0 && errno == EINVAL, "access with mode -1: EINVAL");
    CHECK(faccessat(AT_FDCWD, "f", 0x100, 0) < 0 && errno == EINVAL, "faccessat with mode 0x100: EINVAL");
    unlink("f");
}

int main(void) {
    t_begin("t_conform_io");
    multi_fd_at_limit();
    append_writes();
    file_errnos();
    return t_end();
}
