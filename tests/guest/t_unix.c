/* Guest test: AF_UNIX sockets: socketpair, bind/listen/connect/accept4
 * (blocking and non-blocking), path and abstract names, autobind,
 * datagrams and seqpackets, MSG_PEEK/DONTWAIT/WAITALL/TRUNC/NOSIGNAL,
 * shutdown, SIGPIPE/EPIPE, ECONNRESET, getsockname/getpeername,
 * socket options, SCM_RIGHTS (incl. passing sockets) and
 * SCM_CREDENTIALS, FIONREAD/SIOCOUTQ, sendmmsg/recvmmsg, bad input. */
#include "t_common.h"
#include "t_sock.h"
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/un.h>

static volatile int sigpipes;
/* An address no guest maps (volatile: gcc must not see it is bad). */
static volatile unsigned long bad_addr = 8;
#define badp ((void *)bad_addr)
static void on_pipe(int s) { (void)s; sigpipes++; }

static socklen_t sun_of(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static int intopt(int fd, int opt) {
    int v = -12345;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, opt, &v, &l) != 0) return -999;
    return v;
}

/* Sends one byte with `n` descriptors attached. */
static ssize_t send_fds(int s, const int *fds, int n) {
    char c = 'F';
    struct iovec iov = {&c, 1};
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr *c1 = CMSG_FIRSTHDR(&m);
    c1->cmsg_level = SOL_SOCKET;
    c1->cmsg_type = SCM_RIGHTS;
    c1->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c1), fds, sizeof(int) * n);
    return sendmsg(s, &m, 0);
}

/* Receives one byte and up to `max` descriptors; returns how many came
 * (-1 on error); *flags gets msg_flags. */
static int recv_fds(int s, int *fds, int max, size_t ctlsize, int rflags, int *flags) {
    char c;
    struct iovec iov = {&c, 1};
    char ctl[512];
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctlsize ? ctl : NULL;
    m.msg_controllen = ctlsize;
    if (recvmsg(s, &m, rflags) != 1) return -1;
    *flags = m.msg_flags;
    int n = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
            int k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (int i = 0; i < k && n < max; i++) memcpy(&fds[n++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
        }
    return n;
}

static void t_socketpair(void) {
    int sv[2];
    char buf[256];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair stream");
    CHECK(intopt(sv[0], SO_TYPE) == SOCK_STREAM && intopt(sv[0], SO_DOMAIN) == AF_UNIX, "SO_TYPE stream, SO_DOMAIN AF_UNIX");
    CHECK(intopt(sv[0], SO_ERROR) == 0 && intopt(sv[0], SO_ACCEPTCONN) == 0, "SO_ERROR 0, SO_ACCEPTCONN 0");
    struct stat st;
    CHECK(fstat(sv[0], &st) == 0 && S_ISSOCK(st.st_mode), "fstat: S_ISSOCK");
    CHECK(lseek(sv[0], 0, SEEK_SET) < 0 && errno == ESPIPE, "lseek: ESPIPE");
    CHECK(write(sv[0], "hello", 5) == 5, "write 5");
    int n = -1;
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0 && n == 5, "FIONREAD 5");
    CHECK(ioctl(sv[0], SIOCOUTQ, &n) == 0 && n > 0, "SIOCOUTQ counts unread bytes");
    CHECK(recv(sv[1], buf, 3, MSG_PEEK) == 3 && !memcmp(buf, "hel", 3), "MSG_PEEK 3");
    CHECK(read(sv[1], buf, sizeof buf) == 5 && !memcmp(buf, "hello", 5), "read 5 after peek");
    CHECK(ioctl(sv[0], SIOCOUTQ, &n) == 0 && n == 0, "SIOCOUTQ 0 when read");
    CHECK(recv(sv[1], buf, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "MSG_DONTWAIT on empty: EAGAIN");
    CHECK(write(sv[1], "back", 4) == 4 && read(sv[0], buf, 4) == 4, "the other direction");
    /* message pieces join on a stream */
    write(sv[0], "ab", 2);
    write(sv[0], "cd", 2);
    CHECK(read(sv[1], buf, sizeof buf) == 4 && !memcmp(buf, "abcd", 4), "two writes read as one");
    /* MSG_WAITALL: a child writes in pieces */
    pid_t p = fork();
    if (p == 0) {
        for (int i = 0; i < 4; i++) {
            usleep(20000);
            write(sv[0], "wxyz" + i, 1);
        }
        _exit(0);
    }
    CHECK(recv(sv[1], buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, "wxyz", 4), "MSG_WAITALL waits for 4 bytes");
    SAY("writer child: %s\n", t_wait(p));
    close(sv[0]);
    CHECK(read(sv[1], buf, 1) == 0, "EOF after the peer closed");
    struct pollfd pf = {sv[1], POLLIN | POLLOUT, 0};
    CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP) && (pf.revents & POLLIN), "poll: POLLHUP|POLLIN after peer close");
    close(sv[1]);

    /* flags */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair NONBLOCK|CLOEXEC");
    CHECK(fcntl(sv[0], F_GETFD) == FD_CLOEXEC && (fcntl(sv[1], F_GETFL) & O_NONBLOCK), "flags applied");
    CHECK(read(sv[0], buf, 1) < 0 && errno == EAGAIN, "non-blocking read: EAGAIN");
    long total = 0;
    ssize_t w;
    memset(buf, 'x', sizeof buf);
    while ((w = write(sv[0], buf, sizeof buf)) > 0) total += w;
    CHECK(w < 0 && errno == EAGAIN && total >= 4096, "fill until EAGAIN");
    pf = (struct pollfd){sv[0], POLLOUT, 0};
    CHECK(poll(&pf, 1, 0) == 0, "full: not writable");
    long drained = 0;
    while ((w = read(sv[1], buf, sizeof buf)) > 0) drained += w;
    CHECK(drained == total, "drained all");
    CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT), "drained: writable");
    close(sv[0]);
    close(sv[1]);

    CHECK(socketpair(AF_INET, SOCK_STREAM, 0, sv) < 0 && errno == EOPNOTSUPP, "socketpair AF_INET: EOPNOTSUPP");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 2, sv) < 0 && errno == EPROTONOSUPPORT, "protocol 2: EPROTONOSUPPORT");
    CHECK(socket(AF_UNIX, SOCK_RDM, 0) < 0 && errno == ESOCKTNOSUPPORT, "SOCK_RDM: ESOCKTNOSUPPORT");
    CHECK(socket(AF_UNIX, 77, 0) < 0 && errno == EINVAL, "type past SOCK_MAX: EINVAL");
    int raw = socket(AF_UNIX, SOCK_RAW, 0);
    CHECK(raw >= 0 && intopt(raw, SO_TYPE) == SOCK_DGRAM, "SOCK_RAW is a datagram socket");
    close(raw);
    CHECK(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0) < 0 && errno == EINVAL, "bad type flag: EINVAL");
    CHECK(socket(12345, SOCK_STREAM, 0) < 0 && errno == EAFNOSUPPORT, "bad domain: EAFNOSUPPORT");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, badp) < 0 && errno == EFAULT, "socketpair bad pointer: EFAULT");
}

