/* Guest test (tests/ext2_xattr.rs, guest only: it runs as init on the
 * ext2 root of tests.img and leaves files behind for the host to read):
 * extended attributes on ext2 with Linux's semantics — set/get/list/remove,
 * ENODATA, ERANGE for a short buffer, size 0 asks for the length,
 * XATTR_CREATE/XATTR_REPLACE (EEXIST/ENODATA), ENOSPC when the one xattr
 * block is full, ERANGE for a value larger than a block, user.* only on
 * regular files and directories (EPERM on a symlink or FIFO), trusted.*
 * hidden from and refused to a non-root user, i_blocks counting the xattr
 * block and dropping it when the last attribute goes.
 * Left behind for debugfs: /xattr-kept (user.color=blue, trusted.t=tv,
 * security.s=sv, user.empty="") and /xattr-dir (user.d=dir-value). */
#include "t_common.h"
#include <sys/xattr.h>

#define ERR(call, e, what) CHECK((call) == -1 && errno == (e), "%s: %s", what, #e)

static long blocks_of(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0 ? (long)st.st_blocks : -1;
}

/* Does the NUL-separated list hold `name`? */
static int listed(const char *list, ssize_t n, const char *name) {
    for (ssize_t i = 0; i < n; i += strlen(list + i) + 1)
        if (strcmp(list + i, name) == 0) return 1;
    return 0;
}

