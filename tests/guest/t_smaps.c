/* Guest test: /proc/self/smaps, smaps_rollup and the Vm* lines of status
 * count as Linux counts. Private anonymous pages written are
 * Private_Dirty and Anonymous; after fork they are Shared_Dirty with half
 * their size as Pss, until a write copies them; shared anonymous memory is
 * not Anonymous; a file mapping's pages are neither; mlocked pages show in
 * Locked; the rollup is the sum; VmData grows by private writable mappings
 * only, VmHWM and VmPeak keep the peaks after munmap. Only derived facts
 * are printed (no addresses). */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>

#define PG 4096
static char text[1 << 20];

static int slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int n = 0, k;
    while (n < (int)sizeof text - 1 && (k = read(fd, text + n, sizeof text - 1 - n)) > 0) n += k;
    close(fd);
    text[n] = 0;
    return n;
}

static long field_in(const char *from, const char *end, const char *name) {
    size_t len = strlen(name);
    for (const char *p = from; p && p < end; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (strncmp(p, name, len) == 0 && p[len] == ':') return atol(p + len + 1);
    }
    return -1;
}

/* The figures of the smaps entry for the VMA starting at `addr`. */
struct entry {
    long size, rss, pss, sc, sd, pc, pd, anon, swap, locked;
};

static struct entry smaps_of(void *addr) {
    struct entry e;
    memset(&e, 0xff, sizeof e);
    if (slurp("/proc/self/smaps") <= 0) return e;
    char head[32];
    snprintf(head, sizeof head, "%08lx-", (unsigned long)addr);
    char *p = text;
    while (p && *p) {
        if (strncmp(p, head, strlen(head)) == 0) break;
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) return e;
    char *end = strstr(p, "VmFlags:");
    if (!end) return e;
    e.size = field_in(p, end, "Size");
    e.rss = field_in(p, end, "Rss");
    e.pss = field_in(p, end, "Pss");
    e.sc = field_in(p, end, "Shared_Clean");
    e.sd = field_in(p, end, "Shared_Dirty");
    e.pc = field_in(p, end, "Private_Clean");
    e.pd = field_in(p, end, "Private_Dirty");
    e.anon = field_in(p, end, "Anonymous");
    e.swap = field_in(p, end, "Swap");
    e.locked = field_in(p, end, "Locked");
    return e;
}

static long status(const char *name) {
    if (slurp("/proc/self/status") <= 0) return -1;
    return field_in(text, text + strlen(text), name);
}

static void touch(volatile char *p, int pages) {
    for (int i = 0; i < pages; i++) p[i * PG] = 1;
}

static void say(const char *what, struct entry e) {
    SAY("%s: size %ld rss %ld pss %ld shared %ld/%ld private %ld/%ld anon %ld swap %ld locked %ld\n",
        what, e.size, e.rss, e.pss, e.sc, e.sd, e.pc, e.pd, e.anon, e.swap, e.locked);
}

