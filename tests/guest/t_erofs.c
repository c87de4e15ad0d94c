/* Guest test: a file system mounted read-only (mount -o ro, and
 * mount -o remount,ro of a tmpfs holding files) refuses every write-type
 * operation with EROFS, in Linux's order of checks: ENOENT, ENOTDIR,
 * EEXIST, EISDIR, EXDEV, EBUSY and EINVAL come first where Linux checks
 * them first, EROFS before permission checks (EACCES/EPERM) for another
 * user. Opens for reading, device nodes and FIFOs still work; remount
 * read-only is EBUSY while a file is open for writing; remount rw makes
 * it writable again; statvfs and /proc/mounts say "ro". */
#include "t_common.h"
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <utime.h>

#define ERR(call, e, what) CHECK((call) == -1 && errno == (e), "%s: %s", what, #e)

static int mounts_say_ro(const char *dir) {
    char want[256], line[512];
    snprintf(want, sizeof want, " %s/%s tmpfs ro", t_dir, dir);
    FILE *f = fopen("/proc/mounts", "r");
    if (!f) return -1;
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, want)) found = 1;
    fclose(f);
    return found;
}

/* The write-type calls on the read-only tmpfs at "m" (m/f a file, m/d a
 * directory, m/s a symlink to f, m/c /dev/null's numbers, m/p a FIFO). */
