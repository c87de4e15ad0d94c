/* Guest test: mount -o remount,ro is refused (EBUSY) only for what Linux
 * counts as writing to the file system (sb_prepare_remount_readonly): a
 * regular file open for writing, a shared writable mapping, a file unlinked
 * while still open. FIFOs, device nodes and sockets opened for writing, a
 * file open read-only, a private writable mapping and a zombie's files do
 * not hold it (Debian's umountroot at shutdown). And the mount table tells
 * the truth: each mount's major:minor in mountinfo is st_dev of its files,
 * sysfs is "sysfs" in /proc/mounts and mountinfo, with SYSFS_MAGIC. */
#include "t_common.h"
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#define RO() mount(NULL, "m", NULL, MS_REMOUNT | MS_RDONLY, NULL)
#define RW() mount(NULL, "m", NULL, MS_REMOUNT, NULL)

/* Remount read-only; on success back to read-write. 0 or the errno. */
static int try_ro(void) {
    if (RO() != 0) return errno;
    if (RW() != 0) return -1;
    return 0;
}

/* The mountinfo line whose mount point ends in `suffix` (the last one):
 * its major:minor and type. 1 if found. */
static int mountinfo_of(const char *point, unsigned *maj, unsigned *min, char *type, size_t tlen) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned a, b;
        char mp[512], rest[512];
        if (sscanf(line, "%*u %*u %u:%u %*s %511s %*s", &a, &b, mp) != 3) continue;
        if (strcmp(mp, point) != 0) continue;
        char *sep = strstr(line, " - ");
        if (!sep || sscanf(sep + 3, "%511s", rest) != 1) continue;
        *maj = a;
        *min = b;
        snprintf(type, tlen, "%s", rest);
        found = 1;
    }
    fclose(f);
    return found;
}

static int proc_mounts_type(const char *point, char *type, size_t tlen) {
    FILE *f = fopen("/proc/mounts", "r");
    if (!f) return 0;
    char line[1024], dev[256], mp[512], ty[64];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%255s %511s %63s", dev, mp, ty) == 3 && strcmp(mp, point) == 0) {
            snprintf(type, tlen, "%s", ty);
            found = 1;
        }
    fclose(f);
    return found;
}

static void same_dev(const char *what, const char *point) {
    unsigned maj = 0, min = 0;
    char type[64] = "";
    struct stat st;
    int ok = mountinfo_of(point, &maj, &min, type, sizeof type) && stat(point, &st) == 0;
    CHECK(ok && major(st.st_dev) == maj && minor(st.st_dev) == min, "%s: mountinfo's major:minor is st_dev", what);
}

