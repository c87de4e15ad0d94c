/* Guest program for the host-memory check: allocates and touches 128 MiB
 * with mmap, frees it, prints "done". Under umlrun the harness compares the
 * memfd's resident size before and after (run with mem=256M). */
#include "t_common.h"
#include <sys/mman.h>

#define SIZE (128UL << 20)

int main(void) {
    t_begin("t_mem_return");
    unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap 128 MiB");
    for (size_t i = 0; i < SIZE; i += 4096) p[i] = (unsigned char)(i >> 12);
    int ok = 1;
    for (size_t i = 0; i < SIZE; i += 4096) ok &= p[i] == (unsigned char)(i >> 12);
    CHECK(ok, "every page touched and read back");
    CHECK(munmap(p, SIZE) == 0, "munmap 128 MiB");
    SAY("done\n");
    return t_end();
}
