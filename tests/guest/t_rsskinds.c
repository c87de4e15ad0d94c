/* Guest test: the Rss* lines of /proc/self/status split resident memory as
 * Linux's RSS counters do. Touching private anonymous pages grows RssAnon,
 * shared anonymous pages RssShmem, pages of a file mapping RssFile; writing
 * to a private file mapping makes private copies (RssAnon, not RssFile);
 * VmRSS is always the sum of the three; munmap gives it all back. Figures
 * are deltas in kB, allowed a few pages of slack for the test's own stack.
 * The file is the test's own binary (/proc/self/exe), not /tmp: natively
 * /tmp may be tmpfs, whose pages count as RssShmem. */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>

struct rss {
    long vm, anon, file, shmem;
};

static long field(const char *t, const char *name) {
    const char *p = strstr(t, name);
    return p ? atol(p + strlen(name)) : -1;
}

static struct rss now(void) {
    static char buf[4096];
    struct rss r = {-1, -1, -1, -1};
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return r;
    int n = 0, k;
    while (n < (int)sizeof buf - 1 && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += k;
    close(fd);
    buf[n] = 0;
    r.vm = field(buf, "\nVmRSS:");
    r.anon = field(buf, "\nRssAnon:");
    r.file = field(buf, "\nRssFile:");
    r.shmem = field(buf, "\nRssShmem:");
    return r;
}

#define SLACK 16 /* kB: the stack may grow a few pages meanwhile */
#define GREW(d, want) ((d) >= (want) && (d) <= (want) + SLACK)
/* kB: the program's own text faulting in as new code runs (Linux maps up to
 * 16 cached pages around a file fault), and Linux's batched RSS counters. */
#define TEXT_SLACK 64
#define FILE_GREW(d, want) ((d) >= (want) && (d) <= (want) + TEXT_SLACK)

static void touch(volatile char *p, int pages, int write) {
    for (int i = 0; i < pages; i++) {
        if (write)
            p[i * 4096] = 1;
        else
            (void)p[i * 4096];
    }
}

int main(void) {
    t_begin("t_rsskinds");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    struct rss a = now();
    CHECK(a.vm > 0 && a.vm == a.anon + a.file + a.shmem, "VmRSS = RssAnon + RssFile + RssShmem at start");

    char *anon = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    touch(anon, 64, 1);
    struct rss b = now();
    CHECK(GREW(b.anon - a.anon, 256), "64 private anonymous pages touched: RssAnon +256 kB");
    CHECK(FILE_GREW(b.file - a.file, 0) && b.shmem == a.shmem, "RssFile and RssShmem unchanged");

    char *shared = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    touch(shared, 16, 1);
    struct rss c = now();
    CHECK(c.shmem - b.shmem == 64, "16 shared anonymous pages touched: RssShmem +64 kB");
    CHECK(GREW(c.anon - b.anon, 0) && FILE_GREW(c.file - b.file, 0), "RssAnon and RssFile unchanged");

    int fd = open("/proc/self/exe", O_RDONLY);
    char *file = mmap(NULL, 32 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(file != MAP_FAILED, "mmap 32 pages of the program's own file");
    touch(file, 32, 0);
    struct rss d = now();
    CHECK(FILE_GREW(d.file - c.file, 128), "32 file pages read: RssFile +128 kB");
    CHECK(GREW(d.anon - c.anon, 0) && d.shmem == c.shmem, "RssAnon and RssShmem unchanged");

    char *cow = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    touch(cow, 8, 1);
    struct rss e = now();
    CHECK(GREW(e.anon - d.anon, 32), "8 pages of a private file mapping written: RssAnon +32 kB");
    CHECK(FILE_GREW(e.file - d.file, 0), "the private copies are not RssFile");
    CHECK(e.vm == e.anon + e.file + e.shmem, "VmRSS = RssAnon + RssFile + RssShmem");

    munmap(anon, 64 * 4096);
    munmap(shared, 16 * 4096);
    munmap(file, 32 * 4096);
    munmap(cow, 8 * 4096);
    close(fd);
    struct rss f = now();
    CHECK(f.anon <= a.anon + SLACK && FILE_GREW(f.file - a.file, 0) && f.shmem == a.shmem,
          "after munmap: back to where it started");
    return t_end();
}