static void t_shutdown_and_signals(void) {
    int sv[2];
    char buf[16];
    signal(SIGPIPE, on_pipe);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CHECK(shutdown(sv[0], SHUT_WR) == 0, "shutdown SHUT_WR");
    CHECK(read(sv[1], buf, 1) == 0, "peer reads EOF");
    CHECK(write(sv[0], "x", 1) < 0 && errno == EPIPE && sigpipes == 1, "write after SHUT_WR: EPIPE + SIGPIPE");
    CHECK(send(sv[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE && sigpipes == 1, "MSG_NOSIGNAL: EPIPE, no signal");
    CHECK(write(sv[1], "y", 1) == 1 && read(sv[0], buf, 1) == 1, "the other direction still works");
    CHECK(shutdown(sv[1], SHUT_WR) == 0, "shutdown SHUT_WR on the peer");
    struct pollfd pf = {sv[1], POLLIN | POLLRDHUP, 0};
    CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLRDHUP) && (pf.revents & POLLHUP), "POLLRDHUP|POLLHUP when both directions are shut");
    CHECK(shutdown(sv[0], 7) < 0 && errno == EINVAL, "shutdown bad how: EINVAL");
    CHECK(shutdown(0x7fff, SHUT_RD) < 0 && errno == EBADF, "shutdown bad fd: EBADF");
    int pp[2];
    pipe(pp);
    CHECK(shutdown(pp[0], SHUT_RD) < 0 && errno == ENOTSOCK, "shutdown on a pipe: ENOTSOCK");
    close(pp[0]);
    close(pp[1]);
    close(sv[0]);
    close(sv[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "abc", 3);
    write(sv[1], "unread", 6);
    close(sv[1]);
    CHECK(read(sv[0], buf, sizeof buf) == 6, "own data first");
    CHECK(read(sv[0], buf, sizeof buf) < 0 && errno == ECONNRESET, "then ECONNRESET (peer closed with unread data)");
    CHECK(read(sv[0], buf, sizeof buf) == 0, "then EOF");
    CHECK(write(sv[0], "x", 1) < 0 && errno == EPIPE && sigpipes == 2, "write to a closed peer: EPIPE + SIGPIPE");
    close(sv[0]);
    signal(SIGPIPE, SIG_DFL);
    pid_t p = fork();
    if (p == 0) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        close(sv[1]);
        write(sv[0], "x", 1);
        _exit(0);
    }
    SAY("writer to a closed socket, default SIGPIPE: %s\n", t_wait(p));
}

