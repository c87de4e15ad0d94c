/* rtnetlink (AF_NETLINK, NETLINK_ROUTE) as ip(8) and glibc use it:
 * port ids, the link, address and route dumps walked message by message
 * (lo's entries checked field by field: the host has other interfaces,
 * the guest may not), acks and errors, privilege, MSG_PEEK|MSG_TRUNC,
 * and glibc's getifaddrs and if_nameindex (both built on these dumps).
 * Compared with the native run; needs root (as the suite runs). */
#include "t_common.h"

#include <net/if.h> /* before the linux/ headers: libc-compat then skips its copies */

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif
#define OPER_UNKNOWN 0 /* IF_OPER_UNKNOWN: linux/if.h clashes with net/if.h */

static unsigned seq = 100;

static int nl_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl a = {.nl_family = AF_NETLINK};
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    return fd;
}

static unsigned portid(int fd) {
    struct sockaddr_nl a;
    socklen_t l = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &l) != 0 || l != sizeof a) return 0;
    return a.nl_pid;
}

/* Sends one request: header, body, optional attributes already in body. */
static int nl_send(int fd, int type, int flags, const void *body, size_t len) {
    char buf[512];
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, sizeof buf);
    h->nlmsg_len = NLMSG_LENGTH(len);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | flags;
    h->nlmsg_seq = ++seq;
    memcpy(NLMSG_DATA(h), body, len);
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    return sendto(fd, buf, h->nlmsg_len, 0, (struct sockaddr *)&k, sizeof k);
}

static void add_attr(char *body, size_t *len, int type, const void *data, size_t dlen) {
    struct rtattr *a = (struct rtattr *)(body + NLMSG_ALIGN(*len));
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(dlen);
    memcpy(RTA_DATA(a), data, dlen);
    *len = NLMSG_ALIGN(*len) + RTA_ALIGN(a->rta_len);
}

/* The ack or error answering the last request: its errno (0 for an ack),
 * -1 if no NLMSG_ERROR came; *quoted: the bytes after the error code. */
static int nl_ack(int fd, int *quoted) {
    char buf[8192];
    struct sockaddr_nl from;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    int n = recvmsg(fd, &m, MSG_DONTWAIT);
    if (n < 0) return -1;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq != seq) continue;
        struct nlmsgerr *e = NLMSG_DATA(h);
        if (quoted) *quoted = h->nlmsg_len - NLMSG_HDRLEN - sizeof(int);
        return -e->error;
    }
    return -1;
}

struct dump {
    int msgs, done, bad_hdr, from_kernel;
    char lo[2048];
    int lo_len;
};

/* Receives a whole dump; copies the first message `want` accepts. */
static int dump(int fd, int type, unsigned char family, struct dump *d, int (*want)(struct nlmsghdr *)) {
    struct rtgenmsg g = {.rtgen_family = family};
    memset(d, 0, sizeof *d);
    if (nl_send(fd, type, NLM_F_DUMP, &g, sizeof g) < 0) return -1;
    unsigned me = portid(fd);
    d->from_kernel = 1;
    for (int rounds = 0; !d->done && rounds < 100; rounds++) {
        char buf[32768];
        struct sockaddr_nl from;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
        int n = recvmsg(fd, &m, 0);
        if (n < 0) return -1;
        if (from.nl_pid != 0 || m.msg_namelen != sizeof from) d->from_kernel = 0;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq || h->nlmsg_pid != me || !(h->nlmsg_flags & NLM_F_MULTI)) d->bad_hdr++;
            if (h->nlmsg_type == NLMSG_DONE) {
                d->done = 1;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) return -1;
            d->msgs++;
            if (!d->lo_len && want(h) && h->nlmsg_len <= sizeof d->lo) {
                memcpy(d->lo, h, h->nlmsg_len);
                d->lo_len = h->nlmsg_len;
            }
        }
    }
    return 0;
}

static struct rtattr *attr(struct nlmsghdr *h, size_t fixed, int type) {
    int len = h->nlmsg_len - NLMSG_LENGTH(fixed);
    for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(fixed)); RTA_OK(a, len);
         a = RTA_NEXT(a, len))
        if (a->rta_type == type) return a;
    return NULL;
}

