/* Bench guest: fork + waitpid of a child that _exits at once, µs per pair.
 * Prints `fork_wait <µs> us`; exit 1 if a fork or wait fails. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

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
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) _exit(0);
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("fork_wait: bad wait status %#x\n", st);
            return 1;
        }
        n++;
        el = now_us() - start;
    } while (el < 300000 || n < 5);
    printf("fork_wait %.2f us\n", el / n);
    return 0;
}