static void t_names(void) {
    struct sockaddr_un a, b;
    socklen_t al, bl;
    char buf[64];
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    al = sun_of(&a, "srv.sock");
    CHECK(bind(l, (struct sockaddr *)&a, al) == 0, "bind a path");
    struct stat st;
    CHECK(stat("srv.sock", &st) == 0 && S_ISSOCK(st.st_mode), "stat: S_ISSOCK");
    CHECK((st.st_mode & 0777) == 0755, "socket file mode follows the umask (%o)", st.st_mode & 0777);
    CHECK(bind(l, (struct sockaddr *)&a, al) < 0 && errno == EADDRINUSE, "bind twice to the same path: EADDRINUSE");
    CHECK(bind(l, (struct sockaddr *)&b, sun_of(&b, "other.sock")) < 0 && errno == EINVAL, "bind a bound socket elsewhere: EINVAL");
    CHECK(access("other.sock", F_OK) < 0 && errno == ENOENT, "and no file is left behind");
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(l2, (struct sockaddr *)&a, al) < 0 && errno == EADDRINUSE, "bind an existing path: EADDRINUSE");
    bl = sizeof b;
    CHECK(getsockname(l, (struct sockaddr *)&b, &bl) == 0 && bl == al && !strcmp(b.sun_path, "srv.sock"), "getsockname: path and length");
    bl = sizeof b;
    CHECK(getpeername(l, (struct sockaddr *)&b, &bl) < 0 && errno == ENOTCONN, "getpeername unconnected: ENOTCONN");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == ECONNREFUSED, "connect before listen: ECONNREFUSED");
    close(c);
    CHECK(listen(l, 4) == 0, "listen");
    CHECK(intopt(l, SO_ACCEPTCONN) == 1, "SO_ACCEPTCONN 1");
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, al) == 0, "connect");
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == EISCONN, "connect again: EISCONN");
    CHECK(write(c, "early", 5) == 5, "write before accept");
    int sq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(connect(sq, (struct sockaddr *)&a, al) < 0 && errno == EPROTOTYPE, "seqpacket to a path stream listener: EPROTOTYPE");
    close(sq);
    bl = sizeof b;
    int s = accept4(l, (struct sockaddr *)&b, &bl, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CHECK(s >= 0 && bl == offsetof(struct sockaddr_un, sun_path), "accept4: unbound client's address is just the family");
    CHECK(fcntl(s, F_GETFD) == FD_CLOEXEC && (fcntl(s, F_GETFL) & O_NONBLOCK), "accept4 flags applied");
    CHECK(read(s, buf, sizeof buf) == 5, "accepted socket reads what came early");
    bl = sizeof b;
    CHECK(getsockname(s, (struct sockaddr *)&b, &bl) == 0 && !strcmp(b.sun_path, "srv.sock"), "accepted socket's name is the listener's");
    bl = sizeof b;
    CHECK(getpeername(c, (struct sockaddr *)&b, &bl) == 0 && !strcmp(b.sun_path, "srv.sock"), "client's peer is the listener's name");
    bl = 4;
    memset(&b, 0, sizeof b);
    CHECK(getpeername(c, (struct sockaddr *)&b, &bl) == 0 && bl == al && b.sun_path[0] == 's' && b.sun_path[1] == 'r' && b.sun_path[2] == 0, "short buffer: truncated, full length reported");
    struct ucred cr;
    socklen_t crl = sizeof cr;
    CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0 && cr.pid == getpid() && cr.uid == getuid(), "SO_PEERCRED on the accepted socket");
    crl = sizeof cr;
    CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crl) == 0 && cr.pid == getpid(), "SO_PEERCRED on the client");
    close(s);
    close(c);
    /* non-blocking accept, full backlog */
    fcntl(l, F_SETFL, O_NONBLOCK);
    CHECK(accept(l, NULL, NULL) < 0 && errno == EAGAIN, "non-blocking accept with none pending: EAGAIN");
    CHECK(accept(c = socket(AF_UNIX, SOCK_STREAM, 0), NULL, NULL) < 0 && errno == EINVAL, "accept on a non-listener: EINVAL");
    close(c);
    int cs[16], nc = 0, r;
    for (;;) {
        cs[nc] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        r = connect(cs[nc], (struct sockaddr *)&a, al);
        if (r < 0) break;
        if (++nc == 15) break;
    }
    CHECK(r < 0 && errno == EAGAIN && nc == 5, "backlog 4 takes 5, then non-blocking connect: EAGAIN (%d)", nc);
    close(cs[nc]);
    /* a blocking connect waits for accept */
    pid_t p = fork();
    if (p == 0) {
        int k = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(k, (struct sockaddr *)&a, al) != 0) _exit(1);
        _exit(write(k, "late", 4) == 4 ? 0 : 2);
    }
    usleep(50000);
    for (int i = 0; i < nc; i++) {
        s = accept(l, NULL, NULL);
        close(s);
        close(cs[i]);
    }
    fcntl(l, F_SETFL, 0);
    s = accept(l, NULL, NULL);
    CHECK(s >= 0 && read(s, buf, 4) == 4 && !memcmp(buf, "late", 4), "blocked connect completed after accepts");
    SAY("blocked connecter: %s\n", t_wait(p));
    close(s);
    /* blocking accept wakes on connect */
    p = fork();
    if (p == 0) {
        usleep(30000);
        int k = socket(AF_UNIX, SOCK_STREAM, 0);
        _exit(connect(k, (struct sockaddr *)&a, al) == 0 ? 0 : 1);
    }
    s = accept(l, NULL, NULL);
    CHECK(s >= 0, "blocking accept woke for a connect");
    SAY("connecter: %s\n", t_wait(p));
    close(s);
    close(l);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == ECONNREFUSED, "connect to a closed listener's path: ECONNREFUSED");
    CHECK(unlink("srv.sock") == 0 && stat("srv.sock", &st) < 0 && errno == ENOENT, "unlink removes the socket file");
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == ENOENT, "connect to a missing path: ENOENT");
    int f = open("plain", O_CREAT | O_WRONLY, 0644);
    close(f);
    al = sun_of(&a, "plain");
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == ECONNREFUSED, "connect to a regular file: ECONNREFUSED");
    al = sun_of(&a, "nodir/x");
    CHECK(bind(c, (struct sockaddr *)&a, al) < 0 && errno == ENOENT, "bind in a missing directory: ENOENT");
    close(c);
    close(l2);

    /* abstract names and autobind */
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    al = t_abstract(&a);
    CHECK(bind(l, (struct sockaddr *)&a, al) == 0 && listen(l, 1) == 0, "bind an abstract name");
    l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(l2, (struct sockaddr *)&a, al) < 0 && errno == EADDRINUSE, "abstract name taken: EADDRINUSE");
    bl = sizeof b;
    CHECK(getsockname(l, (struct sockaddr *)&b, &bl) == 0 && bl == al && b.sun_path[0] == 0 && !memcmp(b.sun_path, a.sun_path, al - offsetof(struct sockaddr_un, sun_path)), "getsockname: abstract name and length");
    c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == ECONNREFUSED, "seqpacket to an abstract stream listener: ECONNREFUSED");
    close(c);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, al) == 0, "connect to an abstract name");
    close(c);
    close(l);
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == ECONNREFUSED, "abstract name gone with its socket: ECONNREFUSED");
    CHECK(bind(l2, (struct sockaddr *)&a, al) == 0, "and free to bind again");
    close(l2);
    CHECK(bind(c, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path)) == 0, "autobind (only the family)");
    bl = sizeof b;
    CHECK(getsockname(c, (struct sockaddr *)&b, &bl) == 0 && bl == 8 && b.sun_path[0] == 0, "autobind name: NUL + 5 chars");
    close(c);

    /* bad addresses */
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    al = sun_of(&a, "x.sock");
    CHECK(bind(c, (struct sockaddr *)&a, 1) < 0 && errno == EINVAL, "bind addrlen 1: EINVAL");
    CHECK(bind(c, (struct sockaddr *)&a, -1) < 0 && errno == EINVAL, "bind addrlen -1: EINVAL");
    CHECK(bind(c, (struct sockaddr *)&a, 200) < 0 && errno == EINVAL, "bind addrlen 200: EINVAL");
    CHECK(bind(c, badp, al) < 0 && errno == EFAULT, "bind bad pointer: EFAULT");
    a.sun_family = AF_INET;
    CHECK(bind(c, (struct sockaddr *)&a, al) < 0 && errno == EINVAL, "bind AF_INET address: EINVAL");
    CHECK(connect(c, (struct sockaddr *)&a, al) < 0 && errno == EINVAL, "connect AF_INET address: EINVAL");
    CHECK(listen(c, 1) < 0 && errno == EINVAL, "listen unbound: EINVAL");
    CHECK(read(c, buf, 1) < 0 && errno == EINVAL, "read an unconnected stream socket: EINVAL");
    CHECK(write(c, "x", 1) < 0 && errno == ENOTCONN, "write an unconnected stream socket: ENOTCONN");
    bl = sizeof b;
    CHECK(getsockname(c, (struct sockaddr *)&b, &bl) == 0 && bl == 2, "getsockname unbound: family only");
    bl = -1;
    CHECK(getsockname(c, (struct sockaddr *)&b, &bl) < 0 && errno == EINVAL, "getsockname negative length: EINVAL");
    CHECK(getsockname(c, (struct sockaddr *)&b, badp) < 0 && errno == EFAULT, "getsockname bad length pointer: EFAULT");
    CHECK(getsockname(0x7fff, (struct sockaddr *)&b, &bl) < 0 && errno == EBADF, "getsockname bad fd: EBADF");
    CHECK(getsockname(1, (struct sockaddr *)&b, &bl) < 0 && errno == ENOTSOCK, "getsockname on a tty/pipe: ENOTSOCK");
    close(c);
}

