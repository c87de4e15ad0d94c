/* socketpair(2)'s errors for every family and type, in Linux's order:
 * the type's flags (EINVAL), two free descriptors (EMFILE), the result
 * array (EFAULT), the family's range (EAFNOSUPPORT), the type's range
 * (EINVAL), the family's own checks (protocol, type, privilege), and last
 * the family's socketpair: EOPNOTSUPP for all but AF_UNIX. A failed call
 * leaves no descriptor behind. Only cases whose native answer does not
 * hang on the host's modules or sysctls are asked. */
#include "t_common.h"

#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#ifndef AF_PACKET
#define AF_PACKET 17
#endif

/* The lowest free descriptor (to see that nothing leaked). */
static int lowest_free(void) {
    int fd = dup(0);
    if (fd >= 0) close(fd);
    return fd;
}

static const char *ename(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

/* One call: print its answer (an errno name, or the pair's types). */
static void pair(const char *what, int family, int type, int proto, int want) {
    int sv[2] = {-1, -1};
    int before = lowest_free();
    errno = 0;
    int r = socketpair(family, type, proto, sv);
    int e = errno;
    if (r == 0) {
        close(sv[0]);
        close(sv[1]);
    }
    CHECK(r == (want ? -1 : 0) && (!want || e == want) && lowest_free() == before, "%s: %s", what,
          r == 0 ? "made" : ename(e));
}

static void flags_and_ranges(void) {
    pair("unix stream", AF_UNIX, SOCK_STREAM, 0, 0);
    pair("unix seqpacket, protocol PF_UNIX", AF_UNIX, SOCK_SEQPACKET, PF_UNIX, 0);
    pair("unknown type flag", AF_UNIX, SOCK_STREAM | 0x100000, 0, EINVAL);
    pair("unknown flag before a bad family", 12345, SOCK_STREAM | 0x100000, 0, EINVAL);
    pair("type -1 (flags bits set)", AF_UNIX, -1, 0, EINVAL);
    pair("family past NPROTO", 46, SOCK_STREAM, 0, EAFNOSUPPORT);
    pair("family -1", -1, SOCK_STREAM, 0, EAFNOSUPPORT);
    pair("family past NPROTO before a type past SOCK_MAX", 12345, 11, 0, EAFNOSUPPORT);
    pair("AF_UNSPEC", AF_UNSPEC, SOCK_STREAM, 0, EAFNOSUPPORT);
    pair("type past SOCK_MAX before an unbuilt family", AF_UNSPEC, 11, 0, EINVAL);
    pair("unix type 11", AF_UNIX, 11, 0, EINVAL);
    pair("unix type 11, protocol 2", AF_UNIX, 11, 2, EINVAL);
}

static void unix_checks(void) {
    pair("unix protocol 2", AF_UNIX, SOCK_STREAM, 2, EPROTONOSUPPORT);
    pair("unix protocol -1", AF_UNIX, SOCK_STREAM, -1, EPROTONOSUPPORT);
    pair("unix SOCK_RDM, protocol 2: protocol first", AF_UNIX, SOCK_RDM, 2, EPROTONOSUPPORT);
    pair("unix SOCK_RDM", AF_UNIX, SOCK_RDM, 0, ESOCKTNOSUPPORT);
    pair("unix type 0", AF_UNIX, 0, 0, ESOCKTNOSUPPORT);
    pair("unix SOCK_PACKET", AF_UNIX, SOCK_PACKET, 0, ESOCKTNOSUPPORT);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_RAW, 0, sv) == 0, "unix SOCK_RAW pair");
    int t0 = -1, t1 = -1;
    socklen_t l = sizeof t0;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &t0, &l);
    l = sizeof t1;
    getsockopt(sv[1], SOL_SOCKET, SO_TYPE, &t1, &l);
    CHECK(t0 == SOCK_DGRAM && t1 == SOCK_DGRAM, "both ends of a SOCK_RAW pair are SOCK_DGRAM");
    close(sv[0]);
    close(sv[1]);
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "unix dgram NONBLOCK|CLOEXEC");
    CHECK(fcntl(sv[0], F_GETFD) == FD_CLOEXEC && fcntl(sv[1], F_GETFD) == FD_CLOEXEC, "both ends close on exec");
    CHECK((fcntl(sv[0], F_GETFL) & O_NONBLOCK) && (fcntl(sv[1], F_GETFL) & O_NONBLOCK), "both ends non-blocking");
    CHECK(sv[1] == sv[0] + 1, "the two lowest free descriptors, in order");
    close(sv[0]);
    close(sv[1]);
}

