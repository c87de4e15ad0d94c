/* Bench guest: the smallest static program, exit(0) at once (the exec
 * target of b_forkexec). Built with -nostdlib. */
__asm__(".globl _start\n_start:\n mov $60, %eax\n xor %edi, %edi\n syscall\n hlt\n");
