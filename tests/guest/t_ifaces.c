/* The interface table seen four ways agrees with itself, whatever
 * interfaces there are (the host has its own; the suite boots the guest
 * with eth0=user eth1=user): SIOCGIFCONF (its length query, a short
 * buffer, each entry's name, index and address asked back by ioctl),
 * /proc/net/dev, glibc's if_nameindex and getifaddrs (rtnetlink dumps),
 * /proc/net/route (each route's device exists, each gateway is on a
 * connected network, each up interface's network has its route), and
 * routing by destination: a UDP socket connected into an interface's
 * network takes that interface's address. Only counts-free facts are
 * printed. Compared with the native run. */
#include "t_common.h"

#include <net/if.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>

#define MAXIF 64

struct iface {
    char name[IFNAMSIZ];
    int index;
    int up;
    int has_addr;
    struct in_addr addr, mask;
};

static struct iface ifs[MAXIF];
static int nifs;

static struct iface *find(const char *name) {
    for (int i = 0; i < nifs; i++)
        if (strcmp(ifs[i].name, name) == 0) return &ifs[i];
    return NULL;
}

/* Copies an interface name (at most IFNAMSIZ - 1 bytes, then a NUL). */
static void copy_name(char *to, const char *from) {
    size_t n = strnlen(from, IFNAMSIZ - 1);
    memcpy(to, from, n);
    to[n] = 0;
}

/* The names in /proc/net/dev, in its order. */
static int proc_dev_names(char names[][IFNAMSIZ], int max) {
    FILE *f = fopen("/proc/net/dev", "r");
    char line[512];
    int n = 0;
    if (!f) return -1;
    for (int l = 0; fgets(line, sizeof line, f); l++) {
        if (l < 2 || n >= max) continue;
        char *c = strchr(line, ':');
        if (!c) continue;
        *c = 0;
        char *p = line;
        while (*p == ' ') p++;
        copy_name(names[n++], p);
    }
    fclose(f);
    return n;
}

static void ifconf_checks(int s) {
    struct ifconf ic = {.ifc_len = 0, .ifc_buf = NULL};
    CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len > 0 &&
              ic.ifc_len % (int)sizeof(struct ifreq) == 0,
          "SIOCGIFCONF without a buffer: the length all entries need");
    int need = ic.ifc_len;
    struct ifreq *reqs = calloc(MAXIF, sizeof *reqs);
    ic.ifc_len = MAXIF * sizeof *reqs;
    ic.ifc_req = reqs;
    CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len == need,
          "SIOCGIFCONF with room: every entry, the length asked before");
    int n = ic.ifc_len / sizeof *reqs;
    CHECK(n >= 1 && strcmp(reqs[0].ifr_name, "lo") == 0, "lo comes first");
    int consistent = 1, distinct = 1, inet = 1;
    for (int i = 0; i < n; i++) {
        struct ifreq r;
        struct sockaddr_in *a = (struct sockaddr_in *)&reqs[i].ifr_addr;
        inet &= a->sin_family == AF_INET;
        memset(&r, 0, sizeof r);
        memcpy(r.ifr_name, reqs[i].ifr_name, IFNAMSIZ);
        int ok = ioctl(s, SIOCGIFADDR, &r) == 0 &&
                 ((struct sockaddr_in *)&r.ifr_addr)->sin_addr.s_addr == a->sin_addr.s_addr;
        ok = ok && ioctl(s, SIOCGIFINDEX, &r) == 0;
        int idx = r.ifr_ifindex;
        struct ifreq byidx;
        memset(&byidx, 0, sizeof byidx);
        byidx.ifr_ifindex = idx;
        ok = ok && ioctl(s, SIOCGIFNAME, &byidx) == 0 && strcmp(byidx.ifr_name, reqs[i].ifr_name) == 0;
        consistent &= ok;
        for (int j = 0; j < i; j++) {
            struct ifreq o;
            memset(&o, 0, sizeof o);
            memcpy(o.ifr_name, reqs[j].ifr_name, IFNAMSIZ);
            if (ioctl(s, SIOCGIFINDEX, &o) == 0 && o.ifr_ifindex == idx) distinct = 0;
        }
    }
    CHECK(inet, "each SIOCGIFCONF entry is an AF_INET address");
    CHECK(consistent, "each entry's address, index and name asked back agree");
    CHECK(distinct, "each entry has its own index");
    struct ifreq one[2];
    memset(one, 0, sizeof one);
    ic.ifc_len = sizeof one[0] + sizeof one[0] / 2;
    ic.ifc_req = one;
    CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len == (int)sizeof one[0] &&
              strcmp(one[0].ifr_name, "lo") == 0,
          "a buffer for one and a half entries gets one");
    free(reqs);
}

