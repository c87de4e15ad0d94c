/* More of /proc/sys compared with Linux: kernel/domainname as
 * setdomainname's state (both ways, cut at 64), kernel/threads-max,
 * tainted, core_pattern and fs/lease-break-time are readable numbers or
 * text. Values that depend on the machine are not printed. */
#include "t_common.h"
#include <sched.h>
#include <sys/mount.h>
#include <sys/utsname.h>

static int slurp(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int r = read(fd, buf, n - 1);
    close(fd);
    if (r >= 0) buf[r] = 0;
    return r;
}

static int is_number_line(const char *s) {
    char *end;
    strtol(s, &end, 10);
    return end != s && *end == '\n';
}

int main(void) {
    t_begin("t_proc_sys");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    char b[256];
    CHECK(slurp("/proc/sys/kernel/threads-max", b, sizeof b) > 0 && is_number_line(b) && atol(b) >= 20, "kernel/threads-max: a number >= 20");
    CHECK(slurp("/proc/sys/kernel/tainted", b, sizeof b) > 0 && is_number_line(b), "kernel/tainted: a number");
    CHECK(slurp("/proc/sys/kernel/core_pattern", b, sizeof b) > 1, "kernel/core_pattern: text");
    CHECK(slurp("/proc/sys/fs/lease-break-time", b, sizeof b) > 0 && is_number_line(b), "fs/lease-break-time: a number");
    struct stat st;
    CHECK(stat("/proc/sys/kernel/domainname", &st) == 0 && (st.st_mode & 0777) == 0644, "kernel/domainname: 0644");
    pid_t kid = fork();
    if (kid == 0) {
        int ok = 1;
        if (unshare(CLONE_NEWUTS) != 0) { /* the guest has no namespaces */ }
        char old[128];
        struct utsname u;
        uname(&u);
        strcpy(old, u.domainname);
        ok &= setdomainname("t-dom-a", 7) == 0;
        ok &= slurp("/proc/sys/kernel/domainname", b, sizeof b) > 0 && !strcmp(b, "t-dom-a\n");
        int fd = open("/proc/sys/kernel/domainname", O_WRONLY | O_TRUNC);
        ok &= fd >= 0 && write(fd, "t-dom-b\n", 8) == 8;
        close(fd);
        ok &= uname(&u) == 0 && !strcmp(u.domainname, "t-dom-b");
        char g[80];
        ok &= getdomainname(g, sizeof g) == 0 && !strcmp(g, "t-dom-b");
        char big[80];
        memset(big, 'd', sizeof big);
        ok &= setdomainname(big, sizeof big) == -1 && errno == EINVAL;
        ok &= setdomainname(old, strlen(old)) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "kernel/domainname is setdomainname's state (and the reverse); 80 bytes: EINVAL");
    kid = fork();
    if (kid == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(2);
        _exit(setdomainname("x", 1) == -1 && errno == EPERM ? 0 : 1);
    }
    CHECK(!strcmp(t_wait(kid), "exited 0"), "a user's setdomainname: EPERM");
    return t_end();
}
