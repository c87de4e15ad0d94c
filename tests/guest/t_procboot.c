/* Guest test: what ps and Debian's boot scripts read about the boot.
 * /proc/cmdline is one line ending in a newline (Debian's rcS scripts cat
 * it; a missing file printed "No such file or directory" at every boot);
 * /proc/stat's btime is the wall clock at boot, so btime + /proc/uptime is
 * now, and btime + our start time (stat field 22, in clock ticks) is when
 * this process started (procps' ps printed START as 1970 with btime 0). */
#include "t_common.h"
#include <sys/mount.h>
#include <time.h>

static char *slurp(const char *path, int *len) {
    static char buf[16384];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    int n = 0, r;
    while (n < (int)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int main(void) {
    t_begin("t_procboot");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    int n = 0;
    char *c = slurp("/proc/cmdline", &n);
    CHECK(c != NULL, "/proc/cmdline opens");
    CHECK(c && n > 1 && c[n - 1] == '\n' && strchr(c, '\n') == c + n - 1 && strlen(c) == (size_t)n,
          "/proc/cmdline: one line of text ending in a newline");
    struct stat st;
    CHECK(stat("/proc/cmdline", &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0444,
          "/proc/cmdline: a regular file, mode 0444");

    char *s = slurp("/proc/stat", NULL);
    char *b = s ? strstr(s, "\nbtime ") : NULL;
    long long btime = b ? atoll(b + 7) : 0;
    time_t now = time(NULL);
    double up = 0;
    char *u = slurp("/proc/uptime", NULL);
    CHECK(u && sscanf(u, "%lf", &up) == 1, "/proc/uptime parses");
    long long diff = btime + (long long)up - (long long)now;
    CHECK(b && diff >= -2 && diff <= 2, "btime + uptime is the wall clock now");

    /* Our own start: field 22 of /proc/self/stat, after the ')' of comm. */
    char *ps = slurp("/proc/self/stat", NULL);
    char *p = ps ? strrchr(ps, ')') : NULL;
    unsigned long long start = 0;
    int field = 2;
    for (; p && *p && field < 22; p++)
        if (*p == ' ') field++;
    if (p && field == 22) start = strtoull(p, NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    long long started = btime + (long long)(start / (unsigned long long)hz);
    CHECK(p && started <= now + 1 && started >= now - 5, "btime + our start time is about now");
    return t_end();
}
