/* SysV IPC compared with Linux: shared memory between processes (keys,
 * IPC_CREAT/IPC_EXCL, IPC_STAT and nattch, SHM_RDONLY, IPC_RMID while
 * attached, permissions), semaphores (SETVAL/GETALL, atomic semop,
 * IPC_NOWAIT, blocking and GETNCNT, semtimedop timeouts, SEM_UNDO at exit,
 * EIDRM), message queues (types, MSG_EXCEPT, MSG_NOERROR, blocking on a
 * full or empty queue, EIDRM), /proc/sysvipc and the kernel limits. */
#include "t_common.h"
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static volatile sig_atomic_t got_sig;
static void on_sig(int s) { got_sig = s; }

static void shm(void) {
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    CHECK(id >= 0, "shmget IPC_PRIVATE 8192");
    char *p = shmat(id, NULL, 0);
    CHECK(p != (void *)-1, "shmat");
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT");
    SAY("segsz %zu nattch %lu mode %o cpid-is-me %d lpid-is-me %d uid %u\n", ds.shm_segsz, (unsigned long)ds.shm_nattch,
        ds.shm_perm.mode & 0777, ds.shm_cpid == getpid(), ds.shm_lpid == getpid(), ds.shm_perm.uid);
    pid_t c = fork();
    if (c == 0) {
        struct shmid_ds d;
        shmctl(id, IPC_STAT, &d);
        strcpy(p, "from child");
        strcpy(p + 4096, "second page");
        _exit(d.shm_nattch == 2 ? 0 : 1);
    }
    SAY("child sees nattch 2 after fork: %s\n", t_wait(c));
    CHECK(!strcmp(p, "from child") && !strcmp(p + 4096, "second page"), "the parent reads what the child wrote");
    shmctl(id, IPC_STAT, &ds);
    CHECK(ds.shm_nattch == 1, "nattch back to 1 after the child exits");
    char *q = shmat(id, NULL, SHM_RDONLY);
    CHECK(q != (void *)-1 && q != p && !strcmp(q, "from child"), "a second, read-only attach sees the same bytes");
    shmctl(id, IPC_STAT, &ds);
    CHECK(ds.shm_nattch == 2, "two attaches: nattch 2");
    c = fork();
    if (c == 0) {
        q[0] = 'x';
        _exit(0);
    }
    SAY("write through SHM_RDONLY: %s\n", t_wait(c));
    CHECK(shmdt(q) == 0, "shmdt the read-only attach");
    CHECK(shmdt(q) == -1 && errno == EINVAL, "shmdt again: EINVAL");
    CHECK(shmdt(p + 4096) == -1 && errno == EINVAL, "shmdt inside an attach: EINVAL");
    /* IPC_RMID while attached: still usable, private key, SHM_DEST. */
    CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID while attached");
    CHECK(shmctl(id, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST) && ds.shm_perm.__key == IPC_PRIVATE,
          "a removed attached segment shows SHM_DEST and the private key");
    strcpy(p, "still here");
    CHECK(!strcmp(p, "still here"), "still usable after IPC_RMID");
    CHECK(shmdt(p) == 0, "last shmdt");
    CHECK(shmctl(id, IPC_STAT, &ds) == -1 && errno == EINVAL, "gone after the last detach: EINVAL");

    /* Keys. */
    key_t key = 0x5a5a0001;
    int k1 = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0640);
    CHECK(k1 >= 0, "shmget a key with IPC_CREAT|IPC_EXCL");
    CHECK(shmget(key, 4096, 0) == k1, "the key finds it");
    CHECK(shmget(key, 100, IPC_CREAT) == k1, "IPC_CREAT on an existing key finds it");
    CHECK(shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600) == -1 && errno == EEXIST, "IPC_EXCL on an existing key: EEXIST");
    CHECK(shmget(key, 8192, 0) == -1 && errno == EINVAL, "asking for more than its size: EINVAL");
    CHECK(shmget(0x5a5a0002, 4096, 0600) == -1 && errno == ENOENT, "an unknown key without IPC_CREAT: ENOENT");
    CHECK(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600) == -1 && errno == EINVAL, "size 0: EINVAL");
    CHECK(shmat(12345678, NULL, 0) == (void *)-1 && errno == EINVAL, "shmat of no segment: EINVAL");
    /* Placement. */
    char *want = (char *)0x7f0000000000UL;
    char *at = shmat(k1, want + 123, SHM_RND);
    CHECK(at == want, "SHM_RND rounds the address down");
    CHECK(shmat(k1, want + 8192 + 123, 0) == (void *)-1 && errno == EINVAL, "an unaligned address without SHM_RND: EINVAL");
    CHECK(shmat(k1, want, 0) == (void *)-1 && errno == EINVAL, "over an existing mapping without SHM_REMAP: EINVAL");
    CHECK(shmat(k1, want, SHM_REMAP) == want, "SHM_REMAP replaces it");
    shmdt(want);
    /* IPC_SET and permissions for another user. */
    CHECK(shmctl(k1, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0640, "mode 0640");
    ds.shm_perm.mode = 0600;
    CHECK(shmctl(k1, IPC_SET, &ds) == 0 && shmctl(k1, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0600,
          "IPC_SET changes the mode");
    c = fork();
    if (c == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(9);
        int bad = 0;
        if (!(shmget(key, 4096, 0600) == -1 && errno == EACCES)) bad |= 1;
        if (!(shmat(k1, NULL, 0) == (void *)-1 && errno == EACCES)) bad |= 2;
        if (!(shmctl(k1, IPC_RMID, NULL) == -1 && errno == EPERM)) bad |= 4;
        struct shmid_ds d;
        if (!(shmctl(k1, IPC_STAT, &d) == -1 && errno == EACCES)) bad |= 8;
        _exit(bad);
    }
    SAY("another user: shmget EACCES, shmat EACCES, IPC_RMID EPERM, IPC_STAT EACCES: %s\n", t_wait(c));
    struct shminfo info;
    CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&info) >= 0 && info.shmmni == 4096 && info.shmmin == 1,
          "IPC_INFO: shmmni 4096, shmmin 1");
    /* /proc/sysvipc/shm shows it. */
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    char line[512];
    CHECK(f && fgets(line, sizeof line, f), "read /proc/sysvipc/shm");
    SAY("shm header: %s", line);
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        int k, sid, perms;
        unsigned long size, nattch;
        int cpid, lpid;
        if (sscanf(line, "%d %d %o %lu %d %d %lu", &k, &sid, &perms, &size, &cpid, &lpid, &nattch) == 7 && sid == k1)
            found = (k == key && perms == 0600 && size == 4096 && cpid == getpid() && nattch == 0);
    }
    if (f) fclose(f);
    CHECK(found, "its /proc/sysvipc/shm line: key, perms, size, cpid, nattch");
    CHECK(shmctl(k1, IPC_RMID, NULL) == 0, "IPC_RMID an unattached segment");
    CHECK(shmget(key, 4096, 0) == -1 && errno == ENOENT, "its key is gone");
}

