/* mlock, mlock2 (MLOCK_ONFAULT), munlock, mlockall (MCL_CURRENT, MCL_FUTURE,
 * MCL_ONFAULT), munlockall: VmLck in /proc/self/status, the VMA splits and
 * merges /proc/self/maps shows, residency (mincore), fork not inheriting
 * locks, mremap keeping them, and RLIMIT_MEMLOCK for root (unbound) and a
 * non-root user (ENOMEM past the limit, EAGAIN for locked mmap, EPERM at 0). */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>

#define PG 4096L

/* VmLck in kB, -1 when absent. */
static long vmlck(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* How many VMAs of /proc/self/maps overlap [p, p+len). */
static int vmas_in(char *p, long len) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    unsigned long s, e, a = (unsigned long)p, b = a + len;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < b && a < e) n++;
    fclose(f);
    return n;
}

static int resident(char *p) {
    unsigned char v = 0;
    if (mincore(p, PG, &v) != 0) return -1;
    return v & 1;
}

static char *map(long pages, int flags) {
    char *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void errors(void) {
    char *p = map(2, 0);
    errno = 0;
    CHECK(mlock2(p, PG, 2) < 0 && errno == EINVAL, "mlock2 with an unknown flag: EINVAL");
    CHECK(mlockall(0) < 0 && errno == EINVAL, "mlockall(0): EINVAL");
    CHECK(mlockall(MCL_ONFAULT) < 0 && errno == EINVAL, "mlockall(MCL_ONFAULT) alone: EINVAL");
    CHECK(mlockall(8 | MCL_CURRENT) < 0 && errno == EINVAL, "mlockall with an unknown flag: EINVAL");
    munmap(p + PG, PG);
    long before = vmlck();
    CHECK(mlock(p + PG, PG) < 0 && errno == ENOMEM, "mlock of an unmapped page: ENOMEM");
    CHECK(munlock(p + PG, PG) < 0 && errno == ENOMEM, "munlock of an unmapped page: ENOMEM");
    CHECK(mlock(p, 2 * PG) < 0 && errno == ENOMEM, "mlock reaching a hole: ENOMEM");
    CHECK(vmlck() - before == 4, "the part before the hole was locked (VmLck +4 kB)");
    CHECK(munlock(p, 2 * PG) < 0 && errno == ENOMEM && vmlck() == before, "munlock reaching a hole: ENOMEM, the part before it unlocked");
    CHECK(mlock(p, 0) == 0 && mlock(p + PG, 0) == 0, "mlock of length 0 succeeds, even unmapped");
    munmap(p, PG);
}

static void ranges(void) {
    long v0 = vmlck();
    CHECK(v0 >= 0, "VmLck is in /proc/self/status");

    /* residency, on a mapping never touched */
    char *u = map(4, 0);
    CHECK(mlock(u, PG) == 0 && vmlck() - v0 == 4, "mlock of an untouched page: VmLck +4 kB");
    CHECK(resident(u) == 1, "an mlocked page is resident");
    CHECK(resident(u + PG) == 0, "an untouched unlocked page is not");
    CHECK(mlock2(u + 2 * PG, PG, MLOCK_ONFAULT) == 0 && vmlck() - v0 == 8, "mlock2(MLOCK_ONFAULT): VmLck counts it too");
    CHECK(resident(u + 2 * PG) == 0, "MLOCK_ONFAULT does not fault pages in");
    u[2 * PG] = 1;
    CHECK(resident(u + 2 * PG) == 1, "a touched on-fault page is resident");
    CHECK(munmap(u, 4 * PG) == 0 && vmlck() == v0, "munmap drops the locks");

    /* splits and merges, on a mapping touched first (one anon_vma, so
     * Linux merges its pieces again) */
    char *p = map(8, 0);
    memset(p, 7, 8 * PG);
    CHECK(vmas_in(p, 8 * PG) == 1, "a fresh mapping is one VMA");
    CHECK(mlock(p + 2 * PG, 2 * PG) == 0, "mlock of pages 2-3");
    CHECK(vmlck() - v0 == 8, "VmLck grows by 8 kB");
    CHECK(vmas_in(p, 8 * PG) == 3, "the mapping is split in three");
    CHECK(mlock(p + 2 * PG, 2 * PG) == 0 && vmlck() - v0 == 8, "locking again counts once");
    CHECK(mlock2(p + 4 * PG, 2 * PG, MLOCK_ONFAULT) == 0, "mlock2(MLOCK_ONFAULT) of pages 4-5");
    CHECK(vmlck() - v0 == 16, "VmLck counts on-fault locks too (16 kB)");
    CHECK(vmas_in(p, 8 * PG) == 4, "two lock kinds: four VMAs");
    CHECK(mlock(p + 4 * PG, 2 * PG) == 0 && vmas_in(p, 8 * PG) == 3, "mlock over the on-fault part merges it with its locked neighbour");
    CHECK(mlock(p + 1, 1) == 0 && vmlck() - v0 == 20, "an unaligned mlock locks the whole page");
    CHECK(munlock(p + 3 * PG, 2 * PG) == 0 && vmlck() - v0 == 12, "munlock of the middle");
    CHECK(vmas_in(p, 8 * PG) == 6, "six pieces");
    CHECK(munlock(p, 8 * PG) == 0 && vmlck() == v0, "munlock of all: VmLck back");
    CHECK(vmas_in(p, 8 * PG) == 1, "unlocked pieces merge back into one VMA");
    CHECK(p[4 * PG] == 7 && p[8 * PG - 1] == 7, "contents survive lock and unlock");

    /* fork: the child's VMAs are not locked */
    CHECK(mlock(p, 4 * PG) == 0 && vmlck() - v0 == 16, "lock 4 pages before fork");
    pid_t kid = fork();
    if (kid == 0) _exit(vmlck() == 0 ? 0 : 1);
    CHECK(!strcmp(t_wait(kid), "exited 0"), "a fork's child has VmLck 0");
    CHECK(vmlck() - v0 == 16, "the parent keeps its locks");

    /* mremap keeps the lock and grows it */
    char *q = mremap(p, 4 * PG, 12 * PG, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED, "mremap of a locked range");
    if (q != MAP_FAILED) {
        CHECK(vmlck() - v0 == 48, "a grown locked mapping stays locked (VmLck +48 kB)");
        CHECK(resident(q + 10 * PG) == 1, "its new pages are populated");
        CHECK(munmap(q, 12 * PG) == 0 && vmlck() == v0, "munmap drops the lock");
        if (q != p) munmap(p + 4 * PG, 4 * PG);
    }
    munmap(p, 8 * PG);
}

static void all(void) {
    long v0 = vmlck();
    CHECK(mlockall(MCL_CURRENT | MCL_FUTURE) == 0, "mlockall(MCL_CURRENT|MCL_FUTURE) as root");
    long v1 = vmlck();
    CHECK(v1 > v0, "VmLck grows");
    char *p = map(4, 0);
    CHECK(p && vmlck() - v1 == 16, "a later mmap is locked (+16 kB)");
    CHECK(p && resident(p + 3 * PG) == 1, "and populated");
    char *b = sbrk(0);
    CHECK(sbrk(4 * PG) != (void *)-1 && vmlck() - v1 == 32, "heap growth is locked too (+16 kB)");
    char *bp = (char *)(((unsigned long)b + PG - 1) & ~(PG - 1));
    CHECK(resident(bp + 2 * PG) == 1, "and populated");
    sbrk(-4 * PG);
    CHECK(munlockall() == 0 && vmlck() == 0, "munlockall: VmLck 0");
    char *q = map(4, 0);
    CHECK(q && vmlck() == 0 && resident(q) == 0, "after munlockall new mappings are not locked");
    CHECK(mlockall(MCL_FUTURE | MCL_ONFAULT) == 0 && vmlck() == 0, "mlockall(MCL_FUTURE|MCL_ONFAULT) locks nothing now");
    char *r = map(4, 0);
    CHECK(r && vmlck() == 16 && resident(r) == 0, "a later mmap is locked on fault: counted, not populated");
    pid_t kid = fork();
    if (kid == 0) {
        char *c = map(2, 0);
        _exit(c && vmlck() == 0 ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "MCL_FUTURE is not inherited by fork");
    CHECK(munlockall() == 0 && vmlck() == 0, "munlockall again");
    char *m = map(2, MAP_LOCKED);
    CHECK(m && vmlck() == 8 && resident(m + PG) == 1, "MAP_LOCKED: locked and populated");
    munmap(m, 2 * PG);
    munmap(p, 4 * PG);
    munmap(q, 4 * PG);
    munmap(r, 4 * PG);
    CHECK(vmlck() == 0, "VmLck 0 once unmapped");
}

static void limits(void) {
    /* root ignores RLIMIT_MEMLOCK, even at 0 */
    pid_t kid = fork();
    if (kid == 0) {
        struct rlimit rl = {0, 0};
        char *p = map(4, 0);
        int ok = setrlimit(RLIMIT_MEMLOCK, &rl) == 0;
        ok &= mlock(p, 4 * PG) == 0 && vmlck() == 16;
        ok &= mlockall(MCL_CURRENT) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "root locks past a RLIMIT_MEMLOCK of 0");

    kid = fork();
    if (kid == 0) {
        struct rlimit rl = {4 * PG, 4 * PG};
        char *p = map(8, 0);
        int r = 0;
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) _exit(90);
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(91);
        if (mlock(p, 4 * PG) != 0 || vmlck() != 16) r |= 1;
        if (!(mlock(p + 4 * PG, PG) < 0 && errno == ENOMEM)) r |= 2;
        if (mlock(p, 4 * PG) != 0) r |= 4;             /* already locked: counted once */
        if (!(mlock(p + 2 * PG, 3 * PG) < 0 && errno == ENOMEM)) r |= 8;
        if (!(mlockall(MCL_CURRENT) < 0 && errno == ENOMEM)) r |= 16;
        /* MREMAP_FIXED: growing a locked mapping past the limit is EAGAIN
         * and leaves the target mapped; a shrinking move is no growth. */
        char *d = map(8, 0);
        d[0] = 7;
        if (!(mremap(p, 4 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d) == MAP_FAILED && errno == EAGAIN)) r |= 1024;
        if (d[0] != 7) r |= 2048;
        if (!(mremap(p, 4 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d) == d && vmlck() == 12)) r |= 4096;
        if (!(mremap(d, 3 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, p) == p && vmlck() == 16)) r |= 8192;
        if (mlockall(MCL_FUTURE) != 0) r |= 32;
        if (!(map(1, 0) == NULL && errno == EAGAIN)) r |= 64;
        if (!(mremap(p, 4 * PG, 5 * PG, MREMAP_MAYMOVE) == MAP_FAILED && errno == EAGAIN)) r |= 128;
        if (munlockall() != 0 || vmlck() != 0) r |= 256;
        if (!(map(1, MAP_LOCKED) != NULL && vmlck() == 4)) r |= 512;
        /* An exit status keeps 8 bits: name the failed ones. */
        if (r) printf("failed checks %#x\n", r);
        _exit(r != 0);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "non-root at 16 kB: ENOMEM past it, locked once counted once, mlockall(MCL_CURRENT) ENOMEM, locked mmap and mremap EAGAIN "
          "(MREMAP_FIXED growth too, the target kept; a fixed shrink and a fixed growth back within the limit work)");

    kid = fork();
    if (kid == 0) {
        struct rlimit rl = {0, 0};
        char *p = map(2, 0);
        int r = 0;
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) _exit(90);
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(91);
        if (!(mlock(p, PG) < 0 && errno == EPERM)) r |= 1;
        if (!(mlock2(p, PG, MLOCK_ONFAULT) < 0 && errno == EPERM)) r |= 2;
        if (!(mlock2(p, PG, 4) < 0 && errno == EINVAL)) r |= 4;
        if (!(mlockall(MCL_FUTURE) < 0 && errno == EPERM)) r |= 8;
        if (munlock(p, PG) != 0 || munlockall() != 0) r |= 16;
        _exit(r);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "non-root with RLIMIT_MEMLOCK 0: EPERM (flags EINVAL first), munlock still works");
}

int main(void) {
    t_begin("t_mlock");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    errors();
    ranges();
    all();
    limits();
    return t_end();
}
