/* Bench guest: as init, sync and power the instance off at once (boot plus
 * shutdown time). Refuses to do anything unless it is pid 1, so running it
 * on the host by mistake cannot power the host off. */
#include <stdio.h>
#include <unistd.h>
#include <sys/reboot.h>

int main(void)
{
    if (getpid() != 1) {
        fprintf(stderr, "b_poweroff: not pid 1, refusing\n");
        return 2;
    }
    sync();
    reboot(RB_POWER_OFF);
    perror("reboot");
    return 1;
}