static void t_dgram(void) {
    struct sockaddr_un a, b;
    socklen_t al, bl;
    char buf[64];
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    al = sun_of(&a, "log.sock");
    CHECK(bind(r, (struct sockaddr *)&a, al) == 0, "dgram bind");
    CHECK(listen(r, 1) < 0 && errno == EOPNOTSUPP, "listen on dgram: EOPNOTSUPP");
    CHECK(accept(r, NULL, NULL) < 0 && errno == EOPNOTSUPP, "accept on dgram: EOPNOTSUPP");
    int w = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(send(w, "x", 1, 0) < 0 && errno == ENOTCONN, "send unconnected dgram: ENOTCONN");
    CHECK(sendto(w, "one", 3, 0, (struct sockaddr *)&a, al) == 3, "sendto");
    CHECK(sendto(w, "second", 6, 0, (struct sockaddr *)&a, al) == 6, "sendto again");
    CHECK(sendto(w, "", 0, 0, (struct sockaddr *)&a, al) == 0, "empty datagram");
    int n = -1;
    CHECK(ioctl(r, FIONREAD, &n) == 0 && n == 3, "FIONREAD: the first datagram's size");
    bl = sizeof b;
    CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&b, &bl) == 3 && bl == 0, "recvfrom an unbound sender: address length 0");
    CHECK(recv(r, buf, 2, MSG_TRUNC) == 6, "MSG_TRUNC returns the real length");
    CHECK(recv(r, buf, sizeof buf, 0) == 0, "the empty datagram is a message");
    CHECK(recv(r, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == EAGAIN, "none left: EAGAIN");
    struct sockaddr_un wa;
    socklen_t wal = sun_of(&wa, "w.sock");
    bind(w, (struct sockaddr *)&wa, wal);
    sendto(w, "hi", 2, 0, (struct sockaddr *)&a, al);
    bl = sizeof b;
    CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&b, &bl) == 2 && bl == wal && !strcmp(b.sun_path, "w.sock"), "recvfrom a bound sender: its name");
    /* a receiver takes 11 from a sender it is not connected to */
    fcntl(w, F_SETFL, O_NONBLOCK);
    int k = 0;
    while (k < 100 && sendto(w, "q", 1, 0, (struct sockaddr *)&a, al) == 1) k++;
    CHECK(k == 11 && errno == EAGAIN, "receive queue full after 11 datagrams: EAGAIN (%d)", k);
    while (recv(r, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    /* msg_flags MSG_TRUNC via recvmsg */
    sendto(w, "truncated", 9, 0, (struct sockaddr *)&a, al);
    struct iovec iov = {buf, 4};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK(recvmsg(r, &m, 0) == 4 && (m.msg_flags & MSG_TRUNC), "recvmsg: MSG_TRUNC in msg_flags");
    CHECK(connect(w, (struct sockaddr *)&a, al) == 0 && send(w, "c", 1, 0) == 1 && recv(r, buf, 1, 0) == 1, "connected dgram send");
    bl = sizeof b;
    CHECK(getpeername(w, (struct sockaddr *)&b, &bl) == 0 && !strcmp(b.sun_path, "log.sock"), "dgram getpeername");
    int x = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(connect(r, (struct sockaddr *)&wa, wal) == 0, "receiver connects to the writer");
    CHECK(sendto(x, "z", 1, 0, (struct sockaddr *)&a, al) < 0 && errno == EPERM, "a stranger to a connected dgram socket: EPERM");
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    CHECK(connect(r, &unspec, sizeof unspec) == 0, "AF_UNSPEC dissolves the connection");
    CHECK(sendto(x, "z", 1, 0, (struct sockaddr *)&a, al) == 1, "then strangers may send");
    close(x);
    close(r);
    CHECK(send(w, "gone", 4, 0) < 0 && errno == ECONNREFUSED, "peer closed: ECONNREFUSED");
    CHECK(send(w, "gone", 4, 0) < 0 && errno == ENOTCONN, "then ENOTCONN");
    close(w);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair dgram");
    CHECK(intopt(sv[0], SO_TYPE) == SOCK_DGRAM, "SO_TYPE dgram");
    send(sv[0], "abc", 3, 0);
    send(sv[0], "de", 2, 0);
    CHECK(recv(sv[1], buf, sizeof buf, MSG_PEEK) == 3 && recv(sv[1], buf, sizeof buf, 0) == 3 && recv(sv[1], buf, sizeof buf, 0) == 2, "datagram boundaries, peek does not consume");
    static char big[300000];
    CHECK(send(sv[0], big, sizeof big, 0) < 0 && errno == EMSGSIZE, "datagram over SO_SNDBUF: EMSGSIZE");
    close(sv[0]);
    close(sv[1]);

    /* seqpacket */
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair seqpacket");
    send(sv[0], "abcdef", 6, 0);
    send(sv[0], "gh", 2, 0);
    iov = (struct iovec){buf, 3};
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK(recvmsg(sv[1], &m, 0) == 3 && (m.msg_flags & MSG_TRUNC), "seqpacket: a short read truncates (MSG_TRUNC)");
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 2 && !memcmp(buf, "gh", 2), "the rest of the record is gone");
    close(sv[0]);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 0, "seqpacket EOF after the peer closed");
    CHECK(send(sv[1], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "seqpacket send to a closed peer: EPIPE");
    close(sv[1]);
    int sq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(send(sq, "x", 1, 0) < 0 && errno == ENOTCONN, "seqpacket unconnected send: ENOTCONN");
    CHECK(recv(sq, buf, 1, 0) < 0 && errno == ENOTCONN, "seqpacket unconnected recv: ENOTCONN");
    close(sq);
}

