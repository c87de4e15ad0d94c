/* Guest test: AF_UNIX sockets sent over SCM_RIGHTS in a cycle and then
 * closed are collected (Linux's unix_gc): nothing else can reach them, so
 * their queues are purged and the descriptors they held released. A
 * witness socket queued with them is freed too, and its peer (kept) sees
 * EOF. A socket in flight that is still reachable is left alone. */
#include "t_common.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int send_fd(int via, int fd) {
    char c = 'F';
    struct iovec iov = {&c, 1};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(via, &mh, 0) == 1 ? 0 : -1;
}

static int recv_fd(int via) {
    char c;
    struct iovec iov = {&c, 1};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    if (recvmsg(via, &mh, 0) != 1)
        return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (!cm || cm->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

/* Linux collects in a work queue, and a close while a collection runs
 * may not start another: closing any unix socket while some are in flight
 * asks for one more. (umlrun collects at once, so the first poll sees EOF.) */
static void nudge_gc(void) {
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0) {
        close(s[0]);
        close(s[1]);
    }
}

/* Does `fd` see EOF within about `ms`? 1 EOF, 0 nothing came, -1 other. */
static int eof_within(int fd, int ms) {
    for (int waited = 0; waited < ms; waited += 100) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r != 0) {
            char b;
            return recv(fd, &b, 1, MSG_DONTWAIT) == 0 ? 1 : -1;
        }
        nudge_gc();
    }
    return 0;
}

static void pair(int sv[2], int type) {
    if (socketpair(AF_UNIX, type, 0, sv) != 0) {
        perror("socketpair");
        exit(1);
    }
}

static int open_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

int main(void) {
    t_begin("t_unixgc");
    int base = open_fds();

    /* A socket sent over its own pair into its own queue, then closed. */
    {
        int ab[2], w[2];
        pair(ab, SOCK_STREAM);
        pair(w, SOCK_STREAM);
        CHECK(send_fd(ab[0], ab[1]) == 0, "b sent over a: b's file in b's own queue");
        CHECK(send_fd(ab[0], w[0]) == 0, "a witness sent along");
        close(w[0]);
        close(ab[0]);
        close(ab[1]);
        CHECK(eof_within(w[1], 2000) == 1, "self cycle collected: the witness's peer sees EOF");
        close(w[1]);
    }
    /* A pair sent over each other. */
    {
        int ab[2], w[2];
        pair(ab, SOCK_STREAM);
        pair(w, SOCK_STREAM);
        CHECK(send_fd(ab[0], ab[0]) == 0 && send_fd(ab[1], ab[1]) == 0, "a into b's queue, b into a's");
        CHECK(send_fd(ab[1], w[0]) == 0, "a witness into a's queue");
        close(w[0]);
        close(ab[0]);
        close(ab[1]);
        CHECK(eof_within(w[1], 2000) == 1, "pair cycle collected: the witness's peer sees EOF");
        close(w[1]);
    }
    /* Two pairs in a ring, datagram sockets. */
    {
        int p[2], q[2], w[2];
        pair(p, SOCK_DGRAM);
        pair(q, SOCK_DGRAM);
        pair(w, SOCK_STREAM);
        CHECK(send_fd(p[0], q[1]) == 0 && send_fd(q[0], p[1]) == 0, "q's end in p's queue, p's in q's");
        CHECK(send_fd(p[0], w[0]) == 0, "a witness with them");
        close(w[0]);
        close(p[0]);
        close(q[0]);
        close(p[1]);
        close(q[1]);
        CHECK(eof_within(w[1], 2000) == 1, "datagram ring collected: the witness's peer sees EOF");
        close(w[1]);
    }
    /* A listener sent over a connection still pending on it. */
    {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, "\0t_unixgc", 9);
        socklen_t sl = offsetof(struct sockaddr_un, sun_path) + 9;
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(bind(l, (struct sockaddr *)&sa, sl) == 0 && listen(l, 4) == 0, "listener");
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(connect(c, (struct sockaddr *)&sa, sl) == 0, "a client connects (not accepted)");
        int w[2];
        pair(w, SOCK_STREAM);
        CHECK(send_fd(c, l) == 0 && send_fd(c, w[0]) == 0, "the listener and a witness sent to the pending end");
        close(w[0]);
        close(l);
        close(c);
        CHECK(eof_within(w[1], 2000) == 1, "listener cycle collected: the witness's peer sees EOF");
        close(w[1]);
    }
    /* Still reachable: left alone, and usable once received. */
    {
        int ab[2], w[2];
        pair(ab, SOCK_STREAM);
        pair(w, SOCK_STREAM);
        CHECK(send_fd(ab[0], ab[0]) == 0 && send_fd(ab[0], w[0]) == 0, "a and a witness into b's queue");
        close(w[0]);
        close(ab[0]);
        CHECK(eof_within(w[1], 300) == 0, "b is open: nothing collected, no EOF");
        int a2 = recv_fd(ab[1]);
        int w0 = recv_fd(ab[1]);
        CHECK(a2 >= 0 && w0 >= 0, "both received back");
        CHECK(write(w0, "z", 1) == 1, "the witness still works");
        char b;
        CHECK(read(w[1], &b, 1) == 1 && b == 'z', "its peer reads it");
        close(a2);
        close(w0);
        close(ab[1]);
        close(w[1]);
    }
    /* Many cycles: all collected, nothing piles up. */
    {
        int w[2];
        pair(w, SOCK_STREAM);
        for (int i = 0; i < 200; i++) {
            int ab[2];
            pair(ab, SOCK_STREAM);
            send_fd(ab[0], ab[1]);
            if (i == 199)
                send_fd(ab[0], w[0]);
            close(ab[0]);
            close(ab[1]);
        }
        close(w[0]);
        CHECK(eof_within(w[1], 2000) == 1, "200 self cycles: the last one's witness sees EOF");
        close(w[1]);
    }
    CHECK(open_fds() == base, "no descriptor left behind");
    return t_end();
}