static int is_lo_link(struct nlmsghdr *h) {
    return h->nlmsg_type == RTM_NEWLINK && ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index == 1;
}
static int is_lo_v4(struct nlmsghdr *h) {
    struct ifaddrmsg *a = NLMSG_DATA(h);
    return h->nlmsg_type == RTM_NEWADDR && a->ifa_index == 1 && a->ifa_family == AF_INET;
}
static int is_lo_v6(struct nlmsghdr *h) {
    struct ifaddrmsg *a = NLMSG_DATA(h);
    return h->nlmsg_type == RTM_NEWADDR && a->ifa_index == 1 && a->ifa_family == AF_INET6;
}
static int is_local_127(struct nlmsghdr *h) {
    struct rtmsg *r = NLMSG_DATA(h);
    struct rtattr *d = attr(h, sizeof *r, RTA_DST);
    return h->nlmsg_type == RTM_NEWROUTE && r->rtm_table == RT_TABLE_LOCAL && r->rtm_dst_len == 32 &&
           r->rtm_type == RTN_LOCAL && d && *(unsigned *)RTA_DATA(d) == htonl(INADDR_LOOPBACK);
}

static void sockets(void) {
    int fd = nl_open();
    CHECK(fd >= 0, "socket+bind NETLINK_ROUTE");
    CHECK(portid(fd) == (unsigned)getpid(), "first socket's port id is the pid");
    int fd2 = nl_open();
    CHECK(fd2 >= 0 && (int)portid(fd2) < 0, "second socket's port id is negative");
    struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_pid = portid(fd)};
    int s3 = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
    errno = 0;
    CHECK(bind(s3, (struct sockaddr *)&a, sizeof a) < 0 && errno == EADDRINUSE, "bind to a port id in use: EADDRINUSE");
    errno = 0;
    CHECK(bind(s3, (struct sockaddr *)&a, 8) < 0 && errno == EINVAL, "short sockaddr_nl: EINVAL");
    close(s3);
    errno = 0;
    CHECK(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE) < 0 && errno == ESOCKTNOSUPPORT,
          "SOCK_STREAM: ESOCKTNOSUPPORT");
    int t, v;
    socklen_t l = sizeof v;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) == 0 && v == AF_NETLINK, "SO_DOMAIN");
    l = sizeof t;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) == 0 && t == SOCK_RAW, "SO_TYPE");
    v = 1;
    CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v) == 0, "NETLINK_EXT_ACK accepted");
    v = RTNLGRP_LINK;
    CHECK(setsockopt(fd2, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v) == 0, "join RTNLGRP_LINK");
    close(fd);
    close(fd2);
    int fd3 = nl_open();
    CHECK(portid(fd3) == (unsigned)getpid(), "the pid's port id is free again after close");
    close(fd3);
}

