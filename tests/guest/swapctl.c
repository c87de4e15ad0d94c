/* swapctl: swapon(2)/swapoff(2) with a priority, which busybox's swapon
 * cannot give. Prints "ok" or the errno's strerror text and exits 1.
 * Used by tests/swapfile.rs.
 *   swapctl on PATH [PRIO]
 *   swapctl off PATH
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: swapctl on PATH [PRIO] | off PATH\n");
        return 2;
    }
    int r;
    if (strcmp(argv[1], "on") == 0) {
        int flags = 0;
        if (argc > 3)
            flags = SWAP_FLAG_PREFER | ((atoi(argv[3]) << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
        r = swapon(argv[2], flags);
    } else if (strcmp(argv[1], "off") == 0) {
        r = swapoff(argv[2]);
    } else {
        fprintf(stderr, "swapctl: %s?\n", argv[1]);
        return 2;
    }
    if (r != 0) {
        printf("swapctl %s %s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}