static void table_checks(int s) {
    char names[MAXIF][IFNAMSIZ];
    int n = proc_dev_names(names, MAXIF);
    CHECK(n >= 1, "/proc/net/dev lists interfaces");
    struct if_nameindex *ni = if_nameindex();
    int count = 0, same = ni != NULL;
    for (struct if_nameindex *p = ni; p && p->if_index; p++) count++;
    same = same && count == n;
    for (int i = 0; same && i < n; i++) {
        unsigned idx = if_nametoindex(names[i]);
        int found = 0;
        for (struct if_nameindex *p = ni; p->if_index; p++)
            if (p->if_index == idx && strcmp(p->if_name, names[i]) == 0) found = 1;
        same = found;
    }
    CHECK(same, "if_nameindex (an rtnetlink link dump) names what /proc/net/dev does, with the ioctl's indexes");
    if (ni) if_freenameindex(ni);

    int flags_ok = 1;
    for (int i = 0; i < n && nifs < MAXIF; i++) {
        struct iface *f = &ifs[nifs++];
        struct ifreq r;
        memset(f, 0, sizeof *f);
        copy_name(f->name, names[i]);
        memset(&r, 0, sizeof r);
        copy_name(r.ifr_name, names[i]);
        if (ioctl(s, SIOCGIFFLAGS, &r) != 0) flags_ok = 0;
        f->up = (r.ifr_flags & IFF_UP) != 0;
        if (ioctl(s, SIOCGIFADDR, &r) == 0) {
            f->has_addr = 1;
            f->addr = ((struct sockaddr_in *)&r.ifr_addr)->sin_addr;
            if (ioctl(s, SIOCGIFNETMASK, &r) != 0) flags_ok = 0;
            f->mask = ((struct sockaddr_in *)&r.ifr_netmask)->sin_addr;
        }
        f->index = if_nametoindex(names[i]);
    }
    CHECK(flags_ok, "each interface's flags (and netmask with an address) can be asked");

    struct ifaddrs *ia;
    int ga_ok = getifaddrs(&ia) == 0;
    if (ga_ok) {
        for (struct ifaddrs *p = ia; p; p = p->ifa_next) {
            if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET) continue;
            struct iface *f = find(p->ifa_name);
            if (!f || !f->has_addr ||
                ((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr != f->addr.s_addr)
                ga_ok = 0;
        }
        freeifaddrs(ia);
    }
    CHECK(ga_ok, "getifaddrs (an rtnetlink address dump): each IPv4 address is the ioctl's");
}

struct route {
    char dev[IFNAMSIZ];
    unsigned dst, gw, mask, flags;
};

static void route_checks(void) {
    FILE *f = fopen("/proc/net/route", "r");
    char line[512];
    struct route rt[128];
    int n = 0;
    CHECK(f != NULL, "/proc/net/route opens");
    if (!f) return;
    for (int l = 0; fgets(line, sizeof line, f); l++) {
        if (l == 0 || n >= 128) continue;
        struct route *r = &rt[n];
        if (sscanf(line, "%15s %x %x %x %*d %*d %*d %x", r->dev, &r->dst, &r->gw, &r->flags, &r->mask) == 5) n++;
    }
    fclose(f);
    int devs = 1, gws = 1;
    for (int i = 0; i < n; i++) {
        if (!find(rt[i].dev)) devs = 0;
        if (!(rt[i].flags & 0x2)) continue; /* RTF_GATEWAY */
        int on_link = 0;
        for (int j = 0; j < n; j++)
            if (!(rt[j].flags & 0x2) && (rt[i].gw & rt[j].mask) == rt[j].dst &&
                strcmp(rt[i].dev, rt[j].dev) == 0)
                on_link = 1;
        gws &= on_link;
    }
    CHECK(devs, "each route goes out of an interface /proc/net/dev lists");
    CHECK(gws, "each gateway is on a connected network of its route's interface");
    int connected = 1;
    for (int i = 0; i < nifs; i++) {
        struct iface *x = &ifs[i];
        if (!x->up || !x->has_addr || strcmp(x->name, "lo") == 0) continue;
        int found = 0;
        for (int j = 0; j < n; j++)
            if (strcmp(rt[j].dev, x->name) == 0 && !(rt[j].flags & 0x2) &&
                rt[j].mask == x->mask.s_addr && rt[j].dst == (x->addr.s_addr & x->mask.s_addr))
                found = 1;
        connected &= found;
    }
    CHECK(connected, "each up interface's network has its connected route");
}

/* A UDP socket connected into an interface's network (no packet is
 * sent) is given that interface's address. */
static void source_checks(void) {
    int ok = 1;
    for (int i = 0; i < nifs; i++) {
        struct iface *x = &ifs[i];
        unsigned mask = ntohl(x->mask.s_addr);
        if (!x->up || !x->has_addr || strcmp(x->name, "lo") == 0 || (mask & 0xfffffffc) == 0xfffffffc)
            continue;
        unsigned net = ntohl(x->addr.s_addr) & mask;
        unsigned peer = net + 1 == ntohl(x->addr.s_addr) ? net + 2 : net + 1;
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
        a.sin_addr.s_addr = htonl(peer);
        struct sockaddr_in me;
        socklen_t len = sizeof me;
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(s, (struct sockaddr *)&me, &len) != 0 || me.sin_addr.s_addr != x->addr.s_addr)
            ok = 0;
        close(s);
    }
    CHECK(ok, "a socket connected into each up interface's network takes that interface's address");
}

int main(void) {
    t_begin("t_ifaces");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0, "an AF_INET socket for the ioctls");
    ifconf_checks(s);
    table_checks(s);
    route_checks();
    source_checks();
    close(s);
    return t_end();
}