static void dumps(void) {
    int fd = nl_open();
    struct dump d;
    CHECK(dump(fd, RTM_GETLINK, AF_UNSPEC, &d, is_lo_link) == 0 && d.done, "RTM_GETLINK dump ends with NLMSG_DONE");
    CHECK(d.bad_hdr == 0 && d.from_kernel, "every message: NLM_F_MULTI, our seq and port, from port 0");
    CHECK(d.msgs >= 1 && d.lo_len > 0, "lo is listed");
    struct nlmsghdr *h = (struct nlmsghdr *)d.lo;
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    unsigned want = IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP;
    CHECK(ifi->ifi_type == ARPHRD_LOOPBACK && (ifi->ifi_flags & want) == want, "lo: loopback, up, running, lower up");
    struct rtattr *a = attr(h, sizeof *ifi, IFLA_IFNAME);
    CHECK(a && strcmp(RTA_DATA(a), "lo") == 0, "lo: IFLA_IFNAME");
    a = attr(h, sizeof *ifi, IFLA_MTU);
    CHECK(a && *(unsigned *)RTA_DATA(a) == 65536, "lo: IFLA_MTU 65536");
    a = attr(h, sizeof *ifi, IFLA_ADDRESS);
    CHECK(a && RTA_PAYLOAD(a) == 6, "lo: 6-byte IFLA_ADDRESS");
    a = attr(h, sizeof *ifi, IFLA_OPERSTATE);
    CHECK(a && *(unsigned char *)RTA_DATA(a) == OPER_UNKNOWN, "lo: operstate unknown");
    a = attr(h, sizeof *ifi, IFLA_QDISC);
    CHECK(a && strcmp(RTA_DATA(a), "noqueue") == 0, "lo: qdisc noqueue");
    a = attr(h, sizeof *ifi, IFLA_STATS);
    CHECK(a && RTA_PAYLOAD(a) >= sizeof(struct rtnl_link_stats), "lo: IFLA_STATS");
    a = attr(h, sizeof *ifi, IFLA_STATS64);
    CHECK(a && RTA_PAYLOAD(a) >= 23 * 8, "lo: IFLA_STATS64");

    CHECK(dump(fd, RTM_GETADDR, AF_INET, &d, is_lo_v4) == 0 && d.done && d.lo_len, "RTM_GETADDR AF_INET: lo's");
    h = (struct nlmsghdr *)d.lo;
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    CHECK(ifa->ifa_prefixlen == 8 && ifa->ifa_scope == RT_SCOPE_HOST, "127.0.0.1: /8, scope host");
    a = attr(h, sizeof *ifa, IFA_LOCAL);
    CHECK(a && *(unsigned *)RTA_DATA(a) == htonl(INADDR_LOOPBACK), "IFA_LOCAL 127.0.0.1");
    a = attr(h, sizeof *ifa, IFA_LABEL);
    CHECK(a && strcmp(RTA_DATA(a), "lo") == 0, "IFA_LABEL lo");
    a = attr(h, sizeof *ifa, IFA_FLAGS);
    CHECK(a && (*(unsigned *)RTA_DATA(a) & IFA_F_PERMANENT), "IFA_FLAGS permanent");
    CHECK(dump(fd, RTM_GETADDR, AF_INET6, &d, is_lo_v6) == 0 && d.done && d.lo_len, "RTM_GETADDR AF_INET6: lo's");
    h = (struct nlmsghdr *)d.lo;
    ifa = NLMSG_DATA(h);
    a = attr(h, sizeof *ifa, IFA_ADDRESS);
    CHECK(ifa->ifa_prefixlen == 128 && a && memcmp(RTA_DATA(a), &in6addr_loopback, 16) == 0, "::1/128");
    CHECK(dump(fd, RTM_GETADDR, AF_INET6, &d, is_lo_v4) == 0 && !d.lo_len, "an AF_INET6 dump has no IPv4");

    CHECK(dump(fd, RTM_GETROUTE, AF_INET, &d, is_local_127) == 0 && d.done && d.lo_len,
          "RTM_GETROUTE: local 127.0.0.1 in the local table");
    h = (struct nlmsghdr *)d.lo;
    struct rtmsg *rt = NLMSG_DATA(h);
    a = attr(h, sizeof *rt, RTA_OIF);
    CHECK(rt->rtm_scope == RT_SCOPE_HOST && rt->rtm_protocol == RTPROT_KERNEL && a && *(int *)RTA_DATA(a) == 1,
          "  scope host, proto kernel, dev lo");

    /* `ip route get 127.0.0.1` */
    char body[256] = {0};
    size_t len = sizeof(struct rtmsg);
    ((struct rtmsg *)body)->rtm_family = AF_INET;
    unsigned lo = htonl(INADDR_LOOPBACK);
    add_attr(body, &len, RTA_DST, &lo, 4);
    CHECK(nl_send(fd, RTM_GETROUTE, 0, body, len) > 0, "route get 127.0.0.1 sent");
    char buf[4096];
    int n = recv(fd, buf, sizeof buf, 0);
    h = (struct nlmsghdr *)buf;
    rt = NLMSG_DATA(h);
    CHECK(n > 0 && h->nlmsg_type == RTM_NEWROUTE && !(h->nlmsg_flags & NLM_F_MULTI) && rt->rtm_type == RTN_LOCAL,
          "  one RTM_NEWROUTE, type local");

    /* MSG_PEEK|MSG_TRUNC sizes the next datagram; it is still there. */
    struct rtgenmsg g = {.rtgen_family = AF_UNSPEC};
    nl_send(fd, RTM_GETLINK, NLM_F_DUMP, &g, sizeof g);
    char tiny[16];
    static char big[1 << 16];
    int full = recv(fd, tiny, sizeof tiny, MSG_PEEK | MSG_TRUNC);
    int got = recv(fd, big, sizeof big, 0);
    CHECK(full > 16 && got == full, "MSG_PEEK|MSG_TRUNC gives the datagram's length");
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    close(fd);
}

