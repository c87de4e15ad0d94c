/* Bench guest: fork + execve(b_true next to this program) + waitpid, µs per
 * round. Prints `fork_exec_wait <µs> us`, then the page faults per round
 * (pgfault of /proc/vmstat, mounted when this runs as init: the guest
 * kernel's own count under umlrun, the whole host's natively) as `fork_exec_faults <n> faults`, which
 * scripts/bench does not take as a figure; exit 1 if any step fails. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/wait.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* pgfault of /proc/vmstat, or -1. */
static long pgfaults(void)
{
    FILE *f = fopen("/proc/vmstat", "r");
    char key[64];
    long v, out = -1;
    if (!f)
        return -1;
    while (fscanf(f, "%63s %ld", key, &v) == 2)
        if (strcmp(key, "pgfault") == 0)
            out = v;
    fclose(f);
    return out;
}

int main(int argc, char **argv)
{
    char self[4096], path[4200];
    snprintf(self, sizeof self, "%s", argc > 0 ? argv[0] : "/bench/b_forkexec");
    snprintf(path, sizeof path, "%s/b_true", dirname(self));
    char *cargv[] = { path, NULL }, *cenv[] = { NULL };
    if (getpid() == 1) /* init of the bench image: nothing mounted /proc */
        mount("proc", "/proc", "proc", 0, NULL);
    long n = 0, f0 = pgfaults();
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
    long f1 = pgfaults();
    printf("fork_exec_wait %.2f us\n", el / n);
    if (f0 >= 0 && f1 >= f0)
        printf("fork_exec_faults %.1f faults\n", (double)(f1 - f0) / n);
    return 0;
}
