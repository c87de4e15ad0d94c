/* Guest test: memfd_create: flags and names, read/write/lseek/ftruncate,
 * fstat, the /proc/self/fd link "/memfd:<name> (deleted)", MAP_SHARED
 * mappings seen across fork and by a process that got the fd over a
 * unix socket (SCM_RIGHTS), seals (MFD_ALLOW_SEALING, F_ADD_SEALS,
 * F_GET_SEALS: SEAL_SHRINK, SEAL_GROW, SEAL_WRITE with EBUSY while mapped
 * writable, SEAL_SEAL), and the errno of bad calls. */
#include "t_common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static int send_fd(int sock, int fd) {
    char b = 'x';
    struct iovec iov = {&b, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &mh, 0);
}

static int recv_fd(int sock) {
    char b;
    struct iovec iov = {&b, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    if (recvmsg(sock, &mh, 0) != 1) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

int main(void) {
    t_begin("t_memfd");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);

    int fd = memfd_create("scratch", 0);
    CHECK(fd >= 0, "memfd_create(\"scratch\", 0)");
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR && fcntl(fd, F_GETFD) == 0, "O_RDWR, no FD_CLOEXEC");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0777 && st.st_size == 0, "fstat: regular, 0777, empty");
    char link[128] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && strcmp(link, "/memfd:scratch (deleted)") == 0, "/proc/self/fd link: %s", link);
    CHECK(write(fd, "hello world", 11) == 11, "write 11 bytes");
    CHECK(fstat(fd, &st) == 0 && st.st_size == 11, "size 11");
    char buf[32] = {0};
    CHECK(pread(fd, buf, sizeof buf, 6) == 5 && memcmp(buf, "world", 5) == 0, "pread");
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && read(fd, buf, 5) == 5 && memcmp(buf, "hello", 5) == 0, "lseek + read");
    CHECK(ftruncate(fd, 8192) == 0 && fstat(fd, &st) == 0 && st.st_size == 8192, "ftruncate to 8192");
    CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL, "without MFD_ALLOW_SEALING: F_SEAL_SEAL");
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "adding a seal: EPERM");

    /* shared mapping across fork */
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED && memcmp(m, "hello world", 11) == 0, "mmap shows the data");
    pid_t c = fork();
    if (c == 0) {
        strcpy(m + 4096, "from the child");
        _exit(0);
    }
    int stv;
    waitpid(c, &stv, 0);
    CHECK(strcmp(m + 4096, "from the child") == 0, "a child's write through MAP_SHARED is seen");
    CHECK(pread(fd, buf, 14, 4096) == 14 && memcmp(buf, "from the child", 14) == 0, "and read()");

    /* over a unix socket: the receiver maps the same pages */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    c = fork();
    if (c == 0) {
        close(sv[0]);
        int got = recv_fd(sv[1]);
        if (got < 0) _exit(2);
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, got, 0);
        if (p == MAP_FAILED) _exit(3);
        int ok = memcmp(p, "hello world", 11) == 0;
        strcpy(p + 100, "via SCM_RIGHTS");
        _exit(ok ? 0 : 4);
    }
    close(sv[1]);
    int fd_copy = memfd_create("passed", 0);
    CHECK(fd_copy >= 0, "a second memfd");
    CHECK(send_fd(sv[0], fd) == 1, "send the memfd");
    waitpid(c, &stv, 0);
    CHECK(WIFEXITED(stv) && WEXITSTATUS(stv) == 0, "the receiver mapped it and saw the data");
    CHECK(strcmp(m + 100, "via SCM_RIGHTS") == 0, "its write is seen here");
    close(sv[0]);
    close(fd_copy);
    munmap(m, 8192);
    close(fd);

    /* the mapping outlives the fd */
    fd = memfd_create("kept", MFD_CLOEXEC);
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "MFD_CLOEXEC");
    ftruncate(fd, 4096);
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    strcpy(m, "still here");
    CHECK(strcmp(m, "still here") == 0, "a mapping works after close");
    munmap(m, 4096);

    /* seals */
    fd = memfd_create("sealed", MFD_ALLOW_SEALING);
    CHECK(fd >= 0 && fcntl(fd, F_GET_SEALS) == 0, "MFD_ALLOW_SEALING: no seals");
    CHECK(write(fd, "0123456789", 10) == 10, "write 10 bytes");
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0 && fcntl(fd, F_GET_SEALS) == F_SEAL_SHRINK, "F_SEAL_SHRINK");
    CHECK(ftruncate(fd, 5) < 0 && errno == EPERM, "shrinking: EPERM");
    CHECK(ftruncate(fd, 20) == 0, "growing is allowed");
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) == 0, "F_SEAL_GROW");
    CHECK(ftruncate(fd, 30) < 0 && errno == EPERM, "growing: EPERM");
    CHECK(pwrite(fd, "ab", 2, 19) < 0 && errno == EPERM, "a write past the end: EPERM");
    CHECK(pwrite(fd, "ab", 2, 0) == 2, "a write inside is allowed");
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "a writable shared mapping");
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EBUSY, "F_SEAL_WRITE while mapped writable: EBUSY");
    munmap(m, 4096);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0, "F_SEAL_WRITE once unmapped");
    CHECK(write(fd, "x", 1) < 0 && errno == EPERM, "write: EPERM");
    CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM, "shared writable mmap: EPERM");
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED && memcmp(m, "ab23456789", 10) == 0, "a read-only mapping works");
    munmap(m, 4096);
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED, "a private writable mapping works");
    munmap(m, 4096);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0, "F_SEAL_SEAL");
    CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL), "F_GET_SEALS shows all four");
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0 && errno == EPERM, "any seal after F_SEAL_SEAL: EPERM");
    close(fd);

    /* bad calls */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(memfd_create(longname, 0) < 0 && errno == EINVAL, "a 299-byte name: EINVAL");
    CHECK(syscall(SYS_memfd_create, "x", 0x1000) < 0 && errno == EINVAL, "unknown flags: EINVAL");
    CHECK(syscall(SYS_memfd_create, (char *)8, 0) < 0 && errno == EFAULT, "a bad name address: EFAULT");
    CHECK(fcntl(0, F_GET_SEALS) < 0 && errno == EINVAL, "F_GET_SEALS on a tty or pipe: EINVAL");
    int tf = open("plain", O_CREAT | O_RDWR, 0644);
    CHECK(fcntl(tf, F_ADD_SEALS, F_SEAL_SEAL) < 0 && errno == EINVAL, "F_ADD_SEALS on a disk file: EINVAL");
    close(tf);
    fd = memfd_create("bad", MFD_ALLOW_SEALING);
    CHECK(fcntl(fd, F_ADD_SEALS, 0x1000) < 0 && errno == EINVAL, "an unknown seal: EINVAL");
    close(fd);
    return t_end();
}
