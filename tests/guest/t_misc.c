/* Guest test: uname, getrandom, resource limits, sysinfo, prctl names,
 * user ids as root, and -ENOSYS for an unknown syscall number. */
#include "t_common.h"
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

int main(void) {
    t_begin("t_misc");

    /* uname: print only what is the same on every x86-64 Linux */
    struct utsname u;
    CHECK(uname(&u) == 0, "uname");
    SAY("uname: sysname %s, machine %s\n", u.sysname, u.machine);
    CHECK(u.release[0] >= '2' && u.release[0] <= '9' && strchr(u.release, '.'), "release looks like N.N");
    CHECK(u.nodename[0] != 0 && strlen(u.nodename) < sizeof u.nodename, "nodename non-empty");
    char host[256];
    CHECK(gethostname(host, sizeof host) == 0 && !strcmp(host, u.nodename), "gethostname matches uname");

    /* getrandom */
    unsigned char r1[64] = {0}, r2[64] = {0};
    CHECK(getrandom(r1, sizeof r1, 0) == sizeof r1 && getrandom(r2, sizeof r2, GRND_NONBLOCK) == sizeof r2, "getrandom 64 bytes twice");
    int zeros = 0;
    for (int i = 0; i < 64; i++) zeros += r1[i] == 0;
    CHECK(zeros < 16 && memcmp(r1, r2, sizeof r1) != 0, "random bytes are not zeros and differ");
    CHECK(getrandom(r1, 1, 0x100) < 0 && errno == EINVAL, "getrandom bad flags gives EINVAL");
    int ufd = open("/dev/urandom", O_RDONLY);
    CHECK(ufd >= 0 && read(ufd, r1, 16) == 16, "/dev/urandom reads");
    close(ufd);

    /* rlimits */
    struct rlimit rl, rl2;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 0 && rl.rlim_cur <= rl.rlim_max, "getrlimit NOFILE");
    rl2.rlim_cur = 64;
    rl2.rlim_max = rl.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl2) == 0 && getrlimit(RLIMIT_NOFILE, &rl2) == 0 && rl2.rlim_cur == 64, "setrlimit NOFILE soft 64");
    CHECK(dup2(0, 64) < 0 && errno == EBADF, "dup2 to fd 64 over the limit gives EBADF");
    int last = -1, fd;
    while ((fd = open("/", O_RDONLY)) >= 0) last = fd;
    CHECK(errno == EMFILE && last == 63, "opening stops at fd 63 with EMFILE");
    for (int i = 3; i <= last; i++) close(i);
    struct rlimit bad = {100, 50};
    CHECK(setrlimit(RLIMIT_NOFILE, &bad) < 0 && errno == EINVAL, "soft above hard gives EINVAL");
    struct rlimit nr = {128, rl.rlim_max}, old;
    CHECK(prlimit(0, RLIMIT_NOFILE, &nr, &old) == 0 && old.rlim_cur == 64 && getrlimit(RLIMIT_NOFILE, &rl2) == 0 && rl2.rlim_cur == 128,
          "prlimit64 sets and returns the old limit");
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "restore NOFILE");
    struct rlimit nofile = rl;
    CHECK(getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur >= 65536, "getrlimit STACK at least 64 KiB");
    CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && getrlimit(RLIMIT_AS, &rl) == 0 && getrlimit(RLIMIT_NPROC, &rl) == 0, "getrlimit CORE, AS, NPROC");
    CHECK(getrlimit(99, &rl) < 0 && errno == EINVAL, "getrlimit bad resource gives EINVAL");
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit c;
        getrlimit(RLIMIT_NOFILE, &c);
        _exit(c.rlim_cur == nofile.rlim_cur ? 0 : 1);
    }
    SAY("child inherits the limits: %s\n", t_wait(pid));

    /* sysinfo */
    struct sysinfo si;
    CHECK(sysinfo(&si) == 0 && si.totalram > 0 && si.mem_unit > 0 && si.freeram <= si.totalram && si.procs > 0, "sysinfo sane");

    /* prctl names */
    char name[17] = {0};
    CHECK(prctl(PR_SET_NAME, "guest-misc-test-long-name") == 0, "PR_SET_NAME");
    CHECK(prctl(PR_GET_NAME, name) == 0, "PR_GET_NAME");
    SAY("PR_GET_NAME: '%s' (truncated to 15)\n", name);
    CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0 && prctl(PR_GET_PDEATHSIG, &fd) == 0 && fd == SIGUSR1, "PR_SET/GET_PDEATHSIG");
    prctl(PR_SET_PDEATHSIG, 0);
    CHECK(prctl(PR_SET_DUMPABLE, 1) == 0 && prctl(PR_GET_DUMPABLE) == 1, "PR_SET/GET_DUMPABLE");
    CHECK(prctl(123456) < 0 && errno == EINVAL, "unknown prctl gives EINVAL");

    /* ids: the guest always runs as root; natively the suite runs as root */
    CHECK(getuid() == geteuid() && getgid() == getegid(), "uid == euid, gid == egid");
    uid_t ru, eu, su;
    CHECK(getresuid(&ru, &eu, &su) == 0 && ru == getuid() && su == eu, "getresuid");
    CHECK(setuid(getuid()) == 0 && setgid(getgid()) == 0, "setuid/setgid to themselves");
    if (getuid() == 0) {
        SAY("running as root: yes\n");
        pid = fork();
        if (pid == 0) {
            if (setgid(1000) != 0 || setuid(1000) != 0) _exit(1);
            if (getuid() != 1000 || geteuid() != 1000 || getgid() != 1000) _exit(2);
            if (setuid(0) == 0 || errno != EPERM) _exit(3);
            int f = open("/tmp", O_RDONLY);
            if (f < 0) _exit(4);
            if (fchown(f, 0, 0) == 0 || errno != EPERM) _exit(5);
            _exit(0);
        }
        SAY("root child drops to uid 1000 and cannot come back: %s\n", t_wait(pid));
        pid = fork();
        if (pid == 0) {
            uid_t r, e, s;
            if (setuid(-1) == 0 || errno != EINVAL) _exit(1);
            if (setgid(-1) == 0 || errno != EINVAL) _exit(2);
            if (getresuid(&r, &e, &s) != 0 || r != 0 || e != 0 || s != 0) _exit(3);
            _exit(0);
        }
        SAY("setuid(-1)/setgid(-1) are EINVAL: %s\n", t_wait(pid));
        pid = fork();
        if (pid == 0) {
            uid_t r, e, s;
            gid_t gr, ge, gs;
            /* keep a saved root id, step out and back in */
            if (setresuid(1000, 1001, 0) != 0) _exit(1);
            if (getresuid(&r, &e, &s) != 0 || r != 1000 || e != 1001 || s != 0) _exit(2);
            if (setresuid(-1, 0, -1) != 0 || geteuid() != 0) _exit(3);
            /* setreuid with a real id set moves the saved id to the new euid */
            if (setreuid(1002, 1003) != 0) _exit(4);
            if (getresuid(&r, &e, &s) != 0 || r != 1002 || e != 1003 || s != 1003) _exit(5);
            /* no id left is root: anything else is refused */
            if (setresuid(-1, 0, -1) == 0 || errno != EPERM) _exit(6);
            if (setresuid(1003, 1002, 1002) != 0) _exit(7);

            if (setresgid(5, 6, 7) == 0 || errno != EPERM) _exit(8);
            if (getresgid(&gr, &ge, &gs) != 0 || gr != 0 || ge != 0 || gs != 0) _exit(9);
            _exit(0);
        }
        SAY("setresuid/setreuid keep and move the saved id: %s\n", t_wait(pid));
        pid = fork();
        if (pid == 0) {
            /* setreuid: the real id may become the real or effective one,
             * never the saved one; the effective id may be any of the three */
            if (setresuid(1000, 1001, 1002) != 0) _exit(1);
            if (setreuid(1002, -1) == 0 || errno != EPERM) _exit(2);
            if (setreuid(-1, 1002) != 0 || geteuid() != 1002) _exit(3);
            if (setreuid(1002, -1) != 0 || getuid() != 1002) _exit(4);
            _exit(0);
        }
        SAY("setreuid limits the new real id: %s\n", t_wait(pid));
        pid = fork();
        if (pid == 0) {
            gid_t r, e, s;
            if (setresgid(10, 11, 12) != 0) _exit(1);
            if (getresgid(&r, &e, &s) != 0 || r != 10 || e != 11 || s != 12) _exit(2);
            if (setregid(-1, 10) != 0) _exit(3);
            if (getresgid(&r, &e, &s) != 0 || r != 10 || e != 10 || s != 12) _exit(4);
            _exit(0);
        }
        SAY("setresgid/setregid: %s\n", t_wait(pid));
        gid_t groups[4];
        CHECK(getgroups(4, groups) >= 0, "getgroups");
        CHECK(setgroups(0, NULL) == 0 && getgroups(4, groups) == 0, "setgroups to none");
    } else {
        SAY("running as root: no (these results will not match the guest)\n");
    }

    /* an unknown syscall number */
    errno = 0;
    CHECK(syscall(1000) == -1 && errno == ENOSYS, "syscall 1000 gives ENOSYS");
    CHECK(syscall(SYS_getppid) >= 0, "getppid");

    /* misc calls that must simply work */
    CHECK(sched_yield() == 0, "sched_yield");
    CHECK(getpriority(PRIO_PROCESS, 0) >= -20, "getpriority");
    CHECK(syscall(SYS_set_tid_address, NULL) == getpid(), "set_tid_address returns the tid");
    return t_end();
}
