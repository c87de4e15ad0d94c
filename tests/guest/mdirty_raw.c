/* Guest helper (no libc), for the mconsole sysrq test: maps /root/m shared,
 * writes a line into the mapping and waits forever. The page stays dirty in
 * the guest's page cache (nothing but a sync writes it to the disk), so a
 * SIGKILL of umlrun loses it unless something synced. */
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    long r;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

__asm__(".globl _start\n_start:\n and $-16, %rsp\n call cmain\n hlt\n");

void cmain(void) {
    static const char msg[] = "dirty-by-mmap\n";
    long fd = sys6(2, (long)"/root/m", 02 | 0100 | 01000, 0644, 0, 0, 0); /* open O_RDWR|O_CREAT|O_TRUNC */
    if (fd < 0) sys6(231, 1, 0, 0, 0, 0, 0);
    if (sys6(77, fd, 4096, 0, 0, 0, 0) < 0) sys6(231, 2, 0, 0, 0, 0, 0); /* ftruncate */
    char *p = (char *)sys6(9, 0, 4096, 3, 1, fd, 0); /* mmap RW, MAP_SHARED */
    if ((long)p < 0 && (long)p > -4096) sys6(231, 3, 0, 0, 0, 0, 0);
    for (unsigned i = 0; i < sizeof msg - 1; i++) p[i] = msg[i];
    sys6(1, 1, (long)"mapped\n", 7, 0, 0, 0);
    for (;;) sys6(34, 0, 0, 0, 0, 0, 0); /* pause */
}
