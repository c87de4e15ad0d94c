/* A random-syscall fuzzer, run as init (pid 1) under umlrun by
 * scripts/fuzz-syscalls and tests/hardening.rs (fuzz_syscalls_slice). As
 * any other pid it refuses to run unless given -u: natively it would make
 * random host syscalls, and its sweep (kill(-1, SIGKILL)) would kill every
 * process its user may signal.
 *
 * `fuzz_syscalls -u SEED COUNT CALLS`: the unprivileged mode, for a
 * process that is not init (tests/hardening.rs, stress_at_64m). It runs
 * only under umlrun (uname's version says so) and only as a non-root uid
 * that nothing else uses: every batch runs as that uid, none as root, and
 * the sweep's kill(-1) then reaches only the fuzzer's own processes.
 *
 * Input: one line on stdin (the console), "SEED COUNT CALLS [v]": seeds
 * SEED..SEED+COUNT-1, CALLS syscalls each; "v" prints every call before it
 * is made (to reproduce a panic: the last line names it). Without a line
 * within 5 s: "1 1 10000".
 *
 * Each seed runs in batches. A batch is one child process (its own session)
 * that opens a pool of fds (files, a directory, pipes, a socketpair, a
 * listening unix socket, eventfd, epoll, /proc and /dev files), maps a
 * buffer between guard pages, a read-only page and a shared file page,
 * fills the buffer with boundary words (pointers, lengths, times), then
 * makes up to BATCH random syscalls: numbers 0..463 (sometimes anything),
 * each argument drawn from small ints, fds, good, read-only, unmapped,
 * kernel, non-canonical and stub-page pointers, huge and negative lengths,
 * random flags and plain random words. Three batches in four run as uid
 * 1000 (the attacker's view); one in four as root, without reboot, exec or
 * writes to /tests. A SIGALRM itimer (re-armed every 16 calls) interrupts
 * calls that would block. A child made by fork/vfork/clone exits at once
 * (asm below), so nothing runs on a borrowed stack.
 *
 * The parent (init) waits for each batch with a time limit, kills the
 * child's session and then every process (kill(-1, SIGKILL)) and reaps
 * them all. A process that does not die after SIGKILL is a kernel bug: the
 * fuzzer says "STUCK" and exits 3. Output per seed: calls made, batches,
 * how batch children ended; last line "fuzz: done ..." and exit 0. The
 * call count comes from a shared page the child updates before each call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define BATCH 400          /* syscalls per child */
#define BUF_PAGES 16       /* the read-write buffer */
#define MAX_NR 464         /* syscall numbers drawn from 0..MAX_NR-1 */
#define BATCH_SECONDS 2    /* a child taking longer is killed */
#define REAP_SECONDS 10    /* after SIGKILL, every process must be gone by then */

/* fz_syscall(nr, a0..a5): the raw syscall. In a new process or thread
 * made by fork, vfork, clone or clone3 (rax 0 in the child) it calls exit
 * at once: the child may be on a random stack or share the parent's. */
long fz_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
__asm__(".text\n"
        ".globl fz_syscall\n"
        "fz_syscall:\n"
        "  push %r12\n"
        "  mov %rdi, %r12\n"
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n"
        "  mov %r9, %r8\n"
        "  mov 16(%rsp), %r9\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  cmp $56, %r12\n"  /* clone */
        "  je 2f\n"
        "  cmp $57, %r12\n"  /* fork */
        "  je 2f\n"
        "  cmp $58, %r12\n"  /* vfork */
        "  je 2f\n"
        "  cmp $435, %r12\n" /* clone3 */
        "  je 2f\n"
        "1:\n"
        "  pop %r12\n"
        "  ret\n"
        "2:\n"
        "  mov $60, %eax\n" /* exit(0): this thread only */
        "  xor %edi, %edi\n"
        "  syscall\n"
        "  hlt\n");