static void t_options(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int v = 32768;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v) == 0 && intopt(sv[0], SO_SNDBUF) == 65536, "SO_SNDBUF is stored doubled");
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0 && intopt(sv[0], SO_RCVBUF) == 65536, "SO_RCVBUF is stored doubled");
    v = 1;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v) == 0 && intopt(sv[0], SO_REUSEADDR) == 1, "SO_REUSEADDR accepted");
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof v) == 0 && intopt(sv[0], SO_PASSCRED) == 1, "SO_PASSCRED set");
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, 2) < 0 && errno == EINVAL, "setsockopt optlen 2: EINVAL");
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, badp, 4) < 0 && errno == EFAULT, "setsockopt bad pointer: EFAULT");
    CHECK(setsockopt(sv[0], SOL_SOCKET, 9999, &v, sizeof v) < 0 && errno == ENOPROTOOPT, "setsockopt unknown option: ENOPROTOOPT");
    socklen_t l = sizeof v;
    CHECK(getsockopt(sv[0], SOL_SOCKET, 9999, &v, &l) < 0 && errno == ENOPROTOOPT, "getsockopt unknown option: ENOPROTOOPT");
    l = -1;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l) < 0 && errno == EINVAL, "getsockopt negative length: EINVAL");
    l = 2;
    v = 0;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l) == 0 && l == 2 && v == SOCK_STREAM, "getsockopt short length: truncated");
    CHECK(setsockopt(0x7fff, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) < 0 && errno == EBADF, "setsockopt bad fd: EBADF");
    struct ucred cr;
    l = sizeof cr;
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(getsockopt(u, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0 && cr.pid == 0 && cr.uid == (uid_t)-1 && cr.gid == (gid_t)-1, "SO_PEERCRED unconnected: pid 0, ids -1");
    close(u);
    close(sv[0]);
    close(sv[1]);
}

