/* Bench guest: argv[1] getppid round trips, then exit_group(0). */
__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n hlt\n");
void cmain(long *sp) {
    const char *s = ((char **)(sp + 1))[1];
    long n = 0, r;
    while (*s) n = n * 10 + (*s++ - '0');
    for (long i = 0; i < n; i++)
        __asm__ volatile("syscall" : "=a"(r) : "a"(110L) : "rcx", "r11", "memory");
    __asm__ volatile("syscall" : : "a"(231L), "D"(0L) : "rcx", "r11", "memory");
}
