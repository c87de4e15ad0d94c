/* Guest test: pipes: pipe/pipe2 flags, PIPE_BUF atomicity with concurrent
 * writers, O_NONBLOCK EAGAIN, EOF and EPIPE, poll/select readiness, fifos. */
#include "t_common.h"
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>

#define WRITERS 4
#define CHUNKS 64

static int readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & (POLLIN | POLLHUP));
}

int main(void) {
    t_begin("t_pipe");
    int p[2];
    char buf[PIPE_BUF];
    signal(SIGPIPE, SIG_IGN);

    /* basics */
    CHECK(pipe(p) == 0, "pipe");
    CHECK((fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY && (fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY, "read end O_RDONLY, write end O_WRONLY");
    CHECK(write(p[1], "hello", 5) == 5 && read(p[0], buf, sizeof buf) == 5 && !memcmp(buf, "hello", 5), "bytes go through");
    CHECK(write(p[0], "x", 1) < 0 && errno == EBADF, "write to the read end gives EBADF");
    CHECK(lseek(p[0], 0, SEEK_SET) < 0 && errno == ESPIPE, "lseek on a pipe gives ESPIPE");
    struct stat st;
    CHECK(fstat(p[0], &st) == 0 && S_ISFIFO(st.st_mode), "fstat: S_ISFIFO");
    int avail = -1;
    CHECK(write(p[1], "abc", 3) == 3 && ioctl(p[0], FIONREAD, &avail) == 0 && avail == 3, "FIONREAD counts 3 bytes");
    read(p[0], buf, 3);
    close(p[1]);
    CHECK(read(p[0], buf, 1) == 0, "EOF when the only writer closed");
    close(p[0]);
    CHECK(pipe(p) == 0 && close(p[0]) == 0 && write(p[1], "x", 1) < 0 && errno == EPIPE, "no readers: EPIPE");
    close(p[1]);

    /* pipe2 flags */
    CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2 O_CLOEXEC|O_NONBLOCK");
    CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC && fcntl(p[1], F_GETFD) == FD_CLOEXEC, "both ends FD_CLOEXEC");
    CHECK((fcntl(p[0], F_GETFL) & O_NONBLOCK) && (fcntl(p[1], F_GETFL) & O_NONBLOCK), "both ends O_NONBLOCK");
    CHECK(read(p[0], buf, 1) < 0 && errno == EAGAIN, "empty non-blocking read gives EAGAIN");
    long total = 0;
    ssize_t n;
    memset(buf, 'f', sizeof buf);
    while ((n = write(p[1], buf, 1000)) > 0) total += n;
    CHECK(n < 0 && errno == EAGAIN && total >= 4096, "fill until EAGAIN (capacity at least 4096)");
    CHECK(write(p[1], buf, PIPE_BUF) < 0 && errno == EAGAIN, "full pipe: PIPE_BUF write gives EAGAIN, not partial");
    struct pollfd pw = {p[1], POLLOUT, 0};
    CHECK(poll(&pw, 1, 0) == 0, "full pipe not writable by poll");
    long drained = 0;
    while ((n = read(p[0], buf, sizeof buf)) > 0) drained += n;
    CHECK(drained == total, "drained what was written");
    CHECK(poll(&pw, 1, 0) == 1 && (pw.revents & POLLOUT), "empty pipe writable by poll");
    CHECK(pipe2(p, 0x12345678) < 0 && errno == EINVAL, "pipe2 bad flags gives EINVAL");
    close(p[0]);
    close(p[1]);

    /* PIPE_BUF atomicity: 4 writers x 64 chunks of PIPE_BUF bytes each */
    CHECK(pipe(p) == 0, "pipe for the atomicity test");
    pid_t kids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        kids[w] = fork();
        if (kids[w] == 0) {
            char chunk[PIPE_BUF];
            close(p[0]);
            memset(chunk, 'A' + w, sizeof chunk);
            for (int i = 0; i < CHUNKS; i++)
                if (write(p[1], chunk, sizeof chunk) != sizeof chunk) _exit(1);
            _exit(0);
        }
    }
    close(p[1]);
    int counts[WRITERS] = {0}, torn = 0;
    for (;;) {
        size_t got = 0;
        while (got < sizeof buf && (n = read(p[0], buf + got, sizeof buf - got)) > 0) got += n;
        if (got == 0) break;
        if (got != sizeof buf) { torn++; break; }
        for (size_t i = 1; i < sizeof buf; i++)
            if (buf[i] != buf[0]) { torn++; break; }
        if (buf[0] >= 'A' && buf[0] < 'A' + WRITERS) counts[buf[0] - 'A']++;
    }
    for (int w = 0; w < WRITERS; w++) SAY("writer %d: %s, %d whole chunks\n", w, t_wait(kids[w]), counts[w]);
    CHECK(torn == 0, "no chunk of PIPE_BUF bytes was interleaved");
    close(p[0]);

    /* poll and select readiness, HUP */
    CHECK(pipe(p) == 0, "pipe");
    CHECK(!readable(p[0], 0), "empty pipe: poll not readable");
    fd_set rs, ws;
    struct timeval tv = {0, 0};
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    CHECK(select(p[0] + 1, &rs, NULL, NULL, &tv) == 0, "empty pipe: select not readable");
    pid_t pid = fork();
    if (pid == 0) { usleep(50000); write(p[1], "late", 4); _exit(0); }
    CHECK(readable(p[0], 10000), "poll waits until a child writes");
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    FD_ZERO(&ws);
    FD_SET(p[1], &ws);
    tv.tv_sec = 5;
    CHECK(select(p[1] + 1, &rs, &ws, NULL, &tv) == 2 && FD_ISSET(p[0], &rs) && FD_ISSET(p[1], &ws), "select: read end readable, write end writable");
    t_wait(pid);
    read(p[0], buf, 4);
    close(p[1]);
    struct pollfd ph = {p[0], POLLIN, 0};
    CHECK(poll(&ph, 1, 1000) == 1 && (ph.revents & POLLHUP), "poll reports POLLHUP after writers close");
    struct timespec ts = {0, 1000000};
    CHECK(ppoll(&ph, 1, &ts, NULL) == 1, "ppoll");
    close(p[0]);
    struct pollfd bad = {999, POLLIN, 0};
    CHECK(poll(&bad, 1, 0) == 1 && bad.revents == POLLNVAL, "poll of a closed fd: POLLNVAL");
    ts.tv_nsec = 10000000;
    CHECK(ppoll(NULL, 0, &ts, NULL) == 0, "ppoll with no fds times out with 0");

    /* fifo */
    CHECK(mkfifo("fifo", 0600) == 0 && stat("fifo", &st) == 0 && S_ISFIFO(st.st_mode), "mkfifo");
    CHECK(open("fifo", O_WRONLY | O_NONBLOCK) < 0 && errno == ENXIO, "non-blocking open for write without a reader gives ENXIO");
    pid = fork();
    if (pid == 0) {
        int w = open("fifo", O_WRONLY); /* blocks until the parent opens to read */
        write(w, "through the fifo", 16);
        _exit(0);
    }
    int r = open("fifo", O_RDONLY);
    memset(buf, 0, sizeof buf);
    size_t got = 0;
    while ((n = read(r, buf + got, sizeof buf - got)) > 0) got += n;
    CHECK(r >= 0 && got == 16 && !strcmp(buf, "through the fifo"), "a child wrote through the fifo, then EOF");
    SAY("fifo writer: %s\n", t_wait(pid));
    close(r);
    CHECK(mknod("fifo2", S_IFIFO | 0644, 0) == 0 && stat("fifo2", &st) == 0 && S_ISFIFO(st.st_mode), "mknod S_IFIFO");
    r = open("fifo2", O_RDONLY | O_NONBLOCK);
    CHECK(r >= 0 && read(r, buf, 1) == 0, "non-blocking open for read without a writer; read gives 0");
    close(r);

    return t_end();
}