static void t_rights(void) {
    int sv[2], pp[2], got[8], fl;
    char buf[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(pp);
    CHECK(send_fds(sv[0], &pp[1], 1) == 1, "send a pipe's write end");
    close(pp[1]);
    CHECK(recv_fds(sv[1], got, 8, sizeof(((char[512]){0})), 0, &fl) == 1 && fl == 0, "received one descriptor");
    CHECK(write(got[0], "via", 3) == 3 && read(pp[0], buf, 3) == 3 && !memcmp(buf, "via", 3), "the received fd is the pipe");
    CHECK(fcntl(got[0], F_GETFD) == 0, "no FD_CLOEXEC without MSG_CMSG_CLOEXEC");
    close(got[0]);
    send_fds(sv[0], &pp[0], 1);
    CHECK(recv_fds(sv[1], got, 8, 512, MSG_CMSG_CLOEXEC, &fl) == 1 && fcntl(got[0], F_GETFD) == FD_CLOEXEC, "MSG_CMSG_CLOEXEC");
    close(got[0]);
    /* too small a control buffer: MSG_CTRUNC, the fds are closed */
    int three[3] = {0, 1, 2};
    send_fds(sv[0], three, 3);
    CHECK(recv_fds(sv[1], got, 8, CMSG_LEN(sizeof(int)), 0, &fl) == 1 && (fl & MSG_CTRUNC), "room for one of three: MSG_CTRUNC");
    close(got[0]);
    send_fds(sv[0], three, 1);
    CHECK(recv_fds(sv[1], got, 8, 0, 0, &fl) == 0 && (fl & MSG_CTRUNC), "no control buffer: MSG_CTRUNC");
    /* peek keeps them */
    send_fds(sv[0], three, 1);
    CHECK(recv_fds(sv[1], got, 8, 512, MSG_PEEK, &fl) == 1, "MSG_PEEK gives a copy");
    close(got[0]);
    CHECK(recv_fds(sv[1], got, 8, 512, 0, &fl) == 1, "and the read gives it again");
    close(got[0]);
    /* bytes sent with fds are not joined past them */
    write(sv[0], "ab", 2);
    send_fds(sv[0], three, 1);
    write(sv[0], "cd", 2);
    CHECK(read(sv[1], buf, sizeof buf) == 3, "a read stops after the message carrying fds");
    CHECK(read(sv[1], buf, sizeof buf) == 2, "the rest comes next");
    /* bad descriptors */
    int bad = 0x7ff0;
    CHECK(send_fds(sv[0], &bad, 1) < 0 && errno == EBADF, "sending a closed fd: EBADF");
    /* pass a socket: the receiver talks through it */
    int inner[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, inner);
    send_fds(sv[0], &inner[1], 1);
    close(inner[1]);
    recv_fds(sv[1], got, 8, 512, 0, &fl);
    CHECK(write(got[0], "sock", 4) == 4 && read(inner[0], buf, 4) == 4 && !memcmp(buf, "sock", 4), "a passed socket works");
    close(got[0]);
    CHECK(read(inner[0], buf, 1) == 0, "and closing the received copy ends it");
    close(inner[0]);
    /* a socket in flight in its own queue, then closed: no hang, no crash */
    int cyc[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, cyc);
    send_fds(cyc[0], &cyc[0], 1);
    send_fds(cyc[1], &cyc[1], 1);
    close(cyc[0]);
    close(cyc[1]);
    CHECK(1, "in-flight cycle closed");
    /* across fork */
    pid_t p = fork();
    if (p == 0) {
        int q[2];
        pipe(q);
        write(q[1], "child", 5);
        send_fds(sv[0], &q[0], 1);
        _exit(0);
    }
    CHECK(recv_fds(sv[1], got, 8, 512, 0, &fl) == 1 && read(got[0], buf, 5) == 5 && !memcmp(buf, "child", 5), "a child's pipe arrives with its data");
    SAY("sender child: %s\n", t_wait(p));
    close(got[0]);
    /* dgram with fds */
    int dv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dv);
    send_fds(dv[0], three, 2);
    CHECK(recv_fds(dv[1], got, 8, 512, 0, &fl) == 2, "dgram carries two fds");
    close(got[0]);
    close(got[1]);
    close(dv[0]);
    close(dv[1]);
    close(pp[0]);
    close(sv[0]);
    close(sv[1]);
}

