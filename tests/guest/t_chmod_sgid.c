/* Guest test: chmod/fchmod/fchmodat by a file's owner who is not in the
 * file's group clears S_ISGID (Linux's setattr_prepare), on files and
 * directories, in the scratch directory (ext2 in the guest) and on a
 * tmpfs; a member of the group (egid or supplementary) and root keep it;
 * S_ISUID stays; a non-owner gets EPERM. */
#include "t_common.h"
#include <grp.h>
#include <sys/mount.h>

static unsigned mode_of(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? st.st_mode & 07777 : 0xffff;
}

/* Runs as uid 1000 with egid `egid` and supplementary groups `sup`; exit
 * code 0 when every expectation about the modes holds. */
static int as_user(const char *d, gid_t egid, gid_t sup, int member) {
    char f[96], g[96], dir[96];
    snprintf(f, sizeof f, "%s/f", d);
    snprintf(g, sizeof g, "%s/g", d);
    snprintf(dir, sizeof dir, "%s/d", d);
    gid_t list[1] = {sup};
    if (setgroups(sup ? 1 : 0, list) != 0 || setresgid(egid, egid, egid) != 0 || setresuid(1000, 1000, 1000) != 0)
        return 90;
    unsigned keep = member ? 02000 : 0;
    if (chmod(f, 02755) != 0 || mode_of(f) != (0755 | keep)) return 1;
    if (chmod(f, 06755) != 0 || mode_of(f) != (04755 | keep)) return 2;
    if (chmod(f, 02644) != 0 || mode_of(f) != (0644 | keep)) return 3;
    int fd = open(f, O_RDONLY);
    if (fd < 0 || fchmod(fd, 02711) != 0 || mode_of(f) != (0711 | keep)) return 4;
    close(fd);
    if (fchmodat(AT_FDCWD, f, 02700, 0) != 0 || mode_of(f) != (0700 | keep)) return 5;
    if (chmod(dir, 02775) != 0 || mode_of(dir) != (0775 | keep)) return 6;
    if (chmod(f, 0644) != 0 || mode_of(f) != 0644) return 7;
    if (chmod(g, 02755) != -1 || errno != EPERM) return 8;
    return 0;
}

static void run(const char *d, const char *what, gid_t egid, gid_t sup, int member) {
    char f[96], g[96], dir[96];
    snprintf(f, sizeof f, "%s/f", d);
    snprintf(g, sizeof g, "%s/g", d);
    snprintf(dir, sizeof dir, "%s/d", d);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    fd = open(g, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    mkdir(dir, 0755);
    CHECK(chown(f, 1000, 3000) == 0 && chown(dir, 1000, 3000) == 0 && chown(g, 2000, 3000) == 0,
          "%s: f and d owned by 1000:3000, g by 2000:3000", d);
    pid_t pid = fork();
    if (pid == 0) _exit(as_user(d, egid, sup, member));
    const char *how = t_wait(pid);
    CHECK(strcmp(how, "exited 0") == 0, "%s: %s (%s)", d, what, how);
    CHECK(unlink(f) == 0 && unlink(g) == 0 && rmdir(dir) == 0, "%s: clean up", d);
}

static void in(const char *d) {
    SAY("-- %s\n", d);
    run(d, "the owner, not in group 3000: S_ISGID cleared", 1000, 0, 0);
    run(d, "the owner with egid 3000: S_ISGID kept", 3000, 0, 1);
    run(d, "the owner with 3000 as a supplementary group: S_ISGID kept", 1000, 3000, 1);
    char f[96];
    snprintf(f, sizeof f, "%s/rootf", d);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && close(fd) == 0 && chown(f, 1000, 3000) == 0, "%s: a file of 1000:3000", d);
    CHECK(chmod(f, 02755) == 0 && mode_of(f) == 02755, "%s: root keeps S_ISGID", d);
    CHECK(unlink(f) == 0, "%s: removed", d);
}

int main(void) {
    t_begin("t_chmod_sgid");
    CHECK(chmod(".", 0755) == 0, "the scratch dir is 0755");
    CHECK(mkdir("m", 0755) == 0 && mount("tmpfs", "m", "tmpfs", 0, "size=4m") == 0, "mount a tmpfs");
    CHECK(chmod("m", 0755) == 0, "its root is 0755");
    in(".");
    in("m");
    CHECK(umount("m") == 0, "umount the tmpfs");
    return t_end();
}