static void other_families(void) {
    pair("inet stream", AF_INET, SOCK_STREAM, 0, EOPNOTSUPP);
    pair("inet stream, IPPROTO_TCP", AF_INET, SOCK_STREAM, IPPROTO_TCP, EOPNOTSUPP);
    pair("inet dgram", AF_INET, SOCK_DGRAM, 0, EOPNOTSUPP);
    pair("inet6 stream", AF_INET6, SOCK_STREAM, 0, EOPNOTSUPP);
    pair("inet6 dgram, IPPROTO_UDP", AF_INET6, SOCK_DGRAM, IPPROTO_UDP, EOPNOTSUPP);
    pair("inet raw ICMP (root)", AF_INET, SOCK_RAW, IPPROTO_ICMP, EOPNOTSUPP);
    pair("inet raw IPPROTO_RAW (root)", AF_INET, SOCK_RAW, IPPROTO_RAW, EOPNOTSUPP);
    pair("inet raw, protocol 0", AF_INET, SOCK_RAW, 0, EPROTONOSUPPORT);
    pair("inet6 raw, protocol 0", AF_INET6, SOCK_RAW, 0, EPROTONOSUPPORT);
    pair("inet stream, IPPROTO_UDP", AF_INET, SOCK_STREAM, IPPROTO_UDP, EPROTONOSUPPORT);
    pair("inet dgram, IPPROTO_TCP", AF_INET, SOCK_DGRAM, IPPROTO_TCP, EPROTONOSUPPORT);
    pair("inet dgram, IPPROTO_ICMPV6", AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6, EPROTONOSUPPORT);
    pair("inet6 dgram, IPPROTO_ICMP", AF_INET6, SOCK_DGRAM, IPPROTO_ICMP, EPROTONOSUPPORT);
    pair("inet protocol 263 (IPPROTO_MAX)", AF_INET, SOCK_STREAM, 263, EINVAL);
    pair("inet protocol -1", AF_INET, SOCK_STREAM, -1, EINVAL);
    pair("inet6 protocol 1000", AF_INET6, SOCK_DGRAM, 1000, EINVAL);
    pair("inet SOCK_RDM, protocol 300: protocol range first", AF_INET, SOCK_RDM, 300, EINVAL);
    pair("inet SOCK_RDM", AF_INET, SOCK_RDM, 0, ESOCKTNOSUPPORT);
    pair("inet type 0", AF_INET, 0, 0, ESOCKTNOSUPPORT);
    pair("inet6 SOCK_RDM", AF_INET6, SOCK_RDM, 0, ESOCKTNOSUPPORT);
    pair("netlink raw, NETLINK_ROUTE", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, EOPNOTSUPP);
    pair("netlink dgram, NETLINK_ROUTE", AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE, EOPNOTSUPP);
    pair("netlink stream", AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE, ESOCKTNOSUPPORT);
    pair("netlink stream, protocol 99: type first", AF_NETLINK, SOCK_STREAM, 99, ESOCKTNOSUPPORT);
    pair("netlink protocol 32 (MAX_LINKS)", AF_NETLINK, SOCK_RAW, 32, EPROTONOSUPPORT);
    pair("netlink protocol -1", AF_NETLINK, SOCK_RAW, -1, EPROTONOSUPPORT);
    pair("packet raw (root)", AF_PACKET, SOCK_RAW, 0, EOPNOTSUPP);
    pair("packet dgram (root)", AF_PACKET, SOCK_DGRAM, 0, EOPNOTSUPP);
    pair("packet stream (root)", AF_PACKET, SOCK_STREAM, 0, ESOCKTNOSUPPORT);
}

/* Without privilege: AF_PACKET and inet raw sockets are EPERM, after the
 * checks that come before the privilege's. */
