/* Single syscalls the fuzzer (tests/guest/fuzz_syscalls.c) found taking
 * umlrun down or leaving a process that could not be killed; each case
 * names what went wrong before the fix. */
#include "t_common.h"
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>

/* clone(CLONE_SETTLS) with a non-canonical TLS base: the host refused the
 * child's fs_base at the first switch (stub failed, a process that never
 * died). Linux: EPERM. */
static void clone_bad_tls(void) {
    errno = 0;
    long r = syscall(SYS_clone, CLONE_SETTLS | SIGCHLD, 0, 0, 0, 0x3342c78ec5cd322L);
    if (r == 0) _exit(0);
    CHECK(r < 0 && errno == EPERM, "clone SETTLS non-canonical: EPERM");
    if (r > 0) t_wait((pid_t)r);
    errno = 0;
    r = syscall(SYS_clone, CLONE_SETTLS | SIGCHLD, 0, 0, 0, 0x7ffffffff000L);
    if (r == 0) _exit(0);
    CHECK(r < 0 && errno == EPERM, "clone SETTLS at TASK_SIZE_MAX: EPERM");
    if (r > 0) t_wait((pid_t)r);
    /* Flag combinations Linux refuses before creating anything. */
    errno = 0;
    r = syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    CHECK(r < 0 && errno == EINVAL, "clone SIGHAND without VM: EINVAL");
    errno = 0;
    r = syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    CHECK(r < 0 && errno == EINVAL, "clone NEWNS with FS: EINVAL");
}

/* munmap over everything: the host unmap once covered the stub's own
 * pages between the guest's mappings and was refused (SIGKILL and an
 * unlimited error log line). Linux: the process loses its code and dies
 * of SIGSEGV. Past TASK_SIZE: EINVAL. */
static void munmap_everything(void) {
    errno = 0;
    CHECK(syscall(SYS_munmap, 0x100000000L, 0xe21c000000000000UL) < 0 && errno == EINVAL,
          "munmap past TASK_SIZE: EINVAL");
    pid_t c = fork();
    if (c == 0) {
        syscall(SYS_munmap, 0, 0x7ffffffff000UL);
        _exit(0);
    }
    const char *how = t_wait(c);
    CHECK(strcmp(how, "killed by SEGV") == 0, "munmap(0, TASK_SIZE): %s", how);
}

/* Signals need permission: an unprivileged process may signal only its
 * own uid's processes (EPERM otherwise), whichever call it uses. Once any
 * process could signal any other, init included. */
static void signal_permission(void) {
    pid_t victim = fork();
    if (victim == 0) {
        pause();
        _exit(0);
    }
    pid_t c = fork();
    if (c == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(9);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = SIGTERM;
        si.si_code = SI_QUEUE;
        int bad = 0;
        errno = 0;
        bad |= !(kill(victim, SIGTERM) < 0 && errno == EPERM) << 0;
        errno = 0;
        bad |= !(kill(victim, 0) < 0 && errno == EPERM) << 1;
        errno = 0;
        bad |= !(syscall(SYS_tkill, victim, SIGTERM) < 0 && errno == EPERM) << 2;
        errno = 0;
        bad |= !(syscall(SYS_tgkill, victim, victim, SIGTERM) < 0 && errno == EPERM) << 3;
        errno = 0;
        bad |= !(syscall(SYS_rt_sigqueueinfo, victim, SIGTERM, &si) < 0 && errno == EPERM) << 4;
        /* Its own process is fine. */
        bad |= !(kill(getpid(), 0) == 0) << 5;
        _exit(bad);
    }
    const char *how = t_wait(c);
    CHECK(strcmp(how, "exited 0") == 0, "uid 1000 signalling root's process: EPERM every way (%s)", how);
    kill(victim, SIGKILL);
    CHECK(strcmp(t_wait(victim), "killed by KILL") == 0, "root's process still there for root to kill");
}

/* clone(CLONE_PARENT_SETTID) with a bad address: the child was made,
 * then clone returned EFAULT, and the child was never run nor reaped
 * (its parent's waitpid blocked forever). Linux ignores the address. */
static void clone_bad_parent_tid(void) {
    long r = syscall(SYS_clone, CLONE_PARENT_SETTID | SIGCHLD, 0, 8L, 0, 0);
    if (r == 0) _exit(3);
    CHECK(r > 0, "clone PARENT_SETTID at a bad address: the child is made");
    if (r > 0) CHECK(strcmp(t_wait((pid_t)r), "exited 3") == 0, "and runs, and is reaped");
}

/* pwrite of 0 bytes at a page boundary of a cached file: the page cache
 * update ran a range backwards (a panic; contained, the caller killed). */
static void pwrite_zero_at_page(void) {
    int fd = open("pz", O_CREAT | O_RDWR | O_TRUNC, 0644);
    char page[4096];
    memset(page, 'p', sizeof page);
    for (int i = 0; i < 3; i++)
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) break;
    CHECK(pread(fd, page, sizeof page, 4096) == 4096, "pread a cached page");
    CHECK(pwrite(fd, page, 0, 0x2000) == 0, "pwrite 0 bytes at a page boundary: 0");
    CHECK(pwrite(fd, page, 0, 0x1000) == 0 && pread(fd, page, 1, 0x1000) == 1 && page[0] == 'p',
          "and the file is unchanged");
    close(fd);
    unlink("pz");
}

/* Writing to the program a process runs (seed 345, ubd=mmap): a batch
 * child opened /tests/fuzz_syscalls O_WRONLY|O_TRUNC and emptied it, and
 * every child forked after died of SIGBUS at its first text page not yet
 * read in. Linux refuses write access to a running program: ETXTBSY for
 * open for writing, O_TRUNC and truncate, and the program keeps running. */
static void write_running_program(const char *self) {
    pid_t c = fork();
    if (c == 0) {
        int bad = 0;
        errno = 0;
        bad |= !(open(self, O_WRONLY | O_TRUNC) < 0 && errno == ETXTBSY) << 0;
        errno = 0;
        bad |= !(open(self, O_RDWR) < 0 && errno == ETXTBSY) << 1;
        errno = 0;
        bad |= !(truncate(self, 0) < 0 && errno == ETXTBSY) << 2;
        _exit(bad);
    }
    const char *how = t_wait(c);
    CHECK(strcmp(how, "exited 0") == 0, "write access to the running program: ETXTBSY (%s)", how);
    struct stat st;
    CHECK(stat(self, &st) == 0 && st.st_size > 4096, "the program keeps its size");
    c = fork();
    if (c == 0) _exit(7);
    CHECK(strcmp(t_wait(c), "exited 7") == 0, "a child forked after runs");
}

int main(int argc, char **argv) {
    (void)argc;
    static char self[4096];
    if (!realpath(argv[0], self)) snprintf(self, sizeof self, "%s", argv[0]);
    t_begin("t_fuzz_found");
    write_running_program(self);
    clone_bad_tls();
    munmap_everything();
    clone_bad_parent_tid();
    pwrite_zero_at_page();
    signal_permission();
    return t_end();
}
