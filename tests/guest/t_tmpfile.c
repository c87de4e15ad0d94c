/* Guest test: O_TMPFILE and SEEK_DATA/SEEK_HOLE.
 * O_TMPFILE in the scratch directory (ext2 in the guest) and on a tmpfs:
 * an unnamed regular file (nlink 0, not listed in its directory, gone
 * when closed) that linkat(fd, "", AT_EMPTY_PATH) or linkat of
 * /proc/self/fd/N with AT_SYMLINK_FOLLOW names; with O_EXCL it can never
 * be linked (ENOENT), nor can an unlinked open file. Linux's errors:
 * EINVAL without write access, without O_DIRECTORY or with O_CREAT;
 * ENOTDIR, ENOENT, EROFS on a read-only mount, EACCES without write
 * permission on the directory, EOPNOTSUPP on a file system without it
 * (/proc); linkat with unknown flags EINVAL.
 * SEEK_DATA/SEEK_HOLE: page-granular holes of sparse files on tmpfs;
 * on the scratch directory only a file without holes (the host's ext4
 * and Linux's ext2 find holes differently), both with ENXIO at and past
 * the end and for a negative offset. */
#include "t_common.h"
#include <dirent.h>
#include <sys/mount.h>

#define ERR(call, e, what) CHECK((call) == -1 && errno == (e), "%s: %s", what, #e)

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static int has(int fd, const char *want) {
    char b[32] = {0};
    size_t n = strlen(want);
    return pread(fd, b, sizeof b, 0) == (ssize_t)n && memcmp(b, want, n) == 0;
}

static void tmpfile_in(const char *d) {
    char p[96], q[96], proc[64];
    struct stat st;
    SAY("-- O_TMPFILE in %s\n", d);
    int before = entries(d);
    int fd = open(d, O_TMPFILE | O_RDWR, 0666);
    CHECK(fd >= 0, "open O_TMPFILE|O_RDWR");
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0 && st.st_size == 0, "a regular file, nlink 0, empty");
    CHECK((st.st_mode & 07777) == 0644 && st.st_uid == 0, "mode 0666 & ~umask, owned by its creator");
    CHECK(write(fd, "hello", 5) == 5 && has(fd, "hello"), "written and read back");
    CHECK(entries(d) == before, "not listed in the directory");
    snprintf(p, sizeof p, "%s/named", d);
    CHECK(linkat(fd, "", AT_FDCWD, p, AT_EMPTY_PATH) == 0, "linkat(fd, \"\", AT_EMPTY_PATH) names it");
    CHECK(fstat(fd, &st) == 0 && st.st_nlink == 1, "nlink 1 after the link");
    CHECK(stat(p, &st) == 0 && st.st_size == 5 && st.st_nlink == 1, "the name shows the data");
    CHECK(entries(d) == before + 1, "listed once named");
    ERR(linkat(fd, "", AT_FDCWD, p, AT_EMPTY_PATH), EEXIST, "linking onto the name again");
    snprintf(q, sizeof q, "%s/named-too", d);
    CHECK(linkat(fd, "", AT_FDCWD, q, AT_EMPTY_PATH) == 0 && fstat(fd, &st) == 0 && st.st_nlink == 2,
          "a second name: nlink 2");
    CHECK(unlink(q) == 0, "unlink the second name");
    close(fd);
    int g = open(p, O_RDONLY);
    CHECK(g >= 0 && has(g, "hello"), "the named file survives the close");
    if (g >= 0) close(g);

    /* named through /proc/self/fd/N */
    fd = open(d, O_TMPFILE | O_WRONLY, 0600);
    CHECK(fd >= 0 && write(fd, "world", 5) == 5, "open O_TMPFILE|O_WRONLY, write");
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(q, sizeof q, "%s/via-proc", d);
    CHECK(linkat(AT_FDCWD, proc, AT_FDCWD, q, AT_SYMLINK_FOLLOW) == 0, "linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW");
    g = open(q, O_RDONLY);
    CHECK(g >= 0 && has(g, "world") && fstat(g, &st) == 0 && (st.st_mode & 0777) == 0600, "its data and mode");
    if (g >= 0) close(g);
    close(fd);
    CHECK(unlink(q) == 0, "remove it");

    /* O_EXCL: never linkable */
    fd = open(d, O_TMPFILE | O_RDWR | O_EXCL, 0600);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1, "open O_TMPFILE|O_EXCL, write");
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(q, sizeof q, "%s/excl", d);
    ERR(linkat(fd, "", AT_FDCWD, q, AT_EMPTY_PATH), ENOENT, "O_EXCL: linkat AT_EMPTY_PATH");
    ERR(linkat(AT_FDCWD, proc, AT_FDCWD, q, AT_SYMLINK_FOLLOW), ENOENT, "O_EXCL: linkat of /proc/self/fd/N");
    close(fd);

    /* an unlinked open file cannot be linked back either */
    snprintf(q, sizeof q, "%s/gone", d);
    fd = open(q, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && unlink(q) == 0, "an open file unlinked");
    ERR(linkat(fd, "", AT_FDCWD, q, AT_EMPTY_PATH), ENOENT, "linkat of an unlinked file");
    close(fd);

    /* many unnamed files, all gone when closed */
    int fds[8];
    for (int i = 0; i < 8; i++) fds[i] = open(d, O_TMPFILE | O_RDWR, 0600);
    int opened = 0;
    for (int i = 0; i < 8; i++) opened += fds[i] >= 0 && write(fds[i], "abc", 3) == 3;
    CHECK(opened == 8 && entries(d) == before + 1, "8 unnamed files: none listed");
    for (int i = 0; i < 8; i++) close(fds[i]);
    CHECK(entries(d) == before + 1, "none left after the close");

    /* errors */
    ERR(open(d, O_TMPFILE | O_RDONLY, 0600), EINVAL, "O_TMPFILE|O_RDONLY");
    ERR(open(d, O_TMPFILE | O_RDWR | O_CREAT, 0600), EINVAL, "O_TMPFILE|O_CREAT");
    ERR(open(d, (O_TMPFILE & ~O_DIRECTORY) | O_RDWR, 0600), EINVAL, "__O_TMPFILE without O_DIRECTORY");
    ERR(open(p, O_TMPFILE | O_RDWR, 0600), ENOTDIR, "O_TMPFILE on a file");
    snprintf(q, sizeof q, "%s/missing", d);
    ERR(open(q, O_TMPFILE | O_RDWR, 0600), ENOENT, "O_TMPFILE on a missing directory");
    ERR(linkat(AT_FDCWD, p, AT_FDCWD, q, 0x8000), EINVAL, "linkat with an unknown flag");
    ERR(linkat(AT_FDCWD, "", AT_FDCWD, q, 0), ENOENT, "linkat of \"\" without AT_EMPTY_PATH");
    snprintf(q, sizeof q, "%s/sub", d);
    CHECK(mkdir(q, 0755) == 0, "a 0755 subdirectory");
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) _exit(90);
        if (open(q, O_TMPFILE | O_RDWR, 0600) != -1 || errno != EACCES) _exit(1);
        _exit(0);
    }
    CHECK(strcmp(t_wait(pid), "exited 0") == 0, "another user without write permission: EACCES");
    CHECK(rmdir(q) == 0 && unlink(p) == 0, "clean up");
}