/* ---- the random source: splitmix64, one stream per (seed, batch) ------ */
static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- what the child shares with init -------------------------------- */
struct shared {
    volatile uint64_t calls;   /* calls started in this batch */
    volatile long last[7];     /* the call in flight: nr, args */
};
static struct shared *sh;

/* ---- the child's pools ---------------------------------------------- */
static int fds[32];
static int nfds;
static char *buf;     /* BUF_PAGES read-write pages between PROT_NONE guards */
static char *ro;      /* one read-only page */
static char *shm;     /* a MAP_SHARED page of /tmp/fz/file */
static char *paths;   /* path strings, not in the pointer pool */
static int as_root;
static int verbose;
static int unpriv; /* -u: already a non-root uid, no root batches */
#define VERBOSE_FD 1023 /* the console in a verbose child (random fds rarely reach it) */

static const char *const PATHS[] = {
    "/tmp/fz/file", "/tmp/fz/dir", "/tmp/fz/new", "/tmp/fz/link", "/tmp/fz/fifo",
    "/tmp/fz", "/", ".", "..", "", "/proc/self/maps", "/proc/self/status",
    "/proc/self/fd/3", "/proc/1/status", "/proc/self/mem", "/dev/null", "/dev/zero",
    "/etc/passwd", "/nonexistent/x", "/tmp/fz/file/x", "/tmp/fz/../fz/./file",
    "/tmp/fz/elf", "/tmp/fz/script", "/tmp/fz/dir/sub", "/tmp", "/proc", "/dev",
    "/tests/fuzz_syscalls", "LONGNAME", "LONGPATH",
};
#define NPATHS (sizeof PATHS / sizeof PATHS[0])

/* A path string in the paths page (written fresh for each use). */
static uint64_t path_arg(void) {
    size_t i = below(NPATHS);
    const char *p = PATHS[i];
    if (as_root && strncmp(p, "/tests/", 7) == 0) p = "/tmp/fz/new";
    char *dst = paths + (below(4) * 1024);
    if (strcmp(p, "LONGNAME") == 0) {
        strcpy(dst, "/tmp/fz/");
        memset(dst + 8, 'n', 300);
        dst[308] = 0;
    } else if (strcmp(p, "LONGPATH") == 0) {
        /* No terminating NUL before the end of the page: the kernel must
         * stop at PATH_MAX or at the unmapped page after it. */
        char *end = paths + 3 * PG;
        dst = end - PG;
        memset(dst, 'a', PG);
        for (size_t j = 0; j < PG; j += 8) dst[j] = '/';
    } else {
        strcpy(dst, p);
    }
    return (uint64_t)dst;
}

static const uint64_t BOUNDARY[] = {
    0, 1, 2, 7, 8, 15, 16, 63, 64, 127, 128, 255, 256, 4095, 4096, 4097, 65535, 65536,
    0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
    0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xffffffffffffffffULL,
    0xfffffffffffff000ULL, 0xfffffffffffffffeULL, 0xffffffff80000000ULL,
    0x00007ffffffff000ULL, 0x0000800000000000ULL, 0x00007fffffffffffULL,
    0xffff800000000000ULL, 0xffffffff81000000ULL, 0x7ffffc001000ULL, 0x7ffffc000000ULL,
    0x7ffffc004ff8ULL, (uint64_t)-4096, (uint64_t)-1000000000LL, 999999999, 1000000000,
};
#define NBOUNDARY (sizeof BOUNDARY / sizeof BOUNDARY[0])

/* A pointer, good or bad. */
static uint64_t ptr_arg(void) {
    switch (below(16)) {
    case 0: case 1: case 2: case 3:
        return (uint64_t)buf + below(BUF_PAGES * PG);
    case 4:
        return (uint64_t)buf + (below(4) ? 0 : below(64) * 8);
    case 5: /* straddles into the guard page after the buffer */
        return (uint64_t)buf + BUF_PAGES * PG - 1 - below(64);
    case 6:
        return (uint64_t)ro + below(PG);
    case 7:
        return (uint64_t)shm + below(PG);
    case 8:
        return (uint64_t)buf - PG + below(PG); /* the guard before */
    case 9:
        return below(3) * 8; /* NULL and near it */
    case 10:
        return path_arg();
    case 11:
        return 0x7ffffc000000ULL + below(6) * PG + below(PG); /* the stub's pages */
    case 12:
        return 0x00007ffffffff000ULL + below(PG);
    default:
        return BOUNDARY[below(NBOUNDARY)] + (below(2) ? 0 : below(64));
    }
}

