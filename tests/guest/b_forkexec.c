/* Bench guest: fork + execve(b_true next to this program) + waitpid, µs per
 * round. Prints `fork_exec_wait <µs> us`; exit 1 if any step fails. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_forkexec");
    snprintf(path, sizeof path, "%s/b_true", dirname(self));
    char *cargv[] = { path, NULL }, *cenv[] = { NULL };
    long n = 0;
    double start = now_us(), el;
    do {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) { execve(path, cargv, cenv); _exit(127); }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("fork_exec_wait: %s: bad wait status %#x\n", path, st);
            return 1;
        }
        n++;
        el = now_us() - start;
    } while (el < 300000 || n < 5);
    printf("fork_exec_wait %.2f us\n", el / n);
    return 0;
}
