/* Guest test: anonymous memory touched sparsely and in order, as Linux
 * counts it. umlrun maps a whole window of anonymous memory on a fault
 * (16 pages, 2 MiB in large mappings) but counts a page only once it is
 * touched: RssAnon and mincore follow the pages written, not the windows
 * mapped; untouched pages read as zeros; a fork child sees the parent's
 * pages and its own writes stay its own; MADV_DONTNEED and munmap give the
 * pages back. Every 8th page of 16 MiB is written first, then all. */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>

static long rss_anon(void) {
    static char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    int n = 0, k;
    while (n < (int)sizeof buf - 1 && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += k;
    close(fd);
    buf[n] = 0;
    char *p = strstr(buf, "\nRssAnon:");
    return p ? strtol(p + 9, NULL, 10) : -1;
}

/* kB: the stack and libc's own pages may move a little meanwhile, and
 * Linux's RSS counters are per-CPU batched. */
#define SLACK 64
#define NEAR(d, want) ((d) >= (want) - SLACK && (d) <= (want) + SLACK)

#define PAGES 4096L
#define PS 4096L

static long resident(char *m, long pages, long step_expect, int *pattern_ok) {
    static unsigned char v[PAGES];
    if (mincore(m, pages * PS, v) != 0) return -1;
    long n = 0;
    *pattern_ok = 1;
    for (long i = 0; i < pages; i++) {
        n += v[i] & 1;
        if (step_expect && (v[i] & 1) != (i % step_expect == 0)) *pattern_ok = 0;
    }
    return n;
}

int main(void) {
    t_begin("t_anonwin");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    long base = rss_anon();
    CHECK(base > 0, "RssAnon readable");
    char *m = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "16 MiB of anonymous memory");
    /* Natively a transparent huge page would make one write 2 MiB resident. */
    CHECK(madvise(m, PAGES * PS, MADV_NOHUGEPAGE) == 0, "MADV_NOHUGEPAGE");
    int pat;
    CHECK(resident(m, PAGES, 0, &pat) == 0, "none resident before a touch");

    for (long i = 0; i < PAGES; i += 8) m[i * PS] = (char)(1 + i % 100);
    long r1 = rss_anon();
    CHECK(NEAR(r1 - base, PAGES / 8 * 4), "every 8th page written: RssAnon +%ld kB", PAGES / 8 * 4);
    CHECK(resident(m, PAGES, 8, &pat) == PAGES / 8 && pat, "mincore: exactly the written pages resident");

    pid_t c = fork();
    if (c == 0) {
        int ok = 1;
        for (long i = 0; i < PAGES; i++)
            ok &= m[i * PS] == (i % 8 == 0 ? (char)(1 + i % 100) : 0);
        for (long i = 1; i < PAGES; i += 8) m[i * PS] = 7;
        _exit(ok ? 0 : 1);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "fork child sees the written pages and zeros elsewhere");
    long wrong = 0;
    for (long i = 0; i < PAGES; i++)
        wrong += m[i * PS] != (i % 8 == 0 ? (char)(1 + i % 100) : 0);
    CHECK(wrong == 0, "the child's writes stay its own; untouched pages read as zeros");

    CHECK(madvise(m, PAGES * PS, MADV_DONTNEED) == 0, "MADV_DONTNEED of all of it");
    CHECK(NEAR(rss_anon() - base, 0), "RssAnon back where it was");
    CHECK(resident(m, PAGES, 0, &pat) == 0, "mincore: none resident");
    CHECK(m[5 * PS] == 0, "a page read after MADV_DONTNEED is zero");

    CHECK(madvise(m, PAGES * PS, MADV_DONTNEED) == 0, "MADV_DONTNEED again");
    long before = rss_anon();
    for (long i = 0; i < PAGES; i++) m[i * PS] = 1;
    CHECK(NEAR(rss_anon() - before, PAGES * 4), "all 4096 pages written in order: RssAnon +16384 kB");
    CHECK(resident(m, PAGES, 1, &pat) == PAGES && pat, "mincore: all resident");
    CHECK(munmap(m, PAGES * PS) == 0, "munmap");
    CHECK(NEAR(rss_anon() - base, 0), "RssAnon back where it was after munmap");

    /* A small mapping: one window covers it; pages 0 and 2 of 5 written. */
    char *s = mmap(NULL, 5 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    s[0] = 1;
    s[2 * PS] = 1;
    unsigned char v[5];
    CHECK(mincore(s, 5 * PS, v) == 0 && (v[0] & 1) && !(v[1] & 1) && (v[2] & 1) && !(v[3] & 1) && !(v[4] & 1),
          "5-page mapping, pages 0 and 2 written: resident 10100");
    CHECK(mprotect(s + PS, PS, PROT_READ) == 0 && s[PS] == 0, "an untouched page made read-only reads zero");
    munmap(s, 5 * PS);
    return t_end();
}
