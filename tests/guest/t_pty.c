/* Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, TIOCGPTN and
 * TIOCSPTLCK, the slave's line discipline seen from the master (echo,
 * canonical input, OPOST, raw mode), window sizes, openpty, forkpty with
 * a controlling terminal (^C reaches the child's group, closing the
 * master hangs it up with SIGHUP), EIO on the master after the slave
 * side closed, TIOCGPTPEER. Mounts devpts on /dev/pts if nothing has. */
#include "t_common.h"
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <termios.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Reads from the master until `want` shows up or nothing more comes. */
static int read_until(int m, char *buf, size_t cap, const char *want) {
    size_t n = 0;
    buf[0] = 0;
    while (n + 1 < cap) {
        struct pollfd p = {m, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) break;
        ssize_t r = read(m, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += r;
        buf[n] = 0;
        if (strstr(buf, want)) break;
    }
    return n;
}

int main(void) {
    t_begin("t_pty");
    struct stat st;
    if (stat("/dev/pts/ptmx", &st) != 0 && mount("devpts", "/dev/pts", "devpts", 0, NULL) != 0)
        SAY("cannot mount devpts\n");

    SAY("-- posix_openpt\n");
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(m >= 0, "posix_openpt");
    CHECK(isatty(m), "the master is a tty");
    unsigned n = 99;
    CHECK(ioctl(m, TIOCGPTN, &n) == 0, "TIOCGPTN");
    char want[32];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    const char *name = ptsname(m);
    CHECK(name && strcmp(name, want) == 0, "ptsname is /dev/pts/<TIOCGPTN>");
    int locked = -1;
    CHECK(ioctl(m, TIOCGPTLCK, &locked) == 0 && locked == 1, "a new pair is locked");
    errno = 0;
    CHECK(open(want, O_RDWR | O_NOCTTY) == -1 && errno == EIO, "slave open while locked: EIO");
    CHECK(grantpt(m) == 0, "grantpt");
    CHECK(unlockpt(m) == 0, "unlockpt");
    CHECK(ioctl(m, TIOCGPTLCK, &locked) == 0 && locked == 0, "unlocked");
    CHECK(stat(want, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 + n / 256, "the slave node is char 136");
    int s = open(want, O_RDWR | O_NOCTTY);
    CHECK(s >= 0 && isatty(s), "open the slave");

    SAY("-- line discipline\n");
    char buf[256];
    CHECK(write(m, "hello\n", 6) == 6, "master writes a line");
    memset(buf, 0, sizeof buf);
    CHECK(read(s, buf, sizeof buf) == 6 && strcmp(buf, "hello\n") == 0, "the slave reads the line");
    read_until(m, buf, sizeof buf, "\r\n");
    CHECK(strcmp(buf, "hello\r\n") == 0, "the master reads the echo, ONLCR");
    CHECK(write(s, "out\n", 4) == 4, "slave writes");
    read_until(m, buf, sizeof buf, "\r\n");
    CHECK(strcmp(buf, "out\r\n") == 0, "the master reads it with CRLF");
    struct termios t;
    CHECK(tcgetattr(s, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO), "slave: canonical, echo");
    cfmakeraw(&t);
    CHECK(tcsetattr(s, TCSANOW, &t) == 0, "raw mode");
    CHECK(write(m, "x", 1) == 1, "master writes one byte");
    memset(buf, 0, sizeof buf);
    CHECK(read(s, buf, sizeof buf) == 1 && buf[0] == 'x', "raw: read at once");
    struct pollfd p = {m, POLLIN, 0};
    CHECK(poll(&p, 1, 100) == 0, "raw: no echo");
    struct winsize w = {.ws_row = 33, .ws_col = 101}, w2 = {0};
    CHECK(ioctl(m, TIOCSWINSZ, &w) == 0, "TIOCSWINSZ on the master");
    CHECK(ioctl(s, TIOCGWINSZ, &w2) == 0 && w2.ws_row == 33 && w2.ws_col == 101, "the slave sees the size");
    int f = -1;
    CHECK(ioctl(s, FIONREAD, &f) == 0 && f == 0, "FIONREAD on the slave: 0");
    close(s);
    errno = 0;
    CHECK(read(m, buf, sizeof buf) == -1 && errno == EIO, "master read after the slave closed: EIO");
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    CHECK(peer >= 0 && isatty(peer), "TIOCGPTPEER opens the slave");
    close(peer);
    close(m);
    errno = 0;
    CHECK(stat(want, &st) == -1 && errno == ENOENT, "the pair is gone once both ends closed");

    SAY("-- openpty\n");
    int am, as;
    struct winsize ws = {.ws_row = 10, .ws_col = 20};
    CHECK(openpty(&am, &as, NULL, NULL, &ws) == 0, "openpty with a window size");
    CHECK(ioctl(as, TIOCGWINSZ, &w2) == 0 && w2.ws_row == 10 && w2.ws_col == 20, "size set");
    close(am);
    errno = 0;
    CHECK(write(as, "z", 1) == -1 && errno == EIO, "slave write after the master closed: EIO");
    CHECK(read(as, buf, 1) == 0, "slave read after the master closed: EOF");
    close(as);

    SAY("-- forkpty\n");
    pid_t pid = forkpty(&am, NULL, NULL, NULL);
    if (pid == 0) {
        int ok = isatty(0) && tcgetpgrp(0) == getpgrp() && getsid(0) == getpid();
        printf("child %s\n", ok ? "has its terminal" : "has no terminal");
        fflush(stdout);
        _exit(7);
    }
    CHECK(pid > 0, "forkpty");
    read_until(am, buf, sizeof buf, "terminal\r\n");
    CHECK(strstr(buf, "child has its terminal\r\n") != NULL, "the child's output through the master");
    CHECK(strcmp(t_wait(pid), "exited 7") == 0, "the child exited 7");
    errno = 0;
    CHECK(read(am, buf, sizeof buf) == -1 && errno == EIO, "then the master reads EIO");
    close(am);

    pid = forkpty(&am, NULL, NULL, NULL);
    if (pid == 0) {
        write(1, "ready\n", 6);
        for (;;) pause();
    }
    read_until(am, buf, sizeof buf, "ready");
    CHECK(write(am, "\x03", 1) == 1, "^C through the master");
    CHECK(strcmp(t_wait(pid), "killed by INT") == 0, "the child got SIGINT");
    close(am);

    pid = forkpty(&am, NULL, NULL, NULL);
    if (pid == 0) {
        write(1, "ready\n", 6);
        for (;;) pause();
    }
    read_until(am, buf, sizeof buf, "ready");
    close(am);
    CHECK(strcmp(t_wait(pid), "killed by HUP") == 0, "closing the master: SIGHUP");
    return t_end();
}
