/* Guest test: exec through /proc/self/exe, /proc/<pid>/exe, /proc/self/fd/N
 * (fexecve) and execveat(fd, "", AT_EMPTY_PATH) runs exactly the file the
 * link names, also after it was renamed or unlinked; execve with no
 * arguments at all gives the program one empty argv[0]. The program
 * re-executes itself with a role in argv[1] (or, for argc == 0, in the
 * environment). */
#include "t_common.h"
#include <sys/mount.h>
#include <sys/syscall.h>

extern char **environ;

/* Copies this program to `to` (mode 0755). */
static int copy_self(const char *to) {
    int in = open("/proc/self/exe", O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char b[65536];
    ssize_t n;
    int ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, b, sizeof b)) > 0) ok = write(out, b, n) == n;
    close(in);
    close(out);
    return ok ? 0 : -1;
}

/* Runs `fn` in a child and returns what the child printed on a pipe (the
 * roles print "ran:<role>" there, on fd 1). */
static const char *child_output(void (*fn)(void *), void *arg) {
    static char out[256];
    int p[2];
    memset(out, 0, sizeof out);
    if (pipe(p) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        fn(arg);
        _exit(120);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof out - 1 && (n = read(p[0], out + got, sizeof out - 1 - got)) > 0) got += n;
    close(p[0]);
    const char *how = t_wait(pid);
    if (strcmp(how, "exited 0") != 0) snprintf(out + got, sizeof out - got, "[%s]", how);
    return out;
}

static void exec_proc_self_exe(void *role) {
    char *argv[] = {"me", role, NULL};
    execv("/proc/self/exe", argv);
}

static void exec_proc_pid_exe(void *role) {
    char path[64], *argv[] = {"me", role, NULL};
    snprintf(path, sizeof path, "/proc/%d/exe", (int)getpid());
    execv(path, argv);
}

/* Renames its own binary (argv: the copy's name), then re-execs itself. */
static void exec_renamed(void *name) {
    char *argv[] = {"copy", "rename-then-self", name, NULL};
    execv(name, argv);
}

static void exec_unlinked(void *name) {
    char *argv[] = {"copy", "unlink-then-self", name, NULL};
    execv(name, argv);
}

static void exec_fd_unlinked(void *name) {
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    unlink(name);
    char *argv[] = {"fd", "role-fexecve", NULL};
    fexecve(fd, argv, environ);
}

static void exec_proc_fd(void *name) {
    int fd = open(name, O_RDONLY);
    rename(name, "moved-away");
    char path[64], *argv[] = {"fd", "role-proc-fd", NULL};
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    execv(path, argv);
}

static void exec_at_empty(void *name) {
    int fd = open(name, O_PATH);
    unlink(name);
    char *argv[] = {"fd", "role-execveat", NULL};
    syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
}

static void exec_no_args(void *unused) {
    (void)unused;
    char *argv[] = {NULL}, *envp[] = {"T_EXEC_SELF_ROLE=no-args", NULL};
    syscall(SYS_execve, "/proc/self/exe", argv, envp);
}

/* The roles run in the re-executed program. */
static int role(int argc, char **argv) {
    const char *env = getenv("T_EXEC_SELF_ROLE");
    if (env && !strcmp(env, "no-args")) {
        printf("ran:no-args argc=%d argv0=\"%s\" argv1=%s", argc, argc > 0 ? argv[0] : "?",
               argc > 1 ? "set" : "NULL");
        return 0;
    }
    if (argc < 2 || strncmp(argv[1], "role-", 5) != 0) {
        if (argc >= 3 && !strcmp(argv[1], "rename-then-self")) {
            if (rename(argv[2], "renamed") != 0) return 3;
            char *nargv[] = {"me", "role-renamed", NULL};
            execv("/proc/self/exe", nargv);
            return 4;
        }
        if (argc >= 3 && !strcmp(argv[1], "unlink-then-self")) {
            if (unlink(argv[2]) != 0) return 3;
            char *nargv[] = {"me", "role-unlinked", NULL};
            execv("/proc/self/exe", nargv);
            return 4;
        }
        return -1;
    }
    printf("ran:%s", argv[1] + 5);
    return 0;
}

