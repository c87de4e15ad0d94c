/* Guest test: lseek on the memory devices, as Linux's null_lseek (null,
 * zero, full: every lseek answers 0) and noop_llseek (urandom: the offset
 * stays). Python's io.open(os.devnull, "r+") checks seekability with
 * lseek(fd, 0, SEEK_CUR): ESPIPE made it fail "not seekable" (3 errors in
 * test_subprocess). */
#include "t_common.h"

int main(void) {
    t_begin("t_devseek");
    const char *zero[] = {"/dev/null", "/dev/zero", "/dev/full"};
    for (int i = 0; i < 3; i++) {
        int fd = open(zero[i], O_RDWR);
        CHECK(fd >= 0, "%s opens", zero[i]);
        CHECK(lseek(fd, 0, SEEK_CUR) == 0, "%s: lseek(0, SEEK_CUR) is 0", zero[i]);
        CHECK(lseek(fd, 4096, SEEK_SET) == 0, "%s: lseek(4096, SEEK_SET) is 0", zero[i]);
        CHECK(lseek(fd, -5, SEEK_END) == 0, "%s: lseek(-5, SEEK_END) is 0", zero[i]);
        CHECK(lseek(fd, 1, 99) < 0 && errno == EINVAL, "%s: a bad whence is EINVAL", zero[i]);
        close(fd);
    }
    int fd = open("/dev/urandom", O_RDONLY);
    char b[16];
    CHECK(read(fd, b, sizeof b) == (ssize_t)sizeof b, "/dev/urandom reads");
    CHECK(lseek(fd, 0, SEEK_CUR) == 0, "/dev/urandom: lseek(0, SEEK_CUR) is 0 (reads move no offset)");
    CHECK(lseek(fd, 100, SEEK_SET) == 0, "/dev/urandom: lseek(100, SEEK_SET) leaves the offset");
    close(fd);
    return t_end();
}
