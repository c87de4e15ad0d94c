/* Guest test: what /proc shows of open files. /proc/self/fd links name
 * sockets socket:[ino] and pipes pipe:[ino] with fstat's inode, and
 * anonymous files anon_inode:[eventfd|eventpoll|timerfd|signalfd|pidfd];
 * /proc/self/fdinfo/<fd> gives pos and flags (O_CLOEXEC included) and the
 * kind's lines (eventfd-count, epoll tfd, timerfd clockid and ticks,
 * signalfd sigmask, pidfd Pid); /proc/net/unix lists a listening socket
 * bound to a path with its flags, type, state and inode. */
#include "t_common.h"
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>

static char *slurp(const char *path) {
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    int n = 0, r;
    while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    return buf;
}

static char *info(int fd) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    return slurp(p);
}

static const char *link_of(int fd) {
    static char l[128];
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, l, sizeof l - 1);
    l[n < 0 ? 0 : n] = 0;
    return l;
}

static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == 0)) return 1;
    return 0;
}

static int has_prefix_line(const char *text, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0) return 1;
    return 0;
}

int main(void) {
    t_begin("t_procfd");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    char want[128];
    struct stat st;

    /* links */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fstat(sv[0], &st);
    snprintf(want, sizeof want, "socket:[%lu]", (unsigned long)st.st_ino);
    CHECK(strcmp(link_of(sv[0]), want) == 0, "socket link is socket:[st_ino]");
    int pfd[2];
    pipe2(pfd, O_CLOEXEC);
    fstat(pfd[0], &st);
    snprintf(want, sizeof want, "pipe:[%lu]", (unsigned long)st.st_ino);
    CHECK(strcmp(link_of(pfd[0]), want) == 0 && strcmp(link_of(pfd[1]), want) == 0, "both pipe ends link to pipe:[st_ino]");
    int efd = eventfd(5, EFD_CLOEXEC);
    int ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    int sfd = signalfd(-1, &m, 0);
    int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    CHECK(strcmp(link_of(efd), "anon_inode:[eventfd]") == 0, "eventfd: %s", link_of(efd));
    CHECK(strcmp(link_of(ep), "anon_inode:[eventpoll]") == 0, "epoll: %s", link_of(ep));
    CHECK(strcmp(link_of(tfd), "anon_inode:[timerfd]") == 0, "timerfd: %s", link_of(tfd));
    CHECK(strcmp(link_of(sfd), "anon_inode:[signalfd]") == 0, "signalfd: %s", link_of(sfd));
    CHECK(strcmp(link_of(pidfd), "anon_inode:[pidfd]") == 0, "pidfd: %s", link_of(pidfd));

    /* fdinfo */
    int f = open("data", O_CREAT | O_RDWR | O_APPEND, 0644);
    write(f, "0123456789", 10);
    char *t = info(f);
    CHECK(t && has_line(t, "pos:\t10"), "file: pos 10");
    CHECK(t && has_line(t, "flags:\t0102002"), "file: flags O_LARGEFILE|O_APPEND|O_RDWR");
    CHECK(t && has_prefix_line(t, "mnt_id:\t") && has_prefix_line(t, "ino:\t"), "file: mnt_id and ino lines");
    t = info(pfd[1]);
    CHECK(t && has_line(t, "pos:\t0") && has_line(t, "flags:\t02000001"), "pipe write end: O_CLOEXEC|O_WRONLY");
    t = info(efd);
    CHECK(t && has_line(t, "flags:\t02000002") && has_line(t, "eventfd-count:                5"), "eventfd: count 5, O_CLOEXEC|O_RDWR");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 0xabc};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    ev.events = EPOLLOUT;
    ev.data.u64 = 7;
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev);
    t = info(ep);
    char tl[128];
    snprintf(tl, sizeof tl, "tfd: %8d events: %8x data: %16llx", efd, EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP, 0xabcULL);
    CHECK(t && has_prefix_line(t, tl), "epoll: the eventfd's tfd line (EPOLLERR|EPOLLHUP added)");
    snprintf(tl, sizeof tl, "tfd: %8d events: %8x data: %16llx", sv[1], EPOLLOUT | EPOLLERR | EPOLLHUP, 7ULL);
    CHECK(t && has_prefix_line(t, tl), "epoll: the socket's tfd line");
    struct itimerspec its = {{1, 0}, {100, 0}};
    timerfd_settime(tfd, 0, &its, NULL);
    t = info(tfd);
    CHECK(t && has_line(t, "clockid: 1") && has_line(t, "ticks: 0") && has_prefix_line(t, "it_value: (99,") &&
              has_line(t, "it_interval: (1, 0)"),
          "timerfd: clockid, ticks, it_value, it_interval");
    t = info(sfd);
    CHECK(t && has_line(t, "sigmask:\t0000000000000200"), "signalfd: sigmask of SIGUSR1");
    t = info(pidfd);
    snprintf(tl, sizeof tl, "Pid:\t%d", getpid());
    CHECK(t && has_line(t, tl), "pidfd: Pid line");
    CHECK(info(999) == NULL && errno == ENOENT, "fdinfo of a closed fd: ENOENT");

    /* /proc/net/unix */
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/l.sock", t_dir);
    bind(ls, (struct sockaddr *)&sa, sizeof sa);
    listen(ls, 5);
    fstat(ls, &st);
    char *u = slurp("/proc/net/unix");
    CHECK(u && strncmp(u, "Num       RefCount Protocol Flags    Type St Inode Path\n", 56) == 0, "/proc/net/unix header");
    char pat[256];
    snprintf(pat, sizeof pat, " 00000000 00010000 0001 01 %5lu %s\n", (unsigned long)st.st_ino, sa.sun_path);
    CHECK(u && strstr(u, pat) != NULL, "the listener: __SO_ACCEPTCON, stream, unconnected, its inode and path");
    fstat(sv[0], &st);
    snprintf(pat, sizeof pat, " 00000000 00000000 0001 03 %5lu\n", (unsigned long)st.st_ino);
    CHECK(u && strstr(u, pat) != NULL, "a socketpair end: stream, connected, no path");
    int dg = socket(AF_UNIX, SOCK_DGRAM, 0);
    fstat(dg, &st);
    u = slurp("/proc/net/unix");
    snprintf(pat, sizeof pat, " 00000000 00000000 0002 01 %5lu\n", (unsigned long)st.st_ino);
    CHECK(u && strstr(u, pat) != NULL, "a datagram socket: type 0002");
    close(dg);
    u = slurp("/proc/net/unix");
    CHECK(u && strstr(u, pat) == NULL, "gone once closed");
    close(ls);
    unlink(sa.sun_path);
    unlink("data");
    close(f);
    return t_end();
}
