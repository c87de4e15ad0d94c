/* renameat2's flags (RENAME_NOREPLACE, RENAME_EXCHANGE of files and
 * directories across directories, RENAME_WHITEOUT), sticky directories
 * (only the entry's owner, the directory's owner or root may remove or
 * rename) and setgid directories (new files take the directory's group,
 * new directories inherit S_ISGID). On a tmpfs mounted here, so native and
 * guest see the same kind of file system; the sticky and setgid checks
 * also run in the scratch directory (ext2 in the guest, the host's file
 * system natively: both behave alike there). Runs as root (natively too). */
#include "t_common.h"
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>

static int rn2(const char *a, const char *b, unsigned flags) {
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static int put(const char *p, const char *s) {
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
    close(fd);
    return r;
}

static int is(const char *p, const char *s) {
    char buf[64] = {0};
    int fd = open(p, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n == (ssize_t)strlen(s) && memcmp(buf, s, n) == 0;
}

static int nlink(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (int)st.st_nlink : -1;
}

static void flags(const char *where) {
    SAY("-- renameat2 flags on %s\n", where);
    char a[64], b[64], d1[64], d2[64], x[96], y[96];
    snprintf(a, sizeof a, "%s/a", where);
    snprintf(b, sizeof b, "%s/b", where);
    snprintf(d1, sizeof d1, "%s/d1", where);
    snprintf(d2, sizeof d2, "%s/d2", where);
    CHECK(put(a, "A") == 0 && put(b, "B") == 0, "two files");
    errno = 0;
    CHECK(rn2(a, b, RENAME_NOREPLACE) == -1 && errno == EEXIST, "NOREPLACE over an existing name: EEXIST");
    CHECK(is(a, "A") && is(b, "B"), "both untouched");
    errno = 0;
    CHECK(rn2(a, b, RENAME_NOREPLACE | RENAME_EXCHANGE) == -1 && errno == EINVAL, "NOREPLACE|EXCHANGE: EINVAL");
    errno = 0;
    CHECK(rn2(a, b, RENAME_WHITEOUT | RENAME_EXCHANGE) == -1 && errno == EINVAL, "WHITEOUT|EXCHANGE: EINVAL");
    errno = 0;
    CHECK(rn2(a, b, 8) == -1 && errno == EINVAL, "unknown flag: EINVAL");
    CHECK(rn2(a, b, RENAME_EXCHANGE) == 0, "EXCHANGE two files");
    CHECK(is(a, "B") && is(b, "A"), "contents swapped");
    CHECK(rn2(a, a, RENAME_EXCHANGE) == 0, "EXCHANGE with itself: 0");
    char c[64];
    snprintf(c, sizeof c, "%s/c", where);
    errno = 0;
    CHECK(rn2(a, c, RENAME_EXCHANGE) == -1 && errno == ENOENT, "EXCHANGE with a missing target: ENOENT");
    CHECK(rn2(a, c, RENAME_NOREPLACE) == 0 && is(c, "B"), "NOREPLACE to a new name");

    CHECK(mkdir(d1, 0755) == 0 && mkdir(d2, 0755) == 0, "two directories");
    snprintf(x, sizeof x, "%s/sub", d1);
    CHECK(mkdir(x, 0755) == 0, "a subdirectory in d1");
    snprintf(y, sizeof y, "%s/f", d2);
    CHECK(put(y, "F") == 0, "a file in d2");
    CHECK(nlink(d1) == 3 && nlink(d2) == 2, "d1 has 3 links, d2 has 2");
    /* A directory and a file, across directories. */
    CHECK(rn2(x, y, RENAME_EXCHANGE) == 0, "EXCHANGE d1/sub (dir) with d2/f (file)");
    struct stat st;
    CHECK(stat(x, &st) == 0 && S_ISREG(st.st_mode) && is(x, "F"), "d1/sub is now the file");
    CHECK(stat(y, &st) == 0 && S_ISDIR(st.st_mode), "d2/f is now the directory");
    CHECK(nlink(d1) == 2 && nlink(d2) == 3, "the link counts moved: d1 2, d2 3");
    char dd[128];
    snprintf(dd, sizeof dd, "%s/..", y);
    struct stat p2;
    CHECK(stat(dd, &st) == 0 && stat(d2, &p2) == 0 && st.st_ino == p2.st_ino, "the moved directory's .. is d2");
    /* Two directories. */
    char e1[96], e2[96];
    snprintf(e1, sizeof e1, "%s/e1", d1);
    snprintf(e2, sizeof e2, "%s/e2", d2);
    CHECK(mkdir(e1, 0700) == 0 && mkdir(e2, 0750) == 0, "a directory in each");
    CHECK(rn2(e1, e2, RENAME_EXCHANGE) == 0, "EXCHANGE two directories");
    CHECK(stat(e1, &st) == 0 && (st.st_mode & 0777) == 0750, "d1/e1 is the 0750 one");
    CHECK(stat(e2, &st) == 0 && (st.st_mode & 0777) == 0700, "d2/e2 is the 0700 one");
    /* A directory with one inside it. */
    char in[128];
    snprintf(in, sizeof in, "%s/in", e1);
    CHECK(mkdir(in, 0755) == 0, "a directory inside d1/e1");
    errno = 0;
    CHECK(rn2(e1, in, RENAME_EXCHANGE) == -1 && errno == EINVAL, "EXCHANGE with its own subdirectory: EINVAL");
    errno = 0;
    CHECK(rn2(in, e1, RENAME_EXCHANGE) == -1 && errno == EINVAL, "EXCHANGE with its own parent: EINVAL");
    /* Whiteout: the source becomes a 0:0 character device. */
    char w[64];
    snprintf(w, sizeof w, "%s/w", where);
    CHECK(rn2(c, w, RENAME_WHITEOUT) == 0, "WHITEOUT rename");
    CHECK(is(w, "B"), "the file moved");
    CHECK(lstat(c, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0), "a 0:0 whiteout is left");
    CHECK(unlink(c) == 0, "the whiteout can be removed");
    /* Since Linux 5.8 a whiteout needs no CAP_MKNOD. */
    CHECK(chmod(where, 0777) == 0, "open the directory to user 1000");
    pid_t pid = fork();
    if (pid == 0) {
        if (setresuid(1000, 1000, 1000) != 0) _exit(2);
        _exit(rn2(w, c, RENAME_WHITEOUT) == 0 ? 0 : 1);
    }
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "WHITEOUT by user 1000");
    CHECK(lstat(w, &st) == 0 && S_ISCHR(st.st_mode) && st.st_uid == 1000 && is(c, "B"),
          "its whiteout belongs to user 1000");
    CHECK(chmod(where, 0755) == 0, "close the directory again");
}

/* As user 1000 in a sticky 01777 directory, try to remove and rename an
 * entry of user 2000, then one's own. */
static void sticky(const char *where) {
    SAY("-- sticky directory on %s\n", where);
    char d[64], theirs[96], mine[96], to[96], sub[96];
    snprintf(d, sizeof d, "%s/st", where);
    snprintf(theirs, sizeof theirs, "%s/theirs", d);
    snprintf(mine, sizeof mine, "%s/mine", d);
    snprintf(to, sizeof to, "%s/to", d);
    snprintf(sub, sizeof sub, "%s/subdir", d);
    CHECK(mkdir(d, 0777) == 0 && chmod(d, 01777) == 0, "a 01777 directory");
    CHECK(put(theirs, "x") == 0 && chown(theirs, 2000, 2000) == 0, "a file of user 2000");
    CHECK(mkdir(sub, 0777) == 0 && chown(sub, 2000, 2000) == 0, "a directory of user 2000");
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) _exit(9);
        errno = 0;
        if (!(unlink(theirs) == -1 && errno == EPERM)) _exit(1);
        errno = 0;
        if (!(rename(theirs, to) == -1 && errno == EPERM)) _exit(2);
        errno = 0;
        if (!(rmdir(sub) == -1 && errno == EPERM)) _exit(3);
        if (put(mine, "m") != 0) _exit(4);
        errno = 0;
        if (!(rename(mine, theirs) == -1 && errno == EPERM)) _exit(5); /* replacing theirs */
        if (rename(mine, to) != 0) _exit(6);
        if (unlink(to) != 0) _exit(7);
        _exit(0);
    }
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "user 1000: EPERM on 2000's entries, own entries fine");
    CHECK(access(theirs, F_OK) == 0 && access(sub, F_OK) == 0, "user 2000's entries are still there");
    /* The directory's owner may remove anything in it. */
    CHECK(chown(d, 1000, 1000) == 0, "give the directory to user 1000");
    pid = fork();
    if (pid == 0) {
        if (setresuid(1000, 1000, 1000) != 0) _exit(9);
        _exit(unlink(theirs) == 0 && rmdir(sub) == 0 ? 0 : 1);
    }
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "the directory's owner removes user 2000's entries");
}

