/* Guest test: what programs read first in /proc: /proc/sys basics
 * (kernel/ostype, osrelease, hostname as sethostname's state and
 * writable by root, pid_max, random/boot_id and uuid; fs/file-max, nr_open,
 * pipe-max-size; vm/max_map_count, overcommit_memory), and
 * /proc/<pid>/stat CPU times that advance with the CPU used. Values differ
 * between hosts, so only facts about them are printed. */
#include "t_common.h"
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/utsname.h>

/* Reads a small /proc file into buf; returns its length or -1. */
static int slurp(const char *path, char *buf, int cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int n = read(fd, buf, cap - 1);
    close(fd);
    if (n >= 0) buf[n] = 0;
    return n;
}

static long number(const char *path) {
    char b[64];
    if (slurp(path, b, sizeof b) <= 0) return -1;
    return strtol(b, NULL, 10);
}

static int uuid_like(const char *s) {
    if (strlen(s) != 37 || s[36] != '\n') return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) return 0;
    }
    return s[14] == '4';
}

static void kernel_sysctls(void) {
    char b[128], c[128];
    struct utsname u;
    uname(&u);
    CHECK(slurp("/proc/sys/kernel/ostype", b, sizeof b) > 0 && !strcmp(b, "Linux\n"), "kernel/ostype is Linux");
    snprintf(c, sizeof c, "%s\n", u.release);
    CHECK(slurp("/proc/sys/kernel/osrelease", b, sizeof b) > 0 && !strcmp(b, c), "kernel/osrelease is uname's release");
    snprintf(c, sizeof c, "%s\n", u.nodename);
    CHECK(slurp("/proc/sys/kernel/hostname", b, sizeof b) > 0 && !strcmp(b, c), "kernel/hostname is uname's nodename");
    long pid_max = number("/proc/sys/kernel/pid_max");
    CHECK(pid_max >= 32768 && getpid() < pid_max, "kernel/pid_max at least 32768, above our pid");
    char id1[64] = {0}, id2[64] = {0};
    CHECK(slurp("/proc/sys/kernel/random/boot_id", id1, sizeof id1) == 37 && uuid_like(id1), "random/boot_id is a UUID");
    CHECK(slurp("/proc/sys/kernel/random/boot_id", id2, sizeof id2) == 37 && !strcmp(id1, id2), "and the same on a second read");
    CHECK(slurp("/proc/sys/kernel/random/uuid", id1, sizeof id1) == 37 && uuid_like(id1), "random/uuid is a UUID");
    CHECK(slurp("/proc/sys/kernel/random/uuid", id2, sizeof id2) == 37 && strcmp(id1, id2) != 0, "and a new one on each read");
    struct stat st;
    CHECK(stat("/proc/sys/kernel/hostname", &st) == 0 && (st.st_mode & 0777) == 0644 && st.st_uid == 0, "kernel/hostname: root's, 0644");
    CHECK(stat("/proc/sys/kernel/random/uuid", &st) == 0 && S_ISREG(st.st_mode), "random/uuid is a regular file");
    CHECK(stat("/proc/sys/kernel/random", &st) == 0 && S_ISDIR(st.st_mode), "kernel/random is a directory");
}

/* In a child (its own UTS namespace natively; in the guest the guest is
 * the machine): hostname written through /proc and through sethostname
 * is one state. */
