/* Python's test_io check_interrupted_write_retry in C: a blocking write
 * far larger than the pipe, no reader yet, while two other threads sleep
 * in read() (left over, as after earlier tests) and do not block SIGALRM.
 * The process-directed alarm must reach the writing main thread (Linux
 * prefers it when it can take the signal): the first ends the write with
 * the partial count (one pipe), the handler re-arms, the second fails the
 * next write with EINTR (nothing went), its handler's work starts a reader
 * thread (select() with a timeout, then read(1024), as the Python test),
 * and the retried write then takes everything. Twice in a row, as the
 * buffered and text variants run one after the other. */
#include "t_common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/time.h>

#define N (4L * 1024 * 1024 + 1) /* support.PIPE_MAX_SIZE */

static volatile sig_atomic_t alarms;
static int rfd, idle[2];
static volatile int write_finished;
static long got;

static void on_alarm(int s) {
    (void)s;
    alarms++;
}

static void arm(int ms) {
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void *reader(void *arg) {
    (void)arg;
    static char b[1024];
    while (!write_finished) {
        for (;;) {
            fd_set s;
            FD_ZERO(&s);
            FD_SET(rfd, &s);
            struct timeval tv = {0, 200000};
            if (select(rfd + 1, &s, NULL, NULL, &tv) != 1)
                break;
            ssize_t n = read(rfd, b, sizeof b);
            if (n <= 0)
                return NULL;
            got += n;
        }
    }
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    char c;
    (void)!read(idle[0], &c, 1);
    return NULL;
}

static void round_trip(const char *what, char *data) {
    int p[2];
    CHECK(pipe(p) == 0, "%s: pipe", what);
    rfd = p[0];
    got = 0;
    write_finished = 0;
    alarms = 0;
    long cap = fcntl(p[1], F_GETPIPE_SZ);
    arm(200);
    ssize_t n = write(p[1], data, N);
    CHECK(n == cap && alarms == 1, "%s: the first alarm ends the write with one pipe's worth", what);
    long done = n > 0 ? n : 0;
    arm(200);
    n = write(p[1], data + done, N - done);
    CHECK(n < 0 && errno == EINTR && alarms == 2, "%s: the second alarm fails the next write with EINTR", what);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader, NULL) == 0, "%s: start the reader", what);
    while (done < N) {
        n = write(p[1], data + done, N - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += n;
    }
    CHECK(done == N, "%s: the retried writes take everything", what);
    write_finished = 1;
    pthread_join(t, NULL);
    CHECK(got == N, "%s: the reader read every byte", what);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    t_begin("t_pipesig");
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm; /* no SA_RESTART, as Python's handlers */
    sigaction(SIGALRM, &sa, NULL);
    char *data = malloc(N);
    memset(data, 'x', N);
    CHECK(pipe(idle) == 0, "a pipe nobody writes");
    pthread_t s1, s2;
    CHECK(pthread_create(&s1, NULL, sleeper, NULL) == 0 && pthread_create(&s2, NULL, sleeper, NULL) == 0,
          "two threads asleep in read()");
    usleep(50000);
    round_trip("buffered", data);
    round_trip("text", data);
    close(idle[1]);
    pthread_join(s1, NULL);
    pthread_join(s2, NULL);
    close(idle[0]);
    free(data);
    return t_end();
}