static off_t sk(int fd, off_t off, int whence) {
    return lseek(fd, off, whence);
}

static void seek_tmpfs(void) {
    SAY("-- SEEK_DATA/SEEK_HOLE on tmpfs\n");
    int fd = open("m/sparse", O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "a 1 MiB file of holes");
    ERR(sk(fd, 0, SEEK_DATA), ENXIO, "SEEK_DATA in a file of holes");
    CHECK(sk(fd, 0, SEEK_HOLE) == 0 && sk(fd, 12345, SEEK_HOLE) == 12345, "SEEK_HOLE: the offset itself");
    static char page[4096];
    memset(page, 'a', sizeof page);
    CHECK(pwrite(fd, page, 4096, 65536) == 4096 && pwrite(fd, "b", 1, 204800 + 7) == 1, "data at 64 KiB and 200 KiB");
    CHECK(sk(fd, 0, SEEK_DATA) == 65536, "SEEK_DATA from 0: 65536");
    CHECK(sk(fd, 0, SEEK_CUR) == 65536, "the offset moved there");
    CHECK(sk(fd, 65537, SEEK_DATA) == 65537, "SEEK_DATA inside data: the offset");
    CHECK(sk(fd, 65536, SEEK_HOLE) == 69632, "SEEK_HOLE after the first page: 69632");
    CHECK(sk(fd, 69632, SEEK_DATA) == 204800, "SEEK_DATA to the next page: 204800");
    CHECK(sk(fd, 70000, SEEK_DATA) == 204800, "SEEK_DATA from inside a hole: 204800");
    CHECK(sk(fd, 204800, SEEK_HOLE) == 208896, "SEEK_HOLE after it: 208896");
    ERR(sk(fd, 208896, SEEK_DATA), ENXIO, "SEEK_DATA after the last data");
    CHECK(sk(fd, 208896, SEEK_HOLE) == 208896, "SEEK_HOLE in the trailing hole");
    ERR(sk(fd, 1 << 20, SEEK_HOLE), ENXIO, "SEEK_HOLE at the end");
    ERR(sk(fd, 1 << 20, SEEK_DATA), ENXIO, "SEEK_DATA at the end");
    ERR(sk(fd, (1 << 20) + 5, SEEK_DATA), ENXIO, "SEEK_DATA past the end");
    ERR(sk(fd, -1, SEEK_DATA), ENXIO, "SEEK_DATA at -1");
    ERR(sk(fd, -1, SEEK_HOLE), ENXIO, "SEEK_HOLE at -1");
    ERR(sk(fd, 0, 5), EINVAL, "whence 5");
    CHECK(ftruncate(fd, 204800 + 100) == 0, "shrink into the last data page");
    CHECK(sk(fd, 204800, SEEK_HOLE) == 204900, "SEEK_HOLE in the last page: the end");
    CHECK(ftruncate(fd, 65536) == 0, "shrink to 64 KiB");
    ERR(sk(fd, 0, SEEK_DATA), ENXIO, "SEEK_DATA: no data left");
    close(fd);

    fd = open("m/full", O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && write(fd, page, 4096) == 4096 && write(fd, page, 904) == 904, "a 5000-byte file");
    CHECK(sk(fd, 0, SEEK_DATA) == 0 && sk(fd, 0, SEEK_HOLE) == 5000, "SEEK_DATA 0, SEEK_HOLE the end");
    close(fd);

    fd = open("m", O_TMPFILE | O_RDWR, 0600);
    CHECK(fd >= 0 && pwrite(fd, "z", 1, 8192) == 1, "an O_TMPFILE with a hole");
    CHECK(sk(fd, 0, SEEK_DATA) == 8192 && sk(fd, 0, SEEK_HOLE) == 0, "its data and hole");
    close(fd);
}

