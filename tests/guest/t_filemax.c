/* fs.file-max (issue 10): the kernel's open files are capped as a whole.
 * /proc/sys/fs/file-nr reads "<open> 0 <file-max>"; root lowers file-max
 * to what is open now plus 250; four processes of uid 1000 then open
 * /dev/null, pipes, eventfds and sockets until they fail: together they
 * get no more than 250, the failures are ENFILE (not EMFILE: each is far
 * under its RLIMIT_NOFILE), file-nr shows the cap reached, root can still
 * open files meanwhile (Linux's CAP_SYS_ADMIN exemption), and once they
 * exit the count falls back. A non-root write to file-max is EACCES.
 * Guest only: it changes a system-wide setting (tests/guest_suite.rs). */
#include "t_common.h"
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>

static long read_long(const char *path) {
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static long file_nr(long *max) {
    FILE *f = fopen("/proc/sys/fs/file-nr", "r");
    long open = -1, free_ = -1, m = -1;
    if (f) {
        if (fscanf(f, "%ld %ld %ld", &open, &free_, &m) != 3) open = -1;
        fclose(f);
    }
    if (free_ != 0) open = -1;
    if (max) *max = m;
    return open;
}

static int write_max(long v) {
    int fd = open("/proc/sys/fs/file-max", O_WRONLY);
    if (fd < 0) return -errno;
    char b[32];
    int n = snprintf(b, sizeof b, "%ld\n", v);
    int r = write(fd, b, n) == n ? 0 : -errno;
    close(fd);
    return r;
}

/* A uid 1000 process opening until it fails (kind rotates), then
 * reporting (count, errno) on `out` and holding its files until `hold`
 * closes. */
static void hog(int out, int hold) {
    if (setgid(1000) != 0 || setuid(1000) != 0) _exit(3);
    int n = 0, err = 0;
    for (int i = 0; i < 400 && !err; i++) {
        int fds[2];
        switch (i % 4) {
        case 0:
            if ((fds[0] = open("/dev/null", O_RDONLY)) < 0) err = errno; else n++;
            break;
        case 1:
            if (pipe(fds) != 0) err = errno; else n += 2;
            break;
        case 2:
            if ((fds[0] = eventfd(0, 0)) < 0) err = errno; else n++;
            break;
        case 3:
            if ((fds[0] = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) err = errno; else n++;
            break;
        }
    }
    int rep[2] = {n, err};
    if (write(out, rep, sizeof rep) != sizeof rep) _exit(4);
    char c;
    while (read(hold, &c, 1) > 0) {
    }
    _exit(0);
}

int main(void) {
    t_begin("t_filemax");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    long max0;
    long open0 = file_nr(&max0);
    CHECK(open0 > 0 && max0 >= 8192, "file-nr reads: some open, 0 free, file-max >= 8192");
    CHECK(max0 == read_long("/proc/sys/fs/file-max"), "file-nr's third field is file-max");
    int fd = open("/dev/null", O_RDONLY);
    long open1 = file_nr(NULL);
    CHECK(open1 == open0 + 1, "one more open file counts one (%ld, then %ld)", open0, open1);
    close(fd);
    CHECK(file_nr(NULL) == open0, "its close gives it back");

    pid_t c;
    long cap = open0 + 250;
    int wr = write_max(cap);
    CHECK(wr == 0, "root sets file-max (%s)", wr ? strerrorname_np(-wr) : "ok");
    CHECK(read_long("/proc/sys/fs/file-max") == cap, "file-max reads the new value");

    int rep[2], hold[2];
    CHECK(pipe(rep) == 0 && pipe(hold) == 0, "pipes");
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(rep[0]);
            close(hold[1]);
            hog(rep[1], hold[0]);
        }
    }
    close(rep[1]);
    close(hold[0]);
    int total = 0, enfile = 0, other = 0;
    for (int i = 0; i < 4; i++) {
        int r[2];
        if (read(rep[0], r, sizeof r) != sizeof r) {
            other++;
            continue;
        }
        total += r[0];
        if (r[1] == ENFILE)
            enfile++;
        else if (r[1] != 0)
            other++;
    }
    CHECK(enfile >= 1 && other == 0, "the users' processes stop at ENFILE (%d ENFILE, %d other)",
          enfile, other);
    CHECK(total <= 250 && total >= 200, "together they opened at most the room left (%d of 250)",
          total);
    long now_max;
    long now = file_nr(&now_max);
    CHECK(now >= cap - 1 && now_max == cap, "file-nr shows the cap reached");
    int mine = open("/dev/null", O_RDONLY);
    int p2[2];
    CHECK(mine >= 0 && pipe(p2) == 0, "root still opens files past the cap");
    if (mine >= 0) close(mine);
    close(p2[0]);
    close(p2[1]);

    close(hold[1]);
    for (int i = 0; i < 4; i++) t_wait(kids[i]);
    close(rep[0]);
    CHECK(file_nr(NULL) <= open0 + 2, "their exit gives the files back");
    /* A non-root write to file-max: EACCES by the file's mode. */
    c = fork();
    if (c == 0) {
        if (setuid(1000) != 0) _exit(3);
        int r = write_max(1 << 20);
        _exit(r == -EACCES ? 0 : r < 0 ? -r : 100);
    }
    CHECK(strcmp(t_wait(c), "exited 0") == 0, "uid 1000 cannot write file-max");
    CHECK(write_max(max0) == 0 && read_long("/proc/sys/fs/file-max") == max0, "file-max restored");
    fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0, "opens work again");
    return t_end();
}