static void writes(void) {
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};

    /* open */
    int fd = open("m/f", O_RDONLY);
    char b[8] = {0};
    CHECK(fd >= 0 && read(fd, b, 8) == 5 && memcmp(b, "hello", 5) == 0, "open O_RDONLY and read");
    ERR(write(fd, "x", 1), EBADF, "write to the O_RDONLY fd");
    ERR(fchmod(fd, 0600), EROFS, "fchmod");
    ERR(fchown(fd, -1, -1), EROFS, "fchown(-1, -1)");
    ERR(futimens(fd, ts), EROFS, "futimens");
    ERR(ftruncate(fd, 0), EINVAL, "ftruncate of an O_RDONLY fd");
    ERR(fsetxattr(fd, "user.a", "1", 1, 0), EROFS, "fsetxattr");
    ERR(fremovexattr(fd, "user.a"), EROFS, "fremovexattr");
    close(fd);
    ERR(open("m/f", O_WRONLY), EROFS, "open O_WRONLY");
    ERR(open("m/f", O_RDWR), EROFS, "open O_RDWR");
    ERR(open("m/f", O_RDONLY | O_TRUNC), EROFS, "open O_RDONLY|O_TRUNC");
    ERR(open("m/f", O_WRONLY | O_APPEND), EROFS, "open O_APPEND");
    ERR(open("m/f", O_RDWR | O_CREAT, 0644), EROFS, "open O_CREAT of an existing file for writing");
    fd = open("m/f", O_RDONLY | O_CREAT, 0644);
    CHECK(fd >= 0, "open O_CREAT|O_RDONLY of an existing file works");
    if (fd >= 0) close(fd);
    ERR(open("m/f", O_RDONLY | O_CREAT | O_EXCL, 0644), EEXIST, "open O_CREAT|O_EXCL of an existing file");
    ERR(open("m/new", O_RDONLY | O_CREAT, 0644), EROFS, "open O_CREAT of a new file");
    ERR(open("m/new", O_WRONLY), ENOENT, "open O_WRONLY of a missing file");
    ERR(open("m/nodir/new", O_WRONLY | O_CREAT, 0644), ENOENT, "open O_CREAT in a missing directory");
    ERR(open("m/f/new", O_WRONLY | O_CREAT, 0644), ENOTDIR, "open O_CREAT under a file");
    ERR(open("m/d", O_RDWR), EISDIR, "open a directory O_RDWR");
    ERR(open("m/d", O_WRONLY | O_CREAT, 0644), EISDIR, "open a directory O_CREAT|O_WRONLY");
    ERR(open("m/s", O_WRONLY), EROFS, "open O_WRONLY through a symlink");
    fd = open("m/d", O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0, "open a directory O_RDONLY");
    if (fd >= 0) close(fd);
    fd = open("m/c", O_WRONLY);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1, "open a char device node O_WRONLY and write");
    if (fd >= 0) close(fd);
    ERR(open("m/p", O_WRONLY | O_NONBLOCK), ENXIO, "open a FIFO O_WRONLY|O_NONBLOCK with no reader");
    fd = open("m/p", O_RDWR | O_NONBLOCK);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1, "open a FIFO O_RDWR and write");
    if (fd >= 0) close(fd);

    /* access */
    CHECK(access("m/f", R_OK) == 0, "access R_OK");
    ERR(access("m/f", W_OK), EROFS, "access W_OK of a file");
    ERR(access("m/d", W_OK), EROFS, "access W_OK of a directory");
    CHECK(access("m/c", W_OK) == 0, "access W_OK of a device node");
    ERR(access("m/new", W_OK), ENOENT, "access W_OK of a missing file");

    /* namespace operations */
    ERR(mkdir("m/new", 0755), EROFS, "mkdir");
    ERR(mkdir("m/d", 0755), EEXIST, "mkdir of an existing name");
    ERR(mkdir("m/nodir/x", 0755), ENOENT, "mkdir in a missing directory");
    ERR(mkdir("m/f/x", 0755), ENOTDIR, "mkdir under a file");
    ERR(rmdir("m/d"), EROFS, "rmdir");
    ERR(rmdir("m/new"), EROFS, "rmdir of a missing name");
    ERR(rmdir("m/d/."), EINVAL, "rmdir of .");
    ERR(rmdir("m/nodir/x"), ENOENT, "rmdir in a missing directory");
    ERR(unlink("m/f"), EROFS, "unlink");
    ERR(unlink("m/new"), EROFS, "unlink of a missing name");
    ERR(unlink("m/nodir/x"), ENOENT, "unlink in a missing directory");
    ERR(unlink("m/f/x"), ENOTDIR, "unlink under a file");
    ERR(rename("m/f", "m/g"), EROFS, "rename");
    ERR(rename("m/new", "m/g"), EROFS, "rename of a missing name");
    ERR(rename("m/f", "m/nodir/g"), ENOENT, "rename into a missing directory");
    ERR(rename("m/f", "rw"), EXDEV, "rename to another mount");
    ERR(rename("rw", "m/g"), EXDEV, "rename from another mount");
    ERR(link("m/f", "m/g"), EROFS, "link");
    ERR(link("m/f", "m/d"), EEXIST, "link onto an existing name");
    ERR(link("m/new", "m/g"), ENOENT, "link of a missing file");
    ERR(link("m/f", "lnk"), EXDEV, "link from the read-only mount to another");
    ERR(link("rw", "m/g"), EROFS, "link from another mount into the read-only one");
    ERR(symlink("f", "m/g"), EROFS, "symlink");
    ERR(symlink("f", "m/f"), EEXIST, "symlink onto an existing name");
    ERR(symlink("f", "m/nodir/g"), ENOENT, "symlink in a missing directory");
    ERR(mknod("m/g", S_IFREG | 0644, 0), EROFS, "mknod S_IFREG");
    ERR(mknod("m/g", S_IFCHR | 0644, makedev(1, 3)), EROFS, "mknod S_IFCHR");
    ERR(mknod("m/f", S_IFIFO | 0644, 0), EEXIST, "mknod onto an existing name");
    ERR(mkfifo("m/g", 0644), EROFS, "mkfifo");

    /* attributes */
    ERR(chmod("m/f", 0600), EROFS, "chmod");
    ERR(chmod("m/d", 0700), EROFS, "chmod of a directory");
    ERR(chmod("m/c", 0600), EROFS, "chmod of a device node");
    ERR(chmod("m/new", 0600), ENOENT, "chmod of a missing file");
    ERR(chown("m/f", 1000, 1000), EROFS, "chown");
    ERR(chown("m/f", -1, -1), EROFS, "chown(-1, -1)");
    ERR(lchown("m/s", 0, 0), EROFS, "lchown of a symlink");
    ERR(chown("m/new", 0, 0), ENOENT, "chown of a missing file");
    ERR(utimes("m/f", NULL), EROFS, "utimes(NULL)");
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    ERR(utimes("m/f", tv), EROFS, "utimes to a given time");
    ERR(utime("m/f", NULL), EROFS, "utime(NULL)");
    ERR(utimensat(AT_FDCWD, "m/f", ts, 0), EROFS, "utimensat UTIME_NOW");
    ERR(utimensat(AT_FDCWD, "m/s", ts, AT_SYMLINK_NOFOLLOW), EROFS, "utimensat of a symlink");
    ERR(utimes("m/new", NULL), ENOENT, "utimes of a missing file");
    ERR(truncate("m/f", 0), EROFS, "truncate");
    ERR(truncate("m/d", 0), EISDIR, "truncate of a directory");
    ERR(truncate("m/p", 0), EINVAL, "truncate of a FIFO");
    ERR(truncate("m/new", 0), ENOENT, "truncate of a missing file");
    ERR(setxattr("m/f", "user.a", "1", 1, 0), EROFS, "setxattr");
    ERR(lsetxattr("m/f", "user.a", "1", 1, 0), EROFS, "lsetxattr");
    ERR(removexattr("m/f", "user.a"), EROFS, "removexattr");
    ERR(setxattr("m/new", "user.a", "1", 1, 0), ENOENT, "setxattr of a missing file");
    char v[8];
    ERR(getxattr("m/f", "user.a", v, sizeof v), ENODATA, "getxattr still answers");

    /* another user: EROFS comes before the permission checks */
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) _exit(90);
        if (open("m/f", O_WRONLY) != -1 || errno != EROFS) _exit(1);
        if (access("m/f", W_OK) != -1 || errno != EROFS) _exit(2);
        if (chmod("m/f", 0666) != -1 || errno != EROFS) _exit(3);
        if (chown("m/f", 1000, 1000) != -1 || errno != EROFS) _exit(4);
        if (unlink("m/f") != -1 || errno != EROFS) _exit(5);
        if (mkdir("m/d/x", 0755) != -1 || errno != EROFS) _exit(6);
        if (utimes("m/f", tv) != -1 || errno != EROFS) _exit(7);
        if (utimes("m/f", NULL) != -1 || errno != EROFS) _exit(8);
        if (open("m/x", O_CREAT | O_WRONLY, 0644) != -1 || errno != EROFS) _exit(9);
        if (open("m/d0/x", O_RDONLY) != -1 || errno != EACCES) _exit(10);
        if (mkdir("m/d0/x", 0755) != -1 || errno != EACCES) _exit(11);
        if (unlink("m/d0/x") != -1 || errno != EACCES) _exit(12);
        if (setxattr("m/f", "user.a", "1", 1, 0) != -1 || errno != EROFS) _exit(13);
        if (truncate("m/f", 0) != -1 || errno != EROFS) _exit(14);
        _exit(0);
    }
    const char *how = t_wait(pid);
    CHECK(strcmp(how, "exited 0") == 0, "another user: EROFS before EACCES/EPERM, EACCES on lookup first (%s)", how);

    struct stat st;
    CHECK(stat("m/f", &st) == 0 && st.st_size == 5 && (st.st_mode & 07777) == 0644 && st.st_uid == 0,
          "the file is unchanged");
}