static void sem(void) {
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    CHECK(id >= 0, "semget 3");
    CHECK(semctl(id, 0, GETVAL) == 0, "a new semaphore is 0");
    union semun u = {.val = 5};
    CHECK(semctl(id, 1, SETVAL, u) == 0 && semctl(id, 1, GETVAL) == 5, "SETVAL 5");
    unsigned short all[3] = {1, 2, 3};
    u.array = all;
    CHECK(semctl(id, 0, SETALL, u) == 0, "SETALL 1 2 3");
    unsigned short got[3] = {0};
    u.array = got;
    CHECK(semctl(id, 0, GETALL, u) == 0 && got[0] == 1 && got[1] == 2 && got[2] == 3, "GETALL 1 2 3");
    CHECK(semctl(id, 3, GETVAL) == -1 && errno == EINVAL, "GETVAL past the set: EINVAL");
    u.val = 40000;
    CHECK(semctl(id, 0, SETVAL, u) == -1 && errno == ERANGE, "SETVAL past SEMVMX: ERANGE");
    struct semid_ds ds;
    u.buf = &ds;
    CHECK(semctl(id, 0, IPC_STAT, u) == 0 && ds.sem_nsems == 3 && ds.sem_otime == 0, "IPC_STAT: 3 semaphores, no semop yet");
    /* All or nothing. */
    struct sembuf two[2] = {{0, -1, 0}, {1, -5, IPC_NOWAIT}};
    CHECK(semop(id, two, 2) == -1 && errno == EAGAIN, "one op would block: EAGAIN");
    CHECK(semctl(id, 0, GETVAL) == 1, "and nothing changed");
    struct sembuf ok2[2] = {{0, -1, 0}, {2, 4, 0}};
    CHECK(semop(id, ok2, 2) == 0 && semctl(id, 0, GETVAL) == 0 && semctl(id, 2, GETVAL) == 7, "both ops applied");
    CHECK(semctl(id, 0, GETPID) == getpid(), "GETPID: the last to operate");
    u.buf = &ds;
    CHECK(semctl(id, 0, IPC_STAT, u) == 0 && ds.sem_otime != 0, "sem_otime set");
    struct sembuf far = {7, 1, 0};
    CHECK(semop(id, &far, 1) == -1 && errno == EFBIG, "sem_num past the set: EFBIG");
    struct sembuf big = {2, 32767, 0};
    CHECK(semop(id, &big, 1) == -1 && errno == ERANGE, "past SEMVMX: ERANGE");
    CHECK(semop(id, two, 0) == -1 && errno == EINVAL, "nsops 0: EINVAL");
    static struct sembuf many[501];
    CHECK(semop(id, many, 501) == -1 && errno == E2BIG, "nsops past SEMOPM: E2BIG");
    struct sembuf zero = {2, 0, IPC_NOWAIT};
    CHECK(semop(id, &zero, 1) == -1 && errno == EAGAIN, "wait-for-zero with IPC_NOWAIT: EAGAIN");
    struct timespec ts = {0, 50000000};
    struct sembuf down = {0, -1, 0};
    CHECK(semtimedop(id, &down, 1, &ts) == -1 && errno == EAGAIN, "semtimedop times out: EAGAIN");
    /* A blocked semop, counted by GETNCNT, woken by a post. */
    pid_t c = fork();
    if (c == 0) _exit(semop(id, &down, 1) == 0 ? 0 : 1);
    sleep_ms(100);
    CHECK(semctl(id, 0, GETNCNT) == 1, "GETNCNT: one waiter");
    struct sembuf up = {0, 1, 0};
    CHECK(semop(id, &up, 1) == 0, "post");
    SAY("the waiter took it: %s\n", t_wait(c));
    CHECK(semctl(id, 0, GETVAL) == 0 && semctl(id, 0, GETNCNT) == 0, "value 0, no waiters");
    c = fork();
    struct sembuf z = {2, 0, 0};
    if (c == 0) _exit(semop(id, &z, 1) == 0 ? 0 : 1);
    sleep_ms(100);
    CHECK(semctl(id, 2, GETZCNT) == 1, "GETZCNT: one waiter for zero");
    u.val = 0;
    CHECK(semctl(id, 2, SETVAL, u) == 0, "SETVAL 0 wakes it");
    SAY("the zero waiter: %s\n", t_wait(c));
    /* SEM_UNDO is undone at exit. */
    c = fork();
    if (c == 0) {
        struct sembuf uu = {1, 3, SEM_UNDO};
        semop(id, &uu, 1);
        _exit(semctl(id, 1, GETVAL) == 5 ? 0 : 1);
    }
    SAY("child +3 with SEM_UNDO: %s\n", t_wait(c));
    CHECK(semctl(id, 1, GETVAL) == 2, "undone at its exit");
    /* semop is not restarted after a handler (even with SA_RESTART). */
    c = fork();
    if (c == 0) {
        struct sigaction sa = {.sa_handler = on_sig, .sa_flags = SA_RESTART};
        sigaction(SIGALRM, &sa, NULL);
        alarm(1);
        int r = semop(id, &down, 1);
        _exit(r == -1 && errno == EINTR ? 0 : 1);
    }
    SAY("semop interrupted by a signal (EINTR even with SA_RESTART): %s\n", t_wait(c));
    /* IPC_RMID wakes the waiters with EIDRM. */
    c = fork();
    if (c == 0) _exit(semop(id, &down, 1) == -1 && errno == EIDRM ? 0 : 1);
    sleep_ms(100);
    CHECK(semctl(id, 0, IPC_RMID) == 0, "IPC_RMID");
    SAY("waiter on a removed set (EIDRM): %s\n", t_wait(c));
    CHECK(semctl(id, 0, GETVAL) == -1 && errno == EINVAL, "the set is gone: EINVAL");
    /* Keys and sizes. */
    int k = semget(0x5a5a0003, 2, IPC_CREAT | 0600);
    CHECK(k >= 0 && semget(0x5a5a0003, 2, 0) == k && semget(0x5a5a0003, 1, 0) == k, "a key finds its set");
    CHECK(semget(0x5a5a0003, 3, 0) == -1 && errno == EINVAL, "more semaphores than it has: EINVAL");
    CHECK(semget(IPC_PRIVATE, 0, IPC_CREAT | 0600) == -1 && errno == EINVAL, "nsems 0: EINVAL");
    CHECK(semget(IPC_PRIVATE, -1, IPC_CREAT | 0600) == -1 && errno == EINVAL, "nsems -1: EINVAL");
    FILE *f = fopen("/proc/sysvipc/sem", "r");
    char line[256];
    CHECK(f && fgets(line, sizeof line, f), "read /proc/sysvipc/sem");
    SAY("sem header: %s", line);
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        int key, sid, perms, nsems;
        if (sscanf(line, "%d %d %o %d", &key, &sid, &perms, &nsems) == 4 && sid == k)
            found = key == 0x5a5a0003 && perms == 0600 && nsems == 2;
    }
    if (f) fclose(f);
    CHECK(found, "its /proc/sysvipc/sem line");
    semctl(k, 0, IPC_RMID);
}