static uint64_t len_arg(void) {
    switch (below(6)) {
    case 0: return below(17);
    case 1: return below(BUF_PAGES * PG + 1);
    case 2: return 1ULL << below(64);
    case 3: return (1ULL << below(64)) - 1;
    default: return BOUNDARY[below(NBOUNDARY)];
    }
}

static uint64_t fd_arg(void) {
    switch (below(8)) {
    case 0: case 1: case 2: case 3:
        return nfds ? (uint64_t)fds[below(nfds)] : 0;
    case 4: return below(3);
    case 5: return (uint64_t)(int64_t)-100 + below(2) * 99 + (below(4) ? 0 : 1); /* AT_FDCWD, -1 */
    case 6: return below(1100);
    default: return BOUNDARY[below(NBOUNDARY)];
    }
}

static uint64_t flags_arg(void) {
    switch (below(5)) {
    case 0: return 0;
    case 1: return 1ULL << below(32);
    case 2: return rnd() & 0xffffffff;
    case 3: return rnd() & rnd() & 0xfff;
    default: return rnd();
    }
}

static uint64_t any_arg(void) {
    switch (below(10)) {
    case 0: case 1: return ptr_arg();
    case 2: case 3: return len_arg();
    case 4: case 5: return fd_arg();
    case 6: return flags_arg();
    case 7: return (uint64_t)-(int64_t)below(5);
    case 8: return below(2) ? (uint64_t)getpid() : below(40);
    default: return rnd();
    }
}

/* Fill part of the buffer with words a struct argument might hold:
 * pointers, lengths, times (INT64_MAX seconds), fds, flags. */
static void refill(size_t words) {
    uint64_t *w = (uint64_t *)buf;
    size_t n = BUF_PAGES * PG / 8;
    for (size_t i = 0; i < words; i++) {
        size_t j = below(n);
        switch (below(4)) {
        case 0: w[j] = ptr_arg(); break;
        case 1: w[j] = len_arg(); break;
        case 2: w[j] = any_arg(); break;
        default: w[j] = rnd(); break;
        }
    }
}

static void on_alarm(int sig) { (void)sig; }