static void t_creds(void) {
    int sv[2], on = 1;
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    pid_t p = fork();
    if (p == 0) {
        send(sv[0], "c", 1, 0);
        _exit(0);
    }
    char c;
    struct iovec iov = {&c, 1};
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    CHECK(recvmsg(sv[1], &m, 0) == 1, "recvmsg with SO_PASSCRED");
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    struct ucred cr = {0};
    if (h && h->cmsg_type == SCM_CREDENTIALS) memcpy(&cr, CMSG_DATA(h), sizeof cr);
    CHECK(h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS && cr.pid == p && cr.uid == getuid(), "SCM_CREDENTIALS names the sending child");
    SAY("child: %s\n", t_wait(p));
    /* explicit credentials: own pid is allowed, another's is not (unprivileged) */
    struct ucred mine = {getpid(), getuid(), getgid()};
    memset(ctl, 0, sizeof ctl);
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_CREDENTIALS;
    h->cmsg_len = CMSG_LEN(sizeof mine);
    memcpy(CMSG_DATA(h), &mine, sizeof mine);
    CHECK(sendmsg(sv[0], &m, 0) == 1, "sendmsg with own SCM_CREDENTIALS");
    m.msg_controllen = sizeof ctl;
    CHECK(recvmsg(sv[1], &m, 0) == 1, "received");
    h->cmsg_len = CMSG_LEN(4);
    m.msg_controllen = sizeof ctl;
    CHECK(sendmsg(sv[0], &m, 0) < 0 && errno == EINVAL, "SCM_CREDENTIALS of the wrong size: EINVAL");
    h->cmsg_len = 8;
    CHECK(sendmsg(sv[0], &m, 0) < 0 && errno == EINVAL, "cmsg_len under a header: EINVAL");
    h->cmsg_len = CMSG_LEN(sizeof mine);
    h->cmsg_type = 77;
    CHECK(sendmsg(sv[0], &m, 0) < 0 && errno == EINVAL, "unknown SOL_SOCKET cmsg type: EINVAL");
    m.msg_control = badp;
    CHECK(sendmsg(sv[0], &m, 0) < 0 && errno == EFAULT, "msg_control bad pointer: EFAULT");
    CHECK(sendmsg(sv[0], badp, 0) < 0 && errno == EFAULT, "msghdr bad pointer: EFAULT");
    close(sv[0]);
    close(sv[1]);
}

