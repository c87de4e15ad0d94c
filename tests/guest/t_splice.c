/* Guest test: splice (file/socket <-> pipe, pipe -> pipe, with and
 * without offset pointers), tee (copy between pipes without consuming)
 * and vmsplice (user memory <-> pipe), with Linux's errors: no pipe
 * end, an offset on a pipe, the same pipe both ways, O_APPEND output,
 * unknown flags, SPLICE_F_NONBLOCK on an empty or full pipe, EOF. */
#include "t_common.h"
#include <sys/socket.h>
#include <sys/uio.h>

static int mkfile(const char *name, const char *data) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", t_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (data) write(fd, data, strlen(data));
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static int drain(int fd, char *buf, int cap) {
    int n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = 0;
    return n;
}

static void check_splice_file(void) {
    int p[2], fd = mkfile("in", "0123456789abcdef");
    char b[64];
    pipe(p);
    loff_t off = 4;
    CHECK(splice(fd, &off, p[1], NULL, 6, 0) == 6, "file -> pipe at an offset: 6 bytes");
    CHECK(off == 10, "the offset pointer moved to 10");
    CHECK(lseek(fd, 0, SEEK_CUR) == 0, "the file position did not move");
    CHECK(drain(p[0], b, sizeof b) == 6 && strcmp(b, "456789") == 0, "the pipe holds 456789");
    CHECK(splice(fd, NULL, p[1], NULL, 3, 0) == 3, "file -> pipe at the file position");
    CHECK(lseek(fd, 0, SEEK_CUR) == 3, "the file position moved to 3");
    CHECK(drain(p[0], b, sizeof b) == 3 && strcmp(b, "012") == 0, "the pipe holds 012");
    off = 16;
    CHECK(splice(fd, &off, p[1], NULL, 10, 0) == 0, "at EOF: 0");
    CHECK(splice(fd, NULL, p[1], NULL, 0, 0) == 0, "length 0: 0");
    off = -1;
    errno = 0;
    CHECK(splice(fd, &off, p[1], NULL, 1, 0) == -1 && errno == EINVAL, "a negative offset: EINVAL");

    int out = mkfile("out", NULL);
    write(p[1], "hello world", 11);
    off = 100;
    CHECK(splice(p[0], NULL, out, &off, 5, 0) == 5 && off == 105, "pipe -> file at offset 100");
    CHECK(lseek(out, 0, SEEK_CUR) == 0, "the output position did not move");
    CHECK(splice(p[0], NULL, out, NULL, 64, 0) == 6, "pipe -> file: the rest (6)");
    CHECK(lseek(out, 0, SEEK_CUR) == 6, "the output position moved to 6");
    struct stat st;
    fstat(out, &st);
    CHECK(st.st_size == 105, "the file is 105 bytes");
    CHECK(pread(out, b, 5, 100) == 5 && memcmp(b, "hello", 5) == 0, "hello at 100");
    CHECK(pread(out, b, 6, 0) == 6 && memcmp(b, " world", 6) == 0, "\" world\" at 0");

    errno = 0;
    CHECK(splice(fd, NULL, out, NULL, 4, 0) == -1 && errno == EINVAL, "file -> file: EINVAL");
    write(p[1], "x", 1);
    off = 0;
    errno = 0;
    CHECK(splice(p[0], &off, out, NULL, 1, 0) == -1 && errno == ESPIPE, "an offset on the pipe: ESPIPE");
    errno = 0;
    CHECK(splice(p[0], NULL, p[1], NULL, 1, 0) == -1 && errno == EINVAL, "the same pipe both ways: EINVAL");
    errno = 0;
    CHECK(splice(p[0], NULL, out, NULL, 1, 0x100) == -1 && errno == EINVAL, "unknown flags: EINVAL");
    int app = open("/dev/null", O_WRONLY);
    char path[128];
    snprintf(path, sizeof path, "%s/out", t_dir);
    int ap = open(path, O_WRONLY | O_APPEND);
    errno = 0;
    CHECK(splice(p[0], NULL, ap, NULL, 1, 0) == -1 && errno == EINVAL, "O_APPEND output: EINVAL");
    int ro = open(path, O_RDONLY);
    errno = 0;
    CHECK(splice(p[0], NULL, ro, NULL, 1, 0) == -1 && errno == EBADF, "a read-only output: EBADF");
    errno = 0;
    CHECK(splice(p[1], NULL, out, NULL, 1, 0) == -1 && errno == EBADF, "the pipe's write end as input: EBADF");
    errno = 0;
    CHECK(splice(99, NULL, p[1], NULL, 1, 0) == -1 && errno == EBADF, "a closed fd: EBADF");
    CHECK(splice(p[0], NULL, app, NULL, 8, 0) == 1, "pipe -> /dev/null");
    errno = 0;
    CHECK(splice(p[0], NULL, out, NULL, 8, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN,
          "an empty pipe with SPLICE_F_NONBLOCK: EAGAIN");
    close(p[1]);
    CHECK(splice(p[0], NULL, out, NULL, 8, 0) == 0, "an empty pipe with no writer: 0");
    close(p[0]);
    close(fd);
    close(out);
    close(ap);
    close(ro);
    close(app);
}

static void check_full_and_blocking(void) {
    int p[2], fd = mkfile("big", NULL);
    static char big[70000];
    memset(big, 'z', sizeof big);
    write(fd, big, sizeof big);
    pipe(p);
    loff_t off = 0;
    CHECK(splice(fd, &off, p[1], NULL, sizeof big, 0) == 65536, "a 70000-byte splice fills the pipe: 65536");
    errno = 0;
    CHECK(splice(fd, &off, p[1], NULL, 10, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN,
          "into a full pipe with SPLICE_F_NONBLOCK: EAGAIN");
    close(p[0]);
    close(p[1]);
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        write(p[1], "late", 4);
        _exit(0);
    }
    int out = mkfile("late", NULL);
    CHECK(splice(p[0], NULL, out, NULL, 16, 0) == 4, "a blocking splice waits for the writer");
    waitpid(pid, NULL, 0);
    close(out);
    close(fd);
    close(p[0]);
    close(p[1]);
}

static void check_pipe_to_pipe_and_sockets(void) {
    int a[2], b[2], s[2];
    char buf[64];
    pipe(a);
    pipe(b);
    write(a[1], "abcdef", 6);
    CHECK(splice(a[0], NULL, b[1], NULL, 4, 0) == 4, "pipe -> pipe: 4 bytes");
    CHECK(drain(b[0], buf, sizeof buf) == 4 && strcmp(buf, "abcd") == 0, "moved abcd");
    CHECK(drain(a[0], buf, sizeof buf) == 2 && strcmp(buf, "ef") == 0, "ef stays in the first");
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    write(s[1], "from socket", 11);
    CHECK(splice(s[0], NULL, a[1], NULL, 64, 0) == 11, "socket -> pipe");
    CHECK(splice(a[0], NULL, s[0], NULL, 64, 0) == 11, "pipe -> socket");
    CHECK(drain(s[1], buf, sizeof buf) == 11 && strcmp(buf, "from socket") == 0, "the bytes came round");
    errno = 0;
    CHECK(splice(s[0], NULL, a[1], NULL, 64, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN,
          "an empty socket with SPLICE_F_NONBLOCK: EAGAIN");

    /* tee */
    write(a[1], "teedata", 7);
    CHECK(tee(a[0], b[1], 3, 0) == 3, "tee 3 bytes");
    CHECK(drain(b[0], buf, sizeof buf) == 3 && strcmp(buf, "tee") == 0, "the copy: tee");
    CHECK(tee(a[0], b[1], 100, 0) == 7, "tee all 7");
    CHECK(drain(b[0], buf, sizeof buf) == 7, "the copy: 7 bytes");
    CHECK(drain(a[0], buf, sizeof buf) == 7 && strcmp(buf, "teedata") == 0, "the source keeps all");
    errno = 0;
    CHECK(tee(a[0], b[1], 4, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN, "tee from an empty pipe: EAGAIN");
    errno = 0;
    CHECK(tee(a[0], a[1], 4, 0) == -1 && errno == EINVAL, "tee into the same pipe: EINVAL");
    errno = 0;
    CHECK(tee(s[0], b[1], 4, 0) == -1 && errno == EINVAL, "tee from a socket: EINVAL");
    errno = 0;
    CHECK(tee(a[0], b[1], 4, 0x100) == -1 && errno == EINVAL, "tee with unknown flags: EINVAL");
    close(a[1]);
    CHECK(tee(a[0], b[1], 4, 0) == 0, "tee from an empty pipe with no writer: 0");

    /* vmsplice */
    char x[] = "vm", y[] = "splice";
    struct iovec iov[2] = {{x, 2}, {y, 6}};
    CHECK(vmsplice(b[1], iov, 2, 0) == 8, "vmsplice 2 buffers into a pipe");
    char r1[3] = {0}, r2[6] = {0};
    struct iovec rv[2] = {{r1, 2}, {r2, 5}};
    CHECK(vmsplice(b[0], rv, 2, 0) == 7, "vmsplice out of the pipe into 2 buffers");
    CHECK(strcmp(r1, "vm") == 0 && memcmp(r2, "splic", 5) == 0, "the bytes");
    CHECK(drain(b[0], buf, sizeof buf) == 1 && buf[0] == 'e', "one byte left");
    CHECK(vmsplice(b[1], iov, 0, 0) == 0, "no buffers: 0");
    errno = 0;
    CHECK(vmsplice(b[1], iov, 2, 0x100) == -1 && errno == EINVAL, "vmsplice with unknown flags: EINVAL");
    errno = 0;
    CHECK(vmsplice(s[0], iov, 2, 0) == -1 && errno == EBADF, "vmsplice on a socket: EBADF");
    errno = 0;
    CHECK(vmsplice(b[0], rv, 2, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN,
          "vmsplice from an empty pipe with SPLICE_F_NONBLOCK: EAGAIN");
    close(a[0]);
    close(b[0]);
    close(b[1]);
    close(s[0]);
    close(s[1]);
}

int main(void) {
    t_begin("t_splice");
    check_splice_file();
    check_full_and_blocking();
    check_pipe_to_pipe_and_sockets();
    return t_end();
}