static void changes(void) {
    int fd = nl_open();
    char body[256] = {0};
    size_t len = sizeof(struct ifaddrmsg);
    struct ifaddrmsg *ifa = (struct ifaddrmsg *)body;
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 8;
    ifa->ifa_index = 1;
    unsigned lo = htonl(INADDR_LOOPBACK);
    add_attr(body, &len, IFA_LOCAL, &lo, 4);
    add_attr(body, &len, IFA_ADDRESS, &lo, 4);
    nl_send(fd, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, body, len);
    int quoted = 0;
    CHECK(nl_ack(fd, &quoted) == EEXIST, "NEWADDR 127.0.0.1/8 on lo, EXCL: EEXIST");
    CHECK(quoted == (int)NLMSG_LENGTH(len), "  the error quotes the whole request");
    unsigned two = htonl(0x7f000002);
    len = sizeof(struct ifaddrmsg);
    add_attr(body, &len, IFA_LOCAL, &two, 4);
    nl_send(fd, RTM_DELADDR, NLM_F_ACK, body, len);
    CHECK(nl_ack(fd, NULL) == EADDRNOTAVAIL, "DELADDR of an address lo lacks: EADDRNOTAVAIL");

    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 1};
    nl_send(fd, RTM_SETLINK, NLM_F_ACK, &ifi, sizeof ifi);
    CHECK(nl_ack(fd, &quoted) == 0, "SETLINK lo changing nothing: ack");
    CHECK(quoted == NLMSG_HDRLEN, "  an ack quotes the header only");
    ifi.ifi_index = 9999;
    nl_send(fd, RTM_GETLINK, 0, &ifi, sizeof ifi);
    CHECK(nl_ack(fd, NULL) == ENODEV, "GETLINK of index 9999: ENODEV");
    ifi.ifi_index = 0;
    char lbody[64] = {0};
    size_t llen = sizeof ifi;
    memcpy(lbody, &ifi, sizeof ifi);
    add_attr(lbody, &llen, IFLA_IFNAME, "lo", 3);
    nl_send(fd, RTM_GETLINK, 0, lbody, llen);
    char buf[4096];
    int n = recv(fd, buf, sizeof buf, 0);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    CHECK(n > 0 && h->nlmsg_type == RTM_NEWLINK && ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index == 1,
          "GETLINK by IFLA_IFNAME lo: index 1");

    /* Control messages and non-requests are acked, never answered. */
    nl_send(fd, NLMSG_NOOP, NLM_F_ACK, "", 0);
    CHECK(nl_ack(fd, NULL) == 0, "NLMSG_NOOP with NLM_F_ACK: ack");
    nl_send(fd, NLMSG_NOOP, 0, "", 0);
    errno = 0;
    CHECK(recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == EAGAIN, "NLMSG_NOOP without it: nothing");

    struct sockaddr_nl other = {.nl_family = AF_NETLINK, .nl_pid = 0x7ffffff0};
    errno = 0;
    CHECK(sendto(fd, buf, 20, 0, (struct sockaddr *)&other, sizeof other) < 0 && errno == ECONNREFUSED,
          "to a port nobody holds: ECONNREFUSED");

    /* Without privilege: every change is EPERM, gets still answered. */
    pid_t p = fork();
    if (p == 0) {
        if (setuid(65534) != 0) _exit(9);
        len = sizeof(struct ifaddrmsg);
        add_attr(body, &len, IFA_LOCAL, &two, 4);
        nl_send(fd, RTM_NEWADDR, NLM_F_CREATE | NLM_F_ACK, body, len);
        int e = nl_ack(fd, NULL);
        struct rtgenmsg g = {.rtgen_family = AF_INET};
        nl_send(fd, RTM_GETADDR, NLM_F_DUMP, &g, sizeof g);
        int ok = recv(fd, buf, sizeof buf, 0) > 0;
        _exit(e == EPERM && ok ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "as nobody: NEWADDR EPERM, GETADDR answered");
    close(fd);
}

static void glibc(void) {
    struct ifaddrs *all, *i;
    CHECK(getifaddrs(&all) == 0, "getifaddrs");
    int packet = 0, inet = 0, inet6 = 0, unnamed = 0;
    for (i = all; i; i = i->ifa_next) {
        if (!i->ifa_name) unnamed++;
        if (strcmp(i->ifa_name, "lo") != 0 || !i->ifa_addr) continue;
        unsigned want = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
        if ((i->ifa_flags & want) != want) continue;
        switch (i->ifa_addr->sa_family) {
        case AF_PACKET:
            packet += i->ifa_data != NULL;
            break;
        case AF_INET:
            inet += ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
                    ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr == htonl(0xff000000);
            break;
        case AF_INET6:
            inet6 += memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, &in6addr_loopback, 16) == 0;
            break;
        }
    }
    freeifaddrs(all);
    CHECK(unnamed == 0, "every entry named");
    CHECK(packet == 1, "lo: one AF_PACKET entry with link stats");
    CHECK(inet == 1, "lo: 127.0.0.1 netmask 255.0.0.0");
    CHECK(inet6 == 1, "lo: ::1");
    struct if_nameindex *ni = if_nameindex();
    int found = 0;
    for (struct if_nameindex *x = ni; x && x->if_index; x++) found += x->if_index == 1 && !strcmp(x->if_name, "lo");
    if (ni) if_freenameindex(ni);
    CHECK(found == 1, "if_nameindex lists lo as 1");
}

int main(void) {
    t_begin("t_netlink");
    sockets();
    dumps();
    changes();
    glibc();
    return t_end();
}
