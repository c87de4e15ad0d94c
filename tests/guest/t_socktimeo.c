/* Guest test: SO_RCVTIMEO and SO_SNDTIMEO on AF_UNIX sockets: recv,
 * recvfrom and recvmsg with nothing to read, and send on a full stream
 * socket, fail with EAGAIN after about the timeout instead of sleeping for
 * ever; data that arrives within the timeout is received; a zero timeout
 * means no timeout. */
#include "t_common.h"
#include "t_sock.h"
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stddef.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int main(void) {
    t_begin("t_socktimeo");
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    struct timeval tv = {0, 80000};
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO 80 ms");
    char b[64];
    long long t0 = t_now_ms();
    CHECK(recv(sv[0], b, sizeof b, 0) < 0 && errno == EAGAIN, "recv with nothing: EAGAIN");
    long long el = t_now_ms() - t0;
    CHECK(el >= 70 && el < 3000, "after about 80 ms");
    CHECK(recvfrom(sv[0], b, sizeof b, 0, NULL, NULL) < 0 && errno == EAGAIN, "recvfrom: EAGAIN");
    struct iovec iov = {b, sizeof b};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK(recvmsg(sv[0], &mh, 0) < 0 && errno == EAGAIN, "recvmsg: EAGAIN");
    pid_t c = fork();
    if (c == 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        write(sv[1], "hi", 2);
        _exit(0);
    }
    CHECK(recv(sv[0], b, sizeof b, 0) == 2, "data within the timeout is received");
    waitpid(c, NULL, 0);

    /* send on a full socket */
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0, "SO_SNDTIMEO 80 ms");
    int fl = fcntl(sv[1], F_GETFL);
    fcntl(sv[1], F_SETFL, fl | O_NONBLOCK);
    static char big[65536];
    while (send(sv[1], big, sizeof big, 0) > 0) {
    }
    while (send(sv[1], big, 1, 0) > 0) {
    }
    fcntl(sv[1], F_SETFL, fl);
    t0 = t_now_ms();
    CHECK(send(sv[1], big, 1, 0) < 0 && errno == EAGAIN, "send on a full socket: EAGAIN");
    el = t_now_ms() - t0;
    CHECK(el >= 70 && el < 3000, "after about 80 ms");

    /* read(2) and write(2) honour them too */
    t0 = t_now_ms();
    CHECK(write(sv[1], big, 1) < 0 && errno == EAGAIN, "write on a full socket: EAGAIN");
    el = t_now_ms() - t0;
    CHECK(el >= 70 && el < 3000, "write: after about 80 ms");
    {
        int pr[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pr) == 0, "second socketpair");
        CHECK(setsockopt(pr[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO on it");
        t0 = t_now_ms();
        CHECK(read(pr[0], b, sizeof b) < 0 && errno == EAGAIN, "read with nothing: EAGAIN");
        el = t_now_ms() - t0;
        CHECK(el >= 70 && el < 3000, "read: after about 80 ms");
        struct iovec rv = {b, sizeof b};
        CHECK(readv(pr[0], &rv, 1) < 0 && errno == EAGAIN, "readv with nothing: EAGAIN");
        close(pr[0]);
        close(pr[1]);
    }
    /* accept with SO_RCVTIMEO, connect to a full backlog with SO_SNDTIMEO */
    {
        struct sockaddr_un sa;
        socklen_t sl = t_abstract(&sa);
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(bind(l, (struct sockaddr *)&sa, sl) == 0 && listen(l, 0) == 0, "listener, backlog 0");
        CHECK(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO on the listener");
        t0 = t_now_ms();
        CHECK(accept(l, NULL, NULL) < 0 && errno == EAGAIN, "accept with nothing pending: EAGAIN");
        el = t_now_ms() - t0;
        CHECK(el >= 70 && el < 3000, "accept: after about 80 ms");
        int c1 = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(connect(c1, (struct sockaddr *)&sa, sl) == 0, "first connect fills the backlog");
        int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(setsockopt(c2, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0, "SO_SNDTIMEO on a client");
        t0 = t_now_ms();
        CHECK(connect(c2, (struct sockaddr *)&sa, sl) < 0 && errno == EAGAIN, "connect to a full backlog: EAGAIN");
        el = t_now_ms() - t0;
        CHECK(el >= 70 && el < 3000, "connect: after about 80 ms");
        int a1 = accept(l, NULL, NULL);
        CHECK(a1 >= 0, "accept takes the first");
        CHECK(connect(c2, (struct sockaddr *)&sa, sl) == 0, "then the second connects");
        close(a1);
        close(c1);
        close(c2);
        close(l);
    }

    struct timeval zero = {0, 0}, got;
    socklen_t len = sizeof got;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero) == 0 &&
              getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &len) == 0 && got.tv_sec == 0 && got.tv_usec == 0,
          "a zero timeout reads back 0");
    /* drain, then a blocking recv with no timeout waits for a child's write */
    int n;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    while ((n = recv(sv[0], big, sizeof big, 0)) > 0) {
    }
    fcntl(sv[0], F_SETFL, 0);
    c = fork();
    if (c == 0) {
        struct timespec ts = {0, 150000000};
        nanosleep(&ts, NULL);
        write(sv[1], "late", 4);
        _exit(0);
    }
    CHECK(recv(sv[0], b, sizeof b, 0) == 4, "without a timeout recv waits past 80 ms");
    waitpid(c, NULL, 0);
    return t_end();
}
