/* Guest test: mincore. Anonymous pages are resident once touched; file
 * pages are resident when the page cache (or tmpfs) holds them, mapped
 * here or not: a file written and read (scratch dir, ext2 in the guest), a
 * tmpfs file with a hole (the hole is not resident). EINVAL for an
 * unaligned address, ENOMEM for an unmapped page, EFAULT for a bad
 * vector, 0 for length 0. Any length is walked (6 GiB, over 2^20 pages),
 * PAGE entries at a time as Linux does, so what comes before a hole or a
 * bad part of the vector is written before the error. */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>

static void bits(unsigned char *v, int n, char *out) {
    for (int i = 0; i < n; i++) out[i] = (char)('0' + (v[i] & 1));
    out[n] = 0;
}

static void file_in(const char *path, int hole) {
    static char page[4096];
    memset(page, 'x', sizeof page);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    int ok = fd >= 0 && pwrite(fd, page, 4096, 0) == 4096 && pwrite(fd, page, 4096, 8192) == 4096;
    if (!hole) ok = ok && pwrite(fd, page, 4096, 4096) == 4096;
    /* Read back (umlrun's ext2 writes do not go through its page cache;
     * reads fill it), then map without touching. */
    for (int i = 0; i < 3; i++) ok = ok && pread(fd, page, 4096, i * 4096) == 4096;
    CHECK(ok, "%s: 3 pages written%s", path, hole ? " around a hole" : "");
    char *m = mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char v[3] = {9, 9, 9};
    char b[8];
    CHECK(m != MAP_FAILED && mincore(m, 3 * 4096, v) == 0, "%s: mincore of the untouched mapping", path);
    bits(v, 3, b);
    CHECK(strcmp(b, hole ? "101" : "111") == 0, "%s: resident %s (got %s)", path, hole ? "101" : "111", b);
    munmap(m, 3 * 4096);
    close(fd);
    unlink(path);
}

static void large(void) {
    const long ps = 4096;
    const unsigned long pages = 6ul << 18; /* 6 GiB */
    char *r = mmap(NULL, pages * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    unsigned char *v = mmap(NULL, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED && v != MAP_FAILED, "a 6 GiB PROT_NONE reservation and a 1.5 MiB vector");
    if (r == MAP_FAILED || v == MAP_FAILED) return;
    unsigned long at[3] = {0, (1ul << 20) + 5, pages - 1};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        ok &= mprotect(r + at[i] * ps, ps, PROT_READ | PROT_WRITE) == 0;
        r[at[i] * ps] = 1;
    }
    CHECK(ok, "pages 0, 2^20+5 and the last made writable and touched");
    memset(v, 0xee, pages);
    CHECK(mincore(r, pages * ps, v) == 0, "mincore over all %lu pages", pages);
    unsigned long ones = 0, bad = 0;
    for (unsigned long i = 0; i < pages; i++) {
        if (v[i] == 1) ones++;
        else if (v[i] != 0) bad++;
    }
    CHECK(ones == 3 && bad == 0 && v[at[1]] == 1 && v[pages - 1] == 1, "exactly those 3 resident (%lu ones, %lu other)",
          ones, bad);
    /* A hole: the entries before it are written, then ENOMEM. */
    munmap(r + 8000 * ps, ps);
    memset(v, 0xee, 9000);
    CHECK(mincore(r, 9000 * ps, v) == -1 && errno == ENOMEM, "a hole at page 8000: ENOMEM");
    CHECK(v[0] == 1 && v[1] == 0 && v[7999] == 0 && v[8000] == 0xee, "the 8000 entries before it are written");
    /* A vector whose second 4096 entries are not mapped. */
    unsigned char *half = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(half + ps, ps);
    memset(half, 0xee, ps);
    CHECK(mincore(r, 2 * ps * ps, half) == -1 && errno == EFAULT, "a vector cut after 4096 entries: EFAULT");
    CHECK(half[0] == 1 && half[4095] == 0, "the first 4096 entries are written");
    munmap(half, ps);
    CHECK(mincore(r + 8000 * ps, 0, v) == 0, "length 0 at an unmapped page: 0");
    CHECK(mincore(r + 8000 * ps, ps, (unsigned char *)8) == -1 && errno == ENOMEM,
          "an unmapped page with a bad vector: ENOMEM (the range first)");
    CHECK(mincore(r, ps, (unsigned char *)0xffff800000000000ul) == -1 && errno == EFAULT,
          "a vector outside user space: EFAULT");
    CHECK(mincore(r + 8000 * ps, ps, (unsigned char *)0xffff800000000000ul) == -1 && errno == EFAULT,
          "... even for an unmapped page (the vector's range is checked first)");
    CHECK(mincore(r, -4096ul, v) == -1 && errno == ENOMEM, "a length that wraps: ENOMEM");
    munmap(r, pages * ps);
    munmap(v, pages);
}

int main(void) {
    t_begin("t_mincore");
    long ps = sysconf(_SC_PAGESIZE);
    char *a = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char v[4];
    char b[8];
    CHECK(a != MAP_FAILED && mincore(a, 4 * ps, v) == 0, "mincore of fresh anonymous memory");
    bits(v, 4, b);
    CHECK(strcmp(b, "0000") == 0, "nothing resident (got %s)", b);
    a[0] = 1;
    a[2 * ps] = 1;
    CHECK(mincore(a, 4 * ps, v) == 0, "after touching pages 0 and 2");
    bits(v, 4, b);
    CHECK(strcmp(b, "1010") == 0, "pages 0 and 2 resident (got %s)", b);
    CHECK(mincore(a, 100, v) == 0 && (v[0] & 1), "a length short of a page covers the page");
    CHECK(mincore(a, 0, v) == 0, "length 0");
    CHECK(mincore(a + 1, ps, v) == -1 && errno == EINVAL, "unaligned address: EINVAL");
    CHECK(mincore(a, 4 * ps, (unsigned char *)8) == -1 && errno == EFAULT, "bad vector: EFAULT");
    munmap(a + ps, ps);
    CHECK(mincore(a, 4 * ps, v) == -1 && errno == ENOMEM, "a hole in the range: ENOMEM");
    CHECK(mincore(a + ps, ps, v) == -1 && errno == ENOMEM, "an unmapped page: ENOMEM");
    CHECK(mincore((void *)0x7ffffffff000ul, 1ul << 40, v) == -1 && errno == ENOMEM, "past the user range: ENOMEM");
    munmap(a, 4 * ps);
    large();
    file_in("written", 0);
    CHECK(mkdir("m", 0755) == 0 && mount("tmpfs", "m", "tmpfs", 0, "size=4m") == 0, "mount a tmpfs");
    file_in("m/holey", 1);
    CHECK(umount("m") == 0, "umount the tmpfs");
    return t_end();
}
