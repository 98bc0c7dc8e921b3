/* Processes, pipes, futexes and a shell loop, each printing "<label> <value> <unit>":
 *   proc fork N PROG      N times fork, execve PROG (no arguments), waitpid; each timed
 *                         from before the fork to after the wait      -> median, us/spawn
 *   proc pipe MIB         a child writes MIB MiB into a pipe in 1 MiB writes; the parent
 *                         reads it in 1 MiB reads; from before the fork to the last byte
 *                         read, checked                                -> MB/s
 *   proc futex N          two threads of this process hand a turn back and forth N times
 *                         over one futex word (FUTEX_WAIT / FUTEX_WAKE, private)
 *                                                                      -> ns/round trip
 *   proc time PROG ARGS   runs PROG ARGS once (fork, execve, waitpid), its output going
 *                         to /dev/null                                 -> ms, wall
 * A failed call prints why on stderr and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "proc: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* fork, execve argv[0] with argv, wait; stdout to /dev/null if `quiet`. Exits on failure. */
static void spawn_wait(char **argv, int quiet) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null < 0 || dup2(null, 1) < 0) _exit(126);
        }
        execve(argv[0], argv, environ);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "proc: %s ended with status 0x%x\n", argv[0], status);
        exit(1);
    }
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int do_fork(int n, char *prog) {
    char *argv[] = {prog, NULL};
    double *t = calloc(n, sizeof *t);
    spawn_wait(argv, 0); /* warm: the program's pages in the page cache */
    for (int i = 0; i < n; i++) {
        double a = now_ns();
        spawn_wait(argv, 0);
        t[i] = now_ns() - a;
    }
    qsort(t, n, sizeof *t, by_value);
    printf("fork %.1f us/spawn\n", t[n / 2] / 1e3);
    return 0;
}

#define CHUNK (1 << 20)

static int do_pipe(long mib) {
    int p[2];
    if (pipe(p) != 0) die("pipe");
    char *buf = malloc(CHUNK);
    double a = now_ns();
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(p[0]);
        memset(buf, 0x5a, CHUNK);
        for (long i = 0; i < mib; i++) {
            for (size_t off = 0; off < CHUNK;) {
                ssize_t w = write(p[1], buf + off, CHUNK - off);
                if (w < 0) _exit(1);
                off += w;
            }
        }
        _exit(0);
    }
    close(p[1]);
    long long total = 0;
    ssize_t r;
    int bad = 0;
    while ((r = read(p[0], buf, CHUNK)) > 0) {
        total += r;
        bad |= buf[0] != 0x5a || buf[r - 1] != 0x5a;
    }
    if (r < 0) die("read");
    double ns = now_ns() - a;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the writer");
    if (total != mib * CHUNK || bad) {
        fprintf(stderr, "proc: read %lld bytes (wanted %ld MiB), wrong data: %d\n", total, mib,
                bad);
        return 1;
    }
    printf("pipe %.0f MB/s\n", total / (ns / 1e9) / 1e6);
    return 0;
}

static atomic_int turn;
static long rounds;

static void wait_for(int me) {
    int cur;
    while ((cur = atomic_load(&turn)) != me)
        if (syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, cur, NULL, NULL, 0) != 0 &&
            errno != EAGAIN && errno != EINTR)
            die("FUTEX_WAIT");
}

static void hand_to(int other) {
    atomic_store(&turn, other);
    if (syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0) die("FUTEX_WAKE");
}

static void *partner(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        wait_for(1);
        hand_to(0);
    }
    return NULL;
}

static int do_futex(long n) {
    rounds = n;
    pthread_t th;
    int e = pthread_create(&th, NULL, partner, NULL);
    if (e) {
        errno = e;
        die("pthread_create");
    }
    double a = now_ns();
    for (long i = 0; i < n; i++) {
        hand_to(1);
        wait_for(0);
    }
    double ns = now_ns() - a;
    pthread_join(th, NULL);
    printf("futex %.0f ns/round-trip\n", ns / n);
    return 0;
}

static int do_time(char **argv) {
    double a = now_ns();
    spawn_wait(argv, 1);
    printf("time %.2f ms\n", (now_ns() - a) / 1e6);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "fork")) return do_fork(atoi(argv[2]), argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "pipe")) return do_pipe(atol(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "futex")) return do_futex(atol(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "time")) return do_time(argv + 2);
    fprintf(stderr, "usage: proc fork N PROG | pipe MIB | futex N | time PROG ARGS...\n");
    return 2;
}