static void arm_alarm(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Numbers the child never calls: reboot ends the instance by design; as
 * root, exec could run anything and kill(1) is init's to survive. */
static int denied(long nr) {
    if (nr == SYS_reboot) return 1;
    if (as_root && (nr == SYS_execve || nr == SYS_execveat)) return 1;
    return 0;
}

static void add_fd(int fd) {
    if (fd >= 0 && nfds < (int)(sizeof fds / sizeof fds[0])) fds[nfds++] = fd;
}

/* A file with a broken ELF header (a mutation of this program's own) and
 * a script naming a missing interpreter: exec targets. */
static void write_exec_targets(void) {
    char hdr[512];
    int self = open("/tests/fuzz_syscalls", O_RDONLY);
    ssize_t n = self >= 0 ? read(self, hdr, sizeof hdr) : -1;
    if (self >= 0) close(self);
    if (n != (ssize_t)sizeof hdr) return;
    for (int i = 0; i < 1 + (int)below(8); i++) {
        size_t at = below(2) ? below(64) : below(sizeof hdr);
        hdr[at] = (char)(below(2) ? rnd() : BOUNDARY[below(NBOUNDARY)]);
    }
    int fd = open("/tmp/fz/elf", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    if (fd >= 0) {
        if (write(fd, hdr, sizeof hdr) < 0) { /* nothing to do */ }
        close(fd);
    }
    fd = open("/tmp/fz/script", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    if (fd >= 0) {
        if (write(fd, "#!/tmp/fz/elf arg\n", 18) < 0) { /* nothing to do */ }
        close(fd);
    }
}

static void child_setup(void) {
    setsid();
    if (verbose) dup2(1, VERBOSE_FD); /* init's console, for the call log */
    for (int fd = 0; fd < 64; fd++) close(fd);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(null, 2);
    if (as_root) {
        write_exec_targets();
    } else {
        if (!unpriv && (setgid(1000) != 0 || setuid(1000) != 0)) _exit(90);
        mkdir("/tmp/fz/u", 0777);
        mkdir("/tmp/fz/u/dir", 0777);
    }
    const char *dir = as_root ? "/tmp/fz" : "/tmp/fz/u";
    if (chdir(dir) != 0) _exit(91);
    nfds = 0;
    add_fd(0);
    add_fd(open("file", O_CREAT | O_RDWR, 0666));
    if (ftruncate(fds[1], 3 * PG) != 0) { /* a size the maps need */ }
    add_fd(open("file", O_RDONLY));
    add_fd(open("dir", O_RDONLY | O_DIRECTORY));
    add_fd(open("/proc/self/maps", O_RDONLY));
    add_fd(open("/proc", O_RDONLY | O_DIRECTORY));
    add_fd(open("/dev/zero", O_RDWR));
    add_fd(open("/etc/passwd", O_RDONLY));
    int p[2];
    if (pipe2(p, below(2) ? O_NONBLOCK : 0) == 0) { add_fd(p[0]); add_fd(p[1]); }
    if (socketpair(AF_UNIX, below(2) ? SOCK_STREAM : SOCK_DGRAM, 0, p) == 0) { add_fd(p[0]); add_fd(p[1]); }
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    if (ls >= 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "sock%d", getpid());
        unlink(a.sun_path);
        if (bind(ls, (struct sockaddr *)&a, sizeof a) == 0) listen(ls, 4);
        add_fd(ls);
    }
    add_fd(socket(AF_UNIX, SOCK_DGRAM, 0));
    add_fd((int)syscall(SYS_eventfd2, 0, 0));
    int ep = (int)syscall(SYS_epoll_create1, 0);
    add_fd(ep);
    if (ep >= 0 && nfds > 9) {
        struct { uint32_t ev; uint64_t data; } __attribute__((packed)) e = {1 | 4, 7};
        syscall(SYS_epoll_ctl, ep, 1, fds[8], &e);
    }
    mkfifo("fifo", 0666);
    add_fd(open("fifo", O_RDWR | O_NONBLOCK));
    symlink("file", "link");

    char *area = mmap(NULL, (BUF_PAGES + 2) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) _exit(92);
    buf = area + PG;
    if (mprotect(buf, BUF_PAGES * PG, PROT_READ | PROT_WRITE) != 0) _exit(93);
    ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    shm = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
    if (shm == MAP_FAILED) shm = ro;
    char *parea = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (parea == MAP_FAILED || mprotect(parea, 3 * PG, PROT_READ | PROT_WRITE) != 0) _exit(94);
    paths = parea;
    for (size_t i = 0; i < BUF_PAGES * PG; i++) buf[i] = (char)rnd();
    refill(2048);
    arm_alarm();
}

static void child(uint64_t seed, uint64_t batch, uint64_t calls) {
    rng_state = seed * 0x100000001b3ULL ^ (batch + 1) * 0xcbf29ce484222325ULL;
    as_root = !unpriv && below(4) == 0;
    child_setup();
    for (uint64_t i = 0; i < calls; i++) {
        if (i % 16 == 15) {
            arm_alarm();
            refill(64);
        }
        long nr;
        switch (below(64)) {
        case 0: nr = (long)rnd(); break;
        case 1: nr = (long)(0x40000000 | below(MAX_NR)); break;
        case 2: nr = (long)below(1024); break;
        default: nr = (long)below(MAX_NR); break;
        }
        if (denied(nr)) continue;
        long a[6];
        for (int j = 0; j < 6; j++) a[j] = (long)any_arg();
        /* Paths where a path is likely wanted: the first argument of the
         * path calls, the second of the *at calls. */
        if (below(3) == 0) a[below(2)] = (long)path_arg();
        sh->last[0] = nr;
        for (int j = 0; j < 6; j++) sh->last[j + 1] = a[j];
        sh->calls = i + 1;
        if (verbose) {
            char line[200];
            int n = snprintf(line, sizeof line, "fz %lu.%lu.%lu: %ld(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n",
                             (unsigned long)seed, (unsigned long)batch, (unsigned long)i, nr,
                             a[0], a[1], a[2], a[3], a[4], a[5]);
            if (write(VERBOSE_FD, line, (size_t)n) < 0) { /* nothing to do */ }
        }
        fz_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    _exit(0);
}

/* ---- init: run the batches ------------------------------------------ */
static volatile sig_atomic_t alarmed;
static void on_parent_alarm(int sig) { (void)sig; alarmed = 1; }

/* Kill every other process and reap them all. 0 when none is left within
 * REAP_SECONDS. */
static int sweep(void) {
    kill(-1, SIGKILL);
    alarmed = 0;
    alarm(REAP_SECONDS);
    for (;;) {
        pid_t r = waitpid(-1, NULL, __WALL);
        if (r > 0) continue;
        if (errno == ECHILD) break;
        if (errno == EINTR && alarmed) {
            alarm(0);
            return -1;
        }
        kill(-1, SIGKILL);
    }
    alarm(0);
    return 0;
}

/* What is left after a failed sweep: /proc/<pid>/stat of each. */
static void show_leftovers(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || strcmp(e->d_name, "1") == 0) continue;
        char path[300], line[256] = {0};
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, line, sizeof line - 1) : -1;
        if (fd >= 0) close(fd);
        printf("fuzz:   left: %s\n", n > 0 ? line : e->d_name);
    }
    if (d) closedir(d);
}

