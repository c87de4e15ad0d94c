/* sendfile(2) at and past the end of the input, count 0, huge counts,
 * offset pointers (read, advanced, negative, bad), into files, pipes and
 * O_APPEND files; and zero-length / huge-offset pwrite on regular files
 * (the page cache once panicked on an empty write at a page boundary:
 * python's shutil.copyfile ends with a sendfile at EOF). */
#include "t_common.h"
#include <limits.h>
#include <stdint.h>
#include <sys/sendfile.h>

static int make_file(const char *name, size_t size) {
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    char buf[1000];
    size_t done = 0;
    while (done < size) {
        size_t n = size - done < sizeof buf ? size - done : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + (done + i) % 26);
        if (write(fd, buf, n) != (ssize_t)n) return -1;
        done += n;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static off_t fsize(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

/* The whole file matches the pattern make_file wrote. */
static int same_pattern(int fd, size_t size) {
    char *buf = malloc(size + 1);
    ssize_t n = pread(fd, buf, size + 1, 0);
    int ok = n == (ssize_t)size;
    for (size_t i = 0; ok && i < size; i++) ok = buf[i] == (char)('a' + i % 26);
    free(buf);
    return ok;
}

static void sizes(size_t size) {
    SAY("-- input of %zu bytes\n", size);
    int in = make_file("in", size);
    int out = open("out", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ssize_t total = 0, n;
    /* Copy in chunks the way shutil does, until sendfile says 0. */
    while ((n = sendfile(out, in, NULL, 8192)) > 0) total += n;
    CHECK(n == 0 && total == (ssize_t)size, "copy loop ends with 0 after %zu bytes", size);
    CHECK(lseek(in, 0, SEEK_CUR) == (off_t)size, "input offset at its end");
    CHECK(lseek(out, 0, SEEK_CUR) == (off_t)size, "output offset at its end");
    CHECK(same_pattern(out, size), "output holds the same bytes");
    /* Once more at EOF: 0, nothing changes. */
    CHECK(sendfile(out, in, NULL, 4096) == 0, "at EOF: 0");
    CHECK(sendfile(out, in, NULL, 0) == 0, "count 0: 0");
    CHECK(fsize(out) == (off_t)size, "output size unchanged");
    /* Past EOF with an offset pointer. */
    off_t off = size + 4096;
    CHECK(sendfile(out, in, &off, 100) == 0 && off == (off_t)size + 4096, "past EOF: 0, offset kept");
    off = size;
    CHECK(sendfile(out, in, &off, 1) == 0 && off == (off_t)size, "at EOF by pointer: 0");
    CHECK(fsize(out) == (off_t)size, "output size still unchanged");
    close(in);
    close(out);
}

int main(void) {
    t_begin("t_sendfile");
    sizes(0);
    sizes(1);
    sizes(4095);
    sizes(4096);
    sizes(4097);
    sizes(8192);
    sizes(20000);

    SAY("-- offsets and counts\n");
    int in = make_file("in", 10000);
    int out = open("out", O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t off = 100;
    CHECK(sendfile(out, in, &off, 50) == 50 && off == 150, "offset pointer advances by what was sent");
    CHECK(lseek(in, 0, SEEK_CUR) == 0, "input's own offset unchanged with a pointer");
    off = 9990;
    CHECK(sendfile(out, in, &off, 4096) == 10 && off == 10000, "short count at the end");
    off = -1;
    errno = 0;
    CHECK(sendfile(out, in, &off, 10) == -1 && errno == EINVAL, "negative offset: EINVAL");
    errno = 0;
    CHECK(sendfile(out, in, (off_t *)8, 10) == -1 && errno == EFAULT, "bad offset pointer: EFAULT");
    errno = 0;
    CHECK(sendfile(out, in, NULL, SIZE_MAX) == -1 && errno == EINVAL, "count SIZE_MAX: EINVAL");
    lseek(out, 0, SEEK_SET);
    ftruncate(out, 0);
    lseek(in, 0, SEEK_SET);
    ssize_t n = sendfile(out, in, NULL, SSIZE_MAX);
    CHECK(n == 10000, "count SSIZE_MAX from 0: the whole file (%zd)", n);
    off = 10;
    errno = 0;
    CHECK(sendfile(out, in, &off, SSIZE_MAX) == -1 && errno == EINVAL, "offset + count overflows: EINVAL");
    off = 0;
    CHECK(sendfile(out, in, &off, (size_t)1 << 40) == 10000, "count 1 TiB: the whole file");

    SAY("-- output kinds and modes\n");
    /* Output at a page boundary, input at EOF (the old panic). */
    lseek(out, 8192, SEEK_SET);
    lseek(in, 0, SEEK_END);
    off_t osize = fsize(out);
    CHECK(osize == 20000, "output holds two copies");
    CHECK(sendfile(out, in, NULL, 4096) == 0, "EOF input into a page-aligned output offset: 0");
    CHECK(fsize(out) == osize, "output not extended by an empty send");
    lseek(out, 1 << 20, SEEK_SET);
    CHECK(sendfile(out, in, NULL, 4096) == 0 && fsize(out) == osize, "output offset past its end: not extended");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    off = 0;
    CHECK(sendfile(p[1], in, &off, 3000) == 3000, "into a pipe");
    char buf[4000];
    CHECK(read(p[0], buf, sizeof buf) == 3000 && memcmp(buf, "abcdefghij", 10) == 0, "pipe holds the bytes");
    errno = 0;
    CHECK(sendfile(out, p[0], NULL, 10) == -1 && errno == EINVAL, "from a pipe: EINVAL");
    int app = open("app", O_WRONLY | O_CREAT | O_APPEND, 0644);
    off = 0;
    errno = 0;
    CHECK(sendfile(app, in, &off, 10) == -1 && errno == EINVAL, "into an O_APPEND file: EINVAL");
    int ro = open("in", O_RDONLY);
    int wo = open("in", O_WRONLY);
    off = 0;
    errno = 0;
    CHECK(sendfile(ro, in, &off, 10) == -1 && errno == EBADF, "output read-only: EBADF");
    errno = 0;
    CHECK(sendfile(out, wo, &off, 10) == -1 && errno == EBADF, "input write-only: EBADF");
    errno = 0;
    CHECK(sendfile(99, in, &off, 10) == -1 && errno == EBADF, "bad output fd: EBADF");

    SAY("-- empty and huge writes\n");
    CHECK(pwrite(out, "", 0, 4096) == 0, "pwrite of 0 bytes at a page boundary");
    CHECK(pwrite(out, "", 0, 1 << 20) == 0 && fsize(out) == osize, "pwrite of 0 bytes past the end: size kept");
    CHECK(write(out, "", 0) == 0, "write of 0 bytes");
    errno = 0;
    CHECK(pwrite(out, "x", 1, INT64_MAX) == -1 && (errno == EFBIG || errno == EINVAL), "pwrite at INT64_MAX fails");
    errno = 0;
    CHECK(pwrite(out, "xy", 2, INT64_MAX - 1) == -1 && (errno == EFBIG || errno == EINVAL), "pwrite ending past INT64_MAX fails");
    CHECK(fsize(out) == osize, "size unchanged after the failed writes");
    errno = 0;
    CHECK(pread(in, buf, 10, INT64_MAX - 10) == 0, "pread ending at INT64_MAX: 0");
    errno = 0;
    CHECK(pread(in, buf, 10, INT64_MAX) == -1 && errno == EINVAL, "pread ending past INT64_MAX: EINVAL");
    close(in);
    close(out);
    close(app);
    close(ro);
    close(wo);
    close(p[0]);
    close(p[1]);
    return t_end();
}
