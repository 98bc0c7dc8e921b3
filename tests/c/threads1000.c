/* threads1000 [N]: N (1000) POSIX threads, all started before any is joined; each
 * increments one atomic counter and a per-thread slot and returns its index; the main
 * thread joins them all and prints the total, and checks each returned its own index and
 * each ran on a thread id of its own. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_long total;
static pid_t *tids;

static void *work(void *arg) {
    intptr_t i = (intptr_t)arg;
    tids[i] = (pid_t)syscall(SYS_gettid);
    atomic_fetch_add(&total, 1);
    return arg;
}

static int by_value(const void *a, const void *b) {
    return *(const pid_t *)a - *(const pid_t *)b;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    pthread_t *th = calloc(n, sizeof *th);
    tids = calloc(n, sizeof *tids);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (intptr_t i = 0; i < n; i++) {
        int e = pthread_create(&th[i], &attr, work, (void *)i);
        if (e) { fprintf(stderr, "pthread_create %ld: %s\n", (long)i, strerror(e)); return 1; }
    }
    int wrong = 0;
    for (intptr_t i = 0; i < n; i++) {
        void *ret;
        int e = pthread_join(th[i], &ret);
        if (e || ret != (void *)i) wrong++;
    }
    qsort(tids, n, sizeof *tids, by_value);
    int same = 0;
    for (int i = 1; i < n; i++) same += tids[i] == tids[i - 1];
    printf("threads %d, total %ld, wrong joins %d, shared thread ids %d, main tid is pid %s\n",
           n, atomic_load(&total), wrong, same,
           syscall(SYS_gettid) == getpid() ? "yes" : "no");
    return atomic_load(&total) == n && !wrong && !same ? 0 : 1;
}
