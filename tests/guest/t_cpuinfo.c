/* /proc/cpuinfo's flags are the CPU's own (guest code runs on the host's
 * CPU): for each feature, the flags line names it exactly when CPUID says
 * the CPU has it (so a program that picks code by /proc/cpuinfo never
 * picks instructions the CPU lacks, nor misses ones it has). */
#include "t_common.h"
#include <sys/mount.h>

static char flags[8192];

static int has_flag(const char *f) {
    size_t n = strlen(f);
    for (const char *p = flags; (p = strstr(p, f)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0' || p[n] == '\n')) return 1;
    return 0;
}

int main(void) {
    t_begin("t_cpuinfo");
    /* As init in the guest nothing has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    FILE *f = fopen("/proc/cpuinfo", "r");
    CHECK(f != NULL, "open /proc/cpuinfo");
    char line[8192];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(flags, sizeof flags, "%s", colon + 1);
                found = 1;
                break;
            }
        }
    }
    if (f) fclose(f);
    CHECK(found, "a flags line");
    __builtin_cpu_init();
#define FEATURE(flag, builtin) \
    CHECK(has_flag(flag) == !!__builtin_cpu_supports(builtin), "%s listed as CPUID says", flag)
    FEATURE("sse2", "sse2");
    FEATURE("sse4_2", "sse4.2");
    FEATURE("popcnt", "popcnt");
    FEATURE("aes", "aes");
    FEATURE("avx", "avx");
    FEATURE("avx2", "avx2");
    FEATURE("bmi2", "bmi2");
    FEATURE("fma", "fma");
    FEATURE("avx512f", "avx512f");
    FEATURE("avx512bw", "avx512bw");
    FEATURE("avx512vl", "avx512vl");
    FEATURE("sha_ni", "sha");
    return t_end();
}