static void hostname_writes(void) {
    pid_t kid = fork();
    if (kid == 0) {
        char old[128], b[128];
        int ok = 1;
        if (unshare(CLONE_NEWUTS) != 0) { /* the guest has no namespaces */ }
        gethostname(old, sizeof old);
        int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_TRUNC);
        ok &= fd >= 0 && write(fd, "t-sysctl-a\n", 11) == 11;
        close(fd);
        ok &= gethostname(b, sizeof b) == 0 && !strcmp(b, "t-sysctl-a");
        ok &= sethostname("t-sysctl-b", 10) == 0;
        ok &= slurp("/proc/sys/kernel/hostname", b, sizeof b) > 0 && !strcmp(b, "t-sysctl-b\n");
        fd = open("/proc/sys/kernel/hostname", O_WRONLY);
        char big[80];
        memset(big, 'h', sizeof big);
        ok &= fd >= 0 && write(fd, big, sizeof big) == sizeof big;
        close(fd);
        ok &= gethostname(b, sizeof b) == 0 && strlen(b) == 64 && b[0] == 'h';
        ok &= sethostname(old, strlen(old)) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "kernel/hostname written by root is sethostname's state (and the reverse); a long write is cut at 64");
    kid = fork();
    if (kid == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(2);
        _exit(open("/proc/sys/kernel/hostname", O_WRONLY) < 0 && errno == EACCES ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "a user cannot open kernel/hostname for writing (EACCES)");
}

static void fs_vm_sysctls(void) {
    long nr_open = number("/proc/sys/fs/nr_open");
    CHECK(nr_open >= 1024, "fs/nr_open at least 1024");
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl.rlim_cur = old.rlim_cur;
    rl.rlim_max = nr_open + 1;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) < 0 && errno == EPERM, "RLIMIT_NOFILE hard limit above nr_open: EPERM");
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK(number("/proc/sys/fs/file-max") >= 8192, "fs/file-max at least 8192");
    long pipe_max = number("/proc/sys/fs/pipe-max-size");
    int p[2];
    CHECK(pipe_max >= 65536 && pipe(p) == 0, "fs/pipe-max-size at least 64 KiB");
    CHECK(fcntl(p[1], F_SETPIPE_SZ, (int)pipe_max) >= pipe_max, "a pipe can grow to pipe-max-size");
    close(p[0]);
    close(p[1]);
    CHECK(number("/proc/sys/vm/max_map_count") >= 65530, "vm/max_map_count at least 65530");
    long oc = number("/proc/sys/vm/overcommit_memory");
    CHECK(oc >= 0 && oc <= 2, "vm/overcommit_memory is 0, 1 or 2");
}

/* utime + stime of a /proc/<pid>/stat line, in ticks; cutime + cstime too. */
static long stat_cpu(const char *path, long *children) {
    char b[1024];
    if (slurp(path, b, sizeof b) <= 0) return -1;
    char *p = strrchr(b, ')');
    unsigned long ut, st;
    long cut, cst;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ut, &st, &cut, &cst) != 4) return -1;
    if (children) *children = cut + cst;
    return (long)(ut + st);
}

static void burn_until(long ticks) {
    struct tms t;
    volatile unsigned long x = 0;
    clock_t start = times(&t), end = start + 50 * sysconf(_SC_CLK_TCK);
    long base = t.tms_utime + t.tms_stime;
    while (times(&t) < end && t.tms_utime + t.tms_stime - base < ticks)
        for (int i = 0; i < 1000000; i++) x += i;
}

static void cpu_times(void) {
    long before = stat_cpu("/proc/self/stat", NULL);
    burn_until(30);
    long after = stat_cpu("/proc/self/stat", NULL);
    struct tms t;
    times(&t);
    long own = t.tms_utime + t.tms_stime;
    CHECK(before >= 0 && after - before >= 20, "/proc/self/stat utime+stime advanced with the CPU used");
    CHECK(after <= own + 5 && after >= own - 5, "and agrees with times()");
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)getpid());
    CHECK(stat_cpu(path, NULL) >= after, "/proc/<pid>/stat shows the same");
    long children = -1;
    stat_cpu("/proc/self/stat", &children);
    CHECK(children == 0, "no children's time yet");
    pid_t kid = fork();
    if (kid == 0) {
        burn_until(20);
        _exit(0);
    }
    t_wait(kid);
    stat_cpu("/proc/self/stat", &children);
    CHECK(children >= 10, "cutime+cstime count a reaped child's CPU");
}

int main(void) {
    t_begin("t_sysctl");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    kernel_sysctls();
    hostname_writes();
    fs_vm_sysctls();
    cpu_times();
    return t_end();
}