struct m {
    long type;
    char text[64];
};

static void msg(void) {
    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(id >= 0, "msgget");
    struct m out = {3, "three"};
    CHECK(msgsnd(id, &out, 6, 0) == 0, "send type 3");
    out.type = 1;
    strcpy(out.text, "one");
    CHECK(msgsnd(id, &out, 4, 0) == 0, "send type 1");
    out.type = 2;
    strcpy(out.text, "two");
    CHECK(msgsnd(id, &out, 4, 0) == 0, "send type 2");
    struct msqid_ds ds;
    CHECK(msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qnum == 3 && ds.__msg_cbytes == 14 && ds.msg_lspid == getpid(),
          "IPC_STAT: 3 messages, 14 bytes, lspid");
    struct m in;
    CHECK(msgrcv(id, &in, sizeof in.text, 2, 0) == 4 && in.type == 2 && !strcmp(in.text, "two"), "receive type 2");
    CHECK(msgrcv(id, &in, sizeof in.text, -3, 0) == 4 && in.type == 1, "type -3: the lowest type first");
    CHECK(msgrcv(id, &in, 2, 0, 0) == -1 && errno == E2BIG, "too small a buffer: E2BIG");
    CHECK(msgrcv(id, &in, 2, 0, MSG_NOERROR) == 2 && in.type == 3 && !memcmp(in.text, "th", 2), "MSG_NOERROR truncates");
    CHECK(msgrcv(id, &in, sizeof in.text, 0, IPC_NOWAIT) == -1 && errno == ENOMSG, "empty with IPC_NOWAIT: ENOMSG");
    out.type = 5;
    msgsnd(id, &out, 1, 0);
    out.type = 6;
    msgsnd(id, &out, 1, 0);
    CHECK(msgrcv(id, &in, sizeof in.text, 5, MSG_EXCEPT) == 1 && in.type == 6, "MSG_EXCEPT skips the type");
    CHECK(msgrcv(id, &in, sizeof in.text, 0, 0) == 1 && in.type == 5, "the rest");
    out.type = 0;
    CHECK(msgsnd(id, &out, 1, 0) == -1 && errno == EINVAL, "type 0: EINVAL");
    out.type = 1;
    CHECK(msgsnd(id, &out, 9000, 0) == -1 && errno == EINVAL, "bigger than msgmax: EINVAL");
    /* A blocked receiver gets what a child sends. */
    pid_t c = fork();
    if (c == 0) {
        sleep_ms(100);
        struct m o = {9, "late"};
        _exit(msgsnd(id, &o, 5, 0) == 0 ? 0 : 1);
    }
    CHECK(msgrcv(id, &in, sizeof in.text, 9, 0) == 5 && !strcmp(in.text, "late"), "a blocked msgrcv gets a later message");
    t_wait(c);
    /* A full queue: a sender waits for room. */
    CHECK(msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qbytes == 16384, "msg_qbytes 16384 (msgmnb)");
    ds.msg_qbytes = 8;
    CHECK(msgctl(id, IPC_SET, &ds) == 0, "IPC_SET msg_qbytes 8");
    out.type = 1;
    CHECK(msgsnd(id, &out, 8, 0) == 0, "fill it");
    CHECK(msgsnd(id, &out, 1, IPC_NOWAIT) == -1 && errno == EAGAIN, "full with IPC_NOWAIT: EAGAIN");
    c = fork();
    if (c == 0) _exit(msgsnd(id, &out, 4, 0) == 0 ? 0 : 1);
    sleep_ms(100);
    CHECK(msgrcv(id, &in, sizeof in.text, 0, 0) == 8, "receive makes room");
    SAY("the blocked sender: %s\n", t_wait(c));
    CHECK(msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qnum == 1 && ds.msg_lrpid == getpid(), "one message left, lrpid");
    /* IPC_RMID wakes a waiting receiver with EIDRM. */
    c = fork();
    if (c == 0) _exit(msgrcv(id, &in, sizeof in.text, 77, 0) == -1 && errno == EIDRM ? 0 : 1);
    sleep_ms(100);
    CHECK(msgctl(id, IPC_RMID, NULL) == 0, "IPC_RMID");
    SAY("receiver on a removed queue (EIDRM): %s\n", t_wait(c));
    CHECK(msgsnd(id, &out, 1, 0) == -1 && errno == EINVAL, "the queue is gone: EINVAL");
    FILE *f = fopen("/proc/sysvipc/msg", "r");
    char line[256];
    CHECK(f && fgets(line, sizeof line, f), "read /proc/sysvipc/msg");
    SAY("msg header: %s", line);
    if (f) fclose(f);
}

static void limits(void) {
    const char *names[] = {"shmmax", "shmall", "shmmni", "sem", "msgmax", "msgmnb", "msgmni"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        char path[64], buf[128] = "";
        snprintf(path, sizeof path, "/proc/sys/kernel/%s", names[i]);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
            fclose(f);
        }
        SAY("%s: %s", names[i], buf[0] ? buf : "(unreadable)\n");
    }
}

int main(void) {
    t_begin("t_sysv");
    /* As init in the guest nobody has mounted /proc yet. */
    if (access("/proc/self", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
    shm();
    sem();
    msg();
    limits();
    return t_end();
}