struct tally {
    uint64_t calls, batches, exited, signaled, timeouts;
    int last_status;
    uint64_t by_sig[65];
};

/* A root batch may have changed the scratch directories (chmod, rename,
 * rmdir): put them back before each batch. */
static void restore_scratch(void) {
    mkdir("/tmp/fz", 01777);
    chmod("/tmp/fz", 01777);
    mkdir("/tmp/fz/dir", 0777);
    mkdir("/tmp/fz/u", 0777);
    chown("/tmp/fz/u", 1000, 1000);
    chmod("/tmp/fz/u", 0777);
}

static int run_batch(uint64_t seed, uint64_t batch, uint64_t calls, struct tally *t) {
    restore_scratch();
    sh->calls = 0;
    pid_t pid = fork();
    if (pid < 0) {
        printf("fuzz: fork failed: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        child(seed, batch, calls);
    }
    int st = 0;
    alarmed = 0;
    alarm(BATCH_SECONDS);
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR && !alarmed);
    alarm(0);
    if (r != pid) {
        t->timeouts++;
        printf("fuzz: seed %lu batch %lu: timed out after %lu calls; in flight: %ld(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n",
               (unsigned long)seed, (unsigned long)batch, (unsigned long)sh->calls, sh->last[0],
               sh->last[1], sh->last[2], sh->last[3], sh->last[4], sh->last[5], sh->last[6]);
        kill(pid, SIGKILL);
    } else if (WIFSIGNALED(st)) {
        t->last_status = st;
        t->signaled++;
        t->by_sig[WTERMSIG(st) & 63]++;
    } else {
        t->last_status = st;
        t->exited++;
    }
    t->calls += sh->calls;
    t->batches++;
    if (sweep() != 0) {
        printf("fuzz: STUCK: seed %lu batch %lu: processes still alive %d s after SIGKILL\n",
               (unsigned long)seed, (unsigned long)batch, REAP_SECONDS);
        show_leftovers();
        return -1;
    }
    return 0;
}

