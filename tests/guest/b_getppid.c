/* Bench guest: getppid round trip (raw syscall, no libc cache), µs per call.
 * Runs batches until at least 0.3 s have passed, so one program fits a fast
 * native host and a 40 µs-per-call UML alike. Prints `getppid <µs> us`. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(void)
{
    long n = 0;
    double start = now_us(), el;
    do {
        for (int i = 0; i < 1000; i++)
            syscall(SYS_getppid);
        n += 1000;
        el = now_us() - start;
    } while (el < 300000);
    printf("getppid %.4f us\n", el / n);
    return 0;
}
