/* Hardening, part 2 (issue 10).
 * - execve of a file open for writing (by this process or another, or
 *   kept by a shared mapping of a file opened O_RDWR after its fd is
 *   closed) is ETXTBSY, for the program and for a `#!` script's file and
 *   its interpreter; it runs again once the writer is gone; a writable
 *   memfd runs (Linux 6.x). A private mapping of an O_RDWR fd, a child's
 *   inherited shared mapping, a moved mapping and a writable fd in flight
 *   in an SCM_RIGHTS message keep it ETXTBSY too; writing, truncating or
 *   O_TRUNC-opening a running program is ETXTBSY.
 * - Lock records: 10 000 single-byte F_SETLK records on one file each
 *   succeed or get ENOLCK (the guest kernel caps records per inode; Linux
 *   only fails when out of memory), and one F_UNLCK of the whole file
 *   still works after, so nothing else differs. */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

extern char **environ;

static const char *self_path;

/* Copy this program to `dst` (mode 0755). */
static int copy_self(const char *dst) {
    int in = open(self_path, O_RDONLY);
    if (in < 0) return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    char b[65536];
    ssize_t n = -1;
    if (out >= 0)
        while ((n = read(in, b, sizeof b)) > 0)
            if (write(out, b, n) != n) break;
    close(in);
    close(out);
    return n == 0 ? 0 : -1;
}