static void read_params(uint64_t *seed, uint64_t *count, uint64_t *calls) {
    *seed = 1;
    *count = 1;
    *calls = 10000;
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return;
    char line[128] = {0};
    ssize_t n = read(0, line, sizeof line - 1);
    if (n <= 0) return;
    unsigned long long s, c, k;
    char v[4] = {0};
    int got = sscanf(line, "%llu %llu %llu %3s", &s, &c, &k, v);
    if (got >= 3) {
        *seed = s;
        *count = c;
        *calls = k;
    }
    verbose = got == 4 && v[0] == 'v';
}

/* -u's checks: under umlrun, not root. */
static int unpriv_allowed(void) {
    struct utsname u;
    if (uname(&u) != 0 || strstr(u.version, "umlrun") == NULL) {
        fprintf(stderr, "fuzz_syscalls -u: runs only under umlrun (it makes random syscalls)\n");
        return 0;
    }
    if (getuid() == 0 || geteuid() == 0) {
        fprintf(stderr, "fuzz_syscalls -u: runs only as a non-root uid of its own\n");
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    unpriv = argc == 5 && strcmp(argv[1], "-u") == 0;
    if (unpriv ? !unpriv_allowed() : getpid() != 1) {
        if (!unpriv)
            fprintf(stderr, "fuzz_syscalls: runs only as init under umlrun (it makes random syscalls); see -u\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_parent_alarm;
    sigaction(SIGALRM, &sa, NULL);
    uint64_t seed0, count, calls;
    if (unpriv) {
        seed0 = strtoull(argv[2], NULL, 0);
        count = strtoull(argv[3], NULL, 0);
        calls = strtoull(argv[4], NULL, 0);
    } else {
        read_params(&seed0, &count, &calls);
    }
    printf("fuzz: seeds %lu..%lu, %lu calls each%s\n", (unsigned long)seed0,
           (unsigned long)(seed0 + count - 1), (unsigned long)calls, verbose ? ", verbose" : "");
    mkdir("/tmp/fz", 01777);
    chmod("/tmp/fz", 01777);
    mkdir("/tmp/fz/dir", 0777);
    sh = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return 4;
    struct tally all;
    memset(&all, 0, sizeof all);
    for (uint64_t s = seed0; s < seed0 + count; s++) {
        struct tally t;
        memset(&t, 0, sizeof t);
        uint64_t idle = 0;
        for (uint64_t b = 0; t.calls < calls; b++) {
            uint64_t left = calls - t.calls, before = t.calls;
            if (run_batch(s, b, left < BATCH ? left : BATCH, &t) != 0) return 3;
            /* Children that cannot even set up (a root batch broke what
             * they need, beyond restore_scratch): say so, go on. */
            idle = t.calls == before ? idle + 1 : 0;
            if (idle == 50) {
                printf("fuzz: seed %lu: 50 batches in a row made no call (last wait status %#x): the guest's set-up is broken, next seed\n",
                       (unsigned long)s, t.last_status);
                break;
            }
        }
        printf("fuzz: seed %lu: %lu calls in %lu batches: %lu exited, %lu killed (SIGSEGV %lu, SIGBUS %lu, SIGKILL %lu, other %lu), %lu timed out\n",
               (unsigned long)s, (unsigned long)t.calls, (unsigned long)t.batches,
               (unsigned long)t.exited, (unsigned long)t.signaled, (unsigned long)t.by_sig[SIGSEGV],
               (unsigned long)t.by_sig[SIGBUS], (unsigned long)t.by_sig[SIGKILL],
               (unsigned long)(t.signaled - t.by_sig[SIGSEGV] - t.by_sig[SIGBUS] - t.by_sig[SIGKILL]),
               (unsigned long)t.timeouts);
        all.calls += t.calls;
        all.batches += t.batches;
        all.timeouts += t.timeouts;
    }
    printf("fuzz: done: %lu seeds, %lu calls, %lu batches, %lu timed out\n", (unsigned long)count,
           (unsigned long)all.calls, (unsigned long)all.batches, (unsigned long)all.timeouts);
    return 0;
}
