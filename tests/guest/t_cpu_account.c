/* A process that only makes syscalls uses CPU time: on Linux its system
 * time is nearly its wall time. Loops getppid for 300 ms of wall time and
 * prints the CPU time times() and CLOCK_PROCESS_CPUTIME_ID report, as
 * percentages of the wall time (tests/cpu_accounting.rs compares the guest's
 * figures with the native ones). */
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    struct tms a, b;
    times(&a);
    long long w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
    while (ns(CLOCK_MONOTONIC) - w0 < 300000000LL)
        for (int i = 0; i < 100; i++)
            syscall(SYS_getppid);
    long long wall = ns(CLOCK_MONOTONIC) - w0, cpu = ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
    times(&b);
    long ticks = (b.tms_utime - a.tms_utime) + (b.tms_stime - a.tms_stime);
    printf("times %lld%%\n", ticks * 10000000LL * 100 / wall);
    printf("cputime %lld%%\n", cpu * 100 / wall);
    return 0;
}
