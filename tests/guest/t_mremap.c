/* mremap across VMA boundaries and holes, and its relatives: Linux's
 * vma_to_resize refuses (EFAULT) an old range that is not inside one VMA,
 * moves a part of a VMA (splitting it), grows in place only at a VMA's
 * end, and keeps a file mapping's offset when a tail is moved. Each case
 * prints the errno it got (or "ok" and the data seen), so a difference
 * from Linux names the case. */
#include "t_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define PG 4096L

static const char *res(void *r) {
    static char buf[64];
    if (r != MAP_FAILED) return "ok";
    const char *e = strerrorname_np(errno);
    snprintf(buf, sizeof buf, "%s", e ? e : "?");
    return buf;
}

/* A fresh region of n pages, each page filled with its number + 'a'. */
static char *region(long n, int prot) {
    char *p = mmap(0, (n + 16) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return p;
    munmap(p, (n + 16) * PG);
    p = mmap(p, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    for (long i = 0; i < n; i++) memset(p + i * PG, 'a' + (int)i, PG);
    if (prot != (PROT_READ | PROT_WRITE)) mprotect(p, n * PG, prot);
    return p;
}

/* Two adjacent VMAs (different protections): resizing or moving the pair
 * as one range. */
static void two_vmas(void) {
    char *p = region(4, PROT_READ | PROT_WRITE);
    mprotect(p + 2 * PG, 2 * PG, PROT_READ);
    errno = 0;
    SAY("grow across two VMAs (maymove): %s\n", res(mremap(p, 4 * PG, 8 * PG, MREMAP_MAYMOVE)));
    errno = 0;
    SAY("grow across two VMAs (in place): %s\n", res(mremap(p, 4 * PG, 8 * PG, 0)));
    errno = 0;
    SAY("shrink across two VMAs: %s\n", res(mremap(p, 4 * PG, PG, 0)));
    char *dst = region(8, PROT_READ | PROT_WRITE);
    errno = 0;
    void *r = mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    SAY("move two VMAs (fixed, same size): %s\n", res(r));
    if (r != MAP_FAILED) {
        SAY("  moved data: %c %c %c %c\n", dst[0], dst[PG], dst[2 * PG], dst[3 * PG]);
        p = region(4, PROT_READ | PROT_WRITE);
        mprotect(p + 2 * PG, 2 * PG, PROT_READ);
    }
    errno = 0;
    SAY("move two VMAs (fixed, larger): %s\n",
        res(mremap(p, 4 * PG, 6 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst)));
    munmap(p, 4 * PG);
    munmap(dst, 8 * PG);
}

/* A hole inside the old range, or the old range starting in a hole. */
static void holes(void) {
    char *p = region(4, PROT_READ | PROT_WRITE);
    munmap(p + PG, PG);
    errno = 0;
    SAY("grow over a hole: %s\n", res(mremap(p, 4 * PG, 8 * PG, MREMAP_MAYMOVE)));
    errno = 0;
    SAY("old range from a hole: %s\n", res(mremap(p + PG, 2 * PG, 4 * PG, MREMAP_MAYMOVE)));
    errno = 0;
    SAY("old range past the VMA's end: %s\n", res(mremap(p, 2 * PG, 3 * PG, MREMAP_MAYMOVE)));
    char *dst = region(8, PROT_READ | PROT_WRITE);
    errno = 0;
    SAY("move over a hole (fixed, same size): %s\n",
        res(mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst)));
    SAY("  the hole moved too: %s; data %c %c\n",
        mincore(dst + PG, PG, (unsigned char[1]){0}) < 0 ? strerrorname_np(errno) : "mapped", dst[0], dst[2 * PG]);
    p = region(4, PROT_READ | PROT_WRITE);
    munmap(p, PG);
    errno = 0;
    SAY("move from a hole (fixed, same size): %s\n",
        res(mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst)));
    errno = 0;
    SAY("move nothing (fixed, same size): %s\n",
        res(mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst)));
    munmap(p, 4 * PG);
    munmap(dst, 8 * PG);
}

/* Inside one VMA: a middle part moves (the VMA is split around it), a
 * tail grows in place, a middle part cannot grow in place. */
static void parts(void) {
    char *p = region(6, PROT_READ | PROT_WRITE);
    char *r = mremap(p + 2 * PG, 2 * PG, 3 * PG, MREMAP_MAYMOVE);
    SAY("move the middle of a VMA: %s\n", res(r));
    if (r != MAP_FAILED) {
        SAY("  moved: %c %c, new page reads %d\n", r[0], r[PG], r[2 * PG]);
        SAY("  left behind: %c %c\n", p[PG], p[4 * PG]);
        unsigned char v[2];
        errno = 0;
        SAY("  the old middle is gone: %s\n", mincore(p + 2 * PG, 2 * PG, v) < 0 ? strerrorname_np(errno) : "mapped");
        munmap(r, 3 * PG);
    }
    munmap(p, 6 * PG);
    p = region(6, PROT_READ | PROT_WRITE);
    munmap(p + 4 * PG, 2 * PG);
    errno = 0;
    r = mremap(p + 2 * PG, 2 * PG, 4 * PG, 0);
    SAY("grow the tail of a VMA in place: %s%s\n", res(r), r == p + 2 * PG ? " (same address)" : "");
    errno = 0;
    SAY("grow a middle part in place: %s\n", res(mremap(p + PG, PG, 2 * PG, 0)));
    errno = 0;
    SAY("shrink a middle part: %s\n", res(mremap(p + PG, 2 * PG, PG, 0)));
    SAY("  after it: %c, page 2 gone: %s\n", p[PG],
        mincore(p + 2 * PG, PG, (unsigned char[1]){0}) < 0 ? strerrorname_np(errno) : "mapped");
    munmap(p, 8 * PG);
}

/* A file mapping's tail moved elsewhere keeps its file offset. */
static void file_tail(void) {
    int fd = open("mrf", O_CREAT | O_RDWR | O_TRUNC, 0644);
    char page[PG];
    for (int i = 0; i < 4; i++) {
        memset(page, 'A' + i, PG);
        if (write(fd, page, PG) != PG) break;
    }
    char *p = mmap(0, 4 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    char *dst = region(4, PROT_READ | PROT_WRITE);
    char *r = mremap(p + 2 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    SAY("move a file mapping's tail: %s\n", res(r));
    if (r != MAP_FAILED) SAY("  reads %c %c, head reads %c %c\n", r[0], r[PG], p[0], p[PG]);
    munmap(p, 4 * PG);
    munmap(dst, 4 * PG);
    close(fd);
    unlink("mrf");
}

/* Ranges that wrap or leave user space. */
static void bad_ranges(void) {
    char *p = region(2, PROT_READ | PROT_WRITE);
    errno = 0;
    SAY("old range wrapping: %s\n", res(mremap(p, -PG, PG, 0)));
    errno = 0;
    SAY("new address past the top: %s\n",
        res(mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)0x7ffffffff000L)));
    errno = 0;
    SAY("new range wrapping: %s\n",
        res(mremap(p, PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)-PG)));
    errno = 0;
    SAY("old range at address 0: %s\n", res(mremap(0, PG, 2 * PG, MREMAP_MAYMOVE)));
    munmap(p, 2 * PG);
}

int main(void) {
    t_begin("t_mremap");
    two_vmas();
    holes();
    parts();
    file_tail();
    bad_ranges();
    return t_end();
}