static void seek_scratch(void) {
    SAY("-- SEEK_DATA/SEEK_HOLE in the scratch directory\n");
    static char buf[5000];
    int fd = open("plain", O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "an empty file");
    ERR(sk(fd, 0, SEEK_DATA), ENXIO, "empty: SEEK_DATA");
    ERR(sk(fd, 0, SEEK_HOLE), ENXIO, "empty: SEEK_HOLE");
    memset(buf, 'q', sizeof buf);
    CHECK(write(fd, buf, sizeof buf) == sizeof buf, "5000 bytes written");
    CHECK(sk(fd, 0, SEEK_DATA) == 0 && sk(fd, 100, SEEK_DATA) == 100, "SEEK_DATA: the offset");
    CHECK(sk(fd, 0, SEEK_HOLE) == 5000 && sk(fd, 4999, SEEK_HOLE) == 5000, "SEEK_HOLE: the end");
    ERR(sk(fd, 5000, SEEK_DATA), ENXIO, "SEEK_DATA at the end");
    ERR(sk(fd, 5000, SEEK_HOLE), ENXIO, "SEEK_HOLE at the end");
    ERR(sk(fd, -1, SEEK_DATA), ENXIO, "SEEK_DATA at -1");
    close(fd);
    CHECK(unlink("plain") == 0, "removed");
}

int main(void) {
    t_begin("t_tmpfile");
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0 && mount("proc", "/proc", "proc", 0, NULL) != 0)
        SAY("cannot mount /proc\n");
    CHECK(chmod(".", 0755) == 0, "the scratch dir is 0755");
    CHECK(mkdir("m", 0755) == 0 && mount("tmpfs", "m", "tmpfs", 0, "size=16m") == 0, "mount a tmpfs");
    CHECK(chmod("m", 0755) == 0, "its root is 0755");
    tmpfile_in(".");
    tmpfile_in("m");
    ERR(open("/proc", O_TMPFILE | O_RDWR, 0600), EOPNOTSUPP, "O_TMPFILE on /proc");
    CHECK(mount(NULL, "m", NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0, "remount the tmpfs read-only");
    ERR(open("m", O_TMPFILE | O_RDWR, 0600), EROFS, "O_TMPFILE on a read-only mount");
    CHECK(mount(NULL, "m", NULL, MS_REMOUNT, NULL) == 0, "and read-write again");
    seek_tmpfs();
    seek_scratch();
    CHECK(umount("m") == 0, "umount the tmpfs");
    return t_end();
}