static void setgid_dir(const char *where) {
    SAY("-- setgid directory on %s\n", where);
    char d[64], f[96], sd[96], f2[128];
    snprintf(d, sizeof d, "%s/sg", where);
    snprintf(f, sizeof f, "%s/file", d);
    snprintf(sd, sizeof sd, "%s/dir", d);
    snprintf(f2, sizeof f2, "%s/file2", sd);
    CHECK(mkdir(d, 0777) == 0 && chown(d, 0, 3000) == 0 && chmod(d, 02777) == 0, "a 02777 directory of group 3000");
    struct stat st;
    CHECK(put(f, "x") == 0 && stat(f, &st) == 0 && st.st_gid == 3000, "a new file takes group 3000");
    CHECK((st.st_mode & S_ISGID) == 0, "and is not setgid");
    CHECK(mkdir(sd, 0755) == 0 && stat(sd, &st) == 0 && st.st_gid == 3000 && (st.st_mode & S_ISGID),
          "a new directory takes group 3000 and S_ISGID");
    CHECK(put(f2, "y") == 0 && stat(f2, &st) == 0 && st.st_gid == 3000, "and passes the group on");
    char l[96], n[96];
    snprintf(l, sizeof l, "%s/link", d);
    snprintf(n, sizeof n, "%s/fifo", d);
    CHECK(symlink("file", l) == 0 && lstat(l, &st) == 0 && st.st_gid == 3000, "a symlink takes group 3000");
    CHECK(mknod(n, S_IFIFO | 0644, 0) == 0 && stat(n, &st) == 0 && st.st_gid == 3000, "a fifo takes group 3000");
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) _exit(9);
        char g[96];
        snprintf(g, sizeof g, "%s/sgid-try", d);
        int fd = open(g, O_CREAT | O_WRONLY, 02755);
        if (fd < 0) _exit(1);
        close(fd);
        if (stat(g, &st) != 0 || st.st_gid != 3000 || st.st_uid != 1000) _exit(2);
        /* Not a member of group 3000: S_ISGID is dropped. */
        _exit(st.st_mode & S_ISGID ? 3 : 0);
    }
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "a non-member's new setgid file: group 3000, S_ISGID dropped");
}

int main(void) {
    t_begin("t_rename2");
    CHECK(chmod(".", 0755) == 0, "the scratch dir is 0755 (other users work in it)");
    CHECK(mkdir("mnt", 0755) == 0 && mount("tmpfs", "mnt", "tmpfs", 0, "size=4m") == 0, "mount a tmpfs");
    CHECK(chmod("mnt", 0755) == 0, "mnt is 0755");
    flags("mnt");
    sticky("mnt");
    setgid_dir("mnt");
    sticky(".");
    setgid_dir(".");
    CHECK(umount("mnt") == 0, "umount the tmpfs");
    return t_end();
}
