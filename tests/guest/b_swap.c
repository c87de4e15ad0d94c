/* Bench guest: swap throughput. Run as init by scripts/bench with a swap
 * disk as /dev/ubdb and a host budget smaller than what it touches
 * (host_mem_max=64M, mem=256M). Writes Linux's swap header on the disk
 * (as mkswap), swapon, then writes a word in every page of 192 MiB
 * (swapping out as it goes) and reads every page back (swapping in).
 * MB/s = pages the pass moved (/proc/vmstat pswpout, pswpin) * 4096 /
 * 10^6 / the pass's wall time. Prints `swap_out <MB/s> MB/s` and
 * `swap_in <MB/s> MB/s`; exits 1 if a page reads back wrong.
 * Natively (`scripts/bench --native-swap`, as root) the bench has made and
 * swapon'd a swap file and runs this in a memory cgroup of the same
 * 64 MiB: `--native` leaves /proc, mkswap, swapon and swapoff alone
 * (pswpout/pswpin are then the host's: the bench's file is its only swap).
 *   b_swap [DEVICE]   (default /dev/ubdb)
 *   b_swap --native */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <time.h>
#include <unistd.h>

#define MIB 192

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long vmstat(const char *key)
{
    FILE *f = fopen("/proc/vmstat", "r");
    if (!f)
        return -1;
    char k[64];
    long v, r = -1;
    while (fscanf(f, "%63s %ld", k, &v) == 2)
        if (strcmp(k, key) == 0)
            r = v;
    fclose(f);
    return r;
}

static int mkswap(const char *dev)
{
    int fd = open(dev, O_RDWR);
    if (fd < 0) {
        perror("b_swap: open");
        return -1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    static unsigned char page[4096];
    uint32_t v[3] = {1, (uint32_t)(size / 4096 - 1), 0};
    memcpy(page + 1024, v, sizeof v);
    memcpy(page + 4096 - 10, "SWAPSPACE2", 10);
    int r = pwrite(fd, page, sizeof page, 0) == sizeof page ? 0 : -1;
    fsync(fd);
    close(fd);
    return r;
}

int main(int argc, char **argv)
{
    const char *dev = argc > 1 ? argv[1] : "/dev/ubdb";
    int native = strcmp(dev, "--native") == 0;
    if (!native) {
        mkdir("/proc", 0555);
        mount("proc", "/proc", "proc", 0, NULL);
        if (mkswap(dev) != 0 || swapon(dev, 0) != 0) {
            perror("b_swap: swapon");
            return 1;
        }
    }
    size_t pages = (size_t)MIB << 8;
    uint64_t *mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("b_swap: mmap");
        return 1;
    }
    long out0 = vmstat("pswpout");
    double t0 = now_s();
    for (size_t p = 0; p < pages; p++)
        mem[p * 512] = p * 0x9e3779b97f4a7c15ULL;
    double t1 = now_s();
    long out1 = vmstat("pswpout"), in1 = vmstat("pswpin");
    for (size_t p = 0; p < pages; p++)
        if (mem[p * 512] != p * 0x9e3779b97f4a7c15ULL) {
            printf("b_swap: page %zu read back wrong\n", p);
            return 1;
        }
    double t2 = now_s();
    long in2 = vmstat("pswpin");
    if (out0 < 0 || out1 <= out0 || in2 <= in1) {
        printf("b_swap: no swap traffic (pswpout %ld..%ld, pswpin %ld..%ld)\n", out0, out1, in1,
               in2);
        return 1;
    }
    printf("swap_out %.1f MB/s\n", (out1 - out0) * 4096 / 1e6 / (t1 - t0));
    printf("swap_in %.1f MB/s\n", (in2 - in1) * 4096 / 1e6 / (t2 - t1));
    fflush(stdout);
    if (!native)
        swapoff(dev);
    return 0;
}