int main(void) {
    t_begin("t_xattr_ext2");
    char buf[8192];

    /* --- basics on a scratch file ------------------------------------- */
    int fd = open("f", O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "create f");
    long b0 = blocks_of("f");
    CHECK(b0 == 0, "an empty file has no blocks (%ld)", b0);
    ERR(getxattr("f", "user.none", buf, sizeof buf), ENODATA, "getxattr of an unset name");
    CHECK(listxattr("f", buf, sizeof buf) == 0, "no names on a new file");
    CHECK(setxattr("f", "user.a", "hello", 5, 0) == 0, "setxattr user.a");
    long b1 = blocks_of("f");
    CHECK(b1 == 8, "i_blocks counts the 4 KiB xattr block (%ld)", b1);
    CHECK(getxattr("f", "user.a", NULL, 0) == 5, "size 0 gives the length");
    ERR(getxattr("f", "user.a", buf, 4), ERANGE, "a short buffer");
    memset(buf, 0, sizeof buf);
    CHECK(getxattr("f", "user.a", buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0,
          "getxattr reads the value back");
    CHECK(fgetxattr(fd, "user.a", buf, sizeof buf) == 5, "fgetxattr");
    ERR(setxattr("f", "user.a", "x", 1, XATTR_CREATE), EEXIST, "XATTR_CREATE of a set name");
    ERR(setxattr("f", "user.b", "x", 1, XATTR_REPLACE), ENODATA, "XATTR_REPLACE of an unset name");
    CHECK(setxattr("f", "user.a", "replaced-longer", 15, XATTR_REPLACE) == 0, "XATTR_REPLACE");
    CHECK(getxattr("f", "user.a", buf, sizeof buf) == 15 && memcmp(buf, "replaced-longer", 15) == 0,
          "the replaced value");
    CHECK(fsetxattr(fd, "user.b", "", 0, XATTR_CREATE) == 0, "an empty value");
    CHECK(getxattr("f", "user.b", buf, sizeof buf) == 0, "the empty value reads as 0 bytes");
    CHECK(setxattr("f", "trusted.t", "tv", 2, 0) == 0, "trusted.* as root");
    CHECK(setxattr("f", "security.s", "sv", 2, 0) == 0, "security.*");
    ssize_t n = listxattr("f", NULL, 0);
    CHECK(n == (ssize_t)sizeof "user.a\0user.b\0trusted.t\0security.s", "list size (%zd)", n);
    ERR(listxattr("f", buf, 4), ERANGE, "a short list buffer");
    n = listxattr("f", buf, sizeof buf);
    CHECK(listed(buf, n, "user.a") && listed(buf, n, "user.b") && listed(buf, n, "trusted.t") &&
              listed(buf, n, "security.s"),
          "every name is listed");
    ERR(setxattr("f", "user.", "x", 1, 0), EINVAL, "an empty name after the prefix");
    ERR(setxattr("f", "system.foo", "x", 1, 0), EOPNOTSUPP, "an unknown system.* name");
    CHECK(blocks_of("f") == 8, "still one xattr block");

    /* --- a full block ------------------------------------------------- */
    static char big[4097];
    memset(big, 'v', sizeof big);
    ERR(setxattr("f", "user.big", big, 4096, 0), ENOSPC, "a value that does not fit beside others");
    int added = 0;
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "user.fill%03d", i);
        if (setxattr("f", name, big, 100, 0) != 0) {
            CHECK(errno == ENOSPC, "filling the block ends with ENOSPC (%s)", strerror(errno));
            break;
        }
        added++;
    }
    CHECK(added > 20 && added < 40, "about 4 KiB of values fit (%d of 100 bytes)", added);
    CHECK(getxattr("f", "user.a", buf, sizeof buf) == 15, "the old values survive ENOSPC");
    CHECK(getxattr("f", "user.fill000", buf, sizeof buf) == 100 && buf[99] == 'v', "a filler reads back");
    ERR(setxattr("f", "user.huge", big, 4097, 0), ERANGE, "a value larger than a block");

    /* --- removal frees the block --------------------------------------- */
    ssize_t names = listxattr("f", buf, sizeof buf);
    for (ssize_t i = 0; names > 0 && i < names; i += strlen(buf + i) + 1)
        if (removexattr("f", buf + i) != 0) CHECK(0, "removexattr %s", buf + i);
    ERR(removexattr("f", "user.a"), ENODATA, "removing a gone name");
    CHECK(listxattr("f", buf, sizeof buf) == 0, "no names left");
    CHECK(blocks_of("f") == 0, "the xattr block is freed with the last name (%ld)", blocks_of("f"));
    /* A file deleted with its attributes: e2fsck on the host checks the
     * block went back to the bitmap. */
    CHECK(setxattr("f", "user.x", "gone", 4, 0) == 0 && unlink("f") == 0, "unlink a file with xattrs");
    close(fd);

    /* --- types and users ----------------------------------------------- */
    CHECK(symlink("target", "s") == 0 && mkfifo("p", 0666) == 0, "a symlink and a FIFO");
    ERR(lsetxattr("s", "user.a", "x", 1, 0), EPERM, "user.* on a symlink");
    ERR(setxattr("p", "user.a", "x", 1, 0), EPERM, "user.* on a FIFO");
    ERR(lgetxattr("s", "user.a", buf, sizeof buf), ENODATA, "reading user.* of a symlink");
    CHECK(lsetxattr("s", "trusted.l", "lv", 2, 0) == 0, "trusted.* on a symlink");
    CHECK(lgetxattr("s", "trusted.l", buf, sizeof buf) == 2, "read back from the symlink");
    char target[16] = {0};
    CHECK(readlink("s", target, sizeof target) == 6 && strcmp(target, "target") == 0,
          "the fast symlink still reads with an xattr block");

    int u = open("u", O_CREAT | O_RDWR, 0666);
    CHECK(chmod(".", 0755) == 0, "open the scratch dir to others");
    CHECK(u >= 0 && fchmod(u, 0666) == 0 && fsetxattr(u, "trusted.secret", "s", 1, 0) == 0 && fsetxattr(u, "user.pub", "p", 1, 0) == 0,
          "a file for another user");
    if (u >= 0) close(u);
    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(1000) != 0) _exit(10);
        char b[256];
        if (getxattr("u", "trusted.secret", b, sizeof b) != -1 || errno != ENODATA) _exit(11);
        if (setxattr("u", "trusted.x", "x", 1, 0) != -1 || errno != EPERM) _exit(12);
        ssize_t m = listxattr("u", b, sizeof b);
        if (m != (ssize_t)sizeof "user.pub" || strcmp(b, "user.pub") != 0) _exit(13);
        if (setxattr("u", "user.mine", "x", 1, 0) != 0) _exit(14); /* mode 0666 */
        _exit(0);
    }
    const char *how = t_wait(pid);
    CHECK(strcmp(how, "exited 0") == 0, "a non-root user: trusted.* hidden and refused (%s)", how);

    /* --- left behind for debugfs ---------------------------------------- */
    int k = open("/xattr-kept", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(k >= 0 && write(k, "data\n", 5) == 5, "/xattr-kept");
    if (k >= 0) close(k);
    CHECK(setxattr("/xattr-kept", "user.color", "blue", 4, 0) == 0 &&
              setxattr("/xattr-kept", "trusted.t", "tv", 2, 0) == 0 &&
              setxattr("/xattr-kept", "security.s", "sv", 2, 0) == 0 &&
              setxattr("/xattr-kept", "user.empty", "", 0, 0) == 0,
          "attributes on /xattr-kept");
    CHECK(blocks_of("/xattr-kept") == 16, "a data block and an xattr block (%ld)", blocks_of("/xattr-kept"));
    CHECK(mkdir("/xattr-dir", 0755) == 0 && setxattr("/xattr-dir", "user.d", "dir-value", 9, 0) == 0,
          "user.* on a directory");
    sync();
    return t_end();
}