/* execve(path) or execveat(fd, "") in a child: "ran" or the errno name. */
static const char *try_exec(const char *path, int fd) {
    static char res[64];
    int pfd[2];
    if (pipe(pfd) != 0) return "pipe failed";
    pid_t c = fork();
    if (c == 0) {
        close(pfd[0]);
        char *argv[] = {"t_harden2", "child", NULL};
        if (fd >= 0)
            syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        else
            execve(path, argv, environ);
        int e = errno;
        if (write(pfd[1], &e, sizeof e) != sizeof e) _exit(3);
        _exit(2);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t got = read(pfd[0], &e, sizeof e);
    close(pfd[0]);
    const char *st = t_wait(c);
    if (got == sizeof e)
        snprintf(res, sizeof res, "%s", strerrorname_np(e));
    else
        snprintf(res, sizeof res, "%s", strcmp(st, "exited 0") == 0 ? "ran" : st);
    return res;
}

static void exec_busy(void) {
    const char *prog = "prog";
    CHECK(copy_self(prog) == 0, "copy of this program");
    char path[128];
    snprintf(path, sizeof path, "%s/%s", t_dir, prog);

    CHECK(strcmp(try_exec(path, -1), "ran") == 0, "exec with no writer runs");
    int w = open(prog, O_WRONLY);
    SAY("exec while this process holds it O_WRONLY: %s\n", try_exec(path, -1));
    int r = open(prog, O_RDONLY);
    SAY("execveat of an O_RDONLY fd while a writer is open: %s\n", try_exec(NULL, r));
    int rw = open(prog, O_RDWR);
    SAY("execveat of an O_RDWR fd: %s\n", try_exec(NULL, rw));
    close(rw);
    pid_t c = fork();
    if (c == 0) {
        close(w);
        SAY("exec in a child that closed it, parent holds it: %s\n", try_exec(path, -1));
        _exit(0);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "child");
    close(w);
    SAY("exec after the writer closed: %s\n", try_exec(path, -1));
    SAY("execveat of the O_RDONLY fd now: %s\n", try_exec(NULL, r));
    close(r);

    /* A shared mapping of a file opened O_RDWR keeps it written. */
    rw = open(prog, O_RDWR);
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, rw, 0);
    CHECK(m != MAP_FAILED, "shared read-only mapping of an O_RDWR fd");
    close(rw);
    SAY("exec while that mapping stays (fd closed): %s\n", try_exec(path, -1));
    munmap(m, 4096);
    SAY("exec after munmap: %s\n", try_exec(path, -1));
    /* A shared mapping of an O_RDONLY fd does not. */
    r = open(prog, O_RDONLY);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, r, 0);
    close(r);
    SAY("exec with a shared mapping of an O_RDONLY fd: %s\n", try_exec(path, -1));
    munmap(m, 4096);
    /* A private mapping of an O_RDWR fd keeps the file too (the mapping
     * holds the open file, and the file its write access). */
    rw = open(prog, O_RDWR);
    m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, rw, 0);
    CHECK(m != MAP_FAILED, "private mapping of an O_RDWR fd");
    close(rw);
    SAY("exec with a private mapping of an O_RDWR fd (fd closed): %s\n", try_exec(path, -1));
    munmap(m, 4096);
    SAY("exec after that munmap: %s\n", try_exec(path, -1));
    /* A shared writable mapping inherited by a child: the parent's
     * munmap is not enough while the child keeps its copy. */
    rw = open(prog, O_RDWR);
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
    CHECK(m != MAP_FAILED, "shared writable mapping");
    close(rw);
    int hold[2];
    CHECK(pipe(hold) == 0, "pipe");
    c = fork();
    if (c == 0) {
        close(hold[1]);
        char ch;
        while (read(hold[0], &ch, 1) > 0) {
        }
        _exit(0);
    }
    close(hold[0]);
    munmap(m, 4096);
    SAY("exec while a child keeps the shared writable mapping: %s\n", try_exec(path, -1));
    close(hold[1]);
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "the holding child");
    SAY("exec after that child exited: %s\n", try_exec(path, -1));
    /* mremap moves the mapping and what it holds. */
    rw = open(prog, O_RDWR);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, rw, 0);
    close(rw);
    void *moved = mremap(m, 4096, 8192, MREMAP_MAYMOVE);
    CHECK(moved != MAP_FAILED, "mremap");
    SAY("exec after mremap of the mapping: %s\n", try_exec(path, -1));
    munmap(moved, 8192);
    SAY("exec after munmap of the moved mapping: %s\n", try_exec(path, -1));
    /* A writable fd in flight in an SCM_RIGHTS message still counts. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    w = open(prog, O_WRONLY);
    {
        char byte = 'x';
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = sizeof u.buf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &w, sizeof(int));
        CHECK(sendmsg(sv[0], &mh, 0) == 1, "sendmsg SCM_RIGHTS");
    }
    close(w);
    SAY("exec while a writable fd is in flight: %s\n", try_exec(path, -1));
    close(sv[1]);
    close(sv[0]);
    SAY("exec after the message was dropped: %s\n", try_exec(path, -1));

    /* `#!` scripts: the script file and the interpreter. */
    char line[192];
    snprintf(line, sizeof line, "#!%s\n", path);
    int sfd = open("script", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(sfd >= 0 && write(sfd, line, strlen(line)) == (ssize_t)strlen(line), "write a script");
    char spath[128];
    snprintf(spath, sizeof spath, "%s/script", t_dir);
    SAY("exec of the script while it is open for writing: %s\n", try_exec(spath, -1));
    close(sfd);
    SAY("exec of the script after close: %s\n", try_exec(spath, -1));
    w = open(prog, O_WRONLY);
    SAY("exec of the script while its interpreter is open for writing: %s\n", try_exec(spath, -1));
    close(w);

    /* memfd: writable, and still runs. */
    int mfd = memfd_create("prog", 0);
    int in = open(prog, O_RDONLY);
    char b[65536];
    ssize_t n;
    while ((n = read(in, b, sizeof b)) > 0)
        if (write(mfd, b, n) != n) break;
    close(in);
    SAY("execveat of a writable memfd: %s\n", try_exec(NULL, mfd));
    close(mfd);

    /* The other direction: writing a running program is ETXTBSY. */
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    c = fork();
    if (c == 0) {
        close(pfd[1]);
        dup2(pfd[0], 0);
        char *argv[] = {"t_harden2", "wait", NULL};
        execve(path, argv, environ);
        _exit(2);
    }
    close(pfd[0]);
    /* The child's exec is done when it closes the pipe's write end: wait
     * for it by polling the open. */
    int busy = 0;
    for (int i = 0; i < 200 && !busy; i++) {
        int fd = open(prog, O_WRONLY);
        if (fd < 0 && errno == ETXTBSY)
            busy = 1;
        else {
            if (fd >= 0) close(fd);
            usleep(10000);
        }
    }
    CHECK(busy, "open O_WRONLY of a running program: ETXTBSY");
    SAY("open O_RDWR of the running program: %s\n",
        open(prog, O_RDWR) < 0 ? strerrorname_np(errno) : "opened");
    SAY("truncate of the running program: %s\n",
        truncate(prog, 0) < 0 ? strerrorname_np(errno) : "truncated");
    SAY("open O_RDONLY|O_TRUNC of the running program: %s\n",
        open(prog, O_RDONLY | O_TRUNC) < 0 ? strerrorname_np(errno) : "opened");
    int ro = open(prog, O_RDONLY);
    SAY("open O_RDONLY of the running program: %s\n", ro >= 0 ? "opened" : strerrorname_np(errno));
    if (ro >= 0) close(ro);
    close(pfd[1]);
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "the running copy ends");
    unlink("script");
    unlink(prog);
}

static void lock_records(void) {
    int fd = open("locked", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "lock file");
    int other = 0;
    for (int i = 0; i < 10000; i++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2L * i, .l_len = 1};
        if (fcntl(fd, F_SETLK, &fl) != 0 && errno != ENOLCK) other++;
    }
    CHECK(other == 0, "10000 lock records: each taken or ENOLCK");
    struct flock all = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    CHECK(fcntl(fd, F_SETLK, &all) == 0, "unlock of the whole file after");
    struct flock one = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    CHECK(fcntl(fd, F_SETLK, &one) == 0, "a lock again after");
    close(fd);
    unlink("locked");
}

int main(int argc, char **argv) {
    /* A `#!` script's interpreter gets the script's path first. */
    if (argc > 1 && strcmp(argv[argc - 1], "child") == 0) return 0;
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        char c;
        while (read(0, &c, 1) > 0) {
        }
        return 0;
    }
    self_path = argv[0];
    t_begin("t_harden2");
    exec_busy();
    lock_records();
    return t_end();
}
