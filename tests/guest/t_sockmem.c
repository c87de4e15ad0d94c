/* Guest-only test (tests/guest_suite.rs t_sockmem): socket buffers are
 * guest memory. Filling AF_UNIX and TCP buffers lowers MemFree and
 * MemAvailable in /proc/meminfo by about what they hold; draining them
 * gives it back. Not compared with a native run: on a shared host MemFree
 * moves by more than this test's few MiB whatever the test does. */
#include "t_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>

#define PAIRS 16

static long field(const char *name) {
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name)) && line[strlen(name)] == ':')
            sscanf(line + strlen(name) + 1, "%ld", &v);
    fclose(f);
    return v;
}

/* Writes without blocking until the buffer is full; bytes written. */
static long fill(int fd) {
    static char b[65536];
    long n = 0;
    for (;;) {
        ssize_t w = send(fd, b, sizeof b, MSG_DONTWAIT);
        if (w <= 0) return n;
        n += w;
    }
}

static long drain(int fd) {
    static char b[65536];
    long n = 0;
    for (;;) {
        ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (r <= 0) return n;
        n += r;
    }
}

int main(void) {
    t_begin("t_sockmem");
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    int sv[PAIRS][2], tc[2][2];
    for (int i = 0; i < PAIRS; i++) socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]);
    for (int i = 0; i < 2; i++) {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        bind(l, (void *)&a, sizeof a), listen(l, 1), getsockname(l, (void *)&a, &len);
        tc[i][0] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(connect(tc[i][0], (void *)&a, sizeof a) == 0, "tcp %d connects", i);
        tc[i][1] = accept(l, NULL, NULL);
        close(l);
    }
    long free0 = field("MemFree"), avail0 = field("MemAvailable");
    long unix_q = 0, tcp_q = 0;
    for (int i = 0; i < PAIRS; i++) unix_q += fill(sv[i][0]);
    for (int i = 0; i < 2; i++) tcp_q += fill(tc[i][0]);
    long kib = (unix_q + tcp_q) / 1024;
    long free1 = field("MemFree"), avail1 = field("MemAvailable"), slab1 = field("SUnreclaim");
    SAY("queued: unix %ld KiB, tcp %ld KiB\n", unix_q / 1024, tcp_q / 1024);
    CHECK(unix_q >= PAIRS * 100000L && tcp_q >= 2 * 60000L, "buffers filled");
    CHECK(free0 - free1 >= kib * 9 / 10, "MemFree fell by at least 90%% of the bytes queued (%ld of %ld KiB)",
          free0 - free1, kib);
    CHECK(free0 - free1 <= kib * 2 + 1024, "and not by much more");
    CHECK(avail0 - avail1 >= kib * 9 / 10, "MemAvailable too (%ld KiB)", avail0 - avail1);
    CHECK(slab1 >= kib * 9 / 10, "shown as SUnreclaim (%ld KiB)", slab1);
    long got = 0;
    for (int i = 0; i < PAIRS; i++) got += drain(sv[i][1]);
    for (int i = 0; i < 2; i++) {
        /* TCP data may still be on its way from the send queue. */
        for (int t = 0; t < 100 && got < unix_q + tcp_q; t++) {
            got += drain(tc[i][1]);
            usleep(1000);
        }
    }
    CHECK(got == unix_q + tcp_q, "all of it read back");
    long free2 = field("MemFree");
    /* One 64 KiB chunk of slack stays charged; 248 KiB was seen. */
    CHECK(free0 - free2 <= 512, "drained: MemFree back within 512 KiB");
    return t_end();
}
