/* sync_file_range, as PostgreSQL calls it for every 256 KiB a checkpoint
 * writes (checkpoint_flush_after; it logged "could not flush dirty data:
 * Function not implemented" when the call was missing): Linux's argument
 * checks (the fd first, then flags, a negative offset or length, an
 * overflowing range), EBADF for a closed or O_PATH fd, ESPIPE for a pipe, success on
 * a regular file (read-only fds too: nothing needs write access), on a
 * directory, over a range past the end and with nbytes 0 (to the end); the
 * data reads back the same after each form, through read and a MAP_SHARED
 * mapping written before the call. */
#include "t_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define W SYNC_FILE_RANGE_WRITE
#define ALL (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)

static int expect_err(int fd, off64_t off, off64_t n, unsigned flags, int err) {
    errno = 0;
    return sync_file_range(fd, off, n, flags) == -1 && errno == err;
}

static int same(int fd, const char *want, size_t n, off_t at) {
    char buf[8192];
    if (n > sizeof buf || pread(fd, buf, n, at) != (ssize_t)n) return 0;
    return memcmp(buf, want, n) == 0;
}

int main(void) {
    t_begin("t_syncrange");
    int fd = open("data", O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0, "open a file");
    static char blk[8192];
    for (int i = 0; i < 64; i++) {
        memset(blk, 'a' + i % 26, sizeof blk);
        if (write(fd, blk, sizeof blk) != (ssize_t)sizeof blk) break;
    }
    CHECK(lseek(fd, 0, SEEK_END) == 64 * 8192, "512 KiB written");

    SAY("-- argument checks\n");
    CHECK(expect_err(fd, 0, 0, 8, EINVAL), "unknown flag 8: EINVAL");
    CHECK(expect_err(fd, 0, 0, 0x80000000u, EINVAL), "flag bit 31: EINVAL");
    CHECK(expect_err(fd, -1, 4096, W, EINVAL), "offset -1: EINVAL");
    CHECK(expect_err(fd, 4096, -1, W, EINVAL), "nbytes -1: EINVAL");
    CHECK(expect_err(fd, INT64_MAX - 10, 100, W, EINVAL), "offset + nbytes overflows: EINVAL");
    CHECK(expect_err(-1, 0, 0, 8, EBADF), "a bad fd before bad flags: EBADF");
    CHECK(expect_err(-1, 0, 0, W, EBADF), "fd -1: EBADF");
    CHECK(expect_err(1000, 0, 0, W, EBADF), "a closed fd: EBADF");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    CHECK(expect_err(p[0], 0, 0, W, ESPIPE), "a pipe: ESPIPE");
    CHECK(expect_err(p[1], 0, 0, 0, ESPIPE), "a pipe, flags 0: ESPIPE");
    close(p[0]);
    close(p[1]);
    int op = open("data", O_PATH);
    CHECK(expect_err(op, 0, 0, W, EBADF), "an O_PATH fd: EBADF");
    close(op);

    SAY("-- the forms PostgreSQL and others use\n");
    CHECK(sync_file_range(fd, 0, 0, 0) == 0, "flags 0: does nothing, 0");
    CHECK(sync_file_range(fd, 0, 262144, W) == 0, "WRITE of the first 256 KiB");
    CHECK(sync_file_range(fd, 262144, 262144, ALL) == 0, "WAIT_BEFORE|WRITE|WAIT_AFTER of the next 256 KiB");
    CHECK(sync_file_range(fd, 4097, 1, ALL) == 0, "an unaligned byte");
    CHECK(sync_file_range(fd, 0, 0, ALL) == 0, "nbytes 0: to the end of the file");
    CHECK(sync_file_range(fd, 1 << 30, 4096, ALL) == 0, "a range past the end");
    CHECK(sync_file_range(fd, INT64_MAX - 4096, 4096, ALL) == 0, "the last bytes a file can have");
    memset(blk, 'c', sizeof blk);
    CHECK(same(fd, blk, 8192, 2 * 8192), "the data reads back");

    char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap MAP_SHARED");
    if (m != MAP_FAILED) {
        memcpy(m + 100, "written through the mapping", 27);
        CHECK(sync_file_range(fd, 0, 65536, ALL) == 0, "sync_file_range over a dirty shared mapping");
        CHECK(same(fd, "written through the mapping", 27, 100), "read sees the mapping's bytes");
        munmap(m, 65536);
    }
    int ro = open("data", O_RDONLY);
    CHECK(sync_file_range(ro, 0, 0, ALL) == 0, "a read-only fd: 0");
    close(ro);
    int d = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(sync_file_range(d, 0, 0, ALL) == 0, "a directory: 0");
    close(d);
    CHECK(ftruncate(fd, 4096) == 0 && sync_file_range(fd, 0, 0, ALL) == 0, "after a truncate to 4 KiB: 0");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 4096, "the size stays 4096");
    memset(blk, 'a', 4096);
    memcpy(blk + 100, "written through the mapping", 27);
    CHECK(same(fd, blk, 4096, 0), "the first page reads back");
    CHECK(fdatasync(fd) == 0 && fsync(fd) == 0, "fdatasync and fsync");
    close(fd);
    return t_end();
}