static void unprivileged(void) {
    pid_t p = fork();
    if (p == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
        pair("unprivileged: packet raw", AF_PACKET, SOCK_RAW, 0, EPERM);
        pair("unprivileged: packet stream (privilege first)", AF_PACKET, SOCK_STREAM, 0, EPERM);
        pair("unprivileged: inet raw ICMP", AF_INET, SOCK_RAW, IPPROTO_ICMP, EPERM);
        pair("unprivileged: inet raw IPPROTO_RAW", AF_INET, SOCK_RAW, IPPROTO_RAW, EPERM);
        pair("unprivileged: inet6 raw ICMPV6", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, EPERM);
        pair("unprivileged: inet raw, protocol 0 (lookup first)", AF_INET, SOCK_RAW, 0, EPROTONOSUPPORT);
        pair("unprivileged: inet SOCK_RDM (type first)", AF_INET, SOCK_RDM, 0, ESOCKTNOSUPPORT);
        pair("unprivileged: inet raw, protocol 300 (range first)", AF_INET, SOCK_RAW, 300, EINVAL);
        pair("unprivileged: unix stream", AF_UNIX, SOCK_STREAM, 0, 0);
        _exit(t_failures ? 1 : 0);
    }
    SAY("unprivileged child: %s\n", t_wait(p));
}

/* The result array: written before the family is looked at. */
static void bad_array(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED && munmap(m + pg, pg) == 0, "a page with a hole after it");
    char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int before = lowest_free();
    int r;
    errno = 0;
    r = socketpair(AF_UNIX, SOCK_STREAM, 0, NULL);
    CHECK(r == -1 && errno == EFAULT, "unix, NULL array: EFAULT");
    errno = 0;
    r = socketpair(AF_INET, SOCK_STREAM, 0, NULL);
    CHECK(r == -1 && errno == EFAULT, "inet, NULL array: EFAULT before EOPNOTSUPP");
    errno = 0;
    r = socketpair(AF_UNSPEC, SOCK_STREAM, 0, NULL);
    CHECK(r == -1 && errno == EFAULT, "AF_UNSPEC, NULL array: EFAULT before EAFNOSUPPORT");
    errno = 0;
    r = socketpair(46, 11, 0, NULL);
    CHECK(r == -1 && errno == EFAULT, "bad family and type, NULL array: EFAULT first");
    errno = 0;
    r = socketpair(AF_UNIX, SOCK_STREAM | 0x100000, 0, NULL);
    CHECK(r == -1 && errno == EINVAL, "bad flag, NULL array: EINVAL first");
    errno = 0;
    r = socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)ro);
    CHECK(r == -1 && errno == EFAULT, "read-only array: EFAULT");
    errno = 0;
    r = socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)(m + pg - 4));
    CHECK(r == -1 && errno == EFAULT, "array across the end of a mapping: EFAULT");
    CHECK(lowest_free() == before, "no descriptor left behind");
    munmap(m, pg);
    munmap(ro, pg);
}

/* Two free descriptors are reserved first: EMFILE before anything the
 * family says. */
static void descriptors(void) {
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    int base = lowest_free();
    rl.rlim_cur = base + 1; /* one free descriptor */
    rl.rlim_max = old.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "RLIMIT_NOFILE leaves one free descriptor");
    pair("one free descriptor: unix", AF_UNIX, SOCK_STREAM, 0, EMFILE);
    pair("one free descriptor: inet", AF_INET, SOCK_STREAM, 0, EMFILE);
    pair("one free descriptor: bad family", 12345, SOCK_STREAM, 0, EMFILE);
    pair("one free descriptor: bad flag", AF_UNIX, SOCK_STREAM | 0x100000, 0, EINVAL);
    int sv[2];
    errno = 0;
    int r = socketpair(AF_UNIX, SOCK_STREAM, 0, NULL);
    CHECK(r == -1 && errno == EMFILE, "one free descriptor, NULL array: EMFILE before EFAULT");
    rl.rlim_cur = base + 2;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "RLIMIT_NOFILE leaves two");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && sv[0] == base && sv[1] == base + 1, "two free: the pair fits");
    close(sv[0]);
    close(sv[1]);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "RLIMIT_NOFILE restored");
}

int main(void) {
    t_begin("t_socketpair");
    flags_and_ranges();
    unix_checks();
    other_families();
    unprivileged();
    bad_array();
    descriptors();
    return t_end();
}
