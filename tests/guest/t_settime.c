/* Guest test: clock_settime(2) and settimeofday(2) check their arguments
 * in Linux's order (EINVAL for a clock that cannot be set, EFAULT, EINVAL
 * for a time out of range). A valid time is not tried: natively, as root,
 * it would set the host's clock (the guest answers EPERM: it shares the
 * host's clock, see sys_clock_settime). */
#include "t_common.h"
#include <sys/time.h>
#include <sys/syscall.h>
#include <time.h>

/* Raw calls: glibc reads the arguments itself and would fault first. */
#define SETTIME(c, p) syscall(SYS_clock_settime, (c), (p))
#define SETTOD(t, z) syscall(SYS_settimeofday, (t), (z))

#define ERR(call, e, what) CHECK((call) == -1 && errno == (e), "%s: %s", what, #e)

int main(void) {
    t_begin("t_settime");
    struct timespec ts = {0, 0};
    ERR(SETTIME(CLOCK_MONOTONIC, &ts), EINVAL, "CLOCK_MONOTONIC cannot be set");
    ERR(SETTIME(CLOCK_BOOTTIME, &ts), EINVAL, "CLOCK_BOOTTIME cannot be set");
    ERR(SETTIME(12345, &ts), EINVAL, "an unknown clock");
    ERR(SETTIME(CLOCK_MONOTONIC, (void *)8), EINVAL, "a clock that cannot be set, before the pointer");
    ERR(SETTIME(CLOCK_REALTIME, (void *)8), EFAULT, "CLOCK_REALTIME, a bad pointer");
    ts.tv_nsec = -1;
    ERR(SETTIME(CLOCK_REALTIME, &ts), EINVAL, "tv_nsec -1");
    ts.tv_nsec = 1000000000;
    ERR(SETTIME(CLOCK_REALTIME, &ts), EINVAL, "tv_nsec 1e9");
    ts.tv_sec = -1;
    ts.tv_nsec = 0;
    ERR(SETTIME(CLOCK_REALTIME, &ts), EINVAL, "a negative time");
    struct timeval tv = {0, 2000000};
    ERR(SETTOD(&tv, NULL), EINVAL, "settimeofday: tv_usec 2e6");
    ERR(SETTOD((void *)8, NULL), EFAULT, "settimeofday: a bad pointer");
    return t_end();
}