int main(int argc, char **argv) {
    int r = role(argc, argv);
    if (r >= 0) return r;
    t_begin("t_exec_self");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);

    CHECK(!strcmp(child_output(exec_proc_self_exe, "role-self"), "ran:self"), "execve /proc/self/exe runs this program");
    CHECK(!strcmp(child_output(exec_proc_pid_exe, "role-pid"), "ran:pid"), "execve /proc/<pid>/exe runs this program");

    /* another program ran in between: still this one */
    CHECK(system("true") == 0, "another program ran");
    CHECK(!strcmp(child_output(exec_proc_self_exe, "role-again"), "ran:again"), "/proc/self/exe still runs this program");

    CHECK(copy_self("copy1") == 0, "copied the program");
    CHECK(!strcmp(child_output(exec_renamed, "copy1"), "ran:renamed"), "a renamed program re-executes itself through /proc/self/exe");
    CHECK(access("renamed", X_OK) == 0 && access("copy1", F_OK) != 0, "it was renamed");
    unlink("renamed");

    CHECK(copy_self("copy2") == 0, "copied again");
    CHECK(!strcmp(child_output(exec_unlinked, "copy2"), "ran:unlinked"), "an unlinked program re-executes itself through /proc/self/exe");
    CHECK(access("copy2", F_OK) != 0, "it was unlinked");

    CHECK(copy_self("copy3") == 0, "copied again");
    CHECK(!strcmp(child_output(exec_fd_unlinked, "copy3"), "ran:fexecve"), "fexecve of an fd whose file was unlinked");

    CHECK(copy_self("copy4") == 0, "copied again");
    CHECK(!strcmp(child_output(exec_proc_fd, "copy4"), "ran:proc-fd"), "execve /proc/self/fd/N after a rename");
    unlink("moved-away");

    CHECK(copy_self("copy5") == 0, "copied again");
    CHECK(!strcmp(child_output(exec_at_empty, "copy5"), "ran:execveat"), "execveat(O_PATH fd, \"\", AT_EMPTY_PATH) after an unlink");

    CHECK(!strcmp(child_output(exec_no_args, NULL), "ran:no-args argc=1 argv0=\"\" argv1=NULL"), "execve with argc 0 gives one empty argv[0]");

    /* busybox re-executes its applets through /proc/self/exe (named
     * "busybox" here so that it runs the applet in argv[1]) */
    CHECK(symlink("/proc/self/exe", "busybox") == 0, "symlink busybox -> /proc/self/exe");
    FILE *f = popen("/bin/busybox sh -c './busybox echo via-self; /bin/busybox timeout 5 /bin/busybox true && echo timeout-ok' 2>&1", "r");
    char line[128] = {0}, all[256] = {0};
    while (f && fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
    CHECK(f && pclose(f) == 0 && !strcmp(all, "via-self\ntimeout-ok\n"), "busybox: /proc/self/exe echo, and timeout 5 true");
    unlink("busybox");

    /* errno cases */
    int d = open(".", O_RDONLY | O_DIRECTORY);
    char *xargv[] = {"x", NULL};
    CHECK(syscall(SYS_execveat, d, "", xargv, environ, AT_EMPTY_PATH) < 0 && errno == EACCES, "execveat of a directory fd: EACCES");
    CHECK(syscall(SYS_execveat, d, "", xargv, environ, 0) < 0 && errno == ENOENT, "execveat with an empty path and no AT_EMPTY_PATH: ENOENT");
    CHECK(syscall(SYS_execveat, d, "x", xargv, environ, 0x4) < 0 && errno == EINVAL, "execveat with an unknown flag: EINVAL");
    CHECK(symlink("/proc/self/exe", "link") == 0 && syscall(SYS_execveat, d, "link", xargv, environ, AT_SYMLINK_NOFOLLOW) < 0 && errno == ELOOP,
          "execveat AT_SYMLINK_NOFOLLOW on a symlink: ELOOP");
    unlink("link");
    close(d);
    int p[2];
    CHECK(pipe(p) == 0 && syscall(SYS_execveat, p[0], "", xargv, environ, AT_EMPTY_PATH) < 0 && errno == EACCES, "execveat of a pipe fd: EACCES");
    close(p[0]);
    close(p[1]);
    return t_end();
}