int main(void) {
    t_begin("t_remount_ro");
    if (access("/proc/self", F_OK) != 0 && mount("proc", "/proc", "proc", 0, NULL) != 0)
        SAY("cannot mount /proc\n");
    char path[256];
    CHECK(mkdir("m", 0755) == 0 && mount("tmpfs", "m", "tmpfs", 0, "size=4m") == 0, "mount a tmpfs");
    int fd = open("m/f", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5 && close(fd) == 0, "a file on it");
    CHECK(mkfifo("m/p", 0644) == 0 && mknod("m/c", S_IFCHR | 0666, makedev(1, 3)) == 0, "a FIFO and /dev/null's numbers");
    CHECK(try_ro() == 0, "remount,ro with nothing open");

    fd = open("m/f", O_RDONLY);
    CHECK(try_ro() == 0, "a file open read-only does not hold it");
    close(fd);
    fd = open("m/f", O_WRONLY);
    CHECK(try_ro() == EBUSY, "a file open for writing: EBUSY");
    close(fd);
    CHECK(try_ro() == 0, "closed: remount,ro");
    fd = open("m/f", O_RDWR | O_APPEND);
    CHECK(try_ro() == EBUSY, "O_RDWR|O_APPEND: EBUSY");
    close(fd);

    fd = open("m/p", O_RDWR);
    CHECK(fd >= 0 && try_ro() == 0, "a FIFO open O_RDWR does not hold it (sysvinit's initctl)");
    close(fd);
    fd = open("m/c", O_WRONLY);
    CHECK(fd >= 0 && try_ro() == 0, "a device node open for writing does not hold it");
    close(fd);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "m/sock");
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s, 1) == 0, "a socket bound in it");
    CHECK(try_ro() == 0, "a bound socket does not hold it");
    close(s);

    /* A child that opened a file for writing and exited: its files went
     * at exit, before anyone reaps it. */
    int pr[2];
    CHECK(pipe(pr) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        int w = open("m/f", O_WRONLY);
        (void)w;
        close(pr[0]);
        _exit(0);
    }
    close(pr[1]);
    char c;
    CHECK(read(pr[0], &c, 1) == 0, "the child exited");
    close(pr[0]);
    siginfo_t si;
    CHECK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == 0, "a zombie, not reaped");
    CHECK(try_ro() == 0, "a zombie's files do not hold it");
    SAY("child: %s\n", t_wait(pid));

    /* Mappings hold their open file: a shared one of a file opened for
     * writing holds the mount even when mapped read-only; a mapping of a
     * read-only open does not, even a private writable one. (Linux also
     * counts a private mapping of an O_RDWR open; umlrun does not yet.) */
    fd = open("m/f", O_RDONLY);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(p != MAP_FAILED && q != MAP_FAILED && try_ro() == 0, "mappings of an O_RDONLY open do not hold it");
    munmap(p, 4096);
    munmap(q, 4096);
    fd = open("m/f", O_RDWR);
    p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(p != MAP_FAILED && try_ro() == EBUSY, "a shared read-only mapping of an O_RDWR open (fd closed): EBUSY");
    munmap(p, 4096);
    fd = open("m/f", O_RDWR);
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(p != MAP_FAILED && try_ro() == EBUSY, "a shared writable mapping (fd closed): EBUSY");
    munmap(p, 4096);
    CHECK(try_ro() == 0, "unmapped: remount,ro");

    /* Unlinked while open (read-only): Linux counts it (s_remove_count). */
    fd = open("m/f", O_RDONLY);
    CHECK(unlink("m/f") == 0 && try_ro() == EBUSY, "a file unlinked while open: EBUSY");
    close(fd);
    CHECK(try_ro() == 0, "closed, gone: remount,ro");

    /* The mount table. */
    same_dev("/", "/");
    snprintf(path, sizeof path, "%s/m", t_dir);
    same_dev("the tmpfs", path);
    char type[64] = "";
    CHECK(proc_mounts_type(path, type, sizeof type) && strcmp(type, "tmpfs") == 0, "/proc/mounts: the tmpfs is tmpfs");
    CHECK(mkdir("s", 0755) == 0 && mount("sysfs", "s", "sysfs", 0, NULL) == 0, "mount -t sysfs");
    snprintf(path, sizeof path, "%s/s", t_dir);
    same_dev("sysfs", path);
    unsigned maj, min;
    CHECK(mountinfo_of(path, &maj, &min, type, sizeof type) && strcmp(type, "sysfs") == 0, "mountinfo: sysfs is sysfs");
    CHECK(proc_mounts_type(path, type, sizeof type) && strcmp(type, "sysfs") == 0, "/proc/mounts: sysfs is sysfs");
    struct statfs sf;
    CHECK(statfs("s", &sf) == 0 && sf.f_type == 0x62656572, "statfs: SYSFS_MAGIC");
    CHECK(statfs("m", &sf) == 0 && sf.f_type == 0x01021994, "statfs: TMPFS_MAGIC");
    struct stat a, b;
    CHECK(stat("m", &a) == 0 && stat("s", &b) == 0 && a.st_dev != b.st_dev, "two mounts, two st_dev");
    CHECK(umount("s") == 0 && umount("m") == 0, "umount both");
    return t_end();
}
