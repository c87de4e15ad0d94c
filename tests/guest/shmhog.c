/* shmhog: a SysV shm segment of SHM MiB written with a pattern and
 * detached, then HOG MiB of anonymous memory touched (memory pressure),
 * then the segment attached again and every page checked. Prints the
 * segment's swap bytes from /proc/sysvipc/shm before attaching again
 * ("shmhog: swap N") and "shmhog: ok", or names the first bad page and
 * exits 1. Used by tests/overcommit.rs.
 *   shmhog SHM_MIB HOG_MIB */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

static uint64_t pattern(uint64_t page) { return page * 0x9e3779b97f4a7c15ULL ^ 0x5348; }

static long long shm_swap(int id)
{
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    if (!f)
        return -1;
    char line[512];
    long long r = -1;
    while (fgets(line, sizeof line, f)) {
        long long v[16];
        int key, shmid;
        unsigned perms;
        if (sscanf(line, "%d %d %o %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
                   &key, &shmid, &perms, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                   &v[8], &v[9], &v[10], &v[11], &v[12]) == 16 && shmid == id)
            r = v[12];
    }
    fclose(f);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: shmhog SHM_MIB HOG_MIB\n");
        return 2;
    }
    size_t len = strtoull(argv[1], NULL, 0) << 20, hog = strtoull(argv[2], NULL, 0) << 20;
    int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
    if (id < 0) {
        perror("shmhog: shmget");
        return 2;
    }
    uint64_t *p = shmat(id, NULL, 0);
    if (p == (void *)-1) {
        perror("shmhog: shmat");
        return 2;
    }
    for (size_t i = 0; i < len / 4096; i++)
        p[i * 512] = pattern(i);
    shmdt(p);
    volatile char *h = mmap(NULL, hog, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h == MAP_FAILED) {
        perror("shmhog: mmap");
        return 2;
    }
    for (size_t i = 0; i < hog; i += 4096)
        h[i] = 1;
    printf("shmhog: swap %lld\n", shm_swap(id));
    p = shmat(id, NULL, SHM_RDONLY);
    for (size_t i = 0; i < len / 4096; i++)
        if (p[i * 512] != pattern(i)) {
            printf("shmhog: page %zu bad\n", i);
            return 1;
        }
    shmdt(p);
    shmctl(id, IPC_RMID, NULL);
    printf("shmhog: ok\n");
    return 0;
}