int main(void) {
    t_begin("t_smaps");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    memset(text, 0, sizeof text);

    char *a = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    touch(a, 64);
    say("private anon, written", smaps_of(a));

    char *sh = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    touch(sh, 16);
    struct entry e = smaps_of(sh);
    say("shared anon, written", e);

    char *lk = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mlock(lk, 4 * PG) == 0, "mlock 4 pages");
    say("mlocked half (the locked VMA)", smaps_of(lk));

    /* A file mapping: a sibling program's pages, read. */
    char path[512];
    ssize_t plen = readlink("/proc/self/exe", path, sizeof path - 16);
    path[plen > 0 ? plen : 0] = 0;
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (slash ? slash + 1 - path : 0), "t_fileio");
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open a sibling program");
    if (fd < 0) return t_end();
    char *f = mmap(NULL, 8 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    for (int i = 0; i < 8; i++) (void)((volatile char *)f)[i * PG];
    e = smaps_of(f);
    CHECK(e.size == 32 && e.rss == 32 && e.anon == 0 && e.sc + e.sd == 0 && e.pc + e.pd == 32 && e.pss == 32,
          "a private file mapping read: 32 kB resident, private, not anonymous");
    /* A private write copies the page: it becomes anonymous and dirty. */
    CHECK(mprotect(f, PG, PROT_READ | PROT_WRITE) == 0, "mprotect the first page writable");
    f[0] = 1;
    e = smaps_of(f);
    say("the written first page of the file mapping", e);

    /* fork: the parent's anonymous pages are shared until written. */
    int go[2], done[2];
    CHECK(pipe(go) == 0 && pipe(done) == 0, "pipes");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        say("child: private anon after fork", smaps_of(a));
        /* Linux does not copy a shared mapping's page table at fork
         * (the child faults the pages in again); umlrun does, so only
         * what both agree on is printed. */
        struct entry ce = smaps_of(sh);
        SAY("child: shared anon after fork: size %ld anon %ld private dirty %ld\n", ce.size, ce.anon, ce.pd);
        touch(a, 16);
        say("child: private anon, 16 pages written", smaps_of(a));
        if (write(done[1], "x", 1) != 1 || read(go[0], &c, 1) != 1) _exit(2);
        _exit(0);
    }
    char c;
    CHECK(read(done[0], &c, 1) == 1, "the child wrote its pages");
    say("parent: private anon while the child holds 48 pages", smaps_of(a));
    CHECK(write(go[1], "x", 1) == 1, "let the child go");
    int st;
    waitpid(pid, &st, 0);
    SAY("child %s\n", t_status(st));
    say("parent: private anon after the child exits", smaps_of(a));

    /* The rollup is the sum of the entries. */
    static char copy[1 << 20];
    memset(copy, 1, sizeof copy); /* resident before the walk counts it */
    slurp("/proc/self/smaps");
    memcpy(copy, text, sizeof copy);
    slurp("/proc/self/smaps_rollup");
    long sum_rss = 0, sum_anon = 0;
    for (char *p = copy; (p = strstr(p, "\nRss:")); p++) sum_rss += atol(p + 5);
    for (char *p = copy; (p = strstr(p, "\nAnonymous:")); p++) sum_anon += atol(p + 11);
    char *end = text + strlen(text);
    CHECK(strstr(text, " [rollup]\n") != NULL, "smaps_rollup's header names [rollup]");
    CHECK(field_in(text, end, "Rss") == sum_rss, "rollup Rss is the sum of the entries");
    CHECK(field_in(text, end, "Anonymous") == sum_anon, "rollup Anonymous is the sum of the entries");
    long pss = field_in(text, end, "Pss"), parts = field_in(text, end, "Pss_Anon") +
                                                   field_in(text, end, "Pss_File") +
                                                   field_in(text, end, "Pss_Shmem");
    CHECK(pss >= parts && pss - parts <= 2, "rollup Pss is Pss_Anon + Pss_File + Pss_Shmem");

    /* status: VmData counts private writable mappings only. */
    long data0 = status("VmData"), size0 = status("VmSize");
    char *big = mmap(NULL, 10 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(status("VmData") - data0 == 10240, "VmData grows by a private writable mapping");
    char *shb = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(status("VmData") - data0 == 10240 && status("VmSize") - size0 == 11264,
          "a shared mapping grows VmSize but not VmData");
    char *ro = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(status("VmData") - data0 == 10240, "a read-only mapping is not VmData");
    CHECK(status("VmStk") > 0 && status("VmExe") > 0 && status("VmPTE") > 0, "VmStk, VmExe and VmPTE are set");
    touch(big, 2560);
    long rss_peak = status("VmRSS"), size_peak = status("VmSize");
    munmap(big, 10 << 20);
    long rss = status("VmRSS"), hwm = status("VmHWM");
    CHECK(rss_peak - rss >= 10000, "munmap gives the resident pages back");
    /* Linux updates the high-water mark lazily: it is at least now's. */
    CHECK(hwm >= rss, "VmHWM is at least VmRSS");
    CHECK(status("VmPeak") >= size_peak && status("VmSize") < size_peak, "VmPeak keeps the peak size");
    CHECK(status("VmSwap") == 0, "VmSwap is 0 with no swap");
    munmap(shb, 1 << 20);
    munmap(ro, 1 << 20);
    return t_end();
}
