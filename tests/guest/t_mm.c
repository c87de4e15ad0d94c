/* Guest test: memory: anonymous private/shared mappings across fork,
 * MAP_FIXED, munmap and mprotect faults caught with siglongjmp, brk/sbrk,
 * mremap, private and shared file mappings, madvise(DONTNEED), mincore,
 * copy-on-write after fork. */
#include "t_common.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PG 4096
static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code, fault_sig;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    fault_sig = sig;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(jb, 1);
}

/* Write one byte at p; returns 1 if it faulted (SIGSEGV caught). */
static int faults_on_write(volatile char *p) {
    fault_addr = NULL;
    if (sigsetjmp(jb, 1) == 0) {
        *p = 1;
        return 0;
    }
    return 1;
}
static int faults_on_read(volatile char *p) {
    fault_addr = NULL;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}
static int all_bytes(const char *p, size_t n, char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

int main(void) {
    t_begin("t_mm");
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    pid_t pid;

    /* anonymous private */
    char *a = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED && ((unsigned long)a & (PG - 1)) == 0, "mmap anon private, page aligned");
    CHECK(all_bytes(a, 16 * PG, 0), "fresh anon memory is zero");
    memset(a, 'p', 16 * PG);
    CHECK(all_bytes(a, 16 * PG, 'p'), "anon memory keeps writes");

    /* copy-on-write after fork */
    pid = fork();
    if (pid == 0) {
        memset(a, 'c', 16 * PG);
        _exit(all_bytes(a, 16 * PG, 'c') ? 0 : 1);
    }
    SAY("child overwrites private anon: %s\n", t_wait(pid));
    CHECK(all_bytes(a, 16 * PG, 'p'), "parent's private pages unchanged (COW)");
    static char data_var[3 * PG] = "data";
    pid = fork();
    if (pid == 0) { strcpy(data_var, "child"); _exit(0); }
    t_wait(pid);
    CHECK(!strcmp(data_var, "data"), "parent's .data unchanged after the child wrote it");
    a[0] = 'P';
    pid = fork();
    if (pid == 0) _exit(a[0] == 'P' ? 0 : 1);
    SAY("child sees the parent's latest private write: %s\n", t_wait(pid));

    /* anonymous shared across fork */
    volatile char *s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED, "mmap anon shared");
    pid = fork();
    if (pid == 0) { s[0] = 'S'; s[PG + 5] = 'T'; _exit(0); }
    t_wait(pid);
    CHECK(s[0] == 'S' && s[PG + 5] == 'T', "parent sees the child's shared writes");

    /* MAP_FIXED over the middle of a mapping */
    char *r = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(r, 'r', 3 * PG);
    char *m = mmap(r + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(m == r + PG, "MAP_FIXED lands where asked");
    CHECK(r[0] == 'r' && m[0] == 0 && r[2 * PG] == 'r', "MAP_FIXED replaced only the middle page");
    char *nr = mmap(r + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(nr == MAP_FAILED && errno == EEXIST, "MAP_FIXED_NOREPLACE over a mapping gives EEXIST");
    CHECK(mmap(r + 1, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED && errno == EINVAL,
          "MAP_FIXED unaligned gives EINVAL");
    CHECK(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL, "mmap length 0 gives EINVAL");

    /* munmap: the hole faults with SEGV_MAPERR at the right address */
    CHECK(munmap(r + PG, PG) == 0, "munmap the middle page");
    CHECK(faults_on_read(r + PG + 10) && fault_addr == r + PG + 10 && fault_code == SEGV_MAPERR, "read of an unmapped page: SEGV_MAPERR at the address");
    CHECK(!faults_on_read(r) && !faults_on_read(r + 2 * PG), "neighbours still mapped");
    CHECK(munmap(r, 3 * PG) == 0, "munmap across a hole");
    CHECK(munmap(r, PG) == 0, "munmap of nothing succeeds");
    CHECK(munmap(r + 1, PG) < 0 && errno == EINVAL, "munmap unaligned gives EINVAL");

    /* mprotect */
    char *q = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    q[0] = 'q';
    CHECK(mprotect(q, PG, PROT_READ) == 0, "mprotect PROT_READ");
    CHECK(faults_on_write(q + 3) && fault_addr == q + 3 && fault_code == SEGV_ACCERR, "write to read-only: SEGV_ACCERR at the address");
    CHECK(q[0] == 'q', "read-only page still readable, unchanged");
    CHECK(!faults_on_write(q + PG), "the other page stays writable");
    CHECK(mprotect(q, PG, PROT_NONE) == 0 && faults_on_read(q) && fault_code == SEGV_ACCERR, "PROT_NONE read: SEGV_ACCERR");
    CHECK(mprotect(q, PG, PROT_READ | PROT_WRITE) == 0 && !faults_on_write(q) && q[0] == 1, "back to read-write");
    CHECK(mprotect(q + 1, PG, PROT_READ) < 0 && errno == EINVAL, "mprotect unaligned gives EINVAL");
    /* a write fault on a never-touched read-only page */
    char *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(!faults_on_read(ro) && ro[0] == 0 && faults_on_write(ro) && fault_code == SEGV_ACCERR, "untouched read-only anon: reads zero, write faults");

    /* brk / sbrk */
    char *b0 = sbrk(0);
    CHECK((char *)syscall(SYS_brk, 0) == b0, "brk(0) is sbrk(0)");
    char *b1 = sbrk(1 << 20);
    CHECK(b1 == b0 && sbrk(0) == b0 + (1 << 20), "sbrk grows by 1 MiB");
    memset(b1, 'b', 1 << 20);
    CHECK(all_bytes(b1, 1 << 20, 'b'), "the new heap is writable");
    CHECK(sbrk(-(1 << 20)) == b0 + (1 << 20) && sbrk(0) == b0, "sbrk shrinks back");
    CHECK(faults_on_read(b0 + PG + 123), "memory above the shrunk break faults");
    b1 = sbrk(2 * PG);
    CHECK(all_bytes(b1 + PG, PG, 0), "regrown heap is zero again");
    sbrk(-2 * PG);
    CHECK((char *)syscall(SYS_brk, (char *)b0 - (256L << 20)) == b0, "brk below the start is refused (returns the old break)");

    /* mremap */
    char *g = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(g, "grow me");
    char *blocker = mmap(g + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(mremap(g, PG, 4 * PG, 0) == MAP_FAILED && errno == ENOMEM, "mremap in place blocked by a neighbour gives ENOMEM");
    char *g2 = mremap(g, PG, 4 * PG, MREMAP_MAYMOVE);
    CHECK(g2 != MAP_FAILED && !strcmp(g2, "grow me"), "mremap MAYMOVE keeps the contents");
    CHECK(all_bytes(g2 + PG, 3 * PG, 0), "grown part is zero");
    memset(g2 + 3 * PG, 'g', PG);
    CHECK(g2 == g || faults_on_read(g), "old address unmapped if moved");
    char *g3 = mremap(g2, 4 * PG, PG, 0);
    CHECK(g3 == g2 && faults_on_read(g2 + PG), "mremap shrink unmaps the tail");
    munmap(g3, PG);
    if (blocker != MAP_FAILED) munmap(blocker, PG);

    /* madvise(DONTNEED) zeroes private anonymous pages; mincore */
    char *z = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(z, 'z', 4 * PG);
    unsigned char vec[4];
    CHECK(mincore(z, 4 * PG, vec) == 0 && (vec[0] & 1) && (vec[3] & 1), "mincore: touched pages resident");
    CHECK(madvise(z + PG, 2 * PG, MADV_DONTNEED) == 0, "madvise DONTNEED");
    CHECK(z[0] == 'z' && all_bytes(z + PG, 2 * PG, 0) && z[3 * PG] == 'z', "DONTNEED zeroed exactly its pages");
    CHECK(mincore(z + 1, PG, vec) < 0 && errno == EINVAL, "mincore unaligned gives EINVAL");
    char *gone = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, PG);
    CHECK(mincore(gone, PG, vec) < 0 && errno == ENOMEM, "mincore of unmapped gives ENOMEM");
    CHECK(madvise(z, 4 * PG, MADV_WILLNEED) == 0 && madvise(z, 4 * PG, MADV_NORMAL) == 0, "madvise WILLNEED/NORMAL accepted");

    /* file mappings */
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    char page[2 * PG];
    memset(page, 'f', sizeof page);
    CHECK(write(fd, page, sizeof page) == (ssize_t)sizeof page, "write a 2-page file");
    char *fp = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(fp != MAP_FAILED && all_bytes(fp, 2 * PG, 'f'), "private file map reads the file");
    fp[0] = 'X';
    char c;
    CHECK(pread(fd, &c, 1, 0) == 1 && c == 'f', "private map write does not reach the file");
    CHECK(pwrite(fd, "W", 1, PG) == 1 && fp[PG] == 'W', "untouched private page sees a later file write");
    char *fs = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(fs != MAP_FAILED && fs[0] == 'f', "shared file map");
    memcpy(fs + 100, "shared!", 7);
    char rb[8] = {0};
    CHECK(pread(fd, rb, 7, 100) == 7 && !strcmp(rb, "shared!"), "shared map write visible to read()");
    CHECK(pwrite(fd, "via write", 9, 200) == 9 && !memcmp(fs + 200, "via write", 9), "write() visible in the shared map");
    CHECK(msync(fs, 2 * PG, MS_SYNC) == 0, "msync");
    pid = fork();
    if (pid == 0) { memcpy(fs + 300, "from child", 10); _exit(0); }
    t_wait(pid);
    CHECK(!memcmp(fs + 300, "from child", 10) && pread(fd, rb, 4, 300) == 4 && !memcmp(rb, "from", 4), "child's shared file write seen by parent and file");
    CHECK(munmap(fs, 2 * PG) == 0 && munmap(fp, 2 * PG) == 0, "munmap file maps");
    /* offsets and the tail past EOF */
    ftruncate(fd, PG + 10);
    char *ft = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, PG);
    CHECK(ft != MAP_FAILED && ft[0] == 'W' && ft[10] == 0, "map at a page offset; bytes past EOF in the last page read 0");
    CHECK(faults_on_read(ft + PG) && fault_sig == SIGBUS, "a whole page past EOF gives SIGBUS");
    munmap(ft, 2 * PG);
    CHECK(mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 1) == MAP_FAILED && errno == EINVAL, "mmap unaligned offset gives EINVAL");
    int rofd = open("f", O_RDONLY);
    CHECK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, rofd, 0) == MAP_FAILED && errno == EACCES, "shared writable map of a read-only fd gives EACCES");
    close(rofd);
    close(fd);

    return t_end();
}