static void populate(const char *m) {
    char p[64];
    snprintf(p, sizeof p, "%s/f", m);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5 && close(fd) == 0, "%s/f holds hello", m);
    snprintf(p, sizeof p, "%s/d", m);
    CHECK(mkdir(p, 0755) == 0, "%s/d", m);
    snprintf(p, sizeof p, "%s/d0", m);
    CHECK(mkdir(p, 0700) == 0, "%s/d0 (0700)", m);
    snprintf(p, sizeof p, "%s/s", m);
    CHECK(symlink("f", p) == 0, "%s/s -> f", m);
    snprintf(p, sizeof p, "%s/c", m);
    CHECK(mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0, "%s/c is 1:3", m);
    snprintf(p, sizeof p, "%s/p", m);
    CHECK(mkfifo(p, 0644) == 0, "%s/p a FIFO", m);
}

int main(void) {
    t_begin("t_erofs");
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0 && mount("proc", "/proc", "proc", 0, NULL) != 0)
        SAY("cannot mount /proc\n");
    struct statvfs sv;
    CHECK(chmod(".", 0755) == 0, "the scratch dir is 0755");
    int fd = open("rw", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && close(fd) == 0, "a file on the read-write mount");

    /* mount -o ro: an empty tmpfs */
    CHECK(mkdir("m", 0755) == 0 && mount("tmpfs", "m", "tmpfs", MS_RDONLY, "size=4m") == 0, "mount -t tmpfs -o ro");
    CHECK(statvfs("m", &sv) == 0 && (sv.f_flag & ST_RDONLY), "statvfs: ST_RDONLY");
    CHECK(mounts_say_ro("m") == 1, "/proc/mounts: ro");
    ERR(mkdir("m/d", 0755), EROFS, "mkdir on the empty read-only tmpfs");
    ERR(open("m/f", O_CREAT | O_WRONLY, 0644), EROFS, "create on the empty read-only tmpfs");
    ERR(chmod("m", 0700), EROFS, "chmod of its root");
    CHECK(mount(NULL, "m", NULL, MS_REMOUNT, NULL) == 0, "mount -o remount,rw");
    CHECK(statvfs("m", &sv) == 0 && !(sv.f_flag & ST_RDONLY), "statvfs: not ST_RDONLY");
    CHECK(mounts_say_ro("m") == 0, "/proc/mounts: rw");

    /* fill it, then remount read-only */
    populate("m");
    fd = open("m/f", O_WRONLY);
    CHECK(fd >= 0, "m/f open for writing");
    ERR(mount(NULL, "m", NULL, MS_REMOUNT | MS_RDONLY, NULL), EBUSY, "remount,ro while a file is open for writing");
    close(fd);
    ERR(mount(NULL, "m/d", NULL, MS_REMOUNT | MS_RDONLY, NULL), EINVAL, "remount of a directory that is no mount");
    CHECK(mount(NULL, "m", NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0, "mount -o remount,ro");
    CHECK(statvfs("m", &sv) == 0 && (sv.f_flag & ST_RDONLY), "statvfs: ST_RDONLY after remount");
    CHECK(mounts_say_ro("m") == 1, "/proc/mounts: ro after remount");
    writes();

    /* back to read-write */
    CHECK(mount(NULL, "m", NULL, MS_REMOUNT, NULL) == 0, "mount -o remount,rw again");
    fd = open("m/f", O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "!", 1) == 1 && close(fd) == 0, "writable again");
    CHECK(mkdir("m/new", 0755) == 0 && rmdir("m/new") == 0, "mkdir and rmdir again");
    CHECK(chmod("m/f", 0600) == 0, "chmod again");
    CHECK(umount("m") == 0, "umount");
    return t_end();
}
