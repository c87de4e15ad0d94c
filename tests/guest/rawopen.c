/* Guest test: raw open(2) of a host path and an O_CREAT of argv[1]; prints
 * what the "kernel" returned. Under umlrun nothing reaches the host. */
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
static void out_num(long v) {
    char b[24]; int i = 23; int neg = v < 0;
    b[i--] = '\n';
    if (neg) v = -v;
    do { b[i--] = (char)('0' + v % 10); v /= 10; } while (v);
    if (neg) b[i--] = '-';
    sys3(1, 1, (long)(b + i + 1), 23 - i);
}
__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n hlt\n");
void cmain(long *sp) {
    char **argv = (char **)(sp + 1);
    out_num(sys3(2, (long)"/etc/hostname", 0, 0));
    out_num(sys3(2, (long)argv[1], 0101 /* O_WRONLY|O_CREAT */, 0644));
    sys3(231, 0, 0, 0);
}
