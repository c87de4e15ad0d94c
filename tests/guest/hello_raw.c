/* Guest test: no libc. Prints its argc/argv[1] and a bss-built line via raw
 * write(2), then exit_group(7). _start passes the initial rsp to cmain. */
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
static char line[64]; /* bss */
static unsigned long len(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static void out(const char *s) { sys3(1, 1, (long)s, (long)len(s)); }

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n hlt\n");

void cmain(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    out("hello from the guest\n");
    line[0] = 'a'; line[1] = 'r'; line[2] = 'g'; line[3] = 'c'; line[4] = '=';
    line[5] = (char)('0' + argc); line[6] = '\n';
    out(line);
    if (argc > 1) { out(argv[1]); out("\n"); }
    sys3(231, 7, 0, 0);
}