static void t_mmsg(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    struct mmsghdr mm[3];
    struct iovec iov[3];
    char bufs[3][8];
    const char *words[3] = {"one", "two", "three"};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = (void *)words[i];
        iov[i].iov_len = strlen(words[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK(sendmmsg(sv[0], mm, 3, 0) == 3 && mm[2].msg_len == 5, "sendmmsg sends 3");
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK(recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL) == 3 && mm[0].msg_len == 3 && mm[2].msg_len == 5 && !memcmp(bufs[1], "two", 3), "recvmmsg gets 3");
    CHECK(recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL) < 0 && errno == EAGAIN, "recvmmsg on empty: EAGAIN");
    close(sv[0]);
    close(sv[1]);
}

static void t_limits(void) {
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl = old;
    rl.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    int sv[2], n = 0, last = 0;
    while (n < 1000) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
            last = errno;
            break;
        }
        n++;
    }
    CHECK(last == EMFILE && n > 20 && n < 32, "socketpair until EMFILE");
    for (int fd = 3; fd < 64; fd++) close(fd);
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "sockets are free again after closing");
    close(sv[0]);
    close(sv[1]);
}

/* SO_TIMESTAMP (systemd-journald needs it): the option reads back, a
 * datagram sent after it carries SCM_TIMESTAMP, a timeval between the
 * send and the receive; without the option none comes. */
static struct timeval *stamp_of(struct msghdr *m) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP &&
            c->cmsg_len == CMSG_LEN(sizeof(struct timeval)))
            return (struct timeval *)CMSG_DATA(c);
    return NULL;
}

static void t_timestamp(void) {
    int sv[2], on = 1, v = 0;
    socklen_t len = sizeof v;
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "a datagram pair");
    CHECK(getsockopt(sv[1], SOL_SOCKET, SO_TIMESTAMP, &v, &len) == 0 && v == 0, "SO_TIMESTAMP off at first");
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on) == 0, "setsockopt SO_TIMESTAMP");
    len = sizeof v;
    CHECK(getsockopt(sv[1], SOL_SOCKET, SO_TIMESTAMP, &v, &len) == 0 && v == 1, "it reads back 1");
    struct timeval before, after;
    gettimeofday(&before, NULL);
    CHECK(send(sv[0], "tick", 4, 0) == 4, "send");
    char data[16];
    union { char b[CMSG_SPACE(sizeof(struct timeval)) + 64]; struct cmsghdr align; } ctl;
    struct iovec io = {data, sizeof data};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    CHECK(recvmsg(sv[1], &m, 0) == 4, "recvmsg");
    gettimeofday(&after, NULL);
    struct timeval *tv = stamp_of(&m);
    CHECK(tv != NULL, "SCM_TIMESTAMP came");
    long long t = tv ? tv->tv_sec * 1000000LL + tv->tv_usec : 0;
    CHECK(tv && t >= before.tv_sec * 1000000LL + before.tv_usec && t <= after.tv_sec * 1000000LL + after.tv_usec,
          "between the send and the receive");
    CHECK(send(sv[1], "tock", 4, 0) == 4, "send the other way");
    m.msg_controllen = sizeof ctl.b;
    CHECK(recvmsg(sv[0], &m, 0) == 4 && stamp_of(&m) == NULL, "no stamp without the option");
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    t_begin("t_unix");
    t_socketpair();
    t_shutdown_and_signals();
    t_names();
    t_dgram();
    t_options();
    t_rights();
    t_creds();
    t_mmsg();
    t_limits();
    t_timestamp();
    return t_end();
}
